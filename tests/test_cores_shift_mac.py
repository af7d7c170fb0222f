# amaranth: UnusedElaboratable=no
import json
import re

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.hdl import Value
from amaranth.sim import Simulator

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.cores.shift_mac import ShiftMac
from hwnn.export import export
from hwnn.fixed import SQ, UQ
from hwnn.plans.dense import DensePlan
from hwnn.plans.shift_mac import plan_shift_mac
from hwnn.ref.dense import dense
from hwnn.ref.shift_mac import shift_mac
from hwnn.sim import PayloadCodec, make_vectors, run_stream


def make_plan(n_in, n_out, in_format=SQ(1, 7), weight_format=SQ(1, 7), out_format=SQ(3, 5),
              terms=1, seed=0, **kwargs):
    rng = np.random.default_rng(seed)
    return plan_shift_mac(n_in, n_out, in_format=in_format, weight_format=weight_format,
                          out_format=out_format, weight_terms=terms,
                          bias=rng.uniform(-0.5, 0.5, n_out), **kwargs)


def random_weights(plan, seed):
    rng = np.random.default_rng(seed)
    real = rng.uniform(-1.2, 1.2, (plan.n_out, plan.n_in)) * plan.weight_format.max
    real *= rng.random(real.shape) >= 0.2  # some exact zeros
    return plan.code.quantize(real)


def loads_of(plan, weight, addrs=None):
    """(addr, word) transfers that load ``weight`` at ``addrs`` (default: all, in order)."""
    flat = plan.code.encode(weight).reshape(-1)
    addrs = range(plan.products) if addrs is None else addrs
    return [(int(a), int(flat[a])) for a in addrs]


def simulate(core, script, *, stall_in=0.0, stall_weight=0.0, stall_out=0.0, seed=0,
             sequential=True, delay=None, max_cycles=20000):
    """Run ``script``, a list of ``("w", [(addr, word), ...])`` and ``("x", codes)`` groups.

    Two producers (vectors on ``i``, loads on ``i_weight``) and a consumer on ``o``, each with
    its own random stalls and its own cycle count (aligned: all start at cycle 0). With
    ``sequential``, a group is offered only once every transfer of the previous group has been
    accepted; otherwise both producers run through their groups independently (``delay``:
    cycles before each producer starts, by kind). Returns the
    accepted loads and vectors with their cycles, the outputs, and how many vectors were
    accepted in a cycle where a load was offered (the core must make that 0).
    """
    rng = np.random.default_rng(seed)
    idle = {"x": rng.random(max_cycles + 2) < stall_in,
            "w": rng.random(max_cycles + 2) < stall_weight}
    hold_out = rng.random(max_cycles + 2) < stall_out
    in_codec = PayloadCodec.for_shape(core.i.signature.members["payload"].shape)
    out_codec = PayloadCodec.for_shape(core.o.signature.members["payload"].shape)
    addr_bits = core.weight_layout.members["addr"].width
    pack = {"x": in_codec.pack, "w": lambda load: load[0] | load[1] << addr_bits}
    streams = {"x": core.i, "w": core.i_weight}
    n_vectors = sum(len(items) for kind, items in script if kind == "x")
    done = [False] * len(script)
    log = {"w": [], "x": [], "outputs": [], "out_cycles": [], "collisions": 0}

    def producer(kind):
        stream = streams[kind]
        payload = Value.cast(stream.payload)

        async def run(ctx):
            cycle = 0
            for _ in range((delay or {}).get(kind, 0)):
                await ctx.tick()
                cycle += 1
            for g, (group_kind, items) in enumerate(script):
                if group_kind != kind:
                    continue
                while sequential and g and not done[g - 1]:
                    await ctx.tick()
                    cycle += 1
                index, pending = 0, False
                while index < len(items):
                    if not pending and not idle[kind][cycle]:
                        ctx.set(payload, pack[kind](items[index]))
                        ctx.set(stream.valid, 1)
                        pending = True
                    _, _, ready, load_offered = await ctx.tick().sample(stream.ready,
                                                                         core.i_weight.valid)
                    if pending and ready:
                        log[kind].append((cycle, items[index]))
                        log["collisions"] += kind == "x" and load_offered
                        index += 1
                        pending = False
                        ctx.set(stream.valid, 0)
                    cycle += 1
                    assert cycle < max_cycles, f"{kind} producer stalled"
                done[g] = True
        return run

    async def consumer(ctx):
        cycle = 0
        while len(log["outputs"]) < n_vectors:
            ready = not hold_out[cycle]
            ctx.set(core.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(core.o.valid,
                                                            Value.cast(core.o.payload))
            if ready and valid:
                log["outputs"].append(out_codec.unpack(payload))
                log["out_cycles"].append(cycle)
            cycle += 1
            assert cycle < max_cycles, "consumer stalled"

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(producer("x"))
    sim.add_testbench(producer("w"))
    sim.add_testbench(consumer)
    sim.run()
    log["outputs"] = np.array(log["outputs"], dtype=np.int64).reshape(n_vectors, -1)
    return log


def expected_by_cycles(plan, initial, log):
    """Each vector's output with the weights of the loads accepted in earlier cycles."""
    weight = np.array(initial, dtype=np.int64).reshape(-1)
    loads = sorted(log["w"], key=lambda event: event[0])
    rows, k = [], 0
    for cycle, x in log["x"]:
        while k < len(loads) and loads[k][0] < cycle:
            addr, word = loads[k][1]
            if addr < plan.products:
                weight[addr] = plan.code.decode([word])[0]
            k += 1
        assert k == len(loads) or loads[k][0] != cycle, "a load and a vector in one cycle"
        rows.append(shift_mac(plan, weight.reshape(plan.n_out, plan.n_in), np.asarray(x)))
    return np.array(rows, dtype=np.int64).reshape(len(rows), plan.n_out)


CASES = [
    dict(n_in=5, n_out=3, parallelism=1),
    dict(n_in=5, n_out=3, parallelism=4, terms=2),
    dict(n_in=5, n_out=3, parallelism=15, terms=2),
    dict(n_in=4, n_out=4, parallelism=7, rounding="trunc", overflow="wrap",
         out_format=SQ(1, 7)),
    dict(n_in=7, n_out=2, parallelism=3, in_format=UQ(2, 4), weight_format=UQ(1, 5),
         out_format=UQ(3, 4), terms=2, rounding="half_even"),
    dict(n_in=3, n_out=5, parallelism=2, in_format=SQ(3, 3), weight_format=SQ(2, 4),
         out_format=SQ(4, 2), weight_e_min=1, rounding="half_even"),
    dict(n_in=1, n_out=1, parallelism=1, terms=2),
    dict(n_in=2, n_out=6, parallelism=12, in_format=UQ(1, 5), weight_format=SQ(1, 5),
         out_format=SQ(2, 3), terms=2, weight_exponent_bits=2, overflow="wrap"),
    # More output fraction bits than the accumulator has: requantize shifts left.
    dict(n_in=3, n_out=2, parallelism=2, in_format=SQ(4, 2), weight_format=SQ(3, 1),
         out_format=SQ(6, 4), terms=2),
]


def case_id(case):
    return "-".join(f"{k}={v}" for k, v in case.items()).replace(" ", "")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_outputs_follow_the_weights_loaded_and_reloaded(case):
    case = dict(case)
    parallelism = case.pop("parallelism")
    plan = make_plan(**case)
    w1, w2 = random_weights(plan, 1), random_weights(plan, 2)
    # The reload changes every other weight; loads beyond n_in·n_out are accepted and ignored.
    changed = list(range(0, plan.products, 2))
    w2.reshape(-1)[1::2] = w1.reshape(-1)[1::2]
    addr_bits = max(1, (plan.products - 1).bit_length())
    junk = [(a, 0) for a in range(plan.products, 1 << addr_bits)]
    xa = make_vectors(plan.in_format, plan.n_in, 14, seed=3)
    xb = make_vectors(plan.in_format, plan.n_in, 14, seed=4)[::-1]
    script = [("w", loads_of(plan, w1)), ("x", xa), ("w", loads_of(plan, w2, changed) + junk),
              ("x", xb)]
    want = np.concatenate([shift_mac(plan, w1, xa), shift_mac(plan, w2, xb)])
    assert not np.array_equal(shift_mac(plan, w1, xb), shift_mac(plan, w2, xb))
    for stalls in [(0.0, 0.0, 0.0), (0.4, 0.4, 0.5)]:
        core = ShiftMac(plan, parallelism=parallelism)
        log = simulate(core, script, stall_in=stalls[0], stall_weight=stalls[1],
                       stall_out=stalls[2], seed=parallelism)
        np.testing.assert_array_equal(log["outputs"], want)
        np.testing.assert_array_equal(log["outputs"], expected_by_cycles(plan, 0 * w1, log))


@pytest.mark.parametrize("parallelism, terms, seed", [(1, 1, 0), (4, 2, 1), (15, 2, 2),
                                                      (6, 1, 3)])
def test_concurrent_loads_apply_to_vectors_accepted_after_them(parallelism, terms, seed):
    """Loads and vectors race with random stalls: each vector sees exactly the earlier loads."""
    plan = make_plan(5, 3, terms=terms)
    rng = np.random.default_rng(seed)
    script = []
    for group in range(4):
        addrs = rng.permutation(plan.products)[:rng.integers(1, plan.products + 1)]
        script.append(("w", loads_of(plan, random_weights(plan, 10 * seed + group), addrs)))
        script.append(("x", make_vectors(plan.in_format, 5, 40, seed=group)[rng.permutation(40)]))
    core = ShiftMac(plan, parallelism=parallelism, weights=random_weights(plan, 99))
    log = simulate(core, script, stall_in=0.3, stall_weight=0.6, stall_out=0.3, seed=seed,
                   sequential=False)
    assert log["collisions"] == 0
    np.testing.assert_array_equal(log["outputs"],
                                  expected_by_cycles(plan, core.initial_weights, log))
    # The race really interleaved loads with vectors.
    load_cycles = [c for c, _ in log["w"]]
    vector_cycles = [c for c, _ in log["x"]]
    assert min(load_cycles) < max(vector_cycles) and max(load_cycles) > min(vector_cycles)


def test_a_back_to_back_burst_of_loads_is_never_split_by_a_vector():
    plan = make_plan(4, 3, terms=2)
    w1, w2 = random_weights(plan, 1), random_weights(plan, 2)
    x = make_vectors(plan.in_format, 4, 60, seed=5)
    for parallelism in (1, 3, 12):
        core = ShiftMac(plan, parallelism=parallelism, weights=w1)
        # Loads start while vectors stream; the load producer never stalls.
        script = [("x", x), ("w", loads_of(plan, w2))]
        log = simulate(core, script, stall_in=0.2, stall_out=0.2, seed=parallelism,
                       sequential=False, delay={"w": 3 * core.ii + 5})
        np.testing.assert_array_equal(log["outputs"], expected_by_cycles(plan, w1, log))
        old, new = shift_mac(plan, w1, x), shift_mac(plan, w2, x)
        splits = [k for k in range(len(x) + 1)
                  if np.array_equal(log["outputs"], np.concatenate([old[:k], new[k:]]))]
        assert splits and 0 < splits[0] < len(x) - 20
        cycles = [c for c, _ in log["w"]]
        assert cycles == list(range(cycles[0], cycles[0] + plan.products))


def test_extreme_words_never_overflow_the_accumulator():
    """Words beyond the weight format (pot2: 2**7 + 2**7) with extreme inputs stay exact."""
    plan = make_plan(6, 2, terms=2, out_format=SQ(8, 2))
    code = plan.code
    top = code.fields[0]
    # Both terms 2**e_max, positive (row 0) and negative (row 1).
    plus = (code.e_max - code.e_min) << top.exponent_offset
    plus |= plus << code.fields[1].exponent_offset
    minus = plus | 1 << code.fields[0].sign_offset | 1 << code.fields[1].sign_offset
    values = code.word_values([plus, minus]).tolist()
    assert values == [256, -256] == [code.value_range[1], code.value_range[0]]
    loads = [(a, plus if a < 6 else minus) for a in range(12)]
    x = np.array([[-128] * 6, [127] * 6, [-128, 127] * 3])
    log = simulate(ShiftMac(plan, parallelism=4), [("w", loads), ("x", x)], stall_out=0.3)
    weight = np.repeat(values, 6).reshape(2, 6)
    fixed = DensePlan(in_format=plan.in_format, weight_format=plan.weight_format,
                      out_format=plan.out_format, acc_format=plan.acc_format,
                      rounding=plan.rounding, overflow=plan.overflow, weight=weight,
                      bias=plan.bias)
    # dense() checks that every sum lies inside acc_format before requantizing it.
    np.testing.assert_array_equal(log["outputs"], dense(fixed, x))
    sums = x @ weight.T
    assert sums.min() == -6 * 256 * 128 and sums.max() == 6 * 256 * 128
    assert plan.acc_format.width == 19  # 6 * 2**15 needs all of it


@pytest.mark.parametrize("parallelism", [1, 2, 4, 15])
def test_latency_and_ii_are_what_simulation_shows(parallelism):
    plan = make_plan(5, 3, terms=2)
    weight = random_weights(plan, 7)
    core = ShiftMac(plan, parallelism=parallelism, weights=weight)
    assert core.ii == -(-15 // parallelism)
    assert core.latency == core.ii + 5
    x = make_vectors(plan.in_format, 5, 12)
    run = run_stream(core, x)
    np.testing.assert_array_equal(run.outputs, shift_mac(plan, weight, x))
    assert set(run.latencies.tolist()) == {core.latency}
    assert set(np.diff(run.in_cycles).tolist()) == {core.ii}
    assert set(np.diff(run.out_cycles).tolist()) == {core.ii}


@pytest.mark.parametrize("parallelism", [1, 4, 15])
def test_weight_port_waits_exactly_for_the_issue_cycles(parallelism):
    """``i_weight.ready`` drops the cycle after a vector is accepted, for ``ii`` cycles."""
    plan = make_plan(5, 3)
    core = ShiftMac(plan, parallelism=parallelism)
    trace = []

    async def bench(ctx):
        ctx.set(core.o.ready, 1)
        ctx.set(core.i.valid, 1)
        _, _, accepted = await ctx.tick().sample(core.i.ready)
        assert accepted
        ctx.set(core.i.valid, 0)
        for _ in range(core.ii + 3):
            trace.append(ctx.get(core.i_weight.ready))
            await ctx.tick()
        # A load offered blocks vectors in the same cycle.
        ctx.set(core.i_weight.valid, 1)
        ctx.set(core.i.valid, 1)
        assert ctx.get(core.i.ready) == 0 and ctx.get(core.i_weight.ready) == 1

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert trace == [0] * core.ii + [1] * 3


def test_properties_and_describe():
    plan = make_plan(5, 3, terms=2)
    weight = random_weights(plan, 1)
    core = ShiftMac(plan, parallelism=7, weights=weight)
    assert core.plan is plan and core.parallelism == 7 and core.lanes == 5 and core.ii == 3
    assert core.in_format == SQ(1, 7) and core.out_format == SQ(3, 5)
    np.testing.assert_array_equal(core.initial_weights, weight)
    assert core.weight_layout.size == 4 + 10
    info = core.describe()
    assert json.loads(json.dumps(info)) == info
    assert {k: info[k] for k in ("kind", "class", "parallelism", "lanes", "latency", "ii",
                                 "weight_code", "weight_addr_bits", "initial_weights")} == {
        "kind": "shift_mac", "class": "ShiftMac", "parallelism": 7, "lanes": 5, "latency": 8,
        "ii": 3, "weight_code": "pot2", "weight_addr_bits": 4, "initial_weights": "given"}
    assert ShiftMac(plan).describe()["initial_weights"] == "zeros"


def test_shift_mac_parameter_errors():
    plan = make_plan(3, 2)
    cases = [
        ("x", {}, ParameterTypeError, "plan",
         "plan must be a ShiftMacPlan (see hwnn.plans.shift_mac.plan_shift_mac), not 'x'"),
        (plan, dict(parallelism=7), ParameterValueError, "parallelism",
         "parallelism must be an integer between 1 and 6, not 7"),
        (plan, dict(parallelism=1.5), ParameterTypeError, "parallelism",
         "parallelism must be an integer between 1 and 6, not 1.5"),
    ]
    for argument, kwargs, error, parameter, message in cases:
        with pytest.raises(error, match=re.escape(message) + "$") as info:
            ShiftMac(argument, **kwargs)
        assert info.value.parameter == parameter
    with pytest.raises(ValueError, match=r"^weights: 3 at index \(1, 2\) is not a pot code of "
                                         r"SQ\(1, 7\) \(0 or ±2\*\*k, k in 0\.\.7\)$"):
        ShiftMac(plan, weights=[[1, 2, 4], [8, 16, 3]])
    with pytest.raises(ValueError, match=r"^weights must have shape \(n_out, n_in\) = \(2, 3\), "
                                         r"not \(3,\)$"):
        ShiftMac(plan, weights=[1, 2, 4])


def test_no_multiplier_anywhere():
    # Parallelism 5 walks the inputs out of order (a column ROM selects them).
    for terms, parallelism in [(1, 3), (2, 5), (2, 12)]:
        text = rtlil.convert(ShiftMac(make_plan(4, 3, terms=terms), parallelism=parallelism))
        assert "$mul" not in text
        assert "$shl" in text or "$sshl" in text or "$shift" in text


def test_exports_verilog_with_the_weight_port(tmp_path):
    core = ShiftMac(make_plan(3, 2, terms=2), parallelism=2)
    written = export(core, "pot_fc", tmp_path)
    text = written["verilog"].read_text()
    assert "module pot_fc" in text
    for port in ["clk", "rst", "i__payload", "i__valid", "i__ready", "i_weight__payload",
                 "i_weight__valid", "i_weight__ready", "o__payload", "o__valid", "o__ready"]:
        assert port in text
    manifest = json.loads(written["manifest"].read_text())
    assert manifest["latency"] == 8 and manifest["ii"] == 3
    ports = {p["name"]: p for p in manifest["ports"]}
    assert ports["i_weight__payload"]["width"] == 3 + 10
    assert ports["i_weight__payload"]["fields"] == {"addr": {"width": 3, "signed": False},
                                                    "code": {"width": 10, "signed": False}}
    assert manifest["core"]["kind"] == "shift_mac"


@pytest.mark.synth
def test_synthesizes_without_multipliers():
    from hwnn.synth import synthesize
    report = synthesize(ShiftMac(make_plan(8, 4, terms=2), parallelism=4), "ice40-up5k")
    assert report.dsps == 0
    assert report.luts > 0 and report.ffs > 0
