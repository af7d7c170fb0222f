"""Read an ONNX graph that is a chain of layers (an MLP or a 1-D CNN) into float layers.

The graph must be a chain: one input of shape (batch, features...) or, for a 1-D CNN,
(batch, channels, steps), one output, and every node on the path between them, each taking the
previous node's output as its data input and only constants (initializers or ``Constant``
nodes) otherwise. Operators:

- ``Gemm`` (``transA = 0``, ``alpha = beta = 1``; ``transB`` either way), ``MatMul`` by a
  constant, followed by an optional ``Add`` of a constant (the bias);
- ``Conv`` with a 1-D kernel (weight (out, in/group, k), optional bias input; ``strides``,
  ``dilations``, ``group``): ``conv1d`` layers. Padding: ``pads`` ``[p, p]`` (or ``auto_pad``
  ``VALID``, or ``SAME_UPPER``/``SAME_LOWER`` when they pad both sides alike) is ``padding = p``;
  ``[p, p + 1]`` with stride 1 that is PyTorch's ``padding = "same"`` (``SAME_UPPER``) is
  ``"same"``; any other asymmetric padding is refused (hwnn's spec has no (left, right) pair);
- ``MaxPool``, ``AveragePool`` with a 1-D kernel (``strides`` default 1 as in ONNX, symmetric
  ``pads`` up to ``kernel_shape // 2``): ``pool`` layers. Refused: ``ceil_mode = 1``,
  ``dilations`` other than 1, and an AveragePool with padding and ``count_include_pad = 0``
  (ONNX's default; hwnn counts padding as zeros, PyTorch's default, so export with
  ``count_include_pad=True``); ``GlobalMaxPool``/``GlobalAveragePool`` are pools over the
  whole sequence;
- ``BatchNormalization`` right after a Gemm, MatMul or Conv: folded into its weights and bias
  (float64); after a Gemm or MatMul whose weights are all ±1 and before a ``Sign``, a
  binarized layer's thresholds instead (:mod:`hwnn.io.onnx_binary`);
- ``Sign`` (ties to +1, where ONNX gives 0): with the batch norm before it, part of a
  binarized layer; elsewhere (the input's binarization) a sign of its own; QONNX
  ``BipolarQuant`` of scale 1 likewise, and ``BipolarQuant``/``Quant`` of constants (weights)
  evaluated into constants (:mod:`hwnn.io.onnx_binary`);
- ``Relu``, ``Sigmoid``, ``Tanh``; ``LeakyRelu`` with ``alpha = 2**-k`` (``k`` = 1..16);
  ``HardSigmoid`` with ``alpha = 1/6, beta = 1/2`` (PyTorch's, hwnn's ``hard_sigmoid``);
  ``Clip`` to ``[0, 6]`` (relu6), ``[-1, 1]`` (hard_tanh) or ``[0, inf)`` (relu): over vectors
  or sequences alike;
- ``Flatten`` (``axis = 1``) and ``Reshape`` to ``(batch, features)``: after sequence layers a
  ``flatten`` layer (PyTorch's channel-major vector, the order the next Gemm's weights keep;
  of a time-major (batch, steps, hidden) tensor after an LSTM or GRU, the next Gemm's weights
  are read time-major); before any, a no-op on the data;
- ``LSTM``, ``GRU`` (forward or bidirectional; a stacked module is one node per layer) and the
  ``Transpose``, ``Squeeze``, ``Unsqueeze`` and (merging a bidirectional ``Y``'s directions)
  ``Reshape`` nodes around them: :mod:`hwnn.io.onnx_rnn`, which follows every sequence
  tensor's axes.

The sequence length (the ``sequence_length`` of the spec) is the input's static time
dimension, or ``sequence_length`` when the graph leaves it symbolic. ONNX holds sequences as
(batch, channels, steps), hwnn's streams as (steps, channels): inputs to ``hwnn sim --inputs``
are (sequences, steps, channels); no weight is transposed (conv weights stay (out, in/group,
k)). A 2-D ``Conv`` or pooling raises :class:`UnsupportedLayer`; any other operator raises
:class:`ModelError` naming the node. The ``onnx`` package is imported only here, when a model
is read.
"""

from __future__ import annotations

import math

import numpy as np

from ..ref.windows import same_padding
from .model import (FloatActivation, FloatBinaryDense, FloatConv1d, FloatDense, FloatFlatten,
                    FloatPool, FloatRecurrent, FloatSign, ModelError, Names, UnsupportedLayer,
                    fold_batchnorm, leaky_shift_of)
from .onnx_binary import QONNX_OPS, batchnorm_before_sign, binarize, fold_quantizer, is_sign
from .onnx_rnn import (AXES, DIRECTIONS_AXIS, RESHAPES, first_axes, loaded_states,
                       merge_directions, rearrange, recurrent_node, strip, zero_states)

__all__ = ["read_onnx", "SUPPORTED_OPS"]

SUPPORTED_OPS = ("Gemm", "MatMul", "Add", "Conv", "MaxPool", "AveragePool", "GlobalMaxPool",
                 "GlobalAveragePool", "BatchNormalization", "Relu", "LeakyRelu", "Sigmoid",
                 "Tanh", "HardSigmoid", "Clip", "Flatten", "Reshape", "LSTM", "GRU", "Sign",
                 *QONNX_OPS, *RESHAPES)
_POOLS = {"MaxPool": "max", "AveragePool": "avg", "GlobalMaxPool": "max",
          "GlobalAveragePool": "avg"}
_SIMPLE = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh"}
_CLIPS = {(0.0, 6.0): "relu6", (-1.0, 1.0): "hard_tanh", (0.0, math.inf): "relu"}


def _onnx():
    """The ``onnx`` module (an optional dependency: imported here, when a model is read)."""
    try:
        import onnx
        from onnx import numpy_helper  # noqa: F401  (onnx.numpy_helper below)
    except ImportError:
        raise ModelError("reading ONNX models needs the onnx package: "
                         "pip install 'hwnn[onnx]'") from None
    return onnx


def _what(node) -> str:
    return f"node {node.name or '(unnamed)'!r} ({node.op_type})"


class _Graph:
    """The graph's constants, consumers and attributes, and the chain being read."""

    def __init__(self, onnx, graph):
        self.onnx = onnx
        self.constants = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
        self.consumers = {}
        #: Initial-state tensors loaded from graph inputs (:func:`loaded_states`).
        self.loaded = {}
        #: Positions of the QONNX quantizers of constants, evaluated into constants.
        self.folded = set()
        for position, node in enumerate(graph.node):
            if node.op_type == "Constant":
                self._constant_node(node)
                continue
            if node.op_type in QONNX_OPS and all(n in self.constants for n in node.input if n):
                self.constants[node.output[0]] = fold_quantizer(self, node)
                self.folded.add(position)
                continue
            for index, name in enumerate(node.input):
                if name and name not in self.constants:
                    self.consumers.setdefault(name, []).append((position, node, index))

    def _constant_node(self, node):
        values = {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}
        if "value" not in values or len(node.output) != 1:
            raise ModelError(f"{_what(node)}: hwnn reads Constant nodes with a 'value' tensor "
                             f"only, not {sorted(values)}")
        self.constants[node.output[0]] = self.onnx.numpy_helper.to_array(values["value"])

    def attributes(self, node) -> dict:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def constant(self, node, index, required=True):
        """Input ``index`` of ``node`` as a float64 array (None if absent and not required)."""
        name = node.input[index] if index < len(node.input) else ""
        if not name:
            if required:
                raise ModelError(f"{_what(node)}: input {index} is missing")
            return None
        if name not in self.constants:
            raise ModelError(f"{_what(node)}: input {index} ({name!r}) is computed in the graph, "
                             f"not a constant: hwnn imports a chain whose weights are "
                             f"initializers")
        return np.asarray(self.constants[name], dtype=np.float64)


def _graph_input(graph, constants, sequence_length, axes=None, states=()):
    """``(name, feature shape, batch)`` of the graph's input; a symbolic last dimension of a
    (batch, channels, steps) input is ``sequence_length`` (None when that is None too). A
    3-D input whose ``axes`` are named (:func:`~hwnn.io.onnx_rnn.first_axes`) is read in that
    order. ``states``: the graph inputs that only hold initial states."""
    inputs = [i for i in graph.input if i.name not in constants and i.name not in states]
    if len(inputs) != 1:
        raise ModelError(f"the graph must have one input, not {len(inputs)} "
                         f"({', '.join(i.name for i in inputs)})")
    dims = inputs[0].type.tensor_type.shape.dim
    if axes is not None and len(dims) == len(axes):
        dims = [dims[axes.index(name)] for name in AXES["conv"]]
    features = [d.dim_value if d.HasField("dim_value") else None for d in dims[1:]]
    sequences = len(features) == 2
    if sequences and sequence_length is not None:
        if features[1] not in (None, sequence_length):
            raise ModelError(f"sequence_length = {sequence_length}, but graph input "
                             f"{inputs[0].name!r} has {features[1]} steps")
        features[1] = sequence_length
    known = features[:-1] if sequences else features
    if len(dims) < 2 or any(not d for d in known) or features[-1] == 0:
        shape = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims)
        raise ModelError(f"graph input {inputs[0].name!r} must have shape (batch, features, ...) "
                         f"with known feature sizes, not {shape}")
    batch = dims[0].dim_value if dims[0].HasField("dim_value") else None
    return inputs[0].name, tuple(features), batch


def _clip_bounds(g, node):
    attrs = g.attributes(node)
    bounds = []
    for index, key, default in ((1, "min", -math.inf), (2, "max", math.inf)):
        value = g.constant(node, index, required=False)
        if value is None:
            value = attrs.get(key, default)  # opset < 11 keeps the bounds as attributes
        bounds.append(float(np.asarray(value).reshape(-1)[0]))
    return tuple(bounds)


def _activation(g, node, name):
    what = _what(node)
    if node.op_type in _SIMPLE:
        return FloatActivation(name, _SIMPLE[node.op_type], what)
    attrs = g.attributes(node)
    if node.op_type == "LeakyRelu":
        alpha = float(attrs.get("alpha", 0.01))
        return FloatActivation(name, "leaky_relu", what, leaky_shift_of(alpha, what))
    if node.op_type == "HardSigmoid":
        alpha, beta = float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5))
        # Attributes are float32: compare with the float32 nearest to 1/6.
        if alpha != float(np.float32(1 / 6)) or beta != 0.5:
            raise ModelError(f"{what} has alpha = {alpha!r}, beta = {beta!r}; hwnn's "
                             f"hard_sigmoid is clip(x / 6 + 1/2, 0, 1) (PyTorch's: alpha = 1/6, "
                             f"beta = 0.5)")
        return FloatActivation(name, "hard_sigmoid", what)
    bounds = _clip_bounds(g, node)
    if bounds not in _CLIPS:
        raise ModelError(f"{what} clips to [{bounds[0]}, {bounds[1]}]; hwnn imports Clip to "
                         f"[0, 6] (relu6), [-1, 1] (hard_tanh) or [0, inf) (relu)")
    return FloatActivation(name, _CLIPS[bounds], what)


def _linear(g, node, name, n_in) -> FloatDense:
    what = _what(node)
    b = g.constant(node, 1)
    if node.op_type == "MatMul":
        if b.ndim != 2:
            raise ModelError(f"{what}: the constant operand must be 2-D (n_in, n_out), not "
                             f"shape {b.shape}")
        weight, bias = b.T, np.zeros(b.shape[1])
    else:
        attrs = g.attributes(node)
        for key in ("alpha", "beta"):
            if float(attrs.get(key, 1.0)) != 1.0:
                raise ModelError(f"{what} has {key} = {attrs[key]!r}; hwnn imports Gemm with "
                                 f"alpha = beta = 1 only")
        if attrs.get("transA", 0):
            raise ModelError(f"{what} has transA = {attrs['transA']}; hwnn imports Gemm with "
                             f"transA = 0 only (A is the (batch, features) activation)")
        if b.ndim != 2:
            raise ModelError(f"{what}: B must be 2-D, not shape {b.shape}")
        weight = b if attrs.get("transB", 0) else b.T
        c = g.constant(node, 2, required=False)
        bias = np.zeros(weight.shape[0]) if c is None else _bias(c, weight.shape[0], what)
    if weight.shape[1] != n_in:
        raise ModelError(f"{what}: weights of shape (n_out, n_in) = {weight.shape} do not take "
                         f"the {n_in} values before it")
    return FloatDense(name, np.array(weight), np.array(bias), what)


def _bias(c, n_out, what):
    if c.size not in (1, n_out) or (c.ndim > 1 and c.shape[:-1] != (1,) * (c.ndim - 1)):
        raise ModelError(f"{what}: bias of shape {c.shape} does not broadcast to ({n_out},)")
    return np.broadcast_to(c.reshape(-1), (n_out,)).astype(np.float64)


def _single(attrs, key, default, what) -> int:
    """The one value of a 1-D window attribute (``strides``, ``dilations``)."""
    values = list(attrs.get(key, [default]))
    if len(values) != 1:
        raise UnsupportedLayer(f"{what} has {key} = {values}: hwnn imports 1-D windows over "
                               f"(batch, channels, steps) only")
    return int(values[0])


def _steps(features, what, input_name) -> int:
    """The steps of a (channels, steps) tensor; a symbolic length asks for the option."""
    if features[1] is None:
        raise ModelError(f"{what}: graph input {input_name!r} has no static time dimension; "
                         f"give the sequence length (--sequence-length N)")
    return features[1]


def _pads(attrs, what, kernel, stride, dilation, steps) -> tuple[int, int]:
    """``(before, after)`` padding steps of a Conv or pool, from ``pads`` or ``auto_pad``."""
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    if auto == "NOTSET":
        pads = [int(p) for p in attrs.get("pads", [0, 0])]
        if len(pads) != 2:
            raise UnsupportedLayer(f"{what} has pads = {pads}: hwnn imports 1-D windows over "
                                   f"(batch, channels, steps) only")
        return pads[0], pads[1]
    if auto == "VALID":
        return 0, 0
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = -(-steps // stride)  # ONNX: ceil(steps / stride) outputs
        total = max(0, (out - 1) * stride + (kernel - 1) * dilation + 1 - steps)
        small, big = total // 2, total - total // 2
        return (small, big) if auto == "SAME_UPPER" else (big, small)
    raise ModelError(f"{what} has auto_pad = {auto!r}; hwnn imports NOTSET, VALID, SAME_UPPER "
                     f"and SAME_LOWER")


def _padding_text(attrs, left, right) -> str:
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    return f"pads [{left}, {right}]" + ("" if auto == "NOTSET" else f" (auto_pad = {auto})")


def _conv(g, node, name, features, input_name) -> FloatConv1d:
    """The ``conv1d`` layer of a 1-D ``Conv`` on a (channels, steps) tensor."""
    what = _what(node)
    weight = g.constant(node, 1)
    if weight.ndim != 3 or len(features) != 2:
        raise UnsupportedLayer(f"{what} has weight shape {weight.shape} on a tensor of shape "
                               f"(batch, {', '.join(map(str, features))}): hwnn imports 1-D "
                               f"convolutions (weight (out, in/group, k) on (batch, channels, "
                               f"steps)) only")
    attrs = g.attributes(node)
    out, width, kernel = weight.shape
    if list(attrs.get("kernel_shape", [kernel])) != [kernel]:
        raise ModelError(f"{what} has kernel_shape = {list(attrs['kernel_shape'])} but a weight "
                         f"of shape {weight.shape}")
    group = int(attrs.get("group", 1))
    if width * group != features[0] or out % group:
        raise ModelError(f"{what}: weight of shape {weight.shape} with group = {group} does not "
                         f"take the {features[0]} channels before it (in = {width} x group, "
                         f"out divisible by group)")
    stride = _single(attrs, "strides", 1, what)
    dilation = _single(attrs, "dilations", 1, what)
    steps = _steps(features, what, input_name)
    left, right = _pads(attrs, what, kernel, stride, dilation, steps)
    if left == right:
        padding = left
    elif stride == 1 and (left, right) == same_padding(kernel, dilation):
        padding = "same"
    else:
        raise ModelError(f"{what} has {_padding_text(attrs, left, right)}: hwnn's conv1d pads "
                         f"both sides alike, or as PyTorch's padding = 'same' (stride 1, the "
                         f"odd step after: pads {list(same_padding(kernel, dilation))})")
    c = g.constant(node, 2, required=False)
    bias = np.zeros(out) if c is None else _bias(c, out, what)
    return FloatConv1d(name, np.array(weight), np.array(bias), what, stride, dilation, padding,
                       group, in_steps=steps)


def _pool(g, node, name, features, input_name) -> FloatPool:
    """The ``pool`` layer of a 1-D MaxPool/AveragePool (or a global one) on (channels, steps)."""
    what = _what(node)
    attrs = g.attributes(node)
    if len(features) != 2:
        raise UnsupportedLayer(f"{what} pools a tensor of shape (batch, "
                               f"{', '.join(map(str, features))}): hwnn imports 1-D pooling "
                               f"over (batch, channels, steps) only")
    steps = _steps(features, what, input_name)
    kind = _POOLS[node.op_type]
    if node.op_type.startswith("Global"):
        return FloatPool(name, kind, steps, steps, 0, what, in_steps=steps)
    kernel = list(attrs.get("kernel_shape", []))
    if len(kernel) != 1:
        raise UnsupportedLayer(f"{what} has kernel_shape = {kernel}: hwnn imports 1-D pooling "
                               f"over (batch, channels, steps) only")
    kernel = int(kernel[0])
    if attrs.get("ceil_mode", 0):
        raise ModelError(f"{what} has ceil_mode = 1; hwnn pools with PyTorch's default "
                         f"ceil_mode = False (0)")
    if _single(attrs, "dilations", 1, what) != 1:
        raise ModelError(f"{what} has dilations = {list(attrs['dilations'])}; hwnn pools "
                         f"without dilation")
    stride = _single(attrs, "strides", 1, what)
    left, right = _pads(attrs, what, kernel, stride, 1, steps)
    if left != right or left > kernel // 2:
        raise ModelError(f"{what} has {_padding_text(attrs, left, right)}: hwnn pads both "
                         f"sides alike, at most kernel_shape // 2 = {kernel // 2} steps "
                         f"(PyTorch's limit)")
    if kind == "avg" and left and not attrs.get("count_include_pad", 0):
        raise ModelError(f"{what} has count_include_pad = 0 with padding; hwnn's average counts "
                         f"the padding as zeros (PyTorch's default count_include_pad = True): "
                         f"export with count_include_pad = 1")
    return FloatPool(name, kind, kernel, stride, left, what, in_steps=steps)


def _reshape(g, node, features, batch):
    """The feature shape after a Flatten or Reshape, which must be a no-op on the data."""
    what = _what(node)
    size = math.prod(features)
    if node.op_type == "Flatten":
        axis = g.attributes(node).get("axis", 1)
        if axis < 0:
            axis += 1 + len(features)
        if axis != 1:
            raise ModelError(f"{what} has axis = {axis}; hwnn imports Flatten to "
                             f"(batch, features) only (axis = 1)")
        return (size,)
    target = [int(v) for v in g.constant(node, 1).reshape(-1)]
    first_ok = len(target) == 2 and (target[0] in (-1, 0) or target[0] == batch)
    if not (first_ok and (target[1] == size or (target[1] == -1 and target[0] != -1))):
        raise ModelError(f"{what} reshapes to {target}: hwnn imports only a Reshape to "
                         f"(batch, {size}), a no-op on the data")
    return (size,)


def read_onnx(path, sequence_length=None) -> tuple[list, str]:
    """The float layers of the ONNX model at ``path`` and the graph's name.

    ``sequence_length`` gives the steps of a (batch, channels, steps) input whose time
    dimension is symbolic (it must agree with a static one). The first sequence layer records
    the length as its ``in_steps``.

    Raises
    ------
    ModelError
        onnx is not installed, the file is not an ONNX model, the graph is not a chain, or a
        node is not supported (the message names the node and its op type);
        :class:`UnsupportedLayer` for a 2-D Conv or pooling.
    OSError
        The file cannot be read.
    """
    onnx = _onnx()
    with open(path, "rb") as file:
        data = file.read()
    try:
        model = onnx.load_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends: not an ONNX file
        raise ModelError(f"{path}: not an ONNX model ({type(exc).__name__}: {exc})") from None
    graph = model.graph
    g = _Graph(onnx, graph)
    ignored = zero_states(g, graph)   # an LSTM's zeros from the input's shape: no layer
    sliced, states = loaded_states(g, graph)   # h0, c0 as graph inputs: loaded states
    ignored |= sliced
    starts = [i.name for i in graph.input if i.name not in g.constants and i.name not in states]
    axes = first_axes(g, starts[0]) if len(starts) == 1 else None
    current, features, batch = _graph_input(graph, g.constants, sequence_length, axes, states)
    input_name = current
    # The axes of the current tensor, by name, while it is a sequence (None for vectors);
    # time_major: a flatten of (steps, channels) waits for its Gemm.
    axes = (axes or AXES["conv"]) if len(features) == 2 else None
    time_major = False
    outputs = [o.name for o in graph.output]
    if len(outputs) != 1:
        raise ModelError(f"the graph must have one output, not {len(outputs)} "
                         f"({', '.join(outputs)})")
    # linear: the last layer takes a bias or a normalization; sequences: a sequence layer came
    # and no flatten since (the tensor is (batch, channels, steps) in hwnn's stream).
    layers, names, visited, linear, sequences = [], Names(), set(ignored), False, False
    signed = False   # the Sign ahead belongs to the binarized layer just read
    while current != outputs[0] or g.consumers.get(current):
        users = g.consumers.get(current, [])
        if len(users) != 1 or current == outputs[0]:
            if not users:
                raise ModelError(f"tensor {current!r} is used by no node and is not the graph "
                                 f"output {outputs[0]!r}")
            readers = ", ".join(_what(n) for _, n, _ in users)
            raise ModelError(f"tensor {current!r} feeds {readers}"
                             + (" and is the graph output" if current == outputs[0] else "")
                             + ": hwnn imports a chain (one path from input to output)")
        position, node, index = users[0]
        what, op = _what(node), node.op_type
        if op not in SUPPORTED_OPS:
            raise ModelError(f"{what}: hwnn does not import {op} (it imports "
                             f"{', '.join(SUPPORTED_OPS)})")
        if index != 0 and op != "Add":
            raise ModelError(f"{what} takes the chain's tensor {current!r} as input {index}, "
                             f"not as its data input 0")
        extra = [o for o in node.output[1:] if o]
        if extra and op not in ("LSTM", "GRU"):  # their Y_h, Y_c: recurrent_node checks
            raise ModelError(f"{what} has extra outputs {extra}: hwnn imports inference "
                             f"graphs (one output per node)")
        if op in ("Gemm", "MatMul"):
            if len(features) != 1:
                raise ModelError(f"{what} gets a tensor of shape (batch, "
                                 f"{', '.join(map(str, features))}): flatten it first")
            if axes is not None and strip(axes) != AXES["vector"]:
                raise ModelError(f"{what} reads (batch, features), but gets a tensor with "
                                 f"axes {list(axes)}")
            axes = None
            layers.append(_linear(g, node, names.make(node.name, op.lower()), features[0]))
            if time_major:  # to the channel-major order the flatten's dense weight has
                flat = next(r for r in reversed(layers) if isinstance(r, FloatFlatten))
                dense = layers[-1]
                dense.weight = dense.weight.reshape(-1, flat.steps, flat.channels).transpose(
                    0, 2, 1).reshape(dense.weight.shape)
                dense.source += " (time-major columns, after an LSTM/GRU)"
                time_major = False
            features, linear = (layers[-1].weight.shape[0],), True
        elif op in ("LSTM", "GRU"):
            layer, output = recurrent_node(g, node, names.make(node.name, op.lower()),
                                           features, axes, _steps(features, what, input_name))
            layers.append(layer)
            linear = False
            if layer.return_sequences:
                features = (layer.hidden_size, features[1])
                dirs = DIRECTIONS_AXIS if layer.bidirectional else "dirs"
                axes, sequences = ("steps", dirs, "batch", "channels"), True
            else:   # Y_h: the last state, (dirs, batch, hidden)
                features, axes, sequences = (layer.hidden_size,), ("dirs", "batch",
                                                                   "channels"), False
            visited.add(position)
            current = output
            continue
        elif op in RESHAPES:
            axes = rearrange(g, node, axes)
        elif op == "Reshape" and axes is not None and DIRECTIONS_AXIS in axes:
            axes, features = merge_directions(g, node, axes, features)
        elif op in ("Conv", *_POOLS):
            if strip(axes or ()) != AXES["conv"] and len(features) == 2:
                raise ModelError(f"{what} reads (batch, channels, steps), but gets a tensor "
                                 f"with axes {list(axes)}: transpose it first")
            if op == "Conv":
                layer = _conv(g, node, names.make(node.name, "conv"), features, input_name)
            else:
                layer = _pool(g, node, names.make(node.name, "pool"), features, input_name)
            steps = layer.window.out_length(layer.in_steps)
            if steps < 1:
                raise ModelError(f"{what} leaves no step of the {layer.in_steps}-step "
                                 f"sequences it gets")
            channels = layer.weight.shape[0] if op == "Conv" else features[0]
            layers.append(layer)
            features, linear, sequences = (channels, steps), op == "Conv", True
            axes = AXES["conv"]
        elif op == "Add":
            if not (linear and isinstance(layers[-1], FloatDense)):
                raise ModelError(f"{what}: hwnn imports Add only as the bias right after a "
                                 f"Gemm or MatMul")
            layers[-1].bias = layers[-1].bias + _bias(g.constant(node, 1 - index),
                                                      features[0], what)
            layers[-1].source += f" + {what}"
        elif op == "BatchNormalization":
            if not linear:
                raise ModelError(f"{what}: hwnn folds BatchNormalization into the Gemm, MatMul "
                                 f"or Conv right before it, and there is none")
            attrs = g.attributes(node)
            if attrs.get("training_mode", 0):
                raise ModelError(f"{what} has training_mode = 1; export the model for inference")
            if batchnorm_before_sign(g, node, layers, what):
                signed, linear = True, False   # the Sign after it is part of the layer
            else:
                fold_batchnorm(layers[-1], *(g.constant(node, k) for k in range(1, 5)),
                               float(attrs.get("epsilon", 1e-5)), what)
        elif op in ("Sign", *QONNX_OPS):
            is_sign(g, node, what)   # refuses a Quant of activations, a BipolarQuant's scale
            if not signed:   # a binarization of its own (the input's)
                layers.append(FloatSign(names.make(node.name, "sign"), what))
            signed, linear = False, False
        elif op in ("Flatten", "Reshape"):
            if len(features) == 2:
                _steps(features, what, input_name)
            flat = _reshape(g, node, features, batch)
            if sequences:
                if strip(axes) not in (AXES["conv"], ("batch", "steps", "channels")):
                    raise ModelError(f"{what} flattens a tensor with axes {list(axes)}; hwnn "
                                     f"flattens (batch, channels, steps) or (batch, steps, "
                                     f"channels)")
                time_major = strip(axes)[1] == "steps"
                layers.append(FloatFlatten(names.make(node.name, "flatten"), what,
                                           features[1], features[0]))
            features, linear, sequences, axes = flat, False, False, None
        else:
            layers.append(_activation(g, node, names.make(node.name, op.lower())))
            linear = False
        visited.add(position)
        current = node.output[0]
    stray = [n for k, n in enumerate(graph.node)
             if n.op_type != "Constant" and k not in visited and k not in g.folded]
    if stray:
        raise ModelError(f"{_what(stray[0])} is not on the path from the graph input to its "
                         f"output: hwnn imports a chain")
    if not layers:
        raise ModelError("the graph has no layer to import")
    # A BNN binarizes its input first: the layer after that Sign sets the width.
    first = layers[1] if isinstance(layers[0], FloatSign) and len(layers) > 1 else layers[0]
    if not isinstance(first, (FloatDense, FloatBinaryDense, FloatConv1d, FloatRecurrent)):
        # A network's first layer sets its input width: an activation or pool has none.
        raise ModelError(f"the first layer is {first.source}; a network imports from a "
                         f"Gemm, MatMul, Conv, LSTM or GRU first")
    return binarize(layers), graph.name
