"""Import trained models as ``network`` specs: ONNX graphs and PyTorch state_dicts (``.npz``).

:func:`import_model` reads a model into float layers (:mod:`.onnx`, :mod:`.torch_npz`), chooses
every format within a bit budget (:mod:`.quantize`, whose docstring states the rule) and writes
``spec.toml`` and ``<name>.npz`` (the float weights, ``<layer>.weight`` and ``<layer>.bias``)
beside it. Each choice is a line of the spec with a comment saying why; edit and re-run.

A 1-D CNN (Conv, pooling, Flatten, then dense layers) becomes ``conv1d``, ``pool`` and
``flatten`` layers (:mod:`hwnn.spec.sequence`), an ONNX ``LSTM``/``GRU`` node or a state_dict's
``lstm``/``gru`` entry an ``lstm``/``gru`` layer (:mod:`hwnn.spec.recurrent`; with
``bidirectional = true`` and ``num_layers = N`` as the model has them), and the spec's
``sequence_length``: the
model's static time dimension or the ``sequence_length`` argument (``--sequence-length N``).
Its weights keep PyTorch's layouts (a conv weight ``(out, in/groups, k)``; the dense layer
after the flatten channel-major, which the spec loader permutes). hwnn's streams are
time-major: ``hwnn sim --inputs`` and calibration data take ``(sequences, steps, channels)``,
the transpose of PyTorch's ``(batch, channels, steps)``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..export import check_module_name
from .model import (SEQUENCE_TYPES, FloatActivation, FloatBinaryDense, FloatConv1d, FloatDense,
                    FloatFlatten, FloatRecurrent, FloatSign, ModelError, UnsupportedLayer)
from .binary_spec import (binary_layer_lines, bit_input_dense, takes_bits, with_input_sign,
                          written_as_dense)
from .onnx import read_onnx
from .quantize import Choice, choose_formats, range_format
from .torch_npz import read_state_dict

__all__ = ["ModelError", "UnsupportedLayer", "import_model", "read_model", "write_spec"]


def read_model(path, layers=None, sequence_length=None) -> tuple[list, str]:
    """``(float layers, default name)`` of the model at ``path``: ``.onnx`` or a state_dict
    ``.npz`` (which needs ``layers``, see :mod:`hwnn.io.torch_npz`). ``sequence_length`` is
    the steps of a CNN's input sequences (required where the model does not say it).

    Raises
    ------
    ModelError
        An unknown suffix, ``layers`` given for ONNX or missing for ``.npz``,
        ``sequence_length`` not a positive integer, or what the readers raise.
    """
    if sequence_length is not None and (not isinstance(sequence_length, int) or
                                        isinstance(sequence_length, bool) or
                                        sequence_length < 1):
        raise ModelError(f"sequence_length must be a positive integer, not "
                         f"{sequence_length!r}")
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        if layers is not None:
            raise ModelError("layers applies to a state_dict .npz; an ONNX graph has its own")
        model, graph_name = read_onnx(path, sequence_length)
        return model, graph_name or path.stem
    if suffix == ".npz":
        if layers is None:
            raise ModelError(f"{path}: a state_dict has no activations; describe the chain "
                             f"with layers, e.g. --layers dense,relu,dense,sigmoid")
        return read_state_dict(path, layers, sequence_length), path.stem
    raise ModelError(f"{path}: the model must be an .onnx file or a state_dict .npz, not "
                     f"{suffix or 'a file without suffix'!r}")


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _comment(text: str) -> str:
    return "# " + " ".join(text.split())  # one line: no newline may end the comment early


def _initial_state_lines(layer) -> list[str]:
    """The spec lines of a layer that loads each sequence's initial state."""
    shape = "(sequences, 2, hidden)" if layer.bidirectional else "(sequences, hidden)"
    arrays = f"h0_{layer.name}" + (f", c0_{layer.name}" if layer.kind == "lstm" else "")
    return [_comment(f"each sequence starts from a loaded state, as from the {layer.initial_state} "
                     f"(directions, batch, hidden): the network's stream i_state_{layer.name}; "
                     f"`hwnn sim --initial-state S.npz` takes arrays {arrays} of shape {shape}, "
                     f"each the ONNX rows with the batch first (x.transpose(1, 0, 2), "
                     f"squeezed to (sequences, hidden) for one direction)"),
            "initial_state = true"]


def _input_width(layers) -> int:
    """The width of one input vector: the first layer with weights reads it (a sign keeps
    it)."""
    return next(layer for layer in layers if not isinstance(layer, FloatSign)).weight.shape[1]


def write_spec(layers, in_choice, choices, spec_path, name: str, bits: int, source: str):
    """Write the network spec at ``spec_path`` and its weights ``<name>.npz`` beside it.

    Returns ``(spec_path, npz_path)``.
    """
    spec_path = Path(spec_path)
    npz_path = spec_path.with_name(f"{name}.npz")
    lines = [_comment(f"Imported by `hwnn import` from {source} with a budget of {bits} bits per "
                      f"weight and activation."),
             _comment("Formats: weights get the fewest integer bits that hold every rounded "
                      "weight; activations the fewest that hold their value range (see "
                      "hwnn/io/quantize.py). Every line below can be edited."),
             "", "[core]", 'kind = "network"', f"name = {_toml_string(name)}", "", "[params]",
             _comment(in_choice.why), f'in_format = "{in_choice.format}"',
             f"weights = {_toml_string(npz_path.name)}"]
    if isinstance(layers[0], SEQUENCE_TYPES):
        lines += [_comment("time steps of every input sequence; inputs (hwnn sim --inputs) are "
                           "(sequences, steps, channels), the transpose of PyTorch's (batch, "
                           "channels, steps)"), f"sequence_length = {layers[0].in_steps}"]
    lines += [_comment('dense outputs are narrowed with the defaults rounding = "half_up" and '
                        'overflow = "sat" (set them per layer to change them); set target_ii = N '
                        'to fold the dense layers for N cycles per vector')]
    arrays, in_bits = {}, in_choice.format.width  # the width of the values a layer takes
    for index, (layer, choice, bits_in) in enumerate(zip(layers, choices, takes_bits(layers))):
        lines += ["", "[[params.layers]]", _comment(f"from {layer.source}")]
        if isinstance(layer, (FloatSign, FloatBinaryDense)) and not written_as_dense(layer):
            lanes = _input_width(layers) if index == 0 else None
            kind, more, layer_arrays = binary_layer_lines(layer, lanes, in_bits, _comment)
            lines += [f'kind = "{kind}"', f"name = {_toml_string(layer.name)}", *more]
            arrays.update(layer_arrays)
        elif isinstance(layer, (FloatDense, FloatConv1d, FloatBinaryDense)):
            kind = "conv1d" if isinstance(layer, FloatConv1d) else "dense"
            lines += [f'kind = "{kind}"', f"name = {_toml_string(layer.name)}"]
            weight, bias = layer.weight, layer.bias
            if bits_in:
                weight, bias = bit_input_dense(weight, bias)
                lines.append(_comment("takes the bits b of a binarized layer for -1/+1 = 2b - 1: "
                                      "weights 2W and bias c - W·1 (exactly W(2b - 1) + c)"))
            arrays[f"{layer.name}.weight"] = weight
            arrays[f"{layer.name}.bias"] = bias
            if kind == "conv1d":
                padding = layer.padding if isinstance(layer.padding, int) else '"same"'
                lines += [f"stride = {layer.stride}", f"dilation = {layer.dilation}",
                          f"padding = {padding}", f"groups = {layer.groups}"]
        elif isinstance(layer, FloatActivation):
            lines += ['kind = "activation"', f"name = {_toml_string(layer.name)}",
                      f'function = "{layer.function}"']
            if layer.leaky_shift is not None:
                lines.append(f"leaky_shift = {layer.leaky_shift}  "
                             f"# negative slope 2**-{layer.leaky_shift}")
        elif isinstance(layer, FloatRecurrent):
            lines += [f'kind = "{layer.kind}"', f"name = {_toml_string(layer.name)}",
                      f"hidden_size = {layer.hidden_size}",
                      *(["bidirectional = true"] if layer.bidirectional else []),
                      *([f"num_layers = {layer.num_layers}"] if layer.num_layers > 1 else []),
                      *([] if layer.return_sequences else
                        [_comment("only each sequence's last output step (output[:, -1]: "
                                  "h_n, Y_h of one direction)"),
                         "return_sequences = false"]),
                      *([] if layer.reset_after else
                        [_comment("the original GRU (linear_before_reset = 0)"),
                         "reset_after = false"]),
                      *(_initial_state_lines(layer) if layer.initial_state else []),
                      _comment("weights: PyTorch's names under the layer's; method = \"pwl\" "
                               "(or lut, hard) and any stage's format (state_format, "
                               "gate_format, ...) may be set here")]
            arrays.update({f"{layer.name}.{key}": array
                           for key, array in layer.weights.items()})
        elif isinstance(layer, FloatFlatten):
            lines += ['kind = "flatten"', f"name = {_toml_string(layer.name)}",
                      _comment("the next dense layer's weights are PyTorch's (channel-major); "
                               "the spec loader permutes them to the stream's order")]
        else:
            lines += ['kind = "pool"', f"name = {_toml_string(layer.name)}",
                      f'pool = "{layer.kind}"', f"kernel_size = {layer.kernel_size}",
                      f"stride = {layer.stride}", f"padding = {layer.padding}",
                      _comment("keeps its input's format: a maximum or mean of codes is one")]
        for key, made in choice.items():
            value = made.format if isinstance(made.format, int) else f'"{made.format}"'
            lines += [_comment(made.why), f"{key} = {value}"]
        if "out_format" in choice:
            in_bits = choice["out_format"].format.width
    spec_path.write_text("\n".join(lines) + "\n")
    with npz_path.open("wb") as file:
        np.savez(file, **arrays)
    return spec_path, npz_path


def import_model(model, output, *, bits: int = 8, calibration=None, name=None, layers=None,
                 sequence_length=None, binary_input: bool = False):
    """Import ``model`` (``.onnx`` or state_dict ``.npz``) as the network spec ``output``.

    Parameters
    ----------
    model : path
    output : path of the spec to write (``.toml``); the weights go to ``<name>.npz`` beside it
    bits : int
        Bit budget of every weight and activation (2 to 24).
    calibration : path of an ``.npy`` array (n, n_in), optional
        Inputs whose float outputs set the activation ranges (default: inputs in [-1, 1)); for
        a CNN time-major sequences ``(n, steps, channels)``.
    name : str, optional
        The network's name (a Verilog identifier); default: the graph's or file's name.
    layers : str, optional
        The chain of a state_dict (:mod:`hwnn.io.torch_npz`).
    sequence_length : int, optional
        Time steps of a CNN's input sequences: required for a state_dict CNN and for an ONNX
        graph whose time dimension is symbolic; must agree with a static one.
    binary_input : bool
        The model's inputs are −1/+1 (a BNN without a ``Sign`` at its input): a sign layer
        binarizes them (``x ≥ 0`` is +1, exact on ±1) so that the first layer takes bits
        (:func:`hwnn.io.binary_spec.with_input_sign`).

    Returns ``(spec_path, npz_path)``.

    Raises
    ------
    ModelError
        Anything the model, ``bits``, the calibration data or ``name`` make impossible; the
        message names the node, array or value.
    OSError
        A file cannot be read or written.
    """
    float_layers, default = read_model(model, layers, sequence_length)
    if binary_input:
        float_layers = with_input_sign(float_layers)
    takes_bits(float_layers)  # refuses layers that would take a binarized layer's ±1 values
    if name is None:
        name = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", default)).strip("_") or "model"
        name = name if not name[0].isdigit() else f"model_{name}"
    try:
        check_module_name(name)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"name: {exc}") from None
    if Path(output).with_name(f"{name}.npz").resolve() == Path(model).resolve():
        raise ModelError(f"the weights {name}.npz would overwrite the model {model}; give "
                         f"another name")
    x = None
    if calibration is not None:
        try:
            x = np.load(calibration, allow_pickle=False)
        except ValueError as exc:
            raise ModelError(f"calibration {calibration}: not an .npy array ({exc})") from None
    in_choice, choices = choose_formats(float_layers, bits, x)
    if binary_input and x is None:  # [-1, 1) would saturate +1 (harmless before a sign, but noted)
        fmt = range_format(-1.0, 1.0, bits)
        in_choice = Choice(fmt, f"inputs -1/+1 (binary_input) -> {fmt}: the fewest integer bits "
                                f"of {bits} that hold both")
    return write_spec(float_layers, in_choice, choices, output, name, bits, Path(model).name)
