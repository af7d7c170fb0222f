"""Float64 LSTM and GRU with PyTorch's semantics and layouts: the model every quantized recurrent
layer is measured against.

The equations are PyTorch's ``nn.LSTM``/``nn.GRU`` (``batch_first=True``, inference, so no
dropout between stacked layers), in its gate order and weight layout:

- LSTM, gates ``i, f, g, o`` (rows of ``weight_ih`` ``(4·hidden, input)`` and ``weight_hh``
  ``(4·hidden, hidden)``)::

      a = (W_ih x + b_ih) + (W_hh h + b_hh)
      i, f, o = σ(a_i), σ(a_f), σ(a_o);  g = tanh(a_g)
      c' = f⊙c + i⊙g;  h' = o⊙tanh(c')

- GRU, gates ``r, z, n`` (``weight_ih`` ``(3·hidden, input)``, ``weight_hh`` ``(3·hidden,
  hidden)``)::

      r = σ(W_ir x + b_ir + W_hr h + b_hr);  z = σ(W_iz x + b_iz + W_hz h + b_hz)
      reset_after=True  (PyTorch, Keras, ONNX linear_before_reset=1):
          n = tanh(W_in x + b_in + r⊙(W_hn h + b_hn))
      reset_after=False (the original GRU, ONNX linear_before_reset=0):
          n = tanh(W_in x + b_in + W_hn (r⊙h) + b_hn)
      h' = (1 − z)⊙n + z⊙h

``σ(a) = 1/(1 + e^−a)``, evaluated as ``e^−|a|``-based quotients so that no exponential
overflows. Sequences are batch-first: ``(steps, features)`` for one, ``(sequences, steps,
features)`` for several of the same length; states are ``(hidden,)`` or ``(sequences, hidden)``.

Every matrix-vector product is a sum over the last axis of an elementwise product, never a BLAS
call: BLAS chooses its blocking (and so its rounding) by the batch size, and a sequence's result
must not depend on which other sequences share its batch. So a batch gives bit for bit the
results of its sequences one at a time, and a reverse direction bit for bit the forward one on
the reversed sequence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from ..checks import (ParameterTypeError, ParameterValueError, check_bool, check_choice,
                      check_integer)
from ..fixed import real_array
from .windows import check_sequences

__all__ = ["GATES", "lstm_cell_float", "gru_cell_float", "lstm_float", "gru_float",
           "rnn_float", "sigmoid_float"]

#: Gates per hidden unit and their order in PyTorch's weight rows.
GATES = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}

_KEY = re.compile(r"(weight|bias)_(ih|hh)_l(\d+)(_reverse)?")


def sigmoid_float(a: np.ndarray) -> np.ndarray:
    """The logistic function ``1/(1 + e^−a)`` of float64 ``a``, elementwise, without overflow.

    ``e = e^−|a|`` is at most 1, so neither branch overflows: ``1/(1 + e)`` for ``a ≥ 0`` and
    ``e/(1 + e)`` (the same value, multiplied through by ``e^a``) for ``a < 0``.
    """
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0, e) / (1.0 + e)


#: Products held at once by :func:`_matvec` (32 MiB of float64), whatever the batch.
_CHUNK = 1 << 22


def _matvec(w: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``v @ w.T`` for ``v`` (batch, k) and ``w`` (rows, k), summed per row over the last axis
    (bit for bit the same whatever the batch; see the module docstring), a slice of the batch
    at a time."""
    step = max(1, _CHUNK // w.size)
    if len(v) <= step:
        return (v[:, np.newaxis, :] * w).sum(axis=-1)
    return np.concatenate([(v[s:s + step, np.newaxis, :] * w).sum(axis=-1)
                           for s in range(0, len(v), step)])


def _weights(kind, weight_ih, weight_hh, bias_ih, bias_hh, names, *, hidden=None,
             in_features=None, why_in="", why_hidden=""):
    """``(w_ih, w_hh, b_ih, b_hh)`` as checked float64 arrays (zeros for a missing bias).

    ``names`` are the four arrays' names for the messages; ``hidden`` and ``in_features``, when
    given, are the sizes the arrays must have (else read from ``weight_hh`` and ``weight_ih``);
    ``why_in`` and ``why_hidden`` say where the required sizes come from.
    """
    gates = len(GATES[kind])
    order = ", ".join(GATES[kind])
    w_hh = real_array(weight_hh, names[1])
    if hidden is None:
        hidden = w_hh.shape[1] if w_hh.ndim == 2 and w_hh.shape[1] >= 1 else None
    if hidden is None or w_hh.shape != (gates * hidden, hidden):
        expected = (f"({gates}·hidden, hidden) with hidden ≥ 1" if hidden is None else
                    f"({gates * hidden}, {hidden}) ({gates} gates {order} of hidden size "
                    f"{hidden}{why_hidden})")
        raise ParameterValueError(names[1], f"{names[1]} must have shape {expected}, not "
                                            f"{w_hh.shape}")
    w_ih = real_array(weight_ih, names[0])
    rows = gates * hidden
    if in_features is not None and w_ih.shape != (rows, in_features):
        raise ParameterValueError(names[0], f"{names[0]} must have shape {(rows, in_features)}"
                                            f"{why_in}, not {w_ih.shape}")
    if w_ih.ndim != 2 or w_ih.shape[0] != rows or w_ih.shape[1] < 1:
        raise ParameterValueError(names[0], f"{names[0]} must have shape ({rows}, input "
                                            f"features) ({gates} gates {order} of hidden size "
                                            f"{hidden}), not {w_ih.shape}")
    biases = []
    for bias, name in zip((bias_ih, bias_hh), names[2:]):
        b = np.zeros(rows) if bias is None else real_array(bias, name)
        if b.shape != (rows,):
            raise ParameterValueError(name, f"{name} must have shape ({rows},) ({gates} gates "
                                            f"{order} of hidden size {hidden}), not {b.shape}")
        biases.append(b)
    return w_ih, w_hh, biases[0], biases[1]


_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _lstm_step(x, state, params):
    h, c = state
    w_ih, w_hh, b_ih, b_hh = params
    # PyTorch adds the two affine maps, each with its own bias, then the sum (ATen's cell).
    i, f, g, o = np.split((_matvec(w_ih, x) + b_ih) + (_matvec(w_hh, h) + b_hh), 4, axis=-1)
    c = sigmoid_float(f) * c + sigmoid_float(i) * np.tanh(g)
    return sigmoid_float(o) * np.tanh(c), c


def _gru_step(x, state, params, reset_after):
    (h,) = state
    w_ih, w_hh, b_ih, b_hh = params
    hidden = h.shape[-1]
    x_r, x_z, x_n = np.split(_matvec(w_ih, x) + b_ih, 3, axis=-1)
    if reset_after:
        h_r, h_z, h_n = np.split(_matvec(w_hh, h) + b_hh, 3, axis=-1)
        r = sigmoid_float(x_r + h_r)
        n = np.tanh(x_n + r * h_n)
    else:
        h_r, h_z = np.split(_matvec(w_hh[:2 * hidden], h) + b_hh[:2 * hidden], 2, axis=-1)
        r = sigmoid_float(x_r + h_r)
        n = np.tanh(x_n + (_matvec(w_hh[2 * hidden:], r * h) + b_hh[2 * hidden:]))
    z = sigmoid_float(x_z + h_z)
    return ((1.0 - z) * n + z * h,)


def _step(kind, reset_after):
    if kind == "lstm":
        return _lstm_step
    return lambda x, state, params: _gru_step(x, state, params, reset_after)


def _run(step, x, state, params, reverse):
    """``(y, final state)`` of ``step`` over ``x`` (batch, steps, features) from ``state`` (a
    tuple of (batch, hidden) arrays), last step first if ``reverse``; ``y[:, t]`` is the hidden
    state after step ``t`` (so a reverse direction's outputs stay in input order, as PyTorch's)."""
    batch, steps = x.shape[:2]
    y = np.empty((batch, steps, state[0].shape[-1]))
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        state = step(x[:, t], state, params)
        y[:, t] = state[0]
    return y, state


def _state(values, name, shape, what):
    """``values`` as float64 of ``shape`` (zeros for None); ``what`` explains ``shape``."""
    if values is None:
        return np.zeros(shape)
    state = real_array(values, name)
    if state.shape != shape:
        raise ParameterValueError(name, f"{name} must have shape {shape} ({what}), not "
                                        f"{state.shape}")
    return state


def _cell(kind, x, states, weights, reset_after=True):
    """A cell's next states for ``x`` (input,) or (batch, input) and ``states`` (name, values)."""
    params = _weights(kind, *weights, _NAMES)
    features, hidden = params[0].shape[1], params[1].shape[1]
    x = real_array(x, "x")
    if x.ndim not in (1, 2) or x.shape[-1] != features:
        raise ParameterValueError("x", f"x must have shape ({features},) or (batch, "
                                       f"{features}), not {x.shape}")
    lead = x.shape[:-1]
    what = "hidden" if not lead else "batch, hidden"
    state = tuple(_state(values, name, lead + (hidden,), what).reshape(-1, hidden)
                  for name, values in states)
    result = _step(kind, reset_after)(x.reshape(-1, features), state, params)
    return tuple(s.reshape(lead + (hidden,)) for s in result)


def lstm_cell_float(x, h, c, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """One step of PyTorch's ``nn.LSTMCell``: ``(h', c')`` (module docstring's equations).

    Parameters
    ----------
    x : real array (input,) or (batch, input)
    h, c : real arrays (hidden,) or (batch, hidden), as ``x``'s batch
    weight_ih, weight_hh : real arrays (4·hidden, input), (4·hidden, hidden); gates i, f, g, o
    bias_ih, bias_hh : real arrays (4·hidden,), or None for zeros

    Raises
    ------
    ParameterTypeError
        An array that does not hold real numbers.
    ParameterValueError
        An array of the wrong shape (the message names it, its shape and the expected one), a
        row count that is not 4 times the hidden size, NaN or infinity.
    """
    return _cell("lstm", x, (("h", h), ("c", c)), (weight_ih, weight_hh, bias_ih, bias_hh))


def gru_cell_float(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *,
                   reset_after=True):
    """One step of PyTorch's ``nn.GRUCell`` (``reset_after=True``) or of the original GRU
    (``reset_after=False``): ``h'`` (module docstring's equations).

    Parameters
    ----------
    x : real array (input,) or (batch, input)
    h : real array (hidden,) or (batch, hidden), as ``x``'s batch
    weight_ih, weight_hh : real arrays (3·hidden, input), (3·hidden, hidden); gates r, z, n
    bias_ih, bias_hh : real arrays (3·hidden,), or None for zeros
    reset_after : bool
        Apply the reset gate after ``W_hn h + b_hn`` (PyTorch) or to ``h`` before it.

    Raises
    ------
    ParameterTypeError
        An array that does not hold real numbers; ``reset_after`` not a bool.
    ParameterValueError
        As :func:`lstm_cell_float`, with 3 gates.
    """
    reset_after = check_bool(reset_after, "reset_after")
    (h_next,) = _cell("gru", x, (("h", h),), (weight_ih, weight_hh, bias_ih, bias_hh),
                      reset_after)
    return h_next


def _sequence(kind, x, weights, states, reverse, reset_after=True):
    """``(y, *final states)`` of one layer and direction over ``x``, in ``x``'s rank."""
    reverse = check_bool(reverse, "reverse")
    params = _weights(kind, *weights, _NAMES)
    hidden = params[1].shape[1]
    x, batched = check_sequences(x, params[0].shape[1])
    shape = (x.shape[0], hidden) if batched else (hidden,)
    what = "sequences, hidden" if batched else "hidden"
    state = tuple(_state(values, name, shape, what).reshape(-1, hidden)
                  for name, values in states)
    y, state = _run(_step(kind, reset_after), x, state, params, reverse)
    return (y if batched else y[0],) + tuple(s.reshape(shape) for s in state)


def lstm_float(x, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, h0=None, c0=None,
               reverse=False):
    """One direction of one layer of PyTorch's ``nn.LSTM``: ``(y, h_n, c_n)``.

    Parameters
    ----------
    x : real array (steps, input) or (sequences, steps, input)
    weight_ih, weight_hh, bias_ih, bias_hh : as :func:`lstm_cell_float`
    h0, c0 : real arrays (hidden,) or (sequences, hidden), or None for zeros
    reverse : bool
        Run from the last step to the first (the reverse direction of a bidirectional layer).

    Returns ``y`` (steps, hidden) or (sequences, steps, hidden), the hidden state after each
    step in input order, and the final states ``h_n``, ``c_n`` shaped as ``h0``.

    Raises
    ------
    ParameterTypeError
        An array that does not hold real numbers; ``reverse`` not a bool.
    ParameterValueError
        As :func:`lstm_cell_float`; ``x`` not of one of its shapes.
    """
    return _sequence("lstm", x, (weight_ih, weight_hh, bias_ih, bias_hh),
                     (("h0", h0), ("c0", c0)), reverse)


def gru_float(x, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, h0=None, reverse=False,
              reset_after=True):
    """One direction of one layer of PyTorch's ``nn.GRU`` (or the original GRU with
    ``reset_after=False``): ``(y, h_n)``, shaped as :func:`lstm_float`'s.

    Raises
    ------
    ParameterTypeError, ParameterValueError
        As :func:`lstm_float` and :func:`gru_cell_float`.
    """
    reset_after = check_bool(reset_after, "reset_after")
    return _sequence("gru", x, (weight_ih, weight_hh, bias_ih, bias_hh), (("h0", h0),),
                     reverse, reset_after)


def _parameters(kind, state_dict, prefix):
    """``{(layer, direction): {field: array}}`` of ``state_dict``'s keys under ``prefix``, their
    layer count and direction count, checked complete."""
    if not isinstance(state_dict, Mapping):
        raise ParameterTypeError("state_dict", f"state_dict must be a mapping of names to "
                                               f"arrays, not {type(state_dict).__name__}")
    module = "nn." + kind.upper()
    found = {}
    for key in state_dict:
        if not isinstance(key, str) or not key.startswith(prefix):
            continue
        match = _KEY.fullmatch(key[len(prefix):])
        if match is None:
            hint = "; give prefix= to pick one module of a larger state_dict" if not prefix \
                else ""
            raise ParameterValueError("state_dict", f"state_dict key {key!r} is not a parameter "
                                                    f"of an {module} (weight_ih_l<k>, "
                                                    f"weight_hh_l<k>, bias_ih_l<k>, "
                                                    f"bias_hh_l<k>, each also with _reverse)"
                                                    f"{hint}")
        kind_, matrix, layer, reverse = match.groups()
        found.setdefault((int(layer), int(bool(reverse))), {})[f"{kind_}_{matrix}"] = \
            state_dict[key]
    if not found:
        raise ParameterValueError("state_dict", f"state_dict must hold {prefix}weight_ih_l0 "
                                                f"and the other parameters of an {module}, but "
                                                f"has no key starting with {prefix!r}")
    layers = 1 + max(layer for layer, _ in found)
    directions = 1 + max(direction for _, direction in found)
    for layer in range(layers):
        for direction in range(directions):
            for field in ("weight_ih", "weight_hh"):
                if field not in found.get((layer, direction), {}):
                    key = f"{prefix}{field}_l{layer}{'_reverse' if direction else ''}"
                    shape = f"{layers}-layer{' bidirectional' if directions == 2 else ''}"
                    raise ParameterValueError("state_dict", f"state_dict has no {key!r}, which "
                                                            f"a {shape} {module} needs")
    return found, layers, directions


def _module(kind, found, directions, prefix):
    """``({(layer, direction): (w_ih, w_hh, b_ih, b_hh)}, input features, hidden size)`` of
    the arrays :func:`_parameters` found, checked: layer 0's sizes hold for every layer
    (PyTorch's modules have one hidden size), and layer ``k + 1`` takes layer ``k``'s output."""
    def names(layer, direction):
        return tuple(f"{prefix}{field}_l{layer}{'_reverse' if direction else ''}"
                     for field in _NAMES)

    def arrays(layer, direction):
        return tuple(found[layer, direction].get(field) for field in _NAMES)

    params = {(0, 0): _weights(kind, *arrays(0, 0), names(0, 0))}
    features, hidden = params[0, 0][0].shape[1], params[0, 0][1].shape[1]
    first_ih, first_hh = names(0, 0)[:2]
    for layer, direction in sorted(found)[1:]:
        why_in = (f" (layer {layer} takes the {directions}·{hidden} features of layer "
                  f"{layer - 1}'s output)" if layer else f" (the input features of {first_ih})")
        params[layer, direction] = _weights(
            kind, *arrays(layer, direction), names(layer, direction), hidden=hidden,
            in_features=directions * hidden if layer else features, why_in=why_in,
            why_hidden=f", as {first_hh}")
    return params, features, hidden


def _agrees(value, name, actual, said):
    """``value`` (None, or what the caller says ``name`` is) checked against ``actual``."""
    if value is not None and value != actual:
        raise ParameterValueError(name, f"{name} = {value!r} disagrees with the state_dict, "
                                        f"{said}")


def rnn_float(kind, state_dict, x, *, num_layers=None, bidirectional=None, h0=None, c0=None,
              reset_after=True, prefix=""):
    """PyTorch's ``nn.LSTM`` or ``nn.GRU`` (``batch_first=True``) from its ``state_dict``:
    ``(y, h_n, c_n)``, ``c_n`` None for a GRU.

    Parameters
    ----------
    kind : "lstm" | "gru"
    state_dict : mapping of names to real arrays (a dict, or ``np.load`` of an ``.npz``)
        PyTorch's ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``
        (layer ``k``), each also with a ``_reverse`` suffix for a bidirectional module, all
        after ``prefix``; keys not starting with ``prefix`` are ignored. Missing biases
        (``bias=False``) are zeros.
    x : real array (steps, input) or (sequences, steps, input)
    num_layers : int, optional
        The number of stacked layers; default (and it must agree): what the keys name.
    bidirectional : bool, optional
        Whether the module has a reverse direction; default (and it must agree): whether there
        are ``_reverse`` keys.
    h0, c0 : real arrays (layers·directions, hidden) or (layers·directions, sequences,
        hidden), optional (zeros); in PyTorch's order: layer 0 forward, layer 0 reverse, layer
        1 forward, ... ``c0`` only for an LSTM.
    reset_after : bool
        For a GRU, as :func:`gru_cell_float`; an LSTM takes only True.
    prefix : str
        The module's name in a larger state_dict with its dot, e.g. ``"lstm."``.

    Returns ``y`` (steps, directions·hidden) or (sequences, steps, directions·hidden), the last
    layer's hidden states, forward then reverse as PyTorch concatenates them; ``h_n`` and
    ``c_n`` shaped as ``h0``. Layer ``k + 1`` takes layer ``k``'s ``y``.

    Raises
    ------
    ParameterTypeError
        ``kind``, ``state_dict``, ``prefix`` or a flag of the wrong type; an array that does
        not hold real numbers.
    ParameterValueError
        An unknown ``kind``; a key under ``prefix`` that is not such a parameter; a missing
        weight; ``num_layers`` or ``bidirectional`` disagreeing with the keys; ``c0`` for a
        GRU or ``reset_after=False`` for an LSTM; an array of the wrong shape (named by its
        key, with its shape and the expected one), hidden sizes that differ, NaN or infinity.
    """
    kind = check_choice(kind, "kind", tuple(GATES))
    reset_after = check_bool(reset_after, "reset_after")
    if kind == "lstm" and not reset_after:
        raise ParameterValueError("reset_after", "reset_after must be True for an LSTM (it "
                                                 "applies to a GRU), not False")
    if kind == "gru" and c0 is not None:
        raise ParameterValueError("c0", "c0 must be None for a GRU (it has no cell state), "
                                        "not an array")
    if not isinstance(prefix, str):
        raise ParameterTypeError("prefix", f"prefix must be a string, not {prefix!r}")
    num_layers = check_integer(num_layers, "num_layers", minimum=1, none=True)
    bidirectional = check_bool(bidirectional, "bidirectional", none=True)
    found, layers, directions = _parameters(kind, state_dict, prefix)
    _agrees(num_layers, "num_layers", layers,
            f"whose keys name {layers} layer{'s' if layers > 1 else ''} (l0 to l{layers - 1})")
    _agrees(bidirectional, "bidirectional", directions == 2,
            "which has _reverse keys" if directions == 2 else "which has no _reverse key")
    params, features, hidden = _module(kind, found, directions, prefix)
    x, batched = check_sequences(x, features)
    shape = (layers * directions, x.shape[0], hidden)
    what = "layers·directions, sequences, hidden" if batched else "layers·directions, hidden"
    named = (("h0", h0), ("c0", c0)) if kind == "lstm" else (("h0", h0),)
    states = [_state(values, name, shape if batched else (shape[0], hidden), what)
              .reshape(shape) for name, values in named]
    step = _step(kind, reset_after)
    finals = [np.empty(shape) for _ in states]
    for layer in range(layers):
        outputs = []
        for direction in range(directions):
            index = layer * directions + direction
            y, state = _run(step, x, tuple(s[index] for s in states), params[layer, direction],
                            bool(direction))
            outputs.append(y)
            for final, s in zip(finals, state):
                final[index] = s
        x = np.concatenate(outputs, axis=-1)
    finals = [f if batched else f[:, 0] for f in finals]
    return (x if batched else x[0], finals[0], finals[1] if kind == "lstm" else None)
