"""Spec kinds of single layers: ``dense``, ``shift_mac`` and ``activation``."""

from __future__ import annotations

import numpy as np

from ..cores.activation import activation_core
from ..cores.dense import Dense
from ..cores.shift_mac import ShiftMac
from ..plans.activation import METHODS, SMOOTH_METHODS, fit_activation, plan_activation
from ..plans.dense import plan_dense
from ..plans.functions import FUNCTIONS
from ..plans.poly import FAITHFUL, MAX_DEGREE, MAX_ORDER, MULTIPLIERS
from ..plans.pwl import BREAKPOINTS
from ..plans.shift_mac import plan_shift_mac
from ..ref.activation import activation
from ..ref.dense import dense
from ..ref.shift_mac import shift_mac
from .fields import (_ROUNDINGS, Design, SpecError, _Fields, _layer_formats, _load_arrays,
                     _plan_error, _saturation_error)


def _dense_design(core: dict, params: _Fields, base_dir, source, arrays=None) -> Design:
    """A ``dense`` spec; ``arrays`` (``(path, {"weight": ..., "bias": ...})``) when the caller
    has the weights already (a network's layer), else they come from ``params.weights``."""
    in_format, weight_format, out_format, rounding, overflow = _layer_formats(params)
    path, arrays = arrays or _load_arrays(params, "weights", base_dir,
                                          {"weight": True, "bias": False})
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
        reference=lambda x: dense(plan, x), options={"arith": arith, **options},
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


def _number(params, key, default):
    value = params.raw(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise params.error(key, f"must be a number, not {value!r}")
    return float(value)


def _listed(methods) -> str:
    """``("pwl", "poly")`` as "pwl or poly"."""
    return methods[0] if len(methods) == 1 else f"{', '.join(methods[:-1])} or {methods[-1]}"


#: The methods each activation option applies to (a spec field given to another method is an
#: error, not ignored).
ACTIVATION_FIELDS = {"segments": ("pwl", "poly"), "breakpoints": ("pwl", "poly"),
                     "slopes": ("pwl",), "degree": ("poly",), "order": ("taylor",),
                     "centre": ("taylor",), "multipliers": ("poly", "taylor"),
                     "table_size": ("lut",), "entries": ("lut",), "rounding": ("exact",),
                     "leaky_shift": ("exact",), "input_range": SMOOTH_METHODS,
                     "symmetric": SMOOTH_METHODS}


def check_applies(params: _Fields, method: str, fields=ACTIVATION_FIELDS) -> None:
    """A :class:`SpecError` for the first field of ``fields`` set in ``params`` that does not
    apply to ``method`` (``fields``: field -> the methods it applies to)."""
    for key, allowed in fields.items():
        if key in params.table and method not in allowed:
            raise params.error(key, f"applies to method {_listed(allowed)}, not {method!r}")


def _activation_options(params: _Fields, function: str, method: str) -> dict:
    """The plan options of the method's fields (shape fields not included: ``segments``,
    ``table_size`` and ``order`` give way to ``max_error``)."""
    options = {}
    if method == "pwl":
        options["breakpoints"] = params.choice("breakpoints", BREAKPOINTS, "optimal")
        options["slopes"] = params.choice("slopes", ("any", "pot", "pot2"), "any")
    if method == "poly":
        options["breakpoints"] = params.choice("breakpoints", BREAKPOINTS, "uniform")
    if method == "taylor":
        options["centre"] = _number(params, "centre", 0.0)
    if method in ("poly", "taylor"):
        options["multipliers"] = params.choice("multipliers", MULTIPLIERS, "dsp")
    if method == "lut":
        options["entries"] = params.choice("entries", ("minimax", "left"), "minimax")
    if method == "exact":
        options["rounding"] = params.choice("rounding", _ROUNDINGS, "half_even")
        if function == "leaky_relu":
            options["leaky_shift"] = params.integer("leaky_shift", 6, 1, 16)
    if method in SMOOTH_METHODS:
        symmetric = params.raw("symmetric")
        if symmetric is not None:
            options["symmetric"] = params.boolean("symmetric", None)
        input_range = _number_pair(params, "input_range")
        if input_range is not None:
            options["input_range"] = input_range
    return options


def _max_error(params: _Fields, method: str):
    """The spec's ``max_error``: a positive number, or "faithful" (poly and taylor)."""
    value = params.raw("max_error")
    if value == FAITHFUL:
        if method not in ("poly", "taylor"):
            raise params.error("max_error", f"\"{FAITHFUL}\" applies to method poly or taylor, "
                                            f"not {method!r}; give a number")
        return value
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        what = " or \"faithful\"" if method in ("poly", "taylor") else ""
        raise params.error("max_error", f"must be a number{what}, not {value!r}")
    return float(value)


def _activation_design(core: dict, params: _Fields, base_dir, source) -> Design:
    function = params.choice("function", tuple(sorted(FUNCTIONS)), None, required=True)
    smooth = FUNCTIONS[function].smooth
    method = params.choice("method", METHODS, "pwl" if smooth else "exact")
    in_format = params.format("in_format")
    out_format = params.format("out_format")
    lanes = params.integer("lanes", 1, 1, 4096)
    check_applies(params, method)
    options = _activation_options(params, function, method)
    if "degree" in params.table:         # poly's (default: plan_poly's, 2)
        options["degree"] = params.integer("degree", None, 1, MAX_DEGREE)
    shape = [key for key in ("segments", "table_size", "order") if key in params.table]
    try:
        if "max_error" in params.table:
            if shape:
                raise params.error("max_error", f"give either max_error (fit the cheapest "
                                                f"plan) or {shape[0]}, not both")
            plan = fit_activation(function, in_format, out_format, _max_error(params, method),
                                  method=method, **options)
        else:
            if method in ("pwl", "poly"):
                options["segments"] = params.integer("segments", 16, 1)
            if "order" in params.table:        # taylor's (default: plan_taylor's, 3)
                options["order"] = params.integer("order", None, 1, MAX_ORDER)
            if method == "lut" and "table_size" in params.table:
                options["table_size"] = params.integer("table_size", None, 1)
            plan = plan_activation(function, in_format, out_format, method=method, **options)
    except SpecError:
        raise
    except (TypeError, ValueError) as exc:
        raise _plan_error(params, exc, "max_error" if "max_error" in params.table
                          else "function") from None
    return Design(
        kind="activation", name=core["name"], source=str(source), plan=plan,
        in_format=in_format, out_format=out_format, in_lanes=lanes, out_lanes=lanes,
        build=lambda: activation_core(plan, lanes=lanes),
        reference=lambda x: activation(plan, x),
    )
