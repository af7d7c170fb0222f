# amaranth: UnusedElaboratable=no
"""Networks: the plan (chaining, balancing), the reference, the core, the spec kind and the CLI."""

import re
from types import MappingProxyType

import numpy as np
import pytest

from hwnn import SQ, UQ
from hwnn.cores._component import inspected
from hwnn.cores.activation import activation_core
from hwnn.cores.dense import Dense
from hwnn.cores.network import Network
from hwnn.plans.activation import plan_activation
from hwnn.plans.dense import plan_dense
from hwnn.plans.network import Layer, balance, plan_network
from hwnn.ref.activation import activation
from hwnn.ref.dense import dense
from hwnn.ref.network import network, network_layers
from hwnn.sim import make_vectors, run_stream
from hwnn.spec import SpecError, load_spec


def dense_plan(n_out, n_in, seed, in_format=SQ(1, 7), out_format=SQ(3, 5), bias=True):
    rng = np.random.default_rng(seed)
    return plan_dense(rng.uniform(-1, 1, (n_out, n_in)),
                      rng.uniform(-0.5, 0.5, n_out) if bias else None,
                      in_format=in_format, weight_format=SQ(1, 7), out_format=out_format)


def mlp(fc1=MappingProxyType({}), fc2=MappingProxyType({}), n_out=3):
    """8 -> dense 6 -> tanh (PWL) -> dense n_out -> sigmoid (LUT)."""
    return plan_network([
        Layer("fc1", "dense", dense_plan(6, 8, 0), MappingProxyType(fc1)),
        Layer("act1", "activation", plan_activation("tanh", SQ(3, 5), SQ(1, 7), method="pwl",
                                                    segments=8)),
        Layer("fc2", "dense", dense_plan(n_out, 6, 1), MappingProxyType(fc2)),
        Layer("act2", "activation", plan_activation("sigmoid", SQ(3, 5), UQ(0, 8),
                                                    method="lut")),
    ])


# --- plan ----------------------------------------------------------------------------------

def test_plan_chains_formats_and_widths():
    plan = mlp({"parallelism": 4}, {"arith": "mcm"})
    assert (plan.n_in, plan.n_out) == (8, 3)
    assert plan.lanes == ((8, 6), (6, 6), (6, 3), (3, 3))
    assert (plan.in_format, plan.out_format) == (SQ(1, 7), UQ(0, 8))
    assert [layer.ii for layer in plan.layers] == [12, 1, 1, 1] and plan.ii == 12


def test_balance_picks_the_fewest_multipliers_for_the_target():
    plan = mlp()
    for target in (1, 2, 5, 7, 13, 48, 100):
        balanced = balance(plan, target)
        p1 = balanced.layer("fc1").options["parallelism"]
        p2 = balanced.layer("fc2").options["parallelism"]
        assert balanced.ii <= target
        # One multiplier fewer would miss the target (or there is only one).
        for p, products in ((p1, 48), (p2, 18)):
            assert p == 1 or -(-products // (p - 1)) > target
    assert balance(plan, 48).layer("fc1").options["parallelism"] == 1


@pytest.mark.parametrize("layers, message", [
    ([], "layers must hold at least one layer, not none"),
    ([Layer("fc1", "dense", dense_plan(6, 8, 0)),
      Layer("fc2", "dense", dense_plan(3, 6, 1, in_format=SQ(2, 6)))],
     "layer 'fc2' takes SQ(2, 6) but layer 'fc1' gives SQ(3, 5)"),
    ([Layer("fc1", "dense", dense_plan(6, 8, 0)),
      Layer("fc2", "dense", dense_plan(3, 5, 1, in_format=SQ(3, 5)))],
     "layer 'fc2' takes 5 values but layer 'fc1' gives 6"),
    ([Layer("fc1", "dense", dense_plan(6, 8, 0)), Layer("fc1", "activation",
                                                        plan_activation("relu", SQ(3, 5),
                                                                        SQ(3, 5)))],
     "layer names must differ; 'fc1' is used 2 times"),
    ([Layer("fc 1", "dense", dense_plan(6, 8, 0))],
     "layers[0].name must be an identifier (letters, digits, _), not 'fc 1'"),
    ([Layer("c", "conv2d", dense_plan(6, 8, 0))],
     "layers[0].kind must be one of 'dense', 'activation', 'conv1d', 'pool', 'flatten', 'last', "
     "'lstm', 'gru', 'bidirectional', 'lstm_cell', 'gru_cell', 'binary_dense', not "
     "'conv2d'"),
    ([Layer("fc1", "dense", dense_plan(6, 8, 0), MappingProxyType({"lanes": 2}))],
     "layers[0] (fc1): option 'lanes' does not apply to a dense layer"),
    ([Layer("fc1", "dense", dense_plan(6, 8, 0), MappingProxyType({"arith": "mcm",
                                                                   "parallelism": 2}))],
     "layers[0] (fc1): parallelism applies to arith 'mult', not 'mcm'"),
    ([Layer("fc1", "dense", dense_plan(6, 8, 0), MappingProxyType({"parallelism": 49}))],
     "parallelism must be an integer between 1 and 48, not 49"),
])
def test_plan_errors_name_the_layer(layers, message):
    with pytest.raises(ValueError, match=re.escape(message) + "$"):
        plan_network(layers)


def test_an_activation_first_needs_n_in():
    act = Layer("a", "activation", plan_activation("relu", SQ(3, 5), SQ(3, 5)))
    with pytest.raises(ValueError, match="n_in is needed when the first layer is activation"):
        plan_network([act])
    assert plan_network([act], n_in=4).lanes == ((4, 4),)


def test_a_dense_layer_needs_a_dense_plan():
    with pytest.raises(TypeError, match=re.escape(
            "layers[0] (fc1): a dense layer needs a DensePlan, not LUTPlan")):
        plan_network([Layer("fc1", "dense", plan_activation("tanh", SQ(3, 5), SQ(1, 7),
                                                            method="lut"))])


# --- reference -----------------------------------------------------------------------------

def test_reference_is_the_chain_of_layer_references():
    plan = mlp()
    x = make_vectors(SQ(1, 7), 8, 300, seed=4)
    y1 = dense(plan.layers[0].plan, x)
    y2 = activation(plan.layers[1].plan, y1)
    y3 = dense(plan.layers[2].plan, y2)
    y4 = activation(plan.layers[3].plan, y3)
    outputs = network_layers(plan, x)
    for got, want in zip(outputs, (y1, y2, y3, y4)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(network(plan, x), y4)
    with pytest.raises(ValueError, match=re.escape("x must have shape (8,) or (n, 8), not (3, 7)")):
        network(plan, np.zeros((3, 7), dtype=np.int64))


# --- core ----------------------------------------------------------------------------------

CORES = {
    "folded-then-shift-add": ({"parallelism": 4}, {"arith": "mcm"}),
    "fast-first-layer": ({"parallelism": 48}, {"parallelism": 2}),
    "one-multiplier-each": ({}, {}),
    "all-shift-add": ({"arith": "csd", "pipeline": 1}, {"arith": "mcm", "pipeline": 0}),
}


@pytest.mark.parametrize("name", CORES)
def test_core_is_bit_exact_with_exact_ii_and_latency(name):
    plan = mlp(*CORES[name])
    core = Network(plan)
    assert core.ii == plan.ii
    assert core.latency == sum(inspected(c).latency for c in core.cores)
    x = make_vectors(SQ(1, 7), 8, 120, seed=5)
    steady = run_stream(core, x)
    np.testing.assert_array_equal(steady.outputs, network(plan, x))
    # At full rate: every vector takes exactly the latency, one enters every ii cycles.
    assert set(steady.latencies.tolist()) == {core.latency}
    assert set(np.diff(steady.in_cycles).tolist()) == {core.ii}
    stalled = run_stream(core, x, stall_in=0.3, stall_out=0.4, seed=2)
    np.testing.assert_array_equal(stalled.outputs, network(plan, x))


def test_one_output_network_joins_a_vector_to_a_scalar_unit():
    # fc2 has one output (a 1-element vector); act2 with one lane takes a scalar.
    plan = mlp({"parallelism": 6}, {}, n_out=1)
    core = Network(plan)
    x = make_vectors(SQ(1, 7), 8, 60, seed=6)
    run = run_stream(core, x, stall_in=0.2, stall_out=0.2, seed=3)
    np.testing.assert_array_equal(run.outputs, network(plan, x)[:, 0])


def test_network_describes_its_layers():
    core = Network(mlp({"parallelism": 4}, {"arith": "mcm"}))
    info = core.describe()
    assert [layer["name"] for layer in info["layers"]] == ["fc1", "act1", "fc2", "act2"]
    assert info["bottleneck"] == "fc1" and info["ii"] == 12
    assert info["multipliers"] == 4 and info["layers"][2]["multipliers"] == 0


def test_network_needs_a_network_plan():
    with pytest.raises(TypeError, match="plan must be a NetworkPlan, not DensePlan"):
        Network(dense_plan(2, 2, 0))


# --- spec and CLI --------------------------------------------------------------------------

SPEC = '''[core]
kind = "network"
name = "mlp"

[params]
in_format = "SQ(1,7)"
weights = "mlp.npz"
weight_format = "SQ(1,7)"
{extra}
[[params.layers]]
kind = "dense"
name = "fc1"
out_format = "SQ(3,5)"
{fc1}
[[params.layers]]
kind = "activation"
name = "act1"
function = "tanh"
out_format = "SQ(1,7)"

[[params.layers]]
kind = "dense"
name = "fc2"
arith = "mcm"
out_format = "SQ(3,5)"
'''


def write_spec(tmp_path, extra="", fc1="", arrays=None):
    rng = np.random.default_rng(0)
    if arrays is None:
        arrays = {"fc1.weight": rng.uniform(-1, 1, (6, 8)), "fc1.bias": rng.uniform(-.5, .5, 6),
                  "fc2.weight": rng.uniform(-1, 1, (3, 6))}
    np.savez(tmp_path / "mlp.npz", **arrays)
    path = tmp_path / "mlp.toml"
    path.write_text(SPEC.format(extra=extra, fc1=fc1))
    return path


def test_spec_loads_the_chain_with_shared_defaults(tmp_path):
    design = load_spec(write_spec(tmp_path, extra="target_ii = 8", fc1="rounding = \"trunc\""))
    plan = design.plan
    assert [layer.name for layer in plan.layers] == ["fc1", "act1", "fc2"]
    assert plan.layer("fc1").plan.weight_format == SQ(1, 7)      # the shared default
    assert plan.layer("fc1").plan.rounding.value == "trunc"      # the layer's own
    assert plan.layer("fc1").options["parallelism"] == 6 and plan.ii == 8
    assert plan.layer("fc2").options["arith"] == "mcm"
    x = make_vectors(SQ(1, 7), 8, 50, seed=1)
    np.testing.assert_array_equal(design.reference(x), network(plan, x))
    core = design.build()
    np.testing.assert_array_equal(run_stream(core, x).outputs, network(plan, x))


@pytest.mark.parametrize("extra, fc1, arrays, field, message", [
    ("", "in_format = \"SQ(1,7)\"", None, "params.layers[0].in_format",
     "is set by the network: the previous layer's out_format"),
    ("", "lanes = 2", None, "params.layers[0].lanes", "is set by the network"),
    ("", "", {"fc1.weight": np.ones((6, 8)) / 4}, "params.weights",
     "mlp.npz has no array 'fc2.weight' for layer 'fc2' (it has: fc1.weight)"),
    ("", "", {"fc1.weight": np.ones((6, 8)) / 4, "fc2.weight": np.ones((3, 6)) / 4,
              "fc3.weight": np.ones(2)}, "params.weights",
     "mlp.npz has arrays no layer uses: fc3.weight"),
    ("", "", {"fc1.weight": np.ones((6, 8)) / 4, "fc2.weight": np.ones((3, 5)) / 4},
     "params.layers", "layer 'fc2' takes 5 values but layer 'act1' gives 6"),
    ("target_ii = 0", "", None, "params.target_ii", "must be at least 1, not 0"),
    ("", "parallelism = 99", None, "params.layers[0].parallelism",
     "must be between 1 and 48, not 99"),
])
def test_spec_errors_name_the_field(tmp_path, extra, fc1, arrays, field, message):
    with pytest.raises(SpecError) as info:
        load_spec(write_spec(tmp_path, extra, fc1, arrays))
    assert info.value.field == field
    assert message in info.value.message


def test_cli_plan_sim_and_generate_a_network(tmp_path, capsys):
    from hwnn import cli
    spec = write_spec(tmp_path, extra="target_ii = 8")
    assert cli.main(["plan", str(spec)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"fc1\s+dense mult\s+SQ\(1, 7\) -> SQ\(3, 5\)\s+8 -> 6\s+8\s+12\s+6\s+48", out)
    assert "bottleneck   fc1" in out and "complexity per input vector: RM 72" in out
    assert cli.main(["sim", str(spec), "--vectors", "80", "--engine", "pysim"]) == 0
    assert "mlp: 80 vectors bit-exact (core == reference)" in capsys.readouterr().out
    assert cli.main(["generate", str(spec), "-o", str(tmp_path / "out"), "--testbench", "20"]) == 0
    assert (tmp_path / "out" / "mlp_tb.v").is_file()


def test_float_model_is_the_unquantized_network(tmp_path):
    design = load_spec(write_spec(tmp_path))
    arrays = np.load(tmp_path / "mlp.npz")
    x = np.random.default_rng(3).uniform(-1, 1, (40, 8))
    h = np.tanh(x @ arrays["fc1.weight"].T + arrays["fc1.bias"])
    want = h @ arrays["fc2.weight"].T
    outputs = design.float_model(x)
    assert len(outputs) == 3
    np.testing.assert_array_equal(outputs[1], h)
    np.testing.assert_array_equal(outputs[2], want)


def test_float_errors_are_within_the_quantization_bound(tmp_path):
    from hwnn.flow import FlowError, float_errors
    # Fine formats: inputs SQ(1,11), weights SQ(1,11), outputs SQ(4,10).
    spec = write_spec(tmp_path, extra='out_format = "SQ(4,10)"')
    text = spec.read_text().replace('in_format = "SQ(1,7)"', 'in_format = "SQ(1,11)"')
    text = text.replace('weight_format = "SQ(1,7)"', 'weight_format = "SQ(1,11)"')
    text = text.replace('out_format = "SQ(3,5)"\n', '').replace('out_format = "SQ(1,7)"\n', '')
    spec.write_text(text)
    design = load_spec(spec)
    codes = make_vectors(SQ(1, 11), 8, 500, seed=1)
    rows = float_errors(design, codes)
    assert [r["name"] for r in rows] == ["fc1", "act1", "fc2"]
    # fc1 sees exact input codes, |x| ≤ 1, and no saturation (Σ|w| < 8 for these weights):
    # |error| ≤ 8 weights · 2^-12 (half a weight ulp) + 2^-23 (the bias on the accumulator's
    # 22 fraction bits) + 2^-11 (half an output ulp) < 9·2^-12 + 2^-11.
    assert 0 < rows[0]["max_abs"] <= 9 * 2.0 ** -12 + 2.0 ** -11
    assert rows[0]["rms"] <= rows[0]["max_abs"]
    with pytest.raises(FlowError, match="--float compares a network with its float model"):
        float_errors(dense_design(tmp_path), codes)


def dense_design(tmp_path):
    np.savez(tmp_path / "d.npz", weight=np.ones((2, 3)) / 4)
    (tmp_path / "d.toml").write_text(
        '[core]\nkind = "dense"\nname = "d"\n[params]\nin_format = "SQ(1,7)"\n'
        'weight_format = "SQ(1,7)"\nout_format = "SQ(3,5)"\nweights = "d.npz"\n')
    return load_spec(tmp_path / "d.toml")


def test_cli_sim_float_prints_each_layer(tmp_path, capsys):
    from hwnn import cli
    spec = write_spec(tmp_path)
    assert cli.main(["sim", str(spec), "--vectors", "30", "--engine", "pysim", "--float"]) == 0
    out = capsys.readouterr().out
    assert "quantized vs float model" in out
    assert re.search(r"fc1\s+SQ\(3, 5\)\s+[0-9.e-]+\s+[0-9.e-]+\s+[0-9.e-]+", out)
    dense_design(tmp_path)
    assert cli.main(["sim", str(tmp_path / "d.toml"), "--float"]) == 2
    assert "--float compares a network with its float model; d is a dense spec" in \
        capsys.readouterr().err


# --- sequence layers -----------------------------------------------------------------------

def cnn_plan():
    """A small 1-D CNN: conv1d 2->4 (k 3, same) -> relu -> max pool 2 -> flatten -> dense 3."""
    from hwnn.plans.conv1d import plan_conv1d
    from hwnn.plans.pool import plan_flatten, plan_pool1d
    rng = np.random.default_rng(7)
    conv = plan_conv1d(rng.uniform(-1, 1, (4, 2, 3)), rng.uniform(-.3, .3, 4), in_format=SQ(1, 7),
                       weight_format=SQ(1, 7), out_format=SQ(3, 5), padding="same")
    relu = plan_activation("relu", SQ(3, 5), SQ(3, 5))
    pool = plan_pool1d("max", 2, channels=4, in_format=SQ(3, 5))
    flat = plan_flatten(4, 4)
    fc = plan_dense(rng.uniform(-1, 1, (3, 16)), None, in_format=SQ(3, 5), weight_format=SQ(1, 7),
                    out_format=SQ(4, 4))
    layers = [Layer("conv1", "conv1d", conv), Layer("act", "activation", relu),
              Layer("pool", "pool", pool), Layer("flat", "flatten", flat),
              Layer("fc", "dense", fc)]
    return plan_network(layers), layers


def test_sequence_chain_plan_and_reference():
    from hwnn.ref.conv1d import conv1d
    from hwnn.ref.pool import pool1d
    plan, layers = cnn_plan()
    assert plan.sequences == (True, False) and plan.n_in == 2 and plan.n_out == 3
    assert plan.lanes == ((2, 4), (4, 4), (4, 4), (4, 16), (16, 3))
    assert (plan.in_format, plan.out_format) == (SQ(1, 7), SQ(4, 4))
    x = np.random.default_rng(1).integers(-128, 128, (5, 8, 2))
    h = pool1d(layers[2].plan, activation(layers[1].plan, conv1d(layers[0].plan, x)))
    want = dense(layers[4].plan, h.reshape(5, 16))          # time-major: index t·4 + c
    np.testing.assert_array_equal(network(plan, x), want)
    with pytest.raises(ValueError, match=re.escape(
            "x must have shape (steps, 2) or (sequences, steps, 2), not (5, 8)")):
        network(plan, x[..., 0])


@pytest.mark.parametrize("order, message", [
    ([0, 4], "layer 'fc' (dense) takes vectors but layer 'conv1' gives sequences (put a flatten "
             "between)"),
    ([3, 4], "the first layer must give the network its input format; a flatten has none"),
    ([0, 1, 2, 4], "layer 'fc' (dense) takes vectors but layer 'pool' gives sequences"),
])
def test_sequence_chain_errors(order, message):
    _, layers = cnn_plan()
    with pytest.raises(ValueError, match=re.escape(message)):
        plan_network([layers[k] for k in order])


def test_sequence_float_model_matches_pytorch_semantics():
    from hwnn.ref.conv1d import conv1d_float
    from hwnn.ref.network import network_float
    plan, layers = cnn_plan()
    rng = np.random.default_rng(2)
    w_conv, b_conv = rng.uniform(-1, 1, (4, 2, 3)), rng.uniform(-.3, .3, 4)
    w_fc = rng.uniform(-1, 1, (3, 16))
    x = rng.uniform(-1, 1, (3, 8, 2))
    outs = network_float(plan, {"conv1": (w_conv, b_conv), "fc": (w_fc, None)}, x)
    h = np.maximum(conv1d_float(w_conv, b_conv, x, padding="same"), 0)
    pooled = np.maximum(h[:, 0::2], h[:, 1::2])
    np.testing.assert_allclose(outs[2], pooled, rtol=0, atol=0)
    np.testing.assert_allclose(outs[4], pooled.reshape(3, 16) @ w_fc.T, rtol=0, atol=1e-12)


CNN_SPEC = '''[core]
kind = "network"
name = "cnn"
[params]
in_format = "SQ(1,7)"
weights = "cnn.npz"
weight_format = "SQ(1,7)"
sequence_length = 8
[[params.layers]]
kind = "conv1d"
name = "conv1"
out_format = "SQ(3,5)"
padding = "same"
[[params.layers]]
kind = "activation"
name = "act"
function = "relu"
out_format = "SQ(3,5)"
[[params.layers]]
kind = "pool"
name = "pool"
pool = "max"
kernel_size = 2
[[params.layers]]
kind = "flatten"
name = "flat"
[[params.layers]]
kind = "dense"
name = "fc"
out_format = "SQ(4,4)"
'''


def test_cnn_spec_follows_pytorch_layouts(tmp_path):
    from hwnn.ref.conv1d import conv1d, conv1d_float
    from hwnn.ref.pool import pool1d
    rng = np.random.default_rng(0)
    arrays = {"conv1.weight": rng.uniform(-.5, .5, (4, 2, 3)), "conv1.bias": rng.uniform(-.2, .2, 4),
              "fc.weight": rng.uniform(-.5, .5, (3, 16)), "fc.bias": rng.uniform(-.2, .2, 3)}
    np.savez(tmp_path / "cnn.npz", **arrays)
    (tmp_path / "cnn.toml").write_text(CNN_SPEC)
    design = load_spec(tmp_path / "cnn.toml")
    plan = design.plan
    assert plan.lanes == ((2, 4), (4, 4), (4, 4), (4, 16), (16, 3)) and plan.sequences == (True, False)
    # The float model is PyTorch's: conv, relu, pool, channel-major flatten, linear.
    x = rng.uniform(-1, 1, (5, 8, 2))
    h = np.maximum(conv1d_float(arrays["conv1.weight"], arrays["conv1.bias"], x, padding="same"), 0)
    pooled = np.maximum(h[:, 0::2], h[:, 1::2])
    torch = pooled.transpose(0, 2, 1).reshape(5, 16) @ arrays["fc.weight"].T + arrays["fc.bias"]
    np.testing.assert_allclose(design.float_model(x)[-1], torch, rtol=0, atol=1e-12)
    # The quantized reference: the dense weights were permuted to the stream's (time-major)
    # order, so the integer chain with a time-major flatten is PyTorch's layer order too.
    codes = rng.integers(-128, 128, (5, 8, 2))
    layers = plan.layers
    h = pool1d(layers[2].plan, activation(layers[1].plan, conv1d(layers[0].plan, codes)))
    np.testing.assert_array_equal(design.reference(codes), dense(layers[4].plan, h.reshape(5, 16)))
    stream_columns = layers[4].plan.weight
    torch_columns = plan_dense(arrays["fc.weight"], arrays["fc.bias"], in_format=SQ(3, 5),
                               weight_format=SQ(1, 7), out_format=SQ(4, 4)).weight
    np.testing.assert_array_equal(stream_columns, torch_columns.reshape(3, 4, 4)
                                  .transpose(0, 2, 1).reshape(3, 16))


@pytest.mark.parametrize("edit, field, message", [
    (("sequence_length = 8\n", ""), "params.sequence_length",
     "missing: a flatten needs the length of the network's input sequences"),
    (('padding = "same"', 'padding = "full"'), "params.layers[0].padding",
     'must be "valid", "same", an integer >= 0 or [left, right], not \'full\''),
    (('pool = "max"', 'pool = "min"'), "params.layers[2].pool", "must be one of max | avg"),
    (("sequence_length = 8", "sequence_length = 1"), "params.sequence_length",
     "1 steps leave no output step after layer 'pool': give longer sequences"),
    (('padding = "same"', 'padding = "same"\nparallelism = 25'), "params.layers[0].parallelism",
     "must be between 1 and 24 (the products of a group), not 25"),
])
def test_cnn_spec_errors(tmp_path, edit, field, message):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "cnn.npz", **{"conv1.weight": rng.uniform(-.5, .5, (4, 2, 3)),
                                      "fc.weight": rng.uniform(-.5, .5, (3, 16))})
    (tmp_path / "cnn.toml").write_text(CNN_SPEC.replace(*edit))
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "cnn.toml")
    assert info.value.field == field and message in info.value.message


def test_conv_activation_conv_core_is_bit_exact_over_sequences():
    from hwnn.plans.conv1d import plan_conv1d
    from hwnn.sim.frames import frame, unframe
    rng = np.random.default_rng(0)
    c1 = plan_conv1d(rng.uniform(-.5, .5, (4, 2, 3)), rng.uniform(-.2, .2, 4), in_format=SQ(1, 7),
                     weight_format=SQ(1, 7), out_format=SQ(3, 5), padding="same")
    act = plan_activation("tanh", SQ(3, 5), SQ(1, 7), method="lut")
    c2 = plan_conv1d(rng.uniform(-.5, .5, (3, 4, 2)), None, in_format=SQ(1, 7),
                     weight_format=SQ(1, 7), out_format=SQ(3, 5), stride=2)
    plan = plan_network([Layer("c1", "conv1d", c1, MappingProxyType({"parallelism": 6})),
                         Layer("a", "activation", act),
                         Layer("c2", "conv1d", c2, MappingProxyType({"arith": "mcm"}))])
    core = Network(plan)
    # c1: 24 products on 6 multipliers, ii_d 4 per step; c2 shift-add, stride 2, paced to
    # take its windows no closer than c1 sends them... c2 is last, so it needs no pace.
    assert core.ii == 4 and core.cores[2].take_ii == 1
    assert core.latency == sum(inspected(c).latency for c in core.cores)
    x = rng.integers(-128, 128, (6, 9, 2))
    want = network(plan, x)
    run = run_stream(core, frame(x), n_outputs=want.shape[0] * want.shape[1], stall_in=0.3,
                     stall_out=0.3, seed=1)
    np.testing.assert_array_equal(unframe(run.outputs, *want.shape[:2]), want)
    steady = run_stream(core, frame(x), n_outputs=want.shape[0] * want.shape[1])
    np.testing.assert_array_equal(unframe(steady.outputs, *want.shape[:2]), want)
    in_cycles, out_cycles = core.schedule([9] * 6)
    np.testing.assert_array_equal(steady.in_cycles, in_cycles)
    np.testing.assert_array_equal(steady.out_cycles, out_cycles)


def write_cnn(tmp_path, text=CNN_SPEC):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "cnn.npz", **{
        "conv1.weight": rng.uniform(-.5, .5, (4, 2, 3)), "conv1.bias": rng.uniform(-.2, .2, 4),
        "fc.weight": rng.uniform(-.5, .5, (3, 16)), "fc.bias": rng.uniform(-.2, .2, 3)})
    (tmp_path / "cnn.toml").write_text(text)
    return tmp_path / "cnn.toml"


def test_cli_runs_a_cnn_over_sequences(tmp_path, capsys):
    from hwnn import cli
    spec = write_cnn(tmp_path)
    assert cli.main(["plan", str(spec)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"conv1\s+conv1d mult\s+SQ\(1, 7\) -> SQ\(3, 5\)\s+2 -> 4 ch\s+24", out)
    assert re.search(r"flat\s+flatten\s+SQ\(3, 5\) -> SQ\(3, 5\)\s+4x4 -> 16", out)
    # Per sequence: the conv's 24 multiplications at each of 8 steps, the dense's 48 once.
    assert "complexity per input sequence: RM 240," in out
    # conv1 has one multiplier for 24 products: 24 cycles a step, 8 steps a sequence.
    assert "ii           24\n" in out
    assert "back to back, a sequence of 8 steps every 192 cycles (24 per step)" in out
    assert cli.main(["sim", str(spec), "--vectors", "12", "--engine", "pysim", "--float"]) == 0
    out = capsys.readouterr().out
    assert "cnn: 12 sequences bit-exact (core == reference)" in out
    assert re.search(r"pool\s+SQ\(3, 5\)\s+[0-9.e-]+", out)
    assert "timing of every input and output" not in out    # stalls: no model to check
    assert cli.main(["sim", str(spec), "--vectors", "12", "--engine", "pysim",
                     "--stall", "0"]) == 0
    assert "timing of every input and output: as modelled\n" in capsys.readouterr().out
    x = np.random.default_rng(5).uniform(-1, 1, (4, 8, 2))
    np.save(tmp_path / "x.npy", x)
    assert cli.main(["sim", str(spec), "--inputs", str(tmp_path / "x.npy"), "--output",
                     str(tmp_path / "y.npy"), "--engine", "pysim"]) == 0
    design = load_spec(spec)
    codes = np.round(x * 128).clip(-128, 127).astype(np.int64)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), design.reference(codes) / 16)
    np.save(tmp_path / "bad.npy", x[:, :5])
    assert cli.main(["sim", str(spec), "--inputs", str(tmp_path / "bad.npy")]) == 2
    assert "need shape (sequences, 8, 2)" in capsys.readouterr().err
    assert cli.main(["generate", str(spec), "-o", str(tmp_path / "gen")]) == 0
    assert (tmp_path / "gen" / "cnn.v").is_file() and (tmp_path / "gen" / "cnn_tb.v").is_file()
    # 100 sequences of 8 steps in, one vector per sequence out.
    assert len((tmp_path / "gen" / "cnn_in.hex").read_text().splitlines()) == 800
    assert len((tmp_path / "gen" / "cnn_out.hex").read_text().splitlines()) == 100


def test_a_network_of_sequences_out_checks_every_last(tmp_path, capsys):
    from hwnn import cli
    # Without the flatten and dense: sequences out, (sequences, steps, channels).
    text = CNN_SPEC[:CNN_SPEC.index("[[params.layers]]\nkind = \"flatten\"")]
    spec = write_cnn(tmp_path, text.replace('weights = "cnn.npz"', 'weights = "conv.npz"'))
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "conv.npz", **{"conv1.weight": rng.uniform(-.5, .5, (4, 2, 3))})
    assert cli.main(["sim", str(spec), "--vectors", "6", "--engine", "pysim", "--output",
                     str(tmp_path / "y.npy")]) == 0
    assert np.load(tmp_path / "y.npy").shape == (6, 4, 4)
    assert "cnn: 6 sequences bit-exact" in capsys.readouterr().out


def test_balance_counts_each_layers_rate_over_sequences():
    # conv (stride 1) sees every step; after max pool 2 and a flatten of 4 steps the dense
    # layer sees one vector per 8 input steps.
    plan, _ = cnn_plan()
    for target in (1, 2, 3, 6, 24):
        balanced = balance(plan, target)
        conv, fc = balanced.layer("conv1"), balanced.layer("fc")
        assert conv.options["parallelism"] == -(-24 // target)     # 4 outputs x (2 x 3) taps
        assert fc.options["parallelism"] == -(-48 // (8 * target))


def test_cnn_spec_takes_uneven_padding(tmp_path):
    from hwnn.ref.conv1d import conv1d
    design = load_spec(write_cnn(tmp_path, CNN_SPEC.replace('padding = "same"',
                                                            'padding = [2, 0]')))
    conv = design.plan.layer("conv1").plan
    assert conv.padding == (2, 0)
    x = np.random.default_rng(3).integers(-128, 128, (2, 8, 2))
    # Causal: output t sees inputs t-2 .. t only (changing a later input changes nothing).
    y = conv1d(conv, x)
    later = x.copy()
    later[:, 5:] = 0
    np.testing.assert_array_equal(conv1d(conv, later)[:, :5], y[:, :5])


@pytest.mark.parametrize("ends_in_sequences", [False, True])
def test_generated_testbench_checks_a_network_over_sequences(tmp_path, ends_in_sequences):
    import shutil
    import subprocess
    from hwnn.flow import generate
    from verilator_tool import binary, missing, run as run_verilator
    text = CNN_SPEC
    if ends_in_sequences:
        text = CNN_SPEC[:CNN_SPEC.index('[[params.layers]]\nkind = "flatten"')]
    spec = write_cnn(tmp_path, text)
    if ends_in_sequences:  # no dense layer: its arrays would be refused as unused
        arrays = dict(np.load(tmp_path / "cnn.npz"))
        np.savez(tmp_path / "cnn.npz", **{k: v for k, v in arrays.items() if "conv" in k})
    design = load_spec(spec)
    written = generate(design, tmp_path / "gen", testbench=12, seed=3)
    expected = (tmp_path / "gen" / "cnn_out.hex").read_text().splitlines()
    assert len(expected) == (12 * 4 if ends_in_sequences else 12)
    files = ["cnn.v", "cnn_tb.v"]
    ran = 0
    if shutil.which("iverilog"):
        subprocess.run(["iverilog", "-g2005", "-o", "tb.vvp", *files], cwd=written["testbench"]
                       .parent, check=True, capture_output=True)
        out = subprocess.run(["vvp", "-n", "tb.vvp"], cwd=written["testbench"].parent,
                             capture_output=True, text=True).stdout
        assert f"PASS {len(expected)} vectors" in out, out
        ran += 1
    if missing(binary=True) is None:
        result = run_verilator(binary("--top-module", "cnn_tb", *files, "-o", "tb"),
                               written["testbench"].parent)
        assert result.returncode == 0, result.stdout + result.stderr
        out = subprocess.run([str(written["testbench"].parent / "obj_dir" / "tb")],
                             capture_output=True, text=True).stdout
        assert f"PASS {len(expected)} vectors" in out, out
        ran += 1
    if not ran:
        pytest.skip("needs Icarus Verilog or Verilator (with make and a C++ compiler) to run "
                    "the testbench")


def test_an_activation_between_flatten_and_dense_keeps_pytorch_order(tmp_path):
    text = CNN_SPEC.replace('[[params.layers]]\nkind = "dense"', '[[params.layers]]\nkind = '
                            '"activation"\nname = "act2"\nfunction = "relu"\nout_format = '
                            '"SQ(3,5)"\n\n[[params.layers]]\nkind = "dense"')
    design = load_spec(write_cnn(tmp_path, text))
    assert [layer.name for layer in design.plan.layers][-2:] == ["act2", "fc"]
    arrays = np.load(tmp_path / "cnn.npz")
    x = np.random.default_rng(4).uniform(-1, 1, (3, 8, 2))
    h = design.float_model(x)[2]                     # after the pool: (3, 4 steps, 4 channels)
    torch = np.maximum(h.transpose(0, 2, 1).reshape(3, 16), 0) @ arrays["fc.weight"].T \
        + arrays["fc.bias"]
    np.testing.assert_allclose(design.float_model(x)[-1], torch, rtol=0, atol=1e-12)


def test_a_pool_first_is_refused_by_name(tmp_path):
    text = CNN_SPEC.replace('kind = "conv1d"\nname = "conv1"', 'kind = "pool"\nname = "p0"\n'
                            'pool = "max"\nkernel_size = 2\n\n[[params.layers]]\n'
                            'kind = "conv1d"\nname = "conv1"')
    with pytest.raises(SpecError) as info:
        load_spec(write_cnn(tmp_path, text))
    assert info.value.field == "params.layers[0].kind"
    assert "a pool cannot be the first layer" in info.value.message


@pytest.mark.synth
def test_synth_parts_of_a_cnn_build_each_layer_as_the_network_does(tmp_path):
    from hwnn.flow import composition_notes, synth_parts, synth_reports
    design = load_spec(write_cnn(tmp_path))
    parts = synth_parts(design)
    assert [name for name, _ in parts] == ["cnn_conv1", "cnn_act", "cnn_pool", "cnn_flat",
                                           "cnn_fc", "cnn"]
    reports = [r for name, build in parts
               for r in synth_reports(build, name, ["ice40-up5k"], fmax=False)]
    assert all(r.luts > 0 for r in reports)
    note, = composition_notes(design, reports)
    assert note.startswith("ice40-up5k: the network uses ")
