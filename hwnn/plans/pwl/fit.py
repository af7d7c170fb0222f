"""The PWL fitting engine: integer lines that minimize a piece's error after floor and clip.

:class:`Problem` holds the targets (exact function values in output codes) on every code of the
domain and answers what the breakpoint searches ask: a piece's continuous minimax error, its
best integer slope and intercept at a shift (searched over slopes near the minimax line, each
with its exactly optimal intercept), the best constant, greedy maximal pieces for an error
target, and the minimax and uniform partitions.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

from ...checks import ParameterValueError
from ...fixed import to_float
from .plan import INT_LIMIT_BITS, domain_of

__all__ = ["Problem", "GUARD_BITS"]

# Extra fraction bits of the slope beyond the widest piece offset: slope rounding then moves a
# line by at most 2**-GUARD_BITS output ulps across any piece, before the search recovers it.
GUARD_BITS = 4
# Slope candidates per piece in the final quantized fit, and in the quantized breakpoint search.
_FINAL_CANDIDATES = 33
SEARCH_CANDIDATES = 9
# Pieces whose continuous error exceeds this many ulps get the search's count of candidates.
_FEW_CANDIDATES_ULPS = 4.0
# Candidate-row chunk size (rows * piece codes) for the vectorized fit: bounds memory.
_FIT_CHUNK = 1 << 18
# Resolution of the error-target binary searches, in output ulps.
TARGET_TOLERANCE = 2.0 ** -8


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


class Problem:
    """Targets ``t`` (exact function values in output codes) on every code of the domain,
    indexed ``i = c - domain_low``, with what the fits and searches need."""

    def __init__(self, function, in_format, out_format, symmetric, start, stop):
        self.function, self.in_format, self.out_format = function, in_format, out_format
        self.symmetric = symmetric
        self.low, self.high = domain_of(in_format, symmetric)
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
        room = INT_LIMIT_BITS - 2 - max(slope_bits + offset_bits, out_bits)
        shift = min(offset_bits + GUARD_BITS, room)
        if shift < 0:
            raise ParameterValueError(
                "out_format", f"{self.function.name} from {self.in_format} to {self.out_format} "
                              f"needs more than {INT_LIMIT_BITS} bits for slope * offset + "
                              f"intercept: the formats are too wide (or the function too steep) "
                              f"for int64 arithmetic")
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
        return [v for v in values if abs(v) * n < 1 << (INT_LIMIT_BITS - 1)] or [0]

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
        return self.evaluate_values(a, b, shift, np.asarray(slopes, dtype=np.int64)[:, None] * d,
                                    intercepts)

    def evaluate_values(self, a, b, shift, product, intercepts) -> np.ndarray:
        """Max error (output codes, true targets, after floor and clip) of each row of
        ``product`` (one value per code a..b) with its intercept added."""
        intercepts = np.asarray(intercepts, dtype=np.int64)[:, None]
        y = np.clip((product + intercepts) >> shift, self.out_lo, self.out_hi)
        return np.abs(y - self.t[a:b + 1]).max(axis=1)

    def intercepts_for(self, a, b, shift, product):
        """For each row of ``product`` (values on codes a..b), the intercept ``C`` minimizing
        the max error of ``clip((product + C) >> shift)``, exact except where an output may
        overshoot into the clip on purpose (:meth:`clipped_intercepts` is exact there too);
        returns ``(intercepts, errors)``."""
        t = self.t[a:b + 1]
        target = self.tc[a:b + 1]
        excess = np.abs(t - target)
        # Targets at or beyond the range's ends cannot be overshot (undershot) after the clip,
        # and their distance beyond is a floor on the error: exact for them.
        top, bottom = t >= self.out_hi, t <= self.out_lo
        above = np.where(top, -np.inf, excess - target)
        below = np.where(bottom, np.inf, -excess - target)
        intercepts = self._intercepts(product, shift, above, below, float(excess.max()))
        return intercepts, self.evaluate_values(a, b, shift, product, intercepts)

    @staticmethod
    def _intercepts(product, shift, above, below, floor):
        """For each row of ``product``, the intercept minimizing ``max(y + above, -(y + below),
        floor)`` over the piece, with ``y = (product + C) >> shift`` unclipped (see
        :meth:`fit`)."""
        one = 1 << shift
        k, n = product.shape
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

    def clipped_intercepts(self, a, b, shift, product, bound):
        """For each row of ``product`` (values on codes a..b), the intercept minimizing the
        true max error (floor and clip), among intercepts whose error can be at most
        ``bound`` (others are of no interest).

        The error is ``max(U, L)`` with ``U = max(clip(y) - t)`` non-decreasing in C and
        ``L = max(t - clip(y))`` non-increasing, so the best C is the smallest with U >= L or
        the one before it: a bisection, exact whatever the clip does.
        """
        t = self.t[a:b + 1]
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
        below = self.evaluate_values(a, b, shift, product, hi - 1)
        here = self.evaluate_values(a, b, shift, product, hi)
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
        from an exact bisection instead (:meth:`clipped_intercepts`). The winner is chosen on
        the true error; for slope kind "any" the interpolation through the end points is a
        candidate too.
        """
        n = b - a + 1
        slopes_given = slopes is not None
        if not slopes_given:
            if self.line(a, b)[1] > _FEW_CANDIDATES_ULPS:
                # Rounding moves a large error by a small fraction: a few slopes suffice.
                count = min(count, SEARCH_CANDIDATES)
            slopes = self.candidates(a, b, shift, kind, count)
        slopes = np.array(slopes, dtype=np.int64)
        d = np.arange(n, dtype=np.int64)
        target = self.tc[a:b + 1]
        best = (0, 0, np.inf)
        rows = max(1, _FIT_CHUNK // n)
        errors = np.full(len(slopes), np.inf)
        for lo in range(0, len(slopes), rows):
            chunk = slopes[lo:lo + rows]
            intercepts, errors[lo:lo + rows] = self.intercepts_for(a, b, shift,
                                                                   chunk[:, None] * d)
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
                                                          kind, SEARCH_CANDIDATES)))
            tried = np.unique(np.concatenate(tried)).astype(np.int64)
            intercepts = self.clipped_intercepts(a, b, shift, tried[:, None] * d, best[2])
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

    def optimal_ends(self, pieces, error, low=0.0, high=None, tolerance=TARGET_TOLERANCE):
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
