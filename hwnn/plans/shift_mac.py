"""The plan of a shift-add MAC array whose power-of-two weights are loaded at run time.

Unlike :class:`~hwnn.plans.dense.DensePlan`, the plan holds no weights: they arrive through the
core's weight port while it runs. Everything else is fixed here: formats, the packed weight
code (:class:`~hwnn.plans.pot.PotCode`), the bias and an accumulator wide enough for *every*
word the weight port can carry, so that no load can make a sum overflow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import ParameterValueError, check_enum, check_integer
from ..fixed import (MAX_WIDTH, SQ, Format, Overflow, Rounding, check_format, real_array,
                     signed_bits_for, to_float)
from .dense import DensePlan, _readonly, check_out_format, check_weight_count, quantize_bias
from .pot import PotCode, check_code_params

__all__ = ["ShiftMacPlan", "plan_shift_mac"]


@dataclass(frozen=True, eq=False)
class ShiftMacPlan:
    """Everything ``y = requantize(W·x + b)`` needs when ``W`` is loaded at run time.

    ``W`` (``n_out × n_in``) holds codes of ``weight_format`` that ``code`` can hold (pot or
    pot2); ``bias`` (``n_out``) holds constant codes at the accumulator's scale. ``acc_format``
    holds every partial and complete sum for every input code and every weight *word* (see
    :attr:`PotCode.value_range`), codes of ``weight_format`` or not. Build one with
    :func:`plan_shift_mac`; :meth:`dense_plan` fixes a set of weights.
    """
    n_in: int
    n_out: int
    in_format: Format
    weight_format: Format
    out_format: Format
    acc_format: Format
    rounding: Rounding
    overflow: Overflow
    code: PotCode
    bias: np.ndarray

    @property
    def weight_terms(self) -> int:
        """Power-of-two terms per weight: 1 (pot) or 2 (pot2)."""
        return self.code.terms

    @property
    def products(self) -> int:
        """``n_in·n_out``: the number of weights."""
        return self.n_in * self.n_out

    def bias_float(self) -> np.ndarray:
        """The quantized bias as real numbers."""
        return to_float(self.bias, self.acc_format)

    def check_weights(self, weight, name="weight") -> np.ndarray:
        """``weight`` as an int64 ``(n_out, n_in)`` array of codes ``code`` can hold.

        Raises
        ------
        TypeError
            ``weight`` is not an integer array.
        ValueError
            Wrong shape, or a code that is not a pot/pot2 code of ``weight_format`` (the
            message names the first one and its ``(row, column)``).
        """
        array = np.asarray(weight)
        if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"{name} must hold integer codes of {self.weight_format}, "
                            f"not dtype {array.dtype}")
        if array.shape != (self.n_out, self.n_in):
            raise ValueError(f"{name} must have shape (n_out, n_in) = ({self.n_out}, "
                             f"{self.n_in}), not {array.shape}")
        return self.code.check(array, name)

    def dense_plan(self, weight) -> DensePlan:
        """The :class:`DensePlan` of this layer with weight codes ``weight`` in effect.

        It keeps this plan's (possibly wider) accumulator format, which changes no result:
        the sums are exact either way and requantize acts on values.

        Raises
        ------
        TypeError, ValueError
            As :meth:`check_weights`.
        """
        weight = self.check_weights(weight)
        return DensePlan(in_format=self.in_format, weight_format=self.weight_format,
                         out_format=self.out_format, acc_format=self.acc_format,
                         rounding=self.rounding, overflow=self.overflow,
                         weight=_readonly(weight), bias=self.bias)

    def describe(self) -> dict:
        """A JSON-serializable summary (formats, shape, modes, weight code)."""
        return {
            "n_in": self.n_in, "n_out": self.n_out,
            "in_format": str(self.in_format), "weight_format": str(self.weight_format),
            "weight_code": self.code.kind, "weight_terms": self.code.terms,
            "weight_exponents": [self.code.e_min, self.code.e_max],
            "weight_word_bits": self.code.width,
            "acc_format": str(self.acc_format), "out_format": str(self.out_format),
            "rounding": self.rounding.value, "overflow": self.overflow.value,
        }


def plan_shift_mac(n_in, n_out, *, in_format, weight_format, out_format, weight_terms=1,
                   weight_e_min=0, weight_exponent_bits=None, bias=None,
                   rounding=Rounding.HALF_UP, overflow=Overflow.SAT) -> ShiftMacPlan:
    """Fix the formats, weight code and widths of an ``n_in → n_out`` runtime-weight layer.

    Parameters
    ----------
    n_in, n_out : int
        Inputs and outputs of the layer; at most :data:`~hwnn.plans.dense.MAX_WEIGHTS` weights
        ``n_in·n_out``.
    in_format, weight_format, out_format : Format or str
        ``out_format`` may have at most ``MAX_WIDTH - acc_format.i`` fraction bits
        (:func:`~hwnn.plans.dense.check_out_format`).
    weight_terms : 1 or 2
        Power-of-two terms per weight (pot or pot2); see :class:`~hwnn.plans.pot.PotCode`.
    weight_e_min, weight_exponent_bits : int
        The code's smallest exponent (lsb units of ``weight_format``, default 0) and exponent
        field width (default: enough for every power of two of ``weight_format``).
    bias : array (n_out,) of float, optional
        A constant real bias (default zeros), quantized half-even to the accumulator's fraction
        bits; its integer bits grow to hold it, so it never saturates (a bias beyond
        :data:`~hwnn.fixed.MAX_WIDTH` bits is an error).
    rounding, overflow : Rounding, Overflow or their names
        How the accumulator is narrowed to ``out_format``.

    Raises
    ------
    TypeError
        A parameter has the wrong type.
    ValueError
        A parameter has a bad value; ``n_in·n_out`` beyond
        :data:`~hwnn.plans.dense.MAX_WEIGHTS` (checked first, before anything of the layer's
        size exists); a bias or an accumulator wider than the
        :data:`~hwnn.fixed.MAX_WIDTH` bits of exact int64 arithmetic; or an ``out_format`` with
        so many more fraction bits than the accumulator that requantize would shift it beyond
        them (:func:`~hwnn.plans.dense.check_out_format`). Checked parameters raise
        :mod:`hwnn.checks` errors carrying ``parameter``.
    """
    n_in = check_integer(n_in, "n_in", minimum=1)
    n_out = check_integer(n_out, "n_out", minimum=1)
    check_weight_count(n_out, n_in, "n_in", "n_out·n_in")
    in_format = check_format(in_format, "in_format")
    weight_format = check_format(weight_format, "weight_format")
    out_format = check_format(out_format, "out_format")
    rounding = check_enum(Rounding, rounding, "rounding")
    overflow = check_enum(Overflow, overflow, "overflow")
    params = check_code_params(weight_format, weight_terms, weight_e_min, weight_exponent_bits,
                               names=("weight_format", "weight_terms", "weight_e_min",
                                      "weight_exponent_bits"))
    code = PotCode(*params)

    bias = real_array(np.zeros(n_out) if bias is None else bias, "bias")
    if bias.shape != (n_out,):
        raise ParameterValueError("bias", f"bias must have shape (n_out,) = ({n_out},), "
                                          f"not {bias.shape}")

    acc_f = in_format.f + weight_format.f
    bias_codes = quantize_bias(bias, acc_f)

    # Every product of any word with any input code, on Python integers; every partial sum of
    # a row lies between n_in times the extreme products, and the bias joins the full sum.
    w_lo, w_hi = code.value_range
    x_lo, x_hi = in_format.min_int, in_format.max_int
    products = [w_lo * x_lo, w_lo * x_hi, w_hi * x_lo, w_hi * x_hi, 0]
    lo = n_in * min(products) + min(0, int(bias_codes.min()))
    hi = n_in * max(products) + max(0, int(bias_codes.max()))
    acc_width = max(2, signed_bits_for(lo, hi))
    if acc_width > MAX_WIDTH:
        raise ValueError(f"the accumulator needs {acc_width} bits, more than the {MAX_WIDTH} "
                         f"that exact int64 reference arithmetic allows; use narrower formats, "
                         f"fewer inputs or fewer exponent bits")
    acc_format = SQ(acc_width - acc_f, acc_f)
    check_out_format(acc_format, out_format)

    return ShiftMacPlan(n_in=n_in, n_out=n_out, in_format=in_format,
                        weight_format=weight_format, out_format=out_format,
                        acc_format=acc_format, rounding=rounding, overflow=overflow, code=code,
                        bias=_readonly(bias_codes))
