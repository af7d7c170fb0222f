"""A folded shift-add MAC array whose power-of-two weights are loaded at run time."""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring

from ..checks import ParameterTypeError
from ..fixed import signed_bits_for
from ..plans.shift_mac import ShiftMacPlan
from ._component import owned, rejects_quietly
from .mac import FoldedMac, Product

__all__ = ["ShiftMac", "PotProduct"]


class ShiftMac(wiring.Component):
    """``y = requantize(W·x + b)`` with pot/pot2 weights ``W`` loaded at run time, no multipliers.

    Matches :func:`hwnn.ref.shift_mac.shift_mac` bit for bit, with ``W`` the weights in effect
    for each vector (see *Ordering*): products are accumulated exactly in ``plan.acc_format``,
    which holds every sum for every word the weight port can carry, and narrowed once to
    ``plan.out_format`` with the plan's rounding and overflow modes.

    Structure: a :class:`~hwnn.cores.mac.FoldedMac` with a :class:`PotProduct`, a weight port
    and a two-stage requantize. As in :class:`hwnn.cores.dense.Dense`, the input vector is
    registered and each of the ``lanes`` lanes walks a fixed slice of the output-major product
    list (:func:`hwnn.plans.dense.mac_schedule`). A lane keeps its slice of the weights as packed
    :class:`~hwnn.plans.pot.PotCode` words in an ``amaranth.lib.memory.Memory`` of depth ``ii``
    with a synchronous read port. Its product is built without a multiplier: the selected input
    or its negation (by the sign bit) goes through a barrel shifter by the exponent field, a
    set zero flag forces the term to 0, and pot2 adds the two terms. Register stages: operands
    (weight word; input element and its negation), product, accumulator (starting each
    output's sum at its bias), rounded sum (the lanes' partial sums added and rounded to the
    output's fraction bits), and the output register (saturated or wrapped to ``out_format``).
    Rounding and saturation sit in different stages so that their carry chains never share a
    clock period.

    Throughput: one vector every ``ii = ceil(n_in·n_out / parallelism)`` cycles.
    Latency: ``ii + 5`` cycles from the cycle a vector is accepted to the cycle its output is
    first valid (input register, ``ii`` issue cycles, operand, product, rounding and output
    stages).

    Ordering of weight loads and vectors: a vector is computed with exactly the weights of the
    loads accepted in earlier cycles.

    * ``i_weight`` is ready while no vector is being issued: ``ready`` is low from the cycle
      after a vector is accepted through its ``ii`` issue cycles, in which its weights are
      read. So a load never changes a vector in flight. A load accepted in cycle ``c`` is
      written to memory at the end of cycle ``c + 1``, before the first read of any vector
      accepted after ``c``.
    * ``i`` is not ready in a cycle where ``i_weight.valid`` is high: offered loads go first,
      and a burst of loads offered back to back is never split by a vector. (``i.ready`` thus
      depends combinationally on ``i_weight.valid``; ``i_weight.valid`` must not depend on
      ``i.ready``.) A load offered while vectors keep arriving waits at most for the vector in
      flight; vectors wait while loads keep arriving.
    * A load to ``addr >= n_in·n_out`` is accepted and ignored. Reset does not clear the
      weights: they hold ``weights`` (zeros by default) from configuration until loaded.

    Parameters
    ----------
    plan : ShiftMacPlan
        Formats, weight code and bias, from :func:`hwnn.plans.shift_mac.plan_shift_mac`.
    parallelism : int
        Shift-add lanes to use, from 1 to ``n_in·n_out``.
    weights : array (n_out, n_in) of int, optional
        Weight codes the memories hold at configuration (pot/pot2 codes of the plan); zeros by
        default.

    Members
    -------
    i : In(stream.Signature(data.ArrayLayout(<in_format shape>, n_in)))
        Input vector, element 0 in the least significant bits.
    i_weight : In(stream.Signature(data.StructLayout({"addr": unsigned, "code": unsigned})))
        One weight per transfer: ``code`` is its packed :class:`~hwnn.plans.pot.PotCode` word
        (``plan.code.encode``), ``addr = row·n_in + column`` (row: output, column: input);
        ``addr`` in the least significant bits.
    o : Out(stream.Signature(data.ArrayLayout(<out_format shape>, n_out)))
        Output vector.

    Raises
    ------
    TypeError
        ``plan`` is not a ShiftMacPlan, ``parallelism`` not an integer or ``weights`` not
        integer (``ParameterTypeError``; ``exc.parameter`` names the parameter).
    ValueError
        ``parallelism`` is outside ``1 … n_in·n_out``, or ``weights`` has the wrong shape or
        holds a code that is not pot/pot2.
    """

    @rejects_quietly
    def __init__(self, plan: ShiftMacPlan, *, parallelism: int = 1, weights=None):
        if not isinstance(plan, ShiftMacPlan):
            raise ParameterTypeError("plan", f"plan must be a ShiftMacPlan (see "
                                             f"hwnn.plans.shift_mac.plan_shift_mac), not "
                                             f"{plan!r}")
        self._plan = plan
        zeros = np.zeros((plan.n_out, plan.n_in), dtype=np.int64)
        initial = zeros if weights is None else plan.check_weights(weights, "weights")
        initial.setflags(write=False)
        self._weights = initial
        self._mac = owned(FoldedMac(plan.dense_plan(initial), PotProduct(plan),
                                    parallelism=parallelism, weight_port=True,
                                    requantize_stages=2))
        super().__init__(self._mac.signature)

    plan = property(lambda self: self._plan, doc="The ShiftMacPlan this core implements.")
    parallelism = property(lambda self: self._mac.parallelism, doc="Requested lanes.")
    lanes = property(lambda self: self._mac.lanes,
                     doc="Shift-add lanes actually instantiated (lanes with work).")
    ii = property(lambda self: self._mac.ii,
                  doc="Cycles between accepted inputs at full rate.")
    latency = property(lambda self: self._mac.latency,
                       doc="Cycles from an accepted input to its output, without stalls.")
    in_format = property(lambda self: self._plan.in_format)
    out_format = property(lambda self: self._plan.out_format)
    weight_layout = property(lambda self: self._mac.weight_layout,
                             doc="Payload layout of ``i_weight``: ``addr``, then ``code``.")
    initial_weights = property(lambda self: self._weights,
                               doc="Weight codes held at configuration (read-only).")

    def describe(self) -> dict:
        """Parameters and formats for manifests and reports (JSON-serializable)."""
        return {"kind": "shift_mac", "class": "ShiftMac", "parallelism": self.parallelism,
                "lanes": self.lanes, "latency": self.latency, "ii": self.ii,
                **self._plan.describe(),
                "weight_addr_bits": self.weight_layout.members["addr"].width,
                "initial_weights": "zeros" if not self._weights.any() else "given"}

    def elaborate(self, platform):
        m = Module()
        m.submodules.mac = self._mac
        for name in ("i", "i_weight"):
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(self._mac, name))
        wiring.connect(m, self._mac.o, wiring.flipped(self.o))
        return m


class PotProduct(Product):
    """``element × weight`` for a pot/pot2 weight word, without a multiplier.

    The selected input or its negation (by the word's sign bit) goes through a barrel shifter
    by the exponent field, a set zero flag forces the term to 0, and pot2 adds the two terms.
    The negation is registered with the operand, which keeps its carry chain out of the
    product stage. ``depth`` 1.

    Parameters
    ----------
    plan : ShiftMacPlan
        Its input format and weight code (:class:`~hwnn.plans.pot.PotCode`); words are the
        code's packed words.
    """

    def __init__(self, plan: ShiftMacPlan):
        self._code = plan.code
        self.word_shape = unsigned(plan.code.width)
        w_lo, w_hi = plan.code.value_range
        fmt = plan.in_format
        ends = [w_lo * fmt.min_int, w_lo * fmt.max_int, w_hi * fmt.min_int, w_hi * fmt.max_int]
        self.shape = signed(signed_bits_for(min(ends), max(ends)))

    def encode(self, codes):
        return [int(w) for w in self._code.encode(codes)]

    def operand(self, m, name, element, advance):
        """The element's register and, if any weight can be negative, its negation's."""
        operand = super().operand(m, name, element, advance)
        negated = None
        if any(field.sign_bits for field in self._code.fields):
            negated = Signal(signed(len(element) + 1), name=f"negated{name}")
            with m.If(advance):
                m.d.sync += negated.eq(-element)
        return operand, negated

    def product(self, m, name, operand, word, advance):
        """Each term is ``±operand << (e + e_min)``, or 0 when its zero flag is set."""
        operand, negated = operand
        code = self._code
        terms = []
        for field in code.fields:
            base = operand
            if field.sign_bits:
                base = Mux(word[field.sign_offset], negated, operand)
            if field.exponent_bits:
                exponent = word[field.exponent_offset:field.exponent_offset + field.exponent_bits]
                base = base << exponent
            if code.e_min:
                base = base << code.e_min
            terms.append(Mux(word[field.zero_offset], 0, base))
        return sum(terms[1:], terms[0])
