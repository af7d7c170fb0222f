"""Boards: bitstreams for iCEBreaker, UPduino v3, ULX3S and OrangeCrab with amaranth-boards.

``build_board(device_factory, "icebreaker", clock_mhz=48, out_dir=...)`` puts a device with
UART pins (``rx``, ``tx``) into a :class:`BoardTop` (oscillator, PLL, reset) and builds a
bitstream with the YoWASP tools; :data:`BOARDS` lists the boards.
"""

from .build import BoardBuild, build_board, program
from .platforms import BOARDS, Board, get_board
from .pll import find_pll
from .top import BoardTop

__all__ = [
    "BOARDS", "Board", "BoardBuild", "BoardTop", "build_board", "find_pll", "get_board",
    "program",
]
