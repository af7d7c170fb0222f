"""Read a PyTorch ``state_dict`` saved as ``.npz`` into float layers.

Save one with::

    import numpy as np
    state = model.state_dict()
    np.savez("model.npz", **{k: v.detach().cpu().numpy() for k, v in state.items()})

The arrays keep PyTorch's names and layouts (``0.weight`` of ``nn.Sequential``, ``fc1.bias``,
``Linear.weight`` is ``(out, in)``, ``Conv1d.weight`` ``(out, in/groups, k)``), in the order of
the state_dict. A state_dict has no activations, pooling or hyper-parameters, so the caller
describes the chain: ``"conv1d:padding=same,relu,maxpool:k=2,flatten,dense"``, one entry per
layer, options after colons (``name:key=value:key=value``):

- ``dense``: the next ``nn.Linear`` (``<prefix>.weight`` 2-D and ``<prefix>.bias``); after a
  ``flatten`` its weight takes PyTorch's channel-major vector, as ``nn.Flatten`` makes it;
- ``conv1d``: the next ``nn.Conv1d`` (3-D weight), options ``padding`` (``valid``, ``same``
  or an integer; default 0), ``stride``, ``dilation`` (default 1) and ``groups`` (default: the
  channels before it over the weight's in/groups, 1 for the first layer);
- ``maxpool``/``avgpool``: ``nn.MaxPool1d``/``nn.AvgPool1d`` (no module), options ``k`` (the
  kernel size, required), ``stride`` (default ``k``), ``padding`` (default 0; an average
  counts it as zeros, PyTorch's ``count_include_pad=True``);
- ``lstm``/``gru``: the next ``nn.LSTM``/``nn.GRU`` (``<prefix>.weight_ih_l0``,
  ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``, and ``_l1``... of a stacked module,
  ``_reverse`` of a bidirectional one: its ``num_layers`` and ``bidirectional`` are read off
  the keys; ``batch_first`` or not, the stream is time-major either way), every step's
  output (``[forward; reverse]`` when bidirectional), or with ``lstm:last``/``gru:last`` only
  the last step's (``output[:, -1]``, a vector per sequence: ``h_n`` of a one-direction
  module; of a bidirectional one, the reverse half is its state after one step, not
  ``h_n``'s);
- ``flatten``: ``nn.Flatten`` after the sequence layers: of a conv1d's or pool's
  ``(channels, steps)``, channel-major; of an LSTM's or GRU's ``(steps, hidden)``
  (``batch_first``), time-major, and the next dense weight is read in that order;
- ``batchnorm``: the next ``nn.BatchNorm1d``, folded into the dense or conv1d layer before it
  with PyTorch's default ``eps = 1e-5``;
- an activation: ``relu``, ``relu6``, ``tanh``, ``sigmoid``, ``hard_tanh``, ``hard_sigmoid``,
  ``leaky_relu`` (slope ``2**-6``) or ``leaky_relu=ALPHA`` (``ALPHA`` a power of two
  ``2**-k``), over vectors or sequences alike.

A chain with conv1d or pooling needs the length of its input sequences (``sequence_length``,
``--sequence-length N``); its inputs are time-major ``(sequences, steps, channels)``.
"""

from __future__ import annotations

import re

import numpy as np

from ..plans.functions import LEAKY_SHIFT
from ..ref.rnn_float import rnn_float
from .model import (FloatActivation, FloatConv1d, FloatDense, FloatFlatten, FloatPool,
                    FloatRecurrent, ModelError, Names, fold_batchnorm, leaky_shift_of)

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


#: The arrays of a recurrent module, layer ``k`` (biases optional; ``_reverse`` suffixes).
_RECURRENT = re.compile(r"(weight|bias)_(ih|hh)_l\d+(_reverse)?")


def _kind(path, prefix, arrays) -> str:
    weight = arrays.get("weight")
    if "running_mean" in arrays:
        return "batchnorm"
    if "weight_ih_l0" in arrays:
        hh = arrays.get("weight_hh_l0")
        gates = hh.shape[0] // hh.shape[1] if hh is not None and hh.ndim == 2 and \
            hh.shape[1] else 0
        if gates not in (3, 4):
            raise ModelError(f"{path}: module {prefix!r} has weight_hh_l0 of shape "
                             f"{None if hh is None else hh.shape}; nn.LSTM's is (4·hidden, "
                             f"hidden), nn.GRU's (3·hidden, hidden)")
        other = sorted(key for key in arrays if not _RECURRENT.fullmatch(key))
        if other:
            raise ModelError(f"{path}: module {prefix!r} has {other[0]!r}, which is not a "
                             f"parameter of an nn.LSTM or nn.GRU (weight_ih_l<k>, weight_hh_l<k>, "
                             f"bias_ih_l<k>, bias_hh_l<k>, each also with _reverse)")
        kind = "lstm" if gates == 4 else "gru"
        try:   # rnn_float's checks: every layer and direction present, shapes that chain
            rnn_float(kind, arrays, np.zeros((1, 1, np.shape(arrays["weight_ih_l0"])[-1:][0]
                                              if np.ndim(arrays["weight_ih_l0"]) else 1)))
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{path}: module {prefix!r}: {exc}") from None
        return kind
    if weight is None or weight.ndim not in (2, 3):
        raise ModelError(f"{path}: module {prefix!r} has arrays {sorted(arrays)}"
                         + ("" if weight is None else f" and a weight of shape {weight.shape}")
                         + "; hwnn reads nn.Linear (2-D weight), nn.Conv1d (3-D weight) and "
                           "nn.BatchNorm1d")
    return "dense" if weight.ndim == 2 else "conv1d"


def _parse_layers(text) -> list[str]:
    if not isinstance(text, str) or not text.strip():
        raise ModelError(f"layers must be a comma-separated list such as "
                         f"'dense,relu,dense,sigmoid', not {text!r}")
    return [token.strip() for token in text.split(",")]


#: The options of each entry that takes them, with their defaults (None: required; for
#: ``stride`` of a pool: ``k``; for ``groups``: inferred).
_OPTIONS = {"conv1d": {"padding": 0, "stride": 1, "dilation": 1, "groups": None},
            "maxpool": {"k": None, "stride": None, "padding": 0},
            "avgpool": {"k": None, "stride": None, "padding": 0}}


def _options(token: str) -> tuple[str, dict]:
    """``(kind, {option: value})`` of an entry ``kind:key=value:...`` (values checked)."""
    kind, *parts = [part.strip() for part in token.split(":")]
    if kind in ("lstm", "gru") and parts in ([], ["last"]):
        return kind, {"last": bool(parts)}
    if kind not in _OPTIONS:
        return token, {}
    values = {}
    for part in parts:
        key, equals, value = part.partition("=")
        if not equals or key not in _OPTIONS[kind] or key in values:
            raise ModelError(f"layers: entry {token!r} has {part!r}; {kind} takes "
                             f"{', '.join(k + '=N' for k in _OPTIONS[kind])} once each, "
                             f"separated by ':'")
        if key == "padding" and kind == "conv1d" and value in ("valid", "same"):
            values[key] = 0 if value == "valid" else "same"
            continue
        if not value.isdigit() or (int(value) < 1 and key != "padding"):
            raise ModelError(f"layers: entry {token!r} has {key} = {value!r}; it must be an "
                             f"integer >= {0 if key == 'padding' else 1}"
                             + (" or valid | same" if key == "padding" and kind == "conv1d"
                                else ""))
        values[key] = int(value)
    if kind != "conv1d" and "k" not in values:
        raise ModelError(f"layers: entry {token!r} needs the kernel size, e.g. {kind}:k=2")
    return kind, {**_OPTIONS[kind], **values}


def _steps_after(layer, steps, token) -> int:
    """The steps after ``layer`` (its window checked) for ``steps`` steps in."""
    try:
        window = layer.window
    except ValueError as exc:  # the window's own check, e.g. "same" with a stride
        raise ModelError(f"layers: entry {token!r}: {exc}") from None
    out = window.out_length(steps)
    if out < 1:
        raise ModelError(f"layers: {token!r} leaves no step of the {steps}-step sequences it "
                         f"gets")
    return out


def read_state_dict(path, layers: str, sequence_length=None) -> list:
    """The float layers of the state_dict ``.npz`` at ``path``, chained as ``layers`` says;
    ``sequence_length`` (the input's steps) is required when it has conv1d or pool entries.

    Raises
    ------
    ModelError
        An entry of ``layers`` is unknown or has a bad option, the entries do not match the
        modules of the file in order and number, shapes do not chain, or a sequence layer has
        no ``sequence_length``.
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
    # n_in: the values of a vector; channels, steps: the sequence's (sequence layers before).
    result, names, n_in, k = [], Names(), None, 0
    channels = steps = None
    time_major = False   # a flatten of (steps, hidden): the next dense weight is time-major
    for token in tokens:
        kind, options = _options(token)
        function, _, argument = token.partition("=")
        if kind in ("dense", "conv1d", "batchnorm", "lstm", "gru"):
            if k == len(modules):
                raise ModelError(f"layers has more dense/conv1d/batchnorm entries than {path} "
                                 f"has modules ({', '.join(p for p, _, _ in modules)})")
            prefix, module_kind, arrays = modules[k]
            k += 1
            if kind != module_kind:
                raise ModelError(f"layers says {kind} where {path} has {module_kind} module "
                                 f"{prefix!r}")
            what = f"state_dict module {prefix!r}"
            if kind in ("lstm", "gru"):
                if n_in is not None:
                    raise ModelError(f"layers: {kind} ({prefix!r}) after a dense layer or "
                                     f"flatten: a network's sequence layers come first")
                weights = {key: np.asarray(arrays[key], dtype=np.float64) for key in arrays}
                layer = FloatRecurrent(names.make(prefix, kind), kind, weights, what,
                                       in_steps=_sequence_length(sequence_length, token)
                                       if steps is None else steps,
                                       return_sequences=not options["last"])
                if channels is not None and layer.input_size != channels:
                    raise ModelError(f"{path}: {prefix}.weight_ih_l0 has shape "
                                     f"{weights['weight_ih_l0'].shape} (gates·hidden, input) "
                                     f"but the layer before gives {channels} channels")
                steps, channels = layer.in_steps, layer.out_size
                if not layer.return_sequences:   # a vector per sequence from here on
                    n_in, steps, channels = layer.out_size, None, None
                result.append(layer)
                continue
            if kind in ("dense", "conv1d"):
                weight = np.asarray(arrays["weight"], dtype=np.float64)
                bias = arrays.get("bias")
                bias = np.zeros(weight.shape[0]) if bias is None else \
                    np.asarray(bias, dtype=np.float64)
                if bias.shape != (weight.shape[0],):
                    raise ModelError(f"{path}: {prefix}.bias has shape {bias.shape}, not "
                                     f"({weight.shape[0]},)")
            if kind == "dense":
                if steps is not None:
                    raise ModelError(f"layers: dense ({prefix!r}) after sequence layers needs "
                                     f"a flatten before it")
                if n_in is not None and weight.shape[1] != n_in:
                    raise ModelError(f"{path}: {prefix}.weight has shape {weight.shape} "
                                     f"(out, in) but the layer before gives {n_in} values")
                if time_major:  # to the channel-major order a flatten's dense weight has
                    flat = result[-1] if isinstance(result[-1], FloatFlatten) else next(
                        r for r in reversed(result) if isinstance(r, FloatFlatten))
                    weight = weight.reshape(-1, flat.steps, flat.channels).transpose(
                        0, 2, 1).reshape(weight.shape)
                    what += " (time-major columns, after an LSTM/GRU)"
                    time_major = False
                result.append(FloatDense(names.make(prefix, "dense"), weight, bias, what))
                n_in = weight.shape[0]
            elif kind == "conv1d":
                if n_in is not None:
                    raise ModelError(f"layers: conv1d ({prefix!r}) after a dense layer or "
                                     f"flatten: a network's sequence layers come first")
                steps = _sequence_length(sequence_length, token) if steps is None else steps
                groups = options["groups"]
                if groups is None:
                    groups = 1 if channels is None else max(1, channels // weight.shape[1])
                if (channels is not None and weight.shape[1] * groups != channels) or \
                        weight.shape[0] % groups:
                    raise ModelError(f"{path}: {prefix}.weight has shape {weight.shape} "
                                     f"(out, in/groups, k); with groups = {groups} it does not "
                                     f"take the {channels} channels before it")
                layer = FloatConv1d(names.make(prefix, "conv"), weight, bias, what,
                                    options["stride"], options["dilation"], options["padding"],
                                    groups, in_steps=steps)
                steps, channels = _steps_after(layer, steps, token), weight.shape[0]
                result.append(layer)
            else:
                if not result or not isinstance(result[-1], (FloatDense, FloatConv1d)):
                    raise ModelError(f"layers: batchnorm ({prefix!r}) must follow a dense or "
                                     f"conv1d layer (it is folded into it)")
                n = result[-1].weight.shape[0]  # affine=False saves no weight and bias
                fold_batchnorm(result[-1], arrays.get("weight", np.ones(n)),
                               arrays.get("bias", np.zeros(n)), arrays["running_mean"],
                               arrays.get("running_var"), BATCHNORM_EPS, what)
        elif kind in ("maxpool", "avgpool"):
            if not result:
                raise ModelError(f"layers must start with dense or conv1d, not {token!r}")
            if n_in is not None:
                raise ModelError(f"layers: {token!r} after a dense layer or flatten: a "
                                 f"network's sequence layers come first")
            steps = _sequence_length(sequence_length, token) if steps is None else steps
            size = options["k"]
            if options["padding"] > size // 2:
                raise ModelError(f"layers: entry {token!r} pads {options['padding']} steps; at "
                                 f"most k // 2 = {size // 2} (PyTorch's limit)")
            layer = FloatPool(names.make(kind, kind), kind[:3], size, options["stride"] or size,
                              options["padding"], f"layers entry {token!r}", in_steps=steps)
            steps = _steps_after(layer, steps, token)
            result.append(layer)
        elif token == "flatten":
            if steps is None or channels is None:
                raise ModelError("layers: flatten must follow a conv1d (the sequence layers "
                                 "give it its channels)")
            result.append(FloatFlatten(names.make("flatten", "flatten"), "layers entry "
                                       "'flatten'", steps, channels))
            time_major = isinstance(next(r for r in reversed(result[:-1])
                                         if not isinstance(r, FloatActivation)), FloatRecurrent)
            n_in, steps = steps * channels, None
        elif function in ACTIVATIONS and (not argument or function == "leaky_relu"):
            if not result:
                raise ModelError(f"layers must start with dense or conv1d, not {token!r}")
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
            raise ModelError(f"layers: unknown entry {token!r}; each is dense, conv1d[:options], "
                             f"maxpool:k=N, avgpool:k=N, flatten, batchnorm, lstm, gru or an "
                             f"activation "
                             f"({', '.join(ACTIVATIONS)}, leaky_relu=ALPHA)")
    if k != len(modules):
        rest = ", ".join(p for p, _, _ in modules[k:])
        raise ModelError(f"{path} has modules that layers does not use: {rest}")
    if not result:
        raise ModelError("layers describes no layer")
    return result


def _sequence_length(sequence_length, token) -> int:
    if sequence_length is None:
        raise ModelError(f"layers: {token!r} runs over sequences; give their length "
                         f"(--sequence-length N)")
    return sequence_length
