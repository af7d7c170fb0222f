"""Thresholding units: the hardware of :func:`hwnn.ref.binary.multithreshold`.

``MultiThreshold`` compares every lane's input with its ``2**k − 1`` thresholds in parallel
and turns the ``2**k − 1`` comparison bits (a thermometer code, since the thresholds ascend)
into the ``k``-bit count; ``Threshold`` is its one-bit case (a binarized neuron: batch norm +
sign folded by :func:`hwnn.plans.threshold.plan_batchnorm_sign`).

Why parallel comparators rather than a binary search over the thresholds: a search needs only
``k`` comparators, but each waits for the previous results, which pick its threshold through a
``2**j``-way multiplexer. Measured on iCE40 UP5K with a 12-bit input and constant thresholds
(``docs/binary.md``), an unpipelined search takes about half the logic cells at ``k = 4`` (102
against 196) and runs at about half the clock (21.9 against 40.5 MHz). Pipelining it would
cost ``k`` stages, each with a copy of the input. With thresholds in registers, the
multiplexers are pure cost. The parallel form has one comparator's delay. Its comparators are
against constants, which yosys simplifies, and one at an end of the input range becomes a
constant bit here. The thermometer code is decoded with one XOR per output bit, side by side
(:func:`_thermometer_count`). For the ``k ≤ 4`` of quantized networks that is at most 15
comparators per lane.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Signal, Value, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In

from ..checks import ParameterTypeError, ParameterValueError, check_bool, check_integer
from ..plans.threshold import ThresholdPlan
from ._activation import _Activation
from ._component import rejects_quietly

__all__ = ["MultiThreshold", "Threshold", "at_or_above", "count_code", "threshold_code",
           "thresholded"]


class MultiThreshold(_Activation):
    """``y = multithreshold(plan, x)`` (:func:`hwnn.ref.binary.multithreshold`) on every lane,
    one transfer per cycle.

    Each lane compares its input with its channel's ``2**k − 1`` thresholds at once (module
    docstring says why) and outputs ``out.min_int + c`` (or ``out.max_int − c`` for a
    descending channel), ``c`` the count of thresholds at or below the input. Latency 4 (input
    register, comparison bits, count, output register), ``ii`` 1; 3 for :class:`Threshold`,
    which has no count to decode.

    Parameters
    ----------
    plan : ThresholdPlan
        The thresholds; ``plan.channels`` is 1 (every lane shares them) or ``lanes``.
    lanes : int, optional
        Values per transfer (default ``plan.channels``).
    loadable : bool
        Keep the thresholds and directions in registers, initialized from ``plan`` and
        replaced through ``i_thresholds`` (default: constants, which cost no flip-flops).

    Members
    -------
    i : In(stream.Signature(codes of plan.in_format, or an ArrayLayout of lanes of them))
    o : Out(stream.Signature(codes of plan.out_format, likewise))
    i_thresholds : In(stream.Signature(StructLayout)), only when ``loadable``
        ``thresholds``: ``lanes · (2**k − 1)`` values, lane-major (lane ``j``'s thresholds at
        ``j·(2**k − 1)`` on), each of :attr:`threshold_shape`; ``descending``: one bit per
        lane. A load accepted in a cycle applies to the inputs accepted in that cycle and
        after; earlier inputs finish with the thresholds they were accepted with. The count
        is a sum of the comparison bits, so a load whose thresholds do not ascend still gives
        ``#{i : T_i ≤ s}``. The port is ready exactly when ``i`` is.

    Raises
    ------
    TypeError
        ``plan`` is not a :class:`ThresholdPlan`, ``lanes`` not an integer, ``loadable`` not a
        bool.
    ValueError
        ``lanes`` is not positive or does not match the plan's channels; for
        :class:`Threshold`, a plan with more than one output bit.
    """

    _plan_type = ThresholdPlan

    @rejects_quietly
    def __init__(self, plan, *, lanes=None, loadable=False, src_loc_at=0):
        if not isinstance(plan, ThresholdPlan):
            raise ParameterTypeError("plan", f"plan must be a ThresholdPlan (see "
                                             f"hwnn.plans.threshold), not {plan!r}")
        self._check_plan(plan)
        lanes = check_integer(plan.channels if lanes is None else lanes, "lanes", minimum=1)
        if plan.channels not in (1, lanes):
            raise ParameterValueError("lanes", f"lanes must be {plan.channels} (the plan's "
                                               f"channels) for a plan with more than one "
                                               f"channel, not {lanes}")
        self._loadable = check_bool(loadable, "loadable")
        self._stages = 1 if plan.k == 1 else 2
        super().__init__(plan, lanes=lanes, src_loc_at=src_loc_at)

    def _members(self) -> dict:
        """``i`` and ``o``, and with ``loadable`` the load port ``i_thresholds``."""
        members = super()._members()
        if self._loadable:
            members["i_thresholds"] = In(stream.Signature(self.load_layout))
        return members

    def _check_plan(self, plan):
        """Subclasses restrict the plans they take."""

    loadable = property(lambda self: self._loadable,
                        doc="Whether the thresholds live in registers loaded through "
                            "``i_thresholds``.")

    @property
    def threshold_shape(self):
        """The shape of one threshold: the input's, one bit wider (a threshold may lie one past
        the input range)."""
        width = self._plan.in_format.width + 1
        return signed(width) if self._plan.in_format.signed else unsigned(width)

    @property
    def load_layout(self) -> data.StructLayout:
        """The payload of ``i_thresholds`` (see the class docstring)."""
        return data.StructLayout({
            "thresholds": data.ArrayLayout(self.threshold_shape,
                                           self._lanes * len(self._plan.thresholds[0])),
            "descending": data.ArrayLayout(unsigned(1), self._lanes)})

    def describe(self) -> dict:
        return {**super().describe(), "kind": "threshold", "loadable": self._loadable}

    def _channel(self, index):
        return 0 if self._plan.channels == 1 else index

    def elaborate(self, platform):
        if self._loadable:
            self._load_registers()
        m = super().elaborate(platform)
        if self._loadable:
            load = self.i_thresholds
            # Loads move only with the pipeline (`advance` drives i.ready): a comparison in
            # flight is registered in the very cycle the registers change, so it never sees
            # thresholds newer than its input.
            m.d.comb += load.ready.eq(self.i.ready)
            with m.If(load.valid & load.ready):
                m.d.sync += [self._registers.eq(load.payload.thresholds),
                             self._directions.eq(load.payload.descending)]
        return m

    def _load_registers(self):
        plan, count = self._plan, len(self._plan.thresholds[0])
        thresholds = [int(t) for lane in range(self._lanes)
                      for t in plan.thresholds[self._channel(lane)]]
        directions = [int(plan.descending[self._channel(lane)]) for lane in range(self._lanes)]
        layout = self.load_layout
        self._registers = Signal(layout["thresholds"].shape, name="thresholds",
                                 init=thresholds)
        self._directions = Signal(layout["descending"].shape, name="descending",
                                  init=directions)
        self._count = count

    def _compute(self, m, x, result, advance, index):
        plan, name = self._plan, f"lane{index}"
        out = plan.out_format
        if self._loadable:
            count = self._count
            thresholds = [self._registers[index * count + i] for i in range(count)]
            descending = self._directions[index]
        else:
            thresholds = [int(t) for t in plan.thresholds[self._channel(index)]]
            descending = bool(plan.descending[self._channel(index)])
        above = Signal(len(thresholds), name=f"{name}_above")  # bit i: x >= T_(i+1)
        with m.If(advance):
            m.d.sync += above.eq(Cat(at_or_above(x, t, plan.in_format) for t in thresholds))
        if self._loadable:
            # The direction travels with the comparisons it belongs to: a load may replace
            # the register before they reach the output.
            staged = Signal(name=f"{name}_descending")
            with m.If(advance):
                m.d.sync += staged.eq(descending)
            descending = staged
        if plan.k == 1:
            # One threshold: the comparison bit is the output, inverted when descending.
            m.d.comb += result.eq(above ^ descending)
            return
        if self._loadable:
            c = Signal(plan.k, name=f"{name}_count")
            m.d.comb += c.eq(_balanced_sum([above[i] for i in range(len(thresholds))]))
        else:
            c = _thermometer_count(m, above, plan.k, name)
        with m.If(advance):
            m.d.sync += result.eq(count_code(c, out, descending))


class Threshold(MultiThreshold):
    """A binarized neuron per lane: output bit 1 (+1) where ``x ≥ T``, or ``x < T`` for a
    descending channel (batch norm with ``γ < 0``), i.e. ``multithreshold(plan, x)`` for a
    one-bit plan such as :func:`~hwnn.plans.threshold.plan_batchnorm_sign` makes. Latency 3,
    ``ii`` 1; parameters, members and errors as :class:`MultiThreshold`, whose ``plan`` must
    have a one-bit output.
    """

    def _check_plan(self, plan):
        if plan.k != 1:
            raise ParameterValueError("plan", f"plan must have a one-bit output for a Threshold "
                                              f"(use MultiThreshold), not {plan.out_format}")


def at_or_above(x, threshold, in_format):
    """``x >= threshold`` for ``x`` of ``in_format``; a constant bit for a constant threshold
    at an end of the range."""
    if isinstance(threshold, int):
        if threshold <= in_format.min_int:
            return Const(1, 1)
        if threshold > in_format.max_int:
            return Const(0, 1)
    return x >= threshold


def count_code(count, out_format, descending):
    """The output code of ``count`` thresholds at or below the input: ``out.min_int + c``, or
    ``out.max_int − c`` when ``descending`` (a bool, or a one-bit Value).

    Modulo ``2**k``, ``min_int + c`` is ``c`` with the sign bit flipped (``min_int`` is 0 or
    ``−2**(k−1)``) and ``max_int − c`` is ``~(min_int + c)``: bit flips, no adder."""
    k = out_format.width
    sign = Const(1 << (k - 1) if out_format.signed else 0, k)
    flips = sign ^ (descending.replicate(k) if isinstance(descending, Value)
                    else Const(-int(descending), k))
    return count ^ flips


def threshold_code(m, x, thresholds, descending, in_format, out_format, name: str):
    """Combinational ``multithreshold`` of ``x`` (codes of ``in_format``) with ascending
    ``thresholds`` (ints, or Values one bit wider than ``x``) and ``descending`` (a bool or a
    one-bit Value): the comparisons, the thermometer decode and the output code of
    ``out_format``, as :class:`MultiThreshold` computes them, without its registers."""
    above = Cat(at_or_above(x, t, in_format) for t in thresholds)
    if out_format.width == 1:
        return above ^ descending
    count = _thermometer_count(m, above, out_format.width, name)
    return count_code(count, out_format, descending)


def thresholded(m, x, plan, channel: int, name: str):
    """:func:`threshold_code` with channel ``channel`` of ``plan``'s constant thresholds."""
    return threshold_code(m, x, [int(t) for t in plan.thresholds[channel]],
                          bool(plan.descending[channel]), plan.in_format, plan.out_format, name)


def _thermometer_count(m, above, k, name):
    """The number of ones in the thermometer code ``above`` (bit ``i`` set implies every lower
    bit set, as with ascending thresholds) as ``k`` bits: bit ``j`` of a count ``c`` is the
    parity of ``c >> j``, the number of multiples of ``2**j`` at or below ``c``, so it is the
    XOR of the comparison bits at those multiples. Every bit is one XOR of at most
    ``2**(k-j) - 1`` bits, side by side (two LUT4 levels for ``k ≤ 4``), where decoding the
    bits one after the other would chain ``k`` multiplexers."""
    count = Signal(k, name=f"{name}_count")
    for j in range(k):
        # above[i] is "x >= T_(i+1)", so the multiple q * 2**j sits at index q * 2**j - 1.
        taps = [above[q * (1 << j) - 1] for q in range(1, ((1 << k) - 1 >> j) + 1)]
        m.d.comb += count[j].eq(Cat(*taps).xor())
    return count


def _balanced_sum(terms):
    """The sum of ``terms`` as a balanced tree of additions (depth ``log2`` of their number,
    where Python's ``sum`` would chain them)."""
    while len(terms) > 1:
        terms = [a + b for a, b in zip(terms[::2], terms[1::2])] + terms[len(terms) & ~1:]
    return terms[0]
