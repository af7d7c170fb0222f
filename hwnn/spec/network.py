"""The ``network`` spec kind: layers in a chain, weights from one ``.npz`` keyed by layer name.

::

    [core]
    kind = "network"
    name = "mlp"

    [params]
    in_format = "SQ(1,7)"        # the network's input
    weights = "mlp.npz"          # arrays "<layer>.weight" and "<layer>.bias" (PyTorch's names)
    weight_format = "SQ(1,7)"    # any layer field here is a default for every layer that takes it
    target_ii = 16               # optional: each folded dense layer's parallelism for this ii

    [[params.layers]]
    kind = "dense"
    name = "fc1"
    out_format = "SQ(4,4)"
    parallelism = 8

    [[params.layers]]
    kind = "activation"
    name = "act1"
    function = "tanh"
    out_format = "SQ(1,7)"

Each layer takes the fields of its kind's own spec, except ``in_format`` (the previous layer's
``out_format``; the network's ``in_format`` for the first), ``weights`` (the network's file) and
``lanes`` (an activation has as many lanes as the layer before has outputs; an ``lstm``,
``gru``, ``lstm_cell`` or ``gru_cell`` layer's ``lanes`` is its core's folding,
:mod:`hwnn.spec.recurrent`). A ``binary_dense`` layer (:mod:`hwnn.spec.binary`) reads
``<name>.weight`` (bits or ±1) and optionally ``<name>.thresholds`` and ``<name>.descending``
or batch-norm arrays; a ``threshold`` layer optionally ``<name>.thresholds`` (without them it is
the sign).
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

from ..cores.network import Network
from ..plans.network import Layer, balance, plan_network
from ..plans.pool import plan_last_step
from ..ref.network import network, network_float
from .binary import BINARY_KINDS, binary_dense_layer, threshold_layer
from .fields import Design, SpecError, _Fields, _load_arrays, _plan_error
from .layers import _activation_design, _dense_design
from .recurrent import CELL_KINDS, RECURRENT_KINDS, cell_layer, recurrent_arrays, recurrent_layers
from .sequence import conv1d_layer, flatten_layer, pool_layer

__all__ = ["network_design"]

_LAYER_KINDS = ("dense", "activation", "conv1d", "pool", "flatten", *RECURRENT_KINDS,
                *CELL_KINDS, *BINARY_KINDS)
# Layer kinds that need a sequence_length (they run over sequences from the input on).
_SEQUENCE_FIRST = ("conv1d", "pool", *RECURRENT_KINDS)
# Fields a layer table may not set: the network decides them.
_SET_BY_NETWORK = {"in_format": "the previous layer's out_format (the network's in_format for "
                                "the first layer)",
                   "weights": "the network's weights file, keyed by layer name",
                   "lanes": "the number of outputs of the layer before",
                   "always_ready": "a network's inner streams, which always have ready"}


def _npz_arrays(params: _Fields, base_dir) -> tuple:
    """``(path, {name: array})`` of the network's weights file, or ``(None, {})``."""
    if "weights" not in params.table:
        return None, {}
    path, _ = _load_arrays(params, "weights", base_dir, {})
    with np.load(path, allow_pickle=False) as archive:
        return path, {name: np.asarray(archive[name]) for name in archive.files}


def _layer_params(params: _Fields, table, index: int, kind: str, allowed_of_kind,
                  in_format) -> _Fields:
    prefix = f"params.layers[{index}]"
    for key, why in _SET_BY_NETWORK.items():
        # A recurrent layer's lanes fold its units: its own choice, not the network's; a
        # threshold layer checks its own (it takes them when first).
        if key in table and not (key == "lanes" and kind in (*RECURRENT_KINDS, *CELL_KINDS,
                                                              "threshold")):
            raise SpecError(params.source, f"{prefix}.{key}", f"is set by the network: {why}")
    _Fields(table, prefix, params.source, ("kind", "name", *allowed_of_kind))  # unknown fields
    defaults = {key: value for key, value in params.table.items()
                if key in allowed_of_kind and key not in _SET_BY_NETWORK}
    merged = {**defaults, **{k: v for k, v in table.items() if k not in ("kind", "name")},
              "in_format": str(in_format)}
    return _Fields(merged, prefix, params.source, allowed_of_kind)


def network_design(core: dict, params: _Fields, base_dir, source, kinds) -> Design:
    """A ``network`` spec (``kinds`` maps each layer kind to its allowed fields)."""
    tables = params.raw("layers", required=True)
    if not isinstance(tables, list) or not tables:
        raise params.error("layers", f"must be a non-empty array of tables ([[params.layers]]), "
                                     f"not {tables!r}")
    path, arrays = _npz_arrays(params, base_dir)
    in_format = params.format("in_format")
    layers, designs, used, floats = [], [], set(), {}
    width, flattened, first_lanes = None, None, None
    steps = steps_in = (params.integer("sequence_length", None, 1)
                        if "sequence_length" in params.table else None)
    for index, table in enumerate(tables):
        if not isinstance(table, dict):
            raise params.error(f"layers[{index}]", f"must be a table, not {table!r}")
        head = _Fields(table, f"params.layers[{index}]", source, tuple(table))
        kind = head.choice("kind", _LAYER_KINDS, None, required=True)
        name = head.string("name", required=True)
        layer_params = _layer_params(params, table, index, kind, kinds[kind], in_format)
        if kind in ("dense", "conv1d"):
            keys = {"weight": f"{name}.weight", "bias": f"{name}.bias"}
            if path is None:
                raise params.error("weights", f"missing: {kind} layer {name!r} needs arrays "
                                              f"'{keys['weight']}' (and '{keys['bias']}')")
            if keys["weight"] not in arrays:
                raise params.error("weights", f"{path.name} has no array '{keys['weight']}' for "
                                              f"layer {name!r} (it has: "
                                              f"{', '.join(sorted(arrays)) or 'nothing'})")
            used.update(k for k in keys.values() if k in arrays)
            weight, bias = arrays[keys["weight"]], arrays.get(keys["bias"])
        if kind in RECURRENT_KINDS:
            found, keys = recurrent_arrays(layer_params, name, path, arrays)
            used.update(keys)
            stack = recurrent_layers(kind, name, layer_params, path, found, steps)
            for layer, weights in stack:   # num_layers of them: all but the last go in here
                floats[layer.name] = weights
            layers.extend(layer for layer, _ in stack[:-1])
            layer = stack[-1][0]
            if not layer_params.boolean("return_sequences", True):  # the last step alone
                layers.append(layer)
                in_format, width = layer.out_format, layer.lanes(0)[1]
                layer = Layer(f"{name}_last", "last", plan_last_step(width, steps or 1))
        elif kind in CELL_KINDS:
            layer, floats[name], keys = cell_layer(kind, name, layer_params, path, arrays)
            used.update(keys)
        elif kind == "threshold":
            layer, keys, width = threshold_layer(name, layer_params, path, arrays, in_format,
                                                 width)
            first_lanes = width if not layers else first_lanes  # a first activation's input
            used.update(keys)
        elif kind in BINARY_KINDS:
            layer, keys = binary_dense_layer(name, layer_params, path, arrays, in_format)
            used.update(keys)
        elif kind == "conv1d":
            layer, floats[name] = conv1d_layer(name, layer_params, path, weight, bias)
            steps = layer.plan.out_length(steps) if steps is not None else None
        elif kind == "pool":
            if width is None:
                raise layer_params.error("kind", "a pool cannot be the first layer: the "
                                                 "network takes its input width from the "
                                                 "first layer (start with a conv1d)")
            layer = pool_layer(name, layer_params, width)
            steps = layer.plan.out_length(steps) if steps is not None else None
        elif kind == "flatten":
            if steps is None:
                raise params.error("sequence_length", "missing: a flatten needs the length of "
                                                      "the network's input sequences")
            layer = flatten_layer(name, layer_params, steps, width)
        if steps == 0:
            raise params.error("sequence_length", f"{steps_in} steps leave no output step after "
                                                  f"layer {name!r}: give longer sequences")
        if kind in ("conv1d", "pool", "flatten", *RECURRENT_KINDS, *CELL_KINDS, *BINARY_KINDS):
            layers.append(layer)
            fmt = layer.out_format if layer.out_format is not None else in_format
            in_format, width = fmt, layer.lanes(width)[1]
            flattened = layer.plan if kind == "flatten" else None
            continue
        if kind == "dense":
            if flattened is not None:  # PyTorch's channel-major columns, in stream order
                weight = flattened.stream_weight(weight)
            layer_arrays = (path, {"weight": weight, **({} if bias is None else {"bias": bias})})
            design = _dense_design({"kind": kind, "name": name}, layer_params, base_dir, source,
                                   arrays=layer_arrays)
            options = {k: v for k, v in design.options.items() if k != "always_ready"}
            floats[name] = (weight, bias)
        else:
            layer_params.table["lanes"] = width or 1
            design = _activation_design({"kind": kind, "name": name}, layer_params, base_dir,
                                        source)
            options = {}
            first_lanes = design.in_lanes if not layers else first_lanes
        if kind == "dense":  # an activation between a flatten and its dense keeps the order
            flattened = None
        layers.append(Layer(name, kind, design.plan, MappingProxyType(options)))
        designs.append(design)
        in_format, width = design.out_format, design.out_lanes
    unused = sorted(set(arrays) - used)
    if unused:
        raise params.error("weights", f"{path.name} has arrays no layer uses: "
                                      f"{', '.join(unused)} (dense layers read '<name>.weight' "
                                      f"and '<name>.bias', lstm and gru layers "
                                      f"'<name>.weight_ih_l0'..., '_l1'... up to num_layers, "
                                      f"'_reverse' when bidirectional, lstm_cell and gru_cell "
                                      f"layers '<name>.weight_ih'..., binary_dense layers "
                                      f"'<name>.weight', '<name>.thresholds', "
                                      f"'<name>.descending')")
    target_ii = params.integer("target_ii", None, 1) if "target_ii" in params.table else None
    if steps_in is None and layers[0].kind in _SEQUENCE_FIRST:
        raise params.error("sequence_length", "missing: the network runs over sequences; give "
                                              "their length (time steps)")
    try:
        plan = plan_network(layers, n_in=first_lanes if layers[0].kind == "activation"
                            else None)
        if target_ii is not None:
            plan = balance(plan, target_ii)
    except (TypeError, ValueError) as exc:
        raise _plan_error(params, exc, "layers") from None
    return Design(
        kind="network", name=core["name"], source=str(source), plan=plan,
        in_format=plan.in_format, out_format=plan.out_format, in_lanes=plan.n_in,
        out_lanes=plan.n_out, build=lambda: Network(plan),
        reference=lambda x, initial_states=None: network(plan, x, initial_states),
        notes=tuple(note for design in designs for note in design.notes),
        float_model=lambda x, initial_states=None: network_float(plan, floats, x,
                                                                 initial_states),
        sequence_length=steps_in if plan.sequences[0] else None,
    )
