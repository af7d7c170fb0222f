#!/usr/bin/env python3
"""A FINN-LFC-sized binarized network (784-1024-1024-1024-10) folded onto the ECP5-85F.

Random weights (fixed seed), bipolar one-bit inputs (784 bits), one random threshold per hidden
neuron (a batch-norm + sign folded to one integer, descending for a quarter of them, as a
negative γ gives), and the last layer's ten dot products out: FINN's LFC-W1A1 topology, as
:class:`~hwnn.cores.network.Network` of four ``binary_dense`` layers. It is synthesized with
place-and-route for ``ecp5-85f`` (the timing harness of :func:`hwnn.synth.synthesize`); the
yosys and nextpnr times are measured, as the design is large for the open flow.

Folding (``FOLDING``): the weights are 2.9 Mbit and the 85F's 208 EBR hold 3.8 Mbit, so nearly
every weight must sit in block RAM, and a PE's weight memory is ``ii`` words deep (``(n_out/pe)·
(n_in/simd)`` words of ``simd`` bits). A DP16KD read gives at most 36 bits a cycle (512×36);
filling it needs ``ii ≥ 512``, and a 1024×1024 layer at ``ii = 256`` would need 128 half-empty
EBR, two such layers more than the device has. A group of ``simd`` bits is one word of at most
62 bits (:data:`hwnn.fixed.MAX_WIDTH`), so the hidden layers run at pe 64 × simd 32 (512×32 per
PE: one EBR each in its 512×36 shape, 64 per layer, ii 512) and the first at pe 32 × simd 56
(784 = 14·56, ii 448; 448×56 per PE: two EBR each, 64: no divisor of 784 up to 62 packs it
better at ii ≤ 512), the last at pe 1 × simd 32 (ii 320, 320×32: one EBR). :func:`ebr_estimate`
is that packing; yosys's own count is reported beside it.

    python benchmarks/bnn_lfc.py [--check 20] [--engine verilator] [--no-synth]
                                 [--pnr-timeout 1800] [--json benchmarks/results/bnn_lfc.json]

Prints a Markdown table and writes JSON (and the table next to it as .md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from hwnn.cores._component import inspected
from hwnn.cores.network import Network
from hwnn.fixed import SQ, UQ, signed_bits_for
from hwnn.plans.binary_dense import plan_binary_dense
from hwnn.plans.network import Layer, NetworkPlan, plan_network
from hwnn.plans.threshold import ThresholdPlan
from hwnn.ref.binary import dot_range
from hwnn.ref.network import network
from hwnn.sim import run_stream
from hwnn.synth import ToolTimeout, get_target, synthesize
from hwnn.synth.report import classify_cells, parse_stat

TARGET = "ecp5-85f"
#: nextpnr's router. Its default (router1) had routed a quarter of the 123k arcs of this design
#: after 10 minutes, its queue shrinking ever slower; router2 is the one for large designs.
ROUTER = "router2"
#: FINN's LFC: 784 inputs, three hidden layers of 1024, 10 outputs.
SIZES = (784, 1024, 1024, 1024, 10)
#: (pe, simd) per layer: ii 448, 512, 512, 320 (the module docstring says why).
FOLDING = ((32, 56), (64, 32), (64, 32), (1, 32))
#: Popcount pipeline (levels between registers) of the one-bit layers.
POPCOUNT_PIPELINE = 2
#: DP16KD (and PDPW16KD) shapes, depth × width: the 16-Kbit modes and the 18-Kbit ones.
EBR_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
#: FINN's LFC-W1A1 on a Zynq (the issue's anchor).
FINN = {"luts": 28360, "lut_kind": "LUT6", "brams": 110, "bram_kind": "RAMB36",
        "images_per_s": 356e3}


def ebr_estimate(depth: int, width: int) -> int:
    """The fewest DP16KD blocks that hold a ``depth`` × ``width`` memory read ``width`` bits at
    a time, each block in one of :data:`EBR_SHAPES` (what yosys's memory mapping can reach).

    Raises
    ------
    ValueError
        ``depth`` or ``width`` is not a positive integer.
    """
    for name, value in (("depth", depth), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return min(math.ceil(depth / d) * math.ceil(width / w) for d, w in EBR_SHAPES)


def hidden_thresholds(rng, n_in: int, n_out: int) -> ThresholdPlan:
    """One threshold per neuron of a bipolar ``n_in``-input layer, drawn in ``[−√n_in,
    √n_in]`` (inside the dot product's range ``[−n_in, n_in]``, and within one standard
    deviation of a random dot product's 0 mean, so the neurons' bits vary), a quarter of them
    descending."""
    lo, hi = dot_range(n_in, "bipolar", "bipolar")
    spread = math.isqrt(n_in)
    values = rng.integers(-spread, spread, (n_out, 1), endpoint=True)
    return ThresholdPlan(SQ(signed_bits_for(lo, hi), 0), UQ(1, 0), values,
                         rng.random(n_out) < 0.25)


def lfc_plan(sizes=SIZES, folding=FOLDING, *, seed: int = 0,
             popcount_pipeline: int = POPCOUNT_PIPELINE) -> NetworkPlan:
    """The binarized network ``sizes[0] → … → sizes[-1]``: ``binary_dense`` layers with random
    bipolar weights, folded ``folding[i] = (pe, simd)``, one threshold per hidden neuron
    (:func:`hidden_thresholds`), bipolar one-bit inputs and the last layer's dot products out.

    Raises
    ------
    ValueError
        ``folding`` has not one ``(pe, simd)`` per layer (``len(sizes) − 1``), or a layer's
        plan rejects its folding (the error names ``pe`` or ``simd``).
    """
    if len(folding) != len(sizes) - 1:
        raise ValueError(f"folding must give one (pe, simd) per layer ({len(sizes) - 1}), "
                         f"not {len(folding)}")
    rng = np.random.default_rng(seed)
    layers = []
    for index, ((n_in, n_out), (pe, simd)) in enumerate(zip(zip(sizes, sizes[1:]), folding)):
        last = index == len(folding) - 1
        weights = rng.integers(0, 2, (n_out, n_in))
        thresholds = None if last else hidden_thresholds(rng, n_in, n_out)
        plan = plan_binary_dense(weights, pe=pe, simd=simd, thresholds=thresholds,
                                 popcount_pipeline=popcount_pipeline)
        layers.append(Layer(f"fc{index + 1}", "binary_dense", plan))
    return plan_network(layers)


def scaled(scale: int) -> tuple[tuple, tuple]:
    """``(sizes, folding)`` of the LFC network with every width but the 10 outputs, every
    ``pe`` but the last layer's and every ``simd`` divided by ``scale``: the same ii per layer,
    neurons per PE and groups per vector, on narrower words and fewer PEs (the check of a
    network too large to compile quickly).

    Raises
    ------
    ValueError
        ``scale`` is not a positive integer dividing every width, pe and simd.
    """
    numbers = [*SIZES[:-1], *(pe for pe, _ in FOLDING[:-1]), *(simd for _, simd in FOLDING)]
    if (isinstance(scale, bool) or not isinstance(scale, int) or scale < 1
            or any(n % scale for n in numbers)):
        raise ValueError(f"scale must be a positive integer dividing {numbers}, not {scale!r}")
    sizes = (*(n // scale for n in SIZES[:-1]), SIZES[-1])
    folding = (*((pe // scale, simd // scale) for pe, simd in FOLDING[:-1]),
               (FOLDING[-1][0], FOLDING[-1][1] // scale))
    return sizes, folding


def layer_rows(plan: NetworkPlan) -> list[dict]:
    """Per layer: shape, folding, ii, one PE's weight memory and the EBR it packs into."""
    rows = []
    for layer in plan.layers:
        p = layer.plan
        ebr = ebr_estimate(p.ii, p.simd)
        rows.append({"layer": layer.name, "n_in": p.n_in, "n_out": p.n_out, "pe": p.pe,
                     "simd": p.simd, "ii": p.ii, "memory": f"{p.ii}x{p.simd}",
                     "ebr_per_pe": ebr, "ebr": ebr * p.pe,
                     "fill": round(p.n_in * p.n_out / (ebr * p.pe * 16384), 3)})
    return rows


def check(plan: NetworkPlan, vectors: int, engine: str, seed: int = 1) -> dict:
    """Simulate ``Network(plan)`` on ``vectors`` random input vectors (random stalls on both
    sides) with ``engine`` and compare with :func:`hwnn.ref.network.network`; returns the
    counts and the build + run time."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, (vectors, plan.layers[0].plan.n_in))
    start = time.monotonic()
    run = run_stream(Network(plan), x, stall_in=0.2, stall_out=0.2, seed=seed, engine=engine)
    seconds = time.monotonic() - start
    want = network(plan, x)
    equal = int((run.outputs == want).all(axis=1).sum())
    return {"engine": engine, "vectors": vectors, "equal": equal, "exact": equal == vectors,
            "seconds": round(seconds, 1), "sizes": [plan.layers[0].plan.n_in]
            + [layer.plan.n_out for layer in plan.layers]}


class Stopwatch:
    """A ``progress`` callback of :func:`hwnn.synth.synthesize` that times each tool run (a
    step lasts until the next one starts, the last one until :meth:`stop`)."""

    def __init__(self):
        self.steps: list[list] = []

    def __call__(self, line: str) -> None:
        now = time.monotonic()
        if self.steps:
            self.steps[-1][1] = now - self.steps[-1][2]
        print(f"  {time.strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True)
        self.steps.append([line.rstrip("…"), None, now])

    def stop(self) -> list[dict]:
        """The steps as ``{"step", "seconds"}``, the last one ending now."""
        if self.steps and self.steps[-1][1] is None:
            self.steps[-1][1] = time.monotonic() - self.steps[-1][2]
        return [{"step": line, "seconds": round(seconds, 1)} for line, seconds, _ in self.steps]


def synth(plan: NetworkPlan, pnr_timeout: float, workdir: Path, router: str = ROUTER) -> dict:
    """Synthesize and place-and-route ``Network(plan)`` for :data:`TARGET` with nextpnr's
    ``router``; the report as a dict with the tool times. A nextpnr timeout keeps yosys's counts
    (``fits`` None)."""
    watch = Stopwatch()
    base = get_target(TARGET)
    target = dataclasses.replace(base, nextpnr_args=(*base.nextpnr_args, "--router", router))
    try:
        report = synthesize(Network(plan), target, name="lfc", fmax=True, workdir=workdir,
                            pnr_timeout=pnr_timeout, progress=watch).to_dict()
    except ToolTimeout as error:
        cells = parse_stat((workdir / "design.stat.json").read_text())
        report = {"target": TARGET, "fits": None, "fmax_mhz": None,
                  **classify_cells("ecp5", cells).counts,
                  "notes": [f"nextpnr did not finish in {pnr_timeout:.0f} s: {error}"]}
    report["tool_times"] = watch.stop()
    report["router"] = router
    return report


def markdown(result: dict) -> str:
    """The layer table, the totals against FINN's and the check, from ``main``'s result."""
    layers, totals, ii = result["layers"], result.get("synth"), result["ii"]
    lines = ["| layer | n_in→n_out | pe × simd | ii | PE weight memory | EBR (packing) | fill |",
             "|---|---|---|---:|---|---:|---:|"]
    for r in layers:
        lines.append(f"| {r['layer']} | {r['n_in']}→{r['n_out']} | {r['pe']} × {r['simd']} | "
                     f"{r['ii']} | {r['memory']} | {r['pe']} × {r['ebr_per_pe']} = {r['ebr']} "
                     f"| {r['fill']:.0%} |")
    lines.append(f"\nNetwork: ii {ii} cycles (max over layers), latency {result['latency']} "
                 f"cycles; packing estimate {sum(r['ebr'] for r in layers)} EBR of 208.")
    check = result.get("check")
    if check:
        sizes = "-".join(map(str, check["sizes"]))
        lines.append(f"\nCheck ({sizes}, scale {check['scale']}): {check['equal']} of "
                     f"{check['vectors']} random vectors equal to the reference under random "
                     f"stalls ({check['engine']}, {check['seconds']:.0f} s, its build included unless "
                     f"cached).")
    if totals is None:
        return "\n".join(lines)
    fmax = totals.get("fmax_mhz")
    rate = f"{fmax * 1e6 / ii / 1e3:.0f}k" if fmax else "—"
    times = "; ".join(f"{t['step'].rstrip('…')}: {t['seconds']:.0f} s"
                      for t in totals["tool_times"])
    lines += ["", "| design | LUT4 | CCU2C | LUT4 sites | FF | block RAM | Fmax (MHz) | ii "
                  "| images/s |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
              f"| hwnn, {TARGET} | {totals['luts']} | {totals['carries']} | "
              f"{totals['luts'] + 2 * totals['carries']} | {totals['ffs']} | "
              f"{totals['brams']} DP16KD | {f'{fmax:.1f}' if fmax else '—'} | {ii} | {rate} |",
              f"| FINN LFC-W1A1, Zynq | {FINN['luts']} LUT6 | | | | {FINN['brams']} RAMB36 | | "
              f"| {FINN['images_per_s'] / 1e3:.0f}k |",
              "", f"Tool times: {times}."]
    if totals.get("pnr_utilization"):
        used = ", ".join(f"{bel} {u['used']}/{u['available']}"
                         for bel, u in sorted(totals["pnr_utilization"].items()) if u["used"])
        lines.append(f"\nnextpnr (with the timing harness): {used}.")
    lines += [f"- {note}" for note in totals.get("notes", [])]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", type=int, default=20, metavar="N",
                        help="random vectors simulated against the reference (0: none)")
    parser.add_argument("--engine", default="verilator", choices=("verilator", "cxxrtl"))
    parser.add_argument("--check-scale", type=int, default=1, metavar="S",
                        help="check the network scaled down by S (scaled(); synthesis is always "
                             "of the full one)")
    parser.add_argument("--no-synth", action="store_true", help="skip synthesis")
    parser.add_argument("--synth-from", metavar="JSON",
                        help="take the synthesis results from this earlier run's JSON instead "
                             "of synthesizing (yosys and nextpnr take about 25 minutes)")
    parser.add_argument("--pnr-timeout", type=float, default=1800.0)
    parser.add_argument("--router", default=ROUTER, choices=("router1", "router2"))
    parser.add_argument("--workdir", default="/tmp/hwnn-bnn-lfc",
                        help="where yosys and nextpnr keep their files and logs")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "bnn_lfc.json"))
    args = parser.parse_args(argv)
    plan = lfc_plan()
    core = inspected(Network(plan))
    layers = layer_rows(plan)
    result = {"benchmark": "bnn_lfc", "target": TARGET, "sizes": list(SIZES),
              "folding": [list(f) for f in FOLDING], "popcount_pipeline": POPCOUNT_PIPELINE,
              "ii": core.ii, "latency": core.latency, "layers": layers, "finn": FINN}
    if args.check:
        print(f"checking {args.check} vectors with {args.engine}...", file=sys.stderr, flush=True)
        checked = plan if args.check_scale == 1 else lfc_plan(*scaled(args.check_scale))
        result["check"] = {**check(checked, args.check, args.engine),
                           "scale": args.check_scale}
        print(f"  {result['check']}", file=sys.stderr)
        if not result["check"]["exact"]:
            raise SystemExit("the network is not bit-exact against its reference")
    totals = None
    if args.synth_from:
        totals = json.loads(Path(args.synth_from).read_text())["synth"]
        result["synth"], result["synth_from"] = totals, args.synth_from
    elif not args.no_synth:
        totals = synth(plan, args.pnr_timeout, Path(args.workdir), args.router)
        if totals.get("fmax_mhz"):
            totals["images_per_s"] = round(totals["fmax_mhz"] * 1e6 / core.ii)
        result["synth"] = totals
    text = markdown(result)
    print(text)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(text + "\n")
    print(f"wrote {out} and {out.with_suffix('.md')}", file=sys.stderr)


if __name__ == "__main__":
    main()
