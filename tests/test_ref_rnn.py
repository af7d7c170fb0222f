"""The integer reference of recurrent layers: its properties, its errors, and each step against
the float model within the derived bound."""

import re

import numpy as np
import pytest

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.fixed import SQ, quantize, to_float
from hwnn.plans.rnn import plan_recurrent
from hwnn.plans.rnn_error import step_error_bound
from hwnn.ref.rnn import recurrent, recurrent_step
from hwnn.ref.rnn_float import gru_cell_float, lstm_cell_float
from test_plans_rnn import weights

FMT = SQ(1, 9)


def make(kind, reverse=False, bits=10, method="pwl", hidden=3, inputs=2, seed=0):
    params = weights(kind, hidden=hidden, inputs=inputs, seed=seed)
    return plan_recurrent(kind, *params, in_format=FMT, bits=bits, reverse=reverse,
                          method=method), params


def codes(shape, seed=1):
    return np.random.default_rng(seed).integers(FMT.min_int, FMT.max_int + 1, shape)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_reverse_runs_the_sequence_backwards(kind):
    forward, _ = make(kind)
    backward, _ = make(kind, reverse=True)
    x = codes((4, 7, 2))
    y, h, c = recurrent(backward, x)
    y_f, h_f, c_f = recurrent(forward, x[:, ::-1])
    np.testing.assert_array_equal(y, y_f[:, ::-1])
    np.testing.assert_array_equal(h, h_f)
    assert (c is None) == (kind == "gru")


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_a_batch_is_its_sequences_and_a_loaded_state_continues_a_sequence(kind):
    plan, _ = make(kind)
    x = codes((3, 10, 2), seed=2)
    y, h, c = recurrent(plan, x)
    for b in range(3):
        y_b, h_b, c_b = recurrent(plan, x[b])
        np.testing.assert_array_equal(y_b, y[b])
        np.testing.assert_array_equal(h_b, h[b])
    y1, h1, c1 = recurrent(plan, x[:, :4])
    y2, h2, c2 = recurrent(plan, x[:, 4:], h0=h1, c0=c1)
    np.testing.assert_array_equal(np.concatenate([y1, y2], axis=1), y)
    np.testing.assert_array_equal(h2, h)
    if kind == "lstm":
        np.testing.assert_array_equal(c2, c)
    # The state moves: a sequence is not its steps taken alone.
    assert not np.array_equal(y[:, 1], recurrent(plan, x[:, 1:2])[0][:, 0])


def float_step(kind, params, x, h, c, reset_after=True):
    if kind == "lstm":
        return lstm_cell_float(x, h, c, *params)
    return gru_cell_float(x, h, *params, reset_after=reset_after), None


@pytest.mark.parametrize("kind, bits, method", [
    ("lstm", 16, "pwl"), ("lstm", 12, "lut"), ("lstm", 8, "pwl"), ("lstm", 10, "hard"),
    ("gru", 16, "pwl"), ("gru", 12, "lut"), ("gru", 8, "hard"), ("gru_original", 16, "pwl"),
    ("gru_original", 10, "lut"),
])
def test_every_step_is_within_the_derived_bound_of_float(kind, bits, method):
    # Both models start each step from the integer state; the float model gets the real
    # inputs, the integer one their codes (round half even).
    reset_after = kind != "gru_original"
    kind = kind.removesuffix("_original")
    params = weights(kind, hidden=8, inputs=4, seed=bits)
    fmt = SQ(1, bits - 1)
    plan = plan_recurrent(kind, *params, in_format=fmt, bits=bits, method=method,
                          reset_after=reset_after)
    rng = np.random.default_rng(bits)
    x = rng.uniform(-1, 1, (300, 16, 4))
    xq = quantize(x, fmt)
    h = np.zeros((300, 8), dtype=np.int64)
    c = np.zeros((300, 8), dtype=np.int64) if kind == "lstm" else None
    worst = 0.0
    for t in range(16):
        h_real = to_float(h, plan.state_format)
        c_real = None if c is None else to_float(c, plan.cell_format)
        bound, _ = step_error_bound(plan, *params,
                                    c_max=None if c is None else np.abs(c_real).max())
        h, c = recurrent_step(plan, xq[:, t], h, c)
        want, _ = float_step(kind, params, x[:, t], h_real, c_real, reset_after)
        error = np.abs(to_float(h, plan.state_format) - want).max()
        assert error <= bound, (t, error, bound)
        worst = max(worst, error / bound)
    # The bound is not vacuous: the worst step reaches a tenth of it.
    assert worst > 0.1


def test_errors_name_the_argument():
    plan, _ = make("lstm")
    with pytest.raises(ParameterValueError, match=re.escape(
            "x must have shape (steps, 2) or (batch, steps, 2), not (5, 3)")):
        recurrent(plan, codes((5, 3)))
    with pytest.raises(ParameterTypeError, match="^x must be integer codes of SQ\\(1, 9\\)"):
        recurrent(plan, np.zeros((5, 2)))
    with pytest.raises(ParameterValueError, match=re.escape("h0 must have shape (3,), not (2,)")):
        recurrent(plan, codes((5, 2)), h0=np.zeros(2, dtype=np.int64))
    with pytest.raises(ParameterValueError, match="^c0 holds the code 1048576, outside SQ"):
        recurrent(plan, codes((5, 2)), c0=np.full(3, 1 << 20))
