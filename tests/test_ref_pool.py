from fractions import Fraction

import numpy as np
import pytest

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.fixed import SQ, UQ, requantize
from hwnn.plans.pool import plan_flatten, plan_pool1d
from hwnn.ref.pool import flatten, pool1d
from oracle import fit, requantize_one, round_rational


def loop_windows(x, kernel, stride, padding):
    """The real steps of each window (padding left out), by trying every window start."""
    windows, t = [], 0
    while len(x) and t * stride - padding + kernel - 1 <= len(x) - 1 + padding:
        first = t * stride - padding
        windows.append([x[s] for s in range(first, first + kernel) if 0 <= s < len(x)])
        t += 1
    return windows


CASES = [(k, s, p) for k in (1, 2, 3, 4, 5) for s in (None, 1, 2, 3) for p in range(k // 2 + 1)]


@pytest.mark.parametrize("kernel, stride, padding", CASES)
@pytest.mark.parametrize("out_format", [None, SQ(2, 2), SQ(4, 6)])
def test_max_pool_against_loops(kernel, stride, padding, out_format):
    """The largest real value of each window (padding is −∞ in PyTorch), requantized."""
    in_format = SQ(4, 4)
    plan = plan_pool1d("max", kernel, stride, padding, channels=2, in_format=in_format,
                       out_format=out_format, rounding="half_even")
    rng = np.random.default_rng(kernel * 100 + (stride or 0) * 10 + padding)
    out = out_format or in_format
    for steps in range(1, 12):
        x = rng.integers(-128, 128, (steps, 2))
        want = [[requantize_one(max(v[c] for v in w), 4, True, out.i, out.f, "half_even", "sat")
                 for c in range(2)] for w in loop_windows(x.tolist(), kernel, stride or kernel,
                                                          padding)]
        got = pool1d(plan, x)
        assert got.shape == (plan.out_length(steps), 2) == (len(want), 2)
        np.testing.assert_array_equal(got, np.reshape(want, got.shape))


@pytest.mark.parametrize("kernel, stride, padding", CASES)
@pytest.mark.parametrize("rounding", ["trunc", "half_up", "half_even"])
@pytest.mark.parametrize("in_format, out_format", [
    (SQ(3, 4), None), (SQ(3, 4), SQ(3, 1)), (SQ(3, 4), SQ(5, 7)), (UQ(2, 3), UQ(2, 3)),
    (SQ(3, 4), SQ(2, 4))])
def test_avg_pool_against_rationals(kernel, stride, padding, rounding, in_format, out_format):
    """The exact mean (padding counts as zeros, divisor always kernel_size: PyTorch's
    count_include_pad=True) rounded once to out_format, then saturated."""
    plan = plan_pool1d("avg", kernel, stride, padding, channels=3, in_format=in_format,
                       out_format=out_format, rounding=rounding)
    out = out_format or in_format
    rng = np.random.default_rng(kernel)
    for steps in (1, 2, 5, 9):
        x = rng.integers(in_format.min_int, in_format.max_int + 1, (steps, 3))
        want = [[fit(round_rational(Fraction(sum(v[c] for v in w), kernel)
                                    * Fraction(2) ** (out.f - in_format.f), rounding),
                     out.signed, out.width, "sat") for c in range(3)]
                for w in loop_windows(x.tolist(), kernel, stride or kernel, padding)]
        got = pool1d(plan, x)
        assert got.shape == (len(want), 3)
        np.testing.assert_array_equal(got, np.reshape(want, got.shape))


@pytest.mark.parametrize("kernel", [1, 2, 4, 8])
@pytest.mark.parametrize("out_format", [SQ(3, 4), SQ(3, 1), SQ(4, 6)])
@pytest.mark.parametrize("rounding", ["trunc", "half_up", "half_even"])
def test_power_of_two_mean_is_a_shift(kernel, out_format, rounding):
    """With a power-of-two divisor the mean is requantize of the sum read with log2(k) more
    fraction bits: a core may shift instead of dividing."""
    plan = plan_pool1d("avg", kernel, channels=1, in_format=SQ(3, 4), out_format=out_format,
                       rounding=rounding, overflow="wrap")
    sums = np.arange(kernel * -64, kernel * 63 + 1)
    shift = kernel.bit_length() - 1
    assert plan.sum_format.contains(sums).all() and plan.sum_format.f == 4
    np.testing.assert_array_equal(
        plan.divide(sums), requantize(sums, SQ(plan.sum_format.i, 4 + shift),
                                      plan.mean_format, rounding, "sat"))
    assert plan.mean_format.contains(plan.divide(sums)).all()


def test_avg_plan_integers():
    plan = plan_pool1d("avg", 3, channels=4, in_format=SQ(2, 6), out_format=SQ(2, 4))
    assert (plan.left_shift, plan.divisor, plan.stride) == (0, 12, 3)
    # The top mean 3·127 / 12 = 31.75 rounds (half up) to 32: one more bit than SQ(2, 4).
    assert plan.sum_format == SQ(4, 6) and plan.mean_format == SQ(3, 4)
    finer = plan_pool1d("avg", 3, 1, 1, channels=4, in_format=UQ(1, 3), out_format=SQ(2, 5))
    assert (finer.left_shift, finer.divisor, finer.padding) == (2, 3, (1, 1))
    assert finer.sum_format == UQ(3, 3) and finer.fill == 0
    described = finer.describe()
    assert described["divisor"] == 3 and described["sum_format"] == "UQ(3, 3)"
    maxed = plan_pool1d("max", 2, channels=1, in_format=SQ(2, 6))
    assert maxed.fill == -128 and maxed.out_format == SQ(2, 6) and "divisor" not in maxed.describe()


def test_batches_and_empty():
    plan = plan_pool1d("avg", 2, channels=2, in_format=SQ(3, 4))
    x = np.random.default_rng(3).integers(-64, 64, (4, 7, 2))
    y = pool1d(plan, x)
    assert y.shape == (4, 3, 2)
    for s in range(4):
        np.testing.assert_array_equal(y[s], pool1d(plan, x[s]))
    assert pool1d(plan, x[:, :1]).shape == (4, 0, 2)
    assert pool1d(plan, np.zeros((0, 2), dtype=int)).shape == (0, 2)


@pytest.mark.parametrize("args, kwargs, error, parameter", [
    (("min", 2), {}, ParameterValueError, "kind"),
    (("max", 0), {}, ParameterValueError, "kernel_size"),
    (("max", 2, 0), {}, ParameterValueError, "stride"),
    (("max", 3, 1, 2), {}, ParameterValueError, "padding"),
    (("max", 2), dict(channels=0), ParameterValueError, "channels"),
    (("avg", 2), dict(out_format=SQ(2, 60)), ParameterValueError, "out_format"),
    (("avg", 2), dict(out_format=SQ(62, -60)), ParameterValueError, "out_format"),
    (("max", 2.0), {}, ParameterTypeError, "kernel_size"),
    (("max", 2), dict(rounding=3), ParameterTypeError, "rounding"),
])
def test_pool_parameter_errors(args, kwargs, error, parameter):
    kwargs = {"channels": 2, "in_format": SQ(3, 4), **kwargs}
    with pytest.raises(error) as info:
        plan_pool1d(*args, **kwargs)
    assert info.value.parameter == parameter


def test_pool_input_errors():
    plan = plan_pool1d("max", 2, channels=2, in_format=SQ(3, 4))
    for bad, error in [(np.zeros((4, 3), dtype=int), ParameterValueError),
                       (np.zeros((4, 2)), ParameterTypeError),
                       (np.full((4, 2), 128), ParameterValueError)]:
        with pytest.raises(error) as info:
            pool1d(plan, bad)
        assert info.value.parameter == "x"


def test_flatten_is_channel_major():
    plan = plan_flatten(4, 3)
    x = np.arange(2 * 4 * 3).reshape(2, 4, 3)
    y = flatten(plan, x)
    assert y.shape == (2, 12) and plan.n_out == 12
    for s in range(2):
        for t in range(4):
            for c in range(3):
                assert y[s, c * 4 + t] == x[s, t, c]
    np.testing.assert_array_equal(flatten(plan, x[1]), y[1])
    # stream_order: the flat index of each value in time-major stream order.
    np.testing.assert_array_equal(y[0][plan.stream_order()], x[0].ravel())


def test_stream_weight_takes_the_stream_order():
    plan = plan_flatten(5, 2)
    rng = np.random.default_rng(4)
    weight, x = rng.normal(size=(3, 10)), rng.normal(size=(5, 2))
    np.testing.assert_allclose(plan.stream_weight(weight) @ x.ravel(), weight @ flatten(plan, x),
                               rtol=1e-12)
    assert not np.allclose(weight @ x.ravel(), weight @ flatten(plan, x))
    with pytest.raises(ParameterValueError, match=r"weight must have shape \(n_out, 10\)"):
        plan.stream_weight(weight[:, :9])


def test_flatten_errors():
    plan = plan_flatten(4, 3)
    with pytest.raises(ParameterValueError, match=r"x must have shape \(4, 3\)"):
        flatten(plan, np.zeros((3, 4)))
    with pytest.raises(ParameterValueError) as info:
        plan_flatten(0, 3)
    assert info.value.parameter == "steps"
    with pytest.raises(ParameterTypeError) as info:
        plan_flatten(4, 3.0)
    assert info.value.parameter == "channels"
