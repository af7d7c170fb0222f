import re

import numpy as np
import pytest
from amaranth.back import verilog

from hwnn.checks import ParameterTypeError
from hwnn.cores.activation import activation_core
from hwnn.cores.poly import PolyActivation, coefficient_words, poly_stages
from hwnn.fixed import SQ, UQ
from hwnn.plans.lut import plan_lut
from hwnn.plans.poly import plan_poly, plan_taylor
from hwnn.ref.poly import poly
from hwnn.sim import run_stream
from hwnn.synth import synthesize
from oracle import plan_id

POLY = [
    ("tanh", SQ(4, 6), SQ(1, 9), dict(segments=8, degree=2)),
    ("tanh", SQ(4, 6), SQ(1, 9), dict(segments=6, degree=3, breakpoints="optimal")),
    ("sigmoid", SQ(4, 6), UQ(0, 10), dict(segments=5, degree=2, symmetric=False,
                                          breakpoints="optimal")),
    ("sigmoid", SQ(4, 6), UQ(0, 10), dict(segments=8, degree=1, multipliers="lut")),
    ("tanh", SQ(3, 7), SQ(2, 8), dict(segments=4, degree=3, input_range=(-2, 2),
                                      multipliers="lut")),
    ("sigmoid", UQ(4, 6), UQ(0, 8), dict(segments=4, degree=2)),
]
TAYLOR = [
    ("tanh", SQ(4, 6), SQ(1, 9), dict(order=5)),
    ("sigmoid", SQ(4, 6), UQ(0, 10), dict(order=3, centre=0.5)),     # signed offsets
    ("tanh", SQ(4, 6), SQ(1, 9), dict(order=4, centre=-1.0, multipliers="lut")),
    # An offset wider than the input (c in [-1, 1), d in [-0.5, 1.5)): c is sign-extended.
    ("sigmoid", SQ(1, 5), UQ(1, 4), dict(order=1, centre=-0.5, multipliers="lut")),
]


def _plan(case, taylor=False):
    function, fin, fout, options = case
    return (plan_taylor if taylor else plan_poly)(function, fin, fout, **options)


@pytest.mark.parametrize("case", POLY, ids=[plan_id(c) for c in POLY])
def test_every_input_code_matches_the_reference(case):
    plan = _plan(case)
    codes = plan.in_format.codes()
    run = run_stream(PolyActivation(plan), codes, stall_in=0.2, stall_out=0.3, seed=4)
    np.testing.assert_array_equal(run.outputs, poly(plan, codes))


@pytest.mark.parametrize("case", TAYLOR, ids=[plan_id(c) for c in TAYLOR])
def test_every_input_code_of_a_taylor_unit(case):
    plan = _plan(case, taylor=True)
    codes = plan.in_format.codes()
    run = run_stream(activation_core(plan), codes, stall_in=0.3, stall_out=0.2, seed=7)
    np.testing.assert_array_equal(run.outputs, poly(plan, codes))
    if plan.centre:
        assert plan.cost()["offset_signed"]      # the case exercises a signed offset
    if plan.in_format.width == 6:
        assert plan.cost()["offset_bits"] > plan.in_format.width


def test_lanes_and_timing():
    plan = plan_poly("tanh", SQ(4, 6), SQ(1, 9), segments=8, degree=3)
    codes = SQ(4, 6).codes()
    lanes = np.stack([codes, codes[::-1], np.roll(codes, 5)], axis=1)
    core = PolyActivation(plan, lanes=3)
    run = run_stream(core, lanes, stall_out=0.4, seed=1)
    np.testing.assert_array_equal(run.outputs, poly(plan, lanes))
    timing = run_stream(PolyActivation(plan), codes[:40])
    assert core.latency == 2 + poly_stages(3) == 13 and core.ii == 1
    assert set(timing.latencies.tolist()) == {13}
    assert set(np.diff(timing.in_cycles).tolist()) == {1}


def test_sixteen_bit_faithful_unit_on_all_65536_codes():
    """The benchmark's faithful 16-bit tanh (degree 2), every input code."""
    plan = plan_poly("tanh", SQ(6, 10), SQ(1, 15), segments=190, degree=2)
    assert plan.error.faithful
    codes = SQ(6, 10).codes()
    run = run_stream(PolyActivation(plan), codes)
    np.testing.assert_array_equal(run.outputs, poly(plan, codes))


def test_coefficient_words_unpack_to_the_plan():
    plan = plan_poly("sigmoid", SQ(4, 6), UQ(0, 10), segments=5, degree=3, symmetric=False)
    words, width = coefficient_words(plan)
    widths = [1 + max(max(abs(v) for v in col), 1).bit_length() for col in
              zip(*plan.coefficients)]
    assert width <= sum(widths) and all(0 <= w < 1 << width for w in words)
    columns = list(zip(*plan.coefficients))
    for word, row in zip(words, plan.coefficients):
        offset = 0
        for k, value in enumerate(row):
            col = columns[k]
            signed = min(col) < 0
            bits = (max(1, max(col).bit_length()) if not signed else
                    1 + max(max(col).bit_length(), (-min(col) - 1).bit_length()))
            field = (word >> offset) & ((1 << bits) - 1)
            if signed and field >> (bits - 1):
                field -= 1 << bits
            assert field == value
            offset += bits
        assert offset == width


def test_poly_core_rejects_other_plans():
    plan = plan_lut("tanh", SQ(3, 3), SQ(1, 7))
    message = (f"plan must be a PolyPlan (see hwnn.plans.activation.plan_activation), "
               f"not {plan!r}")
    with pytest.raises(ParameterTypeError, match=re.escape(message) + "$") as info:
        PolyActivation(plan)
    assert info.value.parameter == "plan"


def test_exports_verilog():
    plan = plan_taylor("sigmoid", SQ(4, 6), UQ(0, 10), order=3, centre=0.5)
    text = verilog.convert(PolyActivation(plan, lanes=2), name="act")
    assert "module act" in text and "i__payload" in text


def test_multipliers_go_where_the_plan_says():
    """On the UP5K, ``dsp`` products are SB_MAC16 blocks (one per Horner step) and ``lut``
    products use none."""
    dsp = plan_poly("tanh", SQ(6, 10), SQ(1, 15), segments=16, degree=2)
    lut = plan_poly("tanh", SQ(6, 10), SQ(1, 15), segments=16, degree=2, multipliers="lut")
    assert dsp.coefficients == lut.coefficients
    on_dsp = synthesize(PolyActivation(dsp), "ice40-up5k", name="act")
    in_logic = synthesize(PolyActivation(lut), "ice40-up5k", name="act")
    assert on_dsp.dsps == 2 and in_logic.dsps == 0
    assert in_logic.luts > on_dsp.luts
