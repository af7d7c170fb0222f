# amaranth: UnusedElaboratable=no
"""The last-step core: one vector per sequence, under stalls, with its timing model."""

import numpy as np
import pytest

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.cores.last import LastStep
from hwnn.export import core_verilog
from hwnn.fixed import SQ
from hwnn.plans.pool import plan_flatten, plan_last_step
from hwnn.sim import run_stream
from sequences import random_sequences


@pytest.mark.parametrize("channels, stall", [(1, 0.0), (3, 0.4)])
def test_each_sequence_gives_its_last_step(channels, stall):
    core = LastStep(plan_last_step(channels, 4), SQ(2, 6))
    lengths = [4, 1, 7, 2, 2]
    xs, stream = random_sequences(SQ(2, 6), channels, lengths, seed=channels)
    run = run_stream(core, stream, n_outputs=len(xs), stall_in=stall, stall_out=stall, seed=3)
    want = np.stack([x[-1] for x in xs])
    np.testing.assert_array_equal(np.asarray(run.outputs).reshape(want.shape), want)
    if stall == 0:
        in_cycles, out_cycles = core.schedule(lengths)
        np.testing.assert_array_equal(run.in_cycles, in_cycles)
        np.testing.assert_array_equal(run.out_cycles, out_cycles)
        assert list(out_cycles) == list(np.cumsum(lengths))   # a step a cycle, +1 latency


def test_schedule_skips_empty_sequences_and_waits_for_arrivals():
    core = LastStep(plan_last_step(2, 3), SQ(1, 7))
    ins, outs = core.schedule([2, 0, 1], [0, 5, 5])
    assert list(ins) == [0, 5, 6] and list(outs) == [6, 7]
    with pytest.raises(ValueError, match="arrivals must be 3 non-decreasing"):
        core.schedule([3], [2, 1, 3])


def test_parameter_errors_name_the_parameter():
    with pytest.raises(ParameterTypeError, match="plan must be a LastStepPlan, not FlattenPlan"):
        LastStep(plan_flatten(2, 2), SQ(1, 7))
    with pytest.raises(ParameterValueError, match="channels"):
        plan_last_step(0, 2)
    with pytest.raises(ParameterValueError, match="steps"):
        plan_last_step(2, 0)


def test_exports_verilog():
    text = core_verilog(LastStep(plan_last_step(2, 3), SQ(1, 7)), "last_step")
    assert "module last_step" in text
