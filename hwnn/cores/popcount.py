"""Pipelined popcount trees from a :class:`~hwnn.plans.popcount.PopcountPlan`, and a stream core.

:func:`popcount_tree` builds a plan's adders and counters into a module, with its pipeline
registers; :class:`Popcount` wraps it as a stream core, and
:class:`~hwnn.cores.xnor_popcount.XnorPopcount` feeds it XNORed bits.

Every adder and counter output is a signal with the ``keep`` attribute. Without it yosys's
``alumacc`` merges the single-fanout additions of the tree back into one multi-operand ``$macc``
and maps that as its own carry-save tree (64 bits on iCE40 UP5K: 114 LUT4 + 6 SB_CARRY merged,
89 LUT4 + 87 SB_CARRY kept apart), which is exactly the mapping the plan is meant to beat.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, Value, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..checks import ParameterTypeError
from ..plans.popcount import PopcountPlan
from ._component import rejects_quietly

__all__ = ["Popcount", "popcount_tree", "check_plan", "pipeline_valid"]

_KEEP = {"keep": 1}


def check_plan(plan) -> PopcountPlan:
    """``plan`` if it is a :class:`PopcountPlan`, else ``TypeError`` naming ``plan``."""
    if not isinstance(plan, PopcountPlan):
        raise ParameterTypeError("plan", f"plan must be a PopcountPlan (from plan_popcount), "
                                         f"not {plan!r}")
    return plan


def popcount_tree(m: Module, plan: PopcountPlan, bits, advance: Value) -> Value:
    """Add ``plan``'s tree over ``bits`` to ``m``; return the count at the end of its last
    stage, combinational (the caller registers it: the output register of the pipeline).

    Parameters
    ----------
    m : Module
    plan : PopcountPlan
    bits : sequence of ``plan.n`` one-bit values
        The input bits, valid in the cycle their transfer is accepted.
    advance : Value
        One bit: every pipeline register loads when it is high (the whole pipe moves together).

    Returns
    -------
    Value
        ``plan.width`` bits, the count of the input accepted ``plan.latency − 1`` advances
        earlier.
    """
    made = {w: 0 for w in range(plan.n)}
    at = {(w, 0): bits[w] for w in range(plan.n)}
    registers: list = []

    def value(w, stage: int) -> Value:
        # Wire `w` as seen in `stage`: read later than it is made, it goes through a register
        # per stage boundary (made once, shared by every reader).
        if w is None:
            return Const(0, 1)
        if (w, stage) in at:
            return at[(w, stage)]
        if stage <= made[w]:
            raise AssertionError(f"wire {w} read in stage {stage} before stage {made[w]}")
        previous = value(w, stage - 1)
        delayed = Signal(name=f"w{w}_s{stage}")
        registers.append((delayed, previous))
        at[(w, stage)] = delayed
        return delayed

    for op in plan.ops:
        stage = plan.stage(op.level)
        out = Signal(len(op.out), name=f"{op.kind}{op.out[0]}", attrs=_KEEP)
        if op.kind == "adder":
            a, b = (Cat(value(w, stage) for w in operand) for operand in op.operands)
            total = a + b
            if op.carry_in is not None:
                total = total + value(op.carry_in, stage)
            # Each adder of the chain fits its field (the plan sizes it for the largest sum
            # it can see), so the carry out of the chain's top cell, which the slice drops,
            # is always zero.
            m.d.comb += out.eq(total[:len(op.out)])
        else:
            x = [value(w, stage) for w in op.operands[0]]
            if op.kind == "full":
                m.d.comb += out.eq(Cat(x[0] ^ x[1] ^ x[2],
                                       (x[0] & x[1]) | (x[0] & x[2]) | (x[1] & x[2])))
            else:
                m.d.comb += out.eq(Cat(x[0] ^ x[1], x[0] & x[1]))
        for i, w in enumerate(op.out):
            made[w] = stage
            at[(w, stage)] = out[i]
    last = plan.latency - 1
    result = Cat(value(w, last) for w in plan.output)
    with m.If(advance):
        m.d.sync += [register.eq(source) for register, source in registers]
    return result


def pipeline_valid(m: Module, i: stream.Interface, o: stream.Interface,
                   latency: int) -> Value:
    """Handshake of a pipeline of ``latency`` register stages that all move together:
    ``i.ready = ~o.valid | o.ready`` and a valid bit per stage, the last one ``o.valid``.
    Returns ``advance`` (high when the stages load); the caller loads ``o.payload`` (the last
    stage) and its inner registers on it."""
    advance = Signal()
    m.d.comb += [advance.eq(~o.valid | o.ready), i.ready.eq(advance)]
    valid = i.valid
    for stage in range(latency):
        nxt = o.valid if stage == latency - 1 else Signal(name=f"valid_{stage + 1}")
        with m.If(advance):
            m.d.sync += nxt.eq(valid)
        valid = nxt
    return advance


class Popcount(wiring.Component):
    """A stream of ``n``-bit vectors in, the number of ones in each out (``hwnn.ref.popcount``).

    The tree is ``plan``'s (adders and counters, see :mod:`hwnn.plans.popcount`). Latency is
    ``plan.latency`` cycles (register stages, the last being the output register), ``ii`` 1;
    when the output is stalled every stage holds, so no transfer is dropped or duplicated.

    Parameters
    ----------
    plan : PopcountPlan
        From :func:`~hwnn.plans.popcount.plan_popcount`.

    Members
    -------
    i : In(stream.Signature(data.ArrayLayout(unsigned(1), n)))
        The bits, bit ``j`` in element ``j``.
    o : Out(stream.Signature(unsigned(width)))
        The count, ``width = ceil(log2(n + 1))`` bits.

    Raises
    ------
    TypeError
        ``plan`` is not a PopcountPlan (``ParameterTypeError`` naming ``plan``).
    """

    @rejects_quietly
    def __init__(self, plan):
        self._plan = check_plan(plan)
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(unsigned(1), plan.n))),
            "o": Out(stream.Signature(unsigned(plan.width))),
        })

    plan = property(lambda self: self._plan, doc="The tree's plan.")
    latency = property(lambda self: self._plan.latency,
                       doc="Cycles from an accepted input to its output.")
    ii = property(lambda self: 1, doc="Cycles between accepted inputs at full rate.")

    def describe(self) -> dict:
        """The plan's structure and estimated cost, with ``latency`` and ``ii``."""
        return {"core": "popcount", **self._plan.describe(), "ii": self.ii}

    def elaborate(self, platform):
        m = Module()
        advance = pipeline_valid(m, self.i, self.o, self.latency)
        count = popcount_tree(m, self._plan, [self.i.payload[j] for j in range(self._plan.n)],
                              advance)
        with m.If(advance):
            m.d.sync += self.o.payload.eq(count)
        return m
