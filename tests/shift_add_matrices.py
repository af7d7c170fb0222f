"""Matrices shared by the shift-add builder tests (tests/test_plans_shift_add*.py)."""

import numpy as np



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
