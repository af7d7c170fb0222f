"""Read an ONNX graph that is a chain of dense layers and activations into float layers.

The graph must be a chain: one input of shape (batch, features...), one output, and every node
on the path between them, each taking the previous node's output as its data input and only
constants (initializers or ``Constant`` nodes) otherwise. Operators:

- ``Gemm`` (``transA = 0``, ``alpha = beta = 1``; ``transB`` either way), ``MatMul`` by a
  constant, followed by an optional ``Add`` of a constant (the bias);
- ``BatchNormalization`` right after one of those: folded into its weights and bias (float64);
- ``Relu``, ``Sigmoid``, ``Tanh``; ``LeakyRelu`` with ``alpha = 2**-k`` (``k`` = 1..16);
  ``HardSigmoid`` with ``alpha = 1/6, beta = 1/2`` (PyTorch's, hwnn's ``hard_sigmoid``);
  ``Clip`` to ``[0, 6]`` (relu6), ``[-1, 1]`` (hard_tanh) or ``[0, inf)`` (relu);
- ``Flatten`` (``axis = 1``) and ``Reshape`` to ``(batch, features)``: no-ops on the data.

``Conv``, ``MaxPool`` and ``AveragePool`` raise :class:`UnsupportedLayer` (a network does not
chain sequence layers yet); any other operator raises :class:`ModelError` naming the node.
The ``onnx`` package is imported only here, when a model is read.
"""

from __future__ import annotations

import math

import numpy as np

from .model import (SEQUENCE_LAYERS, FloatActivation, FloatDense, ModelError, Names,
                    UnsupportedLayer, fold_batchnorm, leaky_shift_of)

__all__ = ["read_onnx", "SUPPORTED_OPS"]

SUPPORTED_OPS = ("Gemm", "MatMul", "Add", "BatchNormalization", "Relu", "LeakyRelu", "Sigmoid",
                 "Tanh", "HardSigmoid", "Clip", "Flatten", "Reshape")
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
        for position, node in enumerate(graph.node):
            if node.op_type == "Constant":
                self._constant_node(node)
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


def _graph_input(graph, constants):
    inputs = [i for i in graph.input if i.name not in constants]
    if len(inputs) != 1:
        raise ModelError(f"the graph must have one input, not {len(inputs)} "
                         f"({', '.join(i.name for i in inputs)})")
    dims = inputs[0].type.tensor_type.shape.dim
    features = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims[1:])
    if len(dims) < 2 or any(not d for d in features):
        shape = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims)
        raise ModelError(f"graph input {inputs[0].name!r} must have shape (batch, features, ...) "
                         f"with known feature sizes, not {shape}")
    batch = dims[0].dim_value if dims[0].HasField("dim_value") else None
    return inputs[0].name, features, batch


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


def read_onnx(path) -> tuple[list, str]:
    """The float layers of the ONNX model at ``path`` and the graph's name.

    Raises
    ------
    ModelError
        onnx is not installed, the file is not an ONNX model, the graph is not a chain, or a
        node is not supported (the message names the node and its op type);
        :class:`UnsupportedLayer` for Conv/MaxPool/AveragePool.
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
    current, features, batch = _graph_input(graph, g.constants)
    outputs = [o.name for o in graph.output]
    if len(outputs) != 1:
        raise ModelError(f"the graph must have one output, not {len(outputs)} "
                         f"({', '.join(outputs)})")
    layers, names, visited, linear = [], Names(), set(), False
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
        if op in ("Conv", "MaxPool", "AveragePool"):
            raise UnsupportedLayer(f"{what}: {SEQUENCE_LAYERS}")
        if op not in SUPPORTED_OPS:
            raise ModelError(f"{what}: hwnn does not import {op} (it imports "
                             f"{', '.join(SUPPORTED_OPS)})")
        if index != 0 and op != "Add":
            raise ModelError(f"{what} takes the chain's tensor {current!r} as input {index}, "
                             f"not as its data input 0")
        extra = [o for o in node.output[1:] if o]
        if extra:
            raise ModelError(f"{what} has extra outputs {extra}: hwnn imports inference "
                             f"graphs (one output per node)")
        if op in ("Gemm", "MatMul"):
            if len(features) != 1:
                raise ModelError(f"{what} gets a tensor of shape (batch, "
                                 f"{', '.join(map(str, features))}): flatten it first")
            layers.append(_linear(g, node, names.make(node.name, op.lower()), features[0]))
            features, linear = (layers[-1].weight.shape[0],), True
        elif op == "Add":
            if not linear:
                raise ModelError(f"{what}: hwnn imports Add only as the bias right after a "
                                 f"Gemm or MatMul")
            layers[-1].bias = layers[-1].bias + _bias(g.constant(node, 1 - index),
                                                      features[0], what)
            layers[-1].source += f" + {what}"
        elif op == "BatchNormalization":
            if not linear:
                raise ModelError(f"{what}: hwnn folds BatchNormalization into the Gemm or MatMul "
                                 f"right before it, and there is none")
            attrs = g.attributes(node)
            if attrs.get("training_mode", 0):
                raise ModelError(f"{what} has training_mode = 1; export the model for inference")
            fold_batchnorm(layers[-1], *(g.constant(node, k) for k in range(1, 5)),
                           float(attrs.get("epsilon", 1e-5)), what)
        elif op in ("Flatten", "Reshape"):
            features = _reshape(g, node, features, batch)
        else:
            layers.append(_activation(g, node, names.make(node.name, op.lower())))
            linear = False
        visited.add(position)
        current = node.output[0]
    stray = [n for k, n in enumerate(graph.node) if n.op_type != "Constant" and k not in visited]
    if stray:
        raise ModelError(f"{_what(stray[0])} is not on the path from the graph input to its "
                         f"output: hwnn imports a chain")
    if not layers:
        raise ModelError("the graph has no layer to import")
    if not isinstance(layers[0], FloatDense):
        raise ModelError(f"the first layer is {layers[0].source}; a network imports from a "
                         f"Gemm or MatMul first")
    return layers, graph.name
