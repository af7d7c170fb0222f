"""PLL settings for the board clock: iCE40 SB_PLL40 and ECP5 EHXPLLL, searched in pure Python.

:func:`find_pll` picks the dividers whose output is closest to a requested clock, with the
ranges and tie-breaks of the open tools that do the same job (icestorm's ``icepll`` and
prjtrellis's ``ecppll``), computed exactly with :class:`fractions.Fraction`; :func:`pll_instance`
makes the Amaranth ``Instance`` of the chosen PLL.

iCE40 (``icepll``, SIMPLE feedback; iCE40 sysCLOCK PLL Design and Usage Guide)::

    F_pfd = F_in / (DIVR + 1)      10 <= F_pfd <= 133 MHz      DIVR 0..15
    F_vco = F_pfd * (DIVF + 1)    533 <= F_vco <= 1066 MHz     DIVF 0..127
    F_out = F_vco / 2**DIVQ        16 <= F_out <= 275 MHz      DIVQ 1..6
    10 <= F_in <= 133 MHz; FILTER_RANGE from F_pfd (below 17, 26, 44, 66, 101 MHz: 1..5, else 6)

ECP5 (``ecppll``)::

    F_pfd = F_in / CLKI_DIV        3.125 <= F_pfd <= 400 MHz   CLKI_DIV 1..128
    F_out = F_pfd * CLKFB_DIV         10 <= F_out <= 400 MHz   CLKFB_DIV 1..80 (feedback CLKOP)
    F_vco = F_out * CLKOP_DIV        400 <= F_vco <= 800 MHz   CLKOP_DIV 1..128
    8 <= F_in <= 400 MHz; among equal outputs the VCO closest to 600 MHz

A requested clock that the PLL cannot make within :data:`TOLERANCE` is an error that lists the
nearest frequencies it can make, so the user picks one before any place-and-route runs.
"""

from __future__ import annotations

import bisect
import math
import functools
from dataclasses import dataclass
from fractions import Fraction
from numbers import Rational

from amaranth.hdl import Const, Instance, IOValue, Signal

__all__ = ["TOLERANCE", "Ice40Pll", "Ecp5Pll", "find_pll", "pll_instance", "clock_hz",
           "format_mhz", "FAMILIES"]

#: Largest relative distance between the requested and the achieved clock. It is not about
#: function (a UART tolerates about 2 % between its two ends, and the bridge derives its divisor
#: from the achieved clock) but about honesty: a miss of more than 0.5 % is not a rounding of the
#: clock asked for but another clock (0.25 MHz at 50 MHz), and the report and the timing check
#: would be about a design the user did not ask for. The grids are coarse where the phase
#: detector cannot be divided (iCE40 from 12 MHz: 16 and 17 MHz are refused, 16.125 and 16.875 MHz
#: are made; ECP5 from 25 MHz: 48 MHz is refused, 46.875 and 50 MHz are made), so the
#: error lists the nearest achievable frequencies and the user passes one of them.
TOLERANCE = Fraction(1, 200)

_MHZ = 1_000_000

#: The FPGA families with a PLL search.
FAMILIES = ("ice40", "ecp5")


def format_mhz(hz) -> str:
    """``hz`` in MHz for messages: up to 6 decimals, trailing zeros dropped (36 MHz, 36.75 MHz)."""
    text = f"{float(Fraction(hz) / _MHZ):.6f}".rstrip("0").rstrip(".")
    return f"{text} MHz"


def clock_hz(value, parameter: str = "clock") -> Fraction:
    """``value`` (Hz: an int, a Fraction or a finite float) as an exact positive Fraction.

    Raises
    ------
    TypeError
        ``value`` is not a number (a bool is not one).
    ValueError
        ``value`` is not positive and finite.
    """
    if isinstance(value, bool) or not isinstance(value, (Rational, float)):
        raise TypeError(f"{parameter} must be a frequency in Hz (a number), not {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{parameter} must be a positive, finite frequency in Hz, not {value!r}")
    hz = Fraction(value)
    if hz <= 0:
        raise ValueError(f"{parameter} must be a positive frequency in Hz, not {value!r}")
    return hz


@dataclass(frozen=True)
class Ice40Pll:
    """One SB_PLL40 setting (SIMPLE feedback) and the clocks it makes.

    Attributes
    ----------
    input_hz : Fraction
        Reference clock.
    divr, divf, divq : int
        The dividers, as the primitive's DIVR, DIVF and DIVQ parameters.
    """
    input_hz: Fraction
    divr: int
    divf: int
    divq: int

    family = "ice40"

    @property
    def pfd_hz(self) -> Fraction:
        """Phase-detector frequency, ``input / (DIVR + 1)``."""
        return self.input_hz / (self.divr + 1)

    @property
    def vco_hz(self) -> Fraction:
        """VCO frequency, ``pfd * (DIVF + 1)``."""
        return self.pfd_hz * (self.divf + 1)

    @property
    def output_hz(self) -> Fraction:
        """The output clock, ``vco / 2**DIVQ``, exactly."""
        return self.vco_hz / 2 ** self.divq

    @property
    def filter_range(self) -> int:
        """FILTER_RANGE for this phase-detector frequency (icepll's table)."""
        pfd = self.pfd_hz / _MHZ
        return next((code for code, limit in enumerate((17, 26, 44, 66, 101), 1) if pfd < limit),
                    6)

    def parameters(self) -> dict:
        """The SB_PLL40_CORE parameters, as icepll writes them."""
        return {"FEEDBACK_PATH": "SIMPLE", "DIVR": Const(self.divr, 4),
                "DIVF": Const(self.divf, 7), "DIVQ": Const(self.divq, 3),
                "FILTER_RANGE": Const(self.filter_range, 3)}


@dataclass(frozen=True)
class Ecp5Pll:
    """One EHXPLLL setting (feedback from CLKOP) and the clocks it makes.

    Attributes
    ----------
    input_hz : Fraction
        Reference clock.
    clki_div, clkfb_div, clkop_div : int
        The dividers, as the primitive's CLKI_DIV, CLKFB_DIV and CLKOP_DIV parameters.
    """
    input_hz: Fraction
    clki_div: int
    clkfb_div: int
    clkop_div: int

    family = "ecp5"

    @property
    def pfd_hz(self) -> Fraction:
        """Phase-detector frequency, ``input / CLKI_DIV``."""
        return self.input_hz / self.clki_div

    @property
    def output_hz(self) -> Fraction:
        """The output clock (CLKOP), ``pfd * CLKFB_DIV``, exactly."""
        return self.pfd_hz * self.clkfb_div

    @property
    def vco_hz(self) -> Fraction:
        """VCO frequency, ``output * CLKOP_DIV``."""
        return self.output_hz * self.clkop_div

    @property
    def clkop_cphase(self) -> int:
        """CLKOP_CPHASE: half the output divider, the 180° shift ecppll gives the primary output.

        ecppll computes it in single-precision floats and so sometimes writes one less (2 for
        CLKOP_DIV 6); the coarse phase of the feedback output does not change any frequency.
        """
        return self.clkop_div // 2

    def parameters(self) -> dict:
        """The EHXPLLL parameters, as ecppll writes them."""
        return {"PLLRST_ENA": "DISABLED", "INTFB_WAKE": "DISABLED", "STDBY_ENABLE": "DISABLED",
                "DPHASE_SOURCE": "DISABLED", "OUTDIVIDER_MUXA": "DIVA",
                "OUTDIVIDER_MUXB": "DIVB", "OUTDIVIDER_MUXC": "DIVC", "OUTDIVIDER_MUXD": "DIVD",
                "CLKI_DIV": self.clki_div, "CLKOP_ENABLE": "ENABLED",
                "CLKOP_DIV": self.clkop_div, "CLKOP_CPHASE": self.clkop_cphase,
                "CLKOP_FPHASE": 0, "FEEDBK_PATH": "CLKOP", "CLKFB_DIV": self.clkfb_div}

    def attributes(self) -> dict:
        """The EHXPLLL attributes ecppll writes: frequencies in MHz and the loop-filter settings."""
        return {"FREQUENCY_PIN_CLKI": _mhz_text(self.input_hz),
                "FREQUENCY_PIN_CLKOP": _mhz_text(self.output_hz),
                "ICP_CURRENT": "12", "LPF_RESISTOR": "8", "MFG_ENABLE_FILTEROPAMP": "1",
                "MFG_GMCREF_SEL": "2"}


def _mhz_text(hz: Fraction) -> str:
    return format_mhz(hz).removesuffix(" MHz")


# Per family: input range, output range (Hz).
_RANGES = {
    "ice40": ((10 * _MHZ, 133 * _MHZ), (16 * _MHZ, 275 * _MHZ)),
    "ecp5": ((8 * _MHZ, 400 * _MHZ), (10 * _MHZ, 400 * _MHZ)),
}


def _ice40_settings(input_hz: Fraction) -> dict[Fraction, Ice40Pll]:
    """Every output frequency an SB_PLL40 makes from ``input_hz``, each with icepll's choice.

    icepll scans DIVR, then DIVF, then DIVQ upwards and keeps the first of equal outputs.
    """
    best: dict[Fraction, Ice40Pll] = {}
    (out_lo, out_hi) = _RANGES["ice40"][1]
    for divr in range(16):
        pfd = input_hz / (divr + 1)
        if not 10 * _MHZ <= pfd <= 133 * _MHZ:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not 533 * _MHZ <= vco <= 1066 * _MHZ:
                continue
            for divq in range(1, 7):
                out = vco / 2 ** divq
                if out_lo <= out <= out_hi and out not in best:
                    best[out] = Ice40Pll(input_hz, divr, divf, divq)
    return best


def _ecp5_settings(input_hz: Fraction) -> dict[Fraction, Ecp5Pll]:
    """Every output frequency an EHXPLLL makes from ``input_hz``, each with ecppll's choice.

    ecppll keeps, among equal outputs, the VCO closest to 600 MHz, the first in its scan
    (CLKI_DIV, then CLKFB_DIV, then CLKOP_DIV upwards) when two are equally close.
    """
    best: dict[Fraction, tuple] = {}
    (out_lo, out_hi) = _RANGES["ecp5"][1]
    for clki in range(1, 129):
        pfd = input_hz / clki
        if not Fraction(3125, 1000) * _MHZ <= pfd <= 400 * _MHZ:
            continue
        for clkfb in range(1, 81):
            out = pfd * clkfb
            if not out_lo <= out <= out_hi:
                continue
            # The output dividers that put the VCO in range form one interval; the two around
            # 600 MHz / out are the only candidates for "closest to 600".
            lowest = max(1, -(-400 * _MHZ // out))
            highest = min(128, 800 * _MHZ // out)
            middle = int(600 * _MHZ // out)
            for clkop in sorted({min(max(d, lowest), highest) for d in (middle, middle + 1)}):
                if not lowest <= clkop <= highest:
                    continue
                key = (abs(out * clkop - 600 * _MHZ), clki, clkfb, clkop)
                if out not in best or key < best[out][0]:
                    best[out] = (key, Ecp5Pll(input_hz, clki, clkfb, int(clkop)))
    return {out: setting for out, (_, setting) in best.items()}


@functools.lru_cache(maxsize=16)
def _settings(family: str, input_hz: Fraction) -> tuple[list[Fraction], dict]:
    table = _ice40_settings(input_hz) if family == "ice40" else _ecp5_settings(input_hz)
    return sorted(table), table


def _family_name(family: str) -> str:
    return {"ice40": "iCE40 PLL (SB_PLL40)", "ecp5": "ECP5 PLL (EHXPLLL)"}[family]


def find_pll(family: str, input_hz, output_hz, *, parameter: str = "clock"):
    """The PLL setting that makes ``output_hz`` from ``input_hz``, or None when they are equal.

    Parameters
    ----------
    family : str
        ``"ice40"`` or ``"ecp5"``.
    input_hz : int, Fraction or float
        The reference (board oscillator) frequency in Hz.
    output_hz : int, Fraction or float
        The requested clock in Hz.
    parameter : str
        How error messages name the requested clock (the CLI says ``--clock``).

    Returns
    -------
    Ice40Pll, Ecp5Pll or None
        The setting whose output is closest to ``output_hz`` (ties broken as icepll / ecppll
        do); None when ``output_hz == input_hz``: the oscillator is used directly.

    Raises
    ------
    TypeError
        A frequency is not a number.
    ValueError
        Unknown family; a frequency that is not positive; an input or a requested clock outside
        the PLL's range; or no setting within :data:`TOLERANCE` of ``output_hz`` (the message
        names the nearest achievable frequencies below and above).
    """
    if family not in FAMILIES:
        raise ValueError(f"PLL family must be one of {', '.join(FAMILIES)}, not {family!r}")
    input_hz = clock_hz(input_hz, "oscillator frequency")
    output_hz = clock_hz(output_hz, parameter)
    if output_hz == input_hz:
        return None
    what = _family_name(family)
    (in_lo, in_hi), (out_lo, out_hi) = _RANGES[family]
    if not in_lo <= input_hz <= in_hi:
        raise ValueError(f"oscillator frequency {format_mhz(input_hz)} is outside the "
                         f"{format_mhz(in_lo)} to {format_mhz(in_hi)} input range of the {what}")
    if not out_lo <= output_hz <= out_hi:
        raise ValueError(f"{parameter} {format_mhz(output_hz)} is out of range: the {what} makes "
                         f"{format_mhz(out_lo)} to {format_mhz(out_hi)} (or use the "
                         f"{format_mhz(input_hz)} oscillator directly)")
    outputs, table = _settings(family, input_hz)
    index = bisect.bisect_left(outputs, output_hz)
    neighbours = outputs[max(0, index - 1):index + 1]
    nearest = min(neighbours, key=lambda out: (abs(out - output_hz), out))
    if abs(nearest - output_hz) > TOLERANCE * output_hz:
        listed = " and ".join(format_mhz(out) for out in neighbours)
        raise ValueError(
            f"{parameter} {format_mhz(output_hz)} cannot be made from the {format_mhz(input_hz)} "
            f"oscillator by the {what} within {float(TOLERANCE * 100):g} %: the nearest "
            f"achievable {'frequencies are' if len(neighbours) > 1 else 'frequency is'} {listed}")
    return table[nearest]


def pll_instance(pll, clk_in) -> tuple[Instance, Signal, Signal]:
    """The Amaranth ``Instance`` of ``pll``, fed by ``clk_in``.

    iCE40: an SB_PLL40_CORE when ``clk_in`` is a signal (a pad's global buffer, or SB_HFOSC),
    an SB_PLL40_PAD when it is the pad itself (an ``IOPort``), for a clock that enters on the
    PLL's own pad (iCEBreaker's pin 35: there an SB_IO input and an SB_PLL40_CORE conflict,
    as the PLL drives its output through that pad's I/O cell). ECP5: an EHXPLLL with CLKOP
    fed back, and ecppll's attributes.

    Returns
    -------
    (Instance, Signal, Signal)
        The instance, its output clock (on a global network) and its lock signal (high while
        the PLL is locked).

    Raises
    ------
    TypeError
        ``pll`` is not an :class:`Ice40Pll` or :class:`Ecp5Pll`, or an ECP5 PLL is given a pad.
    """
    # `keep` makes yosys name the clock net after this signal rather than after one of its
    # aliases, so a clock constraint on it reaches nextpnr and its report names it "pll_clk".
    clk_out = Signal(name="pll_clk", attrs={"keep": 1})
    locked = Signal(name="pll_locked")
    pad = isinstance(clk_in, IOValue)
    if isinstance(pll, Ice40Pll):
        params = {f"p_{name}": value for name, value in pll.parameters().items()}
        ports = {"i_PACKAGEPIN": clk_in} if pad else {"i_REFERENCECLK": clk_in}
        instance = Instance("SB_PLL40_PAD" if pad else "SB_PLL40_CORE", **params, **ports,
                            i_RESETB=Const(1), i_BYPASS=Const(0), o_PLLOUTGLOBAL=clk_out,
                            o_LOCK=locked)
    elif isinstance(pll, Ecp5Pll):
        if pad:
            raise TypeError(f"An EHXPLLL takes its input clock from the fabric, not the pad "
                            f"{clk_in!r}")
        params = {f"p_{name}": value for name, value in pll.parameters().items()}
        attrs = {f"a_{name}": value for name, value in pll.attributes().items()}
        instance = Instance("EHXPLLL", **attrs, **params, i_CLKI=clk_in, i_CLKFB=clk_out,
                            i_RST=Const(0), i_STDBY=Const(0), i_PHASESEL0=Const(0),
                            i_PHASESEL1=Const(0), i_PHASEDIR=Const(1), i_PHASESTEP=Const(1),
                            i_PHASELOADREG=Const(1), i_PLLWAKESYNC=Const(0),
                            i_ENCLKOP=Const(0), o_CLKOP=clk_out, o_LOCK=locked)
    else:
        raise TypeError(f"PLL must be an Ice40Pll or an Ecp5Pll, not {pll!r}")
    return instance, clk_out, locked
