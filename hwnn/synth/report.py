"""Synthesis reports: classify yosys cells per FPGA family, parse yosys and nextpnr JSON, tables."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Iterable, Mapping

from .targets import CATEGORIES

__all__ = ["SynthReport", "format_table", "classify_cells", "classification_notes", "lut_sites",
           "parse_stat", "parse_pnr_report", "percentages"]

# Per family, an ordered list of (category, cell-type pattern); the first match wins. The first
# five categories are the report's counts; the others are known cells that take no resource of
# those five (or whose cost is reported in a note).
_PATTERNS = {
    "ice40": [
        ("luts", r"SB_LUT4"),
        ("carries", r"SB_CARRY"),
        ("ffs", r"SB_DFF\w*"),
        ("dsps", r"SB_MAC16"),
        ("brams", r"SB_RAM40_4K\w*"),
    ],
    "ecp5": [
        ("luts", r"LUT4"),
        ("carries", r"CCU2C"),
        ("ffs", r"TRELLIS_FF"),
        ("dsps", r"MULT18X18D|ALU54B"),
        ("brams", r"DP16KD|PDPW16KD"),
        ("lutram", r"TRELLIS_DPR16X4"),
        ("widemux", r"PFUMX|L6MUX21"),
    ],
    "xc7": [
        ("luts", r"LUT[1-6]"),
        ("carries", r"CARRY[48]"),
        ("ffs", r"FD\w*"),
        ("dsps", r"DSP48E1"),
        ("brams", r"RAMB18E1|RAMB36E1"),
        ("lutram", r"RAM\d+[MX]\w*|SRL\w+"),
        ("widemux", r"MUXF[78]"),
        ("const", r"GND|VCC"),
    ],
    "gowin": [
        ("luts", r"LUT[1-4]"),
        ("carries", r"ALU"),
        ("ffs", r"DFF\w*"),
        ("dsps", r"MULT\w*|PADD\w*"),
        ("brams", r"SPX9|SP|DPX9B?|DPB?|SDPX9B?|SDPB?|pROMX9|pROM"),
        ("lutram", r"RAM16S\w*"),
        ("widemux", r"MUX2_LUT[5-8]"),
        ("const", r"GND|VCC"),
    ],
}
_RULES = {family: [(category, re.compile(pattern)) for category, pattern in rules]
          for family, rules in _PATTERNS.items()}

# yosys bookkeeping cells that describe the flattened hierarchy; they are not hardware.
_BOOKKEEPING = {"$scopeinfo"}

_SECONDARY_NOTES = {
    "lutram": ("distributed-RAM (LUT RAM) cells {cells}: they occupy LUT sites but are not "
               "counted in luts"),
    "widemux": ("wide-function mux cells {cells}: slice muxes that combine LUTs, not counted "
                "in luts"),
}

# Each ECP5 CCU2C is built on the two LUT4s of a slice; each TRELLIS_DPR16X4 needs at least the
# four LUT4s of two slices. Both compete with plain LUT4s for the same sites.
_ECP5_LUT_SITES = {"CCU2C": 2, "TRELLIS_DPR16X4": 4}


@dataclass(frozen=True)
class Classification:
    """Cell counts of one netlist sorted into categories (see :func:`classify_cells`)."""
    counts: dict[str, int]
    by_category: dict[str, dict[str, int]]
    unclassified: dict[str, int]


def classify_cells(family: str, cells: Mapping[str, int]) -> Classification:
    """Sort yosys cell types of a ``family`` netlist into resource categories.

    Parameters
    ----------
    family : str
        ``"ice40"``, ``"ecp5"``, ``"xc7"`` or ``"gowin"``.
    cells : mapping of str to int
        Cell type -> count, as from :func:`parse_stat`.

    Returns
    -------
    Classification
        ``counts`` has every category of :data:`CATEGORIES` (0 when absent); ``by_category``
        maps each category met (including secondary ones like ``lutram``) to its cell types;
        ``unclassified`` holds every cell type no rule matched.

    Raises
    ------
    ValueError
        Unknown family.
    """
    if family not in _RULES:
        raise ValueError(f"Unknown FPGA family {family!r}; known families are: {', '.join(_RULES)}")
    by_category: dict[str, dict[str, int]] = {}
    unclassified: dict[str, int] = {}
    for cell, count in cells.items():
        if cell in _BOOKKEEPING:
            continue
        category = next((c for c, pattern in _RULES[family] if pattern.fullmatch(cell)), None)
        if category is None:
            unclassified[cell] = count
        else:
            by_category.setdefault(category, {})[cell] = count
    counts = {c: sum(by_category.get(c, {}).values()) for c in CATEGORIES}
    return Classification(counts, by_category, unclassified)


def classification_notes(family: str, classification: Classification) -> list[str]:
    """Notes naming every counted-elsewhere and unclassified cell type, so none goes unmentioned."""
    notes = []
    for category, template in _SECONDARY_NOTES.items():
        cells = classification.by_category.get(category)
        if cells:
            notes.append(template.format(cells=_cell_list(cells)))
    if classification.unclassified:
        notes.append(f"unclassified {family} cells (not counted in any category): "
                     f"{_cell_list(classification.unclassified)}")
    return notes


def _cell_list(cells: Mapping[str, int]) -> str:
    return ", ".join(f"{count} {cell}" for cell, count in sorted(cells.items()))


def lut_sites(family: str, cells: Mapping[str, int], luts: int) -> int:
    """A lower bound on the LUT sites the cells need: on ECP5, carries and LUT RAM use LUT4s."""
    if family != "ecp5":
        return luts
    return luts + sum(weight * cells.get(cell, 0) for cell, weight in _ECP5_LUT_SITES.items())


def parse_stat(text: str) -> dict[str, int]:
    """Cell type -> count of the whole design from the output of yosys ``stat -json``.

    Reads the ``design`` summary (yosys 0.3x to 0.70 write it after the per-module entries);
    without one, the design must consist of a single module, whose counts are used.

    Raises
    ------
    ValueError
        The text is not a ``stat -json`` result, or it has several modules and no summary.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"yosys stat output is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise ValueError("yosys stat output is not a JSON object")
    summary = data.get("design")
    if not isinstance(summary, dict) or "num_cells_by_type" not in summary:
        modules = data.get("modules") or {}
        if len(modules) != 1:
            raise ValueError(f"yosys stat output has no design summary and {len(modules)} "
                             f"modules; flatten the design first")
        summary = next(iter(modules.values()))
    return {str(cell): int(count) for cell, count in summary.get("num_cells_by_type", {}).items()}


@dataclass(frozen=True)
class PnrResult:
    """What nextpnr's ``--report`` JSON says: Fmax per clock and utilization per bel type."""
    fmax_mhz: dict[str, float]
    utilization: dict[str, dict[str, int]]


def parse_pnr_report(text: str) -> PnrResult:
    """Parse the JSON written by ``nextpnr --report``.

    Returns
    -------
    PnrResult
        ``fmax_mhz`` maps each clock net to its achieved frequency; ``utilization`` maps each bel
        type to ``{"used": n, "available": n}``.

    Raises
    ------
    ValueError
        The text is not a nextpnr report.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"nextpnr report is not JSON: {error}") from None
    if not isinstance(data, dict) or "utilization" not in data:
        raise ValueError("nextpnr report has no 'utilization' section")
    fmax = {str(clock): float(entry["achieved"]) for clock, entry in data.get("fmax", {}).items()}
    utilization = {str(bel): {"used": int(entry["used"]), "available": int(entry["available"])}
                   for bel, entry in data["utilization"].items()}
    return PnrResult(fmax, utilization)


@dataclass
class SynthReport:
    """Resource use and timing of one design on one target.

    Attributes
    ----------
    target, top : str
        Target name (a key of :data:`TARGETS`) and the synthesized top module.
    luts, carries, ffs, dsps, brams : int
        yosys cell counts of the design alone (no harness), by category: LUTs (every LUT size on
        xc7 and Gowin), carry cells (SB_CARRY, CCU2C = 2 bits, CARRY4/8, Gowin ALU), flip-flops,
        DSP/multiplier blocks, block RAMs.
    cells : dict of str to int
        Every cell type yosys produced and its count, classified or not.
    totals, percent : dict or None
        Per category, the target's available resources and the share used (in %), or None for
        estimate-only targets. ``percent`` leaves out categories the device has none of.
    fmax_mhz : float or None
        Achieved clock frequency after place-and-route inside :class:`RegisteredHarness`, or
        None when place-and-route did not run.
    fits : bool or None
        From nextpnr when place-and-route ran; otherwise whether the yosys counts fit the
        totals, None when they cannot tell (an iCE40 design whose flip-flops fit only if they
        pack with its LUTs: a note says so) and for estimate-only targets.
    pnr_utilization : dict or None
        nextpnr's own ``{"used", "available"}`` per bel type (harness included), or None.
    notes : list of str
        Everything a reader needs to trust the numbers: caveats, cells not counted, failures.
    """
    target: str
    top: str
    luts: int
    carries: int
    ffs: int
    dsps: int
    brams: int
    cells: dict[str, int]
    totals: dict[str, int] | None = None
    percent: dict[str, float] | None = None
    fmax_mhz: float | None = None
    fits: bool | None = None
    pnr_utilization: dict[str, dict[str, int]] | None = None
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """The five category counts by name: ``luts``, ``carries``, ``ffs``, ``dsps``, ``brams``."""
        return {category: getattr(self, category) for category in CATEGORIES}

    def to_dict(self) -> dict:
        """A JSON-serializable dict of every field (percentages and Fmax stay floats)."""
        return asdict(self)


def percentages(counts: Mapping[str, int], totals: Mapping[str, int]) -> dict[str, float]:
    """Share of each category's total that ``counts`` use, in percent, rounded to 0.01.

    Categories whose total is zero (e.g. DSPs on the HX8K) are left out: no share exists.
    """
    return {category: round(100.0 * counts[category] / total, 2)
            for category, total in totals.items() if total > 0}


# Table rows: label and how to get the cell text from a report.
def _count_cell(category):
    def cell(report: SynthReport) -> str:
        count = getattr(report, category)
        share = (report.percent or {}).get(category)
        return f"{count}" if share is None else f"{count} ({share:.1f}%)"
    return cell


def _fmax_cell(report: SynthReport) -> str:
    return "-" if report.fmax_mhz is None else f"{report.fmax_mhz:.1f}"


def _fits_cell(report: SynthReport) -> str:
    if report.fits is None:
        return "-" if report.totals is None else "maybe"
    return "yes" if report.fits else "NO"


_ROWS = [
    ("top", lambda r: r.top),
    ("LUT", _count_cell("luts")),
    ("carry", _count_cell("carries")),
    ("FF", _count_cell("ffs")),
    ("DSP", _count_cell("dsps")),
    ("BRAM", _count_cell("brams")),
    ("Fmax MHz", _fmax_cell),
    ("fits", _fits_cell),
]


def format_table(reports: Iterable[SynthReport]) -> str:
    """Render reports side by side as a plain-text table: one row per metric, one column each.

    Counts show the share of the device in parentheses when the target has totals; ``-`` marks
    what was not measured (Fmax without place-and-route, fit on estimate-only targets). A column
    is headed by the target name, or ``top@target`` when several reports share a target.

    Raises
    ------
    TypeError
        An element is not a :class:`SynthReport`.
    ValueError
        ``reports`` is empty.
    """
    reports = list(reports)
    if not reports:
        raise ValueError("format_table needs at least one report")
    for report in reports:
        if not isinstance(report, SynthReport):
            raise TypeError(f"format_table takes SynthReport objects, not {report!r}")
    targets = [r.target for r in reports]
    headers = [r.target if targets.count(r.target) == 1 else f"{r.top}@{r.target}"
               for r in reports]
    rows = [["", *headers]] + [[label, *(cell(r) for r in reports)] for label, cell in _ROWS]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        first = row[0].ljust(widths[0])
        rest = (text.rjust(width) for text, width in zip(row[1:], widths[1:]))
        lines.append("  ".join((first, *rest)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
