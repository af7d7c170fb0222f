"""Reproduce the bidirectional-LSTM equalizer's figures: bit error rates of no equalizer, the
float model and the bit-exact quantized model; a bit-exact simulation; synthesis with Fmax and
samples per second. Writes ``results.json`` beside this file.

    python examples/bilstm_equalizer/run.py              # everything (a few minutes)
    python examples/bilstm_equalizer/run.py --no-synth   # BER and simulation only

The spec and weights are the ones ``hwnn demo`` ships (``hwnn/data/bilstm_equalizer.*``,
weights written by ``train.py``). Steps:

1. Bit error rates on ``--frames`` test frames from :func:`hwnn.channel.transmit` with
   :data:`hwnn.demo.TEST_SEED` (training used other seeds) at the training SNR, and at the
   other noise levels of :data:`SIGMAS` (the model was trained at one only): the float model
   (``design.float_model``: float64, unquantized weights) on the real received samples, the
   bit-exact reference (``design.reference``, which the core matches bit for bit) on the
   samples quantized as ``hwnn sim --inputs`` reads them (:func:`hwnn.demo.bit_errors`, which
   also gives the 95 % confidence interval of their difference).
2. Simulation of ``--sim-frames`` frames back to back, without stalls, on a compiled engine:
   outputs equal to the reference's, the cycles against the core's timing model
   (``Network.schedule``, checked by ``flow.simulate``), cycles per sample.
3. Synthesis for iCE40 UP5K and ECP5-25F with place-and-route for Fmax; samples per second =
   Fmax / cycles per sample (``Network.period`` of back-to-back frames).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from hwnn.channel import transmit
from hwnn.demo import DATA, DEMO_NAME, DEMO_TARGETS, SIGMA, TEST_SEED, bit_errors
from hwnn.demo import received_codes
from hwnn.flow import simulate, synth_reports
from hwnn.spec import Design, load_spec

__all__ = ["HERE", "SIGMAS", "SPEC", "main"]

HERE = Path(__file__).resolve().parent
SPEC = DATA / f"{DEMO_NAME}.toml"
#: Noise levels of the BER table: the training one (0.2, 14.5 dB) and its neighbours.
SIGMAS = (0.1, 0.15, 0.2, 0.25)


def _simulation(design: Design, frames: int, engine: str) -> dict:
    """Simulate ``frames`` test frames back to back on ``engine``; bit-exactness and cycles."""
    _, received = transmit(frames, design.sequence_length, SIGMA, TEST_SEED + 1)
    run = simulate(design, received_codes(design, received), engine=engine,
                   note=lambda line: print(line))
    if not run.exact:
        raise SystemExit(run.mismatch())
    samples = frames * design.sequence_length
    return {"engine": run.engine, "frames": frames, "samples": samples, "cycles": run.cycles,
            "timing_model": run.timing, "cycles_per_sample": run.cycles / samples,
            "period": run.core.period(design.sequence_length),
            "multipliers": run.core.multipliers,
            "seconds": round(run.seconds, 2), "bit_exact": True}


def _synthesis(design: Design, cycles_per_sample: float) -> dict:
    """Resources and Fmax on every target of :data:`hwnn.demo.DEMO_TARGETS`, and samples per
    second."""
    out = {}
    for report in synth_reports(design.build, design.name, DEMO_TARGETS, fmax=True,
                                note=lambda line: print(line)):
        fmax = report.fmax_mhz
        out[report.target] = {
            "luts": report.luts, "carries": report.carries, "ffs": report.ffs,
            "dsps": report.dsps, "brams": report.brams, "percent": report.percent,
            "pnr_utilization": report.pnr_utilization, "fmax_mhz": fmax, "fits": report.fits,
            "ksamples_per_s": None if fmax is None else fmax * 1e3 / cycles_per_sample,
            "notes": report.notes}
    return out


def _table(results: dict) -> str:
    """The results as the Markdown tables of the README."""
    lines = ["| σ | SNR (dB) | bits | unequalized | float | quantized (bit-exact) | "
             "quantized vs float (95 %) | decided differently |",
             "|---|---|---|---|---|---|---|---|"]
    for sigma, b in results["ber"].items():
        relative = ("-" if b["relative_difference"] is None else
                    f"{100 * b['relative_difference']:+.1f} % ± {100 * b['relative_ci95']:.1f} %")
        lines.append(f"| {sigma} | {b['snr_db']:.1f} | {b['bits']:,} | "
                     f"{b['ber_unequalized']:.4f} | {b['ber_float']:.2e} ({b['errors_float']}) | "
                     f"{b['ber_quantized']:.2e} ({b['errors_quantized']}) | {relative} | "
                     f"{b['differ']} |")
    sim = results["simulation"]
    lines += ["", f"simulation ({sim['engine']}): {sim['frames']} frames, {sim['samples']} "
                  f"samples bit-exact in {sim['cycles']} cycles = {sim['cycles_per_sample']:.2f} "
                  f"cycles/sample; timing model: {sim['timing_model']}; period "
                  f"{sim['period']} cycles per frame, {sim['multipliers']} multipliers"]
    if results.get("synthesis"):
        lines += ["", "| target | LUT | carry | FF | DSP | BRAM | logic cells (PnR) | Fmax (MHz) "
                      "| fits | k samples/s |", "|---|---|---|---|---|---|---|---|---|---|"]
        for target, r in results["synthesis"].items():
            fmax = "-" if r["fmax_mhz"] is None else f"{r['fmax_mhz']:.1f}"
            rate = "-" if r["ksamples_per_s"] is None else f"{r['ksamples_per_s']:.0f}"
            used = (r["pnr_utilization"] or {}).get(
                "ICESTORM_LC" if target.startswith("ice40") else "TRELLIS_COMB")
            cells = "-" if used is None else f"{used['used']}/{used['available']}"
            lines.append(f"| {target} | {r['luts']} | {r['carries']} | {r['ffs']} | "
                         f"{r['dsps']} | {r['brams']} | {cells} | {fmax} | "
                         f"{'yes' if r['fits'] else 'NO'} | {rate} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=20_000,
                        help="test frames of 32 symbols per noise level (default 20000)")
    parser.add_argument("--sim-frames", type=int, default=64,
                        help="frames simulated on the core (default 64)")
    parser.add_argument("--engine", default="auto", help="simulation engine (default auto)")
    parser.add_argument("--no-synth", action="store_true", help="skip synthesis")
    parser.add_argument("-o", "--output", default=str(HERE / "results.json"))
    args = parser.parse_args(argv)
    design = load_spec(SPEC)
    steps = design.sequence_length
    results, timings = {}, {}
    start = time.monotonic()
    results["ber"] = {str(sigma): bit_errors(design, args.frames, TEST_SEED, sigma)
                      for sigma in SIGMAS}
    timings["ber_s"] = round(time.monotonic() - start, 2)
    start = time.monotonic()
    results["simulation"] = _simulation(design, args.sim_frames, args.engine)
    timings["simulation_s"] = round(time.monotonic() - start, 2)
    if not args.no_synth:
        start = time.monotonic()
        results["synthesis"] = _synthesis(design, results["simulation"]["period"] / steps)
        timings["synthesis_s"] = round(time.monotonic() - start, 1)
    results["timings"] = timings
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    print(_table(results))
    print(f"timings: {timings}; wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
