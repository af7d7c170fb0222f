"""The spec's binarized layers beyond weights and thresholds: the ``threshold`` layer (the sign
by default, or given thresholds, as a network's activation), a ``binary_dense`` layer's batch
norm folded when the spec loads, their Verilog in Icarus, and their errors."""

import re
import shutil

import numpy as np
import pytest
from test_testbench import run_icarus

from hwnn import cli
from hwnn.flow import simulate
from hwnn.fixed import SQ, UQ
from hwnn.plans.threshold import plan_batchnorm_sign
from hwnn.ref.binary import batchnorm_sign, binary_dot
from hwnn.spec import SpecError, load_spec

N_IN, N_HID, N_OUT = 12, 8, 4


def spec_text(first="lanes = 12", second=""):
    return f"""[core]
kind = "network"
name = "bnn"
[params]
in_format = "SQ(3,4)"
weights = "b.npz"
[[params.layers]]
kind = "threshold"
name = "sign"
{first}
[[params.layers]]
kind = "binary_dense"
name = "fc1"
pe = 4
simd = 6
bn_eps = 0.001
{second}
[[params.layers]]
kind = "binary_dense"
name = "fc2"
pe = 2
simd = 4
"""


def batchnorm_arrays(rng):
    gamma = rng.uniform(-2, 2, N_HID)
    gamma[0] = 0.0   # a constant neuron
    return {"fc1.weight": rng.integers(0, 2, (N_HID, N_IN)),
            "fc1.bn_weight": gamma, "fc1.bn_bias": rng.uniform(-1, 1, N_HID),
            "fc1.bn_mean": rng.uniform(-3, 3, N_HID), "fc1.bn_var": rng.uniform(0.5, 4, N_HID),
            "fc1.bias": rng.uniform(-1, 1, N_HID),
            "fc2.weight": rng.integers(0, 2, (N_OUT, N_HID))}


def load(tmp_path, arrays, text):
    np.savez(tmp_path / "b.npz", **arrays)
    (tmp_path / "b.toml").write_text(text)
    return load_spec(tmp_path / "b.toml")


def test_sign_then_batchnorm_layer_is_float_batchnorm_and_sign(tmp_path):
    rng = np.random.default_rng(1)
    arrays = batchnorm_arrays(rng)
    design = load(tmp_path, arrays, spec_text())
    sign, fc1, fc2 = design.plan.layers
    assert sign.kind == "activation" and sign.plan.method == "threshold"
    assert sign.plan.out_format == UQ(1, 0) and design.plan.n_in == N_IN
    # The thresholds are batch norm + sign of dot + bias folded on the dot's own format.
    want = plan_batchnorm_sign(fc1.plan.dot_format, arrays["fc1.bn_weight"],
                               arrays["fc1.bn_bias"], arrays["fc1.bn_mean"] - arrays["fc1.bias"],
                               arrays["fc1.bn_var"], 0.001)
    np.testing.assert_array_equal(fc1.plan.activation.thresholds, want.thresholds)
    # Against float64 batch norm + sign, every input code, through the whole chain.
    codes = np.repeat(SQ(3, 4).codes()[:, None], N_IN, axis=1)
    codes = codes + rng.integers(-3, 4, codes.shape)
    codes = np.clip(codes, SQ(3, 4).min_int, SQ(3, 4).max_int)
    bits = (codes >= 0).astype(np.int64)
    dot = binary_dot(bits, arrays["fc1.weight"])
    hidden = batchnorm_sign(dot + arrays["fc1.bias"], arrays["fc1.bn_weight"],
                            arrays["fc1.bn_bias"], arrays["fc1.bn_mean"], arrays["fc1.bn_var"],
                            0.001)
    np.testing.assert_array_equal(design.reference(codes),
                                  binary_dot(hidden, arrays["fc2.weight"]))
    assert np.all(hidden[:, 0] == (arrays["fc1.bn_bias"][0] >= 0))
    run = simulate(design, codes[::7], stall=0.3, seed=2, engine="pysim")
    assert run.exact, run.mismatch()
    # The float model carries the bits as 0/1 and compares the input with 0 in real values.
    floats = design.float_model(codes * 2.0 ** -4)
    np.testing.assert_array_equal(floats[0], bits)
    np.testing.assert_array_equal(floats[-1], design.reference(codes))


MID_TEXT = """[core]
kind = "network"
name = "bnn"
[params]
in_format = "UQ(1,0)"
weights = "b.npz"
[[params.layers]]
kind = "binary_dense"
name = "fc1"
pe = 2
simd = 4
[[params.layers]]
kind = "threshold"
name = "act"
out_format = "SQ(2,0)"
"""


def test_threshold_layer_with_given_thresholds_mid_network(tmp_path):
    rng = np.random.default_rng(2)
    arrays = {"fc1.weight": rng.integers(0, 2, (N_HID, N_IN)),
              "act.thresholds": np.sort(rng.integers(-6, 7, (N_HID, 3)), axis=1),
              "act.descending": rng.random(N_HID) < 0.5}
    design = load(tmp_path, arrays, MID_TEXT)
    act = design.plan.layers[1].plan
    assert act.out_format == SQ(2, 0) and act.in_format == design.plan.layers[0].out_format
    x = rng.integers(0, 2, (60, N_IN))
    run = simulate(design, x, stall=0.3, seed=3, engine="pysim")
    assert run.exact, run.mismatch()
    dots = binary_dot(x, arrays["fc1.weight"])
    count = (dots[..., None] >= arrays["act.thresholds"]).sum(axis=-1)
    want = np.where(arrays["act.descending"], 1 - count, -2 + count)
    np.testing.assert_array_equal(design.reference(x), want)
    np.testing.assert_array_equal(design.float_model(x)[-1], want)
    with pytest.raises(SpecError, match=re.escape(
            "params.layers[1].lanes: is set by the network: the number of outputs of the layer "
            "before (8)")):
        load(tmp_path, arrays, MID_TEXT + "lanes = 8\n")


@pytest.mark.parametrize("change, field, message", [
    ({"first": ""}, "lanes", "missing: a threshold layer first in the network takes the "
                             "network's input width from it"),
    ({"drop": "fc1.bn_var"}, "weights", "b.npz has no array 'fc1.bn_var' (batch norm needs "
                                        "fc1.bn_weight, fc1.bn_bias, fc1.bn_mean, fc1.bn_var)"),
    ({"add": {"fc1.thresholds": np.zeros((8, 1), np.int64)}}, "weights",
     "b.npz has both 'fc1.thresholds' and batch-norm arrays for layer 'fc1': give one"),
    ({"drop_bn": True}, "weights", "b.npz has 'fc1.bias' but no batch norm for layer 'fc1'"),
    ({"add": {"fc1.bn_mean": np.zeros(3)}}, "weights",
     "array 'fc1.bn_mean' in b.npz must hold 8 real values (one per neuron), not float64 of "
     "shape (3,)"),
    ({"add": {"fc1.bn_var": -np.ones(8)}}, "weights", "var must be non-negative"),
    ({"text": ("bn_eps = 0.001", 'bn_eps = "small"')}, "bn_eps",
     "must be a non-negative number, not 'small'"),
    ({"text": ("bn_eps = 0.001", "bn_eps = -0.5")}, "bn_eps",
     "must be a non-negative number, not -0.5"),
    ({"add": {"sign.thresholds": np.zeros((5, 1), np.int64)}}, "weights",
     "array 'sign.thresholds' in b.npz must have 1 or 12 channels (the layer's lanes), not 5"),
    ({"add": {"sign.descending": np.zeros(1, bool)}}, "weights",
     "b.npz has 'sign.descending' but no 'sign.thresholds' for layer 'sign'"),
    ({"add": {"sign.thresholds": np.full((1, 1), 99)}}, "weights",
     "thresholds must lie in [-64, 64] for SQ(3, 4), not 99"),
])
def test_errors_name_the_field(tmp_path, change, field, message):
    rng = np.random.default_rng(3)
    arrays = batchnorm_arrays(rng)
    arrays.update(change.get("add", {}))
    arrays.pop(change.get("drop"), None)
    if change.get("drop_bn"):
        for key in ("bn_weight", "bn_bias", "bn_mean", "bn_var"):
            arrays.pop(f"fc1.{key}")
    text = spec_text(change.get("first", "lanes = 12"), change.get("second", ""))
    if "text" in change:
        text = text.replace(*change["text"])
    with pytest.raises(SpecError, match=re.escape(message)) as info:
        load(tmp_path, arrays, text)
    index = 0 if field == "lanes" or any(key.startswith("sign.") for key in
                                         change.get("add", {})) else 1
    assert f"layers[{index}].{field}" in str(info.value)


def test_generated_verilog_runs_bit_exact_in_icarus(tmp_path):
    rng = np.random.default_rng(4)
    load(tmp_path, batchnorm_arrays(rng), spec_text(second='weight_ram = "block"'))
    assert cli.main(["generate", str(tmp_path / "b.toml"), "-o", str(tmp_path / "out"),
                     "--testbench", "40"]) == 0
    if not shutil.which("iverilog"):
        pytest.skip("needs Icarus Verilog (iverilog) to run the generated testbench")
    out = run_icarus(tmp_path / "out", name="bnn")
    assert "PASS 40 vectors" in out, out
