import gc
import re
import warnings

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hwnn.cores._component import inspected
from hwnn.cores.requantize import Requantize
from hwnn.fixed import SQ, requantize
from hwnn.sim import StreamRun, run_stream


class JoinAdd(wiring.Component):
    """``o = i_a + i_b``: a join (one transfer takes both operands) into an output register."""
    i_a: In(stream.Signature(signed(4)))
    i_b: In(stream.Signature(signed(4)))
    o: Out(stream.Signature(signed(5)))

    def elaborate(self, platform):
        m = Module()
        free = ~self.o.valid | self.o.ready
        m.d.comb += [self.i_a.ready.eq(free & self.i_b.valid),
                     self.i_b.ready.eq(free & self.i_a.valid)]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(free & self.i_a.valid & self.i_b.valid):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(self.i_a.payload + self.i_b.payload)]
        return m


class Probe(wiring.Component):
    """Takes both inputs every cycle; for each ``i_a`` transfer, emits whether ``i_b`` was
    offered in the same cycle."""
    i_a: In(stream.Signature(unsigned(1)))
    i_b: In(stream.Signature(unsigned(1)))
    o: Out(stream.Signature(unsigned(1), always_ready=True))

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.i_a.ready.eq(1), self.i_b.ready.eq(1),
                     self.o.valid.eq(self.i_a.valid), self.o.payload.eq(self.i_b.valid)]
        m.domains.sync = ClockDomain()  # run_stream clocks the sync domain
        return m


A = np.array([-8, -1, 0, 3, 7, 5, -4, 2, 6, -7] * 3)
B = np.array([7, -8, 1, 0, 7, -5, -4, 1, -3, 0] * 3)


def test_reports_progress_and_counts_cycles():
    calls = []
    codes = SQ(4, 4).codes()
    run = run_stream(Requantize(SQ(4, 4), SQ(2, 2)), codes, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(done, 256) for done in range(1, 256 + 1)]
    assert run.cycles >= len(codes) and len(run.in_cycles) == len(codes)
    np.testing.assert_array_equal(run.outputs, requantize(codes, SQ(4, 4), SQ(2, 2)))
    # Without stalls the core takes one input per cycle and keeps its latency.
    np.testing.assert_array_equal(run.in_cycles, np.arange(len(codes)))
    assert set(run.latencies.tolist()) == {run.latencies[0]} and run.latencies[0] >= 1


def test_latencies_pair_inputs_and_outputs_by_index():
    run = StreamRun(outputs=np.zeros(3), in_cycles=np.array([0, 1, 5]),
                    out_cycles=np.array([2, 4]), cycles=6)
    assert run.latencies.tolist() == [2, 3]


def test_times_out_on_a_stuck_core():
    core = Requantize(SQ(4, 4), SQ(2, 2))
    with pytest.raises(TimeoutError, match=re.escape("core produced 3 of 5 outputs in 20 cycles")
                       + "$"):
        run_stream(core, np.zeros(3, dtype=int), n_outputs=5, max_cycles=20)


@pytest.mark.parametrize("options, message", [
    ({"stall_out": 1}, "stall_out must be a probability in [0, 1), not 1"),
    ({"stall_in": -0.1}, "stall_in must be a probability in [0, 1), not -0.1"),
])
def test_refuses_a_bad_stall_probability(options, message):
    core = Requantize(SQ(4, 4), SQ(2, 2))
    with pytest.raises(ValueError, match=re.escape(message) + "$"):
        run_stream(core, [0], **options)
    run_stream(core, [0])  # the refused core is still usable


def test_refuses_to_stall_an_always_ready_output():
    with pytest.raises(ValueError, match=re.escape(
            "stall_out must be 0 for an always_ready output stream, not 0.5") + "$"):
        run_stream(inspected(Probe()), {"i_a": [0], "i_b": [0]}, stall_out=0.5)


def test_refuses_inputs_outside_the_payload():
    with pytest.raises(ValueError, match=re.escape(
            "payload codes must lie in [-128, 127], found [0, 128]") + "$"):
        run_stream(inspected(Requantize(SQ(4, 4), SQ(2, 2))), [0, 128])


def test_writes_a_waveform(tmp_path):
    run_stream(Requantize(SQ(4, 4), SQ(2, 2)), [0, 1], vcd=tmp_path / "run.vcd")
    assert "$enddefinitions" in (tmp_path / "run.vcd").read_text()


def test_an_unwritable_vcd_leaves_no_coroutine_behind(tmp_path):
    """The error of a bad waveform path came with four 'never awaited' RuntimeWarnings."""
    gc.collect()  # coroutines other tests left behind report here, not below
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(IsADirectoryError):
            run_stream(Requantize(SQ(4, 4), SQ(2, 2)), [0, 1], vcd=tmp_path)
        gc.collect()
    assert [str(w.message) for w in caught] == []


def test_several_input_streams_feed_a_join():
    run = run_stream(JoinAdd(), {"i_a": A, "i_b": B}, stall_in=0.4, stall_out=0.3, seed=2)
    assert run.outputs.tolist() == (A + B).tolist()
    assert len(run.in_cycles) == len(A) and (run.out_cycles > run.in_cycles).all()


def test_each_input_stream_has_its_own_row_count():
    # (A recurrent core's initial states come one per sequence.) A join takes a row of each
    # port per output, so i_a's third row waits for ever; the timeout names the port.
    core = JoinAdd()
    with pytest.raises(TimeoutError, match=re.escape(
            "core accepted 2 of 3 inputs on i_a in 50 cycles") + "$"):
        run_stream(core, {"i_a": [1, 2, 3], "i_b": [1, 2]}, n_outputs=2, max_cycles=50)
    run = run_stream(core, {"i_a": [1], "i_b": [2]})  # the core is still usable
    assert run.outputs.tolist() == [3]


def test_the_same_seed_gives_the_same_run():
    def run(seed):
        return run_stream(JoinAdd(), {"i_a": A, "i_b": B}, stall_in=0.5, stall_out=0.5, seed=seed)
    first, again, other = run(7), run(7), run(8)
    for field in ("outputs", "in_cycles", "out_cycles"):
        np.testing.assert_array_equal(getattr(first, field), getattr(again, field))
    assert first.cycles == again.cycles
    assert (first.cycles, first.in_cycles.tolist()) != (other.cycles, other.in_cycles.tolist())
    assert other.outputs.tolist() == first.outputs.tolist()


def test_each_input_stream_stalls_on_its_own():
    ones = np.ones(60, dtype=int)
    offered = run_stream(Probe(), {"i_a": ones, "i_b": ones}, stall_in=0.5, seed=3).outputs
    # With one shared idle pattern i_b would be offered in every cycle i_a is.
    assert 0 < offered.sum() < len(offered)
    steady = run_stream(Probe(), {"i_a": ones, "i_b": ones}).outputs
    assert steady.tolist() == ones.tolist()
