"""The UART bridge: any hwnn core behind the host link of :mod:`hwnn.boards.protocol`.

``UartBridge(core, clock_hz=..., baud=...)`` is what a board holds: a UART receiver, the frame
checker and ring buffer (:class:`~hwnn.boards.receiver.FrameReceiver`), the core, the framer of
replies and results (:class:`~hwnn.boards.sender.FrameSender`) and a UART transmitter, all in
the ``sync`` domain. Rows go into the core's input stream ``i`` exactly as they arrived and its
output stream ``o`` comes back row by row, so whatever the core computes arrives at the host
bit for bit.
"""

from __future__ import annotations

import hashlib

from amaranth.hdl import Module, Shape, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..export import core_rtlil
from .protocol import BoardInfo
from .receiver import FrameReceiver, check_buffer
from .sender import FrameSender, check_batch
from .uart import UartRx, UartTx, baud_divisor

__all__ = ["UartBridge", "design_id", "DEFAULT_BAUD", "DEFAULT_CAPACITY", "DEFAULT_WINDOW",
           "DEFAULT_BATCH", "DEFAULT_TIMEOUT_S"]

#: The link's default rate: the highest the boards' FTDI bridges all take (the FT231X of the
#: ULX3S stops at 3 Mbaud).
DEFAULT_BAUD = 3_000_000

#: Bytes of the input ring buffer: one iCE40 block RAM as 512 x 8 (a quarter of an ECP5 one).
DEFAULT_CAPACITY = 512

#: INFER frames in flight: two, so the host sends one while the board works through the other.
DEFAULT_WINDOW = 2

#: Most output rows per RESULT frame: 16 share a frame's 7 bytes of overhead well (a 2-byte row
#: costs 2.44 bytes on the wire instead of 9) for 16 rows of FIFO.
DEFAULT_BATCH = 16

#: A frame whose bytes stop for this long is dropped: far above the gaps a USB serial adapter
#: leaves between its packets (a few ms at worst), far below a human's patience.
DEFAULT_TIMEOUT_S = 0.05


def design_id(core) -> int:
    """A 32-bit fingerprint of ``core``: the first four bytes of the SHA-256 of its RTLIL.

    Two cores built from the same spec by the same hwnn have the same id; the board reports
    it in ``INFO_REPLY``, so the host can refuse to check a board against another design.
    Elaborates ``core``: give it a core that is not otherwise used.
    """
    return int.from_bytes(hashlib.sha256(core_rtlil(core, "core").encode()).digest()[:4],
                          "little")


def _payload_bits(core, port: str) -> int:
    return Shape.cast(getattr(core, port).signature.members["payload"].shape).width


class UartBridge(wiring.Component):
    """A core behind a UART: rows arrive in ``INFER`` frames and results leave in ``RESULT``
    frames (:mod:`hwnn.boards.protocol` describes every byte).

    Throughput is the link's: a frame of ``r`` rows of ``b`` bytes takes at least
    ``10 * divisor * (r * b + 7)`` cycles to arrive (5 body bytes and two ``END`` around the
    rows), and a ``RESULT`` frame of ``k`` rows ``10 * divisor * (k * out_bytes + 7)`` to leave.
    The core runs at its own rate between a buffer of ``capacity`` bytes and a FIFO of ``batch``
    output rows; :func:`hwnn.board_run.link_summary` reports both rates.

    Parameters
    ----------
    core : amaranth.lib.wiring.Component
        A core with one input stream ``i`` and one output stream ``o`` (every core and network
        of hwnn without per-sequence initial-state inputs).
    clock_hz : int
        The clock of the ``sync`` domain (the board's core clock).
    baud : int
        The UART's rate; the divisor is ``round(clock_hz / baud)``
        (:func:`~hwnn.boards.uart.baud_divisor` says which pairs work).
    capacity : int
        Bytes of the input ring buffer, a power of two.
    window : int
        ``INFER`` frames that may wait in the buffer at once.
    batch : int
        Most output rows in one ``RESULT`` frame (the depth of the sender's row FIFO).
    timeout_cycles : int, optional
        Cycles without a byte after which a frame is dropped (default
        :data:`DEFAULT_TIMEOUT_S` of the clock).
    design_id : int
        What ``INFO_REPLY`` reports as the design (:func:`design_id` of the core).

    Members
    -------
    rx : In(1), init 1
        The UART line from the host.
    tx : Out(1), init 1
        The UART line to the host.

    Raises
    ------
    TypeError
        ``core`` is not a Component with streams ``i`` and ``o``, or a parameter has the wrong
        type.
    ValueError
        A baud rate the clock cannot make, a ``capacity`` that is not a power of two holding
        ``window`` rows, or a ``design_id`` that is not 32 bits.
    NotImplementedError
        The core has inputs besides ``i`` (initial states of recurrent layers).
    """

    def __init__(self, core, *, clock_hz: int, baud: int = DEFAULT_BAUD,
                 capacity: int = DEFAULT_CAPACITY, window: int = DEFAULT_WINDOW,
                 batch: int = DEFAULT_BATCH, timeout_cycles: int | None = None,
                 design_id: int = 0):
        if not isinstance(core, wiring.Component) or not all(
                name in core.signature.members for name in ("i", "o")):
            raise TypeError(f"core must be a Component with input stream i and output stream "
                            f"o, not {core!r}")
        others = [name for name, member in core.signature.members.items()
                  if name != "i" and member.flow == wiring.In and member.is_signature]
        if others:
            raise NotImplementedError(
                f"a board bridge feeds only the core's input stream i; this core also takes "
                f"{', '.join(others)} (initial states), which the host link does not carry yet")
        self.divisor = baud_divisor(clock_hz, baud)
        if isinstance(design_id, bool) or not isinstance(design_id, int) \
                or not 0 <= design_id < 2**32:
            raise ValueError(f"design_id must be a 32-bit unsigned integer, not {design_id!r}")
        if timeout_cycles is None:
            timeout_cycles = max(1, round(clock_hz * DEFAULT_TIMEOUT_S))
        self.core = core
        self.in_bits, self.out_bits = _payload_bits(core, "i"), _payload_bits(core, "o")
        check_buffer(self.in_bits, capacity=capacity, window=window,
                     timeout_cycles=timeout_cycles)
        check_batch(self.out_bits, batch)
        self.receiver = FrameReceiver(self.in_bits, capacity=capacity, window=window,
                                      timeout_cycles=timeout_cycles)
        self.info = BoardInfo(in_bits=self.in_bits, out_bits=self.out_bits, capacity=capacity,
                              window=window, batch=batch, clock_hz=clock_hz, baud=baud,
                              design_id=design_id)
        self.sender = FrameSender(self.out_bits, self.info.payload(), batch=batch)
        self.clock_hz, self.baud = clock_hz, baud
        self.capacity, self.window, self.timeout_cycles = capacity, window, timeout_cycles
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        core, receiver, sender = self.core, self.receiver, self.sender
        m.submodules.uart_rx = uart_rx = UartRx(self.divisor)
        m.submodules.uart_tx = uart_tx = UartTx(self.divisor)
        m.submodules.receiver = receiver
        m.submodules.core = core
        m.submodules.sender = sender
        m.d.comb += [uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx)]
        wiring.connect(m, uart_rx.o, receiver.i)
        for source in ("error", "ack", "info"):
            wiring.connect(m, getattr(receiver, source), getattr(sender, source))
        wiring.connect(m, sender.o, uart_tx.i)
        # The core's payloads are layouts; the link carries their bits unchanged.
        m.d.comb += [
            core.i.valid.eq(receiver.o.valid), receiver.o.ready.eq(core.i.ready),
            Value.cast(core.i.payload).eq(receiver.o.payload),
            sender.result.valid.eq(core.o.valid), core.o.ready.eq(sender.result.ready),
            sender.result.payload.eq(Value.cast(core.o.payload)),
        ]
        return m
