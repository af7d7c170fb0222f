"""The exported Verilog behaves like the reference in simulators other than Amaranth's."""

import shutil
import subprocess

import numpy as np
import pytest

from hwnn.cores._component import inspected
from hwnn.cores.dense import Dense
from hwnn.export import export
from hwnn.fixed import SQ, UQ
from hwnn.plans.dense import plan_dense
from hwnn.ref.dense import dense
from hwnn.sim import make_vectors
from hwnn.testbench import write_testbench
from verilator_tool import binary, needs_verilator, needs_verilator_binary, verilator
from verilator_tool import run as run_verilator

needs_iverilog = pytest.mark.skipif(
    shutil.which("iverilog") is None,
    reason="needs Icarus Verilog (iverilog/vvp), a system tool that pip does not install")


def make_design(tmp_path, parallelism, in_format=SQ(1, 7), out_format=SQ(3, 6), vectors=60,
                **core_options):
    rng = np.random.default_rng(parallelism or 0)
    plan = plan_dense(rng.uniform(-1, 1, (3, 5)), rng.uniform(-1, 1, 3), in_format=in_format,
                      weight_format=SQ(1, 7), out_format=out_format, rounding="half_even",
                      overflow="sat", saturate_weights=True)
    core = (Dense(plan, **core_options) if core_options
            else Dense(plan, parallelism=parallelism))
    export(core, "fc", tmp_path, formats=("verilog",))
    x = make_vectors(plan.in_format, plan.n_in, vectors, seed=3)
    write_testbench(core, "fc", x, dense(plan, x), tmp_path)
    return tmp_path


def run_icarus(directory, check=True, name="fc"):
    """Compile ``<name>.v`` and its testbench ``<name>_tb.v`` in ``directory`` with Icarus and
    run it: its output (or, with ``check`` False, the completed process)."""
    subprocess.run(["iverilog", "-g2005", "-o", "tb.vvp", f"{name}.v", f"{name}_tb.v"],
                   cwd=directory, check=True, capture_output=True)
    result = subprocess.run(["vvp", "-n", "tb.vvp"], cwd=directory, check=check,
                            capture_output=True, text=True)
    return result.stdout if check else result


@needs_iverilog
@pytest.mark.parametrize("parallelism", [1, 4, 15])
def test_icarus_runs_exported_verilog_bit_exact(tmp_path, parallelism):
    out = run_icarus(make_design(tmp_path, parallelism))
    assert "PASS 60 vectors" in out, out


@needs_iverilog
def test_icarus_unsigned_formats(tmp_path):
    out = run_icarus(make_design(tmp_path, 5, in_format=UQ(2, 4), out_format=UQ(2, 6)))
    assert "PASS 60 vectors" in out, out


@needs_iverilog
def test_testbench_detects_a_wrong_expected_value(tmp_path):
    directory = make_design(tmp_path, 3)
    lines = (directory / "fc_out.hex").read_text().splitlines()
    lines[7] = format(int(lines[7], 16) ^ 1, f"0{len(lines[7])}x")
    (directory / "fc_out.hex").write_text("\n".join(lines) + "\n")
    result = run_icarus(directory, check=False)
    assert result.returncode == 1, result.stdout  # it was 0 (after printing FAIL)
    assert "MISMATCH vector 7" in result.stdout
    assert "FAIL 1 of 60 vectors mismatched" in result.stdout + result.stderr
    assert "PASS" not in result.stdout


@needs_iverilog
def test_testbench_fails_when_its_vectors_are_missing(tmp_path):
    directory = make_design(tmp_path, 3)
    (directory / "fc_out.hex").unlink()
    result = run_icarus(directory, check=False)
    assert result.returncode == 1 and "PASS" not in result.stdout  # it printed PASS
    assert (f"cannot open fc_out.hex beside fc_tb.v, in {directory.resolve()}/ or in the working "
            f"directory") in result.stdout + result.stderr


@needs_iverilog
def test_testbench_runs_from_another_directory(tmp_path):
    directory = make_design(tmp_path / "out", 3)
    subprocess.run(["iverilog", "-g2005", "-o", str(tmp_path / "tb.vvp"), "out/fc.v",
                    "out/fc_tb.v"], cwd=tmp_path, check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for cwd in (tmp_path, directory, elsewhere):
        result = subprocess.run(["vvp", "-n", str(tmp_path / "tb.vvp")], cwd=cwd,
                                capture_output=True, text=True)
        assert result.returncode == 0 and "PASS 60 vectors" in result.stdout, result.stdout
    # The vectors really are read: a wrong one fails from everywhere. (Before, a testbench run
    # outside its directory compared x with x and printed PASS.)
    expected = directory / "fc_out.hex"
    expected.write_text(expected.read_text().replace("0", "1", 1))
    for cwd in (tmp_path, directory, elsewhere):
        result = subprocess.run(["vvp", "-n", str(tmp_path / "tb.vvp")], cwd=cwd,
                                capture_output=True, text=True)
        assert result.returncode == 1 and "MISMATCH vector " in result.stdout, result.stdout


def test_testbench_holds_other_inputs_idle(tmp_path):
    # A shift_mac's weight port is held at zero: the core runs with its initial weights.
    from hwnn.cores.shift_mac import ShiftMac
    from hwnn.plans.shift_mac import plan_shift_mac
    plan = plan_shift_mac(2, 2, in_format=SQ(1, 7), weight_format=SQ(1, 7),
                          out_format=SQ(3, 5))
    core = inspected(ShiftMac(plan))  # only its ports are read
    text = write_testbench(core, "sm", np.zeros((1, 2), int), np.zeros((1, 2), int),
                           tmp_path)["testbench"].read_text()
    width = core.weight_layout.size
    assert f"  wire [{width - 1}:0] i_weight__payload = 0;\n" in text
    assert ("  wire [0:0] i_weight__valid = 0;\n"
            "  /* verilator lint_off UNUSEDSIGNAL */  // not checked by this testbench\n"
            "  wire [0:0] i_weight__ready;\n"
            "  /* verilator lint_on UNUSEDSIGNAL */\n") in text
    assert (".i_weight__payload(i_weight__payload),\n    .i_weight__valid(i_weight__valid),\n"
            "    .i_weight__ready(i_weight__ready)\n  );") in text


@needs_verilator
def test_verilator_lints_exported_verilog(tmp_path):
    directory = make_design(tmp_path, 4)
    result = run_verilator(verilator("--lint-only", "fc.v"), directory)
    assert result.returncode == 0, result.stderr


def build_verilator(directory, *arguments):
    """``verilator --binary`` with ``arguments`` in ``directory``; fails the test if it fails."""
    result = run_verilator(binary(*arguments), directory)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_verilator_binary
def test_verilator_runs_exported_verilog_bit_exact(tmp_path):
    directory = make_design(tmp_path, 2, vectors=40)
    build_verilator(directory, "-Wno-fatal", "--top-module", "fc_tb", "fc_tb.v", "fc.v",
                    "-o", "tb")
    out = subprocess.run([str(directory / "obj_dir" / "tb")], cwd=directory, check=True,
                         capture_output=True, text=True).stdout
    assert "PASS 40 vectors" in out, out


def test_testbench_rejects_mismatched_vector_counts(tmp_path):
    rng = np.random.default_rng(0)
    plan = plan_dense(rng.uniform(-1, 1, (2, 2)), in_format=SQ(1, 7), weight_format=SQ(1, 7),
                      out_format=SQ(3, 6))
    core = inspected(Dense(plan))  # rejected before it is converted
    with pytest.raises(ValueError, match="same positive number of input and expected output "
                                         "vectors, not 3 and 2"):
        write_testbench(core, "fc", np.zeros((3, 2), int), np.zeros((2, 2), int), tmp_path)


@needs_iverilog
@needs_verilator_binary
@pytest.mark.parametrize("always_ready", [False, True])
def test_shift_add_testbench_in_icarus_and_verilator(tmp_path, always_ready):
    """A shift-add core, with and without backpressure, in both simulators."""
    directory = make_design(tmp_path, None, arith="mcm", pipeline=1, always_ready=always_ready)
    assert "PASS 60 vectors" in run_icarus(directory)
    build_verilator(directory, "--top-module", "fc_tb", "fc_tb.v", "fc.v")
    out = subprocess.run(["obj_dir/Vfc_tb"], cwd=directory, check=True, capture_output=True,
                         text=True).stdout
    assert "PASS 60 vectors" in out, out
