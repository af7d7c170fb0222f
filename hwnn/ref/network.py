"""Reference model of a network: the chain of its layers' references.

A network over sequences takes ``(steps, channels)`` or ``(sequences, steps, channels)`` codes.
Its flatten is in stream (time-major) order, ``t·channels + c``: the order the core delivers,
for which the dense layer after it holds its weights (PyTorch's channel-major flatten followed
by its dense layer is the same function once the weights are permuted with
:meth:`~hwnn.plans.pool.FlattenPlan.stream_weight`).
"""

from __future__ import annotations

import numpy as np

from ..checks import ParameterValueError
from .activation import activation
from .conv1d import conv1d, conv1d_float
from .dense import dense
from .pool import pool1d
from .rnn import recurrent
from .rnn_float import gru_float, lstm_float
from .windows import gather_windows

__all__ = ["network", "network_float", "network_layers"]

def _stream_flatten(plan, x):
    """Time-major flatten of ``(…, steps, channels)``: what the Flatten core delivers."""
    x = np.asarray(x)
    if x.ndim not in (2, 3) or x.shape[-2:] != (plan.steps, plan.channels):
        raise ParameterValueError("x", f"flatten takes sequences of shape ({plan.steps}, "
                                       f"{plan.channels}), not {x.shape[-2:]}")
    return x.reshape(x.shape[:-2] + (plan.steps * plan.channels,))


def _last_step(plan, x):
    """The last step of each sequence, ``(…, steps, channels)`` to ``(…, channels)``."""
    x = np.asarray(x)
    if x.ndim not in (2, 3) or x.shape[-1] != plan.channels or x.shape[-2] == 0:
        raise ParameterValueError("x", f"last takes sequences of at least one step of "
                                       f"{plan.channels} channels, not shape {x.shape}")
    return x[..., -1, :]


def _recurrent_outputs(plan, x):
    """Every step's hidden state of an LSTM or GRU layer, each sequence from a zero state."""
    return recurrent(plan, x)[0]


def _bidirectional_outputs(plan, x):
    """``[h_forward(t); h_reverse(t)]`` of every step of a bidirectional layer (PyTorch's
    order), each direction from a zero state, the reverse one from each sequence's last step."""
    return np.concatenate([recurrent(plan.forward, x)[0], recurrent(plan.reverse, x)[0]],
                          axis=-1)


_REFERENCES = {"dense": dense, "activation": activation, "conv1d": conv1d, "pool": pool1d,
               "flatten": _stream_flatten, "last": _last_step, "lstm": _recurrent_outputs,
               "gru": _recurrent_outputs, "bidirectional": _bidirectional_outputs}


def network_layers(plan, x) -> list[np.ndarray]:
    """The output codes of every layer of ``plan`` for input codes ``x``, in order.

    ``x`` has shape ``(n_in,)`` or ``(n, n_in)``.

    Raises
    ------
    ValueError
        ``x`` has the wrong shape or holds codes outside the network's input format, or
        sequences longer than a bidirectional layer's ``max_steps`` reach it (its core does
        not store them).
    """
    x = np.asarray(x)
    if plan.sequences[0]:
        if x.ndim not in (2, 3) or x.shape[-1] != plan.n_in:
            raise ParameterValueError("x", f"x must have shape (steps, {plan.n_in}) or "
                                           f"(sequences, steps, {plan.n_in}), not {x.shape}")
    elif x.shape[-1:] != (plan.n_in,) or x.ndim > 2:
        raise ParameterValueError("x", f"x must have shape ({plan.n_in},) or (n, {plan.n_in}), "
                                       f"not {x.shape}")
    outputs = []
    for layer in plan.layers:
        if layer.kind == "bidirectional" and x.shape[-2] > layer.options["max_steps"]:
            raise ParameterValueError("x", f"layer {layer.name!r} (bidirectional) takes "
                                           f"sequences of at most {layer.options['max_steps']} "
                                           f"steps (its max_steps), not {x.shape[-2]}")
        x = _REFERENCES[layer.kind](layer.plan, x)
        outputs.append(x)
    return outputs


def network(plan, x) -> np.ndarray:
    """Output codes of the network ``plan`` for input codes ``x`` (its last layer's output)."""
    return network_layers(plan, x)[-1]


def _pool_float(plan, x):
    """PyTorch's MaxPool1d / AvgPool1d of real ``x`` in float64."""
    single = x.ndim == 2
    windows = gather_windows(x[None] if single else x, plan.window,
                             fill=-np.inf if plan.kind == "max" else 0.0)
    y = windows.max(axis=-2) if plan.kind == "max" else windows.mean(axis=-2)
    return y[0] if single else y


def _direction_float(plan, x, arrays):
    """One direction (a RecurrentPlan ``plan``) of PyTorch's LSTM or GRU over real ``x``."""
    if plan.kind == "lstm":
        return lstm_float(x, *arrays, reverse=plan.reverse)[0]
    return gru_float(x, *arrays, reverse=plan.reverse, reset_after=plan.reset_after)[0]


def network_float(plan, weights, x) -> list[np.ndarray]:
    """The float64 model of ``plan``'s network: every layer's output for real inputs ``x``.

    Dense layers compute ``x @ W.T + b`` and conv1d layers PyTorch's convolution with the
    unquantized ``weights[name] = (W, b)`` (``b`` may be None; a dense after a flatten holds its
    weights in stream order); activations evaluate their function in float64. No rounding, no
    saturation: the model the quantized network approximates.
    Pooling takes the maximum (padding never wins) or the mean over the kernel (padding counts
    as zero, as PyTorch's ``count_include_pad``). ``last`` takes each sequence's last step.
    An LSTM or GRU layer runs PyTorch's
    ``nn.LSTM``/``nn.GRU`` (:func:`~hwnn.ref.rnn_float.lstm_float`,
    :func:`~hwnn.ref.rnn_float.gru_float`, the GRU variant its plan's ``reset_after``) from a
    zero state with ``weights[name] = (weight_ih, weight_hh, bias_ih, bias_hh)`` and gives
    every step's hidden state; a bidirectional one takes ``weights[name] = (forward arrays,
    reverse arrays)`` and gives ``[h_forward(t); h_reverse(t)]``, as PyTorch's
    ``bidirectional=True``.
    """
    x = np.asarray(x, dtype=np.float64)
    outputs = []
    for layer in plan.layers:
        if layer.kind == "dense":
            weight, bias = weights[layer.name]
            x = x @ np.asarray(weight, dtype=np.float64).T
            if bias is not None:
                x = x + np.asarray(bias, dtype=np.float64)
        elif layer.kind == "conv1d":
            weight, bias = weights[layer.name]
            c = layer.plan
            x = conv1d_float(weight, bias, x, stride=c.stride, dilation=c.dilation,
                             padding=c.padding, groups=c.n_groups)
        elif layer.kind == "flatten":
            x = _stream_flatten(layer.plan, x)
        elif layer.kind == "last":
            x = _last_step(layer.plan, x)
        elif layer.kind == "pool":
            x = _pool_float(layer.plan, x)
        elif layer.kind in ("lstm", "gru"):
            x = _direction_float(layer.plan, x, weights[layer.name])
        elif layer.kind == "bidirectional":
            x = np.concatenate([_direction_float(plan, x, arrays) for plan, arrays in
                                zip(layer.plan.directions, weights[layer.name])], axis=-1)
        else:
            x = np.asarray(layer.plan.function(x), dtype=np.float64)
        outputs.append(x)
    return outputs
