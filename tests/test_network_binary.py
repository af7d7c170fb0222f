# amaranth: UnusedElaboratable=no
"""Binarized dense layers (kind ``binary_dense``) in networks: the chain against the reference
under stalls, its timing, the spec (weights as bits or ±1, thresholds), the CLI, metrics."""

import re

import numpy as np
import pytest

from hwnn import cli
from hwnn.cores._component import inspected
from hwnn.cores.binary_dense import BinaryDense
from hwnn.cores.network import Network
from hwnn.fixed import SQ, UQ
from hwnn.flow import plan_info, simulate
from hwnn.metrics import layer_metrics, network_metrics
from hwnn.plans.binary_dense import plan_binary_dense
from hwnn.plans.network import Layer, plan_network
from hwnn.plans.threshold import ThresholdPlan
from hwnn.ref.binary import dot_range
from hwnn.ref.network import network, network_float, network_layers
from hwnn.sim import make_vectors, run_stream
from hwnn.spec import SpecError, load_spec


def thresholds_for(rng, lo, hi, n_out, f=0):
    """One threshold per neuron inside the dot product's range (a batch-norm-like sign)."""
    values = rng.integers(lo // 2, hi // 2, (n_out, 1), endpoint=True)
    return ThresholdPlan(SQ(20 - f, f), UQ(1, 0), values, rng.random(n_out) < 0.25)


def bnn(seed=0):
    """SQ(1,3) inputs → 16 bits → 8 bits → 4 dot products."""
    rng = np.random.default_rng(seed)
    w1, w2, w3 = (rng.integers(0, 2, shape) for shape in ((16, 8), (8, 16), (4, 8)))
    fmt = SQ(1, 3)
    first = plan_binary_dense(w1, in_encoding=fmt, pe=8, simd=2,
                              thresholds=thresholds_for(rng, *dot_range(8, "integer",
                                                                        "bipolar", fmt), 16, 3))
    hidden = plan_binary_dense(w2, pe=2, simd=8, popcount_pipeline=1,
                               thresholds=thresholds_for(rng, -16, 16, 8))
    last = plan_binary_dense(w3, pe=4, simd=4)
    return plan_network([Layer("fc1", "binary_dense", first),
                         Layer("fc2", "binary_dense", hidden),
                         Layer("fc3", "binary_dense", last)])


def test_network_of_binary_layers_equals_reference_under_stalls():
    plan = bnn()
    assert plan.lanes == ((8, 16), (16, 8), (8, 4)) and plan.out_format == SQ(5, 0)
    assert plan.in_format == SQ(1, 3) and plan.ii == 8
    x = make_vectors(SQ(1, 3), 8, 60, seed=2)
    run = run_stream(Network(plan), x, stall_in=0.3, stall_out=0.4, seed=3)
    np.testing.assert_array_equal(run.outputs, network(plan, x))


def test_network_timing_is_its_layers():
    plan = bnn(1)
    core = inspected(Network(plan))
    layers = [inspected(BinaryDense(layer.plan)) for layer in plan.layers]
    assert core.ii == max(layer.ii for layer in layers) == 8
    assert core.latency == sum(layer.latency for layer in layers)
    x = make_vectors(SQ(1, 3), 8, 12, seed=4)
    run = run_stream(Network(plan), x)
    assert set(run.latencies.tolist()) == {core.latency}
    assert set(np.diff(run.in_cycles).tolist()) == {core.ii}


def test_float_model_is_exact_on_codes():
    # The first layer's real dot products of the codes' values are the codes' dot products
    # scaled by 2**-3, so every threshold decides alike; the layers after it round nothing.
    plan = bnn(2)
    x = make_vectors(SQ(1, 3), 8, 40, seed=5)
    for got, want in zip(network_float(plan, {}, x / 8.0), network_layers(plan, x)):
        np.testing.assert_array_equal(got, want)


def test_metrics_count_binary_operations():
    plan = bnn(3)
    metrics = network_metrics([(layer.name, layer.plan) for layer in plan.layers])
    fc1, fc2, fc3 = (m for _, m in metrics.layers)
    # fc1: integer inputs, 16 neurons × 4 groups of 2 codes: a sum of 2 per group and an
    # accumulation per group; 16 comparisons; no bit functions.
    assert (fc1.rm, fc1.xnors, fc1.additions, fc1.shifts, fc1.comparisons) == (0, 0, 128, 0,
                                                                               16)
    # fc2: 8 × 16 XNORs, popcounts of 8 bits (7 additions) per word, 8·2 words.
    assert (fc2.xnors, fc2.additions, fc2.shifts, fc2.comparisons) == (128, 16 * 7 + 16, 16,
                                                                       8)
    assert fc3.xnors == 32 and fc3.comparisons == 0
    assert metrics.total.xnors == 160 and "xnors" in metrics.total.describe()
    assert fc1.bop == pytest.approx(16 * 8 * (4 * 1 + 4 + 1 + 3))
    assert layer_metrics(plan.layers[1].plan).describe()["kind"] == "binary_dense"
    with pytest.raises(ValueError, match="arith does not apply to a binarized layer"):
        layer_metrics(plan.layers[1].plan, arith="mult")


def spec_text(extra_first="", extra_second=""):
    return f"""[core]
kind = "network"
name = "bnn"
[params]
in_format = "UQ(1,0)"
weights = "b.npz"
[[params.layers]]
kind = "binary_dense"
name = "fc1"
pe = 4
simd = 6
{extra_first}
[[params.layers]]
kind = "binary_dense"
name = "fc2"
pe = 2
simd = 4
{extra_second}
"""


def spec_arrays(rng):
    """PyTorch-like ±1.0 float weights for fc1, 0/1 bits for fc2; fc1 has thresholds."""
    return {"fc1.weight": np.where(rng.random((8, 12)) < 0.5, -1.0, 1.0),
            "fc1.thresholds": rng.integers(-4, 5, (8, 1)),
            "fc1.descending": rng.random(8) < 0.3,
            "fc2.weight": rng.integers(0, 2, (4, 8))}


def test_spec_simulates_bit_exact(tmp_path):
    rng = np.random.default_rng(6)
    arrays = spec_arrays(rng)
    np.savez(tmp_path / "b.npz", **arrays)
    (tmp_path / "b.toml").write_text(spec_text(extra_second='weight_ram = "logic"'))
    design = load_spec(tmp_path / "b.toml")
    fc1, fc2 = (layer.plan for layer in design.plan.layers)
    np.testing.assert_array_equal(fc1.weights, (arrays["fc1.weight"] > 0).astype(int))
    np.testing.assert_array_equal(fc1.thresholds.descending, arrays["fc1.descending"])
    assert fc1.out_format == UQ(1, 0) and fc2.in_encoding == "bipolar" and fc2.ii == 4
    assert design.plan.layers[1].options["weight_ram"] == "logic"
    assert design.plan.layers[0].options["weight_ram"] == "auto"
    x = rng.integers(0, 2, (30, 12))
    run = simulate(design, x, stall=0.25, seed=1, engine="pysim")
    assert run.exact, run.mismatch()
    info = plan_info(design)
    assert info["metrics"]["xnors"] == 8 * 12 + 4 * 8 and info["ii"] == 4


def test_cli_plan_and_sim(tmp_path, capsys):
    rng = np.random.default_rng(7)
    np.savez(tmp_path / "b.npz", **spec_arrays(rng))
    (tmp_path / "b.toml").write_text(spec_text())
    spec = str(tmp_path / "b.toml")
    assert cli.main(["plan", spec]) == 0
    out = capsys.readouterr().out
    assert "binary_dense pe 4 simd 6" in out and "UQ(1, 0) -> UQ(1, 0)" in out
    np.save(tmp_path / "x.npy", rng.integers(0, 2, (6, 12)))
    assert cli.main(["sim", spec, "--inputs", str(tmp_path / "x.npy"), "--engine",
                     "pysim"]) == 0
    assert "bnn: 6 vectors bit-exact" in capsys.readouterr().out
    assert cli.main(["generate", spec, "-o", str(tmp_path / "out"), "--testbench", "8"]) == 0
    for suffix in (".v", "_tb.v", "_in.hex", "_out.hex"):
        assert (tmp_path / "out" / f"bnn{suffix}").is_file()


@pytest.mark.parametrize("arrays, text, field, message", [
    (dict(weight=np.full((8, 12), 2)), None, "weights",
     "array 'fc1.weight' in b.npz must hold bits (0/1) or ±1, not [2]"),
    (dict(thresholds=np.zeros((8, 2), np.int64)), None, "weights",
     "array 'fc1.thresholds' in b.npz must have 2**k - 1 columns (1, 3, 7, ...), not 2"),
    (dict(descending=np.zeros(8)), None, "weights",
     "array 'fc1.descending' in b.npz must hold bools, not float64"),
    ({}, ("simd = 6", "simd = 5"), "simd", "simd must divide n_in = 12"),
    ({}, ("pe = 4", 'pe = 4\nin_encoding = "ternary"'), "in_encoding",
     "must be one of binary | bipolar | integer, not 'ternary'"),
    ({}, ("pe = 4", 'pe = 4\nweight_ram = "spram"'), "weight_ram",
     "must be one of auto | block | logic, not 'spram'"),
])
def test_spec_errors_name_the_field(tmp_path, arrays, text, field, message):
    rng = np.random.default_rng(8)
    contents = spec_arrays(rng)
    contents.update({f"fc1.{key}": value for key, value in arrays.items()})
    np.savez(tmp_path / "b.npz", **contents)
    spec = spec_text()
    if text is not None:
        spec = spec.replace(*text, 1)
    (tmp_path / "b.toml").write_text(spec)
    with pytest.raises(SpecError, match=re.escape(message)) as info:
        load_spec(tmp_path / "b.toml")
    assert f"layers[0].{field}" in str(info.value)


def test_one_bit_encoding_needs_one_bit_inputs(tmp_path):
    rng = np.random.default_rng(9)
    np.savez(tmp_path / "b.npz", **spec_arrays(rng))
    (tmp_path / "b.toml").write_text(spec_text('in_encoding = "binary"').replace(
        'in_format = "UQ(1,0)"', 'in_format = "SQ(1,3)"'))
    with pytest.raises(SpecError, match=re.escape(
            "'binary' takes one bit per input (UQ(1, 0)), but the layer gets SQ(1, 3); use "
            "\"integer\"")):
        load_spec(tmp_path / "b.toml")
