"""Pooling over time in hardware: the Amaranth twin of :func:`hwnn.ref.pool.pool1d`."""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..checks import ParameterTypeError, ParameterValueError, check_enum, check_integer
from ..fixed import Format, Overflow, Rounding, signed_bits_for
from ..plans.pool import Pool1dPlan
from ..plans.shift_add import build as build_graph
from ..ref.integers import divide_rounded
from ._component import rejects_quietly
from .framed import frame_layout
from .requantize import format_shape, requantize, requantize_has_logic
from .shift_add import graph_datapath

__all__ = ["Pool1d", "constant_divide", "divide_stages", "reciprocal",
           "times_constant"]


def reciprocal(divisor: int, bits: int) -> tuple[int, int]:
    """``(multiplier, shift)`` with ``(n·multiplier) >> shift == n // divisor`` for every
    ``0 <= n < 2**bits``.

    ``shift = bits + ceil(log2(divisor))`` and ``multiplier = ceil(2**shift / divisor)``. Proof:
    with ``e = multiplier·divisor − 2**shift`` (``0 <= e < divisor <= 2**ceil(log2 divisor)``),
    ``n·multiplier / 2**shift = n/divisor + n·e/(divisor·2**shift)`` and the second term is
    below ``2**bits·2**ceil(log2 divisor)/(divisor·2**shift) = 1/divisor``, while the fraction
    of ``n/divisor`` is at most ``(divisor − 1)/divisor``: the floor cannot move.

    Raises
    ------
    TypeError, ValueError
        ``divisor`` or ``bits`` not a positive integer.
    """
    divisor = check_integer(divisor, "divisor", minimum=1)
    bits = check_integer(bits, "bits", minimum=1)
    shift = bits + (divisor - 1).bit_length()
    return -(-(1 << shift) // divisor), shift


def divide_stages(divisor: int) -> int:
    """Register stages :func:`constant_divide` adds when given ``register``: 0 for a power of
    two (a shift), else 1."""
    divisor = check_integer(divisor, "divisor", minimum=1)
    return int(divisor & (divisor - 1) != 0)


def times_constant(m: Module, value, constant: int, hi: int, name: str) -> Value:
    """``value · constant`` for a ``value`` in ``[0, hi]`` and a non-negative integer
    ``constant``, on the shortest shift-add graph hwnn finds for it
    (:func:`hwnn.plans.shift_add.build`, built by
    :func:`~hwnn.cores.shift_add.graph_datapath`, combinational): adders, never a multiplier
    (a product by a constant would take a DSP, of which an iCE40 UP5K has 8)."""
    constant = check_integer(constant, "constant", minimum=0)
    if constant == 0:
        return Const(0, 1)
    graph = build_graph([[constant]], [(0, hi)])
    (outputs, _) = graph_datapath(m, graph, [value], pipeline=0, advance=Const(1), name=name)
    node, sign, shift = outputs[0]
    return node << shift if sign > 0 else -(node << shift)


def constant_divide(m: Module, value, lo: int, hi: int, divisor: int, rounding,
                    register=None) -> Signal:
    """Drive (in ``m.d.comb``) and return a signal holding ``divide_rounded(value, divisor,
    rounding)`` (:mod:`hwnn.ref.integers`) for a signed ``value`` whose codes lie in
    ``[lo, hi]``; the result is signed, just wide enough for the quotients of that range.

    A power-of-two divisor is an arithmetic shift with the rounding of
    :func:`~hwnn.cores.requantize.requantize` (no multiplier). Any other divisor: the range is
    moved to non-negative numbers by adding ``c·divisor`` (``c`` the smallest integer that
    does it), the floor quotient comes from a multiply by the constant of :func:`reciprocal`
    (exact on that range; shift-add, :func:`times_constant`), the remainder ``n − q·divisor``
    decides the rounding exactly as ``divide_rounded`` does, and ``c`` is subtracted again.
    With ``register`` (an enable signal), the floor quotient and the moved dividend are
    registered under it between the multiply and the rounding (:func:`divide_stages` says
    whether that makes a stage).

    Raises
    ------
    TypeError, ValueError
        ``divisor`` not a positive integer, ``lo > hi``, or ``rounding`` not a Rounding.
    """
    divisor = check_integer(divisor, "divisor", minimum=1)
    rounding = check_enum(Rounding, rounding, "rounding")
    lo, hi = int(lo), int(hi)
    if lo > hi:
        raise ParameterValueError("lo", f"lo must be at most hi ({hi}), not {lo}")
    value = Value.cast(value)
    if not value.shape().signed:
        value = Cat(value, Const(0, 1)).as_signed()
    q_lo, q_hi = (int(q) for q in divide_rounded(np.array([lo, hi]), divisor, rounding))
    quotient = Signal(signed(max(2, signed_bits_for(q_lo, q_hi))), name="quotient")
    exponent = divisor.bit_length() - 1
    if divisor == 1 << exponent:
        # value as a code with `exponent` fraction bits, requantized to an integer.
        width = max(len(value), exponent + 2)
        dividend = Signal(signed(width), name="dividend")
        m.d.comb += [dividend.eq(value),
                     quotient.eq(requantize(dividend, Format(True, width - exponent, exponent),
                                            Format(True, len(quotient), 0), rounding,
                                            Overflow.WRAP))]
        return quotient
    offset = -(lo // divisor) if lo < 0 else 0  # the smallest c with lo + c·divisor >= 0
    bits = max(1, (hi + offset * divisor).bit_length())
    multiplier, shift = reciprocal(divisor, bits)
    moved = Signal(bits, name="dividend")
    floor = Signal(range(((1 << bits) - 1) // divisor + 1), name="floor")
    top = (1 << bits) - 1
    m.d.comb += [moved.eq(value + offset * divisor),
                 floor.eq(times_constant(m, moved, multiplier, top, "reciprocal") >> shift)]
    if register is not None:
        # The multiply's adders in one stage, the remainder and the rounding in the next.
        moved_r = Signal.like(moved, name="dividend_r")
        floor_r = Signal.like(floor, name="floor_r")
        with m.If(register):
            m.d.sync += [moved_r.eq(moved), floor_r.eq(floor)]
        moved, floor = moved_r, floor_r
    # Twice the remainder, compared with divisor.
    remainder2 = (moved - times_constant(m, floor, divisor, top // divisor, "divisor")) << 1
    if rounding is Rounding.TRUNC:
        round_up = Const(0, 1)
    elif rounding is Rounding.HALF_UP:
        round_up = remainder2 >= divisor
    else:
        odd = floor[0] ^ (offset & 1)  # the parity of floor − offset, the true floor
        round_up = (remainder2 > divisor) | ((remainder2 == divisor) & odd)
    m.d.comb += quotient.eq(floor + round_up - offset)
    return quotient


class Pool1d(wiring.Component):
    """Max or average pooling over time, per channel: computes :func:`hwnn.ref.pool.pool1d`.

    Each input transfer is one time step of all ``channels`` codes with ``last`` on a
    sequence's final step; each output transfer is one pooled step with ``last`` on the
    sequence's final output. The state resets after ``last``, and the next sequence's first
    step may follow in the next cycle. A sequence too short for one window
    (``plan.out_length`` is 0) produces no output at all, so its ``last`` is not seen
    downstream.

    Each window accumulates in a *slot*: a running maximum per channel (padding ``min_int``,
    which never wins) or an exact running sum (padding zeros). A finished window becomes its
    output codes on its way out (max: a requantize to ``out_format``; avg: the plan's rounded
    division by :func:`constant_divide`, then the fit to ``out_format`` with ``overflow``).
    The divider, or a requantize that rounds or saturates, has a registered stage of its own
    (as :class:`~hwnn.cores.requantize.Requantize`), and a divider by a constant that is not
    a power of two (a shift-add reciprocal multiply, no DSP) one more inside: ``latency`` is
    1 for a max that keeps its format, 2 for other maxima and power-of-two averages, 3 for
    other averages.

    Slots: a finished window stays in its slot until it leaves, so the slots are also the
    output queue; windows take the :attr:`slots` slots in turn, across sequences (a
    sequence's first window takes the slot after the previous sequence's final one). There
    are ``max(2, ceil((kernel_size + max(0, stride − pad_right)) / stride),
    pad_left // stride + pad_right // stride + 1)``, each ``channels`` accumulators: the
    fewest with which no step waits for a slot at full rate (below; found by search over
    every geometry up to ``kernel_size`` 12, and one fewer would do in the output-bound
    case, which waits anyway). Each slot adds 4 flag bits. The first term
    counts the windows in flight, plus one when a finished window waits for its ``last``
    flag (``stride > pad_right``); the second, the windows the right padding finishes at
    a sequence's end, still leaving while the next sequence's first step opens those that
    start in its left padding.

    Timing, step by step (:meth:`schedule` computes it; the tests assert it in simulation):

    * An accepted step merges into every window that holds it and *finishes* the window that
      ends on it. The ``last`` step also finishes every window that its right padding
      completes (those ending at most ``pad_right`` steps after it: padding adds nothing to
      a maximum or a sum, so they are final then) and drops the partial ones (PyTorch's
      floor), so the next sequence never waits for virtual padding steps.
    * Whether a window is its sequence's final output is known only later: a window finished
      before the ``last`` step is not final once the next window is sure to complete (it has
      ``kernel_size − pad_right`` of its steps; at once when ``stride <= pad_right``), and
      until then it cannot leave. The ``last`` step decides every window.
    * Finished windows leave in order, one per cycle, from the cycle after the step that
      finished and decided them; an output is sent ``latency − 1`` cycles after its window
      leaves. With the output always ready,
      ``out[j] = max(cycle(decide_j) + latency, out[j − 1] + 1)``, where ``decide_j`` is the
      step that decides window ``j`` (the one that finishes it, a later one, or ``last``).
    * A step is accepted in a cycle when every window it opens (those starting on it, and on
      a sequence's first step those starting in its left padding) has a free slot: the
      window :attr:`slots` windows earlier has left, or leaves in that cycle. The input's
      ``ready`` never looks at the payload. With the output always ready this never holds
      up the input: ``ii`` is 1 step per cycle and sequences follow back to back, whatever
      the padding — except for ``stride = 1``, an even ``kernel_size`` and ``padding =
      kernel_size / 2``, where a sequence of ``L`` steps has ``L + 1`` outputs, more than
      its cycles: there a sequence's first step may wait one cycle (at most one per
      sequence, the cycle its extra output takes). Output backpressure keeps windows in
      their slots and then stalls the input.

    Parameters
    ----------
    plan : Pool1dPlan

    Members
    -------
    i : In(stream.Signature(frame_layout(plan.in_format, plan.channels)))
    o : Out(stream.Signature(frame_layout(plan.out_format, plan.channels)))

    Raises
    ------
    TypeError
        ``plan`` is not a :class:`~hwnn.plans.pool.Pool1dPlan`.
    """

    @rejects_quietly
    def __init__(self, plan: Pool1dPlan):
        if not isinstance(plan, Pool1dPlan):
            raise ParameterTypeError("plan", f"plan must be a Pool1dPlan, not "
                                             f"{type(plan).__name__}")
        self._plan = plan
        self._acc_format = plan.in_format if plan.kind == "max" else plan.sum_format
        # A divider, or a requantize that rounds or saturates, gets a pipeline stage.
        self._staged = plan.kind == "avg" or requantize_has_logic(
            plan.in_format, plan.out_format, plan.rounding, plan.overflow)
        self._inner = plan.kind == "avg" and divide_stages(plan.divisor)
        super().__init__({
            "i": In(stream.Signature(frame_layout(plan.in_format, plan.channels))),
            "o": Out(stream.Signature(frame_layout(plan.out_format, plan.channels))),
        })

    plan = property(lambda self: self._plan, doc="The Pool1dPlan this core implements.")
    in_format = property(lambda self: self._plan.in_format)
    out_format = property(lambda self: self._plan.out_format)
    latency = property(lambda self: 1 + self._staged + self._inner,
                       doc="Cycles from the step that finishes and decides a window to its "
                           "output, without stalls: 1, plus 1 for a finish stage (average, or "
                           "a max requantize that rounds or saturates), plus 1 for a divider "
                           "that multiplies.")
    ii = property(lambda self: 1, doc="Cycles between accepted input steps at full rate "
                                      "(sequences back to back; see the class docstring for "
                                      "the one exception).")

    @property
    def slots(self) -> int:
        """Accumulator sets (``channels`` accumulators each), which also hold the finished
        windows until they leave: ``max(2, ceil((kernel_size + max(0, stride − pad_right)) /
        stride), pad_left // stride + pad_right // stride + 1)`` (class docstring)."""
        k, s, (left, right) = self._plan.kernel_size, self._plan.stride, self._plan.padding
        return max(2, -(-(k + max(0, s - right)) // s), left // s + right // s + 1)

    def schedule(self, lengths, arrivals=None) -> tuple[np.ndarray, np.ndarray]:
        """``(in_cycles, out_cycles)`` (int64) of back-to-back sequences of ``lengths`` steps
        with the output always ready: the cycle each input step is accepted and the cycle
        each output is sent, numbered as :func:`hwnn.sim.run_stream` numbers them.

        Step ``k`` (the steps of all sequences, in order) is offered from cycle
        ``arrivals[k]`` on, or from the cycle after step ``k − 1`` was accepted if that is
        later; ``arrivals=None`` offers every step from cycle 0 (each as soon as the core
        takes it). The rules are those of the class docstring, cycle by cycle.

        Raises
        ------
        TypeError, ValueError
            ``lengths`` is not a sequence of positive integers, or ``arrivals`` is not a
            nondecreasing sequence of ``sum(lengths)`` non-negative integers.
        """
        waits, decide = self._windows_of(lengths)
        steps, windows = len(waits), len(decide)
        arrivals = _check_arrivals(arrivals, steps)
        in_cycles = np.zeros(steps, dtype=np.int64)
        out_cycles = np.zeros(windows, dtype=np.int64)
        cycle, k, sent, offered = 0, 0, 0, 0
        while k < steps or sent < windows:
            # The next window leaves once the step deciding it went in, in an earlier cycle.
            leaves = sent < windows and decide[sent] < k and in_cycles[decide[sent]] < cycle
            if k < steps:
                offered = max(int(arrivals[k]), int(in_cycles[k - 1]) + 1 if k else 0)
                if not leaves:
                    cycle = max(cycle, offered)  # nothing moves before step k is offered
            if leaves:
                out_cycles[sent] = cycle + self.latency - 1
                sent += 1
            if k < steps and cycle >= offered and waits[k] < sent:
                in_cycles[k] = cycle
                k += 1
            elif not leaves:
                # Cannot happen with `slots` slots: a step never waits for a window that
                # waits for its `last` flag.
                raise AssertionError(f"Pool1d.schedule: nothing moves in cycle {cycle}")
            cycle += 1
        return in_cycles, out_cycles

    def _windows_of(self, lengths):
        """For back-to-back sequences of ``lengths`` steps (all steps and all outputs numbered
        in order): per step, the output whose window must have left before the step may go
        in (the slot's previous window for each window the step opens; −1 for none), and per
        output, the step that decides it."""
        if isinstance(lengths, (str, bytes)) or not hasattr(lengths, "__iter__"):
            raise ParameterTypeError("lengths", f"lengths must be a sequence of positive "
                                                f"integers, not {lengths!r}")
        lengths = [check_integer(n, f"lengths[{j}]", minimum=1)
                   for j, n in enumerate(lengths)]
        plan = self._plan
        k, s, (left, right) = plan.kernel_size, plan.stride, plan.padding
        waits, decide, first, done = [], [], 0, 0
        for length in lengths:
            n = plan.out_length(length)
            # Window j starts at padded position j·stride (step j·stride − left, or the first
            # step) and ends at j·stride + kernel_size − 1. It is window `done + j` of the
            # run and takes the slot of window `done + j − slots`, which must have left. (A
            # partial window, dropped at the last step, holds a slot until then too.)
            j = np.arange((left + length - 1) // s + 1)
            opens = np.zeros(length, dtype=np.int64) - 1
            np.maximum.at(opens, np.maximum(0, j * s - left), done + j - self.slots)
            waits.append(opens)
            ends = np.minimum(np.arange(n) * s + k - 1 - left, length - 1)
            # Window j but the final one is decided when window j + 1 is sure to complete.
            sure = np.arange(1, n + 1) * s + k - 1 - right - left
            decide.append(first + np.append(np.maximum(ends, sure)[:-1], [length - 1] if n
                                            else []).astype(np.int64))
            first += length
            done += n
        return np.concatenate(waits), np.concatenate(decide)

    def describe(self) -> dict:
        """Parameters and formats for manifests and reports (JSON-serializable)."""
        return {**self._plan.describe(), "kind": "pool1d", "pool": self._plan.kind,
                "class": "Pool1d", "latency": self.latency, "ii": self.ii,
                "slots": self.slots}

    def _finish(self, m: Module, acc, register=None) -> list:
        """The output codes of a finished window's accumulators (``register``: the enable of
        the divider's inner stage, if it has one)."""
        plan = self._plan
        if plan.kind == "max":
            return [requantize(acc[c], plan.in_format, plan.out_format, plan.rounding,
                               plan.overflow) for c in range(plan.channels)]
        # The range of the window sums, as the plan derived mean_format from it.
        lo = plan.kernel_size * min(plan.in_format.min_int, 0) << plan.left_shift
        hi = plan.kernel_size * plan.in_format.max_int << plan.left_shift
        codes = []
        for c in range(plan.channels):
            mean = constant_divide(m, Value.cast(acc[c]) << plan.left_shift, lo, hi,
                                   plan.divisor, plan.rounding, register)
            assert len(mean) == plan.mean_format.width
            codes.append(requantize(mean, plan.mean_format, plan.out_format, Rounding.TRUNC,
                                    plan.overflow))
        return codes

    def _merge(self, acc, x, begins) -> list:
        """Per channel: ``acc`` with the step ``x`` merged in, or ``x`` alone where the window
        ``begins`` (padding, ``min_int`` or zeros, would change neither)."""
        if self._plan.kind == "max":
            return [Mux(begins | (x[c] > acc[c]), x[c], acc[c]) for c in range(len(x))]
        return [Mux(begins, x[c], acc[c] + x[c]) for c in range(len(x))]

    def elaborate(self, platform):
        m = Module()
        plan = self._plan
        # The oldest finished window, as accumulators.
        w = stream.Signature(frame_layout(self._acc_format, plan.channels)).create()
        if self._staged:
            # A registered stage divides and fits them (two with a divider that multiplies).
            # One enable moves the stages: full throughput.
            advance = ~self.o.valid | self.o.ready
            m.d.comb += w.ready.eq(advance)
            valid, last = w.valid, w.payload.last
            if self._inner:
                valid, last = Signal(name="valid_inner"), Signal(name="last_inner")
                with m.If(advance):
                    m.d.sync += [valid.eq(w.valid), last.eq(w.payload.last)]
            codes = self._finish(m, w.payload.data, advance if self._inner else None)
            with m.If(advance):
                m.d.sync += [self.o.valid.eq(valid), self.o.payload.last.eq(last)]
                m.d.sync += [self.o.payload.data[c].eq(v) for c, v in enumerate(codes)]
        else:
            # The requantize is wiring: the slot registers are the output.
            codes = self._finish(m, w.payload.data)
            m.d.comb += [self.o.valid.eq(w.valid), w.ready.eq(self.o.ready),
                         self.o.payload.last.eq(w.payload.last)]
            m.d.comb += [self.o.payload.data[c].eq(v) for c, v in enumerate(codes)]
        self._slots(m, w)
        return m

    def _slots(self, m: Module, w):
        """The slots, the input's ``ready``, and the stream ``w`` of finished windows."""
        plan = self._plan
        k, s = plan.kernel_size, plan.stride
        left, right = plan.padding
        slots = self.slots
        period = slots * s  # slot a's windows start at phase a·stride
        shape = data.ArrayLayout(format_shape(self._acc_format), plan.channels)
        accs = [Signal(shape, name=f"acc{a}") for a in range(slots)]
        opened = [Signal(name=f"open{a}") for a in range(slots)]     # accumulating
        done = [Signal(name=f"done{a}") for a in range(slots)]       # finished, not yet left
        final = [Signal(name=f"final{a}") for a in range(slots)]     # its sequence's last
        # Finished, but maybe the final window (only when stride > pad_right).
        undecided = [Signal(name=f"undecided{a}") for a in range(slots)]
        deferred = s > right
        base = Signal(range(slots))          # the slot of the sequence's window 0
        phase = Signal(range(period), init=left)  # base·stride + padded position
        fresh = Signal(init=1)               # the next step is a sequence's first
        head = Signal(range(slots))          # the slot of the oldest window not yet left
        x, last = self.i.payload.data, self.i.payload.last

        # What the step does to each slot, by phase: whether a window begins there (on this
        # step, or before it in the left padding of a first step), and where its window
        # ends (steps from here: now, within the right padding, the final one there, and
        # exactly pad_right on).
        begins, ends_now, ends_pad, ends_final, ends_sure = (
            [Signal(name=f"{what}{a}") for a in range(slots)]
            for what in ("begins", "ends_now", "ends_pad", "ends_final", "ends_sure"))
        with m.Switch(phase):
            for v in range(period):
                with m.Case(v):
                    for a in range(slots):
                        since = (v - a * s) % period
                        ahead = (a * s + k - 1 - v) % period
                        m.d.comb += [begins[a].eq((since == 0) | (fresh & (0 < since <= left))),
                                     ends_now[a].eq(ahead == 0), ends_pad[a].eq(ahead <= right),
                                     ends_final[a].eq(ahead + s > right),
                                     ends_sure[a].eq(ahead == right)]
        live = [opened[a] | begins[a] for a in range(slots)]
        finishes = [live[a] & (ends_now[a] | (last & ends_pad[a])) for a in range(slots)]
        any_finish = Cat(*finishes).any()
        sure = Cat(*(live[a] & ends_sure[a] for a in range(slots))).any()

        head_done, head_undecided = Signal(), Signal()
        with m.Switch(head):
            for a in range(slots):
                with m.Case(a):
                    m.d.comb += [head_done.eq(done[a]), head_undecided.eq(undecided[a]),
                                 w.payload.data.eq(accs[a]), w.payload.last.eq(final[a])]
        m.d.comb += w.valid.eq(head_done & ~head_undecided)
        pop = w.valid & w.ready
        # A window may open only in a slot whose previous window has left (or leaves now).
        m.d.comb += self.i.ready.eq(Cat(*[~begins[a] | ~done[a] | (pop & (head == a))
                                          for a in range(slots)]).all())
        fire = self.i.valid & self.i.ready

        with m.If(pop):
            m.d.sync += head.eq(Mux(head == slots - 1, 0, head + 1))
            with m.Switch(head):
                for a in range(slots):
                    with m.Case(a):
                        m.d.sync += done[a].eq(0)
        # The slot after the sequence's final window: the next sequence's window 0.
        following = Signal.like(base)
        m.d.comb += following.eq(base)
        for a in range(slots):
            with m.If((finishes[a] & ends_final[a]) | (undecided[a] & ~any_finish)):
                m.d.comb += following.eq((a + 1) % slots)
        with m.If(fire):
            m.d.sync += [phase.eq(Mux(phase == period - 1, 0, phase + 1)), fresh.eq(last)]
            for a in range(slots):
                merged = self._merge(accs[a], x, begins[a])
                with m.If(live[a]):
                    m.d.sync += [accs[a][c].eq(v) for c, v in enumerate(merged)]
                # At the last step, the windows not finished are partial: dropped.
                m.d.sync += opened[a].eq(live[a] & ~finishes[a] & ~last)
                with m.If(finishes[a]):
                    m.d.sync += [done[a].eq(1), final[a].eq(last & ends_final[a])]
            if deferred:
                with m.If(last | sure):
                    m.d.sync += [u.eq(0) for u in undecided]
                with m.If(last & ~any_finish):
                    # Nothing finished after the waiting window: it was the final one.
                    for a in range(slots):
                        with m.If(undecided[a]):
                            m.d.sync += final[a].eq(1)
                with m.If(~last):
                    for a in range(slots):
                        with m.If(finishes[a]):
                            m.d.sync += undecided[a].eq(1)
            with m.If(last):
                m.d.sync += base.eq(following)
                with m.Switch(following):
                    for a in range(slots):
                        with m.Case(a):
                            m.d.sync += phase.eq((a * s + left) % period)


def _check_arrivals(arrivals, steps: int) -> np.ndarray:
    """``arrivals`` of :meth:`Pool1d.schedule` as int64: ``steps`` nondecreasing
    non-negative integers (``None``: all 0)."""
    if arrivals is None:
        return np.zeros(steps, dtype=np.int64)
    if isinstance(arrivals, (str, bytes)) or not hasattr(arrivals, "__len__"):
        raise ParameterTypeError("arrivals", f"arrivals must be a sequence of integers, not "
                                             f"{arrivals!r}")
    if len(arrivals) != steps:
        raise ParameterValueError("arrivals", f"arrivals must have one cycle per input step "
                                              f"({steps}), not {len(arrivals)}")
    checked, previous = np.zeros(steps, dtype=np.int64), 0
    for k, cycle in enumerate(arrivals):
        checked[k] = previous = check_integer(cycle, f"arrivals[{k}]", minimum=previous)
    return checked
