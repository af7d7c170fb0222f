"""The digits BNN as hardware: write the network spec (bnn_digits.toml and its arrays,
bnn_digits_hw.npz), simulate it bit-exactly on the test split, synthesize it for the UP5K.

The spec is three ``binary_dense`` layers (:mod:`hwnn.spec.binary`) on bipolar pixel bits
(``in_format = "UQ(1,0)"``): ``fc1`` and ``fc2`` with one threshold per neuron, the folded
batch norm + sign of :func:`run.threshold_plans` (``hwnn.plans.threshold.plan_batchnorm_sign``),
``fc3`` without thresholds, so the network outputs the ten logits (``SQ(10,0)``); the argmax is
the host's (lowest index on ties, as :func:`run.reference`).

Usage::

    python examples/bnn_digits/hardware.py write           # bnn_digits.toml + bnn_digits_hw.npz
    python examples/bnn_digits/hardware.py bits            # test_bits.npy, for `hwnn sim`
    python examples/bnn_digits/hardware.py sim             # the test split, compiled engine
    python examples/bnn_digits/hardware.py synth           # ice40-up5k, place and route, Fmax

``sim`` and ``synth`` write their numbers into ``hardware.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

from hwnn.cores.network import Network
from hwnn.sim import run_stream
from hwnn.spec import load_spec
from hwnn.synth import synthesize as synthesize_core

HERE = Path(__file__).resolve().parent
SPEC = HERE / "bnn_digits.toml"
ARRAYS = HERE / "bnn_digits_hw.npz"
RESULTS = HERE / "hardware.json"
TARGET = "ice40-up5k"

#: The folding per layer: ``(pe, simd)``; ``ii = (n_out/pe)·(n_in/simd)`` cycles per image.
FOLDING = {"fc1": (2, 16), "fc2": (4, 32), "fc3": (1, 32)}
#: Levels of the popcount trees between pipeline registers (0: none).
POPCOUNT_PIPELINE = 1


def _load(name: str, file: str):
    spec = importlib.util.spec_from_file_location(name, HERE / file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


run = _load("bnn_digits_run", "run.py")
train = run.train


def spec_text(folding=None, pipeline=POPCOUNT_PIPELINE) -> str:
    """The TOML of the network spec with ``folding`` (default :data:`FOLDING`)."""
    folding = FOLDING if folding is None else folding
    layers = []
    comments = {"fc1": "64 -> 256, thresholds: folded bn1 + sign",
                "fc2": "256 -> 256, thresholds: folded bn2 + sign",
                "fc3": "256 -> 10, no thresholds: the logits, SQ(10,0)"}
    for name, (pe, simd) in folding.items():
        layers.append(f"""
[[params.layers]]
kind = "binary_dense"       # {comments[name]}
name = "{name}"
pe = {pe}
simd = {simd}
popcount_pipeline = {pipeline}
weight_ram = "block"
""")
    return f"""# The binarized 64-256-256-10 digits MLP (examples/bnn_digits/README.md) as
# hardware: bipolar pixel bits in (bit 1 = +1), ten logits out. Written by hardware.py.
[core]
kind = "network"
name = "bnn_digits"

[params]
in_format = "UQ(1,0)"        # one bipolar bit per pixel (pixel >= 6)
weights = "{ARRAYS.name}"
{''.join(layers)}"""


def spec_arrays(model: dict) -> dict:
    """The spec's arrays: each layer's weight bits, the hidden layers' thresholds and
    directions from :func:`run.threshold_plans`."""
    arrays = {f"{fc}.weight": model[f"{fc}.weight"].astype(np.uint8)
              for fc in ("fc1", "fc2", "fc3")}
    for (fc, _), plan in zip(train.HIDDEN_LAYERS, run.threshold_plans(model)):
        arrays[f"{fc}.thresholds"] = plan.thresholds.astype(np.int16)
        arrays[f"{fc}.descending"] = np.asarray(plan.descending, dtype=bool)
    return arrays


def write(spec=SPEC, arrays=ARRAYS, folding=None) -> None:
    """Write the spec and its arrays (for the trained model in bnn_digits.npz)."""
    np.savez_compressed(arrays, **spec_arrays(run.load_model()))
    Path(spec).write_text(spec_text(folding))


def simulate(spec=SPEC, engine: str = "cxxrtl", count: int | None = None) -> dict:
    """Run the spec's network on the test split (the first ``count`` images) in ``engine``;
    compare with :func:`run.reference`: logits, predictions, accuracy."""
    _, _, bits, labels = train.load_split()
    bits, labels = bits[:count], labels[:count]
    design = load_spec(spec)
    core = Network(design.plan)
    start = time.perf_counter()
    result = run_stream(core, bits.astype(np.int64), engine=engine)
    seconds = time.perf_counter() - start
    _, want = run.reference(run.load_model(), bits)
    logits = np.asarray(result.outputs, dtype=np.int64)
    predictions = logits.argmax(axis=1)
    return {"images": len(bits), "engine": result.engine, "seconds": round(seconds, 1),
            "logits_equal": bool(np.array_equal(logits, want)),
            "predictions_equal": bool(np.array_equal(predictions, want.argmax(axis=1))),
            "correct": int((predictions == labels).sum()),
            "accuracy": float((predictions == labels).mean()),
            "ii": core.ii, "latency": core.latency,
            "measured_ii": sorted(set(np.diff(result.in_cycles).tolist())),
            "measured_latency": sorted(set(result.latencies.tolist()))}


def synthesize(spec=SPEC, timeout: float = 1500) -> dict:
    """Place and route the spec's network on the UP5K (seed 1): resources, Fmax, images/s."""
    design = load_spec(spec)
    core = Network(design.plan)
    start = time.perf_counter()
    report = synthesize_core(core, TARGET, fmax=True, pnr_timeout=timeout)
    fields = ("luts", "carries", "ffs", "brams", "fmax_mhz", "fits", "pnr_utilization", "notes")
    return {**{field: getattr(report, field) for field in fields},
            "images_per_second": (None if report.fmax_mhz is None
                                  else round(report.fmax_mhz * 1e6 / core.ii)),
            "seconds": round(time.perf_counter() - start), "ii": core.ii,
            "latency": core.latency}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("write", "bits", "sim", "synth"))
    parser.add_argument("--engine", default="cxxrtl")
    parser.add_argument("--count", type=int)
    parser.add_argument("--out", default="test_bits.npy",
                        help="bits: where to save the test split's input bits")
    args = parser.parse_args(argv)
    if args.command == "write":
        write()
        return 0
    if args.command == "bits":     # for `hwnn sim ... --inputs`
        np.save(args.out, train.load_split()[2].astype(np.int64))
        return 0
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if args.command == "sim":
        results["simulation"] = simulate(engine=args.engine, count=args.count)
    else:
        results["synthesis"] = synthesize()
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
