"""The bidirectional-LSTM equalizer example (examples/bilstm_equalizer): its numpy training
computes the true gradient and is deterministic, and the weights it shipped (hwnn/data, what
``hwnn demo`` runs) are the trained model, under PyTorch's names."""

import importlib.util
from pathlib import Path

import numpy as np

from hwnn.channel import transmit
from hwnn.demo import DATA, DEMO_NAME
from hwnn.ref.rnn_float import rnn_float
from hwnn.spec import load_spec

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "bilstm_equalizer"
# Loaded by path under its own name: the CNN example's test imports another `train`.
_SPEC = importlib.util.spec_from_file_location("bilstm_equalizer_train", EXAMPLE / "train.py")
train = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(train)


def _loss(params, received, symbols):
    return train.gradients(params, received, symbols)[0]


def test_gradients_match_finite_differences():
    """Every parameter's gradient against a central difference, on a perturbed model (so no
    gate sits at a symmetric point) and frames short enough to check all 233 parameters."""
    rng = np.random.default_rng(0)
    params = {k: v + rng.normal(0, 0.3, v.shape) for k, v in train.initial(5).items()}
    symbols, received = transmit(3, 7, 0.2, seed=9)
    _, grads = train.gradients(params, received, symbols)
    assert set(grads) == set(params)
    eps, worst = 1e-6, 0.0
    for name, value in params.items():
        assert grads[name].shape == value.shape
        for index in np.ndindex(value.shape):
            moved = {k: v.copy() for k, v in params.items()}
            moved[name][index] += eps
            up = _loss(moved, received, symbols)
            moved[name][index] -= 2 * eps
            down = _loss(moved, received, symbols)
            worst = max(worst, abs((up - down) / (2 * eps) - grads[name][index]))
    # Central differences of a smooth loss: error O(eps²) plus rounding O(1e-16 / eps).
    assert worst < 1e-8


def test_training_is_deterministic():
    first, second = (train.train(steps=3, log=lambda line: None) for _ in range(2))
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
    assert any(not np.array_equal(first[k], v) for k, v in train.initial().items())


def test_shipped_weights_have_pytorch_names_and_layouts():
    h = train.HIDDEN
    with np.load(DATA / f"{DEMO_NAME}.npz") as weights:
        shapes = {name: weights[name].shape for name in weights.files}
    lstm = {f"lstm.{field}{suffix}": shape
            for suffix in ("", "_reverse")
            for field, shape in (("weight_ih_l0", (4 * h, 1)), ("weight_hh_l0", (4 * h, h)),
                                 ("bias_ih_l0", (4 * h,)), ("bias_hh_l0", (4 * h,)))}
    assert shapes == {**lstm, "head.weight": (1, 2 * h, 1), "head.bias": (1,)}


def test_training_model_is_pytorchs_and_the_specs_float_model():
    design = load_spec(DATA / f"{DEMO_NAME}.toml")
    assert design.sequence_length == train.LENGTH
    _, received = transmit(4, train.LENGTH, train.SIGMA, seed=3)
    with np.load(DATA / f"{DEMO_NAME}.npz") as archive:
        weights = dict(archive)
    trained = train.forward(weights, received)[0]
    states = rnn_float("lstm", weights, received[:, :, None], prefix="lstm.")[0]
    pytorch = states @ weights["head.weight"][0, :, 0] + weights["head.bias"][0]
    # float64 implementations summing in different orders: equal to rounding only.
    np.testing.assert_allclose(pytorch, trained, rtol=0, atol=1e-12)
    np.testing.assert_allclose(design.float_model(received[:, :, None])[-1][:, :, 0], trained,
                               rtol=0, atol=1e-12)


def test_main_writes_the_npz(tmp_path, capsys):
    assert train.main(["--steps", "2", "-o", str(tmp_path / "weights.npz")]) == 0
    with np.load(tmp_path / "weights.npz") as weights:
        assert sorted(weights.files) == sorted(train.initial())
    assert "validation symbols" in capsys.readouterr().out
