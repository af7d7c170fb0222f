"""Drive a streaming core with numpy vectors in the Amaranth simulator and collect its outputs.

The harness is one producer and one consumer, both Amaranth testbenches. Each counts the clock
cycles itself, so the cycle stamps of input and output transfers are comparable: latency is
``out_cycles - in_cycles`` for a core that emits one output per input, in order.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Value
from amaranth.sim import Simulator

from .payload import PayloadCodec

__all__ = ["StreamRun", "run_stream"]


@dataclass(frozen=True)
class StreamRun:
    """What :func:`run_stream` observed.

    ``outputs`` has one row per output transfer (int64 codes); ``in_cycles`` / ``out_cycles``
    are the clock cycles (counted from 0 at the start) in which each input was accepted and
    each output taken; ``cycles`` is how long the run took.
    """
    outputs: np.ndarray
    in_cycles: np.ndarray
    out_cycles: np.ndarray
    cycles: int

    @property
    def latencies(self) -> np.ndarray:
        """Cycles from each input transfer to the output transfer of the same index."""
        n = min(len(self.in_cycles), len(self.out_cycles))
        return self.out_cycles[:n] - self.in_cycles[:n]


def _stall_pattern(rng, probability, count):
    if probability <= 0:
        return np.zeros(count, dtype=bool)
    return rng.random(count) < probability


def run_stream(core, inputs, *, n_outputs=None, stall_in=0.0, stall_out=0.0, seed=0, vcd=None,
               max_cycles=None, i_port="i", o_port="o", progress=None) -> StreamRun:
    """Simulate ``core``: send every row of ``inputs`` on its input stream, collect the outputs.

    Parameters
    ----------
    core : amaranth.lib.wiring.Component
        Has stream members ``i_port`` (In) and ``o_port`` (Out) whose payloads are scalars or
        ``ArrayLayout`` vectors; the core uses the ``sync`` domain.
    inputs : array of int, or dict from port name to array of int
        Integer codes, shape ``(n,)`` for scalar payloads or ``(n, lanes)`` for vectors. A dict
        feeds several input streams (such as the two operands of a join), one producer per
        port, each with its own stall pattern; every array needs the same ``n``, and
        ``i_port`` is not used.
    n_outputs : int
        Outputs to collect before stopping (default: one per input row).
    stall_in, stall_out : float
        Probability, each cycle, that a producer inserts an idle cycle between transfers
        (it never drops ``valid`` while a transfer is pending, as the stream rules require) and
        that the consumer holds ``ready`` low.
    seed : int
        Seed of the stall patterns.
    vcd : path
        Write a waveform of the run there.
    max_cycles : int
        Give up with ``TimeoutError`` after this many cycles (default: generous for the size).
    progress : callable(done, total), optional
        Called after every output transfer with the outputs taken so far and the number
        expected (a progress bar throttles its own display).

    Raises
    ------
    ValueError
        ``inputs`` do not fit the input payload, arrays of a dict differ in length, or a
        probability is outside [0, 1).
    TimeoutError
        The core stopped accepting inputs or producing outputs.
    """
    for name, p in (("stall_in", stall_in), ("stall_out", stall_out)):
        if not 0 <= p < 1:
            raise ValueError(f"{name} must be a probability in [0, 1), not {p!r}")
    feeds = inputs if isinstance(inputs, dict) else {i_port: inputs}
    o_stream = getattr(core, o_port)
    # An always_ready output has no ready to hold low: its consumer takes every output.
    o_always_ready = o_stream.signature.always_ready
    if o_always_ready and stall_out:
        raise ValueError(f"stall_out must be 0 for an always_ready output stream, "
                         f"not {stall_out!r}")
    i_streams = {port: getattr(core, port) for port in feeds}
    packed = {}
    for port, values in feeds.items():
        codec = PayloadCodec.for_shape(i_streams[port].signature.members["payload"].shape)
        packed[port] = [codec.pack(row) for row in codec.rows(values)]
    lengths = {port: len(rows) for port, rows in packed.items()}
    n_in = len(next(iter(packed.values())))
    if set(lengths.values()) != {n_in}:
        raise ValueError(f"inputs must have the same number of rows on every port, not {lengths}")
    out_codec = PayloadCodec.for_shape(o_stream.signature.members["payload"].shape)
    n_out = n_in if n_outputs is None else int(n_outputs)
    if max_cycles is None:
        latency = getattr(core, "latency", 0) or 0
        ii = getattr(core, "ii", 1) or 1
        slack = 1 / (1 - max(stall_in, stall_out))
        max_cycles = int(1000 + (latency + (n_in + n_out) * ii * 2) * slack * 4)

    rng = np.random.default_rng(seed)
    idle_in = {port: _stall_pattern(rng, stall_in, max_cycles + 1) for port in feeds}
    hold_out = _stall_pattern(rng, stall_out, max_cycles + 1)
    in_cycles = {port: [] for port in feeds}
    out_cycles, outputs = [], []
    finished = {"cycles": 0}

    out_payload = Value.cast(o_stream.payload)

    async def producer(ctx, port):
        i_stream, rows, idle = i_streams[port], packed[port], idle_in[port]
        in_payload = Value.cast(i_stream.payload)
        index, cycle, pending = 0, 0, False
        while index < n_in:
            if not pending and not idle[cycle]:
                ctx.set(in_payload, rows[index])
                ctx.set(i_stream.valid, 1)
                pending = True
            _, _, ready = await ctx.tick().sample(i_stream.ready)
            if pending and ready:
                in_cycles[port].append(cycle)
                index += 1
                pending = False
                ctx.set(i_stream.valid, 0)
            cycle += 1
            if cycle > max_cycles:
                raise TimeoutError(f"core accepted {index} of {n_in} inputs in {max_cycles} cycles")

    async def consumer(ctx):
        cycle = 0
        while len(outputs) < n_out:
            ready = not hold_out[cycle]
            if not o_always_ready:
                ctx.set(o_stream.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(o_stream.valid, out_payload)
            if ready and valid:
                outputs.append(out_codec.unpack(payload))
                out_cycles.append(cycle)
                if progress is not None:
                    progress(len(outputs), n_out)
            cycle += 1
            if cycle > max_cycles:
                raise TimeoutError(f"core produced {len(outputs)} of {n_out} outputs in "
                                   f"{max_cycles} cycles")
        if not o_always_ready:
            ctx.set(o_stream.ready, 0)
        finished["cycles"] = cycle

    sim = Simulator(core)
    sim.add_clock(1e-8)
    # Open the waveform before adding the testbenches: if it cannot be written, nothing has
    # created their coroutines yet (which Python would report as never awaited).
    with sim.write_vcd(str(vcd)) if vcd else contextlib.nullcontext():
        for port in feeds:
            sim.add_testbench(functools.partial(producer, port=port))
        sim.add_testbench(consumer)
        sim.run()

    shape = (len(outputs),) if out_codec.lanes is None else (len(outputs), out_codec.lanes)
    return StreamRun(
        outputs=np.asarray(outputs, dtype=np.int64).reshape(shape),
        # A row is in once its last port has taken it (a join takes all of them at once).
        in_cycles=np.max([np.asarray(cycles, dtype=np.int64)[:min(map(len, in_cycles.values()))]
                          for cycles in in_cycles.values()], axis=0),
        out_cycles=np.asarray(out_cycles, dtype=np.int64),
        cycles=finished["cycles"],
    )
