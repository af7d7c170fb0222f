import re
from fractions import Fraction

import numpy as np
import pytest

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.fixed import SQ, UQ, to_float
from hwnn.plans.pot import PotCode, quantize_pot

# (format, terms, e_min, exponent_bits): signed and unsigned, both term counts, a raised e_min,
# a narrow exponent field (whose largest magnitude 2**(e_max+1) needs two equal pot2 terms) and
# a field reaching beyond the format.
CODES = [
    (SQ(1, 3), 1, 0, None), (SQ(1, 3), 2, 0, None),
    (SQ(2, 3), 1, 0, None), (SQ(2, 3), 2, 0, None),
    (UQ(1, 3), 1, 0, None), (UQ(2, 3), 2, 0, None),
    (SQ(3, 3), 2, 2, None), (UQ(3, 2), 1, 1, None),
    (SQ(2, 4), 2, 0, 2), (SQ(1, 5), 1, 0, None),
]


def code_id(case):
    fmt, terms, e_min, bits = case
    return f"{fmt}-t{terms}-emin{e_min}-bits{bits}".replace(" ", "")


def allowed_codes(fmt, terms, e_min, e_max):
    """Codes of ``fmt`` that are 0, ±2**a or (pot2) ±2**a ± 2**b, from the definition."""
    powers = [s * (1 << a) for a in range(e_min, e_max + 1) for s in (1, -1)]
    values = {0} | set(powers)
    if terms == 2:
        values |= {p + q for p in powers for q in powers}
    return sorted(v for v in values if fmt.min_int <= v <= fmt.max_int)


def nearest(value: Fraction, candidates):
    """Nearest candidate by exact distance; ties to the smaller magnitude."""
    return min(candidates, key=lambda c: (abs(Fraction(c) - value), abs(c)))


def probe_values(fmt, codes):
    """Reals (in fmt units) at every code, every midpoint, just around them and far outside."""
    scale = 2.0 ** -fmt.f
    points = set()
    for a, b in zip(codes, codes[1:]):
        mid = (a + b) / 2
        points |= {a, b, mid, mid - 1 / 64, mid + 1 / 64}
    lo, hi = codes[0], codes[-1]
    points |= {lo - 0.25, hi + 0.25, lo * 1.4, hi * 1.4 + 1, lo * 1.6 - 1, hi * 1.6 + 1,
               lo * 3 - 3, hi * 3 + 3, -0.4, 0.4}
    for big in range(1, 8):
        points |= {(hi + 1) * big * 0.75, -(abs(lo) + 1) * big * 0.75}
    return np.array(sorted(points)) * scale


@pytest.mark.parametrize("case", CODES, ids=code_id)
def test_quantize_is_the_nearest_allowed_code(case):
    fmt, terms, e_min, bits = case
    code = PotCode(fmt, terms, e_min, bits)
    allowed = allowed_codes(fmt, terms, e_min, code.e_max)
    np.testing.assert_array_equal(code.values(), allowed)
    x = probe_values(fmt, allowed)
    got = quantize_pot(x, fmt, terms, e_min=e_min, exponent_bits=bits)
    want = [nearest(Fraction(float(v)) * 2 ** fmt.f, allowed) for v in x]
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.int64 and fmt.contains(got).all()


@pytest.mark.parametrize("case", CODES, ids=code_id)
def test_saturation_count_is_what_unbounded_exponents_would_round_beyond(case):
    fmt, terms, e_min, bits = case
    code = PotCode(fmt, terms, e_min, bits)
    allowed = allowed_codes(fmt, terms, e_min, code.e_max)
    unbounded = allowed_codes(SQ(fmt.width + 8, 0), terms, e_min, fmt.width + 6)
    x = probe_values(fmt, allowed)
    _, count = quantize_pot(x, fmt, terms, e_min=e_min, exponent_bits=bits,
                            return_saturated=True)
    beyond = [nearest(Fraction(float(v)) * 2 ** fmt.f, unbounded) for v in x]
    assert count == sum(1 for b in beyond if not allowed[0] <= b <= allowed[-1])
    assert count > 0


def test_quantize_examples_and_tie_rule():
    # 0.75 is halfway between 0.5 and the (unrepresentable) 1.0: it rounds to 0.5, unsaturated.
    codes, saturated = quantize_pot([0.7, 0.75, 0.76, -1.0, -1.6, 0.3, 3 / 256], SQ(1, 7),
                                    return_saturated=True)
    np.testing.assert_array_equal(codes, [64, 64, 64, -128, -128, 32, 1])
    assert saturated == 2
    # pot2: 0.3 * 128 = 38.4 lies between 36 = 32 + 4 and 40 = 32 + 8.
    codes, saturated = quantize_pot([0.99, 1.0, 0.3, -0.3], SQ(1, 7), 2, return_saturated=True)
    np.testing.assert_array_equal(codes, [127, 127, 40, -40])
    assert saturated == 1
    # Unsigned: negative values clamp to 0 (and count when they would round below it).
    np.testing.assert_array_equal(quantize_pot([-0.01, -0.5, 2.9], UQ(1, 3)), [0, 0, 8])
    assert quantize_pot([-0.01, -0.1], UQ(1, 3), return_saturated=True)[1] == 1


def test_quantize_keeps_codes_and_shapes():
    code = PotCode(SQ(2, 6), 2)
    values = code.values()
    np.testing.assert_array_equal(code.quantize(to_float(values, code.fmt)), values)
    x = np.linspace(-2, 2, 24).reshape(2, 3, 4)
    assert quantize_pot(x, SQ(2, 6), 2).shape == (2, 3, 4)
    assert quantize_pot(np.array(0.5), SQ(2, 6)).shape == ()


@pytest.mark.parametrize("case", CODES, ids=code_id)
def test_every_code_round_trips_and_every_word_has_its_documented_value(case):
    fmt, terms, e_min, bits = case
    code = PotCode(fmt, terms, e_min, bits)
    values = code.values()
    words = code.encode(values)
    np.testing.assert_array_equal(code.decode(words), values)
    assert len(set(words.tolist())) == len(words)
    assert words.min() >= 0 and words.max() < 1 << code.width

    # The documented layout, from bit 0 up per term: exponent, sign (none for term 0 of an
    # unsigned format), zero flag.
    def value_of(word):
        total, offset = 0, 0
        for term in range(terms):
            exponent = (word >> offset) & ((1 << code.exponent_bits) - 1)
            offset += code.exponent_bits
            negative = 0
            if fmt.signed or term:
                negative = (word >> offset) & 1
                offset += 1
            zero = (word >> offset) & 1
            offset += 1
            if not zero:
                total += (-1) ** negative * 2 ** (exponent + e_min)
        assert offset == code.width
        return total

    every = np.arange(1 << code.width)
    brute = [value_of(w) for w in every.tolist()]
    np.testing.assert_array_equal(code.word_values(every), brute)
    assert code.value_range == (min(brute), max(brute))
    inside = [w for w, v in zip(every.tolist(), brute) if fmt.min_int <= v <= fmt.max_int]
    np.testing.assert_array_equal(code.decode(inside), [brute[w] for w in inside])
    np.testing.assert_array_equal(code.encode(code.decode(words)), words)


def test_canonical_words():
    code = PotCode(SQ(1, 7), 2)
    # 3 = 2 + 1 (not 4 - 1); -7 = -8 + 1; 64 a single term; 0 both zero flags.
    term = lambda negative, e: (negative << 3) | e  # noqa: E731
    zero = 1 << 4
    words = code.encode([3, -7, 64, 0])
    assert words.tolist() == [term(0, 1) | term(0, 0) << 5, term(1, 3) | term(0, 0) << 5,
                              term(0, 6) | zero << 5, zero | zero << 5]
    assert code.width == 10 and code.fields[1].sign_offset == 8
    unsigned = PotCode(UQ(1, 3), 1)
    assert unsigned.width == 3 and unsigned.encode([8]).tolist() == [3]
    assert PotCode(SQ(2, 4), 2, 0, 2).encode([-16]).tolist() == [(1 << 2 | 3) * 17]


def test_describe_and_ranges():
    assert PotCode(SQ(1, 7)).describe() == {"kind": "pot", "terms": 1, "e_min": 0, "e_max": 7,
                                            "exponent_bits": 3, "width": 5}
    assert PotCode(SQ(1, 7)).value_range == (-128, 128)
    assert PotCode(SQ(1, 7), 2).value_range == (-256, 256)
    assert PotCode(UQ(2, 3), 2).value_range == (-128, 256)
    assert PotCode(SQ(1, 15), 1, 8).exponent_bits == 3
    assert PotCode(SQ(1, 15), 1, 15).exponent_bits == 0
    assert PotCode("SQ(1,7)", 2).fmt == SQ(1, 7)


def test_encode_and_decode_name_the_first_bad_value():
    code = PotCode(SQ(1, 7))
    with pytest.raises(ValueError, match=r"^codes: 3 at index \(1, 0\) is not a pot code of "
                                         r"SQ\(1, 7\) \(0 or ±2\*\*k, k in 0\.\.7\)$"):
        code.encode([[0, 1], [3, 5]])
    with pytest.raises(ValueError, match=r"^codes: 200 at index 1 is not a pot2 code of "
                                         r"SQ\(1, 7\) \(0, ±2\*\*k or ±2\*\*k ± 2\*\*j, "
                                         r"k in 0\.\.7, j <= k\)$"):
        PotCode(SQ(1, 7), 2).encode([3, 200])
    with pytest.raises(ValueError, match=r"^codes: 3 at index 0 is not a pot code of UQ\(1, 3\) "
                                         r"\(0 or 2\*\*k, k in 0\.\.3\)$"):
        PotCode(UQ(1, 3)).encode([3])
    with pytest.raises(TypeError, match=r"^codes must hold integers, not dtype float64$"):
        code.encode([1.0])
    with pytest.raises(ValueError, match=r"^words: 32 at index 2 is outside the 5-bit word range "
                                         r"\[0, 31\]$"):
        code.decode([0, 1, 32])
    # Word 7 = +2**7 = 128: a legal word, but not a code of SQ(1, 7).
    with pytest.raises(ValueError, match=r"^words: 7 at index 0 stands for 128, outside SQ\(1, 7\) "
                                         r"\[-128, 127\]$"):
        code.decode([7])
    assert code.word_values([7]).tolist() == [128]


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(fmt="SQ(1,7)", terms=3), ParameterValueError,
     "terms must be 1 (pot) or 2 (pot2), not 3"),
    (dict(fmt="SQ(1,7)", terms="2"), ParameterTypeError,
     "terms must be 1 (pot) or 2 (pot2), not '2'"),
    (dict(fmt="SQ(1,7)", e_min=8), ParameterValueError,
     "e_min must be between 0 and 7 (the largest exponent of SQ(1, 7)), not 8"),
    (dict(fmt="SQ(1,7)", e_min=-1), ParameterValueError,
     "e_min must be between 0 and 7 (the largest exponent of SQ(1, 7)), not -1"),
    (dict(fmt="SQ(1,7)", e_min=1.0), ParameterTypeError, "e_min must be an integer, not 1.0"),
    (dict(fmt="SQ(1,7)", exponent_bits=7), ParameterValueError,
     "exponent_bits must be between 0 and 6, not 7"),
    (dict(fmt="SQ(1,7)", exponent_bits="3"), ParameterTypeError,
     "exponent_bits must be an integer or None, not '3'"),
    (dict(fmt=8), ParameterTypeError, "fmt must be a Format (SQ/UQ) or a format string, not 8"),
])
def test_code_parameter_errors(kwargs, error, message):
    with pytest.raises(error, match="^" + re.escape(message) + "$") as info:
        PotCode(**kwargs)
    assert info.value.parameter == message.split(" ")[0]


@pytest.mark.parametrize("args, error, parameter, message", [
    (([0.5, np.nan], SQ(1, 7)), ParameterValueError, "values", "values holds NaN or infinity"),
    ((["a"], SQ(1, 7)), ParameterTypeError, "values",
     "values must hold real numbers, not dtype <U1"),
    (([0.5], SQ(1, 7), 0), ParameterValueError, "terms",
     "terms must be 1 (pot) or 2 (pot2), not 0"),
])
def test_quantize_value_errors(args, error, parameter, message):
    with pytest.raises(error, match="^" + re.escape(message) + "$") as info:
        quantize_pot(*args)
    assert info.value.parameter == parameter


def test_large_formats_stay_exact():
    # Codes beyond 2**53 are not all floats; the search compares floats with ints exactly.
    code = PotCode(SQ(2, 60), 2)
    assert code.values()[-1] == 2 ** 61 - 1
    x = np.array([1.0 + 2.0 ** -52, -1.5, 2.0 ** -60, 1.9999999, 2.0 - 2.0 ** -51])
    got = code.quantize(x)
    want = [nearest(Fraction(float(v)) * 2 ** 60, code.values().tolist()) for v in x]
    assert got.tolist() == want
    assert want[:3] == [2 ** 60 + 2 ** 8, -(2 ** 60 + 2 ** 59), 1]
    # Its exponent fields reach 2**63: words beyond int64 are named, codes decode.
    assert code.e_max == 63 and code.value_range == (-(2 ** 64), 2 ** 64)
    words = code.encode(want)
    assert code.decode(words).tolist() == want
    top = code.fields[0].exponent_bits  # exponent 63 in term 0, term 1 zero
    word = 63 | 1 << (2 * top + 3)
    with pytest.raises(ValueError, match=f"^words: {word} at index 1 stands for "
                                         f"9223372036854775808, beyond int64$"):
        code.word_values([0, word])


def brute_force_codes(fmt, terms, e_min, e_max):
    """Codes of ``fmt`` that are 0, ±2**k or (pot2) ±2**k ± 2**j with ``e_min <= j, k <= e_max``:
    every code of the format tried against every such sum."""
    powers = [1 << k for k in range(e_min, e_max + 1)]
    found = []
    for q in range(fmt.min_int, fmt.max_int + 1):
        if q == 0 or abs(q) in powers or (terms == 2 and any(
                abs(q) in (a + b, a - b) for a in powers for b in powers)):
            found.append(q)
    return found


# Every signed and unsigned width up to 8 (the code of a format depends only on its width and
# signedness: it counts lsb units).
SMALL_FORMATS = [SQ(1, w - 1) for w in range(2, 9)] + [UQ(0, w) for w in range(1, 9)]


@pytest.mark.parametrize("fmt", SMALL_FORMATS, ids=str)
@pytest.mark.parametrize("terms", [1, 2])
def test_default_code_reaches_every_power_of_two_code_of_the_format(fmt, terms):
    # Exponents unbounded above (beyond width + 1 no sum is a code again): the default exponent
    # field must hold every code. It is the narrowest that does for pot and for unsigned pot2
    # (signed pot2 keeps the field that reaches the format's top power of two, which in a few
    # narrow formats the sum of two equal terms could also reach).
    for e_min in sorted({0, 1, 2, fmt.width - 1} & set(range(fmt.width))):
        code = PotCode(fmt, terms, e_min)
        everything = brute_force_codes(fmt, terms, e_min, fmt.width + 2)
        assert code.values().tolist() == everything, (e_min, code.e_max)
        if code.exponent_bits and (terms == 1 or not fmt.signed):
            narrower = PotCode(fmt, terms, e_min, code.exponent_bits - 1)
            assert len(narrower.values()) < len(everything)


@pytest.mark.parametrize("fmt", SMALL_FORMATS, ids=str)
@pytest.mark.parametrize("terms", [1, 2])
def test_every_exponent_field_holds_exactly_the_codes_of_its_exponents(fmt, terms):
    for e_min in sorted({0, 1, fmt.width - 1} & set(range(fmt.width))):
        for bits in range(4):
            code = PotCode(fmt, terms, e_min, bits)
            want = brute_force_codes(fmt, terms, e_min, e_min + (1 << bits) - 1)
            assert code.values().tolist() == want, (e_min, bits)
            np.testing.assert_array_equal(code.decode(code.encode(want)), want)


def test_unsigned_pot2_reaches_differences_below_the_top():
    # UQ(2, 2) holds 3.5 = 14 lsb = 2**4 - 2**1: its leading exponent 4 lies beyond the format.
    code = PotCode(UQ(2, 2), 2)
    assert (code.e_max, code.exponent_bits) == (7, 3)
    assert code.quantize([3.5, 3.75, 3.4]).tolist() == [14, 15, 14]
    assert code.word_values(code.encode([14, 15])).tolist() == [14, 15]
    # Unsigned pot (one term) and signed pot2 need no exponent beyond the format's top.
    assert PotCode(UQ(2, 2), 1).exponent_bits == 2
    assert PotCode(SQ(2, 2), 2).exponent_bits == 2
    assert PotCode(UQ(0, 62), 2).exponent_bits == 6
    for width in (2, 4, 8, 16, 32):
        differences = [(1 << width) - (1 << j) for j in range(width)]
        assert PotCode(UQ(0, width), 2).contains(differences).all(), width


@pytest.mark.parametrize("kwargs, error, parameter, message", [
    (dict(terms=3), ParameterValueError, "terms", "terms must be 1 (pot) or 2 (pot2), not 3"),
    (dict(terms="2"), ParameterTypeError, "terms", "terms must be 1 (pot) or 2 (pot2), not '2'"),
    (dict(e_min=9), ParameterValueError, "e_min",
     "e_min must be between 0 and 7 (the largest exponent of SQ(1, 7)), not 9"),
    (dict(e_min=1.0), ParameterTypeError, "e_min", "e_min must be an integer, not 1.0"),
    (dict(exponent_bits=7), ParameterValueError, "exponent_bits",
     "exponent_bits must be between 0 and 6, not 7"),
    (dict(exponent_bits=2.0), ParameterTypeError, "exponent_bits",
     "exponent_bits must be an integer or None, not 2.0"),
    (dict(fmt="SQ(1)"), ParameterValueError, "fmt",
     "fmt must be a format like 'SQ(4,12)' or 'UQ(0,8)', not 'SQ(1)'"),
])
def test_code_parameter_errors_carry_the_parameter(kwargs, error, parameter, message):
    args = dict(fmt=SQ(1, 7), terms=2)
    args.update(kwargs)
    with pytest.raises(error, match="^" + re.escape(message) + "$") as info:
        PotCode(**args)
    assert info.value.parameter == parameter
