"""A folded shift-add MAC array whose power-of-two weights are loaded at run time."""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..fixed import SQ, Format, Overflow, Rounding, signed_bits_for
from ..plans.dense import mac_schedule
from ..plans.shift_mac import ShiftMacPlan
from ._component import rejects_quietly
from ._mac import accumulate_lane, mac_sequencer, select_input
from ._output import registered_output
from .requantize import format_shape, requantize

__all__ = ["ShiftMac"]


class ShiftMac(wiring.Component):
    """``y = requantize(W·x + b)`` with pot/pot2 weights ``W`` loaded at run time, no multipliers.

    Matches :func:`hwnn.ref.shift_mac.shift_mac` bit for bit, with ``W`` the weights in effect
    for each vector (see *Ordering*): products are accumulated exactly in ``plan.acc_format``,
    which holds every sum for every word the weight port can carry, and narrowed once to
    ``plan.out_format`` with the plan's rounding and overflow modes.

    Structure: as in :class:`hwnn.cores.dense.Dense`, the input vector is registered and each
    of the ``lanes`` lanes walks a fixed slice of the output-major product list
    (:func:`hwnn.plans.dense.mac_schedule`). A lane keeps its slice of the weights as packed
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
        integer.
    ValueError
        ``parallelism`` is outside ``1 … n_in·n_out``, or ``weights`` has the wrong shape or
        holds a code that is not pot/pot2.
    """

    @rejects_quietly
    def __init__(self, plan: ShiftMacPlan, *, parallelism: int = 1, weights=None):
        if not isinstance(plan, ShiftMacPlan):
            raise TypeError(f"plan must be a ShiftMacPlan (see "
                            f"hwnn.plans.shift_mac.plan_shift_mac), not {plan!r}")
        self._plan = plan
        zeros = np.zeros((plan.n_out, plan.n_in), dtype=np.int64)
        # The schedule depends only on the shape; the weights it carries are unused here.
        self._schedule = mac_schedule(plan.dense_plan(zeros), parallelism)
        self._parallelism = int(parallelism)
        initial = zeros if weights is None else plan.check_weights(weights, "weights")
        initial.setflags(write=False)
        self._weights = initial
        self._weight_layout = data.StructLayout({
            "addr": unsigned(max(1, (plan.products - 1).bit_length())),
            "code": unsigned(plan.code.width),
        })
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(format_shape(plan.in_format), plan.n_in))),
            "i_weight": In(stream.Signature(self._weight_layout)),
            "o": Out(stream.Signature(data.ArrayLayout(format_shape(plan.out_format),
                                                       plan.n_out))),
        })

    plan = property(lambda self: self._plan, doc="The ShiftMacPlan this core implements.")
    parallelism = property(lambda self: self._parallelism, doc="Requested lanes.")
    lanes = property(lambda self: self._schedule.multipliers,
                     doc="Shift-add lanes actually instantiated (lanes with work).")
    ii = property(lambda self: self._schedule.ii,
                  doc="Cycles between accepted inputs at full rate.")
    latency = property(lambda self: self._schedule.ii + 5,
                       doc="Cycles from an accepted input to its output, without stalls.")
    in_format = property(lambda self: self._plan.in_format)
    out_format = property(lambda self: self._plan.out_format)
    weight_layout = property(lambda self: self._weight_layout,
                             doc="Payload layout of ``i_weight``: ``addr``, then ``code``.")
    initial_weights = property(lambda self: self._weights,
                               doc="Weight codes held at configuration (read-only).")

    def describe(self) -> dict:
        """Parameters and formats for manifests and reports (JSON-serializable)."""
        return {"kind": "shift_mac", "class": "ShiftMac", "parallelism": self._parallelism,
                "lanes": self.lanes, "latency": self.latency, "ii": self.ii,
                **self._plan.describe(),
                "weight_addr_bits": self._weight_layout.members["addr"].width,
                "initial_weights": "zeros" if not self._weights.any() else "given"}

    def elaborate(self, platform):
        m = Module()
        plan, schedule = self._plan, self._schedule
        ii = schedule.ii
        acc_shape = signed(plan.acc_format.width)

        # Issue stage: the input register and the cycle counter `t` of the vector in flight.
        x = Signal.like(self.i.payload, name="x")
        partials_valid = Signal()  # every partial sum of a vector is complete

        # Output stages: the lanes' sums are added and rounded into `rounded`, then saturated
        # (or wrapped) into the registered output. Splitting requantize there keeps its rounding
        # adder and its saturation comparators out of one clock period.
        rounded_valid = Signal()
        result = Signal.like(self.o.payload, name="result")
        out_accept = registered_output(m, self.o, rounded_valid, result, full_rate=ii == 1)
        with m.If(rounded_valid & out_accept):
            m.d.sync += rounded_valid.eq(0)
        finish = partials_valid & (~rounded_valid | out_accept)
        with m.If(finish):
            m.d.sync += rounded_valid.eq(1)
        # The whole MAC pipeline moves in lock step, and only while the partial sums it would
        # overwrite have been taken by the output stage.
        advance = ~partials_valid | finish
        accepted = self.i.valid & self.i.ready
        busy, last_issue, t, t_operands, accumulate = mac_sequencer(
            m, ii, accepted=accepted, advance=advance, finish=finish,
            partials_valid=partials_valid)

        # Weights are read only in the issue cycles (`busy`): a load accepted while `busy` is
        # low cannot reach a vector in flight. Offered loads go before vectors.
        load = Signal()
        write_code = Signal(self._weight_layout.members["code"], name="write_code")
        m.d.sync += write_code.eq(self.i_weight.payload.code)
        m.d.comb += [
            self.i_weight.ready.eq(~busy),
            load.eq(self.i_weight.valid & ~busy),
            self.i.ready.eq(advance & (~busy | last_issue) & ~self.i_weight.valid),
        ]
        with m.If(accepted):
            m.d.sync += x.eq(self.i.payload)

        sums = [[] for _ in range(plan.n_out)]
        selectors = {}
        for index, lane in enumerate(schedule.lanes):
            word = self._weight_word(m, index, t, ii, advance, load, write_code)
            if lane.column not in selectors:
                selectors[lane.column] = self._input_operand(m, index, lane.column, x, t, ii,
                                                             advance)
            operand, negated = selectors[lane.column]
            product = Signal(self._product_shape(), name=f"product{index}")
            with m.If(advance):
                m.d.sync += product.eq(self._shift_add(operand, negated, word))

            accumulate_lane(m, index, lane, product, t=t_operands, advance=advance,
                            accumulate=accumulate, acc_shape=acc_shape, bias=plan.bias, sums=sums)

        # Rounding to out_format's fraction bits into a format wide enough for every rounded
        # sum is exact, so rounding there and fitting to out_format next is requantize itself.
        mid_format = _rounded_format(plan.acc_format, plan.out_format)
        for row, terms in enumerate(sums):
            total = Signal(acc_shape, name=f"sum{row}")
            rounded = Signal(signed(mid_format.width), name=f"rounded{row}")
            m.d.comb += total.eq(sum(terms[1:], terms[0]))
            with m.If(finish):
                m.d.sync += rounded.eq(requantize(total, plan.acc_format, mid_format,
                                                  plan.rounding, Overflow.WRAP))
            m.d.comb += result[row].eq(requantize(rounded, mid_format, plan.out_format,
                                                  Rounding.TRUNC, plan.overflow))
        return m

    def _product_shape(self):
        """The exact shape of any product of an input code and a weight word."""
        w_lo, w_hi = self._plan.code.value_range
        fmt = self._plan.in_format
        ends = [w_lo * fmt.min_int, w_lo * fmt.max_int, w_hi * fmt.min_int, w_hi * fmt.max_int]
        return signed(signed_bits_for(min(ends), max(ends)))

    def _weight_word(self, m, index, t, ii, advance, load, write_code):
        """This lane's weight word, one cycle after issue: a synchronous read of its memory.

        Lane ``index`` holds weights ``first … first + ii - 1`` (``first = index·ii``); slots
        beyond ``n_in·n_out`` in the last lane are idle and hold the zero word forever, since a
        load there is ignored.
        """
        plan, code = self._plan, self._plan.code
        first = index * ii
        stop = min(first + ii, plan.products)
        codes = np.zeros(ii, dtype=np.int64)
        codes[:stop - first] = self._weights.reshape(-1)[first:stop]
        memory = Memory(shape=unsigned(code.width), depth=ii,
                        init=[int(w) for w in code.encode(codes)])
        m.submodules[f"weights{index}"] = memory

        # The write is registered: the address compare and subtraction run in the cycle the
        # load is accepted, the memory's word decode in the next.
        addr = self.i_weight.payload.addr
        select = Const(1)
        if first > 0:
            select = select & (addr >= first)
        if stop < 1 << len(addr):
            select = select & (addr < stop)
        write = memory.write_port()
        enable = Signal(name=f"write{index}")
        local = Signal.like(write.addr, name=f"write{index}_addr")
        offset = addr if first % (1 << len(local)) == 0 else addr - first
        m.d.sync += [enable.eq(load & select), local.eq(offset[:len(local)])]
        m.d.comb += [write.en.eq(enable), write.addr.eq(local), write.data.eq(write_code)]

        # Reads are not transparent: loads never coincide with the reads of a vector.
        read = memory.read_port(domain="sync")
        m.d.comb += [read.addr.eq(t), read.en.eq(advance)]
        return read.data

    def _shift_add(self, operand, negated, word):
        """``operand`` times the weight of ``word``, from shifters, negations and one adder.

        Each term is ``±operand << (e + e_min)``, or 0 when its zero flag is set; the sign
        picks the (registered) negated operand before the shift.
        """
        code = self._plan.code
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

    def _input_operand(self, m, index, columns, x, t, ii, advance):
        """The input element this column sequence reads and its negation, registered one cycle
        after issue (the negation there keeps its carry chain out of the product stage)."""
        selected = select_input(m, index, columns, x, self._plan.n_in, t, ii)
        operand = Signal.like(selected, name=f"operand{index}")
        negated = None
        with m.If(advance):
            m.d.sync += operand.eq(selected)
        if any(field.sign_bits for field in self._plan.code.fields):
            negated = Signal(signed(len(selected) + 1), name=f"negated{index}")
            with m.If(advance):
                m.d.sync += negated.eq(-selected)
        return operand, negated


def _rounded_format(acc: Format, out: Format) -> Format:
    """The narrowest signed format with ``out``'s fraction bits that holds every code of ``acc``
    rounded to them, with any rounding mode; ``acc`` itself when nothing is rounded off."""
    shift = acc.f - out.f
    if shift <= 0:
        return acc
    lo, hi = acc.min_int >> shift, (acc.max_int >> shift) + 1
    width = max(2, signed_bits_for(lo, hi))
    return SQ(width - out.f, out.f)
