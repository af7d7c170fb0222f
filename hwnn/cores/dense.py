"""Dense (fully connected) layer on a folded multiplier MAC array."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, Value, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..plans.dense import DensePlan, mac_schedule
from ._component import rejects_quietly
from .requantize import format_shape, requantize

__all__ = ["Dense"]


class Dense(wiring.Component):
    """``y = requantize(W·x + b)`` for constant weights, on ``parallelism`` multipliers.

    Matches :func:`hwnn.ref.dense.dense` bit for bit: products are accumulated exactly in
    ``plan.acc_format`` and narrowed once, to ``plan.out_format``, with the plan's rounding and
    overflow modes.

    Structure: the input vector is registered; each multiplier (lane) walks a fixed slice of the
    output-major product list (see :func:`hwnn.plans.dense.mac_schedule`), reading its weights
    from a ROM (``amaranth.lib.memory``) or, when fully parallel, from constants, and
    accumulates one product per cycle; a final stage adds each output's lane partial sums and
    the bias, requantizes and registers the output vector.

    Throughput: one vector every ``ii = ceil(n_in·n_out / parallelism)`` cycles.
    Latency: ``ii + 2`` cycles from the cycle an input is accepted to the cycle its output is
    first valid (input register, ``ii`` MAC cycles, output stage).

    Parameters
    ----------
    plan : DensePlan
        Quantized weights, bias and formats, from :func:`hwnn.plans.dense.plan_dense`.
    parallelism : int
        Multipliers to use, from 1 to ``n_in·n_out``.

    Members
    -------
    i : In(stream.Signature(data.ArrayLayout(<in_format shape>, n_in)))
        Input vector, element 0 in the least significant bits.
    o : Out(stream.Signature(data.ArrayLayout(<out_format shape>, n_out)))
        Output vector.

    Raises
    ------
    TypeError
        ``plan`` is not a DensePlan or ``parallelism`` not an integer.
    ValueError
        ``parallelism`` is outside ``1 … n_in·n_out``.
    """

    @rejects_quietly
    def __init__(self, plan: DensePlan, *, parallelism: int = 1):
        if not isinstance(plan, DensePlan):
            raise TypeError(f"plan must be a DensePlan (see hwnn.plans.dense.plan_dense), "
                            f"not {plan!r}")
        self._plan = plan
        self._schedule = mac_schedule(plan, parallelism)
        self._parallelism = int(parallelism)
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(format_shape(plan.in_format), plan.n_in))),
            "o": Out(stream.Signature(data.ArrayLayout(format_shape(plan.out_format),
                                                       plan.n_out))),
        })

    plan = property(lambda self: self._plan, doc="The DensePlan this core implements.")
    parallelism = property(lambda self: self._parallelism, doc="Requested multipliers.")
    multipliers = property(lambda self: self._schedule.multipliers,
                           doc="Multipliers actually instantiated (lanes with work).")
    ii = property(lambda self: self._schedule.ii,
                  doc="Cycles between accepted inputs at full rate.")
    latency = property(lambda self: self._schedule.ii + 2,
                       doc="Cycles from an accepted input to its output, without stalls.")
    in_format = property(lambda self: self._plan.in_format)
    out_format = property(lambda self: self._plan.out_format)

    def describe(self) -> dict:
        """Parameters and formats for manifests and reports (JSON-serializable)."""
        return {"kind": "dense", "class": "Dense", "parallelism": self._parallelism,
                "multipliers": self.multipliers, "latency": self.latency, "ii": self.ii,
                **self._plan.describe()}

    def elaborate(self, platform):
        m = Module()
        plan, schedule = self._plan, self._schedule
        ii = schedule.ii
        acc_shape = signed(plan.acc_format.width)

        x = Signal.like(self.i.payload, name="x")
        busy = Signal()                  # a vector is in the MAC phase
        t = Signal(range(ii), name="t")  # MAC cycle within the vector
        partials_valid = Signal()        # every partial sum of a vector is complete

        out_free = ~self.o.valid | self.o.ready
        finish = partials_valid & out_free
        # The MAC phase may only overwrite partial sums that the output stage has taken.
        advance = ~partials_valid | finish
        last = t == ii - 1
        mac = busy & advance

        m.d.comb += self.i.ready.eq(advance & (~busy | last))
        with m.If(finish):
            m.d.sync += partials_valid.eq(0)
        with m.If(mac):
            m.d.sync += t.eq(Mux(last, 0, t + 1))
            with m.If(last):
                m.d.sync += [busy.eq(0), partials_valid.eq(1)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [x.eq(self.i.payload), busy.eq(1), t.eq(0)]

        sums = [[] for _ in range(plan.n_out)]
        selectors = {}  # lanes that read the inputs in the same order share one multiplexer
        for index, lane in enumerate(schedule.lanes):
            product = self._lane_product(m, index, lane, x, t, ii, selectors)
            starts = [first for _, first, _ in lane.segments]
            segment_start = Const(1) if ii == 1 else _any_equal(t, starts)
            acc = Signal(acc_shape, name=f"acc{index}")
            acc_next = Signal(acc_shape, name=f"acc{index}_next")
            m.d.comb += acc_next.eq(Mux(segment_start, 0, acc) + product)
            with m.If(mac):
                m.d.sync += acc.eq(acc_next)
            for row, _, last_t in lane.segments:
                if last_t == lane.last_busy_cycle:
                    # The final segment stays in the accumulator until the next vector starts,
                    # which is no earlier than the output stage reads it.
                    sums[row].append(acc)
                    continue
                partial = Signal(acc_shape, name=f"partial{index}_row{row}")
                with m.If(mac & (t == last_t)):
                    m.d.sync += partial.eq(acc_next)
                sums[row].append(partial)

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(finish):
            m.d.sync += self.o.valid.eq(1)
            for row, terms in enumerate(sums):
                total = Signal(acc_shape, name=f"sum{row}")
                m.d.comb += total.eq(sum(terms, Const(int(plan.bias[row]), acc_shape)))
                m.d.sync += self.o.payload[row].eq(
                    requantize(total, plan.acc_format, plan.out_format, plan.rounding,
                               plan.overflow))
        return m

    def _lane_product(self, m, index, lane, x, t, ii, selectors):
        """The product this lane computes in cycle ``t``: weight ROM × selected input."""
        weight_shape = format_shape(self._plan.weight_format)
        if ii == 1:
            weight = Const(lane.weight[0], weight_shape)
        else:
            rom = Memory(shape=weight_shape, depth=ii, init=lane.weight)
            m.submodules[f"weights{index}"] = rom
            port = rom.read_port(domain="comb")
            m.d.comb += port.addr.eq(t)
            weight = port.data
        if lane.column not in selectors:
            selectors[lane.column] = self._input_selector(m, index, lane.column, x, t, ii)
        selected = selectors[lane.column]
        product = Signal(signed(len(Value.cast(selected)) + len(weight) + 1),
                         name=f"product{index}")
        m.d.comb += product.eq(selected * weight)
        return product


    def _input_selector(self, m, index, columns, x, t, ii):
        """The input element that cycle ``t`` reads, for the column sequence ``columns``."""
        if len(set(columns)) == 1:
            return x[columns[0]]
        if list(columns) == list(range(ii)):
            return x[t]  # the cycle counter is the column index: no ROM needed
        rom = Memory(shape=range(self._plan.n_in), depth=ii, init=columns)
        m.submodules[f"columns{index}"] = rom
        port = rom.read_port(domain="comb")
        m.d.comb += port.addr.eq(t)
        return x[port.data]


def _any_equal(value, constants):
    """``value`` equals one of ``constants``."""
    result = Const(0)
    for constant in constants:
        result = result | (value == constant)
    return result
