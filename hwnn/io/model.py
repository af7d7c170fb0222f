"""The float model an importer reads: a chain of dense layers and activations, in float64.

Both importers (ONNX, PyTorch state_dict) produce a list of :class:`FloatDense` and
:class:`FloatActivation`; :mod:`hwnn.io.quantize` chooses their formats and
:func:`hwnn.io.import_model` writes them as a ``network`` spec. :func:`forward` is the float
network (the original, unquantized weights) used for calibration and by tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..export import VERILOG_KEYWORDS
from ..plans.functions import FUNCTIONS, LEAKY_SHIFT, leaky_relu

__all__ = ["ModelError", "UnsupportedLayer", "FloatDense", "FloatActivation", "forward",
           "fold_batchnorm", "leaky_shift_of", "Names", "SEQUENCE_LAYERS"]

#: The message for layers over sequences, which a network does not chain yet.
SEQUENCE_LAYERS = ("hwnn's network does not chain sequence layers (conv1d, pooling) yet; "
                   "only dense layers and activations import today")


class ModelError(ValueError):
    """A model hwnn cannot import; the message names the node (or array) and why."""


class UnsupportedLayer(ModelError, NotImplementedError):
    """A layer hwnn has, but a network cannot chain yet (Conv, MaxPool, AveragePool)."""


@dataclass
class FloatDense:
    """``y = weight @ x + bias``: ``weight`` (n_out, n_in) and ``bias`` (n_out,) in float64;
    ``source`` says where it came from (written into the spec as a comment)."""
    name: str
    weight: np.ndarray
    bias: np.ndarray
    source: str


@dataclass
class FloatActivation:
    """An element-wise function of :data:`hwnn.plans.functions.FUNCTIONS`; ``leaky_shift`` is
    set for ``leaky_relu`` (negative slope ``2**-leaky_shift``)."""
    name: str
    function: str
    source: str
    leaky_shift: int | None = None

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """The float64 function (hwnn's own definition, the one its plans are measured against)."""
        if self.function == "leaky_relu":
            return leaky_relu(self.leaky_shift)(x)
        return FUNCTIONS[self.function](x)


def forward(layers, x) -> list[np.ndarray]:
    """The float64 outputs of every layer for inputs ``x`` (shape ``(n, n_in)``), in order."""
    outputs = []
    x = np.asarray(x, dtype=np.float64)
    for layer in layers:
        if isinstance(layer, FloatDense):
            x = x @ layer.weight.T + layer.bias
        else:
            x = layer.evaluate(x)
        outputs.append(x)
    return outputs


def fold_batchnorm(dense: FloatDense, scale, shift, mean, var, epsilon: float, what: str):
    """Fold ``scale * (y - mean) / sqrt(var + epsilon) + shift`` into ``dense`` (in place).

    With ``s = scale / sqrt(var + epsilon)``: ``weight <- s[:, None] * weight`` and
    ``bias <- s * (bias - mean) + shift``, in float64. ``what`` names the normalization in errors.

    Raises
    ------
    ModelError
        An array does not have one value per output of ``dense``, or ``var + epsilon <= 0``.
    """
    n_out = dense.weight.shape[0]
    arrays = []
    for label, array in (("scale", scale), ("bias", shift), ("mean", mean), ("var", var)):
        array = np.asarray(array, dtype=np.float64)
        if array.shape != (n_out,):
            raise ModelError(f"{what}: {label} has shape {array.shape}, but layer "
                             f"{dense.name!r} has {n_out} outputs")
        arrays.append(array)
    scale, shift, mean, var = arrays
    if np.any(var + epsilon <= 0):
        raise ModelError(f"{what}: var + epsilon must be positive, not {np.min(var + epsilon)}")
    s = scale / np.sqrt(var + epsilon)
    dense.weight = s[:, None] * dense.weight
    dense.bias = s * (dense.bias - mean) + shift
    dense.source += f"; {what} folded in"


def leaky_shift_of(alpha: float, what: str) -> int:
    """``k`` with ``alpha == 2**-k`` (1 <= k <= 16): hwnn's leaky_relu slope is a shift.

    Raises
    ------
    ModelError
        ``alpha`` is not such a power of two; the message names ``what`` and the value.
    """
    for k in range(1, 17):
        if alpha == 2.0 ** -k:
            return k
    raise ModelError(f"{what} has negative slope alpha = {alpha!r}; hwnn's leaky_relu has slope "
                     f"2**-k for k = 1..16 (a shift in hardware, e.g. 2**-{LEAKY_SHIFT} = "
                     f"{2.0 ** -LEAKY_SHIFT}): retrain with such an alpha")


class Names:
    """Unique layer names: identifiers (letters, digits, ``_``) that are no Verilog keyword."""

    def __init__(self):
        self.used = set()

    def make(self, raw: str, fallback: str) -> str:
        """``raw`` sanitized (``fallback`` when nothing is left), made unique with ``_2``, ..."""
        name = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", raw or "")).strip("_")
        if not name:
            name = fallback
        if name[0].isdigit():
            name = f"layer_{name}"
        if name in VERILOG_KEYWORDS:
            name += "_"
        unique, k = name, 2
        while unique in self.used:
            unique, k = f"{name}_{k}", k + 1
        self.used.add(unique)
        return unique
