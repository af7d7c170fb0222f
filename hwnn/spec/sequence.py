"""The sequence layers of a ``network`` spec: ``conv1d``, ``pool`` and ``flatten``.

::

    [params]
    sequence_length = 32         # time steps per sequence at the network's input

    [[params.layers]]
    kind = "conv1d"              # PyTorch Conv1d: weights "<name>.weight" (out, in/groups, k)
    name = "conv1"
    out_format = "SQ(3,5)"
    padding = "same"             # valid | same | n (zeros on both sides) | [left, right]
    # stride, dilation, groups (default 1); arith, parallelism, pipeline as a dense layer

    [[params.layers]]
    kind = "pool"
    name = "pool1"
    pool = "max"                 # max | avg (PyTorch's MaxPool1d / AvgPool1d)
    kernel_size = 2              # stride defaults to kernel_size; padding to 0

    [[params.layers]]
    kind = "flatten"             # the sequence (its length follows from sequence_length) to
    name = "flat"                # one vector; the next dense layer's weights are in PyTorch's
                                 # (channel-major) order and are permuted to the stream's
"""

from __future__ import annotations

from types import MappingProxyType

from ..plans.conv1d import plan_conv1d
from ..plans.network import Layer
from ..plans.pool import plan_flatten, plan_pool1d
from .fields import _OVERFLOWS, _ROUNDINGS, _Fields, _layer_formats, _plan_error
from .fields import _saturation_error

__all__ = ["SEQUENCE_KINDS", "conv1d_layer", "flatten_layer", "pool_layer"]

#: Fields of each sequence layer kind.
SEQUENCE_KINDS = {
    "conv1d": ("in_format", "weight_format", "out_format", "rounding", "overflow", "stride",
               "dilation", "padding", "groups", "arith", "parallelism", "pipeline",
               "weight_quantizer", "saturate_weights"),
    "pool": ("in_format", "out_format", "pool", "kernel_size", "stride", "padding", "rounding",
             "overflow"),
    "flatten": ("in_format",),
}


def _padding(params: _Fields):
    value = params.raw("padding", "valid")
    if isinstance(value, str) and value in ("valid", "same"):
        return value
    def count(v):
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0
    if count(value):
        return value
    if isinstance(value, list) and len(value) == 2 and all(map(count, value)):
        return tuple(value)   # [left, right]: zeros before and after each sequence
    raise params.error("padding", f"must be \"valid\", \"same\", an integer >= 0 or "
                                  f"[left, right], not {value!r}")


def conv1d_layer(name: str, params: _Fields, path, weight, bias) -> tuple[Layer, tuple]:
    """The ``conv1d`` layer ``name`` and its float ``(weight, bias)``."""
    in_format, weight_format, out_format, rounding, overflow = _layer_formats(params)
    if weight.ndim != 3 or 0 in weight.shape:
        raise params.error("weights", f"array '{name}.weight' in {path.name} must be a "
                                      f"non-empty 3-D array (out_channels x in_channels/groups "
                                      f"x kernel_size), not shape {weight.shape}")
    arith = params.choice("arith", ("mult", "csd", "mcm"), "mult")
    options = {"arith": arith}
    if arith == "mult":
        options["parallelism"] = params.integer("parallelism", 1, 1)
    else:
        options["pipeline"] = params.integer("pipeline", 2, 0)
    saturate = params.boolean("saturate_weights", False)
    # Fields first: a field's own error must not be taken for the plan's.
    window = {"stride": params.integer("stride", 1, 1),
              "dilation": params.integer("dilation", 1, 1), "padding": _padding(params),
              "groups": params.integer("groups", 1, 1)}
    quantizer = params.choice("weight_quantizer", ("fixed", "pot", "pot2"), "fixed")
    try:
        plan = plan_conv1d(weight, bias, in_format=in_format, weight_format=weight_format,
                           out_format=out_format, rounding=rounding, overflow=overflow,
                           weight_quantizer=quantizer, saturate_weights=True, **window)
    except (TypeError, ValueError) as exc:
        raise _plan_error(params, exc, "weights") from None
    products = max(g.n_in * g.n_out for g in plan.groups)
    if options.get("parallelism", 1) > products:
        raise params.error("parallelism", f"must be between 1 and {products} (the products of "
                                          f"a group), not {options['parallelism']}")
    if plan.saturated_weights and not saturate:
        raise _saturation_error(params, plan.saturated_weights, path,
                                f"weight_format {weight_format}")
    return Layer(name, "conv1d", plan, MappingProxyType(options)), (weight, bias)


def pool_layer(name: str, params: _Fields, channels: int) -> Layer:
    """The ``pool`` layer ``name`` over ``channels`` channels."""
    kind = params.choice("pool", ("max", "avg"), None, required=True)
    kernel = params.integer("kernel_size", None, 1)
    fields = {"stride": params.integer("stride", kernel, 1),
              "padding": params.integer("padding", 0, 0), "in_format": params.format("in_format"),
              "out_format": (params.format("out_format") if "out_format" in params.table
                             else None),
              "rounding": params.choice("rounding", _ROUNDINGS, "half_up"),
              "overflow": params.choice("overflow", _OVERFLOWS, "sat")}
    try:
        plan = plan_pool1d(kind, kernel, channels=channels, **fields)
    except (TypeError, ValueError) as exc:
        raise _plan_error(params, exc, "kernel_size") from None
    return Layer(name, "pool", plan)


def flatten_layer(name: str, params: _Fields, steps: int, channels: int) -> Layer:
    """The ``flatten`` layer ``name`` of sequences of ``steps`` steps."""
    if steps < 1:
        raise params.error("kind", f"flatten gets sequences of {steps} steps: the layers before "
                                   f"leave nothing of sequence_length")
    return Layer(name, "flatten", plan_flatten(steps, channels))
