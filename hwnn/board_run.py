"""Run a loaded spec on a board, or on a simulated one, through the UART host link.

What ``hwnn run`` calls: the input rows of :func:`hwnn.flow.stream_rows` are packed as the
core's payloads, sent by :class:`hwnn.boards.host.Host`, and the results compared with the
reference exactly as :func:`hwnn.flow.simulate` compares a simulation's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .boards.bridge import DEFAULT_BAUD, UartBridge, design_id
from .boards.host import Host, LinkError, LinkStats
from .boards.protocol import BoardInfo, pack_rows, unpack_rows, wire_bytes
from .boards.compiled_link import simulated_transport
from .boards.simulated import SimulatedLink
from .boards.uart import baud_divisor
from .flow import FlowError, Simulation, output_codes, stream_rows
from .sim import PayloadCodec
from .spec import Design

__all__ = ["BoardRun", "check_linkable", "run_on_board", "simulated_board", "core_rows_per_second", "link_summary",
           "link_rows_per_second", "SIMULATED_CLOCK_HZ"]

#: The clock of a simulated board when none is given: the iCEBreaker's oscillator (3 Mbaud is
#: then 4 cycles per bit, the fewest the receiver takes).
SIMULATED_CLOCK_HZ = 12_000_000


@dataclass(frozen=True)
class BoardRun:
    """A run over the link: the comparison with the reference, the link's figures and what
    the board said about itself."""
    simulation: Simulation
    stats: LinkStats
    info: BoardInfo


def _codec(core, port: str) -> PayloadCodec:
    return PayloadCodec.for_shape(getattr(core, port).signature.members["payload"].shape)


def simulated_board(design: Design, *, clock_hz: int = SIMULATED_CLOCK_HZ,
                    baud: int = DEFAULT_BAUD, engine: str = "auto",
                    **bridge_args) -> SimulatedLink:
    """A fresh core of ``design`` behind a :class:`UartBridge`, in a simulator: ``engine``
    ``"pysim"``, ``"cxxrtl"``, ``"verilator"`` or ``"auto"`` (a compiled model where a C++
    compiler is found, else pysim with an ``EngineFallback`` warning) as
    :func:`~hwnn.boards.compiled_link.simulated_transport` takes it.

    Raises
    ------
    FlowError
        A baud rate the clock cannot make, or a design with initial-state inputs.
    ValueError
        A bad ``bridge_args`` value (capacity, window...) or an unknown ``engine``.
    hwnn.sim.EngineError
        ``engine="cxxrtl"`` or ``"verilator"`` without a C++ compiler or the tool, or its
        build failed.
    """
    # Refuse what the bridge would refuse before building a core that would go unused.
    try:
        baud_divisor(clock_hz, baud)
    except ValueError as exc:
        raise FlowError(f"{design.name}: {exc}") from None
    check_linkable(design)
    bridge = UartBridge(design.build(), clock_hz=clock_hz, baud=baud,
                        design_id=design_id(design.build()), **bridge_args)
    return simulated_transport(bridge, engine=engine)


def check_linkable(design: Design) -> None:
    """Raise :class:`FlowError` for a design the UART bridge cannot carry: one whose layers
    take initial states (extra input streams the host link has no frames for)."""
    if getattr(design.plan, "stateful", ()):
        raise FlowError(f"{design.name}: the host link does not carry initial states yet "
                        f"(layers with initial_state = true)")


def run_on_board(design: Design, x: np.ndarray, transport, *, timeout: float = 2.0) -> BoardRun:
    """Send input codes ``x`` through ``transport`` to a board holding ``design``, read the
    results and compare them with the reference.

    Raises
    ------
    LinkError
        The board holds another design (its INFO_REPLY names a different design id or
        payload widths), refused a frame, sent a damaged one or went quiet.
    """
    core = design.build()
    clock = (lambda: transport.seconds) if isinstance(transport, SimulatedLink) else None
    host = Host(transport, timeout=timeout, clock=clock)
    info = host.info()
    expected = design_id(core)
    in_codec, out_codec = _codec(core, "i"), _codec(core, "o")
    if (info.design_id, info.in_bits, info.out_bits) != (expected, in_codec.bits,
                                                          out_codec.bits):
        raise LinkError(f"the board holds another design (id {info.design_id:#010x}, "
                        f"{info.in_bits}-bit rows in, {info.out_bits}-bit out) than "
                        f"{design.name} (id {expected:#010x}, {in_codec.bits} in, "
                        f"{out_codec.bits} out): build it with `hwnn build`")
    want = np.asarray(design.reference(x))
    rows, n_out = stream_rows(design, core, x, want)
    data, stats = host.infer(pack_rows(in_codec, rows), info, n_out)
    got, want, framing = output_codes(design, unpack_rows(out_codec, data), want, len(x))
    engine = f"simulated board ({transport.engine})" if clock is not None else "board"
    return BoardRun(Simulation(design, core, x, got, want, cycles=0, seconds=stats.seconds,
                               engine=engine, framing=framing), stats, info)


def core_rows_per_second(design: Design, core, clock_hz: float) -> float:
    """Input rows per second the core itself takes at ``clock_hz``: one per ``ii`` cycles, or
    for a network over sequences one sequence per ``period(steps)`` cycles."""
    steps = design.sequence_length
    if steps is not None and hasattr(core, "period"):
        return clock_hz * steps / core.period(steps)
    return clock_hz / max(1, core.ii or 1)


def link_rows_per_second(info: BoardInfo, rows_out_per_row: float = 1.0) -> float:
    """Input rows per second the link carries at best: full frames of ``info.max_rows`` rows
    one way, full ``RESULT`` frames of ``info.batch`` rows and one ``ACK`` per input frame the
    other (10 bits per byte, no escapes); the slower direction sets the rate."""
    rows = max(1, info.max_rows)
    seconds_per_byte = 10 / info.baud
    inward = wire_bytes(rows * info.in_bytes) / rows * seconds_per_byte
    outward = (rows_out_per_row * wire_bytes(info.batch * info.out_bytes) / info.batch
               + wire_bytes(0) / rows) * seconds_per_byte
    return 1 / max(inward, outward)


def _rate(value: float) -> str:
    return f"{value:,.0f} "


def link_summary(design: Design, run: BoardRun) -> list[str]:
    """Lines saying what the link moved, how fast, and whether the link or the core limits
    the rate (the core's own rate at the board's clock against the link's best)."""
    info, stats = run.info, run.stats
    what = "time steps" if design.sequence_length is not None else "vectors"
    core_rate = core_rows_per_second(design, run.simulation.core, info.clock_hz)
    best = link_rows_per_second(info, stats.rows_out / max(1, stats.rows_in))
    slower = "link" if best < core_rate else "core"
    return [
        f"link: {stats.rows_in} {what} in {stats.frames} frames, {stats.bytes_sent} bytes "
        f"sent and {stats.bytes_received} received in {stats.seconds * 1e3:.3g} ms at "
        f"{info.baud / 1e6:g} Mbaud: {_rate(stats.rows_per_second)}{what}/s",
        f"throughput: the link carries at most {_rate(best)}{what}/s (full frames of "
        f"{info.max_rows}); the core alone takes {_rate(core_rate)}{what}/s at "
        f"{info.clock_hz / 1e6:g} MHz: the {slower} is the bottleneck",
    ]
