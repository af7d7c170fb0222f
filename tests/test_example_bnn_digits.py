"""The binarized digits MLP example (examples/bnn_digits): the folded thresholds decide as float
batch norm + sign on the trained model's real pre-activations, the integer reference's accuracy
is the one results.json reports, the saved model has PyTorch's names, and training is
deterministic."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the digits example needs scikit-learn for its data "
                                      "(pip install hwnn[examples])")

from hwnn.plans.threshold import plan_batchnorm_sign  # noqa: E402
from hwnn.ref.binary import batchnorm_sign, binary_dot, multithreshold, to_bipolar  # noqa: E402

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "bnn_digits"
# Loaded by path under its own name (other examples have a `run`); run.py loads train.py as
# `bnn_digits_train`, which this test then shares.
_SPEC = importlib.util.spec_from_file_location("bnn_digits_run", EXAMPLE / "run.py")
run = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(run)
train = run.train


@pytest.fixture(scope="module")
def model():
    return run.load_model()


@pytest.fixture(scope="module")
def split():
    return train.load_split()


def _pre_activations(model, bits):
    """Each hidden layer's dot products, in float64 from ±1 values (not by popcounts), on the
    float model's own hidden bits."""
    hidden, _ = train.float_model(model, bits)
    inputs = [bits, *hidden[:-1]]
    return [to_bipolar(x) @ to_bipolar(model[f"{fc}.weight"]).T
            for x, (fc, _) in zip(inputs, train.HIDDEN_LAYERS)]


def test_folded_thresholds_equal_float_batchnorm_sign_on_real_pre_activations(model, split):
    train_bits, _, test_bits, _ = split
    plans = run.threshold_plans(model)
    for bits in (test_bits, train_bits):
        for plan, s, (_, bn) in zip(plans, _pre_activations(model, bits), train.HIDDEN_LAYERS):
            expected = batchnorm_sign(s, *(model[f"{bn}.{f}"] for f in train.BN_FIELDS),
                                      train.EPS)
            np.testing.assert_array_equal(multithreshold(plan, s), expected)
            # Both decisions occur in most neurons: the check is not over constants.
            assert (expected.min(axis=0) != expected.max(axis=0)).sum() > 128


def test_reference_hidden_bits_and_logits_equal_the_float_model(model, split):
    _, _, test_bits, _ = split
    float_hidden, float_logits = train.float_model(model, test_bits)
    ref_hidden, ref_logits = run.reference(model, test_bits)
    for f, r in zip(float_hidden, ref_hidden):
        np.testing.assert_array_equal(r, f)
    assert ref_logits.dtype == np.int64
    np.testing.assert_array_equal(ref_logits, float_logits)


def test_reference_accuracy_is_the_one_in_results_json(model, split):
    _, _, test_bits, test_labels = split
    results = json.loads((EXAMPLE / "results.json").read_text())
    _, logits = run.reference(model, test_bits)
    correct = int((np.argmax(logits, axis=1) == test_labels).sum())
    assert correct == results["accuracy"]["test"]["correct"]
    assert correct / len(test_labels) == results["accuracy"]["test"]["reference"]
    assert results["accuracy"]["test"]["float"] == float(model["float_accuracy"])
    assert results["accuracy"]["test"]["reference"] > 0.9


def test_argmax_ties_go_to_the_lowest_class():
    logits = np.array([[3, 7, 7, 1], [5, 5, 5, 5], [0, 0, 2, 2]])
    assert run.train.accuracy(logits, np.array([1, 0, 2])) == 1.0
    assert run.train.accuracy(logits, np.array([2, 3, 3])) == 0.0


def test_saved_model_has_pytorch_names_bits_and_shapes(model):
    shapes = {name: (value.dtype, value.shape) for name, value in model.items()}
    expected = {"float_accuracy": (np.dtype(np.float64), ())}
    sizes = train.SIZES
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        expected[f"fc{index}.weight"] = (np.dtype(np.uint8), (n_out, n_in))
    for fc, bn in train.HIDDEN_LAYERS:
        n = expected[f"{fc}.weight"][1][0]
        for field in train.BN_FIELDS:
            expected[f"{bn}.{field}"] = (np.dtype(np.float64), (n,))
        expected[f"{bn}.num_batches_tracked"] = (np.dtype(np.int64), ())
    assert shapes == expected
    for fc in ("fc1", "fc2", "fc3"):
        assert set(np.unique(model[f"{fc}.weight"])) == {0, 1}


def test_training_is_deterministic():
    first, second = (train.train(epochs=1, log=lambda line: None) for _ in range(2))
    assert first.keys() == second.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
    initial = train.initial()
    for name in ("fc1.weight", "fc2.weight", "bn1.weight", "bn2.running_mean"):
        assert not np.array_equal(first[name], initial[name])


def _needs_onnx():
    if run.export_onnx is None:
        pytest.skip("the ONNX export needs onnx (pip install hwnn[onnx])")


def test_onnx_graph_is_a_pytorch_style_bnn_and_matches_results_json(model, split):
    _needs_onnx()
    graph = run.export_onnx.build(model, train.EPS).graph
    assert [node.op_type for node in graph.node] == [
        "MatMul", "BatchNormalization", "Sign", "MatMul", "BatchNormalization", "Sign", "MatMul"]
    for initializer in graph.initializer:
        if initializer.name.endswith("weight_t"):
            values = run.export_onnx.numpy_helper.to_array(initializer)
            assert set(np.unique(values)) == {-1.0, 1.0}
    _, _, test_bits, test_labels = split
    ref_hidden, ref_logits = run.reference(model, test_bits)
    counts = run.export_onnx.compare(model, train.EPS, test_bits, test_labels, ref_hidden,
                                     ref_logits)
    assert counts == json.loads((EXAMPLE / "results.json").read_text())["onnx"]["test"]
    if sum(counts["sign_differs"]) == 0:
        assert counts["logits_differ"] == 0


def test_onnx_sign_of_zero_is_counted_where_the_reference_takes_plus_one():
    """A batch norm whose output is exactly 0 (β = 0, the running mean a dot product that
    occurs): ONNX's Sign gives 0 there, the reference's threshold +1 (ties to +1)."""
    _needs_onnx()
    tiny = {"fc1.weight": np.array([[1, 1, 0, 0], [1, 0, 1, 1]], np.uint8),
            "bn1.weight": np.array([1.0, -2.0]), "bn1.bias": np.array([0.0, 0.0]),
            "bn1.running_mean": np.array([0.0, 2.0]), "bn1.running_var": np.array([1.0, 3.0]),
            "fc2.weight": np.array([[1, 1], [1, 0], [0, 1]], np.uint8)}
    bits = np.array([[1, 0, 1, 0],     # dots 0, 2: both ties
                     [1, 1, 1, 1],     # dots 0, 2: both ties
                     [0, 0, 0, 1]])    # dots -2, 0: no tie
    plan = plan_batchnorm_sign(run.dot_format(4), tiny["bn1.weight"], tiny["bn1.bias"],
                                   tiny["bn1.running_mean"], tiny["bn1.running_var"],
                                   eps=0.0)
    hidden = multithreshold(plan, binary_dot(bits, tiny["fc1.weight"]))
    np.testing.assert_array_equal(hidden, [[1, 1], [1, 1], [0, 1]])
    logits = binary_dot(hidden, tiny["fc2.weight"])
    counts = run.export_onnx.compare(tiny, 0.0, bits, np.array([0, 0, 0]), [hidden], logits)
    assert counts["bn_exact_zeros"] == [4]
    assert counts["sign_differs"] == [4]
    assert counts["logits_differ"] == 2
