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

    Accumulators: a running maximum per channel (padding ``min_int``, which never wins) or an
    exact running sum (padding zeros), one set per window in flight,
    ``ceil(kernel_size / stride)`` sets used in turn (one for non-overlapping windows, whose
    steps between windows are skipped). A finished window becomes its output codes at once
    (max: a requantize to ``out_format``; avg: the plan's rounded division by
    :func:`constant_divide`, then the fit to ``out_format`` with ``overflow``). The divider,
    or a requantize that rounds or saturates, has a registered stage of its own (as
    :class:`~hwnn.cores.requantize.Requantize`), and a divider by a constant that is not a
    power of two (a shift-add reciprocal multiply, no DSP) one more inside: ``latency`` is 1
    for a max that keeps its format, 2 for other maxima and power-of-two averages, 3 for other
    averages.

    Timing, step by step (:meth:`schedule` computes it; the tests assert it in simulation):

    * An accepted step *finishes* the window that ends on it. The ``last`` step also finishes
      every window that its right padding completes (those ending at most ``pad_right``
      steps after it): padding adds nothing to a maximum or a sum, so their accumulators are
      final then, and the next sequence never waits for virtual padding steps.
    * Finished windows wait in a queue of :attr:`queue_depth` ``= max(2, pad_right // stride
      + 1)`` entries of ``channels`` accumulators (a sequence's ``last`` step finishes up to
      ``pad_right // stride + 1`` windows at once; two entries let a window wait for its
      ``last`` flag while the one before it leaves). They leave in order, one per cycle, from
      the cycle after the step that finished them, while the next sequence already fills the
      accumulators.
    * Whether a window is its sequence's final output is known only later (PyTorch drops a
      trailing partial window, but the right padding may complete it): a window finished
      before the ``last`` step is not final once the next window is sure to complete (it has
      ``kernel_size − pad_right`` of its steps; at once when ``stride <= pad_right``), and
      until then it cannot leave the queue. The ``last`` step decides every window.
    * An output is sent ``latency − 1`` cycles after its window leaves the queue. With the
      output always ready, ``out[j] = max(cycle(decide_j) + latency, out[j − 1] + 1)``, where
      ``decide_j`` is the step that decides window ``j`` (the one that finishes it, a later
      one, or ``last``).
    * A step is accepted in a cycle when the queue, less the entry leaving in that cycle, has
      room for every window the step would finish if it were ``last`` (the input's ``ready``
      never looks at the payload). With the output always ready there always is room: ``ii``
      is 1 step per cycle, sequences follow back to back, whatever the padding — except for
      ``stride = 1``, an even ``kernel_size`` and ``padding = kernel_size / 2``, where a
      sequence of ``L`` steps has ``L + 1`` outputs, more than its cycles: there a sequence's
      first step may wait one cycle (at most one per sequence, the cycle its extra output
      takes). Output backpressure fills the queue and then stalls the input.

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
    def queue_depth(self) -> int:
        """Entries of the queue of finished windows, each ``channels`` accumulators:
        ``max(2, pad_right // stride + 1)``."""
        return max(2, self._tail)

    @property
    def _tail(self) -> int:
        """The most windows one step finishes: ``pad_right // stride + 1`` (its own, and those
        its right padding completes when it is ``last``)."""
        return self._plan.padding[1] // self._plan.stride + 1

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
        need, pushes, sure, last = self._step_events(lengths)
        n = len(need)
        arrivals = _check_arrivals(arrivals, n)
        depth, deferred = self.queue_depth, self._plan.stride > self._plan.padding[1]
        in_cycles, pops = np.zeros(n, dtype=np.int64), []
        count, pending, cycle, k = 0, False, 0, 0
        while k < n or count:
            leaves = count > 0 and not (pending and count == 1)
            if not leaves:
                # Nothing moves until step k is offered: skip the idle cycles.
                cycle = max(cycle, int(arrivals[k]))
            pops += [cycle] if leaves else []
            count -= leaves
            offered = k < n and cycle >= arrivals[k] and (k == 0 or cycle > in_cycles[k - 1])
            if offered and count + need[k] <= depth:
                in_cycles[k] = cycle
                if last[k] or sure[k]:
                    pending = False
                if pushes[k] and not last[k]:
                    pending = deferred
                count += int(pushes[k])
                k += 1
            elif not leaves:
                # Cannot happen: an empty queue, or one window waiting for a step (then the
                # stride exceeds pad_right and a step needs one entry), leaves room.
                raise AssertionError(f"Pool1d.schedule: the queue holds {count} windows and "
                                     f"nothing moves")
            cycle += 1
        return in_cycles, np.asarray(pops, dtype=np.int64) + self.latency - 1

    def _step_events(self, lengths):
        """Per input step of back-to-back sequences of ``lengths`` steps (int arrays): the
        windows it would finish as ``last`` (its queue ``need``), the windows it finishes
        (``pushes``), whether it shows the newest finished window not final (``sure``), and
        whether it is ``last``."""
        if isinstance(lengths, (str, bytes)) or not hasattr(lengths, "__iter__"):
            raise ParameterTypeError("lengths", f"lengths must be a sequence of positive "
                                                f"integers, not {lengths!r}")
        lengths = [check_integer(n, f"lengths[{j}]", minimum=1)
                   for j, n in enumerate(lengths)]
        plan = self._plan
        k, s, (left, right) = plan.kernel_size, plan.stride, plan.padding
        step = np.concatenate([np.arange(n) for n in lengths]).astype(np.int64)
        last = np.concatenate([np.arange(n) == n - 1 for n in lengths]).astype(bool)
        # Window j ends at padded position j·stride + kernel_size − 1; step i is at left + i.
        ahead = step + left - (k - 1)        # window ends here: ahead ≡ 0 (mod stride), ≥ 0
        first = np.maximum(0, -(-ahead // s))  # the first window ending at or after the step
        need = np.maximum(0, (ahead + right) // s - first + 1)
        ends = (ahead >= 0) & (ahead % s == 0)
        sure = (ahead + right >= 0) & ((ahead + right) % s == 0)
        return need, np.where(last, need, ends.astype(np.int64)), sure, last

    def describe(self) -> dict:
        """Parameters and formats for manifests and reports (JSON-serializable)."""
        return {**self._plan.describe(), "kind": "pool1d", "pool": self._plan.kind,
                "class": "Pool1d", "latency": self.latency, "ii": self.ii,
                "queue_depth": self.queue_depth}

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

    def _merge(self, acc, x, take) -> list:
        """Per channel: ``acc`` with the step ``x`` merged in where ``take``, else ``acc``."""
        if self._plan.kind == "max":
            return [Mux(take & (x[c] > acc[c]), x[c], acc[c]) for c in range(len(x))]
        return [Mux(take, acc[c] + x[c], acc[c]) for c in range(len(x))]

    def elaborate(self, platform):
        m = Module()
        plan = self._plan
        # The queue's head: finished windows as accumulators.
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
            # The requantize is wiring: the queue's head registers are the output.
            codes = self._finish(m, w.payload.data)
            m.d.comb += [self.o.valid.eq(w.valid), w.ready.eq(self.o.ready),
                         self.o.payload.last.eq(w.payload.last)]
            m.d.comb += [self.o.payload.data[c].eq(v) for c, v in enumerate(codes)]
        finished, valid, used, final, sure = self._windows(m)
        self._queue(m, w, finished, valid, used, final, sure)
        return m

    def _windows(self, m: Module):
        """The accumulators and what each accepted step finishes.

        Returns ``(finished, valid, used, final, sure)``: for each of the :attr:`_tail`
        windows that end on the current step or at most ``pad_right`` steps after it, in
        order, its merged accumulators and whether it exists, is finished by the step, and is
        its sequence's final window; and whether the step shows the newest finished window
        not final (the window ending ``pad_right`` steps on exists).
        """
        plan = self._plan
        k, s = plan.kernel_size, plan.stride
        left, right = plan.padding
        slots = -(-k // s)  # windows in flight: window t lives in slot t mod slots
        period = slots * s  # slot a starts a window at every phase a·s
        shape = data.ArrayLayout(format_shape(self._acc_format), plan.channels)
        fill = shape.const([plan.fill] * plan.channels)
        accs = [Signal(shape, init=fill, name=f"acc{a}") for a in range(slots)]
        # A sequence starts with its left padding seen: the windows that start in it are open.
        opened = [a * s < left for a in range(slots)]
        active = [Signal(init=o, name=f"active{a}") for a, o in enumerate(opened)]
        phase = Signal(range(period), init=left)
        x, last = self.i.payload.data, self.i.payload.last
        fire = self.i.valid & self.i.ready

        def at(values):
            return Cat(*(phase == v % period for v in values)).any()

        merged, live, complete = [], [], []
        for a in range(slots):
            starts = phase == a * s
            base = [Mux(starts, plan.fill, accs[a][c]) for c in range(plan.channels)]
            merged.append(Signal(shape, name=f"merged{a}"))
            m.d.comb += [merged[a][c].eq(v) for c, v in
                         enumerate(self._merge(base, x, at(range(a * s, a * s + k))))]
            live.append(active[a] | starts)
            complete.append(at([a * s + k - 1]) & live[a])

        tail = self._tail
        finished = [Signal(shape, name=f"finished{t}") for t in range(tail)]
        valid = [Signal(name=f"finished{t}_valid") for t in range(tail)]
        ends_here, sure = Signal(), Signal()
        with m.Switch(phase):
            for v in range(period):
                with m.Case(v):
                    first = (k - 1 - v) % s  # steps from here to the next window's end
                    m.d.comb += ends_here.eq(first == 0)
                    for t in range(tail):
                        ahead = first + t * s
                        if ahead > right:
                            break
                        a = (v + ahead - (k - 1)) % period // s
                        m.d.comb += [finished[t].eq(merged[a]), valid[t].eq(live[a])]
                        if ahead == right:
                            m.d.comb += sure.eq(live[a])
        # Without last, a step finishes only the window ending on it; with last, every one.
        used = [valid[0] & (last | ends_here)] + [v & last for v in valid[1:]]
        final = [last & ~Cat(*valid[t + 1:]).any() if t + 1 < tail else last
                 for t in range(tail)]

        with m.If(fire):
            m.d.sync += phase.eq(Mux(phase == period - 1, 0, phase + 1))
            for a in range(slots):
                m.d.sync += [accs[a].eq(merged[a]), active[a].eq(live[a] & ~complete[a])]
            with m.If(last):
                m.d.sync += [phase.eq(left), *(acc.eq(fill) for acc in accs),
                             *(a.eq(o) for a, o in zip(active, opened))]
        return finished, valid, used, final, sure

    def _queue(self, m: Module, w, finished, valid, used, final, sure):
        """The queue of finished windows (:attr:`queue_depth` entries, head first) that drives
        the stream ``w``, and the input's ``ready``: room for every window the step could
        finish (``valid``), after the head leaves. ``used`` windows enter in order; the newest
        entry is held back (``pending``) until a ``sure`` step or ``last`` decides it."""
        plan = self._plan
        depth = self.queue_depth
        shape = data.ArrayLayout(format_shape(self._acc_format), plan.channels)
        entries = [Signal(shape, name=f"queue{i}") for i in range(depth)]
        finals = [Signal(name=f"queue{i}_last") for i in range(depth)]
        count = Signal(range(depth + 1))
        # The newest entry's window may yet be its sequence's final one (only when a window
        # can finish before the next one is sure to complete).
        pending = Signal()
        deferred = plan.stride > plan.padding[1]
        after = Signal(range(depth + 1))  # entries once the head has left
        pop = w.valid & w.ready
        need = sum(valid)
        pushes = sum(used)
        m.d.comb += [w.valid.eq((count != 0) & ~(pending & (count == 1))),
                     w.payload.data.eq(entries[0]), w.payload.last.eq(finals[0]),
                     after.eq(count - pop), self.i.ready.eq(after + need <= depth)]
        fire = self.i.valid & self.i.ready
        last = self.i.payload.last

        with m.If(pop):
            m.d.sync += [entries[i].eq(entries[i + 1]) for i in range(depth - 1)]
            m.d.sync += [finals[i].eq(finals[i + 1]) for i in range(depth - 1)]
        m.d.sync += count.eq(after)
        with m.If(fire):
            m.d.sync += count.eq(after + pushes)
            for t in range(len(finished)):
                with m.If(used[t]):
                    with m.Switch(after + sum(used[:t])):
                        for i in range(depth):
                            with m.Case(i):
                                m.d.sync += [entries[i].eq(finished[t]), finals[i].eq(final[t])]
            if deferred:
                with m.If(last):
                    m.d.sync += pending.eq(0)
                    # Nothing finished after the waiting window: it was the final one.
                    with m.If(pending & (pushes == 0)):
                        with m.Switch(after - 1):
                            for i in range(depth):
                                with m.Case(i):
                                    m.d.sync += finals[i].eq(1)
                with m.Else():
                    with m.If(sure):
                        m.d.sync += pending.eq(0)
                    with m.If(pushes != 0):
                        m.d.sync += pending.eq(1)


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
