#!/usr/bin/env python3
"""Dense core against the same layer written as plain ``*``: resources and Fmax, side by side.

For a few layer sizes, hwnn's folded Dense core at several parallelisms and the plain version
(one ``*`` per weight, fully parallel) are first checked bit-exact against the reference, then
synthesized for iCE40 UP5K and ECP5-25F with place-and-route in a registered harness.

    python benchmarks/dense.py [--quick] [--json benchmarks/results/dense.json]

Prints a Markdown table and writes JSON (and the table next to it as .md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from plain import PlainDense  # noqa: E402

from hwnn.cores.dense import Dense  # noqa: E402
from hwnn.fixed import SQ  # noqa: E402
from hwnn.plans.dense import plan_dense  # noqa: E402
from hwnn.ref.dense import dense  # noqa: E402
from hwnn.sim import make_vectors, run_stream  # noqa: E402
from hwnn.synth import synthesize  # noqa: E402

TARGETS = ("ice40-up5k", "ecp5-25f")
# (n_in, n_out, parallelisms of the Dense core)
LAYERS = [(8, 4, (1, 4, 32)), (16, 8, (1, 8, 32)), (32, 16, (1, 16, 64))]
QUICK_LAYERS = [(8, 4, (1, 4))]


def layer_plan(n_in, n_out):
    rng = np.random.default_rng(n_in * 100 + n_out)
    return plan_dense(np.clip(rng.normal(0, 0.4, (n_out, n_in)), -1, 0.99),
                      rng.normal(0, 0.1, n_out), in_format=SQ(1, 7), weight_format=SQ(1, 7),
                      out_format=SQ(4, 8), rounding="half_up", overflow="sat")


def check_exact(make_core, plan):
    x = make_vectors(plan.in_format, plan.n_in, 40, seed=1)
    run = run_stream(make_core(), x, stall_in=0.2, stall_out=0.2)
    if not np.array_equal(run.outputs, dense(plan, x)):
        raise SystemExit(f"benchmark design is not bit-exact: {make_core}")


def measure(label, make_core, plan, target):
    started = time.monotonic()
    report = synthesize(make_core(), target, name="bench", fmax=True)
    return {
        "design": label, "target": target, "n_in": plan.n_in, "n_out": plan.n_out,
        "luts": report.luts, "carries": report.carries, "ffs": report.ffs, "dsps": report.dsps,
        "brams": report.brams, "fmax_mhz": report.fmax_mhz, "fits": report.fits,
        "seconds": round(time.monotonic() - started, 1),
    }


def markdown(rows):
    lines = ["| layer | design | target | ii | LUT4 | carry | FF | DSP | BRAM | Fmax MHz | "
             "fits |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        fmax = f"{r['fmax_mhz']:.1f}" if r["fmax_mhz"] else "—"
        lines.append(f"| {r['n_in']}→{r['n_out']} | {r['design']} | {r['target']} | {r['ii']} | "
                     f"{r['luts']} | {r['carries']} | {r['ffs']} | {r['dsps']} | {r['brams']} | "
                     f"{fmax} | {'yes' if r['fits'] else 'no'} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small layer only")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "dense.json"))
    args = parser.parse_args(argv)

    rows = []
    for n_in, n_out, parallelisms in (QUICK_LAYERS if args.quick else LAYERS):
        plan = layer_plan(n_in, n_out)
        designs = [(f"hwnn Dense P={p}", (lambda p=p: Dense(plan, parallelism=p)),
                    -(-n_in * n_out // p)) for p in parallelisms]
        designs.append(("plain `*`", lambda: PlainDense(plan), 1))
        for label, make_core, ii in designs:
            check_exact(make_core, plan)
            for target in TARGETS:
                print(f"{n_in}->{n_out} {label} on {target}...", file=sys.stderr, flush=True)
                row = measure(label, make_core, plan, target)
                row["ii"] = ii
                rows.append(row)
    table = markdown(rows)
    print(table)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "dense", "rows": rows}, indent=2) + "\n")
    out.with_suffix(".md").write_text(table + "\n")
    print(f"wrote {out} and {out.with_suffix('.md')}", file=sys.stderr)


if __name__ == "__main__":
    main()
