"""UART transmitter and receiver (8 data bits, no parity, one stop bit) for the host link.

Both run in the ``sync`` domain with a whole number of clock cycles per bit, ``divisor``: the
baud rate is ``clock / divisor``. :func:`baud_divisor` picks the divisor for a clock and a baud
rate and refuses a pair whose rate error a receiver cannot absorb.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UartTx", "UartRx", "RX_LAYOUT", "baud_divisor", "MIN_DIVISOR", "MAX_BAUD_ERROR"]

#: Fewest clock cycles per bit: the receiver samples in the middle of a bit, found by counting
#: half a bit from the start edge it sees up to two cycles late (its synchronizer), so it needs
#: a few cycles per bit to land well inside the bit.
MIN_DIVISOR = 4

#: Largest relative difference between the baud rate asked for and ``clock / divisor``. A
#: receiver that samples mid-bit is still inside the stop bit after 9.5 bit times while the two
#: ends' rates differ by less than 0.5 / 9.5 = 5.3 %; each end may use half of that, less the
#: half-cycle sampling uncertainty: 2 % per side is the usual budget (and the FTDI parts on
#: these boards make their own rates within 3 % of the nominal, usually far better).
MAX_BAUD_ERROR = 0.02

#: A received byte and whether its stop bit was missing.
RX_LAYOUT = data.StructLayout({"data": 8, "error": 1})


def baud_divisor(clock_hz: int, baud: int) -> int:
    """Clock cycles per bit for ``baud`` at ``clock_hz``: ``round(clock_hz / baud)``.

    Raises
    ------
    TypeError
        ``clock_hz`` or ``baud`` is not an integer.
    ValueError
        ``baud`` is not positive, the divisor would be below :data:`MIN_DIVISOR`, or the rate
        it gives is off by more than :data:`MAX_BAUD_ERROR`; the message names the nearest
        rates that work.
    """
    for name, value in (("clock_hz", clock_hz), ("baud", baud)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an integer, not {value!r}")
        if value <= 0:
            raise ValueError(f"{name} must be positive, not {value}")
    divisor = max(1, round(clock_hz / baud))
    if divisor < MIN_DIVISOR:
        raise ValueError(f"baud {baud} needs at least {MIN_DIVISOR} clock cycles per bit; at "
                         f"{clock_hz / 1e6:g} MHz the highest rate is "
                         f"{clock_hz // MIN_DIVISOR} baud")
    error = abs(clock_hz / divisor - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise ValueError(f"baud {baud} at {clock_hz / 1e6:g} MHz: the nearest rate "
                         f"{clock_hz / divisor:.0f} (divisor {divisor}) is off by "
                         f"{100 * error:.1f} %, over the {100 * MAX_BAUD_ERROR:g} % a receiver "
                         f"tolerates; choose another clock or baud")
    return divisor


def _check_divisor(divisor) -> None:
    if isinstance(divisor, bool) or not isinstance(divisor, int):
        raise TypeError(f"divisor must be an integer, not {divisor!r}")
    if divisor < MIN_DIVISOR:
        raise ValueError(f"divisor must be at least {MIN_DIVISOR} clock cycles per bit, "
                         f"not {divisor}")


class UartTx(wiring.Component):
    """Sends each byte of the stream ``i`` on ``tx``: a start bit, 8 data bits LSB first, a stop
    bit, each ``divisor`` cycles long.

    Throughput: one byte per ``10 * divisor + 1`` cycles (``i.ready`` rises in the cycle after a
    stop bit ends). ``tx`` idles high, also out of reset.

    Members
    -------
    i : In(stream.Signature(8))
    tx : Out(1), init 1

    Raises
    ------
    TypeError, ValueError
        ``divisor`` is not an integer of at least :data:`MIN_DIVISOR`.
    """

    def __init__(self, divisor: int):
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        shift = Signal(10, init=0x3FF)     # stop, data, start; shifted out from bit 0
        bits = Signal(range(11))           # bits still to send
        timer = Signal(range(self.divisor))
        m.d.comb += [self.tx.eq(shift[0]), self.i.ready.eq(bits == 0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [shift.eq(Cat(Const(0, 1), self.i.payload, Const(1, 1))),
                         bits.eq(10), timer.eq(self.divisor - 1)]
        with m.Elif(bits != 0):
            with m.If(timer == 0):
                m.d.sync += [shift.eq(Cat(shift[1:], Const(1, 1))), bits.eq(bits - 1),
                             timer.eq(self.divisor - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m


class UartRx(wiring.Component):
    """Receives bytes on ``rx`` and puts each on ``o`` for one cycle, with ``error`` set when
    its stop bit was low (noise, a break or a wrong baud rate).

    ``rx`` passes a two-flop synchronizer. A low level starts a byte; the receiver checks it
    again half a bit later (a shorter glitch is ignored) and then samples each bit in its
    middle. After a byte without its stop bit it waits for the line to go high before it looks
    for the next start bit, so a held-low line gives one error byte, not a stream of them.

    ``o`` is always ready: whoever reads it takes each byte in the cycle it is valid (a UART
    has no way to hold the sender).

    Members
    -------
    rx : In(1), init 1
    o : Out(stream.Signature(RX_LAYOUT, always_ready=True))

    Raises
    ------
    TypeError, ValueError
        ``divisor`` is not an integer of at least :data:`MIN_DIVISOR`.
    """

    def __init__(self, divisor: int):
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1),
                          "o": Out(stream.Signature(RX_LAYOUT, always_ready=True))})

    def elaborate(self, platform):
        m = Module()
        line = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, line, init=1)
        timer = Signal(range(self.divisor))
        bits = Signal(range(10))
        shift = Signal(9)   # data bits then the stop bit, shifted in at the top
        m.d.sync += self.o.valid.eq(0)
        with m.FSM():
            with m.State("idle"):
                with m.If(~line):
                    m.d.sync += timer.eq(self.divisor // 2 - 1)
                    m.next = "start"
            with m.State("start"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):   # high again half a bit later: a glitch
                    m.next = "idle"
                with m.Else():
                    m.d.sync += [timer.eq(self.divisor - 1), bits.eq(9)]
                    m.next = "bits"
            with m.State("bits"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shift.eq(Cat(shift[1:], line)), bits.eq(bits - 1),
                                 timer.eq(self.divisor - 1)]
                    with m.If(bits == 1):   # this sample is the stop bit
                        m.d.sync += [self.o.valid.eq(1), self.o.payload.data.eq(shift[1:]),
                                     self.o.payload.error.eq(~line)]
                        m.next = "idle"
                        with m.If(~line):
                            m.next = "break"
            with m.State("break"):
                with m.If(line):
                    m.next = "idle"
        return m
