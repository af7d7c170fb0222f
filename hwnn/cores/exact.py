"""Exact activation unit (relu family, hard_sigmoid): the hardware of
:func:`hwnn.ref.exact.exact`."""

from __future__ import annotations

from amaranth.hdl import Mux, Signal, signed

from ..fixed import Overflow, Rounding
from ..plans.exact import ExactPlan, reciprocal_of_three
from ._activation import _Activation
from .requantize import format_shape, requantize

__all__ = ["ExactActivation", "exact_datapath"]


class ExactActivation(_Activation):
    """``y = exact(plan, x)`` (:func:`hwnn.ref.exact.exact`) on every lane, one per cycle.

    relu, relu6, hard_tanh and leaky_relu are a clamp or shift and one requantize;
    hard_sigmoid divides by 3 with a multiply-by-reciprocal that the plan proved exact on every
    input code. Latency 3, ``ii`` 1. Parameters, members and errors as
    :class:`~hwnn.cores.lut.LUTActivation`, with an :class:`~hwnn.plans.exact.ExactPlan`.
    """

    _plan_type = ExactPlan

    def _compute(self, m, x, result, advance, index):
        with m.If(advance):
            m.d.sync += result.eq(exact_datapath(m, self._plan, x, name=f"lane{index}"))


def exact_datapath(m, plan, x, *, name):
    """``exact(plan, x)`` (:func:`hwnn.ref.exact.exact`) for one value ``x`` (codes of
    ``plan.in_format``), combinationally: the clamp or shift and the requantize, or
    hard_sigmoid's division by 3. Returns the output code (``format_shape(plan.out_format)``
    or a few bits wider, in range); ``name`` prefixes the signals it makes."""
    fi, function = plan.in_format.f, plan.function.name
    value = Signal(signed(plan.in_format.width + 1), name=f"{name}_x")
    m.d.comb += value.eq(x)
    if function == "hard_sigmoid":
        return _hard_sigmoid(m, plan, value, name)
    if function == "relu":
        v = Mux(value < 0, 0, value)
    elif function == "relu6":
        v = Mux(value < 0, 0, Mux(value > (6 << fi), 6 << fi, value))
    elif function == "hard_tanh":
        v = Mux(value < -(1 << fi), -(1 << fi), Mux(value > (1 << fi), 1 << fi, value))
    else:  # leaky_relu
        v = Mux(value < 0, value, value << plan.leaky_shift)
    exact_value = Signal(format_shape(plan.value_format), name=f"{name}_value")
    m.d.comb += exact_value.eq(v)
    return requantize(exact_value, plan.value_format, plan.out_format, plan.rounding,
                      Overflow.SAT)


def _hard_sigmoid(m, plan, value, name):
    """round(n * 2**fo / (6 * 2**fi)) with n = clip(x + 3, 0, 6), as in the reference."""
    fi, fo = plan.in_format.f, plan.out_format.f
    up, down = max(fo - fi, 0), max(fi - fo, 0)
    n_max = 6 << fi
    n = Signal(range(n_max + 1), name=f"{name}_n")
    shifted = value + (3 << fi)
    m.d.comb += n.eq(Mux(shifted < 0, 0, Mux(shifted > n_max, n_max, shifted)))
    numerator = n << up                 # the dividend; the divisor is 3 * 2**(down + 1)
    t = numerator >> (down + 1)         # floor by the power of two first, then by 3
    multiplier, shift = reciprocal_of_three(n_max << up >> (down + 1))
    quotient = Signal(range((n_max << up >> (down + 1)) // 3 + 1), name=f"{name}_q")
    m.d.comb += quotient.eq((t * multiplier) >> shift)
    divisor = 3 << (down + 1)
    remainder = Signal(range(divisor), name=f"{name}_r")
    m.d.comb += remainder.eq(numerator - quotient * divisor)
    if plan.rounding is Rounding.TRUNC:
        rounded = quotient
    elif plan.rounding is Rounding.HALF_UP:
        rounded = quotient + (remainder * 2 >= divisor)
    else:
        rounded = quotient + ((remainder * 2 > divisor)
                              | ((remainder * 2 == divisor) & quotient[0]))
    out = plan.out_format
    wide = Signal(signed(max(len(quotient), out.width) + 2), name=f"{name}_y")
    m.d.comb += wide.eq(rounded)
    return Mux(wide > out.max_int, out.max_int, Mux(wide < out.min_int, out.min_int, wide))
