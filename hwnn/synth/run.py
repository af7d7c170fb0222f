"""Synthesize a design with yosys (and optionally place and route it with nextpnr) for a target.

Resource counts always come from the design alone, synthesized by the target's yosys script.
Fmax comes from place-and-route of the design inside :class:`RegisteredHarness`, because only
register-to-register paths give an honest number.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from amaranth.lib import wiring

from ..export import core_rtlil, safe_names
from .harness import RegisteredHarness
from .report import (SynthReport, classification_notes, classify_cells, lut_sites,
                     parse_pnr_report, parse_stat, percentages)
from .targets import TARGETS, Target, get_target
from .toolchain import ToolError, ToolTimeout, check_timeout, log_tail, run_tool

__all__ = ["coarse_cells", "synthesize", "synthesize_rtlil", "HARNESS_TOP", "PNR_FREQ_MHZ"]

#: Module name of the timing harness in the place-and-route netlist.
HARNESS_TOP = "hwnn_harness"

#: Frequency nextpnr is asked for. Set above what small iCE40/ECP5 designs reach, so the
#: timing-driven placer keeps pushing; `--timing-allow-fail` turns a miss into a number.
PNR_FREQ_MHZ = 250

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# nextpnr's "Device utilisation" lines, e.g. "Info: 	        ICESTORM_LC:  6001/  5280   113%".
_UTILISATION_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.MULTILINE)
# nextpnr's placer giving up on a cell (the device is too full for its packing rules).
_NO_PLACEMENT = re.compile(r"^ERROR: Unable to find legal placement for cell.*$", re.MULTILINE)

Progress = Callable[[str], None] | None


def synthesize(core, target, *, name: str = "top", fmax: bool = False, dsp: bool = True,
               bram: bool = True, extra_rtlil: str = "", workdir=None, seed: int = 1,
               pnr_timeout: float | None = None, progress: Progress = None) -> SynthReport:
    """Synthesize an Amaranth component for ``target`` and report its resources (and Fmax).

    Parameters
    ----------
    core : amaranth.lib.wiring.Component
        The design, using the ``sync`` clock domain.
    target : str or Target
        A name from :data:`TARGETS`.
    name : str
        Module name of the design in RTLIL and yosys (an identifier).
    fmax : bool
        Also place and route ``RegisteredHarness(core)`` with nextpnr and report the achieved
        clock frequency and nextpnr's utilization. Only for targets with place-and-route.
    dsp : bool
        Let yosys map multipliers to DSP blocks (False adds the script's "no DSP" switch).
    bram : bool
        Let yosys map memories to block RAM (False adds ``-nobram``: tables become LUT logic).
    extra_rtlil : str
        RTLIL of modules that ``core`` instantiates with an Amaranth ``Instance`` (for example
        foreign Verilog converted by yosys ``write_rtlil``), added to every yosys run.
    workdir : path-like, optional
        Directory that keeps every file (RTLIL, yosys scripts, logs, stats, netlist, nextpnr
        report) for inspection; by default a temporary directory, removed afterwards unless a
        tool failed (the :class:`ToolError` names the log inside it).
    seed : int
        nextpnr placement seed.
    pnr_timeout : float, optional
        Stop nextpnr after this many seconds (None: no limit); it raises :class:`ToolTimeout`.
    progress : callable taking one str, optional
        Called with a one-line description before each tool run.

    Returns
    -------
    SynthReport
        Counts of the design alone; with ``fmax``, also ``fmax_mhz``, ``pnr_utilization`` and
        ``fits`` from nextpnr (``fits=False`` with a note when the design does not fit).

    Raises
    ------
    TypeError
        ``core`` is not a Component, or an argument has the wrong type.
    ValueError
        Unknown target, ``name`` not an identifier, ``fmax=True`` for an estimate-only target,
        or (with ``fmax``) a core without outputs, or ``pnr_timeout`` is not a positive
        number.
    ToolError
        yosys or nextpnr failed for another reason than the design not fitting
        (:class:`ToolTimeout`, a ToolError, when nextpnr ran past ``pnr_timeout``).
    """
    if not isinstance(core, wiring.Component):
        raise TypeError(f"Core must be an amaranth.lib.wiring.Component, not {core!r}")
    target = _check_args(target, top=name, dsp=dsp, bram=bram, fmax=fmax, seed=seed)
    check_timeout(pnr_timeout, "pnr_timeout")
    with _workdir(workdir) as directory:
        if not isinstance(extra_rtlil, str):
            raise TypeError(f"extra_rtlil must be a string of RTLIL, not {extra_rtlil!r}")
        (directory / "design.il").write_text(core_rtlil(core, name) + "\n"
                                             + safe_names(extra_rtlil))
        report = _resources(target, directory, "read_rtlil design.il", name, (dsp, bram),
                            progress, estimate_fit=not fmax)
        if fmax:
            harness = RegisteredHarness(core)
            (directory / "harness.il").write_text(core_rtlil(harness, HARNESS_TOP) + "\n"
                                                  + safe_names(extra_rtlil))
            _place_and_route(report, target, directory, harness, (dsp, bram), seed, progress,
                             timeout=pnr_timeout)
    return report


def synthesize_rtlil(rtlil_text: str, target, *, top: str, dsp: bool = True, bram: bool = True,
                     workdir=None, progress: Progress = None) -> SynthReport:
    """Report the resources of already-elaborated RTLIL (for example from another tool).

    Parameters
    ----------
    rtlil_text : str
        An RTLIL design containing module ``top`` (and its submodules).
    target : str or Target
        A name from :data:`TARGETS`.
    top : str
        The top module.
    dsp, bram, workdir, progress
        As for :func:`synthesize`.

    Returns
    -------
    SynthReport
        Resource counts (no Fmax: timing needs a harness around an Amaranth component).

    Raises
    ------
    TypeError
        ``rtlil_text`` is not a string, or an argument has the wrong type.
    ValueError
        Unknown target or ``top`` not an identifier.
    ToolError
        yosys failed (for example, ``top`` is not in the design).
    """
    if not isinstance(rtlil_text, str):
        raise TypeError(f"RTLIL text must be a string, not {type(rtlil_text).__name__}")
    target = _check_args(target, top=top, dsp=dsp, bram=bram, fmax=False, seed=1)
    with _workdir(workdir) as directory:
        (directory / "design.il").write_text(safe_names(rtlil_text))
        return _resources(target, directory, "read_rtlil design.il", top, (dsp, bram),
                          progress)


def coarse_cells(core, *, name: str = "top", workdir=None, progress: Progress = None) -> dict:
    """The yosys cell types and counts of ``core`` before any technology mapping.

    The design is elaborated, flattened, cleaned and identical cells merged (``proc; flatten;
    opt_clean; opt_merge``: the same expression written twice is one cell) but not otherwise
    optimized or mapped, so the counts show the structure the core asked for: every ``$add``,
    ``$sub``, ``$mul`` and comparator as written. Use it to check that a shift-add core holds
    exactly the adders its plan reports and no multiplier.

    Raises
    ------
    TypeError
        ``core`` is not a Component.
    ValueError
        ``name`` is not an identifier.
    ToolError
        yosys failed.
    """
    if not isinstance(core, wiring.Component):
        raise TypeError(f"Core must be an amaranth.lib.wiring.Component, not {core!r}")
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"Top module name must be an identifier (letters, digits, _), "
                         f"not {name!r}")
    with _workdir(workdir) as directory:
        (directory / "design.il").write_text(core_rtlil(core, name))
        return _run_yosys(directory, "coarse", ["read_rtlil design.il", *_prepare(name),
                                                "opt_clean", "opt_merge"], "coarse cells",
                           progress)


def _check_args(target, *, top, dsp, bram, fmax, seed) -> Target:
    target = get_target(target)
    if not isinstance(top, str) or not _IDENTIFIER.fullmatch(top):
        raise ValueError(f"Top module name must be an identifier (letters, digits, _), "
                         f"not {top!r}")
    for parameter, value in (("dsp", dsp), ("bram", bram), ("fmax", fmax)):
        if not isinstance(value, bool):
            raise TypeError(f"{parameter} must be a bool, not {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer, not {seed!r}")
    if fmax and not target.place_and_route:
        with_pnr = ", ".join(name for name, t in TARGETS.items() if t.place_and_route)
        raise ValueError(f"fmax=True needs place-and-route, but target {target.name!r} has no "
                         f"place-and-route (yosys estimate only); targets with place-and-route: "
                         f"{with_pnr}")
    return target


@contextlib.contextmanager
def _workdir(workdir) -> Iterator[Path]:
    """``workdir`` (created if needed), or a temporary directory removed afterwards.

    A temporary directory survives a :class:`ToolError`, whose message points at a log in it.
    """
    if workdir is not None:
        directory = Path(workdir).resolve()
        directory.mkdir(parents=True, exist_ok=True)
        yield directory
        return
    directory = Path(tempfile.mkdtemp(prefix="hwnn-synth-"))
    try:
        yield directory
    except ToolError:
        raise  # keep the directory: the error message points at a log inside it
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    shutil.rmtree(directory, ignore_errors=True)


def _prepare(top: str) -> list[str]:
    """yosys commands that flatten ``top`` and make every internal name private.

    The designs come through :func:`hwnn.export.safe_names`, so abc9 meets no wire named like
    a bit of another (``o__payload[0]`` beside the port ``o__payload``, on which it asserts).
    Hiding the names is for the counts: yosys keeps public wires through its optimizations,
    which then find less to share (a 4x6 multiplier Dense on iCE40: 356 LUT4 with the names,
    333 without), and hwnn reports the logic alone, as it always has.
    """
    return [f"hierarchy -top {top}", "proc", "flatten", "rename -hide w:* x:* %d c:*"]


def _run_yosys(directory: Path, stem: str, commands: list[str], what: str, progress) -> dict:
    """Run the yosys ``commands`` saved as ``<stem>.ys``; returns the cell counts of the result.

    Raises
    ------
    ToolError
        yosys failed; the message shows the end of its own log, then its console output.
    """
    script = directory / f"{stem}.ys"
    script.write_text("\n".join([*commands, f"tee -q -o {stem}.stat.json stat -json"]) + "\n")
    log = directory / f"{stem}.yosys.log"
    # The full log comes from `-l`: when yosys dies inside its linked-in ABC, the lines it had
    # buffered for stdout are lost. The console file keeps warnings and WebAssembly traps.
    try:
        run_tool("yosys", ["-q", "-l", log.name, "-s", script.name], directory,
                 directory / f"{stem}.yosys.console", progress, what=what)
    except ToolError as error:
        tail = "\n".join(filter(None, [log_tail(log), error.tail]))
        raise ToolError("yosys", error.returncode, log, tail) from None
    return parse_stat((directory / f"{stem}.stat.json").read_text())


def _resources(target: Target, directory: Path, read_command: str, top: str, blocks,
               progress, *, estimate_fit: bool = True) -> SynthReport:
    """Synthesize module ``top`` (loaded by the yosys ``read_command``) and count its cells.

    ``read_command`` is the only source-specific part: ``read_rtlil x.il`` today,
    ``read_verilog -sv x.v`` for a Verilog source. ``estimate_fit`` judges the fit from the
    counts; leave it off when nextpnr will judge it.
    """
    synth = target.synth_command(top, dsp=blocks[0], bram=blocks[1])
    cells = _run_yosys(directory, "design", [read_command, *_prepare(top), synth],
                       f"{synth} for {target.name}", progress)
    classification = classify_cells(target.family, cells)
    counts = classification.counts
    report = SynthReport(target=target.name, top=top, cells=dict(sorted(cells.items())), **counts,
                         notes=classification_notes(target.family, classification))
    if target.family == "ecp5" and counts["carries"]:
        report.notes.append("each ECP5 CCU2C is a 2-bit carry cell built on two LUT4 sites")
    if target.totals is None:
        report.notes.append(f"estimate only: yosys {target.synth}, no place-and-route")
        return report
    report.totals = dict(target.totals)
    report.percent = percentages(counts, target.totals)
    if not estimate_fit:
        return report
    overflow = _overflow(target, cells, counts)
    report.fits = not overflow
    report.notes.append("fits is estimated from yosys cell counts (no place-and-route)")
    if overflow:
        report.notes.append(f"does not fit (yosys estimate): {', '.join(overflow)}")
        return report
    doubt = _packing_doubt(target, counts)
    if doubt:
        report.fits = None
        report.notes.append(doubt)
    return report


def _packing_doubt(target: Target, counts: dict[str, int]) -> str | None:
    """Why a design whose every category fits may still not fit an iCE40, or None.

    An iCE40 logic cell holds one LUT4 (with its carry) and one flip-flop; a flop packs into
    the cell of the LUT that drives it, and otherwise takes a cell alone (a flop loaded straight
    from a bus or a port, say). So a design needs between ``max(LUT4, FF)`` and
    ``LUT4 + FF`` cells, and only place-and-route knows where in that range it lands
    (measured: a recurrent core of 4643 LUT4 and 4238 FF took 9715 cells).
    """
    if target.family != "ice40":
        return None
    total = target.totals["luts"]
    most = counts["luts"] + counts["ffs"]
    if most <= total:
        return None
    least = max(counts["luts"], counts["ffs"])
    return (f"may not fit: {counts['luts']} LUT4 and {counts['ffs']} FF need between {least} "
            f"and {most} of the {total} logic cells, as the flip-flops pack with LUTs or not; "
            f"place-and-route (--fmax) decides")


def _overflow(target: Target, cells: dict[str, int], counts: dict[str, int]) -> list[str]:
    """Each category (and, on ECP5, the shared LUT sites) that needs more than the device has."""
    over = [f"{category} {counts[category]}/{total}"
            for category, total in target.totals.items() if counts[category] > total]
    sites = lut_sites(target.family, cells, counts["luts"])
    if sites > target.totals["luts"] and sites != counts["luts"]:
        over.append(f"LUT sites (LUT4 + carry + LUT RAM) {sites}/{target.totals['luts']}")
    return over


def _place_and_route(report: SynthReport, target: Target, directory: Path,
                     harness: RegisteredHarness, blocks, seed: int, progress, *,
                     timeout: float | None = None) -> None:
    """Place and route ``harness`` (already in ``harness.il``); fill in Fmax and fit."""
    synth = target.synth_command(HARNESS_TOP, dsp=blocks[0], bram=blocks[1])
    _run_yosys(directory, "harness",
               ["read_rtlil harness.il", *_prepare(HARNESS_TOP), synth, "write_json harness.json"],
               f"{synth} for {target.name} (timing harness)", progress)
    args = [*target.nextpnr_args, "--json", "harness.json", "--report", "nextpnr.report.json",
            "--seed", str(seed), "--freq", str(PNR_FREQ_MHZ), "--timing-allow-fail"]
    # yosys may merge a harness flop with a core flop that has the same input, hence "up to".
    report.notes.append(
        f"Fmax and nextpnr utilization are for RegisteredHarness(core), which adds up to "
        f"{harness.in_bits + harness.out_bits + harness.tree_flops} flip-flops "
        f"({harness.in_bits} input, {harness.out_bits} output, {harness.tree_flops} XOR tree) "
        f"and 4 I/O pins")
    try:
        run_tool(target.nextpnr, args, directory, directory / "nextpnr.log", progress,
                 what=f"for {target.name}, seed {seed}", timeout=timeout)
    except ToolTimeout:
        raise
    except ToolError as error:
        _record_overflow(report, error)
        return
    result = parse_pnr_report((directory / "nextpnr.report.json").read_text())
    report.pnr_utilization = result.utilization
    report.fits = True
    _record_fmax(report, result.fmax_mhz)


def _record_fmax(report: SynthReport, fmax_by_clock: dict[str, float]) -> None:
    """Set ``report.fmax_mhz`` from nextpnr's achieved frequency per clock, with caveats."""
    if not fmax_by_clock:
        report.notes.append("nextpnr reported no clock: no register-to-register path was timed")
        return
    # The harness has one clock; nextpnr names it after the routed net
    # (e.g. "clk$SB_IO_IN_$glb_clk"), so take the slowest entry rather than match a name.
    fmax = min(fmax_by_clock.values())
    report.fmax_mhz = round(fmax, 2)
    if fmax >= PNR_FREQ_MHZ:
        report.notes.append(f"Fmax met the {PNR_FREQ_MHZ} MHz target nextpnr was given; the "
                            f"design may be faster than reported")


def _record_overflow(report: SynthReport, error: ToolError) -> None:
    """Turn a nextpnr failure into ``fits=False`` if the log shows a resource overflow."""
    log = error.log_path.read_text(errors="replace")
    utilization = {bel: {"used": int(used), "available": int(available)}
                   for bel, used, available in _UTILISATION_LINE.findall(log)}
    over = {bel: u for bel, u in utilization.items() if u["used"] > u["available"]}
    if not over:
        placement = _NO_PLACEMENT.search(log)
        if placement is None:
            raise error
        # Every category fits on paper, but the placer found no site for a cell: the device is
        # too full for its packing rules (nextpnr-ecp5 at 92 % of its LUT sites, for one).
        report.fits = False
        report.pnr_utilization = utilization
        fullest = max(utilization.items(), default=None,
                      key=lambda item: item[1]["used"] / max(1, item[1]["available"]))
        where = ("" if fullest is None else
                 f" with {fullest[0]} at {fullest[1]['used']}/{fullest[1]['available']}")
        report.notes.append(f"does not fit: nextpnr found no legal placement{where} "
                            f"({placement.group(0).strip()[:120]}), counting the timing harness")
        return
    report.fits = False
    report.pnr_utilization = utilization
    listed = ", ".join(f"{bel} {u['used']}/{u['available']}" for bel, u in sorted(over.items()))
    report.notes.append(f"does not fit: nextpnr needs more than the device has ({listed}), "
                        f"counting the timing harness")
