"""Threshold plans: a monotonic activation of an integer, as ascending integer thresholds.

Semantics (what :func:`hwnn.ref.binary.multithreshold` and the cores compute): per channel,
``L = 2**k − 1`` ascending thresholds ``T_1 ≤ … ≤ T_L`` (``k`` the output width) and a
direction; with ``c = #{i : T_i ≤ s}`` the output code is ``out.min_int + c`` (increasing) or
``out.max_int − c`` (decreasing). Thresholds lie in ``[in.min_int, in.max_int + 1]``: ``T_i =
in.min_int`` is a level every input reaches, ``T_i = in.max_int + 1`` one that none does, so a
constant output needs no special case and no threshold is wider than one bit more than ``s``.

Construction (:func:`plan_thresholds`): for an increasing ``f``, ``T_i`` is the smallest
integer ``s`` with ``f(s) ≥ out.min_int + i``; for a decreasing one the smallest with ``f(s) ≤
out.max_int − i``. Each is found by bisection over the integer input range, for every channel
and level at once. If ``f`` is monotonic, the count equals ``f`` on every input by
construction: for increasing ``f``, ``f(s) ≥ min + i ⇔ s ≥ T_i``, so ``c = f(s) − min``. The
plan checks ``f`` on every input code when that is at most :data:`MAX_CHECKED` evaluations (so a
non-monotonic function is rejected, not silently approximated), else at every threshold and the
code below it.

Batch norm + sign (:func:`plan_batchnorm_sign`) is the one-bit case: ``f`` is the float64
decision of :func:`hwnn.ref.binary.batchnorm_sign` (bit 1 = +1 where ``γ·(s − μ)/√(σ² + ε) + β ≥
0``, ties to +1 as FINN and Brevitas do). That decision is monotonic in ``s`` in floating point
too: ``s − μ``, the product by ``γ``, the division by the positive ``√(σ² + ε)`` and the sum with
``β`` are each correctly rounded, and rounding is monotonic, so the computed value is
non-decreasing in ``s`` for ``γ > 0``, non-increasing for ``γ < 0`` and constant (``β``, signed
zero included, which compares ``≥ 0``) for ``γ = 0``. Hence the folded comparison ``s ≥ T``
(``γ > 0``), ``s ≤ T − 1`` i.e. ``not s ≥ T`` (``γ < 0``) or the constant ``sign(β)`` (``γ =
0``, ``T`` at an end of the range) equals the float decision on every integer ``s``, and the
plan's check confirms it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import ParameterTypeError, ParameterValueError, check_integer
from ..fixed import UQ, Format, check_format, to_float
from ..ref.binary import batchnorm_sign, multithreshold

__all__ = ["ThresholdPlan", "plan_thresholds", "plan_batchnorm_sign", "first_reaching",
           "MAX_OUT_WIDTH", "MAX_IN_WIDTH", "MAX_CHECKED"]

#: Widest output: 2**8 − 1 = 255 comparators per channel is already more than a LUT budget.
MAX_OUT_WIDTH = 8
#: Widest input: every integer is exact in float64 (batch norm's model) and ``max_int + 1``
#: still fits int64.
MAX_IN_WIDTH = 53
#: Most evaluations of the activation for the check on every input code of every channel.
MAX_CHECKED = 1 << 22


def _check_formats(in_format, out_format) -> tuple[Format, Format]:
    in_format = check_format(in_format, "in_format")
    out_format = check_format(out_format, "out_format")
    if in_format.width > MAX_IN_WIDTH:
        raise ParameterValueError("in_format", f"in_format must be at most {MAX_IN_WIDTH} "
                                               f"bits wide, not {in_format}")
    if out_format.width > MAX_OUT_WIDTH:
        raise ParameterValueError("out_format", f"out_format must be at most {MAX_OUT_WIDTH} "
                                                f"bits wide (2**k - 1 thresholds), not "
                                                f"{out_format}")
    return in_format, out_format


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class ThresholdPlan:
    """Per channel, ``2**k − 1`` ascending thresholds and a direction (module docstring).

    ``thresholds`` is int64 of shape ``(channels, 2**k − 1)`` with values in
    ``[in_format.min_int, in_format.max_int + 1]``; ``descending`` is bool of shape
    ``(channels,)``; ``k`` is ``out_format.width``. ``source`` says what the thresholds were
    folded from.

    Raises
    ------
    TypeError, ValueError
        A field has the wrong type, shape or value (thresholds not ascending or out of range,
        an output wider than :data:`MAX_OUT_WIDTH` bits, an input wider than
        :data:`MAX_IN_WIDTH`).
    """
    #: An activation plan's method name: a network's activation layer may hold a threshold plan.
    method = "threshold"

    in_format: Format
    out_format: Format
    thresholds: np.ndarray
    descending: np.ndarray
    source: str = "function"

    def __post_init__(self):
        in_format, out_format = _check_formats(self.in_format, self.out_format)
        thresholds = np.array(self.thresholds)
        if thresholds.dtype == np.bool_ or not np.issubdtype(thresholds.dtype, np.integer):
            raise ParameterTypeError("thresholds", f"thresholds must be integers, not dtype "
                                                   f"{thresholds.dtype}")
        levels = (1 << out_format.width) - 1
        if thresholds.ndim != 2 or thresholds.shape[0] < 1 or thresholds.shape[1] != levels:
            raise ParameterValueError("thresholds", f"thresholds must have shape (channels, "
                                                    f"{levels}) for {out_format}, not "
                                                    f"{thresholds.shape}")
        thresholds = thresholds.astype(np.int64)
        lo, hi = in_format.min_int, in_format.max_int + 1
        if ((thresholds < lo) | (thresholds > hi)).any():
            bad = thresholds[(thresholds < lo) | (thresholds > hi)][0]
            raise ParameterValueError("thresholds", f"thresholds must lie in [{lo}, {hi}] for "
                                                    f"{in_format}, not {int(bad)}")
        if (np.diff(thresholds, axis=1) < 0).any():
            channel = int(np.nonzero((np.diff(thresholds, axis=1) < 0).any(axis=1))[0][0])
            raise ParameterValueError("thresholds", f"thresholds must ascend in every channel, "
                                                    f"not {thresholds[channel].tolist()} "
                                                    f"(channel {channel})")
        descending = np.array(self.descending)
        if descending.dtype != np.bool_:
            raise ParameterTypeError("descending", f"descending must be bools, not dtype "
                                                   f"{descending.dtype}")
        if descending.shape != thresholds.shape[:1]:
            raise ParameterValueError("descending", f"descending must have shape "
                                                    f"{thresholds.shape[:1]}, not "
                                                    f"{descending.shape}")
        object.__setattr__(self, "in_format", in_format)
        object.__setattr__(self, "out_format", out_format)
        object.__setattr__(self, "thresholds", _frozen(thresholds))
        object.__setattr__(self, "descending", _frozen(descending.copy()))

    @property
    def channels(self) -> int:
        """Neurons (channels), each with its own thresholds."""
        return self.thresholds.shape[0]

    @property
    def k(self) -> int:
        """Output bits: ``2**k`` levels from ``2**k − 1`` thresholds."""
        return self.out_format.width

    @property
    def threshold_range(self) -> tuple[int, int]:
        """``(lo, hi)``: the values a threshold may take (one past the input range on top)."""
        return self.in_format.min_int, self.in_format.max_int + 1

    def cost(self) -> dict:
        return {"comparators": int(self.thresholds.size)}

    def describe(self) -> dict:
        return {"method": "threshold", "source": self.source, "channels": self.channels,
                "k": self.k, "in_format": str(self.in_format),
                "out_format": str(self.out_format),
                "descending": int(self.descending.sum()),
                "thresholds": self.thresholds.tolist() if self.thresholds.size <= 64
                else f"{self.thresholds.size} values"}


def first_reaching(predicate, lo: int, hi: int, shape) -> np.ndarray:
    """Per element of ``shape``, the smallest integer ``s`` in ``[lo, hi]`` where
    ``predicate(s)`` holds, or ``hi + 1`` where it holds nowhere, by bisection.

    ``predicate`` takes an int64 array of ``shape`` (one candidate per element) and returns
    bools of that shape; it must be monotonic in ``s`` (false below some point, true from it
    on), which is what makes the bisection exact. ``ceil(log2(hi − lo + 2))`` calls.
    """
    low = np.full(shape, lo, dtype=np.int64)        # the answer is >= low
    high = np.full(shape, hi + 1, dtype=np.int64)   # the answer is <= high
    while (low < high).any():
        middle = low + (high - low) // 2
        holds = np.asarray(predicate(np.minimum(middle, hi)), dtype=bool) & (low < high)
        high = np.where(holds, middle, high)
        low = np.where(~holds & (low < high), middle + 1, low)
    return low


def _evaluate(function, s, channels, out_format) -> np.ndarray:
    """``function`` on int64 inputs ``s`` of shape ``(n, channels)``, checked to be codes of
    ``out_format`` of that shape."""
    y = np.asarray(function(s))
    if y.dtype == np.bool_:
        y = y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.integer) or y.shape != s.shape:
        raise ParameterValueError("function", f"function must return integer codes of shape "
                                              f"{s.shape}, not {y.dtype} of shape {y.shape}")
    if not out_format.contains(y).all():
        bad = y[~out_format.contains(y)][0]
        raise ParameterValueError("function", f"function must return codes of out_format "
                                              f"{out_format}, not {int(bad)}")
    return y.astype(np.int64)


def plan_thresholds(function, in_format, out_format, *, channels: int = 1,
                    descending=None, source: str = "function") -> ThresholdPlan:
    """The thresholds of the monotonic integer activation ``function`` (module docstring).

    Parameters
    ----------
    function : callable
        Takes int64 codes of ``in_format``, shape ``(n, channels)``, and returns integer codes
        of ``out_format`` of the same shape; monotonic in ``s`` in every channel (increasing
        or decreasing).
    in_format, out_format : Format or str
        The integer input ``s`` and the ``k``-bit output (``2**k − 1`` thresholds).
    channels : int
        Channels the function computes at once (parameters per channel on the last axis).
    descending : array of bool, optional
        The direction of each channel; by default decreasing where ``f(max) < f(min)``.
    source : str
        What the thresholds come from, for :meth:`ThresholdPlan.describe`.

    Raises
    ------
    TypeError, ValueError
        A bad format or channel count, ``function`` not callable or returning something other
        than codes of ``out_format``, or ``function`` not monotonic (found by the check).
    """
    if not callable(function):
        raise ParameterTypeError("function", f"function must be callable, not {function!r}")
    in_format, out_format = _check_formats(in_format, out_format)
    channels = check_integer(channels, "channels", minimum=1)
    lo, hi = in_format.min_int, in_format.max_int
    ends = _evaluate(function, np.array([[lo] * channels, [hi] * channels], np.int64),
                     channels, out_format)
    if descending is None:
        descending = ends[1] < ends[0]
    descending = np.asarray(descending)
    if descending.ndim == 0:
        descending = np.full(channels, descending)
    if descending.dtype != np.bool_ or descending.shape != (channels,):
        raise ParameterValueError("descending", f"descending must be a bool or {channels} "
                                                f"bools, not {descending.tolist()!r}")
    levels = np.arange(1, 1 << out_format.width, dtype=np.int64)  # level i = 1 .. L

    def reaches(s):  # s: (channels, L); f(s) has passed level i
        y = _evaluate(function, s.T, channels, out_format).T
        up = y >= out_format.min_int + levels
        down = y <= out_format.max_int - levels
        return np.where(descending[:, np.newaxis], down, up)

    thresholds = first_reaching(reaches, lo, hi, (channels, len(levels)))
    plan = ThresholdPlan(in_format, out_format, thresholds, descending, source)
    _check(plan, function)
    return plan


def _check(plan: ThresholdPlan, function) -> None:
    """Compare the plan with ``function`` on every input code, or (too many) at every threshold
    and the code below it; a difference means ``function`` is not monotonic."""
    fmt, channels = plan.in_format, plan.channels
    if (fmt.max_int - fmt.min_int + 1) * channels <= MAX_CHECKED:
        s = np.repeat(fmt.codes()[:, np.newaxis], channels, axis=1)
    else:
        near = np.concatenate([plan.thresholds, plan.thresholds - 1], axis=1).T
        s = np.clip(near, fmt.min_int, fmt.max_int)
    expected = _evaluate(function, s, channels, plan.out_format)
    got = multithreshold(plan, s if channels > 1 else s[:, 0])
    got = got if channels > 1 else got[:, np.newaxis]
    if not np.array_equal(got, expected):
        row, channel = np.argwhere(got != expected)[0]
        raise ParameterValueError("function", f"function must be monotonic in s: its "
                                              f"thresholds give {got[row, channel]} at s = "
                                              f"{s[row, channel]} (channel {channel}) where it "
                                              f"gives {expected[row, channel]}")


def _check_parameter(value, name, channels) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.integer)
                                       or np.issubdtype(array.dtype, np.floating)):
        raise ParameterTypeError(name, f"{name} must be real numbers, not {value!r}")
    if array.ndim > 1 or (array.ndim == 1 and array.shape != (channels,)):
        like = "" if name == "gamma" else " like gamma"
        raise ParameterValueError(name, f"{name} must be a number or have shape ({channels},)"
                                        f"{like}, not shape {array.shape}")
    array = np.broadcast_to(array.astype(np.float64), (channels,))
    if not np.isfinite(array).all():
        raise ParameterValueError(name, f"{name} must be finite, not {array.tolist()}")
    return array


def plan_batchnorm_sign(in_format, gamma, beta, mean, var, eps=1e-5) -> ThresholdPlan:
    """Batch norm followed by sign, folded into one threshold per channel (module docstring).

    Output bit 1 (+1) where :func:`hwnn.ref.binary.batchnorm_sign` gives it for the real value
    of the code ``s`` (``s · 2**-in_format.f``): ``s ≥ T`` for ``γ > 0``, ``s < T`` for ``γ <
    0`` (``descending``), a constant for ``γ = 0`` (+1 when ``β ≥ 0``: ``T = in.min_int``; −1:
    ``T = in.max_int + 1``). Ties go to +1.

    Parameters
    ----------
    in_format : Format or str
        Codes of the pre-activation ``s`` (for a dot product of length ``N``, a format that
        holds :func:`hwnn.ref.binary.dot_range`).
    gamma, beta, mean, var : float or array of shape (channels,)
        Scale, shift, running mean and running variance (float64, finite).
    eps : float
        Added to ``var`` (``var + eps`` must be positive).

    Raises
    ------
    TypeError, ValueError
        A parameter is not real, not finite, of a shape other than ``(channels,)``, ``var`` is
        negative or ``var + eps`` is not positive; the error names it.
    """
    in_format = check_format(in_format, "in_format")
    gamma_array = np.asarray(gamma)
    channels = gamma_array.shape[0] if gamma_array.ndim == 1 and gamma_array.size else 1
    gamma, beta, mean, var = (_check_parameter(v, n, channels) for v, n in
                              ((gamma, "gamma"), (beta, "beta"), (mean, "mean"), (var, "var")))
    eps = float(_check_parameter(eps, "eps", 1)[0])
    if (var < 0).any():
        raise ParameterValueError("var", f"var must be non-negative, not {var.tolist()}")
    if eps < 0 or not (var + eps > 0).all():
        raise ParameterValueError("eps", f"eps must be non-negative with var + eps > 0, not "
                                         f"{eps!r}")

    def decision(s):
        return batchnorm_sign(to_float(s, in_format), gamma, beta, mean, var, eps)

    return plan_thresholds(decision, in_format, UQ(1, 0), channels=channels,
                           descending=gamma < 0, source="batchnorm_sign")
