"""Lookup-table plans shared by tests/test_plans_lut.py and tests/test_ref_lut.py."""

from hwnn.fixed import SQ, UQ


PLANS = [
    ("sigmoid", SQ(4, 6), UQ(0, 8), {}),
    ("tanh", SQ(4, 6), SQ(1, 7), dict(table_size=128)),
    ("tanh", SQ(4, 6), SQ(1, 9), dict(table_size=256, input_range=(-4, 4))),
    ("sigmoid", SQ(4, 6), UQ(0, 10), dict(table_size=64, symmetric=False, entries="left")),
    ("sigmoid", UQ(3, 5), UQ(0, 8), dict(table_size=32)),
]
