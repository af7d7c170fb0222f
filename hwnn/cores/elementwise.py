"""The elementwise unit: per-lane products, sums or differences of two vector streams (or of one
stream and a constant vector), requantized with stated modes."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..checks import ParameterTypeError
from ..plans.elementwise import ElementwisePlan
from ._activation import _payload_shape
from ._component import rejects_quietly
from ._output import registered_output
from .requantize import format_shape, requantize, requantize_has_logic

__all__ = ["Elementwise", "elementwise_exact"]


class Elementwise(wiring.Component):
    """``y = requantize(a ⊙ b)`` on every lane, ``⊙`` one of ``*``, ``+``, ``-``.

    Matches :func:`hwnn.ref.elementwise.elementwise` bit for bit: ``a ⊙ b`` is computed exactly
    in ``plan.full_format`` (sums first align both operands to its fraction bits), then
    narrowed once to ``plan.out_format`` with the plan's rounding and overflow modes.

    With two input streams the unit is a join: a transfer takes one vector from ``i_a`` and one
    from ``i_b`` in the same cycle, so ``i_a.ready`` follows ``i_b.valid`` and the other way
    round (rule 4 of ``amaranth.lib.stream`` lets a consumer's ``ready`` depend on ``valid``;
    no ``valid`` here depends on a ``ready``). With a constant ``b`` (``plan.constant``) there
    is one input stream, ``i``, and lane ``k`` uses ``plan.constant[k]``.

    Pipeline: an input register, the exact result in a register of its own when the requantize
    rounds or saturates (so that the operation and the rounding incrementer or saturation
    comparators are not one combinational path), and a registered output whose readiness
    towards the pipeline depends on flip-flops only. Throughput: one transfer per cycle
    (``ii = 1``) while both operands are offered and the output is taken. Latency: 2 cycles,
    3 when the requantize has logic (:func:`hwnn.cores.requantize.requantize_has_logic`).

    Parameters
    ----------
    plan : ElementwisePlan
        Operation, formats, lanes, modes and the optional constant, from
        :func:`hwnn.plans.elementwise.plan_elementwise`.

    Members
    -------
    i_a : In(stream.Signature(<a_format shape> or ArrayLayout(<a_format shape>, lanes)))
        First operand (two-stream plans). A scalar payload for one lane.
    i_b : In(stream.Signature(<b_format shape> or ArrayLayout(<b_format shape>, lanes)))
        Second operand (two-stream plans).
    i : In(stream.Signature(<a_format shape> or ArrayLayout(<a_format shape>, lanes)))
        The only operand stream of a plan with a constant ``b``.
    o : Out(stream.Signature(<out_format shape> or ArrayLayout(<out_format shape>, lanes)))
        The results, lane ``k`` from lane ``k`` of the operands.

    Raises
    ------
    ParameterTypeError
        ``plan`` is not an ElementwisePlan (``exc.parameter`` is ``"plan"``).
    """

    @rejects_quietly
    def __init__(self, plan):
        if not isinstance(plan, ElementwisePlan):
            raise ParameterTypeError("plan", f"plan must be an ElementwisePlan (see "
                                             f"hwnn.plans.elementwise.plan_elementwise), "
                                             f"not {plan!r}")
        self._plan = plan
        # The exact result gets a register of its own only where the requantize is more than
        # wiring.
        self._full_stage = int(requantize_has_logic(plan.full_format, plan.out_format,
                                                    plan.rounding, plan.overflow))
        a_shape = _payload_shape(plan.a_format, plan.lanes)
        if plan.constant is None:
            inputs = {"i_a": In(stream.Signature(a_shape)),
                      "i_b": In(stream.Signature(_payload_shape(plan.b_format, plan.lanes)))}
        else:
            inputs = {"i": In(stream.Signature(a_shape))}
        super().__init__({**inputs,
                          "o": Out(stream.Signature(_payload_shape(plan.out_format, plan.lanes)))})

    plan = property(lambda self: self._plan, doc="The ElementwisePlan this unit implements.")
    lanes = property(lambda self: self._plan.lanes, doc="Values per transfer.")
    latency = property(lambda self: 2 + self._full_stage,
                       doc="Cycles from an accepted input to its output, without stalls.")
    ii = property(lambda self: 1, doc="Cycles between accepted inputs at full rate.")
    a_format = property(lambda self: self._plan.a_format)
    b_format = property(lambda self: self._plan.b_format)
    out_format = property(lambda self: self._plan.out_format)

    def describe(self) -> dict:
        """Parameters and formats for manifests and reports (JSON-serializable)."""
        return {"kind": "elementwise", "class": "Elementwise", "latency": self.latency,
                "ii": self.ii, **self._plan.describe()}

    def _lane(self, value, index):
        return value if self._plan.lanes == 1 else value[index]

    def elaborate(self, platform):
        m = Module()
        plan = self._plan
        # valid[0] goes with the input registers, valid[1] (if any) with the exact result.
        valid = [Signal(name=f"valid{k}") for k in range(1 + self._full_stage)]
        result = Signal.like(self.o.payload, name="result")
        accept = registered_output(m, self.o, valid[-1], result, full_rate=True)
        # One enable for the whole pipeline; it depends on flip-flops only.
        advance = ~valid[-1] | accept

        if plan.constant is None:
            # A join: each side is ready only when the other side offers a vector too, so both
            # transfers happen in the same cycle.
            a_in, b_in = self.i_a, self.i_b
            m.d.comb += [a_in.ready.eq(advance & b_in.valid), b_in.ready.eq(advance & a_in.valid)]
            arrived = a_in.valid & b_in.valid
            b = Signal.like(b_in.payload, name="b")
            with m.If(advance):
                m.d.sync += b.eq(b_in.payload)
        else:
            a_in, b = self.i, None
            m.d.comb += a_in.ready.eq(advance)
            arrived = a_in.valid
        a = Signal.like(a_in.payload, name="a")
        with m.If(advance):
            m.d.sync += [a.eq(a_in.payload), valid[0].eq(arrived)]
            m.d.sync += [later.eq(earlier) for earlier, later in zip(valid, valid[1:])]

        b_shape = format_shape(plan.b_format)
        full_shape = format_shape(plan.full_format)
        for index in range(plan.lanes):
            a_lane = self._lane(a, index)
            b_lane = (Const(plan.constant[index], b_shape) if b is None
                      else self._lane(b, index))
            full = Signal(full_shape, name=f"full{index}")
            exact = elementwise_exact(plan, a_lane, b_lane)
            if self._full_stage:
                with m.If(advance):
                    m.d.sync += full.eq(exact)
            else:
                m.d.comb += full.eq(exact)
            m.d.comb += self._lane(result, index).eq(
                requantize(full, plan.full_format, plan.out_format, plan.rounding, plan.overflow))
        return m


def elementwise_exact(plan, a, b):
    """``a ⊙ b`` of one lane (codes of ``plan.a_format`` and ``plan.b_format``), exactly:
    operands aligned first (shifts are 0 for products).

    Amaranth's ``*``, ``+`` and ``-`` widen their results (a difference of unsigned values
    is signed), so the expression is exact; ``plan.full_format`` holds its every value, so
    assigning it to a signal of that shape drops only copies of the sign.
    """
    if plan.op == "mul":
        return a * b
    a, b = a << plan.a_shift, b << plan.b_shift
    return a + b if plan.op == "add" else a - b
