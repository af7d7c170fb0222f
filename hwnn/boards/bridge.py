"""Placeholder for the UART bridge (issue 13, host link): replaced when that work is merged.

Only ``UartBridge(core, clock_hz=..., baud=...)`` is used by ``hwnn build``.
"""

__all__ = ["UartBridge"]


class UartBridge:
    """The UART bridge between the board's UART pins and a core's streams (not written yet)."""

    def __init__(self, core, *, clock_hz, baud):
        raise NotImplementedError("the UART bridge (hwnn.boards.bridge) is not written yet")
