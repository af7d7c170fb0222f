"""The host link's framing on the UART, in Python: what the board's bridge speaks, byte for byte.

A board built by ``hwnn build`` talks to the host over one UART (8 data bits, no parity, one
stop bit). Both directions carry *frames* delimited as SLIP does (RFC 1055), so that a receiver
finds the start of the next frame whatever came before it:

* every frame is sent as ``END``, the escaped body, ``END`` (``END`` = 0xC0);
* inside the body, 0xC0 is sent as ``ESC ESC_END`` (0xDB 0xDC) and 0xDB as ``ESC ESC_ESC``
  (0xDB 0xDD); no other byte is changed;
* an empty body (two ``END`` in a row, the normal gap between frames) is ignored.

The body, before escaping::

    kind (1 byte) | length (2 bytes, little-endian) | payload (length bytes) | CRC (2 bytes)

The CRC is CRC-16/ISO-HDLC (the HDLC frame check sequence: polynomial 0x1021 reflected, initial
value and final XOR 0xFFFF) over kind, length and payload, sent little-endian, so the receiver
checks a frame by running the CRC over the whole body and comparing with the residue.

Frames from the host (:class:`Kind`): ``INFER`` carries ``k >= 1`` input rows, each the core's
input stream payload packed into ``ceil(bits / 8)`` bytes, least significant byte first, unused
high bits zero (the same integer a Verilog testbench drives on ``i__payload``); ``INFO`` asks
what the board holds. Frames from the board: ``RESULT`` carries one or more output rows
(at most ``batch``: every row waiting when the frame starts) packed the same way, ``ACK`` says that all the rows of one ``INFER`` frame have entered the core (their room in
the board's buffer is free again), ``INFO_REPLY`` describes the board (:class:`BoardInfo`) and
``ERROR`` carries one :class:`Error` code. A frame that is bad in any way is dropped whole (none
of its rows reach the core) and answered by one ``ERROR`` frame.

The host keeps at most ``window`` ``INFER`` frames unacknowledged, each of at most
``capacity // window`` bytes of rows, so it never overruns the board's buffer; a frame that
would is refused with ``Error.BUSY``. Results come back in input order, as the core makes them.

Nothing here touches hardware: :mod:`hwnn.boards.bridge` implements the board's side in
Amaranth and is tested against these functions.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Iterator

import numpy as np
from amaranth.lib.crc import catalog

from ..sim.payload import PayloadCodec

__all__ = ["END", "ESC", "ESC_END", "ESC_ESC", "CRC", "Kind", "Error", "BoardInfo",
           "PROTOCOL_VERSION", "HEADER_BYTES", "TRAILER_BYTES", "row_bytes", "frame_body",
           "escape", "encode_frame", "Frame", "FrameDecoder", "pack_rows", "unpack_rows",
           "wire_bytes"]

END, ESC, ESC_END, ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD

#: The frame check: CRC-16/ISO-HDLC on bytes (reflected, so it is sent least significant byte
#: first and a good body leaves the register at the residue).
CRC = catalog.CRC16_ISO_HDLC(8)

#: Version of this framing, sent in every ``INFO_REPLY``.
PROTOCOL_VERSION = 1

#: Bytes of a body around its payload: kind and length before, the CRC after.
HEADER_BYTES, TRAILER_BYTES = 3, 2


class Kind(enum.IntEnum):
    """The first byte of a frame's body: what the frame is."""
    INFER = 0x01       #: host: input rows for the core
    INFO = 0x02        #: host: describe yourself (empty payload)
    RESULT = 0x81      #: board: one or more output rows
    ACK = 0x82         #: board: the rows of one INFER frame have all entered the core
    INFO_REPLY = 0x83  #: board: a :class:`BoardInfo`
    ERROR = 0xE0       #: board: one :class:`Error` byte


class Error(enum.IntEnum):
    """The payload byte of an ``ERROR`` frame: why the board dropped a frame."""
    CRC = 1      #: the CRC does not match the body
    LENGTH = 2   #: too short a body, a length field that is not the payload's length, or an
                 #: INFER length that is zero, not a multiple of the row size or over the buffer
    TIMEOUT = 3  #: the line went quiet in the middle of a frame
    KIND = 4     #: the first byte is no kind the board takes
    BUSY = 5     #: an INFER frame that does not fit the free buffer or the window
    PADDING = 6  #: a row with a bit set above the core's payload width
    LINE = 7     #: a byte of the frame arrived without its stop bit (noise, wrong baud)
    ESCAPE = 8   #: ``ESC`` followed by a byte other than ``ESC_END`` or ``ESC_ESC``

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    Error.CRC: "bad CRC",
    Error.LENGTH: "wrong length",
    Error.TIMEOUT: "timeout in the middle of a frame",
    Error.KIND: "unknown frame kind",
    Error.BUSY: "buffer or window full",
    Error.PADDING: "bits set above the payload width",
    Error.LINE: "UART framing error (no stop bit)",
    Error.ESCAPE: "bad escape sequence",
}

# INFO_REPLY payload: version, input bits, output bits, buffer bytes, window, result batch,
# clock Hz, baud, design id.
_INFO = struct.Struct("<BHHHBBIII")


@dataclass(frozen=True)
class BoardInfo:
    """What an ``INFO_REPLY`` says: the bridge's shape and the design it holds.

    ``design_id`` is :func:`hwnn.boards.bridge.design_id` of the core, so the host can tell a
    board that holds another design from one that holds the design it checks against.
    """
    in_bits: int
    out_bits: int
    capacity: int
    window: int
    batch: int
    clock_hz: int
    baud: int
    design_id: int
    version: int = PROTOCOL_VERSION

    @property
    def in_bytes(self) -> int:
        return row_bytes(self.in_bits)

    @property
    def out_bytes(self) -> int:
        return row_bytes(self.out_bits)

    @property
    def max_rows(self) -> int:
        """Most input rows one INFER frame may carry."""
        return self.capacity // self.window // self.in_bytes

    def payload(self) -> bytes:
        return _INFO.pack(self.version, self.in_bits, self.out_bits, self.capacity,
                          self.window, self.batch, self.clock_hz, self.baud, self.design_id)

    @classmethod
    def from_payload(cls, payload: bytes) -> "BoardInfo":
        """Raises ValueError for a payload of the wrong size."""
        if len(payload) != _INFO.size:
            raise ValueError(f"an INFO_REPLY payload has {_INFO.size} bytes, not {len(payload)}")
        version, *fields = _INFO.unpack(payload)
        return cls(*fields, version=version)


def row_bytes(bits: int) -> int:
    """Bytes of one packed row of ``bits`` payload bits."""
    return (bits + 7) // 8


def frame_body(kind: int, payload: bytes) -> bytes:
    """The body of a frame (before escaping): kind, length, payload and CRC.

    Raises
    ------
    ValueError
        ``kind`` is not a byte or ``payload`` is longer than 65535 bytes.
    """
    if not 0 <= kind <= 0xFF:
        raise ValueError(f"kind must be a byte, not {kind!r}")
    if len(payload) > 0xFFFF:
        raise ValueError(f"a payload holds at most 65535 bytes, not {len(payload)}")
    head = bytes([kind]) + len(payload).to_bytes(2, "little") + bytes(payload)
    return head + CRC.compute(head).to_bytes(2, "little")


def escape(body: bytes) -> bytes:
    """``body`` on the wire: ``END``, the body with ``END``/``ESC`` escaped, ``END``."""
    out = bytearray([END])
    for byte in body:
        if byte == END:
            out += bytes([ESC, ESC_END])
        elif byte == ESC:
            out += bytes([ESC, ESC_ESC])
        else:
            out.append(byte)
    out.append(END)
    return bytes(out)


def encode_frame(kind: int, payload: bytes = b"") -> bytes:
    """The wire bytes of one frame."""
    return escape(frame_body(kind, payload))


def wire_bytes(payload_bytes: int) -> int:
    """Bytes on the wire of a frame with a ``payload_bytes`` payload, when nothing needs an
    escape (each 0xC0 or 0xDB of the body adds one)."""
    return payload_bytes + HEADER_BYTES + TRAILER_BYTES + 2


@dataclass(frozen=True)
class Frame:
    """One received frame: its kind and payload, or what was wrong with it (``problem``)."""
    kind: int
    payload: bytes
    problem: str | None = None

    @property
    def good(self) -> bool:
        return self.problem is None


class FrameDecoder:
    """Splits a received byte stream into frames, checking each one's escapes, length and CRC.

    :meth:`feed` takes bytes as they arrive and returns the frames they complete; bytes before
    the first ``END`` are what a frame cut short left on the line, and are reported as a bad
    frame only if there are any.
    """

    def __init__(self):
        self._body = bytearray()
        self._escaped = False
        self._bad_escape = False

    def feed(self, data: bytes) -> list[Frame]:
        return list(self._frames(data))

    def _frames(self, data: bytes) -> Iterator[Frame]:
        for byte in data:
            if byte == END:
                if self._body or self._bad_escape:
                    yield self._finish()
                self._body.clear()
                self._escaped = self._bad_escape = False
            elif self._escaped:
                self._escaped = False
                if byte == ESC_END:
                    self._body.append(END)
                elif byte == ESC_ESC:
                    self._body.append(ESC)
                else:
                    self._bad_escape = True
            elif byte == ESC:
                self._escaped = True
            else:
                self._body.append(byte)

    def _finish(self) -> Frame:
        body = bytes(self._body)
        kind = body[0] if body else -1
        if self._bad_escape or self._escaped:
            return Frame(kind, body, "bad escape sequence")
        if len(body) < HEADER_BYTES + TRAILER_BYTES:
            return Frame(kind, body, f"a body of {len(body)} bytes is too short")
        length = int.from_bytes(body[1:3], "little")
        if length != len(body) - HEADER_BYTES - TRAILER_BYTES:
            return Frame(kind, body, f"length field {length} but "
                                     f"{len(body) - HEADER_BYTES - TRAILER_BYTES} payload bytes")
        if CRC.compute(body[:-TRAILER_BYTES]) != int.from_bytes(body[-2:], "little"):
            return Frame(kind, body, "bad CRC")
        return Frame(kind, body[HEADER_BYTES:-TRAILER_BYTES])


def pack_rows(codec: PayloadCodec, rows) -> bytes:
    """Rows of a stream payload (what ``codec.words`` takes) packed into bytes, one row after
    the other, each ``row_bytes(codec.bits)`` bytes, least significant byte first."""
    words = np.ascontiguousarray(codec.words(rows), dtype="<u4")
    n = len(words) // codec.chunks
    return words.view(np.uint8).reshape(n, -1)[:, :row_bytes(codec.bits)].tobytes()


def unpack_rows(codec: PayloadCodec, data: bytes):
    """Packed rows back into what ``codec.from_words`` returns.

    Raises
    ------
    ValueError
        ``data`` is not a whole number of rows, or a row has a bit set above the payload width.
    """
    size = row_bytes(codec.bits)
    if len(data) % size:
        raise ValueError(f"{len(data)} bytes are not whole rows of {size} bytes")
    n = len(data) // size
    raw = np.zeros((n, codec.chunks * 4), dtype=np.uint8)
    raw[:, :size] = np.frombuffer(data, dtype=np.uint8).reshape(n, size)
    spare = codec.bits % 8
    if spare and n and np.any(raw[:, size - 1] >> spare):
        raise ValueError(f"a row has bits set above its {codec.bits}-bit payload")
    return codec.from_words(raw.view("<u4").reshape(-1))
