import json
import subprocess
import sys

import numpy as np
import pytest

from hwnn import cli
from hwnn.cores._component import inspected
from hwnn.demo import write_dense_spec
from hwnn.fixed import SQ, to_float
from hwnn.sim import EngineError, compiled, harness
from hwnn.sim.compiled import find_compiler
from hwnn.sim.verilator import find_verilator
from test_spec import refusal


@pytest.fixture
def spec(tmp_path):
    return write_dense_spec(tmp_path)


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_sim_is_bit_exact(capsys, spec):
    code, out, err = run(capsys, "sim", spec, "--vectors", 40)
    assert code == 0
    assert "demo_fc: 40 vectors bit-exact (core == reference)" in out
    assert "latency 20 cycles, ii 16" in out
    assert "simulating 40 vectors" in err


def test_sim_with_inputs_and_output_in_real_units(capsys, spec, tmp_path):
    from hwnn.spec import load_spec
    design = load_spec(spec)
    x = np.random.default_rng(1).integers(-128, 128, (25, 16)) / 128.0
    np.save(tmp_path / "x.npy", x)
    code, out, err = run(capsys, "sim", spec, "--inputs", tmp_path / "x.npy", "--output",
                         tmp_path / "y.npy")
    assert code == 0 and "25 vectors bit-exact" in out
    assert "not codes" not in err  # the inputs were exact codes: nothing rounded
    y = np.load(tmp_path / "y.npy")
    expected = to_float(design.reference((x * 128).astype(np.int64)), design.out_format)
    np.testing.assert_array_equal(y, expected)


def test_sim_reports_rounded_inputs(capsys, spec, tmp_path):
    np.save(tmp_path / "x.npy", np.full((3, 16), 0.3))
    code, _, err = run(capsys, "sim", spec, "--inputs", tmp_path / "x.npy")
    assert code == 0
    assert err.splitlines()[0] == ("hwnn: note: 48 of 48 input values are not codes of SQ(1, 7); "
                                   "they were rounded half-even and saturated")


def test_sim_fails_with_the_first_mismatch(capsys, spec, monkeypatch):
    import hwnn.spec.layers as ref

    real = ref.dense

    def off_by_one(plan, x):
        y = real(plan, x).copy()
        y[5, 2] += 1
        return y
    monkeypatch.setattr(ref, "dense", off_by_one)
    code, out, _ = run(capsys, "sim", spec, "--vectors", 20, "--stall", 0)
    assert code == 1
    assert "MISMATCH in 1 of 20 vectors; first at vector 5, output 2" in out


def test_sim_writes_vcd(capsys, spec, tmp_path):
    code, _, _ = run(capsys, "sim", spec, "--vectors", 3, "--vcd", tmp_path / "w.vcd")
    assert code == 0 and "$enddefinitions" in (tmp_path / "w.vcd").read_text()


def test_generate_writes_verilog_manifest_and_testbench(capsys, spec, tmp_path):
    code, out, _ = run(capsys, "generate", spec, "-o", tmp_path / "out", "--testbench", 10)
    assert code == 0
    for suffix in (".v", ".il", ".json", "_tb.v", "_in.hex", "_out.hex"):
        assert (tmp_path / "out" / f"demo_fc{suffix}").is_file()
    assert len((tmp_path / "out" / "demo_fc_in.hex").read_text().splitlines()) == 10


def test_plan_prints_formats_and_schedule(capsys, spec):
    code, out, _ = run(capsys, "plan", spec)
    assert code == 0
    assert "acc_format" in out and "SQ(4, 14)" in out and "multipliers        8" in out


@pytest.mark.parametrize("argv, message", [
    (["sim", "missing.toml"], "missing.toml: spec: file not found"),
    (["sim", "{spec}", "--vectors", "0"], "--vectors must be at least 1, not 0"),
    (["sim", "{spec}", "--stall", "1"], "--stall must be a probability in [0, 1), not 1.0"),
    (["synth", "{spec}", "--target", "ice99"],
     "--target: unknown target 'ice99'; known targets: ice40-up5k, ice40-hx8k, ecp5-25f, "
     "ecp5-45f, ecp5-85f, xc7, gowin"),
    (["generate", "{spec}", "--testbench", "-1"],
     "--testbench must be 0 (none) or a number of vectors, not -1"),
    (["sim", "{spec}", "--inputs", "{tmp}/x.npz"],
     "--inputs {tmp}/x.npz: is an .npz archive; give one array saved with np.save (.npy)"),
    (["sim", "{spec}", "--inputs", "{tmp}/complex.npy"],
     "--inputs {tmp}/complex.npy: values must be real numbers (integer or float), not dtype "
     "complex128"),
    (["sim", "{spec}", "--inputs", "{tmp}/text.npy"],
     "--inputs {tmp}/text.npy: values must be real numbers (integer or float), not dtype <U1"),
    (["sim", "{spec}", "--inputs", "{tmp}/nan.npy"],
     "--inputs {tmp}/nan.npy: values must be finite real numbers (found inf or nan)"),
    (["sim", "{spec}", "--output", "{tmp}"], "--output {tmp}: is a directory; give a file name"),
    (["sim", "{spec}", "--codes", "{tmp}"], "--codes {tmp}: is a directory; give a file name"),
    (["sim", "{spec}", "--vcd", "{tmp}"], "--vcd {tmp}: is a directory; give a file name"),
    (["sim", "{spec}", "--output", "{tmp}/d"],
     "--output {tmp}/d: {tmp}/d.npy is a directory; give a file name"),
    (["synth", "{spec}", "--json", "{tmp}/no/r.json"],
     "--json {tmp}/no/r.json: directory {tmp}/no does not exist"),
])
def test_errors_are_one_line_with_exit_2(capsys, spec, tmp_path, argv, message):
    np.savez(tmp_path / "x.npz", x=np.zeros((3, 16)))
    np.save(tmp_path / "complex.npy", np.full((3, 16), 1 + 1j))
    np.save(tmp_path / "text.npy", np.full((3, 16), "a"))
    np.save(tmp_path / "nan.npy", np.full((3, 16), np.nan))
    (tmp_path / "d.npy").mkdir()
    code, out, err = run(capsys, *[a.format(spec=spec, tmp=tmp_path) for a in argv])
    assert (code, out) == (2, "")
    assert err == f"hwnn: error: {message.format(tmp=tmp_path)}\n"


def test_a_vcd_directory_gives_no_warnings(spec, tmp_path):
    """The error used to be followed by four 'coroutine was never awaited' RuntimeWarnings."""
    result = subprocess.run([sys.executable, "-m", "hwnn.cli", "sim", str(spec), "--vectors",
                             "2", "--vcd", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr == f"hwnn: error: --vcd {tmp_path}: is a directory; give a file name\n"


def test_huge_inputs_saturate_with_a_note(capsys, spec, tmp_path):
    """Values of ±1e308 overflowed the scaling to codes and ended in a traceback."""
    np.save(tmp_path / "x.npy", np.full((2, 16), 1e308) * np.where(np.arange(16) % 2, 1, -1))
    code, out, err = run(capsys, "sim", spec, "--inputs", tmp_path / "x.npy", "--codes",
                         tmp_path / "y.npy")
    assert code == 0 and out.startswith("demo_fc: 2 vectors bit-exact")
    assert err.splitlines()[0] == ("hwnn: note: 32 of 32 input values are not codes of "
                                   "SQ(1, 7); they were rounded half-even and saturated")
    from hwnn.spec import load_spec
    x = np.tile(np.where(np.arange(16) % 2, 127, -128), (2, 1))
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), load_spec(spec).reference(x))


def test_output_names_the_file_it_wrote(capsys, spec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "sim", spec, "--vectors", 3, "--output", "y")
    assert code == 0 and (tmp_path / "y.npy").is_file()
    assert err.splitlines()[-1] == "hwnn: wrote y.npy"


WIDE = """\
[core]
kind = "dense"
name = "wide"
[params]
in_format = "SQ(8,0)"
weight_format = "SQ(8,0)"
out_format = "SQ(22,40)"
weights = "w.npz"
"""


def test_outputs_wider_than_float64_need_codes(capsys, tmp_path):
    np.savez(tmp_path / "w.npz", weight=np.array([[127.0, -128.0, 100.0]]))
    (tmp_path / "wide.toml").write_text(WIDE)
    code, out, err = run(capsys, "sim", tmp_path / "wide.toml", "--vectors", 5, "--output",
                         tmp_path / "y.npy")
    assert (code, out) == (2, "")
    assert err == ("hwnn: error: --output: SQ(22, 40) outputs have 62 bits, more than float64 "
                   "holds exactly (53); use --codes FILE.npy for the integer output codes "
                   "(value = code * 2**-40)\n")
    assert not (tmp_path / "y.npy").exists()
    code, out, err = run(capsys, "sim", tmp_path / "wide.toml", "--vectors", 5, "--codes",
                         tmp_path / "c.npy")
    assert code == 0 and err.splitlines()[-1] == f"hwnn: wrote {tmp_path / 'c.npy'}"
    from hwnn.sim import make_vectors
    from hwnn.spec import load_spec
    design = load_spec(tmp_path / "wide.toml")
    codes = np.load(tmp_path / "c.npy")
    assert codes.dtype == np.int64
    np.testing.assert_array_equal(codes, design.reference(make_vectors(SQ(8, 0), 3, 5)))
    assert np.abs(codes).max() > 2 ** 53  # beyond what float64 holds exactly


@pytest.mark.parametrize("name, field, message", [
    ("npy", "params.weights", "w.npy is a single .npy array; weights must be an .npz archive "
                              "(np.savez) with array 'weight' (and optionally 'bias')"),
    ("huge", "params.n_in", "n_out·n_in must be at most 8388608 weights (MAX_WEIGHTS = 2**23: "
                            "more than any supported device holds), not 100000·100000 = "
                            "10000000000"),
    ("wide", "params.out_format", None),
])
def test_spec_errors_are_one_line(capsys, tmp_path, name, field, message):
    np.save(tmp_path / "w.npy", np.ones((2, 3)))
    np.savez(tmp_path / "w.npz", weight=np.full((2, 3), 3.0))
    text = {"npy": WIDE.replace("w.npz", "w.npy"),
            "huge": '[core]\nkind = "shift_mac"\nname = "s"\n[params]\nin_format = "SQ(1,7)"\n'
                    'weight_format = "SQ(2,6)"\nout_format = "SQ(4,8)"\nn_in = 100000\n'
                    'n_out = 100000\n',
            "wide": WIDE.replace("SQ(22,40)", "SQ(-55,60)")}[name]
    (tmp_path / "s.toml").write_text(text)
    if message is None:  # the plan's own refusal once it has one, else the reference's
        message = refusal("dense")
    for command in ("plan", "sim", "generate"):
        code, out, err = run(capsys, command, tmp_path / "s.toml")
        assert (code, out) == (2, "")
        assert err == f"hwnn: error: {tmp_path / 's.toml'}: {field}: {message}\n"


def test_a_stalled_simulation_is_a_failed_check(capsys, spec, monkeypatch):
    """TimeoutError is an OSError: it was reported as a bad path with exit 2."""
    from hwnn import flow

    def stuck(core, *args, **kwargs):
        inspected(core)  # the real run_stream would have simulated it
        raise TimeoutError("core accepted 0 of 3 inputs in 10 cycles")
    monkeypatch.setattr(flow, "run_stream", stuck)
    code, _, err = run(capsys, "sim", spec, "--vectors", 3)
    assert code == 1
    assert err.splitlines()[-1] == ("hwnn: error: simulation stalled: core accepted 0 of 3 "
                                    "inputs in 10 cycles")


def test_shift_mac_without_weights_says_so(capsys, tmp_path):
    (tmp_path / "s.toml").write_text(
        '[core]\nkind = "shift_mac"\nname = "s"\n[params]\nin_format = "SQ(1,7)"\n'
        'weight_format = "SQ(2,6)"\nout_format = "SQ(4,8)"\nn_in = 3\nn_out = 2\n')
    code, out, err = run(capsys, "sim", tmp_path / "s.toml", "--vectors", 3)
    assert code == 0 and out.startswith("s: 3 vectors bit-exact")
    assert err.splitlines()[0] == ("hwnn: note: s has no weights file, so its weights and bias "
                                   "are all zero and every output is 0; set weights = "
                                   "\"FILE.npz\" to check real products")


def test_bad_shape_inputs(capsys, spec, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((4, 3)))
    code, _, err = run(capsys, "sim", spec, "--inputs", tmp_path / "x.npy")
    assert code == 2
    assert err == (f"hwnn: error: --inputs {tmp_path / 'x.npy'}: need shape (n, 16) with one row "
                   f"per vector, not (4, 3)\n")


def test_console_script_entry_point_exit_code(spec):
    result = subprocess.run([sys.executable, "-m", "hwnn.cli", "plan", str(spec) + ".nope"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().endswith("spec: file not found")
    assert "Traceback" not in result.stderr


def test_activation_plan_prints_the_guarantee(capsys, tmp_path):
    (tmp_path / "a.toml").write_text(
        '[core]\nkind = "activation"\nname = "a"\n[params]\nfunction = "sigmoid"\n'
        'method = "lut"\ntable_size = 128\nin_format = "SQ(4,4)"\nout_format = "UQ(0,8)"\n')
    code, out, _ = run(capsys, "plan", tmp_path / "a.toml")
    assert code == 0
    from hwnn.spec import load_spec
    error = load_spec(tmp_path / "a.toml").plan.error
    assert f"guaranteed max error {error.max_abs:.6g}" in out
    assert "measured on all 256 input codes" in out
    code, out, _ = run(capsys, "sim", tmp_path / "a.toml", "--vectors", 256)
    assert code == 0 and "256 vectors bit-exact" in out


def test_exhaustive_sim_reproduces_the_stated_bound(capsys, tmp_path):
    """A user's own check: every code through `hwnn sim`, error against float math."""
    (tmp_path / "a.toml").write_text(
        '[core]\nkind = "activation"\nname = "a"\n[params]\nfunction = "tanh"\n'
        'method = "pwl"\nsegments = 8\nin_format = "SQ(3,6)"\nout_format = "SQ(1,9)"\n')
    code, out, _ = run(capsys, "sim", tmp_path / "a.toml", "--exhaustive", "--output",
                       tmp_path / "y.npy")
    assert code == 0 and "512 vectors bit-exact" in out
    from hwnn.fixed import SQ
    from hwnn.spec import load_spec
    x = to_float(SQ(3, 6).codes(), SQ(3, 6))
    error = np.abs(np.load(tmp_path / "y.npy")[:, 0] - np.tanh(x))
    assert error.max() == load_spec(tmp_path / "a.toml").plan.error.max_abs


@pytest.mark.parametrize("argv", [
    ["sim", "{spec}", "--vectors", "3", "--output", "{missing}/y.npy"],
    ["sim", "{spec}", "--vectors", "3", "--vcd", "{missing}/w.vcd"],
    ["generate", "{spec}", "-o", "{file}/sub"],
])
def test_unwritable_paths_are_one_line_errors(capsys, spec, tmp_path, argv):
    (tmp_path / "plain_file").write_text("")
    values = dict(spec=spec, missing=tmp_path / "no" / "dir", file=tmp_path / "plain_file")
    code, _, err = run(capsys, *[a.format(**values) for a in argv])
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("hwnn: error: ") and "Traceback" not in err


@pytest.mark.synth
def test_synth_without_block_ram(capsys, tmp_path):
    (tmp_path / "a.toml").write_text(
        '[core]\nkind = "activation"\nname = "a"\n[params]\nfunction = "tanh"\n'
        'method = "lut"\nsymmetric = false\nin_format = "SQ(4,5)"\nout_format = "SQ(1,7)"\n')
    reports = []
    for extra in ([], ["--no-bram"]):
        code, _, _ = run(capsys, "synth", tmp_path / "a.toml", "--json", tmp_path / "r.json",
                         *extra)
        assert code == 0
        reports.append(json.loads((tmp_path / "r.json").read_text())[0])
    assert reports[0]["brams"] >= 1 and reports[1]["brams"] == 0
    assert reports[1]["luts"] > reports[0]["luts"]


def test_plan_prints_the_shift_add_graph(capsys, spec):
    text = spec.read_text()
    spec.write_text(text.replace("parallelism = 8", 'arith = "mcm"\npipeline = 1'))
    code, out, _ = run(capsys, "plan", spec)
    from hwnn.spec import load_spec
    graph = inspected(load_spec(spec).build()).graph
    assert code == 0
    assert (f"{graph.adders} adders, adder depth {graph.depth}, {graph.shifts} shifts, "
            f"NABS {graph.nabs}") in out
    code, out, _ = run(capsys, "sim", spec, "--vectors", 40)
    assert code == 0 and "40 vectors bit-exact" in out and "ii 1" in out


def _engines():
    """The engines this machine runs: pysim, and the compiled ones that build."""
    try:
        find_compiler("test")
    except EngineError:
        return ["pysim"]
    try:
        find_verilator()
    except EngineError:
        return ["pysim", "cxxrtl"]
    return ["pysim", "cxxrtl", "verilator"]


def test_sim_engines_agree_cycle_for_cycle(capsys, spec, tmp_path):
    reports = {}
    for engine in _engines():
        code, out, err = run(capsys, "sim", spec, "--vectors", 60, "--stall", 0.3,
                             "--engine", engine, "--vcd", tmp_path / f"{engine}.vcd")
        assert code == 0
        reports[engine] = out
        assert f" cycles/s ({engine}" in err
        assert "$enddefinitions" in (tmp_path / f"{engine}.vcd").read_text()
    # Same vectors, same cycle count, bit-exact.
    assert all(report == reports["pysim"] for report in reports.values())
    assert "demo_fc: 60 vectors bit-exact (core == reference)" in reports["pysim"]


def test_sim_auto_without_a_compiler_notes_the_fallback(capsys, spec, monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(compiled.shutil, "which", lambda name: None)
    monkeypatch.setattr(harness, "AUTO_MIN_CYCLES", 10)
    code, out, err = run(capsys, "sim", spec, "--vectors", 20)
    assert code == 0 and "20 vectors bit-exact" in out
    assert ("hwnn: engine 'auto' runs pysim: engine='auto' needs a C++ compiler: none of c++, "
            "g++, clang++ is on PATH") in err
    assert " cycles/s (pysim)" in err


@pytest.mark.parametrize("command", ["sim", "generate"])
@pytest.mark.parametrize("value", ["-1", str(2**64), "x"])
def test_bad_seed_is_a_usage_error(capsys, spec, command, value):
    with pytest.raises(SystemExit) as info:
        cli.main([command, str(spec), "--seed", value])
    assert info.value.code == 2
    assert (f"error: argument --seed: must be an integer from 0 to 2**64 - 1, not '{value}'"
            in capsys.readouterr().err)
