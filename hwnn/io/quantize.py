"""Formats for an imported float model within a bit budget of ``bits`` per value.

The rule (every choice is written into the spec with a comment saying why, and can be edited):

- **Weights**, per dense or conv1d layer: ``SQ(i, bits - i)`` with the smallest ``i`` (integer
  bits, sign included; it may be zero or negative for small weights) for which every weight,
  rounded half to even to ``bits - i`` fraction bits, is a code of the format: no weight
  saturates.
- **Activations** (the network input, each dense, conv1d and activation output): ``bits``
  bits with the fewest integer bits whose range holds the layer's value range ``[lo, hi]``:
  ``UQ(i, bits - i)`` with ``hi < 2**i`` when ``lo >= 0``, else ``SQ(i, bits - i)`` with
  ``-2**(i-1) <= lo`` and ``hi < 2**(i-1)``. A value that rounds up past the top code saturates
  (every layer uses ``overflow = "sat"``), an error of at most one unit in the last place.
- **Ranges**: with calibration data (``X.npy``, one row per input vector, or for a network
  over sequences an array ``(sequences, steps, channels)``, time-major) the input range and
  every layer's range are the minimum and maximum that the float model (float64, the original
  weights, :func:`hwnn.io.model.forward`) produces on it. Without, inputs are assumed in
  ``[-1, 1)`` and interval bounds are propagated per value (per channel over a sequence): a
  dense layer maps the box ``c ± r`` to ``W c + b ± |W| r`` (so ``|W x + b| <= |W| |x| +
  |b|``); a conv1d does the same with ``W`` and ``|W|`` summed over the kernel's taps (after
  widening the box to hold 0 when it pads); an activation (all are non-decreasing) maps
  ``[lo, hi]`` to ``[f(lo), f(hi)]``; max pooling and flatten keep the range, and so does an
  average (widened to hold 0 when it pads, as the padding counts as zeros). tanh and sigmoid
  never reach their bounds ``±1``/``0, 1``, so their range is open there and they get
  ``SQ(1, bits - 1)`` and ``UQ(0, bits)`` at most.
- **Pool and flatten** layers keep their input's format (no field is written): a maximum or a
  mean of codes (and zeros) is a code of the same format.
- **Binarized layers** (:mod:`hwnn.io.binary_spec`) choose nothing: a sign or a binarized
  neuron gives bits, a binarized layer without one its exact integer dot products. A dense
  layer after them takes bits ``b`` for ``±1 = 2b − 1`` with weights ``2W``: its weight format
  has one more integer bit than ``W``'s, the same codes (so has a binarized layer with a bias
  but no sign, written as such a dense layer).
- **LSTM and GRU** layers get ``bits = <budget>``: their own rule chooses every stage's format
  within it from the weights (:func:`hwnn.plans.rnn.default_formats`); the hidden state is
  within ``(-1, 1)`` (it is ``o⊙tanh(c)`` or a mix of tanh values), its range for the layers
  after it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..fixed import SQ, UQ, Format
from .binary_spec import bit_input_weight_format, takes_bits, written_as_dense
from .model import (FloatActivation, FloatBinaryDense, FloatConv1d, FloatDense, FloatFlatten,
                    FloatPool, FloatRecurrent, FloatSign, ModelError, forward)

__all__ = ["Choice", "MIN_BITS", "MAX_BITS", "weight_format", "range_format", "choose_formats"]

#: The bit budgets ``choose_formats`` takes (products of two 24-bit values and their sums stay
#: far inside the 62 bits of exact int64 arithmetic).
MIN_BITS, MAX_BITS = 2, 24
#: Functions whose outputs never reach the top of their range (open intervals).
_OPEN_TOP = {"tanh": 1.0, "sigmoid": 1.0}


@dataclass(frozen=True)
class Choice:
    """A chosen ``format`` (or, for a recurrent layer's ``bits``, an int) and ``why`` (one
    line, written above it in the spec)."""
    format: Format | int
    why: str


def _check_bits(bits) -> int:
    if not isinstance(bits, int) or isinstance(bits, bool) or not MIN_BITS <= bits <= MAX_BITS:
        raise ModelError(f"bits must be an integer from {MIN_BITS} to {MAX_BITS}, not {bits!r}")
    return bits


def weight_format(weight, bits: int) -> Format:
    """``SQ(i, bits - i)`` with the smallest ``i >= 1 - bits`` holding every weight rounded."""
    weight = np.asarray(weight, dtype=np.float64)
    top = 1 << (bits - 1)
    for i in range(1 - bits, 64):
        codes = np.rint(np.ldexp(weight, bits - i))  # rint: half to even, exact here
        if codes.size == 0 or (codes.max() < top and codes.min() >= -top):
            return SQ(i, bits - i)
    raise ModelError(f"weights up to {np.max(np.abs(weight)):.4g} need more than 63 integer bits")


def range_format(lo: float, hi: float, bits: int) -> Format:
    """The ``bits``-bit format with the fewest integer bits (at least ``1 - bits``) whose
    range holds ``[lo, hi]`` (unsigned when ``lo >= 0``; see the module docstring)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ModelError(f"a layer's value range [{lo}, {hi}] is not finite")
    for i in range(1 - bits, 64):
        if lo >= 0 and hi < math.ldexp(1, i):
            return UQ(i, bits - i)
        if lo < 0 and -math.ldexp(1, i - 1) <= lo and hi < math.ldexp(1, i - 1):
            return SQ(i, bits - i)
    raise ModelError(f"a layer's value range [{lo:.4g}, {hi:.4g}] needs more than 63 integer "
                     f"bits")


def _range_choice(lo, hi, bits, what) -> Choice:
    fmt = range_format(lo, hi, bits)
    return Choice(fmt, f"{what} in [{lo:.6g}, {hi:.6g}] -> {fmt}: the fewest integer bits "
                       f"of {bits} that hold it")


def _input_shape(layers) -> tuple:
    """The shape of one input: ``(n_in,)``, or ``(steps, channels)`` before a conv1d (the
    readers start every network with a dense or conv1d layer)."""
    first = next(layer for layer in layers if not isinstance(layer, FloatSign))  # the width
    if isinstance(first, (FloatDense, FloatBinaryDense)):
        return (first.weight.shape[1],)
    if isinstance(first, FloatRecurrent):
        return first.in_steps, first.input_size
    return first.in_steps, first.weight.shape[1] * first.groups


def _widen_for_padding(layer, lo, hi):
    """The box with 0 added when ``layer`` pads (padding steps are zeros)."""
    if any(layer.window.padding) and not (isinstance(layer, FloatPool) and layer.kind == "max"):
        return np.minimum(lo, 0.0), np.maximum(hi, 0.0)
    return lo, hi


def _interval_ranges(layers, shape) -> list[tuple[float, float]]:
    """Interval bounds of every layer for inputs in [-1, 1) (module docstring)."""
    lo, hi = np.full(shape[-1], -1.0), np.full(shape[-1], 1.0)
    ranges = []
    for layer in layers:
        if isinstance(layer, FloatDense) or (isinstance(layer, FloatBinaryDense)
                                             and layer.batchnorm is None):
            center = layer.weight @ ((lo + hi) / 2) + layer.bias
            radius = np.abs(layer.weight) @ ((hi - lo) / 2)
            lo, hi = center - radius, center + radius
        elif isinstance(layer, FloatConv1d):
            lo, hi = _widen_for_padding(layer, lo, hi)
            out, width = layer.weight.shape[:2]
            # Output channel o reads the input channels of its group.
            index = (np.arange(out)[:, None] // (out // layer.groups)) * width + np.arange(width)
            center = np.sum(layer.weight.sum(axis=2) * ((lo + hi) / 2)[index], axis=1)
            radius = np.sum(np.abs(layer.weight).sum(axis=2) * ((hi - lo) / 2)[index], axis=1)
            lo, hi = center + layer.bias - radius, center + layer.bias + radius
        elif isinstance(layer, FloatPool):
            lo, hi = _widen_for_padding(layer, lo, hi)
        elif isinstance(layer, FloatRecurrent):
            lo, hi = np.full(layer.out_size, -1.0), np.full(layer.out_size, 1.0)
        elif isinstance(layer, (FloatSign, FloatBinaryDense)):  # a sign: either value
            width = layer.weight.shape[0] if isinstance(layer, FloatBinaryDense) else len(lo)
            lo, hi = np.full(width, -1.0), np.full(width, 1.0)
        elif isinstance(layer, FloatFlatten):  # channel-major: each channel's bound per step
            lo, hi = np.repeat(lo, layer.steps), np.repeat(hi, layer.steps)
        else:
            lo, hi = layer.evaluate(lo), layer.evaluate(hi)
        ranges.append((float(lo.min()), float(hi.max())))
    return ranges


def choose_formats(layers, bits: int = 8, calibration=None) -> tuple[Choice, list[dict]]:
    """Formats of a float model: ``(input choice, [per-layer {field: Choice}])``.

    Parameters
    ----------
    layers : list of the float layers of :mod:`hwnn.io.model`
    bits : int
        Width of every weight and activation, 2 to 24.
    calibration : array (n, n_in), or (n, steps, channels) for sequences, optional
        Inputs whose float outputs give the ranges; default: inputs in ``[-1, 1)`` and interval
        bounds.

    Returns one dict per layer: ``weight_format`` and ``out_format`` for dense and conv1d
    layers, ``out_format`` for activations, ``bits`` (an int) for LSTM and GRU layers, nothing
    for pool and flatten layers.

    Raises
    ------
    ModelError
        ``bits`` out of range, calibration data of the wrong shape or not finite.
    """
    bits = _check_bits(bits)
    shape = _input_shape(layers)
    if calibration is not None:
        x = np.asarray(calibration)
        if x.shape[1:] != shape or x.shape[0] == 0 or not np.issubdtype(x.dtype, np.number):
            rows = ("one row per input vector" if len(shape) == 1 else
                    "sequences of steps x channels, time-major")
            raise ModelError(f"calibration data must be a numeric array of shape "
                             f"(n, {', '.join(map(str, shape))}) ({rows}), not {x.dtype} "
                             f"{x.shape}")
        x = x.astype(np.float64)
        if not np.all(np.isfinite(x)):
            raise ModelError("calibration data must be finite (it holds NaN or inf)")
        what = "vectors" if len(shape) == 1 else "sequences"
        how = f"measured on {len(x)} calibration {what}"
        ranges = [(float(y.min()), float(y.max())) for y in forward(layers, x)]
        in_choice = _range_choice(float(x.min()), float(x.max()), bits,
                                  f"calibration inputs ({how})")
    else:
        how = "interval bound for inputs in [-1, 1)"
        ranges = _interval_ranges(layers, shape)
        in_choice = Choice(SQ(1, bits - 1), f"inputs assumed in [-1, 1) (no calibration data) "
                                            f"-> SQ(1, {bits - 1})")
    choices = []
    for layer, (lo, hi), bits_in in zip(layers, ranges, takes_bits(layers)):
        if isinstance(layer, (FloatDense, FloatConv1d)) or written_as_dense(layer):
            w = weight_format(layer.weight, bits)
            biggest = float(np.max(np.abs(layer.weight)))
            why = (f"max|w| = {biggest:.6g} -> {w}: the fewest integer bits of {bits} that hold "
                   f"every rounded weight")
            if bits_in:
                w = bit_input_weight_format(w)
                why += f"; doubled on bits (2W, the same codes) -> {w}"
            choices.append({
                "weight_format": Choice(w, why),
                "out_format": _range_choice(lo, hi, bits, f"outputs ({how})"),
            })
        elif isinstance(layer, FloatActivation):
            what = f"{layer.function} outputs ({how})"
            top = _OPEN_TOP.get(layer.function)
            if top is not None and hi >= top:
                hi = math.nextafter(top, 0.0)
                what = f"{layer.function} outputs ({how}; it never reaches {top:g})"
            choices.append({"out_format": _range_choice(lo, hi, bits, what)})
        elif isinstance(layer, FloatRecurrent):
            choices.append({"bits": Choice(bits, f"every stage of the {layer.kind} in {bits} "
                                                 f"bits, each format chosen from the weights "
                                                 f"(hwnn.plans.rnn.default_formats)")})
        else:
            choices.append({})
    return in_choice, choices
