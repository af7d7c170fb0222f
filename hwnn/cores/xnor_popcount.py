"""Binary dot products: XNOR then a popcount tree, as a stream core."""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..checks import ParameterValueError, check_choice
from ..ref.popcount import bipolar_width, bits_array
from ._component import rejects_quietly
from .popcount import check_plan, pipeline_valid, popcount_tree

__all__ = ["XnorPopcount", "OUTPUTS"]

#: What the core sends: the agreement count, or the ±1 dot product ``2 · count − n``.
OUTPUTS = ("popcount", "bipolar")


def _order(plan, weights) -> list:
    """Which input bit feeds each of the plan's input wires: with constant weights, the
    inverted bits (weight 0) first on the wires LUT counters read; otherwise in order."""
    if weights is None:
        return list(range(plan.n))
    lut_wires = set(plan.lut_inputs)
    others = [w for w in range(plan.n) if w not in lut_wires]
    inverted = [j for j in range(plan.n) if not weights[j]]
    plain = [j for j in range(plan.n) if weights[j]]
    order = [0] * plan.n
    for wire, bit in zip(list(plan.lut_inputs) + others, inverted + plain):
        order[wire] = bit
    return order


class XnorPopcount(wiring.Component):
    """``popcount(XNOR(a, w))`` or ``2 · popcount(XNOR(a, w)) − n`` of each ``n``-bit input.

    Matches :func:`hwnn.ref.popcount.xnor_popcount` (``output="popcount"``) or
    :func:`hwnn.ref.popcount.bipolar_dot` (``output="bipolar"``: FINN's ±1 dot product, bit 1
    = +1). With constant weights each XNOR is a wire (``w = 1``) or an inverter (``w = 0``);
    a count does not depend on the order of its bits, so the inverted bits go to the plan's
    LUT counters (:attr:`PopcountPlan.lut_inputs`), which absorb the inverters, and the others
    to carry-chain cells, which could not (use ``method="counters"`` for constant weights:
    its first level is all LUTs). With run-time weights each input transfer carries its own
    weight vector (hold it constant for a fixed neuron) and each XNOR is a LUT.

    The popcount is ``plan``'s tree (:mod:`hwnn.plans.popcount`). ``latency`` is
    ``plan.latency`` cycles, one more for ``"bipolar"`` when the tree is pipelined (the
    ``− n`` gets a register stage of its own; a combinational tree takes it before its output
    register); ``ii`` is 1. When the output is stalled every stage holds.

    Parameters
    ----------
    plan : PopcountPlan
        The popcount tree; ``plan.n`` is the vector length.
    weights : array of ``n`` 0/1, or None
        Constant weights, or None for weights that come with every input.
    output : str
        ``"popcount"`` or ``"bipolar"``.

    Members
    -------
    i : In(stream.Signature(...))
        ``data.ArrayLayout(unsigned(1), n)`` of the activation bits ``a`` with constant
        weights; ``data.StructLayout({"a": ..., "w": ...})`` of both vectors with run-time
        weights.
    o : Out(stream.Signature(...))
        ``unsigned(ceil(log2(n + 1)))`` for ``"popcount"``, ``signed(ceil(log2(n + 1)) + 1)``
        for ``"bipolar"``.

    Raises
    ------
    TypeError
        ``plan`` is not a PopcountPlan; ``weights`` not an integer or bool array; ``output``
        not a string.
    ValueError
        ``weights`` not ``n`` values of 0 and 1; unknown ``output``.
    """

    @rejects_quietly
    def __init__(self, plan, weights=None, output: str = "popcount"):
        self._plan = check_plan(plan)
        if weights is not None:
            weights = bits_array(weights, "weights")
            if weights.shape != (plan.n,):
                raise ParameterValueError("weights", f"weights must be {plan.n} bits (the "
                                                     f"plan's n), not shape {weights.shape}")
            weights = tuple(int(w) for w in weights)
        self._weights = weights
        self._order = _order(plan, weights)
        self._output = check_choice(output, "output", OUTPUTS)
        vector = data.ArrayLayout(unsigned(1), plan.n)
        payload = vector if weights is not None else data.StructLayout({"a": vector,
                                                                       "w": vector})
        shape = (unsigned(plan.width) if output == "popcount"
                 else signed(bipolar_width(plan.n)))
        super().__init__({"i": In(stream.Signature(payload)),
                          "o": Out(stream.Signature(shape))})

    plan = property(lambda self: self._plan, doc="The popcount tree's plan.")
    output = property(lambda self: self._output, doc='"popcount" or "bipolar".')
    ii = property(lambda self: 1, doc="Cycles between accepted inputs at full rate.")

    @property
    def weights(self):
        """The constant weights as an int64 array, or None for run-time weights."""
        return None if self._weights is None else np.array(self._weights, dtype=np.int64)

    @property
    def latency(self) -> int:
        """Cycles from an accepted input to its output."""
        return self._plan.latency + self._extra_stage

    @property
    def _extra_stage(self) -> int:
        return int(self._output == "bipolar" and self._plan.pipeline > 0)

    def describe(self) -> dict:
        """The tree's structure and cost (its plan's), the weights' kind, output, latency, ii."""
        return {**self._plan.describe(), "core": "xnor_popcount",
                "weights": "runtime" if self._weights is None else "constant",
                "output": self._output, "latency": self.latency, "ii": self.ii}

    def elaborate(self, platform):
        m = Module()
        n = self._plan.n
        advance = pipeline_valid(m, self.i, self.o, self.latency)
        if self._weights is None:
            a, w = self.i.payload.a, self.i.payload.w
            bits = [~(a[j] ^ w[j]) for j in range(n)]
        else:
            a = self.i.payload
            bits = [a[j] if self._weights[j] else ~a[j] for j in self._order]
        count = popcount_tree(m, self._plan, bits, advance)
        if self._extra_stage:
            held = Signal(self._plan.width)
            with m.If(advance):
                m.d.sync += held.eq(count)
            count = held
        result = count
        if self._output == "bipolar":
            # 2·count − n lies in [−n, n], which the output's width holds exactly.
            result = ((count << 1) - n)[:bipolar_width(n)].as_signed()
        with m.If(advance):
            m.d.sync += self.o.payload.eq(result)
        return m
