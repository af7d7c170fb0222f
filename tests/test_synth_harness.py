# amaranth: UnusedElaboratable=no
import random
import re
from functools import reduce
from operator import xor

import pytest
from amaranth.hdl import Cat, Module, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hwnn.synth import RegisteredHarness
from hwnn.synth import harness as harness_module


class Passthrough(wiring.Component):
    """q = a, combinationally: the harness alone decides what the sim sees."""

    def __init__(self, width):
        super().__init__({"a": In(width), "q": Out(width)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.q.eq(self.a)
        return m


class Mixed(wiring.Component):
    """Ports of every kind: a stream with an array payload, a struct, an array of ports."""
    i: In(stream.Signature(data.ArrayLayout(signed(5), 3)))
    s: In(data.StructLayout({"x": signed(3), "y": 4}))
    a: In(2).array(3)
    o: Out(stream.Signature(data.StructLayout({"data": 6, "last": 1})))

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.o.payload.data.eq(Cat(*self.a) ^ self.s.y)
        return m


def _expected_inputs(din, width, row_bits, t):
    """Harness input bit values after clock edge ``t`` (din[k] sampled at edge k)."""
    def past(k):
        return din[k] if k >= 0 else 0
    bits = []
    for index in range(width):
        row, pos = divmod(index, row_bits)
        # Row r carries the XOR of r + 1 consecutive past din bits.
        bits.append(reduce(xor, (past(t - pos - k) for k in range(row + 1))))
    return bits


@pytest.mark.parametrize("width, row_bits", [(13, 1024), (21, 8)])
def test_harness_shifts_din_in_and_xors_outputs_out(monkeypatch, width, row_bits):
    monkeypatch.setattr(harness_module, "ROW_BITS", row_bits)
    dut = RegisteredHarness(Passthrough(width))
    assert (dut.in_bits, dut.out_bits) == (width, width)
    cycles = 60
    rng = random.Random(width)
    din = [rng.randrange(2) for _ in range(cycles)]
    seen_inputs, seen_dout = [], []

    async def testbench(ctx):
        for bit in din:
            ctx.set(dut.din, bit)
            await ctx.tick()
            value = ctx.get(dut.core.a)
            seen_inputs.append([(value >> i) & 1 for i in range(width)])
            seen_dout.append(ctx.get(dut.dout))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()

    for t in range(cycles):
        assert seen_inputs[t] == _expected_inputs(din, width, row_bits, t), t
    # No two input bits carry the same sequence, so yosys cannot merge their flops.
    assert len({tuple(bits[i] for bits in seen_inputs) for i in range(width)}) == width
    # One capture stage, then one register per XOR level.
    delay = 1 + dut.xor_levels
    for t in range(delay, cycles):
        assert seen_dout[t] == reduce(xor, seen_inputs[t - delay]), t


def test_harness_counts_ports_of_every_shape():
    dut = RegisteredHarness(Mixed())
    # In: i.payload 15 + i.valid 1 + o.ready 1 + s 7 + a 3x2 = 30; Out: i.ready + o.payload 7
    # + o.valid = 9.
    assert (dut.in_bits, dut.out_bits) == (30, 9)
    assert (dut.xor_levels, dut.tree_flops) == (2, 3 + 1)
    assert list(dut.signature.members) == ["din", "dout"]


def test_harness_rejects_non_components():
    with pytest.raises(TypeError, match=r"^Core must be an amaranth.lib.wiring.Component, "
                                        r"not 'mul'$"):
        RegisteredHarness("mul")


def test_harness_rejects_cores_without_outputs():
    class Sink(wiring.Component):
        a: In(4)

        def elaborate(self, platform):
            return Module()

    sink = Sink()
    with pytest.raises(ValueError, match="^" + re.escape(
            f"Core {sink!r} has no Out port bits; a harness would observe nothing") + "$"):
        RegisteredHarness(sink)
