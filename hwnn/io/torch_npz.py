"""Read a PyTorch ``state_dict`` saved as ``.npz`` into float layers.

Save one with::

    import numpy as np
    state = model.state_dict()
    np.savez("model.npz", **{k: v.detach().cpu().numpy() for k, v in state.items()})

The arrays keep PyTorch's names and layouts (``0.weight`` of ``nn.Sequential``, ``fc1.bias``,
``Linear.weight`` is ``(out, in)``), in the order of the state_dict. A state_dict has no
activations, so the caller describes the chain: ``"dense,relu,dense,sigmoid"``, one token per
layer: ``dense`` (the next ``nn.Linear``: ``<prefix>.weight`` 2-D and ``<prefix>.bias``),
``batchnorm`` (the next ``nn.BatchNorm1d``, folded into the dense layer before it with PyTorch's
default ``eps = 1e-5``), or an activation: ``relu``, ``relu6``, ``tanh``, ``sigmoid``,
``hard_tanh``, ``hard_sigmoid``, ``leaky_relu`` (slope ``2**-6``) or ``leaky_relu=ALPHA``
(``ALPHA`` a power of two ``2**-k``). A 3-D weight (``nn.Conv1d``) raises
:class:`UnsupportedLayer`.
"""

from __future__ import annotations

import numpy as np

from ..plans.functions import LEAKY_SHIFT
from .model import (SEQUENCE_LAYERS, FloatActivation, FloatDense, ModelError, Names,
                    UnsupportedLayer, fold_batchnorm, leaky_shift_of)

__all__ = ["read_state_dict", "ACTIVATIONS", "BATCHNORM_EPS"]

ACTIVATIONS = ("relu", "relu6", "tanh", "sigmoid", "hard_tanh", "hard_sigmoid", "leaky_relu")
#: nn.BatchNorm1d's default eps (a state_dict does not record it).
BATCHNORM_EPS = 1e-5


def _groups(path, archive) -> list[tuple[str, dict]]:
    """``[(prefix, {field: array})]`` in the file's order (the state_dict's)."""
    groups = {}
    for key in archive.files:
        prefix, _, field = key.rpartition(".")
        if not prefix:
            raise ModelError(f"{path}: array {key!r} is not named like a state_dict entry "
                             f"('<module>.weight', '<module>.bias', ...)")
        groups.setdefault(prefix, {})[field] = np.asarray(archive[key])
    return list(groups.items())


def _kind(path, prefix, arrays) -> str:
    weight = arrays.get("weight")
    if "running_mean" in arrays:
        return "batchnorm"
    if weight is not None and weight.ndim == 3:
        raise UnsupportedLayer(f"{path}: {prefix}.weight has shape {weight.shape} (a Conv1d): "
                               f"{SEQUENCE_LAYERS}")
    if weight is None or weight.ndim != 2:
        raise ModelError(f"{path}: module {prefix!r} has arrays {sorted(arrays)}"
                         + ("" if weight is None else f" and a weight of shape {weight.shape}")
                         + "; hwnn reads nn.Linear (2-D weight) and nn.BatchNorm1d")
    return "dense"


def _parse_layers(text) -> list[str]:
    if not isinstance(text, str) or not text.strip():
        raise ModelError(f"layers must be a comma-separated list such as "
                         f"'dense,relu,dense,sigmoid', not {text!r}")
    return [token.strip() for token in text.split(",")]


def read_state_dict(path, layers: str) -> list:
    """The float layers of the state_dict ``.npz`` at ``path``, chained as ``layers`` says.

    Raises
    ------
    ModelError
        A token of ``layers`` is unknown, the tokens do not match the modules of the file in
        order and number, or shapes do not chain; :class:`UnsupportedLayer` for a Conv1d.
    OSError
        The file cannot be read.
    """
    tokens = _parse_layers(layers)
    try:
        archive = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise ModelError(f"{path}: not an .npz archive ({exc})") from None
    with archive:
        groups = _groups(path, archive)
    modules = [(prefix, _kind(path, prefix, arrays), arrays) for prefix, arrays in groups]
    result, names, n_in, k = [], Names(), None, 0
    for token in tokens:
        function, _, argument = token.partition("=")
        if token in ("dense", "batchnorm"):
            if k == len(modules):
                raise ModelError(f"layers has more dense/batchnorm entries than {path} has "
                                 f"modules ({', '.join(p for p, _, _ in modules)})")
            prefix, kind, arrays = modules[k]
            k += 1
            if kind != token:
                raise ModelError(f"layers says {token} where {path} has {kind} module "
                                 f"{prefix!r}")
            what = f"state_dict module {prefix!r}"
            if kind == "dense":
                weight = np.asarray(arrays["weight"], dtype=np.float64)
                bias = arrays.get("bias")
                bias = np.zeros(weight.shape[0]) if bias is None else \
                    np.asarray(bias, dtype=np.float64)
                if bias.shape != (weight.shape[0],):
                    raise ModelError(f"{path}: {prefix}.bias has shape {bias.shape}, not "
                                     f"({weight.shape[0]},)")
                if n_in is not None and weight.shape[1] != n_in:
                    raise ModelError(f"{path}: {prefix}.weight has shape {weight.shape} "
                                     f"(out, in) but the layer before gives {n_in} values")
                result.append(FloatDense(names.make(prefix, "dense"), weight, bias, what))
                n_in = weight.shape[0]
            else:
                if not result or not isinstance(result[-1], FloatDense):
                    raise ModelError(f"layers: batchnorm ({prefix!r}) must follow a dense layer "
                                     f"(it is folded into it)")
                n = result[-1].weight.shape[0]  # affine=False saves no weight and bias
                fold_batchnorm(result[-1], arrays.get("weight", np.ones(n)),
                               arrays.get("bias", np.zeros(n)), arrays["running_mean"],
                               arrays.get("running_var"), BATCHNORM_EPS, what)
        elif function in ACTIVATIONS and (not argument or function == "leaky_relu"):
            if not result:
                raise ModelError(f"layers must start with dense, not {token!r}")
            shift = None
            if function == "leaky_relu":
                shift = LEAKY_SHIFT
                if argument:
                    try:
                        alpha = float(argument)
                    except ValueError:
                        raise ModelError(f"layers: {token!r} needs a number after "
                                         f"'leaky_relu='") from None
                    shift = leaky_shift_of(alpha, f"layers entry {token!r}")
            result.append(FloatActivation(names.make(function, function), function,
                                          f"layers entry {token!r}", shift))
        else:
            raise ModelError(f"layers: unknown entry {token!r}; each is dense, batchnorm or "
                             f"an activation ({', '.join(ACTIVATIONS)}, leaky_relu=ALPHA)")
    if k != len(modules):
        rest = ", ".join(p for p, _, _ in modules[k:])
        raise ModelError(f"{path} has modules that layers does not use: {rest}")
    if not result:
        raise ModelError("layers describes no layer")
    return result
