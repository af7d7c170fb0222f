import numpy as np
import pytest

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.fixed import SQ, UQ, Rounding, quantize, to_float
from hwnn.plans.conv1d import plan_conv1d
from hwnn.ref.conv1d import conv1d, conv1d_float
from oracle import requantize_one


def loop_conv(weight, bias, x, stride, dilation, pad_left, pad_right, groups):
    """PyTorch's Conv1d by its definition, one product at a time, on Python numbers.

    ``weight[o][c][j]`` (PyTorch layout), ``x[t][c]`` (time-major); a step outside the sequence
    is skipped (zero padding). Output steps are counted by trying every window start, not by
    the closed formula.
    """
    steps, out_channels = len(x), len(weight)
    group_in, kernel = len(weight[0]), len(weight[0][0])
    group_out = out_channels // groups
    out = []
    t = 0
    while steps and t * stride - pad_left + dilation * (kernel - 1) <= steps - 1 + pad_right:
        row = []
        for o in range(out_channels):
            g = o // group_out
            total = bias[o]
            for c in range(group_in):
                for j in range(kernel):
                    step = t * stride - pad_left + j * dilation
                    if 0 <= step < steps:
                        total += weight[o][c][j] * x[step][g * group_in + c]
            row.append(total)
        out.append(row)
        t += 1
    return out


def pads(padding, kernel, dilation):
    if padding == "valid":
        return 0, 0
    if padding == "same":
        total = dilation * (kernel - 1)
        return total // 2, total - total // 2
    return (padding, padding) if isinstance(padding, int) else padding


def random_case(rng):
    groups = int(rng.integers(1, 4))
    group_in = int(rng.integers(1, 3))
    in_channels = groups * group_in
    if rng.random() < 0.3:  # depthwise, with channel multiplier 1 or 2
        groups, group_in = in_channels, 1
    out_channels = groups * int(rng.integers(1, 3))
    kernel = int(rng.integers(1, 6))
    stride = int(rng.integers(1, 4))
    dilation = int(rng.integers(1, 4))
    padding = ["valid", "same", int(rng.integers(0, 4)),
               (int(rng.integers(0, 3)), int(rng.integers(0, 3)))][rng.integers(0, 4)]
    if padding == "same":
        stride = 1
    return dict(shape=(out_channels, group_in, kernel), in_channels=in_channels, groups=groups,
                stride=stride, dilation=dilation, padding=padding)


def lengths(case):
    """Lengths around the shortest with one output (also 0 and 1 output steps)."""
    kernel, dilation = case["shape"][2], case["dilation"]
    left, right = pads(case["padding"], kernel, dilation)
    one = max(1, dilation * (kernel - 1) + 1 - left - right)
    return sorted({1, max(1, one - 1), one, one + 1, one + case["stride"], one + 7})


@pytest.mark.parametrize("seed", range(40))
def test_integer_reference_equals_explicit_loops(seed):
    """Random shapes (channels 1–6, kernel 1–5, stride and dilation 1–3, every padding form,
    groups incl. depthwise), lengths from too short to several outputs, every rounding: the
    reference equals the definition on Python integers, requantized by the rational oracle."""
    rng = np.random.default_rng(seed)
    case = random_case(rng)
    rounding, overflow = rng.choice(["trunc", "half_up", "half_even"]), rng.choice(["sat", "wrap"])
    in_format = [SQ(2, 4), UQ(1, 5)][seed % 2]
    out_format = SQ(3, 3)
    plan = plan_conv1d(rng.uniform(-1, 1, case["shape"]), rng.uniform(-1, 1, case["shape"][0]),
                       in_format=in_format, weight_format=SQ(1, 5), out_format=out_format,
                       stride=case["stride"], dilation=case["dilation"],
                       padding=case["padding"], groups=case["groups"], rounding=rounding,
                       overflow=overflow, saturate_weights=True)
    left, right = pads(case["padding"], case["shape"][2], case["dilation"])
    seen = set()
    for steps in lengths(case):
        x = rng.integers(in_format.min_int, in_format.max_int + 1, (steps, case["in_channels"]))
        acc = loop_conv(plan.weight().tolist(), plan.bias().tolist(), x.tolist(),
                        case["stride"], case["dilation"], left, right, case["groups"])
        want = [[requantize_one(a, plan.acc_format.f, True, out_format.i, out_format.f,
                                rounding, overflow) for a in row] for row in acc]
        got = conv1d(plan, x)
        assert got.dtype == np.int64 and got.shape == (len(want), case["shape"][0])
        np.testing.assert_array_equal(got, np.array(want, dtype=np.int64).reshape(got.shape))
        assert plan.out_length(steps) == len(want)
        seen.add(min(len(want), 2))
    # Exactly one output happens at some length unless the padding alone gives more.
    assert 2 in seen and (1 in seen or plan.out_length(1) > 1)


def test_batch_of_sequences_equals_each_sequence():
    rng = np.random.default_rng(5)
    plan = plan_conv1d(rng.uniform(-.9, .9, (4, 1, 3)), in_format=SQ(2, 5), weight_format=SQ(1, 6),
                       out_format=SQ(3, 5), groups=2, padding=1, stride=2)
    x = rng.integers(-64, 64, (3, 11, 2))
    y = conv1d(plan, x)
    assert y.shape == (3, 6, 4)
    for s in range(3):
        np.testing.assert_array_equal(y[s], conv1d(plan, x[s]))


def test_hundred_thousand_steps_spot_checked():
    """10⁵ steps in one call (strided views, no Python loop over time); outputs spread over the
    sequence, the two ends included, equal the explicit loops on their windows."""
    rng = np.random.default_rng(6)
    plan = plan_conv1d(rng.uniform(-.9, .9, (6, 2, 5)), rng.uniform(-1, 1, 6), in_format=SQ(2, 6),
                       weight_format=SQ(1, 7), out_format=SQ(4, 6), dilation=2, padding="same",
                       groups=2)
    x = rng.integers(-128, 128, (100_000, 4))
    y = conv1d(plan, x)
    assert y.shape == (100_000, 6)
    left = plan.padding[0]
    for t in [0, 1, 2, 3, 4, 50_000, 99_995, 99_996, 99_997, 99_998, 99_999]:
        # The window of output t: steps t - left … t - left + 8 (zeros outside the sequence).
        first = t - left
        rows = [x[s].tolist() if 0 <= s < len(x) else [0] * 4 for s in range(first, first + 9)]
        acc = loop_conv(plan.weight().tolist(), plan.bias().tolist(), rows, 1, 2, 0, 0, 2)
        want = [requantize_one(a, plan.acc_format.f, True, 4, 6, "half_up", "sat")
                for a in acc[0]]
        assert y[t].tolist() == want


def test_float_reference_equals_definition():
    rng = np.random.default_rng(7)
    for seed in range(20):
        case = random_case(np.random.default_rng(100 + seed))
        weight = rng.normal(size=case["shape"])
        bias = rng.normal(size=case["shape"][0])
        x = rng.normal(size=(lengths(case)[-1], case["in_channels"]))
        left, right = pads(case["padding"], case["shape"][2], case["dilation"])
        want = loop_conv(weight.tolist(), bias.tolist(), x.tolist(), case["stride"],
                         case["dilation"], left, right, case["groups"])
        got = conv1d_float(weight, bias, x, stride=case["stride"], dilation=case["dilation"],
                           padding=case["padding"], groups=case["groups"])
        np.testing.assert_allclose(got, np.reshape(want, got.shape), rtol=1e-12, atol=1e-12)


def test_float_reference_known_values():
    """By hand, as torch.nn.functional.conv1d computes them: cross-correlation (taps not
    flipped), 'same' with an even kernel pads 1 left and 2 right."""
    x = np.array([[1.0], [2.0], [3.0], [4.0]])
    np.testing.assert_array_equal(conv1d_float([[[1.0, 0.0, -1.0]]], None, x), [[-2.0], [-2.0]])
    np.testing.assert_array_equal(conv1d_float(np.ones((1, 1, 4)), None, x, padding="same"),
                                  [[6.0], [10.0], [9.0], [7.0]])
    # Two groups, stride 2, bias: channel 0 sees input channel 0 only.
    x2 = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    got = conv1d_float([[[1.0, 1.0]], [[1.0, -1.0]]], [0.5, 0.0], x2, stride=2, groups=2)
    np.testing.assert_array_equal(got, [[3.5, -10.0]])


@pytest.mark.parametrize("seed", range(6))
def test_fine_formats_approximate_float_within_derived_bound(seed):
    """The quantized layer against the float layer on the unquantized weights and inputs.

    Per output, with ``n = kernel·in_channels/groups`` terms: ``w_q x_q − w x = (w_q − w) x_q
    + w (x_q − x)``, so the error is at most ``n·(e_w·max|x_q| + max|w|·e_x) + e_b + e_y``,
    where ``e_w``, ``e_x``, ``e_b``, ``e_y`` are half an ulp of the weight, input, accumulator
    (bias) and output formats (all rounded to nearest; padded taps are exact zeros).
    """
    rng = np.random.default_rng(seed)
    case = random_case(rng)
    weight, bias = rng.uniform(-.99, .99, case["shape"]), rng.uniform(-1, 1, case["shape"][0])
    in_format, weight_format, out_format = SQ(2, 14), SQ(1, 14), SQ(6, 14)
    plan = plan_conv1d(weight, bias, in_format=in_format, weight_format=weight_format,
                       out_format=out_format, stride=case["stride"], dilation=case["dilation"],
                       padding=case["padding"], groups=case["groups"], rounding="half_even")
    x = rng.uniform(-1.5, 1.5, (3, 40, case["in_channels"]))
    x_codes = quantize(x, in_format, Rounding.HALF_EVEN)
    got = to_float(conv1d(plan, x_codes), out_format)
    want = conv1d_float(weight, bias, x, stride=case["stride"], dilation=case["dilation"],
                        padding=case["padding"], groups=case["groups"])
    n = case["shape"][1] * case["shape"][2]
    half = [2.0 ** -(fmt.f + 1) for fmt in (weight_format, in_format, plan.acc_format,
                                              out_format)]
    bound = (n * (half[0] * np.abs(to_float(x_codes, in_format)).max()
                  + np.abs(weight).max() * half[1]) + half[2] + half[3])
    error = np.abs(got - want).max()
    assert 0 < error <= bound
    # The bound is tight enough to matter: coarse weights break it.
    coarse = plan_conv1d(weight, bias, in_format=in_format, weight_format=SQ(2, 3),
                         out_format=out_format, stride=case["stride"], dilation=case["dilation"],
                         padding=case["padding"], groups=case["groups"])
    assert np.abs(to_float(conv1d(coarse, x_codes), out_format) - want).max() > bound


def test_input_errors_name_x():
    plan = plan_conv1d(np.full((2, 3, 2), 0.25), in_format=SQ(2, 4), weight_format=SQ(1, 4),
                       out_format=SQ(4, 4))
    for bad, error in [(np.zeros((5, 2), dtype=int), ParameterValueError),
                       (np.zeros(5, dtype=int), ParameterValueError),
                       (np.zeros((1, 1, 5, 3), dtype=int), ParameterValueError),
                       (np.zeros((5, 3)), ParameterTypeError),
                       (np.full((5, 3), 32), ParameterValueError)]:
        with pytest.raises(error) as info:
            conv1d(plan, bad)
        assert info.value.parameter == "x"
    with pytest.raises(ParameterValueError, match="groups must divide out_channels = 2"):
        conv1d_float(np.ones((2, 1, 2)), None, np.ones((4, 3)), groups=3)
    with pytest.raises(ParameterValueError, match="x must have shape"):
        conv1d_float(np.ones((2, 1, 2)), None, np.ones((4, 3)), groups=2)
