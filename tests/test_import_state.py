"""ONNX LSTM/GRU nodes whose initial states are graph inputs (PyTorch's export of
``lstm(x, (h0, c0))``) import as layers with ``initial_state = true``: the float model with
those states matches ONNX's own evaluation within a derived bound, the network runs bit-exactly
from the loaded states, and ``hwnn sim --initial-state`` takes them."""

import numpy as np
import pytest

from hwnn import cli
from hwnn.flow import simulate
from hwnn.io import ModelError, UnsupportedLayer, import_model, read_model
from hwnn.spec import load_spec
from test_import_bidir import merged, tensor
from test_io_rnn import assert_within, gru_bound, lstm_bound

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

STEPS, FEATURES, HIDDEN, BATCH = 6, 2, 3, 4


def state_export(path, op, layers, directions, rng, slices=None, initial_c=True):
    """PyTorch's export of ``module(x, (h0, c0))`` with ``batch_first=True``: graph inputs
    ``x`` (N, steps, features), ``h0`` and, for an LSTM, ``c0`` (layers·directions, N,
    hidden); a single-layer module reads them whole, a stack's layer ``k`` through
    ``Slice(h0, [k·d], [(k+1)·d], axes=[0])`` (``slices`` overrides the rows). Returns the
    model and the float weights of each node."""
    gates, d = (4 if op == "LSTM" else 3), directions
    direction = "bidirectional" if d == 2 else "forward"
    nodes = [helper.make_node("Transpose", ["x"], ["x_t"], perm=[1, 0, 2])]
    inits, data, weights = [], "x_t", []
    states = ["h0", "c0"] if op == "LSTM" and initial_c else ["h0"]
    k_init = 1 / np.sqrt(HIDDEN)
    for k in range(layers):
        features = FEATURES if k == 0 else d * HIDDEN
        arrays = (rng.uniform(-k_init, k_init, (d, gates * HIDDEN, features)),
                  rng.uniform(-k_init, k_init, (d, gates * HIDDEN, HIDDEN)),
                  rng.uniform(-k_init, k_init, (d, 2 * gates * HIDDEN)))
        weights.append(arrays)
        inits += [tensor(f"l{k}_{key}", a) for key, a in zip("WRB", arrays)]
        reads = []
        for state in states:
            if layers == 1 and slices is None:
                reads.append(state)
                continue
            start, stop = slices or (k * d, (k + 1) * d)
            inits += [tensor(f"{state}{k}_starts", np.array([start])),
                      tensor(f"{state}{k}_ends", np.array([stop])),
                      tensor(f"{state}{k}_axes", np.array([0]))]
            nodes.append(helper.make_node("Slice", [state, f"{state}{k}_starts",
                                                    f"{state}{k}_ends", f"{state}{k}_axes"],
                                          [f"{state}{k}_rows"]))
            reads.append(f"{state}{k}_rows")
        if op == "LSTM" and not initial_c:
            reads.append("c_zero")
            if k == 0:
                inits.append(tensor("c_zero", np.zeros((d, BATCH, HIDDEN))))
        outputs = [f"l{k}_Y", f"l{k}_Y_h"] + ([f"l{k}_Y_c"] if op == "LSTM" else [])
        attributes = {"linear_before_reset": 1} if op == "GRU" else {}
        nodes.append(helper.make_node(op, [data, f"l{k}_W", f"l{k}_R", f"l{k}_B", "", *reads],
                                      outputs, name=f"l{k}", hidden_size=HIDDEN,
                                      direction=direction, **attributes))
        out = f"l{k}_X"
        if d == 2:
            extra, shapes = merged(f"l{k}", outputs[0], out)
            nodes += extra
            inits += shapes
        else:
            nodes.append(helper.make_node("Squeeze", [outputs[0], f"l{k}_axis"], [out]))
            inits.append(tensor(f"l{k}_axis", np.array([1])))
        data = out
    nodes.append(helper.make_node("Transpose", [data], ["y"], perm=[1, 0, 2]))
    rows = layers * d if slices is None else max(slices)
    graph = helper.make_graph(
        nodes, "stateful",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["N", STEPS, FEATURES]),
         *(helper.make_tensor_value_info(s, TensorProto.DOUBLE, [rows, "N", HIDDEN])
           for s in states)],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["a", "b", "c"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return model, weights


def per_layer(design, h0, c0, directions):
    """hwnn's initial states (layer name → {"h", "c"}) from ONNX's (layers·d, N, hidden):
    each layer's rows with the batch first."""
    states = {}
    for k, layer in enumerate(design.plan.stateful):
        rows = slice(k * directions, (k + 1) * directions)
        state = {"h": h0[rows].transpose(1, 0, 2)}
        if c0 is not None:
            state["c"] = c0[rows].transpose(1, 0, 2)
        states[layer.name] = {key: value[:, 0] if directions == 1 else value
                              for key, value in state.items()}
    return states


def bound(op, weights, x, h0, c0, directions):
    """The derived float64 bound of the last layer's outputs (each direction's, with the
    layer before's bound as its input error), every layer from its loaded state."""
    e_x = np.zeros_like(x)
    for k, (w, r, b) in enumerate(weights):
        ys, es = [], []
        for d in range(directions):
            gates = w.shape[1]
            params = (w[d], r[d], b[d, :gates], b[d, gates:])
            row = k * directions + d
            if op == "LSTM":
                params = tuple(np.concatenate([p[:HIDDEN], p[2 * HIDDEN:], p[HIDDEN:2 * HIDDEN]])
                               for p in params)   # ONNX iofc → PyTorch ifgo
                y, e_y, _ = lstm_bound(x, e_x, params, h0[row], c0[row], bool(d))
            else:
                params = tuple(np.concatenate([p[HIDDEN:2 * HIDDEN], p[:HIDDEN],
                                               p[2 * HIDDEN:]]) for p in params)   # zrh → rzn
                y, e_y, _ = gru_bound(x, e_x, params, h0[row], bool(d), True)
            ys.append(y)
            es.append(e_y)
        x, e_x = np.concatenate(ys, axis=-1), np.concatenate(es, axis=-1)
    return e_x


@pytest.mark.parametrize("op, layers, directions", [("LSTM", 1, 1), ("GRU", 1, 2),
                                                    ("LSTM", 2, 1), ("GRU", 2, 2)])
def test_loaded_states_import_and_run_bit_exactly(tmp_path, op, layers, directions):
    rng = np.random.default_rng(10 * layers + directions)
    model, weights = state_export(tmp_path / "m.onnx", op, layers, directions, rng)
    read, _ = read_model(tmp_path / "m.onnx")
    assert len(read) == layers
    for k, layer in enumerate(read):
        rows = "" if layers == 1 else f"[{k * directions}:{(k + 1) * directions}]"
        want = f"ONNX input h0{rows}" if op == "GRU" else f"ONNX inputs h0{rows}, c0{rows}"
        assert layer.initial_state == want
    spec, _ = import_model(tmp_path / "m.onnx", tmp_path / "m.toml", bits=8)
    assert spec.read_text().count("initial_state = true") == layers
    design = load_spec(spec)
    assert len(design.plan.stateful) == layers
    x = rng.uniform(-1, 1, (BATCH, STEPS, FEATURES))
    rows = layers * directions
    h0 = rng.uniform(-0.9, 0.9, (rows, BATCH, HIDDEN))
    c0 = rng.uniform(-1.5, 1.5, (rows, BATCH, HIDDEN)) if op == "LSTM" else None
    feed = {"x": x, "h0": h0, **({"c0": c0} if op == "LSTM" else {})}
    theirs = ReferenceEvaluator(model).run(None, feed)[0]
    states = per_layer(design, h0, c0, directions)
    ours = design.float_model(x, states)[-1]
    assert ours.shape == theirs.shape == (BATCH, STEPS, directions * HIDDEN)
    assert_within(ours, theirs, 2 * bound(op, weights, x, h0, c0, directions))
    # From zeros the outputs differ: the states are used.
    assert np.abs(design.float_model(x)[-1] - ours).max() > 0.01
    # Bit-exact from the states rounded to each layer's formats.
    codes = {name: {key: np.rint(np.ldexp(value, _frac(design, name, key))).astype(np.int64)
                    for key, value in state.items()} for name, state in states.items()}
    inputs = np.rint(x * 128).clip(-128, 127).astype(np.int64)
    run = simulate(design, inputs, stall=0.2, seed=layers, engine="pysim",
                   initial_states=codes)
    assert run.exact
    np.testing.assert_array_equal(run.reference, design.reference(inputs, codes))


def _frac(design, name, key) -> int:
    layer = next(layer for layer in design.plan.stateful if layer.name == name)
    plans = layer.plan.directions if layer.kind == "bidirectional" else (layer.plan,)
    fracs = {(p.state_format if key == "h" else p.cell_format).f for p in plans}
    assert len(fracs) == 1
    return fracs.pop()


def test_hwnn_sim_takes_the_imported_states(tmp_path, capsys):
    rng = np.random.default_rng(3)
    state_export(tmp_path / "m.onnx", "LSTM", 1, 1, rng)
    assert cli.main(["import", str(tmp_path / "m.onnx"), "--bits", "8", "-o",
                     str(tmp_path / "m.toml")]) == 0
    text = (tmp_path / "m.toml").read_text()
    assert "ONNX inputs h0, c0" in text and "h0_l0, c0_l0 of shape (sequences, hidden)" in text
    design = load_spec(tmp_path / "m.toml")
    np.save(tmp_path / "x.npy", rng.uniform(-1, 1, (2, STEPS, FEATURES)))
    h0, c0 = rng.uniform(-0.5, 0.5, (2, 1, 2, HIDDEN))
    np.savez(tmp_path / "s.npz", **{f"{k}0_{layer}": v[0] for (k, v), layer in
                                     zip((("h", h0), ("c", c0)), ["l0", "l0"])})
    capsys.readouterr()
    assert cli.main(["sim", str(tmp_path / "m.toml"), "--inputs", str(tmp_path / "x.npy"),
                     "--initial-state", str(tmp_path / "s.npz"), "--engine", "pysim"]) == 0
    out = capsys.readouterr().out
    assert f"{design.name}: 2 sequences bit-exact" in out


def test_refusals(tmp_path):
    rng = np.random.default_rng(4)
    # An LSTM that loads h but starts c from a zero constant.
    state_export(tmp_path / "a.onnx", "LSTM", 1, 1, rng, initial_c=False)
    with pytest.raises(UnsupportedLayer, match=r"node 'l0' \(LSTM\) loads its initial_h from "
                                               r"h0 but not its initial_c"):
        read_model(tmp_path / "a.onnx")
    # A slice of other rows than the node's directions.
    state_export(tmp_path / "b.onnx", "GRU", 2, 1, rng, slices=(0, 2))
    with pytest.raises(ModelError, match=r"node 'l0' \(GRU\) reads its initial_h from "
                                         r"h0\[0:2\] of shape \[2, None, 3\], not \(directions "
                                         r"= 1, batch, hidden_size = 3\)"):
        read_model(tmp_path / "b.onnx")
