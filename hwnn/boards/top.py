"""The board top: oscillator, PLL, reset and UART pins around a device with ``rx`` and ``tx``."""

from __future__ import annotations

import math
from fractions import Fraction

from amaranth.hdl import (ClockDomain, ClockSignal, Const, Elaboratable, Instance, Module, Shape,
                          Signal, unsigned)
from amaranth.lib import io, wiring
from amaranth.lib.cdc import FFSynchronizer, ResetSynchronizer
from amaranth.lib.wiring import In, Out

from .platforms import Board, get_board
from .pll import clock_hz as exact_hz, find_pll, pll_instance

__all__ = ["BoardTop", "check_device", "POR_SECONDS"]

#: How long the reset is held after configuration, per clock source (seconds), as amaranth's
#: own iCE40 platform does: iCE40 block RAMs read as zero for about 3 µs after configuration
#: (15 µs is a 5x margin), and the internal oscillator is stable only after 100 µs.
POR_SECONDS = {"pad": Fraction(15, 1_000_000), "SB_HFOSC": Fraction(100, 1_000_000)}


def check_device(device) -> None:
    """Raise unless ``device`` is a Component with ports ``rx: In(1)`` and ``tx: Out(1)``.

    Any reset value will do (a UART line idles high: the bridge's ports are
    ``In(1, init=1)`` and ``Out(1, init=1)``).

    Raises
    ------
    TypeError
        ``device`` is not an ``amaranth.lib.wiring.Component``, or lacks either port.
    """
    if not isinstance(device, wiring.Component):
        raise TypeError(f"Device must be an amaranth.lib.wiring.Component, not {device!r}")
    members = device.signature.members
    for name, flow in (("rx", In), ("tx", Out)):
        member = members[name] if name in members else None
        if (member is None or not member.is_port or member.flow != flow
                or Shape.cast(member.shape) != unsigned(1)):
            found = "nothing" if member is None else repr(member)
            raise TypeError(f"Device must have a port {name}: {flow.name}(1), not {found}")


class BoardTop(Elaboratable):
    """A device on a board: its ``sync`` clock from the board oscillator, its UART on the pins.

    The oscillator is the platform's ``default_clk`` (a pad, or the UPduino's SB_HFOSC). When
    the requested clock differs from it, a PLL (:func:`hwnn.boards.pll.find_pll`) makes the
    ``sync`` clock, which gets a clock constraint at the achieved frequency. ``sync`` stays in
    reset until the power-on delay (:data:`POR_SECONDS`, counted on the oscillator) has passed
    and the PLL is locked; a reset synchronizer releases it on a ``sync`` edge. The UART's RX pin
    reaches ``device.rx`` through a two-flop synchronizer (idle high); ``device.tx`` drives the
    TX pin.

    Parameters
    ----------
    device : amaranth.lib.wiring.Component
        Has ``rx: In(1)`` and ``tx: Out(1)`` and runs in ``sync`` (e.g. the UART bridge).
    board : str or Board
        A name from :data:`hwnn.boards.platforms.BOARDS`.
    clock_hz : int, Fraction, float or None
        The requested ``sync`` clock in Hz; None: the oscillator's.

    Attributes
    ----------
    board : Board
    pll : Ice40Pll, Ecp5Pll or None
        The PLL setting, None when the oscillator drives ``sync`` directly.
    clock_hz : Fraction
        The achieved ``sync`` frequency.

    Raises
    ------
    TypeError
        ``device`` lacks the ports, or an argument has the wrong type.
    ValueError
        Unknown board, or a clock the PLL cannot make (see :func:`find_pll`).
    """

    def __init__(self, device, board, clock_hz=None):
        check_device(device)
        self.board: Board = get_board(board)
        self.device = device
        oscillator = Fraction(self.board.oscillator_hz)
        requested = oscillator if clock_hz is None else exact_hz(clock_hz)
        self.pll = find_pll(self.board.family, oscillator, requested)
        self.clock_hz = oscillator if self.pll is None else self.pll.output_hz

    def elaborate(self, platform):
        if platform is None or not isinstance(platform, self.board.platform):
            raise TypeError(f"BoardTop for {self.board.name} must be elaborated for "
                            f"{self.board.platform.__name__}, not {platform!r}")
        if Fraction(platform.default_clk_frequency) != self.board.oscillator_hz:
            raise ValueError(f"{self.board.name}: the platform's default clock runs at "
                             f"{platform.default_clk_frequency} Hz, not the "
                             f"{self.board.oscillator_hz} Hz the board table says")
        m = Module()
        oscillator = Signal(name="osc_clk")
        pll_input = oscillator
        if platform.default_clk == "SB_HFOSC":
            m.submodules.hfosc = Instance("SB_HFOSC", i_CLKHFEN=Const(1), i_CLKHFPU=Const(1),
                                          p_CLKHF_DIV=f"0b{platform.hfosc_div:02b}",
                                          o_CLKHF=oscillator)
            platform.add_clock_constraint(oscillator, self.board.oscillator_hz)
            por = POR_SECONDS["SB_HFOSC"]
        else:
            pad = platform.request(platform.default_clk, dir="-")
            por = POR_SECONDS["pad"]
            if self.pll is not None and self.board.pll_pad:
                pll_input = pad.io   # the pad feeds the PLL alone: no buffer, no fabric clock
            else:
                m.submodules.clk_buf = clk_buf = io.Buffer("i", pad)
                m.d.comb += oscillator.eq(clk_buf.i)

        if self.pll is None:
            clock, locked = oscillator, Const(1)
        else:
            m.submodules.pll, clock, locked = pll_instance(self.pll, pll_input)

        # The power-on delay counts on the oscillator, which runs before the PLL locks (on the
        # PLL's output when the pad feeds the PLL alone; `locked` then guards the release).
        timer_clock = clock if pll_input is not oscillator else oscillator
        timer_hz = self.clock_hz if pll_input is not oscillator else self.board.oscillator_hz
        m.domains.por = ClockDomain("por", reset_less=True, local=True)
        m.d.comb += ClockSignal("por").eq(timer_clock)
        delay = math.ceil(por * timer_hz)
        timer = Signal(range(delay + 1))
        ready = Signal()
        with m.If(timer == delay):
            m.d.por += ready.eq(1)
        with m.Else():
            m.d.por += timer.eq(timer + 1)

        if self.pll is not None:
            platform.add_clock_constraint(clock, float(self.clock_hz))
        m.domains.sync = ClockDomain("sync")
        m.d.comb += ClockSignal("sync").eq(clock)
        m.submodules.reset_sync = ResetSynchronizer(~(ready & locked), domain="sync")

        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_buf = rx_buf = io.Buffer("i", uart.rx)
        m.submodules.tx_buf = tx_buf = io.Buffer("o", uart.tx)
        m.submodules.device = self.device
        # The RX pin is asynchronous to `sync`; idle high, as a UART line is.
        m.submodules.rx_sync = FFSynchronizer(rx_buf.i, self.device.rx, init=1)
        m.d.comb += tx_buf.o.eq(self.device.tx)
        return m

