"""Recurrent plans with polynomial (poly) and Taylor (taylor) σ and tanh: the plans they hold,
their defaults, the integer reference over sequences, and the spec fields that set them."""

import numpy as np
import pytest

from hwnn.fixed import SQ
from hwnn.plans.activation import plan_activation
from hwnn.plans.rnn import DEFAULT_ACTIVATION_OPTIONS, plan_recurrent
from hwnn.ref.activation import activation
from hwnn.ref.rnn import recurrent, recurrent_step
from hwnn.spec import SpecError, load_spec

from test_network_rnn import SPEC, torch_arrays, write_spec
from test_plans_rnn import weights


def plan(kind, method, **options):
    return plan_recurrent(kind, *weights(kind), in_format=SQ(1, 7), bits=8, method=method,
                          activation_options=options or None)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("method, options", [("poly", {}), ("poly", {"segments": 8, "degree": 3}),
                                             ("taylor", {}), ("taylor", {"order": 5})])
def test_poly_and_taylor_plans_hold_their_activations(kind, method, options):
    rnn = plan(kind, method, **options)
    assert rnn.method == method
    names = {"sigmoid", "tanh"} | ({"tanh_cell"} if kind == "lstm" else set())
    assert set(rnn.activations) == names
    for name, act in rnn.activations.items():
        fmt = rnn.cell_format if name == "tanh_cell" else rnn.gate_format
        want = {**DEFAULT_ACTIVATION_OPTIONS[method], **options}
        if method == "poly":     # a quarter of the input's codes at most (SQ(?,?) 8 bits: 64)
            want["segments"] = min(want["segments"], 1 << (fmt.width - 2))
        expected = plan_activation(name.split("_")[0], fmt, act.out_format, method=method,
                                   **want)
        assert act.method == method and act.degree == expected.degree
        assert act.coefficients == expected.coefficients and act.starts == expected.starts
        assert act.error.max_abs == expected.error.max_abs
    info = rnn.describe()
    assert info["method"] == method


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("method", ["poly", "taylor"])
def test_the_reference_runs_a_sequence_through_the_polynomials(kind, method):
    rnn = plan(kind, method)
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (2, 5, 2))
    y, h, c = recurrent(rnn, x)
    assert y.shape == (2, 5, 3) and np.array_equal(y[:, -1], h)
    # Step by step, the same; and each step's σ is the activation reference's.
    state = (np.zeros((2, 3), dtype=np.int64),) + ((np.zeros((2, 3), dtype=np.int64),)
                                                    if kind == "lstm" else ())
    for t in range(5):
        state = recurrent_step(rnn, x[:, t], *state)
        state = state if isinstance(state, tuple) else (state,)
        assert np.array_equal(state[0], y[:, t])
    q = np.arange(rnn.gate_format.min_int, rnn.gate_format.max_int + 1)
    sigmoid = rnn.activations["sigmoid"]
    assert np.array_equal(activation(sigmoid, q), activation(
        plan_activation("sigmoid", rnn.gate_format, sigmoid.out_format, method=method,
                        **({"segments": 64, "degree": 2} if method == "poly" else {})), q))


def test_poly_is_closer_to_float_than_taylor():
    # A poly unit of 64 segments at 8 bits is within a few ulp; a cubic series around 0 is far
    # off where a gate saturates.
    poly, taylor = plan("lstm", "poly"), plan("lstm", "taylor")
    assert poly.activations["sigmoid"].error.max_ulp < 2
    assert taylor.activations["sigmoid"].error.max_ulp > 4 * poly.activations[
        "sigmoid"].error.max_ulp


LAYER = SPEC[:SPEC.index("[[params.layers]]\nkind = \"flatten\"")]


@pytest.mark.parametrize("fields, method, options", [
    ('method = "poly"\nsegments = 8\ndegree = 3', "poly", {"segments": 8, "degree": 3}),
    ('method = "poly"', "poly", {}),
    ('method = "taylor"\norder = 5', "taylor", {"order": 5}),
])
def test_spec_fields_set_the_activations(tmp_path, fields, method, options):
    design = load_spec(write_spec(tmp_path, LAYER.replace("parallelism = 6", fields),
                                  torch_arrays()))
    got = design.plan.layers[0].plan
    want = plan_recurrent("lstm", *weights("lstm"), in_format=SQ(1, 7), bits=8, method=method,
                          activation_options=options)
    assert got.describe() == want.describe()


@pytest.mark.parametrize("fields, field, message", [
    ('method = "poly"\norder = 3', "order", "applies to method taylor, not 'poly'"),
    ('method = "taylor"\nsegments = 8', "segments", "applies to method pwl or poly, not 'taylor'"),
    ('method = "pwl"\ndegree = 2', "degree", "applies to method poly, not 'pwl'"),
    ('method = "lut"\nsegments = 8', "segments", "applies to method pwl or poly, not 'lut'"),
    ('method = "poly"\ntable_size = 8', "table_size", "applies to method lut, not 'poly'"),
    ('method = "hard"\norder = 3', "order", "applies to method taylor, not 'hard'"),
    ('method = "poly"\ndegree = 4', "degree", "must be between 1 and 3, not 4"),
    ('method = "taylor"\norder = 0', "order", "must be between 1 and 9, not 0"),
    ('method = "poly"\nsegments = 7', "segments",
     "must be even (σ and tanh are folded: each stored piece serves both signs), not 7"),
    ('method = "pwl"\nsegments = 5', "segments",
     "must be even (σ and tanh are folded: each stored piece serves both signs), not 5"),
])
def test_spec_activation_field_errors(tmp_path, fields, field, message):
    with pytest.raises(SpecError) as info:
        load_spec(write_spec(tmp_path, LAYER.replace("parallelism = 6", fields),
                             torch_arrays()))
    assert (info.value.field, info.value.message) == (f"params.layers[0].{field}", message)


@pytest.mark.parametrize("bits", [4, 6])
@pytest.mark.parametrize("method", ["poly", "taylor"])
def test_default_polynomials_fit_narrow_formats(bits, method):
    # A narrow gate format has few codes: poly's 128 default segments shrink to a quarter of
    # them (an even count, as the folded plan needs); a series has one piece whatever the width.
    rnn = plan_recurrent("lstm", *weights("lstm"), in_format=SQ(1, bits - 1), bits=bits,
                         method=method)
    for name, act in rnn.activations.items():
        fmt = rnn.cell_format if name == "tanh_cell" else rnn.gate_format
        assert act.segments <= (1 << (fmt.width - 2) if method == "poly" else 1)
        assert act.error.codes == 1 << fmt.width
