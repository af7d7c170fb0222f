import numpy as np
import pytest

from hwnn import demo
from hwnn.fixed import SQ
from hwnn.spec import load_spec
from hwnn.synth import SynthReport


def test_write_demo_spec_writes_a_spec_that_loads(tmp_path):
    spec = demo.write_demo_spec(tmp_path / "new" / "dir")
    assert spec == tmp_path / "new" / "dir" / "demo_fc.toml"
    assert spec.read_text() == demo.DEMO_SPEC
    design = load_spec(spec)
    assert (design.name, design.in_lanes, design.out_lanes) == ("demo_fc", 16, 8)
    assert (design.in_format, design.out_format) == (SQ(1, 7), SQ(4, 8))
    weights = np.load(spec.parent / "demo_fc.npz")
    assert weights["weight"].shape == (8, 16) and weights["bias"].shape == (8,)
    assert weights["weight"].min() >= -1.0 and weights["weight"].max() <= 0.99


def test_write_demo_spec_is_the_same_every_time(tmp_path):
    first = np.load(demo.write_demo_spec(tmp_path / "a").parent / "demo_fc.npz")
    second = np.load(demo.write_demo_spec(tmp_path / "b").parent / "demo_fc.npz")
    for name in ("weight", "bias"):
        np.testing.assert_array_equal(first[name], second[name])


@pytest.mark.parametrize("fits, code", [(True, 0), (False, 1)])
def test_run_demo_generates_simulates_and_reports(tmp_path, monkeypatch, capsys, fits, code):
    """Synthesis is replaced by canned reports: the test is about the demo, not the tools."""
    calls = []

    def synth_reports(build, name, targets, *, fmax, note):
        calls.append((name, tuple(targets), fmax))
        return [SynthReport(target=t, top=name, luts=10, carries=0, ffs=5, dsps=8, brams=0,
                            cells={}, fits=fits) for t in targets]
    monkeypatch.setattr(demo, "synth_reports", synth_reports)
    steps = []
    assert demo.run_demo(tmp_path, fmax=False, progress=steps.append) == code
    assert calls == [("demo_fc", ("ice40-up5k", "ecp5-25f"), False)]
    assert steps == [f"[1/3] generating Verilog for demo_fc into {tmp_path}/",
                     "[2/3] simulating 300 vectors with random stalls against the reference...",
                     "[3/3] synthesizing for ice40-up5k, ecp5-25f..."]
    assert (tmp_path / "demo_fc.v").is_file()
    lines = capsys.readouterr().out.splitlines()
    assert lines[:5] == [
        "hwnn demo: demo_fc, dense 16 -> 8, SQ(1, 7) x SQ(1, 7) -> SQ(4, 8), 8 multipliers, "
        "ii 16 cycles, latency 20 cycles",
        f"  spec     {tmp_path / 'demo_fc.toml'}",
        f"  verilog  {tmp_path / 'demo_fc.v'}",
        "  sim      300 vectors, 4805 cycles: bit-exact (core == reference)",
        ""]
    answer = "yes" if fits else "NO"
    assert lines[-2:] == [f"fits      {answer:>10}  {answer:>8}",
                          "fits: estimated from yosys cell counts, no place-and-route (--fmax "
                          "checks it with nextpnr)"]
