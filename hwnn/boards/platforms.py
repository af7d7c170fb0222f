"""The boards hwnn builds for: amaranth-boards platforms, their synthesis targets and programmers.

:data:`BOARDS` maps a board name to a :class:`Board`. Two boards need a UART that amaranth-boards
does not describe, so hwnn subclasses their platforms:

- UPduino v3: its FT232H serves only the SPI flash, so the UART is on two header pins,
  FPGA pins 2 (RX, into the FPGA) and 46 (TX, out of the FPGA), both in the bottom I/O bank,
  away from the flash, the RGB LED, the 12 MHz clock option (pin 20) and the pins beside the PLL
  (35, 37). The UPduino v3 silkscreen labels its header pins with these FPGA pin numbers.
- OrangeCrab r0.2: the UART is on the Feather pins 0 (RX) and 1 (TX) of its ``io`` connector.

On both the user wires a 3.3 V USB-serial adapter: adapter TX to the FPGA's RX pin, adapter RX to
the FPGA's TX pin, and ground to ground.

The OrangeCrab platform runs ``dfu-suffix`` at the end of every build; hwnn's subclass leaves
that out (a build needs no programmer tool) and :func:`hwnn.boards.build.program` adds the
suffix to a copy of the bitstream when it programs, if ``dfu-suffix`` is installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from amaranth.build import Attrs
from amaranth_boards.icebreaker import ICEBreakerPlatform
from amaranth_boards.orangecrab_r0_2 import OrangeCrabR0_2_25FPlatform
from amaranth_boards.resources import UARTResource
from amaranth_boards.ulx3s import ULX3S_25F_Platform, ULX3S_85F_Platform
from amaranth_boards.upduino_v3 import UpduinoV3Platform

from ..checks import lookup

__all__ = ["Board", "BOARDS", "get_board", "UpduinoV3UartPlatform",
           "OrangeCrabR0_2_25FUartPlatform"]


class UpduinoV3UartPlatform(UpduinoV3Platform):
    """UPduino v3 with a UART on header pins 2 (RX) and 46 (TX) for a 3.3 V USB-serial adapter."""
    resources = [
        *UpduinoV3Platform.resources,
        UARTResource(0, rx="2", tx="46", attrs=Attrs(IO_STANDARD="SB_LVCMOS", PULLUP=1)),
    ]


class OrangeCrabR0_2_25FUartPlatform(OrangeCrabR0_2_25FPlatform):
    """OrangeCrab r0.2 (25F) with a UART on Feather pins 0 (RX) and 1 (TX), no dfu-suffix step."""
    resources = [
        *OrangeCrabR0_2_25FPlatform.resources,
        UARTResource(0, rx="0", tx="1", conn=("io", 0),
                     attrs=Attrs(IO_TYPE="LVCMOS33", PULLMODE="UP")),
    ]

    @property
    def required_tools(self):
        return [tool for tool in super().required_tools if tool != "dfu-suffix"]

    @property
    def command_templates(self):
        return [command for command in super().command_templates if "dfu-suffix" not in command]


@dataclass(frozen=True)
class Board:
    """One board hwnn builds for.

    Attributes
    ----------
    name : str
        The key in :data:`BOARDS` (what ``--board`` takes).
    platform : type
        The amaranth-boards platform class (a subclass of it where hwnn adds a UART).
    part : str
        The FPGA part as nextpnr names it (ECP5: device, speed grade, package), e.g.
        ``LFE5U-25F-6CABGA381``; ecppack writes it into the bitstream's header.
    target : str
        The :data:`hwnn.synth.TARGETS` entry with the part's resource totals.
    family : str
        ``"ice40"`` or ``"ecp5"``: selects the PLL and the bitstream format.
    oscillator_hz : int
        The clock the platform's ``default_clk`` gives (UPduino: its SB_HFOSC).
    default_clock_hz : int
        The core clock without ``--clock``: one at which the default 3 Mbaud is a whole
        number of cycles per bit and the UART bridge alone meets timing with room (it reaches
        about 45 MHz on the UP5K): the oscillator where it qualifies, else a PLL clock.
    uart : str
        Where the UART is and what the user connects.
    programmers : tuple of tuple of str
        Programmer commands, first choice first; ``{bitstream}`` stands for the bitstream path.
    programmer_packages : mapping
        For each programmer, what installs it (for the "not installed" message).
    bitstream_suffix : str
        ``".bin"`` (icepack) or ``".bit"`` (ecppack).
    pll_pad : bool
        The oscillator enters on the iCE40 PLL's own pad (iCEBreaker: pin 35), so a PLL must be
        an SB_PLL40_PAD fed straight from it (see :func:`hwnn.boards.pll.pll_instance`).
    overrides : mapping
        Build-template overrides hwnn passes to ``platform.prepare`` (ECP5: ecppack options
        without ``--compress``, see :mod:`hwnn.boards.build`).
    description : str
        The board in words.
    """
    name: str
    platform: type
    part: str
    target: str
    family: str
    oscillator_hz: int
    default_clock_hz: int
    uart: str
    programmers: tuple[tuple[str, ...], ...]
    programmer_packages: Mapping[str, str] = field(hash=False)
    bitstream_suffix: str
    pll_pad: bool = False
    overrides: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}),
                                         hash=False)
    description: str = ""



_ICEPROG = {"iceprog": "icestorm (Debian/Ubuntu: apt install fpga-icestorm)"}
_OPENFPGALOADER = {"openFPGALoader": "openFPGALoader (apt install openfpgaloader, or "
                                     "https://github.com/trabucayre/openFPGALoader)"}
_DFU_UTIL = {"dfu-util": "dfu-util (apt install dfu-util)"}

# ecppack writes a compressed bitstream when asked to (both ECP5 platforms ask); hwnn does not,
# so a bitstream has the fixed size of its part and the build can check it.
_ULX3S_OVERRIDES = MappingProxyType({"ecppack_opts": ""})
# The OrangeCrab's own options without --compress: --freq 38.8 is its configuration SPI clock.
_ORANGECRAB_OVERRIDES = MappingProxyType({"ecppack_opts": "--freq 38.8"})


def _ulx3s(size: int, platform: type) -> Board:
    return Board(
        name=f"ulx3s-{size}f", platform=platform, part=f"LFE5U-{size}F-6CABGA381",
        target=f"ecp5-{size}f", family="ecp5",
        oscillator_hz=25_000_000,
        # 25 MHz is 8.33 cycles per bit at 3 Mbaud; the PLL makes 30 MHz (10) from it.
        default_clock_hz=30_000_000,
        uart="the on-board FTDI FT231X USB serial port (FPGA pins M1 RX, L4 TX)",
        programmers=(("openFPGALoader", "-b", "ulx3s", "-m", "{bitstream}"),),
        programmer_packages=MappingProxyType(_OPENFPGALOADER), bitstream_suffix=".bit",
        overrides=_ULX3S_OVERRIDES,
        description=f"Radiona ULX3S with an ECP5 LFE5U-{size}F, 25 MHz oscillator")


#: Every board by name.
BOARDS: Mapping[str, Board] = MappingProxyType({board.name: board for board in (
    Board(name="icebreaker", platform=ICEBreakerPlatform, part="iCE40UP5K-SG48",
          target="ice40-up5k", family="ice40",
          oscillator_hz=12_000_000, default_clock_hz=12_000_000,
          uart="the on-board FTDI FT2232H, second channel (FPGA pins 6 RX, 9 TX)",
          programmers=(("iceprog", "{bitstream}"),),
          programmer_packages=MappingProxyType(_ICEPROG), bitstream_suffix=".bin",
          pll_pad=True,
          description="1BitSquared iCEBreaker with an iCE40 UP5K, 12 MHz oscillator"),
    Board(name="upduino-v3", platform=UpduinoV3UartPlatform, part="iCE40UP5K-SG48",
          target="ice40-up5k",
          # 48 MHz is above what the bridge reaches on the UP5K; the PLL makes 24 MHz.
          family="ice40", oscillator_hz=48_000_000, default_clock_hz=24_000_000,
          uart="header pins 2 (RX) and 46 (TX): wire a 3.3 V USB-serial adapter",
          programmers=(("iceprog", "{bitstream}"),),
          programmer_packages=MappingProxyType(_ICEPROG), bitstream_suffix=".bin",
          description="tinyVision UPduino v3 with an iCE40 UP5K, clocked by its 48 MHz "
                      "internal oscillator (SB_HFOSC)"),
    _ulx3s(85, ULX3S_85F_Platform),
    _ulx3s(25, ULX3S_25F_Platform),
    Board(name="orangecrab-25f", platform=OrangeCrabR0_2_25FUartPlatform,
          part="LFE5U-25F-8CSFBGA285", target="ecp5-25f",
          family="ecp5", oscillator_hz=48_000_000, default_clock_hz=48_000_000,
          uart="Feather pins 0 (RX) and 1 (TX): wire a 3.3 V USB-serial adapter",
          programmers=(("dfu-util", "-a", "0", "-D", "{bitstream}"),),
          programmer_packages=MappingProxyType(_DFU_UTIL), bitstream_suffix=".bit",
          overrides=_ORANGECRAB_OVERRIDES,
          description="Good Stuff Department OrangeCrab r0.2 with an ECP5 LFE5U-25F, 48 MHz "
                      "oscillator, DFU bootloader"),
)})


def get_board(board) -> Board:
    """The :class:`Board` for ``board`` (a name from :data:`BOARDS` or a Board itself).

    Raises
    ------
    TypeError
        ``board`` is neither a string nor a Board.
    ValueError
        Unknown board name; the message lists the valid names.
    """
    return lookup(board, BOARDS, Board, "board")

