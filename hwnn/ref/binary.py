"""Binary encodings, binary dot products, and the thresholding that binarized layers end with.

Encodings (one bit per value; a vector is an array whose last axis holds the bits):

* ``binary``: bit ``b`` stands for the value ``b`` (0 or 1).
* ``bipolar``: bit ``b`` stands for ``2·b − 1``, so bit 1 is +1 and bit 0 is −1 (FINN's and
  Brevitas' convention).

Dot products of an activation vector ``a`` (length ``N``) with each row of a weight matrix ``w``
(shape ``(n_out, N)``, as :mod:`hwnn.ref.dense`), computed the way the hardware does, with
popcounts of bitwise operations, never by decoding and multiplying:

==================  =================  ===========================================
activations         weights            dot product
==================  =================  ===========================================
bipolar             bipolar            ``2·popcount(XNOR(a, w)) − N``
binary              bipolar            ``2·popcount(a AND w) − popcount(a)``
bipolar             binary             ``2·popcount(a AND w) − popcount(w)``
binary              binary             ``popcount(a AND w)``
integer codes ``x``  bipolar            ``Σ (w ? x : −x)`` (a BNN's first layer)
integer codes ``x``  binary             ``Σ (w ? x : 0)``
==================  =================  ===========================================

Thresholding (:func:`multithreshold`): with ``L = 2**k − 1`` ascending integer thresholds
``T_1 ≤ … ≤ T_L`` per channel, the count ``c = #{i : T_i ≤ s}`` of thresholds at or below the
integer ``s`` gives the ``k``-bit output code ``out.min_int + c`` (an increasing activation) or
``out.max_int − c`` (a decreasing one). A single threshold (``k = 1``, ``UQ(1, 0)`` output) is a
binarized neuron: bit 1 (+1 in the bipolar encoding) when ``s ≥ T``, or ``s < T`` when
decreasing. The thresholds come from :mod:`hwnn.plans.threshold`.

Everything here is exact int64 arithmetic except :func:`batchnorm_sign`, the float64 model that
the folded thresholds are checked against (ties: ``sign(0) = +1``).
"""

from __future__ import annotations

import numpy as np

from ..checks import ParameterTypeError, ParameterValueError, check_choice
from ._inputs import check_codes

__all__ = ["ENCODINGS", "check_bits", "multithreshold_float", "to_bipolar", "from_bipolar", "decode", "binary_dot",
           "integer_dot", "dot_range", "multithreshold", "batchnorm_sign"]

#: The one-bit encodings.
ENCODINGS = ("binary", "bipolar")


def check_bits(bits, name: str) -> np.ndarray:
    """``bits`` as an int64 array of 0s and 1s (bool or integer input).

    Raises
    ------
    TypeError
        ``bits`` is neither bool nor integer (``exc.parameter == name``).
    ValueError
        ``bits`` holds a value other than 0 and 1 (the message names the first one).
    """
    bits = np.asarray(bits)
    if bits.dtype != np.bool_ and not np.issubdtype(bits.dtype, np.integer):
        raise ParameterTypeError(name, f"{name} must hold bits (bool or 0/1 integers), not dtype "
                                       f"{bits.dtype}")
    if bits.dtype != np.bool_ and bits.size and not np.isin(bits, (0, 1)).all():
        bad = bits[~np.isin(bits, (0, 1))].ravel()[0]
        raise ParameterValueError(name, f"{name} must hold bits (0 or 1), not {int(bad)!r}")
    return bits.astype(np.int64)


def to_bipolar(bits) -> np.ndarray:
    """The ±1 values (int64) that ``bits`` stand for in the bipolar encoding: ``2·b − 1``.

    Raises
    ------
    TypeError, ValueError
        ``bits`` is not an array of bits (``exc.parameter == "bits"``).
    """
    return 2 * check_bits(bits, "bits") - 1


def from_bipolar(values) -> np.ndarray:
    """The bits (int64 0/1) that encode ±1 ``values`` in the bipolar encoding: +1 → 1, −1 → 0.

    Raises
    ------
    TypeError
        ``values`` is not integer.
    ValueError
        ``values`` holds something other than −1 and +1 (the message names the first one).
    """
    values = np.asarray(values)
    if values.dtype == np.bool_ or not np.issubdtype(values.dtype, np.integer):
        raise ParameterTypeError("values", f"values must be integers -1 or +1, not dtype "
                                           f"{values.dtype}")
    if values.size and not np.isin(values, (-1, 1)).all():
        bad = values[~np.isin(values, (-1, 1))].ravel()[0]
        raise ParameterValueError("values", f"values must be -1 or +1, not {int(bad)!r}")
    return (values > 0).astype(np.int64)


def decode(bits, encoding: str) -> np.ndarray:
    """The integer values (int64) that ``bits`` stand for in ``encoding`` (``binary`` or
    ``bipolar``).

    Raises
    ------
    TypeError, ValueError
        ``bits`` is not an array of bits, or ``encoding`` is not one of :data:`ENCODINGS`.
    """
    encoding = check_choice(encoding, "encoding", ENCODINGS)
    return to_bipolar(bits) if encoding == "bipolar" else check_bits(bits, "bits")


def _check_shapes(a, w, a_name):
    if w.ndim != 2:
        raise ParameterValueError("w", f"w must have shape (n_out, N), not {w.shape}")
    if a.ndim == 0 or a.shape[-1] != w.shape[1]:
        raise ParameterValueError(a_name, f"{a_name} must have N = {w.shape[1]} values on its "
                                          f"last axis (as w has), not shape {a.shape}")


def _popcount(bits) -> np.ndarray:
    return bits.sum(axis=-1, dtype=np.int64)


def binary_dot(a, w, *, a_encoding: str = "bipolar", w_encoding: str = "bipolar") -> np.ndarray:
    """The dot products of bit vectors ``a`` (shape ``(..., N)``) with each row of the bit
    matrix ``w`` (shape ``(n_out, N)``), in the encodings given, as popcounts (module table).

    Returns int64 of shape ``(..., n_out)``: the dot products of the decoded values.

    Raises
    ------
    TypeError, ValueError
        ``a`` or ``w`` is not an array of bits, their shapes do not match, or an encoding is
        not one of :data:`ENCODINGS` (the error names the parameter).
    """
    a_encoding = check_choice(a_encoding, "a_encoding", ENCODINGS)
    w_encoding = check_choice(w_encoding, "w_encoding", ENCODINGS)
    a, w = check_bits(a, "a"), check_bits(w, "w")
    _check_shapes(a, w, "a")
    a = a[..., np.newaxis, :]
    n = w.shape[1]
    if a_encoding == w_encoding == "bipolar":
        return 2 * _popcount(1 - (a ^ w)) - n
    both = _popcount(a & w)
    if a_encoding == w_encoding == "binary":
        return both
    if a_encoding == "binary":
        return 2 * both - _popcount(a)
    return 2 * both - _popcount(w)


def integer_dot(x, w, in_format, *, w_encoding: str = "bipolar") -> np.ndarray:
    """The dot products of integer codes ``x`` (shape ``(..., N)``, codes of ``in_format``)
    with each row of the bit matrix ``w`` (shape ``(n_out, N)``): ``Σ ±x`` for bipolar weights
    (a BNN's first layer), ``Σ x`` over the set bits for binary ones. int64, shape
    ``(..., n_out)``.

    Raises
    ------
    TypeError, ValueError
        ``x`` holds no codes of ``in_format``, ``w`` is not an array of bits, the shapes do not
        match, or ``w_encoding`` is not one of :data:`ENCODINGS`.
    """
    w_encoding = check_choice(w_encoding, "w_encoding", ENCODINGS)
    x, w = check_codes(in_format, x), check_bits(w, "w")
    _check_shapes(x, w, "x")
    x = x[..., np.newaxis, :]
    negative = 0 if w_encoding == "binary" else -x
    return np.where(w == 1, x, negative).sum(axis=-1, dtype=np.int64)


def dot_range(n: int, a_encoding: str, w_encoding: str = "bipolar", in_format=None) -> tuple:
    """``(lo, hi)``: the exact range of a dot product of length ``n`` over all inputs and
    weights, for activations in ``a_encoding`` (``binary``, ``bipolar`` or ``integer``, the
    last with codes of ``in_format``) and weights in ``w_encoding``.

    Raises
    ------
    TypeError, ValueError
        ``n`` is not a positive integer, an encoding is unknown, or ``in_format`` is missing
        for (or given to) anything but integer activations.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ParameterTypeError("n", f"n must be a positive integer, not {n!r}")
    if n < 1:
        raise ParameterValueError("n", f"n must be a positive integer, not {n!r}")
    a_encoding = check_choice(a_encoding, "a_encoding", (*ENCODINGS, "integer"))
    w_encoding = check_choice(w_encoding, "w_encoding", ENCODINGS)
    if (in_format is None) != (a_encoding != "integer"):
        raise ParameterValueError("in_format", f"in_format must be given for integer "
                                               f"activations only, not {in_format!r} with "
                                               f"a_encoding {a_encoding!r}")
    n = int(n)
    if a_encoding == "integer":
        lo, hi = in_format.min_int, in_format.max_int
    else:
        lo, hi = (-1, 1) if a_encoding == "bipolar" else (0, 1)
    if w_encoding == "bipolar":
        # Each term is ±x, so it reaches ±max(|lo|, |hi|) in both directions.
        big = max(-lo, hi)
        return -n * big, n * big
    return n * min(lo, 0), n * max(hi, 0)


def multithreshold(plan, s) -> np.ndarray:
    """Output codes of ``plan.out_format`` for integer inputs ``s`` (codes of
    ``plan.in_format``): the count of thresholds at or below ``s``, per channel, mapped to the
    output as in the module docstring.

    ``plan`` is a :class:`~hwnn.plans.threshold.ThresholdPlan` or anything with its attributes
    (``thresholds`` of shape ``(channels, 2**k − 1)``, ``descending`` of shape
    ``(channels,)``, ``in_format``, ``out_format``). ``s`` has shape ``(n, channels)``, or any
    shape when the plan has one channel.

    Raises
    ------
    TypeError, ValueError
        ``s`` holds no codes of ``plan.in_format``, or its last axis is not ``channels`` long.
    """
    s = check_codes(plan.in_format, s)
    thresholds, descending = np.asarray(plan.thresholds), np.asarray(plan.descending)
    channels = thresholds.shape[0]
    if channels == 1:
        thresholds, descending = thresholds[0], descending[0]
    elif s.ndim == 0 or s.shape[-1] != channels:
        raise ParameterValueError("s", f"s must have the plan's {channels} channels on its "
                                       f"last axis, not shape {s.shape}")
    count = (s[..., np.newaxis] >= thresholds).sum(axis=-1, dtype=np.int64)
    out = plan.out_format
    return np.where(descending, out.max_int - count, out.min_int + count)


def multithreshold_float(plan, x) -> np.ndarray:
    """The float64 model of :func:`multithreshold` for real inputs ``x`` (the same shapes): the
    count of thresholds ``T`` with ``x ≥ T·2**-in_format.f`` (exact: the thresholds are
    float64 values), mapped to the output codes as there and returned as real values
    (``code·2**-out_format.f``). On the real value of a code it equals
    :func:`multithreshold` of that code."""
    x = np.asarray(x, dtype=np.float64)
    levels = np.ldexp(np.asarray(plan.thresholds, dtype=np.float64), -plan.in_format.f)
    descending = np.asarray(plan.descending)
    if levels.shape[0] == 1:
        levels, descending = levels[0], descending[0]
    count = (x[..., np.newaxis] >= levels).sum(axis=-1)
    out = plan.out_format
    codes = np.where(descending, out.max_int - count, out.min_int + count)
    return np.ldexp(codes.astype(np.float64), -out.f)


def batchnorm_sign(s, gamma, beta, mean, var, eps) -> np.ndarray:
    """The float64 model of batch norm + sign: bit 1 (+1) where
    ``gamma * (s - mean) / sqrt(var + eps) + beta >= 0``, else 0 (−1), element-wise (the
    parameters broadcast against ``s``, one per channel on its last axis).

    Ties: ``sign(0) = +1``, as FINN and Brevitas binarize (``x >= 0``); ONNX's ``Sign(0) = 0``
    has no bit to go to. The expression is evaluated in this order, in float64; it is the
    decision the folded thresholds of :func:`hwnn.plans.threshold.plan_batchnorm_sign`
    reproduce on every integer ``s``.
    """
    s = np.asarray(s, dtype=np.float64)
    gamma, beta, mean, var, eps = (np.asarray(p, dtype=np.float64)
                                   for p in (gamma, beta, mean, var, eps))
    z = gamma * (s - mean) / np.sqrt(var + eps) + beta
    return (z >= 0).astype(np.int64)
