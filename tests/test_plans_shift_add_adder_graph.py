import dataclasses
import json

import numpy as np
import pytest

from hwnn.fixed import SQ, UQ
from hwnn.plans.shift_add.adder_graph import GraphBuilder, as_ranges, as_weight, format_ranges

RANGES = [(-8, 7), (0, 15)]
WEIGHT = [[4, -1], [0, 0], [-24, 0], [-4, 4]]


def example():
    """A hand-built graph whose every number is worked out in the assertions below."""
    b = GraphBuilder(2, RANGES)
    three = b.add((0, 1, 0), (0, 1, 1))              # x0 + 2·x0: new node 2
    diff = b.add((1, 1, 2), (0, -1, 2))              # 4·x1 − 4·x0 = −((x0 − x1) << 2): node 3
    assert three == (2, 1, 0) and diff == (3, -1, 2)
    assert b.add((0, 1, 0), (1, -1, 0)) == (3, 1, 0)     # x0 − x1 again: shared, no adder
    assert b.add((1, -1, 0), (0, 1, 0)) == (3, 1, 0)     # the same, operands swapped
    assert b.add((0, 1, 1), (0, -1, 0)) == (0, 1, 0)     # 2·x0 − x0 is the input itself
    assert b.add((2, 1, 0), (2, -1, 0)) is None          # identically zero
    assert b.add((2, 1, 1), (2, 1, 1)) == (2, 1, 2)      # 6·x0 + 6·x0 = 3·x0 << 2
    unused = b.add((0, 1, 3), (1, 1, 0))                 # built but never used: pruned
    assert unused == (4, 1, 0)
    out0 = b.add(three, (3, 1, 0))                       # 3·x0 + x0 − x1 = 4·x0 − x1
    return b.finish([out0, None, (2, -1, 3), diff], "hand")


def test_builder_normalizes_adders():
    g = example()
    assert g.adders == 3 and len(g.nodes) == 5
    n2, n3, n4 = g.nodes[2:]
    assert (n2.a, n2.sa, n2.s, n2.b, n2.sb, n2.t) == (0, 1, 0, 0, 1, 1)
    # x0 − x1: the positive operand first, common shift pushed to the users.
    assert (n3.a, n3.sa, n3.s, n3.b, n3.sb, n3.t) == (0, 1, 0, 1, -1, 0)
    assert (n4.a, n4.b) == (2, 3) and n4.form == (4, -1)
    for n in g.nodes[2:]:
        assert min(n.s, n.t) == 0 and (n.sa, n.sb) != (-1, -1)


def test_graph_costs_by_hand():
    g = example()
    assert [n.form for n in g.nodes] == [(1, 0), (0, 1), (3, 0), (1, -1), (4, -1)]
    assert [(n.lo, n.hi) for n in g.nodes] == [(-8, 7), (0, 15), (-24, 21), (-23, 7), (-47, 28)]
    assert [n.width for n in g.nodes] == [4, 5, 6, 6, 7]
    assert [n.depth for n in g.nodes] == [0, 0, 1, 1, 2]
    assert g.depth == 2
    assert g.shifts == 1 + 2            # node 2's operand shift; outputs 2 and 3
    assert g.nabs == 6
    assert g.adder_bits == 6 + 6 + 7
    assert [o.width for o in g.outputs] == [7, 1, 9, 8]
    assert [(o.lo, o.hi) for o in g.outputs] == [(-47, 28), (0, 0), (-168, 192), (-28, 92)]
    assert g.outputs[1].is_zero and not g.outputs[0].is_zero
    assert g.max_width == 9
    assert g.describe() == {"method": "hand", "n_in": 2, "n_out": 4, "adders": 3, "depth": 2,
                            "shifts": 3, "nabs": 6, "adder_bits": 19, "max_width": 9}
    json.dumps(g.describe())


@pytest.mark.parametrize("share, adders", [(True, 1), (False, 3)])
def test_builder_shares_unless_told_not_to(share, adders):
    b = GraphBuilder(2, RANGES, share=share)
    first = b.add((0, 1, 0), (1, 1, 1))                 # x0 + 2·x1
    again = b.add((0, -1, 2), (1, -1, 3))               # −(x0 + 2·x1) << 2: the same adder
    assert first[1:] == (1, 0) and again[1:] == (-1, 2) and first[0] == again[0]
    partial = b.add((0, 1, 0), (1, 1, 0))               # x0 + x1
    other = b.add(partial, (1, 1, 0))                   # (x0 + x1) + x1: same value, new operands
    assert (other[0] == first[0]) == share
    assert b.add((0, 1, 0), (0, -1, 0)) is None
    g = b.finish([first, again, other])
    g.verify([[1, 2], [-4, -8], [1, 2]])
    assert g.adders == adders


def test_fanout_and_levels():
    g = example()
    fan = g.fanout()
    assert fan[0] == ((2, 3), ())
    assert fan[1] == ((3,), ())
    assert fan[2] == ((4,), (2,))
    assert fan[3] == ((4,), (3,))
    assert fan[4] == ((), (0,))
    assert g.levels() == ((0, 1), (2, 3), (4,))
    assert [n.level for n in g.nodes] == [0, 0, 1, 1, 2]


def test_verify_and_evaluate():
    g = example()
    g.verify(WEIGHT)
    g.verify(np.array(WEIGHT))
    assert list(g.evaluate([-8, 15])) == [-47, 0, 192, 92]
    x = np.array([[a, b] for a in range(-8, 8) for b in range(16)])
    np.testing.assert_array_equal(g.evaluate(x).astype(np.int64), x @ np.array(WEIGHT).T)
    out, values = g.evaluate([7, 0], nodes=True)
    assert values == [7, 0, 21, 7, 28] and list(out) == [28, 0, -168, -28]


def test_verify_rejects_another_matrix():
    g = example()
    with pytest.raises(ValueError, match=r"^output 0 computes \[4, -1\]·x, but row 0 of "
                                         r"weight is \[4, 0\]$"):
        g.verify([[4, 0], [0, 0], [-24, 0], [-4, 4]])
    with pytest.raises(ValueError, match=r"^weight has shape \(4, 3\), but the graph computes "
                                         r"4 outputs of 2 inputs$"):
        g.verify([[4, -1, 0], [0, 0, 0], [-24, 0, 0], [-4, 4, 0]])


def test_check_catches_tampering():
    g = example()
    bad = list(g.nodes)
    bad[2] = dataclasses.replace(bad[2], form=(5, 0))
    with pytest.raises(ValueError, match=r"^node 2 has form \(5, 0\), but its operands give "
                                         r"\(3, 0\)$"):
        dataclasses.replace(g, nodes=tuple(bad)).check()
    bad = list(g.nodes)
    bad[3] = dataclasses.replace(bad[3], lo=-24)
    with pytest.raises(ValueError, match=r"^node 3 has range \[-24, 7\], but its form gives "
                                         r"\[-23, 7\]$"):
        dataclasses.replace(g, nodes=tuple(bad)).verify(WEIGHT)
    bad = list(g.nodes)
    bad[4] = dataclasses.replace(bad[4], sa=-1, sb=-1)
    with pytest.raises(ValueError, match=r"^node 4 breaks the adder-node rules: Node\(a=2, "
                                         r"sa=-1, s=0, b=3, sb=-1, t=0, form=\(4, -1\), "
                                         r"lo=-47, hi=28, depth=2\)$"):
        dataclasses.replace(g, nodes=tuple(bad)).check()
    outs = list(g.outputs)
    outs[2] = dataclasses.replace(outs[2], shift=2)
    with pytest.raises(ValueError, match=r"^output 2 stores form \(-24, 0\) and range "
                                         r"\[-168, 192\], but its node gives \(-12, 0\)$"):
        dataclasses.replace(g, outputs=tuple(outs)).check()


def test_evaluate_rejects_bad_inputs():
    g = example()
    with pytest.raises(ValueError,
                       match=r"^x\[1\] = 16 is outside the input range \[0, 15\]$") as info:
        g.evaluate([0, 16])
    assert info.value.parameter == "x"
    with pytest.raises(ValueError, match=r"^x must have shape \(2,\) or \(batch, 2\), "
                                         r"not \(3,\)$") as info:
        g.evaluate([0, 1, 2])
    assert info.value.parameter == "x"
    with pytest.raises(TypeError, match=r"^x must hold integers, not dtype float64$") as info:
        g.evaluate([0.0, 1.0])
    assert info.value.parameter == "x"


def test_evaluate_is_exact_beyond_int64():
    big = 1 << 80
    b = GraphBuilder(2, [(-big, big), (-big, big)])
    s = b.add((0, 1, 40), (1, -1, 0))
    g = b.finish([s], "big")
    g.verify([[1 << 40, -1]])
    assert g.evaluate(np.array([big, -big], dtype=object))[0] == (big << 40) + big
    assert g.nodes[2].width == 122


def test_as_weight():
    assert as_weight([[1, -2], [3, 4]]) == ((1, -2), (3, 4))
    assert as_weight(np.array([[2**70]], dtype=object)) == ((2**70,),)
    assert isinstance(as_weight(np.array([[5]], dtype=np.int8))[0][0], int)


@pytest.mark.parametrize("weight, message", [
    ([1, 2, 3], r"^weight must be a non-empty 2-D integer matrix \(n_out, n_in\), "
                r"not shape \(3,\)$"),
    (np.zeros((0, 3), dtype=int), r"^weight must be a non-empty 2-D integer matrix "
                                  r"\(n_out, n_in\), not shape \(0, 3\)$"),
    (np.zeros((2, 2, 2), dtype=int), r"^weight must be a non-empty 2-D integer matrix "
                                     r"\(n_out, n_in\), not shape \(2, 2, 2\)$"),
    ([[1, 2], [3]], r"^weight must be a non-empty 2-D integer matrix \(n_out, n_in\), "
                    r"not a ragged sequence$"),
])
def test_as_weight_rejects_shapes(weight, message):
    with pytest.raises(ValueError, match=message) as info:
        as_weight(weight)
    assert info.value.parameter == "weight"


@pytest.mark.parametrize("weight, message", [
    ([[1.0, 2.0]], r"^weight must hold integers, not dtype float64$"),
    ([[True, False]], r"^weight must hold integers, not dtype bool$"),
    (np.array([[1, 2.5]], dtype=object), r"^weight must hold integers, not 2\.5$"),
])
def test_as_weight_rejects_types(weight, message):
    with pytest.raises(TypeError, match=message) as info:
        as_weight(weight)
    assert info.value.parameter == "weight"


def test_as_ranges():
    assert as_ranges([(-1, 2), (0, 0)], 2) == ((-1, 2), (0, 0))
    assert as_ranges((-128, 127), 3) == ((-128, 127),) * 3
    assert as_ranges(SQ(1, 7), 2) == ((-128, 127),) * 2
    assert as_ranges("UQ(4,0)", 1) == ((0, 15),)
    assert format_ranges(UQ(0, 8), 2) == ((0, 255), (0, 255))
    assert as_ranges([(np.int64(-3), np.int32(3))], 1) == ((-3, 3),)


@pytest.mark.parametrize("ranges, exc, message", [
    ([(0, 1)] * 3, ValueError, r"^in_ranges must give one \(lo, hi\) pair per input \(2\), not 3$"),
    ([(0, 1), (5, 2)], ValueError, r"^in_ranges\[1\] must have lo <= hi, not \(5, 2\)$"),
    ([(0, 1), (0.0, 2)], TypeError, r"^in_ranges\[1\] must be a \(lo, hi\) pair of integers, "
                                    r"not \(0\.0, 2\)$"),
    ([(0, 1), 7], TypeError, r"^in_ranges\[1\] must be a \(lo, hi\) pair of integers, not 7$"),
    (3, TypeError, r"^in_ranges must be a list of \(lo, hi\) pairs, one \(lo, hi\) pair or a "
                   r"Format, not 3$"),
])
def test_as_ranges_rejects(ranges, exc, message):
    with pytest.raises(exc, match=message) as info:
        as_ranges(ranges, 2)
    assert info.value.parameter == "in_ranges"
