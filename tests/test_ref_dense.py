import numpy as np
import pytest

from hwnn.fixed import SQ, UQ, Rounding, to_float
from hwnn.plans.dense import plan_dense
from hwnn.ref.dense import dense, dense_accumulator
from hwnn.sim import make_vectors


def make_plan(rounding="half_even", overflow="sat", in_format=SQ(2, 6), out_format=SQ(5, 6)):
    rng = np.random.default_rng(1)
    return plan_dense(rng.uniform(-1, 1, (5, 7)), rng.uniform(-1, 1, 5), in_format=in_format,
                      weight_format=SQ(1, 7), out_format=out_format, rounding=rounding,
                      overflow=overflow)


@pytest.mark.parametrize("rounding", list(Rounding), ids=lambda r: r.value)
def test_reference_within_derived_bound_of_float_math(rounding):
    """Against float math on the quantized weights, the only error is the final rounding.

    The accumulator holds W·x + b exactly (its width is derived for that), and out_format
    (SQ(5, 6), range ±16) holds every sum of this layer, so the one error source is the final
    narrowing: at most 1/2 output ulp for the rounding modes, less than 1 ulp for truncation.
    The float product itself is exact here: every term has at most 7+6+7 significant bits.
    """
    plan = make_plan(rounding=rounding.value)
    x = make_vectors(plan.in_format, plan.n_in, 500, seed=2)
    exact = to_float(x, plan.in_format) @ plan.weight_float().T + plan.bias_float()
    assert np.abs(exact).max() < 16
    got = to_float(dense(plan, x), plan.out_format)
    ulp = plan.out_format.resolution
    error = got - exact
    if rounding is Rounding.TRUNC:
        assert np.all((error <= 0) & (error > -ulp))
    else:
        assert np.abs(error).max() <= ulp / 2


def python_accumulator(plan, x):
    """W·x + b on Python integers, one product at a time (no numpy arithmetic)."""
    return [[sum(int(w) * int(v) for w, v in zip(row, vec)) + int(b)
             for row, b in zip(plan.weight, plan.bias)] for vec in x]


def test_accumulator_is_integer_matrix_product():
    plan = make_plan()
    x = make_vectors(plan.in_format, plan.n_in, 50)
    np.testing.assert_array_equal(dense_accumulator(plan, x), python_accumulator(plan, x))


def test_saturation_and_wrap_at_output():
    sat = make_plan(overflow="sat", out_format=SQ(1, 6))
    wrap = make_plan(overflow="wrap", out_format=SQ(1, 6))
    x = make_vectors(sat.in_format, sat.n_in, 200, seed=4)
    y_sat, y_wrap = dense(sat, x), dense(wrap, x)
    assert y_sat.min() == -64 and y_sat.max() == 63
    off_rails = (y_sat > -64) & (y_sat < 63)
    np.testing.assert_array_equal(y_wrap[off_rails], y_sat[off_rails])
    assert not np.array_equal(y_sat[~off_rails], y_wrap[~off_rails])


def test_single_vector_shape():
    plan = make_plan()
    assert dense(plan, np.zeros(7, dtype=int)).shape == (5,)


def test_unsigned_input():
    # By hand: weights 0.5, -0.25, 0.75, 0.125 are SQ(1, 7) codes 64, -32, 96, 16; the bias
    # 0.5 and -1 at the accumulator's 4 + 7 fraction bits are 1024 and -2048. UQ(2, 4) input
    # codes run 0 … 63: the top code 63 is 3.9375, not -1 (no sign bit).
    plan = plan_dense([[0.5, -0.25], [0.75, 0.125]], [0.5, -1.0], in_format=UQ(2, 4),
                      weight_format=SQ(1, 7), out_format=SQ(5, 6))
    assert plan.weight.tolist() == [[64, -32], [96, 16]] and plan.bias.tolist() == [1024, -2048]
    x = np.array([[63, 0], [1, 63], [16, 32], [0, 0]])
    want = [[64 * 63 + 1024, 96 * 63 - 2048],                  # [5056, 4000]
            [64 - 32 * 63 + 1024, 96 + 16 * 63 - 2048],         # [-928, -944]
            [64 * 16 - 32 * 32 + 1024, 96 * 16 + 16 * 32 - 2048],  # [1024, 0]
            [1024, -2048]]
    np.testing.assert_array_equal(dense_accumulator(plan, x), want)
    # Random unsigned inputs against the Python-integer sums.
    plan = make_plan(in_format=UQ(2, 4))
    x = make_vectors(plan.in_format, plan.n_in, 20)
    assert x.min() >= 0 and x.max() > 32
    np.testing.assert_array_equal(dense_accumulator(plan, x), python_accumulator(plan, x))


@pytest.mark.parametrize("x, error, message", [
    (np.zeros((2, 6), dtype=int), ValueError, "x must have shape (7,) or (n, 7), not (2, 6)"),
    (np.full(7, 1000), ValueError, "x holds codes outside SQ(2, 6) [-128, 127]"),
    (np.zeros(7), TypeError, "x must hold integer codes of SQ(2, 6), not dtype float64"),
])
def test_reference_rejects_bad_inputs(x, error, message):
    with pytest.raises(error) as info:
        dense(make_plan(), x)
    assert str(info.value) == message and info.value.parameter == "x"
