"""The ``binary_dense`` layer of a network spec: a binarized dense layer, folded PE × SIMD.

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
``<name>.descending`` (one bool per channel, default all false). Without thresholds the layer
outputs the dot products.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

from ..cores.binary_dense import WEIGHT_RAM
from ..fixed import SQ, UQ
from ..plans.binary_dense import plan_binary_dense
from ..plans.network import Layer
from ..plans.popcount import METHODS
from ..plans.threshold import MAX_IN_WIDTH, ThresholdPlan
from ..ref.binary import ENCODINGS, from_bipolar
from .fields import _Fields, _plan_error

__all__ = ["BINARY_KINDS", "binary_dense_layer"]

#: The binarized layer kinds and their fields.
BINARY_KINDS = {"binary_dense": ("in_format", "in_encoding", "w_encoding", "pe", "simd",
                                 "out_format", "popcount_method", "popcount_pipeline",
                                 "weight_ram")}


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
        (thresholds) or bools (descending), or what the plan refuses (at its field).
    """
    if path is None:
        raise params.error("weights", f"missing: binary_dense layer {name!r} needs array "
                                      f"'{name}.weight'")
    keys = {key: f"{name}.{key}" for key in ("weight", "thresholds", "descending")}
    weights = _weight_bits(params, path, _array(params, path, arrays, keys["weight"], name),
                           keys["weight"])
    one_bit = in_format == UQ(1, 0)
    encoding = params.choice("in_encoding", (*ENCODINGS, "integer"),
                             "bipolar" if one_bit else "integer")
    if encoding != "integer" and not one_bit:
        raise params.error("in_encoding", f"{encoding!r} takes one bit per input (UQ(1, 0)), "
                                          f"but the layer gets {in_format}; use \"integer\"")
    w_encoding = params.choice("w_encoding", ENCODINGS, "bipolar")
    pe, simd = params.integer("pe", 1, 1), params.integer("simd", 1, 1)
    method = params.choice("popcount_method", METHODS, "adder_tree")
    pipeline = params.integer("popcount_pipeline", 0, 0)
    options = {"weight_ram": params.choice("weight_ram", WEIGHT_RAM, "auto")}
    thresholds, used = None, {keys["weight"]}
    if keys["thresholds"] in arrays:
        thresholds = _thresholds(params, path, arrays, keys, in_format, encoding)
        used.update(key for key in keys.values() if key in arrays)
    elif keys["descending"] in arrays:
        raise params.error("weights", f"{path.name} has '{keys['descending']}' but no "
                                      f"'{keys['thresholds']}' for layer {name!r}")
    try:
        plan = plan_binary_dense(weights, in_encoding=in_format if encoding == "integer"
                                 else encoding, w_encoding=w_encoding, pe=pe, simd=simd,
                                 thresholds=thresholds, popcount_method=method,
                                 popcount_pipeline=pipeline)
    except (TypeError, ValueError) as exc:
        raise _plan_error(params, exc, "weights") from None
    return Layer(name, "binary_dense", plan, MappingProxyType(options)), used


def _thresholds(params, path, arrays, keys, in_format, encoding) -> ThresholdPlan:
    """The layer's ThresholdPlan from its arrays: thresholds compare the dot product, whose
    codes have the input's fraction bits (0 for one-bit inputs)."""
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
    f = in_format.f if encoding == "integer" else 0
    # The widest integer compare the threshold plans take: wide enough for any dot product.
    fmt = SQ(MAX_IN_WIDTH - f, f)
    try:
        return ThresholdPlan(fmt, out_format, values.astype(np.int64), descending,
                             "binary_dense")
    except (TypeError, ValueError) as exc:
        raise _plan_error(params, exc, "weights") from None
