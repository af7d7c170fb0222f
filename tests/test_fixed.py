import itertools
import warnings

import numpy as np
import pytest

from hwnn.fixed import (MAX_WIDTH, SQ, UQ, Format, Overflow, Rounding, parse_format, quantize,
                        requantize, signed_bits_for, to_float)
from oracle import REQUANT_PAIRS, quantize_one, requantize_one

MODES = list(itertools.product(Rounding, Overflow))


# --- formats -----------------------------------------------------------------------------------

def test_format_properties():
    fmt = SQ(4, 12)
    assert (fmt.signed, fmt.i, fmt.f, fmt.width) == (True, 4, 12, 16)
    assert (fmt.min_int, fmt.max_int) == (-32768, 32767)
    assert fmt.resolution == 2 ** -12
    assert (fmt.min, fmt.max) == (-8.0, 8 - 2 ** -12)
    u = UQ(0, 8)
    assert (u.signed, u.width, u.min_int, u.max_int) == (False, 8, 0, 255)
    assert u.max == 255 / 256


def test_format_repr_equality_hash():
    assert repr(SQ(4, 12)) == "SQ(4, 12)"
    assert str(UQ(0, 8)) == "UQ(0, 8)"
    assert SQ(4, 12) == SQ(4, 12) and SQ(4, 12) != UQ(4, 12) and SQ(4, 12) != SQ(5, 11)
    assert len({SQ(4, 12), SQ(4, 12), UQ(4, 12)}) == 2
    with pytest.raises(Exception):
        SQ(4, 12).i = 3


@pytest.mark.parametrize("text, fmt", [
    ("SQ(4,12)", SQ(4, 12)), ("UQ(0,8)", UQ(0, 8)), (" sq( 1 , 7 ) ", SQ(1, 7)),
    ("SQ(-2,10)", SQ(-2, 10)), ("UQ(10,-2)", UQ(10, -2)),
])
def test_parse_format(text, fmt):
    assert parse_format(text) == fmt
    assert Format.parse(text) == fmt
    assert parse_format(fmt) is fmt


@pytest.mark.parametrize("text", ["SQ4,12", "Q(4,12)", "SQ(4.5,12)", "SQ(4,12,1)", ""])
def test_parse_format_rejects_bad_strings(text):
    with pytest.raises(ValueError) as info:
        parse_format(text)
    assert str(info.value) == f"Format must look like 'SQ(4,12)' or 'UQ(0,8)', not {text!r}"
    assert info.value.parameter == "text"


def test_parse_format_rejects_non_strings():
    with pytest.raises(TypeError) as info:
        parse_format(12)
    assert str(info.value) == "Format must be a string like 'SQ(4,12)' or a Format, not 12"


@pytest.mark.parametrize("make, error, message", [
    (lambda: SQ(1, 0), ValueError,
     "Format SQ(1, 0) has width 1; the width i + f must be between 2 and 62"),
    (lambda: UQ(0, 0), ValueError,
     "Format UQ(0, 0) has width 0; the width i + f must be between 1 and 62"),
    (lambda: SQ(32, 31), ValueError,
     "Format SQ(32, 31) has width 63; the width i + f must be between 2 and 62"),
    (lambda: SQ(1.5, 3), TypeError, "Format i must be an integer, not 1.5"),
    (lambda: SQ(1, True), TypeError, "Format f must be an integer, not True"),
])
def test_format_width_limits(make, error, message):
    with pytest.raises(error) as info:
        make()
    assert str(info.value) == message
    assert UQ(1, 0).width == 1 and SQ(31, 31).width == MAX_WIDTH


# --- quantize ----------------------------------------------------------------------------------

QUANT_FORMATS = [SQ(1, 7), SQ(4, 4), UQ(0, 8), UQ(3, 2), SQ(-1, 6), SQ(6, -2)]


@pytest.mark.parametrize("fmt", QUANT_FORMATS, ids=str)
@pytest.mark.parametrize("rounding, overflow", MODES, ids=lambda m: m.value)
def test_quantize_matches_oracle(fmt, rounding, overflow):
    rng = np.random.default_rng(5)
    span = max(abs(fmt.min), abs(fmt.max), fmt.resolution)
    random = rng.uniform(-3 * span, 3 * span, 400)
    # Exact ties at every half step near the range ends, and the range ends themselves.
    k = np.arange(-6, 7)
    ties = np.concatenate([(k + 0.5) * fmt.resolution, fmt.min + (k + 0.5) * fmt.resolution,
                           fmt.max + (k + 0.5) * fmt.resolution, [0.0, -0.0, fmt.min, fmt.max]])
    x = np.concatenate([random, ties])
    got = quantize(x, fmt, rounding, overflow)
    want = [quantize_one(v, fmt.signed, fmt.i, fmt.f, rounding.value, overflow.value) for v in x]
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.int64


def test_quantize_defaults_half_even_saturate():
    np.testing.assert_array_equal(quantize([0.5, 1.5, 2.5, -0.5, 100, -100], SQ(4, 0)),
                                  [0, 2, 2, 0, 7, -8])


def test_quantize_accepts_strings_for_modes():
    assert quantize(2.5, "SQ(4,0)", "half_up", "wrap") == 3


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_quantize_rejects_non_finite(bad):
    with pytest.raises(ValueError) as info:
        quantize([0.0, bad], SQ(4, 4))
    assert str(info.value) == "x holds NaN or infinity" and info.value.parameter == "x"


@pytest.mark.parametrize("args, options, error, parameter, message", [
    ((["a"], SQ(4, 4)), {}, TypeError, "x", "x must hold real numbers, not dtype <U1"),
    ((1.0, SQ(4, 4)), dict(rounding="nearest"), ValueError, "rounding",
     "rounding must be one of trunc | half_up | half_even, not 'nearest'"),
    ((1.0, SQ(4, 4)), dict(overflow=3), TypeError, "overflow",
     "overflow must be one of wrap | sat (or a member of Overflow), not 3"),
    ((1.0, 16), {}, TypeError, "fmt", "fmt must be a Format (SQ/UQ) or a format string, not 16"),
    ((1e300, SQ(2, 60)), {}, ValueError, "x", "x holds values too large to scale into SQ(2, 60)"),
])
def test_quantize_rejects_bad_arguments(args, options, error, parameter, message):
    # One error, no numpy warning on the way (1e300 * 2**60 overflows float64).
    with warnings.catch_warnings(), pytest.raises(error) as info:
        warnings.simplefilter("error")
        quantize(*args, **options)
    assert str(info.value) == message and info.value.parameter == parameter


def test_quantize_wide_formats_are_exact():
    fmt = SQ(40, 20)
    x = np.array([2.0 ** 39 - 2.0 ** -20, -(2.0 ** 39), 1e15, -1e15, 123456.78901])
    got = quantize(x, fmt, Rounding.HALF_EVEN, Overflow.SAT)
    want = [quantize_one(v, True, 40, 20, "half_even", "sat") for v in x]
    np.testing.assert_array_equal(got, want)
    got = quantize(x, fmt, Rounding.TRUNC, Overflow.WRAP)
    want = [quantize_one(v, True, 40, 20, "trunc", "wrap") for v in x]
    np.testing.assert_array_equal(got, want)


def test_to_float_is_exact_inverse():
    fmt = SQ(3, 5)
    codes = fmt.codes()
    values = to_float(codes, fmt)
    np.testing.assert_array_equal(values, codes / 32.0)
    np.testing.assert_array_equal(quantize(values, fmt), codes)


# --- requantize --------------------------------------------------------------------------------



@pytest.mark.parametrize("src, dst", REQUANT_PAIRS, ids=lambda f: str(f))
@pytest.mark.parametrize("rounding, overflow", MODES, ids=lambda m: m.value)
def test_requantize_matches_oracle_on_every_code(src, dst, rounding, overflow):
    codes = src.codes()
    got = requantize(codes, src, dst, rounding, overflow)
    want = [requantize_one(int(q), src.f, dst.signed, dst.i, dst.f, rounding.value,
                           overflow.value) for q in codes]
    np.testing.assert_array_equal(got, want)
    assert dst.contains(got).all()


def test_requantize_defaults_trunc_wrap():
    np.testing.assert_array_equal(requantize([-1, 7, 8, 15], SQ(5, 1), SQ(3, 0)), [-1, 3, -4, -1])


def test_requantize_wide_random_matches_oracle():
    rng = np.random.default_rng(7)
    src, dst = SQ(40, 20), SQ(20, 8)
    codes = rng.integers(src.min_int, src.max_int, 300, endpoint=True)
    for rounding, overflow in MODES:
        got = requantize(codes, src, dst, rounding, overflow)
        want = [requantize_one(int(q), src.f, True, 20, 8, rounding.value, overflow.value)
                for q in codes]
        np.testing.assert_array_equal(got, want)


def test_requantize_extreme_right_shift():
    src, dst = SQ(2, 60), SQ(61, -10)
    codes = np.array([src.min_int, -1, 0, 1, src.max_int])
    for rounding, overflow in MODES:
        want = [requantize_one(int(q), src.f, True, dst.i, dst.f, rounding.value, overflow.value)
                for q in codes]
        np.testing.assert_array_equal(requantize(codes, src, dst, rounding, overflow), want)


def test_requantize_rejects_codes_outside_source():
    with pytest.raises(ValueError) as info:
        requantize([1, 8], SQ(4, 0), SQ(4, 0))
    assert str(info.value) == "q holds the code 8, which is outside SQ(4, 0) [-8, 7]"
    assert info.value.parameter == "q"


def test_requantize_rejects_shift_beyond_int64():
    with pytest.raises(ValueError) as info:
        requantize([1], SQ(10, 0), SQ(2, 60))
    assert str(info.value) == ("requantize from SQ(10, 0) to SQ(2, 60) shifts left by 60 bits, "
                               "beyond int64 range")


def test_requantize_rejects_float_codes():
    with pytest.raises(TypeError) as info:
        requantize([1.0], SQ(4, 0), SQ(4, 0))
    assert str(info.value) == "q must hold integer codes, not dtype float64"
    assert info.value.parameter == "q"


def test_signed_bits_for():
    assert signed_bits_for(0, 0) == 1
    assert signed_bits_for(-1, 0) == 1
    assert signed_bits_for(-128, 127) == 8
    assert signed_bits_for(-129, 0) == 9
    assert signed_bits_for(0, 128) == 9
    assert signed_bits_for(np.int64(-2), np.int64(1)) == 2
    # Against the definition, on every range of a small box and at big-int extremes.
    for lo in range(-20, 21):
        for hi in range(lo, 21):
            bits = next(b for b in itertools.count(1)
                        if -(1 << (b - 1)) <= lo and hi < (1 << (b - 1)))
            assert signed_bits_for(lo, hi) == bits, (lo, hi)
    assert signed_bits_for(-(1 << 100), (1 << 100) - 1) == 101
    assert signed_bits_for(0, 1 << 100) == 102
