# amaranth: UnusedElaboratable=no
"""Cells as network layers (``lstm_cell``, ``gru_cell``: PyTorch's ``LSTMCell``/``GRUCell``):
one step per vector from a state loaded with it on ``i_state_<name>``, ``[h'; c']`` out.
Against the standalone cell cores and the reference, with random states over the whole code
range under stalls, both engines; the float model against PyTorch's equations within a
derived bound; the network's timing cycle for cycle; the spec's errors and the CLI."""

from types import MappingProxyType

import numpy as np
import pytest

from hwnn import cli
from hwnn.cores._component import inspected
from hwnn.cores.cell_layer import CellLayer
from hwnn.cores.network import Network
from hwnn.cores.rnn_cell import RecurrentCell
from hwnn.flow import simulate
from hwnn.fixed import SQ
from hwnn.plans.dense import plan_dense
from hwnn.plans.network import Layer, plan_network
from hwnn.ref.network import network, network_float
from hwnn.sim import run_stream
from hwnn.spec import SpecError, load_spec
from test_cores_recurrent import plan
from test_cores_rnn_cell import random_steps
from test_io_rnn import assert_within, gru_bound, lstm_bound

CASES = [
    ("lstm", dict(method="pwl"), dict(cuts=2)),
    ("lstm", dict(method="lut"), dict(parallelism=3, lanes=2)),
    ("gru", dict(method="pwl"), dict(arith="mcm")),
    ("gru", dict(reset_after=False, method="hard"), dict(cuts=1, arith="csd")),
]


def layer_of(kind, planning, options, name="cell"):
    return Layer(name, f"{kind}_cell", plan(kind, **planning), MappingProxyType(options))


@pytest.mark.parametrize("kind, planning, options", CASES)
def test_cell_layer_is_the_cell_with_its_next_state_in_one_vector(kind, planning, options):
    layer = layer_of(kind, planning, options)
    net_plan = plan_network([layer])
    p = layer.plan
    states = 2 if kind == "lstm" else 1
    assert net_plan.n_out == states * p.hidden_size and layer.initial_state
    fmt = p.next_state_format
    assert fmt.f >= p.state_format.f and fmt.i >= p.state_format.i
    if kind == "lstm":
        assert fmt.f >= p.cell_format.f and fmt.i >= p.cell_format.i
    steps = random_steps(p, 60, seed=len(CASES) + len(options))
    state = {key: steps[key] for key in ("h", "c") if key in steps}
    core = Network(net_plan)
    run = run_stream(core, {"i": steps["x"], "i_state_cell": state}, stall_in=0.3,
                     stall_out=0.3, seed=5)
    want = network(net_plan, steps["x"], {"cell": state})
    np.testing.assert_array_equal(run.outputs, want)
    # The same steps through the standalone cell: [h'; c'] is its (h', c'), each code
    # scaled to the common format's fraction bits.
    alone = run_stream(RecurrentCell(p, **options), steps, seed=6)
    h = alone.outputs["h"] << (fmt.f - p.state_format.f)
    parts = [h] + ([alone.outputs["c"] << (fmt.f - p.cell_format.f)] if kind == "lstm" else [])
    np.testing.assert_array_equal(run.outputs, np.concatenate(parts, axis=1))


@pytest.mark.parametrize("kind, planning, options", CASES[:3])
def test_network_timing_with_a_cell_is_its_schedule(kind, planning, options):
    # A cell, then a dense head over [h'; c']: ii, latency and every transfer's cycle.
    layer = layer_of(kind, planning, options)
    p = layer.plan
    width = layer.lanes(p.input_size)[1]
    head = plan_network([layer])
    rng = np.random.default_rng(1)
    dense = plan_dense(rng.uniform(-1, 1, (2, width)), rng.uniform(-1, 1, 2),
                       in_format=head.out_format, weight_format=SQ(2, 6),
                       out_format=SQ(4, 6))
    net_plan = plan_network([layer, Layer("fc", "dense", dense)])
    core = inspected(Network(net_plan))
    cell = inspected(CellLayer(p, **options))
    assert core.ii == max(cell.ii, core.cores[1].ii)
    assert core.latency == cell.latency + core.cores[1].latency
    steps = random_steps(p, 10, seed=2)
    state = {key: steps[key] for key in ("h", "c") if key in steps}
    run = run_stream(Network(net_plan), {"i": steps["x"], "i_state_cell": state}, seed=3)
    np.testing.assert_array_equal(run.outputs, network(net_plan, steps["x"], {"cell": state}))
    ins, outs = core.schedule(10)
    np.testing.assert_array_equal(run.in_cycles, ins)
    np.testing.assert_array_equal(run.out_cycles, outs)


def torch_cell(kind, rng, inputs=3, hidden=4):
    k = 1 / np.sqrt(hidden)
    rows = (4 if kind == "lstm" else 3) * hidden
    return {"cell.weight_ih": rng.uniform(-k, k, (rows, inputs)),
            "cell.weight_hh": rng.uniform(-k, k, (rows, hidden)),
            "cell.bias_ih": rng.uniform(-k, k, rows), "cell.bias_hh": rng.uniform(-k, k, rows)}


def spec_text(kind, extra=""):
    return f"""[core]
kind = "network"
name = "cellnet"
[params]
in_format = "SQ(1,7)"
weights = "c.npz"
[[params.layers]]
kind = "{kind}_cell"
name = "cell"
bits = 10
{extra}
"""


@pytest.mark.parametrize("kind, extra", [("lstm", ""), ("gru", "reset_after = false"),
                                         ("lstm", 'cuts = 2\narith = "mcm"')])
def test_spec_float_model_and_bit_exact_run(tmp_path, kind, extra):
    rng = np.random.default_rng(7)
    arrays = torch_cell(kind, rng)
    np.savez(tmp_path / "c.npz", **arrays)
    (tmp_path / "c.toml").write_text(spec_text(kind, extra))
    design = load_spec(tmp_path / "c.toml")
    layer = design.plan.layers[0]
    assert layer.kind == f"{kind}_cell" and design.plan.stateful == (layer,)
    assert design.sequence_length is None
    # The float model is PyTorch's LSTMCell/GRUCell: numpy's own equations within the bound
    # of float64 evaluation (test_io_rnn's, over one step from the given state).
    x = rng.uniform(-1, 1, (50, 3))
    h0 = rng.uniform(-0.9, 0.9, (50, 4))
    c0 = rng.uniform(-1.5, 1.5, (50, 4))
    states = {"h": h0, **({"c": c0} if kind == "lstm" else {})}
    ours = design.float_model(x, {"cell": states})[-1]
    params = tuple(arrays[f"cell.{f}"] for f in ("weight_ih", "weight_hh", "bias_ih",
                                                   "bias_hh"))
    if kind == "lstm":
        y, e_y, e_c = lstm_bound(x[:, None], np.zeros((50, 1, 3)), params, h0, c0, False)
        a = x @ params[0].T + params[2] + h0 @ params[1].T + params[3]
        i, f = (1 / (1 + np.exp(-a[:, k * 4:(k + 1) * 4])) for k in (0, 1))
        c1 = f * c0 + i * np.tanh(a[:, 8:12])   # PyTorch's c' = f⊙c + i⊙g
        assert_within(ours[:, 4:], c1, 2 * e_c)
        assert_within(ours[:, :4], y[:, 0], 2 * e_y[:, 0])
    else:
        y, e_y, _ = gru_bound(x[:, None], np.zeros((50, 1, 3)), params, h0, False, False)
        assert_within(ours, y[:, 0], 2 * e_y[:, 0])
    # Bit-exact from states rounded to the formats, under stalls.
    p = layer.plan
    codes = {"h": np.rint(np.ldexp(h0, p.state_format.f)).astype(np.int64)}
    if kind == "lstm":
        codes["c"] = np.rint(np.ldexp(c0, p.cell_format.f)).astype(np.int64)
    inputs = np.rint(x * 128).clip(-128, 127).astype(np.int64)
    run = simulate(design, inputs, stall=0.25, seed=1, engine="pysim",
                   initial_states={"cell": codes})
    assert run.exact, run.mismatch()
    # From zero states the outputs differ: the states are used.
    assert not np.array_equal(design.reference(inputs), run.outputs)


def test_cli_plan_and_sim(tmp_path, capsys):
    rng = np.random.default_rng(8)
    np.savez(tmp_path / "c.npz", **torch_cell("lstm", rng))
    (tmp_path / "c.toml").write_text(spec_text("lstm"))
    spec = str(tmp_path / "c.toml")
    assert cli.main(["plan", spec]) == 0
    out = capsys.readouterr().out
    assert "lstm_cell mult pwl" in out and "3 -> 8" in out
    assert ("state of layer cell: stream i_state_cell, one per vector (--initial-state arrays "
            "h0_cell, c0_cell)") in out
    np.save(tmp_path / "x.npy", rng.uniform(-1, 1, (6, 3)))
    np.savez(tmp_path / "s.npz", h0_cell=rng.uniform(-.5, .5, (6, 4)),
             c0_cell=rng.uniform(-.5, .5, (6, 4)))
    assert cli.main(["sim", spec, "--inputs", str(tmp_path / "x.npy"), "--initial-state",
                     str(tmp_path / "s.npz"), "--engine", "pysim", "--float"]) == 0
    out, err = capsys.readouterr()
    assert "cellnet: 6 vectors bit-exact" in out
    np.savez(tmp_path / "bad.npz", h0_cell=np.zeros((5, 4)), c0_cell=np.zeros((6, 4)))
    assert cli.main(["sim", spec, "--inputs", str(tmp_path / "x.npy"), "--initial-state",
                     str(tmp_path / "bad.npz")]) == 2
    err = capsys.readouterr().err
    assert err.strip().endswith("array 'h0_cell' must have shape (6, 4) (vectors, hidden), "
                                "not (5, 4)")


def test_spec_errors(tmp_path):
    rng = np.random.default_rng(9)
    arrays = torch_cell("lstm", rng)
    np.savez(tmp_path / "c.npz", **{k: v for k, v in arrays.items() if k != "cell.weight_hh"})
    (tmp_path / "c.toml").write_text(spec_text("lstm"))
    with pytest.raises(SpecError, match=r"c.npz has no array 'cell.weight_hh' for layer 'cell' "
                                        r"\(PyTorch's LSTMCell names"):
        load_spec(tmp_path / "c.toml")
    np.savez(tmp_path / "c.npz", **arrays)
    (tmp_path / "c.toml").write_text(spec_text("lstm", "return_sequences = false"))
    with pytest.raises(SpecError, match=r"return_sequences"):
        load_spec(tmp_path / "c.toml")
    # A cell takes vectors: not after a sequence layer.
    arrays.update({"seq.weight_ih_l0": arrays["cell.weight_ih"][:, :3],
                   "seq.weight_hh_l0": rng.uniform(-.5, .5, (16, 4))})
    arrays["cell.weight_ih"] = rng.uniform(-.5, .5, (16, 4))
    np.savez(tmp_path / "c.npz", **arrays)
    text = spec_text("lstm").replace('[[params.layers]]\nkind = "lstm_cell"',
                                     '[[params.layers]]\nkind = "lstm"\nname = "seq"\n'
                                     '[[params.layers]]\nkind = "lstm_cell"')
    (tmp_path / "c.toml").write_text(text.replace("[params]", "[params]\nsequence_length = 4"))
    with pytest.raises(SpecError, match=r"layer 'cell' \(lstm_cell\) takes vectors but layer "
                                        r"'seq' gives sequences"):
        load_spec(tmp_path / "c.toml")


def test_float_model_from_zero_states_when_none_given():
    layer = layer_of("gru", dict(method="pwl"), {})
    net_plan = plan_network([layer])
    p = layer.plan
    rng = np.random.default_rng(3)
    rows, hidden = 3 * p.hidden_size, p.hidden_size
    arrays = tuple(rng.uniform(-.5, .5, shape) for shape in ((rows, p.input_size),
                                                             (rows, hidden), (rows,), (rows,)))
    x = rng.uniform(-1, 1, (5, p.input_size))
    zeros = {"cell": {"h": np.zeros((5, hidden))}}
    np.testing.assert_array_equal(network_float(net_plan, {"cell": arrays}, x)[-1],
                                  network_float(net_plan, {"cell": arrays}, x, zeros)[-1])
