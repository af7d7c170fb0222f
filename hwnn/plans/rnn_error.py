"""A derived bound on one step of a recurrent plan's integer model against the float model.

:func:`step_error_bound` follows the stages of :mod:`hwnn.plans.rnn` for one time step in
which both models start from the same state (the integer state, read as real numbers) and the
float model gets the real input while the integer model gets its round-to-nearest codes. For
each stage it adds up where the integer value can differ from the float one: the errors it
receives, times how much the stage can amplify them (a Lipschitz bound: 1/4 for σ, 1 for tanh,
the other factor's magnitude for a product), plus what the stage itself adds (weight and bias
quantization, rounding at each requantize that drops bits, an activation plan's maximum error
measured on every input code, and where a pre-activation may pass the gate format's range, how
far the function moves beyond it). Nothing in it is fitted to data.

Over many steps the errors of the steps compound through the recurrence, by a factor the float
model's own sensitivity sets (a property of the trained weights, not of the arithmetic): a
worst-case bound multiplies by the weights' row sums every step and says nothing useful after a
few steps, so hwnn bounds the step and measures the sequence (the tests and
``benchmarks/rnn.py`` report the measured error against the bit width).
"""

from __future__ import annotations

import math

import numpy as np

from .rnn import RecurrentPlan, gate_weights

__all__ = ["sigmoid", "step_error_bound"]


def _half_ulp(fmt) -> float:
    return 2.0 ** -fmt.f / 2


def _rounds(stage) -> float:
    """The rounding error of an elementwise stage: half an output ulp when its requantize drops
    bits, else 0."""
    return _half_ulp(stage.out_format) if stage.requantize_shift > 0 else 0.0


def sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def _activation(plan, name, function, slope, e_pre, pre_max) -> np.ndarray:
    """Bound on an activation's output error: ``slope·e_pre`` (its Lipschitz constant), the
    plan's measured error, and, where the pre-activation can pass the gate format's range (it
    saturates there), how far the function moves beyond that point."""
    act = plan.activations[name]
    edge = act.in_format.max
    beyond = np.where(pre_max > edge, abs(function(math.inf) - function(edge)), 0.0)
    return slope * e_pre + act.error.max_abs + beyond + _hard_gap(act, function)


def _hard_gap(act, function) -> float:
    """For a "hard" plan (hard_sigmoid, hard_tanh: exact, but other functions), the largest
    gap between its function and the smooth one on every input code; 0 otherwise."""
    if act.method != "exact":
        return 0.0
    fmt = act.in_format
    x = np.arange(fmt.min_int, fmt.max_int + 1) * 2.0 ** -fmt.f
    return float(np.max(np.abs(act.function.evaluate(x) - np.vectorize(function)(x))))


def step_error_bound(plan: RecurrentPlan, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *,
                     c_max: float | None = None) -> tuple[float, float | None]:
    """``(e_h, e_c)``: bounds on max |h_int − h_float| and, for an LSTM, max |c_int − c_float|
    after one step from a common state, for the float weights the plan was made from (PyTorch
    layout, as :func:`~hwnn.plans.rnn.plan_recurrent` took them). ``c_max`` bounds the
    state's |c| (default: the cell format's range); ``e_c`` is None for a GRU.

    Raises
    ------
    ValueError
        A GRU whose candidate parts may pass ``gate_format`` (they saturate there before the
        reset product, which no bound of this form covers).
    """
    gates = 4 if plan.kind == "lstm" else 3
    zeros = np.zeros(gates * plan.hidden_size)
    weight_hh = np.asarray(weight_hh, float)
    bias_hh = zeros if bias_hh is None else np.asarray(bias_hh, float)
    weight, bias = gate_weights(plan.kind, np.asarray(weight_ih, float), weight_hh,
                                zeros if bias_ih is None else np.asarray(bias_ih, float),
                                bias_hh, plan.reset_after)
    hidden, inputs = plan.hidden_size, plan.input_size
    w_q, b_q = plan.gates.weight_float(), plan.gates.bias_float()
    x_max = max(abs(plan.in_format.min), plan.in_format.max)
    magnitude = np.concatenate([np.full(inputs, x_max), np.ones(hidden)])
    e_pre = (np.abs(w_q[:, :inputs]).sum(axis=1) * _half_ulp(plan.in_format)
             + np.abs(weight - w_q) @ magnitude + np.abs(bias - b_q)
             + _half_ulp(plan.gate_format))
    pre_max = np.abs(weight) @ magnitude + np.abs(bias)
    rows = [slice(k * hidden, (k + 1) * hidden) for k in range(4)]
    stage = plan.stages
    if plan.kind == "lstm":
        c_max = plan.cell_format.max if c_max is None else float(c_max)
        e_i, e_f, e_o = (_activation(plan, "sigmoid", sigmoid, 0.25, e_pre[r], pre_max[r])
                         for r in (rows[0], rows[1], rows[3]))
        e_g = _activation(plan, "tanh", math.tanh, 1.0, e_pre[rows[2]], pre_max[rows[2]])
        # f⊙c: |c|·|f_q − f| (c is common); i⊙g: |i_q||g_q − g| + |g||i_q − i|; exact sum.
        e_c = (c_max * e_f + _rounds(stage["forget"]) + e_g + e_i + _rounds(stage["input"])
               + _rounds(stage["cell"]))
        e_tc = e_c + plan.activations["tanh_cell"].error.max_abs
        e_h = e_tc + e_o + _rounds(stage["hidden"])
        return float(np.max(e_h)), float(np.max(e_c))
    e_r = _activation(plan, "sigmoid", sigmoid, 0.25, e_pre[rows[0]], pre_max[rows[0]])
    e_z = _activation(plan, "sigmoid", sigmoid, 0.25, e_pre[rows[1]], pre_max[rows[1]])
    if plan.reset_after:
        # r⊙n_h: |r_q||n_h,q − n_h| + |n_h||r_q − r|; n_x + that is exact.
        e_nh, nh_max = e_pre[rows[3]], pre_max[rows[3]]
        e_rn = e_nh + nh_max * e_r + _rounds(stage["reset"])
    else:
        # r⊙h (h common, |h| < 1), then the second MAC over it: its weights times that error,
        # its own weight and bias quantization, its rounding.
        second = plan.hidden_gates
        w_n, b_n = weight_hh[rows[2]], bias_hh[rows[2]]
        e_rh = e_r + _rounds(stage["reset"])
        e_rn = (np.abs(second.weight_float()).sum(axis=1) * np.max(e_rh)
                + np.abs(w_n - second.weight_float()).sum(axis=1)
                + np.abs(b_n - second.bias_float()) + _half_ulp(plan.gate_format))
        e_nh, nh_max = e_rn, np.abs(w_n).sum(axis=1) + np.abs(b_n)
    if max(pre_max[rows[2]].max(), nh_max.max()) > plan.gate_format.max:
        raise ValueError(f"the candidate's parts may reach "
                         f"{max(pre_max[rows[2]].max(), nh_max.max()):.4g}, beyond gate_format "
                         f"{plan.gate_format} (they saturate there before their sum): no error "
                         f"bound")
    e_n = _activation(plan, "tanh", math.tanh, 1.0, e_pre[rows[2]] + e_rn,
                      pre_max[rows[2]] + nh_max)
    # h' = n + z⊙(h − n): h common, |h − n| < 2; the difference and the final sum are exact.
    e_h = (e_n + e_n + 2 * e_z + _rounds(stage["update"]) + _rounds(stage["difference"])
           + _rounds(stage["hidden"]))
    return float(np.max(e_h)), None
