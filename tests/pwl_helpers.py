"""Helpers shared by the PWL plan tests (tests/test_plans_pwl*.py): independent evaluations
of a plan's pieces in numpy, and a set of plans of every kind."""

import numpy as np

from hwnn.fixed import SQ, UQ, to_float
from hwnn.plans.functions import get_function
from hwnn.plans.pwl import PWLPlan
from hwnn.ref.pwl import pwl

TANH_IN, TANH_OUT = SQ(6, 10), SQ(1, 15)


def code_errors(plan):
    """|output - f(x)| on every input code, in float64, as the plan's error is defined."""
    codes = plan.in_format.codes()
    x = to_float(codes, plan.in_format)
    return codes, np.abs(to_float(pwl(plan, codes), plan.out_format) - plan.function(x))


def pieces(plan):
    """(j, first c, last c) of every stored piece."""
    ends = list(plan.starts[1:]) + [plan.domain[1] + 1]
    return [(j, start, end - 1) for j, (start, end) in enumerate(zip(plan.starts, ends))]


def piece_errors(plan, first, last, slopes, intercepts):
    """Max error (real units) over codes first..last of each (slope, intercept) pair, with the
    plan's shift, floor and clip, evaluated on folded codes (the mirror has the same error)."""
    c = np.arange(first, last + 1)
    exact = plan.function(to_float(c, plan.in_format))
    slopes = np.asarray(slopes, dtype=np.int64)[:, None]
    intercepts = np.asarray(intercepts, dtype=np.int64)[:, None]
    y = np.clip((slopes * (c - first) + intercepts) >> plan.shift,
                plan.out_format.min_int, plan.out_format.max_int)
    return np.abs(to_float(y, plan.out_format) - exact).max(axis=1)


def chord(plan, first, last):
    """Interpolation through the piece's end points, rounded to nearest at the plan's shift."""
    s, fo = plan.shift, plan.out_format.f
    t = plan.function(to_float(np.array([first, last]), plan.in_format)) * 2.0 ** fo
    slope = (t[1] - t[0]) / (last - first)
    return (int(np.floor(slope * 2.0 ** s + 0.5)),
            int(np.floor(t[0] * 2.0 ** s + 0.5)) + (1 << (s - 1) if s else 0))


PLANS = [
    ("tanh", SQ(4, 6), SQ(1, 7), dict(segments=8)),
    ("tanh", SQ(4, 6), SQ(1, 7), dict(segments=8, breakpoints="uniform")),
    ("sigmoid", SQ(4, 6), UQ(0, 8), dict(segments=7, symmetric=False)),
    ("sigmoid", SQ(4, 6), UQ(0, 12), dict(segments=12, slopes="pot2")),
    ("tanh", SQ(4, 6), SQ(2, 10), dict(segments=6, slopes="pot", input_range=(-3, 3))),
    ("tanh", TANH_IN, TANH_OUT, dict(segments=16, input_range=(-4, 4))),
]


# A hand-built plan, independent of the planner. in SQ(3,2): codes -16..15; out SQ(2,2):
# codes -8..7.
TANH = get_function("tanh")


def hand_plan(**changes):
    fields = dict(function=TANH, in_format=SQ(3, 2), out_format=SQ(2, 2), symmetric=False,
                  starts=(-16, -4, 4), slopes=(0, 3, 0), intercepts=(-8, -11, 6), shift=1,
                  slope_kind="any", uniform=False, segment_bits=None, range_start=-4,
                  range_stop=4)
    fields.update(changes)
    return PWLPlan(**fields)
