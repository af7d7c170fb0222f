# amaranth: UnusedElaboratable=no
"""Recurrent network layers that start each sequence from a loaded state (``initial_state``):
spec, plan, network core ports, reference and float model (PyTorch's ``lstm(x, (h0, c0))``),
exact simulation under stalls, ``flow.simulate`` and ``hwnn sim --initial-state``."""

import re
import shutil
from types import MappingProxyType

import numpy as np
import pytest

from hwnn import SQ, cli
from hwnn.cores.bidirectional import bidirectional_state_layout
from hwnn.cores.network import Network, state_port
from hwnn.cores._recurrent_io import state_layout
from hwnn.flow import generate, simulate
from hwnn.plans.network import Layer, plan_network
from hwnn.ref.network import network, network_float, state_fields
from hwnn.ref.rnn import recurrent
from hwnn.ref.rnn_float import gru_float, lstm_float
from hwnn.sim import run_stream
from hwnn.spec import SpecError, load_spec
from sequences import random_sequences
from test_network_bidir import spec_text, state_dict
from test_network_rnn import rnn_plan
from test_plans_rnn import weights
from test_testbench import run_icarus


def random_states(layer, sequences, seed):
    """Random state codes of ``layer`` for ``sequences`` sequences (min, max and 0 among
    them), each direction of a bidirectional layer in its own formats."""
    rng = np.random.default_rng(seed)
    plans = layer.plan.directions if layer.kind == "bidirectional" else (layer.plan,)
    states = {}
    for key, shape in state_fields(layer).items():
        parts = []
        for plan in plans:
            fmt = plan.state_format if key == "h" else plan.cell_format
            part = rng.integers(fmt.min_int, fmt.max_int + 1, (sequences, plan.hidden_size))
            part[0, :3] = fmt.min_int, fmt.max_int, 0
            parts.append(part)
        states[key] = parts[0] if len(parts) == 1 else np.stack(parts, axis=1)
    return states


def per_sequence(states, k):
    return {name: {key: value[k] for key, value in state.items()}
            for name, state in states.items()}


def run_with_states(core, lengths, states, seed=3, stall=0.3):
    """Back-to-back sequences of ``lengths`` steps through ``core`` with ``states``, under
    random stalls (pysim); the outputs must equal the reference's, sequence by sequence."""
    plan = core.plan
    xs, stream = random_sequences(plan.in_format, plan.n_in, lengths, seed=seed)
    want = np.concatenate([network(plan, x, per_sequence(states, k)) for k, x in enumerate(xs)])
    feed = {"i": stream, **core.state_inputs(states, len(xs))}
    run = run_stream(core, feed, n_outputs=len(want), stall_in=stall, stall_out=stall,
                     seed=seed)
    np.testing.assert_array_equal(run.outputs["data"], want)
    np.testing.assert_array_equal(run.outputs["last"], stream["last"])
    zeros = np.concatenate([network(plan, x) for x in xs])
    assert not np.array_equal(want, zeros)   # the states were used
    return run


def net(kind, layers=1, **options):
    """``layers`` recurrent layers 2 -> 3 -> 3 (8 bits), the last with an initial state."""
    plans = [rnn_plan(kind, inputs=2 if k == 0 else 3, seed=k) for k in range(layers)]
    return plan_network([Layer(f"r{k}", kind, p, MappingProxyType(
        {"parallelism": 6, **(options if k == layers - 1 else {})}))
        for k, p in enumerate(plans)])


# --- plan and core -------------------------------------------------------------------------

def test_the_network_gets_a_state_stream_per_layer_with_an_initial_state():
    plan = net("lstm", layers=2, initial_state=True)
    assert [layer.name for layer in plan.stateful] == ["r1"] and plan.layers[1].initial_state
    core = Network(plan)
    assert state_port("r1") == "i_state_r1"
    members = core.signature.members
    assert sorted(members) == ["i", "i_state_r1", "o"]
    assert members["i_state_r1"].signature.members["payload"].shape == \
        state_layout(plan.layers[1].plan)
    assert core.cores[1].describe()["initial_state"] is True
    assert core.cores[0].describe()["initial_state"] is False


def test_a_plan_refuses_an_initial_state_that_is_no_bool():
    with pytest.raises(TypeError, match=re.escape(
            "layers[0] (r0): option initial_state must be a bool, not 1")):
        net("gru", initial_state=1)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_exact_from_loaded_states_under_stalls(kind):
    core = Network(net(kind, initial_state=True))
    run_with_states(core, [16, 3, 17, 1], {"r0": random_states(core.plan.layers[0], 4, seed=5)})


def test_a_stacked_network_whose_second_layer_loads_its_state():
    core = Network(net("gru", layers=2, initial_state=True))
    run_with_states(core, [16, 2, 16], {"r1": random_states(core.plan.layers[1], 3, seed=2)},
                    seed=4)


def test_unrolled_layer_loads_its_state():
    plan = plan_network([Layer("r", "lstm", rnn_plan("lstm"), MappingProxyType(
        {"arith": "mcm", "cuts": 1, "initial_state": True}))])
    core = Network(plan)
    run_with_states(core, [16, 5], {"r": random_states(plan.layers[0], 2, seed=8)}, seed=6)


def test_timing_holds_with_states_offered_in_time():
    core = Network(net("lstm", initial_state=True))
    run = run_with_states(core, [16, 16], {"r0": random_states(core.plan.layers[0], 2, 1)},
                          stall=0)
    ins, outs = core.schedule([16, 16])
    np.testing.assert_array_equal(run.in_cycles, ins)
    np.testing.assert_array_equal(run.out_cycles, outs)


# --- reference and float model -------------------------------------------------------------

def test_reference_is_each_layer_from_its_state():
    plan = net("lstm", layers=2, initial_state=True)
    x = np.random.default_rng(0).integers(-128, 128, (3, 16, 2))
    states = random_states(plan.layers[1], 3, seed=1)
    first = recurrent(plan.layers[0].plan, x)[0]
    want = recurrent(plan.layers[1].plan, first, states["h"], states["c"])[0]
    np.testing.assert_array_equal(network(plan, x, {"r1": states}), want)
    # One sequence takes (hidden,) states.
    np.testing.assert_array_equal(network(plan, x[1], per_sequence({"r1": states}, 1)),
                                  want[1])


@pytest.mark.parametrize("states, message", [
    ({"r0": {"h": np.zeros((2, 3))}}, "initial_states names 'r0', which is no layer with "
                                      "initial_state (those are: r1)"),
    ({"r1": {"h": np.zeros((2, 3))}}, "initial_states['r1'] must be a dict with 'h' and 'c'"),
    ({"r1": {"h": np.zeros((2, 3)), "c": np.zeros((3, 3))}},
     "initial_states['r1']['c'] must have shape (2, 3), not (3, 3)"),
    ({"r1": {"h": np.full((2, 3), 128), "c": np.zeros((2, 3))}}, "h0"),
])
def test_reference_errors_name_the_states(states, message):
    plan = net("lstm", layers=2, initial_state=True)
    with pytest.raises(ValueError, match=re.escape(message)):
        network(plan, np.zeros((2, 4, 2), dtype=np.int64), states)


def test_float_model_is_pytorch_with_h0_and_c0():
    x = np.random.default_rng(2).uniform(-1, 1, (2, 16, 2))
    h0, c0 = np.random.default_rng(3).uniform(-0.5, 0.5, (2, 2, 3))
    for kind in ("lstm", "gru"):
        arrays = weights(kind)
        plan = plan_network([Layer("rnn", kind, rnn_plan(kind),
                                   MappingProxyType({"initial_state": True}))])
        states = {"h": h0, **({"c": c0} if kind == "lstm" else {})}
        got = network_float(plan, {"rnn": arrays}, x, {"rnn": states})[-1]
        want = (lstm_float(x, *arrays, h0=h0, c0=c0) if kind == "lstm"
                else gru_float(x, *arrays, h0=h0))[0]
        np.testing.assert_array_equal(got, want)
        assert not np.array_equal(got, network_float(plan, {"rnn": arrays}, x)[-1])


# --- bidirectional -------------------------------------------------------------------------

def write_spec(tmp_path, kind="lstm", extra="initial_state = true", layers=1, directions=2,
               steps=16):
    np.savez(tmp_path / "bi.npz", **state_dict(kind, "rnn", 3, 2, layers, directions))
    more = f"bidirectional = {'true' if directions == 2 else 'false'}\nnum_layers = {layers}"
    (tmp_path / "bi.toml").write_text(spec_text(kind, f"{extra}\n{more}", steps=steps))
    return tmp_path / "bi.toml"


def test_bidirectional_payload_is_both_directions_flat():
    forward, reverse = rnn_plan("lstm"), rnn_plan("lstm", seed=1, reverse=True)
    layout = bidirectional_state_layout(forward, reverse)
    assert list(layout.members) == ["h_forward", "c_forward", "h_reverse", "c_reverse"]
    assert layout.members["c_reverse"] == state_layout(reverse).members["c"]


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_bidirectional_layer_starts_both_directions_from_their_states(tmp_path, kind):
    design = load_spec(write_spec(tmp_path, kind, steps=17))
    layer = design.plan.layers[0]
    assert layer.kind == "bidirectional" and layer.initial_state
    core = design.build()
    assert core.signature.members["i_state_rnn"].signature.members["payload"].shape == \
        bidirectional_state_layout(*layer.plan.directions)
    states = random_states(layer, 3, seed=4)
    run_with_states(core, [16, 2, 17], {"rnn": states}, seed=2)
    # The reverse direction starts from h0[1] at the last step: PyTorch's reverse h0.
    x = np.random.default_rng(1).integers(-128, 128, (3, 16, 2))
    got = design.reference(x, {"rnn": states})
    reverse = recurrent(layer.plan.reverse, x, states["h"][:, 1],
                        states["c"][:, 1] if kind == "lstm" else None)[0]
    np.testing.assert_array_equal(got[..., 3:], reverse)


# --- spec, flow and CLI --------------------------------------------------------------------

def test_spec_field_gives_every_layer_of_the_module_a_state(tmp_path):
    design = load_spec(write_spec(tmp_path, "gru", layers=2, directions=1))
    assert [layer.name for layer in design.plan.stateful] == ["rnn", "rnn_l1"]
    assert dict(design.plan.layers[0].options) == {"initial_state": True}
    design = load_spec(write_spec(tmp_path, "gru", extra="", directions=1))
    assert design.plan.stateful == () and dict(design.plan.layers[0].options) == {}


def test_spec_refuses_an_initial_state_that_is_no_bool(tmp_path):
    with pytest.raises(SpecError) as info:
        load_spec(write_spec(tmp_path, extra='initial_state = "yes"', directions=1))
    assert info.value.field == "params.layers[0].initial_state"
    assert info.value.message == "must be true or false, not 'yes'"


def test_flow_simulates_states_exactly(tmp_path):
    design = load_spec(write_spec(tmp_path, "lstm", layers=2, directions=1))
    x = np.random.default_rng(0).integers(-128, 128, (2, 16, 2))
    states = {layer.name: random_states(layer, 2, seed=k)
              for k, layer in enumerate(design.plan.stateful)}
    result = simulate(design, x, stall=0.2, engine="pysim", initial_states=states)
    assert result.exact and np.array_equal(result.reference, design.reference(x, states))
    assert not np.array_equal(result.reference, design.reference(x))


def save_states(path, design, sequences, seed=0, scale=0.9, **extra):
    """PyTorch-shaped real states of every layer with one, within their formats."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for layer in design.plan.stateful:
        for key, shape in state_fields(layer).items():
            arrays[f"{key}0_{layer.name}"] = rng.uniform(-scale, scale, (sequences, *shape))
    arrays.update(extra)
    np.savez(path, **arrays)
    return arrays


def test_cli_sim_takes_initial_states(tmp_path, capsys):
    spec = write_spec(tmp_path, "lstm")
    design = load_spec(spec)
    x = np.random.default_rng(5).uniform(-1, 1, (2, 16, 2))
    np.save(tmp_path / "x.npy", x)
    arrays = save_states(tmp_path / "s.npz", design, 2)
    assert cli.main(["sim", str(spec), "--inputs", str(tmp_path / "x.npy"), "--initial-state",
                     str(tmp_path / "s.npz"), "--codes", str(tmp_path / "y.npy"),
                     "--engine", "pysim", "--float"]) == 0
    out, err = capsys.readouterr()
    assert "bi: 2 sequences bit-exact" in out and "initial-state values are not codes" in err
    # The codes: the states rounded half-even to each direction's format, as inputs are.
    formats = {"h": [p.state_format for p in design.plan.layers[0].plan.directions],
               "c": [p.cell_format for p in design.plan.layers[0].plan.directions]}
    codes = {"rnn": {key[0]: np.stack([np.rint(np.ldexp(value[:, k], fmt.f)).astype(np.int64)
                                       for k, fmt in enumerate(formats[key[0]])], axis=1)
                     for key, value in arrays.items()}}
    want = design.reference(np.rint(x * 128).clip(-128, 127).astype(np.int64), codes)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), want)
    # The float error stays small with the states in both models.
    rows = re.findall(r"rnn\s+SQ\(1, 7\)\s+([0-9.e-]+)", out)
    assert rows and float(rows[0]) < 0.1


@pytest.mark.parametrize("arrays, message", [
    ({"c0_rnn": None}, "has no array 'c0_rnn' (it needs h0_rnn, c0_rnn; it has h0_rnn)"),
    ({"h1_rnn": np.zeros((2, 2, 3))}, "holds array 'h1_rnn', which no layer with "
                                      "initial_state takes"),
    ({"h0_rnn": np.zeros((2, 3))}, "array 'h0_rnn' must have shape (2, 2, 3) (sequences, 2, "
                                   "hidden), not (2, 3)"),
    ({"h0_rnn": np.full((2, 2, 3), 1.0)}, "array 'h0_rnn[:, 0]' holds 1 at [0, 0], outside "
                                          "SQ(1, 7) [-1, 0.992188] (6 values are); states "
                                          "are not clamped"),
    ({"c0_rnn": np.full((2, 2, 3), -1e300)}, "array 'c0_rnn[:, 0]' holds -1e+300 at [0, 0], "
                                             "outside SQ("),
    ({"h0_rnn": np.full((2, 2, 3), np.nan)}, "array 'h0_rnn' must hold finite numbers"),
])
def test_cli_refuses_a_bad_state_file_in_one_line(tmp_path, capsys, arrays, message):
    spec = write_spec(tmp_path, "lstm")
    design = load_spec(spec)
    rng = np.random.default_rng(0)
    good = {f"{k}0_rnn": rng.uniform(-0.5, 0.5, (2, 2, 3)) for k in "hc"}
    good.update(arrays)
    np.savez(tmp_path / "s.npz", **{k: v for k, v in good.items() if v is not None})
    assert cli.main(["sim", str(spec), "--vectors", "2", "--initial-state",
                     str(tmp_path / "s.npz"), "--engine", "pysim"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hwnn: error: --initial-state {tmp_path / 's.npz'}: {message}")
    assert err.count("\n") == 1 and err.endswith("\n"), err   # one line
    assert design.plan.stateful


def test_cli_without_a_state_file_starts_from_zeros(tmp_path, capsys):
    spec = write_spec(tmp_path, "gru", directions=1)
    assert cli.main(["plan", str(spec)]) == 0
    assert ("initial state of layer rnn: stream i_state_rnn, one per sequence "
            "(--initial-state arrays h0_rnn)\n") in capsys.readouterr().out
    assert cli.main(["sim", str(spec), "--vectors", "2", "--engine", "pysim"]) == 0
    out, err = capsys.readouterr()
    assert "note: no --initial-state: layers rnn start from zero states" in err
    assert "bi: 2 sequences bit-exact" in out


def test_generated_testbench_offers_zero_states(tmp_path):
    design = load_spec(write_spec(tmp_path, "gru", directions=1, steps=4))
    written = generate(design, tmp_path / "gen", testbench=2, seed=3)
    bench = written["testbench"].read_text()
    assert "wire [0:0] i_state_rnn__valid = 1'b1;" in bench
    if not shutil.which("iverilog"):
        pytest.skip("needs Icarus Verilog to run the testbench")
    out = run_icarus(written["testbench"].parent, name="bi")
    assert "PASS 8 vectors" in out, out


def test_cli_refuses_states_for_a_network_without_initial_state(tmp_path, capsys):
    spec = write_spec(tmp_path, "gru", extra="", directions=1)
    np.savez(tmp_path / "s.npz", h0_rnn=np.zeros((2, 3)))
    assert cli.main(["sim", str(spec), "--vectors", "2", "--initial-state",
                     str(tmp_path / "s.npz"), "--engine", "pysim"]) == 2
    assert capsys.readouterr().err == (f"hwnn: error: --initial-state {tmp_path / 's.npz'}: bi "
                                       f"has no layer with initial_state = true\n")
