import itertools
import math

import numpy as np
import pytest

from hwnn.plans.shift_add.csd import build_csd, csd, csd_adders, odd_part


def check_naf(n, digits):
    assert sum(sign << shift for sign, shift in digits) == n
    assert all(sign in (1, -1) for sign, _ in digits)
    shifts = [shift for _, shift in digits]
    assert shifts == sorted(shifts) and (not shifts or shifts[0] >= 0)
    # Non-adjacent: two nonzero digits are at least two positions apart.
    assert all(b - a >= 2 for a, b in zip(shifts, shifts[1:]))


def test_csd_small_ints_exact_and_non_adjacent():
    for n in range(-5000, 5001):
        check_naf(n, csd(n))


@pytest.mark.parametrize("n", [2**64 - 1, -(2**64) + 1, 3**100, -(7**60), (1 << 200) + 1,
                               int("10" * 50, 2), int("1011" * 40, 2)])
def test_csd_big_ints(n):
    check_naf(n, csd(n))


def test_csd_examples():
    assert csd(0) == ()
    assert csd(1) == ((1, 0),)
    assert csd(-1) == ((-1, 0),)
    assert csd(7) == ((-1, 0), (1, 3))
    assert csd(-3) == ((1, 0), (-1, 2))
    assert csd(2**64 - 1) == ((-1, 0), (1, 64))
    assert csd(np.int64(12)) == ((-1, 2), (1, 4))


def test_csd_is_minimum_weight_against_brute_force():
    # Every signed-binary representation of length 10 with digits -1/0/1: the fewest nonzero
    # digits for each value it reaches. CSD must match that minimum for every |n| < 512.
    length = 10
    digits = np.array(list(itertools.product((-1, 0, 1), repeat=length)), dtype=np.int64)
    values = digits @ (1 << np.arange(length, dtype=np.int64))
    weights = np.count_nonzero(digits, axis=1)
    best = {}
    for v, w in zip(values.tolist(), weights.tolist()):
        if w < best.get(v, length + 1):
            best[v] = w
    for n in range(-511, 512):
        assert len(csd(n)) == best[n], n


def test_csd_adders():
    assert csd_adders(0) == 0
    for k in range(70):
        assert csd_adders(1 << k) == 0 and csd_adders(-(1 << k)) == 0
    assert csd_adders(3) == 1 and csd_adders(7) == 1 and csd_adders(-5) == 1
    assert csd_adders(11) == 2          # 16 - 4 - 1
    assert csd_adders(0b1010101) == 3
    assert csd_adders(2**64 - 1) == 1


def test_odd_part():
    assert odd_part(0) == (0, 0)
    assert odd_part(12) == (3, 2)
    assert odd_part(-40) == (-5, 3)
    assert odd_part(7) == (7, 0)
    assert odd_part(1 << 100) == (1, 100)


@pytest.mark.parametrize("bad", [1.0, True, "3", None, np.float64(2.0)])
def test_csd_rejects_non_integers(bad):
    for function in (csd, csd_adders, odd_part):
        with pytest.raises(TypeError) as info:
            function(bad)
        assert str(info.value) == f"n must be an integer, not {bad!r}"
        assert info.value.parameter == "n"


def test_csd_error_names_the_value():
    with pytest.raises(TypeError, match=r"^n must be an integer, not 2\.5$"):
        csd(2.5)


def test_csd_builder_counts_digits_and_balances_the_tree():
    # Nine distinct inputs with single-digit weights: 8 adders in ceil(log2 9) = 4 levels.
    row = [1, -2, 4, 1, 0, 8, -16, 1, 32, 2]
    g = build_csd([row], (-128, 127))
    assert g.adders == 8 and g.depth == 4
    # No subexpression search, but an adder identical to an earlier one is that one (as
    # synthesis would merge it): x + 4x and (x + 4x) << 4 share their adder, 3 instead of 4.
    g = build_csd([[0b101010101]], (-128, 127))
    assert g.adders == 3 and g.depth == 3
    rng = np.random.default_rng(3)
    w = rng.integers(-128, 128, (6, 7))
    g = build_csd(w, (-128, 127))
    terms = [sum(len(csd(int(v))) for v in r) for r in w]
    assert g.adders <= sum(t - 1 for t in terms)
    assert g.depth == max(math.ceil(math.log2(t)) for t in terms)
