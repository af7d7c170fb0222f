"""The float model an importer reads: a chain of layers in float64, with PyTorch's semantics.

Both importers (ONNX, PyTorch state_dict) produce a list of :class:`FloatDense`,
:class:`FloatActivation`, for a 1-D CNN :class:`FloatConv1d`, :class:`FloatPool` and
:class:`FloatFlatten`, and for LSTM and GRU layers :class:`FloatRecurrent`;
:mod:`hwnn.io.quantize` chooses their formats and :func:`hwnn.io.import_model` writes them as a
``network`` spec. :func:`forward` is the float
network (the original, unquantized weights) used for calibration and by tests.

Sequences are time-major, as hwnn's streams: ``(sequences, steps, channels)``, where ONNX and
PyTorch hold ``(batch, channels, steps)``. Weights keep PyTorch's layouts: a conv weight is
``(out, in/groups, k)`` and the dense layer after a flatten takes PyTorch's channel-major
vector (``c·steps + t``); the spec loader permutes it to the stream's order itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..export import VERILOG_KEYWORDS
from ..plans.functions import FUNCTIONS, LEAKY_SHIFT, leaky_relu
from ..ref.binary import batchnorm_sign
from ..ref.conv1d import conv1d_float
from ..ref.rnn_float import rnn_float
from ..ref.windows import Window, conv1d_window, gather_windows

__all__ = ["ModelError", "UnsupportedLayer", "FloatDense", "FloatActivation", "FloatConv1d",
           "FloatPool", "FloatFlatten", "FloatRecurrent", "FloatSign", "FloatBinaryDense",
           "SEQUENCE_TYPES", "forward",
           "fold_batchnorm",
           "leaky_shift_of", "Names"]


class ModelError(ValueError):
    """A model hwnn cannot import; the message names the node (or array) and why."""


class UnsupportedLayer(ModelError, NotImplementedError):
    """A layer kind hwnn does not have (a 2-D convolution or pooling, for instance)."""


@dataclass
class FloatDense:
    """``y = weight @ x + bias``: ``weight`` (n_out, n_in) and ``bias`` (n_out,) in float64;
    ``source`` says where it came from (written into the spec as a comment)."""
    name: str
    weight: np.ndarray
    bias: np.ndarray
    source: str


@dataclass
class FloatSign:
    """Binarization: +1 where ``x ≥ 0``, else −1 (ONNX ``Sign``; a bit has no 0, so ties go to
    +1, as FINN and Brevitas binarize, where ONNX gives ``Sign(0) = 0``)."""
    name: str
    source: str

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        return np.where(np.asarray(x, dtype=np.float64) >= 0, 1.0, -1.0)


@dataclass
class FloatBinaryDense:
    """A binarized dense layer: the dot products ``d = weight @ x`` with ``weight`` (n_out,
    n_in) all ±1; with ``batchnorm = (gamma, beta, mean, var, eps)`` (one value per output),
    batch norm + sign of ``d + bias`` as ±1 (:func:`hwnn.ref.binary.batchnorm_sign` with the
    bias taken into the mean, ``mean − bias``: the decision its folded thresholds reproduce on
    every integer ``d``; ties to +1), without it ``d + bias`` (a last layer's logits).
    ``binary_input``: its inputs are ±1 (after a Sign or a binarized layer), else real values
    (a BNN's first layer on multi-bit inputs)."""
    name: str
    weight: np.ndarray
    bias: np.ndarray
    source: str
    batchnorm: tuple | None = None
    binary_input: bool = True

    @property
    def bits(self) -> np.ndarray:
        """The weights as bits, 1 for +1 and 0 for −1 (the bipolar encoding)."""
        return (self.weight > 0).astype(np.int64)

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        d = np.asarray(x, dtype=np.float64) @ self.weight.T
        if self.batchnorm is None:
            return d + self.bias
        gamma, beta, mean, var, eps = self.batchnorm
        return 2.0 * batchnorm_sign(d, gamma, beta, mean - self.bias, var, eps) - 1.0


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


@dataclass
class FloatConv1d:
    """PyTorch's ``Conv1d``: ``weight`` (out, in/groups, k) and ``bias`` (out,) in float64;
    ``padding`` an integer (both sides) or ``"same"``; ``in_steps`` the length of the
    sequences it takes (None when unknown)."""
    name: str
    weight: np.ndarray
    bias: np.ndarray
    source: str
    stride: int = 1
    dilation: int = 1
    padding: int | str = 0
    groups: int = 1
    in_steps: int | None = None

    @property
    def window(self) -> Window:
        return conv1d_window(self.weight.shape[2], stride=self.stride, dilation=self.dilation,
                             padding=self.padding)

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """The convolution of time-major ``x`` (:func:`hwnn.ref.conv1d.conv1d_float`)."""
        return conv1d_float(self.weight, self.bias, x, stride=self.stride,
                            dilation=self.dilation, padding=self.padding, groups=self.groups)


@dataclass
class FloatPool:
    """PyTorch's ``MaxPool1d``/``AvgPool1d`` (``kind`` "max"/"avg"; ``padding`` steps on both
    sides; the mean counts them as zeros, ``count_include_pad=True``)."""
    name: str
    kind: str
    kernel_size: int
    stride: int
    padding: int
    source: str
    in_steps: int | None = None

    @property
    def window(self) -> Window:
        return Window(self.kernel_size, self.stride, 1, self.padding, self.padding)

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """The pooling of time-major ``x`` (sequences, steps, channels)."""
        windows = gather_windows(x, self.window, fill=-np.inf if self.kind == "max" else 0.0)
        return windows.max(axis=-2) if self.kind == "max" else windows.mean(axis=-2)


@dataclass
class FloatFlatten:
    """``nn.Flatten`` of ``(channels, steps)``: PyTorch's channel-major vector."""
    name: str
    source: str
    steps: int
    channels: int

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """Time-major ``x`` (sequences, steps, channels) to (sequences, channels·steps)."""
        return x.transpose(0, 2, 1).reshape(len(x), self.channels * self.steps)


@dataclass
class FloatRecurrent:
    """A PyTorch ``nn.LSTM`` or ``nn.GRU`` module (``kind`` "lstm"/"gru"): ``weights`` holds
    its ``state_dict`` arrays without prefix (``weight_ih_l0``, ``weight_hh_l0`` and, unless
    the module has no bias, ``bias_ih_l0``, ``bias_hh_l0``; the same with ``_l1``... for
    stacked layers and ``_reverse`` for a bidirectional module) in float64; it gives every
    step's output (the last layer's hidden states, ``[forward; reverse]`` when bidirectional)
    from a zero state, or with ``return_sequences`` False only the last step's
    (``output[:, -1]``: PyTorch's ``h_n`` and ONNX's ``Y_h`` for one direction; for a
    bidirectional module its reverse half is not ``h_n``'s). ``in_steps`` as
    :class:`FloatConv1d`'s; ``reset_after`` False for the original GRU (ONNX
    ``linear_before_reset = 0``)."""
    name: str
    kind: str
    weights: dict
    source: str
    in_steps: int | None = None
    return_sequences: bool = True
    reset_after: bool = True
    #: Where each sequence's initial state comes from when it is loaded (the spec's
    #: ``initial_state = true``), e.g. "ONNX inputs h0[0:1], c0[0:1]"; empty: zeros.
    #: :meth:`evaluate` (the importer's calibration) starts from zeros either way.
    initial_state: str = ""

    @property
    def hidden_size(self) -> int:
        """Hidden size of each direction of each layer."""
        return self.weights["weight_hh_l0"].shape[1]

    @property
    def input_size(self) -> int:
        return self.weights["weight_ih_l0"].shape[1]

    @property
    def num_layers(self) -> int:
        return 1 + max(int(key.split("_l")[1].split("_")[0]) for key in self.weights)

    @property
    def bidirectional(self) -> bool:
        return any(key.endswith("_reverse") for key in self.weights)

    @property
    def out_size(self) -> int:
        """Values per output step: the hidden size, twice it when bidirectional."""
        return self.hidden_size * (2 if self.bidirectional else 1)

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """Every step's output for time-major ``x`` (sequences, steps, input), or the last
        step's (sequences, out_size) without ``return_sequences``."""
        y = rnn_float(self.kind, self.weights, x,
                      reset_after=self.kind == "lstm" or self.reset_after)[0]
        return y if self.return_sequences else y[..., -1, :]


#: The layers over sequences (before a flatten).
SEQUENCE_TYPES = (FloatConv1d, FloatPool, FloatRecurrent)


def forward(layers, x) -> list[np.ndarray]:
    """The float64 outputs of every layer for inputs ``x``, in order: ``(n, n_in)`` vectors, or
    time-major sequences ``(n, steps, channels)`` when the network starts with a sequence
    layer. A flatten makes PyTorch's channel-major vector of a sequence."""
    outputs = []
    x = np.asarray(x, dtype=np.float64)
    for layer in layers:
        if isinstance(layer, FloatDense):
            x = x @ layer.weight.T + layer.bias
        else:
            x = layer.evaluate(x)
        outputs.append(x)
    return outputs


def fold_batchnorm(dense, scale, shift, mean, var, epsilon: float, what: str):
    """Fold ``scale * (y - mean) / sqrt(var + epsilon) + shift`` into ``dense`` (in place), a
    :class:`FloatDense` or :class:`FloatConv1d` (one normalization per output channel).

    With ``s = scale / sqrt(var + epsilon)``: ``weight <- s * weight`` per output row and
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
    dense.weight = s.reshape((n_out,) + (1,) * (dense.weight.ndim - 1)) * dense.weight
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
