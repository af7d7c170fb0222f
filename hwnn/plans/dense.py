"""The plan of a dense (fully connected) layer: quantized weights, bias and exact widths."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..checks import (ParameterTypeError, ParameterValueError, check_bool, check_choice, check_enum,
                      check_integer)
from ..fixed import (MAX_WIDTH, SQ, Format, Overflow, Rounding, check_format, quantize,
                     real_array, signed_bits_for, to_float)
from .pot import PotCode
from .shift_add import build, format_ranges

__all__ = ["ARITHMETIC", "MAX_WEIGHTS", "WEIGHT_QUANTIZERS", "DensePlan", "LaneSchedule",
           "MacSchedule", "check_out_format", "check_weight_count", "mac_schedule", "plan_dense",
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
    """A real bias as codes at the accumulator's scale (``acc_f`` fraction bits): each value
    rounded half-even to a multiple of ``2**-acc_f``, the rounding being its only change.

    The codes get exactly as many integer bits as the largest value needs, so the bias never
    saturates; a value whose code needs more than :data:`~hwnn.fixed.MAX_WIDTH` bits (the widest
    accumulator exact int64 arithmetic allows) is refused.

    Raises
    ------
    ParameterValueError
        A value beyond the widest accumulator (``parameter`` is ``"bias"``; the message names
        the value and the limit).
    """
    widest = SQ(MAX_WIDTH - acc_f, acc_f)
    with np.errstate(over="ignore"):
        scaled = np.ldexp(bias, acc_f)  # exact, or ±inf beyond float64's range
    lo = hi = 0
    # Rounding is monotonic, so the extreme values have the extreme codes. Python rounds a
    # Fraction (here exactly the float) half to even, on integers of any size.
    for index in sorted({int(np.argmax(scaled)), int(np.argmin(scaled))}):
        value = float(scaled[index])
        code = round(Fraction(value)) if np.isfinite(value) else None
        if code is None or not widest.min_int <= code <= widest.max_int:
            raise ParameterValueError(
                "bias", f"bias must fit the widest accumulator {widest} (MAX_WIDTH = {MAX_WIDTH} "
                        f"bits, the most exact int64 arithmetic allows: -2**{MAX_WIDTH - 1} … "
                        f"2**{MAX_WIDTH - 1} - 1 units of 2**{-acc_f}), "
                        f"not bias[{index}] = {float(bias[index])!r}")
        lo, hi = min(lo, code), max(hi, code)
    width = max(2, signed_bits_for(lo, hi))
    return quantize(bias, SQ(width - acc_f, acc_f), Rounding.HALF_EVEN, Overflow.SAT)


def _accumulator_range(weight: np.ndarray, bias: np.ndarray, in_format: Format):
    """The lowest and highest value any partial or complete sum ``W·x + b`` can take.

    Every partial sum of an output's terms lies between the sum of its negative term extremes
    and the sum of its positive ones; the bias joins the complete sum. The point is to find out
    whether int64 is wide enough, so the sums are computed in int64 only when a bound on Python
    integers shows that every one of them fits, and on Python integers (object arrays) else.
    """
    x_max = max(-in_format.min_int, in_format.max_int)
    bound = weight.shape[1] * int(np.abs(weight).max()) * x_max + int(np.abs(bias).max())
    codes = weight.astype(np.int64 if bound < 1 << 63 else object)
    low, high = codes * in_format.min_int, codes * in_format.max_int
    zero = np.zeros_like(codes)
    row_lo = np.minimum(np.minimum(low, high), zero).sum(axis=1) + np.minimum(bias, 0)
    row_hi = np.maximum(np.maximum(low, high), zero).sum(axis=1) + np.maximum(bias, 0)
    return min(0, int(row_lo.min())), max(0, int(row_hi.max()))


#: Weight quantizers of :func:`plan_dense`.
WEIGHT_QUANTIZERS = ("fixed", "pot", "pot2")

#: The most weights (``n_out·n_in``) a layer plan accepts: 2**23 = 8,388,608. No supported
#: device holds more: a weight takes at least one bit, and the largest place-and-route target,
#: the ECP5 LFE5U-85F, has 208 block RAMs of 18 Kbit plus 669 Kbit of LUT RAM, about 4.5 million
#: bits (the iCE40 UP5K: 1 Mbit of SPRAM and 120 Kbit of block RAM). The limit is checked before
#: anything of the layer's size is allocated, so a mistyped shape is an error, not an attempt to
#: allocate gigabytes; at the limit a plan's arrays take 64 MiB each and planning a few seconds.
MAX_WEIGHTS = 1 << 23


def check_weight_count(n_out: int, n_in: int, name: str, what: str) -> None:
    """Refuse a layer of more than :data:`MAX_WEIGHTS` weights.

    Raises
    ------
    ParameterValueError
        ``n_out·n_in > MAX_WEIGHTS``; ``parameter`` is ``name``, the message names ``what`` (how
        the caller spells the shape) and the limit.
    """
    if n_out * n_in > MAX_WEIGHTS:
        raise ParameterValueError(
            name, f"{what} must be at most {MAX_WEIGHTS} weights (MAX_WEIGHTS = 2**"
                  f"{MAX_WEIGHTS.bit_length() - 1}: more than any supported device holds), "
                  f"not {n_out}·{n_in} = {n_out * n_in}")


def check_out_format(acc_format: Format, out_format: Format, name: str = "out_format") -> None:
    """Refuse an output format that requantizing ``acc_format`` to cannot compute exactly.

    Requantize aligns the accumulator to the output's fraction bits before rounding or fitting
    it: an output with more fraction bits than the accumulator shifts it left into
    ``SQ(acc_format.i, out_format.f)``. That value must be a format hwnn computes exactly
    (at most :data:`~hwnn.fixed.MAX_WIDTH` bits in int64), so ``out_format.f`` may be at most
    ``MAX_WIDTH - acc_format.i``. Any output with fewer fraction bits than the accumulator
    passes (the shift is to the right).

    Raises
    ------
    ParameterValueError
        ``out_format`` has too many fraction bits (``parameter`` is ``name``).
    """
    most = MAX_WIDTH - acc_format.i
    if out_format.f > most:
        raise ParameterValueError(
            name, f"{name} must have at most {most} fraction bits with the accumulator "
                  f"{acc_format} (requantize shifts the accumulator left to the output's fraction "
                  f"bits, and SQ({acc_format.i}, f) must fit MAX_WIDTH = {MAX_WIDTH} bits of exact "
                  f"int64 arithmetic), not {out_format}")


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
        Real bias (default zeros); quantized half-even to the accumulator's fraction bits (its
        only change; :func:`quantize_bias`). Its integer bits grow to hold it, so the bias
        itself never saturates; a bias beyond :data:`~hwnn.fixed.MAX_WIDTH` bits is an error.
    in_format, weight_format, out_format : Format or str
        ``out_format`` may have at most ``MAX_WIDTH - acc_format.i`` fraction bits
        (:func:`check_out_format`).
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
        Empty or non-2-D weights, more than :data:`MAX_WEIGHTS` of them (checked before any
        array of the layer's size is made), a bias of the wrong length, NaN/inf values, a
        weight that does not fit ``weight_format`` (without ``saturate_weights``), a bias or an
        accumulator wider than the :data:`~hwnn.fixed.MAX_WIDTH` bits of exact int64
        arithmetic, or an ``out_format`` with so many more fraction bits than the accumulator
        that requantize would shift it beyond them (:func:`check_out_format`). The errors of
        checked parameters are :mod:`hwnn.checks` errors carrying ``parameter``.
    """
    in_format = check_format(in_format, "in_format")
    weight_format = check_format(weight_format, "weight_format")
    out_format = check_format(out_format, "out_format")
    rounding = check_enum(Rounding, rounding, "rounding")
    overflow = check_enum(Overflow, overflow, "overflow")
    weight_quantizer = check_choice(weight_quantizer, "weight_quantizer", WEIGHT_QUANTIZERS)
    saturate_weights = check_bool(saturate_weights, "saturate_weights")

    weight = np.asarray(weight)
    if weight.ndim != 2 or 0 in weight.shape:
        raise ParameterValueError("weight", f"weight must be a non-empty 2-D array (n_out, n_in), "
                                            f"not shape {weight.shape}")
    n_out, n_in = weight.shape
    check_weight_count(n_out, n_in, "weight", "weight's n_out·n_in")
    weight = real_array(weight, "weight")
    bias = real_array(np.zeros(n_out) if bias is None else bias, "bias")
    if bias.shape != (n_out,):
        raise ParameterValueError("bias", f"bias must have shape ({n_out},) to match weight "
                                          f"{weight.shape}, not {bias.shape}")

    if weight_quantizer == "fixed":
        # A weight of magnitude 2**(i + 1) or more is beyond the format either way; clipping it
        # there keeps whether (and how many) weights fit, and keeps the scaling by 2**f finite
        # (1e308 would overflow float64 in a wide format).
        bound = 2.0 ** (weight_format.i + 1)
        clipped = np.clip(weight, -bound, bound)
        weight_codes = quantize(clipped, weight_format, Rounding.HALF_EVEN, Overflow.SAT)
        unclamped = np.floor(np.ldexp(clipped, weight_format.f) + 0.5)
        saturated = int(np.count_nonzero((unclamped > weight_format.max_int)
                                         | (unclamped < weight_format.min_int)))
    else:
        code = PotCode(weight_format, 1 if weight_quantizer == "pot" else 2)
        weight_codes, saturated = code.quantize(weight, return_saturated=True)
    if saturated and not saturate_weights:
        first = next(index for index in np.ndindex(weight.shape)
                     if (weight_quantizer == "fixed"
                         and not weight_format.min_int <= unclamped[index] <= weight_format.max_int)
                     or (weight_quantizer != "fixed"
                         and code.quantize(weight[index], return_saturated=True)[1]))
        if weight_quantizer == "fixed":
            lo, hi, what = weight_format.min_int, weight_format.max_int, ""
        else:
            allowed = code.values()
            lo, hi, what = int(allowed.min()), int(allowed.max()), f"{weight_quantizer} values "
        raise ParameterValueError(
            "weight",
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
    check_out_format(acc_format, out_format)

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
    parallelism = check_integer(parallelism, "parallelism", minimum=1, maximum=products)
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
