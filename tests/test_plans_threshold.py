import re

import numpy as np
import pytest

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.fixed import SQ, UQ, to_float
from hwnn.plans.threshold import (ThresholdPlan, first_reaching, plan_batchnorm_sign,
                                  plan_thresholds)
from hwnn.ref.binary import batchnorm_sign, dot_range, multithreshold


def every_code(fmt, channels):
    return np.repeat(fmt.codes()[:, np.newaxis], channels, axis=1)


def random_batchnorm(rng, channels, lo, hi):
    """BN parameters whose thresholds land inside, at the ends of and outside [lo, hi], with
    gamma of both signs and zero."""
    gamma = rng.normal(0, 2, channels)
    gamma[::7] = 0.0
    gamma[1::7] = -np.abs(gamma[1::7])
    mean = rng.uniform(lo - (hi - lo) // 4, hi + (hi - lo) // 4, channels)
    var = rng.uniform(0, 4, channels) ** 2
    beta = rng.normal(0, 2, channels)
    beta[2::7] = 1e3 * np.sign(beta[2::7])   # beyond the range: all +1 or all -1
    beta[3::7] = 0.0                         # ties where s == mean
    mean[3::7] = np.round(mean[3::7])
    return gamma, beta, mean, var


@pytest.mark.parametrize("fmt", [SQ(8, 0), SQ(12, 0), UQ(7, 0), SQ(4, 4)])
def test_batchnorm_sign_folds_exactly_on_every_input(fmt):
    rng = np.random.default_rng(fmt.width)
    channels = 64
    gamma, beta, mean, var = random_batchnorm(rng, channels, fmt.min, fmt.max)
    eps = 1e-5
    plan = plan_batchnorm_sign(fmt, gamma, beta, mean, var, eps)
    s = every_code(fmt, channels)
    expected = batchnorm_sign(to_float(s, fmt), gamma, beta, mean, var, eps)
    np.testing.assert_array_equal(multithreshold(plan, s), expected)
    # Every case the parameters aim at occurs: both directions, constants of each sign,
    # thresholds strictly inside.
    t = plan.thresholds[:, 0]
    assert plan.descending.any() and not plan.descending.all()
    assert (t == fmt.min_int).any() and (t == fmt.max_int + 1).any()
    assert ((t > fmt.min_int) & (t <= fmt.max_int)).sum() > channels // 3


def test_batchnorm_sign_of_a_bipolar_dot_product():
    # A 256-input binarized neuron: s in [-256, 256], which SQ(10, 0) holds.
    lo, hi = dot_range(256, "bipolar")
    fmt = SQ(10, 0)
    assert fmt.min_int <= lo and hi <= fmt.max_int
    rng = np.random.default_rng(3)
    gamma, beta, mean, var = random_batchnorm(rng, 32, lo, hi)
    plan = plan_batchnorm_sign(fmt, gamma, beta, mean, var)
    s = every_code(fmt, 32)
    np.testing.assert_array_equal(multithreshold(plan, s),
                                  batchnorm_sign(s, gamma, beta, mean, var, 1e-5))


def test_batchnorm_sign_ties_go_to_plus_one_in_both_directions():
    # z = 0 exactly at s = 5: +1 there, so gamma > 0 gives s >= 5 and gamma < 0 gives s <= 5.
    plan = plan_batchnorm_sign(SQ(6, 0), [2.0, -2.0], [0.0, 0.0], [5.0, 5.0], [1.0, 1.0], 0.0)
    assert plan.thresholds.tolist() == [[5], [6]]
    assert plan.descending.tolist() == [False, True]
    s = np.array([[4, 4], [5, 5], [6, 6]])
    np.testing.assert_array_equal(multithreshold(plan, s), [[0, 1], [1, 1], [1, 0]])


def test_batchnorm_sign_with_zero_gamma_is_the_sign_of_beta():
    plan = plan_batchnorm_sign(SQ(6, 0), [0.0, 0.0, 0.0, -0.0], [0.5, 0.0, -0.5, -0.0],
                               [3.0] * 4, [1.0] * 4)
    fmt = SQ(6, 0)
    assert plan.thresholds[:, 0].tolist() == [fmt.min_int, fmt.min_int, fmt.max_int + 1,
                                              fmt.min_int]
    out = multithreshold(plan, every_code(fmt, 4))
    np.testing.assert_array_equal(out, np.broadcast_to([1, 1, 0, 1], out.shape))


def test_scalar_batchnorm_parameters_give_one_channel():
    plan = plan_batchnorm_sign("SQ(5,0)", 1.0, 0.0, -2.5, 1.0)
    assert plan.channels == 1 and plan.thresholds.tolist() == [[-2]]


def quantized_activation(gamma, beta, mean, var, out_format, lower, upper):
    """BN, then clip(x, lower, upper) rounded half up to out_format, on integer s: monotonic,
    increasing for gamma > 0 and decreasing for gamma < 0."""
    def f(s):
        z = gamma * (s - mean) / np.sqrt(var + 1e-5) + beta
        z = np.clip(z, lower, upper)
        y = np.floor(z * 2.0 ** out_format.f + 0.5).astype(np.int64)
        return np.clip(y, out_format.min_int, out_format.max_int)
    return f


@pytest.mark.parametrize("out_format, lower, upper", [
    (UQ(2, 0), 0.0, 6.0),     # relu, saturating at 3
    (UQ(2, 2), 0.0, 6.0),     # relu with fraction bits
    (SQ(2, 1), -1.0, 1.0),    # hard_tanh
    (SQ(3, 1), -1.0, 1.0),    # hard_tanh, levels never reached at both ends
    (UQ(1, 0), 0.0, 1.0),
    (SQ(4, 0), -8.0, 7.0),
])
def test_multithreshold_reproduces_a_monotonic_activation_on_every_input(out_format, lower,
                                                                           upper):
    fmt = SQ(10, 0)
    rng = np.random.default_rng(out_format.width)
    channels = 12
    gamma = rng.normal(0, 0.05, channels)
    gamma[0], gamma[1] = 0.0, -abs(gamma[1])
    mean = rng.uniform(-300, 300, channels)
    var = rng.uniform(0.5, 4, channels)
    beta = rng.normal(0, 1, channels)
    f = quantized_activation(gamma, beta, mean, var, out_format, lower, upper)
    plan = plan_thresholds(f, fmt, out_format, channels=channels)
    assert plan.thresholds.shape == (channels, 2 ** out_format.width - 1)
    s = every_code(fmt, channels)
    np.testing.assert_array_equal(multithreshold(plan, s), f(s))
    # A channel whose output varies is descending exactly when gamma < 0 (a constant one is
    # ascending by default); the parameters make at least one of each.
    varying = f(s).min(axis=0) != f(s).max(axis=0)
    np.testing.assert_array_equal(plan.descending[varying], (gamma < 0)[varying])
    assert plan.descending.any() and (varying & ~plan.descending).any()


def test_thresholds_are_the_first_inputs_that_reach_each_level():
    plan = plan_thresholds(lambda s: np.clip((s + 2) // 3, 0, 7), SQ(6, 0), UQ(3, 0))
    assert plan.thresholds.tolist() == [[1, 4, 7, 10, 13, 16, 19]]
    falling = plan_thresholds(lambda s: np.clip(-s // 5, -4, 3), SQ(6, 0), SQ(3, 0))
    # -s // 5 drops to 2 at s = -14, to 1 at -9 ... to -4 at 16.
    assert falling.thresholds.tolist() == [[-14, -9, -4, 1, 6, 11, 16]]
    assert falling.descending.tolist() == [True]
    # Levels reached everywhere sit at min_int, levels never reached one past max_int.
    clipped = plan_thresholds(lambda s: np.clip(s, 1, 2), SQ(3, 0), UQ(2, 0))
    assert clipped.thresholds.tolist() == [[-4, 2, 4]]


def test_first_reaching_bisects_every_element():
    targets = np.array([[-5, 0, 7], [100, -100, 3]])
    calls = []

    def predicate(s):
        calls.append(1)
        return s >= targets

    got = first_reaching(predicate, -10, 10, targets.shape)
    np.testing.assert_array_equal(got, np.clip(targets, -10, 11))
    assert len(calls) == 5  # ceil(log2(22))


def test_a_function_that_is_not_monotonic_is_rejected():
    message = ("function must be monotonic in s: its thresholds give 0 at s = -32 (channel 0) "
               "where it gives 3")
    with pytest.raises(ParameterValueError, match=re.escape(message)) as info:
        plan_thresholds(lambda s: np.clip(np.abs(s) // 5, 0, 3), SQ(6, 0), UQ(2, 0))
    assert info.value.parameter == "function"


def test_a_wide_input_is_checked_at_the_thresholds():
    # 2**24 codes: the check covers each threshold and the code below it, which still
    # catches a function that is not monotonic there.
    plan = plan_thresholds(lambda s: np.clip(s >> 20, 0, 3), SQ(24, 0), UQ(2, 0))
    assert plan.thresholds.tolist() == [[1 << 20, 2 << 20, 3 << 20]]
    with pytest.raises(ParameterValueError, match="function must be monotonic in s"):
        plan_thresholds(lambda s: np.where(s == (2 << 20) - 1, 3, np.clip(s >> 20, 0, 3)),
                        SQ(24, 0), UQ(2, 0))


def test_function_errors_are_named():
    with pytest.raises(ParameterTypeError, match=re.escape("function must be callable, not 3")):
        plan_thresholds(3, SQ(6, 0), UQ(2, 0))
    with pytest.raises(ParameterValueError, match=re.escape(
            "function must return codes of out_format UQ(2, 0), not 4")):
        plan_thresholds(lambda s: np.clip(s, 0, 4), SQ(6, 0), UQ(2, 0))
    with pytest.raises(ParameterValueError, match=re.escape(
            "function must return integer codes of shape (2, 1), not float64 of shape (2, 1)")):
        plan_thresholds(lambda s: s * 0.5, SQ(6, 0), UQ(2, 0))
    with pytest.raises(ParameterValueError, match=re.escape(
            "out_format must be at most 8 bits wide (2**k - 1 thresholds), not UQ(9, 0)")):
        plan_thresholds(lambda s: s, SQ(6, 0), UQ(9, 0))
    with pytest.raises(ParameterValueError, match=re.escape(
            "in_format must be at most 53 bits wide, not SQ(54, 0)")):
        plan_thresholds(lambda s: s, SQ(54, 0), UQ(2, 0))
    with pytest.raises(ParameterValueError, match=re.escape(
            "descending must be a bool or 2 bools, not [1, 0]")):
        plan_thresholds(lambda s: s > 0, SQ(6, 0), UQ(1, 0), channels=2, descending=[1, 0])
    with pytest.raises(ParameterValueError, match=re.escape(
            "channels must be a positive integer, not 0")):
        plan_thresholds(lambda s: s, SQ(6, 0), UQ(2, 0), channels=0)


def test_batchnorm_errors_are_named():
    fmt = SQ(6, 0)
    cases = [
        (dict(gamma="a"), ParameterTypeError, "gamma must be real numbers, not 'a'"),
        (dict(beta=[1.0, 2.0]), ParameterValueError,
         "beta must be a number or have shape (3,) like gamma, not shape (2,)"),
        (dict(mean=[0.0, np.nan, 0.0]), ParameterValueError,
         "mean must be finite, not [0.0, nan, 0.0]"),
        (dict(var=[1.0, -1.0, 1.0]), ParameterValueError,
         "var must be non-negative, not [1.0, -1.0, 1.0]"),
        (dict(var=[0.0, 1.0, 1.0], eps=0.0), ParameterValueError,
         "eps must be non-negative with var + eps > 0, not 0.0"),
        (dict(eps=-1.0), ParameterValueError,
         "eps must be non-negative with var + eps > 0, not -1.0"),
        (dict(gamma=[True, False, True]), ParameterTypeError,
         "gamma must be real numbers, not [True, False, True]"),
        (dict(gamma=[[1.0]]), ParameterValueError,
         "gamma must be a number or have shape (1,), not shape (1, 1)"),
        (dict(in_format="SQ(x)"), ParameterValueError,
         "in_format must be a format like 'SQ(4,12)' or 'UQ(0,8)', not 'SQ(x)'"),
    ]
    for changes, error, message in cases:
        arguments = dict(in_format=fmt, gamma=[1.0, -1.0, 0.0], beta=0.0, mean=0.0, var=1.0,
                         eps=1e-5)
        arguments.update(changes)
        with pytest.raises(error, match=re.escape(message) + "$") as info:
            plan_batchnorm_sign(**arguments)
        assert info.value.parameter == message.split()[0]


def test_plan_checks_itself():
    fmt, out = SQ(4, 0), UQ(2, 0)
    ok = dict(in_format=fmt, out_format=out, thresholds=[[0, 1, 2]], descending=[False])
    cases = [
        (dict(thresholds=[[0.0, 1.0, 2.0]]), ParameterTypeError,
         "thresholds must be integers, not dtype float64"),
        (dict(thresholds=[[0, 1]]), ParameterValueError,
         "thresholds must have shape (channels, 3) for UQ(2, 0), not (1, 2)"),
        (dict(thresholds=[[0, 1, 9]]), ParameterValueError,
         "thresholds must lie in [-8, 8] for SQ(4, 0), not 9"),
        (dict(thresholds=[[0, 2, 1]]), ParameterValueError,
         "thresholds must ascend in every channel, not [0, 2, 1] (channel 0)"),
        (dict(descending=[0]), ParameterTypeError, "descending must be bools, not dtype int64"),
        (dict(descending=[True, False]), ParameterValueError,
         "descending must have shape (1,), not (2,)"),
        (dict(out_format=3), ParameterTypeError,
         "out_format must be a Format (SQ/UQ) or a format string, not 3"),
    ]
    for changes, error, message in cases:
        with pytest.raises(error, match=re.escape(message) + "$") as info:
            ThresholdPlan(**{**ok, **changes})
        assert info.value.parameter == message.split()[0]
    plan = ThresholdPlan(**ok)
    assert plan.k == 2 and plan.channels == 1 and plan.threshold_range == (-8, 8)
    with pytest.raises(ValueError):
        plan.thresholds[0, 0] = 5  # read-only
    assert plan.describe() == {"method": "threshold", "source": "function", "channels": 1,
                               "k": 2, "in_format": "SQ(4, 0)", "out_format": "UQ(2, 0)",
                               "descending": 0, "thresholds": [[0, 1, 2]]}


def test_thresholds_agree_with_the_closed_form_away_from_rounding():
    # Independently of the float model: gamma > 0 gives s >= ceil(mean - beta * sd / gamma),
    # gamma < 0 gives s <= floor(...), i.e. not s >= floor(...) + 1, wherever that value is
    # not within float noise of an integer.
    fmt = SQ(12, 0)
    rng = np.random.default_rng(11)
    gamma = rng.normal(0, 1, 200)
    beta, mean, var = rng.normal(0, 3, 200), rng.uniform(-1500, 1500, 200), rng.uniform(0, 9, 200)
    plan = plan_batchnorm_sign(fmt, gamma, beta, mean, var, 1e-5)
    t = mean - beta * np.sqrt(var + 1e-5) / gamma
    clear = (np.abs(t - np.round(t)) > 1e-6) & (t > fmt.min_int) & (t < fmt.max_int)
    closed = np.where(gamma > 0, np.ceil(t), np.floor(t) + 1).astype(np.int64)
    assert clear.sum() > 150
    np.testing.assert_array_equal(plan.thresholds[clear, 0], closed[clear])
    np.testing.assert_array_equal(plan.descending, gamma < 0)


def test_a_given_direction_is_kept():
    # A constant function has no direction of its own; descending=True stores "not s >= T".
    plan = plan_thresholds(lambda s: np.ones_like(s), SQ(4, 0), UQ(1, 0), descending=True)
    assert plan.descending.tolist() == [True] and plan.thresholds.tolist() == [[8]]
    np.testing.assert_array_equal(multithreshold(plan, SQ(4, 0).codes()), np.ones(16))
