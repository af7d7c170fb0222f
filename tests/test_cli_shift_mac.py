import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from hwnn import cli
from hwnn.cores._component import inspected
from hwnn.fixed import SQ
from hwnn.plans.shift_mac import plan_shift_mac
from hwnn.spec import load_spec


def refusal(**kwargs):
    """plan_shift_mac's error for ``kwargs`` (the spec passes it on at its field)."""
    try:
        plan_shift_mac(8, 4, in_format=SQ(1, 7), weight_format=SQ(1, 7), out_format=SQ(3, 5),
                       **kwargs)
    except ValueError as exc:
        return exc
    raise AssertionError("plan_shift_mac accepted parameters the test expects it to reject")


SPEC = """\
[core]
kind = "shift_mac"
name = "pot_fc"

[params]
in_format = "SQ(1,7)"
weight_format = "SQ(1,7)"
out_format = "SQ(3,5)"
weight_terms = 2
parallelism = 4
weights = "pot_fc.npz"
saturate_weights = true
"""


@pytest.fixture
def spec(tmp_path):
    rng = np.random.default_rng(7)
    weight = rng.uniform(-1, 1, (4, 8))
    weight[0, 0] = 1.5  # beyond SQ(1,7): saturates to 127/128
    np.savez(tmp_path / "pot_fc.npz", weight=weight, bias=rng.uniform(-0.25, 0.25, 4))
    path = tmp_path / "pot_fc.toml"
    path.write_text(SPEC)
    return path


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_spec_quantizes_the_initial_weights_to_pot2(spec):
    design = load_spec(spec)
    assert design.kind == "shift_mac" and design.in_lanes == 8 and design.out_lanes == 4
    assert design.info == {"saturated_weights": 1}
    core = inspected(design.build())
    weight = np.load(spec.with_suffix(".npz"))["weight"]
    np.testing.assert_array_equal(core.initial_weights,
                                  design.plan.code.quantize(weight))
    assert core.initial_weights[0, 0] == 127 and core.parallelism == 4
    x = np.array([[1] * 8, [-128] * 8])
    from hwnn.ref.shift_mac import shift_mac
    np.testing.assert_array_equal(design.reference(x),
                                  shift_mac(design.plan, core.initial_weights, x))


def test_weights_that_do_not_fit_are_an_error_unless_saturated(capsys, spec):
    spec.write_text(SPEC.replace("saturate_weights = true\n", ""))
    code, _, err = run(capsys, "plan", spec)
    assert code == 2
    assert err == (f"hwnn: error: {spec}: params.weights: 1 weights in pot_fc.npz do not fit "
                   f"the weights the code can express; widen weight_format, or set "
                   f"saturate_weights = true to clamp them\n")


def test_plan_prints_the_code_timing_and_saturation(capsys, spec):
    code, out, _ = run(capsys, "plan", spec)
    assert code == 0
    assert "shift_mac" in out and "weight_code" in out and "pot2" in out
    assert re.search(r"^latency +13$", out, re.MULTILINE)
    assert re.search(r"^weight_code +pot2$", out, re.MULTILINE)
    assert "note: 1 weights were outside SQ(1, 7) and were saturated" in out
    code, out, _ = run(capsys, "plan", spec, "--json")
    info = json.loads(out)
    assert (info["ii"], info["latency"], info["lanes"]) == (8, 13, 4)
    assert info["acc_format"] == "SQ(6, 14)" and info["saturated_weights"] == 1


def test_sim_is_bit_exact_with_stalls(capsys, spec):
    code, out, _ = run(capsys, "sim", spec, "--vectors", 40, "--stall", 0.3)
    assert code == 0
    assert "pot_fc: 40 vectors bit-exact (core == reference)" in out
    assert "latency 13 cycles, ii 8" in out


def test_generate_writes_a_testbench_that_holds_the_weight_port_idle(capsys, spec, tmp_path):
    code, out, err = run(capsys, "generate", spec, "-o", tmp_path / "out")
    assert code == 0
    for suffix in (".v", ".il", ".json", "_tb.v", "_in.hex", "_out.hex"):
        assert (tmp_path / "out" / f"pot_fc{suffix}").is_file()
    assert "note: the testbench holds i_weight idle, so pot_fc runs with its initial " \
           "weights\n" in err
    if shutil.which("iverilog") and shutil.which("vvp"):   # the run itself: tests/test_verilog_sim
        out_dir = tmp_path / "out"
        subprocess.run(["iverilog", "-g2005", "-o", out_dir / "tb", out_dir / "pot_fc.v",
                        out_dir / "pot_fc_tb.v"], check=True)
        result = subprocess.run(["vvp", "-n", out_dir / "tb"], capture_output=True, text=True)
        assert result.returncode == 0 and "PASS" in result.stdout
    manifest = json.loads((tmp_path / "out" / "pot_fc.json").read_text())
    assert "i_weight__payload" in [p["name"] for p in manifest["ports"]]


def test_spec_without_weights_takes_the_shape(capsys, tmp_path):
    (tmp_path / "s.toml").write_text(
        '[core]\nkind = "shift_mac"\nname = "s"\n[params]\nin_format = "UQ(1,7)"\n'
        'weight_format = "SQ(2,6)"\nout_format = "SQ(4,4)"\nn_in = 3\nn_out = 5\n'
        'weight_e_min = 2\nweight_exponent_bits = 2\nrounding = "trunc"\n')
    design = load_spec(tmp_path / "s.toml")
    assert design.info == {}
    assert not inspected(design.build()).initial_weights.any()
    assert design.plan.code.e_min == 2 and design.plan.code.e_max == 5
    code, out, _ = run(capsys, "sim", tmp_path / "s.toml", "--vectors", 10)
    assert code == 0 and "10 vectors bit-exact" in out


@pytest.mark.parametrize("params, message", [
    ('weight_terms = 3\nweights = "pot_fc.npz"', "params.weight_terms: must be between 1 and 2, "
                                                 "not 3"),
    ('weights = "pot_fc.npz"\nn_in = 7', "params.n_in: is 7 but array 'weight' has shape (4, 8) "
                                         "(n_out x n_in)"),
    ("n_in = 8", "params.n_out: missing (required when no weights file gives the shape)"),
    ('weights = "pot_fc.npz"\nparallelism = 33', "params.parallelism: must be between 1 and 32, "
                                                 "not 33"),
    ('weights = "pot_fc.npz"\nweight_e_min = 9',
     f"params.weight_e_min: {refusal(weight_e_min=9)}"),
    ('weights = "pot_fc.npz"\nweight_exponent_bits = 7',
     f"params.weight_exponent_bits: {refusal(weight_exponent_bits=7)}"),
    ('weights = "pot_fc.npz"\nslopes = "pot"',
     "params.slopes: unknown field; params takes in_format, n_in, n_out, out_format, overflow, "
     "parallelism, rounding, saturate_weights, weight_e_min, weight_exponent_bits, "
     "weight_format, weight_terms, weights"),
    ('weights = "missing.npz"', "params.weights: file not found: {dir}/missing.npz"),
])
def test_spec_errors_are_one_line_and_name_the_field(capsys, spec, params, message):
    text = SPEC.split("[params]")[0] + "[params]\n" + \
        'in_format = "SQ(1,7)"\nweight_format = "SQ(1,7)"\nout_format = "SQ(3,5)"\n' + params + "\n"
    spec.write_text(text)
    code, _, err = run(capsys, "plan", spec)
    assert code == 2
    assert err == f"hwnn: error: {spec}: {message.format(dir=spec.parent)}\n"


@pytest.mark.synth
def test_synth_uses_no_dsp(capsys, spec, tmp_path):
    code, out, _ = run(capsys, "synth", spec, "--json", tmp_path / "r.json")
    assert code == 0 and "pot_fc" in out
    report = json.loads((tmp_path / "r.json").read_text())[0]
    assert report["dsps"] == 0 and report["luts"] > 0
