import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hwnn.cores._output import registered_output
from hwnn.sim import run_stream


class Negate(wiring.Component):
    """``o = -i`` through :func:`registered_output`; ``i`` waits for ``accept``.

    ``accept`` is exposed so the test can see that it never follows ``o.ready`` in the same
    cycle.
    """
    i: In(stream.Signature(signed(6)))
    o: Out(stream.Signature(signed(6)))

    def __init__(self, full_rate):
        self._full_rate = full_rate
        super().__init__()
        self.accept = Signal()

    def elaborate(self, platform):
        m = Module()
        accept = registered_output(m, self.o, self.i.valid, -self.i.payload,
                                   full_rate=self._full_rate)
        m.d.comb += [self.i.ready.eq(accept), self.accept.eq(accept)]
        return m


CODES = np.arange(-31, 32)


@pytest.mark.parametrize("full_rate", [False, True])
@pytest.mark.parametrize("stall_in, stall_out, seed", [(0.0, 0.0, 0), (0.3, 0.6, 1), (0.6, 0.3, 2),
                                                       (0.0, 0.8, 3)])
def test_outputs_every_push_once_in_order(full_rate, stall_in, stall_out, seed):
    run = run_stream(Negate(full_rate), CODES, stall_in=stall_in, stall_out=stall_out, seed=seed)
    assert run.outputs.tolist() == (-CODES).tolist()


@pytest.mark.parametrize("full_rate, ii", [(False, 2), (True, 1)])
def test_throughput(full_rate, ii):
    run = run_stream(Negate(full_rate), CODES)
    assert np.diff(run.in_cycles).tolist() == [ii] * (len(CODES) - 1)
    assert run.latencies.tolist() == [1] * len(CODES)


@pytest.mark.parametrize("full_rate", [False, True])
def test_accept_does_not_follow_ready_combinationally(full_rate):
    core = Negate(full_rate)
    seen = []

    async def bench(ctx):
        ctx.set(core.i.valid, 1)
        ctx.set(core.i.payload, 5)
        for ready in (0, 0, 0, 1, 0, 1):
            before = ctx.get(core.accept)
            ctx.set(core.o.ready, ready)
            await ctx.delay(1e-9)  # let combinational logic settle, no clock edge
            seen.append((before, ctx.get(core.accept)))
            await ctx.tick()

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert all(before == after for before, after in seen)
    # With o stalled, the plain register takes one push and the skid register a second one.
    accepts = [after for _, after in seen]
    assert accepts[:3] == ([1, 0, 0] if not full_rate else [1, 1, 0])
