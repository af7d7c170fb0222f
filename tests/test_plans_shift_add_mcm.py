from hwnn.plans.shift_add.mcm import build_mcm_columns, mcm


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
