import numpy as np

from hwnn.plans.shift_add import build_csd, build_mcm_columns
from hwnn.plans.shift_add import cse as cse_module
from hwnn.plans.shift_add.csd import csd
from hwnn.plans.shift_add.cse import _msd_forms, build_cse


def test_cse_shares_more_than_columns_and_csd():
    for seed in range(3):
        w = np.random.default_rng(seed).integers(-128, 128, (16, 16))
        csd_g, col_g, cse_g = (f(w, (-128, 127)) for f in (build_csd, build_mcm_columns, build_cse))
        assert cse_g.adders <= col_g.adders <= csd_g.adders, seed
        assert cse_g.adders < 0.8 * csd_g.adders


def test_cse_shares_a_repeated_pair():
    # x0 + 2·x1 appears (shifted, negated) in all three outputs: one adder serves them all.
    w = [[1, 2, 0], [-4, -8, 0], [2, 4, 1]]
    g = build_cse(w, (-128, 127))
    g.verify(w)
    assert g.adders == 2


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
    assert len(_msd_forms(many)) == cse_module._MSD_FORMS and _msd_forms(many)[0] == csd(many)
    assert _msd_forms(3 << 30) == (csd(3 << 30),)
