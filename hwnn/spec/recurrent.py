"""The recurrent layers of a ``network`` spec: ``lstm`` and ``gru``, and the cells
``lstm_cell`` and ``gru_cell``.

::

    [params]
    sequence_length = 16         # time steps per sequence at the network's input

    [[params.layers]]
    kind = "lstm"                # PyTorch nn.LSTM: arrays
    name = "lstm"                # "lstm.weight_ih_l0" (4H x I), "lstm.weight_hh_l0" (4H x H),
    hidden_size = 8              # "lstm.bias_ih_l0", "lstm.bias_hh_l0" (4H; optional)
    bidirectional = false        # true: also "lstm.weight_ih_l0_reverse"... (PyTorch's names)
    num_layers = 1               # N: also "lstm.weight_ih_l1"... up to l{N-1}
    bits = 16                    # the budget of the default formats (default 16)
    method = "pwl"               # how σ and tanh are computed: pwl | lut | poly | taylor | hard
    # state_format, gate_format, cell_format (lstm), sigmoid_format, tanh_format, weight_format:
    # each replaces its default (hwnn.plans.rnn.default_formats); segments (pwl or poly), degree
    # (poly), order (taylor), table_size (lut), each replacing its default in
    # hwnn.plans.rnn.DEFAULT_ACTIVATION_OPTIONS; arith, parallelism, pipeline as a dense layer (the
    # MAC over [x; h]); lanes (the core's folding of its activation and elementwise units); cuts =
    # N (arith "mcm" or "csd"): the whole step as one datapath with N register stages, N + 1 cycles
    # a step (hwnn.cores.recurrent_unrolled.UnrolledRecurrent); return_sequences = false to give
    # only each sequence's last output step (a vector; a layer "<name>_last" is added); max_steps
    # (bidirectional): the longest sequence its core stores (default: the length of the sequences
    # reaching it, from sequence_length); initial_state = true: each
    # sequence starts from a state loaded through the network's stream i_state_<name>

A ``gru`` layer is the same with 3H rows; ``reset_after = true`` (default) is PyTorch's variant,
``false`` the original GRU (ONNX ``linear_before_reset = 0``). The
layer takes the previous layer's output format (the network's ``in_format`` first) and gives
every step's hidden state in ``state_format``. Its weights are PyTorch's ``state_dict`` names
prefixed by the layer's name, as ``torch.nn.LSTM`` saves them.

``bidirectional`` and ``num_layers`` are PyTorch's. A bidirectional layer gives
``[h_forward(t); h_reverse(t)]`` at each step (2H values), the reverse direction running from
each sequence's last step back to its first (a network layer of kind ``bidirectional``,
:class:`~hwnn.cores.bidirectional.Bidirectional`: it stores each sequence, so its first output
comes after the sequence's last step). A stack of ``num_layers = N`` is N layers of the
network, ``<name>`` then ``<name>_l1`` ... ``<name>_l{N-1}``, layer ``k`` taking layer
``k − 1``'s outputs (2H wide when bidirectional), as PyTorch's ``nn.LSTM`` does in inference
(no dropout). Every direction of every layer gets its own default formats from its own weights
(and the format fields given here, which apply to all of them).

With ``initial_state = true`` (default false) every layer of the module (each of a stack, both
directions of a bidirectional one) starts each sequence from a loaded state instead of zeros,
PyTorch's ``lstm(x, (h0, c0))``: the network gets an input stream ``i_state_<layer name>`` per
such layer (:func:`hwnn.cores.network.state_port`), one transfer per sequence, and a sequence's
first step waits for it.

``lstm_cell`` and ``gru_cell`` layers (PyTorch's ``nn.LSTMCell``/``nn.GRUCell``, arrays
``<name>.weight_ih``, ``<name>.weight_hh`` and optional ``<name>.bias_ih``, ``<name>.bias_hh``)
take vectors: one step per vector, its state loaded with it on ``i_state_<name>``, giving
``[h'; c']`` (``h'`` for a GRU) in the plan's ``next_state_format``
(:class:`~hwnn.cores.cell_layer.CellLayer`). They take the fields above but the sequence ones
(``return_sequences``, ``initial_state``, ``bidirectional``, ``num_layers``, ``max_steps``).

With ``return_sequences = false`` the layer gives each sequence's last output step,
``output[:, -1]``. For a bidirectional layer that is ``[h_forward(T); h_reverse(T)]``: the
reverse half is the reverse direction's state after its FIRST step (it starts at the last
step), not PyTorch's ``h_n[1]`` (the reverse state after the whole sequence, at ``t = 0``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from types import MappingProxyType

from ..cores._component import inspected
from ..cores.recurrent_unrolled import UnrolledRecurrent
from ..plans.bidirectional import BidirectionalPlan
from ..plans.network import Layer
from ..plans.poly import MAX_DEGREE, MAX_ORDER
from ..plans.rnn import KINDS as GATES
from ..plans.rnn import METHODS, plan_recurrent
from .fields import _Fields, _plan_error, _saturation_error
from .layers import check_applies

__all__ = ["CELL_KINDS", "RECURRENT_KINDS", "cell_layer", "recurrent_arrays", "recurrent_layers"]

_FORMATS = ("state_format", "gate_format", "sigmoid_format", "tanh_format", "weight_format")
#: The activation options of a recurrent layer and the methods each applies to.
_ACTIVATION_FIELDS = {"segments": ("pwl", "poly"), "degree": ("poly",), "order": ("taylor",),
                      "table_size": ("lut",)}
_COMMON = ("in_format", "hidden_size", "bits", "method", *_FORMATS, *_ACTIVATION_FIELDS,
           "arith", "parallelism", "pipeline", "lanes", "cuts", "saturate_weights",
           "return_sequences", "initial_state",
           "bidirectional", "num_layers", "max_steps")
#: Fields of each recurrent layer kind.
RECURRENT_KINDS = {"lstm": (*_COMMON, "cell_format"), "gru": (*_COMMON, "reset_after")}
_CELL = tuple(key for key in _COMMON if key not in ("return_sequences", "initial_state",
                                                     "bidirectional", "num_layers",
                                                     "max_steps"))
#: Fields of each cell layer kind (one step per vector, PyTorch's LSTMCell and GRUCell).
CELL_KINDS = {"lstm_cell": (*_CELL, "cell_format"), "gru_cell": (*_CELL, "reset_after")}

#: The arrays of one layer and direction, PyTorch's names without the ``_l{k}`` suffix
#: (biases optional).
_FIELDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
# PyTorch's names of every layer (_l0, _l1, ...) and direction (_reverse).
_KEY = re.compile(r"(weight|bias)_(ih|hh)_l(\d+)(_reverse)?")


def _shape(params: _Fields) -> tuple[int, int]:
    """``(num_layers, directions)`` the layer's fields ask for."""
    layers = params.integer("num_layers", 1, 1)
    return layers, 2 if params.boolean("bidirectional", False) else 1


def _key(name: str, field: str, layer: int, direction: int) -> str:
    return f"{name}.{field}_l{layer}{'_reverse' if direction else ''}"


def _cell_key(name: str, field: str, layer: int = 0, direction: int = 0) -> str:
    """A cell's array (PyTorch's ``LSTMCell``/``GRUCell`` names: no layer, no direction)."""
    return f"{name}.{field}"


def cell_layer(kind: str, name: str, params: _Fields, path, arrays) -> tuple[Layer, tuple, set]:
    """The network layer of the cell ``name`` (``kind`` "lstm_cell" or "gru_cell") from the
    network's ``arrays``: PyTorch's ``LSTMCell``/``GRUCell`` ``state_dict`` under the layer's
    name, ``<name>.weight_ih``, ``<name>.weight_hh`` and, when present, ``<name>.bias_ih``,
    ``<name>.bias_hh``. Returns ``(layer, float weights, keys used)``.

    Raises
    ------
    SpecError
        No weights file or a missing weight (the message names the key), and what
        :func:`recurrent_layers` refuses.
    """
    keys = {field: _cell_key(name, field) for field in _FIELDS}
    if path is None:
        raise params.error("weights", f"missing: layer {name!r} needs arrays "
                                      f"'{keys['weight_ih']}' and '{keys['weight_hh']}'")
    for field in _FIELDS[:2]:
        if keys[field] not in arrays:
            have = ", ".join(sorted(arrays)) or "nothing"
            raise params.error("weights", f"{path.name} has no array '{keys[field]}' for "
                                          f"layer {name!r} (PyTorch's {kind[:-5].upper()}Cell "
                                          f"names; it has: {have})")
    found = {(0, 0): {field: arrays[key] for field, key in keys.items() if key in arrays}}
    [(layer, floats)] = recurrent_layers(kind.removesuffix("_cell"), name, params, path, found,
                                         None, cell=True)
    return replace(layer, kind=kind), floats, {key for key in keys.values() if key in arrays}


def recurrent_arrays(params: _Fields, name: str, path, arrays) -> tuple[dict, set]:
    """``({(layer, direction): {field: array}}, keys used)`` of the module ``name`` from the
    network's ``arrays`` (read from ``path``; None when the spec has no weights file):
    ``num_layers`` layers, with ``bidirectional`` two directions (0 forward, 1 reverse), and
    fields ``weight_ih``, ``weight_hh`` and, when present, ``bias_ih``, ``bias_hh``.

    Raises
    ------
    SpecError
        No weights file, a missing weight (the message names its key), or arrays of a layer
        beyond ``num_layers`` or of a reverse direction when ``bidirectional`` is false (the
        message names the key and the field to set).
    """
    layers, directions = _shape(params)
    if path is None:
        raise params.error("weights", f"missing: layer {name!r} needs arrays "
                                      f"'{_key(name, 'weight_ih', 0, 0)}' and "
                                      f"'{_key(name, 'weight_hh', 0, 0)}'")
    for key in sorted(arrays):
        found = key.startswith(f"{name}.") and _KEY.fullmatch(key[len(name) + 1:])
        if not found:
            continue
        if int(found.group(3)) >= layers:
            raise params.error("weights", f"{path.name} holds '{key}', layer "
                                          f"{found.group(3)} of a stacked module, but "
                                          f"num_layers is {layers}: set num_layers = "
                                          f"{int(found.group(3)) + 1} (or drop the array)")
        if found.group(4) and directions == 1:
            raise params.error("weights", f"{path.name} holds '{key}', a reverse direction, "
                                          f"but bidirectional is false: set bidirectional = "
                                          f"true (or drop the array)")
    found, used = {}, set()
    for layer in range(layers):
        for direction in range(directions):
            keys = {field: _key(name, field, layer, direction) for field in _FIELDS}
            for field in _FIELDS[:2]:
                if keys[field] not in arrays:
                    shape = [f"num_layers = {layers}"] * (layers > 1) + \
                        ["bidirectional = true"] * (directions == 2)
                    why = f" ({', '.join(shape)})" if shape else ""
                    raise params.error("weights", f"{path.name} has no array '{keys[field]}' "
                                                  f"for layer {name!r}{why} (it has: "
                                                  f"{', '.join(sorted(arrays)) or 'nothing'})")
            found[layer, direction] = {field: arrays[key] for field, key in keys.items()
                                       if key in arrays}
            used.update(key for key in keys.values() if key in arrays)
    return found, used


def _options(params: _Fields) -> dict:
    """The core options of the fields: arith, parallelism, pipeline, lanes, cuts."""
    options = {}
    arith = params.choice("arith", ("mult", "csd", "mcm"), "mult")
    if "cuts" in params.table:   # the whole step as one datapath (UnrolledRecurrent)
        if arith == "mult":
            raise params.error("cuts", "needs a shift-add MAC (arith = \"mcm\" or \"csd\"): "
                                       "the unrolled step has every weight as a constant")
        for other in ("parallelism", "pipeline", "lanes"):
            if other in params.table:
                raise params.error(other, "does not apply with cuts (the unrolled step has "
                                          "every product at once, no pipelined parts, no lanes)")
        return {"arith": arith, "cuts": params.integer("cuts", None, 0),
                **({"initial_state": True} if params.boolean("initial_state", False) else {})}
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
    if params.boolean("initial_state", False):
        options["initial_state"] = True
    return options


def _activation_options(params: _Fields) -> dict:
    """The σ and tanh plans' options the fields set (each checked against ``method``)."""
    check_applies(params, params.choice("method", METHODS, "pwl"), _ACTIVATION_FIELDS)
    maximum = {"degree": MAX_DEGREE, "order": MAX_ORDER}
    options = {key: params.integer(key, None, 1, maximum.get(key)) for key in _ACTIVATION_FIELDS
               if key in params.table}
    # Signed gates (the default formats' always) fold σ and tanh, and a layer has no
    # symmetric field to say otherwise: each stored piece serves both signs.
    signed = "gate_format" not in params.table or params.format("gate_format").signed
    if signed and options.get("segments", 2) % 2:
        raise params.error("segments", f"must be even (σ and tanh are folded: each stored "
                                       f"piece serves both signs), not {options['segments']}")
    return options


def _check_cuts(params: _Fields, plan, options) -> None:
    """Raise a SpecError on ``cuts`` if the unrolled core of ``plan`` refuses it (more cuts than
    its step has layer boundaries)."""
    try:
        inspected(UnrolledRecurrent(replace(plan, reverse=False), arith=options["arith"],
                                    cuts=options["cuts"]))
    except (TypeError, ValueError) as exc:
        raise params.error("cuts", str(exc)) from None


def _direction(kind, name, params, path, arrays, key, in_format, settings, reverse):
    """One direction's plan from its arrays (``key`` names its ``weight_ih``)."""
    gates, hidden = GATES[kind], arrays["weight_hh"].shape[-1]
    weight_ih, weight_hh = arrays["weight_ih"], arrays["weight_hh"]
    if weight_ih.ndim != 2 or weight_ih.shape[1] != settings["width"]:
        raise params.error("weights", f"array '{key}' in {path.name} must have shape "
                                      f"({gates * hidden}, {settings['width']}) "
                                      f"({settings['why']}), not {weight_ih.shape}")
    try:
        plan = plan_recurrent(kind, weight_ih, weight_hh, arrays.get("bias_ih"),
                              arrays.get("bias_hh"), in_format=in_format,
                              bits=settings["bits"], method=settings["method"],
                              reset_after=settings["reset_after"], reverse=reverse,
                              activation_options=settings["activation"],
                              saturate_weights=True, **settings["formats"])
    except (TypeError, ValueError) as exc:
        raise _plan_error(params, exc, "weights") from None
    if plan.gates.saturated_weights and not settings["saturate"]:
        raise _saturation_error(params, plan.gates.saturated_weights, path,
                                f"weight_format {plan.gates.weight_format}")
    products = plan.gates.n_in * plan.gates.n_out
    if settings["parallelism"] > products:
        where = "" if settings["single"] else f" of '{key}'"
        raise params.error("parallelism", f"must be between 1 and {products} (the products of "
                                          f"the MAC over [x; h]{where}), not "
                                          f"{settings['parallelism']}")
    floats = (weight_ih, weight_hh, arrays.get("bias_ih"), arrays.get("bias_hh"))
    return plan, floats


def recurrent_layers(kind: str, name: str, params: _Fields, path, found,
                     steps: int | None, *, cell: bool = False) -> list[tuple[Layer, tuple]]:
    """The network layers of the ``lstm`` or ``gru`` module ``name`` (its ``num_layers``
    layers, each ``bidirectional`` or not) from its PyTorch arrays ``found``
    (:func:`recurrent_arrays`), each with its float weights: ``(weight_ih, weight_hh,
    bias_ih, bias_hh)`` of one direction, or ``(forward, reverse)`` such tuples. ``steps`` is
    the length of the sequences reaching the module (None: unknown), a bidirectional layer's
    default ``max_steps``. ``cell``: the arrays are a cell's (``<name>.weight_ih``, no
    ``_l0``), as messages name them.

    Raises
    ------
    SpecError
        A bad field, ``hidden_size`` that the weights contradict, weights of the wrong shape
        (layer ``k > 0`` takes layer ``k − 1``'s outputs) or beyond ``weight_format`` (without
        ``saturate_weights``), a format the parts refuse, or a bidirectional layer without
        ``max_steps`` or a ``sequence_length``.
    """
    layers, directions = _shape(params)
    gates = GATES[kind]
    keyof = _cell_key if cell else _key
    first = found[0, 0]["weight_hh"]
    key_hh = keyof(name, "weight_hh", 0, 0)
    if first.ndim != 2 or first.shape[0] != gates * first.shape[1]:
        raise params.error("weights", f"array '{key_hh}' in {path.name} must have shape "
                                      f"({gates}·hidden_size, hidden_size) for a {kind}, not "
                                      f"{first.shape}")
    hidden = first.shape[1]
    if "hidden_size" in params.table:
        given = params.integer("hidden_size", None, 1)
        if given != hidden:
            raise params.error("hidden_size", f"is {given}, but '{key_hh}' in {path.name} has "
                                              f"shape {first.shape}: hidden size {hidden}")
    options = _options(params)
    if directions == 2:
        if "max_steps" in params.table:
            options["max_steps"] = params.integer("max_steps", None, 1)
        elif steps is None:
            raise params.error("max_steps", "missing: a bidirectional layer stores each "
                                            "sequence; give the network's sequence_length or "
                                            "max_steps")
        else:
            options["max_steps"] = steps
    elif "max_steps" in params.table:
        raise params.error("max_steps", "applies to a bidirectional layer (bidirectional = "
                                        "true), which stores its sequences")
    settings = dict(
        bits=params.integer("bits", 16, 2, 32),
        method=params.choice("method", METHODS, "pwl"),
        reset_after=params.boolean("reset_after", True) if kind == "gru" else True,
        activation=_activation_options(params),
        formats={key: params.format(key) for key in (*_FORMATS, "cell_format")
                 if key in params.table},
        saturate=params.boolean("saturate_weights", False),
        parallelism=options.get("parallelism", 1), single=(layers, directions) == (1, 1))
    in_format, stack = params.format("in_format"), []
    for layer in range(layers):
        settings["width"] = (found[0, 0]["weight_ih"].shape[-1] if not layer
                             else directions * hidden)
        settings["why"] = (f"{gates} gates of hidden size {hidden}, "
                           + (f"the input size of '{keyof(name, 'weight_ih', 0, 0)}'"
                              if not layer else
                              f"layer {layer} takes layer {layer - 1}'s {directions}·{hidden} "
                              f"outputs"))
        plans, floats = zip(*(_direction(kind, name, params, path, found[layer, d],
                                         keyof(name, "weight_ih", layer, d), in_format,
                                         settings, bool(d))
                              for d in range(directions)))
        if "cuts" in options:
            for plan in plans:
                _check_cuts(params, plan, options)
        layer_name = f"{name}_l{layer}" if layer else name
        if directions == 2:
            try:
                plan = BidirectionalPlan(*plans)
            except (TypeError, ValueError) as exc:
                raise _plan_error(params, exc, "weights") from None
            stack.append((Layer(layer_name, "bidirectional", plan, MappingProxyType(options)),
                          floats))
        else:
            stack.append((Layer(layer_name, kind, plans[0], MappingProxyType(options)),
                          floats[0]))
        in_format = plans[0].state_format
    return stack
