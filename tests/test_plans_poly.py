"""Piecewise-polynomial plans: fitting to a target (and that one step cheaper misses it), the
faithful target, every check of a hand-built PolyPlan, and plan_poly/fit_poly errors."""

import math
import re
from dataclasses import replace

import numpy as np
import pytest

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.fixed import SQ, UQ
from hwnn.plans.activation import fit_activation
from hwnn.plans.poly import fit_poly, fit_taylor, plan_poly
from hwnn.ref.poly import poly

from test_ref_poly import judged

TANH = ("tanh", SQ(4, 6), SQ(1, 7))
SIGMOID = ("sigmoid", SQ(3, 5), UQ(0, 8))


def fewer(plan):
    """The same plan one piece count cheaper: uniform, pieces of the next wider power-of-two
    width; optimal, one stored piece fewer."""
    factor = 2 if plan.symmetric else 1
    pieces = plan.range_pieces
    fewer_pieces = math.ceil(pieces / 2) if plan.uniform else pieces - 1
    cheaper = plan_poly(plan.function, plan.in_format, plan.out_format,
                        segments=fewer_pieces * factor, degree=plan.degree,
                        breakpoints="uniform" if plan.uniform else "optimal",
                        symmetric=plan.symmetric)
    if plan.uniform:
        assert cheaper.segment_bits == plan.segment_bits + 1
    return cheaper


@pytest.mark.parametrize("problem, max_error, options", [
    (TANH, 0.01, dict(degree=1)),
    (SIGMOID, 0.003, dict(degree=2, breakpoints="optimal")),
    (SIGMOID, 0.004, dict(degree=1)),
])
def test_fit_poly_meets_the_target_and_one_piece_count_fewer_does_not(problem, max_error,
                                                                      options):
    plan = fit_poly(*problem, max_error, **options)
    x, error, _ = judged(plan)
    assert error.max() == plan.error.max_abs <= max_error
    assert plan.degree == options["degree"]
    assert fewer(plan).error.max_abs > max_error


def test_a_faithful_fit_is_faithful_and_one_piece_count_fewer_is_not():
    plan = fit_poly(*TANH, "faithful", degree=2)
    assert judged(plan)[2] and plan.error.faithful
    assert not judged(fewer(plan))[2]
    assert fit_activation(*TANH, "faithful", method="poly", degree=2).coefficients == \
        plan.coefficients


def test_the_issues_goal_faithful_tanh_into_sq_1_15():
    # The issue's target: faithful tanh from SQ(6,10) to SQ(1,15) (one fit, ~10 s).
    plan = fit_poly("tanh", SQ(6, 10), SQ(1, 15), "faithful", degree=2)
    x, error, faithful = judged(plan)
    assert faithful and plan.error.faithful and plan.error.max_ulp <= 1
    assert error.max() == plan.error.max_abs


def test_fit_poly_picks_one_of_the_single_degree_fits():
    plan = fit_poly(*SIGMOID, 0.004)
    assert plan.error.max_abs <= 0.004
    same = fit_poly(*SIGMOID, 0.004, degree=plan.degree)
    assert (plan.starts, plan.coefficients, plan.shifts, plan.shift) == (
        same.starts, same.coefficients, same.shifts, same.shift)


@pytest.mark.parametrize("call, exc, parameter, message", [
    (lambda: fit_poly(*TANH, -1.0), ParameterValueError, "max_error",
     "max_error must be a positive number, not -1.0"),
    (lambda: fit_poly(*TANH, "exact"), ParameterValueError, "max_error",
     "max_error must be a positive number or 'faithful', not 'exact'"),
    (lambda: fit_poly(*TANH, 0.01, max_segments=0), ParameterValueError, "max_segments",
     "max_segments must be a positive integer, not 0"),
    (lambda: fit_poly(*TANH, 0.01, max_segments=1), ParameterValueError, "max_segments",
     "max_segments must be at least 2 for a symmetric plan, not 1"),
    (lambda: fit_poly(*TANH, 0.01, degree=4), ParameterValueError, "degree",
     "degree must be an integer between 1 and 3, not 4"),
    (lambda: fit_poly(*TANH, 1e-4, degree=1, max_segments=4), ParameterValueError, "max_error",
     "no poly plan for tanh from SQ(4, 6) to SQ(1, 7) with up to 4 segments meets max_error "
     "0.0001; the best reached "),
    (lambda: fit_taylor(*TANH, 1e-4), ParameterValueError, "max_error",
     "no taylor plan for tanh from SQ(4, 6) to SQ(1, 7) up to order 9 meets max_error 0.0001; "
     "the best reached "),
    (lambda: plan_poly(*TANH, segments=8, degree=0), ParameterValueError, "degree",
     "degree must be an integer between 1 and 3, not 0"),
    (lambda: plan_poly(*TANH, segments=8, breakpoints="even"), ParameterValueError,
     "breakpoints", "breakpoints must be one of uniform | optimal, not 'even'"),
    (lambda: plan_poly(*TANH, segments=8, multipliers="dsps"), ParameterValueError,
     "multipliers", "multipliers must be one of dsp | lut, not 'dsps'"),
    (lambda: plan_poly(*TANH, segments=7), ParameterValueError, "segments",
     "a symmetric plan has an even number of segments (each stored piece serves both signs), "
     "not 7; pass symmetric=False for an odd count"),
    (lambda: plan_poly(*TANH, segments=0), ParameterValueError, "segments",
     "segments must be a positive integer, not 0"),
    (lambda: plan_poly(*TANH, segments=2000), ParameterValueError, "segments",
     "segments must be an integer between 1 and "),
    (lambda: plan_poly("relu", SQ(4, 6), SQ(4, 6), segments=8), ParameterValueError,
     "function", None),
])
def test_plan_and_fit_errors_name_the_parameter(call, exc, parameter, message):
    with pytest.raises(exc) as info:
        call()
    assert info.value.parameter == parameter
    if message is not None:
        assert str(info.value).startswith(message), str(info.value)


BASE = plan_poly(*TANH, segments=8)      # 4 range pieces of 64 codes, one constant piece


def test_the_base_plan_is_what_the_cases_assume():
    assert BASE.starts == (0, 64, 128, 192, 256) and BASE.degree == 2 and BASE.uniform
    assert BASE.range_stop == 256 and not any(BASE.coefficients[4][1:])


def rows(top):
    """BASE's coefficients with ``top`` as every range piece's d**2 coefficient."""
    return tuple((r[0], r[1], top) for r in BASE.coefficients[:4]) + (BASE.coefficients[4],)


@pytest.mark.parametrize("change, exc, parameter, message", [
    (dict(function="tanh"), ParameterTypeError, "function",
     "function must be a Function, not 'tanh'"),
    (dict(in_format="SQ(4,6)"), ParameterTypeError, "in_format",
     "in_format must be a Format, not 'SQ(4,6)'"),
    (dict(out_format=None), ParameterTypeError, "out_format",
     "out_format must be a Format, not None"),
    (dict(symmetric=1), ParameterTypeError, "symmetric", "symmetric must be True or False, not 1"),
    (dict(in_format=UQ(4, 6)), ParameterValueError, "symmetric",
     "symmetric=True needs a function with a symmetry and a signed in_format, not tanh on "
     "UQ(4, 6)"),
    (dict(method="pwl"), ParameterValueError, "method",
     "method must be one of poly | taylor, not 'pwl'"),
    (dict(multipliers="dsps"), ParameterValueError, "multipliers",
     "multipliers must be one of dsp | lut, not 'dsps'"),
    (dict(degree=16), ParameterValueError, "degree",
     "degree must be an integer between 0 and 15, not 16"),
    (dict(degree=2.0), ParameterTypeError, "degree",
     "degree must be an integer between 0 and 15, not 2.0"),
    (dict(starts=(0.0, 64, 128, 192, 256)), ParameterTypeError, "starts",
     "starts must be a sequence of integers, not (0.0, 64, 128, 192, 256)"),
    (dict(starts=5), ParameterTypeError, "starts", "starts must be a sequence of integers, not 5"),
    (dict(coefficients=5), ParameterTypeError, "coefficients",
     "coefficients must be a sequence of integer rows, not 5"),
    (dict(starts=(), origins=(), coefficients=()), ParameterValueError, "starts",
     "starts must hold at least one piece"),
    (dict(origins=(0, 64, 128, 192)), ParameterValueError, "origins",
     "starts, origins and coefficients must have one entry per piece, not 5, 4, 5"),
    (dict(coefficients=((1, 2),) * 5), ParameterValueError, "coefficients",
     "every coefficient row must have degree + 1 = 3 entries"),
    (dict(shifts=(6,)), ParameterValueError, "shifts",
     "shifts must be 2 integers in [0, 62], not (6,)"),
    (dict(shifts=(-1, 2)), ParameterValueError, "shifts",
     "shifts must be 2 integers in [0, 62], not (-1, 2)"),
    (dict(shifts=(63, 2)), ParameterValueError, "shifts",
     "shifts must be 2 integers in [0, 62], not (63, 2)"),
    (dict(shift=-1), ParameterValueError, "shift",
     "shift must be an integer between 0 and 62, not -1"),
    (dict(shift=63), ParameterValueError, "shift",
     "shift must be an integer between 0 and 62, not 63"),
    (dict(starts=(0, 128, 64, 192, 256)), ParameterValueError, "starts",
     "starts must be strictly ascending codes within [0, 512], not (0, 128, 64, 192, 256)"),
    (dict(starts=(1, 64, 128, 192, 256)), ParameterValueError, "starts",
     "starts[0] must be the domain's low end 0, not 1"),
    (dict(segment_bits=5), ParameterValueError, "starts",
     "a uniform plan's range pieces must start every 2**5 codes from 0"),
    (dict(range_stop=128), ParameterValueError, "coefficients",
     "piece 2 lies outside the range, so its coefficients beyond d**0 must be 0"),
    (dict(centre=0.0), ParameterValueError, "centre",
     "centre is a taylor plan's, not a poly plan's"),
    (dict(error=0.1), ParameterTypeError, "error",
     "error must be an ErrorBound or None, not 0.1"),
])
def test_plan_fields_are_checked(change, exc, parameter, message):
    with pytest.raises(exc, match="^" + re.escape(message) + "$") as info:
        replace(BASE, **change)
    assert info.value.parameter == parameter


def test_horner_steps_that_could_reach_2_62_are_refused():
    # The first step (shifts[1]) multiplies the d**2 coefficient by d <= 63; shifted by 62 it
    # leaves little for the second. The largest coefficient whose product stays below 2**62 is
    # accepted and the reference is exact there; one more is refused, either sign.
    largest = (2 ** 62 - 1) // 63
    plan = replace(BASE, coefficients=rows(largest), shifts=(0, 62), error=None)
    q = np.array([63])
    top = (largest * 63 >> 62) + BASE.coefficients[0][1]
    want = min(max(((top * 63) + BASE.coefficients[0][0]) >> BASE.shift, -128), 127)
    assert poly(plan, q)[0] == want
    for value in (largest + 1, -largest - 1):
        with pytest.raises(ParameterValueError, match=re.escape(
                "piece 0: the Horner steps can reach 2**62; int64 arithmetic is not safe")):
            replace(BASE, coefficients=rows(value), shifts=(0, 62), error=None)
