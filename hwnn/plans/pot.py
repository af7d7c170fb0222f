"""Power-of-two weights: nearest pot/pot2 quantizers and the packed code shift-add hardware reads.

A *pot* weight is ``0`` or ``±2**k``; a *pot2* weight is ``0``, ``±2**k`` or ``±2**k ± 2**j``.
Multiplying by one is a shift (pot) or two shifts and an add (pot2), so a MAC array built on them
needs no multiplier. Everything is counted in units of the weight format's lsb: the code ``q`` of
:class:`~hwnn.fixed.Format` ``fmt`` stands for ``q * 2**-fmt.f``, and ``q`` itself is the
(sum of) power(s) of two.

:class:`PotCode` is the hardware form: per term a zero flag, a sign and an exponent field ``e``
whose term value is ``±2**(e + e_min)``; :func:`quantize_pot` maps real numbers to the nearest
codes such a :class:`PotCode` can hold.
"""

from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass

import numpy as np

from ..checks import ParameterTypeError, ParameterValueError
from ..fixed import MAX_WIDTH, Format, check_format, real_array

__all__ = ["MAX_EXPONENT_BITS", "PotCode", "PotField", "quantize_pot"]

#: Widest exponent field: exponents 0 … 63 cover every exponent a code of any hwnn format needs
#: (at most the width, :data:`~hwnn.fixed.MAX_WIDTH`).
MAX_EXPONENT_BITS = MAX_WIDTH.bit_length()


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _largest_exponent(fmt: Format, terms: int, e_min: int) -> int:
    """The exponent the default exponent field reaches up to, in lsb units.

    Every power of two of ``fmt``, up to ``2**(width-1)``. pot2 codes of an unsigned format
    reach further: ``2**width - 2**j`` (at most ``max_int = 2**width - 1``) is a difference
    whose leading term lies beyond the format, and no other pair of terms sums to it when
    ``j <= width - 3`` (``2**width - 2**(width-2)`` is ``2**(width-1) + 2**(width-2)``).
    A signed format's ``2**(width-1) - 2**j`` needs no more than ``width - 1``.
    """
    top = fmt.width - 1
    return top + 1 if terms == 2 and not fmt.signed and e_min <= top - 2 else top


def check_code_params(fmt, terms, e_min, exponent_bits, names=("fmt", "terms", "e_min",
                                                                "exponent_bits")):
    """Validate the parameters of a :class:`PotCode`; return them normalized.

    ``names`` are the parameter names used in error messages and in the errors' ``parameter``
    (a plan passes its own).

    Raises
    ------
    ParameterTypeError, ParameterValueError
        As :class:`PotCode` describes.
    """
    fmt = check_format(fmt, names[0])
    terms_name, e_min_name, bits_name = names[1:]
    if not _is_int(terms):
        raise ParameterTypeError(terms_name, f"{terms_name} must be 1 (pot) or 2 (pot2), "
                                             f"not {terms!r}")
    if terms not in (1, 2):
        raise ParameterValueError(terms_name, f"{terms_name} must be 1 (pot) or 2 (pot2), "
                                              f"not {terms}")
    if not _is_int(e_min):
        raise ParameterTypeError(e_min_name, f"{e_min_name} must be an integer, not {e_min!r}")
    top = fmt.width - 1  # the largest power of two of any format: 2**(width-1) in lsb units
    if not 0 <= e_min <= top:
        raise ParameterValueError(e_min_name, f"{e_min_name} must be between 0 and {top} (the "
                                              f"largest exponent of {fmt}), not {e_min}")
    if exponent_bits is None:
        exponent_bits = (_largest_exponent(fmt, terms, e_min) - int(e_min)).bit_length()
    if not _is_int(exponent_bits):
        raise ParameterTypeError(bits_name, f"{bits_name} must be an integer or None, "
                                            f"not {exponent_bits!r}")
    if not 0 <= exponent_bits <= MAX_EXPONENT_BITS:
        raise ParameterValueError(bits_name, f"{bits_name} must be between 0 and "
                                             f"{MAX_EXPONENT_BITS}, not {exponent_bits}")
    return fmt, int(terms), int(e_min), int(exponent_bits)


@dataclass(frozen=True)
class PotField:
    """Where one term of a packed :class:`PotCode` word lives (bit offsets from bit 0).

    From the least significant bit up: ``exponent_bits`` of exponent, ``sign_bits`` (0 or 1) of
    sign (1: negative), one zero flag (1: the term is 0, whatever the other fields hold).
    """
    exponent_offset: int
    exponent_bits: int
    sign_offset: int
    sign_bits: int
    zero_offset: int


@dataclass(frozen=True)
class PotCode:
    """The packed hardware code of pot (``terms=1``) or pot2 (``terms=2``) weights of ``fmt``.

    A word holds ``terms`` fields (term 0 in the low bits), each a zero flag, a sign and an
    exponent field ``e``; a term is worth ``0`` if its zero flag is set, else
    ``±2**(e + e_min)`` lsb of ``fmt``, and the word is worth the sum of its terms. Term 0 of an
    unsigned ``fmt`` has no sign bit (it is never negative); term 1 always has one, for
    ``2**k - 2**j``.

    Every word has a value (:meth:`word_values`): the exponent fields reach ``e_max = e_min +
    2**exponent_bits - 1``, which may lie beyond ``fmt``, and pot2 may add two equal terms. The
    *codes* of the code are the values of ``fmt`` that some word expresses (:meth:`values`);
    :meth:`encode` writes each as one canonical word (fewest nonzero terms, then the smallest
    leading exponent: ``3 = 2 + 1``, not ``4 - 1``) and :meth:`decode` reads words back, so
    ``decode(encode(q)) == q`` for every code ``q``.

    Parameters
    ----------
    fmt : Format or str
        The weight format; codes are integers of this format.
    terms : 1 or 2
        Power-of-two terms per weight.
    e_min : int
        Exponent of the smallest nonzero magnitude, in lsb units (default 0: one lsb).
    exponent_bits : int, optional
        Width of each exponent field; by default just enough for every pot/pot2 code of
        ``fmt`` with exponents from ``e_min`` up: every power of two of ``fmt``, and for pot2 in
        an unsigned format also ``2**width``, the leading term of its largest codes
        ``2**width - 2**j`` (``j <= width - 3``: no other pair of terms sums to them).

    Raises
    ------
    TypeError
        A parameter has the wrong type.
    ValueError
        ``terms`` is not 1 or 2, ``e_min`` is outside ``0 … fmt.width - 1``, or
        ``exponent_bits`` is outside ``0 … 6``.
    """
    fmt: Format
    terms: int = 1
    e_min: int = 0
    exponent_bits: int | None = None

    def __post_init__(self):
        fmt, terms, e_min, bits = check_code_params(self.fmt, self.terms, self.e_min,
                                                    self.exponent_bits)
        object.__setattr__(self, "fmt", fmt)
        object.__setattr__(self, "terms", terms)
        object.__setattr__(self, "e_min", e_min)
        object.__setattr__(self, "exponent_bits", bits)

    # -- layout ---------------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        """``"pot"`` or ``"pot2"``."""
        return "pot" if self.terms == 1 else "pot2"

    @property
    def e_max(self) -> int:
        """The largest exponent a field can express (``e_min + 2**exponent_bits - 1``)."""
        return self.e_min + (1 << self.exponent_bits) - 1

    @functools.cached_property
    def fields(self) -> tuple[PotField, ...]:
        """The bit positions of each term's fields, term 0 first."""
        fields, offset = [], 0
        for term in range(self.terms):
            sign_bits = 1 if (self.fmt.signed or term > 0) else 0
            fields.append(PotField(exponent_offset=offset, exponent_bits=self.exponent_bits,
                                   sign_offset=offset + self.exponent_bits, sign_bits=sign_bits,
                                   zero_offset=offset + self.exponent_bits + sign_bits))
            offset += self.exponent_bits + sign_bits + 1
        return tuple(fields)

    @property
    def width(self) -> int:
        """Bits of one packed word."""
        last = self.fields[-1]
        return last.zero_offset + 1

    @property
    def value_range(self) -> tuple[int, int]:
        """The lowest and highest value of any word, codes of ``fmt`` or not (Python ints).

        Hardware that reads words (rather than codes) must be sized for this range.
        """
        top = 1 << self.e_max
        lo = sum(-top for field in self.fields if field.sign_bits)
        return lo, top * self.terms

    def describe(self) -> dict:
        """A JSON-serializable summary of the code."""
        return {"kind": self.kind, "terms": self.terms, "e_min": self.e_min,
                "e_max": self.e_max, "exponent_bits": self.exponent_bits, "width": self.width}

    # -- the codes and their canonical words ----------------------------------------------------

    def _word(self, parts) -> int:
        """The word of ``parts`` (one ``None`` or ``(negative, exponent)`` per term)."""
        word = 0
        for field, part in zip(self.fields, parts):
            if part is None:
                word |= 1 << field.zero_offset
            else:
                negative, exponent = part
                word |= (exponent - self.e_min) << field.exponent_offset
                word |= int(negative) << field.sign_offset
        return word

    @functools.cached_property
    def _table(self) -> tuple[np.ndarray, np.ndarray]:
        """Every code of ``fmt`` a word can express (ascending) and its canonical word."""
        exponents = range(self.e_min, self.e_max + 1)
        first_signs = (False, True) if self.fmt.signed else (False,)
        # (nonzero terms, leading exponent, -second exponent, signs): the first wins.
        candidates = [((0,), 0, (None,) * self.terms)]
        for e in exponents:
            for neg in first_signs:
                value = -(1 << e) if neg else 1 << e
                candidates.append(((1, e), value, ((neg, e),) + (None,) * (self.terms - 1)))
        if self.terms == 2:
            for a in exponents:
                for b in exponents:
                    if b > a:
                        continue
                    for neg_a in first_signs:
                        for neg_b in (False, True):
                            value = (-(1 << a) if neg_a else 1 << a) + \
                                    (-(1 << b) if neg_b else 1 << b)
                            candidates.append(((2, a, -b, neg_a, neg_b), value,
                                               ((neg_a, a), (neg_b, b))))
        candidates.sort(key=lambda c: c[0])
        table = {}
        for _, value, parts in candidates:
            if self.fmt.min_int <= value <= self.fmt.max_int and value not in table:
                table[value] = self._word(parts)
        values = np.array(sorted(table), dtype=np.int64)
        words = np.array([table[int(v)] for v in values], dtype=np.int64)
        values.setflags(write=False)
        words.setflags(write=False)
        return values, words

    def values(self) -> np.ndarray:
        """Every code of ``fmt`` this code can hold, ascending (read-only int64)."""
        return self._table[0]

    def _set_text(self) -> str:
        k = f"k in {self.e_min}..{self.e_max}"
        if self.terms == 1:
            return f"0 or {'±' if self.fmt.signed else ''}2**k, {k}"
        return f"0, {'±' if self.fmt.signed else ''}2**k or {'±' if self.fmt.signed else ''}" \
               f"2**k ± 2**j, {k}, j <= k"

    def contains(self, codes) -> np.ndarray:
        """Element-wise: is each integer of ``codes`` a code this code can hold?"""
        codes = np.asarray(codes, dtype=np.int64)
        values = self.values()
        index = np.clip(np.searchsorted(values, codes), 0, len(values) - 1)
        return values[index] == codes

    def check(self, codes, name="codes") -> np.ndarray:
        """``codes`` as int64 if every one is a code of this code, else a ``ValueError``.

        Raises
        ------
        TypeError
            ``codes`` is not an integer array.
        ValueError
            A code is not a pot/pot2 code of ``fmt``; the message names the first one.
        """
        codes = _integers(codes, name)
        ok = self.contains(codes)
        if not ok.all():
            index = _first(~ok)
            raise ValueError(f"{name}: {int(codes[index])} at index {_index_text(index)} is "
                             f"not a {self.kind} code of {self.fmt} "
                             f"({self._set_text()})")
        return codes

    def encode(self, codes) -> np.ndarray:
        """The canonical packed word of each code (int64 array of ``codes``' shape).

        Raises
        ------
        TypeError
            ``codes`` is not an integer array.
        ValueError
            A code is not a pot/pot2 code of ``fmt``; the message names the first one.
        """
        codes = self.check(codes)
        values, words = self._table
        return words[np.searchsorted(values, codes)]

    def word_values(self, words) -> np.ndarray:
        """The value of each packed word by the field formula (no check against ``fmt``).

        Raises
        ------
        TypeError
            ``words`` is not an integer array.
        ValueError
            A word is outside ``[0, 2**width)``.
        """
        words = _integers(words, "words")
        bad = (words < 0) | (words >= (1 << self.width))
        if bad.any():
            index = _first(bad)
            raise ValueError(f"words: {int(words[index])} at index {_index_text(index)} is "
                             f"outside the {self.width}-bit word range "
                             f"[0, {(1 << self.width) - 1}]")
        if self.e_max + self.terms - 1 <= 62:
            # Every word's value lies within ±2**62: int64 holds it exactly.
            total = np.zeros(words.shape, dtype=np.int64)
            for field in self.fields:
                exponent = (words >> field.exponent_offset) & ((1 << field.exponent_bits) - 1)
                magnitude = np.left_shift(np.int64(1), exponent + self.e_min)
                negative = ((words >> field.sign_offset) & 1).astype(bool) if field.sign_bits \
                    else np.zeros(words.shape, dtype=bool)
                zero = ((words >> field.zero_offset) & 1).astype(bool)
                total += np.where(zero, 0, np.where(negative, -magnitude, magnitude))
            return total
        # Exponent fields that reach beyond int64 (formats wider than 32 bits): Python ints.
        flat = [self._word_value(int(w)) for w in words.ravel()]
        for n, value in enumerate(flat):
            if not -(1 << 63) <= value < 1 << 63:
                index = np.unravel_index(n, words.shape) if words.ndim else ()
                index = tuple(int(i) for i in index)
                raise ValueError(f"words: {int(words[index])} at index {_index_text(index)} "
                                 f"stands for {value}, beyond int64")
        return np.array(flat, dtype=np.int64).reshape(words.shape)

    def _word_value(self, word: int) -> int:
        total = 0
        for field in self.fields:
            if (word >> field.zero_offset) & 1:
                continue
            exponent = (word >> field.exponent_offset) & ((1 << field.exponent_bits) - 1)
            negative = field.sign_bits and (word >> field.sign_offset) & 1
            total += -(1 << (exponent + self.e_min)) if negative else 1 << (exponent + self.e_min)
        return total

    def decode(self, words) -> np.ndarray:
        """The code of ``fmt`` each packed word stands for.

        Any word whose value is a code of ``fmt`` decodes, canonical or not.

        Raises
        ------
        TypeError
            ``words`` is not an integer array.
        ValueError
            A word is outside ``[0, 2**width)`` or stands for a value outside ``fmt``; the
            message names the first one.
        """
        words = _integers(words, "words")
        values = self.word_values(words)
        ok = self.fmt.contains(values)
        if not ok.all():
            index = _first(~ok)
            raise ValueError(f"words: {int(words[index])} at index {_index_text(index)} "
                             f"stands for {int(values[index])}, outside {self.fmt} "
                             f"[{self.fmt.min_int}, {self.fmt.max_int}]")
        return values

    # -- quantization ---------------------------------------------------------------------------

    def _next_beyond(self, magnitude: int) -> int:
        """The smallest pot/pot2 magnitude above ``magnitude`` with unlimited exponents."""
        top = max(self.e_min, magnitude.bit_length()) + 2
        found = [1 << a for a in range(self.e_min, top + 1)]
        if self.terms == 2:
            found += [(1 << a) + s * (1 << b) for a in range(self.e_min, top + 1)
                      for b in range(self.e_min, a + 1) for s in (1, -1)]
        return min(v for v in found if v > magnitude)

    def quantize(self, values, *, return_saturated=False):
        """The nearest code to each real number in ``values`` (in real units of ``fmt``).

        Nearest by exact comparison; a tie between two codes goes to the one of smaller
        magnitude; values beyond the extreme codes saturate to them. A value counts as
        *saturated* when, with exponents unbounded above, it would have rounded to a power of
        two (or pot2 sum) beyond the extreme code rather than to it: clamped, not rounded.

        Returns the int64 codes (shape of ``values``), and with ``return_saturated`` also the
        count of saturated values.

        Raises
        ------
        TypeError
            ``values`` is not real-valued.
        ValueError
            ``values`` holds NaN or infinity.
        """
        x = real_array(values, "values")
        with np.errstate(over="ignore"):
            # exact (or ±inf, which saturates like any large value)
            scaled = np.ldexp(x, self.fmt.f)
        codes = [int(v) for v in self.values()]
        lowest, highest = codes[0], codes[-1]
        above = self._next_beyond(highest)          # highest >= 0: 0 is always a code
        below = -self._next_beyond(-lowest)
        unique, inverse = np.unique(scaled, return_inverse=True)
        picked = np.empty(len(unique), dtype=np.int64)
        saturated = np.zeros(len(unique), dtype=bool)
        # Python compares floats with ints exactly; numpy would round the ints to float64.
        for n, s in enumerate(unique.tolist()):
            i = bisect.bisect_left(codes, s)
            if i == 0:
                q = lowest
            elif i == len(codes):
                q = highest
            elif codes[i] == s:
                q = codes[i]
            else:
                lo, hi = codes[i - 1], codes[i]
                twice, mid = 2 * s, lo + hi
                if twice < mid:
                    q = lo
                elif twice > mid:
                    q = hi
                else:
                    q = lo if abs(lo) <= abs(hi) else hi
            picked[n] = q
            saturated[n] = 2 * s > highest + above or 2 * s < lowest + below
        result = picked[inverse.reshape(-1)].reshape(x.shape)
        if return_saturated:
            return result, int(np.count_nonzero(saturated[inverse.reshape(-1)]))
        return result


def quantize_pot(values, fmt, terms=1, *, e_min=0, exponent_bits=None, return_saturated=False):
    """Quantize real ``values`` to the nearest pot (``terms=1``) or pot2 (``terms=2``) codes.

    The result holds int64 codes of ``fmt`` whose values are ``0``, ``±2**k`` (pot) or also
    ``±2**k ± 2**j`` (pot2), ``k`` and ``j`` from ``e_min`` to the largest exponent of the
    :class:`PotCode` ``PotCode(fmt, terms, e_min, exponent_bits)``. Each is the code nearest
    to its float (exact comparison; ties go to the smaller magnitude); values beyond the range
    saturate to the extreme code. With ``return_saturated`` the result is ``(codes, count)``,
    ``count`` being how many values were clamped rather than rounded (see
    :meth:`PotCode.quantize`).

    Raises
    ------
    TypeError
        A parameter has the wrong type or ``values`` is not real-valued.
    ValueError
        A bad code parameter (see :class:`PotCode`) or NaN/infinity in ``values``.
    """
    return PotCode(fmt, terms, e_min, exponent_bits).quantize(values,
                                                              return_saturated=return_saturated)


def _integers(values, name) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, not dtype {array.dtype}")
    if array.dtype == np.uint64 and array.size and array.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} holds values too large for int64 arithmetic")
    return array.astype(np.int64)


def _first(mask: np.ndarray):
    """Index of the first True of ``mask`` (a tuple, or an int for 1-D and 0-D arrays)."""
    if mask.ndim == 0:
        return ()
    index = tuple(int(i) for i in np.argwhere(mask)[0])
    return index


def _index_text(index) -> str:
    if len(index) == 1:
        return str(index[0])
    return str(index)
