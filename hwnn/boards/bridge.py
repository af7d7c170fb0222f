"""Placeholder for the UART bridge (issue 13, host link): replaced when that work is merged.

Only ``UartBridge(core, clock_hz=..., baud=...)`` and ``DEFAULT_BAUD`` are used by
``hwnn build``.
"""

__all__ = ["DEFAULT_BAUD", "UartBridge"]

#: The link's default rate (the value of the bridge being written, so that ``hwnn build`` and
#: the host agree without options).
DEFAULT_BAUD = 3_000_000


class UartBridge:
    """The UART bridge between the board's UART pins and a core's streams (not written yet)."""

    def __init__(self, core, *, clock_hz, baud):
        raise NotImplementedError("the UART bridge (hwnn.boards.bridge) is not written yet")
