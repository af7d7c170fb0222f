"""PyTorch state_dict (.npz) import: names, layouts, the layer description, refusals, CLI."""

import numpy as np
import pytest

from hwnn.cli import main
from hwnn.fixed import quantize, to_float
from hwnn.io import ModelError, import_model
from hwnn.io.model import forward
from hwnn.io.quantize import choose_formats
from hwnn.io.torch_npz import BATCHNORM_EPS, read_state_dict
from hwnn.spec import load_spec


def state_dict(rng, sizes=(6, 8, 5, 2)):
    """An nn.Sequential(Linear, ReLU, Linear, Tanh, Linear) state_dict: keys 0, 2, 4."""
    state = {}
    for k, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        state[f"{2 * k}.weight"] = rng.normal(0, 0.5, (n_out, n_in)).astype(np.float32)
        state[f"{2 * k}.bias"] = rng.normal(0, 0.1, n_out).astype(np.float32)
    return state


def test_sequential_mlp_becomes_a_network(tmp_path):
    state = state_dict(np.random.default_rng(0))
    np.savez(tmp_path / "model.npz", **state)
    spec, weights = import_model(tmp_path / "model.npz", tmp_path / "spec.toml", name="mlp",
                                 layers="dense, relu, dense, tanh, dense")
    design = load_spec(spec)
    assert [(layer.name, layer.kind) for layer in design.plan.layers] == [
        ("layer_0", "dense"), ("relu", "activation"), ("layer_2", "dense"),
        ("tanh", "activation"), ("layer_4", "dense")]
    with np.load(weights) as archive:
        assert sorted(archive.files) == sorted(f"layer_{k}.{f}" for k in (0, 2, 4)
                                               for f in ("weight", "bias"))
        for k in (0, 2, 4):
            np.testing.assert_array_equal(archive[f"layer_{k}.weight"], state[f"{k}.weight"])
            np.testing.assert_array_equal(archive[f"layer_{k}.bias"], state[f"{k}.bias"])
    # Formats: the rule of hwnn.io.quantize, applied to the same float layers.
    layers = read_state_dict(tmp_path / "model.npz", "dense,relu,dense,tanh,dense")
    in_choice, choices = choose_formats(layers, 8)
    assert design.in_format == in_choice.format
    assert [layer.out_format for layer in design.plan.layers] == [
        c["out_format"].format for c in choices]
    assert design.plan.layers[3].out_format.i == 1  # tanh: SQ(1, 7)
    # The quantized network follows the float one (a coarse sanity check; the ONNX tests
    # derive the bound).
    x = quantize(np.random.default_rng(1).uniform(-1, 1, (100, 6)), design.in_format)
    got = to_float(design.reference(x), design.out_format)
    want = forward(layers, to_float(x, design.in_format))[-1]
    assert 0 < np.max(np.abs(got - want)) < 0.25


def test_named_modules_batchnorm_and_leaky_relu(tmp_path):
    rng = np.random.default_rng(2)
    state = {"fc1.weight": rng.normal(0, 1, (4, 3)), "fc1.bias": rng.normal(0, 1, 4),
             "bn1.weight": rng.uniform(0.5, 2, 4), "bn1.bias": rng.normal(0, 1, 4),
             "bn1.running_mean": rng.normal(0, 1, 4), "bn1.running_var": rng.uniform(0.5, 2, 4),
             "bn1.num_batches_tracked": np.array(10), "out.weight": rng.normal(0, 1, (1, 4))}
    np.savez(tmp_path / "m.npz", **state)
    layers = read_state_dict(tmp_path / "m.npz", "dense,batchnorm,leaky_relu=0.25,dense")
    assert [layer.name for layer in layers] == ["fc1", "leaky_relu", "out"]
    assert layers[1].leaky_shift == 2
    np.testing.assert_array_equal(layers[2].bias, [0.0])  # no out.bias: zero
    x = rng.uniform(-1, 1, (20, 3))
    h = (x @ state["fc1.weight"].T + state["fc1.bias"] - state["bn1.running_mean"]) \
        / np.sqrt(state["bn1.running_var"] + BATCHNORM_EPS) * state["bn1.weight"] \
        + state["bn1.bias"]
    np.testing.assert_allclose(forward(layers, x)[0], h, rtol=1e-13, atol=1e-13)
    assert read_state_dict(tmp_path / "m.npz", "dense,batchnorm,leaky_relu,dense")[1] \
        .leaky_shift == 6


@pytest.mark.parametrize("layers, message", [
    ("dense,relu", "model.npz has modules that layers does not use: 2, 4"),
    ("dense,relu,dense,dense,dense", "layers has more dense/conv1d/batchnorm entries than"),
    ("dense,softmax,dense,dense", "layers: unknown entry 'softmax'; each is dense, "
                                  "conv1d[:options], maxpool:k=N, avgpool:k=N, flatten, batchnorm"),
    ("relu,dense,dense,dense", "layers must start with dense or conv1d, not 'relu'"),
    ("dense,batchnorm,dense,dense", "layers says batchnorm where"),
    ("dense,leaky_relu=0.01,dense,dense", "layers entry 'leaky_relu=0.01' has negative slope "
                                          "alpha = 0.01"),
    ("dense,leaky_relu=x,dense,dense", "needs a number after 'leaky_relu='"),
    ("", "layers must be a comma-separated list"),
])
def test_layer_description_refusals(tmp_path, layers, message):
    np.savez(tmp_path / "model.npz", **state_dict(np.random.default_rng(0)))
    with pytest.raises(ModelError) as info:
        import_model(tmp_path / "model.npz", tmp_path / "s.toml", name="n", layers=layers)
    assert message in str(info.value)


def test_shape_conv_and_overwrite_refusals(tmp_path):
    state = state_dict(np.random.default_rng(0))
    state["2.weight"] = state["2.weight"][:, :7]
    np.savez(tmp_path / "bad.npz", **state)
    with pytest.raises(ModelError, match=r"2.weight has shape \(5, 7\) \(out, in\) but the "
                                         r"layer before gives 8 values"):
        read_state_dict(tmp_path / "bad.npz", "dense,relu,dense,tanh,dense")
    np.savez(tmp_path / "conv.npz", **{"c.weight": np.ones((4, 1, 3)), "c.bias": np.zeros(4)})
    with pytest.raises(ModelError, match="layers says dense where .*conv.npz has conv1d module "
                                         "'c'"):
        read_state_dict(tmp_path / "conv.npz", "dense")
    np.savez(tmp_path / "model.npz", **state_dict(np.random.default_rng(0)))
    with pytest.raises(ModelError, match="the weights model.npz would overwrite the model"):
        import_model(tmp_path / "model.npz", tmp_path / "s.toml", layers="dense,relu,dense,"
                                                                         "tanh,dense")
    with pytest.raises(ModelError, match="a state_dict has no activations; describe the chain"):
        import_model(tmp_path / "model.npz", tmp_path / "s.toml")


def test_cli_import_state_dict_then_sim(tmp_path, capsys):
    np.savez(tmp_path / "model.npz", **state_dict(np.random.default_rng(4)))
    x = np.random.default_rng(5).normal(0, 1, (64, 6))
    np.save(tmp_path / "x.npy", x)
    spec = tmp_path / "spec.toml"
    assert main(["import", str(tmp_path / "model.npz"), "-o", str(spec), "--name", "net",
                 "--layers", "dense,relu,dense,sigmoid,dense",
                 "--calibration", str(tmp_path / "x.npy")]) == 0
    assert "calibration inputs (measured on 64 calibration vectors)" in spec.read_text()
    assert main(["sim", str(spec), "--vectors", "50", "--engine", "pysim"]) == 0
    assert "net: 50 vectors bit-exact" in capsys.readouterr().out
    assert main(["import", str(tmp_path / "model.npz"), "-o", str(spec), "--name", "net",
                 "--layers", "dense,gelu"]) == 2
    assert "hwnn: error: layers: unknown entry 'gelu'" in capsys.readouterr().err


# --- 1-D CNNs ----------------------------------------------------------------------------------

CNN_LAYERS = ("conv1d:padding=1, batchnorm, relu, maxpool:k=2, conv1d:padding=same, tanh, "
              "avgpool:k=2:padding=1, flatten, dense")


def cnn_state_dict(rng):
    """Sequential(Conv1d(2, 4, 3, padding=1), BatchNorm1d(4), ReLU, MaxPool1d(2),
    Conv1d(4, 4, 4, groups=4, padding="same"), Tanh, AvgPool1d(2, padding=1), Flatten,
    Linear(12, 3)) over 8 steps: 8 -> 8 -> 4 -> 4 -> 3 steps."""
    return {"0.weight": rng.uniform(-.6, .6, (4, 2, 3)), "0.bias": rng.uniform(-.2, .2, 4),
            "1.weight": rng.uniform(.5, 1.5, 4), "1.bias": rng.uniform(-.2, .2, 4),
            "1.running_mean": rng.uniform(-.2, .2, 4), "1.running_var": rng.uniform(.5, 1.5, 4),
            "1.num_batches_tracked": np.array(3),
            "4.weight": rng.uniform(-.8, .8, (4, 1, 4)), "4.bias": rng.uniform(-.2, .2, 4),
            "8.weight": rng.uniform(-.4, .4, (3, 12)), "8.bias": rng.uniform(-.1, .1, 3)}


def torch_conv(x, w, b, pads, groups=1):
    """nn.Conv1d on (batch, channels, steps), from its definition (stride 1)."""
    x = np.pad(x, ((0, 0), (0, 0), pads))
    out, width, k = w.shape
    steps = x.shape[2] - k + 1
    y = np.empty((len(x), out, steps))
    for o in range(out):
        g = o // (out // groups)
        for t in range(steps):
            y[:, o, t] = np.sum(x[:, g * width:(g + 1) * width, t:t + k] * w[o], axis=(1, 2))
    return y + b[:, None]


def torch_cnn(state, x):
    h = torch_conv(x, state["0.weight"], state["0.bias"], (1, 1))
    h = (h - state["1.running_mean"][:, None]) / np.sqrt(state["1.running_var"][:, None]
                                                        + BATCHNORM_EPS) \
        * state["1.weight"][:, None] + state["1.bias"][:, None]
    h = np.maximum(h, 0)
    h = np.maximum(h[:, :, 0::2], h[:, :, 1::2])                     # MaxPool1d(2)
    h = np.tanh(torch_conv(h, state["4.weight"], state["4.bias"], (1, 2), groups=4))  # "same"
    h = np.pad(h, ((0, 0), (0, 0), (1, 1)))                          # AvgPool1d(2, padding=1)
    h = (h[:, :, 0:6:2] + h[:, :, 1:6:2]) / 2
    return h.reshape(len(x), 12) @ state["8.weight"].T + state["8.bias"]  # channel-major


def test_state_dict_cnn_becomes_a_network(tmp_path, capsys):
    rng = np.random.default_rng(3)
    state = cnn_state_dict(rng)
    np.savez(tmp_path / "state.npz", **state)
    spec, weights = import_model(tmp_path / "state.npz", tmp_path / "cnn.toml", name="cnn",
                                 layers=CNN_LAYERS, sequence_length=8)
    design = load_spec(spec)
    assert [layer.kind for layer in design.plan.layers] == [
        "conv1d", "activation", "pool", "conv1d", "activation", "pool", "flatten", "dense"]
    assert design.plan.layers[3].plan.n_groups == 4  # inferred: 4 channels over in/groups 1
    assert design.plan.layers[3].plan.padding == (1, 2)  # PyTorch's "same" for k = 4
    assert design.sequence_length == 8
    with np.load(weights) as archive:
        np.testing.assert_array_equal(archive["layer_4.weight"], state["4.weight"])
        np.testing.assert_array_equal(archive["layer_8.weight"], state["8.weight"])  # unpermuted
    x = rng.uniform(-1, 1, (30, 8, 2))  # time-major
    np.testing.assert_allclose(design.float_model(x)[-1], torch_cnn(state, x.transpose(0, 2, 1)),
                               rtol=0, atol=1e-12)
    # A coarse sanity check of the quantized network (the ONNX tests derive the bound): eight
    # 8-bit layers, outputs of resolution 2**-5 or so; the error stays a few such steps.
    codes = quantize(x, design.in_format)
    got = to_float(design.reference(codes), design.out_format)
    want = design.float_model(to_float(codes, design.in_format))[-1]
    assert 0 < np.max(np.abs(got - want)) < 0.25
    x_cal = rng.uniform(-2, 2, (20, 8, 2))
    np.save(tmp_path / "x.npy", x_cal)
    assert main(["import", str(tmp_path / "state.npz"), "-o", str(spec), "--name", "cnn",
                 "--layers", CNN_LAYERS, "--sequence-length", "8",
                 "--calibration", str(tmp_path / "x.npy")]) == 0
    assert "calibration inputs (measured on 20 calibration sequences) in [-1.99" in \
        spec.read_text()
    assert main(["sim", str(spec), "--vectors", "5", "--engine", "pysim"]) == 0
    assert "cnn: 5 sequences bit-exact" in capsys.readouterr().out


@pytest.mark.parametrize("layers, message", [
    (CNN_LAYERS.replace("maxpool:k=2", "maxpool"),
     "layers: entry 'maxpool' needs the kernel size, e.g. maxpool:k=2"),
    (CNN_LAYERS.replace("padding=1,", "pad=1,"),
     "layers: entry 'conv1d:pad=1' has 'pad=1'; conv1d takes padding=N, stride=N, dilation=N, "
     "groups=N once each, separated by ':'"),
    (CNN_LAYERS.replace("padding=1,", "stride=0,"),
     "layers: entry 'conv1d:stride=0' has stride = '0'; it must be an integer >= 1"),
    (CNN_LAYERS.replace("padding=same", "padding=same:stride=2"),
     "layers: entry 'conv1d:padding=same:stride=2': padding 'same' needs stride 1"),
    (CNN_LAYERS.replace("avgpool:k=2:padding=1", "avgpool:k=2:padding=2"),
     "layers: entry 'avgpool:k=2:padding=2' pads 2 steps; at most k // 2 = 1"),
    ("maxpool:k=2," + CNN_LAYERS, "layers must start with dense or conv1d, not 'maxpool:k=2'"),
    (CNN_LAYERS.replace("flatten, ", ""),
     "layers: dense ('8') after sequence layers needs a flatten before it"),
    (CNN_LAYERS.replace("maxpool:k=2", "maxpool:k=9"),
     "layers: 'maxpool:k=9' leaves no step of the 8-step sequences it gets"),
])
def test_cnn_layer_description_refusals(tmp_path, layers, message):
    np.savez(tmp_path / "cnn.npz", **cnn_state_dict(np.random.default_rng(0)))
    with pytest.raises(ModelError) as info:
        read_state_dict(tmp_path / "cnn.npz", layers, 8)
    assert message in str(info.value)
    with pytest.raises(ModelError, match="layers: 'conv1d:padding=1' runs over sequences; give "
                                         r"their length \(--sequence-length N\)"):
        read_state_dict(tmp_path / "cnn.npz", CNN_LAYERS)
