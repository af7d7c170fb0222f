"""Reproduce the equalizer example's figures: SER float vs quantized, bit-exact simulation,
synthesis with Fmax, samples per second. Writes ``results.json`` beside this file.

    python examples/equalizer/run.py                 # everything (about 1.5 minutes)
    python examples/equalizer/run.py --no-synth      # SER and simulation only (seconds)

Steps:

1. Test frames from :func:`hwnn.channel.transmit` with :data:`TEST_SEED` (training used other
   seeds).
2. Float SER: the float model of the spec (``design.float_model``: float64, the unquantized
   weights of ``equalizer.npz``) on the real received samples. Quantized SER: the bit-exact
   reference (``design.reference``, which the core matches bit for bit) on the samples
   quantized to the input format as ``hwnn sim --inputs`` does (round half-even, saturate).
   The goal is ``|SER_q − SER_f| ≤ 5 % · SER_f``; both models see the same symbols, so the
   uncertainty of the difference comes only from the symbols they decide differently.
3. Simulation of ``--sim-frames`` frames back to back, without stalls, on the compiled engine
   (``--engine``): outputs equal to the reference's, and cycles per sample = cycles / samples.
4. Synthesis for iCE40 UP5K and ECP5-25F with place-and-route for Fmax; samples per second =
   Fmax / cycles per sample.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from hwnn.channel import snr_db, ser, transmit
from hwnn.fixed import Overflow, Rounding, quantize, to_float
from hwnn.flow import simulate, synth_reports
from hwnn.spec import Design, load_spec

from train import K1, K2, LENGTH, SEED, SIGMA, windows

__all__ = ["HERE", "SPEC", "TEST_SEED", "TARGETS", "evaluate", "linear_equalizer",
           "received_codes"]

HERE = Path(__file__).resolve().parent
SPEC = HERE / "equalizer.toml"
TEST_SEED = 424242
TARGETS = ("ice40-up5k", "ecp5-25f")
#: Two-sided 95 % normal quantile, for the confidence interval of the SER difference.
Z95 = 1.96


def received_codes(design: Design, received: np.ndarray) -> np.ndarray:
    """Input codes ``(frames, steps, 1)`` of real received samples ``(frames, steps)``: rounded
    half-even and saturated to the input format, as ``hwnn sim --inputs`` reads them."""
    return quantize(received[:, :, None], design.in_format, Rounding.HALF_EVEN, Overflow.SAT)


def linear_equalizer(taps: int, frames: int = 4000):
    """The least-squares linear equalizer of ``taps`` taps (centred as a 'same' convolution)
    plus a bias, fitted on ``frames`` frames of the training seed: a function from received
    frames ``(n, length)`` to symbol estimates ``(n, length)``. The baseline a CNN must beat."""
    symbols, received = transmit(frames, LENGTH, SIGMA, SEED)

    def features(r):
        return np.concatenate([windows(r[:, :, None], taps)[..., 0],
                               np.ones(r.shape + (1,))], axis=-1)
    solution = np.linalg.lstsq(features(received).reshape(-1, taps + 1), symbols.ravel(),
                               rcond=None)[0]
    return lambda r: features(r) @ solution


def evaluate(design: Design, frames: int, seed: int = TEST_SEED) -> dict:
    """Float and quantized SER of ``design`` on ``frames`` test frames from ``seed``.

    Returns the symbols, both SERs, the unequalized SER (sign of the received sample), the SER
    of the linear equalizer with the CNN's receptive field (``K1 + K2 − 1`` taps), the
    relative difference ``(SER_q − SER_f) / SER_f`` and its 95 % confidence half-width (the
    net count of differing decisions is a sum over the ``n`` symbols the two models decide
    differently, each ±1, so its standard deviation is at most ``sqrt(n)``).
    """
    symbols, received = transmit(frames, LENGTH, SIGMA, seed)
    floats = design.float_model(received[:, :, None])[-1][:, :, 0]
    codes = received_codes(design, received)
    quantized = to_float(design.reference(codes), design.out_format)[:, :, 0]
    ser_f, ser_q = ser(floats, symbols), ser(quantized, symbols)
    differ = int(np.count_nonzero((floats >= 0) != (quantized >= 0)))
    linear = linear_equalizer(K1 + K2 - 1)(received)
    return {"symbols": int(symbols.size), "ser_unequalized": ser(received, symbols),
            "ser_linear": ser(linear, symbols),
            "ser_float": ser_f, "ser_quantized": ser_q,
            "relative_difference": (ser_q - ser_f) / ser_f,
            "relative_difference_ci95": Z95 * np.sqrt(differ) / (ser_f * symbols.size),
            "decisions_differing": differ}


def _simulation(design: Design, frames: int, engine: str) -> dict:
    """Simulate ``frames`` test frames back to back on ``engine``; bit-exactness and cycles."""
    _, received = transmit(frames, LENGTH, SIGMA, TEST_SEED + 1)
    run = simulate(design, received_codes(design, received), engine=engine,
                   note=lambda line: print(line))
    if not run.exact:
        raise SystemExit(run.mismatch())
    samples = frames * LENGTH
    return {"engine": run.engine, "frames": frames, "samples": samples, "cycles": run.cycles,
            "cycles_per_sample": run.cycles / samples, "seconds": round(run.seconds, 2),
            "bit_exact": True}


def _synthesis(design: Design, cycles_per_sample: float) -> dict:
    """Resources and Fmax on every target of :data:`TARGETS`, and samples per second."""
    out = {}
    for report in synth_reports(design.build, design.name, TARGETS, fmax=True,
                                note=lambda line: print(line)):
        fmax = report.fmax_mhz
        out[report.target] = {
            "luts": report.luts, "carries": report.carries, "ffs": report.ffs,
            "dsps": report.dsps, "brams": report.brams, "percent": report.percent,
            "fmax_mhz": fmax, "fits": report.fits,
            "msamples_per_s": None if fmax is None else fmax / cycles_per_sample,
            "notes": report.notes}
    return out


def _table(results: dict) -> str:
    """The results as the Markdown table of the README."""
    s, sim = results["ser"], results["simulation"]
    lines = [f"SNR {results['snr_db']:.1f} dB, {s['symbols']:,} test symbols: SER unequalized "
             f"{s['ser_unequalized']:.4f}, linear (11 taps) {s['ser_linear']:.4f}, CNN float "
             f"{s['ser_float']:.5f}, quantized "
             f"{s['ser_quantized']:.5f} ({100 * s['relative_difference']:+.1f} % ± "
             f"{100 * s['relative_difference_ci95']:.1f} %, 95 %)",
             f"simulation ({sim['engine']}): {sim['frames']} frames, {sim['samples']} samples "
             f"bit-exact in {sim['cycles']} cycles = {sim['cycles_per_sample']:.3f} "
             f"cycles/sample"]
    if results.get("synthesis"):
        lines += ["", "| target | LUT | carry | FF | DSP | BRAM | Fmax (MHz) | Msamples/s |",
                  "|---|---|---|---|---|---|---|---|"]
        for target, r in results["synthesis"].items():
            fmax = "-" if r["fmax_mhz"] is None else f"{r['fmax_mhz']:.1f}"
            rate = "-" if r["msamples_per_s"] is None else f"{r['msamples_per_s']:.1f}"
            lines.append(f"| {target} | {r['luts']} | {r['carries']} | {r['ffs']} | "
                         f"{r['dsps']} | {r['brams']} | {fmax} | {rate} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=8000,
                        help="test frames of 64 symbols for the SERs (default 8000)")
    parser.add_argument("--sim-frames", type=int, default=64,
                        help="frames simulated on the core (default 64)")
    parser.add_argument("--engine", default="cxxrtl", help="simulation engine (default cxxrtl)")
    parser.add_argument("--no-synth", action="store_true", help="skip synthesis")
    parser.add_argument("-o", "--output", default=str(HERE / "results.json"))
    args = parser.parse_args(argv)
    design = load_spec(SPEC)
    results, timings = {"snr_db": snr_db(SIGMA), "sigma": SIGMA}, {}
    start = time.monotonic()
    results["ser"] = evaluate(design, args.frames)
    timings["ser_s"] = round(time.monotonic() - start, 2)
    start = time.monotonic()
    results["simulation"] = _simulation(design, args.sim_frames, args.engine)
    timings["simulation_s"] = round(time.monotonic() - start, 2)
    if not args.no_synth:
        start = time.monotonic()
        results["synthesis"] = _synthesis(design, results["simulation"]["cycles_per_sample"])
        timings["synthesis_s"] = round(time.monotonic() - start, 1)
    results["timings"] = timings
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    print(_table(results))
    print(f"timings: {timings}; wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
