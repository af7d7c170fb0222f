"""Packing numpy integer arrays into stream payload bits and back.

Vectors use ``data.ArrayLayout`` with element 0 in the least significant bits, so a packed
payload is the same integer that a hand-written Verilog testbench drives on ``i__payload``.
Framed streams use a ``data.StructLayout`` whose fields (``data``, ``last``, ``first``...) are
scalars or one-level arrays, each at the offset the layout gives it.

:meth:`PayloadCodec.words` and :meth:`PayloadCodec.from_words` pack whole arrays of rows into
little-endian 32-bit words with numpy, the form the compiled engines exchange.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Shape, ShapeCastable
from amaranth.lib import data

__all__ = ["PayloadCodec"]

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def _plain(shape, what: str) -> Shape:
    """``shape`` cast to a plain ``Shape``; ``TypeError`` naming ``what`` for any layout."""
    if isinstance(shape, ShapeCastable) and not isinstance(shape, Shape):
        raise TypeError(f"{what} must be plain integers, not {shape!r}")
    return Shape.cast(shape)


def _integers(values) -> np.ndarray:
    """``values`` as an integer array (any integer dtype) or an object array of Python ints.

    Raises ``ValueError`` for non-integer codes rather than truncating them.
    """
    array = np.asarray(values)
    if array.dtype.kind == "f" and not isinstance(values, np.ndarray):
        # Python ints beyond int64 mixed with negative ones turn into floats: keep them exact.
        array = np.array(values, dtype=object)
    if array.dtype.kind in "biu" or array.size == 0:
        return array
    if array.dtype.kind == "O":
        for value in array.flat:
            if not isinstance(value, (int, np.integer)):
                raise ValueError(f"payload codes must be integers, found {value!r}")
        return array
    raise ValueError(f"payload codes must be integers, found dtype {array.dtype}")


@dataclass(frozen=True)
class PayloadCodec:
    """Converts between integer codes (numpy) and the packed bits of a payload shape.

    For a scalar payload, ``width``/``signed`` are its shape and ``lanes`` is ``None`` (rows are
    single integers). For an ``ArrayLayout`` payload they are the element shape and ``lanes`` the
    element count (rows have ``lanes`` integers, element 0 in the low bits). For a
    ``StructLayout`` payload ``width``, ``signed`` and ``lanes`` are ``None`` (not applicable) and
    ``fields`` holds ``(name, bit offset, codec of the field)`` in the layout's order; rows are
    records with one entry per field. ``fields`` is empty for scalar and array codecs.

    Codes live in int64 arrays, except for lanes whose range does not fit int64 (unsigned wider
    than 63 bits, signed wider than 64): those use object arrays of Python ints.
    """
    width: int | None
    signed: bool | None
    lanes: int | None
    fields: tuple = ()

    @classmethod
    def for_shape(cls, shape) -> "PayloadCodec":
        """The codec of a scalar shape, a one-level ``ArrayLayout`` of scalars, or a
        ``StructLayout`` whose fields are each one of those two.

        Raises
        ------
        TypeError
            The payload is some other layout (nested deeper, or not a struct/array).
        """
        if isinstance(shape, data.StructLayout):
            fields = []
            for name, field in shape:
                try:
                    fields.append((name, field.offset, cls._leaf(field.shape)))
                except TypeError as error:
                    raise TypeError(f"Struct payload field {name!r}: {error}") from None
            if not fields:
                raise TypeError(f"Struct payload {shape!r} has no fields")
            return cls(None, None, None, tuple(fields))
        return cls._leaf(shape)

    @classmethod
    def _leaf(cls, shape) -> "PayloadCodec":
        """The codec of a scalar shape or of an ``ArrayLayout`` of scalars."""
        if isinstance(shape, data.ArrayLayout):
            elem = _plain(shape.elem_shape, "Array payload elements")
            return cls(elem.width, elem.signed, shape.length)
        if isinstance(shape, ShapeCastable) and not isinstance(shape, Shape):
            raise TypeError(f"Payload shape {shape!r} is neither a scalar, an ArrayLayout nor a "
                            f"StructLayout")
        shape = Shape.cast(shape)
        return cls(shape.width, shape.signed, None)

    # -- geometry ---------------------------------------------------------------------------

    @property
    def bits(self) -> int:
        """Total payload width in bits."""
        if self.fields:
            return max(offset + codec.bits for _, offset, codec in self.fields)
        return self.width if self.lanes is None else self.width * self.lanes

    @property
    def chunks(self) -> int:
        """32-bit words per packed payload (at least one)."""
        return max(1, -(-self.bits // 32))

    @property
    def _slots(self) -> list[tuple[int, int, bool]]:
        """``(bit offset, width, signed)`` of every integer in a payload, in column order."""
        if self.fields:
            return [(offset + at, width, signed) for _, offset, codec in self.fields
                    for at, width, signed in codec._slots]
        count = 1 if self.lanes is None else self.lanes
        return [(k * self.width, self.width, self.signed) for k in range(count)]

    @property
    def _range(self) -> tuple[int, int]:
        """Smallest and largest code of a scalar/array element."""
        if self.signed:
            return -(1 << (self.width - 1)), (1 << (self.width - 1)) - 1
        return 0, (1 << self.width) - 1

    @property
    def _dtype(self) -> np.dtype:
        """The numpy dtype of one row (element dtype and subarray shape for arrays)."""
        if self.fields:
            return np.dtype([(name, codec._dtype) for name, _, codec in self.fields])
        lo, hi = self._range
        base = np.dtype(np.int64) if _INT64_MIN <= lo and hi <= _INT64_MAX else np.dtype(object)
        return base if self.lanes is None else np.dtype((base, (self.lanes,)))

    # -- user values --------------------------------------------------------------------------

    def rows(self, values) -> np.ndarray:
        """``values`` checked against the payload's ranges, as an array of rows.

        Scalar payloads give shape ``(n,)``, arrays ``(n, lanes)`` (int64, or object for lanes
        that int64 cannot hold). Struct payloads take a dict ``{field: array-like}`` or a
        structured array and give a structured array with one such entry per field.

        Raises
        ------
        ValueError
            Wrong shape, a code outside its element's range, a non-integer code; for structs a
            missing or unknown field or fields with different row counts (named).
        TypeError
            A struct payload given as something else than a dict or a structured array.
        """
        if self.fields:
            return self._struct_rows(values)
        values = _integers(values)
        if self.lanes is None:
            if values.ndim != 1:
                raise ValueError(f"scalar payloads need a 1-D array, not shape {values.shape}")
        elif values.ndim != 2 or values.shape[1] != self.lanes:
            raise ValueError(f"payloads of {self.lanes} elements need an array of shape "
                             f"(n, {self.lanes}), not {values.shape}")
        lo, hi = self._range
        if values.size and (values.min() < lo or values.max() > hi):
            raise ValueError(f"payload codes must lie in [{lo}, {hi}], found "
                             f"[{values.min()}, {values.max()}]")
        base = self._dtype.base
        if base == object and values.dtype != object:
            return np.array(values.tolist(), dtype=object).reshape(values.shape)
        return values.astype(base, copy=False)

    def _struct_rows(self, values) -> np.ndarray:
        """:meth:`rows` of a struct payload."""
        names = [name for name, _, _ in self.fields]
        if isinstance(values, np.ndarray) and values.dtype.names is not None:
            given = list(values.dtype.names)
        elif isinstance(values, Mapping):
            given = list(values)
        else:
            raise TypeError(f"struct payloads need a dict of fields or a structured array, not "
                            f"{type(values).__name__}")
        for name in given:
            if name not in names:
                raise ValueError(f"unknown struct payload field {name!r} (fields: "
                                 f"{', '.join(names)})")
        columns = {}
        for name, _, codec in self.fields:
            if name not in given:
                raise ValueError(f"struct payload field {name!r} is missing")
            try:
                columns[name] = codec.rows(values[name])
            except ValueError as error:
                raise ValueError(f"field {name!r}: {error}") from None
        counts = {name: len(column) for name, column in columns.items()}
        if len(set(counts.values())) > 1:
            raise ValueError("struct payload fields need the same number of rows, found " +
                             ", ".join(f"{name}: {count}" for name, count in counts.items()))
        rows = np.empty(next(iter(counts.values())), dtype=self._dtype)
        for name, column in columns.items():
            rows[name] = column
        return rows

    # -- one row <-> one integer (Amaranth testbenches) ---------------------------------------

    def pack(self, row) -> int:
        """One row (as :meth:`rows` gives it; a dict or record for a struct) to the packed
        payload integer.

        Raises
        ------
        ValueError
            A code outside its element's range, or (structs) a missing or unknown field.
        """
        if self.fields:
            names = [name for name, _, _ in self.fields]
            given = row.dtype.names if isinstance(row, np.void) else list(row)
            for name in given:
                if name not in names:
                    raise ValueError(f"unknown struct payload field {name!r} (fields: "
                                     f"{', '.join(names)})")
            packed = 0
            for name, offset, codec in self.fields:
                if name not in given:
                    raise ValueError(f"struct payload field {name!r} is missing")
                try:
                    packed |= codec.pack(row[name]) << offset
                except ValueError as error:
                    raise ValueError(f"field {name!r}: {error}") from None
            return packed
        values = [row] if self.lanes is None else list(row)
        if self.lanes is not None and len(values) != self.lanes:
            raise ValueError(f"payloads of {self.lanes} elements need {self.lanes} codes, "
                             f"not {len(values)}")
        lo, hi = self._range
        packed, mask = 0, (1 << self.width) - 1
        for k, value in enumerate(values):
            value = int(value)
            if not lo <= value <= hi:
                raise ValueError(f"payload codes must lie in [{lo}, {hi}], found {value}")
            packed |= (value & mask) << (k * self.width)
        return packed

    def unpack(self, packed: int):
        """The packed payload integer back to a code (scalar), a list of codes (array) or a
        dict ``{field: code or list}`` (struct).

        Raises
        ------
        ValueError
            ``packed`` fits in :attr:`bits` bits neither unsigned nor two's complement.
        """
        packed = int(packed)
        # Amaranth reads a signed scalar payload as a negative integer: take both readings.
        if not -(1 << max(0, self.bits - 1)) <= packed < 1 << self.bits:
            raise ValueError(f"packed payload must fit in {self.bits} bits, found {packed}")
        packed &= (1 << self.bits) - 1
        if self.fields:
            return {name: codec.unpack((packed >> offset) & ((1 << codec.bits) - 1))
                    for name, offset, codec in self.fields}
        codes = []
        for at, width, signed in self._slots:
            code = (packed >> at) & ((1 << width) - 1)
            codes.append(code - (1 << width) if signed and code >> (width - 1) else code)
        return codes[0] if self.lanes is None else codes

    # -- many rows <-> 32-bit words (compiled engines) ----------------------------------------

    @property
    def _leaves(self) -> list[tuple[str | None, int, "PayloadCodec"]]:
        """``(field name, bit offset, scalar/array codec)`` of each part of a payload; the one
        part of a scalar or array payload has no name."""
        return list(self.fields) if self.fields else [(None, 0, self)]

    @property
    def _record(self) -> np.dtype:
        """A numpy record type reading every part made of whole aligned bytes (8, 16, 32 or 64
        bit elements at a byte offset) straight out of one packed payload; field ``p<k>`` is
        part ``k``."""
        names, formats, offsets = [], [], []
        for k, (_, offset, codec) in enumerate(self._leaves):
            if offset % 8 == 0 and codec.width in (8, 16, 32, 64):
                names.append(f"p{k}")
                base = f"<{'i' if codec.signed else 'u'}{codec.width // 8}"
                formats.append(base if codec.lanes is None else (base, (codec.lanes,)))
                offsets.append(offset // 8)
        return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                         "itemsize": 4 * self.chunks})

    def words(self, rows) -> np.ndarray:
        """Rows of codes as their packed payloads in little-endian 32-bit words.

        Returns a ``<u4`` array of shape ``(n * chunks,)``: row after row, bit 0 of a payload in
        bit 0 of the row's first word. ``rows`` is anything :meth:`rows` accepts.

        Raises
        ------
        ValueError, TypeError
            As :meth:`rows`.
        """
        rows = self.rows(rows)
        n, record = len(rows), self._record
        # Whole aligned bytes are plain numpy stores into a record (a cast that wraps to two's
        # complement, the codes being in range); only the other parts need shifts and masks.
        packed = np.zeros(n, dtype=record)
        words = packed.view("<u4").reshape(n, self.chunks)
        lines = {}  # word index -> uint64 bits of the other parts (low 32 bits count)
        for k, (name, offset, codec) in enumerate(self._leaves):
            part = rows if name is None else rows[name]
            if f"p{k}" in record.names:
                packed[f"p{k}"] = part
                continue
            columns = [part] if codec.lanes is None else [part[:, j] for j in range(codec.lanes)]
            for (at, width, _), column in zip(codec._slots, columns):
                for low, size, piece in _pieces(column, offset + at, width):
                    word, shift = divmod(low, 32)
                    piece = piece << np.uint64(shift) if shift else piece
                    if shift + size > 32:  # straddles into the next word
                        _merge(lines, word + 1, piece >> np.uint64(32))
                    _merge(lines, word, piece)  # bits above 32 go at the cast to uint32
        for word, line in lines.items():
            words[:, word] |= line.astype("<u4")
        return words.reshape(-1)

    def from_words(self, words) -> np.ndarray:
        """Packed payloads in little-endian 32-bit words back to rows, inverse of :meth:`words`.

        ``words`` is ``bytes`` (or any buffer) or a 1-D uint32 array; its length in words must
        be a multiple of :attr:`chunks`. Signed lanes are sign-extended. Returns the form
        :meth:`rows` returns.

        Raises
        ------
        ValueError
            ``words`` is not a whole number of payloads, or not 1-D uint32.
        """
        if isinstance(words, (bytes, bytearray, memoryview)):
            if len(words) % 4:
                raise ValueError(f"words must be a whole number of 4-byte words, found "
                                 f"{len(words)} bytes")
            words = np.frombuffer(words, dtype="<u4")
        words = np.asarray(words)
        if words.ndim != 1 or words.dtype.kind != "u" or words.dtype.itemsize != 4:
            raise ValueError(f"words must be a 1-D uint32 array, not {words.dtype} of shape "
                             f"{words.shape}")
        if len(words) % self.chunks:
            raise ValueError(f"words must hold a multiple of {self.chunks} words per payload, "
                             f"found {len(words)}")
        n, record = len(words) // self.chunks, self._record
        words = np.ascontiguousarray(words, dtype="<u4")
        packed, parts = words.view(record), {}
        words = words.reshape(n, self.chunks)
        lines = {}  # word index -> that word of every payload as uint64, read on demand
        for k, (name, offset, codec) in enumerate(self._leaves):
            if f"p{k}" in record.names:
                parts[name] = packed[f"p{k}"].astype(codec._dtype.base)
                continue
            columns = [_join(_read(words, lines, offset + at, width), width, signed, n)
                       for at, width, signed in codec._slots]
            if codec.lanes is None:
                parts[name] = columns[0]
            else:
                parts[name] = np.empty((n, codec.lanes), dtype=codec._dtype.base)
                for j, column in enumerate(columns):
                    parts[name][:, j] = column
        if not self.fields:
            return parts[None]
        rows = np.empty(n, dtype=self._dtype)
        for name, part in parts.items():
            rows[name] = part
        return rows


def _merge(lines: dict, word: int, bits: np.ndarray) -> None:
    """OR ``bits`` into ``lines[word]`` (created on first use)."""
    if word in lines:
        lines[word] |= bits
    else:
        lines[word] = bits.copy()


def _read(words: np.ndarray, lines: dict, offset: int, width: int) -> list[np.ndarray]:
    """The 32-bit pieces (uint64, low first) of the lane at bit ``offset`` of the payloads in
    ``words`` (shape ``(n, chunks)``); ``lines`` caches the words taken as uint64."""
    def line(word):
        if word not in lines:
            lines[word] = words[:, word].astype(np.uint64)
        return lines[word]

    pieces = []
    for low in range(offset, offset + width, 32):
        size = min(32, offset + width - low)
        word, shift = divmod(low, 32)
        piece = line(word) >> np.uint64(shift) if shift else line(word)
        straddles = shift + size > 32
        if straddles:
            piece = piece | (line(word + 1) << np.uint64(32 - shift))
        if size < 32 - shift + 32 * straddles:  # drop the neighbouring lanes' bits
            piece = piece & np.uint64((1 << size) - 1)
        pieces.append(piece)
    return pieces


def _pieces(column: np.ndarray, offset: int, width: int):
    """``(bit offset, width, uint64 array)`` of each 32-bit piece of a lane, low piece first."""
    if column.dtype == object:  # Python ints: exact at any width, two's complement on >>/&
        for low in range(0, width, 32):
            size = min(32, width - low)
            yield offset + low, size, ((column >> low) & ((1 << size) - 1)).astype(np.uint64)
        return
    bits = column.astype(np.uint64)  # two's complement of the int64 codes
    for low in range(0, width, 32):
        size = min(32, width - low)
        piece = bits >> np.uint64(low) if low else bits
        yield offset + low, size, piece & np.uint64((1 << size) - 1)


def _join(pieces: list[np.ndarray], width: int, signed: bool, n: int) -> np.ndarray:
    """A lane's codes from its 32-bit pieces (low first), sign-extended when ``signed``."""
    if width == 0:
        return np.zeros(n, dtype=np.int64)
    if (signed and width <= 64) or width <= 63:
        bits = pieces[0]
        if len(pieces) > 1:
            bits = bits | (pieces[1] << np.uint64(32))
        codes = bits.view(np.int64)
        if signed and width < 64:
            codes = codes - ((codes >> (width - 1)) << width)
        return codes
    codes = np.zeros(n, dtype=object)
    for k, piece in enumerate(pieces):
        codes = codes | (piece.astype(object) << (32 * k))
    if signed:
        codes = np.where(codes >> (width - 1), codes - (1 << width), codes)
    return codes
