import numpy as np
import pytest

from hwnn.plans.lut import plan_lut
from hwnn.ref.lut import lut
from lut_helpers import PLANS


def independent_lut(plan, q):
    """The documented semantics, one code at a time with Python ints."""
    out = []
    for code in q.tolist():
        negative = plan.symmetric and code < 0
        c = -code if negative else code
        index = (min(max(c, plan.lo), plan.hi) - plan.lo) >> plan.shift
        y = plan.table[index]
        if negative:
            if plan.function.name == "tanh":
                y = -y
            else:
                y = (1 << plan.out_format.f) - y
            y = min(max(y, plan.out_format.min_int), plan.out_format.max_int)
        out.append(y)
    return np.array(out)


@pytest.mark.parametrize("function, fin, fout, options", PLANS)
def test_reference_follows_the_documented_semantics(function, fin, fout, options):
    plan = plan_lut(function, fin, fout, **options)
    codes = fin.codes()
    np.testing.assert_array_equal(lut(plan, codes), independent_lut(plan, codes))
