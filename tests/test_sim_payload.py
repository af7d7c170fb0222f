import re

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.sim import Simulator

from hwnn.sim import PayloadCodec, stream_get, stream_put

FRAME = data.StructLayout({"data": data.ArrayLayout(signed(4), 3), "last": 1, "first": 1})


def test_for_shape_of_a_vector_and_a_scalar():
    assert PayloadCodec.for_shape(data.ArrayLayout(signed(4), 3)) == PayloadCodec(4, True, 3)
    assert PayloadCodec.for_shape(unsigned(5)) == PayloadCodec(5, False, None)
    assert PayloadCodec.for_shape(7) == PayloadCodec(7, False, None)


def test_pack_puts_element_zero_low():
    codec = PayloadCodec.for_shape(data.ArrayLayout(signed(4), 3))
    assert codec.pack([1, -1, -8]) == 0x8F1
    assert codec.unpack(0x8F1) == [1, -1, -8]
    assert codec.unpack(codec.pack([7, 0, -1])) == [7, 0, -1]


def test_scalar_payloads_pack_to_twos_complement():
    codec = PayloadCodec.for_shape(signed(5))
    assert codec.pack(-1) == 31 and codec.unpack(31) == -1
    assert codec.pack(-16) == 16 and codec.unpack(16) == -16
    assert codec.unpack(15) == 15
    unsigned_codec = PayloadCodec.for_shape(unsigned(5))
    assert unsigned_codec.pack(31) == 31 and unsigned_codec.unpack(31) == 31


def test_rows_returns_int64_rows_in_range():
    rows = PayloadCodec.for_shape(unsigned(3)).rows([0, 7, 3])
    assert rows.dtype.name == "int64" and rows.tolist() == [0, 7, 3]
    assert PayloadCodec.for_shape(signed(4)).rows([]).tolist() == []


@pytest.mark.parametrize("shape, values, message", [
    (data.ArrayLayout(signed(4), 3), [[0, 8, 0]], "payload codes must lie in [-8, 7], found [0, 8]"),
    (data.ArrayLayout(signed(4), 3), [[-9, 0, 0]],
     "payload codes must lie in [-8, 7], found [-9, 0]"),
    (unsigned(3), [0, 8], "payload codes must lie in [0, 7], found [0, 8]"),
    (unsigned(3), [-1], "payload codes must lie in [0, 7], found [-1, -1]"),
    (data.ArrayLayout(signed(4), 3), [[0, 1]],
     "payloads of 3 elements need an array of shape (n, 3), not (1, 2)"),
    (data.ArrayLayout(signed(4), 3), [0, 1, 2],
     "payloads of 3 elements need an array of shape (n, 3), not (3,)"),
    (signed(4), [[0, 1]], "scalar payloads need a 1-D array, not shape (1, 2)"),
])
def test_rows_refuses_wrong_shapes_and_codes(shape, values, message):
    with pytest.raises(ValueError, match=re.escape(message) + "$"):
        PayloadCodec.for_shape(shape).rows(values)


def test_for_shape_refuses_other_layouts():
    inner = data.StructLayout({"a": 4})
    with pytest.raises(TypeError, match=re.escape(
            f"Array payload elements must be plain integers, not {inner!r}") + "$"):
        PayloadCodec.for_shape(data.ArrayLayout(inner, 2))
    nested = data.StructLayout({"x": inner})
    with pytest.raises(TypeError, match=re.escape(
            f"Struct payload field 'x': Payload shape {inner!r} is neither a scalar, an "
            f"ArrayLayout nor a StructLayout") + "$"):
        PayloadCodec.for_shape(nested)
    deep = data.StructLayout({"data": data.ArrayLayout(data.ArrayLayout(4, 2), 2)})
    with pytest.raises(TypeError, match=re.escape(
            "Struct payload field 'data': Array payload elements must be plain integers, not "
            f"{data.ArrayLayout(4, 2)!r}") + "$"):
        PayloadCodec.for_shape(deep)
    union = data.UnionLayout({"a": 4})
    with pytest.raises(TypeError, match=re.escape(
            f"Payload shape {union!r} is neither a scalar, an ArrayLayout nor a StructLayout")):
        PayloadCodec.for_shape(union)
    empty = data.StructLayout({})
    with pytest.raises(TypeError, match=re.escape(f"Struct payload {empty!r} has no fields")):
        PayloadCodec.for_shape(empty)


def test_struct_codec_uses_the_layout_offsets():
    codec = PayloadCodec.for_shape(FRAME)
    assert codec.width is None and codec.signed is None and codec.lanes is None
    assert codec.fields == (("data", 0, PayloadCodec(4, True, 3)),
                            ("last", 12, PayloadCodec(1, False, None)),
                            ("first", 13, PayloadCodec(1, False, None)))
    assert codec.bits == 14 and codec.chunks == 1
    assert codec.pack({"data": [1, -1, -8], "last": True, "first": 0}) == 0x18F1
    assert codec.unpack(0x28F1) == {"data": [1, -1, -8], "last": 0, "first": 1}
    assert codec.unpack(0x28F1 - (1 << 14)) == codec.unpack(0x28F1)  # a signed reading
    hash(codec)


@pytest.mark.parametrize("shape, bits, chunks", [
    (unsigned(0), 0, 1), (signed(1), 1, 1), (unsigned(32), 32, 1), (signed(33), 33, 2),
    (data.ArrayLayout(signed(8), 16), 128, 4), (data.ArrayLayout(unsigned(24), 16), 384, 12),
    (data.ArrayLayout(signed(8), 0), 0, 1), (FRAME, 14, 1),
])
def test_bits_and_chunks(shape, bits, chunks):
    codec = PayloadCodec.for_shape(shape)
    assert (codec.bits, codec.chunks) == (bits, chunks)
    if isinstance(shape, data.Layout):
        assert codec.bits == shape.size
    else:
        assert codec.bits == shape.width


def extremes_and_random(rng, width, is_signed, shape):
    """Random codes of ``shape`` (Python ints) with the smallest and largest code first."""
    lo = -(1 << (width - 1)) if is_signed else 0
    span = 1 << width
    count = int(np.prod(shape))
    codes = [lo + int.from_bytes(rng.bytes(16), "little") % span for _ in range(count)]
    codes[:2] = [lo, lo + span - 1][:count]
    return np.array(codes, dtype=object).reshape(shape)


def random_rows(codec, rng, n):
    """Checked random rows of ``codec`` with every part's extreme codes present."""
    if codec.fields:
        return codec.rows({name: random_rows(part, rng, n) for name, _, part in codec.fields})
    shape = (n,) if codec.lanes is None else (n, codec.lanes)
    return codec.rows(extremes_and_random(rng, codec.width, codec.signed, shape))


def as_python(codec, rows):
    """Rows as lists of Python ints (dicts of them for structs), for exact comparisons."""
    if codec.fields:
        return [{name: (row[name].tolist() if part.lanes is not None else int(row[name]))
                 for name, _, part in codec.fields} for row in rows]
    return [[int(v) for v in row] if codec.lanes is not None else int(row) for row in rows]


def check_words(codec, rows):
    words = codec.words(rows)
    assert words.dtype == np.dtype("<u4") and words.shape == (len(rows) * codec.chunks,)
    size = 4 * codec.chunks
    raw = words.tobytes()
    packed = [codec.pack(row) for row in rows]
    assert [int.from_bytes(raw[k * size:(k + 1) * size], "little") for k in range(len(rows))] \
        == packed
    assert [codec.unpack(p) for p in packed] == (
        as_python(codec, rows) if codec.fields else as_python(codec, rows))
    for back in (codec.from_words(words), codec.from_words(raw)):
        assert back.dtype == rows.dtype and back.shape == rows.shape
        assert as_python(codec, back) == as_python(codec, rows)


SHAPES = [(width, is_signed, lanes) for width in (1, 2, 3, 5, 7, 8, 9, 12, 16, 17, 24, 31, 32,
                                                  33, 40)
          for is_signed in (False, True) for lanes in (None, 1, 3, 16, 17)]


@pytest.mark.parametrize("width, is_signed, lanes", SHAPES)
def test_words_agree_with_pack_for_scalars_and_arrays(width, is_signed, lanes):
    rng = np.random.default_rng(width * 100 + is_signed * 50 + (lanes or 0))
    elem = signed(width) if is_signed else unsigned(width)
    codec = PayloadCodec.for_shape(elem if lanes is None else data.ArrayLayout(elem, lanes))
    rows = random_rows(codec, rng, 23)
    assert rows.dtype == np.int64
    check_words(codec, rows)


@pytest.mark.parametrize("width, is_signed, lanes", [
    (w, s, n) for w in (1, 4, 7, 8, 13, 32, 40) for s in (False, True) for n in (None, 1, 5, 17)])
def test_words_agree_with_pack_for_frames(width, is_signed, lanes):
    rng = np.random.default_rng(width * 100 + is_signed * 50 + (lanes or 0))
    elem = signed(width) if is_signed else unsigned(width)
    layout = data.StructLayout({"first": 1, "data": elem if lanes is None
                                else data.ArrayLayout(elem, lanes), "last": unsigned(1)})
    codec = PayloadCodec.for_shape(layout)
    check_words(codec, random_rows(codec, rng, 19))


@pytest.mark.parametrize("shape", [
    signed(63), unsigned(63), signed(64), unsigned(64), signed(65), unsigned(100),
    data.ArrayLayout(signed(64), 3), data.ArrayLayout(unsigned(64), 3),
    data.ArrayLayout(signed(70), 2), data.ArrayLayout(unsigned(48), 5),
    data.StructLayout({"data": data.ArrayLayout(unsigned(64), 2), "last": 1, "x": signed(67)}),
    data.StructLayout({"last": 1, "data": data.ArrayLayout(signed(64), 2)}),
    # byte-aligned parts after other fields: read and written through the record view
    data.StructLayout({"first": unsigned(8), "data": data.ArrayLayout(signed(8), 5), "last": 1}),
    data.StructLayout({"last": 16, "data": data.ArrayLayout(unsigned(64), 2), "x": signed(32)}),
    data.StructLayout({"first": 1, "last": 7, "data": signed(16), "y": data.ArrayLayout(5, 3)}),
])
def test_wide_lanes_are_exact(shape):
    codec = PayloadCodec.for_shape(shape)
    check_words(codec, random_rows(codec, np.random.default_rng(7), 11))


def test_wide_lanes_use_python_ints_beyond_int64():
    codec = PayloadCodec.for_shape(data.ArrayLayout(unsigned(64), 2))
    rows = codec.rows([[2 ** 64 - 1, 0]])
    assert rows.dtype == object and rows.tolist() == [[2 ** 64 - 1, 0]]
    assert codec.words(rows).tolist() == [0xFFFFFFFF, 0xFFFFFFFF, 0, 0]
    assert PayloadCodec.for_shape(signed(64)).rows([-(2 ** 63), 2 ** 63 - 1]).dtype == np.int64
    signed_codec = PayloadCodec.for_shape(signed(66))
    assert signed_codec.from_words(np.array([0, 0, 2], dtype="<u4")).tolist() == [-(2 ** 65)]
    assert signed_codec.rows([-1, 2 ** 65 - 1]).tolist() == [-1, 2 ** 65 - 1]


@pytest.mark.parametrize("shape", [
    unsigned(0), data.ArrayLayout(signed(8), 0), data.ArrayLayout(unsigned(0), 3),
    data.StructLayout({"data": data.ArrayLayout(signed(5), 0), "last": 1}),
])
def test_empty_payloads_round_trip(shape):
    codec = PayloadCodec.for_shape(shape)
    rows = random_rows(codec, np.random.default_rng(1), 4)
    # only a frame's ``last`` bit (at bit 0, after the empty data) is ever set
    expected = [int(row["last"]) for row in rows] if codec.fields else [0] * 4
    assert codec.words(rows).tolist() == expected
    check_words(codec, rows)


def test_words_of_byte_lanes_are_the_bytes():
    codec = PayloadCodec.for_shape(data.ArrayLayout(signed(8), 4))
    rows = codec.rows([[1, -1, -128, 127], [0, 2, 3, 4]])
    assert codec.words(rows).tolist() == [0x7F80FF01, 0x04030200]
    np.testing.assert_array_equal(codec.from_words(codec.words(rows)), rows)


def test_struct_rows_from_a_dict_or_a_structured_array():
    codec = PayloadCodec.for_shape(FRAME)
    rows = codec.rows({"last": [False, True], "data": [[1, 2, 3], [-8, 7, 0]], "first": [1, 0]})
    assert rows.dtype.names == ("data", "last", "first")
    assert rows["data"].dtype == np.int64 and rows["data"].shape == (2, 3)
    assert rows["last"].tolist() == [0, 1] and rows["first"].tolist() == [1, 0]
    again = codec.rows(rows)
    assert again.tobytes() == rows.tobytes()
    assert codec.pack(rows[1]) == codec.pack({"data": [-8, 7, 0], "last": 1, "first": 0})
    empty = codec.rows({"data": np.zeros((0, 3), dtype=int), "last": [], "first": []})
    assert empty.shape == (0,) and codec.words(empty).shape == (0,)
    assert codec.from_words(b"").shape == (0,)


@pytest.mark.parametrize("values, message", [
    ({"data": [[0, 0, 0]], "last": [0]}, "struct payload field 'first' is missing"),
    ({"data": [[0, 0, 0]], "last": [0], "first": [0], "frist": [0]},
     "unknown struct payload field 'frist' (fields: data, last, first)"),
    ({"data": [[0, 0, 0]], "last": [0, 1], "first": [0]},
     "struct payload fields need the same number of rows, found data: 1, last: 2, first: 1"),
    ({"data": [[0, 8, 0]], "last": [0], "first": [0]},
     "field 'data': payload codes must lie in [-8, 7], found [0, 8]"),
    ({"data": [[0, 0, 0]], "last": [2], "first": [0]},
     "field 'last': payload codes must lie in [0, 1], found [2, 2]"),
    ({"data": [0, 0, 0], "last": [0], "first": [0]},
     "field 'data': payloads of 3 elements need an array of shape (n, 3), not (3,)"),
    ({"data": [[0, 0, 0]], "last": [0.5], "first": [0]},
     "field 'last': payload codes must be integers, found 0.5"),
])
def test_struct_rows_name_the_bad_field(values, message):
    with pytest.raises(ValueError, match=re.escape(message) + "$"):
        PayloadCodec.for_shape(FRAME).rows(values)


def test_struct_rows_need_a_dict_or_a_structured_array():
    with pytest.raises(TypeError, match=re.escape(
            "struct payloads need a dict of fields or a structured array, not list") + "$"):
        PayloadCodec.for_shape(FRAME).rows([[0, 0, 0]])


@pytest.mark.parametrize("shape, row, message", [
    (FRAME, {"data": [0, 0, 0], "last": 0}, "struct payload field 'first' is missing"),
    (FRAME, {"data": [0, 0, 0], "last": 0, "first": 0, "x": 1},
     "unknown struct payload field 'x' (fields: data, last, first)"),
    (FRAME, {"data": [0, 0, 9], "last": 0, "first": 0},
     "field 'data': payload codes must lie in [-8, 7], found 9"),
    (FRAME, {"data": [0, 0], "last": 0, "first": 0},
     "field 'data': payloads of 3 elements need 3 codes, not 2"),
    (signed(4), -9, "payload codes must lie in [-8, 7], found -9"),
    (unsigned(4), 16, "payload codes must lie in [0, 15], found 16"),
])
def test_pack_refuses_codes_it_would_truncate(shape, row, message):
    with pytest.raises(ValueError, match=re.escape(message) + "$"):
        PayloadCodec.for_shape(shape).pack(row)


@pytest.mark.parametrize("packed, message", [
    (-(1 << 13) - 1, "packed payload must fit in 14 bits, found -8193"),
    (1 << 14, "packed payload must fit in 14 bits, found 16384"),
])
def test_unpack_refuses_other_widths(packed, message):
    with pytest.raises(ValueError, match=re.escape(message) + "$"):
        PayloadCodec.for_shape(FRAME).unpack(packed)


@pytest.mark.parametrize("values, message", [
    ([1.5, 2], "payload codes must be integers, found 1.5"),
    (np.array([1.0]), "payload codes must be integers, found dtype float64"),
    (["a"], "payload codes must be integers, found dtype <U1"),
    ([2 ** 70, 1.5], "payload codes must be integers, found 1.5"),
])
def test_rows_refuse_non_integer_codes(values, message):
    with pytest.raises(ValueError, match=re.escape(message) + "$"):
        PayloadCodec.for_shape(unsigned(80)).rows(values)


@pytest.mark.parametrize("words, message", [
    (b"\x00" * 6, "words must be a whole number of 4-byte words, found 6 bytes"),
    (np.zeros(3, dtype=np.uint32), "words must hold a multiple of 2 words per payload, found 3"),
    (np.zeros(4, dtype=np.int64), "words must be a 1-D uint32 array, not int64 of shape (4,)"),
    (np.zeros((2, 2), dtype=np.uint32),
     "words must be a 1-D uint32 array, not uint32 of shape (2, 2)"),
])
def test_from_words_refuses_partial_payloads(words, message):
    with pytest.raises(ValueError, match=re.escape(message) + "$"):
        PayloadCodec.for_shape(data.ArrayLayout(signed(8), 5)).from_words(words)


def test_words_are_vectorized():
    codec = PayloadCodec.for_shape(data.ArrayLayout(signed(8), 16))
    rows = random_rows(codec, np.random.default_rng(3), 50)
    rows = np.tile(rows, (20000, 1))  # a million rows
    words = codec.words(rows)
    assert words.shape == (4 * 10 ** 6,)
    np.testing.assert_array_equal(codec.from_words(words), rows)


class FramePass(wiring.Component):
    """Registers framed payloads from ``i`` to ``o`` (one deep, no bubbles when both ready)."""

    def __init__(self):
        super().__init__({"i": wiring.In(stream.Signature(FRAME)),
                          "o": wiring.Out(stream.Signature(FRAME))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.ready):
            m.d.sync += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload)]
        return m


def test_struct_payloads_through_stream_put_and_get():
    core = FramePass()
    sent = [{"data": [1, -1, -8], "last": 0, "first": 1},
            {"data": [7, 0, 3], "last": True, "first": False},
            {"data": [-8, -8, -8], "last": 1, "first": 1}]
    received = []

    async def producer(ctx):
        for payload in sent:
            await stream_put(ctx, core.i, payload)

    async def consumer(ctx):
        for _ in sent:
            received.append(await stream_get(ctx, core.o))

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    assert received == [{"data": p["data"], "last": int(p["last"]), "first": int(p["first"])}
                        for p in sent]
