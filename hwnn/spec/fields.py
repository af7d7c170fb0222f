"""What every spec kind shares: the :class:`Design` a spec loads into, typed field access with
errors that name the field, ``.npz`` loading, and the translation of plan errors to fields."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..fixed import Format, Overflow, Rounding, parse_format

__all__ = ["Design", "SpecError"]


class SpecError(ValueError):
    """A problem with a spec: ``source: field: message``."""

    def __init__(self, source, field_name, message):
        self.source, self.field, self.message = str(source), field_name, message
        super().__init__(f"{source}: {field_name}: {message}")


@dataclass
class Design:
    """A loaded spec: the plan plus what the CLI needs to build, simulate and check the core.

    ``build()`` returns a fresh core (Amaranth elaborates a core once per simulation or export);
    ``reference(x)`` maps input codes ``(n, in_lanes)`` to output codes ``(n, out_lanes)`` (a
    network's also takes ``initial_states``, :func:`hwnn.ref.network.network_layers`, and so
    does its ``float_model``, with real values);
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
    options: dict = field(default_factory=dict)   # the core's options, beside its plan
    # Real inputs (n, in_lanes) -> each layer's float64 output, from the unquantized weights.
    float_model: Callable | None = None
    # A design over sequences: the input sequences' length (inputs are (n, steps, in_lanes)).
    sequence_length: int | None = None


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
