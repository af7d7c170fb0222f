"""The recurrent layers of a ``network`` spec: ``lstm`` and ``gru``.

::

    [params]
    sequence_length = 16         # time steps per sequence at the network's input

    [[params.layers]]
    kind = "lstm"                # PyTorch nn.LSTM (one layer, one direction): arrays
    name = "lstm"                # "lstm.weight_ih_l0" (4H x I), "lstm.weight_hh_l0" (4H x H),
    hidden_size = 8              # "lstm.bias_ih_l0", "lstm.bias_hh_l0" (4H; optional)
    bits = 16                    # the budget of the default formats (default 16)
    method = "pwl"               # how σ and tanh are computed: pwl | lut | hard
    # state_format, gate_format, cell_format (lstm), sigmoid_format, tanh_format, weight_format:
    # each replaces its default (hwnn.plans.rnn.default_formats); segments (pwl), table_size
    # (lut); arith, parallelism, pipeline as a dense layer (the MAC over [x; h]); lanes (the
    # core's folding of its activation and elementwise units); return_sequences = false to
    # give only each sequence's last hidden state (a vector; a layer "<name>_last" is added)

A ``gru`` layer is the same with 3H rows; ``reset_after = true`` (default) is PyTorch's variant,
``false`` the original GRU (ONNX ``linear_before_reset = 0``). The
layer takes the previous layer's output format (the network's ``in_format`` first) and gives
every step's hidden state in ``state_format``. Its weights are PyTorch's ``state_dict`` names
prefixed by the layer's name, as ``torch.nn.LSTM`` saves them.
"""

from __future__ import annotations

import re
from types import MappingProxyType

from ..plans.network import Layer
from ..plans.rnn import KINDS as GATES
from ..plans.rnn import plan_recurrent
from .fields import _Fields, _plan_error, _saturation_error

__all__ = ["RECURRENT_KINDS", "recurrent_arrays", "recurrent_layer"]

_FORMATS = ("state_format", "gate_format", "sigmoid_format", "tanh_format", "weight_format")
_COMMON = ("in_format", "hidden_size", "bits", "method", *_FORMATS, "segments", "table_size",
           "arith", "parallelism", "pipeline", "lanes", "saturate_weights", "return_sequences")
#: Fields of each recurrent layer kind.
RECURRENT_KINDS = {"lstm": (*_COMMON, "cell_format"), "gru": (*_COMMON, "reset_after")}

#: The arrays of one layer and direction, PyTorch's names (biases optional).
_ARRAYS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
# PyTorch's names of further layers (_l1, ...) and of the reverse direction (_reverse).
_OTHER = re.compile(r"(weight|bias)_(ih|hh)_l(\d+)(_reverse)?")


def recurrent_arrays(params: _Fields, name: str, path, arrays) -> tuple[dict, set]:
    """``({field: array}, keys used)`` of the layer ``name`` from the network's ``arrays``
    (read from ``path``; None when the spec has no weights file).

    Raises
    ------
    SpecError
        No weights file, a missing weight, or arrays of a stacked (``_l1``...) or
        bidirectional (``_reverse``) layer, which a layer of this kind does not run yet.
    """
    keys = {field: f"{name}.{field}" for field in _ARRAYS}
    if path is None:
        raise params.error("weights", f"missing: layer {name!r} needs arrays "
                                      f"'{keys['weight_ih_l0']}' and '{keys['weight_hh_l0']}'")
    for key in sorted(arrays):
        found = key.startswith(f"{name}.") and _OTHER.fullmatch(key[len(name) + 1:])
        if found and (found.group(3) != "0" or found.group(4)):
            what = ("a bidirectional layer's reverse direction" if found.group(4) else
                    f"layer {found.group(3)} of a stacked (num_layers > 1) module")
            raise params.error("weights", f"{path.name} holds '{key}', {what}: not supported "
                                          f"yet; give one direction of one layer (split a "
                                          f"stack into layers of their own)")
    for field in _ARRAYS[:2]:
        if keys[field] not in arrays:
            raise params.error("weights", f"{path.name} has no array '{keys[field]}' for layer "
                                          f"{name!r} (it has: "
                                          f"{', '.join(sorted(arrays)) or 'nothing'})")
    found = {field: arrays[key] for field, key in keys.items() if key in arrays}
    return found, {keys[field] for field in found}


def recurrent_layer(kind: str, name: str, params: _Fields, path, found) -> tuple[Layer, tuple]:
    """The ``lstm`` or ``gru`` layer ``name`` from its PyTorch arrays ``found``
    (:func:`recurrent_arrays`), and its float ``(weight_ih, weight_hh, bias_ih, bias_hh)``.

    Raises
    ------
    SpecError
        A bad field, ``hidden_size`` that the weights contradict, weights of the wrong shape or
        beyond ``weight_format`` (without ``saturate_weights``), or a format the parts refuse.
    """
    weight_ih, weight_hh = found["weight_ih_l0"], found["weight_hh_l0"]
    gates = GATES[kind]
    if weight_hh.ndim != 2 or weight_hh.shape[0] != gates * weight_hh.shape[1]:
        raise params.error("weights", f"array '{name}.weight_hh_l0' in {path.name} must have "
                                      f"shape ({gates}·hidden_size, hidden_size) for a {kind}, "
                                      f"not {weight_hh.shape}")
    if "hidden_size" in params.table:
        hidden = params.integer("hidden_size", None, 1)
        if hidden != weight_hh.shape[1]:
            raise params.error("hidden_size", f"is {hidden}, but '{name}.weight_hh_l0' in "
                                              f"{path.name} has shape {weight_hh.shape}: "
                                              f"hidden size {weight_hh.shape[1]}")
    formats = {key: params.format(key) for key in (*_FORMATS, "cell_format")
               if key in params.table}
    options = {}
    arith = params.choice("arith", ("mult", "csd", "mcm"), "mult")
    if arith != "mult":
        options["arith"] = arith
        if "parallelism" in params.table:
            raise params.error("parallelism", f"applies to arith \"mult\", not {arith!r}")
        if "pipeline" in params.table:
            options["pipeline"] = params.integer("pipeline", None, 0)
    elif "parallelism" in params.table:
        options["parallelism"] = params.integer("parallelism", None, 1)
    if "lanes" in params.table:
        options["lanes"] = params.integer("lanes", None, 1)
    activation = {key: params.integer(key, None, 1) for key in ("segments", "table_size")
                  if key in params.table}
    reset_after = params.boolean("reset_after", True) if kind == "gru" else True
    saturate = params.boolean("saturate_weights", False)
    fields = dict(in_format=params.format("in_format"),
                  bits=params.integer("bits", 16, 2, 32),
                  method=params.choice("method", ("pwl", "lut", "hard"), "pwl"))
    try:
        plan = plan_recurrent(kind, weight_ih, weight_hh, found.get("bias_ih_l0"),
                              found.get("bias_hh_l0"), **fields, reset_after=reset_after,
                              activation_options=activation, saturate_weights=True, **formats)
    except (TypeError, ValueError) as exc:
        raise _plan_error(params, exc, "weights") from None
    if plan.gates.saturated_weights and not saturate:
        raise _saturation_error(params, plan.gates.saturated_weights, path,
                                f"weight_format {plan.gates.weight_format}")
    products = plan.gates.n_in * plan.gates.n_out
    if options.get("parallelism", 1) > products:
        raise params.error("parallelism", f"must be between 1 and {products} (the products of "
                                          f"the MAC over [x; h]), not {options['parallelism']}")
    floats = (weight_ih, weight_hh, found.get("bias_ih_l0"), found.get("bias_hh_l0"))
    return Layer(name, kind, plan, MappingProxyType(options)), floats
