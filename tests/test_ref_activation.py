import numpy as np
import pytest

from hwnn.fixed import SQ, UQ
from hwnn.plans.activation import plan_activation
from hwnn.ref.activation import activation
from hwnn.ref.exact import exact
from hwnn.ref.lut import lut
from hwnn.ref.pwl import pwl


@pytest.mark.parametrize("method, reference", [("exact", exact), ("lut", lut), ("pwl", pwl)])
def test_dispatches_on_the_plan_method(method, reference):
    function = "relu" if method == "exact" else "sigmoid"
    options = {"segments": 4} if method == "pwl" else {}
    plan = plan_activation(function, SQ(3, 3), UQ(1, 6), method=method, **options)
    codes = plan.in_format.codes()
    np.testing.assert_array_equal(activation(plan, codes), reference(plan, codes))


def test_rejects_what_is_not_an_activation_plan():
    with pytest.raises(TypeError) as info:
        activation("tanh", np.array([0]))
    assert info.value.parameter == "plan" and str(info.value) == (
        "plan must be an activation plan (lut, pwl, poly, taylor, exact or threshold), not 'tanh'")
