"""The host's side of the link: a driver that sends input rows to a board and reads results.

:class:`Host` speaks :mod:`hwnn.boards.protocol` over any *transport*, an object with
``write(data)``, ``read(size, timeout)`` (at least one byte unless ``timeout`` seconds pass, at
most ``size``) and ``close()``. Two exist: :class:`SerialTransport` for a board on a serial
port (``pip install hwnn[board]`` for pyserial) and
:class:`~hwnn.boards.simulated.SimulatedTransport` for a board in the simulator.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from .protocol import BoardInfo, Error, FrameDecoder, Kind, encode_frame

try:  # optional: only a real board needs it
    import serial
except ImportError:  # pragma: no cover - exercised where pyserial is absent
    serial = None

__all__ = ["Transport", "SerialTransport", "Host", "LinkError", "LinkStats"]


class LinkError(RuntimeError):
    """The board answered with an error, sent a damaged frame, or went quiet."""


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...
    def read(self, size: int, timeout: float) -> bytes: ...
    def close(self) -> None: ...


class SerialTransport:
    """A board on a serial port, through pyserial (8N1, no flow control).

    Raises
    ------
    RuntimeError
        pyserial is not installed (the message says how to install it).
    serial.SerialException
        The port cannot be opened.
    """

    def __init__(self, port: str, baud: int):
        if serial is None:
            raise RuntimeError("a serial port needs pyserial: pip install 'hwnn[board]' "
                               "(or pip install pyserial)")
        self.port = serial.Serial(port, baud, timeout=0)
        # Replies of an earlier, interrupted run must not be read as this run's.
        self.port.reset_input_buffer()

    def write(self, data: bytes) -> None:
        self.port.write(data)

    def read(self, size: int, timeout: float) -> bytes:
        self.port.timeout = timeout
        first = self.port.read(1)
        if not first:
            return b""
        return first + self.port.read(min(size - 1, self.port.in_waiting))

    def close(self) -> None:
        self.port.close()


@dataclass(frozen=True)
class LinkStats:
    """What one :meth:`Host.infer` moved and how long it took.

    ``seconds`` is wall-clock time on a serial port and simulated time (cycles over the
    bridge's clock) on a simulated board, so both give the rate the link reaches.
    """
    rows_in: int
    rows_out: int
    frames: int
    bytes_sent: int
    bytes_received: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows_in / self.seconds if self.seconds > 0 else float("inf")


class Host:
    """Drives a board through ``transport``.

    Parameters
    ----------
    transport : Transport
    timeout : float
        Seconds without any byte from the board after which :class:`LinkError` is raised.
    clock : callable, optional
        Returns the current time in seconds (``time.monotonic`` by default; a simulated
        transport passes its simulated time).
    """

    def __init__(self, transport, *, timeout: float = 2.0, clock=None):
        self.transport = transport
        self.timeout = timeout
        self.clock = clock or time.monotonic
        self._decoder = FrameDecoder()
        self._pending = []
        self.received = 0

    def _next_frame(self):
        """The next good frame from the board; LinkError for a damaged one or silence."""
        while not self._pending:
            data = self.transport.read(4096, self.timeout)
            if not data:
                raise LinkError(f"the board sent nothing for {self.timeout:g} s")
            self.received += len(data)
            self._pending.extend(self._decoder.feed(data))
        frame = self._pending.pop(0)
        if not frame.good:
            raise LinkError(f"the board sent a damaged frame ({frame.problem})")
        if frame.kind == Kind.ERROR:
            code = frame.payload[0] if frame.payload else 0
            try:
                what = Error(code).description
            except ValueError:
                what = "unknown error"
            raise LinkError(f"the board refused a frame: error {code} ({what})")
        return frame

    def info(self) -> BoardInfo:
        """Ask the board what it holds."""
        self.transport.write(encode_frame(Kind.INFO))
        while True:
            frame = self._next_frame()
            if frame.kind == Kind.INFO_REPLY:
                return BoardInfo.from_payload(frame.payload)

    def infer(self, data: bytes, info: BoardInfo, n_out: int) -> tuple[bytes, LinkStats]:
        """Send packed input rows, return ``n_out`` packed output rows and the link's figures.

        Rows go in frames of at most ``info.max_rows`` rows, at most ``info.window`` frames
        unacknowledged, so the board's buffer never overflows.

        Raises
        ------
        ValueError
            ``data`` is not whole rows of ``info.in_bytes``.
        LinkError
            An error reply, a damaged frame, or silence for ``timeout`` seconds.
        """
        size = info.in_bytes
        if len(data) % size:
            raise ValueError(f"{len(data)} bytes are not whole rows of {size} bytes")
        step = max(1, info.max_rows) * size
        frames = [encode_frame(Kind.INFER, data[k:k + step]) for k in range(0, len(data), step)]
        results = bytearray()
        sent = unacked = got = 0
        sent_bytes = 0
        start, received = self.clock(), self.received
        while got < n_out or sent < len(frames) or unacked:
            while sent < len(frames) and unacked < info.window:
                self.transport.write(frames[sent])
                sent_bytes += len(frames[sent])
                sent += 1
                unacked += 1
            frame = self._next_frame()
            if frame.kind == Kind.ACK:
                unacked -= 1
            elif frame.kind == Kind.RESULT:
                rows, spare = divmod(len(frame.payload), info.out_bytes)
                if spare or not 1 <= rows <= info.batch:
                    raise LinkError(f"a RESULT of {len(frame.payload)} bytes, not 1 to "
                                    f"{info.batch} rows of {info.out_bytes} bytes")
                if got + rows > n_out:
                    raise LinkError(f"the board sent more than the {n_out} results expected")
                results += frame.payload
                got += rows
        stats = LinkStats(rows_in=len(data) // size, rows_out=got, frames=len(frames),
                          bytes_sent=sent_bytes, bytes_received=self.received - received,
                          seconds=self.clock() - start)
        return bytes(results), stats
