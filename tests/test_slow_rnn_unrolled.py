"""10⁵ time steps of the unrolled recurrent core (a GRU(2→4), 8 bits, lut, 2 cuts) through a
compiled engine, with stalls on both sides, bit-exact against the reference. Marked ``slow``
like tests/test_slow_rnn.py, whose streams it shares. One small layer: the C++ compile of a
whole step as one expression grows fast with its size (LSTM and GRU(4→8) took 13 minutes
together on 2 cores; an LSTM(2→4) 85 s), and the suite has 20 minutes. LSTM, both GRUs and
every activation method run on the Python simulator in tests/test_cores_recurrent_unrolled.py,
and 10⁵ steps of each kind on the stream core in tests/test_slow_rnn.py."""

import numpy as np
import pytest

from hwnn.cores.recurrent_unrolled import UnrolledRecurrent
from hwnn.fixed import SQ
from hwnn.plans.rnn import plan_recurrent
from hwnn.sim import run_stream
from test_plans_rnn import weights
from test_slow_engines import ENGINE, STALL_IN, STALL_OUT, pytestmark  # noqa: F401
from test_slow_rnn import STEPS, long_stream


@pytest.mark.parametrize("kind, method, cuts", [("gru", "lut", 2)])
def test_a_hundred_thousand_steps(kind, method, cuts):
    plan = plan_recurrent(kind, *weights(kind, hidden=4, inputs=2, seed=21),
                          in_format=SQ(1, 7), bits=8, method=method)
    core = UnrolledRecurrent(plan, cuts=cuts)
    stream, want = long_stream(plan, seed=22)
    assert len(want) >= 0.95 * STEPS
    cycles = int(2 * len(want) * core.step_cycles / (1 - max(STALL_IN, STALL_OUT))) + 1000
    run = run_stream(core, stream, n_outputs=len(want), stall_in=STALL_IN, stall_out=STALL_OUT,
                     seed=23, engine=ENGINE, max_cycles=cycles)
    assert run.engine == ENGINE
    np.testing.assert_array_equal(run.outputs["data"], want)
    np.testing.assert_array_equal(run.outputs["last"], stream["last"])
