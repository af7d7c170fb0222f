import numpy as np
import pytest

from hwnn.fixed import SQ, Overflow, Rounding, quantize, signed_bits_for
from hwnn.plans.dense import mac_schedule, plan_dense


def make_plan(n_out=3, n_in=4, seed=0, **kw):
    rng = np.random.default_rng(seed)
    args = dict(in_format=SQ(1, 7), weight_format=SQ(1, 7), out_format=SQ(4, 8))
    args.update(kw)
    return plan_dense(rng.uniform(-1, 1, (n_out, n_in)), rng.uniform(-1, 1, n_out), **args)


def test_plan_quantizes_weights_half_even_saturating_on_request():
    plan = plan_dense([[0.5 / 128, 1.5 / 128, 2.0, -2.0]], in_format=SQ(1, 7),
                      weight_format=SQ(1, 7), out_format=SQ(4, 8), saturate_weights=True)
    np.testing.assert_array_equal(plan.weight, [[0, 2, 127, -128]])
    assert plan.saturated_weights == 2
    assert plan.rounding is Rounding.HALF_UP and plan.overflow is Overflow.SAT


@pytest.mark.parametrize("quantizer, message", [
    ("fixed", r"weight\[0, 2\] = 2 does not fit weight_format SQ\(1, 7\) \(-1 … 0.992188\); "
              r"2 weights do not fit. Widen the weight format, or pass saturate_weights=True"),
    ("pot", r"weight\[0, 1\] = 0.9 does not fit weight_format SQ\(1, 7\) \(pot values -1 … "
            r"0.5\); 3 weights do not fit"),
])
def test_weights_that_do_not_fit_are_an_error(quantizer, message):
    with pytest.raises(ValueError, match=message):
        plan_dense([[0.25, 0.9, 2.0, -2.0]], in_format=SQ(1, 7), weight_format=SQ(1, 7),
                   out_format=SQ(4, 8), weight_quantizer=quantizer)


def test_plan_bias_at_accumulator_scale():
    plan = plan_dense([[0.25]], [0.1], in_format=SQ(2, 3), weight_format=SQ(1, 4),
                      out_format=SQ(4, 4), rounding="trunc", overflow="wrap")
    assert plan.acc_format.f == 7
    assert plan.bias[0] == quantize(0.1, SQ(8, 7))
    assert plan.rounding is Rounding.TRUNC and plan.overflow is Overflow.WRAP


def test_accumulator_is_exact_and_tight():
    plan = make_plan(n_out=4, n_in=6, seed=3)
    x_lo, x_hi = plan.in_format.min_int, plan.in_format.max_int
    # The true extremes of every output over all inputs are reached by choosing each input at
    # an end of its range; they must fit the accumulator, and one bit fewer must not suffice.
    extremes = []
    for row, b in zip(plan.weight, plan.bias):
        terms = np.stack([row * x_lo, row * x_hi])
        extremes += [terms.min(axis=0).sum() + b, terms.max(axis=0).sum() + b]
    acc = plan.acc_format
    assert acc.min_int <= min(extremes) and max(extremes) <= acc.max_int
    assert signed_bits_for(min(extremes), max(extremes)) >= acc.width - 1


def test_plan_describe_and_float_views():
    plan = make_plan()
    d = plan.describe()
    assert d["in_format"] == "SQ(1, 7)" and d["n_in"] == 4 and d["n_out"] == 3
    np.testing.assert_array_equal(plan.weight_float() * 128, plan.weight)
    assert not plan.weight.flags.writeable


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(weight=np.zeros((0, 3))), ValueError, r"weight must be a non-empty 2-D array"),
    (dict(weight=np.zeros(3)), ValueError, r"not shape \(3,\)"),
    (dict(bias=np.zeros(4)), ValueError, r"bias must have shape \(2,\) to match weight \(2, 3\)"),
    (dict(weight=[[np.nan, 0, 0], [0, 0, 0]]), ValueError, "weight holds NaN or infinity"),
    (dict(bias=[np.inf, 0]), ValueError, "bias holds NaN or infinity"),
    (dict(weight=[["a", "b", "c"]] * 2), TypeError, "weight must hold real numbers"),
    (dict(in_format="SQ(1)"), ValueError, r"Format must look like"),
    (dict(out_format=3), TypeError, "out_format must be a Format"),
    (dict(rounding="round"), ValueError, "rounding must be one of"),
    (dict(weight=np.full((2, 3), 1e8), in_format=SQ(30, 10), weight_format=SQ(30, 10)), ValueError,
     "the accumulator needs .* bits, more than the 62"),
])
def test_plan_errors(kwargs, error, message):
    args = dict(weight=np.full((2, 3), 0.5), bias=np.zeros(2), in_format=SQ(1, 7),
                weight_format=SQ(1, 7), out_format=SQ(4, 8))
    args.update(kwargs)
    weight = args.pop("weight")
    bias = args.pop("bias")
    with pytest.raises(error, match=message):
        plan_dense(weight, bias, **args)


@pytest.mark.parametrize("n_out, n_in, parallelism", [
    (3, 5, 1), (3, 5, 2), (3, 5, 4), (3, 5, 7), (3, 5, 15), (4, 4, 4), (1, 9, 3), (5, 1, 2)])
def test_schedule_covers_every_product_once(n_out, n_in, parallelism):
    plan = make_plan(n_out, n_in)
    schedule = mac_schedule(plan, parallelism)
    assert schedule.ii == -(-n_out * n_in // parallelism)
    assert schedule.multipliers <= parallelism
    seen = []
    for lane in schedule.lanes:
        assert len(lane.weight) == len(lane.column) == len(lane.row) == schedule.ii
        for t in range(schedule.ii):
            if lane.row[t] >= 0:
                seen.append((lane.row[t], lane.column[t]))
                assert lane.weight[t] == plan.weight[lane.row[t], lane.column[t]]
            else:
                assert lane.weight[t] == 0
        covered = [t for _, first, last in lane.segments for t in range(first, last + 1)]
        assert covered == [t for t in range(schedule.ii) if lane.row[t] >= 0]
    assert sorted(seen) == [(r, c) for r in range(n_out) for c in range(n_in)]


def test_schedule_rejects_bad_parallelism():
    plan = make_plan(2, 3)
    with pytest.raises(ValueError, match=r"Parallelism must be between 1 and n_in·n_out = 6, "
                                         r"not 7"):
        mac_schedule(plan, 7)
    with pytest.raises(ValueError, match="not 0"):
        mac_schedule(plan, 0)
    with pytest.raises(TypeError, match="Parallelism must be an integer, not 2.0"):
        mac_schedule(plan, 2.0)


@pytest.mark.parametrize("quantizer, terms", [("pot", 1), ("pot2", 2)])
def test_power_of_two_weight_quantizers(quantizer, terms):
    from hwnn.plans.shift_add.csd import csd
    rng = np.random.default_rng(4)
    weight = rng.uniform(-1, 1, (6, 9))
    plan = plan_dense(weight, in_format=SQ(1, 7), weight_format=SQ(1, 7), out_format=SQ(3, 5),
                      weight_quantizer=quantizer, saturate_weights=True)
    assert plan.weight_quantizer == quantizer and plan.describe()["weight_quantizer"] == quantizer
    assert all(len(csd(int(w))) <= terms for w in plan.weight.ravel())
    # Nearest: no allowed code of the format is closer to a weight than the chosen one.
    allowed = np.array([c for c in SQ(1, 7).codes() if len(csd(int(c))) <= terms])
    error = np.abs(plan.weight / 128 - weight)
    best = np.abs(allowed[None, None, :] / 128 - weight[..., None]).min(axis=-1)
    np.testing.assert_array_equal(error, best)


def test_weight_quantizer_error():
    with pytest.raises(ValueError, match="weight_quantizer must be one of 'fixed', 'pot', "
                                         "'pot2', not 'log'"):
        plan_dense(np.ones((2, 2)) / 4, in_format=SQ(1, 7), weight_format=SQ(1, 7),
                   out_format=SQ(3, 5), weight_quantizer="log")
