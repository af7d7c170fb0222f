"""Fixed-point formats and exact integer quantization (numpy only, no Amaranth).

A value in format ``SQ(i, f)`` is a signed two's-complement integer ``q`` of ``i + f`` bits that
stands for the real number ``q * 2**-f``; ``i`` counts the integer bits *including* the sign.
``UQ(i, f)`` is the unsigned counterpart. These are the names of Amaranth RFC 41.

Everything here computes on ``np.int64`` with arithmetic shifts; no float touches a quantized
value except in :func:`quantize` (float in) and :func:`to_float` (float out), and both are exact
wherever float64 can be.
"""

from __future__ import annotations

import enum
import operator
import re
from dataclasses import dataclass

import numpy as np

from .checks import ParameterTypeError, ParameterValueError, check_enum

__all__ = [
    "Format", "SQ", "UQ", "Rounding", "Overflow", "MAX_WIDTH",
    "parse_format", "check_format", "signed_bits_for", "quantize", "real_array", "to_float",
    "requantize", "requantize_shift",
]

#: The widest format hwnn accepts. Reference models compute in int64; keeping formats to 62
#: bits leaves room for a rounding increment and a carry without overflow.
MAX_WIDTH = 62


class Rounding(enum.Enum):
    """How dropped fraction bits are rounded."""
    TRUNC = "trunc"          #: floor (towards minus infinity): just drop the bits
    HALF_UP = "half_up"      #: to nearest, ties towards plus infinity
    HALF_EVEN = "half_even"  #: to nearest, ties to the even neighbour (IEEE 754 default)


class Overflow(enum.Enum):
    """What happens to a value outside the destination range."""
    WRAP = "wrap"  #: keep the low bits (two's-complement wrap-around)
    SAT = "sat"    #: clamp to the nearest representable value


@dataclass(frozen=True)
class Format:
    """A fixed-point format: ``signed``, ``i`` integer bits (sign included), ``f`` fraction bits.

    Build one with :func:`SQ`, :func:`UQ` or :func:`parse_format`. ``i`` or ``f`` may be negative
    (a format whose range sits entirely below or above the binary point), but the width
    ``i + f`` must be between 1 (2 for signed) and :data:`MAX_WIDTH`.

    Raises
    ------
    TypeError
        ``i`` or ``f`` is not an integer.
    ValueError
        The width is out of range.
    """
    signed: bool
    i: int
    f: int

    def __post_init__(self):
        for name in ("i", "f"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise ParameterTypeError(name, f"Format {name} must be an integer, not {value!r}")
            object.__setattr__(self, name, int(value))
        min_width = 2 if self.signed else 1
        if not min_width <= self.width <= MAX_WIDTH:
            # The width is i + f: the fraction bits are where a too-wide format is usually
            # fixed, so f names the parameter.
            raise ParameterValueError(
                "f", f"Format {self._name()} has width {self.width}; the width i + f must be between "
                     f"{min_width} and {MAX_WIDTH}")

    def _name(self):
        return f"{'SQ' if self.signed else 'UQ'}({self.i}, {self.f})"

    def __repr__(self):
        return self._name()

    __str__ = __repr__

    @property
    def width(self) -> int:
        """Total number of bits, ``i + f``."""
        return self.i + self.f

    @property
    def min_int(self) -> int:
        """Smallest integer code."""
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_int(self) -> int:
        """Largest integer code."""
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def resolution(self) -> float:
        """The real value of one unit in the last place, ``2**-f``."""
        return 2.0 ** -self.f

    @property
    def min(self) -> float:
        """Smallest representable real value."""
        return self.min_int * self.resolution

    @property
    def max(self) -> float:
        """Largest representable real value."""
        return self.max_int * self.resolution

    def codes(self) -> np.ndarray:
        """Every integer code of the format, ascending, as int64."""
        return np.arange(self.min_int, self.max_int + 1, dtype=np.int64)

    def contains(self, q) -> np.ndarray:
        """Element-wise: is each integer in ``q`` a code of this format?"""
        q = np.asarray(q)
        return (q >= self.min_int) & (q <= self.max_int)

    @classmethod
    def parse(cls, text: str) -> "Format":
        """Parse ``"SQ(4,12)"``, ``"UQ(0, 8)"`` (case-insensitive, spaces allowed)."""
        return parse_format(text)


def SQ(i: int, f: int) -> Format:
    """Signed format with ``i`` integer bits (sign included) and ``f`` fraction bits."""
    return Format(True, i, f)


def UQ(i: int, f: int) -> Format:
    """Unsigned format with ``i`` integer bits and ``f`` fraction bits."""
    return Format(False, i, f)


def signed_bits_for(lo: int, hi: int) -> int:
    """Fewest bits of a two's-complement integer that holds every value in ``[lo, hi]``.

    A non-negative ``v`` needs ``v.bit_length()`` bits plus a sign bit; a negative one needs as
    many as its complement ``~v = -v - 1`` (``-2**k`` fits in ``k + 1`` bits). ``signed_bits_for(0,
    0) == 1``.
    """
    lo, hi = operator.index(lo), operator.index(hi)
    return 1 + max((lo if lo >= 0 else ~lo).bit_length(), (hi if hi >= 0 else ~hi).bit_length())


_FORMAT_RE = re.compile(r"^\s*([SU])Q\s*\(\s*(-?\d+)\s*,\s*(-?\d+)\s*\)\s*$", re.IGNORECASE)


def parse_format(text) -> Format:
    """Parse a format string such as ``"SQ(4,12)"`` or ``"UQ(0,8)"``.

    A :class:`Format` passes through unchanged.

    Raises
    ------
    TypeError
        ``text`` is neither a string nor a :class:`Format`.
    ValueError
        The string is not of the form ``SQ(i,f)``/``UQ(i,f)`` or describes a bad format.
    """
    if isinstance(text, Format):
        return text
    if not isinstance(text, str):
        raise ParameterTypeError("text", f"Format must be a string like 'SQ(4,12)' or a Format, "
                                         f"not {text!r}")
    match = _FORMAT_RE.match(text)
    if match is None:
        raise ParameterValueError("text", f"Format must look like 'SQ(4,12)' or 'UQ(0,8)', not "
                                          f"{text!r}")
    kind, i, f = match.groups()
    return Format(kind.upper() == "S", int(i), int(f))


def check_format(fmt, name: str) -> Format:
    """``fmt`` as a :class:`Format`: a Format, or a string such as ``"SQ(4,12)"``.

    Raises
    ------
    ParameterTypeError
        ``fmt`` is neither (the message names ``name``).
    ParameterValueError
        ``fmt`` is a string that is not a valid format.
    """
    if isinstance(fmt, Format):
        return fmt
    if isinstance(fmt, str):
        try:
            return parse_format(fmt)
        except ValueError:
            raise ParameterValueError(name, f"{name} must be a format like 'SQ(4,12)' or "
                                            f"'UQ(0,8)', not {fmt!r}") from None
    raise ParameterTypeError(name, f"{name} must be a Format (SQ/UQ) or a format string, "
                                   f"not {fmt!r}")


def _as_int_array(q, name) -> np.ndarray:
    array = np.asarray(q)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        if array.dtype == object:
            try:
                codes = [int(v) for v in array.ravel()]
                return np.asarray(codes, dtype=np.int64).reshape(array.shape)
            except (TypeError, ValueError, OverflowError):
                pass
        raise ParameterTypeError(name, f"{name} must hold integer codes, not dtype "
                                       f"{array.dtype}")
    if array.dtype == np.uint64 and array.size and array.max() > np.iinfo(np.int64).max:
        raise ParameterValueError(name, f"{name} holds values too large for int64 arithmetic")
    return array.astype(np.int64)


def _round_shift(q: np.ndarray, shift: int, rounding: Rounding) -> np.ndarray:
    """``q * 2**-shift`` rounded to an integer, for ``shift >= 1`` (exact int64)."""
    # The callers keep |q| < 2**62; shifting by more than 62 rounds every such q the same way
    # as shifting by 62 does (to 0 or -1), so clamping keeps the bit tricks below in range.
    shift = min(shift, 62)
    floor = q >> shift
    if rounding is Rounding.TRUNC:
        return floor
    remainder = q - (floor << shift)
    half = np.int64(1) << np.int64(shift - 1)
    if rounding is Rounding.HALF_UP:
        return floor + (remainder >= half)
    return floor + ((remainder > half) | ((remainder == half) & ((floor & 1) == 1)))


def _fit(q: np.ndarray, fmt: Format, overflow: Overflow) -> np.ndarray:
    """Bring integers into ``fmt``'s code range by saturation or two's-complement wrap."""
    if overflow is Overflow.SAT:
        return np.clip(q, fmt.min_int, fmt.max_int)
    mask = np.int64((1 << fmt.width) - 1)
    wrapped = q & mask
    if fmt.signed:
        top = np.int64(1) << np.int64(fmt.width - 1)
        wrapped = wrapped - ((wrapped & top) << 1)
    return wrapped


def requantize_shift(src: Format, dst: Format) -> int:
    """How far ``requantize`` shifts right: ``src.f - dst.f`` (negative means a left shift)."""
    return src.f - dst.f


def requantize(q, src, dst, rounding=Rounding.TRUNC, overflow=Overflow.WRAP) -> np.ndarray:
    """Convert integer codes ``q`` of format ``src`` to format ``dst``.

    Fraction bits that ``dst`` lacks are dropped with ``rounding``; a value outside ``dst`` is
    clamped or wrapped per ``overflow`` (signed to unsigned saturates negatives at 0). Exact
    integer arithmetic; the hardware :func:`hwnn.cores.requantize.requantize` builds the same
    function.

    Raises
    ------
    TypeError
        ``q`` is not integer, or a format or mode has the wrong type.
    ValueError
        ``q`` holds codes outside ``src``, or the left shift would leave int64 range.
    """
    src = check_format(src, "src")
    dst = check_format(dst, "dst")
    rounding = check_enum(Rounding, rounding, "rounding")
    overflow = check_enum(Overflow, overflow, "overflow")
    q = _as_int_array(q, "q")
    if q.size and not np.all(src.contains(q)):
        bad = q[~src.contains(q)].ravel()[0]
        raise ParameterValueError("q", f"q holds the code {int(bad)}, which is outside {src} "
                                       f"[{src.min_int}, {src.max_int}]")
    shift = requantize_shift(src, dst)
    if shift > 0:
        scaled = _round_shift(q, shift, rounding)
    elif shift < 0:
        if src.width - shift > 63:
            raise ParameterValueError("dst", f"requantize from {src} to {dst} shifts left by "
                                             f"{-shift} bits, beyond int64 range")
        scaled = q << np.int64(-shift)
    else:
        scaled = q.copy()
    return _fit(scaled, dst, overflow)


def real_array(values, name: str) -> np.ndarray:
    """``values`` as float64, checked: real numbers (integers or floats, not bools), finite.

    Raises
    ------
    TypeError
        ``values`` does not hold real numbers (the message names ``name`` and the dtype).
    ValueError
        ``values`` holds NaN or infinity.
    """
    x = np.asarray(values)
    if x.dtype == np.bool_ or not (np.issubdtype(x.dtype, np.floating)
                                   or np.issubdtype(x.dtype, np.integer)):
        raise ParameterTypeError(name, f"{name} must hold real numbers, not dtype {x.dtype}")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ParameterValueError(name, f"{name} holds NaN or infinity")
    return x


def quantize(x, fmt, rounding=Rounding.HALF_EVEN, overflow=Overflow.SAT) -> np.ndarray:
    """Quantize real numbers ``x`` to integer codes of ``fmt`` (``round(x * 2**f)``).

    The scaling by a power of two is exact in float64, and so is the rounding below, so the
    result is the exactly rounded code of each float.

    Raises
    ------
    TypeError
        ``x`` is not numeric, or a format or mode has the wrong type.
    ValueError
        ``x`` holds NaN or infinity.
    """
    fmt = check_format(fmt, "fmt")
    rounding = check_enum(Rounding, rounding, "rounding")
    overflow = check_enum(Overflow, overflow, "overflow")
    x = real_array(x, "x")
    with np.errstate(over="ignore"):    # an overflow to inf is reported just below
        scaled = np.ldexp(x, fmt.f)
    if not np.all(np.isfinite(scaled)):
        raise ParameterValueError("x", f"x holds values too large to scale into {fmt}")
    floor = np.floor(scaled)
    frac = scaled - floor  # exact: both are floats within one unit of each other
    if rounding is Rounding.TRUNC:
        rounded = floor
    elif rounding is Rounding.HALF_UP:
        rounded = floor + (frac >= 0.5)
    else:
        odd = np.fmod(floor, 2.0) != 0
        rounded = floor + ((frac > 0.5) | ((frac == 0.5) & odd))
    if overflow is Overflow.SAT:
        rounded = np.clip(rounded, float(fmt.min_int), float(fmt.max_int))
    else:
        # np.mod by a power of two is exact on integer-valued floats of any size.
        modulus = float(1 << fmt.width)
        rounded = np.mod(rounded, modulus)
        if fmt.signed:
            rounded = np.where(rounded >= modulus / 2, rounded - modulus, rounded)
    # After clip/mod every value fits in `width` <= 62 bits, so the cast is exact.
    # Clip to the float images of the range once more: for widths above 53 bits, max_int is not
    # a float, and the clip above may round up to 2**(w-1).
    result = rounded.astype(np.int64)
    return np.clip(result, fmt.min_int, fmt.max_int) if overflow is Overflow.SAT else result


def to_float(q, fmt) -> np.ndarray:
    """Real value of integer codes ``q`` in ``fmt``, as float64 (exact up to 53 bits)."""
    fmt = check_format(fmt, "fmt")
    q = _as_int_array(q, "q")
    return np.ldexp(q.astype(np.float64), -fmt.f)
