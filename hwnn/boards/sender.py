"""The board's sending half of the host link: replies and results framed onto the UART.

:class:`FrameSender` turns each error code, acknowledgement, ``INFO`` request and output row into
one frame of :mod:`hwnn.boards.protocol` (kind, length, payload, CRC-16, escaped, between two
``END`` bytes) and hands its bytes one by one to :class:`~hwnn.boards.uart.UartTx`.
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.crc import Processor
from amaranth.lib.wiring import In, Out

from .protocol import CRC, END, ESC, ESC_END, ESC_ESC, Kind, row_bytes

__all__ = ["FrameSender", "check_batch"]


def check_batch(out_bits: int, batch: int) -> None:
    """Raise the errors :class:`FrameSender` raises for ``out_bits`` and ``batch``."""
    for name, value in (("out_bits", out_bits), ("batch", batch)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an integer, not {value!r}")
        if value < 1:
            raise ValueError(f"{name} must be at least 1, not {value}")
    if batch > 255 or batch * row_bytes(out_bits) > 0xFFFF:   # one byte in INFO_REPLY
        raise ValueError(f"batch must be at most 255 rows and 65535 bytes of rows, not {batch} "
                         f"rows of {row_bytes(out_bits)} bytes")


class FrameSender(wiring.Component):
    """Frames replies and output rows, one whole frame at a time.

    When several sources wait, an error reply goes first, then an acknowledgement, then the
    ``INFO`` reply, then results, so flow control never waits behind results. Output rows wait
    in a FIFO of ``batch`` rows; a ``RESULT`` frame carries every row waiting when it starts:
    one when the link keeps up with the core (the least delay), up to ``batch`` when the core
    runs ahead, so the frame's 7 bytes of overhead are shared. The core waits only when the
    FIFO is full.

    Parameters
    ----------
    out_bits : int
        Bits of one output row (the core's output payload width).
    info : bytes
        The payload of the ``INFO_REPLY`` frame (:meth:`BoardInfo.payload`).
    batch : int
        Most rows in one ``RESULT`` frame, the depth of the row FIFO (1 to 255, and at most
        65535 bytes of rows).

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
        ``out_bits`` or ``batch`` is not a positive integer or ``batch`` is too large, or
        ``info`` is not bytes.
    """

    def __init__(self, out_bits: int, info: bytes, *, batch: int = 1):
        check_batch(out_bits, batch)
        if not isinstance(info, (bytes, bytearray)):
            raise TypeError(f"info must be bytes, not {info!r}")
        self.out_bits, self.info_payload, self.batch = out_bits, bytes(info), batch
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
        m.submodules.rows = rows = fifo.SyncFIFO(width=self.out_bits, depth=self.batch)
        m.d.comb += [rows.w_data.eq(self.result.payload), rows.w_en.eq(self.result.valid),
                     self.result.ready.eq(rows.w_rdy)]
        size = max(self.batch * self.out_bytes, len(self.info_payload), 1)
        state = Signal(range(len(_STATES)))
        after = Signal.like(state)          # where an escape returns to
        kind = Signal(8)
        length = Signal(16)                 # of the frame being sent
        count = Signal(range(size + 1))     # payload bytes still to send
        position = Signal(range(size))      # payload byte being sent (the INFO table's index)
        is_info = Signal()
        is_rows = Signal()                  # a RESULT frame: a new row after each out_bytes
        column = Signal(range(self.out_bytes))
        shift = Signal(8 * self.out_bytes)  # a result row (or an error code), sent from bit 0
        second = Signal(8)                  # the byte after an ESC
        info = Array(Const(byte, 8) for byte in self.info_payload or b"\0")

        # Each state sends one byte: the body's fields in order, each escaped when it is END or
        # ESC; no adder or comparator of lengths sits on the way to the transmitter.
        current = Signal(8)
        with m.Switch(state):
            with m.Case(_KIND):
                m.d.comb += current.eq(kind)
            with m.Case(_LEN0):
                m.d.comb += current.eq(length[:8])
            with m.Case(_LEN1):
                m.d.comb += current.eq(length[8:])
            with m.Case(_PAYLOAD):
                m.d.comb += current.eq(Mux(is_info, info[position], shift[:8]))
            with m.Case(_CRC0):
                m.d.comb += current.eq(crc.crc[:8])
            with m.Case(_CRC1):
                m.d.comb += current.eq(crc.crc[8:])
        special = (current == END) | (current == ESC)
        following = Signal.like(state)
        with m.Switch(state):
            with m.Case(_KIND):
                m.d.comb += following.eq(_LEN0)
            with m.Case(_LEN0):
                m.d.comb += following.eq(_LEN1)
            with m.Case(_LEN1):
                m.d.comb += following.eq(Mux(count == 0, _CRC0, _PAYLOAD))
            with m.Case(_PAYLOAD):
                m.d.comb += following.eq(Mux(count == 1, _CRC0, _PAYLOAD))
            with m.Case(_CRC0):
                m.d.comb += following.eq(_CRC1)
            with m.Case(_CRC1):
                m.d.comb += following.eq(_TAIL)

        def start(frame_kind, frame_length, row=0, info_frame=False, rows_frame=False):
            m.d.sync += [kind.eq(frame_kind), length.eq(frame_length), count.eq(frame_length),
                         position.eq(0), is_info.eq(info_frame), shift.eq(row), column.eq(0),
                         is_rows.eq(rows_frame), state.eq(_LEAD)]

        body = (state >= _KIND) & (state <= _CRC1)
        # A body byte is looked up into a register first and sent the cycle after (a byte
        # takes ten bit times to send, so the extra cycle costs nothing), which keeps the
        # lookup and the escape test off the path into the transmitter and the state.
        loaded = Signal()
        byte = Signal(8)
        escape = Signal()
        with m.If(state == _IDLE):
            with m.If(self.error.valid):
                m.d.comb += self.error.ready.eq(1)
                start(Kind.ERROR, 1, self.error.payload)
            with m.Elif(self.ack.valid):
                m.d.comb += self.ack.ready.eq(1)
                start(Kind.ACK, 0)
            with m.Elif(self.info.valid):
                m.d.comb += self.info.ready.eq(1)
                start(Kind.INFO_REPLY, len(self.info_payload), info_frame=True)
            with m.Elif(rows.r_rdy):
                # Every row waiting goes into this frame (at most `batch`, the FIFO's depth):
                # one row when the link keeps up, many when the core runs ahead of it.
                m.d.comb += rows.r_en.eq(1)
                start(Kind.RESULT, rows.level * self.out_bytes, rows.r_data, rows_frame=True)
        m.d.comb += self.o.valid.eq((state != _IDLE) & (~body | loaded))
        with m.If((state == _LEAD) | (state == _TAIL)):
            m.d.comb += self.o.payload.eq(END)
            with m.If(self.o.ready):
                m.d.sync += state.eq(Mux(state == _LEAD, _KIND, _IDLE))
        with m.Elif(state == _ESCAPE):
            m.d.comb += self.o.payload.eq(second)
            with m.If(self.o.ready):
                m.d.sync += state.eq(after)
        with m.Elif(body & ~loaded):
            m.d.sync += [byte.eq(current), escape.eq(special), loaded.eq(1),
                         second.eq(Mux(current == END, ESC_END, ESC_ESC)), after.eq(following)]
        with m.Elif(body):
            m.d.comb += self.o.payload.eq(Mux(escape, ESC, byte))
            with m.If(self.o.ready):
                # The CRC covers kind, length and payload: not its own two bytes.
                m.d.comb += [crc.data.eq(byte), crc.valid.eq(state <= _PAYLOAD),
                             crc.start.eq(state == _KIND)]
                m.d.sync += [loaded.eq(0), state.eq(Mux(escape, _ESCAPE, after))]
                with m.If(state == _PAYLOAD):
                    m.d.sync += [count.eq(count - 1), position.eq(position + 1),
                                 shift.eq(shift >> 8)]
                    with m.If(is_rows & (column == self.out_bytes - 1)):
                        m.d.sync += column.eq(0)
                        with m.If(count != 1):   # the frame's next row
                            m.d.comb += rows.r_en.eq(1)
                            m.d.sync += shift.eq(rows.r_data)
                    with m.Elif(is_rows):
                        m.d.sync += column.eq(column + 1)
        return m


_STATES = ("idle", "lead", "kind", "len0", "len1", "payload", "crc0", "crc1", "tail", "escape")
_IDLE, _LEAD, _KIND, _LEN0, _LEN1, _PAYLOAD, _CRC0, _CRC1, _TAIL, _ESCAPE = range(len(_STATES))
