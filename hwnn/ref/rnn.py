"""Bit-exact reference of recurrent layers: the steps of :mod:`hwnn.plans.rnn`, part by part.

Each stage is the reference of the part the plan holds (:func:`~hwnn.ref.dense.dense`,
:func:`~hwnn.ref.activation.activation`, :func:`~hwnn.ref.elementwise.elementwise`), so the
core, built from the same parts, matches it stage for stage.
"""

from __future__ import annotations

import numpy as np

from ..checks import ParameterError, ParameterValueError
from ._inputs import check_codes
from .activation import activation
from .dense import dense
from .elementwise import elementwise

__all__ = ["recurrent", "recurrent_step"]


def _codes(fmt, value, name) -> np.ndarray:
    """``value`` as int64 codes of ``fmt``; the errors name ``name``."""
    try:
        return check_codes(fmt, value)
    except ParameterError as exc:
        text = str(exc).replace("inputs hold ", f"{name} holds ", 1)
        raise type(exc)(name, text.replace("inputs ", f"{name} ", 1)) from None


def recurrent_step(plan, x, h, c=None):
    """One time step: ``(h', c')`` codes (``c'`` None for a GRU) from input codes ``x``
    (``(n, input_size)``), state codes ``h`` (``(n, hidden)``, ``plan.state_format``) and, for
    an LSTM, cell codes ``c`` (``plan.cell_format``)."""
    hidden = plan.hidden_size
    xh = np.concatenate([np.asarray(x, dtype=np.int64) << plan.x_shift,
                         np.asarray(h, dtype=np.int64) << plan.h_shift], axis=-1)
    pre = dense(plan.gates, xh)
    part = [pre[..., k * hidden:(k + 1) * hidden] for k in range(4)]
    sigmoid, tanh, stage = plan.activations["sigmoid"], plan.activations["tanh"], plan.stages
    if plan.kind == "lstm":
        i, f, o = (activation(sigmoid, part[k]) for k in (0, 1, 3))
        g = activation(tanh, part[2])
        c = elementwise(stage["cell"], elementwise(stage["forget"], f, c),
                        elementwise(stage["input"], i, g))
        h = elementwise(stage["hidden"], o, activation(plan.activations["tanh_cell"], c))
        return h, c
    r, z = activation(sigmoid, part[0]), activation(sigmoid, part[1])
    if plan.reset_after:
        n_h = elementwise(stage["reset"], r, part[3])
    else:   # the original GRU: the state is reset before its product
        n_h = dense(plan.hidden_gates, elementwise(stage["reset"], r, h))
    n = activation(tanh, elementwise(stage["candidate"], part[2], n_h))
    update = elementwise(stage["update"], z, elementwise(stage["difference"], h, n))
    return elementwise(stage["hidden"], n, update), None


def recurrent(plan, x, h0=None, c0=None):
    """Run ``plan`` over sequences: ``(y, h_n, c_n)`` as codes.

    ``x`` holds input codes of ``plan.in_format``, shape ``(steps, input_size)`` for one
    sequence or ``(batch, steps, input_size)``; ``y`` is every step's hidden state
    (``(..., steps, hidden)``, in the input's time order also for a reverse direction, which
    runs from the last step to the first); ``h_n``/``c_n`` the final states (``(..., hidden)``;
    ``c_n`` None for a GRU). ``h0``/``c0``: initial state codes (None: zeros).

    Raises
    ------
    TypeError, ValueError
        Codes that are not integers of their format, or arrays of the wrong shape.
    """
    x = _codes(plan.in_format, x, "x")
    if x.ndim not in (2, 3) or x.shape[-1] != plan.input_size:
        raise ParameterValueError("x", f"x must have shape (steps, {plan.input_size}) or "
                                       f"(batch, steps, {plan.input_size}), not {x.shape}")
    single = x.ndim == 2
    x = x[None] if single else x
    batch, steps = x.shape[:2]
    states = []
    for name, value, fmt in (("h0", h0, plan.state_format), ("c0", c0, plan.cell_format)):
        if fmt is None:
            states.append(None)
            continue
        if value is None:
            states.append(np.zeros((batch, plan.hidden_size), dtype=np.int64))
            continue
        value = _codes(fmt, value, name)
        want = (plan.hidden_size,) if single else (batch, plan.hidden_size)
        if value.shape != want:
            raise ParameterValueError(name, f"{name} must have shape {want}, not "
                                            f"{value.shape}")
        states.append(value.reshape(batch, plan.hidden_size))
    h, c = states
    y = np.zeros((batch, steps, plan.hidden_size), dtype=np.int64)
    order = range(steps - 1, -1, -1) if plan.reverse else range(steps)
    for t in order:
        h, c = recurrent_step(plan, x[:, t], h, c)
        y[:, t] = h
    if single:
        return y[0], h[0], None if c is None else c[0]
    return y, h, c
