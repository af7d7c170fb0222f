#!/usr/bin/env python3
"""What composing layers into a network costs: each layer alone against the whole network.

An MLP 16 → 32 → tanh (PWL) → 8 → sigmoid (LUT), SQ(1,7) inputs and weights, built as a network
spec with one folded layer and one shift-add layer, balanced for ii 16, is checked bit-exact,
then synthesized layer by layer and as one core for iCE40 UP5K and ECP5-25F (place-and-route
for Fmax). The network's cost minus the sum of its layers' is the price of composing: the goal is
at most the stream registers between layers (the layers connect directly: no FIFOs).

    python benchmarks/network.py [--quick] [--json benchmarks/results/network.json]

Prints a Markdown table and writes JSON (and the table next to it as .md).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from hwnn.flow import synth_parts, synth_reports
from hwnn.sim import make_vectors, run_stream
from hwnn.spec import load_spec

TARGETS = ("ice40-up5k", "ecp5-25f")

SPEC = """[core]
kind = "network"
name = "mlp"
[params]
in_format = "SQ(1,7)"
weights = "mlp.npz"
weight_format = "SQ(1,7)"
target_ii = 16
[[params.layers]]
kind = "dense"
name = "fc1"
out_format = "SQ(3,5)"
[[params.layers]]
kind = "activation"
name = "act1"
function = "tanh"
method = "pwl"
segments = 8
out_format = "SQ(1,7)"
[[params.layers]]
kind = "dense"
name = "fc2"
arith = "mcm"
out_format = "SQ(3,5)"
[[params.layers]]
kind = "activation"
name = "act2"
function = "sigmoid"
method = "lut"
out_format = "UQ(0,8)"
"""


def write_network(directory: Path) -> Path:
    rng = np.random.default_rng(3)
    np.savez(directory / "mlp.npz", **{
        "fc1.weight": rng.uniform(-0.5, 0.5, (32, 16)), "fc1.bias": rng.uniform(-.2, .2, 32),
        "fc2.weight": rng.uniform(-0.5, 0.5, (8, 32)), "fc2.bias": rng.uniform(-.2, .2, 8)})
    (directory / "mlp.toml").write_text(SPEC)
    return directory / "mlp.toml"


def markdown(rows) -> str:
    lines = ["| part | target | LUT4 | carry | FF | DSP | BRAM | Fmax MHz |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        fmax = f"{r['fmax_mhz']:.1f}" if r["fmax_mhz"] else "—"
        lines.append(f"| {r['top']} | {r['target']} | {r['luts']} | {r['carries']} | {r['ffs']} "
                     f"| {r['dsps']} | {r['brams']} | {fmax} |")
    return "\n".join(lines)


def overheads(rows, network: str) -> list[str]:
    lines = []
    for target in dict.fromkeys(r["target"] for r in rows):
        parts = [r for r in rows if r["target"] == target and r["top"] != network]
        whole = next(r for r in rows if r["target"] == target and r["top"] == network)
        sums = {key: sum(r[key] for r in parts) for key in ("luts", "carries", "ffs", "dsps")}
        lines.append(f"- {target}: network {whole['luts']} LUT4 / {whole['ffs']} FF / "
                     f"{whole['dsps']} DSP against {sums['luts']} / {sums['ffs']} / "
                     f"{sums['dsps']} for the layers alone: "
                     f"{whole['luts'] - sums['luts']:+d} LUT4, {whole['ffs'] - sums['ffs']:+d} "
                     f"FF, {whole['dsps'] - sums['dsps']:+d} DSP")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="no place-and-route, iCE40 only")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "network.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        design = load_spec(write_network(Path(tmp)))
        core = design.build()
        x = make_vectors(design.in_format, design.in_lanes, 200, seed=1)
        run = run_stream(core, x, stall_in=0.2, stall_out=0.2, seed=1)
        if not np.array_equal(run.outputs, design.reference(x)):
            raise SystemExit("the network is not bit-exact against its reference")
        targets = TARGETS[:1] if args.quick else TARGETS
        rows = []
        for name, build in synth_parts(design):
            print(f"synthesizing {name}...", file=sys.stderr, flush=True)
            rows += [r.to_dict() for r in synth_reports(build, name, targets,
                                                        fmax=not args.quick)]
    text = markdown(rows) + "\n\n" + "\n".join(overheads(rows, design.name))
    print(text)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "network", "ii": core.ii, "latency": core.latency,
                               "rows": rows}, indent=2) + "\n")
    out.with_suffix(".md").write_text(text + "\n")
    print(f"wrote {out} and {out.with_suffix('.md')}", file=sys.stderr)


if __name__ == "__main__":
    main()
