import itertools
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from amaranth.hdl import Module, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import connect, flipped
from amaranth.sim import Simulator

from hwnn.checks import ParameterTypeError
from hwnn.cores._component import inspected
from hwnn.cores.activation import activation_core
from hwnn.cores.elementwise import Elementwise
from hwnn.export import export
from hwnn.fixed import SQ, UQ
from hwnn.plans.activation import plan_activation
from hwnn.plans.elementwise import OPS, plan_elementwise
from hwnn.ref.activation import activation
from hwnn.ref.elementwise import elementwise
from hwnn.sim import PayloadCodec, make_vectors, run_stream

ROUNDINGS = ("trunc", "half_up", "half_even")
OVERFLOWS = ("wrap", "sat")


def every_pair(a_format, b_format):
    a, b = np.meshgrid(a_format.codes(), b_format.codes(), indexing="ij")
    return a.ravel(), b.ravel()


def run(core, a, b=None, **options):
    inputs = {"i_a": a, "i_b": b} if b is not None else {"i": a}
    return run_stream(core, inputs, **options)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("rounding, overflow", list(itertools.product(ROUNDINGS, OVERFLOWS)))
def test_every_pair_of_codes(op, rounding, overflow):
    """SQ(2,2) ⊙ SQ(2,2), all 256 pairs, narrowed to SQ(2,1): it rounds and overflows."""
    plan = plan_elementwise(op, SQ(2, 2), SQ(2, 2), SQ(2, 1), rounding=rounding,
                            overflow=overflow)
    a, b = every_pair(SQ(2, 2), SQ(2, 2))
    result = run(Elementwise(plan), a, b, stall_in=0.2, stall_out=0.3, seed=1)
    np.testing.assert_array_equal(result.outputs, elementwise(plan, a, b))


# Mixed signedness, unequal fraction bits (both alignments), a sign change on the way out, a
# left shift, a format with negative fraction bits.
MIXED = [
    ("mul", UQ(2, 2), SQ(1, 3), UQ(1, 2), "half_even", "sat"),
    ("mul", SQ(3, 0), UQ(2, 1), SQ(4, 3), "trunc", "wrap"),
    ("add", UQ(2, 2), SQ(1, 3), SQ(2, 1), "half_up", "wrap"),
    ("sub", UQ(2, 1), UQ(3, -1), UQ(2, 0), "half_even", "sat"),
    ("sub", SQ(3, 0), UQ(2, 1), SQ(3, -1), "half_up", "sat"),
    ("add", UQ(2, 1), UQ(3, -1), UQ(4, 2), "trunc", "sat"),
]


@pytest.mark.parametrize("op, a_format, b_format, out_format, rounding, overflow", MIXED)
def test_every_pair_of_mixed_formats(op, a_format, b_format, out_format, rounding, overflow):
    plan = plan_elementwise(op, a_format, b_format, out_format, rounding=rounding,
                            overflow=overflow)
    a, b = every_pair(a_format, b_format)
    result = run(Elementwise(plan), a, b, stall_in=0.3, stall_out=0.2, seed=2)
    np.testing.assert_array_equal(result.outputs, elementwise(plan, a, b))


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("seed", [3, 4])
def test_lanes_with_random_stalls(op, seed):
    plan = plan_elementwise(op, SQ(1, 7), UQ(0, 8), SQ(1, 7), lanes=3, rounding="half_even")
    a = make_vectors(SQ(1, 7), 3, 150, seed=seed)
    b = make_vectors(UQ(0, 8), 3, 150, seed=seed + 10)[::-1]
    result = run(Elementwise(plan), a, b, stall_in=0.4, stall_out=0.5, seed=seed)
    np.testing.assert_array_equal(result.outputs, elementwise(plan, a, b))


@pytest.mark.parametrize("op", OPS)
def test_constant_vector(op):
    plan = plan_elementwise(op, SQ(2, 2), SQ(3, 1), SQ(2, 2), lanes=4,
                            constant=[-8, 7, 0, -1], rounding="half_up", overflow="wrap")
    core = Elementwise(plan)
    assert "i_a" not in core.signature.members and "i_b" not in core.signature.members
    codes = SQ(2, 2).codes()
    a = np.stack([codes, codes[::-1], np.roll(codes, 5), np.roll(codes, 11)], axis=1)
    result = run(core, a, stall_in=0.3, stall_out=0.4, seed=5)
    np.testing.assert_array_equal(result.outputs, elementwise(plan, a))


def test_one_lane_constant_on_every_code():
    plan = plan_elementwise("mul", SQ(4, 4), UQ(0, 8), SQ(4, 4), constant=[171])
    core = Elementwise(plan)
    codes = SQ(4, 4).codes()
    result = run(core, codes, stall_out=0.3, seed=6)
    np.testing.assert_array_equal(result.outputs, elementwise(plan, codes))


@pytest.mark.parametrize("out_format, rounding, overflow, latency", [
    (SQ(4, 4), "half_up", "sat", 2),    # the exact product fits: requantize is wiring
    (SQ(2, 4), "trunc", "wrap", 2),     # dropping bits and wrapping is wiring too
    (SQ(2, 4), "trunc", "sat", 3),      # saturation comparators: a stage of their own
    (SQ(4, 2), "half_even", "wrap", 3),  # a rounding incrementer: a stage of its own
])
@pytest.mark.parametrize("constant", [None, [5, -3]])
def test_latency_and_full_throughput(out_format, rounding, overflow, latency, constant):
    plan = plan_elementwise("mul", SQ(2, 2), SQ(2, 2), out_format, lanes=2, constant=constant,
                            rounding=rounding, overflow=overflow)
    core = Elementwise(plan)
    assert (core.latency, core.ii) == (latency, 1)
    a = make_vectors(SQ(2, 2), 2, 40, seed=7)
    result = run(core, a, None if constant else a[::-1])
    assert set(result.latencies.tolist()) == {latency}
    assert set(np.diff(result.in_cycles).tolist()) == {1}
    assert result.cycles == len(a) + latency
    np.testing.assert_array_equal(result.outputs,
                                  elementwise(plan, a, None if constant else a[::-1]))


def simulate_protocol(core, cycles, seed, a_codes, b_codes):
    """Drive ``i_a``/``i_b`` with independently random ``valid`` (payload changing only after a
    transfer) and ``o`` with random ``ready``. Record, every cycle, both input transfers and
    whether ``o`` kept ``valid`` and its payload while it was stalled."""
    rng = np.random.default_rng(seed)
    offer = {"i_a": rng.random(cycles) < 0.6, "i_b": rng.random(cycles) < 0.6}
    take = rng.random(cycles) < 0.5
    codes = {"i_a": a_codes, "i_b": b_codes}
    log = {"i_a": [], "i_b": [], "out": [], "broken": 0}

    def producer(port):
        stream = getattr(core, port)
        codec = PayloadCodec.for_shape(stream.signature.members["payload"].shape)

        async def run(ctx):
            index, pending = 0, False
            for cycle in range(cycles):
                if not pending and offer[port][cycle] and index < len(codes[port]):
                    ctx.set(Value.cast(stream.payload), codec.pack(codes[port][index]))
                    ctx.set(stream.valid, 1)
                    pending = True
                _, _, ready = await ctx.tick().sample(stream.ready)
                if pending and ready:
                    log[port].append(cycle)
                    index, pending = index + 1, False
                    ctx.set(stream.valid, 0)
        return run

    async def consumer(ctx):
        stalled = None
        for cycle in range(cycles):
            ctx.set(core.o.ready, int(take[cycle]))
            _, _, valid, payload = await ctx.tick().sample(core.o.valid,
                                                           Value.cast(core.o.payload))
            if stalled is not None and (not valid or payload != stalled):
                log["broken"] += 1
            stalled = payload if valid and not take[cycle] else None
            if valid and take[cycle]:
                log["out"].append(payload)

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(producer("i_a"))
    sim.add_testbench(producer("i_b"))
    sim.add_testbench(consumer)
    sim.run()
    return log


def test_join_and_output_keep_the_stream_rules():
    plan = plan_elementwise("add", SQ(2, 2), SQ(2, 2), SQ(2, 2), lanes=2, rounding="trunc")
    core = Elementwise(plan)
    a = make_vectors(SQ(2, 2), 2, 120, seed=8)
    b = make_vectors(SQ(2, 2), 2, 120, seed=9)[::-1]
    log = simulate_protocol(core, 400, 10, a, b)
    # Both operands of a pair are taken in the same cycle, never one without the other.
    assert log["i_a"] == log["i_b"]
    assert len(log["i_a"]) > 60
    # While stalled, the output keeps valid and its payload.
    assert log["broken"] == 0
    codec = PayloadCodec.for_shape(core.o.signature.members["payload"].shape)
    outputs = [codec.unpack(p) for p in log["out"]]
    n = len(outputs)
    assert n >= len(log["i_a"]) - core.latency - 2
    np.testing.assert_array_equal(outputs, elementwise(plan, a[:n], b[:n]))


def test_one_waiting_operand_is_not_taken():
    """``i_a`` offered alone stays pending (ready low) until ``i_b`` comes."""
    plan = plan_elementwise("mul", SQ(2, 2), SQ(2, 2), SQ(4, 4))
    core = Elementwise(plan)
    assert core.latency == 2
    seen = []

    async def bench(ctx):
        ctx.set(core.o.ready, 1)
        ctx.set(core.i_a.payload, 3)
        ctx.set(core.i_a.valid, 1)
        for _ in range(5):
            _, _, ready_a, valid_o = await ctx.tick().sample(core.i_a.ready, core.o.valid)
            seen.append((ready_a, valid_o))
        ctx.set(core.i_b.payload, -2)
        ctx.set(core.i_b.valid, 1)
        _, _, ready_a, ready_b = await ctx.tick().sample(core.i_a.ready, core.i_b.ready)
        seen.append((ready_a, ready_b))
        ctx.set(core.i_a.valid, 0)
        ctx.set(core.i_b.valid, 0)
        for _ in range(core.latency):
            _, _, valid_o, payload = await ctx.tick().sample(core.o.valid, core.o.payload)
            seen.append((valid_o, payload))

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    # Five cycles without a transfer or an output; then both operands go in together and the
    # product 0.75 · -0.5 comes out `latency` cycles later.
    assert seen == [(0, 0)] * 5 + [(1, 1), (0, 0), (1, -6)]


class CellUpdate(wiring.Component):
    """The LSTM cell update ``c' = f⊙c + i⊙g`` from three elementwise units."""

    def __init__(self, f_c, i_g, add):
        self.units = Elementwise(f_c), Elementwise(i_g), Elementwise(add)
        mul_fc, mul_ig, adder = self.units
        super().__init__({
            "i_f": mul_fc.signature.members["i_a"], "i_c": mul_fc.signature.members["i_b"],
            "i_i": mul_ig.signature.members["i_a"], "i_g": mul_ig.signature.members["i_b"],
            "o": adder.signature.members["o"],
        })

    latency = property(lambda self: self.units[0].latency + self.units[2].latency)

    def elaborate(self, platform):
        m = Module()
        mul_fc, mul_ig, adder = self.units
        m.submodules.f_c, m.submodules.i_g, m.submodules.add = self.units
        connect(m, flipped(self.i_f), mul_fc.i_a)
        connect(m, flipped(self.i_c), mul_fc.i_b)
        connect(m, flipped(self.i_i), mul_ig.i_a)
        connect(m, flipped(self.i_g), mul_ig.i_b)
        connect(m, mul_fc.o, adder.i_a)
        connect(m, mul_ig.o, adder.i_b)
        connect(m, adder.o, flipped(self.o))
        return m


GATE, CELL, CANDIDATE = UQ(0, 8), SQ(4, 8), SQ(1, 7)


@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_lstm_cell_update_from_three_units(stall):
    lanes = 4
    f_c = plan_elementwise("mul", GATE, CELL, CELL, lanes=lanes)
    i_g = plan_elementwise("mul", GATE, CANDIDATE, CELL, lanes=lanes)
    add = plan_elementwise("add", CELL, CELL, CELL, lanes=lanes)
    core = CellUpdate(f_c, i_g, add)
    n = 80
    f, i = make_vectors(GATE, lanes, n, seed=11), make_vectors(GATE, lanes, n, seed=12)
    c, g = make_vectors(CELL, lanes, n, seed=13), make_vectors(CANDIDATE, lanes, n, seed=14)
    result = run_stream(core, {"i_f": f, "i_c": c, "i_i": i, "i_g": g}, stall_in=stall,
                        stall_out=stall, seed=15)
    expected = elementwise(add, elementwise(f_c, f, c), elementwise(i_g, i, g))
    np.testing.assert_array_equal(result.outputs, expected)
    if not stall:
        assert core.latency == 6
        assert set(result.latencies.tolist()) == {core.latency}
        assert set(np.diff(result.in_cycles).tolist()) == {1}


class Hidden(wiring.Component):
    """The LSTM output ``h = o⊙tanh(c)``: an activation unit feeding an elementwise unit."""

    def __init__(self, tanh_plan, mul_plan):
        self.tanh = activation_core(tanh_plan, lanes=mul_plan.lanes)
        self.mul = Elementwise(mul_plan)
        super().__init__({"i_o": self.mul.signature.members["i_a"],
                          "i_c": self.tanh.signature.members["i"],
                          "o": self.mul.signature.members["o"]})

    def elaborate(self, platform):
        m = Module()
        m.submodules.tanh, m.submodules.mul = self.tanh, self.mul
        connect(m, flipped(self.i_c), self.tanh.i)
        connect(m, self.tanh.o, self.mul.i_b)
        connect(m, flipped(self.i_o), self.mul.i_a)
        connect(m, self.mul.o, flipped(self.o))
        return m


def test_lstm_hidden_output_from_an_activation_and_a_unit():
    lanes = 2
    tanh = plan_activation("tanh", CELL, CANDIDATE, method="lut", table_size=64)
    mul = plan_elementwise("mul", GATE, CANDIDATE, CANDIDATE, lanes=lanes)
    o, c = make_vectors(GATE, lanes, 60, seed=16), make_vectors(CELL, lanes, 60, seed=17)
    result = run_stream(Hidden(tanh, mul), {"i_o": o, "i_c": c}, stall_in=0.3,
                        stall_out=0.3, seed=18)
    np.testing.assert_array_equal(result.outputs, elementwise(mul, o, activation(tanh, c)))


def test_ports_properties_and_describe():
    plan = plan_elementwise("sub", UQ(0, 8), SQ(4, 8), SQ(4, 8), lanes=3)
    core = inspected(Elementwise(plan))
    members = core.signature.members
    assert set(members) == {"i_a", "i_b", "o"}
    assert PayloadCodec.for_shape(members["i_a"].signature.members["payload"].shape) == \
        PayloadCodec(8, False, 3)
    assert PayloadCodec.for_shape(members["i_b"].signature.members["payload"].shape) == \
        PayloadCodec(12, True, 3)
    assert PayloadCodec.for_shape(members["o"].signature.members["payload"].shape) == \
        PayloadCodec(12, True, 3)
    assert (core.plan, core.lanes, core.ii, core.latency) == (plan, 3, 1, 3)
    assert (core.a_format, core.b_format, core.out_format) == (UQ(0, 8), SQ(4, 8), SQ(4, 8))
    assert core.describe() == {"kind": "elementwise", "class": "Elementwise", "latency": 3,
                               "ii": 1, **plan.describe()}
    one = inspected(Elementwise(plan_elementwise("add", SQ(2, 2), SQ(2, 2), SQ(2, 2),
                                                 constant=[1])))
    assert set(one.signature.members) == {"i", "o"}
    assert PayloadCodec.for_shape(one.signature.members["i"].signature.members["payload"]
                                  .shape) == PayloadCodec(4, True, None)


def test_properties_are_read_only():
    core = inspected(Elementwise(plan_elementwise("add", SQ(2, 2), SQ(2, 2), SQ(2, 2))))
    for name in ("latency", "ii", "plan", "out_format", "lanes"):
        with pytest.raises(AttributeError):
            setattr(core, name, 1)


def test_rejects_what_is_not_a_plan():
    plan = plan_activation("relu", SQ(4, 4), UQ(3, 3))
    with pytest.raises(ParameterTypeError, match=re.escape(
            f"plan must be an ElementwisePlan (see hwnn.plans.elementwise.plan_elementwise), "
            f"not {plan!r}") + "$") as info:
        Elementwise(plan)
    assert info.value.parameter == "plan"


@pytest.mark.parametrize("constant", [None, [3, -3]])
def test_exports_verilog_and_manifest(tmp_path, constant):
    plan = plan_elementwise("mul", UQ(0, 8), SQ(1, 7), SQ(1, 7), lanes=2, constant=constant)
    written = export(Elementwise(plan), "ew", tmp_path)
    text = written["verilog"].read_text()
    assert "module ew" in text
    inputs = ["i__payload"] if constant else ["i_a__payload", "i_b__payload"]
    for port in inputs + ["o__payload", "o__valid", "o__ready"]:
        assert port in text
    manifest = json.loads(written["manifest"].read_text())
    assert (manifest["latency"], manifest["ii"]) == (3, 1)
    ports = {p["name"]: p for p in manifest["ports"]}
    assert set(ports) == {"clk", "rst", "o__payload", "o__valid", "o__ready"} | {
        f"{name}__{part}" for name in (["i"] if constant else ["i_a", "i_b"])
        for part in ("payload", "valid", "ready")}
    assert ports["o__payload"]["elements"] == 2 and ports["o__payload"]["element_width"] == 8
    assert manifest["core"]["kind"] == "elementwise"
    assert manifest["core"]["constant"] == constant


@pytest.mark.skipif(shutil.which("verilator") is None, reason="needs verilator on PATH")
@pytest.mark.parametrize("op, constant", [("mul", None), ("sub", [3, -3])])
def test_exported_verilog_lints_clean_in_verilator(tmp_path, op, constant):
    plan = plan_elementwise(op, UQ(2, 2), SQ(1, 3), SQ(2, 1), lanes=2, constant=constant,
                            rounding="half_even")
    export(Elementwise(plan), "ew", tmp_path)
    result = subprocess.run(["verilator", "--lint-only", "ew.v"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.synth
def test_synthesizes_one_multiplier_per_lane():
    from hwnn.synth import synthesize
    plan = plan_elementwise("mul", SQ(1, 7), SQ(1, 7), SQ(1, 7), lanes=2)
    with_dsp = synthesize(Elementwise(plan), "ice40-up5k", name="ew")
    assert with_dsp.dsps == 2
    without = synthesize(Elementwise(plan), "ice40-up5k", name="ew", dsp=False)
    assert without.dsps == 0 and without.luts > with_dsp.luts


def test_run_stream_stops_when_a_port_has_a_row_too_many():
    core = Elementwise(plan_elementwise("add", SQ(2, 2), SQ(2, 2), SQ(2, 2)))
    with pytest.raises(TimeoutError, match=re.escape(
            "core accepted 2 of 3 inputs on i_a in 40 cycles") + "$"):
        run_stream(core, {"i_a": [1, 2, 3], "i_b": [1, 2]}, n_outputs=2, max_cycles=40)
