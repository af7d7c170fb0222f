"""ONNX LSTM/GRU parameters in PyTorch's layout, and the float64 reference checked against ONNX's
own reference implementation (``onnx.reference.ReferenceEvaluator``, run in float64).

The two compute the same equations with sums in different orders (ONNX adds ``Wb + Rb`` first,
PyTorch each bias to its own product), so they agree to rounding, not bit for bit. The
tolerance is a forward error bound derived below for any evaluation order, computed alongside
each sequence from the actual values: each implementation is within the bound of the exact
result, so they are within twice the bound of each other.
"""

import numpy as np
import pytest

from hwnn.io.model import ModelError, UnsupportedLayer
from hwnn.io.rnn import gru_from_onnx, lstm_from_onnx
from hwnn.ref.rnn_float import gru_float, lstm_float, rnn_float

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

#: The unit roundoff of float64: every +, −, × is exact times (1 + δ), |δ| ≤ U.
U = 2.0 ** -53
#: |computed − exact| of np.tanh: at most 4 ulp (assumed of numpy's float64 tanh) of a value of
#: magnitude ≤ 1, whose ulp is ≤ 2U.
TANH_ERROR = 8 * U
#: |computed − exact| of σ: exp within 4 ulp (≤ 8U relative), U from ``1 + e``, U from the
#: quotient: ≤ 10U relative (both ``1/(1 + e^−a)`` and hwnn's ``e^−|a|`` form), and σ ≤ 1.
SIGMOID_ERROR = 10 * U
#: Every error below is at most this, so the products of two errors that a first-order bound
#: drops are below 1e-9 of the terms it keeps (which include U per operation).
FIRST_ORDER = 1e-9


@pytest.mark.skipif(np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps,
                    reason="no extended precision to measure float64 functions against")
def test_elementary_functions_are_as_accurate_as_assumed():
    # The bound assumes np.exp and np.tanh within 4 ulp; measured against the long double
    # functions (64-bit significands, so their own error is below 1e-3 of a float64 ulp).
    rng = np.random.default_rng(8)
    a = np.concatenate([rng.uniform(-40, 40, 20000), rng.uniform(-1, 1, 20000)])
    for function in (np.exp, np.tanh):
        exact = function(a.astype(np.longdouble))
        ulps = abs(function(a) - exact) / np.spacing(abs(exact).astype(np.float64))
        assert ulps.max() <= 4


def gamma(n):
    """Higham's γ_n: a sum of n terms (products or values) in any order, with products rounded
    once, is within γ_n · Σ|terms| of the exact sum."""
    return n * U / (1 - n * U)


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def lstm_bound(x, e_x, params, h0, c0, reverse):
    """``(y, e_y, e_c)``: one LSTM direction's hidden states (batch, steps, hidden) computed
    with numpy's matmul, a first-order bound on |any float64 evaluation − exact| of each, and
    that of the final cell state, for inputs ``x`` that are themselves off by at most ``e_x``
    (0 for a network's input)."""
    w_ih, w_hh, b_ih, b_hh = params
    batch, steps, features = x.shape
    hidden = w_hh.shape[1]
    m = features + hidden + 2    # products of W_ih x and W_hh h, and two biases
    h, c = h0, c0
    e_h = e_c = np.zeros_like(h0)
    y, e_y = np.empty((batch, steps, hidden)), np.empty((batch, steps, hidden))
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        a = x[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        magnitude = abs(x[:, t]) @ abs(w_ih).T + abs(b_ih) + abs(h) @ abs(w_hh).T + abs(b_hh)
        e_a = gamma(m) * magnitude + e_x[:, t] @ abs(w_ih).T + e_h @ abs(w_hh).T
        (a_i, a_f, a_g, a_o), (e_ai, e_af, e_ag, e_ao) = (np.split(v, 4, -1) for v in (a, e_a))
        i, f, g, o = sigmoid(a_i), sigmoid(a_f), np.tanh(a_g), sigmoid(a_o)
        e_i, e_f, e_o = (s * (1 - s) * e + SIGMOID_ERROR
                         for s, e in ((i, e_ai), (f, e_af), (o, e_ao)))
        e_g = (1 - g * g) * e_ag + TANH_ERROR
        # c' = f c + i g: two products and a sum rounded, and the inputs' errors.
        e_c = (gamma(2) * (abs(f * c) + abs(i * g)) + abs(c) * e_f + f * e_c + abs(g) * e_i
               + i * e_g)
        c = f * c + i * g
        tanh_c = np.tanh(c)
        e_tanh = (1 - tanh_c ** 2) * e_c + TANH_ERROR
        h = o * tanh_c
        e_h = U * abs(h) + abs(tanh_c) * e_o + o * e_tanh
        y[:, t], e_y[:, t] = h, e_h
    return y, e_y, e_c


def gru_bound(x, e_x, params, h0, reverse, reset_after):
    """As :func:`lstm_bound` for a GRU direction (no cell state: ``e_c`` None)."""
    w_ih, w_hh, b_ih, b_hh = params
    batch, steps, features = x.shape
    hidden = w_hh.shape[1]
    w_in, w_hn, b_in, b_hn = w_ih[2 * hidden:], w_hh[2 * hidden:], b_ih[2 * hidden:], \
        b_hh[2 * hidden:]
    # r and z sum features + hidden products and two biases; n at most features + 1 terms and
    # r times a sum of hidden + 1 terms (or hidden products of the rounded r⊙h): one more
    # rounding on the longest path, γ of features + hidden + 3 covers both.
    m_rz, m_n = features + hidden + 2, features + hidden + 3
    h, e_h = h0, np.zeros_like(h0)
    y, e_y = np.empty((batch, steps, hidden)), np.empty((batch, steps, hidden))
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        xt, ext = x[:, t], e_x[:, t]
        rows = slice(0, 2 * hidden)
        a = xt @ w_ih[rows].T + b_ih[rows] + h @ w_hh[rows].T + b_hh[rows]
        magnitude = (abs(xt) @ abs(w_ih[rows]).T + abs(b_ih[rows]) + abs(h) @ abs(w_hh[rows]).T
                     + abs(b_hh[rows]))
        e_a = gamma(m_rz) * magnitude + ext @ abs(w_ih[rows]).T + e_h @ abs(w_hh[rows]).T
        r, z = np.split(sigmoid(a), 2, -1)
        e_r, e_z = np.split(sigmoid(a) * (1 - sigmoid(a)) * e_a + SIGMOID_ERROR, 2, -1)
        p = xt @ w_in.T + b_in
        if reset_after:
            q = h @ w_hn.T + b_hn
            a_n = p + r * q
            magnitude = abs(xt) @ abs(w_in).T + abs(b_in) + r * (abs(h) @ abs(w_hn).T
                                                                  + abs(b_hn))
            inherited = ext @ abs(w_in).T + r * (e_h @ abs(w_hn).T) + abs(q) * e_r
        else:
            a_n = p + (r * h) @ w_hn.T + b_hn
            magnitude = abs(xt) @ abs(w_in).T + abs(b_in) + (r * abs(h)) @ abs(w_hn).T \
                + abs(b_hn)
            inherited = ext @ abs(w_in).T + (r * e_h + abs(h) * e_r) @ abs(w_hn).T
        n = np.tanh(a_n)
        e_n = (1 - n * n) * (gamma(m_n) * magnitude + inherited) + TANH_ERROR
        # h' = (1 − z) n + z h: 1 − z, two products and a sum rounded.
        e_h = (gamma(3) * ((1 - z) * abs(n) + z * abs(h)) + abs(h - n) * e_z + (1 - z) * e_n
               + z * e_h)
        h = (1 - z) * n + z * h
        y[:, t], e_y[:, t] = h, e_h
    return y, e_y, None


def assert_within(actual, expected, bound):
    """|actual − expected| ≤ bound everywhere (the message gives the worst ratio)."""
    ratio = abs(np.asarray(actual) - expected) / bound
    assert ratio.max() <= 1, f"off by {ratio.max():.3g} times the bound"


def onnx_node(op, direction, name, x, weights, initial, **attributes):
    """The node and its initializers: ``weights`` (W, R, B or None), ``initial`` states (or
    None) named after ``name``."""
    inputs, tensors = [x], []
    for key, value in zip(("W", "R", "B"), weights):
        inputs.append("" if value is None else f"{name}_{key}")
        if value is not None:
            tensors.append(helper.make_tensor(f"{name}_{key}", TensorProto.DOUBLE, value.shape,
                                              value.ravel()))
    inputs.append("")   # sequence_lens: every sequence has all steps
    for key, value in zip(("initial_h", "initial_c"), initial or ()):
        inputs.append(f"{name}_{key}")
        tensors.append(helper.make_tensor(f"{name}_{key}", TensorProto.DOUBLE, value.shape,
                                          value.ravel()))
    outputs = [f"{name}_Y", f"{name}_Y_h"] + ([f"{name}_Y_c"] if op == "LSTM" else [])
    node = helper.make_node(op, inputs, outputs, name=name, direction=direction,
                            hidden_size=weights[1].shape[-1], **attributes)
    return node, tensors


def run_onnx(op, direction, x, layers, **attributes):
    """ONNX's outputs for time-major ``x`` (steps, batch, input) through ``layers`` (a list of
    ``(weights, initial)``), each layer's Y transposed and reshaped into the next one's X as
    PyTorch's exporter does: ``[(Y, Y_h[, Y_c]) per layer]``."""
    nodes, tensors, outputs, data = [], [], [], "X"
    for k, (weights, initial) in enumerate(layers):
        node, more = onnx_node(op, direction, f"l{k}", data, weights, initial, **attributes)
        nodes.append(node)
        tensors += more
        outputs += node.output
        if k + 1 < len(layers):  # Y (steps, nd, batch, H) → (steps, batch, nd·H)
            nodes += [helper.make_node("Transpose", [node.output[0]], [f"l{k}_T"],
                                       perm=[0, 2, 1, 3]),
                      helper.make_node("Reshape", [f"l{k}_T", f"l{k}_shape"], [f"l{k}_X"])]
            tensors.append(helper.make_tensor(f"l{k}_shape", TensorProto.INT64, [3], [0, 0, -1]))
            data = f"l{k}_X"
    graph = helper.make_graph(
        nodes, "rnn", [helper.make_tensor_value_info("X", TensorProto.DOUBLE, list(x.shape))],
        [helper.make_tensor_value_info(name, TensorProto.DOUBLE, None) for name in outputs],
        initializer=tensors)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    results = ReferenceEvaluator(model).run(None, {"X": x})
    per = 3 if op == "LSTM" else 2
    return [results[k * per:(k + 1) * per] for k in range(len(layers))]


def n_states(op):
    """The recurrent states: h and c of an LSTM, h of a GRU."""
    return 2 if op == "LSTM" else 1


def random_onnx_layer(rng, op, direction, features, hidden, batch, initial, bias=True):
    """ONNX weights with PyTorch's default initialization U(−1/√H, 1/√H), and initial states
    in [−1, 1] (or None)."""
    gates, nd = (4 if op == "LSTM" else 3), (2 if direction == "bidirectional" else 1)
    k = 1 / np.sqrt(hidden)
    weights = (rng.uniform(-k, k, (nd, gates * hidden, features)),
               rng.uniform(-k, k, (nd, gates * hidden, hidden)),
               rng.uniform(-k, k, (nd, 2 * gates * hidden)) if bias else None)
    states = None
    if initial:
        states = tuple(rng.uniform(-1, 1, (nd, batch, hidden)) for _ in range(n_states(op)))
    return weights, states


def to_torch(op, weights, linear_before_reset, direction):
    if op == "LSTM":
        return lstm_from_onnx(*weights, direction=direction), True
    return gru_from_onnx(*weights, direction=direction, linear_before_reset=linear_before_reset)


def params_of(state, layer, suffix):
    zeros = np.zeros(state[f"weight_hh_l{layer}{suffix}"].shape[0])
    return tuple(state.get(f"{field}_l{layer}{suffix}", zeros) for field in
                 ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))


def run_hwnn(op, direction, state, x, states, reset_after):
    """``(y, [h_n, c_n or None])`` of :func:`rnn_float` (``states``: h0 and c0 or None),
    or of the single direction for a reverse-only layer, which nn.LSTM cannot express."""
    if direction != "reverse":
        y, *finals = rnn_float(op.lower(), state, x, reset_after=reset_after,
                               **dict(zip(("h0", "c0"), states)))
        return y, finals
    initial = dict(zip(("h0", "c0"), [None if s is None else s[0] for s in states]))
    params = params_of(state, 0, "_reverse")
    if op == "LSTM":
        y, h, c = lstm_float(x, *params, reverse=True, **initial)
        return y, [h[None], c[None]]
    y, h = gru_float(x, *params, reverse=True, reset_after=reset_after, **initial)
    return y, [h[None], None]


CASES = [("LSTM", 0), ("GRU", 0), ("GRU", 1)]


# (direction, layers, initial states, biases); a reverse-only layer stacks in neither PyTorch
# nor hwnn, so the two-layer chains are forward and bidirectional.
SETUPS = ([(direction, 1, initial, bias) for direction in ("forward", "reverse", "bidirectional")
           for initial, bias in ((True, True), (False, True), (True, False))]
          + [(direction, 2, True, True) for direction in ("forward", "bidirectional")])


@pytest.mark.parametrize("op, linear_before_reset", CASES)
@pytest.mark.parametrize("direction, layers, initial, bias", SETUPS)
def test_matches_onnx_reference(op, linear_before_reset, direction, layers, initial, bias):
    rng = np.random.default_rng([layers, initial, bias, len(direction), len(op),
                                 linear_before_reset])
    features, hidden, batch, steps = 4, 8, 12, 16
    nd = 2 if direction == "bidirectional" else 1
    onnx_layers = [random_onnx_layer(rng, op, direction, features if k == 0 else nd * hidden,
                                     hidden, batch, initial, bias) for k in range(layers)]
    x = rng.uniform(-1, 1, (batch, steps, features))
    results = run_onnx(op, direction, x.transpose(1, 0, 2), onnx_layers,
                       **({} if op == "LSTM" else {"linear_before_reset": linear_before_reset}))
    # hwnn: the layers' state_dicts renamed to l0, l1, ...; the reference and the bound.
    state, reset_after = {}, True
    for k, (weights, _) in enumerate(onnx_layers):
        mapped, reset_after = to_torch(op, weights, linear_before_reset, direction)
        state.update({key.replace("_l0", f"_l{k}"): value for key, value in mapped.items()})
    assert reset_after == (op == "LSTM" or linear_before_reset == 1)
    states = [np.concatenate([layer[1][j] for layer in onnx_layers]) if initial else None
              for j in range(n_states(op))]
    y, finals = run_hwnn(op, direction, state, x, states, reset_after)
    suffixes = {"forward": [""], "reverse": ["_reverse"], "bidirectional": ["", "_reverse"]}
    # The bound, layer by layer, direction by direction.
    inputs, e_inputs = x, np.zeros_like(x)
    for k in range(layers):
        outs, errors = [], []
        for d, suffix in enumerate(suffixes[direction]):
            first = [None if s is None else s[k * nd + d] for s in states]
            first = [np.zeros((batch, hidden)) if s is None else s for s in first]
            reverse = suffix == "_reverse"
            if op == "LSTM":
                out, error, e_c = lstm_bound(inputs, e_inputs, params_of(state, k, suffix),
                                             *first, reverse)
                assert_within(finals[1][k * nd + d], results[k][2][d], 2 * e_c)
            else:
                out, error, _ = gru_bound(inputs, e_inputs, params_of(state, k, suffix),
                                          first[0], reverse, reset_after)
            outs.append(out)
            errors.append(error)
            # ONNX's final states (nd, batch, hidden) against hwnn's (layers·nd, batch, hidden).
            assert_within(finals[0][k * nd + d], results[k][1][d],
                          2 * error[:, 0 if reverse else -1])
        inputs, e_inputs = np.concatenate(outs, -1), np.concatenate(errors, -1)
    assert e_inputs.max() < FIRST_ORDER
    y_onnx = results[-1][0].transpose(2, 0, 1, 3).reshape(batch, steps, nd * hidden)
    assert_within(y, y_onnx, 2 * e_inputs)


def test_gate_blocks_move_to_pytorch_order():
    # Every entry of ONNX gate block b holds b (W) or 10 + b / 20 + b (Wb / Rb).
    hidden = 2
    blocks = np.repeat(np.arange(4.0), hidden)
    W = np.broadcast_to(blocks[None, :, None], (2, 8, 3))
    R = np.broadcast_to(blocks[None, :, None], (2, 8, 2))
    B = np.broadcast_to(np.concatenate([10 + blocks, 20 + blocks]), (2, 16))
    state = lstm_from_onnx(W, R, B, direction="bidirectional")
    assert sorted(state) == sorted(f"{f}_l0{s}" for f in ("weight_ih", "weight_hh", "bias_ih",
                                                          "bias_hh") for s in ("", "_reverse"))
    order = np.repeat([0.0, 2, 3, 1], hidden)    # PyTorch i, f, g, o from ONNX i, o, f, c
    for suffix in ("", "_reverse"):
        np.testing.assert_array_equal(state[f"weight_ih_l0{suffix}"],
                                      np.broadcast_to(order[:, None], (8, 3)))
        np.testing.assert_array_equal(state[f"weight_hh_l0{suffix}"],
                                      np.broadcast_to(order[:, None], (8, 2)))
        np.testing.assert_array_equal(state[f"bias_ih_l0{suffix}"], 10 + order)
        np.testing.assert_array_equal(state[f"bias_hh_l0{suffix}"], 20 + order)
    state, reset_after = gru_from_onnx(W[:1, :6], R[:1, :6], B[:1, :12].copy(),
                                       direction="reverse", linear_before_reset=1)
    assert reset_after is True and sorted(state) == ["bias_hh_l0_reverse", "bias_ih_l0_reverse",
                                                     "weight_hh_l0_reverse",
                                                     "weight_ih_l0_reverse"]
    order = np.repeat([1.0, 0, 2], hidden)       # PyTorch r, z, n from ONNX z, r, h
    np.testing.assert_array_equal(state["weight_ih_l0_reverse"][:, 0], order)
    # B[:1, :12] is Wb = 10 + blocks 0..2, then Rb = 10 + block 3 and 20 + blocks 0, 1.
    np.testing.assert_array_equal(state["bias_hh_l0_reverse"], np.repeat([20.0, 13, 21], 2))
    state, reset_after = gru_from_onnx(W[:1, :6], R[:1, :6])
    assert reset_after is False and sorted(state) == ["weight_hh_l0", "weight_ih_l0"]


def test_defaults_written_out_are_accepted():
    rng = np.random.default_rng(7)
    W, R, B = rng.uniform(-1, 1, (2, 8, 3)), rng.uniform(-1, 1, (2, 8, 2)), \
        rng.uniform(-1, 1, (2, 16))
    plain = lstm_from_onnx(W, R, B, direction="bidirectional")
    spelled = lstm_from_onnx(W, R, B, direction=b"bidirectional", P=np.zeros((2, 6)),
                             hidden_size=2, input_forget=0, layout=0,
                             activations=[b"Sigmoid", b"Tanh", b"Tanh"] * 2)
    assert sorted(plain) == sorted(spelled)
    for key in plain:
        np.testing.assert_array_equal(plain[key], spelled[key])


W3, R3, B3 = np.zeros((1, 8, 3)), np.zeros((1, 8, 2)), np.zeros((1, 16))
G3 = np.zeros((1, 6, 3)), np.zeros((1, 6, 2))
WHY = "; hwnn's LSTM and GRU are PyTorch's and cannot import it"


@pytest.mark.parametrize("call, error, message", [
    (lambda: lstm_from_onnx(W3, R3, direction="both"), ModelError,
     "LSTM attribute direction must be one of forward | reverse | bidirectional, not 'both'"),
    (lambda: lstm_from_onnx(W3, R3, direction="bidirectional"), ModelError,
     "LSTM input R must have shape (2, 8, 2) ([num_directions, 4·hidden_size, hidden_size], "
     "direction bidirectional), not (1, 8, 2)"),
    (lambda: lstm_from_onnx(W3, np.zeros((1, 6, 2))), ModelError,
     "LSTM input R must have shape (1, 8, 2) ([num_directions, 4·hidden_size, hidden_size], "
     "direction forward), not (1, 6, 2)"),
    (lambda: gru_from_onnx(*G3[:1], np.zeros((6, 2))), ModelError,
     "GRU input R must have shape (1, 3·hidden, hidden) with hidden ≥ 1 ([num_directions, "
     "3·hidden_size, hidden_size], direction forward), not (6, 2)"),
    (lambda: lstm_from_onnx(np.zeros((1, 6, 3)), R3), ModelError,
     "LSTM input W must have shape (1, 8, input) ([num_directions, 4·hidden_size, "
     "input_size]), not (1, 6, 3)"),
    (lambda: lstm_from_onnx(W3, R3, np.zeros((1, 8))), ModelError,
     "LSTM input B must have shape (1, 16) ([num_directions, 2·4·hidden_size]: Wb then Rb), "
     "not (1, 8)"),
    (lambda: lstm_from_onnx(W3, R3, hidden_size=3), ModelError,
     "LSTM attribute hidden_size = 3 disagrees with input R of shape (1, 8, 2) (hidden size 2)"),
    (lambda: lstm_from_onnx(W3 + np.nan, R3), ModelError, "LSTM input W holds NaN or infinity"),
    (lambda: gru_from_onnx(G3[0].astype(str), G3[1]), ModelError,
     "GRU input W must hold real numbers, not dtype <U32"),
    (lambda: lstm_from_onnx(W3, R3, P=np.ones((1, 6))), UnsupportedLayer,
     "LSTM input P holds nonzero peepholes; hwnn's LSTM is PyTorch's, which has none, and "
     "cannot import them"),
    (lambda: lstm_from_onnx(W3, R3, P=np.zeros((1, 4))), ModelError,
     "LSTM input P must have shape (1, 6) ([num_directions, 3·hidden_size]), not (1, 4)"),
    (lambda: lstm_from_onnx(W3, R3, clip=3.0), UnsupportedLayer,
     "LSTM attribute clip = 3.0: PyTorch has no cell clipping" + WHY),
    (lambda: lstm_from_onnx(W3, R3, input_forget=1), UnsupportedLayer,
     "LSTM attribute input_forget = 1: PyTorch does not couple the input and forget gates"
     + WHY),
    (lambda: lstm_from_onnx(W3, R3, activations=["Sigmoid", "Tanh", "Relu"]), UnsupportedLayer,
     "LSTM attribute activations = ['Sigmoid', 'Tanh', 'Relu']: only the defaults ['Sigmoid', "
     "'Tanh', 'Tanh'] are PyTorch's" + WHY),
    (lambda: gru_from_onnx(*G3, activation_alpha=[0.5]), UnsupportedLayer,
     "GRU attribute activation_alpha = [0.5]: the default activations take no parameters"
     + WHY),
    (lambda: gru_from_onnx(*G3, layout=1), UnsupportedLayer,
     "GRU attribute layout = 1: only layout 0 (X as [steps, batch, input]) is supported" + WHY),
    (lambda: gru_from_onnx(*G3, linear_before_reset=2), ModelError,
     "GRU attribute linear_before_reset must be 0 or 1, not 2"),
])
def test_mapping_errors(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert str(info.value) == message


def test_refusals_are_not_implemented_errors():
    with pytest.raises(NotImplementedError):
        lstm_from_onnx(W3, R3, clip=1.0)
