#!/usr/bin/env python3
"""Simulation engines side by side: cycles per second of pysim and every compiled engine.

Four streaming cores, each run by every engine of ``hwnn.sim.ENGINES`` on the same kind of run
(random input codes over the full range, random stalls 0.2 on input and output):

    demo Dense      16→8, parallelism 8, ii 16 (the layer ``hwnn demo`` built before the
                    equalizer, hwnn.demo.write_dense_spec)
    shift-add Dense the 16×16 int8 matrix A of benchmarks/shift_add.py, arith="mcm", ii 1
    PWL tanh        16-bit input SQ(6,10) → SQ(1,15), 16 segments, ii 1
    ShiftMac        16→8, pot2 weights loaded at build time, parallelism 8, ii 16

For each compiled engine and core:

* cold start: a run of 5 vectors with an empty model cache (``HWNN_CACHE_DIR`` pointed at a
  fresh directory; YoWASP's tools and Verilator's runtime library, compiled once per machine,
  are not counted): export, C++ generation, compile and run;
* cached start: the same run again, the model now in the (same fresh) cache;
* cycles per second: a long run (10⁶ vectors for ii 1 cores, 10⁵ for ii 16, lengthened until
  the run itself takes 2 s; ``--quick``: 10⁴ and 10³) with the model cached, wall time of ``run_stream`` (so it includes the Python side:
  design export for the cache key, packing, stall patterns, unpacking), and the same net of
  the cached start time;
* speed-up: the net cycles per second over pysim's on a short run (about 5000 cycles), also
  net of pysim's start (a run of 5 vectors: elaborating the core and preparing the simulator).

Every run of every engine is checked bit-exact against the numpy reference before its time
counts. One more figure: 10⁶ demo-Dense vectors end to end with an empty cache (vectors,
compile, run and the reference check). An engine that cannot run (``EngineError``: no
compiler, a failed build) is listed as unavailable with the reason.

    python benchmarks/sim.py [--quick] [--engines cxxrtl ...] [--json benchmarks/results/sim.json]

Prints a Markdown table and writes JSON (and the Markdown next to it as .md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from shift_add import make_plan as shift_add_plan  # noqa: E402

from hwnn.cores.dense import Dense  # noqa: E402
from hwnn.cores.pwl import PWLActivation  # noqa: E402
from hwnn.cores.shift_mac import ShiftMac  # noqa: E402
from hwnn.demo import write_dense_spec  # noqa: E402
from hwnn.fixed import SQ  # noqa: E402
from hwnn.plans.pwl import plan_pwl  # noqa: E402
from hwnn.plans.shift_mac import plan_shift_mac  # noqa: E402
from hwnn.ref.dense import dense  # noqa: E402
from hwnn.ref.pwl import pwl  # noqa: E402
from hwnn.ref.shift_mac import shift_mac  # noqa: E402
from hwnn.sim import ENGINES, EngineError, compiled, make_vectors, run_stream  # noqa: E402
from hwnn.spec import load_spec  # noqa: E402
from hwnn.synth.toolchain import run_tool  # noqa: E402

#: Engines that are not simulators of their own ("auto" picks one of the others).
NOT_ENGINES = ("pysim", "auto")
COMPILED = tuple(e for e in ENGINES if e not in NOT_ENGINES)
STALL = 0.2
SEED = 5
START_VECTORS = 5
PYSIM_CYCLES, QUICK_PYSIM_CYCLES = 5000, 1500
#: Long runs: max(minimum, budget // ii) vectors.
LONG_VECTORS, QUICK_LONG_VECTORS = (10**5, 10**6), (10**3, 10**4)
MIN_LONG_SECONDS, MAX_LONG_CODES = 2.0, 5 * 10**7
END_TO_END_VECTORS, QUICK_END_TO_END_VECTORS = 10**6, 20_000


def say(message):
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Row:
    """One benchmarked core: ``make()`` builds a fresh core, ``vectors(n, seed)`` gives ``n``
    input rows as ``run_stream`` takes them, ``reference(x)`` their expected outputs."""
    name: str
    make: Callable
    vectors: Callable
    reference: Callable


def demo_row(scratch: Path) -> Row:
    design = load_spec(write_dense_spec(scratch / "demo"))
    return Row("demo Dense 16→8 P=8", design.build,
               lambda n, seed: make_vectors(design.in_format, design.in_lanes, n, seed=seed),
               lambda x: np.asarray(design.reference(x)).reshape(len(x), design.out_lanes))


def shift_add_row() -> Row:
    plan = shift_add_plan("A")
    return Row("shift-add Dense 16×16 int8 (mcm)", lambda: Dense(plan, arith="mcm"),
               lambda n, seed: make_vectors(plan.in_format, plan.n_in, n, seed=seed),
               lambda x: dense(plan, x))


def pwl_row() -> Row:
    plan = plan_pwl("tanh", SQ(6, 10), SQ(1, 15), segments=16)

    def vectors(n, seed):
        fmt = plan.in_format
        return np.random.default_rng(seed).integers(fmt.min_int, fmt.max_int, n, endpoint=True)
    return Row("PWL tanh 16-bit", lambda: PWLActivation(plan), vectors, lambda x: pwl(plan, x))


def shift_mac_row() -> Row:
    rng = np.random.default_rng(7)
    plan = plan_shift_mac(16, 8, in_format=SQ(1, 7), weight_format=SQ(1, 7),
                          out_format=SQ(4, 8), weight_terms=2, bias=rng.uniform(-0.5, 0.5, 8))
    weights = plan.code.quantize(rng.uniform(-1, 1, (8, 16)))
    return Row("ShiftMac 16→8 pot2 P=8", lambda: ShiftMac(plan, parallelism=8, weights=weights),
               lambda n, seed: make_vectors(plan.in_format, plan.n_in, n, seed=seed),
               lambda x: shift_mac(plan, weights, x))


def max_cycles(core, n: int) -> int:
    """A bound for ``n`` rows at stall 0.2, tighter than run_stream's default (8·n·ii/(1-stall)
    cycles), so a core that stops moving ends the run sooner."""
    return int(3 * n * max(core.ii, 1) / (1 - STALL) ** 2) + 1000


def timed_run(row: Row, engine: str, n: int, seed: int) -> dict:
    """Run ``n`` fresh vectors of ``row`` on ``engine``; check them; return counts and time."""
    x = row.vectors(n, seed)
    core = row.make()
    started = time.monotonic()
    run = run_stream(core, x, stall_in=STALL, stall_out=STALL, seed=seed, engine=engine,
                     max_cycles=max_cycles(core, n))
    seconds = time.monotonic() - started
    if not np.array_equal(run.outputs, row.reference(x)):
        raise SystemExit(f"{row.name} on {engine}: {n} vectors are not bit-exact against the "
                         f"reference")
    return {"vectors": n, "cycles": run.cycles, "seconds": round(seconds, 3),
            "cycles_per_s": run.cycles / seconds, "ii": core.ii, "latency": core.latency}


@contextlib.contextmanager
def cold_cache():
    """``HWNN_CACHE_DIR`` at a fresh directory, so hwnn's compiled models are missing; it links
    Verilator's runtime library from the real cache, which is compiled once per machine (as
    YoWASP's tools are, which this leaves alone)."""
    real = compiled.cache_dir("verilator")
    before = os.environ.get("HWNN_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="hwnn-sim-cold-") as fresh:
        for runtime in real.glob("runtime-*"):
            (Path(fresh) / "verilator").mkdir(parents=True, exist_ok=True)
            (Path(fresh) / "verilator" / runtime.name).symlink_to(runtime)
        os.environ["HWNN_CACHE_DIR"] = fresh
        try:
            yield
        finally:
            if before is None:
                del os.environ["HWNN_CACHE_DIR"]
            else:
                os.environ["HWNN_CACHE_DIR"] = before


def warm_yowasp(scratch: Path) -> None:
    """Run yosys once, so YoWASP's one-time compile of the tool is not in any measurement."""
    started = time.monotonic()
    run_tool("yosys", ["-V"], scratch, scratch / "yosys-version.log")
    say(f"yosys ready ({time.monotonic() - started:.1f} s)")


def warm_verilator_runtime(row: Row):
    """Build Verilator's runtime library (once per machine, in the real cache) with a short
    run, so that no cold start below counts it; return its time, or None if it fails."""
    started = time.monotonic()
    try:
        timed_run(row, "verilator", START_VECTORS, seed=1)
    except EngineError as error:
        say(f"verilator: {error}")
        return None
    seconds = time.monotonic() - started
    say(f"verilator runtime ready ({seconds:.1f} s, a model build included)")
    return round(seconds, 1)


def measure_pysim(row: Row, cycles: int) -> dict:
    """A start run and a short run of ``row`` in Amaranth's simulator."""
    start = timed_run(row, "pysim", START_VECTORS, seed=2)
    run = timed_run(row, "pysim", max(START_VECTORS, cycles // max(start["ii"], 1)), seed=3)
    net = run["cycles"] / max(run["seconds"] - start["seconds"], 1e-3)
    return {**run, "start_s": start["seconds"], "net_cycles_per_s": net}


def measure_engine(row: Row, engine: str, long_vectors: tuple, quick: bool) -> dict:
    """Cold start, cached start and a long run of ``row`` on a compiled ``engine``."""
    with cold_cache():
        try:
            cold = timed_run(row, engine, START_VECTORS, seed=1)
        except EngineError as error:
            return {"available": False, "reason": str(error)}
        cached = timed_run(row, engine, START_VECTORS, seed=2)
        n = max(long_vectors[0], long_vectors[1] // max(cold["ii"], 1))
        long = timed_run(row, engine, n, seed=3)
        # A run much shorter than its fixed cost makes the net rate noise: lengthen it (up to
        # MAX_LONG_CODES input codes in memory) until it takes MIN_LONG_SECONDS.
        lanes = row.vectors(1, 0).size
        while (long["seconds"] < MIN_LONG_SECONDS + cached["seconds"] and not quick
               and n * lanes < MAX_LONG_CODES):
            grow = 1.5 * (MIN_LONG_SECONDS + cached["seconds"]) / max(long["seconds"], 1e-3)
            n = int(min(n * max(grow, 2), MAX_LONG_CODES // lanes))
            long = timed_run(row, engine, n, seed=3)
    # The fixed cost of a run (export for the cache key, process start) taken out.
    net = long["cycles"] / max(long["seconds"] - cached["seconds"], 1e-3)
    return {"available": True, "cold_start_s": cold["seconds"],
            "cached_start_s": cached["seconds"], **long, "net_cycles_per_s": net}


def end_to_end(row: Row, engine: str, n: int) -> dict:
    """``n`` vectors of ``row`` with an empty model cache: vectors, build, run and check."""
    try:
        with cold_cache():
            started = time.monotonic()
            result = timed_run(row, engine, n, seed=4)
            seconds = time.monotonic() - started
    except EngineError as error:
        return {"available": False, "reason": str(error)}
    return {"available": True, "vectors": n, "cycles": result["cycles"],
            "seconds": round(seconds, 2), "run_seconds": result["seconds"]}


def _rate(value) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    return f"{value / 1e3:.1f} k"


def markdown(rows: list, engines: list) -> str:
    """The table: per core, one line for pysim and one per compiled engine."""
    lines = ["| design | ii | engine | vectors | cycles/s | cycles/s net | × pysim (net) | "
             "cold start s | cached start s |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        py = r["pysim"]
        lines.append(f"| {r['design']} | {r['ii']} | pysim | {py['vectors']} | "
                     f"{_rate(py['cycles_per_s'])} | {_rate(py['net_cycles_per_s'])} | 1× | — | "
                     f"{py['start_s']:.2f} |")
        for e in engines:
            m = r["engines"][e]
            if not m["available"]:
                lines.append(f"| | | {e} | unavailable | — | — | — | — | — |")
                continue
            lines.append(f"| | | {e} | {m['vectors']} | {_rate(m['cycles_per_s'])} | "
                         f"{_rate(m['net_cycles_per_s'])} | {m['speedup']:.0f}× | "
                         f"{m['cold_start_s']:.1f} | {m['cached_start_s']:.2f} |")
    return "\n".join(lines)


def goals(rows: list, engines: list, e2e: dict) -> list[str]:
    """The issue's goals checked on the measured numbers."""
    lines = []
    for r in rows:
        speeds = {e: r["engines"][e]["speedup"] for e in engines if r["engines"][e]["available"]}
        if speeds:
            best = max(speeds, key=speeds.get)
            lines.append(f"{r['design']}: fastest {best} {speeds[best]:.0f}× pysim (goal ≥ "
                         f"1000×: {'met' if speeds[best] >= 1000 else 'not met'})")
        if "cxxrtl" in speeds:
            lines.append(f"{r['design']}: cxxrtl {speeds['cxxrtl']:.0f}× pysim (goal ≥ 300×: "
                         f"{'met' if speeds['cxxrtl'] >= 300 else 'not met'})")
    for e, m in e2e.items():
        if not m["available"]:
            lines.append(f"{e}: unavailable ({m['reason']})")
            continue
        verdict = ("not measured (--quick)" if m["vectors"] < 10**6
                   else "met" if m["seconds"] < 60 else "not met")
        lines.append(f"{e}: {m['vectors']} demo-Dense vectors end to end with an empty model "
                     f"cache in {m['seconds']:.1f} s (the run itself {m['run_seconds']:.1f} s; "
                     f"goal 10⁶ in < 60 s: {verdict})")
    return lines


def report(table: str, checks: list, setup: dict) -> str:
    """The Markdown written to the .md file: the table, what its columns mean, the goals."""
    lines = [table, "",
             f"Runs: random codes over the full input range, stall_in = stall_out = {STALL}; "
             f"every run bit-exact against the numpy reference. pysim: a run of about "
             f"{setup['pysim_cycles']} cycles per core; its net rate leaves out the time of a "
             f"{START_VECTORS}-vector run (elaboration, simulator setup); × pysim is net over "
             f"net. Compiled engines: cycles/s of a run of "
             f"{setup['long_vectors']['ii 1']} vectors (ii 1 cores) or "
             f"{setup['long_vectors']['ii 16']} (ii 16), lengthened until the run takes "
             f"{MIN_LONG_SECONDS:g} s more than a cached start (the vectors column gives the "
             f"count), with the model cached, wall time of "
             f"run_stream (the Python side included: export of the design for the cache key, "
             f"packing, unpacking). Cold start: {START_VECTORS} vectors with an empty hwnn "
             f"model cache (export, C++ generation, compile, run); cached start: the same once "
             f"the model is cached; cycles/s net: the long run's cycles over its time minus the "
             f"cached start (the fixed cost of a run taken out). Every compiled measurement uses "
             f"a fresh model cache, so none depends on what was built before.",
             f"Machine: {setup['machine']}, {setup['cpus']} CPUs shared with other work; C++ "
             f"compiler: {setup['compiler']}."]
    for e, reason in setup["unavailable"].items():
        lines.append(f"{e}: unavailable: {reason}")
    lines += ["", "Goals:", ""] + [f"- {c}" for c in checks]
    return "\n".join(lines)


def compiler_name() -> str:
    """The C++ compiler the cxxrtl engine would use, or why there is none."""
    try:
        return " ".join(compiled.find_compiler("cxxrtl"))
    except EngineError as error:
        return f"none ({error})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="short runs (a smoke test; the speeds mean little)")
    parser.add_argument("--engines", nargs="+", default=list(COMPILED), choices=COMPILED,
                        help=f"compiled engines to measure (default: all, {' '.join(COMPILED)})")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "sim.json"))
    args = parser.parse_args(argv)
    started = time.monotonic()
    engines = list(dict.fromkeys(args.engines))
    pysim_cycles = QUICK_PYSIM_CYCLES if args.quick else PYSIM_CYCLES
    long_vectors = QUICK_LONG_VECTORS if args.quick else LONG_VECTORS
    e2e_vectors = QUICK_END_TO_END_VECTORS if args.quick else END_TO_END_VECTORS

    scratch = Path(tempfile.mkdtemp(prefix="hwnn-sim-bench-"))
    warm_yowasp(scratch)
    demo = demo_row(scratch)
    if "verilator" in engines:
        runtime = warm_verilator_runtime(demo)
    rows = []
    for row in (demo, shift_add_row(), pwl_row(), shift_mac_row()):
        say(f"{row.name}: pysim")
        py = measure_pysim(row, pysim_cycles)
        result = {"design": row.name, "ii": py["ii"], "latency": py["latency"], "pysim": py,
                  "engines": {}}
        for engine in engines:
            say(f"{row.name}: {engine}")
            m = measure_engine(row, engine, long_vectors, args.quick)
            if m["available"]:
                m["speedup"] = m["net_cycles_per_s"] / py["net_cycles_per_s"]
                say(f"  {_rate(m['net_cycles_per_s'])} cycles/s net ({m['speedup']:.0f}× pysim "
                    f"{_rate(py['net_cycles_per_s'])}), cold start {m['cold_start_s']:.1f} s, "
                    f"cached start {m['cached_start_s']:.2f} s")
            else:
                say(f"  unavailable: {m['reason']}")
            result["engines"][engine] = m
        rows.append(result)
    e2e = {}
    for engine in engines:
        say(f"{demo.name}: {e2e_vectors} vectors end to end on {engine}")
        e2e[engine] = end_to_end(demo, engine, e2e_vectors)

    unavailable = {e: rows[0]["engines"][e]["reason"] for e in engines
                   if not rows[0]["engines"][e]["available"]}
    setup = {"stall": STALL, "pysim_cycles": pysim_cycles,
             "long_vectors": {"ii 1": long_vectors[1], "ii 16": long_vectors[0]},
             "start_vectors": START_VECTORS, "engines": engines, "unavailable": unavailable,
             "machine": f"{platform.machine()} {platform.system()}", "cpus": os.cpu_count(),
             "compiler": compiler_name(), "quick": args.quick}
    if "verilator" in engines:
        setup["verilator_runtime_and_first_model_s"] = runtime
    table = markdown(rows, engines)
    checks = goals(rows, engines, e2e)
    setup["seconds"] = round(time.monotonic() - started, 1)
    text = report(table, checks, setup)
    print(text)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "sim", "setup": setup, "rows": rows,
                               "end_to_end": e2e, "goals": checks}, indent=2) + "\n")
    out.with_suffix(".md").write_text(text + "\n")
    shutil.rmtree(scratch, ignore_errors=True)
    say(f"wrote {out} and {out.with_suffix('.md')} ({setup['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
