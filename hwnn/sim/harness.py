"""Drive a streaming core with numpy vectors in a simulator and collect its outputs.

The harness is one producer per input stream and one consumer, run cycle by cycle either as
Amaranth testbenches (``engine="pysim"``) or inside a compiled CXXRTL model
(``engine="cxxrtl"``, see :mod:`hwnn.sim.cxxrtl`) with the same stall patterns. Each counts the
clock cycles itself, so the cycle stamps of input and output transfers are comparable: latency is
``out_cycles - in_cycles`` for a core that emits one output per input, in order.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from amaranth.hdl import Value
from amaranth.sim import Simulator

from . import cxxrtl
from .payload import PayloadCodec

__all__ = ["ENGINES", "StreamPlan", "StreamRun", "plan_stream", "run_stream"]


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


ENGINES = ("pysim", "cxxrtl")


@dataclass(frozen=True)
class StreamPlan:
    """Everything both engines need for one run, checked and computed once.

    ``rows[port]`` holds the checked int64 codes of every row and ``codecs[port]`` their
    :class:`PayloadCodec` (each engine packs them its own way); ``idle_in[port]`` and
    ``hold_out`` are the stall patterns (``max_cycles + 1`` bools each, drawn from one
    ``numpy.random.default_rng(seed)``): in cycle ``c`` a producer without a pending transfer
    stays idle when ``idle_in[port][c]``, and the consumer holds ``ready`` low when
    ``hold_out[c]``.
    """
    ports: tuple
    rows: MappingProxyType
    codecs: MappingProxyType
    out_codec: PayloadCodec
    o_port: str
    o_always_ready: bool
    n_in: int
    n_out: int
    max_cycles: int
    idle_in: MappingProxyType
    hold_out: np.ndarray

    def in_timeout(self, index):
        return TimeoutError(f"core accepted {index} of {self.n_in} inputs in {self.max_cycles} cycles")

    def out_timeout(self, count):
        return TimeoutError(f"core produced {count} of {self.n_out} outputs in "
                            f"{self.max_cycles} cycles")

    def result(self, outputs, in_cycles, out_cycles, cycles) -> StreamRun:
        """The :class:`StreamRun` of rows ``outputs`` (unpacked codes), per-port ``in_cycles``."""
        lanes = self.out_codec.lanes
        shape = (len(outputs),) if lanes is None else (len(outputs), lanes)
        taken = min(map(len, in_cycles.values()))
        return StreamRun(
            outputs=np.asarray(outputs, dtype=np.int64).reshape(shape),
            # A row is in once its last port has taken it (a join takes all of them at once).
            in_cycles=np.max([np.asarray(c, dtype=np.int64)[:taken] for c in in_cycles.values()],
                             axis=0),
            out_cycles=np.asarray(out_cycles, dtype=np.int64),
            cycles=int(cycles),
        )


def plan_stream(core, inputs, *, n_outputs=None, stall_in=0.0, stall_out=0.0, seed=0,
                max_cycles=None, i_port="i", o_port="o") -> StreamPlan:
    """Check the arguments of :func:`run_stream` (same meaning) and compute its :class:`StreamPlan`.

    Raises
    ------
    ValueError
        As :func:`run_stream`.
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
    codecs, rows = {}, {}
    for port, values in feeds.items():
        shape = getattr(core, port).signature.members["payload"].shape
        codecs[port] = PayloadCodec.for_shape(shape)
        rows[port] = codecs[port].rows(values)
    lengths = {port: len(values) for port, values in rows.items()}
    n_in = len(next(iter(rows.values())))
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
    return StreamPlan(ports=tuple(feeds), rows=MappingProxyType(rows),
                      codecs=MappingProxyType(codecs), out_codec=out_codec,
                      o_port=o_port, o_always_ready=o_always_ready, n_in=n_in, n_out=n_out,
                      max_cycles=max_cycles, idle_in=MappingProxyType(idle_in),
                      hold_out=hold_out)


def run_stream(core, inputs, *, n_outputs=None, stall_in=0.0, stall_out=0.0, seed=0, vcd=None,
               max_cycles=None, i_port="i", o_port="o", progress=None,
               engine="pysim") -> StreamRun:
    """Simulate ``core``: send every row of ``inputs`` on its input stream, collect the outputs.

    Both engines run the same producers and consumer on the same stall patterns, so the same
    arguments give the same :class:`StreamRun` (outputs and every cycle stamp) in either.

    Parameters
    ----------
    core : amaranth.lib.wiring.Component
        Has stream members ``i_port`` (In) and ``o_port`` (Out) whose payloads are scalars or
        ``ArrayLayout`` vectors; the core uses the ``sync`` domain and starts with its registers
        at their init values (no reset pulse; ``rst`` stays low).
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
        Write a waveform of the run there (``engine="pysim"`` only).
    max_cycles : int
        Give up with ``TimeoutError`` after this many cycles (default: generous for the size).
    progress : callable(done, total), optional
        Called after every output transfer with the outputs taken so far and the number
        expected (a progress bar throttles its own display); the ``cxxrtl`` engine calls it
        once, at the end.
    engine : "pysim" or "cxxrtl"
        Amaranth's Python simulator, or a CXXRTL model compiled with the system C++ compiler
        (cached; see :func:`hwnn.sim.cxxrtl.run_cxxrtl`).

    Raises
    ------
    ValueError
        ``inputs`` do not fit the input payload, arrays of a dict differ in length, a
        probability is outside [0, 1), or ``engine`` is unknown.
    NotImplementedError
        ``vcd`` with ``engine="cxxrtl"``.
    TimeoutError
        The core stopped accepting inputs or producing outputs.
    hwnn.sim.cxxrtl.EngineError
        ``engine="cxxrtl"`` without a C++ compiler, or its build failed.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(map(repr, ENGINES))}, not {engine!r}")
    if vcd and engine != "pysim":
        raise NotImplementedError(f"vcd is only written by engine='pysim', not {engine!r}")
    plan = plan_stream(core, inputs, n_outputs=n_outputs, stall_in=stall_in, stall_out=stall_out,
                       seed=seed, max_cycles=max_cycles, i_port=i_port, o_port=o_port)
    if engine == "cxxrtl":
        run = plan.result(*cxxrtl.run_cxxrtl(core, plan))
        if progress is not None:
            progress(len(run.outputs), plan.n_out)
        return run
    return _run_pysim(core, plan, vcd, progress)


def _run_pysim(core, plan: StreamPlan, vcd, progress) -> StreamRun:
    """:func:`run_stream` in Amaranth's simulator: the producers and consumer are testbenches."""
    n_in, n_out, max_cycles = plan.n_in, plan.n_out, plan.max_cycles
    o_stream = getattr(core, plan.o_port)
    in_cycles = {port: [] for port in plan.ports}
    out_cycles, outputs = [], []
    finished = {"cycles": 0}

    out_payload = Value.cast(o_stream.payload)

    async def producer(ctx, port):
        i_stream, rows, idle = getattr(core, port), plan.rows[port], plan.idle_in[port]
        pack = plan.codecs[port].pack
        in_payload = Value.cast(i_stream.payload)
        index, cycle, pending = 0, 0, False
        while index < n_in:
            if not pending and not idle[cycle]:
                ctx.set(in_payload, pack(rows[index]))
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
                raise plan.in_timeout(index)

    async def consumer(ctx):
        cycle = 0
        while len(outputs) < n_out:
            ready = not plan.hold_out[cycle]
            if not plan.o_always_ready:
                ctx.set(o_stream.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(o_stream.valid, out_payload)
            if ready and valid:
                outputs.append(plan.out_codec.unpack(payload))
                out_cycles.append(cycle)
                if progress is not None:
                    progress(len(outputs), n_out)
            cycle += 1
            if cycle > max_cycles:
                raise plan.out_timeout(len(outputs))
        if not plan.o_always_ready:
            ctx.set(o_stream.ready, 0)
        finished["cycles"] = cycle

    sim = Simulator(core)
    sim.add_clock(1e-8)
    # Open the waveform before adding the testbenches: if it cannot be written, nothing has
    # created their coroutines yet (which Python would report as never awaited).
    with sim.write_vcd(str(vcd)) if vcd else contextlib.nullcontext():
        for port in plan.ports:
            sim.add_testbench(functools.partial(producer, port=port))
        sim.add_testbench(consumer)
        sim.run()
    return plan.result(outputs, in_cycles, out_cycles, finished["cycles"])
