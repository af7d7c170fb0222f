# amaranth: UnusedElaboratable=no
"""Importing LSTM and GRU layers: ONNX nodes with the Transpose/Squeeze nodes PyTorch's exporter
puts around them, and PyTorch state_dicts; the imported float model against ONNX's reference
implementation within a derived float64 bound, and the spec it writes."""

import numpy as np
import pytest

from hwnn.io import ModelError, UnsupportedLayer, import_model, read_model
from hwnn.io.model import FloatConv1d, FloatFlatten, FloatRecurrent, forward
from hwnn.io.rnn import gru_from_onnx, lstm_from_onnx
from hwnn.ref.rnn_float import lstm_float
from hwnn.spec import load_spec
from test_io_rnn import assert_within, gamma, gru_bound, lstm_bound

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

STEPS, FEATURES, HIDDEN, OUT = 5, 2, 3, 2


def tensor(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def onnx_weights(op, rng, hidden=HIDDEN, features=FEATURES, direction=1):
    gates = 4 if op == "LSTM" else 3
    k = 1 / np.sqrt(hidden)
    return (rng.uniform(-k, k, (direction, gates * hidden, features)),
            rng.uniform(-k, k, (direction, gates * hidden, hidden)),
            rng.uniform(-k, k, (direction, 2 * gates * hidden)))


def recurrent(op, x, name="rnn", weights=None, rng=None, **attributes):
    """The node (all outputs named) and its initializers."""
    W, R, B = weights if weights is not None else onnx_weights(op, rng)
    outputs = [f"{name}_Y", f"{name}_Y_h"] + ([f"{name}_Y_c"] if op == "LSTM" else [])
    node = helper.make_node(op, [x, f"{name}_W", f"{name}_R", f"{name}_B"], outputs, name=name,
                            hidden_size=R.shape[-1], **attributes)
    return node, [tensor(f"{name}_W", W), tensor(f"{name}_R", R), tensor(f"{name}_B", B)]


def save(path, nodes, inits, in_shape, out_rank=2):
    graph = helper.make_graph(
        nodes, "rnnnet", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE,
                                       [f"d{k}" for k in range(out_rank)])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return model


def batch_first_lstm_head(tmp_path, rng, op="LSTM"):
    """PyTorch's export of ``x (batch, steps, features)`` → batch_first LSTM → Flatten →
    Linear: Transpose, LSTM, Squeeze, Transpose, Flatten, Gemm."""
    node, inits = recurrent(op, "x_t", rng=rng,
                            **({"linear_before_reset": 1} if op == "GRU" else {}))
    w, b = rng.uniform(-.5, .5, (OUT, STEPS * HIDDEN)), rng.uniform(-.2, .2, OUT)
    nodes = [helper.make_node("Transpose", ["x"], ["x_t"], perm=[1, 0, 2]), node,
             helper.make_node("Squeeze", ["rnn_Y", "axes"], ["y_s"]),
             helper.make_node("Transpose", ["y_s"], ["y_b"], perm=[1, 0, 2]),
             helper.make_node("Flatten", ["y_b"], ["flat"], axis=1),
             helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["y"], name="fc", transB=1)]
    inits += [tensor("axes", np.array([1], dtype=np.int64)), tensor("fc_w", w),
              tensor("fc_b", b)]
    model = save(tmp_path / "model.onnx", nodes, inits, ["N", STEPS, FEATURES])
    return model, inits


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_batch_first_export_imports_and_matches_onnx(tmp_path, op):
    rng = np.random.default_rng(1 if op == "LSTM" else 2)
    model, inits = batch_first_lstm_head(tmp_path, rng, op)
    layers, _ = read_model(tmp_path / "model.onnx")
    assert [type(layer) for layer in layers] == [FloatRecurrent, FloatFlatten,
                                                 type(layers[2])]
    arrays = {t.name: numpy_helper.to_array(t) for t in inits}
    if op == "LSTM":
        want = lstm_from_onnx(arrays["rnn_W"], arrays["rnn_R"], arrays["rnn_B"])
    else:
        want = gru_from_onnx(arrays["rnn_W"], arrays["rnn_R"], arrays["rnn_B"],
                             linear_before_reset=1)[0]
    assert layers[0].weights.keys() == want.keys()
    for key in want:
        np.testing.assert_array_equal(layers[0].weights[key], want[key])
    assert layers[0].in_steps == STEPS and layers[0].kind == op.lower()
    # The float model against ONNX's reference implementation (float64): each is within the
    # derived bound of the exact result, so they are within twice it of each other.
    x = rng.uniform(-1, 1, (4, STEPS, FEATURES))
    ours = forward(layers, x)[-1]
    theirs = ReferenceEvaluator(model).run(None, {"x": x})[0]
    w = layers[0].weights
    params = (w["weight_ih_l0"], w["weight_hh_l0"], w["bias_ih_l0"], w["bias_hh_l0"])
    zeros = np.zeros((4, HIDDEN))
    y, e_y, _ = (lstm_bound(x, np.zeros_like(x), params, zeros, zeros, False) if op == "LSTM"
                 else gru_bound(x, np.zeros_like(x), params, zeros, False, True))
    fc_w, fc_b = arrays["fc_w"], arrays["fc_b"]
    flat, e_flat = y.reshape(4, -1), e_y.reshape(4, -1)  # PyTorch's (batch, steps, H) flatten
    bound = (e_flat @ abs(fc_w).T
             + gamma(flat.shape[1] + 1) * (abs(flat) @ abs(fc_w).T + abs(fc_b)))
    assert_within(ours, theirs, 2 * bound)


def test_imported_spec_runs_and_matches_its_float_model(tmp_path):
    rng = np.random.default_rng(3)
    batch_first_lstm_head(tmp_path, rng)
    spec, npz = import_model(tmp_path / "model.onnx", tmp_path / "net.toml", bits=10)
    text = spec.read_text()
    assert 'kind = "lstm"' in text and "hidden_size = 3" in text and "bits = 10" in text
    assert "sequence_length = 5" in text
    with np.load(npz) as archive:
        assert {"rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0",
                "rnn.bias_hh_l0", "fc.weight", "fc.bias"} == set(archive.files)
    design = load_spec(spec)
    layer = design.plan.layers[0]
    assert layer.kind == "lstm" and layer.plan.state_format.width == 10
    # The spec's float model (the dense weight permuted to the stream's order) is the ONNX
    # model's function.
    x = rng.uniform(-1, 1, (3, STEPS, FEATURES))
    layers, _ = read_model(tmp_path / "model.onnx")
    spec_float = design.float_model(x)[-1]
    model_float = forward(layers, x)[-1]
    flat = lstm_float(x, *(layers[0].weights[k] for k in
                           ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")))[0]
    flat = flat.reshape(3, -1)
    w = np.load(npz)["fc.weight"]
    bound = gamma(flat.shape[1] + 1) * (abs(flat) @ abs(w).T + 1)
    assert_within(spec_float, model_float, 2 * bound)
    codes = np.round(x * 512).astype(np.int64)
    assert design.reference(codes).shape == (3, OUT)


def test_lstm_then_conv_follows_the_axes(tmp_path):
    rng = np.random.default_rng(4)
    node, inits = recurrent("LSTM", "x", rng=rng)
    nodes = [node, helper.make_node("Squeeze", ["rnn_Y", "axes"], ["y_s"]),
             helper.make_node("Transpose", ["y_s"], ["y_c"], perm=[1, 2, 0]),
             helper.make_node("Conv", ["y_c", "cw"], ["y"], name="conv")]
    inits += [tensor("axes", np.array([1], dtype=np.int64)),
              tensor("cw", rng.uniform(-.5, .5, (2, HIDDEN, 2)))]
    save(tmp_path / "m.onnx", nodes, inits, [STEPS, "N", FEATURES])
    layers, _ = read_model(tmp_path / "m.onnx")
    assert layers[0].in_steps == STEPS and layers[1].weight.shape == (2, HIDDEN, 2)
    import_model(tmp_path / "m.onnx", tmp_path / "m.toml", bits=8)
    design = load_spec(tmp_path / "m.toml")
    assert [layer.kind for layer in design.plan.layers] == ["lstm", "conv1d"]


def refused(tmp_path, nodes, inits, in_shape=(STEPS, "N", FEATURES)):
    save(tmp_path / "bad.onnx", nodes, inits, list(in_shape))
    with pytest.raises(ModelError) as info:
        read_model(tmp_path / "bad.onnx")
    return info


def test_refusals_name_the_node(tmp_path):
    rng = np.random.default_rng(5)
    squeeze = helper.make_node("Squeeze", ["rnn_Y", "axes"], ["y"])
    axes = tensor("axes", np.array([1], dtype=np.int64))
    node, inits = recurrent("LSTM", "x", rng=rng, direction="reverse")
    info = refused(tmp_path, [node, helper.make_node("Squeeze", ["rnn_Y", "axes"], ["y"])],
                   inits + [axes])
    assert isinstance(info.value, UnsupportedLayer)
    assert "node 'rnn' (LSTM) has direction = 'reverse'" in str(info.value)
    node, inits = recurrent("LSTM", "x", rng=rng)
    info = refused(tmp_path, [node, helper.make_node("Squeeze", ["rnn_Y", "axes0"], ["y"])],
                   inits + [tensor("axes0", np.array([0], dtype=np.int64))])
    assert "squeezes axes [0] of a tensor with axes ['steps', 'dirs', 'batch', 'channels']" \
        in str(info.value)
    # A conv's (batch, channels, steps) output into an LSTM without the transpose.
    node, inits = recurrent("LSTM", "c", rng=rng)
    info = refused(tmp_path, [helper.make_node("Conv", ["x", "cw"], ["c"], name="conv"), node,
                              squeeze],
                   inits + [axes, tensor("cw", rng.uniform(-1, 1, (FEATURES, 2, 1)))],
                   in_shape=("N", 2, STEPS))
    assert "node 'rnn' (LSTM) reads X as (steps, batch, input), but gets a tensor with axes " \
           "['batch', 'channels', 'steps']" in str(info.value)
    # The cell state is no layer's output.
    node, inits = recurrent("LSTM", "x", rng=rng)
    info = refused(tmp_path, [node, helper.make_node("Squeeze", ["rnn_Y_c", "axes0"], ["y"])],
                   inits + [tensor("axes0", np.array([0], dtype=np.int64))])
    assert "node 'rnn' (LSTM): outputs ['rnn_Y_c'] feed other nodes" in str(info.value)


# --- PyTorch state_dict --------------------------------------------------------------------

def torch_state(rng, kind="lstm", prefix="rnn"):
    gates = 4 if kind == "lstm" else 3
    k = 1 / np.sqrt(HIDDEN)
    return {f"{prefix}.weight_ih_l0": rng.uniform(-k, k, (gates * HIDDEN, FEATURES)),
            f"{prefix}.weight_hh_l0": rng.uniform(-k, k, (gates * HIDDEN, HIDDEN)),
            f"{prefix}.bias_ih_l0": rng.uniform(-k, k, gates * HIDDEN),
            f"{prefix}.bias_hh_l0": rng.uniform(-k, k, gates * HIDDEN)}


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_state_dict_with_a_dense_head(tmp_path, kind):
    rng = np.random.default_rng(6)
    state = {**torch_state(rng, kind), "fc.weight": rng.uniform(-.5, .5, (OUT, STEPS * HIDDEN)),
             "fc.bias": rng.uniform(-.2, .2, OUT)}
    np.savez(tmp_path / "sd.npz", **state)
    layers = read_model(tmp_path / "sd.npz", f"{kind},flatten,dense", STEPS)[0]
    assert layers[0].kind == kind and layers[0].in_steps == STEPS
    # PyTorch: out = Linear(Flatten(lstm(x)[0])) with batch_first, a time-major flatten.
    x = rng.uniform(-1, 1, (3, STEPS, FEATURES))
    y = layers[0].evaluate(x).reshape(3, -1)
    want = y @ state["fc.weight"].T + state["fc.bias"]
    bound = gamma(y.shape[1] + 1) * (abs(y) @ abs(state["fc.weight"]).T + abs(state["fc.bias"]))
    assert_within(forward(layers, x)[-1], want, 2 * bound)
    import_model(tmp_path / "sd.npz", tmp_path / "net.toml", bits=8, layers=f"{kind},flatten,dense",
                 sequence_length=STEPS, name="net")
    design = load_spec(tmp_path / "net.toml")
    assert [layer.kind for layer in design.plan.layers] == [kind, "flatten", "dense"]


def test_state_dict_refusals(tmp_path):
    rng = np.random.default_rng(7)
    # (Stacked and bidirectional modules: tests/test_import_bidir.py.)
    np.savez(tmp_path / "sd.npz", **torch_state(rng))
    with pytest.raises(ModelError, match="layers says gru where .* has lstm module 'rnn'"):
        read_model(tmp_path / "sd.npz", "gru", STEPS)
    with pytest.raises(ModelError, match="'lstm' runs over sequences; give their length"):
        read_model(tmp_path / "sd.npz", "lstm")


def test_conv_then_lstm_and_the_cli(tmp_path, capsys):
    from hwnn import cli
    rng = np.random.default_rng(8)
    node, inits = recurrent("LSTM", "c_t", rng=rng)
    nodes = [helper.make_node("Conv", ["x", "cw"], ["c"], name="conv", pads=[1, 1]),
             helper.make_node("Transpose", ["c"], ["c_t"], perm=[2, 0, 1]), node,
             helper.make_node("Squeeze", ["rnn_Y", "axes"], ["y"])]
    inits += [tensor("axes", np.array([1], dtype=np.int64)),
              tensor("cw", rng.uniform(-.5, .5, (FEATURES, 1, 3)))]
    model = save(tmp_path / "m.onnx", nodes, inits, ["N", 1, STEPS], out_rank=3)
    layers, _ = read_model(tmp_path / "m.onnx")
    assert [type(layer).__name__ for layer in layers] == ["FloatConv1d", "FloatRecurrent"]
    # ONNX gives (steps, batch, hidden); hwnn's float model (sequences, steps, hidden).
    x = rng.uniform(-1, 1, (2, 1, STEPS))
    theirs = ReferenceEvaluator(model).run(None, {"x": x})[0].transpose(1, 0, 2)
    ours = forward(layers, x.transpose(0, 2, 1))[-1]
    assert ours.shape == theirs.shape == (2, STEPS, HIDDEN)
    # The conv's sums of 3 products (no bias) are within γ_3·Σ|w||x| (the same convolution of
    # |w| and |x|), and that error flows into the LSTM's bound as its input error.
    conv, lstm = layers
    magnitude = FloatConv1d(conv.name, abs(conv.weight), np.zeros(FEATURES), conv.source,
                            padding=conv.padding, in_steps=STEPS)
    magnitude = magnitude.evaluate(abs(x.transpose(0, 2, 1)))
    w = lstm.weights
    params = (w["weight_ih_l0"], w["weight_hh_l0"], w["bias_ih_l0"], w["bias_hh_l0"])
    zeros = np.zeros((2, HIDDEN))
    _, e_y, _ = lstm_bound(forward(layers, x.transpose(0, 2, 1))[0], gamma(3) * magnitude,
                           params, zeros, zeros, False)
    assert_within(ours, theirs, 2 * e_y)
    assert cli.main(["import", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "m.toml"),
                     "--bits", "10"]) == 0
    np.save(tmp_path / "x.npy", x.transpose(0, 2, 1))
    assert cli.main(["sim", str(tmp_path / "m.toml"), "--inputs", str(tmp_path / "x.npy"),
                     "--output", str(tmp_path / "y.npy"), "--engine", "pysim", "--float"]) == 0
    out = capsys.readouterr().out
    assert "2 sequences bit-exact (core == reference)" in out
    assert np.load(tmp_path / "y.npy").shape == (2, STEPS, HIDDEN)
    assert abs(np.load(tmp_path / "y.npy") - ours).max() < 0.05


def test_the_last_state_y_h_into_a_gemm(tmp_path):
    rng = np.random.default_rng(9)
    node, inits = recurrent("GRU", "x_t", rng=rng, linear_before_reset=1)
    w, b = rng.uniform(-.5, .5, (OUT, HIDDEN)), rng.uniform(-.2, .2, OUT)
    nodes = [helper.make_node("Transpose", ["x"], ["x_t"], perm=[1, 0, 2]), node,
             helper.make_node("Squeeze", ["rnn_Y_h", "axes"], ["h"]),
             helper.make_node("Gemm", ["h", "fc_w", "fc_b"], ["y"], name="fc", transB=1)]
    inits += [tensor("axes", np.array([0], dtype=np.int64)), tensor("fc_w", w),
              tensor("fc_b", b)]
    model = save(tmp_path / "m.onnx", nodes, inits, ["N", STEPS, FEATURES])
    layers, _ = read_model(tmp_path / "m.onnx")
    assert not layers[0].return_sequences
    x = rng.uniform(-1, 1, (3, STEPS, FEATURES))
    ours = forward(layers, x)[-1]
    theirs = ReferenceEvaluator(model).run(None, {"x": x})[0]
    lw = layers[0].weights
    params = (lw["weight_ih_l0"], lw["weight_hh_l0"], lw["bias_ih_l0"], lw["bias_hh_l0"])
    y, e_y, _ = gru_bound(x, np.zeros_like(x), params, np.zeros((3, HIDDEN)), False, True)
    h, e_h = y[:, -1], e_y[:, -1]
    bound = e_h @ abs(w).T + gamma(HIDDEN + 1) * (abs(h) @ abs(w).T + abs(b))
    assert_within(ours, theirs, 2 * bound)
    spec, _ = import_model(tmp_path / "m.onnx", tmp_path / "m.toml", bits=8)
    assert "return_sequences = false" in spec.read_text()
    design = load_spec(spec)
    assert [layer.kind for layer in design.plan.layers] == ["gru", "last", "dense"]
    assert design.out_lanes == OUT and design.plan.sequences == (True, False)
    # Y and Y_h both read: not a chain.
    node, inits = recurrent("LSTM", "x", rng=rng)
    info = refused(tmp_path, [node, helper.make_node("Add", ["rnn_Y", "rnn_Y_h"], ["y"])],
                   inits)
    assert "outputs ['rnn_Y', 'rnn_Y_h'] feed other nodes" in str(info.value)


def test_state_dict_last_state_into_a_dense_layer(tmp_path):
    rng = np.random.default_rng(10)
    state = {**torch_state(rng), "fc.weight": rng.uniform(-.5, .5, (OUT, HIDDEN)),
             "fc.bias": rng.uniform(-.2, .2, OUT)}
    np.savez(tmp_path / "sd.npz", **state)
    layers = read_model(tmp_path / "sd.npz", "lstm:last,dense", STEPS)[0]
    x = rng.uniform(-1, 1, (3, STEPS, FEATURES))
    h = lstm_float(x, *(state[f"rnn.{k}"] for k in ("weight_ih_l0", "weight_hh_l0",
                                                    "bias_ih_l0", "bias_hh_l0")))[0][:, -1]
    np.testing.assert_array_equal(forward(layers, x)[0], h)
    import_model(tmp_path / "sd.npz", tmp_path / "net.toml", bits=12, layers="lstm:last,dense",
                 sequence_length=STEPS, name="net")
    design = load_spec(tmp_path / "net.toml")
    assert [layer.kind for layer in design.plan.layers] == ["lstm", "last", "dense"]
    with pytest.raises(ModelError, match="flatten must follow a conv1d"):
        read_model(tmp_path / "sd.npz", "lstm:last,flatten,dense", STEPS)


def test_zero_states_computed_from_the_input_shape(tmp_path):
    # PyTorch's exporter with a dynamic batch: h0 = c0 = ConstantOfShape([1, batch, hidden]),
    # batch read off the input by Shape and Gather.
    rng = np.random.default_rng(11)
    W, R, B = onnx_weights("LSTM", rng)
    node = helper.make_node("LSTM", ["x_t", "W", "R", "B", "", "h0", "h0"],
                            ["Y", "Y_h", "Y_c"], name="rnn", hidden_size=HIDDEN)
    nodes = [helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
             helper.make_node("Unsqueeze", ["batch", "zero_axes"], ["batch1"]),
             helper.make_node("Concat", ["one", "batch1", "hidden"], ["dims"], axis=0),
             helper.make_node("ConstantOfShape", ["dims"], ["h0"],
                              value=helper.make_tensor("v", TensorProto.DOUBLE, [1], [0.0])),
             helper.make_node("Transpose", ["x"], ["x_t"], perm=[1, 0, 2]), node,
             helper.make_node("Squeeze", ["Y", "axes"], ["y_s"]),
             helper.make_node("Transpose", ["y_s"], ["y"], perm=[1, 0, 2])]
    inits = [tensor("W", W), tensor("R", R), tensor("B", B),
             tensor("zero", np.array(0, dtype=np.int64)),
             tensor("zero_axes", np.array([0], dtype=np.int64)),
             tensor("one", np.array([1], dtype=np.int64)),
             tensor("hidden", np.array([HIDDEN], dtype=np.int64)),
             tensor("axes", np.array([1], dtype=np.int64))]
    model = save(tmp_path / "m.onnx", nodes, inits, ["N", STEPS, FEATURES], out_rank=3)
    layers, _ = read_model(tmp_path / "m.onnx")
    assert len(layers) == 1 and layers[0].return_sequences
    x = rng.uniform(-1, 1, (3, STEPS, FEATURES))
    theirs = ReferenceEvaluator(model).run(None, {"x": x})[0]
    params = tuple(layers[0].weights[k] for k in ("weight_ih_l0", "weight_hh_l0",
                                                  "bias_ih_l0", "bias_hh_l0"))
    zeros = np.zeros((3, HIDDEN))
    _, e_y, _ = lstm_bound(x, np.zeros_like(x), params, zeros, zeros, False)
    assert_within(forward(layers, x)[-1], theirs, 2 * e_y)
    # A nonzero fill is a real initial state: refused.
    nodes[4] = helper.make_node("ConstantOfShape", ["dims"], ["h0"],
                                value=helper.make_tensor("v", TensorProto.DOUBLE, [1], [0.5]))
    save(tmp_path / "bad.onnx", nodes, inits, ["N", STEPS, FEATURES], out_rank=3)
    with pytest.raises(UnsupportedLayer, match=r"node 'rnn' \(LSTM\) has a nonzero initial_h "
                                               r"\(node '\(unnamed\)' \(ConstantOfShape\)\)"):
        read_model(tmp_path / "bad.onnx")


def test_the_original_gru_imports_from_linear_before_reset_0(tmp_path):
    rng = np.random.default_rng(12)
    node, inits = recurrent("GRU", "x", rng=rng)    # ONNX's default: linear_before_reset = 0
    nodes = [node, helper.make_node("Squeeze", ["rnn_Y", "axes"], ["y"])]
    inits += [tensor("axes", np.array([1], dtype=np.int64))]
    model = save(tmp_path / "m.onnx", nodes, inits, [STEPS, "N", FEATURES], out_rank=3)
    layers, _ = read_model(tmp_path / "m.onnx")
    assert layers[0].reset_after is False
    x = rng.uniform(-1, 1, (3, STEPS, FEATURES))
    theirs = ReferenceEvaluator(model).run(None, {"x": x.transpose(1, 0, 2)})[0]
    lw = layers[0].weights
    params = (lw["weight_ih_l0"], lw["weight_hh_l0"], lw["bias_ih_l0"], lw["bias_hh_l0"])
    _, e_y, _ = gru_bound(x, np.zeros_like(x), params, np.zeros((3, HIDDEN)), False, False)
    assert_within(forward(layers, x)[-1], theirs.transpose(1, 0, 2), 2 * e_y)
    spec, _ = import_model(tmp_path / "m.onnx", tmp_path / "m.toml", bits=8)
    assert "reset_after = false" in spec.read_text()
    assert load_spec(spec).plan.layers[0].plan.reset_after is False
