import re
import warnings

import numpy as np
import pytest

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.cores.dense import Dense
from hwnn.fixed import SQ, Overflow, Rounding, quantize, signed_bits_for
from hwnn.plans.dense import MAX_WEIGHTS, check_weight_count, mac_schedule, plan_dense
from hwnn.ref.dense import dense
from hwnn.sim import corner_vectors, make_vectors, run_stream


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
    ("fixed", "weight[0, 2] = 2 does not fit weight_format SQ(1, 7) (-1 … 0.992188); 2 weights "
              "do not fit. Widen the weight format, or pass saturate_weights=True to clamp them"),
    ("pot", "weight[0, 1] = 0.9 does not fit weight_format SQ(1, 7) (pot values -1 … 0.5); 3 "
            "weights do not fit. Widen the weight format, or pass saturate_weights=True to clamp "
            "them"),
])
def test_weights_that_do_not_fit_are_an_error(quantizer, message):
    with pytest.raises(ParameterValueError, match="^" + re.escape(message) + "$") as info:
        plan_dense([[0.25, 0.9, 2.0, -2.0]], in_format=SQ(1, 7), weight_format=SQ(1, 7),
                   out_format=SQ(4, 8), weight_quantizer=quantizer)
    assert info.value.parameter == "weight"


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


@pytest.mark.parametrize("kwargs, error, parameter, message", [
    (dict(weight=np.zeros((0, 3))), ParameterValueError, "weight",
     "weight must be a non-empty 2-D array (n_out, n_in), not shape (0, 3)"),
    (dict(weight=np.zeros(3)), ParameterValueError, "weight",
     "weight must be a non-empty 2-D array (n_out, n_in), not shape (3,)"),
    (dict(bias=np.zeros(4)), ParameterValueError, "bias",
     "bias must have shape (2,) to match weight (2, 3), not (4,)"),
    (dict(weight=[[np.nan, 0, 0], [0, 0, 0]]), ParameterValueError, "weight",
     "weight holds NaN or infinity"),
    (dict(bias=[np.inf, 0]), ParameterValueError, "bias", "bias holds NaN or infinity"),
    (dict(weight=[["a", "b", "c"]] * 2), ParameterTypeError, "weight",
     "weight must hold real numbers, not dtype <U1"),
    (dict(in_format="SQ(1)"), ParameterValueError, "in_format",
     "in_format must be a format like 'SQ(4,12)' or 'UQ(0,8)', not 'SQ(1)'"),
    (dict(out_format=3), ParameterTypeError, "out_format",
     "out_format must be a Format (SQ/UQ) or a format string, not 3"),
    (dict(rounding="round"), ParameterValueError, "rounding",
     "rounding must be one of trunc | half_up | half_even, not 'round'"),
    # Not a ParameterError: no single parameter is at fault, the formats together are too wide.
    (dict(weight=np.full((2, 3), 1e8), in_format=SQ(30, 10), weight_format=SQ(30, 10)), ValueError,
     None, "the accumulator needs 79 bits, more than the 62 that exact int64 reference arithmetic "
           "allows; use narrower formats"),
])
def test_plan_errors(kwargs, error, parameter, message):
    args = dict(weight=np.full((2, 3), 0.5), bias=np.zeros(2), in_format=SQ(1, 7),
                weight_format=SQ(1, 7), out_format=SQ(4, 8))
    args.update(kwargs)
    weight = args.pop("weight")
    bias = args.pop("bias")
    with pytest.raises(error, match="^" + re.escape(message) + "$") as info:
        plan_dense(weight, bias, **args)
    assert getattr(info.value, "parameter", None) == parameter


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
    for parallelism, error, message in [
            (7, ParameterValueError, "parallelism must be an integer between 1 and 6, not 7"),
            (0, ParameterValueError, "parallelism must be an integer between 1 and 6, not 0"),
            (2.0, ParameterTypeError, "parallelism must be an integer between 1 and 6, not 2.0")]:
        with pytest.raises(error, match="^" + re.escape(message) + "$") as info:
            mac_schedule(plan, parallelism)
        assert info.value.parameter == "parallelism"


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


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(weight_quantizer="log"), ParameterValueError,
     "weight_quantizer must be one of fixed | pot | pot2, not 'log'"),
    (dict(saturate_weights="no"), ParameterTypeError,
     "saturate_weights must be True or False, not 'no'"),
    (dict(weight=np.zeros(3)), ParameterValueError,
     "weight must be a non-empty 2-D array (n_out, n_in), not shape (3,)"),
    (dict(bias=[0.0]), ParameterValueError,
     "bias must have shape (2,) to match weight (2, 2), not (1,)"),
    (dict(weight=[[4.0, 0.0], [0.0, 0.0]]), ParameterValueError,
     "weight[0, 0] = 4 does not fit weight_format SQ(1, 7) (-1 … 0.992188); 1 weights do not "
     "fit. Widen the weight format, or pass saturate_weights=True to clamp them"),
])
def test_parameter_errors_carry_the_parameter(kwargs, error, message):
    args = dict(weight=np.ones((2, 2)) / 4, in_format=SQ(1, 7), weight_format=SQ(1, 7),
                out_format=SQ(3, 5))
    args.update(kwargs)
    with pytest.raises(error, match=re.escape(message) + "$") as info:
        plan_dense(args.pop("weight"), args.pop("bias", None), **args)
    assert info.value.parameter == message.split(" ")[0].split("[")[0]


# --- out_format: requantize must stay within exact int64 -------------------------------------

# Weights 1 and -2 (one row) and 3 (another) over SQ(8, 0) inputs, biases 5 and -7: sums in
# [-382 + 5, 383 + 5] and [-384 - 7, 381 - 7], a 10-bit accumulator SQ(10, 0). Requantize
# shifts it left to out_format's fraction bits, into SQ(10, out.f): at most MAX_WIDTH = 62 bits,
# so out_format may have 52 fraction bits.
LAYER = dict(weight=[[1.0, -2.0], [3.0, 0.0]], bias=[5.0, -7.0], in_format="SQ(8,0)",
             weight_format="SQ(8,0)")


def exact_outputs(x, out_format, rounding, overflow):
    """The layer's outputs from the definition, on Python integers (no hwnn code)."""
    rows = []
    for vector in x.tolist():
        row = []
        for weights, b in zip(LAYER["weight"], LAYER["bias"]):
            acc = sum(int(w) * v for w, v in zip(weights, vector)) + int(b)
            shift = 0 - out_format.f  # the accumulator has 0 fraction bits
            if shift <= 0:
                value = acc << -shift
            else:
                floor, rest = acc >> shift, acc - ((acc >> shift) << shift)
                half = 1 << (shift - 1)
                up = {"trunc": False, "half_up": rest >= half,
                      "half_even": rest > half or (rest == half and floor % 2 == 1)}[rounding]
                value = floor + up
            lo, hi = -(1 << (out_format.width - 1)), (1 << (out_format.width - 1)) - 1
            if overflow == "sat":
                value = min(max(value, lo), hi)
            else:
                value = (value - lo) % (1 << out_format.width) + lo
            row.append(value)
        rows.append(row)
    return np.array(rows, dtype=np.int64)


def test_out_format_beyond_the_accumulator_is_refused_naming_the_limit():
    with pytest.raises(ParameterValueError, match=re.escape(
            "out_format must have at most 52 fraction bits with the accumulator SQ(10, 0) "
            "(requantize shifts the accumulator left to the output's fraction bits, and "
            "SQ(10, f) must fit MAX_WIDTH = 62 bits of exact int64 arithmetic), "
            "not SQ(-55, 60)") + "$") as info:
        plan_dense(**LAYER, out_format="SQ(-55,60)")
    assert info.value.parameter == "out_format"
    for out_format in ("SQ(9, 53)", "SQ(-42, 53)", "SQ(1, 61)"):
        with pytest.raises(ParameterValueError, match=re.escape(
                "out_format must have at most 52 fraction bits with the accumulator SQ(10, 0) "
                "(requantize shifts the accumulator left to the output's fraction bits, and "
                "SQ(10, f) must fit MAX_WIDTH = 62 bits of exact int64 arithmetic), "
                f"not {out_format}") + "$") as info:
            plan_dense(**LAYER, out_format=out_format)
        assert info.value.parameter == "out_format"


@pytest.mark.parametrize("out_format", [
    SQ(10, 52),    # the largest left shift, output as wide as it can be: every sum, exactly
    SQ(-41, 52),   # the largest left shift into a narrow output: saturates or wraps
    SQ(2, 8),
    SQ(11, -9),    # right shifts: rounding
    SQ(62, -60),   # the largest right shift of the narrowest signed output
], ids=str)
@pytest.mark.parametrize("rounding, overflow", [("half_up", "sat"), ("trunc", "wrap"),
                                                ("half_even", "sat")])
def test_every_accepted_out_format_computes_exactly_in_reference_and_core(out_format, rounding,
                                                                          overflow):
    plan = plan_dense(**LAYER, out_format=out_format, rounding=rounding, overflow=overflow)
    assert plan.acc_format == SQ(10, 0)
    x = np.concatenate([corner_vectors(plan.in_format, 2),
                        make_vectors(plan.in_format, 2, 12, seed=2)])
    want = exact_outputs(x, out_format, rounding, overflow)
    np.testing.assert_array_equal(dense(plan, x), want)
    for arith in ("mult", "csd"):
        run = run_stream(Dense(plan, arith=arith), x, stall_in=0.3, stall_out=0.3, seed=1)
        np.testing.assert_array_equal(run.outputs, want)


# --- bias: exact, or refused -----------------------------------------------------------------

def test_bias_beyond_the_widest_accumulator_is_refused():
    # Before: clamped to 2**61 - 1 without a word; with zero weights and a wrapping SQ(8, 0)
    # output the layer put out -1 where the exact result is 0.
    args = dict(in_format="SQ(8,0)", weight_format="SQ(8,0)", out_format="SQ(8,0)",
                overflow="wrap")
    message = ("bias must fit the widest accumulator SQ(62, 0) (MAX_WIDTH = 62 bits, the most "
               "exact int64 arithmetic allows: -2**61 … 2**61 - 1 units of 2**0), "
               "not bias[{}] = {!r}")
    for bias, index in (([2.0 ** 70], 0), ([0.0, -2.0 ** 61 - 2 ** 10], 1), ([1.0, 2.0 ** 61], 1),
                        ([1e308, -1e308], 0)):
        with pytest.raises(ParameterValueError, match=re.escape(
                message.format(index, bias[index])) + "$") as info:
            plan_dense([[0.0, 0.0]] * len(bias), bias, **args)
        assert info.value.parameter == "bias"
    # At the accumulator's scale: SQ(8, 4) inputs and weights give 8 fraction bits.
    with pytest.raises(ParameterValueError, match=re.escape(
            "bias must fit the widest accumulator SQ(54, 8) (MAX_WIDTH = 62 bits, the most "
            "exact int64 arithmetic allows: -2**61 … 2**61 - 1 units of 2**-8), "
            "not bias[0] = 9007199254740992.0") + "$"):
        plan_dense([[0.0]], [2.0 ** 53], in_format="SQ(8,4)", weight_format="SQ(8,4)",
                   out_format="SQ(8,0)")


def test_bias_up_to_the_widest_accumulator_is_exact():
    args = dict(in_format="SQ(8,0)", weight_format="SQ(8,0)")
    low = plan_dense([[0.0, 0.0]], [-2.0 ** 61], out_format="SQ(62,0)", **args)
    assert low.bias.tolist() == [-2 ** 61] and low.acc_format == SQ(62, 0)
    assert dense(low, [1, 1]).tolist() == [-2 ** 61]
    assert dense(plan_dense([[0.0, 0.0]], [-2.0 ** 61], out_format="SQ(8,0)", overflow="wrap",
                            **args), [1, 1]).tolist() == [0]
    high = plan_dense([[0.0, 0.0]], [2.0 ** 61 - 2 ** 9], out_format="SQ(62,0)", **args)
    assert dense(high, [1, 1]).tolist() == [2 ** 61 - 2 ** 9]
    # The cores add the same 62-bit constant: near the limit, with weights that move the sum.
    edge = plan_dense([[1.0, -1.0]], [-2.0 ** 61 + 2 ** 10], out_format="SQ(62,0)", **args)
    x = corner_vectors(edge.in_format, 2)
    want = [[-2 ** 61 + 2 ** 10 + a - b] for a, b in x.tolist()]
    np.testing.assert_array_equal(dense(edge, x), want)
    for arith in ("mult", "csd"):
        np.testing.assert_array_equal(run_stream(Dense(edge, arith=arith), x).outputs, want)
    # Rounding half-even to the accumulator's fraction bits is the bias's only change.
    ties = plan_dense(np.zeros((6, 1)), [0.5, 1.5, 2.5, -0.5, -1.5, 2.0 ** 51 + 0.5],
                      out_format="SQ(8,0)", **args)
    assert ties.bias.tolist() == [0, 2, 2, 0, -2, 2 ** 51]


# --- sizes are checked before anything is allocated --------------------------------------------

def test_layer_size_is_checked_before_anything_is_allocated():
    # A read-only view of one float: a 10**10-element array that takes no memory.
    huge = np.broadcast_to(np.float64(0.25), (100000, 100000))
    with pytest.raises(ParameterValueError, match=re.escape(
            "weight's n_out·n_in must be at most 8388608 weights (MAX_WEIGHTS = 2**23: more "
            "than any supported device holds), not 100000·100000 = 10000000000") + "$") as info:
        plan_dense(huge, in_format="SQ(1,7)", weight_format="SQ(1,7)", out_format="SQ(4,8)")
    assert info.value.parameter == "weight"
    assert MAX_WEIGHTS == 2 ** 23
    check_weight_count(2 ** 11, 2 ** 12, "weight", "weight")
    with pytest.raises(ParameterValueError, match=re.escape(
            "weight must be at most 8388608 weights (MAX_WEIGHTS = 2**23: more than any "
            "supported device holds), not 2048·4097 = 8390656") + "$") as info:
        check_weight_count(2 ** 11, 2 ** 12 + 1, "weight", "weight")
    assert info.value.parameter == "weight"


def test_unsigned_pot2_weights_reach_every_difference_the_format_holds():
    # UQ(2, 2) holds 3.5 = 2**2 - 2**-1: it was refused (and clamped to 3.0 on request).
    plan = plan_dense([[3.5, 3.75, 1.75]], in_format="SQ(8,0)", weight_format="UQ(2,2)",
                      out_format="SQ(12,2)", weight_quantizer="pot2")
    assert plan.weight.tolist() == [[14, 15, 7]] and plan.saturated_weights == 0


@pytest.mark.parametrize("quantizer", ["fixed", "pot", "pot2"])
def test_huge_weights_are_beyond_the_format_not_an_overflow(quantizer):
    # ±1e308 scaled by 2**60 overflows float64: it was "x holds values too large to scale"
    # (naming no weight) with a RuntimeWarning; it is a weight that does not fit, or a clamp.
    args = dict(in_format="SQ(8,0)", weight_format="SQ(2,60)", out_format="SQ(8,0)",
                weight_quantizer=quantizer)
    what = "" if quantizer == "fixed" else f"{quantizer} values "
    top = 1 if quantizer == "pot" else 2  # pot: 2**0; SQ(2, 60) and pot2: 2 - 2**-60
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ParameterValueError, match=re.escape(
                f"weight[0, 1] = -1e+308 does not fit weight_format SQ(2, 60) "
                f"({what}-2 … {top}); 1 weights do not fit. Widen the weight format, or pass "
                f"saturate_weights=True to clamp them") + "$"):
            plan_dense([[0.5, -1e308]], **args)
        plan = plan_dense([[1e308, -1e308]], **dict(args, weight_format="SQ(2,6)"),
                          saturate_weights=True)
    highest = 64 if quantizer == "pot" else 127  # SQ(2, 6): 1.0 (pot) or 2 - 2**-6
    assert plan.weight.tolist() == [[highest, -128]] and plan.saturated_weights == 2


@pytest.mark.parametrize("n_in", [8, 16, 64])
def test_accumulator_of_wide_formats_is_exact(n_in):
    # One weight 2**29 in a row of zeros over SQ(31, 0) inputs: sums from -2**59 to
    # 2**29·(2**30 - 1), 60 bits, whatever n_in. (With 16 and more inputs the size bound
    # n_in·2**29·2**30 no longer fits int64 and the range is summed on Python integers.)
    weight = np.zeros((2, n_in))
    weight[1, n_in // 2] = 2.0 ** 29
    plan = plan_dense(weight, in_format="SQ(31,0)", weight_format="SQ(31,0)",
                      out_format="SQ(31,0)")
    assert plan.acc_format == SQ(60, 0)
    # Every weight of the first row -2**29: sums from n_in·-2**29·(2**30 - 1) to n_in·2**59.
    weight[0, :] = -(2.0 ** 29)
    needed = signed_bits_for(-n_in * 2 ** 29 * (2 ** 30 - 1), n_in * 2 ** 59)
    assert needed == 60 + n_in.bit_length()
    with pytest.raises(ValueError, match=re.escape(
            f"the accumulator needs {needed} bits, more than the 62 that exact int64 reference "
            f"arithmetic allows; use narrower formats") + "$"):
        plan_dense(weight, in_format="SQ(31,0)", weight_format="SQ(31,0)",
                   out_format="SQ(31,0)")
