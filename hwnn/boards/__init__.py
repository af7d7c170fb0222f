"""Boards: bitstreams for iCEBreaker, UPduino v3, ULX3S and OrangeCrab with amaranth-boards,
and the UART host link that runs a core on them.

``build_board(device_factory, "icebreaker", clock_mhz=48, out_dir=...)`` puts a device with
UART pins (``rx``, ``tx``) into a :class:`BoardTop` (oscillator, PLL, reset) and builds a
bitstream with the YoWASP tools; :data:`BOARDS` lists the boards. The device ``hwnn build``
uses is :class:`UartBridge`, a core behind the framing of :mod:`hwnn.boards.protocol`;
:class:`Host` drives it over a :class:`SerialTransport` or a :class:`SimulatedTransport`.
"""

from .bridge import UartBridge
from .build import BoardBuild, build_board, program
from .host import Host, LinkError, SerialTransport
from .platforms import BOARDS, Board, get_board
from .pll import find_pll
from .simulated import SimulatedTransport
from .top import BoardTop

__all__ = [
    "BOARDS", "Board", "BoardBuild", "BoardTop", "Host", "LinkError", "SerialTransport",
    "SimulatedTransport", "UartBridge", "build_board", "find_pll", "get_board", "program",
]
