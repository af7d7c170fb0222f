import numpy as np
import pytest

from hwnn import flow
from hwnn.cores._component import inspected
from hwnn.demo import write_dense_spec
from hwnn.fixed import SQ
from hwnn.flow import FlowError
from hwnn.spec import load_spec
from hwnn.synth import SynthReport


def report(target, **fields):
    return SynthReport(target=target, top="t", luts=1, carries=0, ffs=1, dsps=0, brams=0,
                       cells={}, **fields)


@pytest.fixture
def design(tmp_path):
    return load_spec(write_dense_spec(tmp_path))


def test_input_codes_from_vectors_and_exhaustive(design):
    x = flow.input_codes(design, vectors=12, seed=3)
    assert x.shape == (12, 16) and x.min() >= -128 and x.max() <= 127
    with pytest.raises(FlowError) as info:
        flow.input_codes(design, vectors=0)
    assert str(info.value) == "--vectors must be at least 1, not 0"
    every = flow.input_codes(design, exhaustive=True)
    np.testing.assert_array_equal(every[:, 3], np.arange(-128, 128))


def test_read_inputs_rounds_saturates_and_counts(design, tmp_path):
    values = np.zeros((2, 16))
    values[0, :3] = [0.5, 0.3, -2.0]      # a code, a value between codes, one beyond the range
    values[1, 0] = -1e308
    np.save(tmp_path / "x.npy", values)
    notes = []
    codes = flow.read_inputs(design, tmp_path / "x.npy", note=notes.append)
    assert codes[0, :3].tolist() == [64, 38, -128] and codes[1, 0] == -128
    assert notes == ["note: 3 of 32 input values are not codes of SQ(1, 7); they were rounded "
                     "half-even and saturated"]


def test_check_output_path_adds_the_suffix_np_save_adds(tmp_path):
    assert flow.check_output_path("--output", tmp_path / "y", suffix=".npy") == \
        tmp_path / "y.npy"
    assert flow.check_output_path("--output", tmp_path / "y.npy", suffix=".npy") == \
        tmp_path / "y.npy"
    assert flow.check_output_path("--vcd", None) is None
    with pytest.raises(FlowError) as info:
        flow.check_output_path("--vcd", tmp_path)
    assert str(info.value) == f"--vcd {tmp_path}: is a directory; give a file name"


def test_simulate_compares_with_the_reference(design, monkeypatch):
    x = flow.input_codes(design, vectors=10)
    result = flow.simulate(design, x, stall=0.3, seed=2)
    assert result.exact and result.outputs.shape == (10, 8)
    np.testing.assert_array_equal(result.outputs, design.reference(x))
    assert (result.core.latency, result.core.ii) == (20, 16)
    wrong = flow.Simulation(design, result.core, x, result.outputs + (np.arange(80) == 13)
                            .reshape(10, 8), result.reference, result.cycles)
    assert not wrong.exact
    assert wrong.mismatch().startswith("demo_fc: MISMATCH in 1 of 10 vectors; first at vector "
                                       "1, output 5: core ")


def test_save_values_is_exact_or_refused(design, tmp_path):
    codes = np.array([[-2048, 2047, 1]])
    path = flow.save_values(tmp_path / "y", design, codes)
    assert path == tmp_path / "y.npy"
    np.testing.assert_array_equal(np.load(path), [[-8.0, 2047 / 256, 1 / 256]])
    wide = type(design)(**{**design.__dict__, "out_format": SQ(20, 40)})
    with pytest.raises(FlowError) as info:
        flow.save_values(tmp_path / "y", wide, codes)
    assert str(info.value) == ("--output: SQ(20, 40) outputs have 60 bits, more than float64 "
                               "holds exactly (53); use --codes FILE.npy for the integer output "
                               "codes (value = code * 2**-40)")
    big = np.array([[2 ** 60 + 1]])
    np.testing.assert_array_equal(np.load(flow.save_codes(tmp_path / "c", big)), big)


def test_generate_writes_a_testbench_from_the_reference(design, tmp_path):
    written = flow.generate(design, tmp_path / "out", testbench=5)
    assert {"verilog", "rtlil", "manifest"} < set(written)
    assert len(written) == 6 and all(path.is_file() for path in written.values())
    with pytest.raises(FlowError) as info:
        flow.generate(design, tmp_path / "out", testbench=-1)
    assert str(info.value) == "--testbench must be 0 (none) or a number of vectors, not -1"


def test_plan_info_joins_the_core_and_the_spec(design):
    info = flow.plan_info(design)
    assert info["acc_format"] == "SQ(4, 14)" and info["multipliers"] == 8


def test_synth_targets_dedupe_and_note_estimates():
    notes = []
    assert flow.synth_targets(["xc7", "ice40-up5k", "xc7", "gowin", "ice40-up5k"], fmax=True,
                              note=notes.append) == ["xc7", "ice40-up5k", "gowin"]
    assert notes == [f"note: {t} is estimate-only (yosys, no place-and-route), so it has no "
                     f"Fmax" for t in ("xc7", "gowin")]
    assert flow.synth_targets(["xc7"], note=notes.append) == ["xc7"] and len(notes) == 2
    with pytest.raises(FlowError, match=r"^--target: unknown target 'x'; known targets: "):
        flow.synth_targets(["x"])


def test_synth_reports_runs_each_target_once_and_relays_its_steps(design, monkeypatch):
    calls = []

    def fake(core, target, *, name, fmax, dsp, bram, workdir, progress):
        inspected(core)  # the real synthesize would have elaborated it
        steps = 3 if fmax else 1
        for step in range(steps):
            progress(f"step {step} for {target}…")
        calls.append((target, fmax))
        return report(target, fits=True if fmax else None)
    monkeypatch.setattr(flow, "synthesize", fake)
    notes = []
    reports = flow.synth_reports(design.build, "demo_fc", ["ice40-up5k", "xc7"], fmax=True,
                                 note=notes.append)
    assert calls == [("ice40-up5k", True), ("xc7", False)]
    assert [r.target for r in reports] == ["ice40-up5k", "xc7"]
    assert notes == ["synthesizing demo_fc for ice40-up5k with place-and-route for Fmax...",
                     "step 0 for ice40-up5k…", "step 1 for ice40-up5k…", "step 2 for ice40-up5k…",
                     "synthesizing demo_fc for xc7...", "step 0 for xc7…"]


def test_table_notes_say_when_fits_is_an_estimate():
    estimated = report("ice40-up5k", fits=True)
    placed = report("ice40-up5k", fits=True,
                    pnr_utilization={"ICESTORM_LC": {"used": 1, "available": 5280}})
    assert flow.table_notes([placed]) == []
    assert flow.table_notes([placed, estimated]) == [
        "fits: estimated from yosys cell counts, no place-and-route (--fmax checks it with "
        "nextpnr)"]
    assert flow.table_notes([report("xc7")]) == []


def test_progress_bars_stay_quiet_off_a_terminal_and_during_their_delay():
    import io

    from tqdm import tqdm
    with flow.progress_bar(10, "work", "step") as bar:   # pytest's stderr is no terminal
        assert bar.disable
    out = io.StringIO()
    bar = flow._QuietBar(total=3, desc="work", file=out, delay=100, disable=False)
    tqdm.write("note", file=out)                         # tqdm redraws bars after a write
    bar.update(1)
    bar.close()
    assert out.getvalue().replace("\r", "") == "note\n"   # clears of an empty line only
