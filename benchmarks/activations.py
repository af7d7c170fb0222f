#!/usr/bin/env python3
"""Activation units: measured maximum error against hardware cost, side by side.

For sigmoid and tanh with input SQ(6,10) and 8- and 16-bit outputs: an hls4ml-style 1024-entry
table over [-8, 8) (entries sampled at each bin's left end, no symmetry), hwnn's symmetric
minimax tables, uniform and non-uniform PWL with 8/16/32 segments, multiplierless-slope PWL,
piecewise polynomials of degree 2 and 3 fitted to be faithful (every output within one ulp,
``max_error="faithful"``: the fewest pieces), and Taylor series of order 3, 5 and 7 around 0.
Sigmoid into SQ(1,15), the issue's goal format, gets the 32-segment PWL and the polynomial
rows only.
Errors are measured on every input code (65536); every unit is first checked bit-exact against
its reference on a sample of codes in simulation, then synthesized for iCE40 UP5K and ECP5-25F
with place-and-route for Fmax.

    python benchmarks/activations.py [--quick] [--no-synth] [--plot docs/activation_error.png]

Prints a Markdown table and writes benchmarks/results/activations.json (and .md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from hwnn.cores.activation import activation_core
from hwnn.fixed import SQ, UQ, to_float
from hwnn.plans.activation import fit_activation, plan_activation
from hwnn.ref.activation import activation
from hwnn.sim import run_stream

IN_FORMAT = SQ(6, 10)
OUTPUTS = {"sigmoid": (UQ(0, 8), UQ(0, 16), SQ(1, 15)), "tanh": (SQ(1, 7), SQ(1, 15))}
#: Outputs that get only the rows of :data:`GOAL_ROWS` (the issue's goal, beside its baseline).
GOAL_ONLY = {("sigmoid", "SQ(1, 15)")}
GOAL_ROWS = ("PWL non-uniform 32", "poly degree 2, faithful", "poly degree 3, faithful",
             "poly degree 2, faithful, no DSP")
TARGETS = ("ice40-up5k", "ecp5-25f")


def variants(quick=False):
    """(label, method, options, bram) for each design compared; ``bram=False`` synthesizes
    with yosys's ``-nobram``, which is what a table costs where block RAM is not spent on it."""
    hls4ml = dict(table_size=1024, input_range=(-8, 8), symmetric=False, entries="left")
    rows = [("hls4ml-style table 1024 [-8,8)", "lut", hls4ml),
            ("hls4ml-style table 1024 [-8,8), no BRAM", "lut", hls4ml, False),
            ("symmetric minimax table 1024 [-8,8)", "lut",
             dict(table_size=1024, input_range=(-8, 8))),
            ("symmetric minimax table 256 [-8,8)", "lut",
             dict(table_size=256, input_range=(-8, 8)))]
    for segments in ((16,) if quick else (8, 16, 32)):
        rows.append((f"PWL uniform {segments}", "pwl",
                     dict(segments=segments, breakpoints="uniform")))
        rows.append((f"PWL non-uniform {segments}", "pwl",
                     dict(segments=segments, breakpoints="optimal")))
    rows.append(("PWL non-uniform 16, pot2 slopes", "pwl",
                 dict(segments=16, breakpoints="optimal", slopes="pot2")))
    # Polynomials: the fewest uniform pieces that make every output faithful.
    faithful = dict(max_error="faithful")
    rows.append(("poly degree 2, faithful", "poly", dict(faithful, degree=2)))
    rows.append(("poly degree 2, faithful, no DSP", "poly",
                 dict(faithful, degree=2, multipliers="lut")))
    rows.append(("poly degree 2, faithful, table in LUTs", "poly", dict(faithful, degree=2),
                 False))
    rows.append(("poly degree 3, faithful", "poly", dict(faithful, degree=3)))
    if not quick:
        rows.append(("poly degree 2, optimal breakpoints, faithful", "poly",
                     dict(faithful, degree=2, breakpoints="optimal")))
        rows.append(("poly degree 2, 16 segments", "poly", dict(segments=16, degree=2)))
    # The truncated series around 0, input clamped where its error is least.
    for order in ((5,) if quick else (3, 5, 7)):
        rows.append((f"Taylor order {order} around 0", "taylor", dict(order=order)))
    # The literature's setting for tanh (about 2.7e-3 non-uniform, 2.3e-2 uniform interpolation).
    rows.append(("PWL non-uniform 16 on [-4,4)", "pwl",
                 dict(segments=16, breakpoints="optimal", input_range=(-4, 4))))
    return [row if len(row) == 4 else (*row, True) for row in rows]


def check_exact(plan):
    """Simulate a spread of input codes (both ends, zero, random) against the reference."""
    rng = np.random.default_rng(0)
    codes = IN_FORMAT.codes()
    sample = np.concatenate([codes[:64], codes[-64:], codes[32768 - 64:32768 + 64],
                             rng.choice(codes, 500, replace=False)])
    run = run_stream(activation_core(plan), sample, stall_in=0.1, stall_out=0.1)
    if not np.array_equal(run.outputs, activation(plan, sample)):
        raise SystemExit(f"not bit-exact: {plan.describe()}")


def measure(plan, synth, bram=True):
    from hwnn.synth import synthesize
    row = {"max_error": plan.error.max_abs, "max_ulp": plan.error.max_ulp,
           "mean_error": plan.error.mean_abs, "faithful": plan.error.faithful, **plan.cost()}
    if getattr(plan, "method", None) in ("poly", "taylor"):
        row.update(segments=plan.segments, input_range=list(plan.input_range))
    if not synth:
        return row
    for target in TARGETS:
        report = synthesize(activation_core(plan), target, name="act", fmax=True, bram=bram)
        row[target] = {"luts": report.luts, "carries": report.carries, "ffs": report.ffs,
                       "dsps": report.dsps, "brams": report.brams, "fmax_mhz": report.fmax_mhz,
                       "fits": report.fits}
    return row


def markdown(rows, synth):
    head = "| function | output | design | max error | ulp | faithful |"
    rule = "|---|---|---|---:|---:|:---:|"
    if synth:
        for target in TARGETS:
            head += f" {target} LUT | BRAM | DSP | Fmax |"
            rule += "---:|---:|---:|---:|"
    lines = [head, rule]
    for r in rows:
        design = r["design"] + (f" ({r['segments']} segments)" if "segments" in r
                                and r["design"].startswith("poly") else "")
        line = (f"| {r['function']} | {r['out_format']} | {design} | {r['max_error']:.2e} | "
                f"{r['max_ulp']:.2f} | {'yes' if r['faithful'] else ''} |")
        if synth:
            for target in TARGETS:
                t = r[target]
                fmax = f"{t['fmax_mhz']:.0f}" if t["fmax_mhz"] else "—"
                line += f" {t['luts']} | {t['brams']} | {t['dsps']} | {fmax} |"
        lines.append(line)
    return "\n".join(lines)


def plot(plans, path):
    """Error against input for a few plans (needs the optional matplotlib extra)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install -e '.[plot]'") from None
    codes = IN_FORMAT.codes()
    x = to_float(codes, IN_FORMAT)
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for label, plan in plans:
        y = to_float(activation(plan, codes), plan.out_format)
        # |error| on a log scale: the series' error and a faithful unit's are 10^4 apart.
        error = np.maximum(np.abs(y - plan.function(x)), 1e-7)
        ax.plot(x, error, lw=0.7, label=f"{label} (max {plan.error.max_abs:.1e})")
    ax.axhline(2.0 ** -15, color="k", lw=0.8, ls="--", label="one output ulp (2^-15)")
    ax.set_yscale("log")
    ax.set_xlim(-8, 8)
    ax.set_xlabel("input x")
    ax.set_ylabel("|output − tanh(x)|")
    ax.set_title(f"tanh, input {IN_FORMAT}, output SQ(1, 15): error on every input code")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3)
    ax.grid(alpha=0.3)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    print(f"wrote {path}", file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer designs, 16-bit output only")
    parser.add_argument("--no-synth", action="store_true", help="errors and ROM sizes only")
    parser.add_argument("--plot", metavar="PNG", help="also plot error against input (tanh)")
    parser.add_argument("--json",
                        default=str(Path(__file__).parent / "results" / "activations.json"))
    args = parser.parse_args(argv)
    synth = not args.no_synth

    rows, plotted = [], []
    for function, outputs in OUTPUTS.items():
        for out_format in (outputs[1:] if args.quick else outputs):
            for label, method, options, bram in variants(args.quick):
                if (function, str(out_format)) in GOAL_ONLY and label not in GOAL_ROWS:
                    continue
                started = time.monotonic()
                print(f"{function} {out_format} {label}...", file=sys.stderr, flush=True)
                if "max_error" in options:
                    options = dict(options)
                    plan = fit_activation(function, IN_FORMAT, out_format,
                                          options.pop("max_error"), method=method, **options)
                else:
                    plan = plan_activation(function, IN_FORMAT, out_format, method=method,
                                           **options)
                check_exact(plan)
                row = {"function": function, "out_format": str(out_format), "design": label,
                       **measure(plan, synth, bram)}
                row["seconds"] = round(time.monotonic() - started, 1)
                rows.append(row)
                if function == "tanh" and out_format.width == 16 and label in (
                        "hls4ml-style table 1024 [-8,8)", "PWL non-uniform 16",
                        "PWL non-uniform 32", "poly degree 2, faithful",
                        "Taylor order 5 around 0"):
                    plotted.append((label, plan))
    table = markdown(rows, synth)
    print(table)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "activations", "in_format": str(IN_FORMAT),
                               "rows": rows}, indent=2) + "\n")
    out.with_suffix(".md").write_text(table + "\n")
    if args.plot:
        plot(plotted, args.plot)


if __name__ == "__main__":
    main()
