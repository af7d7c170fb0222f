"""Reference model of a network: the chain of its layers' references."""

from __future__ import annotations

import numpy as np

from ..checks import ParameterValueError
from .activation import activation
from .dense import dense

__all__ = ["network", "network_float", "network_layers"]

_REFERENCES = {"dense": dense, "activation": activation}


def network_layers(plan, x) -> list[np.ndarray]:
    """The output codes of every layer of ``plan`` for input codes ``x``, in order.

    ``x`` has shape ``(n_in,)`` or ``(n, n_in)``.

    Raises
    ------
    ValueError
        ``x`` has the wrong shape or holds codes outside the network's input format.
    """
    x = np.asarray(x)
    if x.shape[-1:] != (plan.n_in,) or x.ndim > 2:
        raise ParameterValueError("x", f"x must have shape ({plan.n_in},) or (n, {plan.n_in}), "
                                       f"not {x.shape}")
    outputs = []
    for layer in plan.layers:
        x = _REFERENCES[layer.kind](layer.plan, x)
        outputs.append(x)
    return outputs


def network(plan, x) -> np.ndarray:
    """Output codes of the network ``plan`` for input codes ``x`` (its last layer's output)."""
    return network_layers(plan, x)[-1]


def network_float(plan, weights, x) -> list[np.ndarray]:
    """The float64 model of ``plan``'s network: every layer's output for real inputs ``x``.

    Dense layers compute ``x @ W.T + b`` with the unquantized ``weights[name] = (W, b)`` (``b``
    may be None); activations evaluate their function in float64. No rounding, no saturation:
    the model the quantized network approximates.
    """
    x = np.asarray(x, dtype=np.float64)
    outputs = []
    for layer in plan.layers:
        if layer.kind == "dense":
            weight, bias = weights[layer.name]
            x = x @ np.asarray(weight, dtype=np.float64).T
            if bias is not None:
                x = x + np.asarray(bias, dtype=np.float64)
        else:
            x = np.asarray(layer.plan.function(x), dtype=np.float64)
        outputs.append(x)
    return outputs
