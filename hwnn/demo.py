"""``hwnn demo``: a bidirectional-LSTM channel equalizer through generate, simulate, bit error
rate and synthesize.

The equalizer (``hwnn/data/bilstm_equalizer.toml`` and ``.npz``, trained by
``examples/bilstm_equalizer/train.py``) takes the samples a simulated optical link receives
(:mod:`hwnn.channel`) in frames of 32 and gives one symbol logit per sample. The demo writes its
spec and weights into the output directory first, so every step it runs can be repeated by hand
with ``hwnn generate|sim|synth hwnn-demo/bilstm_equalizer.toml``. Then it

1. generates the Verilog;
2. simulates the core on received frames with random stalls on both sides, against the
   bit-exact reference (the compiled engine when a C++ compiler is there);
3. counts bit errors (PAM-2: one bit per symbol) on :data:`BER_FRAMES` test frames: the float
   model of the spec (float64, unquantized weights) against the bit-exact reference, which is
   what the core computes (step 2 checks that on its frames, whose errors it also counts);
4. synthesizes for the iCE40 UP5K and the ECP5-25F (with place-and-route for Fmax), and gives
   samples per second: Fmax over the core's cycles per sample (its timing model,
   ``Network.period``, for back-to-back frames).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from .channel import ser, snr_db, transmit
from .fixed import Overflow, Rounding, quantize, to_float
from .flow import generate, simulate, synth_reports, table_notes
from .spec import Design, load_spec
from .synth import TARGETS, format_table

__all__ = ["BER_FRAMES", "DATA", "DEMO_NAME", "DEMO_TARGETS", "DENSE_SPEC", "SIGMA",
           "SIM_FRAMES", "TEST_SEED", "bit_errors", "received_codes", "run_demo",
           "write_demo_spec", "write_dense_spec"]

#: The package's data directory: the demo's spec and weights.
DATA = Path(__file__).resolve().parent / "data"
DEMO_NAME = "bilstm_equalizer"
DEMO_TARGETS = ("ice40-up5k", "ecp5-25f")
#: The channel's noise, as in training: 14.5 dB SNR.
SIGMA = 0.2
#: Seed of the test frames (training used others; the simulated frames use the next one).
TEST_SEED = 424242
#: Test frames for the bit error rates (of 32 symbols each), and frames simulated on the core.
BER_FRAMES, SIM_FRAMES = 10_000, 6
#: Two-sided 95 % normal quantile, for the confidence interval of a difference of error counts.
Z95 = 1.96
# nextpnr's logic cells per family: what a design runs out of first (a cell holds a LUT, a
# flip-flop and carry logic; yosys counts them apart).
_LOGIC_CELLS = {"ice40": "ICESTORM_LC", "ecp5": "TRELLIS_COMB"}


#: A small dense layer (the demo before the equalizer): a fixed, quick spec that the command-line
#: tests and the simulation benchmark use.
DENSE_SPEC = """\
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


def write_dense_spec(out_dir: Path) -> Path:
    """Write :data:`DENSE_SPEC` as ``demo_fc.toml`` and its weights ``demo_fc.npz`` (fixed
    seed) into ``out_dir`` (created if missing); return the spec's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2026)
    weight = np.clip(rng.normal(0.0, 0.3, (8, 16)), -1.0, 0.99)
    bias = rng.normal(0.0, 0.1, 8)
    np.savez(out_dir / "demo_fc.npz", weight=weight, bias=bias)
    spec = out_dir / "demo_fc.toml"
    spec.write_text(DENSE_SPEC)
    return spec


def write_demo_spec(out_dir: Path) -> Path:
    """Copy the demo's spec ``bilstm_equalizer.toml`` and its weights ``bilstm_equalizer.npz``
    from the package into ``out_dir`` (created if missing); return the spec's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for suffix in (".toml", ".npz"):
        shutil.copyfile(DATA / f"{DEMO_NAME}{suffix}", out_dir / f"{DEMO_NAME}{suffix}")
    return out_dir / f"{DEMO_NAME}.toml"


def received_codes(design: Design, received: np.ndarray) -> np.ndarray:
    """Input codes ``(frames, steps, 1)`` of received samples ``(frames, steps)``: rounded
    half-even and saturated to the input format, as ``hwnn sim --inputs`` reads them."""
    return quantize(received[:, :, None], design.in_format, Rounding.HALF_EVEN, Overflow.SAT)


def _errors(logits: np.ndarray, symbols: np.ndarray) -> int:
    """How many decisions ``sign(logits)`` (0 decides +1, as :func:`hwnn.channel.ser`) differ
    from ``symbols``."""
    return int(np.count_nonzero(np.where(logits >= 0, 1.0, -1.0) != symbols))


def bit_errors(design: Design, frames: int, seed: int = TEST_SEED, sigma: float = SIGMA) -> dict:
    """Bit error rates of ``design`` (one logit per received sample) on ``frames`` frames of
    :func:`hwnn.channel.transmit` with noise ``sigma`` from ``seed``.

    Returns the number of bits, the rates without an equalizer (the sign of the received
    sample), of the float model (``design.float_model``) and of the bit-exact reference (the
    core's numbers) on the quantized samples, their error counts, the number of bits the two
    decide differently and the relative difference ``(BER_q − BER_f) / BER_f`` with its 95 %
    confidence half-width: both see the same bits, so the difference of their error counts is
    a sum of ±1 over the ``n`` bits they decide differently, whose standard deviation is at
    most ``sqrt(n)``. (PAM-2 carries one bit per symbol: bit and symbol error rates are one.)
    """
    symbols, received = transmit(frames, design.sequence_length, sigma, seed)
    floats = design.float_model(received[:, :, None])[-1][:, :, 0]
    fixed = to_float(design.reference(received_codes(design, received)),
                     design.out_format)[:, :, 0]
    errors_f, errors_q = _errors(floats, symbols), _errors(fixed, symbols)
    differ = int(np.count_nonzero((floats >= 0) != (fixed >= 0)))
    bits = int(symbols.size)
    return {"bits": bits, "snr_db": snr_db(sigma), "ber_unequalized": ser(received, symbols),
            "ber_float": errors_f / bits, "ber_quantized": errors_q / bits,
            "errors_float": errors_f, "errors_quantized": errors_q, "differ": differ,
            "relative_difference": (errors_q - errors_f) / errors_f if errors_f else None,
            "relative_ci95": float(Z95 * np.sqrt(differ) / errors_f) if errors_f else None}


def _ber_line(ber: dict) -> str:
    relative = ("" if ber["relative_difference"] is None else
                f" ({100 * ber['relative_difference']:+.0f} % ± "
                f"{100 * ber['relative_ci95']:.0f} %, 95 %)")
    return (f"  BER      {ber['bits']:,} test bits at {ber['snr_db']:.1f} dB SNR: unequalized "
            f"{ber['ber_unequalized']:.3f}, float {ber['ber_float']:.2e}, core (bit-exact "
            f"reference) {ber['ber_quantized']:.2e}{relative}")


def run_demo(out_dir: Path, *, fmax=True, progress=print) -> int:
    """Run the demo; print a short report; return the exit code: 0 when the simulation is
    bit-exact, else 1."""
    out_dir = Path(out_dir)
    spec = write_demo_spec(out_dir)
    design = load_spec(spec)
    steps = design.sequence_length
    progress(f"[1/4] generating Verilog for {design.name} into {out_dir}/")
    written = generate(design, out_dir, testbench=0)
    symbols, received = transmit(SIM_FRAMES, steps, SIGMA, TEST_SEED + 1)
    progress(f"[2/4] simulating {SIM_FRAMES} frames of {steps} received samples with random "
             f"stalls against the reference...")
    result = simulate(design, received_codes(design, received), stall=0.2, seed=1,
                      note=progress)
    progress(f"[3/4] counting bit errors on {BER_FRAMES * steps:,} test symbols: float model "
             f"and bit-exact reference...")
    ber = bit_errors(design, BER_FRAMES)
    progress(f"[4/4] synthesizing for {', '.join(DEMO_TARGETS)}"
             + (" (place-and-route for Fmax)" if fmax else "") + "...")
    reports = synth_reports(design.build, design.name, DEMO_TARGETS, fmax=fmax, note=progress)

    core = result.core
    per_sample = core.period(steps) / steps
    core_errors = _errors(to_float(result.outputs, design.out_format)[:, :, 0], symbols)
    float_errors = _errors(design.float_model(received[:, :, None])[-1][:, :, 0], symbols)
    lstm = design.plan.layers[0].plan
    print(f"hwnn demo: {design.name}, a bidirectional LSTM({lstm.input_size}→"
          f"{lstm.hidden_size}) and a linear head per step over frames of {steps} samples, "
          f"{design.in_format} in, {design.out_format} logits out, {core.multipliers} "
          f"multipliers")
    print(f"  spec     {spec}")
    print(f"  verilog  {written['verilog']}")
    print(f"  sim      {SIM_FRAMES} frames ({SIM_FRAMES * steps} samples) on {result.engine}, "
          f"{result.cycles} cycles with stalls: "
          + (f"bit-exact (core == reference); {core_errors} bit errors (float model: "
             f"{float_errors})" if result.exact else result.mismatch()))
    print(_ber_line(ber))
    print(f"  timing   {per_sample:g} cycles per sample for back-to-back frames "
          f"({core.period(steps)} per frame of {steps})")
    print()
    print(format_table(reports))
    cells = []
    for report in reports:
        family = TARGETS[report.target].family
        used = (report.pnr_utilization or {}).get(_LOGIC_CELLS.get(family))
        if used is not None:
            cells.append(f"{report.target} {used['used']}/{used['available']}")
    if cells:
        print(f"logic cells (nextpnr, timing harness included): {', '.join(cells)}")
    rates = [f"{r.target} {r.fmax_mhz * 1e3 / per_sample:.0f} k" for r in reports
             if r.fmax_mhz is not None]
    if rates:
        print(f"samples/s (Fmax / cycles per sample): {', '.join(rates)}")
    for line in table_notes(reports):
        print(line)
    for report in reports:   # what overflows, from the synthesis notes
        for note in report.notes:
            if note.startswith("does not fit"):
                print(f"{report.target}: {note}")
    return 0 if result.exact else 1
