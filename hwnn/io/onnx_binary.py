"""Binarized layers in an ONNX graph, as PyTorch exports a BNN: ``Sign`` activations,
``MatMul``/``Gemm`` whose weights are all ±1 (PyTorch's ``sign(W)``, folded into an
initializer by the exporter), and ``BatchNormalization`` right before a ``Sign``.

The chain reader (:mod:`hwnn.io.onnx`) asks :func:`batchnorm_before_sign` at every
BatchNormalization: when it follows a ±1 layer and feeds a ``Sign`` alone, the pair becomes a
:class:`~hwnn.io.model.FloatBinaryDense` with that batch norm (its thresholds are folded from the
original parameters, :func:`hwnn.plans.threshold.plan_batchnorm_sign`, not from weights scaled
by the normalization), and the Sign is part of it. Any other BatchNormalization is folded into
the weights as before. A ``Sign`` elsewhere (the input's binarization) is a
:class:`~hwnn.io.model.FloatSign`. After the walk, :func:`binarize` makes the ±1 dense layers that
take ±1 inputs binary (a BNN's last layer: its dot products, no sign) and marks which binarized
layers take ±1 inputs.

Ties: ONNX defines ``Sign(0) = 0``; a bit has no 0, and hwnn, like FINN and Brevitas, sends 0
to +1. A model whose normalized pre-activation is exactly 0 therefore differs from ONNX's own
evaluation there (and only there); :func:`sign_ties` counts such values for given inputs.

QONNX (what Brevitas and FINN exchange; any domain name): a ``BipolarQuant`` (``x ≥ 0 ? +1 :
−1``, times its scale) or ``Quant`` (integer quantization, :func:`quant`) whose inputs are all
constants is evaluated into a constant when the graph is read (:func:`fold_quantizer`: weights
quantized to ±1 or to integers), and a ``BipolarQuant`` of scale 1 on the data path is a sign
(:func:`is_sign`; its ties go to +1 as hwnn's). A ``BipolarQuant`` of another scale or a
``Quant`` of activations is refused (:class:`~hwnn.io.model.UnsupportedLayer`): hwnn chooses
activation formats itself.
"""

from __future__ import annotations

import numpy as np

from .model import FloatBinaryDense, FloatDense, FloatSign, ModelError, UnsupportedLayer

__all__ = ["QONNX_OPS", "batchnorm_before_sign", "binarize", "fold_quantizer", "is_bipolar",
           "is_sign", "quant", "sign_ties"]

#: QONNX's quantizers that hwnn reads.
QONNX_OPS = ("BipolarQuant", "Quant")
_ROUNDING = {"ROUND": np.rint, "CEIL": np.ceil, "FLOOR": np.floor, "ROUND_TO_ZERO": np.trunc}


def quant(x, scale, zeropt, bitwidth, *, signed=1, narrow=0, rounding_mode="ROUND",
          what: str = "Quant"):
    """QONNX's ``Quant``: ``(clip(round(x / scale + zeropt), lo, hi) − zeropt) · scale``, with
    ``[lo, hi]`` the ``bitwidth``-bit integers (signed or not; ``narrow`` drops the most
    negative signed code or the largest unsigned one) and ``round`` the ``rounding_mode``
    (``ROUND`` is half to even). ``what`` names the node in errors.

    Raises
    ------
    ModelError
        An unknown ``rounding_mode``, a ``bitwidth`` that is not one integer from 1 to 62, or a
        ``scale`` that is not positive and finite.
    """
    if rounding_mode not in _ROUNDING:
        raise ModelError(f"{what}: rounding_mode must be one of {', '.join(_ROUNDING)}, not "
                         f"{rounding_mode!r}")
    bitwidth, scale = np.asarray(bitwidth, dtype=np.float64), np.asarray(scale, np.float64)
    if bitwidth.size != 1 or not 1 <= bitwidth.item() <= 62 or bitwidth.item() % 1:
        raise ModelError(f"{what}: bitwidth must be one integer from 1 to 62, not "
                         f"{bitwidth.ravel()[:4].tolist()}")
    if not np.all(np.isfinite(scale) & (scale > 0)):
        raise ModelError(f"{what}: scale must be positive and finite, not "
                         f"{scale.ravel()[:4].tolist()}")
    bits = int(bitwidth.item())
    if signed:
        lo, hi = -(1 << (bits - 1)) + bool(narrow), (1 << (bits - 1)) - 1
    else:
        lo, hi = 0, (1 << bits) - 1 - bool(narrow)
    q = np.clip(_ROUNDING[rounding_mode](np.asarray(x) / scale + zeropt), lo, hi)
    return (q - zeropt) * scale


def fold_quantizer(g, node) -> np.ndarray:
    """The constant a ``BipolarQuant`` or ``Quant`` ``node`` of constant inputs gives
    (:func:`quant`; a BipolarQuant is ``x ≥ 0 ? scale : −scale``)."""
    x, scale = g.constant(node, 0), g.constant(node, 1)
    if node.op_type == "BipolarQuant":
        return np.where(x >= 0, 1.0, -1.0) * scale
    attrs = g.attributes(node)
    mode = attrs.get("rounding_mode", "ROUND")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    return quant(x, scale, g.constant(node, 2), g.constant(node, 3),
                 signed=attrs.get("signed", 1), narrow=attrs.get("narrow", 0),
                 rounding_mode=mode, what=f"node {node.name!r} (Quant)")


def is_sign(g, node, what: str = "") -> bool:
    """Whether ``node`` binarizes its input as a sign: an ONNX ``Sign``, or a QONNX
    ``BipolarQuant`` of scale 1.

    Raises
    ------
    UnsupportedLayer
        A ``BipolarQuant`` of another scale, or a ``Quant`` on the data path.
    """
    if node.op_type == "Quant":
        raise UnsupportedLayer(f"{what}: a Quant of activations; hwnn reads Quant nodes of "
                               f"weights (folded) and chooses activation formats itself "
                               f"(--bits)")
    if node.op_type != "BipolarQuant":
        return node.op_type == "Sign"
    scale = g.constant(node, 1)
    if not np.all(scale == 1):
        raise UnsupportedLayer(f"{what}: BipolarQuant of scale {scale.ravel()[:4].tolist()}; "
                               f"hwnn reads activations binarized to ±1 (scale 1)")
    return True


def is_bipolar(weight) -> bool:
    """Whether every entry of ``weight`` is +1 or −1."""
    weight = np.asarray(weight)
    return weight.size > 0 and bool(np.all(np.abs(weight) == 1))


def batchnorm_before_sign(g, node, layers, what: str) -> bool:
    """Whether the BatchNormalization ``node`` (``what`` names it) makes a binarized neuron with
    the Sign after it: it follows a dense layer with ±1 weights (``layers[-1]``) and feeds a
    ``Sign`` and nothing else. If so, ``layers[-1]`` becomes a
    :class:`~hwnn.io.model.FloatBinaryDense` holding the normalization's parameters.

    Raises
    ------
    ModelError
        A parameter without one value per output, or ``var + epsilon`` not positive.
    """
    users = g.consumers.get(node.output[0], [])
    dense = layers[-1] if layers else None
    if (len(users) != 1 or users[0][1].op_type not in ("Sign", "BipolarQuant")
            or type(dense) is not FloatDense or not is_bipolar(dense.weight)
            or not is_sign(g, users[0][1], f"node {users[0][1].name!r} (BipolarQuant)")):
        return False
    n_out = dense.weight.shape[0]
    params = []
    for index, label in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "var")):
        value = np.asarray(g.constant(node, index), dtype=np.float64)
        if value.shape != (n_out,):
            raise ModelError(f"{what}: {label} has shape {value.shape}, but layer "
                             f"{dense.name!r} has {n_out} outputs")
        params.append(value)
    eps = float(g.attributes(node).get("epsilon", 1e-5))
    if np.any(params[3] + eps <= 0):
        raise ModelError(f"{what}: var + epsilon must be positive, not "
                         f"{np.min(params[3] + eps)}")
    layers[-1] = FloatBinaryDense(dense.name, dense.weight, dense.bias,
                                  f"{dense.source}; {what} and {users[0][1].op_type} "
                                  f"{users[0][1].name!r} as thresholds",
                                  batchnorm=(*params, eps))
    return True


def binarize(layers) -> list:
    """``layers`` with every dense layer of ±1 weights that takes ±1 inputs (after a Sign or a
    binarized neuron) as a :class:`~hwnn.io.model.FloatBinaryDense` without batch norm (a
    BNN's last layer: ``d + bias``), and every binarized layer marked ``binary_input`` when
    its inputs are ±1. A ±1 dense layer on real inputs without a Sign after it stays a dense
    layer: ±1 weights alone do not make a BNN."""
    result, binary = [], False
    for layer in layers:
        if type(layer) is FloatDense and binary and is_bipolar(layer.weight):
            layer = FloatBinaryDense(layer.name, layer.weight, layer.bias, layer.source)
        if isinstance(layer, FloatBinaryDense):
            layer.binary_input = binary
        result.append(layer)
        binary = isinstance(layer, FloatSign) or (isinstance(layer, FloatBinaryDense)
                                                  and layer.batchnorm is not None)
    return result


def sign_ties(layers, x) -> list[int]:
    """Per layer that binarizes (a :class:`~hwnn.io.model.FloatSign` or a
    :class:`~hwnn.io.model.FloatBinaryDense` with a batch norm), how many of its values for
    inputs ``x`` are exactly 0 before the sign: where ONNX's ``Sign(0) = 0`` and hwnn's +1
    differ. Other layers count 0."""
    counts = []
    x = np.asarray(x, dtype=np.float64)
    for layer in layers:
        ties = 0
        if isinstance(layer, FloatSign):
            ties = int(np.count_nonzero(x == 0))
        elif isinstance(layer, FloatBinaryDense) and layer.batchnorm is not None:
            gamma, beta, mean, var, eps = layer.batchnorm
            z = gamma * (x @ layer.weight.T + layer.bias - mean) / np.sqrt(var + eps) + beta
            ties = int(np.count_nonzero(z == 0))
        counts.append(ties)
        x = x @ layer.weight.T + layer.bias if type(layer) is FloatDense else layer.evaluate(x)
    return counts
