"""ONNX import: graphs built with onnx.helper, read into a network spec, checked against float."""

import sys

import numpy as np
import pytest

from hwnn import SQ, UQ
from hwnn.cli import main
from hwnn.fixed import quantize, to_float
from hwnn.io import ModelError, UnsupportedLayer, import_model
from hwnn.io.model import forward
from hwnn.ref.conv1d import conv1d_float
from hwnn.io.onnx import read_onnx
from hwnn.spec import load_spec

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def save_model(path, nodes, arrays, n_in, n_out, in_dims=None, opset=17):
    """Write a graph ``x -> nodes -> y`` with initializers ``arrays`` (float32 unless int)."""
    inits = [numpy_helper.from_array(np.asarray(a, dtype=np.int64 if k.startswith("shape")
                                                else np.float32), k)
             for k, a in arrays.items()]
    graph = helper.make_graph(
        nodes, "net", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                     in_dims or ["N", n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", n_out])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def gemm(name, x, y, w, b, **attrs):
    return helper.make_node("Gemm", [x, w, b], [y], name=name, **attrs)


def act(op, x, y, name=None, **attrs):
    return helper.make_node(op, [x], [y], name=name or op.lower(), **attrs)


def mlp(tmp_path, rng, functions=("Relu", "Relu"), sizes=(5, 7, 4, 3)):
    """Gemm (transB) -> f -> MatMul + Add -> f -> Gemm (no transB), random weights."""
    nodes, arrays = [], {}
    arrays["W0"] = rng.normal(0, 0.6, (sizes[1], sizes[0]))
    arrays["b0"] = rng.normal(0, 0.2, sizes[1])
    arrays["W1"] = rng.normal(0, 0.4, (sizes[1], sizes[2]))
    arrays["b1"] = rng.normal(0, 0.2, sizes[2])
    arrays["W2"] = rng.normal(0, 0.5, (sizes[2], sizes[3]))
    arrays["b2"] = rng.normal(0, 0.2, sizes[3])
    nodes = [gemm("fc0", "x", "h0", "W0", "b0", transB=1), act(functions[0], "h0", "a0", "act0"),
             helper.make_node("MatMul", ["a0", "W1"], ["m1"], name="fc1/MatMul"),
             helper.make_node("Add", ["m1", "b1"], ["h1"], name="fc1/Add"),
             act(functions[1], "h1", "a1", "act1"), gemm("fc2", "a1", "y", "W2", "b2")]
    return save_model(tmp_path / "mlp.onnx", nodes, arrays, sizes[0], sizes[-1])


ONNX_FUNCTIONS = {"Relu": lambda v: np.maximum(v, 0), "Clip": lambda v: np.clip(v, -1, 1),
                  "LeakyRelu": lambda v: np.where(v >= 0, v, 0.125 * v)}


def mlp_float(path, functions, x):
    """The float64 outputs of every layer of :func:`mlp`'s graph, by ONNX's definitions."""
    a = {t.name: numpy_helper.to_array(t).astype(np.float64)
         for t in onnx.load(str(path)).graph.initializer}
    h0 = x @ a["W0"].T + a["b0"]          # Gemm, transB = 1
    a0 = ONNX_FUNCTIONS[functions[0]](h0)
    h1 = a0 @ a["W1"] + a["b1"]           # MatMul + Add
    a1 = ONNX_FUNCTIONS[functions[1]](h1)
    return [h0, a0, h1, a1, a1 @ a["W2"] + a["b2"]]  # Gemm, transB = 0


# --- formats ---------------------------------------------------------------------------------

def test_formats_of_a_small_example_computed_by_hand(tmp_path):
    # fc1: x in [-1, 1]^2; row 0: 0.25 ± 0.75, row 1: -0.5 ± 1.75 -> [-2.25, 1.25] -> SQ(3, 5).
    # max|w| = 1.0 rounds to code 128 > 127 in SQ(1, 7) -> SQ(2, 6).
    # relu: [0, 1.25] -> UQ(1, 7). fc2: 0.6875 ± 0.5625 -> [0.125, 1.25] -> UQ(1, 7);
    # weight 0.5 is code 128 in SQ(0, 8) -> SQ(1, 7). sigmoid: below 1 -> UQ(0, 8).
    path = save_model(tmp_path / "m.onnx", [
        gemm("fc1", "x", "h", "W1", "b1", transB=1), act("Relu", "h", "a"),
        gemm("fc2", "a", "z", "W2", "b2"), act("Sigmoid", "z", "y")],
        {"W1": [[0.5, -0.25], [1.0, 0.75]], "b1": [0.25, -0.5], "W2": [[0.5], [0.5]],
         "b2": [0.125]}, 2, 1)
    spec, weights = import_model(path, tmp_path / "spec.toml")
    assert weights == tmp_path / "net.npz"
    plan = load_spec(spec).plan
    assert [(layer.name, layer.kind) for layer in plan.layers] == [
        ("fc1", "dense"), ("relu", "activation"), ("fc2", "dense"), ("sigmoid", "activation")]
    assert plan.in_format == SQ(1, 7)
    fc1, relu, fc2, sigmoid = plan.layers
    assert (fc1.plan.weight_format, fc1.out_format) == (SQ(2, 6), SQ(3, 5))
    assert relu.out_format == UQ(1, 7)
    assert (fc2.plan.weight_format, fc2.out_format) == (SQ(1, 7), UQ(1, 7))
    assert sigmoid.out_format == UQ(0, 8)
    text = spec.read_text()
    assert "# max|w| = 1 -> SQ(2, 6)" in text
    assert "in [-2.25, 1.25] -> SQ(3, 5)" in text
    with np.load(weights) as archive:
        np.testing.assert_array_equal(archive["fc1.weight"], [[0.5, -0.25], [1.0, 0.75]])
        np.testing.assert_array_equal(archive["fc2.weight"], [[0.5, 0.5]])
        np.testing.assert_array_equal(archive["fc2.bias"], [0.125])


def test_bits_and_calibration_set_the_formats(tmp_path):
    path = save_model(tmp_path / "m.onnx", [gemm("fc", "x", "y", "W", "b", transB=1)],
                      {"W": [[0.5, -0.25]], "b": [0.0]}, 2, 1)
    x = np.array([[3.0, 0.0], [-2.0, 1.0]])  # outputs 1.5 and -1.25
    np.save(tmp_path / "x.npy", x)
    spec, _ = import_model(path, tmp_path / "s.toml", bits=12, calibration=tmp_path / "x.npy")
    plan = load_spec(spec).plan
    assert plan.in_format == SQ(3, 9)                 # [-2, 3]
    assert plan.layers[0].plan.weight_format == SQ(1, 11)  # 0.5 is code 2048 > 2047 in SQ(0, 12)
    assert plan.out_format == SQ(2, 10)               # [-1.25, 1.5]
    for bits in (1, 25):
        with pytest.raises(ModelError, match=f"bits must be an integer from 2 to 24, not {bits}"):
            import_model(path, tmp_path / "s.toml", bits=bits)
    np.save(tmp_path / "bad.npy", np.ones((4, 3)))
    with pytest.raises(ModelError, match=r"shape \(n, 2\).*not float64 \(4, 3\)"):
        import_model(path, tmp_path / "s.toml", calibration=tmp_path / "bad.npy")


# --- the quantized network against the float one ---------------------------------------------

@pytest.mark.parametrize("functions, bits", [(("Relu", "Relu"), 8), (("LeakyRelu", "Clip"), 8),
                                             (("Relu", "Clip"), 12)])
def test_reference_within_derived_bound_of_float(tmp_path, functions, bits):
    rng = np.random.default_rng(bits)
    path = mlp(tmp_path, rng, functions)
    # LeakyRelu gets alpha 2**-3, Clip [-1, 1] (hard_tanh): rewrite the nodes' attributes.
    model = onnx.load(str(path))
    for node in model.graph.node:
        if node.op_type == "LeakyRelu":
            node.attribute.append(helper.make_attribute("alpha", 0.125))
        if node.op_type == "Clip":
            model.graph.initializer.extend([numpy_helper.from_array(np.float32(-1), "lo"),
                                            numpy_helper.from_array(np.float32(1), "hi")])
            node.input.extend(["lo", "hi"])
    onnx.save(model, str(path))
    spec, weights = import_model(path, tmp_path / "spec.toml", bits=bits)
    design = load_spec(spec)
    layers, _ = read_onnx(path)
    x = rng.uniform(-1, 1, (300, 5))
    codes = quantize(x, design.in_format)
    x_q = to_float(codes, design.in_format)
    floats = mlp_float(path, functions, x_q)
    for mine, theirs in zip(floats, forward(layers, x_q)):  # the importer's float model agrees
        np.testing.assert_allclose(theirs, mine, rtol=1e-14, atol=1e-14)
    got = to_float(design.reference(codes), design.out_format)
    e = np.zeros(x.shape[1])
    with np.load(weights) as archive:
        for layer, before in zip(design.plan.layers, [x_q] + floats[:-1]):
            if layer.kind == "dense":
                # |Wq xq + bq - (W x + b)| <= |Wq| e + |Wq - W| |x| + |bq - b|
                wq, bq = layer.plan.weight_float(), layer.plan.bias_float()
                w, b = archive[f"{layer.name}.weight"], archive[f"{layer.name}.bias"]
                e = e @ np.abs(wq).T + np.abs(before) @ np.abs(wq - w).T + np.abs(bq - b)
            # Rounding, and saturation toward a range that holds the float value, add at most
            # one output ulp; the exact activations here are 1-Lipschitz.
            e = e + layer.out_format.resolution
    assert np.all(np.abs(got - floats[-1]) <= e)
    # The bound is worst case through |Wq| (16 to 36 output ulps here); the error seen on random
    # inputs is a few ulps, and more than zero: the quantization is real.
    assert np.max(np.abs(got - floats[-1])) > 0  # quantization is visible, the check is real


# --- operators ---------------------------------------------------------------------------------

def test_batchnorm_folds_into_the_linear_layer_before(tmp_path):
    rng = np.random.default_rng(1)
    w, b = rng.normal(0, 1, (4, 3)), rng.normal(0, 1, 4)
    scale, shift = rng.uniform(0.5, 2, 4), rng.normal(0, 1, 4)
    mean, var = rng.normal(0, 1, 4), rng.uniform(0.1, 2, 4)
    bn = helper.make_node("BatchNormalization", ["h", "s", "t", "m", "v"], ["y"], name="bn",
                          epsilon=1e-3)
    path = save_model(tmp_path / "bn.onnx", [gemm("fc", "x", "h", "W", "b", transB=1), bn],
                      {"W": w, "b": b, "s": scale, "t": shift, "m": mean, "v": var}, 3, 4)
    layers, _ = read_onnx(path)
    assert len(layers) == 1 and "node 'bn' (BatchNormalization) folded in" in layers[0].source
    f32 = {k: np.float32(a).astype(np.float64) for k, a in
           {"w": w, "b": b, "s": scale, "t": shift, "m": mean, "v": var}.items()}
    x = rng.uniform(-1, 1, (50, 3))
    unfolded = (x @ f32["w"].T + f32["b"] - f32["m"]) / np.sqrt(f32["v"] + np.float32(1e-3)) \
        * f32["s"] + f32["t"]
    # Folding reorders float64 operations: equal to within a few float64 ulps.
    np.testing.assert_allclose(forward(layers, x)[-1], unfolded, rtol=1e-13, atol=1e-13)
    s = f32["s"] / np.sqrt(f32["v"] + np.float32(1e-3))
    np.testing.assert_array_equal(layers[0].weight, s[:, None] * f32["w"])
    np.testing.assert_array_equal(layers[0].bias, s * (f32["b"] - f32["m"]) + f32["t"])


def test_activations_map_to_hwnn_functions(tmp_path):
    clip06 = helper.make_node("Clip", ["a2", "zero", "six"], ["a3"], name="c6")
    clip_old = helper.make_node("Clip", ["a4"], ["a5"], name="c1", min=-1.0, max=1.0)
    nodes = [gemm("fc", "x", "h", "W", "b", transB=1),
             act("LeakyRelu", "h", "a0", alpha=0.25), act("HardSigmoid", "a0", "a1",
                                                           alpha=1 / 6, beta=0.5),
             act("Tanh", "a1", "a2"), clip06,
             helper.make_node("Clip", ["a3", "zero"], ["a4"], name="c0"), clip_old,
             act("Sigmoid", "a5", "y")]
    arrays = {"W": np.eye(2), "b": np.zeros(2), "zero": np.float32(0), "six": np.float32(6)}
    # Clip's min/max attributes are opset 6; a graph of opset 6 cannot have the input form.
    with pytest.raises(onnx.checker.ValidationError):
        save_model(tmp_path / "a.onnx", nodes, arrays, 2, 2)
    nodes[6] = helper.make_node("Clip", ["a4", "m1", "p1"], ["a5"], name="c1")
    save_model(tmp_path / "a.onnx", nodes, {**arrays, "m1": np.float32(-1),
                                            "p1": np.float32(1)}, 2, 2)
    layers, _ = read_onnx(tmp_path / "a.onnx")
    assert [(layer.name, getattr(layer, "function", None)) for layer in layers] == [
        ("fc", None), ("leakyrelu", "leaky_relu"), ("hardsigmoid", "hard_sigmoid"),
        ("tanh", "tanh"), ("c6", "relu6"), ("c0", "relu"), ("c1", "hard_tanh"),
        ("sigmoid", "sigmoid")]
    assert layers[1].leaky_shift == 2
    spec, _ = import_model(tmp_path / "a.onnx", tmp_path / "a.toml")
    assert "leaky_shift = 2" in spec.read_text()
    assert [layer.plan.function.name for layer in load_spec(spec).plan.layers[1:]] == [
        "leaky_relu", "hard_sigmoid", "tanh", "relu6", "relu", "hard_tanh", "sigmoid"]


def test_clip_attributes_of_old_opsets(tmp_path):
    path = save_model(tmp_path / "c.onnx", [gemm("fc", "x", "h", "W", "b", transB=1),
                                            act("Clip", "h", "y", "clip", min=0.0, max=6.0)],
                      {"W": np.eye(2), "b": np.zeros(2)}, 2, 2, opset=6)
    assert read_onnx(path)[0][1].function == "relu6"


def test_flatten_and_reshape_that_do_nothing(tmp_path):
    shape = helper.make_node("Constant", [], ["shape"], name="k",
                             value=numpy_helper.from_array(np.array([-1, 4], np.int64)))
    nodes = [act("Flatten", "x", "f", "flat", axis=1), shape,
             helper.make_node("Reshape", ["f", "shape"], ["r"], name="/Reshape"),
             helper.make_node("Reshape", ["r", "shape0"], ["r2"], name="r0"),
             gemm("fc", "r2", "y", "W", "b", transB=1)]
    path = save_model(tmp_path / "f.onnx", nodes,
                      {"W": np.ones((3, 4)), "b": np.zeros(3), "shape0": [0, -1]}, 4, 3,
                      in_dims=["N", 1, 2, 2])
    layers, name = read_onnx(path)
    assert name == "net" and [layer.name for layer in layers] == ["fc"]


def test_layer_names_are_unique_identifiers(tmp_path):
    nodes = [gemm("/0/Gemm", "x", "h", "W", "b", transB=1), act("Relu", "h", "a", "relu"),
             gemm("0.Gemm", "a", "h2", "W", "b", transB=1), act("Relu", "h2", "a2", "relu"),
             gemm("", "a2", "h3", "W", "b", transB=1), act("Relu", "h3", "y", "wire")]
    path = save_model(tmp_path / "n.onnx", nodes, {"W": np.eye(2), "b": np.zeros(2)}, 2, 2)
    assert [layer.name for layer in read_onnx(path)[0]] == [
        "layer_0_Gemm", "relu", "layer_0_Gemm_2", "relu_2", "gemm", "wire_"]


# --- refusals ------------------------------------------------------------------------------

def refused(tmp_path, nodes, arrays=None, error=ModelError, n_out=2, **kwargs):
    arrays = {"W": np.eye(2), "b": np.zeros(2), **(arrays or {})}
    path = save_model(tmp_path / "r.onnx", nodes, arrays, 2, n_out, **kwargs)
    with pytest.raises(error) as info:
        import_model(path, tmp_path / "r.toml")
    assert not (tmp_path / "r.toml").exists()
    return str(info.value)


FC = gemm("fc", "x", "h", "W", "b", transB=1)


@pytest.mark.parametrize("nodes, message", [
    ([FC, act("Softmax", "h", "y", "sm")],
     "node 'sm' (Softmax): hwnn does not import Softmax (it imports Gemm, MatMul"),
    ([gemm("g", "x", "y", "W", "b", transA=1)],
     "node 'g' (Gemm) has transA = 1; hwnn imports Gemm with transA = 0 only"),
    ([gemm("g", "x", "y", "W", "b", alpha=2.0)],
     "node 'g' (Gemm) has alpha = 2.0; hwnn imports Gemm with alpha = beta = 1 only"),
    ([FC, act("LeakyRelu", "h", "y", "lr")],
     "node 'lr' (LeakyRelu) has negative slope alpha = 0.01; hwnn's "
     "leaky_relu has slope 2**-k"),
    ([FC, act("LeakyRelu", "h", "y", "lr", alpha=0.3)], "alpha = 0.30000001192092896"),
    ([FC, helper.make_node("Clip", ["h", "lo", "hi"], ["y"], name="cl")],
     "node 'cl' (Clip) clips to [0.0, 4.0]; hwnn imports Clip to [0, 6] (relu6)"),
    ([FC, act("HardSigmoid", "h", "y", "hs")],
     "node 'hs' (HardSigmoid) has alpha = 0.2, beta = 0.5"),
    ([FC, act("Relu", "h", "a", "r1"), act("Tanh", "h", "t", "t1"),
      helper.make_node("Add", ["a", "t"], ["y"], name="sum")],
     "tensor 'h' feeds node 'r1' (Relu), node 't1' (Tanh): hwnn imports a chain"),
    ([FC, act("Relu", "h", "a", "r1"), helper.make_node("Add", ["a", "h"], ["y"], name="res")],
     "tensor 'h' feeds node 'r1' (Relu), node 'res' (Add)"),
    ([FC, act("Relu", "h", "a"), helper.make_node("Add", ["a", "b"], ["y"], name="add")],
     "node 'add' (Add): hwnn imports Add only as the bias right after a Gemm or MatMul"),
    ([FC, act("Relu", "h", "a"), helper.make_node("BatchNormalization",
                                                  ["a", "b", "b", "b", "W1"], ["y"], name="bn")],
     "node 'bn' (BatchNormalization): hwnn folds BatchNormalization into the Gemm, MatMul or "
     "Conv right before it, and there is none"),
    ([act("Relu", "x", "a"), gemm("fc", "a", "y", "W", "b", transB=1)],
     "the first layer is node 'relu' (Relu); a network imports from a Gemm, MatMul, Conv, "
     "LSTM or GRU first"),
    ([FC, helper.make_node("Reshape", ["h", "shape"], ["y"], name="rs")],
     "node 'rs' (Reshape) reshapes to [1, 2]: hwnn imports only a Reshape to (batch, 2)"),
    ([act("Flatten", "x", "f", "fl", axis=0), gemm("fc", "f", "y", "W", "b", transB=1)],
     "node 'fl' (Flatten) has axis = 0"),
    ([helper.make_node("MatMul", ["W", "x"], ["y"], name="mm")],
     "node 'mm' (MatMul) takes the chain's tensor 'x' as input 1"),
])
def test_refusals_name_the_node(tmp_path, nodes, message):
    arrays = {"lo": np.float32(0), "hi": np.float32(4), "W1": np.ones(2), "shape": [1, 2]}
    assert message in refused(tmp_path, nodes, arrays)


def test_not_a_chain_and_bad_files(tmp_path):
    stray = helper.make_node("Relu", ["b"], ["unused"], name="stray")
    assert refused(tmp_path, [FC, act("Relu", "h", "y"), stray]) == (
        "node 'stray' (Relu) is not on the path from the graph input to its output: hwnn "
        "imports a chain")
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x00not a model")
    with pytest.raises(ModelError, match="junk.onnx: not an ONNX model"):
        import_model(path, tmp_path / "s.toml")
    with pytest.raises(ModelError, match="must be an .onnx file or a state_dict .npz, not '.pt'"):
        import_model(tmp_path / "m.pt", tmp_path / "s.toml")


def test_missing_onnx_package(tmp_path, monkeypatch):
    path = save_model(tmp_path / "m.onnx", [FC, act("Relu", "h", "y")],
                      {"W": np.eye(2), "b": np.zeros(2)}, 2, 2)
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    with pytest.raises(ModelError, match=r"needs the onnx package: pip install 'hwnn\[onnx\]'"):
        import_model(path, tmp_path / "s.toml")


# --- command line ----------------------------------------------------------------------------

def test_cli_import_then_sim(tmp_path, capsys):
    path = mlp(tmp_path, np.random.default_rng(3), ("Tanh", "Relu"))
    spec = tmp_path / "spec.toml"
    assert main(["import", str(path), "-o", str(spec), "--bits", "6", "--name", "eq"]) == 0
    assert f"wrote {spec} and {tmp_path / 'eq.npz'}" in capsys.readouterr().out
    assert main(["sim", str(spec), "--vectors", "50", "--engine", "pysim"]) == 0
    assert "eq: 50 vectors bit-exact" in capsys.readouterr().out
    assert main(["import", str(path), "-o", str(spec), "--name", "module"]) == 2
    assert "name: Module name" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "none.onnx"), "-o", str(spec)]) == 2
    assert "No such file or directory" in capsys.readouterr().err


# --- 1-D CNNs ----------------------------------------------------------------------------------

def onnx_conv(x, w, b, stride=1, dilation=1, pads=(0, 0), group=1):
    """ONNX Conv on (batch, channels, steps), written out from the operator's definition."""
    x = np.pad(x, ((0, 0), (0, 0), pads))
    out, width, k = w.shape
    steps = (x.shape[2] - dilation * (k - 1) - 1) // stride + 1
    y = np.zeros((len(x), out, steps))
    for o in range(out):
        g = o // (out // group)
        for t in range(steps):
            taps = x[:, g * width:(g + 1) * width, t * stride:t * stride + dilation * k:dilation]
            y[:, o, t] = np.sum(taps * w[o], axis=(1, 2)) + b[o]
    return y


def onnx_pool(x, kind, k, stride, pads=(0, 0)):
    """ONNX MaxPool / AveragePool (count_include_pad = 1) on (batch, channels, steps)."""
    x = np.pad(x, ((0, 0), (0, 0), pads), constant_values=-np.inf if kind == "max" else 0.0)
    steps = (x.shape[2] - k) // stride + 1
    windows = np.stack([x[:, :, t * stride:t * stride + k] for t in range(steps)], axis=2)
    return windows.max(axis=3) if kind == "max" else windows.mean(axis=3)


def initializers(path):
    return {t.name: numpy_helper.to_array(t).astype(np.float64)
            for t in onnx.load(str(path)).graph.initializer}


def cnn(tmp_path, rng):
    """Conv (2 -> 4, k 3, pads 1) -> Relu -> MaxPool 2 -> Flatten -> Gemm (16 -> 3)."""
    nodes = [helper.make_node("Conv", ["x", "K", "kb"], ["c"], name="conv1", kernel_shape=[3],
                              pads=[1, 1]),
             act("Relu", "c", "r"), act("MaxPool", "r", "p", "pool1", kernel_shape=[2],
                                        strides=[2]),
             act("Flatten", "p", "f", "flat", axis=1), gemm("fc", "f", "y", "W", "b", transB=1)]
    arrays = {"K": rng.uniform(-.6, .6, (4, 2, 3)), "kb": rng.uniform(-.2, .2, 4),
              "W": rng.uniform(-.5, .5, (3, 16)), "b": rng.uniform(-.2, .2, 3)}
    path = save_model(tmp_path / "cnn.onnx", nodes, arrays, 2, 3, in_dims=["N", 2, 8])

    def model(x):  # (batch, channels, steps), by ONNX's definitions
        a = initializers(path)
        h = np.maximum(onnx_conv(x, a["K"], a["kb"], pads=(1, 1)), 0)
        return onnx_pool(h, "max", 2, 2).reshape(len(x), 16) @ a["W"].T + a["b"]
    return path, model


def depthwise(tmp_path, rng):
    """Depthwise Conv (4 channels, k 4, auto_pad SAME_UPPER = PyTorch's 'same') -> BatchNorm ->
    Tanh -> AveragePool 3 (stride 1, pads 1, count_include_pad) -> Flatten -> MatMul + Add,
    over sequences of a symbolic length."""
    nodes = [helper.make_node("Conv", ["x", "K"], ["c"], name="dw", group=4,
                              auto_pad="SAME_UPPER"),
             helper.make_node("BatchNormalization", ["c", "s", "t", "mu", "v"], ["n"], name="bn"),
             act("Tanh", "n", "a"),
             act("AveragePool", "a", "p", "avg", kernel_shape=[3], pads=[1, 1],
                 count_include_pad=1),
             act("Flatten", "p", "f", "flat"),
             helper.make_node("MatMul", ["f", "W"], ["m"], name="fc"),
             helper.make_node("Add", ["m", "b"], ["y"], name="fc_bias")]
    arrays = {"K": rng.uniform(-.8, .8, (4, 1, 4)), "s": rng.uniform(.5, 1.5, 4),
              "t": rng.uniform(-.2, .2, 4), "mu": rng.uniform(-.2, .2, 4),
              "v": rng.uniform(.5, 1.5, 4), "W": rng.uniform(-.3, .3, (24, 2)),
              "b": rng.uniform(-.1, .1, 2)}
    path = save_model(tmp_path / "dw.onnx", nodes, arrays, 4, 2, in_dims=["N", 4, "T"])

    def model(x):
        a = initializers(path)
        h = onnx_conv(x, a["K"], np.zeros(4), pads=(1, 2), group=4)
        h = (h - a["mu"][:, None]) / np.sqrt(a["v"][:, None] + np.float32(1e-5)) \
            * a["s"][:, None] + a["t"][:, None]
        return onnx_pool(np.tanh(h), "avg", 3, 1, (1, 1)).reshape(len(x), 24) @ a["W"] + a["b"]
    return path, model


def quantized_error_bound(design, weights, x_q):
    """A worst-case bound on |reference - float| per output, propagated through the plan.

    Linear layers: |Wq xq + bq - (W x + b)| <= |Wq| e + |Wq - W| |x| + |bq - b| (a conv
    with |W| over its windows); rounding and saturation toward a range that holds the float
    value add one output ulp; tanh and relu are 1-Lipschitz, a maximum or mean of values each
    within e is within the max or mean of e (same format: no rounding), flatten permutes.
    """
    floats = design.float_model(x_q)
    e = np.zeros(x_q.shape)
    with np.load(weights) as archive:
        arrays = {k: archive[k] for k in archive.files}
    flat = None
    for layer, before in zip(design.plan.layers, [x_q] + floats[:-1]):
        p = layer.plan
        if layer.kind == "conv1d":
            wq, bq = p.weight() * p.weight_format.resolution, p.bias() * p.acc_format.resolution
            w, b = arrays[f"{layer.name}.weight"], arrays[f"{layer.name}.bias"]
            window = dict(stride=p.stride, dilation=p.dilation, padding=p.padding,
                          groups=p.n_groups)
            e = conv1d_float(np.abs(wq), None, e, **window) + \
                conv1d_float(np.abs(wq - w), np.abs(bq - b), np.abs(before), **window)
        elif layer.kind == "dense":
            wq, bq = p.weight_float(), p.bias_float()
            w = flat.stream_weight(arrays[f"{layer.name}.weight"])
            e = e @ np.abs(wq).T + np.abs(before) @ np.abs(wq - w).T + \
                np.abs(bq - arrays[f"{layer.name}.bias"])
        elif layer.kind == "pool":
            windows = np.stack([np.pad(e, ((0, 0), p.padding, (0, 0)))[:, t * p.stride:
                                t * p.stride + p.kernel_size] for t in range(p.out_length(
                                    e.shape[1]))], axis=1)
            e = windows.max(axis=2) if p.kind == "max" else windows.sum(axis=2) / p.kernel_size
        elif layer.kind == "flatten":
            e, flat = e.reshape(len(e), -1), p
        if layer.kind in ("conv1d", "dense", "activation"):
            e = e + layer.out_format.resolution
    return e, floats[-1]


@pytest.mark.parametrize("build", [cnn, depthwise])
def test_cnn_imports_as_pytorch_float_and_quantized_within_bound(tmp_path, build, capsys):
    rng = np.random.default_rng(7)
    path, model = build(tmp_path, rng)
    steps = 8 if build is cnn else 6
    spec, weights = import_model(path, tmp_path / "cnn.toml",
                                 sequence_length=None if build is cnn else steps)
    design = load_spec(spec)
    kinds = [layer.kind for layer in design.plan.layers]
    if build is cnn:
        assert kinds == ["conv1d", "activation", "pool", "flatten", "dense"]
        assert design.plan.layers[0].plan.padding == (1, 1)
    else:
        assert kinds == ["conv1d", "activation", "pool", "flatten", "dense"]
        conv = design.plan.layers[0].plan
        assert (conv.n_groups, conv.padding) == (4, (1, 2))  # SAME_UPPER: PyTorch's "same"
        assert 'padding = "same"' in spec.read_text() and "groups = 4" in spec.read_text()
    assert design.sequence_length == steps
    x = rng.uniform(-1, 1, (40, steps, design.in_lanes))  # time-major, as hwnn's streams
    # The spec's float model is the ONNX graph, (batch, channels, steps) transposed.
    np.testing.assert_allclose(design.float_model(x)[-1], model(x.transpose(0, 2, 1)),
                               rtol=0, atol=1e-12)
    codes = quantize(x, design.in_format)
    x_q = to_float(codes, design.in_format)
    bound, want = quantized_error_bound(design, weights, x_q)
    got = to_float(design.reference(codes), design.out_format)
    assert np.all(np.abs(got - want) <= bound)
    assert np.max(np.abs(got - want)) > 0  # the quantization is real
    assert main(["sim", str(spec), "--vectors", "5", "--engine", "pysim"]) == 0
    assert "5 sequences bit-exact" in capsys.readouterr().out


def conv_then_fc(conv_attrs=None, pool=None, weight=(4, 1, 3)):
    """Conv (1 -> 4 channels) [-> a pool] -> Flatten -> Gemm over 8-step sequences."""
    conv_attrs = conv_attrs or {}
    weight = weight[:2] + tuple(conv_attrs.get("kernel_shape", weight[2:]))
    nodes = [helper.make_node("Conv", ["x", "K"], ["c"], name="conv1", **conv_attrs)]
    if pool is not None:
        op, attrs = pool
        nodes.append(act(op, "c", "p", "pool1", **attrs))
    nodes += [act("Flatten", nodes[-1].output[0], "f", "flat"),
              gemm("fc", "f", "y", "W", "b", transB=1)]
    return nodes, {"K": np.full(weight, 0.25)}


@pytest.mark.parametrize("conv_attrs, pool, message", [
    ({"pads": [0, 1], "strides": [2]}, None,
     "node 'conv1' (Conv) has pads [0, 1]: hwnn's conv1d pads both sides alike, or as PyTorch's "
     "padding = 'same' (stride 1, the odd step after: pads [1, 1])"),
    ({"auto_pad": "SAME_LOWER", "kernel_shape": [2]}, None,
     "node 'conv1' (Conv) has pads [1, 0] (auto_pad = SAME_LOWER): hwnn's conv1d pads both "
     "sides alike, or as PyTorch's padding = 'same' (stride 1, the odd step after: pads [0, 1])"),
    ({}, ("MaxPool", {"kernel_shape": [2], "ceil_mode": 1}),
     "node 'pool1' (MaxPool) has ceil_mode = 1; hwnn pools with PyTorch's default "
     "ceil_mode = False (0)"),
    ({}, ("AveragePool", {"kernel_shape": [3], "pads": [1, 1]}),
     "node 'pool1' (AveragePool) has count_include_pad = 0 with padding; hwnn's average counts "
     "the padding as zeros (PyTorch's default count_include_pad = True): export with "
     "count_include_pad = 1"),
    ({}, ("MaxPool", {"kernel_shape": [2], "pads": [0, 1]}),
     "node 'pool1' (MaxPool) has pads [0, 1]: hwnn pads both sides alike, at most "
     "kernel_shape // 2 = 1 steps (PyTorch's limit)"),
    ({}, ("MaxPool", {"kernel_shape": [2], "dilations": [2]}),
     "node 'pool1' (MaxPool) has dilations = [2]; hwnn pools without dilation"),
    ({}, ("MaxPool", {"kernel_shape": [7]}),
     "node 'pool1' (MaxPool) leaves no step of the 6-step sequences it gets"),
    ({"auto_pad": "SAME_RIGHT"}, None,
     "node 'conv1' (Conv) has auto_pad = 'SAME_RIGHT'; hwnn imports NOTSET, VALID, SAME_UPPER "
     "and SAME_LOWER"),
])
def test_sequence_refusals_name_the_node(tmp_path, conv_attrs, pool, message):
    nodes, arrays = conv_then_fc(conv_attrs, pool)
    assert message in refused(tmp_path, nodes, {**arrays, "W": np.ones((2, 24))},
                              in_dims=["N", 1, 8])


def test_two_dimensional_layers_are_unsupported(tmp_path):
    nodes, arrays = conv_then_fc(weight=(4, 1, 3, 3))
    message = refused(tmp_path, nodes, {**arrays, "W": np.ones((2, 144))},
                      in_dims=["N", 1, 8, 8], error=UnsupportedLayer)
    assert message == ("node 'conv1' (Conv) has weight shape (4, 1, 3, 3) on a tensor of shape "
                       "(batch, 1, 8, 8): hwnn imports 1-D convolutions (weight (out, in/group, "
                       "k) on (batch, channels, steps)) only")
    message = refused(tmp_path, [act("MaxPool", "x", "p", "mp", kernel_shape=[2, 2]),
                                 act("Flatten", "p", "f"), gemm("fc", "f", "y", "W", "b")],
                      {"W": np.ones((16, 2))}, in_dims=["N", 1, 8, 8], error=UnsupportedLayer)
    assert message == ("node 'mp' (MaxPool) pools a tensor of shape (batch, 1, 8, 8): hwnn "
                       "imports 1-D pooling over (batch, channels, steps) only")


def test_a_pool_cannot_come_first(tmp_path):
    # The spec's network takes its input width from its first layer; a pool has none.
    nodes = [act("MaxPool", "x", "p", "mp", kernel_shape=[2], strides=[2]),
             act("Flatten", "p", "f"), gemm("fc", "f", "y", "W", "b", transB=1)]
    assert refused(tmp_path, nodes, {"W": np.ones((2, 8))}, in_dims=["N", 2, 8]) == (
        "the first layer is node 'mp' (MaxPool); a network imports from a Gemm, MatMul, Conv, "
        "LSTM or GRU first")


def test_sequence_length_from_the_option_when_symbolic(tmp_path, capsys):
    nodes, arrays = conv_then_fc({"pads": [1, 1]}, ("GlobalMaxPool", {}))
    path = save_model(tmp_path / "g.onnx", nodes, {**arrays, "W": np.ones((2, 4)),
                                                   "b": np.zeros(2)}, 1, 2, in_dims=["N", 1, "T"])
    spec = tmp_path / "g.toml"
    with pytest.raises(ModelError, match="node 'conv1' \\(Conv\\): graph input 'x' has no static "
                                         "time dimension; give the sequence length "
                                         "\\(--sequence-length N\\)"):
        import_model(path, spec)
    assert main(["import", str(path), "-o", str(spec), "--sequence-length", "5"]) == 0
    design = load_spec(spec)
    assert design.sequence_length == 5 and design.plan.layers[1].plan.kernel_size == 5
    static = save_model(tmp_path / "s.onnx", nodes, {**arrays, "W": np.ones((2, 4)),
                                                     "b": np.zeros(2)}, 1, 2, in_dims=["N", 1, 6])
    assert main(["import", str(static), "-o", str(spec), "--sequence-length", "5"]) == 2
    assert "sequence_length = 5, but graph input 'x' has 6 steps" in capsys.readouterr().err


def test_conv_formats_by_interval_bounds_computed_by_hand(tmp_path):
    # conv: x in [-1, 1] (padding adds 0, inside already); taps 0.5, -0.25 and bias 0.25:
    # 0.25 ± 0.75 -> [-0.5, 1.0] -> SQ(2, 6); max|w| 0.5 is code 128 in SQ(0, 8) -> SQ(1, 7).
    # sigmoid: (0.3775, 0.7311) -> UQ(0, 8); avg pool padded: 0 joins -> keeps UQ(0, 8);
    # 4 steps -> conv (pads 1) 5 -> avg (k 2, stride 2, pads 1) 3 steps of 1 channel;
    # fc: 3 values in [0, 0.7311), weights 1: [0, 2.19) -> UQ(2, 6).
    nodes = [helper.make_node("Conv", ["x", "K", "kb"], ["c"], name="conv1", pads=[1, 1]),
             act("Sigmoid", "c", "s"),
             act("AveragePool", "s", "p", "avg", kernel_shape=[2], strides=[2], pads=[1, 1],
                 count_include_pad=1),
             act("Flatten", "p", "f"), gemm("fc", "f", "y", "W", "b", transB=1)]
    path = save_model(tmp_path / "h.onnx", nodes, {"K": [[[0.5, -0.25]]], "kb": [0.25],
                                                   "W": np.ones((1, 3)), "b": [0.0]}, 1, 1,
                      in_dims=["N", 1, 4])
    spec, _ = import_model(path, tmp_path / "h.toml")
    conv, sigmoid, avg, flat, fc = load_spec(spec).plan.layers
    assert (conv.plan.weight_format, conv.out_format) == (SQ(1, 7), SQ(2, 6))
    assert sigmoid.out_format == avg.out_format == UQ(0, 8)
    assert fc.out_format == UQ(2, 6) and flat.plan.steps == 3
    assert "in [-0.5, 1] -> SQ(2, 6)" in spec.read_text()
    assert "in [0, 2.19" in spec.read_text()  # the average's padding zeros widen the range to 0


def test_sequence_output_and_time_major_inputs(tmp_path, capsys):
    # A network may end on sequences (no flatten); `hwnn sim --inputs` takes (sequences, steps,
    # channels), the transpose of ONNX's (batch, channels, steps).
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "K"], ["c"], name="conv1", strides=[2]),
             act("Relu", "c", "y")]
    path = save_model(tmp_path / "s.onnx", nodes, {"K": rng.uniform(-.5, .5, (3, 2, 3))}, 2, 3,
                      in_dims=["N", 2, 9])
    spec, _ = import_model(path, tmp_path / "s.toml")
    design = load_spec(spec)
    x = rng.uniform(-1, 1, (4, 9, 2))
    want = np.maximum(onnx_conv(x.transpose(0, 2, 1), initializers(path)["K"], np.zeros(3),
                                stride=2), 0).transpose(0, 2, 1)
    np.testing.assert_allclose(design.float_model(x)[-1], want, rtol=0, atol=1e-12)
    np.save(tmp_path / "in.npy", x)
    assert main(["sim", str(spec), "--inputs", str(tmp_path / "in.npy"), "--engine",
                 "pysim"]) == 0
    assert "net: 4 sequences bit-exact" in capsys.readouterr().out
