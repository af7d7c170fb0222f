"""PyTorch state_dict (.npz) import: names, layouts, the layer description, refusals, CLI."""

import numpy as np
import pytest

from hwnn.cli import main
from hwnn.fixed import quantize, to_float
from hwnn.io import ModelError, UnsupportedLayer, import_model
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
    ("dense,relu,dense,dense,dense", "layers has more dense/batchnorm entries than"),
    ("dense,softmax,dense,dense", "layers: unknown entry 'softmax'; each is dense, batchnorm or"),
    ("relu,dense,dense,dense", "layers must start with dense, not 'relu'"),
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
    with pytest.raises(UnsupportedLayer, match=r"c.weight has shape \(4, 1, 3\) \(a Conv1d\): "
                                               r"hwnn's network does not chain sequence layers"):
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
