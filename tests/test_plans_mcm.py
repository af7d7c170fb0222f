import math

import numpy as np
import pytest

from hwnn.fixed import SQ
from hwnn.plans.csd import csd, csd_adders
from hwnn.plans import mcm as mcm_module
from hwnn.plans.mcm import (METHODS, _cse_graph, _msd_forms, build, build_cmvm, build_csd,
                            build_cse, build_mcm_columns, mcm, scm_adders, transpose)

BUILDERS = {"csd": build_csd, "columns": build_mcm_columns, "cse": build_cse,
            "cmvm": build_cmvm}


def matrices():
    """(name, weight, in_ranges): random, sparse, repeated, tiny and degenerate matrices."""
    rng = np.random.default_rng(7)
    out = [("int8 12x10", rng.integers(-128, 128, (12, 10)), (-128, 127))]
    sparse = rng.integers(-8, 8, (9, 11))
    sparse[rng.random(sparse.shape) < 0.5] = 0
    out.append(("sparse int4", sparse, [(-3, 5)] * 11))
    clustered = rng.choice([-96, -24, -3, 0, 3, 12, 48, 96], size=(10, 6))
    out.append(("clustered", clustered, (0, 255)))
    zero_column = rng.integers(-64, 64, (5, 4))
    zero_column[:, 2] = 0
    zero_column[3, :] = 0
    out.append(("zero column and row", zero_column, [(-4, 3), (0, 9), (-100, 100), (7, 7)]))
    out.append(("1x1", np.array([[-45]]), (-128, 127)))
    out.append(("1x1 power of two", np.array([[64]]), (-128, 127)))
    out.append(("all zero", np.zeros((3, 4), dtype=np.int64), (-128, 127)))
    out.append(("negative", -np.abs(rng.integers(1, 4096, (4, 5))), (-2048, 2047)))
    out.append(("wide", np.array([[2**40 + 1, -(2**33) - 7], [12345678901, 3]], dtype=object),
                [(-(2**20), 2**20), (0, 2**30)]))
    return out


def random_inputs(ranges, count, seed=0):
    rng = np.random.default_rng(seed)
    x = np.empty((count, len(ranges)), dtype=object)
    for i, (lo, hi) in enumerate(ranges):
        x[:, i] = [lo + int(v) for v in rng.integers(0, hi - lo + 1, count)]
    x[0] = [lo for lo, _ in ranges]
    x[1] = [hi for _, hi in ranges]
    return x


@pytest.mark.parametrize("method", ["csd", "columns", "cse", "cmvm", "best"])
@pytest.mark.parametrize("name, weight, ranges", matrices(), ids=[m[0] for m in matrices()])
def test_graph_is_exact(method, name, weight, ranges):
    g = build(weight, ranges, method)
    g.verify(weight)
    x = random_inputs(g.in_ranges, 40)
    expected = x.dot(np.asarray(weight, dtype=object).T)
    np.testing.assert_array_equal(g.evaluate(x), expected)
    for n in g.nodes[g.n_in:]:
        assert min(n.s, n.t) == 0 and (n.sa, n.sb) != (-1, -1)
        assert n.a < len(g.nodes) and n.b < len(g.nodes)


@pytest.mark.parametrize("method", ["csd", "columns", "cse", "cmvm"])
@pytest.mark.parametrize("name, weight, ranges", matrices()[:4], ids=[m[0] for m in matrices()[:4]])
def test_widths_are_exact(method, name, weight, ranges):
    # Each node's range is reached: at the input corner picked by the signs of its form.
    g = build(weight, ranges, method)
    lo = [r[0] for r in g.in_ranges]
    hi = [r[1] for r in g.in_ranges]
    for k, n in enumerate(g.nodes):
        at_min = [h if c < 0 else l for c, l, h in zip(n.form, lo, hi)]
        at_max = [l if c < 0 else h for c, l, h in zip(n.form, lo, hi)]
        _, low = g.evaluate(at_min, nodes=True)
        _, high = g.evaluate(at_max, nodes=True)
        assert (low[k], high[k]) == (n.lo, n.hi), k
    for o in g.outputs:
        at_min = [h if c < 0 else l for c, l, h in zip(o.form, lo, hi)]
        at_max = [l if c < 0 else h for c, l, h in zip(o.form, lo, hi)]
        assert sum(c * v for c, v in zip(o.form, at_min)) == o.lo
        assert sum(c * v for c, v in zip(o.form, at_max)) == o.hi


def test_zero_matrix_costs_nothing():
    for method in METHODS:
        g = build(np.zeros((3, 4), dtype=int), (-8, 7), method)
        assert g.adders == 0 and g.depth == 0 and all(o.is_zero for o in g.outputs)
        assert list(g.evaluate([1, 2, 3, 4])) == [0, 0, 0]


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


def test_repeated_weights_are_computed_once():
    # One column of ±3·2^k: one adder makes 3·x, every output is a shift of it.
    g = build_mcm_columns([[3], [3], [-3], [6], [-12], [0]], (-128, 127))
    assert g.adders == 1 and g.depth == 1
    assert [o.shift for o in g.outputs[:5]] == [0, 0, 0, 1, 2]
    assert [o.sign for o in g.outputs[:5]] == [1, 1, -1, 1, -1]


def test_mcm_steps_are_consistent():
    constants = [45, 105, 3, -7, 0, 64, 4095, 2047, 1001, 45]
    steps = mcm(constants)
    known = {1}
    for st in steps:
        assert st.u in known and st.v in known
        assert st.value == st.su * (st.u << st.i) + st.sv * (st.v << st.j) > 0
        assert st.value % 2 == 1 and min(st.i, st.j) == 0
        known.add(st.value)
    assert {45, 105, 3, 7, 4095, 2047, 1001} <= known
    assert mcm([0, 1, -4, 2**20]) == ()


@pytest.mark.parametrize("c, adders", [(1, 0), (3, 1), (7, 1), (11, 2), (45, 2), (-45, 2),
                                       (0b10101010101, 3), (4, 0), (0, 0)])
def test_known_single_constant_costs(c, adders):
    assert scm_adders(c) == adders
    assert build_mcm_columns([[c]], (-128, 127)).adders == adders


def single_constant_average(bits):
    total = 0
    for c in range(1, 1 << bits):
        g = build_mcm_columns([[c]], (-128, 127))
        g.verify([[c]])
        assert g.adders <= csd_adders(c), c
        total += g.adders
    return total / ((1 << bits) - 1)


def test_single_constant_quality():
    # Averages over every constant 1 … 2^b − 1 (the convention under which CSD averages 2.12
    # and 3.45, and optimal graphs 2.00 and 2.90); the goal is within 5% of optimal.
    csd8 = sum(csd_adders(c) for c in range(1, 256)) / 255
    csd12 = sum(csd_adders(c) for c in range(1, 4096)) / 4095
    assert round(csd8, 2) == 2.12 and round(csd12, 2) == 3.45
    assert single_constant_average(8) <= 2.10
    assert single_constant_average(12) <= 3.045


def test_cse_shares_more_than_columns_and_csd():
    for seed in range(3):
        w = np.random.default_rng(seed).integers(-128, 128, (16, 16))
        csd_g, col_g, cse_g = (BUILDERS[m](w, (-128, 127)) for m in ("csd", "columns", "cse"))
        assert cse_g.adders <= col_g.adders <= csd_g.adders, seed
        assert cse_g.adders < 0.8 * csd_g.adders


def test_cse_shares_a_repeated_pair():
    # x0 + 2·x1 appears (shifted, negated) in all three outputs: one adder serves them all.
    w = [[1, 2, 0], [-4, -8, 0], [2, 4, 1]]
    g = build_cse(w, (-128, 127))
    g.verify(w)
    assert g.adders == 2


def test_best_picks_the_fewest_adders():
    w = np.random.default_rng(11).integers(-128, 128, (8, 8))
    graphs = {m: build(w, SQ(1, 7), m) for m in ("csd", "columns", "cse", "cmvm")}
    best = build(w, SQ(1, 7))
    assert best.adders == min(g.adders for g in graphs.values())
    assert best.method in graphs
    assert graphs["cmvm"].adders <= graphs["cse"].adders


def test_builds_are_deterministic():
    w = np.random.default_rng(5).integers(-32, 32, (10, 12))
    w[2] = w[7]
    w[:, 3] = 0
    for method in ("csd", "columns", "cse", "cmvm", "best"):
        a, b = build(w, (-8, 7), method), build(w.copy(), (-8, 7), method)
        assert a.nodes == b.nodes and a.outputs == b.outputs and a.method == b.method


def benchmark_matrix(name):
    """The matrices of benchmarks/shift_add.py (the same seeds and construction)."""
    if name == "A":
        return np.random.default_rng(101).integers(-128, 128, (16, 16))
    if name == "B":
        rng = np.random.default_rng(102)
        w = rng.integers(-8, 8, (32, 32))
        w[rng.permutation(w.size).reshape(w.shape) < w.size // 2] = 0
        return w
    return np.random.default_rng(103).integers(-32, 32, (8, 64))


@pytest.mark.parametrize("name, before, da4ml, ours", [("A", 381, 363, 350),
                                                       ("B", 472, 459, 452),
                                                       ("C", 582, 567, 552)])
def test_best_beats_plain_cse_and_da4ml_on_the_benchmark(name, before, da4ml, ours):
    # Graph adders of the benchmark's matrices: plain CSE alone gave `before`, da4ml 0.6.0 (its
    # CMVM solver through the trace API, as the benchmark counts it) `da4ml`; `ours` is what
    # build_cmvm reached when this test was written, within da4ml's adder depths (8, 6, 10).
    w = benchmark_matrix(name)
    plain = build_cse(w, (-128, 127))
    assert plain.adders == before
    g = build(w, (-128, 127))
    g.verify(w)
    assert g.adders <= ours < da4ml < before
    assert g.depth <= {"A": 8, "B": 6, "C": 10}[name]


def some_matrices():
    """Small matrices with zeros, repeated rows and columns, negated and shifted copies."""
    rng = np.random.default_rng(21)
    out = []
    for shape, bound in (((7, 9), 128), ((9, 5), 8), ((3, 14), 32), ((12, 4), 64)):
        w = rng.integers(-bound, bound, shape)
        w[rng.random(shape) < 0.25] = 0
        w[1] = -2 * w[0]
        w[:, 2] = w[:, 1]
        w[-1] = 0
        out.append(w)
    out.append(np.array([[3, 6, -12, 5, 7, 0, 96]]))
    out.append(np.array([[11], [-22], [45], [0], [3]]))
    return out


@pytest.mark.parametrize("k", range(6))
def test_transpose_is_exact(k):
    w = some_matrices()[k]
    n_out, n_in = w.shape
    ranges = [(-5 - i, 9 + 2 * i) for i in range(n_in)]
    flipped = build_cse(w.T, (-1, 1))
    g = transpose(flipped, ranges)
    g.verify(w)
    assert g.in_ranges == tuple(ranges) and g.method == "cse"
    # Reversing the edges: an adder becomes a fan-out, a value used f times a sum of f terms,
    # so A + n_in - n_out adders when every input and output of the flipped graph is used.
    used = {o.node for o in flipped.outputs if o.node is not None}
    if all(not o.is_zero for o in flipped.outputs) and len(used) == flipped.n_out and all(
            any(n.a == i or n.b == i for n in flipped.nodes[flipped.n_in:]) or i in used
            for i in range(flipped.n_in)):
        assert g.adders <= flipped.adders + flipped.n_out - flipped.n_in
    back = transpose(g, (-1, 1))
    back.verify(w.T)


@pytest.mark.parametrize("k", range(6))
@pytest.mark.parametrize("msd", [False, True])
def test_every_cmvm_run_is_exact(k, msd):
    w = some_matrices()[k]
    ranges = ((-128, 127),) * w.shape[1]
    rows = tuple(tuple(int(v) for v in r) for r in w)
    for budget in (0, 10**6):
        g, work = _cse_graph(rows, ranges, "x", msd, budget)
        g.verify(w)
        assert work <= budget if budget == 0 else work < budget
        columns = tuple(zip(*rows))
        h, _ = _cse_graph(columns, ((-1, 1),) * len(rows), "x", msd, budget)
        transpose(h, ranges).verify(w)
    assert build_cmvm(w, ranges).adders <= build_cse(w, ranges).adders


def test_cmvm_budget():
    # Without budget cmvm is the plain CSE; small matrices get every run at full strength.
    w = benchmark_matrix("A")
    plain = build_cse(w, (-128, 127))
    saved = mcm_module._BUDGET
    try:
        mcm_module._BUDGET = 0
        g = build_cmvm(w, (-128, 127))
    finally:
        mcm_module._BUDGET = saved
    assert g.method == "cse" and g.nodes == plain.nodes and g.outputs == plain.outputs
    assert build_cmvm(w, (-128, 127)).adders < plain.adders - 20


def test_msd_forms():
    assert _msd_forms(0) == ((),)
    assert _msd_forms(3) == (((-1, 0), (1, 2)), ((1, 0), (1, 1)))
    assert _msd_forms(-6) == (((1, 1), (-1, 3)), ((-1, 1), (-1, 2)))
    assert _msd_forms(5) == (((1, 0), (1, 2)),)
    for n in range(-600, 600):
        forms = _msd_forms(n)
        assert forms[0] == csd(n) and len(set(forms)) == len(forms)
        for form in forms:
            assert sum(g << s for g, s in form) == n and len(form) == len(csd(n))
            assert [s for _, s in form] == sorted({s for _, s in form})
    # Long runs of ones have many minimal forms: capped, and wide constants keep their CSD.
    # 51 = 32+16+2+1 = 32+16+4−1 = 64−16+2+1 = 64−16+4−1 (its CSD) = 64−8−4−1
    assert len(_msd_forms(0b110011)) == 5
    many = sum(3 << 4 * k for k in range(5))    # 2**5 minimal forms
    assert len(_msd_forms(many)) == mcm_module._MSD_FORMS and _msd_forms(many)[0] == csd(many)
    assert _msd_forms(3 << 30) == (csd(3 << 30),)


def test_build_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"^method must be one of csd \| columns \| cse \| cmvm "
                                         r"\| best, not 'fast'$"):
        build([[1]], (0, 1), "fast")
    with pytest.raises(TypeError, match=r"^method must be a string, not 3$"):
        build([[1]], (0, 1), 3)
    with pytest.raises(TypeError, match=r"^weight must hold integers, not dtype float64$"):
        build([[1.5]], (0, 1))
    with pytest.raises(ValueError, match=r"^weight must be a non-empty 2-D integer matrix "
                                         r"\(n_out, n_in\), not shape \(2,\)$"):
        build_cse([1, 2], (0, 1))
    with pytest.raises(ValueError, match=r"^in_ranges must give one \(lo, hi\) pair per input "
                                         r"\(2\), not 1$"):
        build_mcm_columns([[1, 2]], [(0, 1)])
    with pytest.raises(ValueError, match=r"^in_ranges\[0\] must have lo <= hi, not \(1, 0\)$"):
        build_csd([[1]], [(1, 0)])
    with pytest.raises(TypeError, match=r"^n must be an integer, not 1\.5$"):
        mcm([1.5])
