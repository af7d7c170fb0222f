"""The trained digits BNN as ONNX, the way ``torch.onnx.export`` writes a PyTorch BNN, evaluated
with ``onnx.reference``; and where ONNX's ``Sign(0) = 0`` would differ from ``sign(0) = +1``.
``run.py`` uses it when onnx is installed (``--onnx PATH`` also saves the graph).

The graph (float32, as PyTorch exports it; opset 17): input ``input`` ``(N, 64)`` of ±1 pixels →
``MatMul`` by the ±1 weights (``BinaryLinear`` without bias, ``sign(w)`` constant-folded into
an initializer, transposed as ``nn.Linear`` exports it) → ``BatchNormalization`` (running
statistics) → ``Sign`` → … → ``MatMul`` → ``logits`` ``(N, 10)``. Nothing in it is
hwnn-specific: it is what the ONNX importer will meet (issue 12, "Import").

Ties: ONNX defines ``Sign(0) = 0``, so a batch-norm output of exactly 0 becomes a 0 that the
next layer's dot product skips, where the hardware (and FINN, Brevitas) takes +1.
:func:`compare` counts the batch-norm outputs that are exactly 0 in the ONNX evaluation, and
every hidden value where the ONNX model's ``Sign`` differs from the reference's bit, which also
counts float32 rounding moving a decision (the reference folds float64 batch norm).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from hwnn.ref.binary import to_bipolar

__all__ = ["OPSET", "build", "evaluate", "compare"]

OPSET = 17


def _layers(model: dict) -> list[tuple[str, str | None]]:
    """``[("fc1", "bn1"), …, ("fcL", None)]``: the dense layers of a saved model in order, each
    with the batch norm that follows it (none after the last)."""
    layers, index = [], 1
    while f"fc{index}.weight" in model:
        bn = f"bn{index}" if f"bn{index}.weight" in model else None
        layers.append((f"fc{index}", bn))
        index += 1
    return layers


_BN_FIELDS = ("weight", "bias", "running_mean", "running_var")


def build(model: dict, eps: float, *, hidden_outputs: bool = False) -> onnx.ModelProto:
    """The ONNX graph of ``model`` (the arrays of ``train.py``'s ``.npz``: ``fc<i>.weight``
    bits, ``bn<i>.*`` after every layer but the last) with batch-norm ``eps``, as PyTorch would
    export it (module docstring). With ``hidden_outputs`` each batch norm's output ``bn<i>`` and
    its sign ``sign<i>`` are graph outputs too."""
    nodes, initializers, extra, x = [], [], [], "input"
    for fc, bn in _layers(model):
        weight = to_bipolar(model[f"{fc}.weight"]).astype(np.float32)
        initializers.append(numpy_helper.from_array(weight.T.copy(), f"{fc}.weight_t"))
        out = "logits" if bn is None else f"{fc}_out"
        nodes.append(helper.make_node("MatMul", [x, f"{fc}.weight_t"], [out]))
        if bn is None:
            break
        initializers += [numpy_helper.from_array(model[f"{bn}.{field}"].astype(np.float32),
                                                 f"{bn}.{field}") for field in _BN_FIELDS]
        nodes.append(helper.make_node("BatchNormalization",
                                      [out, *(f"{bn}.{field}" for field in _BN_FIELDS)], [bn],
                                      epsilon=eps))
        x = "sign" + bn[2:]
        nodes.append(helper.make_node("Sign", [bn], [x]))
        extra += [(name, weight.shape[0]) for name in (bn, x)]
    n_in, n_out = model["fc1.weight"].shape[1], weight.shape[0]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", n_out])]
    if hidden_outputs:
        outputs += [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", n])
                    for name, n in extra]
    graph = helper.make_graph(
        nodes, "bnn_digits",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", n_in])], outputs,
        initializers)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(onnx_model)
    return onnx_model


def evaluate(onnx_model: onnx.ModelProto, bits: np.ndarray) -> dict:
    """The graph's outputs by ``onnx.reference`` on input bits ``(n, 64)`` fed as ±1 float32,
    by output name."""
    session = ReferenceEvaluator(onnx_model)
    names = [output.name for output in onnx_model.graph.output]
    values = session.run(None, {"input": to_bipolar(bits).astype(np.float32)})
    return dict(zip(names, values))


def compare(model: dict, eps: float, bits: np.ndarray, labels: np.ndarray, ref_hidden,
            ref_logits: np.ndarray) -> dict:
    """The ONNX model against the integer reference's hidden bits ``ref_hidden`` (one array
    per hidden layer) and ``ref_logits`` on input ``bits`` with ``labels``: per hidden layer
    the batch-norm outputs exactly 0 (``Sign`` gives 0), the smallest magnitude of one (how near
    the data comes to a tie), and the values where ``Sign`` differs from the reference's ±1;
    the images whose ONNX logits and argmax differ; the ONNX accuracy."""
    out = evaluate(build(model, eps, hidden_outputs=True), bits)
    zeros, nearest, differ = [], [], []
    for (_, bn), ref in zip(_layers(model), ref_hidden):
        zeros.append(int((out[bn] == 0).sum()))
        nearest.append(float(np.abs(out[bn]).min()))
        differ.append(int((out["sign" + bn[2:]] != to_bipolar(ref)).sum()))
    predicted = np.argmax(out["logits"], axis=1)
    return {"images": len(labels), "bn_exact_zeros": zeros, "bn_smallest_magnitude": nearest,
            "sign_differs": differ,
            "logits_differ": int((out["logits"] != ref_logits).any(axis=1).sum()),
            "argmax_differs": int((predicted != np.argmax(ref_logits, axis=1)).sum()),
            "accuracy": float(np.mean(predicted == labels))}
