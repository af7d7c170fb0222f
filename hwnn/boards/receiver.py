"""The board's receiving half of the host link: UART bytes in, checked input rows out.

:class:`FrameReceiver` undoes the escapes of :mod:`hwnn.boards.protocol`, checks every frame
(stop bits, escapes, length, CRC, kind, room, padding) and writes the rows of an ``INFER``
frame into a byte ring buffer as they arrive. Only when the frame's closing ``END`` shows it
good are the rows *committed*, that is handed to the reader that feeds the core; a bad frame is
rolled back whole and answered with an error code. So no row of a damaged frame ever reaches
the core, and the receiver needs no second copy of a frame.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import fifo, memory, stream, wiring
from amaranth.lib.crc import Processor
from amaranth.lib.wiring import In, Out

from .protocol import (CRC, END, ESC, ESC_END, ESC_ESC, HEADER_BYTES, TRAILER_BYTES, Error,
                       Kind, row_bytes)
from .uart import RX_LAYOUT

__all__ = ["FrameReceiver", "check_buffer", "ERROR_QUEUE"]

#: Error replies the receiver keeps while the sender is busy; more are dropped (a line flooded
#: with garbage makes errors faster than they can be answered).
ERROR_QUEUE = 4

# Body bytes the counter tells apart: the header's and "at least a shortest body".
_MAX_BODY = HEADER_BYTES + TRAILER_BYTES


def check_buffer(in_bits: int, *, capacity: int, window: int, timeout_cycles: int) -> None:
    """Raise the errors :class:`FrameReceiver` raises for these parameters, without building
    anything."""
    for name, value in (("in_bits", in_bits), ("capacity", capacity), ("window", window),
                        ("timeout_cycles", timeout_cycles)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an integer, not {value!r}")
        if value < 1:
            raise ValueError(f"{name} must be at least 1, not {value}")
    if capacity & (capacity - 1) or capacity < row_bytes(in_bits) or capacity > 0x8000:
        raise ValueError(f"capacity must be a power of two from one row "
                         f"({row_bytes(in_bits)} bytes) to 32768 bytes, not {capacity}")
    if window > 255:   # INFO_REPLY gives it one byte
        raise ValueError(f"window must be at most 255 frames, not {window}")
    if capacity < window * row_bytes(in_bits):
        raise ValueError(f"capacity {capacity} bytes holds fewer than window = {window} rows "
                         f"of {row_bytes(in_bits)} bytes")


class FrameReceiver(wiring.Component):
    """Checks incoming frames and passes the rows of good ``INFER`` frames on, in order.

    Parameters
    ----------
    in_bits : int
        Bits of one input row (the core's input payload width).
    capacity : int
        Bytes of the ring buffer, a power of two of at least one row (one block RAM holds 512
        or 2048 bytes).
    window : int
        ``INFER`` frames that may wait in the buffer at once (each is acknowledged when its
        last byte has left the buffer).
    timeout_cycles : int
        A frame is dropped with ``Error.TIMEOUT`` when no byte of it arrives for this many
        cycles.

    Members
    -------
    i : In(stream.Signature(RX_LAYOUT, always_ready=True))
        Bytes from :class:`~hwnn.boards.uart.UartRx`.
    o : Out(stream.Signature(in_bits))
        Committed input rows, one row per transfer; a row is read out of the buffer a byte per
        two cycles.
    error : Out(stream.Signature(4))
        :class:`~hwnn.boards.protocol.Error` codes to answer.
    info : Out(stream.Signature(0))
        A good ``INFO`` frame arrived.
    ack : Out(stream.Signature(0))
        One transfer per ``INFER`` frame whose bytes have all left the buffer.

    Raises
    ------
    TypeError, ValueError
        A parameter is not a positive integer, or ``capacity`` is not a power of two holding
        ``window`` rows.
    """

    def __init__(self, in_bits: int, *, capacity: int, window: int, timeout_cycles: int):
        check_buffer(in_bits, capacity=capacity, window=window, timeout_cycles=timeout_cycles)
        self.in_bits, self.capacity, self.window = in_bits, capacity, window
        self.timeout_cycles = timeout_cycles
        self.in_bytes = row_bytes(in_bits)
        super().__init__({
            "i": In(stream.Signature(RX_LAYOUT, always_ready=True)),
            "o": Out(stream.Signature(in_bits)),
            "error": Out(stream.Signature(4)),
            "info": Out(stream.Signature(0)),
            "ack": Out(stream.Signature(0)),
        })

    def elaborate(self, platform):
        m = Module()
        k = self.capacity.bit_length() - 1
        pointer = k + 1   # one more bit than an address: full and empty differ
        wr, cm, rd = (Signal(pointer, name=n) for n in ("wr", "cm", "rd"))
        m.submodules.buffer = buffer = memory.Memory(shape=8, depth=self.capacity, init=[])
        m.submodules.ends = ends = fifo.SyncFIFO(width=pointer, depth=self.window)
        m.submodules.errors = errors = fifo.SyncFIFO(width=4, depth=ERROR_QUEUE)
        m.submodules.crc = crc = Processor(CRC)
        m.d.comb += [self.error.valid.eq(errors.r_rdy), self.error.payload.eq(errors.r_data),
                     errors.r_en.eq(self.error.ready)]

        # Undo the escapes, into registers: `take` is a body byte `value`, `end` a frame
        # delimiter, one cycle after the byte (which keeps the decoder off the paths below).
        byte, error = self.i.payload.data, self.i.payload.error
        escaped = Signal()
        end, take, value, bad_escape, line_error = (
            Signal(name="end"), Signal(name="take"), Signal(8, name="value"),
            Signal(name="bad_escape"), Signal(name="line_error"))
        escaped_at_end = Signal()
        is_end = self.i.valid & ~error & (byte == END)
        m.d.sync += [
            end.eq(is_end),
            take.eq(self.i.valid & ~is_end & ~(~error & ~escaped & (byte == ESC))),
            value.eq(Mux(escaped, Mux(byte == ESC_END, END, ESC), byte)),
            bad_escape.eq(escaped & (byte != ESC_END) & (byte != ESC_ESC)),
            line_error.eq(error),
        ]
        with m.If(self.i.valid):
            m.d.sync += [escaped.eq(~error & ~escaped & (byte == ESC)),
                         escaped_at_end.eq(escaped)]

        # Frame state.
        body = Signal(range(_MAX_BODY + 1))     # body bytes so far, saturating at 5
        kind = Signal(8)
        length_low = Signal(8)
        # Payload bytes still to come; a length over the buffer (refused anyway) is kept as
        # capacity + 1, so the counter needs no more bits than the buffer's addresses.
        remaining = Signal(range(self.capacity + 2))
        trailer = Signal(2)                     # bytes after the payload, saturating at 3
        fault = Signal(4)                       # a corrupted byte: LINE or ESCAPE
        semantic = Signal(4)                    # a well-formed frame that is refused
        column = Signal(range(self.in_bytes))   # byte of the current row
        quiet = Signal(range(self.timeout_cycles + 1))
        check = Signal()                        # the length field has just arrived
        late = Signal()                         # quiet for timeout_cycles
        in_body = Signal()
        hunting = Signal()                      # after a timeout: skip to the next END
        # Free bytes, registered: a cycle stale it can only be too small (rd moves on between;
        # cm moves only at the END of a frame, at least three bytes before the next header is
        # checked), and it keeps the buffer's pointer arithmetic off the header check's path.
        free = Signal(range(self.capacity + 1))
        m.d.sync += free.eq(self.capacity - (cm - rd)[:pointer])
        info_pending = Signal()
        m.d.comb += self.info.valid.eq(info_pending)
        with m.If(self.info.ready):
            m.d.sync += info_pending.eq(0)

        spare = self.in_bits % 8
        padding_bad = (value >> spare).any() if spare else 0
        infer = kind == Kind.INFER
        payload_byte = take & in_body & (body >= HEADER_BYTES) & (remaining != 0)
        write = payload_byte & infer & (semantic == 0)
        wp = buffer.write_port()
        m.d.comb += [wp.addr.eq(wr[:k]), wp.data.eq(value), wp.en.eq(write)]

        def refuse(code):
            with m.If(semantic == 0):
                m.d.sync += semantic.eq(code)

        def drop(code):
            m.d.sync += wr.eq(cm)
            m.d.comb += [errors.w_en.eq(errors.w_rdy), errors.w_data.eq(code)]

        with m.If(take & ~hunting):
            m.d.comb += [crc.data.eq(value), crc.valid.eq(1), crc.start.eq(~in_body)]
            corrupt = Mux(line_error, Error.LINE, Mux(bad_escape, Error.ESCAPE, 0))
            with m.If(~in_body):       # the first byte: the kind
                m.d.sync += [in_body.eq(1), body.eq(1), kind.eq(value), fault.eq(corrupt),
                             semantic.eq(0), column.eq(0), remaining.eq(0), trailer.eq(0)]
                with m.If((value != Kind.INFER) & (value != Kind.INFO)):
                    m.d.sync += semantic.eq(Error.KIND)
            with m.Else():
                with m.If(body != _MAX_BODY):
                    m.d.sync += body.eq(body + 1)
                with m.If(fault == 0):
                    m.d.sync += fault.eq(corrupt)
                with m.If(body == 1):
                    m.d.sync += length_low.eq(value)
                with m.Elif(body == 2):
                    length = Cat(length_low, value)
                    m.d.sync += [remaining.eq(Mux(length > self.capacity, self.capacity + 1,
                                                  length)),
                                 check.eq(1)]
                with m.Elif(remaining != 0):
                    m.d.sync += remaining.eq(remaining - 1)
                    with m.If(infer):
                        m.d.sync += column.eq(Mux(column == self.in_bytes - 1, 0, column + 1))
                        with m.If((column == self.in_bytes - 1) & padding_bad):
                            refuse(Error.PADDING)
                with m.Elif(trailer != 3):
                    m.d.sync += trailer.eq(trailer + 1)
        # The header's length is checked the cycle after it arrived, from registers.
        with m.If(check):
            m.d.sync += check.eq(0)
            with m.If(infer):
                with m.If((remaining == 0) | (remaining == self.capacity + 1)):
                    refuse(Error.LENGTH)
                with m.Elif((remaining > free) | ~ends.w_rdy):
                    refuse(Error.BUSY)
            with m.Elif(remaining != 0):
                refuse(Error.LENGTH)
        with m.If(write):
            m.d.sync += wr.eq(wr + 1)

        # A frame is judged the cycle after its END and acted on the cycle after that (bytes
        # are at least ten bit times apart, so nothing moves meanwhile): the verdict's priority
        # chain runs from registers to a register, off the byte decoder's and the FIFOs' paths.
        judge, act, judged = Signal(), Signal(), Signal()
        verdict = Signal(4)
        m.d.sync += [judge.eq(end), act.eq(judge)]
        code = Signal(4)
        with m.If(fault != 0):
            m.d.comb += code.eq(fault)
        with m.Elif(escaped_at_end):
            m.d.comb += code.eq(Error.ESCAPE)
        with m.Elif(body < HEADER_BYTES + TRAILER_BYTES):
            m.d.comb += code.eq(Error.LENGTH)
        with m.Elif(~crc.match_detected):
            m.d.comb += code.eq(Error.CRC)
        with m.Elif((remaining != 0) | (trailer != TRAILER_BYTES)):
            m.d.comb += code.eq(Error.LENGTH)
        with m.Elif(semantic != 0):
            m.d.comb += code.eq(semantic)
        with m.Elif(infer & (column != 0)):
            m.d.comb += code.eq(Error.LENGTH)
        with m.If(act & judged):
            with m.If(verdict != 0):
                drop(verdict)
            with m.Elif(infer):
                m.d.sync += cm.eq(wr)
                m.d.comb += [ends.w_en.eq(1), ends.w_data.eq(wr)]
            with m.Else():
                m.d.sync += info_pending.eq(1)
        with m.If(judge):
            m.d.sync += [in_body.eq(0), hunting.eq(0), quiet.eq(0), verdict.eq(code),
                         judged.eq(in_body & ~hunting)]
        with m.Elif(late & in_body & ~hunting):
            m.d.sync += [in_body.eq(0), hunting.eq(1), quiet.eq(0)]
            drop(Error.TIMEOUT)
        with m.Elif(self.i.valid):
            m.d.sync += quiet.eq(0)
        with m.Elif(in_body & ~hunting):
            m.d.sync += quiet.eq(quiet + 1)
        # Registered, so the wide comparison is not on the path into the error queue.
        m.d.sync += late.eq(~self.i.valid & (quiet == self.timeout_cycles - 1))

        self._reader(m, buffer, k, cm, rd, ends)
        return m

    def _reader(self, m, buffer, k, cm, rd, ends):
        """Read committed bytes into a row register (a byte per two cycles) and offer the row
        on ``o``; count an acknowledgement for each frame whose last byte was read."""
        rp = buffer.read_port()
        row = Signal(8 * self.in_bytes)
        column = Signal(range(self.in_bytes))
        m.d.comb += [rp.addr.eq(rd[:k]), self.o.payload.eq(row[:self.in_bits])]
        with m.FSM(name="reader"):
            with m.State("read"):       # the address is rd; its byte comes next cycle
                with m.If(rd != cm):
                    m.next = "take"
            with m.State("take"):
                m.d.sync += [row.word_select(column, 8).eq(rp.data), rd.eq(rd + 1)]
                with m.If(column == self.in_bytes - 1):
                    m.d.sync += column.eq(0)
                    m.next = "hold"
                with m.Else():
                    m.d.sync += column.eq(column + 1)
                    m.next = "read"
            with m.State("hold"):
                m.d.comb += self.o.valid.eq(1)
                with m.If(self.o.ready):
                    m.next = "read"

        # A frame is done when rd reaches its end pointer. The comparison is registered (off
        # the FIFO's read path); in the cycle after a pop it still describes the frame just
        # popped, so it is ignored then (frames are never empty: the next end lies beyond rd).
        acks = Signal(range(self.window + 1))
        reached, popped = Signal(), Signal()
        done = Signal()
        m.d.sync += [reached.eq(ends.r_rdy & (rd == ends.r_data)), popped.eq(done)]
        m.d.comb += [done.eq(reached & ~popped), ends.r_en.eq(done),
                     self.ack.valid.eq(acks != 0)]
        m.d.sync += acks.eq(acks + done - (self.ack.valid & self.ack.ready))
