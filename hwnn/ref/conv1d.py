"""Bit-exact reference of ``Conv1d`` (each group's dense reference on gathered windows), and a
float64 reference with PyTorch's semantics.

Sequences are time-major: ``(steps, channels)`` for one sequence, ``(sequences, steps,
channels)`` for several of the same length. Results have the same rank.
"""

from __future__ import annotations

import numpy as np

from ..checks import ParameterValueError, check_integer
from ..fixed import real_array
from .dense import dense
from .windows import check_sequences, conv1d_window, gather_windows, weight_kernel_size

__all__ = ["conv1d", "conv1d_float"]


def conv1d(plan, x) -> np.ndarray:
    """Output codes of ``plan.out_format`` for input codes ``x`` of ``plan.in_format``.

    ``plan`` is a :class:`~hwnn.plans.conv1d.Conv1dPlan`; ``x`` has shape ``(steps,
    in_channels)`` or ``(sequences, steps, in_channels)``; the result ``(out_steps,
    out_channels)`` or ``(sequences, out_steps, out_channels)``, int64, ``out_steps =
    plan.out_length(steps)`` (0 for a sequence shorter than one window). Each group's output is
    :func:`hwnn.ref.dense.dense` of its plan on the tap-major window vectors, so the result is
    bit-exact exactly as the dense reference is.

    Raises
    ------
    TypeError
        ``x`` is not integer.
    ValueError
        ``x`` has the wrong shape or holds codes outside the input format.
    """
    x, batched = check_sequences(x, plan.in_channels, plan.in_format)
    windows = gather_windows(x, plan.window)
    sequences, out_steps = windows.shape[:2]
    width = plan.group_in_channels
    outputs = []
    for g, group in enumerate(plan.groups):
        vectors = windows[..., g * width:(g + 1) * width].reshape(-1, group.n_in)
        outputs.append(dense(group, vectors).reshape(sequences, out_steps, group.n_out))
    y = np.concatenate(outputs, axis=-1)
    return y if batched else y[0]


def conv1d_float(weight, bias, x, *, stride=1, dilation=1, padding="valid",
                 groups=1) -> np.ndarray:
    """PyTorch's ``Conv1d`` (zero padding) in float64, on time-major sequences.

    ``weight`` ``(out_channels, in_channels/groups, kernel_size)``, ``bias`` ``(out_channels,)``
    or None, ``x`` real ``(steps, in_channels)`` or ``(sequences, steps, in_channels)``; the
    window parameters as for :func:`hwnn.plans.conv1d.plan_conv1d`. Returns ``(out_steps,
    out_channels)`` (or with the sequences axis), ``out_steps`` 0 for a too short sequence.

    Raises
    ------
    TypeError, ValueError
        As :func:`~hwnn.plans.conv1d.plan_conv1d` for the layer parameters; ``x`` not real or of
        the wrong shape.
    """
    window = conv1d_window(weight_kernel_size(weight), stride=stride, dilation=dilation,
                           padding=padding)
    weight = real_array(weight, "weight")
    groups = check_integer(groups, "groups", minimum=1)
    out_channels, width = weight.shape[:2]
    if out_channels % groups:
        raise ParameterValueError("groups", f"groups must divide out_channels = {out_channels} "
                                            f"(weight.shape[0]), not {groups}")
    bias = np.zeros(out_channels) if bias is None else real_array(bias, "bias")
    if bias.shape != (out_channels,):
        raise ParameterValueError("bias", f"bias must have shape ({out_channels},), not "
                                          f"{bias.shape}")
    x, batched = check_sequences(x, width * groups)
    windows = gather_windows(x, window)
    rows = out_channels // groups
    y = np.concatenate(
        [np.einsum("stjc,ocj->sto", windows[..., g * width:(g + 1) * width],
                   weight[g * rows:(g + 1) * rows]) for g in range(groups)], axis=-1) + bias
    return y if batched else y[0]

