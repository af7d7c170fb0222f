"""Activation units: lookup-table, exact (relu family) and, with plans from hwnn.plans.pwl,
piecewise-linear, for one value (``lanes=1``) or a vector of ``lanes`` values per transfer.

All share one pipeline: an input register, the datapath's register stages (one for LUT and
exact units, four for PWL), and a registered output whose readiness towards the pipeline depends
on flip-flops only. Throughput is one transfer per cycle (``ii = 1``); latency is 2 cycles plus
the datapath's stages.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..fixed import Overflow, Rounding
from ..plans.exact import ExactPlan, reciprocal_of_three
from ..plans.functions import Symmetry
from ..plans.lut import LUTPlan
from ._component import rejects_quietly
from ._output import registered_output
from .requantize import format_shape, requantize

__all__ = ["LUTActivation", "ExactActivation", "activation_core"]


def _payload_shape(fmt, lanes):
    return format_shape(fmt) if lanes == 1 else data.ArrayLayout(format_shape(fmt), lanes)


class _Activation(wiring.Component):
    """The pipeline shared by every activation unit; subclasses supply the datapath."""

    _plan_type = None
    #: Register stages of the datapath between the input register and the output register.
    _stages = 1

    @rejects_quietly
    def __init__(self, plan, *, lanes=1):
        if not isinstance(plan, self._plan_type):
            raise TypeError(f"plan must be a {self._plan_type.__name__} (see "
                            f"hwnn.plans.activation.plan_activation), not {plan!r}")
        if not isinstance(lanes, int) or isinstance(lanes, bool):
            raise TypeError(f"Lanes must be an integer, not {lanes!r}")
        if lanes < 1:
            raise ValueError(f"Lanes must be at least 1, not {lanes}")
        self._plan, self._lanes = plan, lanes
        super().__init__({
            "i": In(stream.Signature(_payload_shape(plan.in_format, lanes))),
            "o": Out(stream.Signature(_payload_shape(plan.out_format, lanes))),
        })

    plan = property(lambda self: self._plan, doc="The plan this unit implements.")
    lanes = property(lambda self: self._lanes, doc="Values per transfer.")
    latency = property(lambda self: 2 + self._stages,
                       doc="Cycles from an accepted input to its output.")
    ii = property(lambda self: 1, doc="Cycles between accepted inputs at full rate.")
    in_format = property(lambda self: self._plan.in_format)
    out_format = property(lambda self: self._plan.out_format)

    def describe(self) -> dict:
        return {"kind": "activation", "class": type(self).__name__, "lanes": self._lanes,
                "latency": self.latency, "ii": self.ii, **self._plan.describe()}

    def _lane(self, value, index):
        return value if self._lanes == 1 else value[index]

    def elaborate(self, platform):
        m = Module()
        x = Signal.like(self.i.payload, name="x")
        # valid[0] goes with `x`; valid[k] with the datapath's k-th register stage.
        valid = [Signal(name=f"valid{k}") for k in range(self._stages + 1)]
        result_valid = valid[-1]
        result = Signal.like(self.o.payload, name="result")
        accept = registered_output(m, self.o, result_valid, result, full_rate=True)
        # One enable for the whole pipeline; it depends on flip-flops only.
        advance = ~result_valid | accept
        m.d.comb += self.i.ready.eq(advance)
        with m.If(advance):
            m.d.sync += [x.eq(self.i.payload), valid[0].eq(self.i.valid)]
            m.d.sync += [later.eq(earlier) for earlier, later in zip(valid, valid[1:])]
        for index in range(self._lanes):
            # The datapath turns lane `index` of `x` into lane `index` of `result` through
            # exactly `_stages` register stages (enabled by `advance`), matching `result_valid`.
            self._compute(m, self._lane(x, index), self._lane(result, index), advance, index)
        return m


def _magnitude(m, x, in_format, name):
    """|x| for a signed input (one bit wider, unsigned) and its sign bit."""
    magnitude = Signal(unsigned(in_format.width), name=f"{name}_magnitude")
    negative = Signal(name=f"{name}_negative")
    m.d.comb += [negative.eq(x[-1]), magnitude.eq(Mux(x[-1], -x, x))]
    return magnitude, negative


def _unfold(y, negative, symmetry, out_format, y_range=None):
    """The output code for a negative input, from ``y`` computed on its magnitude (saturated).

    ``y_range`` (lowest, highest), when known, drops the comparators that cannot fire.
    """
    if symmetry is Symmetry.ODD:
        mirrored = -y
        low, high = (-y_range[1], -y_range[0]) if y_range else (None, None)
    else:
        one = 1 << out_format.f
        mirrored = Const(one, signed(out_format.width + 2)) - y
        low, high = (one - y_range[1], one - y_range[0]) if y_range else (None, None)
    wide = Mux(negative, mirrored, y)
    if y_range is None:
        return Mux(wide > out_format.max_int, out_format.max_int,
                   Mux(wide < out_format.min_int, out_format.min_int, wide))
    low, high = min(low, y_range[0]), max(high, y_range[1])
    if high > out_format.max_int:
        wide = Mux(wide > out_format.max_int, out_format.max_int, wide)
    if low < out_format.min_int:
        wide = Mux(wide < out_format.min_int, out_format.min_int, wide)
    return wide


class LUTActivation(_Activation):
    """``y = lut(plan, x)`` (:func:`hwnn.ref.lut.lut`) on every lane, one transfer per cycle.

    Latency 3, ``ii`` 1. The table is an ``amaranth.lib.memory.Memory`` with a synchronous read
    port per lane, so yosys maps large tables to block RAM and small ones to LUTs. A symmetric
    plan folds the input to its magnitude before the table and unfolds the result after it.

    Parameters
    ----------
    plan : LUTPlan
    lanes : int
        Values per transfer: 1 for a scalar payload, more for an ``ArrayLayout`` vector.

    Members
    -------
    i : In(stream.Signature(<in_format shape> or ArrayLayout(<in_format shape>, lanes)))
    o : Out(stream.Signature(<out_format shape> or ArrayLayout(<out_format shape>, lanes)))

    Raises
    ------
    TypeError
        ``plan`` is not a LUTPlan, or ``lanes`` not an integer.
    ValueError
        ``lanes`` < 1.
    """

    _plan_type = LUTPlan

    def elaborate(self, platform):
        self._table = Memory(shape=format_shape(self._plan.out_format),
                             depth=len(self._plan.table), init=self._plan.table)
        m = super().elaborate(platform)
        m.submodules.table = self._table
        return m

    def _compute(self, m, x, result, advance, index):
        plan = self._plan
        name = f"lane{index}"
        if plan.symmetric:
            code, negative = _magnitude(m, x, plan.in_format, name)
        else:
            code, negative = x, None
        clamped = Mux(code < plan.lo, plan.lo, Mux(code > plan.hi, plan.hi, code))
        port = self._table.read_port(domain="sync")
        m.d.comb += [port.addr.eq((clamped - plan.lo) >> plan.shift), port.en.eq(advance)]
        if not plan.symmetric:
            m.d.comb += result.eq(port.data)
            return
        negative_read = Signal(name=f"{name}_negative_read")  # aligned with the table read
        with m.If(advance):
            m.d.sync += negative_read.eq(negative)
        m.d.comb += result.eq(_unfold(port.data, negative_read, plan.function.symmetry,
                                      plan.out_format))


class ExactActivation(_Activation):
    """``y = exact(plan, x)`` (:func:`hwnn.ref.exact.exact`) on every lane, one per cycle.

    relu, relu6, hard_tanh and leaky_relu are a clamp or shift and one requantize;
    hard_sigmoid divides by 3 with a multiply-by-reciprocal that the plan proved exact on every
    input code. Latency 3, ``ii`` 1. Parameters, members and errors as :class:`LUTActivation`,
    with an :class:`~hwnn.plans.exact.ExactPlan`.
    """

    _plan_type = ExactPlan

    def _compute(self, m, x, result, advance, index):
        plan = self._plan
        fi, name = plan.in_format.f, plan.function.name
        value = Signal(signed(plan.in_format.width + 1), name=f"lane{index}_x")
        m.d.comb += value.eq(x)
        if name == "hard_sigmoid":
            with m.If(advance):
                m.d.sync += result.eq(self._hard_sigmoid(m, value, index))
            return
        if name == "relu":
            v = Mux(value < 0, 0, value)
        elif name == "relu6":
            v = Mux(value < 0, 0, Mux(value > (6 << fi), 6 << fi, value))
        elif name == "hard_tanh":
            v = Mux(value < -(1 << fi), -(1 << fi), Mux(value > (1 << fi), 1 << fi, value))
        else:  # leaky_relu
            v = Mux(value < 0, value, value << plan.leaky_shift)
        exact_value = Signal(format_shape(plan.value_format), name=f"lane{index}_value")
        m.d.comb += exact_value.eq(v)
        with m.If(advance):
            m.d.sync += result.eq(requantize(exact_value, plan.value_format, plan.out_format,
                                             plan.rounding, Overflow.SAT))

    def _hard_sigmoid(self, m, value, index):
        """round(n * 2**fo / (6 * 2**fi)) with n = clip(x + 3, 0, 6), as in the reference."""
        plan = self._plan
        fi, fo = plan.in_format.f, plan.out_format.f
        up, down = max(fo - fi, 0), max(fi - fo, 0)
        n_max = 6 << fi
        n = Signal(range(n_max + 1), name=f"lane{index}_n")
        shifted = value + (3 << fi)
        m.d.comb += n.eq(Mux(shifted < 0, 0, Mux(shifted > n_max, n_max, shifted)))
        numerator = n << up                 # the dividend; the divisor is 3 * 2**(down + 1)
        t = numerator >> (down + 1)         # floor by the power of two first, then by 3
        multiplier, shift = reciprocal_of_three(n_max << up >> (down + 1))
        quotient = Signal(range((n_max << up >> (down + 1)) // 3 + 1), name=f"lane{index}_q")
        m.d.comb += quotient.eq((t * multiplier) >> shift)
        divisor = 3 << (down + 1)
        remainder = Signal(range(divisor), name=f"lane{index}_r")
        m.d.comb += remainder.eq(numerator - quotient * divisor)
        if plan.rounding is Rounding.TRUNC:
            rounded = quotient
        elif plan.rounding is Rounding.HALF_UP:
            rounded = quotient + (remainder * 2 >= divisor)
        else:
            rounded = quotient + ((remainder * 2 > divisor)
                                  | ((remainder * 2 == divisor) & quotient[0]))
        out = plan.out_format
        wide = Signal(signed(max(len(quotient), out.width) + 2), name=f"lane{index}_y")
        m.d.comb += wide.eq(rounded)
        return Mux(wide > out.max_int, out.max_int, Mux(wide < out.min_int, out.min_int, wide))


def activation_core(plan, *, lanes=1):
    """The core that implements ``plan`` (LUT, PWL or exact), with ``lanes`` lanes."""
    method = getattr(plan, "method", None)
    if method == "lut":
        return LUTActivation(plan, lanes=lanes)
    if method == "exact":
        return ExactActivation(plan, lanes=lanes)
    if method == "pwl":
        from .pwl import PWLActivation
        return PWLActivation(plan, lanes=lanes)
    raise TypeError(f"plan must be an activation plan (lut, pwl or exact), not {plan!r}")
