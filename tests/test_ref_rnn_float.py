"""The float64 LSTM/GRU reference: hand-worked cell steps, the structure of sequences, batches,
directions and stacks (bit for bit), and every parameter check. Its agreement with ONNX's own
reference implementation is in tests/test_io_rnn.py."""

import numpy as np
import pytest

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.ref.rnn_float import (gru_cell_float, gru_float, lstm_cell_float, lstm_float,
                                rnn_float, sigmoid_float)

FIELDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def lstm_hand_weights():
    """Weights giving pre-activations ``a`` of ±800 or 0 for ``x = [2]``, ``h = [1, -1]`` (rows
    i0 i1 f0 f1 g0 g1 o0 o1), each a quarter from W_ih x, b_ih, W_hh h and b_hh, so every
    gate value is exact: σ(800) = 1, σ(0) = 1/2, σ(−800) = 0, tanh(±800) = ±1."""
    a = np.array([800, -800, 0, 800, -800, 800, 800, 0], dtype=float)
    w_ih = (a / 8)[:, None]                               # times x = 2: a/4
    w_hh = np.stack([a / 4 + 50, np.full(8, 50.0)], 1)    # times h = [1, -1]: a/4
    return w_ih, w_hh, a / 4, a / 4


def test_lstm_cell_by_hand():
    # i = [1, 0], f = [1/2, 1], g = [-1, 1], o = [1, 1/2]; c = [2, 800]:
    # c' = f c + i g = [1 - 1, 800 + 0] = [0, 800]; h' = o tanh(c') = [0, 1/2].
    h, c = lstm_cell_float([2.0], [1.0, -1.0], [2.0, 800.0], *lstm_hand_weights())
    np.testing.assert_array_equal(h, [0.0, 0.5])
    np.testing.assert_array_equal(c, [0.0, 800.0])
    # The same with a batch of two (the second a copy) keeps the batch axis.
    h, c = lstm_cell_float([[2.0], [2.0]], [[1.0, -1.0]] * 2, [[2.0, 800.0]] * 2,
                           *lstm_hand_weights())
    np.testing.assert_array_equal(h, [[0.0, 0.5]] * 2)
    np.testing.assert_array_equal(c, [[0.0, 800.0]] * 2)


def test_lstm_cell_unsaturated_by_hand():
    # No weights, zero biases: every gate σ(0) = 1/2, g = tanh(0) = 0, so c' = c/2 and
    # h' = tanh(c/2)/2.
    zeros = np.zeros((4, 1)), np.zeros((4, 1))
    h, c = lstm_cell_float([5.0], [7.0], [3.0], *zeros)
    np.testing.assert_array_equal(c, [1.5])
    np.testing.assert_array_equal(h, [0.5 * np.tanh(1.5)])


def gru_hand_weights():
    """For ``x = [1]``, ``h = [1/2, -1/4]``: r = [0, 1], z = [1/2, 0] (rows r0 r1 z0 z1 n0 n1);
    the n rows of W_hh and b_hh make the two reset variants differ."""
    w_ih = np.array([[-400], [400], [0], [-400], [0], [0]], dtype=float)
    b_ih = np.array([-400, 400, 0, -400, 0, 0], dtype=float)
    w_hh = np.zeros((6, 2))
    w_hh[5, 0] = 1600
    b_hh = np.array([0, 0, 0, 0, 800, 0], dtype=float)
    return w_ih, w_hh, b_ih, b_hh


def test_gru_cell_by_hand():
    # reset after: q = W_hn h + b_hn = [800, 800], n = tanh([0, 0] + r q) = tanh([0, 800])
    # = [0, 1]; h' = (1 - z) n + z h = [0 + 1/4, 1 + 0] = [1/4, 1].
    h = gru_cell_float([1.0], [0.5, -0.25], *gru_hand_weights())
    np.testing.assert_array_equal(h, [0.25, 1.0])
    # reset before: n = tanh(W_hn (r h) + b_hn) = tanh([0, 0] + [800, 0]) = [1, 0];
    # h' = [1/2 + 1/4, 0 + 0].
    h = gru_cell_float([1.0], [0.5, -0.25], *gru_hand_weights(), reset_after=False)
    np.testing.assert_array_equal(h, [0.75, 0.0])


def test_sigmoid_exact_points_and_no_overflow():
    a = np.array([-1000.0, -800.0, 0.0, 800.0, 1000.0])
    np.testing.assert_array_equal(sigmoid_float(a), [0.0, 0.0, 0.5, 1.0, 1.0])
    # Both branches are the logistic function, as the textbook formula (which cannot overflow
    # here). Each has a relative error of at most 10u (u = 2**-53): 4 ulp from exp (the
    # accuracy assumed of numpy's float64 exp; an ulp is at most 2u relative), u from the sum
    # and u from the quotient. That is at most 10 ulp of the result (an ulp is at least u
    # relative), so they differ by at most 20 ulp.
    b = np.linspace(-30, 30, 601)
    np.testing.assert_array_max_ulp(sigmoid_float(b), 1 / (1 + np.exp(-b)), maxulp=20)


def random_module(rng, kind, features, hidden, layers=1, bidirectional=False, bias=True,
                  prefix=""):
    """A state_dict with PyTorch's default initialization U(-1/√hidden, 1/√hidden)."""
    gates = 4 if kind == "lstm" else 3
    k = 1 / np.sqrt(hidden)
    directions = 2 if bidirectional else 1
    result = {}
    for layer in range(layers):
        width = features if layer == 0 else directions * hidden
        for suffix in ("", "_reverse")[:directions]:
            shapes = {"weight_ih": (gates * hidden, width), "weight_hh": (gates * hidden, hidden),
                      "bias_ih": (gates * hidden,), "bias_hh": (gates * hidden,)}
            for field, shape in shapes.items():
                if bias or field.startswith("weight"):
                    result[f"{prefix}{field}_l{layer}{suffix}"] = rng.uniform(-k, k, shape)
    return result


def layer_args(state, layer, suffix=""):
    return [state.get(f"{field}_l{layer}{suffix}") for field in FIELDS]


def one_direction(kind, x, args, reverse=False, h0=None, c0=None, reset_after=True):
    """``(y, h_n, c_n or None)`` of lstm_float / gru_float."""
    if kind == "lstm":
        return lstm_float(x, *args, h0=h0, c0=c0, reverse=reverse)
    return gru_float(x, *args, h0=h0, reverse=reverse, reset_after=reset_after) + (None,)


CASES = [("lstm", True), ("gru", True), ("gru", False)]


@pytest.mark.parametrize("kind, reset_after", CASES)
def test_bidirectional_is_forward_and_reversed_reverse(kind, reset_after):
    rng = np.random.default_rng(1)
    state = random_module(rng, kind, 3, 5, bidirectional=True)
    x = rng.uniform(-1, 1, (4, 9, 3))
    y, h_n, c_n = rnn_float(kind, state, x, reset_after=reset_after)
    forward = one_direction(kind, x, layer_args(state, 0), reset_after=reset_after)
    backward = one_direction(kind, x[:, ::-1], layer_args(state, 0, "_reverse"),
                             reset_after=reset_after)
    np.testing.assert_array_equal(y, np.concatenate([forward[0], backward[0][:, ::-1]], -1))
    np.testing.assert_array_equal(h_n, np.stack([forward[1], backward[1]]))
    if kind == "lstm":
        np.testing.assert_array_equal(c_n, np.stack([forward[2], backward[2]]))
    else:
        assert c_n is None
    # reverse=True is the same as running forward on the reversed sequence.
    reverse = one_direction(kind, x, layer_args(state, 0, "_reverse"), reverse=True,
                            reset_after=reset_after)
    np.testing.assert_array_equal(reverse[0], backward[0][:, ::-1])
    # The final state is the last output of the forward direction, the first of the reverse.
    np.testing.assert_array_equal(forward[1], forward[0][:, -1])
    np.testing.assert_array_equal(reverse[1], reverse[0][:, 0])


@pytest.mark.parametrize("kind, reset_after", CASES)
def test_batch_is_each_sequence_alone(kind, reset_after):
    rng = np.random.default_rng(2)
    state = random_module(rng, kind, 4, 6, layers=2, bidirectional=True)
    x = rng.uniform(-1, 1, (5, 7, 4))
    h0 = rng.uniform(-1, 1, (4, 5, 6))
    c0 = rng.uniform(-1, 1, (4, 5, 6)) if kind == "lstm" else None
    y, h_n, c_n = rnn_float(kind, state, x, h0=h0, c0=c0, reset_after=reset_after)
    assert y.shape == (5, 7, 12) and h_n.shape == (4, 5, 6)
    for s in range(5):
        one = rnn_float(kind, state, x[s], h0=h0[:, s], reset_after=reset_after,
                        c0=None if c0 is None else c0[:, s])
        np.testing.assert_array_equal(one[0], y[s])
        np.testing.assert_array_equal(one[1], h_n[:, s])
        if kind == "lstm":
            np.testing.assert_array_equal(one[2], c_n[:, s])


@pytest.mark.parametrize("kind, reset_after", CASES)
def test_stacked_layers_chain_single_layers(kind, reset_after):
    rng = np.random.default_rng(3)
    state = random_module(rng, kind, 2, 4, layers=3)
    x = rng.uniform(-1, 1, (3, 6, 2))
    h0 = rng.uniform(-1, 1, (3, 3, 4))
    c0 = rng.uniform(-1, 1, (3, 3, 4)) if kind == "lstm" else None
    y, h_n, c_n = rnn_float(kind, state, x, h0=h0, c0=c0, reset_after=reset_after)
    inputs = x
    for layer in range(3):
        inputs, h, c = one_direction(kind, inputs, layer_args(state, layer), h0=h0[layer],
                                     c0=None if c0 is None else c0[layer],
                                     reset_after=reset_after)
        np.testing.assert_array_equal(h_n[layer], h)
        if kind == "lstm":
            np.testing.assert_array_equal(c_n[layer], c)
    np.testing.assert_array_equal(y, inputs)


def test_sequence_is_cells_step_by_step():
    rng = np.random.default_rng(4)
    state = random_module(rng, "lstm", 3, 4)
    x = rng.uniform(-1, 1, (6, 3))
    h, c = rng.uniform(-1, 1, 4), rng.uniform(-1, 1, 4)
    y, h_n, c_n = lstm_float(x, *layer_args(state, 0), h0=h, c0=c)
    for t in range(6):
        h, c = lstm_cell_float(x[t], h, c, *layer_args(state, 0))
        np.testing.assert_array_equal(y[t], h)
    np.testing.assert_array_equal((h_n, c_n), (h, c))
    state = random_module(rng, "gru", 3, 4)
    y, h_n = gru_float(x, *layer_args(state, 0), reset_after=False)
    h = np.zeros(4)
    for t in range(6):
        h = gru_cell_float(x[t], h, *layer_args(state, 0), reset_after=False)
        np.testing.assert_array_equal(y[t], h)
    np.testing.assert_array_equal(h_n, h)


def test_missing_biases_are_zeros_and_prefix_picks_the_module(tmp_path):
    rng = np.random.default_rng(5)
    state = random_module(rng, "gru", 2, 3, layers=2, bias=False, prefix="rnn.")
    state["head.weight"] = np.ones((1, 3))     # another module, ignored under the prefix
    x = rng.uniform(-1, 1, (5, 2))
    y, h_n, c_n = rnn_float("gru", state, x, prefix="rnn.", num_layers=2, bidirectional=False)
    assert c_n is None
    zero = np.zeros(9)
    first = gru_float(x, state["rnn.weight_ih_l0"], state["rnn.weight_hh_l0"], zero, zero)
    second = gru_float(first[0], state["rnn.weight_ih_l1"], state["rnn.weight_hh_l1"],
                       zero, zero)
    np.testing.assert_array_equal(y, second[0])
    np.testing.assert_array_equal(h_n, [first[1], second[1]])
    # A state_dict saved as .npz loads as it is (np.load gives a mapping).
    np.savez(tmp_path / "model.npz", **state)
    with np.load(tmp_path / "model.npz") as archive:
        loaded = rnn_float("gru", archive, x, prefix="rnn.")
    np.testing.assert_array_equal(loaded[0], y)


def test_large_batches_are_summed_a_slice_at_a_time(monkeypatch):
    # Slicing the batch to bound memory changes nothing, bit for bit.
    rng = np.random.default_rng(7)
    state = random_module(rng, "lstm", 3, 4)
    x = rng.uniform(-1, 1, (10, 5, 3))
    whole = rnn_float("lstm", state, x)
    monkeypatch.setattr("hwnn.ref.rnn_float._CHUNK", 3 * 16 * 3)   # three rows of W_ih x
    sliced = rnn_float("lstm", state, x)
    for a, b in zip(whole, sliced):
        np.testing.assert_array_equal(a, b)


def test_empty_sequences_keep_the_initial_state():
    state = random_module(np.random.default_rng(6), "lstm", 2, 3)
    h0, c0 = np.full((1, 2, 3), 0.5), np.full((1, 2, 3), -0.5)
    y, h_n, c_n = rnn_float("lstm", state, np.zeros((2, 0, 2)), h0=h0, c0=c0)
    assert y.shape == (2, 0, 3)
    np.testing.assert_array_equal(h_n, h0)
    np.testing.assert_array_equal(c_n, c0)


W_IH, W_HH, B = np.zeros((8, 3)), np.zeros((8, 2)), np.zeros(8)


@pytest.mark.parametrize("call, error, message", [
    (lambda: lstm_cell_float(np.zeros(3), np.zeros(2), np.zeros(2), W_IH, np.zeros((6, 2))),
     ParameterValueError,
     "weight_hh must have shape (8, 2) (4 gates i, f, g, o of hidden size 2), not (6, 2)"),
    (lambda: lstm_cell_float(np.zeros(3), np.zeros(2), np.zeros(2), W_IH, np.zeros(8)),
     ParameterValueError,
     "weight_hh must have shape (4·hidden, hidden) with hidden ≥ 1, not (8,)"),
    (lambda: gru_cell_float(np.zeros(3), np.zeros(2), np.zeros((6, 3)), np.zeros((8, 2))),
     ParameterValueError,
     "weight_hh must have shape (6, 2) (3 gates r, z, n of hidden size 2), not (8, 2)"),
    (lambda: lstm_cell_float(np.zeros(3), np.zeros(2), np.zeros(2), np.zeros((6, 3)), W_HH),
     ParameterValueError, "weight_ih must have shape (8, input features) (4 gates i, f, g, o of "
                          "hidden size 2), not (6, 3)"),
    (lambda: lstm_cell_float(np.zeros(3), np.zeros(2), np.zeros(2), W_IH, W_HH, B, B[:6]),
     ParameterValueError,
     "bias_hh must have shape (8,) (4 gates i, f, g, o of hidden size 2), not (6,)"),
    (lambda: lstm_cell_float(np.zeros(2), np.zeros(2), np.zeros(2), W_IH, W_HH),
     ParameterValueError, "x must have shape (3,) or (batch, 3), not (2,)"),
    (lambda: lstm_cell_float(np.zeros((4, 3)), np.zeros((4, 2)), np.zeros(2), W_IH, W_HH),
     ParameterValueError, "c must have shape (4, 2) (batch, hidden), not (2,)"),
    (lambda: lstm_cell_float(np.zeros(3), np.zeros(2), np.zeros(2), W_IH, W_HH + np.nan),
     ParameterValueError, "weight_hh holds NaN or infinity"),
    (lambda: lstm_cell_float(np.array(["a", "b", "c"]), np.zeros(2), np.zeros(2), W_IH, W_HH),
     ParameterTypeError, "x must hold real numbers, not dtype <U1"),
    (lambda: gru_cell_float(np.zeros(3), np.zeros(2), np.zeros((6, 3)), np.zeros((6, 2)),
                            reset_after=1),
     ParameterTypeError, "reset_after must be True or False, not 1"),
    (lambda: lstm_float(np.zeros((5, 2)), W_IH, W_HH),
     ParameterValueError, "x must have shape (steps, 3) or (sequences, steps, 3), not (5, 2)"),
    (lambda: lstm_float(np.zeros((4, 5, 3)), W_IH, W_HH, h0=np.zeros(2)),
     ParameterValueError, "h0 must have shape (4, 2) (sequences, hidden), not (2,)"),
    (lambda: lstm_float(np.zeros((5, 3)), W_IH, W_HH, c0=np.full(2, np.inf)),
     ParameterValueError, "c0 holds NaN or infinity"),
    (lambda: lstm_float(np.zeros((5, 3)), W_IH, W_HH, reverse="yes"),
     ParameterTypeError, "reverse must be True or False, not 'yes'"),
    (lambda: gru_float(np.zeros((5, 3)), W_IH, W_HH),
     ParameterValueError,
     "weight_hh must have shape (6, 2) (3 gates r, z, n of hidden size 2), not (8, 2)"),
])
def test_layer_errors(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert str(info.value) == message


LSTM_STATE = {"weight_ih_l0": W_IH, "weight_hh_l0": W_HH,
              "weight_ih_l1": np.zeros((8, 2)), "weight_hh_l1": W_HH}


@pytest.mark.parametrize("kwargs, error, parameter, message", [
    (dict(kind="rnn"), ParameterValueError, "kind", "kind must be one of lstm | gru, not 'rnn'"),
    (dict(kind=1), ParameterTypeError, "kind", "kind must be one of lstm | gru, not 1"),
    (dict(state_dict=[("weight_ih_l0", W_IH)]), ParameterTypeError, "state_dict",
     "state_dict must be a mapping of names to arrays, not list"),
    (dict(state_dict={**LSTM_STATE, "fc.weight": B}), ParameterValueError, "state_dict",
     "state_dict key 'fc.weight' is not a parameter of an nn.LSTM (weight_ih_l<k>, "
     "weight_hh_l<k>, bias_ih_l<k>, bias_hh_l<k>, each also with _reverse); give prefix= to "
     "pick one module of a larger state_dict"),
    (dict(state_dict={"lstm.weight_hr_l0": W_HH}, prefix="lstm."), ParameterValueError,
     "state_dict", "state_dict key 'lstm.weight_hr_l0' is not a parameter of an nn.LSTM "
                   "(weight_ih_l<k>, weight_hh_l<k>, bias_ih_l<k>, bias_hh_l<k>, each also "
                   "with _reverse)"),
    (dict(prefix="lstm."), ParameterValueError, "state_dict",
     "state_dict must hold lstm.weight_ih_l0 and the other parameters of an nn.LSTM, but has "
     "no key starting with 'lstm.'"),
    (dict(state_dict={**LSTM_STATE, "weight_hh_l1_reverse": W_HH}), ParameterValueError,
     "state_dict", "state_dict has no 'weight_ih_l0_reverse', which a 2-layer bidirectional "
                   "nn.LSTM needs"),
    (dict(state_dict={"weight_ih_l0": W_IH, "weight_hh_l0": W_HH, "bias_ih_l1": B}),
     ParameterValueError, "state_dict",
     "state_dict has no 'weight_ih_l1', which a 2-layer nn.LSTM needs"),
    (dict(num_layers=3), ParameterValueError, "num_layers",
     "num_layers = 3 disagrees with the state_dict, whose keys name 2 layers (l0 to l1)"),
    (dict(num_layers=2.0), ParameterTypeError, "num_layers",
     "num_layers must be a positive integer or None, not 2.0"),
    (dict(bidirectional=True), ParameterValueError, "bidirectional",
     "bidirectional = True disagrees with the state_dict, which has no _reverse key"),
    (dict(kind="gru", c0=np.zeros((2, 2))), ParameterValueError, "c0",
     "c0 must be None for a GRU (it has no cell state), not an array"),
    (dict(reset_after=False), ParameterValueError, "reset_after",
     "reset_after must be True for an LSTM (it applies to a GRU), not False"),
    (dict(prefix=None), ParameterTypeError, "prefix", "prefix must be a string, not None"),
    (dict(state_dict={**LSTM_STATE, "weight_ih_l1": np.zeros((8, 3))}), ParameterValueError,
     "weight_ih_l1", "weight_ih_l1 must have shape (8, 2) (layer 1 takes the 1·2 features of "
                     "layer 0's output), not (8, 3)"),
    (dict(state_dict={**LSTM_STATE, "weight_hh_l1": np.zeros((12, 3))}), ParameterValueError,
     "weight_hh_l1", "weight_hh_l1 must have shape (8, 2) (4 gates i, f, g, o of hidden size "
                     "2, as weight_hh_l0), not (12, 3)"),
    (dict(state_dict={**LSTM_STATE, "weight_ih_l0_reverse": np.zeros((8, 2)),
                      "weight_hh_l0_reverse": W_HH, "weight_ih_l1": np.zeros((8, 4)),
                      "weight_ih_l1_reverse": np.zeros((8, 4)), "weight_hh_l1_reverse": W_HH}),
     ParameterValueError, "weight_ih_l0_reverse",
     "weight_ih_l0_reverse must have shape (8, 3) (the input features of weight_ih_l0), not "
     "(8, 2)"),
    (dict(state_dict={"x.weight_ih_l0": W_IH, "x.weight_hh_l0": W_HH,
                      "x.bias_ih_l0": np.zeros(4)}, prefix="x."), ParameterValueError,
     "x.bias_ih_l0", "x.bias_ih_l0 must have shape (8,) (4 gates i, f, g, o of hidden size 2), "
                     "not (4,)"),
    (dict(x=np.zeros((5, 2))), ParameterValueError, "x",
     "x must have shape (steps, 3) or (sequences, steps, 3), not (5, 2)"),
    (dict(h0=np.zeros((2, 4, 2))), ParameterValueError, "h0",
     "h0 must have shape (2, 2) (layers·directions, hidden), not (2, 4, 2)"),
    (dict(x=np.zeros((4, 5, 3)), c0=np.zeros((2, 2))), ParameterValueError, "c0",
     "c0 must have shape (2, 4, 2) (layers·directions, sequences, hidden), not (2, 2)"),
])
def test_module_errors(kwargs, error, parameter, message):
    arguments = {"kind": "lstm", "state_dict": LSTM_STATE, "x": np.zeros((5, 3)), **kwargs}
    if arguments["kind"] == "gru" and "state_dict" not in kwargs:
        arguments["state_dict"] = {"weight_ih_l0": np.zeros((6, 3)),
                                   "weight_hh_l0": np.zeros((6, 2))}
    with pytest.raises(error) as info:
        rnn_float(arguments.pop("kind"), arguments.pop("state_dict"), arguments.pop("x"),
                  **arguments)
    assert str(info.value) == message
    assert info.value.parameter == parameter
