"""The binarized layers of a network spec: ``binary_dense`` (a binarized dense layer, folded
PE × SIMD) and ``threshold`` (a multi-threshold activation, FINN's thresholding; by default
the sign).

A layer table (``kind = "binary_dense"``) takes:

* ``in_encoding``: ``"bipolar"`` or ``"binary"`` for one-bit inputs (the network's or previous
  layer's format must then be ``UQ(1, 0)``), ``"integer"`` for codes of the incoming format (a
  BNN's first layer). Default: ``"bipolar"`` after ``UQ(1, 0)``, ``"integer"`` otherwise.
* ``w_encoding``: ``"bipolar"`` (default) or ``"binary"``.
* ``pe``, ``simd``: the folding (default 1 and 1): ``ii = (n_out/pe)·(n_in/simd)``.
* ``out_format``: the output of the thresholds (default ``UQ(k, 0)``, ``k`` from their count);
  read only when the layer has thresholds.
* ``popcount_method``, ``popcount_pipeline``: the popcount tree of one-bit inputs.
* ``weight_ram``: where the PEs' weight memories go, ``"auto"`` (default), ``"block"`` or
  ``"logic"`` (:data:`hwnn.cores.binary_dense.WEIGHT_RAM`).

Its arrays in the network's weights file: ``<name>.weight`` (``n_out × n_in``, 0/1 bits or
±1 values, +1 being bit 1), optionally ``<name>.thresholds`` (``(channels, 2**k − 1)``
ascending integers in the dot product's codes, ``channels`` 1 or ``n_out``) and
``<name>.descending`` (one bool per channel, default all false); or, instead of thresholds, a
batch norm followed by sign, folded into one threshold per neuron when the spec is loaded
(:func:`hwnn.plans.threshold.plan_batchnorm_sign` on the dot product's format, so the
thresholds follow an edited ``in_format``): ``<name>.bn_weight``, ``<name>.bn_bias``,
``<name>.bn_mean``, ``<name>.bn_var`` (γ, β, running mean and variance, one per neuron), the
field ``bn_eps`` (default 1e-5) and optionally ``<name>.bias`` (the linear layer's bias, taken
into the mean: batch norm + sign of ``dot + bias``). Without either the layer outputs the dot
products (a bias without batch norm is refused: the dot products have no fraction bits for it).

A ``threshold`` layer (kind ``"threshold"``) compares each input code with its channel's
thresholds: ``<name>.thresholds`` (``(channels, 2**k − 1)`` ascending integers in the input's
codes, ``channels`` 1 or the layer's lanes) and optionally ``<name>.descending``, with the
field ``out_format`` (default ``UQ(k, 0)``). Without arrays it is the sign: bit 1 where the
input is at or above 0 (``x ≥ 0``, so ties go to +1, as FINN and Brevitas binarize). It has as
many lanes as the layer before has outputs; as the first layer it takes the field ``lanes``
(the network's input width).
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

from ..cores.binary_dense import WEIGHT_RAM
from ..fixed import SQ, UQ
from ..plans.binary_dense import plan_binary_dense
from ..plans.network import Layer
from ..plans.popcount import METHODS
from ..plans.threshold import MAX_IN_WIDTH, ThresholdPlan, plan_batchnorm_sign
from ..ref.binary import ENCODINGS, from_bipolar
from .fields import SpecError, _Fields, _plan_error

__all__ = ["BATCHNORM_KEYS", "BINARY_KINDS", "binary_dense_layer", "threshold_layer"]

#: The binarized layer kinds and their fields.
BINARY_KINDS = {"binary_dense": ("in_format", "in_encoding", "w_encoding", "pe", "simd",
                                 "out_format", "popcount_method", "popcount_pipeline",
                                 "weight_ram", "bn_eps"),
                "threshold": ("in_format", "out_format", "lanes")}
#: The batch-norm arrays of a binary_dense layer (module docstring), in
#: :func:`~hwnn.plans.threshold.plan_batchnorm_sign`'s order.
BATCHNORM_KEYS = ("bn_weight", "bn_bias", "bn_mean", "bn_var")


def _array(params: _Fields, path, arrays, key: str, name: str):
    if key not in arrays:
        raise params.error("weights", f"{path.name} has no array '{key}' for layer {name!r} "
                                      f"(it has: {', '.join(sorted(arrays)) or 'nothing'})")
    return arrays[key]


def _weight_bits(params: _Fields, path, weight, key: str) -> np.ndarray:
    """0/1 bits of ``weight``, given as bits or as ±1 values."""
    weight = np.asarray(weight)
    if weight.dtype.kind == "f" and np.isin(weight, (-1.0, 0.0, 1.0)).all():
        weight = weight.astype(np.int64)   # PyTorch's sign() gives ±1.0 floats
    if weight.dtype.kind not in "biu":
        raise params.error("weights", f"array '{key}' in {path.name} must hold bits (0/1) or "
                                      f"±1, not dtype {weight.dtype}")
    values = set(np.unique(weight).tolist())
    if values <= {0, 1}:
        return weight.astype(np.int64)
    if values <= {-1, 1}:
        return from_bipolar(weight.astype(np.int64))
    raise params.error("weights", f"array '{key}' in {path.name} must hold bits (0/1) or ±1, "
                                  f"not {sorted(values)[:4]}")


def binary_dense_layer(name: str, params: _Fields, path, arrays, in_format) -> tuple:
    """``(layer, keys used)``: the ``binary_dense`` layer ``name`` (module docstring) fed
    codes of ``in_format``.

    Raises
    ------
    SpecError
        A missing weights file or array, arrays that are not bits or ±1 (weights), integers
        (thresholds), bools (descending) or reals (batch norm), both thresholds and batch norm,
        a bias without batch norm, or what the plan refuses (at its field).
    """
    if path is None:
        raise params.error("weights", f"missing: binary_dense layer {name!r} needs array "
                                      f"'{name}.weight'")
    keys = {key: f"{name}.{key}" for key in ("weight", "thresholds", "descending", "bias",
                                             *BATCHNORM_KEYS)}
    weights = _weight_bits(params, path, _array(params, path, arrays, keys["weight"], name),
                           keys["weight"])
    one_bit = in_format == UQ(1, 0)
    encoding = params.choice("in_encoding", (*ENCODINGS, "integer"),
                             "bipolar" if one_bit else "integer")
    if encoding != "integer" and not one_bit:
        raise params.error("in_encoding", f"{encoding!r} takes one bit per input (UQ(1, 0)), "
                                          f"but the layer gets {in_format}; use \"integer\"")
    options = dict(in_encoding=in_format if encoding == "integer" else encoding,
                   w_encoding=params.choice("w_encoding", ENCODINGS, "bipolar"),
                   pe=params.integer("pe", 1, 1), simd=params.integer("simd", 1, 1),
                   popcount_method=params.choice("popcount_method", METHODS, "adder_tree"),
                   popcount_pipeline=params.integer("popcount_pipeline", 0, 0))
    core_options = {"weight_ram": params.choice("weight_ram", WEIGHT_RAM, "auto")}
    used = {key for key in keys.values() if key in arrays}
    batchnorm = [key for key in BATCHNORM_KEYS if keys[key] in arrays]
    if keys["thresholds"] in arrays and batchnorm:
        raise params.error("weights", f"{path.name} has both '{keys['thresholds']}' and "
                                      f"batch-norm arrays for layer {name!r}: give one")
    if keys["descending"] in arrays and keys["thresholds"] not in arrays:
        raise params.error("weights", f"{path.name} has '{keys['descending']}' but no "
                                      f"'{keys['thresholds']}' for layer {name!r}")
    if keys["bias"] in arrays and not batchnorm:
        raise params.error("weights", f"{path.name} has '{keys['bias']}' but no batch norm for "
                                      f"layer {name!r}: a binarized layer's dot products have "
                                      f"no fraction bits for a bias (a bias before batch norm "
                                      f"+ sign is taken into its mean)")
    try:
        plan = plan_binary_dense(weights, **options)
        if keys["thresholds"] in arrays:
            f = in_format.f if encoding == "integer" else 0
            thresholds = _thresholds(params, path, arrays, keys, f, source="binary_dense")
        elif batchnorm:
            thresholds = _batchnorm(params, path, arrays, keys, batchnorm, plan)
        else:
            return Layer(name, "binary_dense", plan, MappingProxyType(core_options)), used
        plan = plan_binary_dense(weights, thresholds=thresholds, **options)
    except SpecError:
        raise
    except (TypeError, ValueError) as exc:
        raise _plan_error(params, exc, "weights") from None
    return Layer(name, "binary_dense", plan, MappingProxyType(core_options)), used


def _batchnorm(params, path, arrays, keys, present, plan) -> ThresholdPlan:
    """Batch norm + sign of ``dot + bias`` folded onto ``plan``'s dot format."""
    missing = [keys[key] for key in BATCHNORM_KEYS if key not in present]
    if missing:
        raise params.error("weights", f"{path.name} has no array '{missing[0]}' (batch norm "
                                      f"needs {', '.join(keys[k] for k in BATCHNORM_KEYS)})")
    values = []
    for key in (*BATCHNORM_KEYS, "bias"):
        value = np.asarray(arrays.get(keys[key], np.zeros(plan.n_out)))
        if value.dtype.kind not in "iuf" or value.shape != (plan.n_out,):
            raise params.error("weights", f"array '{keys[key]}' in {path.name} must hold "
                                          f"{plan.n_out} real values (one per neuron), not "
                                          f"{value.dtype} of shape {value.shape}")
        values.append(value.astype(np.float64))
    gamma, beta, mean, var, bias = values
    eps = params.raw("bn_eps", 1e-5)
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps >= 0:
        raise params.error("bn_eps", f"must be a non-negative number, not {eps!r}")
    return plan_batchnorm_sign(plan.dot_format, gamma, beta, mean - bias, var, float(eps))


def threshold_layer(name: str, params: _Fields, path, arrays, in_format, width) -> tuple:
    """``(layer, keys used)``: the ``threshold`` layer ``name`` (module docstring) on ``width``
    lanes of ``in_format`` codes (``width`` None: the first layer, which takes ``lanes``), an
    ``activation`` layer of the network holding a ThresholdPlan.

    Raises
    ------
    SpecError
        ``lanes`` missing or given when the layer is not first, bad arrays (as
        :func:`binary_dense_layer`'s thresholds), or what the plan refuses.
    """
    keys = {key: f"{name}.{key}" for key in ("thresholds", "descending")}
    if width is None:
        if "lanes" not in params.table:
            raise params.error("lanes", "missing: a threshold layer first in the network takes "
                                        "the network's input width from it")
        width = params.integer("lanes", None, 1)
    elif "lanes" in params.table:
        raise params.error("lanes", f"is set by the network: the number of outputs of the "
                                    f"layer before ({width})")
    used = {key for key in keys.values() if key in arrays}
    if keys["descending"] in arrays and keys["thresholds"] not in arrays:
        raise params.error("weights", f"{path.name} has '{keys['descending']}' but no "
                                      f"'{keys['thresholds']}' for layer {name!r}")
    try:
        if keys["thresholds"] in arrays:
            plan = _thresholds(params, path, arrays, keys, in_format.f, in_format)
        else:  # the sign: bit 1 where the code is at or above 0
            plan = ThresholdPlan(in_format, params.format("out_format") if "out_format" in
                                 params.table else UQ(1, 0), np.zeros((1, 1), dtype=np.int64),
                                 np.zeros(1, dtype=bool), "sign")
    except SpecError:
        raise
    except (TypeError, ValueError) as exc:
        raise _plan_error(params, exc, "weights") from None
    if plan.channels not in (1, width):
        raise params.error("weights", f"array '{keys['thresholds']}' in {path.name} must have 1 "
                                      f"or {width} channels (the layer's lanes), not "
                                      f"{plan.channels}")
    return Layer(name, "activation", plan, MappingProxyType({})), used, width


def _thresholds(params, path, arrays, keys, f: int, in_format=None,
                source: str = "thresholds") -> ThresholdPlan:
    """The ThresholdPlan of a layer's arrays: thresholds compare codes with ``f`` fraction
    bits, those of ``in_format`` (default: the widest format the threshold plans take, wide
    enough for any dot product)."""
    values = np.asarray(arrays[keys["thresholds"]])
    if values.dtype.kind not in "iu" or values.ndim != 2 or values.shape[1] < 1:
        raise params.error("weights", f"array '{keys['thresholds']}' in {path.name} must be "
                                      f"integers of shape (channels, 2**k - 1), not "
                                      f"{values.dtype} of shape {values.shape}")
    k = (values.shape[1] + 1).bit_length() - 1
    if (1 << k) - 1 != values.shape[1]:
        raise params.error("weights", f"array '{keys['thresholds']}' in {path.name} must have "
                                      f"2**k - 1 columns (1, 3, 7, ...), not {values.shape[1]}")
    out_format = params.format("out_format") if "out_format" in params.table else UQ(k, 0)
    descending = np.zeros(values.shape[0], dtype=bool)
    if keys["descending"] in arrays:
        descending = np.asarray(arrays[keys["descending"]])
        if descending.dtype != np.bool_:
            raise params.error("weights", f"array '{keys['descending']}' in {path.name} must "
                                          f"hold bools, not {descending.dtype}")
    fmt = SQ(MAX_IN_WIDTH - f, f) if in_format is None else in_format
    return ThresholdPlan(fmt, out_format, values.astype(np.int64), descending, source)
