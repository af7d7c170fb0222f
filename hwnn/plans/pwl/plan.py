"""The PWL plan: a checked dataclass of pieces, with its cost, and the slope kinds.

The integer semantics are in :mod:`hwnn.plans.pwl`; :class:`PWLPlan` checks on construction
that its fields keep them (ordered starts on the domain, slopes of their kind, int64-safe
sums), so a hand-built plan is as safe for a reference or a core as a fitted one.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...checks import ParameterTypeError, ParameterValueError, check_choice, check_integer
from ...fixed import Format, signed_bits_for
from ..accuracy import ErrorBound
from ..functions import Function, Symmetry
from ..pieces import Piecewise, check_head, check_pieces, domain_of, is_int, piece_ends
from ..shift_add.csd import csd

__all__ = ["PWLPlan", "SLOPE_KINDS", "domain_of", "slope_allowed", "slope_terms"]

#: Which integer slopes a plan may use.
SLOPE_KINDS = ("any", "pot", "pot2")
# Intermediates stay below 2**INT_LIMIT_BITS, leaving int64 headroom for the adds around them.
INT_LIMIT_BITS = 62


def slope_terms(slope: int) -> tuple[tuple[int, int], ...]:
    """The fewest signed powers of two summing to ``slope``: ``((sign, exponent), ...)``.

    ``()`` for 0, one term for ``±2**e``, two for ``±(2**e ± 2**g)``; longer for other integers
    (their canonical signed-digit form). A core multiplies by a slope as
    ``sum(sign * (d << exponent))``.
    """
    return tuple(reversed(csd(int(slope))))


def slope_allowed(slope: int, kind: str) -> bool:
    """Whether the integer ``slope`` is of kind ``kind`` (``"any"``, ``"pot"`` or ``"pot2"``)."""
    if kind == "any":
        return True
    terms = len(slope_terms(slope))
    return terms <= (1 if kind == "pot" else 2)


@dataclass(frozen=True, eq=False)
class PWLPlan(Piecewise):
    """A piecewise-linear plan; the module docstring gives the exact integer semantics.

    Fields
    ------
    function : Function
    in_format, out_format : Format
    symmetric : bool
        Evaluate on folded magnitudes and unfold with ``function.symmetry``.
    starts, slopes, intercepts : tuple of int
        Piece ``j`` covers ``starts[j] <= c < starts[j+1]``; its output is
        ``clip((slopes[j] * (c - starts[j]) + intercepts[j]) >> shift)``.
    shift : int
        One right shift for the whole plan, ``>= 0``.
    slope_kind : "any", "pot" or "pot2"
    uniform : bool
        Range pieces have width ``2**segment_bits`` and start at
        ``range_start + j * 2**segment_bits``.
    segment_bits : int or None
        Set exactly when ``uniform``.
    range_start, range_stop : int
        The approximation range in ``c`` codes, half-open; pieces starting outside it are the
        slope-0 saturation constants.
    error : ErrorBound or None
        Measured on every input code by :func:`plan_pwl` (None on a hand-built plan).

    Raises
    ------
    TypeError, ValueError
        Fields that break the semantics: unordered starts, a first start that is not the
        domain's low end, mismatched lengths, a slope of the wrong kind, a uniform plan whose
        starts are not on its grid, intermediates that could leave int64, and so on.
    """
    function: Function
    in_format: Format
    out_format: Format
    symmetric: bool
    starts: tuple
    slopes: tuple
    intercepts: tuple
    shift: int
    slope_kind: str
    uniform: bool
    segment_bits: int | None
    range_start: int
    range_stop: int
    error: ErrorBound | None = None

    method = "pwl"

    def __post_init__(self):
        object.__setattr__(self, "symmetric", check_head(self))
        for name in ("starts", "slopes", "intercepts"):
            values = getattr(self, name)
            try:
                items = list(values)
            except TypeError:
                raise ParameterTypeError(name, f"{name} must be a non-empty sequence of "
                                               f"integers, not {values!r}") from None
            if not items or not all(is_int(v) for v in items):
                raise ParameterTypeError(name, f"{name} must be a non-empty sequence of "
                                               f"integers, not {values!r}")
            object.__setattr__(self, name, tuple(int(v) for v in items))
        if not len(self.starts) == len(self.slopes) == len(self.intercepts):
            raise ParameterValueError(
                "slopes", f"starts, slopes and intercepts must have one entry per piece, not "
                          f"{len(self.starts)}, {len(self.slopes)}, {len(self.intercepts)}")
        object.__setattr__(self, "shift", check_integer(self.shift, "shift", minimum=0,
                                                        maximum=INT_LIMIT_BITS))
        check_choice(self.slope_kind, "slope_kind", SLOPE_KINDS)
        bad = [s for s in self.slopes if not slope_allowed(s, self.slope_kind)]
        if bad:
            raise ParameterValueError("slopes", f"slope {bad[0]} is not of kind "
                                                f"{self.slope_kind!r}")
        uniform, segment_bits = check_pieces(
            self.starts, self.in_format, self.symmetric, self.range_start, self.range_stop,
            self.uniform, self.segment_bits, [s == 0 for s in self.slopes],
            ("slopes", "its slope must be 0"))
        object.__setattr__(self, "uniform", uniform)
        object.__setattr__(self, "segment_bits", segment_bits)
        limit = 1 << INT_LIMIT_BITS
        for j, (s, c, last) in enumerate(zip(self.slopes, self.intercepts, self._offsets())):
            if max(abs(c), abs(s * last + c)) >= limit:
                raise ParameterValueError(
                    "intercepts", f"piece {j}: slope * offset + intercept can reach 2**62; "
                                  f"int64 arithmetic is not safe")
        if self.error is not None and not isinstance(self.error, ErrorBound):
            raise ParameterTypeError("error", f"error must be an ErrorBound or None, not "
                                              f"{self.error!r}")

    def _offsets(self) -> list[int]:
        """Largest ``c - starts[j]`` of each piece."""
        ends = piece_ends(self.starts, self.in_format, self.symmetric)
        return [end - 1 - start for start, end in zip(self.starts, ends)]

    @property
    def centre_piece(self) -> bool:
        """A symmetric plan whose first piece continues through 0 as one line with its mirror.

        The piece's line (rounded to nearest) is ``l(d) = (S*d + C - 2**(shift-1)) / 2**shift``
        output codes; its mirror is the same line exactly when ``l(0)`` is the centre of the
        symmetry: 0 (odd) or the code of 1/2 (complement).
        """
        if not self.symmetric or self.shift < 1:
            return False
        offset = self.intercepts[0] - (1 << (self.shift - 1))
        if self.function.symmetry is Symmetry.ODD:
            return offset == 0
        return self.out_format.f >= 1 and offset == 1 << (self.out_format.f - 1 + self.shift)

    @property
    def segments(self) -> int:
        """Linear pieces covering the range, counted over the full (unfolded) input range.

        Symmetric plans count each stored range piece twice, except that a first piece whose
        mirror continues it through 0 (see :attr:`centre_piece`) counts once.
        """
        if not self.symmetric:
            return self.range_pieces
        return 2 * self.range_pieces - (1 if self.centre_piece else 0)

    def cost(self) -> dict:
        """What the core has to build.

        ``stored_pieces``; ``index_bits`` (to number them); ``slope_bits`` and
        ``intercept_bits`` (signed widths holding every ``S_j`` and ``C_j``); ``offset_bits``
        (unsigned width of ``c - starts[j]`` over pieces with ``S_j != 0``: for ``S_j == 0``
        the product is 0 whatever the offset, so the core may truncate it); ``sum_bits``
        (signed width of ``S_j * (c - starts[j]) + C_j``); ``shift``; ``slope_terms`` (most
        signed powers of two in one slope: what a shift-add multiplier needs).
        """
        offsets = self._offsets()
        sloped = [off for off, s in zip(offsets, self.slopes) if s != 0]
        sums = [v for s, c, off in zip(self.slopes, self.intercepts, offsets)
                for v in (c, s * off + c)]
        return {"stored_pieces": self.stored_pieces,
                "index_bits": max(1, (self.stored_pieces - 1).bit_length()),
                "slope_bits": signed_bits_for(min(self.slopes), max(self.slopes)),
                "intercept_bits": signed_bits_for(min(self.intercepts), max(self.intercepts)),
                "offset_bits": max([1] + [off.bit_length() for off in sloped]),
                "sum_bits": signed_bits_for(min(sums), max(sums)),
                "shift": self.shift,
                "slope_terms": max(len(slope_terms(s)) for s in self.slopes)}

    def describe(self) -> dict:
        """A JSON-serializable summary: formats, pieces, breakpoints, cost and error."""
        info = {"method": "pwl", "function": self.function.name,
                "in_format": str(self.in_format), "out_format": str(self.out_format),
                "symmetric": self.symmetric, "segments": self.segments,
                "stored_pieces": self.stored_pieces, "input_range": list(self.input_range),
                "breakpoints": list(self.breakpoints), "slope_kind": self.slope_kind,
                "uniform": self.uniform, "segment_bits": self.segment_bits,
                "shift": self.shift, **self.cost()}
        if self.error is not None:
            info["error"] = self.error.describe()
        return info
