import numpy as np
import pytest
from oracle import requantize_one

from hwnn.fixed import to_float
from hwnn.plans.dense import plan_dense
from hwnn.plans.pot import quantize_pot
from hwnn.plans.shift_mac import plan_shift_mac
from hwnn.ref.dense import dense
from hwnn.ref.shift_mac import shift_mac, shift_mac_accumulator
from hwnn.sim import make_vectors

CASES = [
    dict(in_format="SQ(1,7)", weight_format="SQ(1,7)", out_format="SQ(3,5)", weight_terms=1,
         rounding="half_up", overflow="sat"),
    dict(in_format="SQ(1,7)", weight_format="SQ(2,6)", out_format="SQ(2,4)", weight_terms=2,
         rounding="half_even", overflow="wrap"),
    dict(in_format="UQ(2,4)", weight_format="UQ(1,5)", out_format="UQ(3,3)", weight_terms=2,
         rounding="trunc", overflow="sat"),
    dict(in_format="SQ(3,3)", weight_format="SQ(1,5)", out_format="SQ(4,2)", weight_terms=1,
         rounding="half_even", overflow="sat", weight_e_min=2),
]


def case_id(case):
    return "-".join(str(v) for v in case.values()).replace(" ", "")


def random_weights(plan, seed, spread=1.5):
    rng = np.random.default_rng(seed)
    real = rng.uniform(-spread, spread, (plan.n_out, plan.n_in)) * plan.weight_format.max
    return plan.code.quantize(real)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_equals_an_independent_integer_model(case):
    plan = plan_shift_mac(6, 4, bias=[0.3, -0.7, 0.0, 1.1], **case)
    weight = random_weights(plan, 1)
    x = make_vectors(plan.in_format, 6, 80, seed=2)
    got = shift_mac(plan, weight, x)
    acc_f = plan.acc_format.f
    out = plan.out_format
    for n, row in enumerate(x.tolist()):
        for j in range(plan.n_out):
            acc = sum(int(w) * v for w, v in zip(weight[j].tolist(), row)) + int(plan.bias[j])
            want = requantize_one(acc, acc_f, out.signed, out.i, out.f, case["rounding"],
                                  case["overflow"])
            assert got[n, j] == want, (n, j)
    np.testing.assert_array_equal(shift_mac_accumulator(plan, weight, x),
                                  x @ weight.T + plan.bias)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_equals_a_dense_layer_with_the_same_weights(case):
    plan = plan_shift_mac(5, 3, bias=[0.5, -0.25, 0.125], **case)
    weight = random_weights(plan, 3)
    # pot weights are codes of weight_format, so plan_dense quantizes them without change.
    fixed = plan_dense(to_float(weight, plan.weight_format), plan.bias_float(),
                       in_format=plan.in_format, weight_format=plan.weight_format,
                       out_format=plan.out_format, rounding=plan.rounding, overflow=plan.overflow)
    np.testing.assert_array_equal(fixed.weight, weight)
    x = make_vectors(plan.in_format, 5, 60, seed=4)
    np.testing.assert_array_equal(shift_mac(plan, weight, x), dense(fixed, x))


@pytest.mark.parametrize("rounding, bound", [("trunc", 1.0), ("half_up", 0.5),
                                             ("half_even", 0.5)])
def test_error_against_float_is_the_final_rounding_only(rounding, bound):
    # Sums are exact, so the only error is narrowing to out_format: at most half an output ulp
    # for the half modes, under one ulp for trunc (floor). out_format is wide enough never to
    # saturate. The float sums are exact too: every term is an integer times a power of two
    # well inside float64's 53 bits.
    plan = plan_shift_mac(8, 4, in_format="SQ(1,7)", weight_format="SQ(1,7)", weight_terms=2,
                          out_format="SQ(5,3)", rounding=rounding, bias=[0.5, -0.75, 0, 0.3])
    weight = quantize_pot(np.random.default_rng(5).uniform(-1, 1, (4, 8)), "SQ(1,7)", 2)
    x = make_vectors(plan.in_format, 8, 200, seed=6)
    exact = to_float(x, plan.in_format) @ to_float(weight, plan.weight_format).T \
        + plan.bias_float()
    y = to_float(shift_mac(plan, weight, x), plan.out_format)
    ulp = plan.out_format.resolution
    error = exact - y
    assert np.abs(error).max() <= bound * ulp
    if rounding == "trunc":
        assert error.min() >= 0 and error.max() < ulp


def test_reference_errors():
    plan = plan_shift_mac(3, 2, in_format="SQ(1,7)", weight_format="SQ(1,7)",
                          out_format="SQ(3,5)", weight_terms=2)
    good = np.array([[3, 0, -128], [1, 2, 4]])
    dense_plan = plan_dense(np.zeros((2, 3)), in_format="SQ(1,7)", weight_format="SQ(1,7)",
                            out_format="SQ(3,5)")
    with pytest.raises(TypeError) as info:
        shift_mac(dense_plan, good, [0, 0, 0])
    assert info.value.parameter == "plan" and str(info.value) == (
        f"plan must be a ShiftMacPlan (see hwnn.plans.shift_mac.plan_shift_mac), "
        f"not {dense_plan!r}")
    with pytest.raises(ValueError, match=r"^weight: 37 at index \(0, 1\) is not a pot2 code of "
                                         r"SQ\(1, 7\) \(0, ±2\*\*k or ±2\*\*k ± 2\*\*j, "
                                         r"k in 0\.\.7, j <= k\)$"):
        shift_mac(plan, [[3, 37, 11], [0, 0, 0]], [0, 0, 0])
    with pytest.raises(TypeError, match=r"^weight must hold integer codes of SQ\(1, 7\), "
                                        r"not dtype float64$"):
        shift_mac(plan, good * 1.0, [0, 0, 0])
    with pytest.raises(ValueError,
                       match=r"^x must have shape \(3,\) or \(n, 3\), not \(2,\)$") as info:
        shift_mac(plan, good, [0, 0])
    assert info.value.parameter == "x"
    with pytest.raises(ValueError,
                       match=r"^x holds codes outside SQ\(1, 7\) \[-128, 127\]$") as info:
        shift_mac(plan, good, [0, 128, 0])
    assert info.value.parameter == "x"
    assert shift_mac(plan, good, [1, 1, 1]).shape == (2,)
