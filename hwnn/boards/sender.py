"""The board's sending half of the host link: replies and results framed onto the UART.

:class:`FrameSender` turns each error code, acknowledgement, ``INFO`` request and output row into
one frame of :mod:`hwnn.boards.protocol` (kind, length, payload, CRC-16, escaped, between two
``END`` bytes) and hands its bytes one by one to :class:`~hwnn.boards.uart.UartTx`.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.crc import Processor
from amaranth.lib.wiring import In, Out

from .protocol import CRC, END, ESC, ESC_END, ESC_ESC, HEADER_BYTES, Kind, row_bytes

__all__ = ["FrameSender"]


class FrameSender(wiring.Component):
    """Frames replies and output rows, one whole frame at a time.

    When several sources wait, an error reply goes first, then an acknowledgement, then the
    ``INFO`` reply, then a result, so flow control never waits behind results. A result row is
    taken from ``result`` when its frame starts (the core may go on meanwhile).

    Parameters
    ----------
    out_bits : int
        Bits of one output row (the core's output payload width).
    info : bytes
        The payload of the ``INFO_REPLY`` frame (:meth:`BoardInfo.payload`).

    Members
    -------
    error : In(stream.Signature(4))
    ack : In(stream.Signature(0))
    info : In(stream.Signature(0))
    result : In(stream.Signature(out_bits))
    o : Out(stream.Signature(8))
        Wire bytes for the UART transmitter.

    Raises
    ------
    TypeError, ValueError
        ``out_bits`` is not a positive integer, or ``info`` is not bytes.
    """

    def __init__(self, out_bits: int, info: bytes):
        if isinstance(out_bits, bool) or not isinstance(out_bits, int):
            raise TypeError(f"out_bits must be an integer, not {out_bits!r}")
        if out_bits < 1:
            raise ValueError(f"out_bits must be at least 1, not {out_bits}")
        if not isinstance(info, (bytes, bytearray)):
            raise TypeError(f"info must be bytes, not {info!r}")
        self.out_bits, self.info_payload = out_bits, bytes(info)
        self.out_bytes = row_bytes(out_bits)
        super().__init__({
            "error": In(stream.Signature(4)),
            "ack": In(stream.Signature(0)),
            "info": In(stream.Signature(0)),
            "result": In(stream.Signature(out_bits)),
            "o": Out(stream.Signature(8)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = crc = Processor(CRC)
        size = max(self.out_bytes, len(self.info_payload), 1)
        payload = Signal(8 * size)
        length = Signal(range(size + 1))
        wide = Signal(16)
        m.d.comb += wide.eq(length)
        kind = Signal(8)
        index = Signal(range(HEADER_BYTES + size + 2 + 1))  # body byte being sent
        second = Signal(8)      # the byte after an ESC
        info_bits = Const(int.from_bytes(self.info_payload, "little"),
                          8 * max(1, len(self.info_payload)))

        # The body byte at `index`: kind, length, payload, then the CRC (least significant
        # byte first), which the processor holds once the payload has gone through it.
        last = HEADER_BYTES + length + 1       # index of the CRC's second byte
        current = Signal(8)
        with m.If(index == 0):
            m.d.comb += current.eq(kind)
        with m.Elif(index == 1):
            m.d.comb += current.eq(wide[:8])
        with m.Elif(index == 2):
            m.d.comb += current.eq(wide[8:])
        with m.Elif(index < HEADER_BYTES + length):
            m.d.comb += current.eq(payload.word_select((index - HEADER_BYTES)[:len(index)], 8))
        with m.Elif(index == last - 1):
            m.d.comb += current.eq(crc.crc[:8])
        with m.Else():
            m.d.comb += current.eq(crc.crc[8:])
        special = (current == END) | (current == ESC)

        def start(frame_kind, frame_length, frame_payload):
            m.d.sync += [kind.eq(frame_kind), length.eq(frame_length), index.eq(0),
                         payload.eq(frame_payload)]
            m.next = "lead"

        with m.FSM():
            with m.State("idle"):
                with m.If(self.error.valid):
                    m.d.comb += self.error.ready.eq(1)
                    start(Kind.ERROR, 1, self.error.payload)
                with m.Elif(self.ack.valid):
                    m.d.comb += self.ack.ready.eq(1)
                    start(Kind.ACK, 0, 0)
                with m.Elif(self.info.valid):
                    m.d.comb += self.info.ready.eq(1)
                    start(Kind.INFO_REPLY, len(self.info_payload), info_bits)
                with m.Elif(self.result.valid):
                    m.d.comb += self.result.ready.eq(1)
                    start(Kind.RESULT, self.out_bytes, self.result.payload)
            with m.State("lead"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(END)]
                with m.If(self.o.ready):
                    m.next = "body"
            with m.State("body"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(Mux(special, ESC, current))]
                with m.If(self.o.ready):
                    # The CRC covers kind, length and payload: not its own two bytes.
                    m.d.comb += [crc.data.eq(current), crc.valid.eq(index < last - 1),
                                 crc.start.eq(index == 0)]
                    m.d.sync += [index.eq(index + 1),
                                 second.eq(Mux(current == END, ESC_END, ESC_ESC))]
                    with m.If(special):
                        m.next = "escape"
                    with m.Elif(index == last):
                        m.next = "tail"
            with m.State("escape"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(second)]
                with m.If(self.o.ready & (index == last + 1)):
                    m.next = "tail"
                with m.Elif(self.o.ready):
                    m.next = "body"
            with m.State("tail"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(END)]
                with m.If(self.o.ready):
                    m.next = "idle"
        return m
