"""Sliding windows over time, shared by the sequence layers (convolution, pooling).

Sequences are time-major: ``(steps, channels)`` for one sequence, ``(sequences, steps,
channels)`` for several of the same length, the order a stream delivers them (one time step of
all channels per beat). A :class:`Window` says which input steps each output step reads
(PyTorch's ``stride``, ``dilation`` and zero padding); :func:`gather_windows` builds all of them
at once as a strided view. The plans of :mod:`hwnn.plans.conv1d` and :mod:`hwnn.plans.pool`
hold a :class:`Window`; it lives here so that the references need no plan module.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ..checks import (ParameterError, ParameterTypeError, ParameterValueError, check_integer)
from ..fixed import Format, real_array
from ._inputs import check_codes

__all__ = ["Window", "check_sequences", "conv1d_window", "gather_windows", "same_padding",
           "weight_kernel_size"]


def same_padding(kernel_size: int, dilation: int) -> tuple[int, int]:
    """PyTorch's ``padding="same"`` as ``(left, right)``: the total ``dilation·(kernel_size − 1)``
    split with ``left = total // 2`` and ``right = total − left``, so an odd total puts the extra
    step on the right (``torch.nn.modules.conv._ConvNd.__init__``)."""
    total = dilation * (kernel_size - 1)
    return total // 2, total - total // 2


@dataclass(frozen=True)
class Window:
    """Where the windows of a sliding-window layer over time lie (convolution or pooling).

    Output step ``t`` reads input steps ``t·stride − pad_left + j·dilation`` for
    ``j = 0 … kernel_size − 1``; steps outside the sequence are padding.
    """
    kernel_size: int
    stride: int
    dilation: int
    pad_left: int
    pad_right: int

    @property
    def padding(self) -> tuple[int, int]:
        """``(pad_left, pad_right)``."""
        return self.pad_left, self.pad_right

    @property
    def receptive_field(self) -> int:
        """Input steps one window spans, ``dilation·(kernel_size − 1) + 1``: the depth of the
        window buffer of a core."""
        return self.dilation * (self.kernel_size - 1) + 1

    def out_length(self, steps: int) -> int:
        """Output steps for a sequence of ``steps`` input steps: PyTorch's
        ``floor((steps + pad_left + pad_right − dilation·(kernel_size − 1) − 1) / stride) + 1``,
        but **0** (PyTorch raises instead) for a sequence too short for one window and for an
        empty one (whose windows would be padding only), so a sequence of any length is valid.

        Raises
        ------
        TypeError, ValueError
            ``steps`` is not a non-negative integer.
        """
        steps = check_integer(steps, "steps", minimum=0)
        span = steps + self.pad_left + self.pad_right - self.receptive_field
        return span // self.stride + 1 if span >= 0 and steps else 0


def _check_padding(padding, kernel_size: int, dilation: int, stride: int) -> tuple[int, int]:
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0
        if padding == "same":
            if stride != 1:
                raise ParameterValueError(
                    "padding", f"padding 'same' needs stride 1 (as in PyTorch: a strided "
                               f"output cannot have the input's length), not stride {stride}")
            return same_padding(kernel_size, dilation)
        raise ParameterValueError("padding", f"padding must be 'valid', 'same', a non-negative "
                                             f"integer or a (left, right) pair, not {padding!r}")
    if isinstance(padding, (tuple, list)):
        if len(padding) != 2:
            raise ParameterValueError("padding", f"padding must be a (left, right) pair, not "
                                                 f"{padding!r}")
        return tuple(check_integer(p, "padding", minimum=0) for p in padding)
    if isinstance(padding, numbers.Integral) and not isinstance(padding, bool):
        padding = check_integer(padding, "padding", minimum=0)
        return padding, padding
    raise ParameterTypeError("padding", f"padding must be 'valid', 'same', a non-negative "
                                        f"integer or a (left, right) pair, not {padding!r}")


def conv1d_window(kernel_size, *, stride=1, dilation=1, padding="valid") -> Window:
    """The checked :class:`Window` of a convolution (PyTorch ``Conv1d`` parameters).

    ``padding`` is ``"valid"`` (none), ``"same"`` (:func:`same_padding`; stride 1 only, as in
    PyTorch), an integer (that many zero steps on each side) or a ``(left, right)`` pair (ONNX
    ``pads``; PyTorch has no asymmetric padding).

    Raises
    ------
    ParameterTypeError, ParameterValueError
        ``kernel_size``, ``stride`` or ``dilation`` not a positive integer, ``padding`` not one
        of the forms above or negative, ``"same"`` with ``stride > 1``.
    """
    kernel_size = check_integer(kernel_size, "kernel_size", minimum=1)
    stride = check_integer(stride, "stride", minimum=1)
    dilation = check_integer(dilation, "dilation", minimum=1)
    left, right = _check_padding(padding, kernel_size, dilation, stride)
    return Window(kernel_size, stride, dilation, left, right)




def weight_kernel_size(weight) -> int:
    """``kernel_size`` of a PyTorch ``Conv1d`` weight, after checking it is a non-empty 3-D
    array ``(out_channels, in_channels/groups, kernel_size)``.

    Raises
    ------
    ParameterValueError
        Another shape (``parameter`` is ``"weight"``).
    """
    shape = np.shape(weight)
    if len(shape) != 3 or 0 in shape:
        raise ParameterValueError(
            "weight", f"weight must be a non-empty 3-D array (out_channels, in_channels/groups, "
                      f"kernel_size), not shape {shape}")
    return shape[2]


def check_sequences(x, channels: int, fmt: Format | None = None) -> tuple[np.ndarray, bool]:
    """``x`` as a 3-D array ``(sequences, steps, channels)`` and whether it was 3-D already.

    With ``fmt``, ``x`` must hold integer codes of ``fmt`` (returned as int64); without, real
    numbers (returned as float64).

    Raises
    ------
    ParameterTypeError
        Codes that are not integers, or reals that are not numbers (``parameter`` ``"x"``).
    ParameterValueError
        Not of shape ``(steps, channels)`` or ``(sequences, steps, channels)``, codes outside
        ``fmt``, NaN or infinity.
    """
    x = np.asarray(x)
    if x.ndim not in (2, 3) or x.shape[-1] != channels:
        raise ParameterValueError("x", f"x must have shape (steps, {channels}) or (sequences, "
                                       f"steps, {channels}), not {x.shape}")
    try:
        x = real_array(x, "x") if fmt is None else check_codes(fmt, x)
    except ParameterError as exc:
        raise type(exc)("x", str(exc)) from None
    return (x, True) if x.ndim == 3 else (x[np.newaxis], False)


def gather_windows(x: np.ndarray, window: Window, fill=0) -> np.ndarray:
    """Every window of ``x`` ``(sequences, steps, channels)``, as ``(sequences, out_steps,
    kernel_size, channels)``: entry ``[s, t, j, c] = x[s, t·stride − pad_left + j·dilation, c]``,
    ``fill`` where that step is padding. A strided view of one padded copy of ``x``."""
    sequences, steps, channels = x.shape
    out_steps = window.out_length(steps)
    if out_steps == 0:
        return np.zeros((sequences, 0, window.kernel_size, channels), dtype=x.dtype)
    padded = np.pad(x, ((0, 0), window.padding, (0, 0)), constant_values=fill)
    views = np.lib.stride_tricks.sliding_window_view(padded, window.receptive_field, axis=1)
    # views[s, p, c, r] = padded[s, p + r, c]; windows start every stride, taps every dilation.
    views = views[:, ::window.stride, :, ::window.dilation][:, :out_steps]
    return views.transpose(0, 1, 3, 2)
