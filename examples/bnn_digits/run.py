"""Reproduce the binarized digits MLP's figures: accuracy of the float model and of the bit-exact
integer reference, the check that their hidden bits agree, the folded thresholds and the
operation counts. Writes ``results.json`` beside this file.

    python examples/bnn_digits/run.py

The model is the one ``train.py`` wrote (``bnn_digits.npz``: weight bits and batch-norm
parameters under PyTorch's names). Two evaluations of it on the same input bits:

* **float**: :func:`train.float_model`, ±1 dot products and batch norm + sign in float64
  (:func:`hwnn.ref.binary.batchnorm_sign`, ties to +1), as PyTorch evaluates the trained model
  (in float64 instead of float32).
* **reference**: what the hardware computes, in integers only: each hidden layer is the
  XNOR-popcount dot product :func:`hwnn.ref.binary.binary_dot` (bipolar inputs × bipolar
  weights) followed by the folded threshold of :func:`hwnn.plans.threshold.plan_batchnorm_sign`
  applied by :func:`hwnn.ref.binary.multithreshold` (one integer threshold per neuron, the
  comparison flipped where γ < 0); the last layer is the integer dot product (the logits) and
  its argmax, the lowest class index among equal maxima.

The plan checks its thresholds against the float decision on every integer the dot product can
take, so the two must give the same hidden bits on any input; this script checks it on both
splits and stops if a single bit differs. With onnx installed it also evaluates the model as
ONNX (``export_onnx.py``; ``--onnx PATH`` saves the graph), and unless ``--no-baseline`` it
trains a full-precision MLP of the same shape on the same bits (:func:`baseline`, ~30 s).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.neural_network import MLPClassifier

from hwnn.fixed import SQ, signed_bits_for
from hwnn.metrics import bop
from hwnn.plans.threshold import plan_batchnorm_sign
from hwnn.ref.binary import batchnorm_sign, binary_dot, dot_range, multithreshold

__all__ = ["HERE", "CHUNK", "train", "export_onnx", "load_model", "dot_format",
           "threshold_plans", "reference", "exact_zeros", "evaluate", "baseline", "main"]

HERE = Path(__file__).resolve().parent
#: Images per call of ``binary_dot`` (about 34 MB of temporaries for a 256 × 256 layer).
CHUNK = 64


def _load(name: str, file: str):
    """``file`` beside this script, loaded by path under ``name`` (another example's ``train``
    may already be imported), shared with whoever loaded it first (the tests)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


train = _load("bnn_digits_train", "train.py")
#: The ONNX export and its comparison, when onnx (an optional dependency) is installed.
export_onnx = (_load("bnn_digits_export_onnx", "export_onnx.py")
               if importlib.util.find_spec("onnx") is not None else None)


def load_model(path=train.WEIGHTS) -> dict:
    """The arrays of a model saved by ``train.py`` (``float_accuracy`` included)."""
    with np.load(path) as archive:
        return dict(archive)


def _bn(model: dict, bn: str) -> tuple:
    return tuple(model[f"{bn}.{field}"] for field in train.BN_FIELDS)


def dot_format(n_in: int):
    """``SQ(b, 0)``, the narrowest integer format holding a bipolar dot product of length
    ``n_in`` (``[−n_in, n_in]``): the hidden layers' threshold input."""
    return SQ(signed_bits_for(*dot_range(n_in, "bipolar")), 0)


def threshold_plans(model: dict) -> list:
    """The folded batch norm + sign of each hidden layer: a one-bit
    :class:`~hwnn.plans.threshold.ThresholdPlan` per layer, on the layer's dot product."""
    return [plan_batchnorm_sign(dot_format(model[f"{fc}.weight"].shape[1]), *_bn(model, bn),
                                eps=train.EPS)
            for fc, bn in train.HIDDEN_LAYERS]


def _dot(bits: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """:func:`binary_dot` of bipolar ``bits`` ``(n, N)`` with the bipolar rows of ``weight``,
    :data:`CHUNK` images at a time (it holds an ``(images, n_out, N)`` array)."""
    return np.concatenate([binary_dot(bits[start:start + CHUNK], weight)
                           for start in range(0, len(bits), CHUNK)]).reshape(len(bits), -1)


def reference(model: dict, bits: np.ndarray, plans=None) -> tuple[list[np.ndarray], np.ndarray]:
    """The integer reference of the model: ``([h1, h2], logits)`` (int64) for input bits
    ``(n, 64)`` (bit 1 = +1), by XNOR-popcount dot products and folded thresholds (module
    docstring). ``plans`` are :func:`threshold_plans` of ``model`` (computed when omitted)."""
    plans = threshold_plans(model) if plans is None else plans
    hidden, a = [], bits
    for (fc, _), plan in zip(train.HIDDEN_LAYERS, plans):
        a = multithreshold(plan, _dot(a, model[f"{fc}.weight"]))
        hidden.append(a)
    return hidden, _dot(a, model["fc3.weight"])


def exact_zeros(model: dict, bits: np.ndarray) -> list[int]:
    """Per hidden layer, how many batch-norm outputs are exactly 0 in float64 on ``bits`` (the
    ties that ``sign(0) = +1`` decides). ``batchnorm_sign`` gives only ``z ≥ 0``; negating γ
    and β negates ``z`` exactly (rounding to nearest is symmetric), so ``z = 0`` where both
    decisions are +1."""
    counts, x = [], bits
    for fc, bn in train.HIDDEN_LAYERS:
        s = _dot(x, model[f"{fc}.weight"])
        gamma, beta, mean, var = _bn(model, bn)
        up = batchnorm_sign(s, gamma, beta, mean, var, train.EPS)
        down = batchnorm_sign(s, -gamma, -beta, mean, var, train.EPS)
        counts.append(int((up & down).sum()))
        x = up
    return counts


def _layers(model: dict, plans) -> list[dict]:
    """Sizes, formats, folded thresholds and operation counts of each layer."""
    layers = []
    names = [fc for fc, _ in train.HIDDEN_LAYERS] + ["fc3"]
    for index, fc in enumerate(names):
        n_out, n_in = model[f"{fc}.weight"].shape
        lo, hi = dot_range(n_in, "bipolar")
        layer = {"name": fc, "n_in": n_in, "n_out": n_out, "dot": "bipolar x bipolar",
                 "dot_range": [lo, hi], "dot_format": str(dot_format(n_in)),
                 "xnor": n_in * n_out, "popcount_bits": n_in * n_out,
                 "weight_bits": n_in * n_out, "bop": bop(n_in, n_out, 1, 1)}
        if index < len(plans):
            plan = plans[index]
            # Only dot products in [lo, hi] occur: a threshold at or below lo (above hi) gives
            # a constant neuron, and thresholds clipped to [lo, hi + 1] decide the same.
            t = plan.thresholds[:, 0]
            varying = (t > lo) & (t <= hi)
            layer.update({
                "output": "batch norm + sign folded: one threshold per neuron",
                "threshold_min": int(t[varying].min()) if varying.any() else None,
                "threshold_max": int(t[varying].max()) if varying.any() else None,
                "threshold_bits": signed_bits_for(lo, hi + 1),
                "descending": int(plan.descending.sum()),
                "constant": int((~varying).sum()),
                "comparisons": n_out})
        else:
            layer.update({"output": "logits, argmax (lowest index among equal maxima)",
                          "comparisons": n_out - 1})
        layers.append(layer)
    return layers


def evaluate(model: dict) -> dict:
    """Everything ``results.json`` holds (module docstring); raises ``SystemExit`` if the
    reference's hidden bits differ from the float model's anywhere."""
    train_bits, train_labels, test_bits, test_labels = train.load_split()
    plans = threshold_plans(model)
    results = {"data": {"images": len(train_labels) + len(test_labels),
                        "train": len(train_labels), "test": len(test_labels),
                        "pixel_threshold": train.PIXEL_THRESHOLD, "input_encoding": "bipolar",
                        "seed": train.SEED},
               "sizes": list(train.SIZES)}
    accuracy, agreement, onnx_results = {}, {}, {}
    for split, bits, labels in (("test", test_bits, test_labels),
                                ("train", train_bits, train_labels)):
        float_hidden, float_logits = train.float_model(model, bits)
        ref_hidden, ref_logits = reference(model, bits, plans)
        for layer, (f, r) in enumerate(zip(float_hidden, ref_hidden), start=1):
            if not np.array_equal(f, r):
                image, neuron = np.argwhere(f != r)[0]
                raise SystemExit(f"{split} image {image}: hidden layer {layer} neuron {neuron} "
                                 f"is {r[image, neuron]} in the reference, {f[image, neuron]} "
                                 f"in float")
        if not np.array_equal(float_logits, ref_logits):
            raise SystemExit(f"{split}: the logits differ although the hidden bits agree")
        top = ref_logits == ref_logits.max(axis=1, keepdims=True)
        accuracy[split] = {"float": train.accuracy(float_logits, labels),
                           "reference": train.accuracy(ref_logits, labels),
                           "correct": int((np.argmax(ref_logits, axis=1) == labels).sum()),
                           "images": len(labels)}
        if export_onnx is not None:
            onnx_results[split] = export_onnx.compare(model, train.EPS, bits, labels,
                                                      ref_hidden, ref_logits)
        agreement[split] = {"hidden_bits_equal": True,
                            "hidden_bits_compared": int(sum(h.size for h in ref_hidden)),
                            "bn_exact_zeros": exact_zeros(model, bits),
                            "argmax_ties": int((top.sum(axis=1) > 1).sum()),
                            "smallest_top_two_gap": int(np.min(np.diff(
                                np.sort(ref_logits, axis=1)[:, -2:], axis=1))),
                            "logits_range": [int(ref_logits.min()), int(ref_logits.max())],
                            "argmax_ties_with_label_among_maxima": int(
                                ((top.sum(axis=1) > 1) & top[np.arange(len(labels)),
                                                             labels]).sum())}
    accuracy["float_saved_by_train"] = float(model["float_accuracy"])
    results.update(accuracy=accuracy, agreement=agreement, layers=_layers(model, plans))
    if onnx_results:
        results["onnx"] = onnx_results
    layers = results["layers"]
    results["per_inference"] = {key: sum(layer[key] for layer in layers)
                                for key in ("xnor", "popcount_bits", "weight_bits",
                                            "comparisons", "bop")}
    results["per_inference"]["threshold_bits"] = sum(
        layer["n_out"] * (layer["threshold_bits"] + 1) for layer in layers
        if "threshold_bits" in layer)
    return results


def baseline(seed: int = train.SEED) -> dict:
    """What binarization costs: the test accuracy of a full-precision MLP of the same shape
    (64-256-256-10, real weights and biases, ReLU) on the same ±1 input bits, trained by
    scikit-learn's ``MLPClassifier`` with its defaults (Adam, lr 1e-3, batches of 200, L2 1e-4,
    at most 200 epochs, stopping when the training loss stalls) from ``seed``. Float32/64 BLAS
    sums: the figure may differ in its last image on another machine."""
    train_bits, train_labels, test_bits, test_labels = train.load_split()
    classifier = MLPClassifier(train.SIZES[1:-1], random_state=seed)
    classifier.fit(2.0 * train_bits - 1, train_labels)
    return {"model": "MLPClassifier(hidden_layer_sizes=(256, 256)), ReLU, real weights",
            "epochs": int(classifier.n_iter_),
            "accuracy": float(classifier.score(2.0 * test_bits - 1, test_labels))}


def _table(results: dict) -> str:
    """The results as the Markdown tables of the README."""
    acc = results["accuracy"]
    lines = ["| split | images | float (BN + sign, float64) | integer reference | "
             "argmax ties | BN outputs exactly 0 |", "|---|---|---|---|---|---|"]
    for split in ("test", "train"):
        a, g = acc[split], results["agreement"][split]
        lines.append(f"| {split} | {a['images']} | {a['float']:.4f} | {a['reference']:.4f} "
                     f"({a['correct']}) | {g['argmax_ties']} | "
                     f"{' / '.join(map(str, g['bn_exact_zeros']))} |")
    if "baseline" in results:
        lines += ["", f"full-precision MLP of the same shape on the same bits: "
                      f"{results['baseline']['accuracy']:.4f} on the test split"]
    lines += ["", "| layer | n_in → n_out | dot range (format) | thresholds (min…max) | "
                  "γ < 0 | constant | XNOR | BoP |", "|---|---|---|---|---|---|---|---|"]
    for layer in results["layers"]:
        folded = ("-" if "threshold_min" not in layer else
                  f"{layer['threshold_min']}…{layer['threshold_max']} "
                  f"({layer['threshold_bits']} bits)")
        lines.append(f"| {layer['name']} | {layer['n_in']} → {layer['n_out']} | "
                     f"[{layer['dot_range'][0]}, {layer['dot_range'][1]}] "
                     f"({layer['dot_format']}) | {folded} | {layer.get('descending', '-')} | "
                     f"{layer.get('constant', '-')} | {layer['xnor']:,} | {layer['bop']:,.0f} |")
    total = results["per_inference"]
    lines += ["", f"per inference: {total['xnor']:,} XNOR + popcount bits, "
                  f"{total['comparisons']} comparisons, {total['weight_bits']:,} weight bits, "
                  f"{total['threshold_bits']:,} threshold and direction bits, "
                  f"{total['bop']:,.0f} BoP"]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default=str(train.WEIGHTS))
    parser.add_argument("-o", "--output", default=str(HERE / "results.json"))
    parser.add_argument("--onnx", metavar="PATH", help="also save the model as ONNX there")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the full-precision MLP (about 30 s)")
    args = parser.parse_args(argv)
    model = load_model(args.weights)
    if args.onnx:
        if export_onnx is None:
            raise SystemExit("--onnx needs the onnx package (pip install hwnn[onnx])")
        export_onnx.onnx.save(export_onnx.build(model, train.EPS), args.onnx)
        print(f"wrote {args.onnx}")
    results = evaluate(model)
    if not args.no_baseline:
        results["baseline"] = baseline()
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    print(_table(results))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
