"""The plan of a 1-D convolution over a sequence: PyTorch ``Conv1d`` as dense layers on windows.

Semantics are PyTorch's ``nn.Conv1d`` with ``padding_mode="zeros"``: weight layout
``(out_channels, in_channels / groups, kernel_size)``, output

    y[t, o] = b[o] + sum_{c, j} w[o, c, j] · x[t·stride − pad_left + j·dilation, g·Cg + c]

for ``o`` in group ``g = o // (out_channels / groups)``, ``Cg = in_channels / groups``, and
``x`` zero outside ``0 … steps − 1``. Sequences are stored time-major, ``(steps, channels)``,
the order a stream delivers them (one time step of all channels per beat).

**Windows are dense input vectors.** Output step ``t`` reads the window of input steps
``t·stride − pad_left + j·dilation`` for taps ``j = 0 … kernel_size − 1`` (oldest first). Group
``g``'s window vector has ``kernel_size·Cg`` entries in **tap-major** order,

    window[j·Cg + c] = x[t·stride − pad_left + j·dilation, g·Cg + c],

which is what a window buffer produces without any reordering: a shift register of
``receptive_field`` full time steps (one shifted in per input beat), of which every
``dilation``-th entry, oldest first, concatenated, is the window of all channels; group ``g``
takes channels ``g·Cg … g·Cg + Cg − 1`` of each tap. Each group is then exactly a dense layer
(:class:`~hwnn.plans.dense.DensePlan`, built by :func:`~hwnn.plans.dense.plan_dense`) whose
weight matrix is PyTorch's weight with its last two axes swapped and flattened:
``W_g[r, j·Cg + c] = w[g·Og + r, c, j]`` (``Og = out_channels / groups``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..checks import ParameterError, ParameterValueError, check_integer
from ..fixed import SQ, Format, real_array
from ..ref.windows import Window, conv1d_window, weight_kernel_size
from ._windowed import Windowed
from .dense import DensePlan, check_weight_count, plan_dense

__all__ = ["Conv1dPlan", "plan_conv1d"]


@dataclass(frozen=True, eq=False)
class Conv1dPlan(Windowed):
    """A quantized ``Conv1d``: its :class:`Window` and one dense plan per group.

    ``groups[g]`` is the :class:`~hwnn.plans.dense.DensePlan` of group ``g`` over its tap-major
    window vector (module docstring), ``n_in = kernel_size·in_channels/groups``,
    ``n_out = out_channels/groups``; its outputs are output channels ``g·n_out … g·n_out +
    n_out − 1``. Every group plan has the same formats, modes and **the same accumulator
    format** (the widest any group needs), so one MAC array time-shared by the groups has one
    accumulator width; widening an exact accumulator changes no result. Build with
    :func:`plan_conv1d`.
    """
    window: Window
    in_channels: int
    out_channels: int
    groups: tuple

    @property
    def n_groups(self) -> int:
        return len(self.groups)

    @property
    def group_in_channels(self) -> int:
        return self.in_channels // self.n_groups

    @property
    def group_out_channels(self) -> int:
        return self.out_channels // self.n_groups

    @property
    def in_format(self) -> Format:
        return self.groups[0].in_format

    @property
    def out_format(self) -> Format:
        return self.groups[0].out_format

    @property
    def weight_format(self) -> Format:
        return self.groups[0].weight_format

    @property
    def acc_format(self) -> Format:
        return self.groups[0].acc_format

    @property
    def saturated_weights(self) -> int:
        """How many float weights were clamped to the weight format (all groups)."""
        return sum(plan.saturated_weights for plan in self.groups)

    def weight(self) -> np.ndarray:
        """The weight codes in PyTorch's layout ``(out_channels, in_channels/groups, k)``."""
        rows = np.concatenate([plan.weight for plan in self.groups])
        shape = (self.out_channels, self.kernel_size, self.group_in_channels)
        return rows.reshape(shape).transpose(0, 2, 1).copy()

    def bias(self) -> np.ndarray:
        """The bias codes (``acc_format``'s scale), one per output channel."""
        return np.concatenate([plan.bias for plan in self.groups])

    def describe(self) -> dict:
        """A JSON-serializable summary (shape, window, formats, modes)."""
        dense = self.groups[0].describe()
        dense.pop("n_in"), dense.pop("n_out")
        dense["saturated_weights"] = self.saturated_weights
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "stride": self.stride,
                "dilation": self.dilation, "padding": list(self.padding),
                "groups": self.n_groups, **dense}


def _group_plan(weight, bias, g, *, group_out, group_in, kernel, **options) -> DensePlan:
    """``plan_dense`` of group ``g``: rows ``g·group_out …`` of the tap-major weight matrix."""
    rows = slice(g * group_out, (g + 1) * group_out)
    matrix = weight[rows].transpose(0, 2, 1).reshape(group_out, kernel * group_in)
    try:
        return plan_dense(matrix, bias[rows], **options)
    except ParameterError as exc:
        if exc.parameter != "weight":
            raise
        # plan_dense names an entry of the group's matrix; say how it maps to PyTorch's layout.
        raise ParameterValueError(
            "weight", f"group {g} (output channels {rows.start} … {rows.stop - 1}; weight[r, q] "
                      f"below is PyTorch's weight[{rows.start} + r, q % {group_in}, "
                      f"q // {group_in}]): {exc}") from exc


def plan_conv1d(weight, bias=None, *, in_format, weight_format, out_format, stride=1,
                dilation=1, padding="valid", groups=1, rounding="half_up", overflow="sat",
                weight_quantizer="fixed", saturate_weights=False) -> Conv1dPlan:
    """Quantize a ``Conv1d`` layer: one :func:`~hwnn.plans.dense.plan_dense` per group.

    Parameters
    ----------
    weight : array (out_channels, in_channels/groups, kernel_size) of float
        PyTorch's ``Conv1d.weight``; ``in_channels = weight.shape[1]·groups``.
    bias : array (out_channels,) of float, optional
        Default zeros.
    in_format, weight_format, out_format, rounding, overflow, weight_quantizer, saturate_weights
        As for :func:`~hwnn.plans.dense.plan_dense`, applied to every group.
    stride, dilation, padding
        As in PyTorch (:func:`hwnn.ref.windows.conv1d_window`): ``padding`` is ``"valid"``,
        ``"same"`` (stride 1 only; the extra step of an odd total goes right), an integer, or
        ``(left, right)``.
    groups : int
        Divides ``out_channels``; ``groups = in_channels`` with ``weight.shape[1] == 1`` is a
        depthwise convolution.

    Raises
    ------
    TypeError
        A parameter of the wrong type (formats, modes, integers, non-numeric weights).
    ValueError
        Weight not a non-empty 3-D array, more than
        :data:`~hwnn.plans.dense.MAX_WEIGHTS` weights, ``groups`` not dividing
        ``out_channels``, a bias of the wrong shape, a bad window parameter
        (:func:`hwnn.ref.windows.conv1d_window`), and every error of :func:`~hwnn.plans.dense.plan_dense` (a weight that does not
        fit names its group and how the index maps to PyTorch's layout). All are
        :mod:`hwnn.checks` errors carrying ``parameter``, except plan_dense's too-wide
        accumulator.
    """
    window = conv1d_window(weight_kernel_size(weight), stride=stride, dilation=dilation,
                           padding=padding)
    groups = check_integer(groups, "groups", minimum=1)
    out_channels, group_in, kernel = np.shape(weight)
    check_weight_count(out_channels, group_in * kernel, "weight",
                       "weight's out_channels·in_channels/groups·kernel_size")
    if out_channels % groups:
        raise ParameterValueError("groups", f"groups must divide out_channels = {out_channels} "
                                            f"(weight.shape[0]), not {groups}")
    weight = real_array(weight, "weight")
    bias = real_array(np.zeros(out_channels) if bias is None else bias, "bias")
    if bias.shape != (out_channels,):
        raise ParameterValueError("bias", f"bias must have shape ({out_channels},) to match "
                                          f"weight {weight.shape}, not {bias.shape}")
    options = dict(in_format=in_format, weight_format=weight_format, out_format=out_format,
                   rounding=rounding, overflow=overflow, weight_quantizer=weight_quantizer,
                   saturate_weights=saturate_weights)
    plans = [_group_plan(weight, bias, g, group_out=out_channels // groups, group_in=group_in,
                         kernel=kernel, **options) for g in range(groups)]
    acc_i = max(plan.acc_format.i for plan in plans)
    # The widest accumulator is some group's own, so plan_dense has checked out_format with it.
    acc_format = SQ(acc_i, plans[0].acc_format.f)
    plans = tuple(dataclasses.replace(plan, acc_format=acc_format) for plan in plans)
    return Conv1dPlan(window=window, in_channels=group_in * groups, out_channels=out_channels,
                      groups=plans)
