#!/usr/bin/env python3
"""Single-constant multipliers: hwnn's adder counts against CSD and the optimum.

For every constant c = 1 … 2^b − 1 (one input, one output), builds the shift-add graph of
``y = c·x`` with :func:`hwnn.plans.shift_add.build_mcm_columns` and counts its adders. The averages are
over all those constants, even ones included (an even constant costs what its odd part costs):
that is the population of the literature's figures (Gustafsson, Dempster and Macleod; Voronenko
and Püschel), under which CSD averages 2.12 adders at 8 bits and 3.45 at 12, and optimal graphs
2.00 and 2.90. Over the odd constants alone CSD would average 2.45 and 3.78.

The "optimal" column is computed here, independently of hwnn: an exhaustive search of every
graph of up to 3 adders whose fundamentals stay below 2^(b+1), with the textbook A-operation
(right shifts allowed, which hwnn's adder nodes do not use); a constant it cannot reach needs
at least 4. Where hwnn reaches that bound for every constant (all b ≤ 12), the column is the
exact optimum; beyond, it is a lower bound (marked ≥).

    python benchmarks/single_constant.py [--max-bits 16]

Prints a Markdown table and writes benchmarks/results/single_constant.json (and .md).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from hwnn.plans.shift_add import build_mcm_columns, csd_adders, scm_adders

#: Published optimal averages over 1 … 2^b − 1 (quoted in DESIGN.md, section 7).
LITERATURE = {8: 2.00, 12: 2.90}
#: The goal: within 5% of the optimum.
GOAL = 1.05


def _odd(n):
    return n >> ((n & -n).bit_length() - 1)


def _a_star(u, v, limit):
    """Odd fundamentals below ``limit`` from one adder on ``u`` and ``v`` (with right shifts)."""
    out = {_odd(u + v)}
    if u != v:
        out.add(_odd(abs(u - v)))
    i = 1
    while (u << i) - v < limit or (v << i) - u < limit:
        for w in ((u << i) + v, abs((u << i) - v), u + (v << i), abs(u - (v << i))):
            if w < limit:
                out.add(w)
        i += 1
    return {w for w in out if w < limit}


def exhaustive_costs(bits):
    """Optimal adder counts (≤ 3) of every odd constant they reach below ``2**bits``."""
    limit = 1 << (bits + 1)
    cost = {1: 0}
    first = _a_star(1, 1, limit)
    for f in first:
        cost.setdefault(f, 1)
    pairs = []
    for f1 in sorted(first):
        for f2 in sorted(_a_star(1, f1, limit) | _a_star(f1, f1, limit) | first):
            if f2 not in (1, f1):
                cost.setdefault(f2, 2)
                pairs.append((f1, f2))
    for f1, f2 in pairs:
        for r in (1, f1, f2):
            for f3 in _a_star(f2, r, limit):
                cost.setdefault(f3, 3)
    return cost


def measure(bits):
    scm_adders((1 << bits) - 1)      # builds the table of optimal graphs outside the timing
    start = time.perf_counter()
    hwnn = [build_mcm_columns([[c]], (-128, 127)).adders for c in range(1, 1 << bits)]
    seconds = time.perf_counter() - start
    csd = [csd_adders(c) for c in range(1, 1 << bits)]
    table = exhaustive_costs(bits)
    bound = [table.get(_odd(c), 4) for c in range(1, 1 << bits)]
    exact = all(h == b for h, b in zip(hwnn, bound) if b == 4)
    n = len(hwnn)
    return {"bits": bits, "constants": n, "csd_avg": sum(csd) / n, "hwnn_avg": sum(hwnn) / n,
            "optimal_avg": sum(bound) / n, "optimal_exact": exact,
            "literature_optimal_avg": LITERATURE.get(bits),
            "hwnn_max": max(hwnn), "hwnn_worse_than_bound": sum(h > b for h, b in zip(hwnn, bound)),
            "ms_per_constant": 1000 * seconds / n}


def markdown(rows):
    lines = ["| bits | constants | CSD avg | hwnn avg | optimal avg | literature | "
             "hwnn / optimal | CSD / optimal | goal (≤ 1.05) | ms / constant |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        opt = f"{r['optimal_avg']:.3f}" if r["optimal_exact"] else f"≥ {r['optimal_avg']:.3f}"
        lit = "—" if r["literature_optimal_avg"] is None else f"{r['literature_optimal_avg']:.2f}"
        ratio = r["hwnn_avg"] / r["optimal_avg"]
        met = "yes" if ratio <= GOAL else ("no" if r["optimal_exact"] else "unknown")
        lines.append(f"| {r['bits']} | {r['constants']} | {r['csd_avg']:.3f} | "
                     f"{r['hwnn_avg']:.3f} | {opt} | {lit} | {ratio:.3f} | "
                     f"{r['csd_avg'] / r['optimal_avg']:.3f} | {met} | "
                     f"{r['ms_per_constant']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-bits", type=int, default=16,
                        help="largest constant width (default 16; 16 bits alone take about a minute)")
    parser.add_argument("--json",
                        default=str(Path(__file__).parent / "results" / "single_constant.json"))
    args = parser.parse_args(argv)
    rows = []
    for bits in range(2, args.max_bits + 1):
        rows.append(measure(bits))
        print(f"{bits} bits: hwnn {rows[-1]['hwnn_avg']:.3f}, CSD {rows[-1]['csd_avg']:.3f}",
              flush=True)
    table = markdown(rows)
    print(table)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "single_constant",
                               "population": "every constant 1 … 2^b − 1",
                               "rows": rows}, indent=2) + "\n")
    out.with_suffix(".md").write_text(table + "\n")


if __name__ == "__main__":
    main()
