import re

import pytest
from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from hwnn.sim import PayloadCodec


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
    layout = data.StructLayout({"a": 4})
    with pytest.raises(TypeError, match=re.escape(
            f"Payload shape {layout!r} is neither a scalar nor an ArrayLayout") + "$"):
        PayloadCodec.for_shape(layout)
    nested = data.ArrayLayout(layout, 2)
    with pytest.raises(TypeError, match=re.escape(
            f"Array payload elements must be plain integers, not {layout!r}") + "$"):
        PayloadCodec.for_shape(nested)
