"""Every core kind's exported Verilog and testbench in Icarus Verilog and Verilator.

The testbench is a test too: it passes with exit status 0 on the reference's vectors, and fails
with a non-zero exit status on a corrupted expected value or a missing vector file, in both
simulators, from any working directory. The exported Verilog lints clean with ``-Wall``.
"""

import shutil
import subprocess

import pytest

from hwnn.export import export
from verilog_designs import ALL_KINDS, KINDS, build, needs, write

NAME = "dut_core"
FILES = [f"{NAME}.v", f"{NAME}_tb.v"]


def corrupt(directory, index=7):
    """Flip the low bit of expected vector ``index``."""
    path = directory / f"{NAME}_out.hex"
    lines = path.read_text().splitlines()
    lines[index] = format(int(lines[index], 16) ^ 1, f"0{len(lines[index])}x")
    path.write_text("\n".join(lines) + "\n")


def run(command, cwd):
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    return result.returncode, result.stdout + result.stderr


def check_runs(simulate, directory, elsewhere):
    """``simulate(cwd)`` -> (exit status, output) passes from ``directory`` and from
    ``elsewhere``, then fails on a corrupted expected value and on a missing file."""
    for cwd in (directory, elsewhere):
        code, out = simulate(cwd)
        assert code == 0 and "PASS 40 vectors" in out, out
    corrupt(directory)
    code, out = simulate(elsewhere)
    assert code != 0, out
    assert "MISMATCH vector 7" in out and "FAIL 1 of 40 vectors mismatched" in out, out
    assert "PASS" not in out
    (directory / f"{NAME}_in.hex").unlink()
    code, out = simulate(elsewhere)
    assert code != 0, out
    assert f"cannot open {NAME}_in.hex beside" in out and "PASS" not in out, out
    return code


@needs("iverilog", "vvp")
@pytest.mark.parametrize("kind", KINDS)
def test_icarus_runs_every_kind(tmp_path, kind):
    directory, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    write(kind, directory, NAME)
    code, out = run(["iverilog", "-g2005", "-Wall", "-o", "tb.vvp", *FILES], directory)
    assert code == 0 and "error" not in out.lower(), out
    assert check_runs(lambda cwd: run(["vvp", "-n", str(directory / "tb.vvp")], cwd),
                      directory, elsewhere) == 1   # vvp's exit status after $fatal


@needs("iverilog", "vvp")
def test_icarus_finds_moved_files_beside_the_testbench(tmp_path):
    # The files moved after hwnn wrote them, compiled and run from the parent directory: the
    # testbench finds them through the path the simulator was given (`__FILE__).
    write("requantize", tmp_path / "first", NAME)
    (tmp_path / "first").rename(tmp_path / "moved")
    code, out = run(["iverilog", "-g2005", "-o", "tb.vvp", *(f"moved/{f}" for f in FILES)],
                    tmp_path)
    assert code == 0, out
    code, out = run(["vvp", "-n", "tb.vvp"], tmp_path)
    assert code == 0 and "PASS 40 vectors" in out, out


@needs("verilator")
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_verilator_lints_every_kind(tmp_path, kind):
    export(build(kind, tmp_path)[0], NAME, tmp_path, formats=("verilog",))
    assert run(["verilator", "--lint-only", "-Wall", f"{NAME}.v"], tmp_path) == (0, "")


@needs("verilator")
@pytest.mark.parametrize("kind", KINDS)
def test_verilator_runs_every_kind(tmp_path, kind):
    directory, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    write(kind, directory, NAME)
    # -Wall on the exported module and the testbench: a warning would stop the build.
    code, out = run(["verilator", "--binary", "-Wall", "--top-module", f"{NAME}_tb", *FILES,
                     "-o", "tb"], directory)
    assert code == 0, out
    binary = str(directory / "obj_dir" / "tb")
    # $fatal makes a Verilator binary abort: killed by SIGABRT (exit status 134 in a shell).
    assert check_runs(lambda cwd: run([binary], cwd), directory, elsewhere) == -6


def test_needs_names_the_missing_tool():
    marker = needs("surely-not-a-tool-hwnn", "python3" if shutil.which("python3") else "sh")
    assert marker.kwargs["reason"] == ("needs surely-not-a-tool-hwnn (a system tool that pip "
                                       "does not install)")
