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


def test_accumulator_is_integer_matrix_product():
    plan = make_plan()
    x = make_vectors(plan.in_format, plan.n_in, 50)
    want = np.array([[sum(int(w) * int(v) for w, v in zip(row, vec)) + int(b)
                      for row, b in zip(plan.weight, plan.bias)] for vec in x])
    np.testing.assert_array_equal(dense_accumulator(plan, x), want)


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
    plan = make_plan(in_format=UQ(2, 4))
    x = make_vectors(plan.in_format, plan.n_in, 20)
    assert x.min() >= 0
    np.testing.assert_array_equal(dense_accumulator(plan, x), x @ plan.weight.T + plan.bias)


@pytest.mark.parametrize("x, error, message", [
    (np.zeros((2, 6), dtype=int), ValueError, r"x must have shape \(7,\) or \(n, 7\)"),
    (np.full(7, 1000), ValueError, r"x holds codes outside SQ\(2, 6\)"),
    (np.zeros(7), TypeError, "x must hold integer codes"),
])
def test_reference_rejects_bad_inputs(x, error, message):
    with pytest.raises(error, match=message):
        dense(make_plan(), x)
