# amaranth: UnusedElaboratable=no
"""Importing bidirectional and stacked LSTM/GRU layers: ONNX nodes with PyTorch's Transpose and
Reshape of a bidirectional Y, consecutive nodes of a stacked module, and state_dicts with
``_reverse`` and ``_l1`` keys; the float model against ONNX's reference implementation within
the derived float64 bound, and the spec that comes out running bit-exactly."""

import numpy as np
import pytest

from hwnn.io import ModelError, UnsupportedLayer, import_model, read_model
from hwnn.io.model import FloatRecurrent, forward
from hwnn.ref.rnn_float import rnn_float
from hwnn.sim import run_stream
from hwnn.sim.frames import frame, unframe
from hwnn.spec import load_spec
from test_io_rnn import assert_within, gru_bound, lstm_bound

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

STEPS, FEATURES, HIDDEN = 5, 2, 3


def tensor(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def node_of(op, name, x, rng, features, direction="bidirectional", **attributes):
    gates, nd = (4 if op == "LSTM" else 3), (2 if direction == "bidirectional" else 1)
    k = 1 / np.sqrt(HIDDEN)
    arrays = (rng.uniform(-k, k, (nd, gates * HIDDEN, features)),
              rng.uniform(-k, k, (nd, gates * HIDDEN, HIDDEN)),
              rng.uniform(-k, k, (nd, 2 * gates * HIDDEN)))
    outputs = [f"{name}_Y", f"{name}_Y_h"] + ([f"{name}_Y_c"] if op == "LSTM" else [])
    node = helper.make_node(op, [x, f"{name}_W", f"{name}_R", f"{name}_B"], outputs, name=name,
                            hidden_size=HIDDEN, direction=direction, **attributes)
    return node, [tensor(f"{name}_{key}", a) for key, a in zip("WRB", arrays)]


def merged(name, y, out, shape=(0, 0, -1), perm=(0, 2, 1, 3)):
    """PyTorch's export of a bidirectional Y: directions beside the hidden units, merged."""
    return ([helper.make_node("Transpose", [y], [f"{name}_T"], perm=list(perm)),
             helper.make_node("Reshape", [f"{name}_T", f"{name}_shape"], [out])],
            [tensor(f"{name}_shape", np.array(shape, dtype=np.int64))])


def save(path, nodes, inits, in_shape):
    graph = helper.make_graph(
        nodes, "bi", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, list(in_shape))],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["a", "b", "c"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return model


def stacked_export(path, op, layers, rng, batch_first=True, **attributes):
    """``x (batch, steps, features)`` (or time-major) → ``layers`` bidirectional nodes, each
    Y transposed and reshaped as PyTorch's exporter does → the output in ``x``'s layout."""
    nodes, inits, data = [], [], "x"
    if batch_first:
        nodes.append(helper.make_node("Transpose", ["x"], ["x_t"], perm=[1, 0, 2]))
        data = "x_t"
    for k in range(layers):
        node, more = node_of(op, f"l{k}", data, rng, FEATURES if k == 0 else 2 * HIDDEN,
                             **attributes)
        out = f"l{k}_X" if k + 1 < layers or batch_first else "y"
        extra, shapes = merged(f"l{k}", node.output[0], out)
        nodes += [node, *extra]
        inits += more + shapes
        data = out
    if batch_first:
        nodes.append(helper.make_node("Transpose", [data], ["y"], perm=[1, 0, 2]))
    shape = ["N", STEPS, FEATURES] if batch_first else [STEPS, "N", FEATURES]
    return save(path, nodes, inits, shape)


def bound(layers, x, reset_after=True):
    """The derived float64 bound of each output of a chain of bidirectional layers (each
    direction's bound with the previous layer's as its input error)."""
    e_x = np.zeros_like(x)
    for layer in layers:
        w, ys, es = layer.weights, [], []
        for suffix, reverse in (("_l0", False), ("_l0_reverse", True)):
            params = tuple(w[f"{f}{suffix}"] for f in ("weight_ih", "weight_hh", "bias_ih",
                                                       "bias_hh"))
            zeros = np.zeros((len(x), HIDDEN))
            y, e_y, _ = (lstm_bound(x, e_x, params, zeros, zeros, reverse)
                         if layer.kind == "lstm" else
                         gru_bound(x, e_x, params, zeros, reverse, reset_after))
            ys.append(y)
            es.append(e_y)
        x, e_x = np.concatenate(ys, axis=-1), np.concatenate(es, axis=-1)
    return e_x


@pytest.mark.parametrize("op, layers, batch_first", [("LSTM", 1, True), ("GRU", 2, False),
                                                     ("LSTM", 2, True)])
def test_bidirectional_and_stacked_onnx_match_onnx(tmp_path, op, layers, batch_first):
    rng = np.random.default_rng(layers + (op == "GRU"))
    attributes = {"linear_before_reset": 1} if op == "GRU" else {}
    model = stacked_export(tmp_path / "m.onnx", op, layers, rng, batch_first, **attributes)
    read, _ = read_model(tmp_path / "m.onnx")
    assert [type(layer) for layer in read] == [FloatRecurrent] * layers
    assert all(layer.bidirectional and layer.out_size == 2 * HIDDEN for layer in read)
    x = rng.uniform(-1, 1, (3, STEPS, FEATURES))
    theirs = ReferenceEvaluator(model).run(None, {"x": x if batch_first
                                                  else x.transpose(1, 0, 2)})[0]
    theirs = theirs if batch_first else theirs.transpose(1, 0, 2)
    ours = forward(read, x)[-1]
    assert ours.shape == (3, STEPS, 2 * HIDDEN)
    assert_within(ours, theirs, 2 * bound(read, x))
    # The spec: one bidirectional layer per node, its float model the imported one, bit-exact.
    spec, npz = import_model(tmp_path / "m.onnx", tmp_path / "m.toml", bits=8)
    assert spec.read_text().count("bidirectional = true") == layers
    design = load_spec(spec)
    assert [layer.kind for layer in design.plan.layers] == ["bidirectional"] * layers
    np.testing.assert_array_equal(design.float_model(x)[-1], ours)
    codes = np.round(x * 128).clip(-128, 127).astype(np.int64)
    want = design.reference(codes)
    run = run_stream(design.build(), frame(codes), n_outputs=3 * STEPS, stall_in=0.2,
                     stall_out=0.2, seed=layers)
    np.testing.assert_array_equal(unframe(run.outputs, 3, STEPS), want)


def test_state_dict_of_a_stacked_bidirectional_module(tmp_path):
    rng = np.random.default_rng(5)
    k = 1 / np.sqrt(HIDDEN)
    state = {}
    for layer, width in ((0, FEATURES), (1, 2 * HIDDEN)):
        for suffix in ("", "_reverse"):
            state[f"rnn.weight_ih_l{layer}{suffix}"] = rng.uniform(-k, k, (4 * HIDDEN, width))
            state[f"rnn.weight_hh_l{layer}{suffix}"] = rng.uniform(-k, k, (4 * HIDDEN, HIDDEN))
            state[f"rnn.bias_ih_l{layer}{suffix}"] = rng.uniform(-k, k, 4 * HIDDEN)
            state[f"rnn.bias_hh_l{layer}{suffix}"] = rng.uniform(-k, k, 4 * HIDDEN)
    state["fc.weight"] = rng.uniform(-.5, .5, (1, 2 * HIDDEN))
    state["fc.bias"] = rng.uniform(-.2, .2, 1)
    np.savez(tmp_path / "sd.npz", **state)
    layers, _ = read_model(tmp_path / "sd.npz", "lstm:last,dense", STEPS)
    assert layers[0].num_layers == 2 and layers[0].bidirectional
    x = rng.uniform(-1, 1, (3, STEPS, FEATURES))
    module = {key[4:]: v for key, v in state.items() if key.startswith("rnn.")}
    out = rnn_float("lstm", module, x)[0]
    # lstm:last is output[:, -1] (for a bidirectional module, not h_n).
    np.testing.assert_array_equal(forward(layers, x)[0], out[:, -1])
    spec, _ = import_model(tmp_path / "sd.npz", tmp_path / "net.toml", bits=8,
                           layers="lstm:last,dense", sequence_length=STEPS, name="net")
    text = spec.read_text()
    assert "bidirectional = true" in text and "num_layers = 2" in text
    design = load_spec(spec)
    assert [(layer.name, layer.kind) for layer in design.plan.layers] == [
        ("rnn", "bidirectional"), ("rnn_l1", "bidirectional"), ("rnn_last", "last"),
        ("fc", "dense")]
    np.testing.assert_array_equal(design.float_model(x)[2], out[:, -1])


def refused(tmp_path, nodes, inits, in_shape=(STEPS, "N", FEATURES)):
    save(tmp_path / "bad.onnx", nodes, inits, in_shape)
    with pytest.raises(ModelError) as info:
        read_model(tmp_path / "bad.onnx")
    return str(info.value), info.value


def test_refusals_name_the_node(tmp_path):
    rng = np.random.default_rng(6)
    node, inits = node_of("LSTM", "rnn", "x", rng, FEATURES, direction="reverse")
    squeeze = helper.make_node("Squeeze", ["rnn_Y", "axes"], ["y"])
    axes = tensor("axes", np.array([1], dtype=np.int64))
    message, error = refused(tmp_path, [node, squeeze], inits + [axes])
    assert isinstance(error, UnsupportedLayer)
    assert "node 'rnn' (LSTM) has direction = 'reverse': a reverse-only layer" in message
    # Y_h of a bidirectional node is h_n: not hwnn's last step.
    node, inits = node_of("GRU", "rnn", "x", rng, FEATURES, linear_before_reset=1)
    extra, shapes = merged("h", "rnn_Y_h", "y", shape=(0, -1), perm=(1, 0, 2))
    message, error = refused(tmp_path, [node, *extra], inits + shapes)
    assert isinstance(error, UnsupportedLayer)
    assert "node 'rnn' (GRU): Y_h of a bidirectional node is each direction's final state" \
        in message
    # Directions after the hidden units: interleaved, not [forward; reverse].
    node, inits = node_of("LSTM", "rnn", "x", rng, FEATURES)
    extra, shapes = merged("m", "rnn_Y", "y", perm=(0, 2, 3, 1))
    message, _ = refused(tmp_path, [node, *extra], inits + shapes)
    assert "reshapes a bidirectional Y with axes ['steps', 'batch', 'channels', 'directions']" \
        in message
    # A reshape that does more than merging them.
    extra, shapes = merged("m", "rnn_Y", "y", shape=(0, -1))
    message, _ = refused(tmp_path, [node, *extra], inits + shapes)
    assert "to [0, -1]: hwnn merges its directions and channels alone" in message
    # A squeeze of the directions.
    node, inits = node_of("LSTM", "rnn", "x", rng, FEATURES)
    message, _ = refused(tmp_path, [node, squeeze], inits + [axes])
    assert "squeezes axes [1] of a tensor with axes ['steps', 'directions', 'batch', " \
           "'channels']" in message


def test_state_dict_refusals_name_the_key(tmp_path):
    rng = np.random.default_rng(7)
    k = 1 / np.sqrt(HIDDEN)
    state = {"rnn.weight_ih_l0": rng.uniform(-k, k, (4 * HIDDEN, FEATURES)),
             "rnn.weight_hh_l0": rng.uniform(-k, k, (4 * HIDDEN, HIDDEN)),
             "rnn.weight_hh_l0_reverse": rng.uniform(-k, k, (4 * HIDDEN, HIDDEN))}
    np.savez(tmp_path / "sd.npz", **state)
    with pytest.raises(ModelError, match="module 'rnn': state_dict has no "
                                         "'weight_ih_l0_reverse', which a 1-layer "
                                         "bidirectional nn.LSTM needs"):
        read_model(tmp_path / "sd.npz", "lstm", STEPS)
    state = {**{key: v for key, v in state.items() if "reverse" not in key},
             "rnn.weight_ih_l1": rng.uniform(-k, k, (4 * HIDDEN, 2 * HIDDEN)),
             "rnn.weight_hh_l1": rng.uniform(-k, k, (4 * HIDDEN, HIDDEN))}
    np.savez(tmp_path / "sd.npz", **state)
    with pytest.raises(ModelError, match=r"weight_ih_l1 must have shape \(12, 3\) \(layer 1 "
                                         r"takes the 1·3 features"):
        read_model(tmp_path / "sd.npz", "lstm", STEPS)
    np.savez(tmp_path / "sd.npz", **{**state, "rnn.weight_ih_l1x": np.zeros(2)})
    with pytest.raises(ModelError, match="module 'rnn' has 'weight_ih_l1x', which is not a "
                                         "parameter of an nn.LSTM or nn.GRU"):
        read_model(tmp_path / "sd.npz", "lstm", STEPS)
