"""The FPGA targets hwnn synthesizes for: yosys script, nextpnr device flags, resource totals."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from ..checks import lookup

__all__ = ["Target", "TARGETS", "get_target"]

#: Resource categories of a :class:`SynthReport`, in the order tables show them.
CATEGORIES = ("luts", "carries", "ffs", "dsps", "brams")


@dataclass(frozen=True)
class Target:
    """One synthesis target.

    Attributes
    ----------
    name : str
        The key in :data:`TARGETS`, e.g. ``"ice40-up5k"``.
    family : str
        ``"ice40"``, ``"ecp5"``, ``"xc7"`` or ``"gowin"``: selects how cells are classified.
    synth : str
        The yosys synthesis command, e.g. ``"synth_ice40"``.
    synth_args : tuple of str
        Options always passed to it.
    dsp_args, nodsp_args : tuple of str
        Options added with ``dsp=True`` / ``dsp=False`` (each script spells "no DSP" its own way).
    nobram_args : tuple of str
        Options added with ``bram=False`` (every yosys script here spells it ``-nobram``).
    nextpnr : str or None
        The nextpnr tool (``"nextpnr-ice40"``), or None for an estimate-only target.
    nextpnr_args : tuple of str
        Device, package and "pins may stay unconstrained" options for nextpnr.
    totals : mapping or None
        Available resources per category (``luts``, ``carries``, ``ffs``, ``dsps``, ``brams``),
        None for estimate-only targets.
    description : str
        The device in words.
    """
    name: str
    family: str
    synth: str
    synth_args: tuple[str, ...] = ()
    dsp_args: tuple[str, ...] = ()
    nodsp_args: tuple[str, ...] = ()
    nobram_args: tuple[str, ...] = ("-nobram",)
    nextpnr: str | None = None
    nextpnr_args: tuple[str, ...] = ()
    # A mapping proxy is not hashable; leave it out of the hash so a Target can key a dict.
    totals: Mapping[str, int] | None = field(default=None, hash=False)
    description: str = ""

    @property
    def place_and_route(self) -> bool:
        """Whether nextpnr can place and route this target (and so measure Fmax)."""
        return self.nextpnr is not None

    def synth_command(self, top: str, *, dsp: bool = True, bram: bool = True) -> str:
        """The yosys command that synthesizes module ``top`` for this target.

        ``dsp=False`` adds the script's switch that keeps multipliers out of DSP blocks;
        ``bram=False`` the one that keeps memories out of block RAM.
        """
        args = (*self.synth_args, *(self.dsp_args if dsp else self.nodsp_args),
                *(() if bram else self.nobram_args), "-top", top)
        return " ".join((self.synth, *args))


def _totals(luts, ffs, dsps, brams, carries):
    return MappingProxyType(dict(luts=luts, carries=carries, ffs=ffs, dsps=dsps, brams=brams))


def _ice40(name, device_flag, package, luts, dsps, brams, **kw):
    # One logic cell holds a LUT4, a carry and a flop, so each of the three has `luts` sites.
    return Target(name=name, family="ice40", synth="synth_ice40", nextpnr="nextpnr-ice40",
                  nextpnr_args=(device_flag, "--package", package, "--pcf-allow-unconstrained"),
                  totals=_totals(luts, luts, dsps, brams, carries=luts), **kw)


def _ecp5(size, luts, dsps, brams):
    # A slice holds two LUT4s, two flops and one CCU2C (a two-bit carry cell built on the two
    # LUT4s), so the carry total is half the LUT total and carries compete with LUTs for sites.
    return Target(name=f"ecp5-{size}f", family="ecp5", synth="synth_ecp5", nodsp_args=("-nodsp",),
                  nextpnr="nextpnr-ecp5",
                  nextpnr_args=(f"--{size}k", "--package", "CABGA381", "--lpf-allow-unconstrained"),
                  totals=_totals(luts, luts, dsps, brams, carries=luts // 2),
                  description=f"Lattice ECP5 LFE5U-{size}F, CABGA381")


#: Every target by name.
TARGETS: Mapping[str, Target] = MappingProxyType({t.name: t for t in (
    _ice40("ice40-up5k", "--up5k", "sg48", 5280, 8, 30,
           # -device u: abc9 maps with UltraPlus delays; -dsp: the UP5K has 8 SB_MAC16.
           synth_args=("-device", "u"), dsp_args=("-dsp",),
           description="Lattice iCE40 UltraPlus UP5K, SG48"),
    # The HX8K has no DSP blocks: synth_ice40 only uses SB_MAC16 when given -dsp.
    _ice40("ice40-hx8k", "--hx8k", "ct256", 7680, 0, 32,
           description="Lattice iCE40 HX8K, CT256"),
    _ecp5(25, 24288, 28, 56),
    _ecp5(45, 43848, 72, 108),
    _ecp5(85, 83640, 156, 208),
    # Estimate-only targets count the core out of context: no I/O buffers, no clock buffer.
    # synth_xilinx keeps the hierarchy unless told to flatten, which would split the counts
    # across modules.
    Target(name="xc7", family="xc7", synth="synth_xilinx",
           synth_args=("-family", "xc7", "-flatten", "-noiopad", "-noclkbuf"),
           nodsp_args=("-nodsp",), description="Xilinx 7-series (yosys estimate only)"),
    Target(name="gowin", family="gowin", synth="synth_gowin", synth_args=("-noiopads",),
           nodsp_args=("-nodsp",), description="Gowin GW1N (yosys estimate only)"),
)})


def get_target(target) -> Target:
    """The :class:`Target` for ``target`` (a name from :data:`TARGETS` or a Target itself).

    Raises
    ------
    TypeError
        ``target`` is neither a string nor a Target.
    ValueError
        Unknown target name; the message lists the valid names.
    """
    return lookup(target, TARGETS, Target, "target")
