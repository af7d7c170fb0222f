import dataclasses
import itertools
import re

import numpy as np
import pytest

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.fixed import MAX_WIDTH, SQ, UQ, Format, Overflow, Rounding
from hwnn.plans.elementwise import OPS, ElementwisePlan, exact_format, plan_elementwise

SMALL_FORMATS = [SQ(2, 2), SQ(3, 0), SQ(1, 3), UQ(2, 2), UQ(1, 0), UQ(3, -1), SQ(4, -2),
                 UQ(-1, 3)]


def exact_results(op, a, b):
    """Every ``a ⊙ b`` as an integer at the scale 2**-f, on Python ints, and that ``f``."""
    f = a.f + b.f if op == "mul" else max(a.f, b.f)
    results = set()
    for x, y in itertools.product(range(a.min_int, a.max_int + 1),
                                  range(b.min_int, b.max_int + 1)):
        if op == "mul":
            results.add(x * y)
        else:
            x, y = x * 2 ** (f - a.f), y * 2 ** (f - b.f)
            results.add(x + y if op == "add" else x - y)
    return results, f


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("a, b", list(itertools.product(SMALL_FORMATS, repeat=2)))
def test_exact_format_is_the_narrowest_that_holds_every_result(op, a, b):
    results, f = exact_results(op, a, b)
    full = exact_format(op, a, b)
    assert full.f == f
    assert full.signed == (min(results) < 0)
    assert full.contains(np.array(sorted(results))).all()
    # One integer bit fewer loses a result (or would not be a format at all).
    if full.width > (2 if full.signed else 1):
        narrower = Format(full.signed, full.i - 1, full.f)
        assert not narrower.contains(np.array(sorted(results))).all()


@pytest.mark.parametrize("op, a, b, expected", [
    ("mul", SQ(2, 2), SQ(2, 2), SQ(4, 4)),     # widths add: min·min needs every bit
    ("mul", UQ(2, 2), UQ(3, 1), UQ(5, 3)),
    ("mul", SQ(1, 7), UQ(0, 8), SQ(1, 15)),    # a gate in [0, 1) times a signed value
    ("mul", SQ(3, 1), UQ(1, 0), SQ(3, 1)),     # a 1-bit mask adds no bit
    ("add", SQ(2, 2), SQ(2, 2), SQ(3, 2)),     # one more integer bit
    ("add", SQ(4, 8), SQ(2, 14), SQ(5, 14)),   # aligned to the larger fraction
    ("add", UQ(2, 0), UQ(2, 0), UQ(3, 0)),
    ("add", SQ(2, 0), UQ(2, 0), SQ(4, 0)),     # an unsigned operand needs a sign bit too
    ("sub", UQ(2, 0), UQ(2, 0), SQ(3, 0)),     # UQ - UQ: a sign bit, no more
    ("sub", SQ(2, 0), UQ(2, 0), SQ(4, 0)),
    ("sub", UQ(2, 2), UQ(3, 0), SQ(4, 2)),
    ("mul", SQ(31, 0), SQ(31, 0), SQ(62, 0)),  # the widest exact product
])
def test_exact_format_examples(op, a, b, expected):
    assert exact_format(op, a, b) == expected


def test_plan_derives_the_exact_format_and_the_alignment():
    plan = plan_elementwise("add", "SQ(4,8)", "SQ(2,14)", "SQ(4,8)")
    assert plan.full_format == SQ(5, 14)
    assert (plan.a_shift, plan.b_shift) == (6, 0)
    assert plan.requantize_shift == 6
    product = plan_elementwise("mul", SQ(4, 8), SQ(2, 14), SQ(4, 8))
    assert product.full_format == SQ(6, 22)
    assert (product.a_shift, product.b_shift, product.requantize_shift) == (0, 0, 14)


def test_plan_defaults_and_normalization():
    plan = plan_elementwise("mul", "uq(0,8)", SQ(4, 8), "SQ(4,8)", lanes=np.int64(3),
                            constant=np.array([-2048, 0, 2047]), rounding="HALF_EVEN",
                            overflow="wrap")
    assert plan.a_format == UQ(0, 8) and plan.out_format == SQ(4, 8)
    assert plan.lanes == 3 and type(plan.lanes) is int
    assert plan.constant == (-2048, 0, 2047)
    assert all(type(code) is int for code in plan.constant)
    assert plan.rounding is Rounding.HALF_EVEN and plan.overflow is Overflow.WRAP
    assert plan.streams == 1
    default = plan_elementwise("add", SQ(2, 2), SQ(2, 2), SQ(2, 2))
    assert (default.lanes, default.constant, default.streams) == (1, None, 2)
    assert (default.rounding, default.overflow) == (Rounding.HALF_UP, Overflow.SAT)


def test_plan_is_frozen_and_equal_by_value():
    plan = plan_elementwise("sub", SQ(2, 2), SQ(2, 2), SQ(2, 2), lanes=2, constant=[1, -1])
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.op = "add"
    assert plan == ElementwisePlan("sub", SQ(2, 2), SQ(2, 2), SQ(2, 2), lanes=2,
                                   constant=(1, -1))
    assert hash(plan) == hash(ElementwisePlan("sub", "SQ(2,2)", "SQ(2,2)", "SQ(2,2)", lanes=2,
                                              constant=(1, -1)))


def test_describe():
    plan = plan_elementwise("mul", UQ(0, 8), SQ(4, 8), SQ(4, 8), lanes=2, constant=[3, -3],
                            rounding="trunc")
    assert plan.describe() == {
        "op": "mul", "lanes": 2, "a_format": "UQ(0, 8)", "b_format": "SQ(4, 8)",
        "full_format": "SQ(4, 16)", "out_format": "SQ(4, 8)", "rounding": "trunc",
        "overflow": "sat", "constant": [3, -3]}
    assert plan_elementwise("add", SQ(2, 2), SQ(2, 2), SQ(2, 2)).describe()["constant"] is None


def test_the_widest_left_shift_is_accepted():
    plan = plan_elementwise("add", SQ(2, 0), SQ(2, 0), SQ(2, 60))
    assert plan.full_format == SQ(3, 0)


def rejects(error, parameter, message, *args, **kwargs):
    with pytest.raises(error, match=re.escape(message) + "$") as info:
        plan_elementwise(*args, **kwargs)
    assert info.value.parameter == parameter


GOOD = ("mul", SQ(2, 2), SQ(2, 2), SQ(2, 2))


@pytest.mark.parametrize("error, parameter, message, args, kwargs", [
    (ParameterValueError, "op", "op must be one of mul | add | sub, not 'div'",
     ("div",) + GOOD[1:], {}),
    (ParameterTypeError, "op", "op must be one of mul | add | sub, not 3", (3,) + GOOD[1:], {}),
    (ParameterTypeError, "a_format", "a_format must be a Format (SQ/UQ) or a format string, "
     "not 8", ("mul", 8, SQ(2, 2), SQ(2, 2)), {}),
    (ParameterValueError, "b_format", "b_format must be a format like 'SQ(4,12)' or "
     "'UQ(0,8)', not 'SQ(x)'", ("mul", SQ(2, 2), "SQ(x)", SQ(2, 2)), {}),
    (ParameterTypeError, "out_format", "out_format must be a Format (SQ/UQ) or a format "
     "string, not None", ("mul", SQ(2, 2), SQ(2, 2), None), {}),
    (ParameterValueError, "lanes", "lanes must be a positive integer, not 0", GOOD,
     {"lanes": 0}),
    (ParameterTypeError, "lanes", "lanes must be a positive integer, not '2'", GOOD,
     {"lanes": "2"}),
    (ParameterTypeError, "lanes", "lanes must be a positive integer, not True", GOOD,
     {"lanes": True}),
    (ParameterValueError, "rounding", "rounding must be one of trunc | half_up | half_even, "
     "not 'nearest'", GOOD, {"rounding": "nearest"}),
    (ParameterTypeError, "overflow", "overflow must be one of wrap | sat (or a member of "
     "Overflow), not 1", GOOD, {"overflow": 1}),
    (ParameterValueError, "b_format", f"b_format must keep the exact mul with a_format "
     f"SQ(31, 0) within {MAX_WIDTH} bits (it would need 63), not SQ(32, 0)",
     ("mul", SQ(31, 0), SQ(32, 0), SQ(8, 0)), {}),
    (ParameterValueError, "b_format", f"b_format must keep the exact add with a_format "
     f"SQ(2, 60) within {MAX_WIDTH} bits (it would need 63), not SQ(2, 60)",
     ("add", SQ(2, 60), SQ(2, 60), SQ(8, 0)), {}),
    (ParameterValueError, "out_format", "out_format must have at most 60 fraction bits (the "
     "exact add is SQ(3, 0), and int64 must hold it shifted to them), not SQ(-55, 61)",
     ("add", SQ(2, 0), SQ(2, 0), SQ(-55, 61)), {}),
    (ParameterTypeError, "constant", "constant must be a sequence of 2 integer codes of "
     "b_format SQ(2, 2) or None, not 5", GOOD, {"lanes": 2, "constant": 5}),
    (ParameterTypeError, "constant", "constant must be a sequence of 1 integer codes of "
     "b_format SQ(2, 2) or None, not '1'", GOOD, {"constant": "1"}),
    (ParameterValueError, "constant", "constant must be a sequence of 2 integer codes of "
     "b_format SQ(2, 2) (one per lane), not 3 codes: [1, 2, 3]", GOOD,
     {"lanes": 2, "constant": [1, 2, 3]}),
    (ParameterTypeError, "constant", "constant[1] must be a code of b_format SQ(2, 2) (an "
     "integer between -8 and 7), not 0.5",
     GOOD, {"lanes": 2, "constant": [1, 0.5]}),
    (ParameterTypeError, "constant", "constant[0] must be a code of b_format SQ(2, 2) (an "
     "integer between -8 and 7), not True", GOOD, {"constant": [True]}),
    (ParameterValueError, "constant", "constant[0] must be a code of b_format SQ(2, 2) (an "
     "integer between -8 and 7), not 8", GOOD, {"lanes": 2, "constant": [8, 0]}),
])
def test_parameter_errors(error, parameter, message, args, kwargs):
    rejects(error, parameter, message, *args, **kwargs)


def test_direct_construction_checks_too():
    with pytest.raises(ParameterValueError, match=re.escape(
            "lanes must be a positive integer, not -1") + "$"):
        ElementwisePlan("add", SQ(2, 2), SQ(2, 2), SQ(2, 2), lanes=-1)
