"""The plan of a dense (fully connected) layer: quantized weights, bias and exact widths."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import ParameterTypeError, ParameterValueError
from ..fixed import (MAX_WIDTH, SQ, Format, Overflow, Rounding, _as_format, _enum_arg, quantize,
                     real_array, signed_bits_for, to_float)
from .pot import PotCode, quantize_pot
from .shift_add import build, format_ranges

__all__ = ["ARITHMETIC", "WEIGHT_QUANTIZERS", "DensePlan", "LaneSchedule", "MacSchedule", "mac_schedule", "plan_dense",
           "shift_add_graph"]

#: How a dense layer multiplies: "mult" (a folded multiplier MAC array), "csd" (shift-add, each
#: weight in canonical signed digits, no sharing) or "mcm" (shift-add with shared
#: subexpressions: the fewest adders of hwnn.plans.shift_add's builders).
ARITHMETIC = ("mult", "csd", "mcm")


def _readonly(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=np.int64)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class DensePlan:
    """Everything a dense layer ``y = requantize(W·x + b)`` needs, as integers.

    ``weight`` (``n_out × n_in``) holds codes of ``weight_format``; ``bias`` (``n_out``) holds
    codes at the accumulator's scale (``acc_format.f`` fraction bits). The accumulator format is
    derived from the actual weights and the input range so that no partial or complete sum can
    overflow it; the only narrowing is the final requantize to ``out_format`` with ``rounding``
    and ``overflow``. Build one with :func:`plan_dense`.
    """
    in_format: Format
    weight_format: Format
    out_format: Format
    acc_format: Format
    rounding: Rounding
    overflow: Overflow
    weight: np.ndarray
    bias: np.ndarray
    #: How many float weights were clamped to the weight format's range (not merely rounded).
    saturated_weights: int = 0
    #: How the float weights became codes: "fixed" (nearest code), "pot" (nearest 0 or ±2^k)
    #: or "pot2" (nearest 0, ±2^k or ±2^k ± 2^j), all codes of ``weight_format``.
    weight_quantizer: str = "fixed"

    @property
    def n_in(self) -> int:
        return self.weight.shape[1]

    @property
    def n_out(self) -> int:
        return self.weight.shape[0]

    def weight_float(self) -> np.ndarray:
        """The quantized weights as real numbers."""
        return to_float(self.weight, self.weight_format)

    def bias_float(self) -> np.ndarray:
        """The quantized bias as real numbers."""
        return to_float(self.bias, self.acc_format)

    def describe(self) -> dict:
        """A JSON-serializable summary (formats, shape, modes), for manifests and reports."""
        return {
            "n_in": self.n_in, "n_out": self.n_out,
            "in_format": str(self.in_format), "weight_format": str(self.weight_format),
            "acc_format": str(self.acc_format), "out_format": str(self.out_format),
            "rounding": self.rounding.value, "overflow": self.overflow.value,
            "weight_quantizer": self.weight_quantizer,
            "saturated_weights": self.saturated_weights,
        }


def quantize_bias(bias: np.ndarray, acc_f: int) -> np.ndarray:
    """A real bias as codes at the accumulator's scale (``acc_f`` fraction bits), rounded
    half-even. The codes get exactly as many integer bits as the largest value needs, so the
    bias itself never saturates."""
    bias_scaled = np.abs(np.ldexp(bias, acc_f)).max(initial=0.0)
    bias_width = min(MAX_WIDTH, int(np.ceil(np.log2(bias_scaled + 2))) + 2)
    return quantize(bias, SQ(bias_width - acc_f, acc_f), Rounding.HALF_EVEN, Overflow.SAT)


def _accumulator_range(weight: np.ndarray, bias: np.ndarray, in_format: Format):
    """The lowest and highest value any partial or complete sum ``W·x + b`` can take.

    Every partial sum of an output's terms lies between the sum of its negative term extremes
    and the sum of its positive ones; the bias joins the complete sum. Computed on Python
    integers, because the point is to find out whether int64 is wide enough.
    """
    lo = hi = 0
    for row, b in zip(weight.tolist(), bias.tolist()):
        row_lo = row_hi = 0
        for w in row:
            a, c = w * in_format.min_int, w * in_format.max_int
            row_lo += min(a, c, 0)
            row_hi += max(a, c, 0)
        lo, hi = min(lo, row_lo + min(b, 0)), max(hi, row_hi + max(b, 0))
    return lo, hi


#: Weight quantizers of :func:`plan_dense`.
WEIGHT_QUANTIZERS = ("fixed", "pot", "pot2")


def plan_dense(weight, bias=None, *, in_format, weight_format, out_format,
               rounding=Rounding.HALF_UP, overflow=Overflow.SAT,
               weight_quantizer="fixed", saturate_weights=False) -> DensePlan:
    """Quantize a dense layer and derive every width it needs.

    Parameters
    ----------
    weight : array (n_out, n_in) of float
        Real weights; quantized to ``weight_format`` with half-even rounding. A weight beyond
        the format's range is an error unless ``saturate_weights`` (then it is clamped, and the
        count of clamped weights is kept in the plan, so saturation is never silent).
    bias : array (n_out,) of float, optional
        Real bias (default zeros); quantized half-even to the accumulator's fraction bits. Its
        integer bits grow to hold it, so the bias itself never saturates.
    in_format, weight_format, out_format : Format or str
    rounding, overflow : Rounding, Overflow or their names
        How the accumulator is narrowed to ``out_format``.
    weight_quantizer : str
        ``"fixed"`` (default): each weight becomes the nearest code of ``weight_format``.
        ``"pot"``: the nearest code whose value is 0 or ±2^k; ``"pot2"``: also ±2^k ± 2^j
        (:func:`hwnn.plans.pot.quantize_pot`). Shift-add cores then need no adder per weight
        (pot) or at most one (pot2).
    saturate_weights : bool
        Clamp weights that do not fit ``weight_format`` instead of raising.

    Raises
    ------
    TypeError
        A format or mode has the wrong type, or weights/bias are not numeric.
    ValueError
        Empty or non-2-D weights, a bias of the wrong length, NaN/inf values, a weight that
        does not fit ``weight_format`` (without ``saturate_weights``), or an accumulator wider
        than int64 arithmetic allows.
    """
    in_format = _as_format(in_format, "in_format")
    weight_format = _as_format(weight_format, "weight_format")
    out_format = _as_format(out_format, "out_format")
    rounding = _enum_arg(Rounding, rounding, "rounding")
    overflow = _enum_arg(Overflow, overflow, "overflow")

    weight = np.asarray(weight)
    if weight.ndim != 2 or 0 in weight.shape:
        raise ValueError(f"weight must be a non-empty 2-D array (n_out, n_in), "
                         f"not shape {weight.shape}")
    n_out, n_in = weight.shape
    weight = real_array(weight, "weight")
    bias = real_array(np.zeros(n_out) if bias is None else bias, "bias")
    if bias.shape != (n_out,):
        raise ValueError(f"bias must have shape ({n_out},) to match weight {weight.shape}, "
                         f"not {bias.shape}")

    if weight_quantizer not in WEIGHT_QUANTIZERS:
        raise ValueError(f"weight_quantizer must be one of "
                         f"{', '.join(map(repr, WEIGHT_QUANTIZERS))}, not {weight_quantizer!r}")
    if weight_quantizer == "fixed":
        weight_codes = quantize(weight, weight_format, Rounding.HALF_EVEN, Overflow.SAT)
        unclamped = np.floor(np.ldexp(weight.astype(np.float64), weight_format.f) + 0.5)
        saturated = int(np.count_nonzero((unclamped > weight_format.max_int)
                                         | (unclamped < weight_format.min_int)))
    else:
        def pot_codes(values):
            return quantize_pot(values, weight_format, terms=1 if weight_quantizer == "pot" else 2,
                                return_saturated=True)
        weight_codes, saturated = pot_codes(weight)
    if saturated and not saturate_weights:
        first = next(index for index in np.ndindex(weight.shape)
                     if (weight_quantizer == "fixed"
                         and not weight_format.min_int <= unclamped[index] <= weight_format.max_int)
                     or (weight_quantizer != "fixed" and pot_codes(weight[index])[1]))
        if weight_quantizer == "fixed":
            lo, hi, what = weight_format.min_int, weight_format.max_int, ""
        else:
            allowed = PotCode(weight_format, 1 if weight_quantizer == "pot" else 2).values()
            lo, hi, what = int(allowed.min()), int(allowed.max()), f"{weight_quantizer} values "
        raise ValueError(
            f"weight[{first[0]}, {first[1]}] = {float(weight[first]):g} does not fit "
            f"weight_format {weight_format} ({what}{to_float(lo, weight_format):g} … "
            f"{to_float(hi, weight_format):g}); {saturated} weights do not fit. Widen the "
            f"weight format, or pass saturate_weights=True to clamp them")

    acc_f = in_format.f + weight_format.f
    bias_codes = quantize_bias(bias, acc_f)
    lo, hi = _accumulator_range(weight_codes, bias_codes, in_format)
    acc_width = max(2, signed_bits_for(lo, hi))
    if acc_width > MAX_WIDTH:
        raise ValueError(f"the accumulator needs {acc_width} bits, more than the {MAX_WIDTH} "
                         f"that exact int64 reference arithmetic allows; use narrower formats")
    acc_format = SQ(acc_width - acc_f, acc_f)

    return DensePlan(in_format=in_format, weight_format=weight_format, out_format=out_format,
                     acc_format=acc_format, rounding=rounding, overflow=overflow,
                     weight=_readonly(weight_codes), bias=_readonly(bias_codes),
                     saturated_weights=int(saturated), weight_quantizer=weight_quantizer)


@dataclass(frozen=True)
class LaneSchedule:
    """What one multiplier of a folded MAC array does in each of the ``ii`` cycles of a vector.

    ``weight[t]`` multiplies input ``column[t]`` in cycle ``t``; the product joins output
    ``row[t]`` (``-1``: idle cycle, weight 0). ``segments`` lists ``(row, first_t, last_t)``
    for the runs of consecutive cycles that feed the same output.
    """
    weight: tuple
    column: tuple
    row: tuple
    segments: tuple

    @property
    def last_busy_cycle(self) -> int:
        return self.segments[-1][2]


@dataclass(frozen=True)
class MacSchedule:
    """How ``n_out·n_in`` products are spread over ``parallelism`` multipliers.

    Products are numbered output-major (``k = row·n_in + column``) and lane ``p`` computes
    products ``p·ii … p·ii + ii − 1``, so every parallelism from 1 to ``n_out·n_in`` reaches
    ``ii = ceil(n_out·n_in / parallelism)`` exactly; an output whose products straddle two lanes
    is finished by adding the lanes' partial sums.
    """
    ii: int
    lanes: tuple

    @property
    def multipliers(self) -> int:
        """Lanes that do any work (can be fewer than the requested parallelism)."""
        return len(self.lanes)


def mac_schedule(plan: DensePlan, parallelism: int) -> MacSchedule:
    """The :class:`MacSchedule` of ``plan`` on ``parallelism`` multipliers.

    Raises
    ------
    TypeError
        ``parallelism`` is not an integer.
    ValueError
        ``parallelism`` is outside ``1 … n_in·n_out``.
    """
    products = plan.n_in * plan.n_out
    if not isinstance(parallelism, (int, np.integer)) or isinstance(parallelism, bool):
        raise ParameterTypeError("parallelism", f"Parallelism must be an integer, not "
                                                f"{parallelism!r}")
    if not 1 <= parallelism <= products:
        raise ParameterValueError("parallelism", f"Parallelism must be between 1 and "
                                                 f"n_in·n_out = {products}, not {parallelism}")
    ii = -(-products // int(parallelism))
    lanes = []
    for first in range(0, products, ii):
        ks = range(first, min(first + ii, products))
        rows = [k // plan.n_in for k in ks]
        cols = [k % plan.n_in for k in ks]
        idle = ii - len(ks)
        segments, start = [], 0
        for t in range(1, len(ks) + 1):
            if t == len(ks) or rows[t] != rows[start]:
                segments.append((rows[start], start, t - 1))
                start = t
        lanes.append(LaneSchedule(
            weight=tuple(int(plan.weight[r, c]) for r, c in zip(rows, cols)) + (0,) * idle,
            column=tuple(cols) + (0,) * idle,
            row=tuple(rows) + (-1,) * idle,
            segments=tuple(segments),
        ))
    return MacSchedule(ii=ii, lanes=tuple(lanes))


def shift_add_graph(plan: DensePlan, arith: str):
    """The :class:`~hwnn.plans.shift_add.AdderGraph` that computes ``plan.weight @ x`` for
    ``arith`` ``"csd"`` or ``"mcm"``, over the input format's range (deterministic)."""
    if arith not in ARITHMETIC[1:]:
        raise ParameterValueError("arith", f"arith must be 'csd' or 'mcm' for a shift-add "
                                           f"graph, not {arith!r}")
    return build(plan.weight, format_ranges(plan.in_format, plan.n_in),
                 method="csd" if arith == "csd" else "best")
