import numpy as np
import pytest

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.fixed import SQ, Rounding, quantize
from hwnn.plans.conv1d import plan_conv1d
from hwnn.plans.dense import plan_dense
from hwnn.ref.dense import dense
from hwnn.ref.windows import Window, conv1d_window, same_padding

FORMATS = dict(in_format=SQ(2, 6), weight_format=SQ(1, 7), out_format=SQ(4, 6))


def weights(shape, seed=0):
    return np.random.default_rng(seed).uniform(-0.9, 0.9, shape)


def test_group_plans_hold_tap_major_windows():
    """Group g's matrix is W_g[r, j·Cg + c] = w[g·Og + r, c, j]; the quantized codes are the
    nearest codes of PyTorch's weights, one by one."""
    w = weights((6, 2, 3))
    plan = plan_conv1d(w, np.arange(6) / 8, groups=3, **FORMATS)
    codes = quantize(w, SQ(1, 7), Rounding.HALF_EVEN)
    assert plan.n_groups == 3 and plan.in_channels == 6 and plan.out_channels == 6
    assert plan.group_in_channels == 2 and plan.group_out_channels == 2
    for g, group in enumerate(plan.groups):
        assert (group.n_out, group.n_in) == (2, 6)
        for r in range(2):
            for j in range(3):
                for c in range(2):
                    assert group.weight[r, j * 2 + c] == codes[g * 2 + r, c, j]
    np.testing.assert_array_equal(plan.weight(), codes)
    np.testing.assert_array_equal(plan.bias(), (np.arange(6) << 13) // 8)


def test_groups_share_the_widest_accumulator():
    """Each group alone would need its own width; the plan gives every group the widest (and
    the results are those of each group's own plan_dense)."""
    w = np.zeros((2, 1, 4))
    w[0] = 0.1
    w[1] = 0.9
    plan = plan_conv1d(w, groups=2, **FORMATS)
    alone = [plan_dense(w[g].reshape(1, 4), in_format=SQ(2, 6), weight_format=SQ(1, 7),
                        out_format=SQ(4, 6)) for g in range(2)]
    assert alone[0].acc_format != alone[1].acc_format
    assert {group.acc_format for group in plan.groups} == {alone[1].acc_format}
    assert plan.acc_format == alone[1].acc_format
    x = np.random.default_rng(1).integers(-128, 128, (50, 4))
    for g in range(2):
        np.testing.assert_array_equal(dense(plan.groups[g], x), dense(alone[g], x))


def test_depthwise():
    plan = plan_conv1d(weights((8, 1, 5)), groups=4, **FORMATS)
    assert plan.in_channels == 4 and plan.n_groups == 4 and plan.group_out_channels == 2
    assert all(group.n_in == 5 for group in plan.groups)


@pytest.mark.parametrize("kernel, dilation, want", [
    (1, 1, (0, 0)), (2, 1, (0, 1)), (3, 1, (1, 1)), (4, 1, (1, 2)), (5, 1, (2, 2)),
    (2, 3, (1, 2)), (3, 2, (2, 2)), (4, 3, (4, 5))])
def test_same_padding_is_pytorchs(kernel, dilation, want):
    """total = dilation·(k − 1), left = total // 2, right = total − left (odd: extra right)."""
    assert same_padding(kernel, dilation) == want
    window = conv1d_window(kernel, dilation=dilation, padding="same")
    assert window.padding == want
    assert all(window.out_length(steps) == steps for steps in range(1, 12))


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("dilation", [1, 2, 3])
@pytest.mark.parametrize("kernel", [1, 2, 5])
@pytest.mark.parametrize("pad", [(0, 0), (1, 1), (0, 2), (3, 1)])
def test_out_length_counts_windows(stride, dilation, kernel, pad):
    """Against counting the windows that fit; 0 for a too short or an empty sequence."""
    window = Window(kernel, stride, dilation, *pad)
    assert window.receptive_field == dilation * (kernel - 1) + 1
    for steps in range(0, 20):
        count = 0
        while steps and count * stride + window.receptive_field <= steps + sum(pad):
            count += 1
        assert window.out_length(steps) == count


def test_properties_and_describe():
    plan = plan_conv1d(weights((4, 3, 3)), stride=2, dilation=2, padding=(1, 3), **FORMATS)
    assert (plan.kernel_size, plan.stride, plan.dilation, plan.padding) == (3, 2, 2, (1, 3))
    assert plan.receptive_field == 5 and plan.out_length(10) == 5
    assert plan.in_format == SQ(2, 6) and plan.out_format == SQ(4, 6)
    assert plan.weight_format == SQ(1, 7) and plan.acc_format.f == 13
    summary = plan.describe()
    assert summary["padding"] == [1, 3] and summary["groups"] == 1
    assert summary["acc_format"] == str(plan.acc_format) and "n_in" not in summary
    assert plan_conv1d(weights((4, 3, 3)), padding=2, **FORMATS).padding == (2, 2)
    assert plan_conv1d(weights((4, 3, 3)), padding="valid", **FORMATS).padding == (0, 0)


def test_saturated_weights_are_counted_per_group():
    w = weights((4, 1, 3))
    w[0, 0, 0] = w[3, 0, 2] = w[3, 0, 1] = 5.0
    plan = plan_conv1d(w, groups=2, saturate_weights=True, **FORMATS)
    assert [group.saturated_weights for group in plan.groups] == [1, 2]
    assert plan.saturated_weights == 3 and plan.describe()["saturated_weights"] == 3
    w[0, 0, 0] = w[3, 0, 1] = 0.5
    # PyTorch's weight[3, 0, 2] is row 1, column tap·1 + channel = 2 of group 1's matrix.
    with pytest.raises(ParameterValueError, match=r"group 1 .*weight\[1, 2\] = 5") as info:
        plan_conv1d(w, groups=2, **FORMATS)
    assert info.value.parameter == "weight"


@pytest.mark.parametrize("kwargs, parameter, message", [
    (dict(groups=3), "groups", "groups must divide out_channels = 4"),
    (dict(groups=0), "groups", "groups must be a positive integer"),
    (dict(stride=0), "stride", "stride must be a positive integer"),
    (dict(dilation=0), "dilation", "dilation must be a positive integer"),
    (dict(padding=-1), "padding", "padding must be a non-negative integer"),
    (dict(padding=(1, -1)), "padding", "padding must be a non-negative integer"),
    (dict(padding=(1, 2, 3)), "padding", r"padding must be a \(left, right\) pair"),
    (dict(padding="full"), "padding", "padding must be 'valid', 'same'"),
    (dict(padding="same", stride=2), "padding", "padding 'same' needs stride 1"),
    (dict(bias=np.zeros(3)), "bias", r"bias must have shape \(4,\)"),
    (dict(weight=np.zeros((4, 3))), "weight", "weight must be a non-empty 3-D array"),
    (dict(weight=np.zeros((4, 3, 0))), "weight", "weight must be a non-empty 3-D array"),
    (dict(out_format="SQ(2, 60)"), "out_format", "out_format must have at most"),
])
def test_parameter_errors(kwargs, parameter, message):
    kwargs = {**FORMATS, **kwargs}
    weight = kwargs.pop("weight", weights((4, 2, 3)))
    with pytest.raises(ParameterValueError, match=message) as info:
        plan_conv1d(weight, **kwargs)
    assert info.value.parameter == parameter


@pytest.mark.parametrize("kwargs, parameter", [
    (dict(padding=1.0), "padding"), (dict(padding=True), "padding"), (dict(stride=1.5), "stride"),
    (dict(groups="1"), "groups"), (dict(in_format=3), "in_format"), (dict(rounding=1), "rounding"),
])
def test_parameter_type_errors(kwargs, parameter):
    with pytest.raises(ParameterTypeError) as info:
        plan_conv1d(weights((4, 2, 3)), **{**FORMATS, **kwargs})
    assert info.value.parameter == parameter
