"""Binarized layers of an imported model as spec layers (:mod:`hwnn.spec.binary`).

A BNN read by :mod:`hwnn.io.onnx_binary` becomes:

* a :class:`~hwnn.io.model.FloatSign` → a ``threshold`` layer without arrays, the sign (bit 1
  where the input code is at or above 0: ties to +1, where ONNX's ``Sign(0) = 0``);
* a :class:`~hwnn.io.model.FloatBinaryDense` → a ``binary_dense`` layer with its weights as
  bits (1 = +1) and, when a batch norm + sign follows it, the batch norm's arrays, which the
  spec loader folds into one integer threshold per neuron on the dot product's format (the
  layer's bias goes into the mean). One-bit inputs (after a sign or a binarized neuron) are
  bipolar, others integer codes of the incoming format (a BNN's first layer on real inputs);
* a dense layer that takes ±1 values from a binarized layer → a dense layer on their bits
  ``b`` (``±1 = 2b − 1``): ``W·(2b − 1) + c = (2W)·b + (c − W·1)``, the weights doubled and the
  bias shifted, exactly; its weight format has one more integer bit, the same codes. A
  binarized layer without batch norm + sign but with a bias (a BNN's last layer, PyTorch's
  ``Linear`` with ``bias=True``) is written so too (:func:`written_as_dense`): its integer dot
  products have no fraction bits for the bias, a dense layer's output format does.

Between binarized layers a stream carries bits (``UQ(1, 0)``); the float model of the spec
(:func:`hwnn.ref.network.network_float`) carries them as 0/1 where the imported model has
−1/+1.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..fixed import MAX_WIDTH, SQ
from .model import FloatBinaryDense, FloatDense, FloatSign, ModelError, UnsupportedLayer

__all__ = ["MAX_SIMD", "binary_layer_lines", "bit_input_dense", "bit_input_weight_format",
           "default_simd", "takes_bits", "with_input_sign", "written_as_dense"]

#: The widest default ``simd`` the importer writes for one-bit inputs (integer inputs: a
#: quarter of it): a popcount tree of 32 bits per PE and cycle.
MAX_SIMD = 32


def with_input_sign(layers) -> list:
    """``layers`` with a :class:`~hwnn.io.model.FloatSign` first, for a BNN whose inputs are
    −1/+1 (the sign keeps them): its first layer takes bits. A first binarized layer becomes
    one-bit (``binary_input``); a first dense layer then takes bits as any dense layer after a
    sign.

    Raises
    ------
    ModelError
        The model starts with a sign already, or with a layer other than a dense or binarized
        one.
    """
    first = layers[0]
    if isinstance(first, FloatSign):
        raise ModelError(f"binary_input: {first.source} binarizes the inputs already")
    if not isinstance(first, (FloatDense, FloatBinaryDense)):
        raise ModelError(f"binary_input: the first layer is {first.source}; a sign can only "
                         f"feed a dense or binarized layer")
    if isinstance(first, FloatBinaryDense):
        first = replace(first, binary_input=True)
    names = {layer.name for layer in layers}
    name = next(n for n in ("sign_in", *(f"sign_in_{k}" for k in range(1, len(layers) + 1)))
                if n not in names)
    sign = FloatSign(name, "binary_input: the -1/+1 inputs as bits")
    return [sign, first, *layers[1:]]


def takes_bits(layers) -> list[bool]:
    """Per layer, whether its input is a bit stream: it follows a sign or a binarized neuron
    (a binarized layer with batch norm + sign).

    Raises
    ------
    UnsupportedLayer
        A layer other than a binarized or dense one takes bits (its float model would see
        ±1 where the hardware has 0/1).
    """
    flags, bits = [], False
    for layer in layers:
        if bits and not isinstance(layer, (FloatBinaryDense, FloatDense)):
            raise UnsupportedLayer(f"{layer.source}: takes the ±1 outputs of a binarized "
                                   f"layer; hwnn writes only dense and binarized layers after "
                                   f"one")
        flags.append(bits)
        bits = isinstance(layer, FloatSign) or (isinstance(layer, FloatBinaryDense)
                                                and layer.batchnorm is not None)
    return flags


def written_as_dense(layer) -> bool:
    """Whether ``layer`` is written as a dense layer on bits: a binarized layer without batch
    norm + sign whose bias is not zero."""
    return (isinstance(layer, FloatBinaryDense) and layer.batchnorm is None
            and bool(np.any(layer.bias != 0)))


def bit_input_dense(weight, bias) -> tuple[np.ndarray, np.ndarray]:
    """``(2·W, c − W·1)``: the dense layer ``W x + c`` on the bits ``b`` of ``x = 2b − 1``."""
    weight = np.asarray(weight, dtype=np.float64)
    return 2.0 * weight, np.asarray(bias, dtype=np.float64) - weight.sum(axis=1)


def bit_input_weight_format(fmt):
    """The weight format of ``2·W`` for ``W`` in ``fmt``: the same codes, one more integer bit."""
    return SQ(fmt.i + 1, fmt.f - 1)


def default_simd(n_in: int, in_bits: int) -> int:
    """The largest divisor of ``n_in`` up to :data:`MAX_SIMD` for one-bit inputs; for
    ``in_bits``-bit integer inputs up to a quarter of it, a group being at most
    :data:`~hwnn.fixed.MAX_WIDTH` bits."""
    limit = MAX_SIMD if in_bits == 1 else min(MAX_SIMD // 4, MAX_WIDTH // in_bits)
    return max(d for d in range(1, min(limit, n_in) + 1) if n_in % d == 0)


def binary_layer_lines(layer, lanes, in_bits: int, comment) -> tuple[str, list[str], dict]:
    """``(kind, spec lines after kind and name, arrays)`` of the binarized ``layer`` (a
    FloatSign or FloatBinaryDense) fed ``in_bits``-bit values; ``lanes``: the network's input
    width when the layer is first, else None; ``comment(text)`` makes a comment line.

    A binarized layer without batch norm + sign has a zero bias here
    (:func:`written_as_dense`).
    """
    name = layer.name
    if isinstance(layer, FloatSign):
        lines = [comment("the sign: bit 1 where the input is at or above 0 (ONNX's Sign(0) = 0; "
                         "hwnn, FINN and Brevitas send 0 to +1); the next layers take the bits "
                         "as -1/+1 (bit 1 = +1)")]
        if lanes is not None:
            lines.append(f"lanes = {lanes}  # the network's input width")
        return "threshold", lines, {}
    weight = layer.bits.astype(np.uint8)
    n_out, n_in = weight.shape
    simd = default_simd(n_in, 1 if layer.binary_input else in_bits)
    lines = [comment("weights as bits (1 = +1): XNOR-popcount dot products"
                     if layer.binary_input else
                     "weights as bits (1 = +1) on integer inputs: sums of +x and -x"),
             f'in_encoding = "{"bipolar" if layer.binary_input else "integer"}"',
             comment(f"folding: ii = (n_out/pe)*(n_in/simd) = {n_out * (n_in // simd)} cycles "
                     f"per vector; raise pe (a divisor of {n_out}) for fewer"),
             "pe = 1", f"simd = {simd}"]
    arrays = {f"{name}.weight": weight}
    if layer.batchnorm is None:
        lines.append(comment("outputs its dot products (no batch norm + sign after it)"))
        return "binary_dense", lines, arrays
    gamma, beta, mean, var, eps = layer.batchnorm
    arrays.update({f"{name}.bn_weight": gamma, f"{name}.bn_bias": beta,
                   f"{name}.bn_mean": mean, f"{name}.bn_var": var})
    if np.any(layer.bias != 0):
        arrays[f"{name}.bias"] = np.asarray(layer.bias, dtype=np.float64)
    lines += [comment("batch norm + sign folded into one integer threshold per neuron when "
                      "the spec is loaded (arrays <name>.bn_*; ties to +1)"),
              f"bn_eps = {eps!r}"]
    return "binary_dense", lines, arrays
