"""An independent model of rounding and overflow, written with exact rationals.

It shares no code with hwnn.fixed: it follows the definitions (floor, ties up, ties to even,
clamp, modulo 2**width) on `fractions.Fraction` values, one number at a time.
"""

from fractions import Fraction
import math

from hwnn.fixed import SQ, UQ


def round_rational(value: Fraction, rounding: str) -> int:
    n = math.floor(value)
    d = value - n
    if rounding == "trunc":
        return n
    if rounding == "half_up":
        return n + (1 if d >= Fraction(1, 2) else 0)
    if rounding == "half_even":
        if d > Fraction(1, 2):
            return n + 1
        if d == Fraction(1, 2):
            return n + (n % 2)
        return n
    raise AssertionError(rounding)


def fit(n: int, signed: bool, width: int, overflow: str) -> int:
    lo = -(2 ** (width - 1)) if signed else 0
    hi = 2 ** (width - 1) - 1 if signed else 2 ** width - 1
    if overflow == "sat":
        return min(max(n, lo), hi)
    return (n - lo) % (2 ** width) + lo


def requantize_one(q: int, src_f: int, dst_signed: bool, dst_i: int, dst_f: int, rounding: str,
                   overflow: str) -> int:
    value = Fraction(q) / Fraction(2) ** src_f
    scaled = value * Fraction(2) ** dst_f
    return fit(round_rational(scaled, rounding), dst_signed, dst_i + dst_f, overflow)


def quantize_one(x: float, signed: bool, i: int, f: int, rounding: str, overflow: str) -> int:
    scaled = Fraction(x) * Fraction(2) ** f
    return fit(round_rational(scaled, rounding), signed, i + f, overflow)


# Format pairs that exercise every requantize path: both shift directions, sign changes,
# negative fraction bits, and a shift wider than the source.
REQUANT_PAIRS = [
    (SQ(3, 4), SQ(2, 2)),    # drop fraction bits and integer bits
    (SQ(3, 4), UQ(2, 2)),    # signed to unsigned: negatives saturate at 0 or wrap
    (UQ(4, 3), SQ(2, 5)),    # unsigned to signed, more fraction bits (left shift)
    (SQ(2, 3), SQ(4, 6)),    # pure widening
    (SQ(4, 4), SQ(4, 4)),    # identity
    (UQ(3, 5), UQ(1, 1)),
    (SQ(4, 2), SQ(3, -1)),   # negative fraction bits
    (SQ(2, 2), SQ(6, -3)),   # shift (5) wider than the source (4 bits)
    (UQ(2, 4), UQ(5, 0)),
    (SQ(1, 7), SQ(1, 3)),
]


def plan_id(case):
    """A readable pytest id for an activation case (function, in, out, options)."""
    function, fin, fout, options = case
    return f"{function}-{fin}-{fout}-" + "-".join(f"{k}={v}" for k, v in options.items())
