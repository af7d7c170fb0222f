"""Reference models of popcounts and binary (XNOR-popcount) dot products, in numpy integers.

Bits are 0/1 integers (or bools) along the last axis of an array. The bipolar encoding is
FINN's: bit 1 stands for +1 and bit 0 for −1, so for ``a, w`` in ``{0, 1}^N``::

    xnor_popcount(a, w) = popcount(~(a ^ w))          (positions where a and w agree)
    bipolar_dot(a, w)   = 2 · xnor_popcount(a, w) − N  (= Σ (2a − 1)(2w − 1))
"""

from __future__ import annotations

import numpy as np

from ..checks import ParameterTypeError, ParameterValueError

__all__ = ["bits_array", "popcount", "xnor_popcount", "bipolar_dot", "popcount_width",
           "bipolar_width"]


def bits_array(bits, name: str = "bits") -> np.ndarray:
    """``bits`` (called ``name`` in messages) as an int64 array of 0/1 with at least one axis.

    Raises
    ------
    TypeError
        ``bits`` is not an array of integers or bools.
    ValueError
        ``bits`` has no axis, an empty last axis, or a value other than 0 and 1.
    """
    array = np.asarray(bits)
    if array.dtype.kind not in "biu":
        raise ParameterTypeError(name, f"{name} must be an array of 0/1 integers or bools, "
                                       f"not an array of dtype {array.dtype}")
    if array.ndim == 0 or array.shape[-1] == 0:
        raise ParameterValueError(name, f"{name} must have a non-empty last axis (the bits), "
                                        f"not shape {array.shape}")
    if array.size and (array.min() < 0 or array.max() > 1):
        bad = int(array[(array < 0) | (array > 1)].flat[0])
        raise ParameterValueError(name, f"{name} must hold only 0 and 1, not {bad!r}")
    return array.astype(np.int64)


def popcount_width(n: int) -> int:
    """Bits of an exact unsigned count of ``n`` bits: ``ceil(log2(n + 1))``."""
    return int(n).bit_length()


def bipolar_width(n: int) -> int:
    """Bits of an exact signed bipolar dot product of length ``n`` (range ``[−n, n]``)."""
    return int(n).bit_length() + 1


def popcount(bits) -> np.ndarray:
    """The number of ones along the last axis of ``bits`` (int64; errors as :func:`bits_array`)."""
    return bits_array(bits).sum(axis=-1)


def _pair(a, w) -> tuple[np.ndarray, np.ndarray]:
    a, w = bits_array(a, "a"), bits_array(w, "w")
    if a.shape[-1] != w.shape[-1]:
        raise ParameterValueError("w", f"w must have as many bits as a ({a.shape[-1]}), "
                                       f"not {w.shape[-1]}")
    return a, w


def xnor_popcount(a, w) -> np.ndarray:
    """``popcount(XNOR(a, w))`` along the last axis: the positions where ``a`` and ``w`` agree.

    ``a`` and ``w`` broadcast against each other (one weight vector for many inputs, or one
    input against many weight rows).

    Raises
    ------
    TypeError, ValueError
        As :func:`bits_array` for ``a`` or ``w``; ``w`` with another bit count than ``a``.
    """
    a, w = _pair(a, w)
    return (1 - (a ^ w)).sum(axis=-1)


def bipolar_dot(a, w) -> np.ndarray:
    """The ±1 dot product of ``a`` and ``w`` (bit 1 = +1, 0 = −1), FINN's
    ``2 · popcount(XNOR(a, w)) − N`` (errors as :func:`xnor_popcount`)."""
    a, w = _pair(a, w)
    return 2 * xnor_popcount(a, w) - a.shape[-1]
