"""Partitions to plans (hwnn.plans.pwl.select): optimal breakpoints never lose to uniform."""

import numpy as np
import pytest

from hwnn.fixed import SQ, UQ
from hwnn.plans.pwl import plan_pwl


@pytest.mark.parametrize("function, fout", [("sigmoid", UQ(0, 8)), ("sigmoid", UQ(0, 16)),
                                            ("tanh", SQ(1, 7)), ("tanh", SQ(1, 15))])
def test_optimal_breakpoints_never_lose_to_uniform(function, fout):
    row = []
    previous = np.inf
    for segments in (8, 16, 32):
        uniform = plan_pwl(function, SQ(6, 10), fout, segments=segments, breakpoints="uniform")
        optimal = plan_pwl(function, SQ(6, 10), fout, segments=segments)
        assert optimal.error.max_abs <= uniform.error.max_abs
        assert optimal.segments <= segments and uniform.segments <= segments
        assert optimal.error.max_abs <= previous
        previous = optimal.error.max_abs
        row.append(f"{segments}: uniform {uniform.error.max_abs:.3g} ({uniform.segments} seg) "
                   f"optimal {optimal.error.max_abs:.3g} ({optimal.segments} seg)")
    print(f"\n{function} SQ(6,10) -> {fout}: " + "; ".join(row))
