"""The plan of an elementwise unit: ``y = requantize(a ⊙ b)`` per lane, ⊙ one of *, +, -.

The operation is exact first: products and aligned sums land in an intermediate format wide
enough for every pair of operand codes (:func:`exact_format`), and the only narrowing is one
requantize to the output format with stated rounding and overflow modes. The second operand is a
stream, or a constant vector (one code per lane) that the plan holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..checks import (ParameterError, ParameterTypeError, ParameterValueError, check_choice,
                      check_enum, check_integer)
from ..fixed import MAX_WIDTH, Format, Overflow, Rounding, check_format, requantize_shift

__all__ = ["OPS", "ElementwisePlan", "exact_format", "plan_elementwise"]

#: Operations of an elementwise unit: ``a * b``, ``a + b``, ``a - b``.
OPS = ("mul", "add", "sub")


def exact_format(op: str, a_format, b_format) -> Format:
    """The narrowest format that holds ``a ⊙ b`` exactly for every pair of operand codes.

    Its fraction bits are ``a.f + b.f`` for ``mul`` and ``max(a.f, b.f)`` for ``add``/``sub``
    (the operands align there); its integer bits are the fewest that hold the extremes of the
    result, signed when the result can be negative. For ``mul`` that is the sum of the widths
    (``SQ(a.i + b.i, a.f + b.f)`` for signed operands: ``min·min`` needs every bit), one bit
    fewer when a factor is a 1-bit unsigned mask; for ``add``/``sub`` one integer bit more than
    the wider aligned operand, or than the wider operand of ``UQ - UQ``.

    Raises
    ------
    ParameterTypeError, ParameterValueError
        ``op`` is not one of :data:`OPS`, a format is invalid, or the exact result would be
        wider than :data:`hwnn.fixed.MAX_WIDTH` bits (blamed on ``b_format``).
    """
    op = check_choice(op, "op", OPS)
    a, b = check_format(a_format, "a_format"), check_format(b_format, "b_format")
    if op == "mul":
        f = a.f + b.f
        extremes = [x * y for x in (a.min_int, a.max_int) for y in (b.min_int, b.max_int)]
        lo, hi = min(extremes), max(extremes)
    else:
        f = max(a.f, b.f)
        sa, sb = f - a.f, f - b.f
        sign = 1 if op == "add" else -1
        b_lo, b_hi = sorted((sign * (b.min_int << sb), sign * (b.max_int << sb)))
        lo, hi = (a.min_int << sa) + b_lo, (a.max_int << sa) + b_hi
    # Every format holds 0, so lo <= 0 <= hi; a negative lo needs a sign bit.
    signed = lo < 0
    # A signed format holds -2**k in k + 1 bits: the bits of ~lo = -lo - 1, plus the sign.
    width = 1 + max((~lo).bit_length(), hi.bit_length()) if signed else max(hi.bit_length(), 1)
    if width > MAX_WIDTH:
        raise ParameterValueError(
            "b_format", f"b_format must keep the exact {op} with a_format {a} within "
                        f"{MAX_WIDTH} bits (it would need {width}), not {b!r}")
    return Format(signed, width - f, f)


@dataclass(frozen=True)
class ElementwisePlan:
    """``y = requantize(a ⊙ b, exact_format, out_format, rounding, overflow)`` on ``lanes``
    lanes, with ``⊙`` the operation ``op`` (``"mul"``, ``"add"`` or ``"sub"``).

    ``a`` holds codes of ``a_format``. ``b`` holds codes of ``b_format``: a second stream, or,
    when ``constant`` is given, that vector of ``lanes`` codes (lane ``k`` always uses
    ``constant[k]``). For sums, ``a`` and ``b`` are shifted left by ``a_shift`` and ``b_shift``
    bits to the common fraction bits of ``full_format`` (:func:`exact_format`) before they are
    added; every intermediate is exact, and a plan only exists when the integer reference
    (int64) can compute it exactly.

    Build one with :func:`plan_elementwise` or directly; either way the plan checks its
    parameters and derives ``full_format``, ``a_shift`` and ``b_shift``.

    Raises
    ------
    ParameterTypeError, ParameterValueError
        A parameter of the wrong type or value (``exc.parameter`` names it): ``op`` not in
        :data:`OPS`; an invalid format; ``lanes`` not a positive integer; ``constant`` not
        ``lanes`` codes of ``b_format``; an unknown ``rounding`` or ``overflow``; an exact
        result wider than :data:`hwnn.fixed.MAX_WIDTH` bits; or an ``out_format`` with so many
        more fraction bits than the exact result that the int64 left shift would overflow.
    """
    op: str
    a_format: Format
    b_format: Format
    out_format: Format
    lanes: int = 1
    constant: tuple | None = None
    rounding: Rounding = Rounding.HALF_UP
    overflow: Overflow = Overflow.SAT
    #: The exact intermediate format of ``a ⊙ b`` (:func:`exact_format`).
    full_format: Format = field(init=False)
    #: Left shifts that align ``a`` and ``b`` to ``full_format.f`` (0 for products).
    a_shift: int = field(init=False)
    b_shift: int = field(init=False)

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        put("op", check_choice(self.op, "op", OPS))
        for name in ("a_format", "b_format", "out_format"):
            put(name, check_format(getattr(self, name), name))
        put("lanes", check_integer(self.lanes, "lanes", minimum=1))
        put("rounding", check_enum(Rounding, self.rounding, "rounding"))
        put("overflow", check_enum(Overflow, self.overflow, "overflow"))
        full = exact_format(self.op, self.a_format, self.b_format)
        put("full_format", full)
        aligned = self.op != "mul"
        put("a_shift", full.f - self.a_format.f if aligned else 0)
        put("b_shift", full.f - self.b_format.f if aligned else 0)
        # hwnn.fixed.requantize shifts left in int64 and refuses a result beyond 63 bits.
        max_f = 63 - full.i
        if self.out_format.f > max_f:
            raise ParameterValueError(
                "out_format", f"out_format must have at most {max_f} fraction bits (the exact "
                              f"{self.op} is {full}, and int64 must hold it shifted to them), "
                              f"not {self.out_format!r}")
        if self.constant is not None:
            put("constant", self._check_constant(self.constant))

    def _check_constant(self, constant) -> tuple:
        b, lanes = self.b_format, self.lanes
        allowed = f"a sequence of {lanes} integer codes of b_format {b}"
        try:
            count = None if isinstance(constant, (str, bytes)) else len(constant)
        except TypeError:  # a scalar, or a 0-d numpy array
            count = None
        if count is None:
            raise ParameterTypeError("constant", f"constant must be {allowed} or None, "
                                                 f"not {constant!r}")
        if count != lanes:
            raise ParameterValueError("constant", f"constant must be {allowed} (one per lane), "
                                                  f"not {count} codes: {constant!r}")
        codes = []
        for k, value in enumerate(constant):
            try:
                codes.append(check_integer(value, "constant", minimum=b.min_int,
                                           maximum=b.max_int))
            except ParameterError as exc:  # the same error, naming the element
                raise type(exc)("constant", f"constant[{k}] must be a code of b_format {b} (an "
                                            f"integer between {b.min_int} and {b.max_int}), "
                                            f"not {value!r}") from None
        return tuple(codes)

    @property
    def streams(self) -> int:
        """Input streams of the unit: 2 (``a`` and ``b``), or 1 with a constant ``b``."""
        return 1 if self.constant is not None else 2

    @property
    def requantize_shift(self) -> int:
        """Bits the final requantize drops (negative: adds) from ``full_format``."""
        return requantize_shift(self.full_format, self.out_format)

    def describe(self) -> dict:
        """A JSON-serializable summary (operation, formats, lanes, modes, constant)."""
        return {
            "op": self.op, "lanes": self.lanes,
            "a_format": str(self.a_format), "b_format": str(self.b_format),
            "full_format": str(self.full_format), "out_format": str(self.out_format),
            "rounding": self.rounding.value, "overflow": self.overflow.value,
            "constant": None if self.constant is None else list(self.constant),
        }


def plan_elementwise(op, a_format, b_format, out_format, *, lanes=1, constant=None,
                     rounding=Rounding.HALF_UP, overflow=Overflow.SAT) -> ElementwisePlan:
    """Plan ``y = requantize(a ⊙ b)`` per lane; see :class:`ElementwisePlan`.

    Parameters
    ----------
    op : str
        ``"mul"`` (``a * b``), ``"add"`` (``a + b``) or ``"sub"`` (``a - b``).
    a_format, b_format, out_format : Format or str
        Formats of the operands and of the result.
    lanes : int
        Values per transfer (default 1: scalar streams).
    constant : sequence of int, optional
        ``lanes`` codes of ``b_format``: ``b`` is this constant vector instead of a stream.
    rounding, overflow : Rounding, Overflow or their names
        How the exact result is narrowed to ``out_format`` (default half-up, saturate).

    Raises
    ------
    ParameterTypeError, ParameterValueError
        As :class:`ElementwisePlan`.
    """
    return ElementwisePlan(op, a_format, b_format, out_format, lanes=lanes, constant=constant,
                           rounding=rounding, overflow=overflow)
