"""``hwnn demo``: a built-in dense layer through generate, simulate and synthesize.

The demo writes an ordinary spec and weights file first, so every step it runs can be repeated
by hand with ``hwnn generate|sim|synth hwnn-demo/demo_fc.toml``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .flow import generate, simulate, synth_reports, table_notes
from .sim import make_vectors
from .spec import load_spec
from .synth import format_table

__all__ = ["DEMO_SPEC", "write_demo_spec", "run_demo"]

DEMO_SPEC = """\
# A 16-input, 8-output dense layer (e.g. the hidden layer of a small channel equalizer),
# on 8 multipliers: one vector every 16 cycles, all 8 SB_MAC16 DSPs of an iCE40 UP5K.
[core]
kind = "dense"
name = "demo_fc"

[params]
in_format = "SQ(1,7)"
weight_format = "SQ(1,7)"
out_format = "SQ(4,8)"
rounding = "half_up"
overflow = "sat"
parallelism = 8
weights = "demo_fc.npz"
"""

DEMO_TARGETS = ("ice40-up5k", "ecp5-25f")


def write_demo_spec(out_dir: Path) -> Path:
    """Write ``demo_fc.toml`` and its weights ``demo_fc.npz`` (fixed seed); return the spec."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2026)
    weight = np.clip(rng.normal(0.0, 0.3, (8, 16)), -1.0, 0.99)
    bias = rng.normal(0.0, 0.1, 8)
    np.savez(out_dir / "demo_fc.npz", weight=weight, bias=bias)
    spec = out_dir / "demo_fc.toml"
    spec.write_text(DEMO_SPEC)
    return spec


def run_demo(out_dir: Path, *, fmax=True, progress=print) -> int:
    """Run the demo; print a short report; return the exit code (0 when all checks pass)."""
    spec = write_demo_spec(out_dir)
    design = load_spec(spec)
    progress(f"[1/3] generating Verilog for {design.name} into {out_dir}/")
    written = generate(design, out_dir, testbench=0)
    x = make_vectors(design.in_format, design.in_lanes, 300, seed=1)
    progress(f"[2/3] simulating {len(x)} vectors with random stalls against the reference...")
    result = simulate(design, x, stall=0.2, seed=1)

    progress(f"[3/3] synthesizing for {', '.join(DEMO_TARGETS)}"
             + (" (place-and-route for Fmax)" if fmax else "") + "...")
    reports = synth_reports(design.build, design.name, DEMO_TARGETS, fmax=fmax, note=progress)

    print(f"hwnn demo: {design.name}, dense {design.in_lanes} -> {design.out_lanes}, "
          f"{design.in_format} x {design.plan.weight_format} -> {design.out_format}, "
          f"{result.core.multipliers} multipliers, ii {result.core.ii} cycles, latency "
          f"{result.core.latency} cycles")
    print(f"  spec     {spec}")
    print(f"  verilog  {written['verilog']}")
    print(f"  sim      {len(x)} vectors, {result.cycles} cycles: "
          + ("bit-exact (core == reference)" if result.exact else result.mismatch()))
    print()
    print(format_table(reports))
    for line in table_notes(reports):
        print(line)
    fits = all(r.fits is not False for r in reports)
    return 0 if result.exact and fits else 1
