"""Reference model of a network: the chain of its layers' references.

A network over sequences takes ``(steps, channels)`` or ``(sequences, steps, channels)`` codes.
Its flatten is in stream (time-major) order, ``t·channels + c``: the order the core delivers,
for which the dense layer after it holds its weights (PyTorch's channel-major flatten followed
by its dense layer is the same function once the weights are permuted with
:meth:`~hwnn.plans.pool.FlattenPlan.stream_weight`).
"""

from __future__ import annotations

import numpy as np

from ..checks import ParameterTypeError, ParameterValueError
from .activation import activation
from .binary import multithreshold_float
from .binary_dense import binary_dense, binary_dense_float
from .conv1d import conv1d, conv1d_float
from .dense import dense
from .pool import pool1d
from .rnn import recurrent, recurrent_step
from .rnn_float import gru_cell_float, gru_float, lstm_cell_float, lstm_float
from .windows import gather_windows

__all__ = ["network", "network_float", "network_layers", "state_fields"]

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


def _recurrent_outputs(plan, x, state=None):
    """Every step's hidden state of an LSTM or GRU layer, each sequence from its ``state``
    (``{"h": h0, "c": c0}``, None: zeros)."""
    state = state or {}
    return recurrent(plan, x, state.get("h"), state.get("c"))[0]


def _direction_state(state, direction: int):
    """One direction's part (0 forward, 1 reverse) of a bidirectional layer's ``state``, whose
    arrays are ``(2, hidden)`` or ``(sequences, 2, hidden)`` (PyTorch's ``h0`` per sequence)."""
    if state is None:
        return None
    return {key: np.asarray(value)[..., direction, :] for key, value in state.items()}


def _bidirectional_outputs(plan, x, state=None):
    """``[h_forward(t); h_reverse(t)]`` of every step of a bidirectional layer (PyTorch's
    order), each direction from its part of ``state`` (zeros when None), the reverse one from
    each sequence's last step."""
    return np.concatenate([_recurrent_outputs(direction, x, _direction_state(state, k))
                           for k, direction in enumerate(plan.directions)], axis=-1)


def _next_state(plan, h, c):
    """``[h'; c']`` (``h'`` for a GRU) in ``plan.next_state_format``: each code shifted left
    to its fraction bits (exact), or, for real values, the values side by side."""
    if c is None:
        return h
    if np.issubdtype(np.asarray(h).dtype, np.floating):
        return np.concatenate([h, c], axis=-1)
    fmt = plan.next_state_format
    return np.concatenate([np.asarray(h, dtype=np.int64) << (fmt.f - plan.state_format.f),
                           np.asarray(c, dtype=np.int64) << (fmt.f - plan.cell_format.f)],
                          axis=-1)


def _cell_outputs(plan, x, state=None):
    """A cell layer's next state ``[h'; c']`` (:func:`_next_state`) of each vector of ``x``,
    from its ``state`` (``{"h": h, "c": c}`` codes, one per vector; None: zeros)."""
    x = np.asarray(x)
    zeros = np.zeros(x.shape[:-1] + (plan.hidden_size,), dtype=np.int64)
    state = state or {}
    h = state.get("h", zeros)
    c = state.get("c", zeros) if plan.cell_format is not None else None
    return _next_state(plan, *recurrent_step(plan, x, h, c))


_REFERENCES = {"dense": dense, "activation": activation, "conv1d": conv1d, "pool": pool1d,
               "flatten": _stream_flatten, "last": _last_step, "lstm": _recurrent_outputs,
               "gru": _recurrent_outputs, "bidirectional": _bidirectional_outputs,
               "lstm_cell": _cell_outputs, "gru_cell": _cell_outputs,
               "binary_dense": binary_dense}


def state_fields(layer) -> dict:
    """``{field: shape}`` of the initial state a recurrent ``layer`` starts a sequence from (a
    cell layer: the state of one vector's step): ``"h"`` and, for an LSTM, ``"c"``, each
    ``(hidden,)``, or ``(2, hidden)`` for a bidirectional layer (forward, reverse: PyTorch's
    ``h0`` of one sequence)."""
    plan = layer.plan
    shape = (2, plan.hidden_size) if layer.kind == "bidirectional" else (plan.hidden_size,)
    return {"h": shape, **({"c": shape} if plan.kind == "lstm" else {})}


def _check_states(plan, states, x):
    """``states`` (``{layer name: {field: array}}`` or None) checked against ``plan``'s layers
    with an initial state and the sequences of ``x``."""
    if states is None:
        return {}
    if not isinstance(states, dict):
        raise ParameterTypeError("initial_states", f"initial_states must be a dict from layer "
                                                   f"name to states, not {states!r}")
    takers = {layer.name: layer for layer in plan.stateful}
    for name, state in states.items():
        if name not in takers:
            raise ParameterValueError("initial_states", f"initial_states names {name!r}, which "
                                      f"is no layer with initial_state (those are: "
                                      f"{', '.join(takers) or 'none'})")
        fields = state_fields(takers[name])
        if not isinstance(state, dict) or set(state) != set(fields):
            raise ParameterValueError("initial_states", f"initial_states[{name!r}] must be a "
                                      f"dict with {' and '.join(map(repr, fields))}, not "
                                      f"{state!r}")
        batched = x.ndim == (3 if plan.sequences[0] else 2)
        for key, shape in fields.items():
            want = (x.shape[0], *shape) if batched else shape
            if np.shape(state[key]) != want:
                raise ParameterValueError("initial_states", f"initial_states[{name!r}][{key!r}] "
                                          f"must have shape {want}, not {np.shape(state[key])}")
    return states


def network_layers(plan, x, initial_states=None) -> list[np.ndarray]:
    """The output codes of every layer of ``plan`` for input codes ``x``, in order.

    ``x`` has shape ``(n_in,)`` or ``(n, n_in)`` (over sequences ``(steps, n_in)`` or
    ``(sequences, steps, n_in)``). ``initial_states`` maps the name of a layer with an initial
    state (:attr:`NetworkPlan.stateful <hwnn.plans.network.NetworkPlan.stateful>`) to the
    codes it starts each sequence from, ``{"h": h0, "c": c0}`` (``c`` for an LSTM only; codes
    of the layer's ``state_format`` and ``cell_format``), shaped as :func:`state_fields` says,
    after a leading ``sequences`` axis when ``x`` has one (PyTorch's ``lstm(x, (h0, c0))``
    one sequence at a time); a cell layer's state is per vector, after a leading axis of the
    vectors when ``x`` has one. A layer it does not name starts from zeros (as does every layer
    when it is None).

    Raises
    ------
    TypeError, ValueError
        ``x`` has the wrong shape or holds codes outside the network's input format, or
        sequences longer than a bidirectional layer's ``max_steps`` reach it (its core does
        not store them); ``initial_states`` names a layer without an initial state, lacks or
        adds a field, or holds arrays of the wrong shape or codes outside their format.
    """
    x = np.asarray(x)
    if plan.sequences[0]:
        if x.ndim not in (2, 3) or x.shape[-1] != plan.n_in:
            raise ParameterValueError("x", f"x must have shape (steps, {plan.n_in}) or "
                                           f"(sequences, steps, {plan.n_in}), not {x.shape}")
    elif x.shape[-1:] != (plan.n_in,) or x.ndim > 2:
        raise ParameterValueError("x", f"x must have shape ({plan.n_in},) or (n, {plan.n_in}), "
                                       f"not {x.shape}")
    states = _check_states(plan, initial_states, x)
    outputs = []
    for layer in plan.layers:
        if layer.kind == "bidirectional" and x.shape[-2] > layer.options["max_steps"]:
            raise ParameterValueError("x", f"layer {layer.name!r} (bidirectional) takes "
                                           f"sequences of at most {layer.options['max_steps']} "
                                           f"steps (its max_steps), not {x.shape[-2]}")
        if layer.name in states:
            x = _REFERENCES[layer.kind](layer.plan, x, states[layer.name])
        else:
            x = _REFERENCES[layer.kind](layer.plan, x)
        outputs.append(x)
    return outputs


def network(plan, x, initial_states=None) -> np.ndarray:
    """Output codes of the network ``plan`` for input codes ``x`` (its last layer's output),
    recurrent layers starting from ``initial_states`` (:func:`network_layers`)."""
    return network_layers(plan, x, initial_states)[-1]


def _pool_float(plan, x):
    """PyTorch's MaxPool1d / AvgPool1d of real ``x`` in float64."""
    single = x.ndim == 2
    windows = gather_windows(x[None] if single else x, plan.window,
                             fill=-np.inf if plan.kind == "max" else 0.0)
    y = windows.max(axis=-2) if plan.kind == "max" else windows.mean(axis=-2)
    return y[0] if single else y


def _direction_float(plan, x, arrays, state=None):
    """One direction (a RecurrentPlan ``plan``) of PyTorch's LSTM or GRU over real ``x``, from
    ``state`` (``{"h": h0, "c": c0}`` real values; None: zeros)."""
    state = state or {}
    if plan.kind == "lstm":
        return lstm_float(x, *arrays, h0=state.get("h"), c0=state.get("c"),
                          reverse=plan.reverse)[0]
    return gru_float(x, *arrays, h0=state.get("h"), reverse=plan.reverse,
                     reset_after=plan.reset_after)[0]


def _cell_float(plan, x, arrays, state=None):
    """PyTorch's ``LSTMCell``/``GRUCell`` over real vectors ``x``, each from its ``state``
    (real values; None: zeros): ``[h'; c']`` (``h'`` for a GRU)."""
    zeros = np.zeros(x.shape[:-1] + (plan.hidden_size,))
    state = state or {}
    h = np.asarray(state.get("h", zeros), dtype=np.float64)
    if plan.kind == "lstm":
        c = np.asarray(state.get("c", zeros), dtype=np.float64)
        return _next_state(plan, *lstm_cell_float(x, h, c, *arrays))
    return gru_cell_float(x, h, *arrays, reset_after=plan.reset_after)


def network_float(plan, weights, x, initial_states=None) -> list[np.ndarray]:
    """The float64 model of ``plan``'s network: every layer's output for real inputs ``x``.

    Dense layers compute ``x @ W.T + b`` and conv1d layers PyTorch's convolution with the
    unquantized ``weights[name] = (W, b)`` (``b`` may be None; a dense after a flatten holds its
    weights in stream order); activations evaluate their function in float64 (a threshold
    activation compares its real input with its thresholds' real values,
    :func:`~hwnn.ref.binary.multithreshold_float`). No rounding, no saturation: the model the
    quantized network approximates.
    Pooling takes the maximum (padding never wins) or the mean over the kernel (padding counts
    as zero, as PyTorch's ``count_include_pad``). ``last`` takes each sequence's last step.
    An LSTM or GRU layer runs PyTorch's
    ``nn.LSTM``/``nn.GRU`` (:func:`~hwnn.ref.rnn_float.lstm_float`,
    :func:`~hwnn.ref.rnn_float.gru_float`, the GRU variant its plan's ``reset_after``) from a
    zero state with ``weights[name] = (weight_ih, weight_hh, bias_ih, bias_hh)`` and gives
    every step's hidden state; a bidirectional one takes ``weights[name] = (forward arrays,
    reverse arrays)`` and gives ``[h_forward(t); h_reverse(t)]``, as PyTorch's
    ``bidirectional=True``. A cell layer runs PyTorch's ``LSTMCell``/``GRUCell`` on each vector
    from its state (zeros when not given) and gives ``[h'; c']`` (``h'`` for a GRU). A
    binary_dense layer is :func:`~hwnn.ref.binary_dense.binary_dense_float` (its plan holds
    the weights). ``initial_states`` gives layers their initial states (a cell layer: the
    state of each vector) as real values, shaped as in :func:`network_layers` (PyTorch's
    ``lstm(x, (h0, c0))``).

    Raises
    ------
    TypeError, ValueError
        ``initial_states`` as :func:`network_layers` says.
    """
    x = np.asarray(x, dtype=np.float64)
    states = _check_states(plan, initial_states, x)
    outputs = []
    for layer in plan.layers:
        if layer.kind == "dense":
            weight, bias = weights[layer.name]
            x = x @ np.asarray(weight, dtype=np.float64).T
            if bias is not None:
                x = x + np.asarray(bias, dtype=np.float64)
        elif layer.kind == "binary_dense":
            x = binary_dense_float(layer.plan, x)
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
            x = _direction_float(layer.plan, x, weights[layer.name], states.get(layer.name))
        elif layer.kind in ("lstm_cell", "gru_cell"):
            x = _cell_float(layer.plan, x, weights[layer.name], states.get(layer.name))
        elif layer.kind == "bidirectional":
            state = states.get(layer.name)
            x = np.concatenate([_direction_float(direction, x, arrays,
                                                 _direction_state(state, k))
                                for k, (direction, arrays) in
                                enumerate(zip(layer.plan.directions, weights[layer.name]))],
                               axis=-1)
        elif layer.plan.method == "threshold":  # thresholds compared in real values
            x = multithreshold_float(layer.plan, x)
        else:
            x = np.asarray(layer.plan.function(x), dtype=np.float64)
        outputs.append(x)
    return outputs
