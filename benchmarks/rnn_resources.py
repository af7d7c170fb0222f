"""Resources, Fmax and speed of the Recurrent core: the ``--resources`` mode of ``rnn.py``.

Each configuration of :data:`CONFIGS` is one question a user asks of an LSTM or GRU core
(what the smallest fit costs, what lut against pwl, parallelism and lanes buy, how fast it
goes). It builds :class:`hwnn.cores.recurrent.Recurrent` from the layer's default plan,
synthesizes it with place-and-route on each of its targets (:func:`hwnn.synth.synthesize`,
``fmax=True``: Fmax inside the registered harness) and reports LUT, carry, FF, DSP, BRAM, the
logic cells nextpnr used, Fmax, :attr:`~Recurrent.step_cycles` and time steps per second
(Fmax / step_cycles). A configuration that does not fit, or whose synthesis fails, keeps its
row, marked so.

The MAC's parallelism is given by a rule, resolved per target from its DSP count
(:func:`parallelism_for`): ``1``; ``"max"``, the fewest multipliers that give the smallest MAC
``ii`` whose total (MAC plus the elementwise products) fits the target's DSPs; ``"mid"``, the
same for about the square root of the max's parallelism.

:func:`cycle_table` gives ``step_cycles`` of every layer of the grid (LSTM and GRU, input 4 /
hidden 8 and input 16 / hidden 32, 8 and 16 bits, pwl and lut) for every arith, parallelism
rule and lanes, without synthesis: a cycle count is exact from the core's formula.

This module takes layers as ``rnn.py`` defines them (``kind``, ``input_size``,
``hidden_size``, ``bits``, ``method``, and the hardware fields ``arith``, ``parallelism``,
``lanes``, ``target``, ``question``, ``pnr``) and does not import ``rnn.py``.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from pathlib import Path

from hwnn.cores._component import inspected
from hwnn.cores.dense import Dense
from hwnn.cores.recurrent import Recurrent
from hwnn.cores.recurrent_unrolled import UnrolledRecurrent
from hwnn.synth import TARGETS, ToolError, ToolTimeout, synthesize
from hwnn.synth.report import classify_cells, parse_stat

UP5K, ECP5_85, ECP5_25 = "ice40-up5k", "ecp5-85f", "ecp5-25f"

#: What each question asks, in table order.
QUESTIONS = {
    "smallest": "what the smallest core costs: folded MAC on one multiplier (P = 1), one value "
                "per cycle in every activation and elementwise unit (lanes 1)",
    "size": "what the big layer costs: input 16 / hidden 32 (32 times the weights of 4→8 "
            "for an LSTM) at P = 1, lanes 1, GRU at 8 and 16 bits and LSTM at 16",
    "method": "lut against pwl activations, same core",
    "parallelism": "what MAC parallelism buys: P = 1, mid and the most the DSPs allow",
    "lanes": "what lanes buy: one value per cycle against all at once, same P",
    "fastest": "how fast it goes: shift-add MAC (mcm, every weight at once), all lanes",
    "unrolled": "the whole step as one datapath (UnrolledRecurrent: mcm adder graph, every "
                "gate and neuron at once) with 0 to 3 register cuts: cuts + 1 cycles a step",
}

#: (question, kind, input, hidden, bits, method, arith, parallelism rule, lanes, targets);
#: lanes None = all of a part's values at once. See docs/rnn.md for why this subset. Arith
#: "unrolled" is :class:`~hwnn.cores.recurrent_unrolled.UnrolledRecurrent` (mcm), whose
#: "parallelism" field holds its ``cuts``.
CONFIGS = (
    ("smallest", "lstm", 4, 8, 8, "pwl", "mult", 1, 1, (UP5K,)),
    ("smallest", "lstm", 4, 8, 16, "pwl", "mult", 1, 1, (UP5K, ECP5_85)),
    ("smallest", "gru", 4, 8, 8, "pwl", "mult", 1, 1, (UP5K,)),
    ("smallest", "gru", 4, 8, 16, "pwl", "mult", 1, 1, (UP5K,)),
    ("smallest", "lstm", 16, 32, 8, "pwl", "mult", 1, 1, (UP5K, ECP5_85)),
    ("size", "gru", 16, 32, 8, "pwl", "mult", 1, 1, (UP5K, ECP5_85)),
    ("size", "gru", 16, 32, 16, "pwl", "mult", 1, 1, (UP5K, ECP5_85)),
    ("size", "lstm", 16, 32, 16, "pwl", "mult", 1, 1, (UP5K, ECP5_85)),
    ("method", "lstm", 4, 8, 16, "lut", "mult", 1, 1, (UP5K,)),
    ("parallelism", "lstm", 4, 8, 8, "pwl", "mult", "mid", 1, (UP5K,)),
    ("parallelism", "lstm", 4, 8, 8, "pwl", "mult", "max", 1, (UP5K,)),
    ("parallelism", "lstm", 4, 8, 16, "pwl", "mult", "max", 1, (ECP5_85,)),
    ("parallelism", "lstm", 16, 32, 8, "pwl", "mult", "max", 1, (ECP5_85,)),
    ("lanes", "lstm", 4, 8, 16, "pwl", "mult", "max", None, (ECP5_85,)),
    ("fastest", "lstm", 4, 8, 8, "lut", "mcm", None, None, (ECP5_25,)),
    ("fastest", "lstm", 4, 8, 8, "pwl", "mcm", None, None, (ECP5_25,)),
    ("fastest", "lstm", 4, 8, 8, "pwl", "mcm", None, 1, (UP5K,)),
    *(("unrolled", "lstm", 4, 8, 8, method, "unrolled", cuts, None, (ECP5_25,))
      for method in ("lut", "pwl") for cuts in range(4)),
)

#: Rows that only count cells with yosys (no place-and-route), for a core that cannot fit by
#: far: skipping nextpnr saves minutes. (kind, input, hidden, bits, target) None since the
#: step's values moved to block RAM: LSTM(16→32) at 8 bits, once 7156 FF, is placed on the
#: UP5K too.
COUNTS_ONLY = frozenset()

#: nextpnr's time limit per row, in seconds: a row past it is marked as stopped at the limit
#: (the P = 128 ECP5-85F rows' router had not converged after 11 minutes).
PNR_TIMEOUT = 900.0

#: The fields of a row that name its configuration (a row of the JSON and of
#: :func:`resource_configs` alike).
KEY_FIELDS = ("question", "kind", "input_size", "hidden_size", "bits", "method", "arith",
              "parallelism", "lanes", "target")


def resource_configs(quick: bool = False, question: str | None = None) -> list[dict]:
    """Keyword arguments of one layer per configuration and target, in table order
    (``quick``: the first configuration on its first target only, to try the flow;
    ``question``: only that question's configurations)."""
    configs = CONFIGS[:1] if quick else CONFIGS
    if question is not None:
        configs = [config for config in configs if config[0] == question]
    out = []
    for question, kind, i, h, bits, method, arith, rule, lanes, targets in configs:
        for target in targets[:1] if quick else targets:
            out.append(dict(kind=kind, input_size=i, hidden_size=h, bits=bits, method=method,
                            arith=arith, parallelism=rule, lanes=lanes, target=target,
                            question=question,
                            pnr=(kind, i, h, bits, target) not in COUNTS_ONLY))
    return out


def row_key(row) -> tuple:
    """The configuration ``row`` (a dict with :data:`KEY_FIELDS`) was measured for."""
    return tuple(row[field] for field in KEY_FIELDS)


def select_configs(configs: list[dict], only: str | None = None,
                   missing_from: list[dict] | None = None) -> list[dict]:
    """The configurations of ``configs`` (from :func:`resource_configs`) to measure, in order.

    ``only``: a comma-separated list of question names (:data:`QUESTIONS`) and row indices
    (positions in ``configs``, from 0: the table's row order); None keeps every one.
    ``missing_from``: rows already measured (a results JSON's ``rows``); their configurations
    are left out.

    Raises
    ------
    ValueError
        ``only`` names no question, or an index outside ``configs``.
    """
    chosen = list(range(len(configs)))
    if only is not None:
        chosen = []
        for item in only.split(","):
            item = item.strip()
            if item in QUESTIONS:
                chosen += [n for n, c in enumerate(configs) if c["question"] == item]
            elif item.isdigit() and int(item) < len(configs):
                chosen.append(int(item))
            else:
                raise ValueError(f"only: {item!r} is neither a question ({', '.join(QUESTIONS)}) "
                                 f"nor a row index below {len(configs)}")
        chosen = list(dict.fromkeys(chosen))
    done = {row_key(r) for r in missing_from or ()}
    return [configs[n] for n in chosen if row_key(configs[n]) not in done]


def parallelism_for(plan, lanes, rule, dsps: int) -> int:
    """The MAC parallelism of ``rule`` (1, ``"mid"`` or ``"max"``) for a core of ``plan`` with
    ``lanes`` on a target of ``dsps`` DSP blocks, one multiplier per DSP.

    ``"max"``: the budget ``dsps`` − (the core's multipliers outside the MAC) gives the
    smallest MAC ii = ⌈n / budget⌉ over the n weights, and the fewest lanes reaching it,
    ⌈n / ii⌉. ``"mid"``: the same for √(max) rounded instead of the budget.

    Raises
    ------
    ValueError
        ``rule`` is none of these, or the multipliers outside the MAC alone exceed ``dsps``.
    """
    if rule == 1:
        return 1
    if rule not in ("mid", "max"):
        raise ValueError(f"rule must be 1, 'mid' or 'max', not {rule!r}")
    weights = plan.gates.n_in * plan.gates.n_out
    budget = dsps - (inspected(Recurrent(plan, parallelism=1, lanes=lanes)).multipliers - 1)
    if budget < 1:
        raise ValueError(f"rule={rule!r}: lanes={lanes} needs {dsps - budget + 1} multipliers "
                         f"outside the MAC, more than the {dsps} DSPs")
    fewest = -(-weights // -(-weights // budget))
    if rule == "mid":
        fewest = max(1, round(math.sqrt(fewest)))
        fewest = -(-weights // -(-weights // fewest))
    return fewest


def _core(layer, plan):
    """The Recurrent core of ``layer``, its parallelism rule resolved for its target (arith
    "unrolled": the UnrolledRecurrent core, ``parallelism`` its cuts)."""
    if layer.arith == "unrolled":
        return UnrolledRecurrent(plan, cuts=layer.parallelism)
    parallelism = None
    if layer.arith == "mult":
        parallelism = parallelism_for(plan, layer.lanes, layer.parallelism,
                                      TARGETS[layer.target].totals["dsps"])
    return Recurrent(plan, arith=layer.arith, parallelism=parallelism, lanes=layer.lanes)


#: nextpnr's bel type of a logic cell per family (what "does not fit" usually runs out of).
_LOGIC_CELL = {"ice40": "ICESTORM_LC", "ecp5": "TRELLIS_COMB"}


def _stopped_counts(target, nextpnr_log: Path) -> dict:
    """The yosys counts of the core (``design.stat.json`` beside ``nextpnr_log``), the logic
    cells nextpnr had packed (its utilization lines) and, if it had placed the design, its
    last Fmax estimate before routing (``placed_fmax_mhz``) when it was stopped."""
    cells = parse_stat((nextpnr_log.parent / "design.stat.json").read_text())
    out = dict(classify_cells(target.family, cells).counts)
    packed = re.search(rf"{_LOGIC_CELL[target.family]}:\s*(\d+)/\s*(\d+)",
                       nextpnr_log.read_text())
    out["logic_cells"] = None if packed is None else {"used": int(packed[1]),
                                                      "available": int(packed[2])}
    estimates = re.findall(r"Max frequency for clock .*?: ([\d.]+) MHz", nextpnr_log.read_text())
    out["placed_fmax_mhz"] = float(estimates[-1]) if estimates else None
    return out


def measure_resources(layer, plan, weights, x) -> dict:
    """Synthesize the layer's core on ``layer.target``: yosys counts of the core alone, and
    with ``layer.pnr`` the logic cells nextpnr used (core and timing harness), Fmax and fit;
    the core's ``step_cycles``, multipliers and steps per second (Fmax / step_cycles). A
    synthesis that fails is a row with ``fits`` False and the tool's message."""
    core = _core(layer, plan)
    target = TARGETS[layer.target]
    row = {"mac_parallelism": (f"cuts {core.cuts}" if layer.arith == "unrolled"
                               else core.mac.parallelism),
           "multipliers": core.multipliers, "step_cycles": core.step_cycles}
    if layer.arith == "unrolled":
        row.update(cut_after=list(core.cut_after), critical_segment=core.critical_segment)
    started = time.monotonic()

    def progress(message):
        print(f"  {time.monotonic() - started:5.0f} s {message}", file=sys.stderr, flush=True)
    try:
        report = synthesize(core, target.name, name="rnn", fmax=layer.pnr, progress=progress,
                            pnr_timeout=PNR_TIMEOUT if layer.pnr else None)
    except ToolTimeout as error:
        # Not a crash: nextpnr was stopped at the limit. The report is lost with the
        # exception, but the kept directory holds yosys's counts and nextpnr's packing.
        row.update(_stopped_counts(target, error.log_path), fits=None, pnr=layer.pnr,
                   timed_out=error.seconds, synth_seconds=round(time.monotonic() - started, 1))
        return row
    except ToolError as error:
        row.update(fits=False, failed=str(error).splitlines()[0],
                   synth_seconds=round(time.monotonic() - started, 1))
        return row
    cells = (report.pnr_utilization or {}).get(_LOGIC_CELL[target.family])
    fmax = report.fmax_mhz
    row.update({**report.counts(), "fmax_mhz": fmax, "fits": report.fits,
                "pnr": layer.pnr, "logic_cells": cells, "notes": report.notes,
                "steps_per_second": None if fmax is None else fmax * 1e6 / core.step_cycles,
                "synth_seconds": round(time.monotonic() - started, 1)})
    return row


def cycle_table(plans, check: bool = False) -> list[dict]:
    """``step_cycles`` of each layer in ``plans`` ({(kind, input, hidden, bits, method): plan})
    for mult at parallelism 1 and at the UP5K's and ECP5-85F's ``"max"``, and mcm, each with
    lanes 1 and all (None where the rule cannot fit the DSPs).

    The MAC is the first part of a step's chain and the only one arith changes, so mcm's step
    is mult P=1's minus that MAC's latency plus the shift-add MAC's (planning a shift-add graph
    takes seconds to a minute, so it is planned once per layer and bit width, not per method
    and lanes); ``check`` compares that with the core itself on the hidden-8 layers.

    Raises
    ------
    AssertionError
        ``check`` and a derived mcm step differs from the core's.
    """
    rows, mcm_latency = [], {}
    for (kind, i, h, bits, method), plan in plans.items():
        row = {"kind": kind, "input_size": i, "hidden_size": h, "bits": bits,
               "method": method}
        for lanes in (1, None):
            tag = "all" if lanes is None else lanes
            for name, target in (("P1", None), ("Pmax_up5k", UP5K), ("Pmax_ecp5_85f", ECP5_85)):
                try:
                    parallelism = 1 if target is None else parallelism_for(
                        plan, lanes, "max", TARGETS[target].totals["dsps"])
                except ValueError:
                    row[f"{name}_lanes_{tag}"] = None
                    continue
                core = inspected(Recurrent(plan, parallelism=parallelism, lanes=lanes))
                row[f"{name}_lanes_{tag}"] = [parallelism, core.step_cycles]
                if target is None:
                    folded = core
            layer = (kind, i, h, bits)
            if layer not in mcm_latency:
                mcm_latency[layer] = inspected(Dense(plan.gates, arith="mcm")).latency
            row[f"mcm_lanes_{tag}"] = (folded.step_cycles - folded.mac.latency
                                       + mcm_latency[layer])
            if check and h <= 8:
                direct = inspected(Recurrent(plan, arith="mcm", lanes=lanes)).step_cycles
                if direct != row[f"mcm_lanes_{tag}"]:
                    raise AssertionError(f"mcm step_cycles of {row}: derived "
                                         f"{row[f'mcm_lanes_{tag}']}, the core {direct}")
        rows.append(row)
    return rows


def goal_results(rows) -> list[dict]:
    """Issue 11's two resource goals against the rows, each with pass/fail and its numbers.

    * 16-bit LSTM(4→8) on the UP5K folded onto its DSPs: some 16-bit mult row on
      ice40-up5k fits after place-and-route with ≤ 5280 LUT4 and ≤ 8 DSP.
    * 8-bit shift-add LSTM(4→8) on the ECP5-25F fully parallel: an mcm row with all lanes or
      an unrolled row on ecp5-25f fits and takes ≤ 4 cycles per time step.
    """
    def pick(**want):
        return [r for r in rows if all(r.get(k) == v for k, v in want.items())]
    results = []
    up5k = pick(kind="lstm", input_size=4, hidden_size=8, bits=16, arith="mult", target=UP5K)
    if up5k:
        ok = [r for r in up5k if r["fits"] and r["luts"] <= 5280 and r["dsps"] <= 8]
        best = min(up5k, key=lambda r: (r.get("logic_cells") or {}).get("used", math.inf))
        results.append({
            "goal": "16-bit LSTM(4→8) fits the UP5K (≤ 5280 LUT4, ≤ 8 DSP) folded onto its "
                    "DSPs",
            "passed": bool(ok),
            "measured": _fit_text(ok[0] if ok else best)})
    ecp5 = [r for arith in ("mcm", "unrolled") for r in pick(
        kind="lstm", input_size=4, hidden_size=8, bits=8, arith=arith, lanes=None,
        target=ECP5_25)]
    if ecp5:
        # The fastest that fits at ≤ 4 cycles a step (in steps per second), else the fewest
        # cycles among those that fit, else the fewest cycles.
        r = min(ecp5, key=lambda r: (not (r["fits"] and r["step_cycles"] <= 4),
                                     not r["fits"], -(r.get("steps_per_second") or 0),
                                     r["step_cycles"]))
        results.append({
            "goal": "8-bit shift-add LSTM(4→8) fits the ECP5-25F fully parallel at one time "
                    "step per ≤ 4 cycles",
            "passed": bool(r["fits"]) and r["step_cycles"] <= 4,
            "measured": f"{_fit_text(r)}; {r['step_cycles']} cycles per step (the goal: "
                        f"≤ 4)"})
    return results


def _fit_text(row) -> str:
    cells = row.get("logic_cells")
    used = "" if cells is None else f", {cells['used']}/{cells['available']} logic cells"
    fits = {True: "fits", False: "does not fit", None: "fit not judged"}[row.get("fits")]
    parallel = row["mac_parallelism"]     # "cuts N" for an unrolled row
    return (f"{row['method']} {row['arith']} "
            f"{parallel if isinstance(parallel, str) else f'P={parallel}'} "
            f"lanes={row['lanes'] or 'all'} on {row['target']}: {row.get('luts')} LUT4, "
            f"{row.get('dsps')} DSP{used}: {fits}")


def _n(value, digits=1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def markdown(rows, cycles, notes=()) -> str:
    """The synthesized rows grouped by question, the goals, the cycle table, and ``notes``
    (paragraphs: which rows come from which run, and how long they took)."""
    lines = ["| question | layer | bits | method | arith | P | lanes | target | LUT4 | carry "
             "| FF | DSP | BRAM | logic cells (PnR) | Fmax MHz | fits | cycles/step "
             "| k steps/s | h_T RMS |",
             "|---|---|---:|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"
             "---:|---:|---:|"]
    for r in rows:
        name = f"{r['kind'].upper()}({r['input_size']}→{r['hidden_size']})"
        cells = r.get("logic_cells")
        if r.get("timed_out"):
            placed = r.get("placed_fmax_mhz")
            fits = (f"**stopped** (nextpnr past its {r['timed_out']:.0f} s limit; logic "
                    f"cells as packed" + ("" if placed is None else
                                          f"; {placed:.1f} MHz estimated after placement")
                    + ")")
        elif r.get("failed"):
            # The tool's message ends in "last lines of <log>:", a log since removed.
            fits = f"**NO** (synthesis failed: {r['failed'].split('; last lines')[0]})"
        elif not r.get("pnr", True):
            fits = ("**NO** (yosys counts exceed the device; no PnR)" if r["fits"] is False
                    else "counts only")
        else:
            fits = {True: "yes", False: "**NO**", None: "—"}[r["fits"]]
        if r.get("remark"):
            fits += f"; {r['remark']}"
        rate = r.get("steps_per_second")
        used = "—" if cells is None else f"{cells['used']}/{cells['available']}"
        lines.append(
            f"| {r['question']} | {name} | {r['bits']} | {r['method']} | {r['arith']} | "
            f"{r['mac_parallelism']} | {r['lanes'] or 'all'} | {r['target']} | "
            f"{r.get('luts', '—')} | {r.get('carries', '—')} | {r.get('ffs', '—')} | "
            f"{r.get('dsps', '—')} | {r.get('brams', '—')} | "
            f"{used} | "
            f"{_n(r.get('fmax_mhz'))} | {fits} | {r['step_cycles']} | "
            f"{_n(None if rate is None else rate / 1e3)} | {r['h_T_rms']:.2e} |")
    lines += ["", "Goals of issue 11:", ""]
    lines += [f"- {g['goal']}: **{'pass' if g['passed'] else 'FAIL'}** ({g['measured']})"
              for g in goal_results(rows)]
    lines += ["", "Cycles per time step of every layer (no synthesis; `P` the MAC parallelism "
              "the rule gives, — where the DSPs cannot hold the elementwise products):", "",
              "| layer | bits | method | mult P=1, lanes 1 | mult P=1, all | UP5K max P, 1 | "
              "UP5K max P, all | ECP5-85F max P, 1 | ECP5-85F max P, all | mcm, 1 | mcm, all |",
              "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in cycles:
        def cell(key):
            value = c[key]
            return "—" if value is None else f"{value[1]} (P={value[0]})"
        lines.append(
            f"| {c['kind'].upper()}({c['input_size']}→{c['hidden_size']}) | {c['bits']} | "
            f"{c['method']} | {c['P1_lanes_1'][1]} | {c['P1_lanes_all'][1]} | "
            f"{cell('Pmax_up5k_lanes_1')} | {cell('Pmax_up5k_lanes_all')} | "
            f"{cell('Pmax_ecp5_85f_lanes_1')} | {cell('Pmax_ecp5_85f_lanes_all')} | "
            f"{c['mcm_lanes_1']} | {c['mcm_lanes_all']} |")
    if notes:
        lines += [""] + [f"{note}\n" for note in notes]
    return "\n".join(lines).rstrip("\n")


def merge_rows(json_path, rows, note: str = "") -> None:
    """Put ``rows`` into the results ``json_path`` (written by ``rnn.py --resources``), each
    replacing the row of its configuration (:func:`row_key`) if there is one, all in
    :func:`resource_configs` order; recompute the goals, add ``note`` to the results' notes
    (paragraphs after the tables) and rewrite the Markdown beside it. Some rows can so be
    measured again, or added, without the whole run (``rnn.py --resources --only ...``)."""
    path = Path(json_path)
    results = json.loads(path.read_text())
    order = {row_key(c): n for n, c in enumerate(resource_configs())}
    new = {row_key(r) for r in rows}
    kept = [r for r in results["rows"] if row_key(r) not in new] + list(rows)
    results["rows"] = sorted(kept, key=lambda r: order.get(row_key(r), len(order)))
    results["setup"]["questions"] = QUESTIONS
    results["goals"] = goal_results(results["rows"])
    if note:
        results["notes"] = results.get("notes", []) + [note]
    write_results(path, results)


def set_remark(json_path, index: int, remark: str) -> None:
    """Give row ``index`` (from 0, table order) of the results ``json_path`` a remark (shown
    in its fits cell: why it failed, for example) and rewrite the Markdown.

    Raises
    ------
    ValueError
        ``index`` is not a row of the results.
    """
    path = Path(json_path)
    results = json.loads(path.read_text())
    if not 0 <= index < len(results["rows"]):
        raise ValueError(f"index must be a row from 0 to {len(results['rows']) - 1}, not {index}")
    results["rows"][index]["remark"] = remark
    write_results(path, results)


def write_results(path: Path, results: dict) -> None:
    """Write ``results`` to the JSON ``path`` and its tables and notes to the .md beside it."""
    path.write_text(json.dumps(results, indent=2) + "\n")
    path.with_suffix(".md").write_text(
        markdown(results["rows"], results["cycles"], results.get("notes", ())) + "\n")
