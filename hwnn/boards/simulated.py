"""A simulated board: the bridge and its core in Amaranth's simulator, reached through the pins.

:class:`LinkShell` puts a host-side UART transmitter on the bridge's ``rx`` pin and a host-side
UART receiver on its ``tx`` pin, so every byte crosses the line bit by bit, at the bridge's own
baud rate, exactly as on a board. :class:`SimulatedTransport` runs that shell in the simulator
and offers the same ``write``/``read`` as a serial port, so :class:`~hwnn.boards.host.Host`
drives a simulated board and a real one with the same code. :class:`SimulatedLink` is what
every simulated board's transport shares (the compiled one is
:class:`~hwnn.boards.compiled_link.CompiledTransport`): the host's queue, the read loop and its
cycle counts, so every engine gives the same bytes at the same cycles.
"""

from __future__ import annotations

from collections import deque

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from .bridge import UartBridge
from .uart import RX_LAYOUT, UartRx, UartTx

__all__ = ["LinkShell", "SimulatedLink", "SimulatedTransport", "SEND_BYTE", "SEND_GAP",
           "SEND_BREAK", "HOST_LAYOUT"]

#: What the host side of :class:`LinkShell` does with one input: send a byte, keep the line
#: idle (high) for ``gap_cycles``, or hold it low for two byte times (a break: the receiver
#: sees a byte without its stop bit).
SEND_BYTE, SEND_GAP, SEND_BREAK = 0, 1, 2

HOST_LAYOUT = data.StructLayout({"data": 8, "action": 2})


class LinkShell(wiring.Component):
    """A bridge between a host-side UART transmitter and receiver: the whole link as one
    component with byte streams, for simulation.

    Parameters
    ----------
    bridge : UartBridge
    gap_cycles : int
        Length of a ``SEND_GAP``.

    Members
    -------
    i : In(stream.Signature(HOST_LAYOUT))
        What the host sends: ``data`` with ``action`` ``SEND_BYTE``, ``SEND_GAP`` or
        ``SEND_BREAK``.
    o : Out(stream.Signature(RX_LAYOUT, always_ready=True))
        The bytes the host receives.
    """

    def __init__(self, bridge: UartBridge, *, gap_cycles: int = 1000):
        if not isinstance(bridge, UartBridge):
            raise TypeError(f"bridge must be a UartBridge, not {bridge!r}")
        self.bridge, self.gap_cycles = bridge, gap_cycles
        super().__init__({"i": In(stream.Signature(HOST_LAYOUT)),
                          "o": Out(stream.Signature(RX_LAYOUT, always_ready=True))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.bridge = bridge = self.bridge
        m.submodules.host_tx = host_tx = UartTx(bridge.divisor)
        m.submodules.host_rx = host_rx = UartRx(bridge.divisor)
        wiring.connect(m, host_rx.o, wiring.flipped(self.o))
        m.d.comb += host_rx.rx.eq(bridge.tx)
        break_cycles = 20 * bridge.divisor
        hold = Signal(range(max(self.gap_cycles, break_cycles) + 1))
        low = Signal()
        m.d.comb += bridge.rx.eq(host_tx.tx & ~low)
        action = self.i.payload.action
        with m.If(hold != 0):
            m.d.sync += hold.eq(hold - 1)
            with m.If(hold == 1):
                m.d.sync += low.eq(0)
        with m.Elif(action == SEND_BYTE):
            m.d.comb += [host_tx.i.valid.eq(self.i.valid), host_tx.i.payload.eq(self.i.payload.data),
                         self.i.ready.eq(host_tx.i.ready)]
        with m.Elif(host_tx.i.ready):   # after the byte before it has gone out
            m.d.comb += self.i.ready.eq(1)
            with m.If(self.i.valid):
                m.d.sync += [hold.eq(Mux(action == SEND_BREAK, break_cycles, self.gap_cycles)),
                             low.eq(action == SEND_BREAK)]
        return m


class SimulatedLink:
    """What the transports of a simulated board share: a :class:`LinkShell` around the bridge,
    the ``write``/``read`` of a serial port and the simulated time.

    ``write`` queues bytes for the host-side transmitter; ``read`` runs the simulation until
    at least one byte has arrived or ``timeout`` seconds of *simulated* time have passed at the
    bridge's clock, and returns what arrived. ``gap`` and ``line_break`` queue an idle line or
    a held-low line (for tests of the bridge's error handling).

    The simulation runs in chunks of :attr:`CHUNK` cycles and ``read`` looks for bytes after
    each: every engine does the same, so the cycle counts agree. In each cycle the host offers
    the head of its queue and samples ``i.ready`` and ``o`` before the clock edge, and the
    inputs of the cycle a chunk ends on are set before the chunk returns: what is queued
    between two ``read`` calls is offered from the cycle after.

    A subclass runs the shell: it implements ``_queue(byte, action)`` and ``_run(limit)``
    (simulate chunks until a byte arrived or ``cycles`` reached ``limit``, appending what
    arrived to ``_from_board`` and advancing ``cycles``).

    Attributes
    ----------
    shell : LinkShell
    clock_hz : int
        The bridge's clock.
    cycles : int
        Clock cycles simulated so far.
    engine : str
        Which simulator runs the shell.
    """

    #: Cycles simulated between checks of what has arrived.
    CHUNK = 256

    engine = ""

    def __init__(self, bridge: UartBridge, *, gap_cycles: int = 1000):
        self.shell = LinkShell(bridge, gap_cycles=gap_cycles)
        self.clock_hz = bridge.clock_hz
        self.cycles = 0
        self._from_board = bytearray()

    def _queue(self, byte: int, action: int) -> None:
        raise NotImplementedError

    def _run(self, limit: int) -> None:
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        """Queue ``data`` for the line (sent as the simulation runs)."""
        for byte in bytes(data):
            self._queue(byte, SEND_BYTE)

    def gap(self) -> None:
        """Queue an idle line of ``gap_cycles`` cycles."""
        self._queue(0, SEND_GAP)

    def line_break(self) -> None:
        """Queue a line held low for ``gap_cycles`` cycles."""
        self._queue(0, SEND_BREAK)

    def read(self, size: int, timeout: float) -> bytes:
        """What has arrived, at most ``size`` bytes: simulates until at least one byte is
        there or ``timeout`` seconds of the bridge's clock have passed (then ``b""``)."""
        limit = self.cycles + max(1, round(timeout * self.clock_hz))
        if not self._from_board and self.cycles < limit:
            self._run(limit)
        data = bytes(self._from_board[:size])
        del self._from_board[:size]
        return data

    @property
    def seconds(self) -> float:
        """Simulated time so far at the bridge's clock (a :class:`~hwnn.boards.host.Host`
        clock)."""
        return self.cycles / self.clock_hz

    def close(self) -> None:
        """Release what the simulation holds."""


class SimulatedTransport(SimulatedLink):
    """A board in Amaranth's simulator, with the ``write``/``read`` of a serial port
    (:class:`SimulatedLink` says how they run); ``vcd`` is a path for a waveform of the run,
    complete after :meth:`close`.
    """

    # The simulator's clock period; only cycles matter, the bridge's clock sets the timeouts.
    _PERIOD = 1e-6

    engine = "pysim"

    def __init__(self, bridge: UartBridge, *, gap_cycles: int = 1000, vcd=None):
        super().__init__(bridge, gap_cycles=gap_cycles)
        self._to_board = deque()
        self._sim = Simulator(self.shell)
        self._sim.add_clock(self._PERIOD)
        self._sim.add_testbench(self._host)
        self._vcd = None
        if vcd is not None:
            self._vcd = self._sim.write_vcd(vcd)
            self._vcd.__enter__()

    async def _host(self, ctx):
        """Offer the queued bytes to the shell and collect what it receives, cycle by cycle."""
        shell = self.shell
        while True:
            offered = bool(self._to_board)
            if offered:
                byte, action = self._to_board[0]
                ctx.set(shell.i.payload.data, byte)
                ctx.set(shell.i.payload.action, action)
            ctx.set(shell.i.valid, offered)
            taken = offered and ctx.get(shell.i.ready)
            if ctx.get(shell.o.valid) and not ctx.get(shell.o.payload.error):
                self._from_board.append(ctx.get(shell.o.payload.data))
            await ctx.tick()
            self.cycles += 1
            if taken:
                self._to_board.popleft()

    def _queue(self, byte: int, action: int) -> None:
        self._to_board.append((byte, action))

    def _run(self, limit: int) -> None:
        while not self._from_board and self.cycles < limit:
            self._sim.run_until((min(self.cycles + self.CHUNK, limit) + 0.5) * self._PERIOD)

    def close(self) -> None:
        if self._vcd is not None:
            self._vcd.__exit__(None, None, None)
            self._vcd = None
