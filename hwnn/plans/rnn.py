"""Plans of recurrent layers: an LSTM or GRU direction as MAC, activation and elementwise plans.

A recurrent step is made of parts hwnn already has, and so is its plan:

* one :class:`~hwnn.plans.dense.DensePlan` over the concatenated ``[x; h]`` (the input and the
  previous hidden state aligned to one format, :attr:`RecurrentPlan.mac_in_format`) that gives
  every gate's pre-activation, requantized to ``gate_format``;
* activation plans (:func:`~hwnn.plans.activation.plan_activation`) for σ and tanh;
* :class:`~hwnn.plans.elementwise.ElementwisePlan` s for the products and sums of the update.

Every narrowing is one of those parts' requantizes, all rounding half up and saturating
(``Rounding.HALF_UP``, ``Overflow.SAT``); every other operation is exact. The stages, with the
format each lands in:

LSTM (PyTorch gate order i, f, g, o)::

    [i f g o] = dense([x; h])                 gate_format   (W = [W_ih | W_hh], b = b_ih + b_hh)
    i, f, o = σ(.)                            sigmoid_format
    g = tanh(.)                               tanh_format
    c' = f⊙c + i⊙g                            cell_format   (each product, then the sum)
    h' = o⊙tanh(c')                           state_format  (tanh(c') in tanh_format)

GRU (gate order r, z, n)::

    [r z n_x n_h] = dense([x; h])             gate_format   (rows r, z: [W_i | W_h], b_i + b_h;
                                                             n_x: [W_in | 0], b_in;
                                                             n_h: [0 | W_hn], b_hn)
    r, z = σ(.)                               sigmoid_format
    n = tanh(n_x + r⊙n_h)                     gate_format, then tanh_format
    h' = n + z⊙(h − n)                        state_format  (= (1 − z)⊙n + z⊙h; h − n exact,
                                                             z⊙(h − n) at the state's fraction
                                                             bits, up to ±2)

That is PyTorch's GRU (``reset_after``, ONNX ``linear_before_reset=1``). The original GRU
(``reset_after=False``, ONNX ``linear_before_reset=0``) resets the state before its product,
so it needs ``r`` first and a second MAC (``hidden_gates``)::

    [r z n_x] = dense([x; h])                 gate_format   (rows as above, without n_h)
    r, z = σ(.)                               sigmoid_format
    n_h = dense(r⊙h)                          gate_format   (r⊙h in state_format; W_hn, b_hn)
    n = tanh(n_x + n_h)                       gate_format, then tanh_format
    h' = n + z⊙(h − n)                        as above
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..checks import ParameterValueError, check_bool, check_choice, check_integer
from ..fixed import SQ, UQ, Format, Overflow, Rounding, check_format, real_array
from ..ref.rnn_float import lstm_cell_float
from .activation import plan_activation
from .dense import DensePlan, plan_dense
from .elementwise import ElementwisePlan, plan_elementwise

__all__ = ["CALIBRATION", "DEFAULT_ACTIVATION_OPTIONS", "KINDS", "METHODS", "RecurrentPlan",
           "default_formats", "gate_weights", "plan_recurrent"]

#: Recurrent layer kinds and their gate counts.
KINDS = {"lstm": 4, "gru": 3}

#: How σ and tanh are computed: piecewise-linear segments (the default), a table, the "hard"
#: functions (``hard_sigmoid``, ``hard_tanh``: exact, but other functions than σ and tanh),
#: piecewise polynomials, or a truncated Taylor series.
METHODS = ("pwl", "lut", "hard", "poly", "taylor")

#: σ and tanh plans' options unless given. PWL: 64 segments with slopes ±2^k ± 2^j, so a unit
#: needs no multiplier (a 16-bit PWL with any slope took two UP5K DSPs); a 16-bit LSTM(4→8)
#: stays within 1.1e-3 of float on h (32 segments, any slope: 1.4e-3). LUT: 1024 entries,
#: hls4ml's table size (or one entry per input code when there are fewer). Poly: 128 uniform
#: segments of degree 2 (two products), within 1.08 ulp of σ and tanh at a 16-bit LSTM(4→8)'s
#: formats (SQ(4,12) gates) and 1.9e-4 of float on h (64 segments: 5.4 ulp, 2.4e-4; 32 of
#: degree 3: 2.6 ulp, 2.3e-4). Taylor: order 3 around 0; its error away from 0 is what it is
#: (the same LSTM is 0.12 from float on h: the series is no approximation at |x| > 2).
#: Measured on 64 sequences of 32 steps, inputs SQ(2,14) uniform on [-2, 2), PyTorch's
#: initialization (seed 0), h against the float64 LSTM on the same input codes.
DEFAULT_ACTIVATION_OPTIONS = {"pwl": {"segments": 64, "slopes": "pot2"},
                              "lut": {"table_size": 1024},
                              "poly": {"segments": 128, "degree": 2},
                              "taylor": {"order": 3}, "hard": {}}

_ROUNDING, _OVERFLOW = Rounding.HALF_UP, Overflow.SAT


@dataclass(frozen=True)
class RecurrentPlan:
    """One direction of one LSTM or GRU layer, as the plans of its parts (module docstring).

    ``gates`` is the MAC's plan (``n_in = input_size + hidden_size``, ``n_out = 4·hidden``);
    ``x_shift``/``h_shift`` move input and state codes to its ``in_format``. For an LSTM,
    ``stages`` holds ``"forget"`` (f⊙c), ``"input"`` (i⊙g), ``"cell"`` (their sum) and
    ``"hidden"`` (o⊙tanh(c')); for a GRU ``"reset"`` (r⊙n_h), ``"candidate"`` (n_x + that),
    ``"difference"`` (h − n), ``"update"`` (z⊙(h − n)) and ``"hidden"`` (n + that).
    ``activations`` holds ``"sigmoid"`` and ``"tanh"`` (gate_format in), and for an LSTM
    ``"tanh_cell"`` (cell_format in).
    """
    kind: str
    input_size: int
    hidden_size: int
    in_format: Format
    state_format: Format
    gate_format: Format
    cell_format: Format | None
    gates: DensePlan
    activations: dict
    stages: dict
    reverse: bool = False
    method: str = "pwl"
    #: GRU: PyTorch's variant (True), or the original one, with ``hidden_gates``.
    reset_after: bool = True
    #: The original GRU's second MAC, over r⊙h (state_format): W_hn, b_hn.
    hidden_gates: DensePlan | None = None

    @property
    def x_shift(self) -> int:
        return self.gates.in_format.f - self.in_format.f

    @property
    def h_shift(self) -> int:
        return self.gates.in_format.f - self.state_format.f

    @property
    def mac_in_format(self) -> Format:
        return self.gates.in_format

    @property
    def out_format(self) -> Format:
        """The hidden state's format: what the layer outputs."""
        return self.state_format

    @property
    def next_state_format(self) -> Format:
        """The format of ``[h'; c']`` in one vector (a cell layer's output): the narrowest that
        holds every code of ``state_format`` and of ``cell_format`` exactly (the most integer
        and the most fraction bits of the two), ``state_format`` for a GRU."""
        if self.cell_format is None:
            return self.state_format
        h, c = self.state_format, self.cell_format
        return Format(h.signed or c.signed, max(h.i, c.i), max(h.f, c.f))

    def describe(self) -> dict:
        """Formats, sizes and every part's description (JSON-serializable)."""
        return {"kind": self.kind, "input_size": self.input_size,
                "hidden_size": self.hidden_size, "reverse": self.reverse,
                "method": self.method, "in_format": str(self.in_format),
                "state_format": str(self.state_format), "gate_format": str(self.gate_format),
                "cell_format": None if self.cell_format is None else str(self.cell_format),
                "reset_after": self.reset_after, "gates": self.gates.describe(),
                "hidden_gates": None if self.hidden_gates is None
                else self.hidden_gates.describe(),
                "activations": {k: v.describe() for k, v in self.activations.items()},
                "stages": {k: v.describe() for k, v in self.stages.items()}}


def _int_bits(bound: float) -> int:
    """Integer bits (sign included) of the narrowest SQ format holding ±``bound``."""
    return max(1, math.ceil(math.log2(bound)) + 1) if bound > 1 else 1


#: ``(sequences, steps, seed)`` of the float run that sizes a default cell format.
CALIBRATION = (64, 64, 0)


def _cell_reach(weight_ih, weight_hh, bias, in_format) -> float:
    """The largest |c| of the float LSTM over :data:`CALIBRATION` sequences of inputs uniform
    over ``in_format``'s range (fixed seed: the same weights give the same format)."""
    sequences, steps, seed = CALIBRATION
    rng = np.random.default_rng(seed)
    x = rng.uniform(in_format.min, in_format.max, (sequences, steps, weight_ih.shape[1]))
    hidden = weight_hh.shape[1]
    h, c = np.zeros((sequences, hidden)), np.zeros((sequences, hidden))
    reach = 0.0
    for t in range(steps):
        h, c = lstm_cell_float(x[:, t], h, c, weight_ih, weight_hh, bias)
        reach = max(reach, float(np.abs(c).max()))
    return reach


def default_formats(kind: str, weight_ih, weight_hh, bias, in_format, bits: int) -> dict:
    """The formats a recurrent layer gets from a bit budget of ``bits`` (every one at most
    that wide), each derived, none tuned:

    * ``weight_format``: SQ with the fewest integer bits that hold the largest weight;
    * ``state_format``, ``tanh_format``: SQ(1, bits − 1), since |h|, |tanh| < 1;
    * ``sigmoid_format``: UQ(0, bits − 1), since 0 < σ < 1; one bit short of the budget so
      that it is a signed ``bits``-bit operand too (a 16-bit σ times a 16-bit state is one
      16×16 DSP, not two);
    * ``gate_format``: the integer bits of the largest pre-activation bound
      ``Σ_x |W|·max|x| + Σ_h |W| + |b|`` (|h| < 1) capped where σ is within half a ``sigmoid_format`` ulp of
      1 (``(bits + 1)·ln 2``): a larger pre-activation changes no output;
    * ``cell_format`` (LSTM): |c_t| ≤ |c_{t−1}|·f_max + 1, so |c| ≤ 1 / (1 − f_max) with
      f_max = σ(the forget gate's pre-activation bound). That bound is far from what a cell
      reaches (PyTorch-initialized LSTM(4→8): 20 against 0.73), and every integer bit spent
      on it is a fraction bit lost, so the cell gets the integer bits of twice the largest
      |c| of the float model on :data:`CALIBRATION` random sequences (inputs uniform over
      ``in_format``), never more than the bound's nor bits/2. A cell state beyond that
      saturates (``Overflow.SAT``); give ``cell_format`` to choose otherwise.
    """
    gates = KINDS[kind]
    hidden = weight_hh.shape[1]
    weights = np.concatenate([weight_ih, weight_hh], axis=1)
    largest = float(np.max(np.abs(weights))) if weights.size else 0.0
    w_int = _int_bits(largest * (1 + 2.0 ** -(bits - 1)))
    x_max = max(abs(in_format.min), in_format.max)
    magnitude = np.concatenate([np.full(weight_ih.shape[1], x_max), np.ones(hidden)])
    pre = np.abs(weights) @ magnitude + np.abs(bias)
    saturation = (bits + 1) * math.log(2)
    gate_int = min(_int_bits(float(pre.max())), _int_bits(saturation))
    formats = {"weight_format": SQ(w_int, bits - w_int), "state_format": SQ(1, bits - 1),
               "tanh_format": SQ(1, bits - 1), "sigmoid_format": UQ(0, bits - 1),
               "gate_format": SQ(gate_int, bits - gate_int)}
    if kind == "lstm":
        forget = pre[hidden:2 * hidden].max() if gates == 4 else 0.0
        f_max = 1.0 / (1.0 + math.exp(-float(forget)))
        c_bound = 1.0 / (1.0 - f_max) if f_max < 1.0 else math.inf
        cell_int = min(_int_bits(c_bound), max(2, bits // 2),
                       _int_bits(2 * _cell_reach(weight_ih, weight_hh, bias, in_format)))
        formats["cell_format"] = SQ(cell_int, bits - cell_int)
    return formats


def _activations(kind, method, gate_format, sigmoid_format, tanh_format, cell_format,
                 options) -> dict:
    names = {"sigmoid": "hard_sigmoid", "tanh": "hard_tanh"} if method == "hard" else {
        "sigmoid": "sigmoid", "tanh": "tanh"}
    def how(in_format):
        if method == "hard":
            return {"method": "exact"}
        defaults = dict(DEFAULT_ACTIVATION_OPTIONS[method])
        if method == "lut":   # a narrower input has fewer codes than entries: one each
            defaults["table_size"] = min(defaults["table_size"], 1 << in_format.width)
        elif "segments" in defaults:  # and fewer than segments: a quarter of its codes at most
            defaults["segments"] = min(defaults["segments"], 1 << max(1, in_format.width - 2))
        return {"method": method, **defaults, **options}
    plans = {"sigmoid": plan_activation(names["sigmoid"], gate_format, sigmoid_format,
                                        **how(gate_format)),
             "tanh": plan_activation(names["tanh"], gate_format, tanh_format,
                                     **how(gate_format))}
    if kind == "lstm":
        plans["tanh_cell"] = plan_activation(names["tanh"], cell_format, tanh_format,
                                             **how(cell_format))
    return plans


def _stages(kind, hidden, formats, reset_after=True) -> dict:
    gate, sig, tanh = formats["gate_format"], formats["sigmoid_format"], formats["tanh_format"]
    state = formats["state_format"]

    def ew(op, a, b, out):
        return plan_elementwise(op, a, b, out, lanes=hidden, rounding=_ROUNDING,
                                overflow=_OVERFLOW)
    if kind == "lstm":
        cell = formats["cell_format"]
        return {"forget": ew("mul", sig, cell, cell), "input": ew("mul", sig, tanh, cell),
                "cell": ew("add", cell, cell, cell), "hidden": ew("mul", sig, tanh, state)}
    # h − n exactly; z⊙(h − n) may reach ±2 (only the sum with n is within ±1), so it keeps
    # the difference's integer bits at the state's fraction bits.
    difference = ew("sub", state, tanh, state).full_format
    update = Format(True, difference.i, state.f)
    reset = ew("mul", sig, gate, gate) if reset_after else ew("mul", sig, state, state)
    return {"reset": reset, "candidate": ew("add", gate, gate, gate),
            "difference": ew("sub", state, tanh, difference),
            "update": ew("mul", sig, difference, update),
            "hidden": ew("add", tanh, update, state)}


def gate_weights(kind, weight_ih, weight_hh, bias_ih, bias_hh, reset_after=True):
    """The MAC's weight over ``[x; h]`` and its bias (module docstring): without the n_h rows
    for the original GRU (``reset_after=False``), whose second MAC takes them."""
    hidden, inputs = weight_hh.shape[1], weight_ih.shape[1]
    if kind == "lstm":
        return np.concatenate([weight_ih, weight_hh], axis=1), bias_ih + bias_hh
    rz = slice(0, 2 * hidden)
    n = slice(2 * hidden, 3 * hidden)
    rows = [np.concatenate([weight_ih[rz], weight_hh[rz]], axis=1),
            np.concatenate([weight_ih[n], np.zeros((hidden, hidden))], axis=1)]
    biases = [bias_ih[rz] + bias_hh[rz], bias_ih[n]]
    if reset_after:
        rows.append(np.concatenate([np.zeros((hidden, inputs)), weight_hh[n]], axis=1))
        biases.append(bias_hh[n])
    return np.concatenate(rows), np.concatenate(biases)


def _check_weights(kind, weight_ih, weight_hh, bias_ih, bias_hh):
    gates = KINDS[kind]
    weight_hh = real_array(weight_hh, "weight_hh")
    if weight_hh.ndim != 2 or weight_hh.shape[0] != gates * weight_hh.shape[1] or \
            weight_hh.shape[1] == 0:
        raise ParameterValueError("weight_hh", f"weight_hh must have shape ({gates}·hidden, "
                                               f"hidden) for a {kind}, not {weight_hh.shape}")
    hidden = weight_hh.shape[1]
    weight_ih = real_array(weight_ih, "weight_ih")
    if weight_ih.ndim != 2 or weight_ih.shape[0] != gates * hidden or weight_ih.shape[1] == 0:
        raise ParameterValueError("weight_ih", f"weight_ih must have shape ({gates * hidden}, "
                                               f"input_size) for a {kind} of hidden size "
                                               f"{hidden}, not {weight_ih.shape}")
    biases = []
    for name, bias in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
        bias = np.zeros(gates * hidden) if bias is None else real_array(bias, name)
        if bias.shape != (gates * hidden,):
            raise ParameterValueError(name, f"{name} must have shape ({gates * hidden},), not "
                                            f"{bias.shape}")
        biases.append(bias)
    return weight_ih, weight_hh, biases[0], biases[1]


def plan_recurrent(kind, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, in_format,
                   bits: int = 16, reverse: bool = False, method: str = "pwl",
                   reset_after: bool = True, activation_options=None,
                   saturate_weights: bool = False, **formats) -> RecurrentPlan:
    """Plan one direction of an LSTM or GRU layer from PyTorch-layout float weights.

    Parameters
    ----------
    kind : "lstm" or "gru"
    weight_ih, weight_hh, bias_ih, bias_hh
        PyTorch's ``weight_ih_l0`` (gates·H × I), ``weight_hh_l0`` (gates·H × H), and biases
        (gates·H; None: zeros), gates in PyTorch's order (LSTM i, f, g, o; GRU r, z, n).
    in_format : Format or str
        The input's format.
    bits : int
        The bit budget the default formats stay within (:func:`default_formats`).
    reverse : bool
        The reverse direction of a bidirectional layer (it runs over the sequence backwards).
    method : "lut", "pwl", "poly", "taylor" or "hard"
        How σ and tanh are computed; ``activation_options`` go to their plans (for example
        ``{"segments": 32}`` for pwl, ``{"table_size": 256}`` for lut, ``{"segments": 16,
        "degree": 3}`` for poly, ``{"order": 5}`` for taylor), over
        :data:`DEFAULT_ACTIVATION_OPTIONS`.
    reset_after : bool
        GRU only: PyTorch's variant (True), or the original GRU (False), which resets the state
        before its product and takes a second MAC.
    saturate_weights : bool
        Clamp weights beyond ``weight_format`` instead of raising (counted in the plan).
    **formats
        Any of ``weight_format``, ``state_format``, ``gate_format``, ``sigmoid_format``,
        ``tanh_format``, ``cell_format`` (LSTM), replacing its default.

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type or value (``exc.parameter`` names it), including
        weights of the wrong shape, an unknown format name, or a format the parts refuse.
    """
    kind = check_choice(kind, "kind", tuple(KINDS))
    method = check_choice(method, "method", METHODS)
    bits = check_integer(bits, "bits", minimum=2, maximum=32)
    reverse = check_bool(reverse, "reverse")
    reset_after = check_bool(reset_after, "reset_after")
    in_format = check_format(in_format, "in_format")
    weight_ih, weight_hh, bias_ih, bias_hh = _check_weights(kind, weight_ih, weight_hh,
                                                            bias_ih, bias_hh)
    hidden, inputs = weight_hh.shape[1], weight_ih.shape[1]
    known = {"weight_format", "state_format", "gate_format", "sigmoid_format", "tanh_format"}
    known |= {"cell_format"} if kind == "lstm" else set()
    unknown = sorted(set(formats) - known)
    if unknown:
        raise ParameterValueError(unknown[0], f"{unknown[0]} is not a format of a {kind} "
                                              f"layer (it has {', '.join(sorted(known))})")
    chosen = default_formats(kind, weight_ih, weight_hh, bias_ih + bias_hh, in_format, bits)
    chosen.update({name: check_format(fmt, name) for name, fmt in formats.items()})
    reset_after = reset_after or kind == "lstm"
    weight, bias = gate_weights(kind, weight_ih, weight_hh, bias_ih, bias_hh, reset_after)
    state = chosen["state_format"]
    # x and h meet in one MAC input format: the fraction bits of the finer, the integer bits
    # of the wider, so both are exact there (a shift).
    mac_in = Format(True, max(in_format.i, state.i), max(in_format.f, state.f))
    gates = plan_dense(weight, bias, in_format=mac_in, weight_format=chosen["weight_format"],
                       out_format=chosen["gate_format"], rounding=_ROUNDING,
                       overflow=_OVERFLOW, saturate_weights=saturate_weights)
    hidden_gates = None
    if not reset_after:
        n = slice(2 * hidden, 3 * hidden)
        hidden_gates = plan_dense(weight_hh[n], bias_hh[n], in_format=state,
                                  weight_format=chosen["weight_format"],
                                  out_format=chosen["gate_format"], rounding=_ROUNDING,
                                  overflow=_OVERFLOW, saturate_weights=saturate_weights)
    activations = _activations(kind, method, chosen["gate_format"], chosen["sigmoid_format"],
                               chosen["tanh_format"], chosen.get("cell_format"),
                               dict(activation_options or {}))
    return RecurrentPlan(kind=kind, input_size=inputs, hidden_size=hidden, in_format=in_format,
                         state_format=state, gate_format=chosen["gate_format"],
                         cell_format=chosen.get("cell_format"), gates=gates,
                         activations=activations,
                         stages=_stages(kind, hidden, chosen, reset_after), reverse=reverse,
                         method=method, reset_after=reset_after, hidden_gates=hidden_gates)
