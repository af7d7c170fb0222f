"""TOML spec files: a core described in a few lines, loaded into a :class:`Design`.

A spec has a ``[core]`` table (``kind``, ``name``) and a ``[params]`` table whose fields depend on
the kind. Paths inside a spec are relative to the spec file. Every problem is a
:class:`SpecError` whose message names the file and the field.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .cores.activation import activation_core
from .cores.dense import Dense
from .cores.shift_mac import ShiftMac
from .export import check_module_name
from .fixed import Format, Overflow, Rounding, parse_format
from .plans.activation import METHODS, fit_activation, plan_activation
from .plans.dense import plan_dense
from .plans.functions import FUNCTIONS
from .plans.shift_mac import plan_shift_mac
from .ref.activation import activation
from .ref.dense import dense
from .ref.shift_mac import shift_mac

__all__ = ["SpecError", "Design", "load_spec", "design_from_dict", "KINDS"]

class SpecError(ValueError):
    """A problem with a spec: ``source: field: message``."""

    def __init__(self, source, field_name, message):
        self.source, self.field, self.message = str(source), field_name, message
        super().__init__(f"{source}: {field_name}: {message}")


@dataclass
class Design:
    """A loaded spec: the plan plus what the CLI needs to build, simulate and check the core.

    ``build()`` returns a fresh core (Amaranth elaborates a core once per simulation or export);
    ``reference(x)`` maps input codes ``(n, in_lanes)`` to output codes ``(n, out_lanes)``;
    ``info`` holds facts about the spec that the core cannot know (e.g. ``saturated_weights``
    of weights quantized for it), shown by ``hwnn plan``; ``notes`` are lines a user should
    read before trusting a check of the design (e.g. that its weights are all zero).
    """
    kind: str
    name: str
    source: str
    plan: object
    in_format: Format
    out_format: Format
    in_lanes: int
    out_lanes: int
    build: Callable
    reference: Callable
    info: dict = field(default_factory=dict)
    notes: tuple = ()


class _Fields:
    """Typed access to one table of a spec, with errors that name the field."""

    def __init__(self, table, prefix, source, allowed):
        if not isinstance(table, dict):
            raise SpecError(source, prefix, f"must be a table, not {table!r}")
        self.table, self.prefix, self.source, self.allowed = table, prefix, source, allowed
        unknown = sorted(set(table) - set(allowed))
        if unknown:
            raise SpecError(source, f"{prefix}.{unknown[0]}",
                            f"unknown field; {prefix} takes {', '.join(sorted(allowed))}")

    def error(self, key, message):
        return SpecError(self.source, f"{self.prefix}.{key}", message)

    def raw(self, key, default=None, required=False):
        if key not in self.table:
            if required:
                raise self.error(key, "missing (required)")
            return default
        return self.table[key]

    def string(self, key, default=None, required=False):
        value = self.raw(key, default, required)
        if value is not None and not isinstance(value, str):
            raise self.error(key, f"must be a string, not {value!r}")
        return value

    def format(self, key, required=True):
        value = self.string(key, required=required)
        try:
            return parse_format(value)
        except (TypeError, ValueError) as exc:
            raise self.error(key, str(exc)) from None

    def choice(self, key, choices, default, required=False):
        value = self.string(key, default, required)
        if value not in choices:
            raise self.error(key, f"must be one of {' | '.join(choices)}, not {value!r}")
        return value

    def integer(self, key, default, minimum=None, maximum=None):
        value = self.raw(key, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.error(key, f"must be an integer, not {value!r}")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum is not None \
                else f"at least {minimum}"
            raise self.error(key, f"must be {bounds}, not {value}")
        return value

    def boolean(self, key, default):
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {value!r}")
        return value

    def path(self, key, base_dir):
        value = self.string(key, required=True)
        path = (Path(base_dir) / value).resolve()
        if not path.is_file():
            raise self.error(key, f"file not found: {path}")
        return path


def _load_arrays(fields, key, base_dir, names):
    """The named arrays from an ``.npz`` file; ``names`` maps array name to required-ness."""
    path = fields.path(key, base_dir)
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        # numpy takes any file that is neither a zip nor a .npy for a pickle and advises
        # allow_pickle, which a spec cannot set and which would not help.
        reason = ("neither an .npz archive nor a .npy array" if "allow_pickle" in str(exc)
                  else str(exc))
        raise fields.error(key, f"{path.name} is not a readable .npz file ({reason}); write "
                                f"it with numpy.savez") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):  # a .npy file holds one bare array
        required = " and ".join(repr(n) for n, needed in names.items() if needed)
        optional = " and ".join(repr(n) for n, needed in names.items() if not needed)
        raise fields.error(key, f"{path.name} is a single .npy array; {key} must be an .npz "
                                f"archive (np.savez) with array {required}"
                                + (f" (and optionally {optional})" if optional else ""))
    try:
        with loaded as archive:
            present = set(archive.files)
            arrays = {name: np.asarray(archive[name]) for name in names if name in present}
    except (ValueError, OSError, EOFError) as exc:
        raise fields.error(key, f"{path.name} is not a readable .npz file ({exc})") from None
    for name, required in names.items():
        if required and name not in arrays:
            raise fields.error(key, f"{path.name} has no array '{name}' (it has: "
                                    f"{', '.join(sorted(present)) or 'nothing'})")
    return path, arrays


# --- errors of plans -----------------------------------------------------------------------

# Plan parameters whose spec field has another name; every other parameter is its own field.
_FIELD_OF_PARAMETER = {"weight": "weights", "bias": "weights"}

# A default the user never set can clash with a field they did set; blame the one they set.
# (16 default segments over a narrow input_range is the range's problem, not segments'.)
_SET_INSTEAD = {"segments": ("input_range",), "table_size": ("input_range",),
                "n_in": ("weights",), "n_out": ("weights",)}


# Python keyword syntax in a plan's message ("pass symmetric=False"), as a spec writes it.
_PYTHON_ARGUMENT = re.compile(r"\b(?:pass (?=\w+=(?:True|False)\b))?(\w+)=(True|False)\b")


def _as_toml(message: str, fields) -> str:
    """``message`` with Python keyword arguments of spec ``fields`` written as TOML settings.

    Plans speak to Python callers ("pass saturate_weights=True"); a spec user sets a field
    ("set saturate_weights = true").
    """
    def setting(match):
        name, value = match.group(1), match.group(2).lower()
        if name not in fields:
            return match.group(0)
        return ("set " if match.group(0).startswith("pass ") else "") + f"{name} = {value}"
    return _PYTHON_ARGUMENT.sub(setting, message)


def _plan_error(params: _Fields, exc: Exception, fallback: str) -> SpecError:
    """The :class:`SpecError` for a plan's ``exc``, at the field of its ``exc.parameter``.

    Plans raise :mod:`hwnn.checks` errors that carry the parameter's name; an error without
    one (or naming an internal parameter) goes to ``fallback``.
    """
    parameter = getattr(exc, "parameter", None)
    key = _FIELD_OF_PARAMETER.get(parameter, parameter)
    if key not in params.allowed:
        key = fallback
    elif key not in params.table:
        key = next((k for k in _SET_INSTEAD.get(key, ()) if k in params.table), key)
    return params.error(key, _as_toml(str(exc), params.allowed))


def _saturation_error(params: _Fields, count: int, path: Path, what: str) -> SpecError:
    """Weights beyond what the weight format expresses, with the spec's (TOML) way out."""
    return params.error("weights", f"{count} weights in {path.name} do not fit {what}; widen "
                                   f"weight_format, or set saturate_weights = true to clamp them")


# --- kinds ---------------------------------------------------------------------------------

_ROUNDINGS = tuple(r.value for r in Rounding)
_OVERFLOWS = tuple(o.value for o in Overflow)


def _layer_formats(params: _Fields):
    """The input, weight and output formats and the rounding and overflow of a layer."""
    return (params.format("in_format"), params.format("weight_format"),
            params.format("out_format"), params.choice("rounding", _ROUNDINGS, "half_up"),
            params.choice("overflow", _OVERFLOWS, "sat"))


def _dense_design(core: dict, params: _Fields, base_dir, source) -> Design:
    in_format, weight_format, out_format, rounding, overflow = _layer_formats(params)
    path, arrays = _load_arrays(params, "weights", base_dir, {"weight": True, "bias": False})
    weight = arrays["weight"]
    if weight.ndim != 2 or 0 in weight.shape:
        raise params.error("weights", f"array 'weight' in {path.name} must be a non-empty 2-D "
                                      f"array (n_out x n_in), not shape {weight.shape}")
    bias = arrays.get("bias")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise params.error("weights", f"array 'bias' in {path.name} must have shape "
                                      f"({weight.shape[0]},) to match weight {weight.shape}, "
                                      f"not {bias.shape}")
    arith = params.choice("arith", ("mult", "csd", "mcm"), "mult")
    weight_quantizer = params.choice("weight_quantizer", ("fixed", "pot", "pot2"), "fixed")
    saturate_weights = params.boolean("saturate_weights", False)
    options = {}
    if arith == "mult":
        options["parallelism"] = params.integer("parallelism", 1, 1, weight.size)
        for key in ("pipeline", "always_ready"):
            if key in params.table:
                raise params.error(key, "applies to arith = \"csd\" or \"mcm\" (shift-add), "
                                        "not \"mult\"")
    else:
        if "parallelism" in params.table:
            raise params.error("parallelism", f"applies to arith = \"mult\"; arith = "
                                              f"\"{arith}\" is fully parallel (one vector per cycle)")
        options["pipeline"] = params.integer("pipeline", 2, 0)
        options["always_ready"] = params.boolean("always_ready", False)
    try:
        # Planned with saturation on, so that weights beyond the format come back as a count
        # and the error below can give the spec's own remedy.
        plan = plan_dense(weight, bias, in_format=in_format, weight_format=weight_format,
                          out_format=out_format, rounding=rounding, overflow=overflow,
                          weight_quantizer=weight_quantizer, saturate_weights=True)
    except (TypeError, ValueError) as exc:
        raise _plan_error(params, exc, "weights") from None
    if plan.saturated_weights and not saturate_weights:
        what = f"weight_format {weight_format}" + \
            ("" if weight_quantizer == "fixed" else f" as {weight_quantizer} values")
        raise _saturation_error(params, plan.saturated_weights, path, what)
    return Design(
        kind="dense", name=core["name"], source=str(source), plan=plan,
        in_format=in_format, out_format=out_format, in_lanes=plan.n_in, out_lanes=plan.n_out,
        build=lambda: Dense(plan, arith=arith, **options),
        reference=lambda x: dense(plan, x),
    )


def _shift_mac_design(core: dict, params: _Fields, base_dir, source) -> Design:
    in_format, weight_format, out_format, rounding, overflow = _layer_formats(params)
    terms = params.integer("weight_terms", 1, 1, 2)
    saturate_weights = params.boolean("saturate_weights", False)
    e_min = params.integer("weight_e_min", 0, 0)
    exponent_bits = None
    if "weight_exponent_bits" in params.table:
        exponent_bits = params.integer("weight_exponent_bits", None, 0)
    weight = bias = None
    if "weights" in params.table:
        path, arrays = _load_arrays(params, "weights", base_dir, {"weight": True, "bias": False})
        weight, bias = arrays["weight"], arrays.get("bias")
        if weight.ndim != 2 or 0 in weight.shape:
            raise params.error("weights", f"array 'weight' in {path.name} must be a non-empty "
                                          f"2-D array (n_out x n_in), not shape {weight.shape}")
    shape = {}
    for key, axis in (("n_in", 1), ("n_out", 0)):
        if key in params.table:
            shape[key] = params.integer(key, None, 1)
            if weight is not None and weight.shape[axis] != shape[key]:
                raise params.error(key, f"is {shape[key]} but array 'weight' has shape "
                                        f"{weight.shape} (n_out x n_in)")
        elif weight is not None:
            shape[key] = weight.shape[axis]
        else:
            raise params.error(key, "missing (required when no weights file gives the shape)")
    # plan_shift_mac refuses a layer beyond MAX_WEIGHTS before it allocates anything.
    size = shape["n_in"] * shape["n_out"]
    parallelism = params.integer("parallelism", 1, 1, size)
    try:
        plan = plan_shift_mac(shape["n_in"], shape["n_out"], in_format=in_format,
                              weight_format=weight_format, out_format=out_format,
                              weight_terms=terms, weight_e_min=e_min,
                              weight_exponent_bits=exponent_bits, bias=bias, rounding=rounding,
                              overflow=overflow)
        info, notes = {}, ()
        if weight is not None:
            codes, info["saturated_weights"] = plan.code.quantize(weight, return_saturated=True)
        else:
            codes = np.zeros((plan.n_out, plan.n_in), dtype=np.int64)
            notes = (f"note: {core['name']} has no weights file, so its weights and bias are "
                     f"all zero and every output is 0; set weights = \"FILE.npz\" to check "
                     f"real products",)
    except (TypeError, ValueError) as exc:
        raise _plan_error(params, exc, "weights" if weight is not None else "in_format") \
            from None
    if info.get("saturated_weights") and not saturate_weights:
        raise _saturation_error(params, info["saturated_weights"], path,
                                "the weights the code can express")
    return Design(
        kind="shift_mac", name=core["name"], source=str(source), plan=plan,
        in_format=in_format, out_format=out_format, in_lanes=plan.n_in, out_lanes=plan.n_out,
        build=lambda: ShiftMac(plan, parallelism=parallelism, weights=codes),
        reference=lambda x: shift_mac(plan, codes, x), info=info, notes=notes,
    )


def _number_pair(params, key):
    value = params.raw(key)
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise params.error(key, f"must be a pair of numbers [low, high], not {value!r}")
    return tuple(float(v) for v in value)


def _activation_design(core: dict, params: _Fields, base_dir, source) -> Design:
    function = params.choice("function", tuple(sorted(FUNCTIONS)), None, required=True)
    smooth = FUNCTIONS[function].smooth
    method = params.choice("method", METHODS, "pwl" if smooth else "exact")
    in_format = params.format("in_format")
    out_format = params.format("out_format")
    lanes = params.integer("lanes", 1, 1, 4096)
    options = {}
    if method == "pwl":
        options["breakpoints"] = params.choice("breakpoints", ("uniform", "optimal"), "optimal")
        options["slopes"] = params.choice("slopes", ("any", "pot", "pot2"), "any")
    if method == "lut":
        options["entries"] = params.choice("entries", ("minimax", "left"), "minimax")
    if method == "exact":
        options["rounding"] = params.choice("rounding", _ROUNDINGS, "half_even")
        if function == "leaky_relu":
            options["leaky_shift"] = params.integer("leaky_shift", 6, 1, 16)
    if method in ("lut", "pwl"):
        symmetric = params.raw("symmetric")
        if symmetric is not None:
            params.boolean("symmetric", None)
            options["symmetric"] = symmetric
        input_range = _number_pair(params, "input_range")
        if input_range is not None:
            options["input_range"] = input_range
    for key, allowed in (("segments", "pwl"), ("breakpoints", "pwl"), ("slopes", "pwl"),
                         ("table_size", "lut"), ("entries", "lut"), ("rounding", "exact"),
                         ("leaky_shift", "exact"), ("input_range", "lut or pwl"),
                         ("symmetric", "lut or pwl")):
        if key in params.table and method not in allowed:
            raise params.error(key, f"applies to method {allowed}, not {method!r}")
    max_error = params.raw("max_error")
    try:
        if max_error is not None:
            if "segments" in params.table or "table_size" in params.table:
                raise params.error("max_error", "give either max_error (fit the cheapest plan) "
                                                "or segments/table_size, not both")
            if not isinstance(max_error, (int, float)) or isinstance(max_error, bool):
                raise params.error("max_error", f"must be a number, not {max_error!r}")
            plan = fit_activation(function, in_format, out_format, float(max_error),
                                  method=method, **options)
        else:
            if method == "pwl":
                options["segments"] = params.integer("segments", 16, 1)
            if method == "lut" and "table_size" in params.table:
                options["table_size"] = params.integer("table_size", None, 1)
            plan = plan_activation(function, in_format, out_format, method=method, **options)
    except SpecError:
        raise
    except (TypeError, ValueError) as exc:
        raise _plan_error(params, exc, "max_error" if max_error is not None else "function") \
            from None
    return Design(
        kind="activation", name=core["name"], source=str(source), plan=plan,
        in_format=in_format, out_format=out_format, in_lanes=lanes, out_lanes=lanes,
        build=lambda: activation_core(plan, lanes=lanes),
        reference=lambda x: activation(plan, x),
    )


#: Spec kinds: name -> (allowed params fields, builder).
KINDS = {
    "dense": (("in_format", "weight_format", "out_format", "rounding", "overflow",
               "parallelism", "weights", "arith", "pipeline", "weight_quantizer",
               "saturate_weights", "always_ready"),
              _dense_design),
    "activation": (("function", "method", "in_format", "out_format", "lanes", "segments",
                    "breakpoints", "slopes", "table_size", "entries", "input_range",
                    "rounding", "leaky_shift", "max_error", "symmetric"), _activation_design),
    "shift_mac": (("in_format", "weight_format", "out_format", "weight_terms", "weight_e_min",
                   "weight_exponent_bits", "rounding", "overflow", "parallelism", "weights",
                   "n_in", "n_out", "saturate_weights"), _shift_mac_design),
}


def design_from_dict(document: dict, base_dir=".", source="<spec>") -> Design:
    """Build a :class:`Design` from an already-parsed spec document.

    Raises
    ------
    SpecError
        Anything wrong with the document; the message names the field.
    """
    top = _Fields(document, "spec", source, ("core", "params"))
    if "core" not in document:
        raise SpecError(source, "core", "missing [core] table")
    core = _Fields(document["core"], "core", source, ("kind", "name"))
    kind = core.string("kind", required=True)
    if kind not in KINDS:
        raise core.error("kind", f"unknown kind {kind!r}; known kinds: {', '.join(KINDS)}")
    name = core.string("name", required=True)
    try:
        check_module_name(name)
    except ValueError as exc:
        raise core.error("name", str(exc)) from None
    allowed, builder = KINDS[kind]
    params = _Fields(top.raw("params", {}), "params", source, allowed)
    return builder({"kind": kind, "name": name}, params, base_dir, source)


def load_spec(path) -> Design:
    """Read and check a TOML spec file.

    Raises
    ------
    SpecError
        The file is missing, is not TOML, or has a bad field.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except FileNotFoundError:
        raise SpecError(path, "spec", "file not found") from None
    except IsADirectoryError:
        raise SpecError(path, "spec", "is a directory, not a spec file") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(path, "spec", f"not valid TOML: {exc}") from None
    return design_from_dict(document, path.parent, path)
