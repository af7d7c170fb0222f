"""``hwnn demo``: the bidirectional-LSTM equalizer it ships loads, is bit-exact in simulation,
gives the bit error rates its README states, and the demo reports what it ran."""

import dataclasses

import numpy as np
import pytest

from hwnn import demo
from hwnn.channel import transmit
from hwnn.cores._component import inspected
from hwnn.fixed import SQ
from hwnn.flow import simulate
from hwnn.spec import load_spec
from hwnn.synth import SynthReport


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    return load_spec(demo.write_demo_spec(tmp_path_factory.mktemp("demo")))


def test_write_demo_spec_copies_the_shipped_spec_and_weights(tmp_path):
    spec = demo.write_demo_spec(tmp_path / "new" / "dir")
    assert spec == tmp_path / "new" / "dir" / "bilstm_equalizer.toml"
    for suffix in (".toml", ".npz"):
        assert (spec.with_suffix(suffix).read_bytes()
                == (demo.DATA / f"bilstm_equalizer{suffix}").read_bytes())


def test_demo_spec_is_a_bidirectional_lstm_and_a_head(design):
    assert design.name == "bilstm_equalizer" and design.sequence_length == 32
    assert [(layer.name, layer.kind) for layer in design.plan.layers] == [
        ("lstm", "bidirectional"), ("head", "conv1d")]
    lstm = design.plan.layers[0].plan
    assert (lstm.kind, lstm.input_size, lstm.hidden_size) == ("lstm", 1, 4)
    assert (design.in_format, lstm.state_format, design.out_format) == (
        SQ(3, 5), SQ(1, 7), SQ(4, 4))
    assert (design.in_lanes, design.out_lanes) == (1, 1)
    assert inspected(design.build()).multipliers == 8   # the UP5K's DSPs


@pytest.fixture(scope="module")
def simulated(design):
    """The demo's simulation of its first 2 frames: the Python simulator, random stalls."""
    symbols, received = transmit(2, 32, demo.SIGMA, demo.TEST_SEED + 1)
    codes = demo.received_codes(design, received)
    return codes, simulate(design, codes, stall=0.2, seed=1, engine="pysim")


def test_demo_core_is_bit_exact_on_channel_frames(design, simulated):
    codes, result = simulated
    assert result.exact, result.mismatch()
    assert codes.shape == result.outputs.shape == (2, 32, 1)
    assert len(np.unique(codes)) > 40   # real received samples, not a few codes


def test_shipped_weights_reproduce_their_bit_error_rates(design):
    """The first 500 test frames (16 000 bits) of the demo's seed; deterministic counts."""
    ber = demo.bit_errors(design, 500)
    assert (ber["bits"], ber["errors_float"], ber["errors_quantized"], ber["differ"]) == (
        16_000, 31, 33, 6)
    assert ber["ber_float"] == 31 / 16_000
    assert ber["relative_difference"] == pytest.approx(2 / 31)
    assert ber["relative_ci95"] == pytest.approx(1.96 * np.sqrt(6) / 31)
    assert ber["ber_unequalized"] == pytest.approx(0.27, abs=0.01)


def _canned_synthesis(calls):
    """Synthesis replaced by canned reports: these tests are about the demo, not the tools."""
    def synth_reports(build, name, targets, *, fmax, note):
        calls.append((name, tuple(targets), fmax))
        return [SynthReport(target=t, top=name, luts=10, carries=0, ffs=5, dsps=8, brams=0,
                            cells={}, fits=False, fmax_mhz=25.6 if fmax else None,
                            notes=["a note", "does not fit: nextpnr needs more"],
                            pnr_utilization={"ICESTORM_LC": {"used": 9000, "available": 5280},
                                             "TRELLIS_COMB": {"used": 4000, "available": 24288}}
                            if fmax else None)
                for t in targets]
    return synth_reports


@pytest.mark.parametrize("exact", [True, False])
def test_run_demo_generates_simulates_counts_and_reports(tmp_path, monkeypatch, capsys, design,
                                                        simulated, exact):
    calls, steps = [], []
    monkeypatch.setattr(demo, "synth_reports", _canned_synthesis(calls))
    monkeypatch.setattr(demo, "SIM_FRAMES", 2)
    monkeypatch.setattr(demo, "BER_FRAMES", 500)

    def simulation(design, codes, *, stall, seed, note):
        """The fixture's run, which is this one (same frames, stalls and seed), or with its
        first output off by one code."""
        assert (stall, seed) == (0.2, 1)
        np.testing.assert_array_equal(codes, simulated[0])
        result = simulated[1]
        if exact:
            return result
        outputs = result.outputs.copy()
        outputs[0, 0, 0] += 1
        return dataclasses.replace(result, outputs=outputs)
    monkeypatch.setattr(demo, "simulate", simulation)
    # Exit code 0 although nothing fits: only bit-exactness decides it.
    assert demo.run_demo(tmp_path, fmax=True, progress=steps.append) == (0 if exact else 1)
    assert calls == [("bilstm_equalizer", ("ice40-up5k", "ecp5-25f"), True)]
    assert [s for s in steps if s.startswith("[")] == [
        f"[1/4] generating Verilog for bilstm_equalizer into {tmp_path}/",
        "[2/4] simulating 2 frames of 32 received samples with random stalls against the "
        "reference...",
        "[3/4] counting bit errors on 16,000 test symbols: float model and bit-exact "
        "reference...",
        "[4/4] synthesizing for ice40-up5k, ecp5-25f (place-and-route for Fmax)..."]
    assert (tmp_path / "bilstm_equalizer.v").is_file()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("hwnn demo: bilstm_equalizer, a bidirectional LSTM(1→4) and a linear "
                        "head per step over frames of 32 samples, SQ(3, 5) in, SQ(4, 4) logits "
                        "out, 8 multipliers")
    assert lines[1:3] == [f"  spec     {tmp_path / 'bilstm_equalizer.toml'}",
                          f"  verilog  {tmp_path / 'bilstm_equalizer.v'}"]
    sim = lines[3]
    assert sim.startswith(f"  sim      2 frames (64 samples) on pysim, {simulated[1].cycles} "
                          f"cycles with stalls: ")
    if exact:
        assert sim.endswith("bit-exact (core == reference); 0 bit errors (float model: 0)")
    else:
        assert "MISMATCH in 1 of 2 sequences; first at sequence 0, step 0, output 0" in sim
    assert lines[4] == ("  BER      16,000 test bits at 14.5 dB SNR: unequalized 0.274, float "
                        "1.94e-03, core (bit-exact reference) 2.06e-03 (+6 % ± 15 %, 95 %)")
    # The core's timing model (its own tests check it against simulation).
    period = inspected(design.build()).period(32)
    assert lines[5] == (f"  timing   {period / 32:g} cycles per sample for back-to-back frames "
                        f"({period} per frame of 32)")
    rate = f"{25.6e3 * 32 / period:.0f} k"
    assert lines[-4:] == ["logic cells (nextpnr, timing harness included): ice40-up5k "
                          "9000/5280, ecp5-25f 4000/24288",
                          f"samples/s (Fmax / cycles per sample): ice40-up5k {rate}, ecp5-25f "
                          f"{rate}",
                          "ice40-up5k: does not fit: nextpnr needs more",
                          "ecp5-25f: does not fit: nextpnr needs more"]


def test_write_dense_spec_writes_the_same_dense_layer_every_time(tmp_path):
    spec = demo.write_dense_spec(tmp_path / "a")
    assert spec == tmp_path / "a" / "demo_fc.toml" and spec.read_text() == demo.DENSE_SPEC
    design = load_spec(spec)
    assert (design.name, design.in_lanes, design.out_lanes) == ("demo_fc", 16, 8)
    assert (design.in_format, design.out_format) == (SQ(1, 7), SQ(4, 8))
    first = np.load(spec.parent / "demo_fc.npz")
    second = np.load(demo.write_dense_spec(tmp_path / "b").parent / "demo_fc.npz")
    for name in ("weight", "bias"):
        np.testing.assert_array_equal(first[name], second[name])
    assert first["weight"].shape == (8, 16) and first["bias"].shape == (8,)
