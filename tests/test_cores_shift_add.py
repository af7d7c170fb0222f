# amaranth: UnusedElaboratable=no
"""Dense with shift-add arithmetic (arith "csd" / "mcm"): bit-exact with the one reference."""

import json
import re

import numpy as np
import pytest

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.cores.dense import Dense
from hwnn.cores.shift_add import graph_stages
from hwnn.export import export
from hwnn.fixed import SQ, UQ, Rounding
from hwnn.plans.shift_add.csd import csd
from hwnn.plans.dense import plan_dense
from hwnn.ref.dense import dense
from hwnn.sim import make_vectors, run_stream
from test_cores_dense import case_id, make_plan

CASES = [
    dict(n_out=3, n_in=5, arith="csd", pipeline=0),
    dict(n_out=3, n_in=5, arith="mcm", pipeline=1),
    dict(n_out=4, n_in=4, arith="mcm", pipeline=2, rounding="half_even", overflow="wrap"),
    dict(n_out=4, n_in=4, arith="csd", pipeline=3, rounding="trunc", out_format=SQ(1, 7)),
    dict(n_out=2, n_in=7, arith="mcm", pipeline=1, in_format=UQ(2, 4), out_format=UQ(3, 4)),
    dict(n_out=5, n_in=3, arith="mcm", pipeline=0, in_format=SQ(3, 3), weight_format=SQ(2, 4),
         out_format=SQ(4, 2), rounding="half_even"),
    dict(n_out=1, n_in=1, arith="mcm", pipeline=1),
    dict(n_out=6, n_in=2, arith="csd", pipeline=2, weight_format=UQ(1, 5), in_format=UQ(1, 5),
         out_format=UQ(2, 3), overflow="wrap"),
    dict(n_out=3, n_in=6, arith="mcm", pipeline=2, zeros=0.5, out_format=SQ(2, 2)),
    dict(n_out=8, n_in=8, arith="mcm", pipeline=1, weight_format=SQ(1, 3), zeros=0.3),
]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_shift_add_dense_equals_reference_with_stalls(case):
    case = dict(case)
    arith, pipeline = case.pop("arith"), case.pop("pipeline")
    plan = make_plan(**case)
    x = make_vectors(plan.in_format, plan.n_in, 60, seed=1)
    for stall_in, stall_out in [(0.0, 0.0), (0.4, 0.5)]:
        run = run_stream(Dense(plan, arith=arith, pipeline=pipeline), x, stall_in=stall_in,
                         stall_out=stall_out, seed=pipeline)
        np.testing.assert_array_equal(run.outputs, dense(plan, x))


def test_every_arith_matches_one_reference_on_random_matrices():
    rng = np.random.default_rng(7)
    for trial in range(4):
        n_out, n_in = rng.integers(1, 7, 2)
        weight = rng.integers(-8, 8, (n_out, n_in)) * (rng.random((n_out, n_in)) > 0.3) / 8
        plan = plan_dense(weight, rng.uniform(-1, 1, n_out), in_format=SQ(2, 4),
                          weight_format=SQ(1, 3), out_format=SQ(3, 3),
                          rounding=list(Rounding)[trial % 3], overflow="sat")
        x = make_vectors(plan.in_format, plan.n_in, 30, seed=trial)
        expected = dense(plan, x)
        for core in (Dense(plan), Dense(plan, arith="csd", pipeline=1),
                     Dense(plan, arith="mcm", pipeline=0)):
            np.testing.assert_array_equal(run_stream(core, x).outputs, expected)


def test_zero_and_repeated_weights():
    weight = np.array([[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, -0.5], [0, 0, 0.25]])
    plan = plan_dense(weight, [0.25, 0, 0, 0], in_format=SQ(1, 7), weight_format=SQ(1, 7),
                      out_format=SQ(3, 5))
    core = Dense(plan, arith="mcm")
    x = make_vectors(plan.in_format, 3, 40, seed=3)
    np.testing.assert_array_equal(run_stream(core, x).outputs, dense(plan, x))
    assert core.graph.outputs[0].is_zero
    # Powers of two are wiring: only the sums cost adders (2 for row 1, 1 for row 2).
    assert core.graph.adders == 3


@pytest.mark.parametrize("pipeline", [0, 1, 2, 3])
def test_latency_and_full_throughput(pipeline):
    plan = make_plan(4, 6, seed=2)
    core = Dense(plan, arith="mcm", pipeline=pipeline)
    assert core.ii == 1 and core.multipliers == 0
    # make_plan rounds half-up and saturates: with pipelining the bias sum gets its own stage.
    assert core.latency == 3 + graph_stages(core.graph.depth, pipeline) + (pipeline > 0)
    assert core.latency == (3 if pipeline == 0 else 4 + -(-core.graph.depth // pipeline))
    run = run_stream(core, make_vectors(plan.in_format, 6, 20))
    assert set(run.latencies.tolist()) == {core.latency}
    assert set(np.diff(run.in_cycles).tolist()) == {1}
    assert set(np.diff(run.out_cycles).tolist()) == {1}


def test_describe_reports_the_graph():
    core = Dense(make_plan(3, 4), arith="csd", pipeline=1)
    info = core.describe()
    assert info["arith"] == "csd" and info["pipeline"] == 1 and info["multipliers"] == 0
    assert info["graph"]["adders"] == core.graph.adders
    assert info["graph"]["nabs"] == core.graph.adders + core.graph.shifts
    assert Dense(make_plan(3, 4)).describe()["arith"] == "mult"


def test_mcm_needs_no_more_adders_than_csd():
    plan = make_plan(8, 8, weight_format=SQ(1, 7), seed=5)
    assert Dense(plan, arith="mcm").graph.adders <= Dense(plan, arith="csd").graph.adders


@pytest.mark.synth
@pytest.mark.parametrize("arith", ["csd", "mcm"])
def test_netlist_holds_exactly_the_reported_adders_and_no_multiplier(arith):
    from hwnn.synth import coarse_cells
    plan = make_plan(4, 5, rounding="half_even", seed=3)
    core = Dense(plan, arith=arith, pipeline=1)
    cells = coarse_cells(core)
    rounding_incrementers = plan.n_out      # half-even rounding adds one per output
    assert cells.get("$add", 0) + cells.get("$sub", 0) == (
        core.graph.adders + core.output_adders + rounding_incrementers)
    assert not {"$mul", "$macc", "$neg", "$alu"} & set(cells)


@pytest.mark.synth
def test_shift_add_synthesizes_without_dsp():
    from hwnn.synth import synthesize
    plan = make_plan(4, 4, seed=1)
    report = synthesize(Dense(plan, arith="mcm", pipeline=1), "ice40-up5k", name="fc")
    assert report.dsps == 0 and report.carries > 0


def test_export_manifest(tmp_path):
    core = Dense(make_plan(2, 3), arith="mcm", pipeline=1)
    paths = export(core, "fc_sa", tmp_path)
    info = json.loads(paths["manifest"].read_text())
    assert info["latency"] == core.latency and info["ii"] == 1
    assert info["core"]["arith"] == "mcm"
    assert info["core"]["graph"]["adders"] == core.graph.adders
    assert paths["verilog"].read_text().count("module fc_sa") == 1


def test_parameter_errors():
    plan = make_plan(2, 3)
    cases = [
        (dict(arith="dsp"), ParameterValueError, "arith",
         "arith must be one of mult | csd | mcm, not 'dsp'"),
        (dict(arith="mcm", pipeline=-1), ParameterValueError, "pipeline",
         "pipeline must be a non-negative integer, not -1"),
        (dict(arith="csd", pipeline=1.5), ParameterTypeError, "pipeline",
         "pipeline must be a non-negative integer, not 1.5"),
        (dict(pipeline=1), ParameterValueError, "pipeline",
         "pipeline applies to shift-add arithmetic (arith 'csd' or 'mcm'), not to arith "
         "'mult'; got pipeline=1"),
        (dict(arith="mcm", parallelism=2), ParameterValueError, "parallelism",
         "arith 'mcm' is fully parallel (one vector per cycle); parallelism applies to arith "
         "'mult' only, got parallelism=2"),
        (dict(always_ready=True), ParameterValueError, "always_ready",
         "always_ready needs a core that takes a vector every cycle whatever happens "
         "downstream: arith 'csd' or 'mcm', not 'mult'"),
        (dict(arith="mcm", always_ready=1), ParameterTypeError, "always_ready",
         "always_ready must be True or False, not 1"),
    ]
    for kwargs, error, parameter, message in cases:
        with pytest.raises(error, match=re.escape(message) + "$") as info:
            Dense(plan, **kwargs)
        assert info.value.parameter == parameter


@pytest.mark.parametrize("quantizer, terms", [("pot", 1), ("pot2", 2)])
def test_power_of_two_weights_cost_at_most_their_terms(quantizer, terms):
    rng = np.random.default_rng(11)
    plan = plan_dense(rng.uniform(-1, 1, (4, 6)), rng.uniform(-1, 1, 4), in_format=SQ(1, 7),
                      weight_format=SQ(1, 7), out_format=SQ(3, 5), weight_quantizer=quantizer,
                      saturate_weights=True)
    core = Dense(plan, arith="csd", pipeline=1)
    # A pot weight is a shift (no adder), a pot2 weight one adder; each output sums its terms.
    digits = [sum(len(csd(int(w))) for w in row) for row in plan.weight]
    assert all(len(csd(int(w))) <= terms for w in plan.weight.ravel())
    assert core.graph.adders <= sum(d - 1 for d in digits if d)
    x = make_vectors(plan.in_format, plan.n_in, 40, seed=2)
    np.testing.assert_array_equal(run_stream(core, x, stall_out=0.3).outputs, dense(plan, x))


def _subtracted_bits(graph, p):
    bits = 0
    for k in range(graph.n_in, len(graph.nodes)):
        n = graph.nodes[k]
        first, second = p[k] * n.sa * p[n.a], p[k] * n.sb * p[n.b]
        assert first > 0 or second > 0            # never two negative operands
        if first < 0 or second < 0:
            bits += graph.nodes[n.a if first < 0 else n.b].width
    return bits + sum(graph.nodes[o.node].width for o in graph.outputs
                      if o.node is not None and o.sign * p[o.node] < 0)


def test_polarities_subtract_fewer_bits():
    from hwnn.cores.shift_add import polarities
    from hwnn.plans.shift_add import build
    weight = np.random.default_rng(101).integers(-128, 128, (16, 16))
    graph = build(weight, (-128, 127), method="cse")
    p = polarities(graph)
    assert set(p) <= {1, -1} and p[:graph.n_in] == [1] * graph.n_in
    before, after = _subtracted_bits(graph, [1] * len(p)), _subtracted_bits(graph, p)
    assert after < 0.65 * before
    # Steered away from negated outputs where each would cost an adder of its own.
    heavy = polarities(graph, [4 * graph.nodes[o.node].width for o in graph.outputs])
    negated = sum(o.sign * heavy[o.node] < 0 for o in graph.outputs)
    assert negated < sum(o.sign * p[o.node] < 0 for o in graph.outputs)


@pytest.mark.parametrize("always_ready", [False, True])
def test_exact_output_needs_no_requantize_stage(always_ready):
    plan = make_plan(3, 4, rounding="trunc", overflow="wrap", seed=6)
    exact = plan_dense(plan.weight_float(), plan.bias_float(), in_format=plan.in_format,
                       weight_format=plan.weight_format, out_format=plan.acc_format)
    core = Dense(exact, arith="mcm", pipeline=1, always_ready=always_ready)
    assert core.latency == 3 + core.graph.depth - always_ready
    run = run_stream(core, make_vectors(exact.in_format, 4, 30), stall_in=0.3)
    np.testing.assert_array_equal(run.outputs, dense(exact, make_vectors(exact.in_format, 4, 30)))
    assert set(run.latencies.tolist()) == {core.latency}


def test_always_ready_streams_have_no_ready_port(tmp_path):
    core = Dense(make_plan(3, 4), arith="csd", pipeline=1, always_ready=True)
    assert core.i.signature.always_ready and core.o.signature.always_ready
    paths = export(core, "fc_free", tmp_path)
    text = paths["verilog"].read_text()
    assert "o__ready" not in text and "i__ready" not in text and "o__valid" in text
    names = [p["name"] for p in json.loads(paths["manifest"].read_text())["ports"]]
    assert "o__ready" not in names and "o__valid" in names
    with pytest.raises(ValueError, match=r"^stall_out must be 0 for an always_ready output "
                                         r"stream, not 0\.5$"):
        run_stream(core, make_vectors(core.plan.in_format, 4, 3), stall_out=0.5)


@pytest.mark.synth
def test_always_ready_saves_the_skid_register():
    from hwnn.synth import synthesize
    plan = make_plan(3, 4, seed=2)
    free = synthesize(Dense(plan, arith="mcm", always_ready=True), "ice40-up5k", name="fc",
                      fmax=True)
    stream = synthesize(Dense(plan, arith="mcm"), "ice40-up5k", name="fc")
    out_bits = plan.n_out * plan.out_format.width
    assert stream.ffs - free.ffs >= out_bits and free.fmax_mhz > 0
