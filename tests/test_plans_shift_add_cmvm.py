import pytest

from hwnn.plans.shift_add import cmvm as cmvm_module
from hwnn.plans.shift_add.cmvm import build_cmvm, transpose
from hwnn.plans.shift_add.cse import _cse_graph, build_cse
from shift_add_matrices import benchmark_matrix, some_matrices


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
    saved = cmvm_module._BUDGET
    try:
        cmvm_module._BUDGET = 0
        g = build_cmvm(w, (-128, 127))
    finally:
        cmvm_module._BUDGET = saved
    assert g.method == "cse" and g.nodes == plain.nodes and g.outputs == plain.outputs
    assert build_cmvm(w, (-128, 127)).adders < plain.adders - 20
