"""Fitting polynomial pieces in fixed point: minimax in reals, then on the quantized result.

A piece's real polynomial is the discrete minimax fit on its codes (Lawson's iteratively
reweighted least squares, which converges to it). Its integer coefficients are then chosen on
the error the datapath actually makes: every combination of the rounded higher coefficients and
their neighbours is evaluated through the exact Horner steps (products, floors), and for each
the ``d**0`` coefficient is the exactly optimal one after the final floor and clip
(:meth:`~hwnn.plans.pwl.fit.Problem.intercepts_for`, shared with PWL's intercepts).

Scales: ``acc_k`` holds its value in output codes times ``2**G_k``; ``shifts[k] = G_(k+1) -
G_k`` and the plan's ``shift`` is ``G_0``. With ``G_k = g + k*m`` for offsets below ``2**m``,
every floor costs at most ``2**-g`` output codes at the output.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ...ref.poly import horner_steps
from ..pwl.fit import Problem

__all__ = ["minimax", "fit_piece", "scales_for", "GUARD_BITS", "LAWSON_STEPS", "SEARCH_STEPS"]

#: Guard bits of the generous scales (each floor then costs at most 2**-GUARD_BITS ulp).
GUARD_BITS = 6
#: Lawson iterations of a piece's final real fit, and of the breakpoint search's estimate.
LAWSON_STEPS = 60
SEARCH_STEPS = 12
# Neighbours of each rounded coefficient tried, by power (d**1 first): the lowest powers move
# the result most, so they get the widest search.
_NEIGHBOURS = {1: 2, 2: 1, 3: 1}


def scales_for(degree: int, offset_bits: int, guard: int) -> tuple[int, ...]:
    """``(G_0, ..., G_degree)`` with ``G_k = guard + k * offset_bits`` (never below 0)."""
    return tuple(max(0, guard + k * offset_bits) for k in range(degree + 1))


def minimax(d, t, degree, steps=LAWSON_STEPS) -> tuple[np.ndarray, float]:
    """The real polynomial of ``degree`` in ``d`` closest to ``t`` in the max norm on the
    points ``d``: ``(coefficients of d**0..d**degree, max error)``."""
    d = np.asarray(d, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    n = len(d)
    if n <= degree + 1:
        degree = n - 1
    centre = (d[0] + d[-1]) / 2
    half = max((d[-1] - d[0]) / 2, 1.0)
    u = (d - centre) / half
    vander = np.vander(u, degree + 1, increasing=True)
    weights = np.full(n, 1.0 / n)
    best, best_error = None, np.inf
    for _ in range(max(1, steps)):
        root = np.sqrt(weights)
        coef = np.linalg.lstsq(vander * root[:, None], t * root, rcond=None)[0]
        residual = np.abs(vander @ coef - t)
        error = float(residual.max())
        if error < best_error:
            best, best_error = coef, error
        total = float((weights * residual).sum())
        if total <= 0:
            break
        weights = weights * residual / total
    # Back from u = (d - centre) / half to powers of d.
    poly = np.polynomial.Polynomial(best)(np.polynomial.Polynomial([-centre / half, 1 / half]))
    coef = np.zeros(len(best))
    coef[:len(poly.coef)] = poly.coef
    return coef, best_error


def fit_piece(problem: Problem, a: int, b: int, origin: int, degree: int,
              scales) -> tuple[tuple[int, ...], float]:
    """The integer coefficients ``(a_0, ..., a_degree)`` with the smallest max error on the
    codes of target indices ``a..b`` (``d = c - origin``) at ``scales``; returns them and the
    error in output codes (true targets, after every floor and the clip)."""
    shifts = [scales[k + 1] - scales[k] for k in range(degree)]
    codes = np.arange(a, b + 1, dtype=np.int64) + problem.low
    d = codes - origin
    real, _ = minimax(d, problem.tc[a:b + 1], degree)
    real = np.concatenate([real, np.zeros(degree + 1 - len(real))])
    rounded = [math.floor(real[k] * 2.0 ** scales[k] + 0.5) for k in range(1, degree + 1)]
    ranges = [range(v - _NEIGHBOURS.get(k + 1, 1), v + _NEIGHBOURS.get(k + 1, 1) + 1)
              for k, v in enumerate(rounded)]
    rows = np.array(list(itertools.product(*ranges)) or [()], dtype=np.int64)
    rows = rows.reshape(len(rows), degree)
    # What the Horner steps add a_0 to: the steps with a_0 = 0, every row on every code.
    with_zero = np.concatenate([np.zeros((len(rows), 1), dtype=np.int64), rows], axis=1)
    values = horner_steps(with_zero[:, None, :], d[None, :], shifts)[-1]
    shift = scales[0]
    intercepts, errors = problem.intercepts_for(a, b, shift, values)
    best = int(np.argmin(errors))
    target = problem.tc[a:b + 1]
    reach = float(errors[best]) + 1
    if degree and ((target >= problem.out_hi - reach) | (target <= problem.out_lo + reach)).any():
        # An output may overshoot into the clip on purpose: bisect a_0 on the true error for
        # the most promising rows.
        keep = np.argsort(errors, kind="stable")[:8]
        clipped = problem.clipped_intercepts(a, b, shift, values[keep], float(errors[best]))
        true = problem.evaluate_values(a, b, shift, values[keep], clipped)
        j = int(np.argmin(true))
        if true[j] < errors[best]:
            intercepts, errors, best = clipped, true, j
            rows = rows[keep]
    return (int(intercepts[best]), *(int(v) for v in rows[best])), float(errors[best])
