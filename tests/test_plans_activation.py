import pytest

from hwnn.fixed import SQ, UQ
from hwnn.plans.activation import fit_activation, plan_activation
from hwnn.plans.lut import plan_lut


def test_fit_returns_the_smallest_table_meeting_the_target():
    plan = fit_activation("sigmoid", SQ(4, 8), UQ(0, 12), 2e-3, method="lut")
    assert plan.error.max_abs <= 2e-3
    smaller = plan_lut("sigmoid", SQ(4, 8), UQ(0, 12), table_size=plan.table_size // 2)
    assert smaller.error.max_abs > 2e-3


def test_fit_reports_the_best_error_when_impossible():
    with pytest.raises(ValueError) as info:
        fit_activation("tanh", SQ(3, 5), SQ(1, 7), 1e-5, method="lut")
    assert info.value.parameter == "max_error" and str(info.value) == (
        "no lookup table for tanh from SQ(3, 5) to SQ(1, 7) meets max_error 1e-05; the best "
        "reached 0.00714")


@pytest.mark.parametrize("call, error, parameter, message", [
    (lambda: plan_activation("relu6", SQ(4, 6), SQ(4, 2), method="lut"), ValueError, "method",
     "relu6 is computed exactly; use method 'exact', not 'lut'"),
    (lambda: plan_activation("tanh", SQ(4, 6), SQ(4, 2), method="exact"), ValueError, "method",
     "tanh cannot be computed exactly; use method 'lut', 'pwl', 'poly' or 'taylor'"),
    (lambda: plan_activation("tanh", SQ(4, 6), SQ(4, 2), method="cordic"), ValueError,
     "method", "method must be one of exact | lut | pwl | poly | taylor, not 'cordic'"),
    (lambda: fit_activation("tanh", SQ(4, 6), SQ(1, 7), 0), ValueError, "max_error",
     "max_error must be a positive number, not 0"),
    (lambda: fit_activation("tanh", SQ(4, 6), SQ(1, 7), "x"), TypeError, "max_error",
     "max_error must be a positive number, not 'x'"),
    (lambda: fit_activation("tanh", SQ(4, 6), SQ(1, 7), "faithful", method="pwl"), ValueError,
     "max_error", "max_error 'faithful' applies to methods poly and taylor, not 'pwl'; give a "
                  "number"),
    (lambda: fit_activation("relu", SQ(4, 6), SQ(4, 2), 1e-3, method="exact"), ValueError,
     "max_error", "the exact relu plan has error 0.234 > max_error 0.001: the output format's "
                  "rounding alone exceeds it"),
])
def test_activation_parameter_errors(call, error, parameter, message):
    with pytest.raises(error) as info:
        call()
    assert str(info.value) == message and info.value.parameter == parameter


def test_fit_exact_meets_a_reachable_target():
    # relu of SQ(4, 6) onto SQ(4, 2) saturates at 7.75: the largest error is 7.984375 - 7.75
    # (the rounding alone is at most 1/8).
    plan = fit_activation("relu", SQ(4, 6), SQ(4, 2), 0.25, method="exact")
    assert plan.method == "exact" and plan.error.max_abs == 0.234375
