"""Piecewise-linear (PWL) activation plans for smooth functions, fitted in fixed point.

Integer semantics (what :func:`hwnn.ref.pwl.pwl` computes and a core must mirror bit for bit)::

    if symmetric:                                   # only for functions with a Symmetry
        c, negative = fold(q, in_format)            # c = |q|, 0 <= c <= 2**(width-1)
    else:
        c = q                                       # in_format.min_int <= c <= max_int
    j = searchsorted(starts, c, side="right") - 1   # starts[j] <= c < starts[j+1]
    v = slopes[j] * (c - starts[j]) + intercepts[j] # exact integers, |v| < 2**62 always
    y = clip(v >> shift, out_format.min_int, out_format.max_int)   # >> is floor
    if symmetric:
        y = unfold(y, negative, function.symmetry, out_format)    # -y or one - y, saturated

``fold``/``unfold`` are those of :mod:`hwnn.plans.functions`. ``starts[0]`` is the low end of
the domain (0 folded, ``in_format.min_int`` otherwise) and the last piece runs to the high end
(``2**(width-1)`` folded, ``max_int`` otherwise). ``0 <= c - starts[j]`` always, and
``S_j * (c - starts[j]) + C_j`` fits the signed width ``cost()["sum_bits"]``. Rounding to
nearest is folded into the intercepts at plan time, so the hardware needs a floor only.
Pieces outside the approximation range ``[range_start, range_stop)`` (in ``c`` codes) are
ordinary pieces with slope 0 (saturation constants, ``C_j = value << shift``).

Slope kinds: ``"any"`` (any integer), ``"pot"`` (0 or ``±2**e``: one shifter), ``"pot2"``
(0, ``±2**e`` or ``±(2**e ± 2**g)``: two shifters and an adder); :func:`slope_terms` gives the
signed power-of-two terms of a slope. A uniform plan's pieces inside the range all start at
``range_start + j * 2**segment_bits``, so for ``range_start <= c < range_stop`` the piece index
is ``(c - range_start) >> segment_bits``, clamped to the last range piece: when a folded range
reaches the domain's end, the one code ``2**(width-1)`` (the most negative input) belongs to
the last piece, which is then one code longer.

How plans are fitted: each piece gets the integer slope and intercept minimizing its maximum
error *after* the floor and the output clip, measured on the piece's codes (a search over
slopes near the continuous minimax line, each with its exactly optimal intercept). Optimal
(non-uniform) breakpoints come from a binary search on the error target with greedy maximal
pieces, on the continuous minimax error and then, where output rounding matters, on the
quantized error itself. The shift is the smallest at which no piece loses accuracy against
a generous one (the widest offset's bits plus :data:`GUARD_BITS`), within int64.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from ..fixed import Format, _as_format, to_float
from ..ref.pwl import pwl
from .accuracy import ErrorBound, check_exhaustive, check_output_range, measure_error
from .shift_add.csd import csd
from .functions import Function, Symmetry, check_symmetry, get_function

__all__ = ["PWLPlan", "plan_pwl", "fit_pwl", "BREAKPOINTS", "SLOPE_KINDS", "slope_terms",
           "slope_allowed"]

#: How breakpoints are placed: power-of-two uniform pieces, or non-uniform minimax.
BREAKPOINTS = ("uniform", "optimal")
#: Which integer slopes a plan may use.
SLOPE_KINDS = ("any", "pot", "pot2")

# Extra fraction bits of the slope beyond the widest piece offset: slope rounding then moves a
# line by at most 2**-GUARD_BITS output ulps across any piece, before the search recovers it.
GUARD_BITS = 4
# Intermediates stay below 2**_INT_LIMIT_BITS, leaving int64 headroom for the adds around them.
_INT_LIMIT_BITS = 62
# Slope candidates per piece in the final quantized fit, and in the quantized breakpoint search.
_FINAL_CANDIDATES = 33
_SEARCH_CANDIDATES = 9
# Pieces whose continuous error exceeds this many ulps get the search's count of candidates.
_FEW_CANDIDATES_ULPS = 4.0
# Candidate-row chunk size (rows * piece codes) for the vectorized fit: bounds memory.
_FIT_CHUNK = 1 << 18
# Resolution of the error-target binary searches, in output ulps.
_TARGET_TOLERANCE = 2.0 ** -8
# The quantized breakpoint search runs when the fitted error is below this many ulps: above
# it, output rounding changes the error by a few percent at most.
_QUANTIZED_SEARCH_ULPS = 2.0
# ... and when there are at most this many pieces (its cost grows with their number).
_QUANTIZED_SEARCH_PIECES = 64


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


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


def _signed_bits(low: int, high: int) -> int:
    """Width of the smallest two's-complement signal holding every integer in [low, high]."""
    bits = 1
    while not -(1 << (bits - 1)) <= low <= high <= (1 << (bits - 1)) - 1:
        bits += 1
    return bits


def _domain(in_format: Format, symmetric: bool) -> tuple[int, int]:
    """Lowest and highest ``c`` a plan sees (folded magnitudes reach ``2**(width-1)``)."""
    if symmetric:
        return 0, 1 << (in_format.width - 1)
    return in_format.min_int, in_format.max_int


@dataclass(frozen=True, eq=False)
class PWLPlan:
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
        if not isinstance(self.function, Function):
            raise TypeError(f"function must be a Function, not {self.function!r}")
        for name in ("in_format", "out_format"):
            if not isinstance(getattr(self, name), Format):
                raise TypeError(f"{name} must be a Format, not {getattr(self, name)!r}")
        if not isinstance(self.symmetric, bool):
            raise TypeError(f"symmetric must be a bool, not {self.symmetric!r}")
        if self.symmetric and (self.function.symmetry is None or not self.in_format.signed):
            raise ValueError(f"symmetric=True needs a function with a symmetry and a signed "
                             f"in_format, not {self.function.name} on {self.in_format}")
        for name in ("starts", "slopes", "intercepts"):
            values = getattr(self, name)
            try:
                items = list(values)
            except TypeError:
                raise TypeError(f"{name} must be a sequence of integers, not {values!r}") from None
            if not items or not all(_is_int(v) for v in items):
                raise TypeError(f"{name} must be a non-empty sequence of integers, not {values!r}")
            object.__setattr__(self, name, tuple(int(v) for v in items))
        if not len(self.starts) == len(self.slopes) == len(self.intercepts):
            raise ValueError(f"starts, slopes and intercepts must have one entry per piece, not "
                             f"{len(self.starts)}, {len(self.slopes)}, {len(self.intercepts)}")
        low, high = _domain(self.in_format, self.symmetric)
        if self.starts[0] != low:
            raise ValueError(f"starts[0] must be the domain's low end {low}, not {self.starts[0]}")
        if any(b <= a for a, b in zip(self.starts, self.starts[1:])) or self.starts[-1] > high:
            raise ValueError(f"starts must be strictly ascending codes within [{low}, {high}]")
        if not _is_int(self.shift) or not 0 <= self.shift <= _INT_LIMIT_BITS:
            raise ValueError(f"shift must be an integer in [0, {_INT_LIMIT_BITS}], "
                             f"not {self.shift!r}")
        if self.slope_kind not in SLOPE_KINDS:
            raise ValueError(f"slope_kind must be one of {' | '.join(SLOPE_KINDS)}, "
                             f"not {self.slope_kind!r}")
        bad = [s for s in self.slopes if not slope_allowed(s, self.slope_kind)]
        if bad:
            raise ValueError(f"slope {bad[0]} is not of kind {self.slope_kind!r}")
        if not (_is_int(self.range_start) and _is_int(self.range_stop)
                and low <= self.range_start < self.range_stop <= high + 1):
            raise ValueError(f"range [{self.range_start}, {self.range_stop}) must be a non-empty "
                             f"part of the domain [{low}, {high + 1})")
        if self.range_start not in self.starts or (self.range_stop <= high
                                                   and self.range_stop not in self.starts):
            raise ValueError("range_start and range_stop must be piece starts")
        outside = [j for j, c in enumerate(self.starts)
                   if not self.range_start <= c < self.range_stop and self.slopes[j] != 0]
        if outside:
            raise ValueError(f"piece {outside[0]} lies outside the range, so its slope must be 0")
        if not isinstance(self.uniform, bool):
            raise TypeError(f"uniform must be a bool, not {self.uniform!r}")
        if self.uniform:
            if not _is_int(self.segment_bits) or self.segment_bits < 0:
                raise ValueError(f"a uniform plan needs segment_bits >= 0, "
                                 f"not {self.segment_bits!r}")
            width = 1 << self.segment_bits
            starts = [self.starts[j] for j in self._range_indices()]
            # The last may be shorter, or one code longer for the lone folded code 2**(w-1).
            lone = self.symmetric and self.range_stop == high + 1
            if starts != list(range(self.range_start, self.range_start + width * len(starts),
                                    width)) or self.range_stop - starts[-1] > width + lone:
                raise ValueError(f"a uniform plan's range pieces must start every "
                                 f"2**{self.segment_bits} codes from {self.range_start}")
        elif self.segment_bits is not None:
            raise ValueError("segment_bits is only for uniform plans")
        limit = 1 << _INT_LIMIT_BITS
        for j, (s, c, last) in enumerate(zip(self.slopes, self.intercepts, self._offsets())):
            if max(abs(c), abs(s * last + c)) >= limit:
                raise ValueError(f"piece {j}: slope * offset + intercept can reach 2**62; "
                                 f"int64 arithmetic is not safe")
        if self.error is not None and not isinstance(self.error, ErrorBound):
            raise TypeError(f"error must be an ErrorBound or None, not {self.error!r}")

    def _range_indices(self) -> range:
        first = self.starts.index(self.range_start)
        stop = bisect.bisect_left(self.starts, self.range_stop)
        return range(first, stop)

    def _offsets(self) -> list[int]:
        """Largest ``c - starts[j]`` of each piece."""
        high = _domain(self.in_format, self.symmetric)[1]
        ends = list(self.starts[1:]) + [high + 1]
        return [end - 1 - start for start, end in zip(self.starts, ends)]

    @property
    def domain(self) -> tuple[int, int]:
        """Lowest and highest ``c`` (folded magnitude if symmetric), inclusive."""
        return _domain(self.in_format, self.symmetric)

    @property
    def stored_pieces(self) -> int:
        """Pieces the hardware holds, saturation constants included."""
        return len(self.starts)

    @property
    def range_pieces(self) -> int:
        """Stored pieces inside the approximation range."""
        return len(self._range_indices())

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

    @property
    def input_range(self) -> tuple[float, float]:
        """Real input interval ``[low, high)`` the linear pieces cover (unfolded)."""
        res = self.in_format.resolution
        if self.symmetric:
            stop = min(self.range_stop, 1 << (self.in_format.width - 1))
            return -stop * res, stop * res
        return self.range_start * res, self.range_stop * res

    @property
    def breakpoints(self) -> tuple[float, ...]:
        """Real value of each piece start (magnitudes when symmetric)."""
        return tuple(float(v) for v in to_float(np.array(self.starts), self.in_format))

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
                "slope_bits": _signed_bits(min(self.slopes), max(self.slopes)),
                "intercept_bits": _signed_bits(min(self.intercepts), max(self.intercepts)),
                "offset_bits": max([1] + [off.bit_length() for off in sloped]),
                "sum_bits": _signed_bits(min(sums), max(sums)),
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


# ---------------------------------------------------------------------------------------------
# Parameter checks


def _check_function(function) -> Function:
    function = get_function(function)
    if not function.smooth:
        raise ValueError(f"{function.name} is computed exactly (method 'exact'); pwl plans are "
                         f"for smooth functions")
    return function


def _check_kinds(breakpoints, slopes):
    if breakpoints not in BREAKPOINTS:
        raise ValueError(f"breakpoints must be one of {' | '.join(BREAKPOINTS)}, "
                         f"not {breakpoints!r}")
    if slopes not in SLOPE_KINDS:
        raise ValueError(f"slopes must be one of {' | '.join(SLOPE_KINDS)}, not {slopes!r}")


def _asymptote(function, direction: float) -> float | None:
    """``lim f(x)`` for ``x -> direction * inf`` if f settles (to 1e-12), else None."""
    with np.errstate(all="ignore"):
        values = function(direction * np.ldexp(1.0, np.arange(40, 70, 10)))
    if not np.all(np.isfinite(values)):
        return None
    scale = max(1.0, float(np.abs(values).max()))
    if float(np.ptp(values)) > 1e-12 * scale:
        return None
    return float(values[-1])


def _auto_stop(function, in_format, out_format) -> int:
    """Smallest ``K`` such that every code outside ``[-K, K)`` is within half an output ulp of
    the asymptote on its side (a side without an asymptote needs the whole format)."""
    codes = in_format.codes()
    with np.errstate(all="ignore"):
        values = function(to_float(codes, in_format))
    half = out_format.resolution / 2
    need = 1
    high = _asymptote(function, 1.0)
    if high is None:
        need = max(need, in_format.max_int + 1)
    else:
        bad = codes[~(np.abs(values - high) <= half)]
        if bad.size:
            need = max(need, int(bad.max()) + 1)
    low = _asymptote(function, -1.0)
    if low is None:
        need = max(need, -in_format.min_int)
    else:
        bad = codes[~(np.abs(values - low) <= half)]
        if bad.size:
            need = max(need, -int(bad.min()))
    return need


def _range_codes(function, in_format, out_format, symmetric, input_range) -> tuple[int, int]:
    """The approximation range ``[start, stop)`` in ``c`` codes (folded when symmetric)."""
    low, high = _domain(in_format, symmetric)
    if input_range is None:
        stop_k = _auto_stop(function, in_format, out_format)
        start = max(low, -stop_k) if not symmetric else 0
    else:
        try:
            r_lo, r_hi = (float(v) for v in input_range)
        except (TypeError, ValueError):
            raise TypeError(f"input_range must be a pair of numbers (low, high), not "
                            f"{input_range!r}") from None
        if not (math.isfinite(r_lo) and math.isfinite(r_hi)) or not r_lo < r_hi:
            raise ValueError(f"input_range must be an interval (low, high) with low < high, "
                             f"not {input_range!r}")
        if r_lo < in_format.min or r_hi > in_format.max + in_format.resolution:
            raise ValueError(f"input_range {input_range!r} lies outside in_format {in_format} "
                             f"[{in_format.min}, {in_format.max + in_format.resolution})")
        code_lo = math.ceil(r_lo * 2.0 ** in_format.f)
        code_hi = math.ceil(r_hi * 2.0 ** in_format.f)  # half-open [low, high)
        if code_hi <= code_lo:
            raise ValueError(f"input_range {input_range!r} holds no code of {in_format}")
        if symmetric:
            if r_lo != -r_hi:
                raise ValueError(f"a symmetric plan needs input_range symmetric about 0, not "
                                 f"{input_range!r} (pass symmetric=False)")
            stop_k, start = code_hi, 0
        else:
            stop_k, start = code_hi, max(low, code_lo)
    if symmetric and stop_k >= high:
        # The folded domain's top code is the most negative input alone: keep it in the range
        # rather than spend a stored constant on it.
        return start, high + 1
    return start, min(stop_k, high + 1)


def _check_range(function, in_format, out_format, symmetric, start, stop):
    """Reject an out_format more than one ulp short of the function over the range."""
    if symmetric:
        k = min(stop, 1 << (in_format.width - 1))
        codes = np.arange(max(-k, in_format.min_int), min(k - 1, in_format.max_int) + 1)
    else:
        codes = np.arange(start, stop)
    check_output_range(function, in_format, out_format, codes)


# ---------------------------------------------------------------------------------------------
# The fitting problem: targets on every code of the domain, curvature runs, piece fits


def _allowed_values(kind: str) -> np.ndarray:
    """Every non-negative slope of ``kind`` below 2**62, ascending (cached)."""
    cached = _ALLOWED.get(kind)
    if cached is None:
        values = {0} | {1 << e for e in range(62)}
        if kind == "pot2":
            values |= {(1 << e) + (1 << g) for e in range(61) for g in range(e)}
            values |= {(1 << e) - (1 << g) for e in range(62) for g in range(e)}
        cached = _ALLOWED[kind] = np.array(sorted(values), dtype=np.int64)
    return cached


_ALLOWED: dict = {}


def _nearest_allowed(x: float, kind: str, each_side: int) -> list[int]:
    """Up to ``each_side`` slopes of ``kind`` on each side of the real ``x`` (plus 0), nearest
    first."""
    values = _allowed_values(kind)
    magnitude = abs(x)
    i = int(np.searchsorted(values, magnitude))
    picked = values[max(0, i - each_side):i + each_side]
    sign = -1 if x < 0 else 1
    found = {sign * int(v) for v in picked} | {0}
    if magnitude < 2:
        found |= {-sign * int(v) for v in values[:each_side]}
    return sorted(found, key=lambda v: (abs(v - x), v))


class _Problem:
    """Targets ``t`` (exact function values in output codes) on every code of the domain,
    indexed ``i = c - domain_low``, with what the fits and searches need."""

    def __init__(self, function, in_format, out_format, symmetric, start, stop):
        self.function, self.in_format, self.out_format = function, in_format, out_format
        self.symmetric = symmetric
        self.low, self.high = _domain(in_format, symmetric)
        self.r0, self.r1 = start - self.low, stop - 1 - self.low   # range, inclusive indices
        codes = np.arange(self.low, self.high + 1, dtype=np.int64)
        with np.errstate(all="ignore"):
            self.t = np.ldexp(function(to_float(codes, in_format)), out_format.f)
        self.out_lo, self.out_hi = out_format.min_int, out_format.max_int
        # The clipped targets are what a fit can aim at; beyond them the clip decides.
        self.tc = np.clip(self.t, self.out_lo, self.out_hi)
        self.excess = float(np.abs(self.t - self.tc).max())
        self.dt = np.diff(self.tc)
        self.ndt = -self.dt
        self._runs()
        self.shift0 = self._generous_shift()
        # The best fit found so far per (a, b, shift, kind): a later, wider search can only
        # improve a piece, and a piece the breakpoint search accepted keeps its error.
        self.fits = {}
        self.lines = {}

    def _runs(self):
        """Split the domain into runs where the targets are convex or concave: in a run, the
        extremes of ``t - a*i`` sit at the ends or where ``dt`` crosses ``a`` (a bisection)."""
        d2 = np.diff(self.dt)
        tol = 64 * np.finfo(float).eps * max(1.0, float(np.abs(self.tc).max()))
        sign = (d2 > tol).astype(np.int8) - (d2 < -tol).astype(np.int8)
        nonzero = np.flatnonzero(sign)
        if nonzero.size:
            flips = nonzero[1:][sign[nonzero[1:]] != sign[nonzero[:-1]]]
            first = int(sign[nonzero[0]])
        else:
            flips, first = nonzero, 1
        # A run starting at point k keeps d2[k..] of one sign (k is where that sign begins).
        self.run_starts = [0] + [int(k) for k in flips]
        self.run_convex = [first >= 0] + [bool(sign[k] > 0) for k in flips]
        self.run_ends = self.run_starts[1:] + [len(self.tc)]

    def _generous_shift(self) -> int:
        span = self.high - self.low
        offset_bits = span.bit_length()
        slope = float(np.abs(self.dt[self.r0:self.r1]).max()) if self.r1 > self.r0 else 0.0
        # Room for candidate slopes a few times the steepest, and for intercepts.
        slope_bits = max(0, math.ceil(math.log2(4 * slope + 4)))
        out_bits = max(abs(self.out_lo), abs(self.out_hi) + 1).bit_length() + 2
        room = _INT_LIMIT_BITS - 2 - max(slope_bits + offset_bits, out_bits)
        shift = min(offset_bits + GUARD_BITS, room)
        if shift < 0:
            raise ValueError(f"{self.function.name} from {self.in_format} to "
                             f"{self.out_format} needs more than {_INT_LIMIT_BITS} bits for "
                             f"slope * offset + intercept: the formats are too wide (or the "
                             f"function too steep) for int64 arithmetic")
        return shift

    # -- continuous (real-valued) errors ------------------------------------------------------

    def _extremes(self, a, b, alpha):
        """max and min over i in [a, b] of ``tc[i] - alpha * (i - a)``, for each alpha."""
        alpha = np.asarray(alpha, dtype=np.float64)
        t = self.tc
        r_first = bisect.bisect_right(self.run_starts, a) - 1
        r_last = bisect.bisect_right(self.run_starts, b) - 1
        if r_last - r_first > 3 or b - a < 64:
            # Many runs (noise in flat regions) or few codes: evaluate every point.
            h = t[a:b + 1][None, :] - alpha[:, None] * np.arange(b - a + 1)[None, :]
            return h.max(axis=1), h.min(axis=1)
        hmax = np.full(alpha.shape, -np.inf)
        hmin = np.full(alpha.shape, np.inf)
        for r in range(r_first, r_last + 1):
            p, q = max(a, self.run_starts[r]), min(b, self.run_ends[r] - 1)
            points = [np.full(alpha.shape, p), np.full(alpha.shape, q)]
            if q - p >= 2:
                if self.run_convex[r]:
                    k = p + np.searchsorted(self.dt[p:q], alpha)
                else:
                    k = p + np.searchsorted(self.ndt[p:q], -alpha)
                # Neighbours too: rounding noise can leave dt a hair out of order.
                points += [np.clip(k + off, p, q) for off in (-1, 0, 1)]
            for i in points:
                h = t[i] - alpha * (i - a)
                hmax = np.maximum(hmax, h)
                hmin = np.minimum(hmin, h)
        return hmax, hmin

    def line(self, a, b) -> tuple[float, float]:
        """Continuous minimax line over codes a..b: (slope in codes per code, max error)."""
        known = self.lines.get((a, b))
        if known is None:
            known = self.lines[a, b] = self._line(a, b)
        return known

    def _line(self, a, b) -> tuple[float, float]:
        if b - a <= 1:
            return (float(self.dt[a]) if b > a else 0.0), 0.0
        t = self.tc
        r_first = bisect.bisect_right(self.run_starts, a) - 1
        r_last = bisect.bisect_right(self.run_starts, b) - 1
        if r_first == r_last:
            # Convex or concave: the chord's slope is the minimax slope.
            alpha = (t[b] - t[a]) / (b - a)
            hmax, hmin = self._extremes(a, b, [alpha])
            return float(alpha), float(hmax[0] - hmin[0]) / 2
        lo, hi = float(self.dt[a:b].min()), float(self.dt[a:b].max())
        best_alpha, best = lo, np.inf
        for _ in range(40):
            alphas = np.linspace(lo, hi, 17)
            hmax, hmin = self._extremes(a, b, alphas)
            width = hmax - hmin
            k = int(np.argmin(width))
            if width[k] < best:
                best_alpha, best = float(alphas[k]), float(width[k])
            lo, hi = alphas[max(k - 1, 0)], alphas[min(k + 1, 16)]
            if (hi - lo) * (b - a) <= 1e-7 * max(1.0, best):
                break
        return best_alpha, best / 2

    def real_error(self, a, b, kind) -> float:
        """Smallest continuous max error over codes a..b with a slope of ``kind``."""
        alpha, error = self.line(a, b)
        if kind == "any" or b == a:
            return error
        scale = 2.0 ** self.shift0
        sigmas = [v / scale for v in _nearest_allowed(alpha * scale, kind, 1)]
        hmax, hmin = self._extremes(a, b, sigmas)
        return float((hmax - hmin).min()) / 2

    # -- quantized fits -------------------------------------------------------------------------

    def candidates(self, a, b, shift, kind, count) -> list[int]:
        """Integer slopes to try on codes a..b, nearest the continuous optimum first."""
        n = b - a + 1
        if n == 1:
            return [0]
        alpha = self.line(a, b)[0]
        x = alpha * 2.0 ** shift
        if kind != "any":
            return self._safe(_nearest_allowed(x, kind, 3 if kind == "pot" else 5), n)
        # Slopes moving the far end of the piece by up to two codes either way.
        reach = max(2 * 2.0 ** shift / (n - 1), 3.0)
        lo, hi = math.floor(x - reach), math.ceil(x + reach)
        if hi - lo + 1 <= count:
            values = list(range(lo, hi + 1))
        else:
            values = [round(v) for v in np.linspace(x - reach, x + reach, count)]
        values.append(round(x))
        return self._safe(sorted(set(values), key=lambda v: (abs(v - x), v)), n)

    @staticmethod
    def _safe(values, n):
        """Slopes whose products over n codes stay well inside int64."""
        return [v for v in values if abs(v) * n < 1 << (_INT_LIMIT_BITS - 1)] or [0]

    def chord(self, a, b, shift) -> tuple[int, int]:
        """The baseline: interpolation through the end points, rounded to nearest."""
        t = self.t
        slope = (t[b] - t[a]) / (b - a) if b > a else 0.0
        half = (1 << (shift - 1)) if shift else 0
        return (int(math.floor(slope * 2.0 ** shift + 0.5)),
                int(math.floor(t[a] * 2.0 ** shift + 0.5)) + half)

    def evaluate(self, a, b, shift, slopes, intercepts) -> np.ndarray:
        """Max error (output codes, true targets, after floor and clip) of each (S, C) pair."""
        d = np.arange(b - a + 1, dtype=np.int64)
        slopes = np.asarray(slopes, dtype=np.int64)[:, None]
        intercepts = np.asarray(intercepts, dtype=np.int64)[:, None]
        y = np.clip((slopes * d + intercepts) >> shift, self.out_lo, self.out_hi)
        return np.abs(y - self.t[a:b + 1]).max(axis=1)

    @staticmethod
    def _intercepts(slopes, d, shift, above, below, floor):
        """For each slope, the intercept minimizing ``max(y + above, -(y + below), floor)``
        over the piece, with ``y = (S*d + C) >> shift`` unclipped (see :meth:`fit`)."""
        one = 1 << shift
        n = len(d)
        k = len(slopes)
        product = slopes[:, None] * d
        whole, rest = product >> shift, product & (one - 1)
        order = np.argsort(-rest, axis=1, kind="stable")
        rest = np.take_along_axis(rest, order, axis=1)
        whole = np.take_along_axis(whole, order, axis=1).astype(np.float64)
        hi = whole + above[order]
        lo = whole + below[order]
        # top[:, j] / bottom[:, j]: extremes of the error terms when the first j codes (in
        # descending R) round up and the others down.
        top = np.full((k, n + 1), -np.inf)
        bottom = np.full((k, n + 1), np.inf)
        top[:, 1:] = np.maximum.accumulate(hi + 1, axis=1)
        bottom[:, 1:] = np.minimum.accumulate(lo + 1, axis=1)
        top[:, :n] = np.maximum(top[:, :n], np.maximum.accumulate(hi[:, ::-1], axis=1)[:, ::-1])
        bottom[:, :n] = np.minimum(bottom[:, :n],
                                   np.minimum.accumulate(lo[:, ::-1], axis=1)[:, ::-1])
        with np.errstate(invalid="ignore"):
            m = np.floor(-(top + bottom) / 2)
            # One side unconstrained: the smallest (largest) m that reaches the floor.
            m = np.where(np.isneginf(top), np.ceil(-bottom - floor), m)
            m = np.where(np.isposinf(bottom), np.floor(floor - top), m)
            m = np.where(np.isfinite(m), m, 0.0)
            error = np.maximum(m + top, -m - bottom)
            up = np.maximum(m + 1 + top, -m - 1 - bottom)
        better = up < error
        m = np.where(better, m + 1, m)
        error = np.where(better, up, error)
        # Only boundaries between distinct remainders give a distinct rounding set.
        error[:, 1:n][rest[:, :-1] == rest[:, 1:]] = np.inf
        choice = np.argmin(error, axis=1)
        rows = np.arange(k)
        phi = np.where(choice == 0, 0, one - rest[rows, np.maximum(choice - 1, 0)])
        return m[rows, choice].astype(np.int64) * one + phi

    def _clipped_intercepts(self, a, b, shift, slopes, bound):
        """For each slope, the intercept minimizing the true max error (floor and clip), among
        intercepts whose error can be at most ``bound`` (others are of no interest).

        The error is ``max(U, L)`` with ``U = max(clip(y) - t)`` non-decreasing in C and
        ``L = max(t - clip(y))`` non-increasing, so the best C is the smallest with U >= L or
        the one before it: a bisection, exact whatever the clip does.
        """
        d = np.arange(b - a + 1, dtype=np.int64)
        t = self.t[a:b + 1]
        product = slopes[:, None] * d
        one = 1 << shift
        # The code farthest from the output range's ends: if the clip cannot reach it within
        # the bound, its output pins C to a window of (2*bound + 2) * 2**shift.
        room = np.minimum(t - self.out_lo, self.out_hi - t)
        k = int(np.argmax(room))

        def balanced(c):
            y = np.clip((product + c[:, None]) >> shift, self.out_lo, self.out_hi)
            diff = y - t
            return diff.max(axis=1) + diff.min(axis=1) >= 0

        # Below lo every output clips low, above hi every output clips high.
        lo = (self.out_lo - 1) * one - product.max(axis=1) - 1
        hi = (self.out_hi + 1) * one - product.min(axis=1) + 1
        if room[k] > bound + 1:
            lo = np.maximum(lo, math.floor((t[k] - bound - 2) * one) - product[:, k])
            hi = np.minimum(hi, math.ceil((t[k] + bound + 2) * one) - product[:, k])
        at_lo = balanced(lo)
        hi = np.where(balanced(hi), hi, hi + 1)   # unbalanced everywhere: all clip high
        lo = lo - 1                               # invariant: lo unbalanced, hi balanced
        while np.any(hi - lo > 1):
            mid = lo + (hi - lo) // 2
            ok = balanced(mid)
            hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)
        hi = np.where(at_lo, lo + 1, hi)
        below = self.evaluate(a, b, shift, slopes, hi - 1)
        here = self.evaluate(a, b, shift, slopes, hi)
        return np.where(below < here, hi - 1, hi)

    def fit(self, a, b, shift, kind, count=_FINAL_CANDIDATES, slopes=None):
        """The (S, C, error) with the smallest max error on codes a..b at ``shift``.

        Error is in output codes against the exact targets, after the floor and the clip. For
        each candidate slope S the intercept is optimal by enumeration: with
        ``S*d = P*2**shift + R`` and ``C = m*2**shift + phi`` the output is
        ``P + m + [R + phi >= 2**shift]``, so only the set of codes that round up matters;
        sorting by R enumerates those sets, and for each the best integer m balances the
        largest error above the targets against the largest below. The clip is modelled
        exactly where a target lies beyond the output range; near the range's ends, where an
        output may overshoot into the clip on purpose, promising slopes get their intercept
        from an exact bisection instead (:meth:`_clipped_intercepts`). The winner is chosen on
        the true error; for slope kind "any" the interpolation through the end points is a
        candidate too.
        """
        n = b - a + 1
        slopes_given = slopes is not None
        if not slopes_given:
            if self.line(a, b)[1] > _FEW_CANDIDATES_ULPS:
                # Rounding moves a large error by a small fraction: a few slopes suffice.
                count = min(count, _SEARCH_CANDIDATES)
            slopes = self.candidates(a, b, shift, kind, count)
        slopes = np.array(slopes, dtype=np.int64)
        d = np.arange(n, dtype=np.int64)
        t = self.t[a:b + 1]
        target = self.tc[a:b + 1]
        excess = np.abs(t - target)
        best = (0, 0, np.inf)
        rows = max(1, _FIT_CHUNK // n)

        # Targets at or beyond the range's ends cannot be overshot (undershot) after the clip,
        # and their distance beyond is a floor on the error: exact for them.
        top, bottom = t >= self.out_hi, t <= self.out_lo
        above = np.where(top, -np.inf, excess - target)
        below = np.where(bottom, np.inf, -excess - target)
        errors = np.full(len(slopes), np.inf)
        for lo in range(0, len(slopes), rows):
            chunk = slopes[lo:lo + rows]
            intercepts = self._intercepts(chunk, d, shift, above, below, float(excess.max()))
            errors[lo:lo + rows] = self.evaluate(a, b, shift, chunk, intercepts)
            j = int(np.argmin(errors[lo:lo + rows]))
            if errors[lo + j] < best[2]:
                best = (int(chunk[j]), int(intercepts[j]), float(errors[lo + j]))
        reach = best[2] + 1
        # (For slope 0 alone the model is exact: a constant gains nothing from the clip.)
        if slopes.any() and ((target >= self.out_hi - reach)
                             | (target <= self.out_lo + reach)).any():
            # An output may overshoot into the clip on purpose, which the model above charges
            # for: bisect the intercept on the true error for the most promising slopes and
            # for slopes near the minimax lines of the codes left clear of the ends (a clipped
            # line can be steeper than any line).
            small = len(slopes) * n <= 1 << 14
            keep, margins = (len(slopes), (reach, reach / 2, 0.0)) if small else (4, (reach,))
            tried = [slopes[np.argsort(errors, kind="stable")[:keep]]]
            for margin in () if slopes_given else margins:
                free = np.flatnonzero((target < self.out_hi - margin)
                                      & (target > self.out_lo + margin))
                if free.size >= 2 and free[-1] - free[0] < n - 1:
                    tried.append(np.array(self.candidates(a + free[0], a + free[-1], shift,
                                                          kind, _SEARCH_CANDIDATES)))
            tried = np.unique(np.concatenate(tried)).astype(np.int64)
            intercepts = self._clipped_intercepts(a, b, shift, tried, best[2])
            true = self.evaluate(a, b, shift, tried, intercepts)
            j = int(np.argmin(true))
            if true[j] < best[2]:
                best = (int(tried[j]), int(intercepts[j]), float(true[j]))
        if kind == "any" and n > 1:
            # Never worse than plain interpolation through the end points.
            cs, cc = self.chord(a, b, shift)
            chord_error = float(self.evaluate(a, b, shift, [cs], [cc])[0])
            if chord_error < best[2]:
                best = (cs, cc, chord_error)
        if slopes_given:
            return best
        key = (a, b, shift, kind)
        known = self.fits.get(key)
        if known is None or best[2] < known[2]:
            self.fits[key] = known = best
        return known

    def constant(self, a, b, shift):
        """The slope-0 piece with the smallest max error on codes a..b (a code of the output
        format: the clip would make any value beyond its ends the end itself)."""
        _, c, error = self.fit(a, b, shift, "pot", slopes=[0])
        value = min(max(c >> shift, self.out_lo), self.out_hi)
        return 0, value << shift, error

    # -- breakpoints ------------------------------------------------------------------------------

    def greedy(self, target, max_pieces, error):
        """Maximal pieces from the range start, each with ``error(a, b, target) <= target``
        (the error function may answer with a bound when that decides the comparison).

        Returns (ends, errors) or None when more than ``max_pieces`` are needed.
        """
        ends, errors = [], []
        a, guess = self.r0, 1
        while a <= self.r1:
            if len(ends) == max_pieces:
                return None
            whole = error(a, self.r1, target)
            if whole <= target:
                ends.append(self.r1)
                errors.append(whole)
                break
            good, good_error, bad = a, 0.0, self.r1
            step = guess
            while a + step < bad:
                e = error(a, a + step, target)
                if e <= target:
                    good, good_error = a + step, e
                    step *= 2
                else:
                    bad = a + step
                    break
            while bad - good > 1:
                mid = (good + bad) // 2
                e = error(a, mid, target)
                if e <= target:
                    good, good_error = mid, e
                else:
                    bad = mid
            ends.append(good)
            errors.append(good_error)
            guess = max(1, good - a)
            a = good + 1
        return ends, errors

    def optimal_ends(self, pieces, error, low=0.0, high=None, tolerance=_TARGET_TOLERANCE):
        """Greedy ends at (about) the smallest target needing at most ``pieces`` pieces.

        Returns (ends, the largest piece error) or None if ``high`` needs more pieces.
        """
        if high is None:
            high = error(self.r0, self.r1, np.inf)
        best = self.greedy(high, pieces, error)
        if best is None:
            return None
        high = max(best[1])
        while high - low > tolerance * max(1.0, 1e-6 * high):
            mid = (low + high) / 2
            found = self.greedy(mid, pieces, error)
            if found is None:
                low = mid
            else:
                best = found
                high = max(found[1])
        return best[0], high

    def uniform_ends(self, pieces) -> tuple[list[int], int]:
        """Ends of the fewest pieces of the smallest power-of-two width covering the range."""
        last = len(self.t) - 1
        # The folded domain's top code (the most negative input alone) rides on the last
        # piece rather than widen the grid.
        lone = self.symmetric and self.r1 == last
        span = self.r1 - self.r0 + 1 - lone
        bits = (-(-span // pieces) - 1).bit_length()
        width = 1 << bits
        count = -(-span // width)
        ends = [min(self.r0 + (j + 1) * width - 1, last) for j in range(count)]
        if self.symmetric and ends[-1] == last - 1:
            ends[-1] = last
        return ends, bits


def _spans(problem: _Problem, ends) -> list[tuple[int, int, bool]]:
    """(first, last, is_constant) of every piece, as target indices, given the range's ends."""
    last = len(problem.t) - 1
    r0, r1 = problem.r0, ends[-1]
    spans = [(0, r0 - 1, True)] if r0 > 0 else []
    a = r0
    for end in ends:
        spans.append((a, end, False))
        a = end + 1
    if r1 < last:
        spans.append((r1 + 1, last, True))
    return spans


def _build(problem: _Problem, ends, shift, kind, uniform_bits):
    """Fit every piece of the partition; return the plan (no error yet) and piece errors."""
    r0, r1 = problem.r0, ends[-1]
    starts, slopes, intercepts, errors = [], [], [], []
    for a, b, constant in _spans(problem, ends):
        s, c, e = problem.constant(a, b, shift) if constant else problem.fit(a, b, shift, kind)
        starts.append(a + problem.low)
        slopes.append(s)
        intercepts.append(c)
        errors.append(e)
    plan = PWLPlan(function=problem.function, in_format=problem.in_format,
                   out_format=problem.out_format, symmetric=problem.symmetric,
                   starts=tuple(starts), slopes=tuple(slopes), intercepts=tuple(intercepts),
                   shift=shift, slope_kind=kind, uniform=uniform_bits is not None,
                   segment_bits=uniform_bits, range_start=r0 + problem.low,
                   range_stop=r1 + 1 + problem.low)
    return plan, errors


def _measured(plan: PWLPlan) -> PWLPlan:
    codes = plan.in_format.codes()
    error = measure_error(plan.function, plan.in_format, plan.out_format, pwl(plan, codes))
    return PWLPlan(**{**plan.__dict__, "error": error})


def _smallest_shift(problem: _Problem, ends, kind, reference_errors) -> int:
    """The smallest shift at which no piece's error exceeds ``reference_errors`` (its error at
    the generous shift): narrower slopes and intercepts for the core, at no cost in accuracy.
    """
    spans = _spans(problem, ends)
    # Constants do not depend on the shift. The widest pieces are the likeliest to fail.
    checks = sorted(((b - a, a, b, ref) for (a, b, constant), ref in zip(spans, reference_errors)
                     if not constant), reverse=True)

    def fits(shift):
        return all(problem.fit(a, b, shift, kind)[2] <= ref + 1e-9 for _, a, b, ref in checks)

    # Slope rounding moves a piece's far end by up to width / 2**(shift+1) codes: the answer
    # is usually within a few bits of the widest piece's offset width.
    shift = min(checks[0][0].bit_length(), problem.shift0)
    if fits(shift):
        # Bisect below: the smallest shift that still fits (fitting is nearly monotone).
        low, high = -1, shift
        while high - low > 1:
            mid = (low + high) // 2
            if fits(mid):
                high = mid
            else:
                low = mid
        return high
    while shift < problem.shift0 and not fits(shift):
        shift += 1
    return shift


def _plan_for(problem: _Problem, pieces: int, breakpoints: str, kind: str,
              extra=()) -> PWLPlan:
    """The best plan with at most ``pieces`` stored range pieces (measured).

    Candidate partitions: the uniform one; for optimal breakpoints also the minimax one on the
    continuous error, the one on the quantized error (where rounding matters), and ``extra``.
    The winner has the smallest measured maximum error, then the smallest error inside the
    range, then the fewest pieces.
    """
    shift0 = problem.shift0
    cache = {}
    uniform_ends, bits = problem.uniform_ends(pieces)
    bits_of = {tuple(uniform_ends): bits}

    def build(ends, shift):
        key = (tuple(ends), shift)
        if key not in cache:
            cache[key] = _build(problem, ends, shift, kind, bits_of.get(tuple(ends)))
        return cache[key]

    candidates = [uniform_ends]
    if breakpoints == "optimal":
        def real(a, b, target):
            return problem.real_error(a, b, kind)

        ends, reached = problem.optimal_ends(pieces, real)
        candidates = [ends] + candidates
        worst = max(build(ends, shift0)[1])
        if worst < _QUANTIZED_SEARCH_ULPS and pieces <= _QUANTIZED_SEARCH_PIECES:
            found = problem.optimal_ends(pieces, _quantized_error(problem, kind),
                                         low=max(0.0, reached - 0.5), high=worst,
                                         tolerance=4 * _TARGET_TOLERANCE)
            if found is not None:
                candidates = [found[0]] + candidates
        candidates = [list(ends) for ends in extra] + candidates
    best = None
    for ends in candidates:
        plan, errors = build(ends, shift0)
        plan = _measured(plan)
        inside = max(e for (_, _, constant), e in zip(_spans(problem, ends), errors)
                     if not constant)
        # Ties on the maximum (often set by the saturation constants) go to the smaller error
        # inside the range, then to fewer pieces, then to the smaller mean.
        key = (plan.error.max_abs, inside, plan.stored_pieces, plan.error.mean_abs)
        if best is None or key < best[0]:
            best = (key, ends)
    ends = best[1]
    shift = _smallest_shift(problem, ends, kind, build(ends, shift0)[1])
    return _measured(build(ends, shift)[0])


def _quantized_error(problem: _Problem, kind: str):
    """Piece error for the quantized breakpoint search. The continuous error E decides where
    it can: a quantized fit reaches E + 1/2 ulp plus the slope and intercept rounding (and the
    targets' distance beyond the output range), and cannot beat E - 1/2 ulp unless the clip
    can act (targets within the error of the output range's ends). A quantized fit decides
    in between."""
    cache = {}
    shift = problem.shift0
    tiny = 2.0 ** -shift

    def error(a, b, target):
        if (a, b) in cache:
            return cache[a, b]
        real = problem.real_error(a, b, kind)
        slack = tiny + ((b - a) * tiny / 2 if kind == "any" else 0.0)
        t, tc = problem.t[a:b + 1], problem.tc[a:b + 1]
        upper = real + 0.5 + slack + float(np.abs(t - tc).max())
        if upper <= target:
            return upper
        if real - 0.5 > target:
            # Where no target is within reach of the output range's ends the clip cannot act
            # and E - 1/2 bounds the quantized error below; check the longest such prefix.
            near = (tc >= problem.out_hi - target - 1) | (tc <= problem.out_lo + target + 1)
            stop = b if not near.any() else a + int(np.argmax(near)) - 1
            if stop >= a and (stop == b or problem.real_error(a, stop, kind) - 0.5 > target):
                return real - 0.5
        cache[a, b] = problem.fit(a, b, shift, kind, count=_SEARCH_CANDIDATES)[2]
        return cache[a, b]

    return error


def _prepare(function, in_format, out_format, breakpoints, slopes, symmetric, input_range):
    function = _check_function(function)
    in_format = _as_format(in_format, "in_format")
    out_format = _as_format(out_format, "out_format")
    check_exhaustive(in_format)
    _check_kinds(breakpoints, slopes)
    symmetric_given = symmetric
    symmetric = check_symmetry(function, in_format, out_format, symmetric)
    if symmetric and symmetric_given is None and input_range is not None:
        # "Use the symmetry if there is one": an asymmetric range has none to use.
        try:
            r_lo, r_hi = (float(v) for v in input_range)
            symmetric = r_lo == -r_hi
        except (TypeError, ValueError):
            pass
    start, stop = _range_codes(function, in_format, out_format, symmetric, input_range)
    _check_range(function, in_format, out_format, symmetric, start, stop)
    return _Problem(function, in_format, out_format, symmetric, start, stop)


def _real_range(problem: _Problem) -> str:
    res = problem.in_format.resolution
    stop = min(problem.r1 + 1 + problem.low, 1 << (problem.in_format.width - 1)) \
        if problem.symmetric else problem.r1 + 1 + problem.low
    start = -stop if problem.symmetric else problem.r0 + problem.low
    return f"[{start * res:g}, {stop * res:g})"


def _stored_pieces(problem: _Problem, segments) -> int:
    if not _is_int(segments):
        raise TypeError(f"segments must be an integer, not {segments!r}")
    segments = int(segments)
    span = problem.r1 - problem.r0 + 1
    factor = 2 if problem.symmetric else 1
    if segments < 1:
        raise ValueError(f"segments must be at least 1, not {segments}")
    if problem.symmetric and segments % 2:
        raise ValueError(f"a symmetric plan has an even number of segments (each stored piece "
                         f"serves both signs), not {segments}; pass symmetric=False for an odd "
                         f"count")
    if segments > factor * span:
        raise ValueError(f"segments must be at most {factor * span} (one per input code of the "
                         f"range), not {segments}")
    return segments // factor


def plan_pwl(function, in_format, out_format, *, segments, breakpoints="optimal", slopes="any",
             symmetric=None, input_range=None) -> PWLPlan:
    """A piecewise-linear plan for a smooth ``function`` with at most ``segments`` segments.

    Every piece's integer slope and intercept minimize its maximum error after the floor and
    the output clip; the plan's ``error`` is measured on every input code.

    Parameters
    ----------
    function : str or Function
        A smooth registered function (sigmoid, tanh, ...).
    in_format, out_format : Format or str
    segments : int
        Linear pieces over the input range, counted over the full (unfolded) range: even for a
        symmetric plan, which stores ``segments // 2``. A plan may use fewer (see
        :attr:`PWLPlan.segments`): uniform plans use the fewest pieces of their power-of-two
        width that cover the range, and optimal plans fewer pieces where that costs no error.
    breakpoints : "uniform" or "optimal"
        ``"uniform"``: pieces of the smallest power-of-two width ``2**m`` with
        ``segments * 2**m`` covering the range (the range then extends to whole pieces, within
        the input format). ``"optimal"``: non-uniform, minimizing the maximum error: a binary
        search on the error target with greedy maximal pieces, first on each piece's
        continuous minimax error, then (where the fitted error is within a couple of ulps and
        there are at most 64 pieces) on its quantized error; the uniform partition is a
        candidate too, so optimal is never worse than uniform at the same count.
    slopes : "any", "pot" or "pot2"
        Integer slopes allowed: any, powers of two, or sums/differences of two powers of two.
    symmetric : bool, optional
        Fold the input and store the non-negative half (default: when the function has a
        symmetry, the input is signed and ``input_range`` is symmetric about 0).
    input_range : (float, float), optional
        Real interval ``[low, high)`` covered by linear pieces; outside it the output is the
        best constant (a slope-0 piece). Default: the smallest range ``[-K, K)`` outside of
        which the function is within half an output ulp of its asymptotes, within the input
        format; the constants are then the correctly rounded asymptotes (or a neighbouring code
        where that is strictly better on the codes it serves).

    Returns
    -------
    PWLPlan

    Raises
    ------
    TypeError
        A parameter has the wrong type (segments not an integer, a bad input_range, ...).
    ValueError
        An unknown function, breakpoints or slopes kind; a non-smooth function; segments out of
        range (or odd for a symmetric plan); an input_range outside the input format or empty
        (or asymmetric with symmetric=True); symmetric=True for a function without symmetry
        or an unsigned input; an unsigned out_format for an odd function; an out_format more
        than one ulp short of the function's range; an input format wider than
        :data:`~hwnn.plans.accuracy.MAX_EXHAUSTIVE_WIDTH`.
    """
    problem = _prepare(function, in_format, out_format, breakpoints, slopes, symmetric,
                       input_range)
    pieces = _stored_pieces(problem, segments)
    return _plan_for(problem, pieces, breakpoints, slopes)


def fit_pwl(function, in_format, out_format, max_error, *, breakpoints="optimal", slopes="any",
            symmetric=None, input_range=None, max_segments=256) -> PWLPlan:
    """The plan with the fewest segments whose measured ``error.max_abs <= max_error``.

    Optimal breakpoints: greedy maximal pieces with error <= ``max_error`` (on the quantized
    error where output rounding matters, else on the continuous error less the rounding's
    half ulp) give a count that suffices; then fewer pieces are tried while the minimax plan
    of :func:`plan_pwl` still meets ``max_error`` (more if the count fell short). Uniform
    breakpoints: piece widths are tried from the widest down. Other parameters as in
    :func:`plan_pwl`; ``max_segments`` counts like ``segments``.

    Raises
    ------
    TypeError
        ``max_error`` or ``max_segments`` has the wrong type, or as :func:`plan_pwl`.
    ValueError
        ``max_error`` is not positive, ``max_segments`` < 1, as :func:`plan_pwl`, the
        saturation constants outside the input range alone exceed ``max_error``, or no plan
        with up to ``max_segments`` segments meets ``max_error`` (the message gives the best
        error reached).
    """
    if not isinstance(max_error, (int, float, np.floating)) or isinstance(max_error, bool):
        raise TypeError(f"max_error must be a number, not {max_error!r}")
    if not max_error > 0:
        raise ValueError(f"max_error must be positive, not {max_error!r}")
    if not _is_int(max_segments):
        raise TypeError(f"max_segments must be an integer, not {max_segments!r}")
    if max_segments < 1:
        raise ValueError(f"max_segments must be at least 1, not {max_segments}")
    problem = _prepare(function, in_format, out_format, breakpoints, slopes, symmetric,
                       input_range)
    factor = 2 if problem.symmetric else 1
    span = problem.r1 - problem.r0 + 1
    most = min(max_segments // factor, span)
    if most < 1:
        raise ValueError(f"max_segments must be at least 2 for a symmetric plan, "
                         f"not {max_segments}")
    best = None

    def better(plan):
        return best is None or plan.error.max_abs < best.error.max_abs

    if breakpoints == "uniform":
        # Widest pieces first: the first plan that meets max_error has the fewest.
        bits = (span - 1).bit_length()
        while bits >= 0 and -(-span // (1 << bits)) <= most:
            plan = _plan_for(problem, -(-span // (1 << bits)), breakpoints, slopes)
            if plan.error.max_abs <= max_error:
                return plan
            best = plan if better(plan) else best
            bits -= 1
    else:
        target = max_error * 2.0 ** problem.out_format.f
        last = len(problem.t) - 1
        outside = [(0, problem.r0 - 1)] if problem.r0 > 0 else []
        outside += [(problem.r1 + 1, last)] if problem.r1 < last else []
        saturation = max([problem.constant(a, b, problem.shift0)[2] for a, b in outside],
                         default=0.0)
        if saturation > target:
            raise ValueError(
                f"no pwl plan for {problem.function.name} from {problem.in_format} to "
                f"{problem.out_format} meets max_error {max_error:g}: the constants outside "
                f"the input range {_real_range(problem)} alone have error "
                f"{saturation * problem.out_format.resolution:.3g}; widen input_range")
        if target < _QUANTIZED_SEARCH_ULPS + 1:
            # Rounding matters: greedy maximal pieces on the quantized error itself.
            error = _quantized_error(problem, slopes)
        else:
            # A fit reaches the continuous error + 1/2 ulp + slope/intercept rounding.
            error = (lambda a, b, _: problem.real_error(a, b, slopes))
            target -= 0.5 + 2.0 ** -problem.shift0 * (1 + (problem.r1 - problem.r0) / 2)
        found = problem.greedy(target, most, error) if target > 0 else None
        count = len(found[0]) if found is not None else most
        extra = [found[0]] if found is not None else []
        plan = _plan_for(problem, count, breakpoints, slopes, extra=extra)
        if plan.error.max_abs > max_error:
            best = plan
            # The greedy count was not enough (the saturation constants, or heuristics).
            while best.error.max_abs > max_error and count < most:
                count += 1
                plan = _plan_for(problem, count, breakpoints, slopes)
                best = plan if better(plan) else best
            if best.error.max_abs <= max_error:
                return best
        else:
            # Fewer pieces may still do: the minimax partitions beat the greedy's target.
            while count > 1:
                fewer = _plan_for(problem, count - 1, breakpoints, slopes)
                if fewer.error.max_abs > max_error:
                    break
                plan, count = fewer, count - 1
            return plan
    reached = (f"the best reached {best.error.max_abs:.3g} with {best.segments} segments"
               if best is not None else "no plan fits")
    raise ValueError(f"no pwl plan for {problem.function.name} from {problem.in_format} to "
                     f"{problem.out_format} with up to {max_segments} segments meets max_error "
                     f"{max_error:g}; {reached}")
