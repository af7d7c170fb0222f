"""Bit-exact references of pooling over time and of flatten (time-major sequences)."""

from __future__ import annotations

import numpy as np

from ..checks import ParameterValueError
from ..fixed import Rounding, requantize
from .windows import check_sequences, gather_windows

__all__ = ["flatten", "pool1d"]


def pool1d(plan, x) -> np.ndarray:
    """Output codes of ``plan.out_format`` for input codes ``x`` of ``plan.in_format``.

    ``plan`` is a :class:`~hwnn.plans.pool.Pool1dPlan`; ``x`` has shape ``(steps, channels)``
    or ``(sequences, steps, channels)``; the result ``(out_steps, channels)`` or with the
    sequences axis, ``out_steps = plan.out_length(steps)``. Max: the largest code of each window
    (padding ``plan.fill``), requantized to ``out_format``. Avg: ``plan.divide`` of the exact
    window sum, fitted to ``out_format`` with ``plan.overflow``.

    Raises
    ------
    TypeError
        ``x`` is not integer.
    ValueError
        ``x`` has the wrong shape or holds codes outside the input format.
    """
    x, batched = check_sequences(x, plan.channels, plan.in_format)
    windows = gather_windows(x, plan.window, plan.fill)
    if plan.kind == "max":
        y = requantize(windows.max(axis=2, initial=plan.fill), plan.in_format, plan.out_format,
                       plan.rounding, plan.overflow)
    else:
        # The fit only: mean_format has out_format's fraction bits, so requantize shifts nothing.
        y = requantize(plan.divide(windows.sum(axis=2)), plan.mean_format, plan.out_format,
                       Rounding.TRUNC, plan.overflow)
    return y if batched else y[0]


def flatten(plan, x) -> np.ndarray:
    """PyTorch's ``nn.Flatten`` of ``x`` ``(steps, channels)`` or ``(sequences, steps,
    channels)``: ``(steps·channels,)`` or ``(sequences, steps·channels)`` in channel-major order,
    ``y[..., c·steps + t] = x[..., t, c]``. ``plan`` is a :class:`~hwnn.plans.pool.FlattenPlan`;
    the values (codes or reals) and their dtype are kept.

    Raises
    ------
    ParameterValueError
        ``x`` is not of shape ``(steps, channels)`` or ``(sequences, steps, channels)``.
    """
    x = np.asarray(x)
    if x.ndim not in (2, 3) or x.shape[-2:] != (plan.steps, plan.channels):
        raise ParameterValueError("x", f"x must have shape ({plan.steps}, {plan.channels}) or "
                                       f"(sequences, {plan.steps}, {plan.channels}), not "
                                       f"{x.shape}")
    return np.swapaxes(x, -1, -2).reshape(x.shape[:-2] + (plan.n_out,))
