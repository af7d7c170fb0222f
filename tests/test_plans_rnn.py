"""Recurrent plans: default formats from a bit budget, the parts they hold, their errors."""

import json
import math
import re

import numpy as np
import pytest

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.fixed import SQ, UQ
from hwnn.plans.rnn import CALIBRATION, plan_recurrent
from hwnn.ref.rnn_float import lstm_float


def lstm_cell_states(x, w_ih, w_hh):
    """Every cell state of the float LSTM (bias 0) over ``x``, one step at a time."""
    states, h, c = [], None, None
    for t in range(x.shape[1]):
        _, h, c = lstm_float(x[:, t:t + 1], w_ih, w_hh, h0=h, c0=c)
        states.append(c)
    return np.stack(states)


def weights(kind, hidden=3, inputs=2, seed=0, scale=None):
    """PyTorch's default initialization, U(−1/√H, 1/√H)."""
    gates = {"lstm": 4, "gru": 3}[kind]
    k = scale if scale is not None else 1 / math.sqrt(hidden)
    rng = np.random.default_rng(seed)
    return (rng.uniform(-k, k, (gates * hidden, inputs)), rng.uniform(-k, k, (gates * hidden, hidden)),
            rng.uniform(-k, k, gates * hidden), rng.uniform(-k, k, gates * hidden))


def test_lstm_default_formats_are_derived_from_the_weights_and_the_budget():
    w_ih, w_hh = np.full((8, 1), 0.5), np.full((8, 2), 0.25)
    b = np.zeros(8)
    plan = plan_recurrent("lstm", w_ih, w_hh, b, b, in_format=SQ(2, 6), bits=12)
    # Largest weight 0.5: one integer bit. |x| ≤ 2 (SQ(2, 6)), |h| ≤ 1: every pre-activation
    # within 0.5·2 + 2·0.25 = 1.5, two integer bits (below σ's saturation, 13·ln 2 = 9.0).
    assert plan.gates.weight_format == SQ(1, 11) and plan.gate_format == SQ(2, 10)
    assert plan.state_format == SQ(1, 11)
    # σ: one bit short of the budget, so a 12-bit signed operand (one DSP per product).
    assert plan.activations["sigmoid"].out_format == UQ(0, 11)
    assert plan.activations["tanh"].out_format == SQ(1, 11)
    # f_max = σ(1.5) = 0.8176: |c| ≤ 1 / (1 − f_max) = 5.48 (four integer bits), but the cell
    # gets the bits of twice what the float model reaches on the calibration sequences.
    sequences, steps, seed = CALIBRATION
    x = np.random.default_rng(seed).uniform(-2, 2 - 2 ** -6, (sequences, steps, 1))
    reach = np.abs(lstm_cell_states(x, w_ih, w_hh)).max()
    assert 4 < 2 * reach <= 8      # so four integer bits, as the bound's
    assert plan.cell_format == SQ(4, 8)
    # x and h meet at the finer fraction bits and the wider integer bits.
    assert plan.mac_in_format == SQ(2, 11) and (plan.x_shift, plan.h_shift) == (5, 0)
    assert plan.gates.n_in == 3 and plan.gates.n_out == 8
    # The MAC holds [W_ih | W_hh] and b_ih + b_hh.
    np.testing.assert_array_equal(plan.gates.weight_float(), np.hstack([w_ih, w_hh]))


def test_a_cell_gets_what_it_reaches_not_its_worst_case_bound():
    w_ih, w_hh, b_ih, b_hh = weights("lstm", hidden=8, inputs=4)
    plan = plan_recurrent("lstm", w_ih, w_hh, b_ih, b_hh, in_format=SQ(1, 15), bits=16)
    # PyTorch's initialization: the bound allows |c| up to 1/(1 − f_max) > 8, the float model
    # reaches under 1 on the calibration sequences: two integer bits, fourteen fraction bits.
    f_bound = np.abs(np.hstack([w_ih, w_hh])[8:16]).sum(axis=1).max() + np.abs(
        b_ih + b_hh)[8:16].max()
    assert 1 / (1 - 1 / (1 + np.exp(-f_bound))) > 8
    assert plan.cell_format == SQ(2, 14)


def test_gate_format_stops_where_sigmoid_saturates():
    w_ih, w_hh, b_ih, b_hh = weights("lstm", scale=4.0)
    plan = plan_recurrent("lstm", w_ih, w_hh, b_ih, b_hh, in_format=SQ(1, 7), bits=8)
    # Pre-activations may reach tens, but σ is within half an 8-bit ulp of 1 from
    # 9·ln 2 = 6.2 on: SQ(4, 4) holds ±8. The cell's integer bits stop at bits/2 = 4 (its
    # bound and its calibration are both beyond ±8).
    assert plan.gate_format == SQ(4, 4) and plan.cell_format == SQ(4, 4)


def test_gru_mac_rows_and_stage_formats():
    w_ih, w_hh, b_ih, b_hh = weights("gru", hidden=2, inputs=3)
    plan = plan_recurrent("gru", w_ih, w_hh, b_ih, b_hh, in_format=SQ(1, 7), bits=10,
                          weight_format=SQ(1, 9))
    w = plan.gates.weight_float()
    assert w.shape == (8, 5) and plan.cell_format is None
    # Rows r, z: [W_i | W_h]; n_x: [W_in | 0]; n_h: [0 | W_hn].
    np.testing.assert_array_equal(w[4:6, 3:], 0)
    np.testing.assert_array_equal(w[6:8, :3], 0)
    assert (w[4:6, :3] != 0).any() and (w[6:8, 3:] != 0).any()
    np.testing.assert_allclose(plan.gates.bias_float()[4:],
                               np.concatenate([b_ih[4:], b_hh[4:]]), atol=2.0 ** -10)
    stages = plan.stages
    # h − n exactly (SQ(2, 9)); z⊙(h − n) keeps its ±2 at the state's fraction bits.
    assert stages["difference"].out_format == SQ(2, 9)
    assert stages["update"].out_format == SQ(2, 9)
    assert stages["hidden"].out_format == plan.state_format == SQ(1, 9)
    info = json.loads(json.dumps(plan.describe()))
    assert info["kind"] == "gru" and set(info["stages"]) == {
        "reset", "candidate", "difference", "update", "hidden"}


def test_methods_and_overrides():
    w_ih, w_hh, b_ih, b_hh = weights("lstm")
    lut = plan_recurrent("lstm", w_ih, w_hh, b_ih, b_hh, in_format=SQ(1, 7), method="lut",
                         bits=10, activation_options={"table_size": 64})
    assert lut.activations["sigmoid"].method == "lut"
    assert lut.activations["sigmoid"].table_size == 64
    hard = plan_recurrent("lstm", w_ih, w_hh, b_ih, b_hh, in_format=SQ(1, 7), method="hard",
                          bits=10, cell_format="SQ(3,7)")
    assert hard.activations["tanh_cell"].function.name == "hard_tanh"
    assert hard.cell_format == SQ(3, 7) and hard.method == "hard"
    pwl = plan_recurrent("lstm", w_ih, w_hh, b_ih, b_hh, in_format=SQ(1, 7), bits=10)
    # Up to 64 segments, slopes ±2^k ± 2^j: no multiplier in the unit.
    assert pwl.activations["tanh"].slope_kind == "pot2"
    assert 32 < pwl.activations["tanh"].segments <= 64


@pytest.mark.parametrize("kind, change, error, message", [
    ("lstm", dict(kind="rnn"), ParameterValueError, "kind must be one of"),
    ("lstm", dict(method="cordic"), ParameterValueError,
     "method must be one of pwl | lut | hard | poly | taylor, not 'cordic'"),
    ("lstm", dict(weight_hh=np.zeros((12, 4))), ParameterValueError,
     "weight_hh must have shape (4·hidden, hidden) for a lstm, not (12, 4)"),
    ("lstm", dict(weight_ih=np.zeros((8, 2))), ParameterValueError,
     "weight_ih must have shape (12, input_size) for a lstm of hidden size 3, not (8, 2)"),
    ("gru", dict(bias_ih=np.zeros(8)), ParameterValueError,
     "bias_ih must have shape (9,), not (8,)"),
    ("lstm", dict(cell_format="SQ(3,5)", tanh_format=None), ParameterTypeError, "tanh_format"),
    ("gru", dict(cell_format="SQ(3,5)"), ParameterValueError,
     "cell_format is not a format of a gru layer (it has gate_format, sigmoid_format, "
     "state_format, tanh_format, weight_format)"),
    ("lstm", dict(bits=1), ParameterValueError, "bits must be"),
])
def test_plan_errors_name_the_parameter(kind, change, error, message):
    w_ih, w_hh, b_ih, b_hh = weights(kind)
    args = {**dict(kind=kind, weight_ih=w_ih, weight_hh=w_hh, bias_ih=b_ih, bias_hh=b_hh,
                   in_format=SQ(1, 7)), **change}
    with pytest.raises(error, match=re.escape(message)):
        plan_recurrent(**args)


def test_weights_must_be_finite():
    w_ih, w_hh, b_ih, b_hh = weights("lstm")
    w_hh[0, 0] = np.nan
    with pytest.raises(ParameterValueError, match="^weight_hh holds NaN or infinity"):
        plan_recurrent("lstm", w_ih, w_hh, b_ih, b_hh, in_format=SQ(1, 7))


def test_the_original_gru_has_a_second_mac_over_the_reset_state():
    w_ih, w_hh, b_ih, b_hh = weights("gru", hidden=2, inputs=3)
    plan = plan_recurrent("gru", w_ih, w_hh, b_ih, b_hh, in_format=SQ(1, 7), bits=10,
                          weight_format=SQ(1, 9), reset_after=False)
    # The first MAC gives r, z and n_x only; the second takes r⊙h (state format) to W_hn h.
    assert plan.gates.n_out == 6 and not plan.reset_after
    assert plan.hidden_gates.n_in == plan.hidden_gates.n_out == 2
    assert plan.hidden_gates.in_format == plan.state_format
    np.testing.assert_allclose(plan.hidden_gates.weight_float(), w_hh[4:], atol=2.0 ** -10)
    assert plan.stages["reset"].out_format == plan.state_format
    assert plan.describe()["hidden_gates"]["n_in"] == 2
    lstm = plan_recurrent("lstm", *weights("lstm"), in_format=SQ(1, 7), reset_after=False)
    assert lstm.reset_after and lstm.hidden_gates is None    # an LSTM has no such variant


@pytest.mark.parametrize("bits", [4, 5, 6, 7])
@pytest.mark.parametrize("method", ["pwl", "lut"])
def test_default_activations_fit_narrow_formats(bits, method):
    # A narrow gate format has few codes: the default table or segment count shrinks to fit.
    plan = plan_recurrent("lstm", *weights("lstm"), in_format=SQ(1, bits - 1), bits=bits,
                          method=method)
    sigmoid = plan.activations["sigmoid"]
    codes = 1 << plan.gate_format.width
    assert (sigmoid.table_size if method == "lut" else sigmoid.segments) <= codes
