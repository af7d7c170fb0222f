#!/usr/bin/env python3
"""Constant matrices on shift-add graphs: hwnn's csd and mcm against multipliers and da4ml.

Three integer matrices with fixed seeds (out × in; the input is a vector of signed 8-bit codes,
SQ(1,7), that is integers −128 … 127 scaled by 2^-7):

    A  16 × 16, signed 8-bit weights uniform in [-128, 127]
    B  32 × 32, signed 4-bit weights uniform in [-8, 7], then half of them set to 0
    C   8 × 64, signed 6-bit weights uniform in [-32, 31] (8 outputs of 64 inputs)

Each is compiled fully parallel (one vector per cycle) as

* hwnn ``Dense(arith="mult", parallelism=n_in·n_out)``, with DSP blocks and with ``dsp=False``;
* hwnn ``Dense(arith="csd")`` and ``Dense(arith="mcm")``, registered every 2 adder levels
  (``pipeline=2``, the core's default; ``--pipelines 1 2`` measures both);
* da4ml (optional, a benchmark-only dependency): its trace API compiles the same matrix for the
  same input quantization; its own pipeliner registers the graph every 2 adder levels
  (``latency_cutoff=2``) and its Verilog generator writes the RTL. The Verilog is measured as
  emitted ("da4ml") and with a ``(* keep *)`` on every adder output ("da4ml + keep"), which is
  what hwnn's shift-add cores put on theirs: yosys's ``alumacc`` otherwise merges chains of
  adders into LUT carry-save trees (see DESIGN.md, section 7).

Every design computes ``W·x`` exactly: the output format is the accumulator format of the plan
(no rounding, no overflow), the same for every hwnn arithmetic; da4ml's outputs are exact too.
Before synthesis every hwnn core is simulated on 50 vectors (corners and random, stalls 0.1)
against ``hwnn.ref.dense``; da4ml's solution is evaluated with its own interpreter on 2000
vectors and its generated Verilog (registers made transparent) with yosys ``eval`` on 16.

Resources come from yosys on iCE40 UP5K and ECP5-25F (the design alone); Fmax from nextpnr
inside ``hwnn.synth.RegisteredHarness`` when yosys's counts fit the device (a design that does
not fit is reported as such, with no Fmax). da4ml's Verilog is converted to RTLIL with yowasp
yosys and placed inside the same harness through an Amaranth ``Instance``.

Single-constant quality (adders per constant against CSD and the optimum) is measured by
``benchmarks/single_constant.py``, not here.

    python benchmarks/shift_add.py [--quick] [--no-synth] [--targets ice40-up5k ecp5-25f]
                                   [--pipelines 2] [--jobs 2]

Prints Markdown tables and writes benchmarks/results/shift_add.json (and .md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from amaranth.hdl import UnusedElaboratable

from hwnn.cores.dense import Dense
from hwnn.fixed import SQ
from hwnn.plans.dense import plan_dense
from hwnn.ref.dense import dense
from hwnn.sim import make_vectors, run_stream

# Cores built only for their graph statistics are never elaborated; that is intended.
warnings.filterwarnings("ignore", category=UnusedElaboratable)

TARGETS = ("ice40-up5k", "ecp5-25f")
IN_FORMAT = SQ(1, 7)
IN_BITS = 8
#: Matrix name -> (description, weight bits).
MATRICES = {"A": ("16×16 int8", 8), "B": ("32×32 int4, 50% zeros", 4), "C": ("8×64 int6", 6)}


def say(message):
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# The matrices and the hwnn plans

def matrix(name: str) -> np.ndarray:
    """The integer matrix ``name`` (out × in), the same on every run."""
    if name == "A":
        return np.random.default_rng(101).integers(-128, 128, (16, 16))
    if name == "B":
        rng = np.random.default_rng(102)
        w = rng.integers(-8, 8, (32, 32))
        w[rng.permutation(w.size).reshape(w.shape) < w.size // 2] = 0  # exactly 50% zeros
        return w
    if name == "C":
        return np.random.default_rng(103).integers(-32, 32, (8, 64))
    raise ValueError(name)


def make_plan(name: str):
    """The DensePlan of matrix ``name``: integer weights (weight_format SQ(b, 0), so the float
    weight ``w / 2**0`` is the integer itself), input SQ(1,7), output = the exact accumulator
    format (requantize is the identity)."""
    w = matrix(name)
    weight_format = SQ(MATRICES[name][1], 0)
    weight = w / 2 ** weight_format.f
    first = plan_dense(weight, None, in_format=IN_FORMAT, weight_format=weight_format,
                       out_format=SQ(8, 8))
    plan = plan_dense(weight, None, in_format=IN_FORMAT, weight_format=weight_format,
                      out_format=first.acc_format, rounding="trunc", overflow="wrap")
    assert np.array_equal(plan.weight, w) and plan.saturated_weights == 0
    return plan


def hwnn_core(name: str, design: dict):
    plan = make_plan(name)
    if design["arith"] == "mult":
        return Dense(plan, arith="mult", parallelism=plan.n_in * plan.n_out)
    return Dense(plan, arith=design["arith"], pipeline=design["pipeline"],
                 always_ready=design.get("always_ready", False))


def check_hwnn(name: str, design: dict) -> None:
    """Simulate the core on 50 vectors (stalls 0.1) against the reference."""
    plan = make_plan(name)
    x = make_vectors(plan.in_format, plan.n_in, 50, seed=1)
    stall_out = 0.0 if design.get("always_ready") else 0.1   # no backpressure to apply
    run = run_stream(hwnn_core(name, design), x, stall_in=0.1, stall_out=stall_out)
    if not np.array_equal(run.outputs, dense(plan, x)):
        raise SystemExit(f"{name} {design['label']}: hwnn core is not bit-exact")


# ---------------------------------------------------------------------------------------------
# da4ml

def da4ml_version():
    try:
        import da4ml
    except ImportError:
        return None
    return getattr(da4ml, "__version__", "unknown")


def _da4ml_stats(comb) -> dict:
    """Adders, adder depth and adder bits of a da4ml CombLogic (opcodes 0/1 are a ± b<<s)."""
    from da4ml.types import minimal_kif
    depth, adders, bits = [], 0, 0
    for op in comb.ops:
        if op.opcode in (0, 1):
            adders += 1
            bits += sum(minimal_kif(op.qint))
            depth.append(1 + max(depth[op.id0], depth[op.id1]))
        elif op.opcode == -1:
            depth.append(0)
        elif op.opcode in (3, -3) and op.id1 == -1:  # explicit quantize: wiring here
            depth.append(depth[op.id0])
        else:
            raise ValueError(f"unexpected da4ml operation {op}")
    negated = sum(bool(n) for i, n in zip(comb.out_idxs, comb.out_negs) if i >= 0)
    return {"adders": adders, "output_adders": negated,
            "depth": max(depth[i] for i in comb.out_idxs if i >= 0),
            "adder_bits": bits, "da4ml_cost": comb.cost}


def da4ml_compile(name: str, latency_cutoff: int) -> dict:
    """Compile matrix ``name`` with da4ml; returns counts, the Verilog files and the top name.

    The da4ml calls::

        inp = da4ml.trace.FixedVariableArrayInput(n_in)          # default HWConfig(1, -1, -1)
        x = da4ml.trace.ops.quantize(inp, 1, 7, 0)               # signed 8-bit integers
        comb = da4ml.trace.comb_trace(inp, x @ W.T)              # CMVM solver, one CombLogic
        pipe = da4ml.trace.to_pipeline(comb, latency_cutoff)     # registers every 2 adders
        files = da4ml.codegen.rtl.verilog.pipeline_logic_gen(pipe, top)
    """
    import da4ml.codegen.rtl as rtl
    from da4ml.codegen.rtl.verilog import pipeline_logic_gen
    from da4ml.trace import FixedVariableArrayInput, comb_trace, to_pipeline
    from da4ml.trace.ops import quantize

    w = matrix(name)
    n_out, n_in = w.shape
    started = time.monotonic()
    inp = FixedVariableArrayInput(n_in)
    x = quantize(inp, 1, IN_BITS - 1, 0)
    comb = comb_trace(inp, x @ w.T.astype(np.float32))
    pipe = to_pipeline(comb, latency_cutoff, verbose=False)
    seconds = time.monotonic() - started

    # Exact? da4ml's C++ interpreter and the Python one, on corners and random vectors.
    vectors = make_vectors(IN_FORMAT, n_in, 2000, seed=2)
    expected = vectors @ w.T
    if not np.array_equal(comb.predict(vectors.astype(np.float64)), expected):
        raise SystemExit(f"{name}: da4ml's solution is not exact")
    if not np.array_equal(np.array([pipe(v) for v in vectors[:200]], dtype=np.float64),
                          expected[:200]):
        raise SystemExit(f"{name}: da4ml's pipeline is not exact")

    top = f"da4ml_{name}"
    files = pipeline_logic_gen(pipe, top, print_latency=False)
    static = Path(rtl.__file__).parent / "verilog" / "source"
    # lookup_table.v reads memory files at elaboration; a constant matrix needs no tables.
    library = {p.stem: p.read_text() for p in sorted(static.glob("*.v"))
               if p.name != "lookup_table.v"}
    return {"stats": {**_da4ml_stats(comb), "stages": len(pipe.solutions),
                      "solve_seconds": round(seconds, 2)},
            "top": top, "files": files, "library": library, "pipe": pipe,
            "in_bits": n_in * IN_BITS}


_ADDER_WIRE = re.compile(r"^(\s*)(wire \[\d+:0\] v\d+(?:_neg)?;\s*(?:shift_adder|negative)\b)",
                         re.MULTILINE)


def with_keep(files: dict) -> dict:
    """The same Verilog with ``(* keep *)`` on every adder's (and negation's) output wire."""
    return {k: _ADDER_WIRE.sub(r"\1(* keep *) \2", v) for k, v in files.items()}


def _transparent(files: dict, top: str) -> dict:
    """The pipeline with its registers made transparent (for a combinational ``eval``)."""
    text = files[top].replace("always @(posedge clk)", "always @(*)").replace("<=", "=")
    return {**files, top: text}


def _yosys(directory: Path, commands, log_name: str) -> str:
    from hwnn.synth import tool_path
    script = directory / f"{log_name}.ys"
    script.write_text("\n".join(commands) + "\n")
    result = subprocess.run([str(tool_path("yosys")), "-s", script.name], cwd=directory,
                            capture_output=True, text=True)
    (directory / f"{log_name}.log").write_text(result.stdout + result.stderr)
    if result.returncode:
        raise RuntimeError(f"yosys failed, see {directory / (log_name + '.log')}:\n"
                           + (result.stdout + result.stderr)[-3000:])
    return result.stdout


def _write_sources(directory: Path, compiled: dict, files: dict) -> list[str]:
    names = []
    for stem, text in {**compiled["library"], **files}.items():
        (directory / f"{stem}.v").write_text(text)
        names.append(f"{stem}.v")
    return names


def verilog_to_rtlil(compiled: dict, files: dict, directory: Path) -> str:
    """da4ml's Verilog as one flat RTLIL module (yowasp yosys: read, elaborate, flatten; the
    second ``hierarchy -top`` drops the library modules flattening left unused)."""
    directory.mkdir(parents=True, exist_ok=True)
    names = _write_sources(directory, compiled, files)
    top = compiled["top"]
    _yosys(directory, [f"read_verilog -sv {n}" for n in names]
           + [f"hierarchy -top {top}", "proc", "flatten -noscopeinfo", f"hierarchy -top {top}",
              f"write_rtlil {top}.il"], "to_rtlil")
    text = (directory / f"{top}.il").read_text()
    # Appended to Amaranth's RTLIL for the harness: leave out yosys's header lines.
    return "\n".join(line for line in text.splitlines()
                     if not line.startswith(("autoidx", "#"))) + "\n"


def check_da4ml_verilog(name: str, compiled: dict, files: dict, directory: Path,
                        count: int = 16) -> None:
    """Evaluate the Verilog ``files`` (registers made transparent) with yosys ``eval``."""
    directory.mkdir(parents=True, exist_ok=True)
    from da4ml.types import minimal_kif
    top = compiled["top"]
    names = _write_sources(directory, compiled, _transparent(files, top))
    w = matrix(name)
    vectors = make_vectors(IN_FORMAT, w.shape[1], count, seed=3)
    commands = [f"read_verilog -sv {n}" for n in names]
    commands += [f"hierarchy -top {top}", "proc", "flatten", "opt_clean"]
    for v in vectors:
        packed = sum((int(e) & 0xFF) << (IN_BITS * i) for i, e in enumerate(v))
        commands.append(f"eval -set model_inp {compiled['in_bits']}'h{packed:x} -show model_out")
    log = _yosys(directory, commands, "eval")
    results = re.findall(r"Eval result: \\model_out = (\d+)'([01xz]+)", log)
    if len(results) != len(vectors):
        raise SystemExit(f"{name}: yosys eval of da4ml's Verilog gave {len(results)} results")
    kifs = [minimal_kif(q) for q in compiled["pipe"].out_qint]
    for v, (width, bits) in zip(vectors, results):
        value, offset, got = int(bits, 2), 0, []
        for k, i, f in kifs:
            b = int(k) + int(i) + int(f)
            field = (value >> offset) & ((1 << b) - 1) if b else 0
            if k and b and field >> (b - 1):
                field -= 1 << b
            got.append(field * 2 ** -int(f) if f <= 0 else field / 2 ** int(f))
            offset += b
        if offset != int(width) or not np.array_equal(np.array(got), w @ v):
            raise SystemExit(f"{name}: da4ml's Verilog is not exact on {list(v)}")


# ---------------------------------------------------------------------------------------------
# Synthesis (runs in worker processes)

def _da4ml_wrapper(top: str, in_bits: int, out_bits: int):
    """An Amaranth component around da4ml's pipelined module (its own input and output
    registers make every core path register to register inside the harness)."""
    from amaranth.hdl import ClockSignal, Instance, Module
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    class Da4ml(wiring.Component):
        def __init__(self):
            super().__init__({"x": In(in_bits), "y": Out(out_bits)})

        def elaborate(self, platform):
            m = Module()
            m.submodules.dut = Instance(top, i_clk=ClockSignal(), i_model_inp=self.x,
                                        o_model_out=self.y)
            return m

    return Da4ml()


def _fmax(report, target, core, extra_rtlil: str, dsp: bool):
    """Place and route ``RegisteredHarness(core)`` (``core`` may instantiate the modules in
    ``extra_rtlil``) and copy the timing and fit into ``report``."""
    from hwnn.synth import synthesize
    timed = synthesize(core, target, name="bench", fmax=True, dsp=dsp, extra_rtlil=extra_rtlil)
    report.fmax_mhz, report.fits = timed.fmax_mhz, timed.fits
    report.pnr_utilization = timed.pnr_utilization
    report.notes += [n for n in timed.notes if n not in report.notes]


def synth_task(task: dict) -> dict:
    """One design on one target: yosys counts, then (if they fit) nextpnr for Fmax."""
    from hwnn.synth import synthesize, synthesize_rtlil
    started = time.monotonic()
    design, target, dsp = task["design"], task["target"], task["dsp"]
    if design["kind"] == "hwnn":
        core = hwnn_core(task["matrix"], design)
        report = synthesize(core, target, name="bench", dsp=dsp)
        harness_core, extra = core, ""
    else:
        report = synthesize_rtlil(task["rtlil"], target, top=task["top"], dsp=dsp)
        harness_core, extra = None, task["rtlil"]
    estimated_fit = report.fits
    fit_source = "yosys estimate"
    if estimated_fit and task["fmax"]:
        if harness_core is None:
            harness_core = _da4ml_wrapper(task["top"], task["in_bits"], task["out_bits"])
        report.notes = [n for n in report.notes if not n.startswith("fits is estimated")]
        _fmax(report, target, harness_core, extra, dsp)
        fit_source = "nextpnr (with harness)"
    return {"matrix": task["matrix"], "design": design["label"], "target": target,
            "luts": report.luts, "carries": report.carries, "ffs": report.ffs,
            "dsps": report.dsps, "brams": report.brams, "fmax_mhz": report.fmax_mhz,
            "fits": report.fits, "fit_source": fit_source, "cells": report.cells,
            "pnr_utilization": report.pnr_utilization,
            "notes": report.notes, "seconds": round(time.monotonic() - started, 1)}


# ---------------------------------------------------------------------------------------------
# Designs, tables, goals

def designs(quick: bool, pipelines, with_da4ml: bool) -> list[dict]:
    out = []
    if not quick:
        out.append({"label": "mult (DSP)", "kind": "hwnn", "arith": "mult", "dsp": True})
    out.append({"label": "mult (no DSP)", "kind": "hwnn", "arith": "mult", "dsp": False})
    for arith in ("csd", "mcm"):
        for p in pipelines:
            out.append({"label": f"{arith} p={p}", "kind": "hwnn", "arith": arith,
                        "pipeline": p, "dsp": False})
    for p in pipelines:
        # Without backpressure (always_ready streams): the bare pipeline, as da4ml emits.
        out.append({"label": f"mcm free p={p}", "kind": "hwnn", "arith": "mcm", "pipeline": p,
                    "always_ready": True, "dsp": False})
    if with_da4ml:
        for p in pipelines:
            if not quick:
                out.append({"label": f"da4ml p={p}", "kind": "da4ml", "keep": False,
                            "pipeline": p, "dsp": False})
            out.append({"label": f"da4ml + keep p={p}", "kind": "da4ml", "keep": True,
                        "pipeline": p, "dsp": False})
    return out


def _fmt(value, digits=0):
    if value is None:
        return "—"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown(rows, targets) -> str:
    head = "| matrix | design | adders (graph + output) | depth | adder bits |"
    rule = "|---|---|---:|---:|---:|"
    short = {"ice40-up5k": "iCE40", "ecp5-25f": "ECP5"}
    for t in targets:
        carry = "CCU2C" if t.startswith("ecp5") else "carry"
        s = short.get(t, t)
        head += f" {s} LUT4 | {s} {carry} | {s} FF | {s} DSP | {s} Fmax | {s} fits |"
        rule += "---:|---:|---:|---:|---:|---|"
    lines = [head, rule]
    for r in rows:
        adders = ("n/a" if r["adders"] is None else str(r["adders"]) if not r["output_adders"]
                  else f"{r['adders']} + {r['output_adders']}")
        line = (f"| {r['matrix']} | {r['design']} | {adders} | {_fmt(r['depth'])} | "
                f"{_fmt(r['adder_bits'])} |")
        for t in targets:
            s = r["synth"].get(t)
            if s is None:
                line += " — | — | — | — | — | — |"
                continue
            fits = "yes" if s["fits"] else "no"
            if s["fit_source"] == "yosys estimate":
                fits += " (est.)"
            line += (f" {s['luts']} | {s['carries']} | {s['ffs']} | {s['dsps']} | "
                     f"{_fmt(s['fmax_mhz'], 1)} | {fits} |")
        lines.append(line)
    return "\n".join(lines)


def _lut_sites(s, target):
    """LUT4 sites: on ECP5 a CCU2C occupies two LUT4 sites; on iCE40 the carry sits in the
    logic cell of the LUT4 that computes the sum bit."""
    return s["luts"] + (2 * s["carries"] if target.startswith("ecp5") else 0)


def _against_da4ml(name, mcm_label, mcm, by, targets, pipeline) -> list[str]:
    """One line per da4ml variant: adders and LUT4 sites of ``mcm`` against it."""
    lines = []
    total = mcm["adders"] + mcm["output_adders"]
    for label in (f"da4ml p={pipeline}", f"da4ml + keep p={pipeline}"):
        da = by.get((name, label))
        if da is None:
            continue
        da_total = da["adders"] + da["output_adders"]
        verdict = "fewer" if total < da_total else ("as many" if total == da_total else "more")
        parts = [f"{name}: {mcm_label} {total} adders vs {label} {da_total} ({verdict})"]
        for t in targets:
            a, b = mcm["synth"].get(t), da["synth"].get(t)
            if a and b:
                la, lb = _lut_sites(a, t), _lut_sites(b, t)
                parts.append(f"{t} LUT4 sites {la} vs {lb} "
                             f"({'fewer' if la < lb else 'not fewer'})")
        lines.append("; ".join(parts))
    return lines


def goals(rows, targets, pipeline) -> list[str]:
    """The issue's goals, checked on the measured numbers: mcm needs fewer adders and fewer
    LUT4 sites than da4ml (as emitted, and with keep) on every matrix, and on A at most half the
    LUT4 sites of the multiplier layer without DSPs, with no DSPs. Both hwnn interfaces are
    compared: the stream core and the one without backpressure ("free", like da4ml's)."""
    by = {(r["matrix"], r["design"]): r for r in rows}
    lines = []
    for name in MATRICES:
        for mcm_label in (f"mcm p={pipeline}", f"mcm free p={pipeline}"):
            mcm = by.get((name, mcm_label))
            if mcm is not None:
                lines += _against_da4ml(name, mcm_label, mcm, by, targets, pipeline)
        mcm, mult = by.get((name, f"mcm p={pipeline}")), by.get((name, "mult (no DSP)"))
        if name == "A" and mcm is not None and mult is not None:
            for t in targets:
                a, b = mcm["synth"].get(t), mult["synth"].get(t)
                if a and b:
                    la, lb = _lut_sites(a, t), _lut_sites(b, t)
                    ok = la <= lb / 2 and a["dsps"] == 0
                    lines.append(f"A on {t}: mcm {la} LUT4 sites, {a['dsps']} DSP vs mult "
                                 f"without DSPs {lb} (ratio {la / lb:.2f}; goal ≤ 0.5 with 0 "
                                 f"DSPs: {'met' if ok else 'not met'})")
    return lines


def report(table: str, checks, setup: dict) -> str:
    """The Markdown written to the .md file: the table, what its columns mean, the goals."""
    pipelines = ", ".join(map(str, setup["pipelines"]))
    lines = [table, "",
             f"Input {setup['input']}; output {setup['output']}. Adders: two-operand adders "
             f"of the graph + output adders (hwnn: one subtractor per output whose value is still "
             f"negated after the node signs are chosen; da4ml: its `negative` modules). Depth: adder levels. Adder bits: sum "
             f"of the adders' exact widths. p = adder levels per register stage ({pipelines}); "
             f"mult is Dense(arith='mult') fully parallel.",
             f"da4ml {setup['da4ml'] or '(not installed)'}: trace API with its default "
             f"HWConfig(1, -1, -1), pipelined by da4ml.trace.to_pipeline, Verilog from "
             f"da4ml.codegen.rtl.verilog.pipeline_logic_gen; '+ keep' adds (* keep *) to every "
             f"adder output, as hwnn does, so yosys's alumacc cannot merge adders.",
             "LUT4, carry (iCE40 SB_CARRY, ECP5 CCU2C = 2 bits on two LUT4 sites), FF and DSP "
             "are yosys counts of the design alone. Fmax (MHz) is from nextpnr inside "
             "RegisteredHarness, seed 1, run only when yosys's counts fit the device; "
             "'no (est.)' means the counts alone exceed it. hwnn's stream cores include a "
             "valid/ready interface with a registered output and a skid register (one 2:1 mux "
             "and two flops per output bit); 'mcm free' is the same core with always_ready "
             "streams (valid, no ready, no skid), the interface of da4ml's bare pipeline.",
             "Single-constant adder counts: see benchmarks/single_constant.py."]
    if checks:
        lines += ["", "Goals (LUT4 sites: iCE40 LUT4; ECP5 LUT4 + 2·CCU2C):", ""]
        lines += [f"- {c}" for c in checks]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="matrix A only; mult without DSPs, csd, mcm, da4ml + keep")
    parser.add_argument("--no-synth", action="store_true", help="adder counts only")
    parser.add_argument("--targets", nargs="+", default=list(TARGETS))
    parser.add_argument("--pipelines", nargs="+", type=int, default=[2],
                        help="adder levels per register stage for csd/mcm/da4ml (default 2)")
    parser.add_argument("--no-fmax", action="store_true", help="yosys counts only, no nextpnr")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="synthesis runs in parallel (default 2)")
    parser.add_argument("--json",
                        default=str(Path(__file__).parent / "results" / "shift_add.json"))
    args = parser.parse_args(argv)
    started = time.monotonic()

    version = da4ml_version()
    if version is None:
        say("note: da4ml is not installed (pip install da4ml): its rows are skipped")
    names = ["A"] if args.quick else list(MATRICES)
    plan_designs = designs(args.quick, args.pipelines, version is not None)

    rows, tasks = [], []
    scratch = Path(tempfile.mkdtemp(prefix="shift-add-"))
    for name in names:
        plan = make_plan(name)
        for design in plan_designs:
            row = {"matrix": name, "shape": f"{plan.n_out}×{plan.n_in}",
                   "description": MATRICES[name][0], "design": design["label"],
                   "kind": design["kind"], "adders": None, "output_adders": 0, "depth": None,
                   "adder_bits": None, "synth": {}}
            task = {"matrix": name, "design": design, "dsp": design["dsp"]}
            if design["kind"] == "hwnn":
                core = hwnn_core(name, design)
                if core.graph is not None:
                    core.graph.verify(plan.weight)
                    row.update(adders=core.graph.adders, output_adders=core.output_adders,
                               depth=core.graph.depth, adder_bits=core.graph.adder_bits,
                               latency=core.latency, graph=core.graph.describe())
                else:
                    row.update(multipliers=core.multipliers, latency=core.latency)
                if not args.no_synth:
                    say(f"{name} {design['label']}: simulating 50 vectors against the reference")
                    check_hwnn(name, design)
                    row["bit_exact"] = "50 vectors, run_stream stalls 0.1"
            else:
                say(f"{name} {design['label']}: compiling with da4ml {version}")
                compiled = da4ml_compile(name, design["pipeline"])
                row.update(compiled["stats"])
                row["latency"] = compiled["stats"]["stages"] + 1
                files = with_keep(compiled["files"]) if design["keep"] else compiled["files"]
                tag = f"{name}_{'keep' if design['keep'] else 'plain'}_p{design['pipeline']}"
                check_da4ml_verilog(name, compiled, files, scratch / f"eval_{tag}")
                row["bit_exact"] = ("da4ml interpreter 2000 vectors; Verilog via yosys eval "
                                    "16 vectors")
                rtlil_text = verilog_to_rtlil(compiled, files, scratch / tag)
                out_bits = int(re.search(r"wire width (\d+) output \d+ \\model_out",
                                         rtlil_text).group(1))
                task.update(rtlil=rtlil_text, top=compiled["top"],
                            in_bits=compiled["in_bits"], out_bits=out_bits)
            rows.append(row)
            if not args.no_synth:
                for target in args.targets:
                    tasks.append({**task, "target": target, "fmax": not args.no_fmax,
                                  "row": len(rows) - 1})

    if tasks:
        # ECP5 place-and-route is the slow part: start those first.
        tasks.sort(key=lambda t: (not t["target"].startswith("ecp5"),
                                  t["design"]["kind"] == "hwnn" and t["design"]["arith"] == "mult"))
        say(f"{len(tasks)} synthesis runs, {args.jobs} at a time")
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = {pool.submit(synth_task, {k: v for k, v in t.items() if k != "row"}): t
                       for t in tasks}
            for done, future in enumerate(as_completed(futures), 1):
                task = futures[future]
                result = future.result()
                rows[task["row"]]["synth"][task["target"]] = result
                say(f"[{done}/{len(tasks)}] {task['matrix']} {task['design']['label']} on "
                    f"{task['target']}: {result['luts']} LUT4, {result['carries']} carry, "
                    f"{result['ffs']} FF, {result['dsps']} DSP, Fmax "
                    f"{_fmt(result['fmax_mhz'], 1)}, fits {result['fits']} "
                    f"({result['seconds']} s; {time.monotonic() - started:.0f} s elapsed)")

    targets = [] if args.no_synth else args.targets
    table = markdown(rows, targets)
    checks = goals(rows, targets, args.pipelines[-1])
    setup = {
        "input": "SQ(1,7): signed 8-bit codes -128..127",
        "output": "the plan's accumulator format (exact W·x; rounding trunc, overflow wrap "
                  "never act)",
        "matrices": {n: {"description": MATRICES[n][0],
                         "weight_format": f"SQ({MATRICES[n][1]}, 0)",
                         "weight": matrix(n).tolist()} for n in names},
        "mult": "Dense(arith='mult', parallelism=n_in·n_out): fully parallel, ii=1",
        "pipelines": args.pipelines,
        "da4ml": version,
        "targets": targets,
        "fmax": "nextpnr inside hwnn.synth.RegisteredHarness, seed 1, only when yosys's "
                "counts fit the device",
        "seconds": round(time.monotonic() - started, 1),
    }
    text = report(table, checks, setup)
    print(text)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "shift_add", "setup": setup, "rows": rows,
                               "goals": checks}, indent=2) + "\n")
    out.with_suffix(".md").write_text(text + "\n")
    shutil.rmtree(scratch, ignore_errors=True)
    say(f"wrote {out} and {out.with_suffix('.md')} ({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
