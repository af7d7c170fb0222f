import bisect
from fractions import Fraction

import numpy as np
import pytest
from amaranth.hdl import Signal

from hwnn.boards.pll import (TOLERANCE, Ecp5Pll, Ice40Pll, find_pll, format_mhz,
                             pll_instance)

MHZ = 1_000_000


# The PLL rules written again, apart from the module: outputs as exact fractions.
def ice40_out(fin, divr, divf, divq):
    return Fraction(fin * (divf + 1), (divr + 1) * 2 ** divq)


def ice40_valid(fin, divr, divf, divq):
    pfd = Fraction(fin, divr + 1)
    vco = pfd * (divf + 1)
    return (0 <= divr <= 15 and 0 <= divf <= 127 and 1 <= divq <= 6
            and 10 * MHZ <= pfd <= 133 * MHZ and 533 * MHZ <= vco <= 1066 * MHZ
            and 16 * MHZ <= ice40_out(fin, divr, divf, divq) <= 275 * MHZ)


def ice40_outputs(fin):
    return sorted({ice40_out(fin, r, f, q) for r in range(16) for f in range(128)
                   for q in range(1, 7) if ice40_valid(fin, r, f, q)})


def ecp5_combos(fin):
    """Every valid (CLKI_DIV, CLKFB_DIV, CLKOP_DIV) as integer arrays, with numpy."""
    r, fb, od = np.meshgrid(np.arange(1, 129), np.arange(1, 81), np.arange(1, 129),
                            indexing="ij")
    r, fb, od = r.ravel().astype(np.int64), fb.ravel().astype(np.int64), od.ravel()
    ok = ((3_125_000 * r <= fin) & (fin <= 400 * MHZ * r)               # F_pfd
          & (10 * MHZ * r <= fin * fb) & (fin * fb <= 400 * MHZ * r)    # F_out
          & (400 * MHZ * r <= fin * fb * od) & (fin * fb * od <= 800 * MHZ * r))  # F_vco
    return r[ok], fb[ok], od[ok]


def nearest(outputs, target):
    i = bisect.bisect_left(outputs, target)
    return min(outputs[max(0, i - 1):i + 1], key=lambda out: abs(out - target))


@pytest.mark.parametrize("fin", [12 * MHZ, 48 * MHZ])
def test_ice40_every_integer_mhz(fin):
    outputs = ice40_outputs(fin)
    made = refused = 0
    for mhz in range(16, 276):
        target = Fraction(mhz * MHZ)
        best = abs(nearest(outputs, target) - target)
        if best > TOLERANCE * target:
            with pytest.raises(ValueError, match=f"clock {mhz} MHz cannot be made"):
                find_pll("ice40", fin, target)
            refused += 1
            continue
        pll = None if target == fin else find_pll("ice40", fin, target)
        if pll is None:
            continue
        assert ice40_valid(fin, pll.divr, pll.divf, pll.divq)
        assert pll.output_hz == ice40_out(fin, pll.divr, pll.divf, pll.divq)
        assert abs(pll.output_hz - target) == best   # the closest there is
        made += 1
    assert made > 150 and refused > 0


@pytest.mark.parametrize("fin", [25 * MHZ, 48 * MHZ])
def test_ecp5_every_integer_mhz(fin):
    r, fb, od = ecp5_combos(fin)
    outputs = sorted({Fraction(int(a) * fin, int(b)) for a, b in set(zip(fb.tolist(), r.tolist()))})
    for mhz in range(10, 401):
        target = Fraction(mhz * MHZ)
        best = abs(nearest(outputs, target) - target)
        if target == fin:
            assert find_pll("ecp5", fin, target) is None
            continue
        if best > TOLERANCE * target:
            with pytest.raises(ValueError, match=f"clock {mhz} MHz cannot be made"):
                find_pll("ecp5", fin, target)
            continue
        pll = find_pll("ecp5", fin, target)
        out = Fraction(fin * pll.clkfb_div, pll.clki_div)
        vco = out * pll.clkop_div
        assert pll.output_hz == out and pll.vco_hz == vco
        assert 3_125_000 <= Fraction(fin, pll.clki_div) <= 400 * MHZ
        assert 400 * MHZ <= vco <= 800 * MHZ and 10 * MHZ <= out <= 400 * MHZ
        assert 1 <= pll.clki_div <= 128 and 1 <= pll.clkfb_div <= 80 and 1 <= pll.clkop_div <= 128
        assert abs(out - target) == best
        # Among the settings that make this output, the VCO closest to 600 MHz (ecppll's rule).
        same = (fb * fin * pll.clki_div == pll.clkfb_div * fin * r)
        closest = min(abs(Fraction(fin * int(b) * int(d), int(a)) - 600 * MHZ)
                      for a, b, d in zip(r[same], fb[same], od[same]))
        assert abs(vco - 600 * MHZ) == closest
        assert pll.clkop_cphase == pll.clkop_div // 2


@pytest.mark.parametrize("fin, fout, divr, divf, divq, filter_range", [
    (12, 36, 0, 47, 4, 1),      # icepll -i 12 -o 36
    (12, 48, 0, 63, 4, 1),
    (12, 60, 0, 79, 4, 1),
    (48, 24, 0, 15, 5, 4),      # from the UPduino's SB_HFOSC: DIVR 0 comes first
    (48, 36, 0, 11, 4, 4),
])
def test_ice40_known_settings(fin, fout, divr, divf, divq, filter_range):
    pll = find_pll("ice40", fin * MHZ, fout * MHZ)
    assert pll == Ice40Pll(Fraction(fin * MHZ), divr, divf, divq)
    assert pll.filter_range == filter_range and pll.output_hz == fout * MHZ


@pytest.mark.parametrize("fin, fout, clki, clkfb, clkop", [
    (25, 100, 1, 4, 6),         # ecppll -i 25 -o 100 (ULX3S)
    (12, 48, 1, 4, 12),         # VCO 576 and 624 are equally close to 600: the first wins
    (48, 96, 1, 2, 6),          # OrangeCrab
    (25, 50, 1, 2, 12),
])
def test_ecp5_known_settings(fin, fout, clki, clkfb, clkop):
    pll = find_pll("ecp5", fin * MHZ, fout * MHZ)
    assert pll == Ecp5Pll(Fraction(fin * MHZ), clki, clkfb, clkop)
    assert pll.output_hz == fout * MHZ


def test_the_oscillator_itself_needs_no_pll():
    assert find_pll("ice40", 12 * MHZ, 12 * MHZ) is None      # below the PLL's 16 MHz minimum
    assert find_pll("ecp5", 25 * MHZ, Fraction(25 * MHZ)) is None


def test_fractional_clocks_are_exact():
    pll = find_pll("ice40", 12 * MHZ, Fraction(147, 4) * MHZ)
    assert pll.output_hz == Fraction(36750000) and format_mhz(pll.output_hz) == "36.75 MHz"
    with pytest.raises(ValueError, match="clock 36.5 MHz cannot be made .*: the nearest "
                                         "achievable frequencies are 36 MHz and 36.75 MHz$"):
        find_pll("ice40", 12 * MHZ, Fraction(73, 2) * MHZ)


@pytest.mark.parametrize("args, message", [
    (("ice40", 12 * MHZ, 300 * MHZ), "clock 300 MHz is out of range: the iCE40 PLL (SB_PLL40) "
                                     "makes 16 MHz to 275 MHz (or use the 12 MHz oscillator "
                                     "directly)"),
    (("ice40", 12 * MHZ, 8 * MHZ), "clock 8 MHz is out of range"),
    (("ecp5", 25 * MHZ, 401 * MHZ), "clock 401 MHz is out of range: the ECP5 PLL (EHXPLLL) makes "
                                    "10 MHz to 400 MHz"),
    (("ice40", 12 * MHZ, 16 * MHZ), "clock 16 MHz cannot be made from the 12 MHz oscillator by "
                                    "the iCE40 PLL (SB_PLL40) within 0.5 %: the nearest "
                                    "achievable frequency is 16.125 MHz"),
    (("ecp5", 25 * MHZ, 48 * MHZ), "clock 48 MHz cannot be made from the 25 MHz oscillator by "
                                   "the ECP5 PLL (EHXPLLL) within 0.5 %: the nearest achievable "
                                   "frequencies are 46.875 MHz and 50 MHz"),
    (("ice40", 5 * MHZ, 48 * MHZ), "oscillator frequency 5 MHz is outside the 10 MHz to 133 MHz "
                                   "input range of the iCE40 PLL (SB_PLL40)"),
    (("ice40", 12 * MHZ, 0), "clock must be a positive frequency in Hz, not 0"),
    (("ice40", 12 * MHZ, float("nan")),
     "clock must be a positive, finite frequency in Hz, not nan"),
    (("gowin", 12 * MHZ, 48 * MHZ), "PLL family must be one of ice40, ecp5, not 'gowin'"),
])
def test_errors(args, message):
    with pytest.raises(ValueError) as info:
        find_pll(*args)
    assert str(info.value).startswith(message)


def test_type_errors():
    with pytest.raises(TypeError, match="clock must be a frequency in Hz \\(a number\\), not '48'"):
        find_pll("ice40", 12 * MHZ, "48")
    with pytest.raises(TypeError, match="not True"):
        find_pll("ice40", 12 * MHZ, True)
    with pytest.raises(TypeError, match="PLL must be an Ice40Pll or an Ecp5Pll, not None"):
        pll_instance(None, Signal())


def test_the_error_names_the_cli_option():
    with pytest.raises(ValueError, match="^--clock 17 MHz cannot"):
        find_pll("ice40", 12 * MHZ, 17 * MHZ, parameter="--clock")


def test_instances():
    clk = Signal()
    instance, out, locked = pll_instance(find_pll("ice40", 48 * MHZ, 36 * MHZ), clk)
    assert instance.type == "SB_PLL40_CORE"
    assert {k: getattr(v, "value", v) for k, v in instance.parameters.items()} == {
        "FEEDBACK_PATH": "SIMPLE", "DIVR": 0, "DIVF": 11, "DIVQ": 4, "FILTER_RANGE": 4}
    assert instance.ports["REFERENCECLK"][0] is clk
    assert instance.ports["PLLOUTGLOBAL"][0] is out and instance.ports["LOCK"][0] is locked
    instance, out, locked = pll_instance(find_pll("ecp5", 25 * MHZ, 100 * MHZ), clk)
    assert instance.type == "EHXPLLL"
    assert instance.parameters["CLKI_DIV"] == 1 and instance.parameters["CLKFB_DIV"] == 4
    assert instance.parameters["CLKOP_DIV"] == 6 and instance.parameters["CLKOP_CPHASE"] == 3
    assert instance.parameters["FEEDBK_PATH"] == "CLKOP"
    assert instance.attrs["FREQUENCY_PIN_CLKI"] == "25"
    assert instance.attrs["FREQUENCY_PIN_CLKOP"] == "100"
    assert instance.ports["CLKFB"][0] is out and instance.ports["CLKOP"][0] is out


@pytest.mark.parametrize("limit, below", [(17, 1), (26, 2), (44, 3), (66, 4), (101, 5)])
def test_ice40_filter_range_steps_at_icepll_limits(limit, below):
    def filter_range(pfd_hz):
        return Ice40Pll(Fraction(pfd_hz) * 2, divr=1, divf=0, divq=1).filter_range
    assert filter_range(limit * MHZ - 1) == below
    assert filter_range(limit * MHZ) == below + 1
