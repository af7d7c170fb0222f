"""The polynomial plan: a checked dataclass of pieces and Horner coefficients, with its cost.

The integer semantics are in :mod:`hwnn.plans.poly`; :class:`PolyPlan` checks on construction
that its fields keep them (ordered starts on the domain, one coefficient row per piece,
constants outside the range, every intermediate below ``2**62``), so a hand-built plan is as
safe for a reference or a core as a fitted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ...checks import (ParameterTypeError, ParameterValueError, check_choice,
                       check_integer)
from ...fixed import Format, signed_bits_for
from ...ref.poly import POLY_METHODS, horner
from ..accuracy import ErrorBound
from ..functions import Function
from ..pieces import Piecewise, check_head, check_pieces, is_int, piece_ends

__all__ = ["PolyPlan", "MULTIPLIERS", "MAX_DEGREE", "INT_LIMIT_BITS"]

#: How a core builds each Horner product: ``*`` (a DSP block where the target has one) or
#: shifted partial products added in logic (LUTs and carry chains only).
MULTIPLIERS = ("dsp", "lut")
#: Highest degree of a ``poly`` plan (a ``taylor`` plan's order may go higher).
MAX_DEGREE = 3
# Every intermediate stays below 2**INT_LIMIT_BITS: int64 arithmetic in the reference is exact.
INT_LIMIT_BITS = 62


def _ints(values, name) -> tuple:
    try:
        items = list(values)
    except TypeError:
        raise ParameterTypeError(name, f"{name} must be a sequence of integers, not "
                                       f"{values!r}") from None
    if not all(is_int(v) for v in items):
        raise ParameterTypeError(name, f"{name} must be a sequence of integers, not {values!r}")
    return tuple(int(v) for v in items)


@dataclass(frozen=True, eq=False)
class PolyPlan(Piecewise):
    """A piecewise-polynomial (or Taylor) plan; :mod:`hwnn.plans.poly` gives the semantics.

    Fields
    ------
    function : Function
    in_format, out_format : Format
    symmetric : bool
        Evaluate on folded magnitudes and unfold with ``function.symmetry``.
    method : "poly" or "taylor"
        Minimax pieces, or one truncated Taylor series (what the plan was fitted as; the
        integer semantics are the same).
    degree : int
        Horner steps: the highest power of any piece.
    starts, origins : tuple of int
        Piece ``j`` covers ``starts[j] <= c < starts[j+1]`` and evaluates its polynomial at
        ``d = c - origins[j]``.
    coefficients : tuple of tuples of int
        ``coefficients[j][k]``: the integer of ``d**k`` in piece ``j`` (``degree + 1`` each).
    shifts : tuple of int
        ``shifts[k] >= 0``: the right shift after the product of step ``k``.
    shift : int
        The final right shift, ``>= 0`` (rounding to nearest is folded into the ``d**0``
        coefficients).
    uniform, segment_bits, range_start, range_stop
        As :class:`~hwnn.plans.pwl.PWLPlan`: pieces outside the range are constants (every
        coefficient but the ``d**0`` one is 0).
    multipliers : "dsp" or "lut"
        How a core builds the products (the numbers do not depend on it).
    centre : float or None
        A Taylor plan's expansion point (real input value); None for ``poly``.
    error : ErrorBound or None
        Measured on every input code by the plan functions (None on a hand-built plan).

    Raises
    ------
    TypeError, ValueError
        Fields that break the semantics (the message names the field).
    """
    function: Function
    in_format: Format
    out_format: Format
    symmetric: bool
    method: str
    degree: int
    starts: tuple
    origins: tuple
    coefficients: tuple
    shifts: tuple
    shift: int
    uniform: bool
    segment_bits: int | None
    range_start: int
    range_stop: int
    multipliers: str = "dsp"
    centre: float | None = None
    error: ErrorBound | None = None

    def __post_init__(self):
        object.__setattr__(self, "symmetric", check_head(self))
        check_choice(self.method, "method", POLY_METHODS)
        check_choice(self.multipliers, "multipliers", MULTIPLIERS)
        object.__setattr__(self, "degree", check_integer(self.degree, "degree", minimum=0,
                                                         maximum=15))
        for name in ("starts", "origins", "shifts"):
            object.__setattr__(self, name, _ints(getattr(self, name), name))
        try:
            rows = [_ints(row, "coefficients") for row in self.coefficients]
        except TypeError:
            raise ParameterTypeError("coefficients", f"coefficients must be a sequence of "
                                                     f"integer rows, not "
                                                     f"{self.coefficients!r}") from None
        object.__setattr__(self, "coefficients", tuple(rows))
        if not self.starts:
            raise ParameterValueError("starts", "starts must hold at least one piece")
        if not len(self.starts) == len(self.origins) == len(self.coefficients):
            raise ParameterValueError(
                "origins" if len(self.origins) != len(self.starts) else "coefficients",
                f"starts, origins and coefficients must have one entry per "
                                f"piece, not {len(self.starts)}, {len(self.origins)}, "
                                f"{len(self.coefficients)}")
        if any(len(row) != self.degree + 1 for row in self.coefficients):
            raise ParameterValueError("coefficients", f"every coefficient row must have degree "
                                                      f"+ 1 = {self.degree + 1} entries")
        if len(self.shifts) != self.degree or any(s < 0 or s > INT_LIMIT_BITS
                                                  for s in self.shifts):
            raise ParameterValueError("shifts", f"shifts must be {self.degree} integers in "
                                                f"[0, {INT_LIMIT_BITS}], not {self.shifts!r}")
        object.__setattr__(self, "shift", check_integer(self.shift, "shift", minimum=0,
                                                        maximum=INT_LIMIT_BITS))
        uniform, segment_bits = check_pieces(
            self.starts, self.in_format, self.symmetric, self.range_start, self.range_stop,
            self.uniform, self.segment_bits, [not any(row[1:]) for row in self.coefficients],
            ("coefficients", "its coefficients beyond d**0 must be 0"))
        object.__setattr__(self, "uniform", uniform)
        object.__setattr__(self, "segment_bits", segment_bits)
        if self.centre is not None and self.method != "taylor":
            raise ParameterValueError("centre", f"centre is a taylor plan's, not a "
                                                f"{self.method} plan's")
        self._check_bounds()
        if self.error is not None and not isinstance(self.error, ErrorBound):
            raise ParameterTypeError("error", f"error must be an ErrorBound or None, not "
                                              f"{self.error!r}")

    def _check_bounds(self):
        """Every intermediate below ``2**INT_LIMIT_BITS``, by interval arithmetic in Python
        integers over each piece's offsets."""
        limit = 1 << INT_LIMIT_BITS
        ends = piece_ends(self.starts, self.in_format, self.symmetric)
        for j, (start, end, origin, row) in enumerate(zip(self.starts, ends, self.origins,
                                                          self.coefficients)):
            d = max(abs(start - origin), abs(end - 1 - origin))
            bound = abs(row[-1])
            for k in reversed(range(self.degree)):
                product = bound * d
                bound = -(-product >> self.shifts[k]) + abs(row[k])
                if product >= limit or bound >= limit:
                    raise ParameterValueError(
                        "coefficients", f"piece {j}: the Horner steps can reach 2**"
                                        f"{INT_LIMIT_BITS}; int64 arithmetic is not safe")

    # -- what a user and a core read -----------------------------------------------------------

    @property
    def segments(self) -> int:
        """Polynomial pieces over the whole (unfolded) range: a symmetric ``poly`` plan counts
        each stored range piece twice; a Taylor plan is one series."""
        if self.method == "taylor":
            return 1
        return self.range_pieces * (2 if self.symmetric else 1)

    @property
    def order(self) -> int:
        """The degree (a Taylor series' order)."""
        return self.degree

    @cached_property
    def ranges(self) -> dict:
        """Exact ranges of every intermediate over every code of the domain, as ``(lo, hi)``.

        ``offset``: ``d`` over the pieces that are not constants (a constant piece's products
        are 0 whatever ``d``, so a core may keep only the bits these need); ``products[i]`` and
        ``accumulators[i]``: step ``i`` (``i = 0`` is the first, with ``coefficients[j][degree]
        * d``); ``accumulators[0]`` is ``acc_degree`` itself, the last is ``acc_0``.
        """
        low, high = self.domain
        c = np.arange(low, high + 1, dtype=np.int64)
        steps = horner(self, c)
        j = np.searchsorted(np.asarray(self.starts), c, side="right") - 1
        varying = np.array([any(row[1:]) for row in self.coefficients])[j]
        d = steps[0][varying] if varying.any() else np.zeros(1, dtype=np.int64)

        def span(values):
            return int(values.min()), int(values.max())
        return {"offset": span(d), "accumulators": [span(v) for v in steps[1::2]],
                "products": [span(v) for v in steps[2::2]]}

    def cost(self) -> dict:
        """What a core builds.

        ``stored_pieces``, ``index_bits``; ``degree`` (products per value); ``offset_bits``
        (signed width of ``d`` over the non-constant pieces; unsigned when ``d >= 0``, which
        ``offset_signed`` says); ``coefficient_bits`` (signed width of each column, ``d**0``
        first) and ``table_bits`` (their sum times the stored pieces); ``product_bits`` and
        ``accumulator_bits`` (signed width of each Horner step's product and sum, first step
        first); ``shifts``, ``shift``; ``multipliers``.
        """
        ranges = self.ranges
        columns = list(zip(*self.coefficients))
        coefficient_bits = [signed_bits_for(min(col), max(col)) for col in columns]
        offset_lo, offset_hi = ranges["offset"]
        return {"stored_pieces": self.stored_pieces,
                "index_bits": max(1, (self.stored_pieces - 1).bit_length()),
                "degree": self.degree,
                "offset_bits": (max(1, offset_hi.bit_length()) if offset_lo >= 0
                                else signed_bits_for(offset_lo, offset_hi)),
                "offset_signed": offset_lo < 0,
                "coefficient_bits": coefficient_bits,
                "table_bits": self.stored_pieces * sum(coefficient_bits),
                "product_bits": [signed_bits_for(*r) for r in ranges["products"]],
                "accumulator_bits": [signed_bits_for(*r) for r in ranges["accumulators"][1:]],
                "shifts": list(self.shifts), "shift": self.shift,
                "multipliers": self.multipliers}

    def describe(self) -> dict:
        """A JSON-serializable summary: formats, pieces, cost and error."""
        info = {"method": self.method, "function": self.function.name,
                "in_format": str(self.in_format), "out_format": str(self.out_format),
                "symmetric": self.symmetric, "degree": self.degree,
                "segments": self.segments, "input_range": list(self.input_range),
                "breakpoints": list(self.breakpoints), "uniform": self.uniform,
                "segment_bits": self.segment_bits, **self.cost()}
        if self.method == "taylor":
            info["centre"] = self.centre
        if self.error is not None:
            info["error"] = self.error.describe()
        return info
