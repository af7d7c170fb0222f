"""The folded MAC array: ``y = requantize(W·x + b)`` on a few product lanes, products pluggable.

:class:`FoldedMac` is the block that :class:`~hwnn.cores.dense.Dense` (``arith="mult"``) and
:class:`~hwnn.cores.shift_mac.ShiftMac` are built on. What forms a product (a multiplier, a
barrel shifter, later an XNOR-popcount) is a :class:`Product`; the array around it (input
register, issue sequencing, weight memories and their load port, accumulators with bias,
partial sums and the requantize/output stages) is the same for all of them.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Array, Const, Module, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..checks import ParameterTypeError, ParameterValueError, check_bool, check_integer
from ..fixed import SQ, Format, Overflow, Rounding, signed_bits_for
from ..plans.dense import DensePlan, mac_schedule
from ._component import rejects_quietly
from ._mac import accumulate_lane, mac_sequencer, select_input
from ._output import registered_output
from .requantize import format_shape, requantize

__all__ = ["Product", "Multiply", "RowOutput", "FoldedMac"]


class Product:
    """What a :class:`FoldedMac` lane does with an input element and a weight.

    A subclass states how a weight is stored (``word_shape``, :meth:`encode`), the exact shape
    of every product (``shape``) and the register stages the product takes (``depth``), and
    builds the datapath in :meth:`operand` and :meth:`product`. The array calls them once per
    lane (:meth:`operand` once per distinct input sequence: lanes that read the inputs in the
    same order share it).

    Timing, in the array's pipeline (every register enabled by ``advance``): in the operand
    stage the lane has the registered result of :meth:`operand` and its weight word (a
    synchronous memory read); :meth:`product` turns them into the product through
    ``depth - 1`` register stages of its own, and the array registers that value once more (the
    product register, of ``shape``). Both methods get the module ``m`` to add logic to,
    ``name`` (the lane's index) to suffix the names of the signals they make, and ``advance``.

    Attributes
    ----------
    word_shape : Shape
        A stored weight word.
    shape : Shape
        Holds every product of an input code and a weight word exactly.
    depth : int
        Register stages from the operand stage to the product register, that one included (1:
        :meth:`product` is combinational).
    """

    word_shape: Shape
    shape: Shape
    depth = 1

    def encode(self, codes) -> list[int]:
        """The stored words of weight codes ``codes`` (a 1-D integer array)."""
        return [int(c) for c in codes]

    def operand(self, m, name, element, advance):
        """Register the selected input ``element`` (issue stage) into the operand stage.

        Returns whatever :meth:`product` takes as its operand; here the element's register.
        """
        operand = Signal.like(element, name=f"operand{name}")
        with m.If(advance):
            m.d.sync += operand.eq(element)
        return operand

    def product(self, m, name, operand, word, advance):
        """The product of ``operand`` (from :meth:`operand`) and the weight ``word``, after
        ``depth - 1`` register stages of its own (enabled by ``advance``)."""
        raise NotImplementedError


class Multiply(Product):
    """``element × weight`` on a multiplier (a DSP block where the target has one); weights are
    stored as codes of ``weight_format``. ``depth`` 1.

    Parameters
    ----------
    in_format, weight_format : Format
    """

    def __init__(self, in_format: Format, weight_format: Format):
        self.word_shape = format_shape(weight_format)
        self.shape = signed(in_format.width + weight_format.width + 1)

    def product(self, m, name, operand, word, advance):
        return operand * word


class RowOutput:
    """What a :class:`FoldedMac` outputs for each finished sum instead of requantizing it (a
    binarized layer's thresholds): ``shape`` of one output, and :meth:`build`, the
    combinational logic from a row's exact sum (codes of the plan's ``acc_format``) to it.
    The array keeps each row's output rather than its sum, so a lane holds ``shape`` bits per
    finished row."""

    shape: Shape

    def build(self, m, row: int, value):
        """The output of row ``row`` for its sum ``value``, built into ``m``."""
        raise NotImplementedError

    def indexed(self, m, lane: int, rows, index, value):
        """The output of row ``rows[index]`` for its sum ``value`` (``index`` a Value below
        ``len(rows)``): what lane ``lane`` stores as each of ``rows`` finishes, one row per
        cycle, in order. By default :meth:`build` of each row, multiplexed; a subclass may
        share the logic between the rows."""
        outputs = [self.build(m, row, value) for row in rows]
        if len(outputs) == 1:
            return outputs[0]
        # Padded to a power of two: every index pattern is covered.
        padded = outputs + [outputs[-1]] * ((1 << (len(outputs) - 1).bit_length()) - len(outputs))
        return Array(padded)[index]


class FoldedMac(wiring.Component):
    """``y = requantize(W·x + b)`` (:func:`hwnn.ref.dense.dense`) on ``parallelism`` lanes.

    Bit-exact with :func:`hwnn.ref.dense.dense` for ``plan`` with the weights in effect
    (``product`` computes ``x·w`` exactly for every weight it stores; with a weight port, the
    weights are those loaded so far, see *Ordering*). Products are accumulated exactly in
    ``plan.acc_format`` and narrowed once to ``plan.out_format`` with the plan's modes.

    Structure: the input vector is registered; each lane walks a fixed slice of the
    output-major product list (:func:`hwnn.plans.dense.mac_schedule`) and keeps its slice of
    the weights in an ``amaranth.lib.memory.Memory`` of depth ``ii`` with a synchronous read
    port (a constant when ``ii == 1`` and there is no weight port). Register stages per vector:
    ``ii`` issue cycles, operands (weight word; input element, see :meth:`Product.operand`),
    ``product.depth`` product stages, accumulator (each output's sum starts at its bias; a
    lane's finished partial sums are held), then the output: with ``requantize_stages=1`` the
    lanes' partial sums are added, requantized and registered in one stage; with ``2`` the sum
    is rounded to the output's fraction bits in one stage and saturated (or wrapped) in the
    next, so the rounding adder and the saturation comparators never share a clock period.

    Throughput: one vector every ``ii = ceil(n_in·n_out / parallelism)`` cycles.
    Latency: ``ii + 2 + product.depth + requantize_stages`` cycles from the cycle a vector is
    accepted to the cycle its output is first valid.

    Rows (``rows=True``, one lane: ``parallelism`` 1): each output leaves on its own, in row
    order, one transfer per row, as soon as its sum is complete: row ``r`` of a vector is
    valid ``latency − (n_out − 1 − r)·n_in`` cycles after the vector was accepted (the last
    row at ``latency``), so a consumer that takes outputs one at a time needs no vector of
    them. The accumulator holds a finished row until the output stage takes it: no partial
    sums are kept and one requantizer serves every row.

    Ordering (with ``weight_port``): a vector is computed with exactly the weights of the loads
    accepted in earlier cycles. ``i_weight`` is ready while no vector is being issued; ``i`` is
    not ready in a cycle where ``i_weight.valid`` is high (offered loads go first, so
    ``i_weight.valid`` must not depend on ``i.ready``). A load accepted in cycle ``c`` is
    written at the end of cycle ``c + 1``, before any read of a vector accepted after ``c``.
    A load to ``addr >= n_in·n_out`` is accepted and ignored. Reset does not clear the weights.
    Sums are exact only if ``plan.acc_format`` holds every sum for every word the port can
    carry (a :class:`~hwnn.plans.shift_mac.ShiftMacPlan`'s accumulator does).

    Parameters
    ----------
    plan : DensePlan
        Formats, modes, bias and the weight codes the memories hold at configuration.
    product : Product
        What makes a product, and how weights are stored.
    parallelism : int
        Lanes to use, from 1 (the default) to ``n_in·n_out``.
    weight_port : bool
        Add the ``i_weight`` stream that loads weight words at run time (default False).
    requantize_stages : int
        1 (default) or 2, see above.
    rows : bool
        Send one output per transfer, in row order (default False: the whole vector), see
        above; needs ``parallelism`` 1.
    row_output : RowOutput, optional
        Output each row's ``row_output`` value (of its shape) instead of the requantized sum;
        each lane keeps the values of its finished rows, not their sums: the rows it finishes
        before its last shift into one register, their values from
        :meth:`RowOutput.indexed`. Needs every row in one lane (``parallelism`` dividing
        ``n_out``) and ``requantize_stages`` 1. When a lane's first row takes three cycles or
        more (and ``ii > 1``), those registers are the output payload itself
        (:attr:`rows_in_output`): no second copy of the vector; the array then waits, only
        while the output still holds the vector before, to finish a row (never when the
        consumer takes each output within a cycle, so ``ii`` and latency are unchanged).
    memory_attrs : dict, optional
        Attributes of the weight memories (``{"ram_style": "block"}`` puts them in block RAM
        where yosys, by its own estimate, would build small ones from logic).

    Members
    -------
    i : In(stream.Signature(data.ArrayLayout(<in_format shape>, n_in)))
        Input vector, element 0 in the least significant bits.
    i_weight : In(stream.Signature(data.StructLayout({"addr": unsigned, "code": word_shape})))
        Only with ``weight_port``: one weight word per transfer, ``addr = row·n_in + column``.
    o : Out(stream.Signature(data.ArrayLayout(<out_format shape>, n_out)))
        Output vector (with ``rows``: ``ArrayLayout(<out_format shape>, 1)``, one row; with
        ``row_output``: its shape).

    Raises
    ------
    TypeError
        ``plan`` is not a DensePlan, ``product`` not a Product, ``row_output`` not a RowOutput,
        ``memory_attrs`` not a dict, ``parallelism`` or
        ``requantize_stages`` not an integer, ``weight_port`` or ``rows`` not a bool
        (``ParameterTypeError``, ``exc.parameter`` names it).
    ValueError
        ``parallelism`` outside ``1 … n_in·n_out``, ``requantize_stages`` not 1 or 2, ``rows``
        with ``parallelism`` other than 1, ``row_output`` with rows split between lanes, with
        ``requantize_stages`` 2 or with ``rows`` (``ParameterValueError``).
    """

    @rejects_quietly
    def __init__(self, plan: DensePlan, product: Product, *, parallelism: int = 1,
                 weight_port: bool = False, requantize_stages: int = 1, rows: bool = False,
                 row_output: RowOutput | None = None, memory_attrs: dict | None = None):
        if not isinstance(plan, DensePlan):
            raise ParameterTypeError("plan", f"plan must be a DensePlan (see "
                                             f"hwnn.plans.dense.plan_dense), not {plan!r}")
        if not isinstance(product, Product):
            raise ParameterTypeError("product", f"product must be a hwnn.cores.mac.Product, "
                                                f"not {product!r}")
        products = plan.n_in * plan.n_out
        self._plan, self._product = plan, product
        self._parallelism = check_integer(parallelism, "parallelism", minimum=1,
                                          maximum=products)
        self._weight_port = check_bool(weight_port, "weight_port")
        self._requantize_stages = check_integer(requantize_stages, "requantize_stages",
                                                minimum=1, maximum=2)
        self._rows = check_bool(rows, "rows")
        if self._rows and self._parallelism != 1:
            raise ParameterValueError(
                "rows", f"rows needs parallelism 1 (one lane, so each row finishes in a cycle "
                        f"of its own), not parallelism={self._parallelism}")
        self._schedule = mac_schedule(plan, self._parallelism)
        self._row_output = self._check_row_output(row_output)
        # With row outputs: the cycles in which rows end before a lane's last one (every lane
        # ends its rows in the same cycles as lane 0, up to its own number of rows).
        self._early_ends = () if row_output is None else tuple(
            last for _, _, last in self._schedule.lanes[0].segments[:-1])
        # The early rows' outputs can be the output register itself when the next vector's
        # first early row ends two cycles or more after the output is pushed, so a consumer
        # that takes it at once never stalls the array (see `elaborate`).
        self._rows_in_output = (bool(self._early_ends) and self._early_ends[0] >= 2
                                and self._schedule.ii > 1)
        if memory_attrs is not None and not isinstance(memory_attrs, dict):
            raise ParameterTypeError("memory_attrs", f"memory_attrs must be a dict or None, "
                                                     f"not {memory_attrs!r}")
        self._memory_attrs = dict(memory_attrs or {})
        members = {
            "i": In(stream.Signature(data.ArrayLayout(format_shape(plan.in_format), plan.n_in))),
        }
        self._weight_layout = None
        if weight_port:
            self._weight_layout = data.StructLayout({
                "addr": unsigned(max(1, (products - 1).bit_length())),
                "code": product.word_shape,
            })
            members["i_weight"] = In(stream.Signature(self._weight_layout))
        out_shape = format_shape(plan.out_format) if row_output is None else row_output.shape
        members["o"] = Out(stream.Signature(data.ArrayLayout(out_shape,
                                                             1 if rows else plan.n_out)))
        super().__init__(members)

    def _check_row_output(self, row_output):
        if row_output is None:
            return None
        if not isinstance(row_output, RowOutput):
            raise ParameterTypeError("row_output", f"row_output must be a "
                                                   f"hwnn.cores.mac.RowOutput or None, not "
                                                   f"{row_output!r}")
        lanes = [{row for row, _, _ in lane.segments} for lane in self._schedule.lanes]
        split = [row for row in range(self._plan.n_out)
                 if sum(row in rows for rows in lanes) > 1]
        if split or self._requantize_stages != 1 or self._rows:
            why = (f"row {split[0]} is split between lanes at parallelism {self._parallelism}"
                   if split else "requantize_stages 2 or rows is given")
            raise ParameterValueError("row_output", f"row_output needs every row in one lane, "
                                                    f"requantize_stages 1 and no rows; {why}")
        return row_output

    plan = property(lambda self: self._plan, doc="The DensePlan (initial weights) it computes.")
    product = property(lambda self: self._product, doc="What makes a product.")
    schedule = property(lambda self: self._schedule, doc="The lanes' MacSchedule.")
    parallelism = property(lambda self: self._parallelism, doc="Requested lanes.")
    lanes = property(lambda self: self._schedule.multipliers,
                     doc="Lanes actually instantiated (lanes with work).")
    weight_port = property(lambda self: self._weight_port, doc="Has the ``i_weight`` port.")
    weight_layout = property(lambda self: self._weight_layout,
                             doc="Payload layout of ``i_weight`` (``addr``, then ``code``), "
                                 "or None.")
    rows = property(lambda self: self._rows,
                    doc="Outputs leave one row per transfer (else the whole vector).")
    ii = property(lambda self: self._schedule.ii,
                  doc="Cycles between accepted inputs at full rate.")
    rows_in_output = property(lambda self: self._rows_in_output,
                              doc="With ``row_output``: the rows a lane finishes before its "
                                  "last are kept in the output register itself (no copy).")

    @property
    def latency(self) -> int:
        """Cycles from an accepted input to its output, without stalls."""
        return self._schedule.ii + 2 + self._product.depth + self._requantize_stages

    def elaborate(self, platform):
        m = Module()
        plan, schedule = self._plan, self._schedule
        ii = schedule.ii
        acc_shape = signed(plan.acc_format.width)

        # Issue stage: the input register and the cycle counter `t` of the vector in flight.
        x = Signal.like(self.i.payload, name="x")
        # Every partial sum of a vector is complete (with `rows`: the accumulator holds a
        # finished row).
        partials_valid = Signal()
        result = Signal.like(self.o.payload, name="result")
        # Results come every ii cycles, or with `rows` every n_in: a second output register
        # only pays when they may come every cycle.
        full_rate = (plan.n_in if self._rows else ii) == 1
        blocked = Signal(name="blocked")
        if self._rows_in_output:
            # The lanes shift their early rows' outputs into registers that are the output
            # payload: they may change only while the output holds nothing, so the array
            # stalls (`blocked`) when an early row would finish while it does. The last rows
            # are registered when the vector is pushed.
            out_accept = ~self.o.valid
            finish = partials_valid & out_accept
            with m.If(self.o.ready):
                m.d.sync += self.o.valid.eq(0)
            with m.If(finish):
                m.d.sync += self.o.valid.eq(1)
        elif self._requantize_stages == 1:
            # The output stage registers each result; `out_accept` depends on flip-flops only.
            out_accept = registered_output(m, self.o, partials_valid, result, full_rate=full_rate)
            finish = partials_valid & out_accept
        else:
            # The lanes' sums are added and rounded into `rounded`, then saturated (or wrapped)
            # into the registered output.
            rounded_valid = Signal()
            out_accept = registered_output(m, self.o, rounded_valid, result, full_rate=full_rate)
            with m.If(rounded_valid & out_accept):
                m.d.sync += rounded_valid.eq(0)
            finish = partials_valid & (~rounded_valid | out_accept)
            with m.If(finish):
                m.d.sync += rounded_valid.eq(1)
        # The whole MAC pipeline moves in lock step, and only while the partial sums it would
        # overwrite have been taken by the output stage.
        advance = (~partials_valid | finish) & ~blocked
        accepted = self.i.valid & self.i.ready
        ends = ([last for _, _, last in schedule.lanes[0].segments] if self._rows
                else [ii - 1])
        busy, last_issue, t, t_product, accumulate, early = mac_sequencer(
            m, ii, accepted=accepted, advance=advance, finish=finish,
            partials_valid=partials_valid, depth=self._product.depth, ends=ends,
            early_ends=self._early_ends)
        if self._rows_in_output:
            m.d.comb += blocked.eq(self.o.valid & early[0])
        ready = advance & (~busy | last_issue)
        load = write_code = None
        if self._weight_port:
            # Weights are read only in the issue cycles (`busy`): a load accepted while `busy`
            # is low cannot reach a vector in flight. Offered loads go before vectors.
            load = Signal()
            write_code = Signal(self._product.word_shape, name="write_code")
            m.d.sync += write_code.eq(self.i_weight.payload.code)
            m.d.comb += [self.i_weight.ready.eq(~busy), load.eq(self.i_weight.valid & ~busy)]
            ready = ready & ~self.i_weight.valid
        m.d.comb += self.i.ready.eq(ready)
        with m.If(accepted):
            m.d.sync += x.eq(self.i.payload)

        sums = [[] for _ in range(plan.n_out)]
        operands = {}  # lanes that read the inputs in the same order share one register
        for index, lane in enumerate(schedule.lanes):
            word = self._weight_word(m, index, lane, t, advance, load, write_code)
            if lane.column not in operands:
                selected = select_input(m, index, lane.column, x, plan.n_in, t, ii)
                operands[lane.column] = self._product.operand(m, index, selected, advance)
            value = self._product.product(m, index, operands[lane.column], word, advance)
            product = Signal(self._product.shape, name=f"product{index}")
            with m.If(advance):
                m.d.sync += product.eq(value)
            acc = accumulate_lane(m, index, lane, product, t=t_product, advance=advance,
                                  accumulate=accumulate, acc_shape=acc_shape, bias=plan.bias,
                                  sums=None if self._rows else sums,
                                  row_output=self._row_output, early=early)
        if self._rows:     # the one lane's accumulator holds each row in turn
            sums = [[acc]]

        if self._requantize_stages == 2:
            mid_format = rounded_format(plan.acc_format, plan.out_format)
        last_rows = {lane.segments[-1][0] for lane in schedule.lanes}
        for row, terms in enumerate(sums):
            if self._rows_in_output:
                if row in last_rows:   # registered as the vector is pushed
                    held = Signal(self._row_output.shape, name=f"held_row{row}")
                    with m.If(finish):
                        m.d.sync += held.eq(terms[0])
                    terms = [held]
                m.d.comb += self.o.payload[row].eq(terms[0])
                continue
            if self._row_output is not None:   # one lane's output for the row, no requantize
                m.d.comb += result[row].eq(terms[0])
                continue
            total = Signal(acc_shape, name=f"sum{row}")
            m.d.comb += total.eq(sum(terms[1:], terms[0]))
            if self._requantize_stages == 1:
                m.d.comb += result[row].eq(requantize(total, plan.acc_format, plan.out_format,
                                                      plan.rounding, plan.overflow))
                continue
            # Rounding to out_format's fraction bits into a format wide enough for every
            # rounded sum is exact, so rounding there and fitting to out_format next is
            # requantize itself.
            rounded = Signal(signed(mid_format.width), name=f"rounded{row}")
            with m.If(finish):
                m.d.sync += rounded.eq(requantize(total, plan.acc_format, mid_format,
                                                  plan.rounding, Overflow.WRAP))
            m.d.comb += result[row].eq(requantize(rounded, mid_format, plan.out_format,
                                                  Rounding.TRUNC, plan.overflow))
        return m

    def _weight_word(self, m, index, lane, t, advance, load, write_code):
        """This lane's weight word, one cycle after issue: a constant, or a synchronous read.

        Lane ``index`` holds weights ``first … first + ii - 1`` (``first = index·ii``); slots
        beyond ``n_in·n_out`` in the last lane hold the word of weight 0, and a load there is
        ignored.
        """
        ii = self._schedule.ii
        words = self._product.encode(np.asarray(lane.weight, dtype=np.int64))
        if ii == 1 and not self._weight_port:
            return Const(words[0], self._product.word_shape)
        # A synchronous read port is the operand register, and lets yosys use block RAM for
        # deep weight memories.
        memory = Memory(shape=self._product.word_shape, depth=ii, init=words,
                        attrs=self._memory_attrs)
        m.submodules[f"weights{index}"] = memory
        if self._weight_port:
            self._write_port(m, index, memory, load, write_code)
        # Reads are not transparent: loads never coincide with the reads of a vector.
        read = memory.read_port(domain="sync")
        m.d.comb += [read.addr.eq(t), read.en.eq(advance)]
        return read.data

    def _write_port(self, m, index, memory, load, write_code):
        """Write the loads addressed to lane ``index``'s slice into its memory.

        The write is registered: the address compare and subtraction run in the cycle the load
        is accepted, the memory's word decode in the next.
        """
        ii = self._schedule.ii
        first = index * ii
        stop = min(first + ii, self._plan.n_in * self._plan.n_out)
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


def rounded_format(acc: Format, out: Format) -> Format:
    """The narrowest signed format with ``out``'s fraction bits that holds every code of ``acc``
    rounded to them, with any rounding mode; ``acc`` itself when nothing is rounded off."""
    shift = acc.f - out.f
    if shift <= 0:
        return acc
    lo, hi = acc.min_int >> shift, (acc.max_int >> shift) + 1
    width = max(2, signed_bits_for(lo, hi))
    return SQ(width - out.f, out.f)
