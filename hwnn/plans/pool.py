"""Plans of the small sequence layers: pooling over time, flatten, and the last step.

Sequences are time-major ``(steps, channels)`` as in :mod:`hwnn.plans.conv1d`. Pooling follows
PyTorch's ``MaxPool1d``/``AvgPool1d`` (``ceil_mode=False``, ``count_include_pad=True``, no
dilation); flatten follows ``nn.Flatten`` after a ``Conv1d`` (PyTorch's ``(channels, steps)``
layout, so channel-major); the last step of each sequence is what a recurrent layer with
``return_sequences = false`` (Keras) or PyTorch's ``output[:, -1]`` gives.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..checks import ParameterValueError, check_choice, check_enum, check_integer
from ..fixed import (MAX_WIDTH, SQ, UQ, Format, Overflow, Rounding, check_format,
                     signed_bits_for)
from ..ref.integers import divide_rounded
from ..ref.windows import Window
from ._windowed import Windowed

__all__ = ["POOL_KINDS", "FlattenPlan", "LastStepPlan", "Pool1dPlan", "plan_flatten",
           "plan_last_step", "plan_pool1d"]

#: Pooling kinds of :func:`plan_pool1d`.
POOL_KINDS = ("max", "avg")


@dataclass(frozen=True)
class Pool1dPlan(Windowed):
    """Pooling over time, per channel, as integers. Build with :func:`plan_pool1d`.

    ``max``: the largest code of each window (padding is ``in_format.min_int``, which never wins
    because every window of a non-empty sequence holds a real step), then requantized to
    ``out_format`` (the identity when it is ``in_format``, the default).

    ``avg``: the exact window sum ``S`` (codes of ``sum_format``, padding counted as zeros and
    the divisor always ``kernel_size``, PyTorch's ``count_include_pad=True``) becomes
    ``divide_rounded(S << left_shift, divisor, rounding)`` with
    ``left_shift = max(0, out.f − in.f)`` and ``divisor = kernel_size·2**max(0, in.f − out.f)``
    — the real mean ``S·2**-in.f / kernel_size`` rounded once to ``out_format``'s resolution —
    a code of ``mean_format``, fitted to ``out_format`` with ``overflow``. When ``divisor`` is a
    power of two the division is an arithmetic shift with the same rounding
    (:func:`hwnn.fixed.requantize` gives identical codes).
    """
    kind: str
    window: Window
    channels: int
    in_format: Format
    out_format: Format
    rounding: Rounding
    overflow: Overflow
    #: avg only (None for max): the exact window sums, the quotients before the fit.
    sum_format: Format | None = None
    mean_format: Format | None = None
    left_shift: int = 0
    divisor: int = 1

    @property
    def fill(self) -> int:
        """The code a padding step contributes: ``in_format.min_int`` (max) or 0 (avg)."""
        return self.in_format.min_int if self.kind == "max" else 0

    def divide(self, sums) -> np.ndarray:
        """avg: window sums (codes of ``sum_format``) to codes of ``mean_format``."""
        return divide_rounded(np.asarray(sums, dtype=np.int64) << np.int64(self.left_shift),
                              self.divisor, self.rounding)

    def describe(self) -> dict:
        """A JSON-serializable summary."""
        summary = {"kind": self.kind, "kernel_size": self.kernel_size, "stride": self.stride,
                   "padding": list(self.padding), "channels": self.channels,
                   "in_format": str(self.in_format), "out_format": str(self.out_format),
                   "rounding": self.rounding.value, "overflow": self.overflow.value}
        if self.kind == "avg":
            summary.update(sum_format=str(self.sum_format), mean_format=str(self.mean_format),
                           left_shift=self.left_shift, divisor=self.divisor)
        return summary


def plan_pool1d(kind, kernel_size, stride=None, padding=0, *, channels, in_format,
                out_format=None, rounding="half_up", overflow="sat") -> Pool1dPlan:
    """Plan ``MaxPool1d``/``AvgPool1d`` over time on ``channels`` channels.

    Parameters
    ----------
    kind : "max" or "avg"
    kernel_size, stride, padding : int
        ``stride`` defaults to ``kernel_size``; ``padding`` steps on each side, at most
        ``kernel_size // 2`` (PyTorch's limit).
    channels : int
    in_format, out_format : Format or str
        ``out_format`` defaults to ``in_format``.
    rounding, overflow
        How the mean (avg) or the requantize to ``out_format`` (max) rounds and fits.

    Raises
    ------
    TypeError, ValueError
        A bad parameter (:mod:`hwnn.checks` errors naming it); ``padding > kernel_size // 2``;
        an avg whose shifted sums or divisor exceed :data:`~hwnn.fixed.MAX_WIDTH` bits
        (``out_format`` far finer or coarser than ``in_format``).
    """
    kind = check_choice(kind, "kind", POOL_KINDS)
    kernel_size = check_integer(kernel_size, "kernel_size", minimum=1)
    stride = kernel_size if stride is None else check_integer(stride, "stride", minimum=1)
    padding = check_integer(padding, "padding", minimum=0, maximum=kernel_size // 2)
    channels = check_integer(channels, "channels", minimum=1)
    in_format = check_format(in_format, "in_format")
    out_format = in_format if out_format is None else check_format(out_format, "out_format")
    rounding = check_enum(Rounding, rounding, "rounding")
    overflow = check_enum(Overflow, overflow, "overflow")
    window = Window(kernel_size, stride, 1, padding, padding)
    plan = Pool1dPlan(kind, window, channels, in_format, out_format, rounding, overflow)
    if kind == "max":
        return plan
    lo, hi = kernel_size * min(in_format.min_int, 0), kernel_size * in_format.max_int
    sum_width = signed_bits_for(lo, hi)
    sum_format = (SQ if in_format.signed else UQ)(sum_width - in_format.f - (not in_format.signed),
                                                  in_format.f)
    left_shift = max(0, out_format.f - in_format.f)
    if sum_width + left_shift > MAX_WIDTH:
        raise ParameterValueError(
            "out_format", f"out_format must have at most {in_format.f + MAX_WIDTH - sum_width} "
                          f"fraction bits for an average of {kernel_size} codes of {in_format} "
                          f"(the shifted sums must fit MAX_WIDTH = {MAX_WIDTH} bits), not "
                          f"{out_format}")
    right_shift = max(0, in_format.f - out_format.f)
    if right_shift + kernel_size.bit_length() > MAX_WIDTH:
        raise ParameterValueError(
            "out_format", f"out_format must have at least "
                          f"{in_format.f - MAX_WIDTH + kernel_size.bit_length()} fraction bits "
                          f"for an average of {kernel_size} codes of {in_format} (the divisor must fit MAX_WIDTH = {MAX_WIDTH} bits), not {out_format}")
    plan = dataclasses.replace(plan, sum_format=sum_format, left_shift=left_shift,
                               divisor=kernel_size << right_shift)
    # Rounded division is monotonic, so the extreme sums give the extreme means.
    mean_lo, mean_hi = (int(v) for v in plan.divide([lo, hi]))
    mean_width = max(2, signed_bits_for(mean_lo, mean_hi))
    return dataclasses.replace(plan, mean_format=SQ(mean_width - out_format.f, out_format.f))


@dataclass(frozen=True)
class FlattenPlan:
    """``nn.Flatten`` after a ``Conv1d``: ``(steps, channels)`` to ``steps·channels`` values in
    PyTorch's **channel-major** order, ``flat[c·steps + t] = x[t, c]``.

    A stream delivers time-major (``t·channels + c``). A core has two ways to match PyTorch:
    buffer the whole sequence and read it out transposed (``steps·channels`` words), or — what
    costs nothing — keep the stream order and permute the columns of the following dense
    layer's weight (:meth:`stream_weight`), since a dense layer's column order is free.
    """
    steps: int
    channels: int

    @property
    def n_out(self) -> int:
        return self.steps * self.channels

    def stream_order(self) -> np.ndarray:
        """``order[t·channels + c] = c·steps + t``: the flat (PyTorch) index of each value in
        stream order."""
        return np.arange(self.n_out).reshape(self.channels, self.steps).T.ravel()

    def stream_weight(self, weight) -> np.ndarray:
        """The weight ``(n_out, steps·channels)`` of a dense layer that follows this flatten,
        with its columns reordered to take the time-major stream vector directly:
        ``stream_weight(W) @ x.ravel() == W @ flatten(x)``.

        Raises
        ------
        ParameterValueError
            ``weight`` is not 2-D with ``steps·channels`` columns.
        """
        weight = np.asarray(weight)
        if weight.ndim != 2 or weight.shape[1] != self.n_out:
            raise ParameterValueError("weight", f"weight must have shape (n_out, {self.n_out}), "
                                                f"not {weight.shape}")
        return weight[:, self.stream_order()]


def plan_flatten(steps, channels) -> FlattenPlan:
    """A :class:`FlattenPlan` of sequences of exactly ``steps`` steps of ``channels`` channels
    (a flatten feeding a dense layer fixes the sequence length).

    Raises
    ------
    TypeError, ValueError
        ``steps`` or ``channels`` not a positive integer.
    """
    return FlattenPlan(check_integer(steps, "steps", minimum=1),
                       check_integer(channels, "channels", minimum=1))


@dataclass(frozen=True)
class LastStepPlan:
    """Each sequence of ``channels`` values per step reduced to its last step's vector (of any
    length). ``steps`` is the sequence length the network expects: it sets the rate of the
    layers after it (one vector per ``steps`` input steps), not what the layer accepts."""
    channels: int
    steps: int

    @property
    def n_out(self) -> int:
        return self.channels


def plan_last_step(channels, steps) -> LastStepPlan:
    """A :class:`LastStepPlan` of ``channels`` channels for sequences of ``steps`` steps.

    Raises
    ------
    TypeError, ValueError
        ``channels`` or ``steps`` not a positive integer.
    """
    return LastStepPlan(check_integer(channels, "channels", minimum=1),
                        check_integer(steps, "steps", minimum=1))
