# amaranth: UnusedElaboratable=no
import re

import numpy as np
import pytest
from amaranth.back import verilog

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.cores.dense import Dense
from hwnn.fixed import SQ, UQ
from hwnn.plans.dense import plan_dense
from hwnn.ref.dense import dense
from hwnn.sim import make_vectors, run_stream


def make_plan(n_out, n_in, in_format=SQ(1, 7), weight_format=SQ(1, 7), out_format=SQ(3, 5),
              rounding="half_up", overflow="sat", seed=0, zeros=0.0):
    rng = np.random.default_rng(seed)
    weight = rng.uniform(-1, 1, (n_out, n_in)) * (rng.random((n_out, n_in)) >= zeros)
    return plan_dense(weight, rng.uniform(-0.5, 0.5, n_out), in_format=in_format,
                      weight_format=weight_format, out_format=out_format, rounding=rounding,
                      overflow=overflow, saturate_weights=True)


CASES = [
    # n_out, n_in, formats and modes, parallelism
    dict(n_out=3, n_in=5, parallelism=1),
    dict(n_out=3, n_in=5, parallelism=4),
    dict(n_out=3, n_in=5, parallelism=15),
    dict(n_out=4, n_in=4, parallelism=4, rounding="half_even", overflow="wrap"),
    dict(n_out=4, n_in=4, parallelism=7, rounding="trunc", out_format=SQ(1, 7)),
    dict(n_out=2, n_in=7, parallelism=3, in_format=UQ(2, 4), out_format=UQ(3, 4)),
    dict(n_out=5, n_in=3, parallelism=2, in_format=SQ(3, 3), weight_format=SQ(2, 4),
         out_format=SQ(4, 2), rounding="half_even"),
    dict(n_out=1, n_in=1, parallelism=1),
    dict(n_out=6, n_in=2, parallelism=12, weight_format=UQ(1, 5), in_format=UQ(1, 5),
         out_format=UQ(2, 3), overflow="wrap"),
    dict(n_out=3, n_in=6, parallelism=5, zeros=0.5, out_format=SQ(2, 2)),
]


def case_id(case):
    return "-".join(f"{k}={v}" for k, v in case.items())


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_dense_equals_reference_with_stalls(case):
    case = dict(case)
    parallelism = case.pop("parallelism")
    plan = make_plan(**case)
    x = make_vectors(plan.in_format, plan.n_in, 60, seed=1)
    for stall_in, stall_out in [(0.0, 0.0), (0.4, 0.5)]:
        run = run_stream(Dense(plan, parallelism=parallelism), x, stall_in=stall_in,
                         stall_out=stall_out, seed=parallelism)
        np.testing.assert_array_equal(run.outputs, dense(plan, x))


@pytest.mark.parametrize("n_out, n_in, parallelism", [(3, 5, 1), (3, 5, 2), (3, 5, 15),
                                                      (4, 4, 4), (2, 3, 5)])
def test_latency_and_ii_are_what_simulation_shows(n_out, n_in, parallelism):
    plan = make_plan(n_out, n_in)
    core = Dense(plan, parallelism=parallelism)
    assert core.ii == -(-n_out * n_in // parallelism)
    assert core.latency == core.ii + 4
    run = run_stream(core, make_vectors(plan.in_format, n_in, 12))
    assert set(run.latencies.tolist()) == {core.latency}
    assert set(np.diff(run.in_cycles).tolist()) == {core.ii}
    assert set(np.diff(run.out_cycles).tolist()) == {core.ii}


def test_output_backpressure_never_drops_or_duplicates():
    plan = make_plan(3, 4)
    x = make_vectors(plan.in_format, 4, 40, seed=9)
    core = Dense(plan, parallelism=12)
    run = run_stream(core, x, stall_out=0.9, seed=5)
    np.testing.assert_array_equal(run.outputs, dense(plan, x))


def test_rows_leave_one_at_a_time():
    plan = make_plan(3, 5)
    x = make_vectors(plan.in_format, 5, 20, seed=4)
    core = Dense(plan, rows=True)
    assert core.rows and not Dense(plan).rows and core.latency == Dense(plan).latency
    run = run_stream(core, x, n_outputs=3 * len(x), stall_in=0.3, stall_out=0.3, seed=2)
    np.testing.assert_array_equal(run.outputs, dense(plan, x).reshape(-1, 1))


def test_properties():
    plan = make_plan(3, 5)
    core = Dense(plan, parallelism=7)
    assert core.plan is plan and core.parallelism == 7 and core.multipliers == 5
    assert core.in_format == SQ(1, 7) and core.out_format == SQ(3, 5)


def test_dense_parameter_errors():
    plan = make_plan(2, 3)
    cases = [
        (dict(plan="weights.npz"), ParameterTypeError, "plan",
         "plan must be a DensePlan (see hwnn.plans.dense.plan_dense), not 'weights.npz'"),
        (dict(plan=plan, parallelism=0), ParameterValueError, "parallelism",
         "parallelism must be an integer between 1 and 6, not 0"),
        (dict(plan=plan, parallelism=7), ParameterValueError, "parallelism",
         "parallelism must be an integer between 1 and 6, not 7"),
        (dict(plan=plan, parallelism="2"), ParameterTypeError, "parallelism",
         "parallelism must be an integer between 1 and 6, not '2'"),
        (dict(plan=plan, rows="yes"), ParameterTypeError, "rows",
         "rows must be True or False, not 'yes'"),
        (dict(plan=plan, arith="mcm", rows=True), ParameterValueError, "rows",
         "rows applies to arith 'mult' (a folded MAC on one multiplier), not to arith 'mcm'"),
    ]
    for kwargs, error, parameter, message in cases:
        with pytest.raises(error, match=re.escape(message) + "$") as info:
            Dense(**kwargs)
        assert info.value.parameter == parameter


def test_dense_exports_verilog_with_stream_port_names():
    core = Dense(make_plan(2, 3), parallelism=2)
    text = verilog.convert(core, name="fc1")
    for port in ["clk", "rst", "i__payload", "i__valid", "i__ready", "o__payload", "o__valid",
                 "o__ready"]:
        assert port in text
    assert "module fc1" in text
