#!/usr/bin/env python3
"""Popcount trees against yosys's own mapping of ``sum(bits)``: cells and Fmax, side by side.

For each width, hwnn's :class:`~hwnn.cores.popcount.Popcount` with every method (and a few
pipeline depths) and :class:`SumPopcount` (the same stream core with ``sum(bits)`` in place of
the tree, so yosys's ``alumacc``/``maccmap`` decide the structure) are first checked bit-exact
against the reference under stalls, then synthesized with place-and-route in the registered
harness of :func:`hwnn.synth.synthesize`.

"core LC" is the logic cells the core takes on iCE40 after place-and-route: nextpnr's
``ICESTORM_LC`` count of the harnessed design minus the harness's own cells (its input shift
register, its output capture flops and its pipelined XOR tree, one cell each; the same for every
design of a width, since they have the same ports). On ECP5 "core LC" is the LUT sites (LUT4s +
2 per CCU2C).

    python benchmarks/popcount.py [--quick] [--sizes 64 256] [--targets ice40-up5k]
                                  [--json benchmarks/results/popcount.json]

Prints a Markdown table and writes JSON (and the table next to it as .md) after every row, so
a long run can be watched and an interrupted one keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from amaranth.hdl import Module, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwnn.cores._component import inspected
from hwnn.cores.popcount import Popcount, pipeline_valid
from hwnn.plans.popcount import DEFAULT_CHAIN, plan_popcount
from hwnn.ref.popcount import popcount, popcount_width
from hwnn.sim import run_stream
from hwnn.synth import RegisteredHarness, ToolTimeout, synthesize

TARGETS = ("ice40-up5k", "ice40-hx8k", "ecp5-25f")
SIZES = (16, 32, 64, 128, 256, 512, 1024)
# (label, method, pipeline, chain) of the designs; method None is yosys's sum(bits).
DESIGNS = (("yosys sum(bits)", None, 0, 0), ("adder_tree", "adder_tree", 0, DEFAULT_CHAIN),
           ("adder_tree k=3", "adder_tree", 3, DEFAULT_CHAIN),
           ("adder_tree k=2", "adder_tree", 2, DEFAULT_CHAIN),
           ("counters", "counters", 0, DEFAULT_CHAIN), ("compressor", "compressor", 0, 0),
           ("adder_tree c=1", "adder_tree", 0, 1), ("adder_tree k=3 c=1", "adder_tree", 3, 1),
           ("counters c=1", "counters", 0, 1))
# Shared carry chains put one net on both carry inputs of a cell; nextpnr cannot route that
# on the HX8K (64 bits: ~180 overused wires after 300 s, chain=1 routes in seconds), so
# there the trees use one chain per adder. Elsewhere chain=1 is left out to save time.
SHARED_CHAINS_ROUTE = ("ice40-up5k", "ecp5-25f")
# The goal is measured first (64 and 256 bits on the UP5K), then the other targets at
# those widths, then the rest of the grid.
FIRST = ((64, "ice40-up5k"), (256, "ice40-up5k"), (64, "ecp5-25f"), (256, "ecp5-25f"),
         (64, "ice40-hx8k"), (256, "ice40-hx8k"))
# pipeline=2 stops routing on the UP5K from 128 bits on (the router circles with hundreds of
# overused wires until the timeout), so wider widths leave it out.
MAX_K2_BITS = 128
#: nextpnr gets this many seconds per design; a design it cannot route by then gets a row
#: without Fmax (the UP5K router can circle for hours on a congested placement).
PNR_TIMEOUT = 300
QUICK = dict(sizes=(64,), targets=("ice40-up5k",), designs=DESIGNS[:2])


class SumPopcount(wiring.Component):
    """The obvious popcount: ``sum(bits)`` registered, yosys maps it; latency 1, ii 1, the same
    ports and handshake as :class:`~hwnn.cores.popcount.Popcount`."""

    latency = 1
    ii = 1

    def __init__(self, n):
        self.n = n
        super().__init__({"i": In(stream.Signature(data.ArrayLayout(unsigned(1), n))),
                          "o": Out(stream.Signature(unsigned(popcount_width(n))))})

    def elaborate(self, platform):
        m = Module()
        advance = pipeline_valid(m, self.i, self.o, 1)
        with m.If(advance):
            m.d.sync += self.o.payload.eq(_sum([self.i.payload[j] for j in range(self.n)]))
        return m


def _sum(terms):
    # Pairwise, so the expression stays shallow (Python's sum() nests n deep, too deep for the
    # simulator at 256 bits); alumacc merges the single-fanout additions into one $macc
    # either way, so yosys maps the same thing as sum(bits).
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]


def make_core(n, method, pipeline, chain=DEFAULT_CHAIN):
    return (SumPopcount(n) if method is None
            else Popcount(plan_popcount(n, method, pipeline, chain)))


def check_exact(n, method, pipeline, chain):
    rng = np.random.default_rng(n)
    x = np.concatenate([np.zeros((1, n), np.int64), np.ones((1, n), np.int64),
                        rng.integers(0, 2, (30, n))])
    run = run_stream(make_core(n, method, pipeline, chain), x, stall_in=0.2, stall_out=0.2,
                     engine="cxxrtl" if n > 256 else "pysim")
    if not np.array_equal(run.outputs, popcount(x)):
        raise SystemExit(f"benchmark design is not bit-exact: {method} k={pipeline} n={n}")


def core_cells(core, report):
    """Logic cells of the core alone (see the module docstring)."""
    used = report.pnr_utilization or {}
    if "ICESTORM_LC" in used:
        harness = inspected(RegisteredHarness(core))
        return used["ICESTORM_LC"]["used"] - harness.in_bits - harness.out_bits \
            - harness.tree_flops
    return report.luts + 2 * report.carries


def measure(label, n, method, pipeline, chain, target):
    started = time.monotonic()
    core = make_core(n, method, pipeline, chain)
    row = {"design": label, "method": method or "yosys", "pipeline": pipeline,
           "chain": chain, "n": n,
           "target": target, "latency": core.latency}
    try:
        report = synthesize(core, target, name="bench", fmax=True, pnr_timeout=PNR_TIMEOUT)
    except ToolTimeout:
        # Resources without place-and-route, and the timeout said in the row.
        report = synthesize(make_core(n, method, pipeline, chain), target, name="bench")
        row["note"] = f"nextpnr did not finish in {PNR_TIMEOUT} s"
    cells = (core_cells(inspected(make_core(n, method, pipeline, chain)), report)
             if report.pnr_utilization or not target.startswith("ice40") else None)
    row.update({"luts": report.luts, "carries": report.carries, "ffs": report.ffs,
                "core_lc": cells, "lut_per_bit": round(report.luts / n, 3),
                "lc_per_bit": None if cells is None else round(cells / n, 3),
                "fmax_mhz": report.fmax_mhz, "fits": report.fits,
                "pnr_utilization": report.pnr_utilization,
                "seconds": round(time.monotonic() - started, 1)})
    return row


def markdown(rows):
    lines = ["| n | target | design | latency | LUT4 | carry | FF | LUT4/bit | core LC | "
             "LC/bit | Fmax MHz |", "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        fmax = f"{r['fmax_mhz']:.1f}" if r["fmax_mhz"] else "— (" + r.get("note", "") + ")"
        cells = "—" if r["core_lc"] is None else r["core_lc"]
        per_bit = "—" if r["lc_per_bit"] is None else f"{r['lc_per_bit']:.2f}"
        lines.append(f"| {r['n']} | {r['target']} | {r['design']} | {r['latency']} | "
                     f"{r['luts']} | {r['carries']} | {r['ffs']} | {r['lut_per_bit']:.2f} | "
                     f"{cells} | {per_bit} | {fmax} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 bits on the UP5K, two designs")
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES)
    parser.add_argument("--targets", nargs="+", default=TARGETS)
    parser.add_argument("--designs", nargs="+", help="labels of DESIGNS to run (default all)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows already in the JSON file, measure only the others")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "popcount.json"))
    args = parser.parse_args(argv)
    sizes, targets, designs = args.sizes, args.targets, DESIGNS
    if args.designs:
        designs = [d for d in DESIGNS if d[0] in args.designs]
    if args.quick:
        sizes, targets, designs = QUICK["sizes"], QUICK["targets"], QUICK["designs"]

    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = json.loads(out.read_text())["rows"] if args.resume and out.exists() else []
    done = {(r["n"], r["target"], r["design"]) for r in rows}
    grid = [(n, t) for n, t in FIRST if n in sizes and t in targets]
    grid += [(n, t) for t in targets for n in sizes if (n, t) not in grid]
    checked = set()
    for n, target in grid:
        for label, method, pipeline, chain in designs:
            if ((n, target, label) in done or (pipeline == 2 and n > MAX_K2_BITS)
                    or (method in ("adder_tree", "counters")
                        and (chain == 1) == (target in SHARED_CHAINS_ROUTE))):
                continue
            if (n, method, pipeline, chain) not in checked:
                check_exact(n, method, pipeline, chain)
                checked.add((n, method, pipeline, chain))
            print(f"{n} bits, {label} on {target}...", file=sys.stderr, flush=True)
            rows.append(measure(label, n, method, pipeline, chain, target))
            print(markdown(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
            out.write_text(json.dumps({"benchmark": "popcount", "chain": DEFAULT_CHAIN,
                                       "rows": rows}, indent=2) + "\n")
            out.with_suffix(".md").write_text(markdown(rows) + "\n")
    print(markdown(rows))
    print(f"wrote {out} and {out.with_suffix('.md')}", file=sys.stderr)


if __name__ == "__main__":
    main()
