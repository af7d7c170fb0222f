"""ONNX ``LSTM`` and ``GRU`` parameters in PyTorch's layout (the layout of
:mod:`hwnn.ref.rnn_float` and of every recurrent plan).

ONNX holds one layer's weights as ``W`` ``[num_directions, gates·hidden, input]``, ``R``
``[num_directions, gates·hidden, hidden]`` and ``B`` ``[num_directions, 2·gates·hidden]`` (the
input biases ``Wb``, then the recurrent ones ``Rb``), gates in the order ``i, o, f, c`` (LSTM)
or ``z, r, h`` (GRU). PyTorch holds ``weight_ih_l0`` ``(gates·hidden, input)``,
``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0`` (``_reverse`` for the second direction), gates
in the order ``i, f, g, o`` or ``r, z, n``. The functions here permute the gate blocks; the
values are the same float64 numbers. ONNX's ``c``/``h`` gate is PyTorch's ``g``/``n``; GRU
``linear_before_reset = 1`` is PyTorch's GRU (``reset_after=True``), ``0`` the original one.

What PyTorch's modules cannot express is refused with :class:`~hwnn.io.model.UnsupportedLayer`
naming the attribute: peepholes (a nonzero ``P``), ``clip``, ``input_forget = 1``, activations
other than the defaults (Sigmoid, Tanh, Tanh; GRU Sigmoid, Tanh), and ``layout = 1``. A
single-direction ``direction = "reverse"`` layer, which ``nn.LSTM`` cannot express either, maps
to the ``_reverse`` keys alone: run it with ``lstm_float(..., reverse=True)``. The ``onnx``
package is not needed: the arguments are numpy arrays and attribute values.
"""

from __future__ import annotations

import numpy as np

from .model import ModelError, UnsupportedLayer

__all__ = ["lstm_from_onnx", "gru_from_onnx", "DIRECTIONS"]

DIRECTIONS = ("forward", "reverse", "bidirectional")
#: For each PyTorch gate (i, f, g, o / r, z, n), its block in ONNX's order (i, o, f, c / z, r, h).
_LSTM_BLOCKS = (0, 2, 3, 1)
_GRU_BLOCKS = (1, 0, 2)
_GATES = {"LSTM": 4, "GRU": 3}
_DEFAULT_ACTIVATIONS = {"LSTM": ("Sigmoid", "Tanh", "Tanh"), "GRU": ("Sigmoid", "Tanh")}


def _text(value):
    """An attribute's string (``onnx.helper.get_attribute_value`` gives bytes)."""
    return value.decode() if isinstance(value, bytes) else value


def _array(values, what) -> np.ndarray:
    """``values`` as float64, checked real and finite; ``what`` names it in the message."""
    a = np.asarray(values)
    if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.floating)
                                   or np.issubdtype(a.dtype, np.integer)):
        raise ModelError(f"{what} must hold real numbers, not dtype {a.dtype}")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ModelError(f"{what} holds NaN or infinity")
    return a


def _check_shape(a, what, expected, meaning):
    if a.shape != expected:
        raise ModelError(f"{what} must have shape {expected} ({meaning}), not {a.shape}")


def _refuse(op, name, value, why):
    raise UnsupportedLayer(f"{op} attribute {name} = {value!r}: {why}; hwnn's LSTM and GRU "
                           f"are PyTorch's and cannot import it")


def _common(op, W, R, B, direction, hidden_size, clip, activations, activation_alpha,
            activation_beta, layout):
    """Checked ``(W, R, B or None, directions)`` of an ONNX recurrent node, after refusing what
    PyTorch cannot express."""
    direction = _text(direction)
    if direction not in DIRECTIONS:
        raise ModelError(f"{op} attribute direction must be one of {' | '.join(DIRECTIONS)}, "
                         f"not {direction!r}")
    directions = 2 if direction == "bidirectional" else 1
    if clip is not None:
        _refuse(op, "clip", clip, "PyTorch has no cell clipping")
    if layout != 0:
        _refuse(op, "layout", layout, "only layout 0 (X as [steps, batch, input]) is supported")
    default = _DEFAULT_ACTIVATIONS[op] * directions
    if activations is not None:
        names = tuple(_text(a) for a in activations)
        if tuple(a.lower() for a in names) != tuple(a.lower() for a in default):
            _refuse(op, "activations", list(names), f"only the defaults {list(default)} are "
                                                    f"PyTorch's")
    for name, value in (("activation_alpha", activation_alpha),
                        ("activation_beta", activation_beta)):
        if value is not None:
            _refuse(op, name, value, "the default activations take no parameters")
    gates = _GATES[op]
    R = _array(R, f"{op} input R")
    hidden = R.shape[-1] if R.ndim == 3 and R.shape[-1] >= 1 else None
    if hidden is None or R.shape != (directions, gates * hidden, hidden):
        expected = (f"({directions}, {gates}·hidden, hidden) with hidden ≥ 1" if hidden is None
                    else f"({directions}, {gates * hidden}, {hidden})")
        raise ModelError(f"{op} input R must have shape {expected} ([num_directions, "
                         f"{gates}·hidden_size, hidden_size], direction {direction}), not "
                         f"{R.shape}")
    if hidden_size is not None and hidden_size != hidden:
        raise ModelError(f"{op} attribute hidden_size = {hidden_size!r} disagrees with input R "
                         f"of shape {R.shape} (hidden size {hidden})")
    W = _array(W, f"{op} input W")
    if W.ndim != 3 or W.shape[:2] != (directions, gates * hidden) or W.shape[2] < 1:
        raise ModelError(f"{op} input W must have shape ({directions}, {gates * hidden}, input) "
                         f"([num_directions, {gates}·hidden_size, input_size]), not {W.shape}")
    if B is not None:
        B = _array(B, f"{op} input B")
        _check_shape(B, f"{op} input B", (directions, 2 * gates * hidden),
                     f"[num_directions, 2·{gates}·hidden_size]: Wb then Rb")
    return W, R, B, direction


def _state_dict(W, R, B, direction, blocks) -> dict:
    """PyTorch's layer-0 parameters: ONNX gate block ``blocks[k]`` becomes PyTorch gate ``k``."""
    hidden = R.shape[-1]

    def reorder(a):  # gate blocks of ``hidden`` rows (or entries) along the first axis
        return np.concatenate([a[b * hidden:(b + 1) * hidden] for b in blocks])

    suffixes = {"forward": ("",), "reverse": ("_reverse",),
                "bidirectional": ("", "_reverse")}[direction]
    result = {}
    for d, suffix in enumerate(suffixes):
        result[f"weight_ih_l0{suffix}"] = reorder(W[d])
        result[f"weight_hh_l0{suffix}"] = reorder(R[d])
        if B is not None:
            wb, rb = np.split(B[d], 2)
            result[f"bias_ih_l0{suffix}"] = reorder(wb)
            result[f"bias_hh_l0{suffix}"] = reorder(rb)
    return result


def lstm_from_onnx(W, R, B=None, *, direction="forward", P=None, hidden_size=None, clip=None,
                   input_forget=0, activations=None, activation_alpha=None,
                   activation_beta=None, layout=0) -> dict:
    """The PyTorch ``state_dict`` (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``,
    ``bias_hh_l0``, with ``_reverse``) of an ONNX ``LSTM`` node's inputs and attributes.

    Parameters
    ----------
    W, R, B : real arrays
        The node's inputs ``[nd, 4·hidden, input]``, ``[nd, 4·hidden, hidden]``, ``[nd,
        8·hidden]`` (``B`` optional: no bias keys, which PyTorch reads as zeros), ``nd`` 2 for
        ``direction = "bidirectional"``, else 1.
    P : real array [nd, 3·hidden], optional
        Peepholes: refused unless all zero (then they change nothing).
    direction, hidden_size, clip, input_forget, activations, activation_alpha,
    activation_beta, layout
        The node's attributes (strings as ``str`` or ``bytes``); defaults are ONNX's.

    Raises
    ------
    UnsupportedLayer
        Nonzero peepholes, ``clip``, ``input_forget = 1``, other activations or their
        parameters, ``layout = 1``.
    ModelError
        An unknown ``direction``; an array of the wrong shape (the message names the input, its
        shape and the expected one) or holding NaN, infinity or non-numbers; ``hidden_size``
        disagreeing with ``R``.
    """
    W, R, B, direction = _common("LSTM", W, R, B, direction, hidden_size, clip, activations,
                                 activation_alpha, activation_beta, layout)
    if input_forget not in (0, None):
        _refuse("LSTM", "input_forget", input_forget, "PyTorch does not couple the input and "
                                                      "forget gates")
    if P is not None:
        P = _array(P, "LSTM input P")
        _check_shape(P, "LSTM input P", (W.shape[0], 3 * R.shape[-1]),
                     "[num_directions, 3·hidden_size]")
        if np.any(P != 0):
            raise UnsupportedLayer("LSTM input P holds nonzero peepholes; hwnn's LSTM is "
                                   "PyTorch's, which has none, and cannot import them")
    return _state_dict(W, R, B, direction, _LSTM_BLOCKS)


def gru_from_onnx(W, R, B=None, *, direction="forward", linear_before_reset=0,
                  hidden_size=None, clip=None, activations=None, activation_alpha=None,
                  activation_beta=None, layout=0) -> tuple[dict, bool]:
    """``(state_dict, reset_after)`` of an ONNX ``GRU`` node: PyTorch's names (as
    :func:`lstm_from_onnx`, 3 gates) and whether the reset gate applies after the recurrent
    product (``linear_before_reset = 1``, PyTorch's GRU) or before it (``0``, ONNX's default,
    the original GRU): the ``reset_after`` of :func:`hwnn.ref.rnn_float.gru_float`.

    Raises
    ------
    UnsupportedLayer, ModelError
        As :func:`lstm_from_onnx`; ``linear_before_reset`` other than 0 or 1 is a ModelError.
    """
    W, R, B, direction = _common("GRU", W, R, B, direction, hidden_size, clip, activations,
                                 activation_alpha, activation_beta, layout)
    if linear_before_reset not in (0, 1) or isinstance(linear_before_reset, bool):
        raise ModelError(f"GRU attribute linear_before_reset must be 0 or 1, not "
                         f"{linear_before_reset!r}")
    return _state_dict(W, R, B, direction, _GRU_BLOCKS), linear_before_reset == 1
