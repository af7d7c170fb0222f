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
    sequence's final output. Sequences of any length follow each other without a gap; the
    state resets after ``last``. A sequence too short for one window (``plan.out_length`` is 0)
    produces no output at all, so its ``last`` is not seen downstream.

    Accumulators: a running maximum per channel (padding ``min_int``, which never wins) or an
    exact running sum (padding zeros). A finished window becomes its output codes at once
    (max: a requantize to ``out_format``; avg: the plan's rounded division by
    :func:`constant_divide`, then the fit to ``out_format`` with ``overflow``). The divider,
    or a requantize that rounds or saturates, has a registered stage of its own after the
    window logic (as :class:`~hwnn.cores.requantize.Requantize`), and a divider by a constant
    that is not a power of two (a shift-add reciprocal multiply, no DSP) one more inside:
    ``latency`` is 1 for a max that keeps its format, 2 for other maxima and power-of-two
    averages, 3 for other averages.

    Whether a finished window is the sequence's final output is known only later (PyTorch
    drops a trailing partial window, but the right padding may complete it), so a finished
    window waits in a hold register until a later step shows it is not final, or the sequence
    ends. An output is valid ``latency`` cycles after the step :meth:`decision_steps`
    names, and never in the same cycle as the one before it (when one step releases the held
    window and completes the final one, that follows a cycle later).

    * Non-overlapping windows (``stride >= kernel_size``, the common ``stride =
      kernel_size``): one accumulator set and a step counter within the period of ``stride``
      steps (steps past a window are skipped). A held window is released when the next one
      holds ``kernel_size − pad_right`` padded steps (it will complete). The right padding
      costs no cycle: ``ii`` = 1 input step per cycle, sequences back to back.
    * Overlapping windows (``stride < kernel_size``): ``ceil(kernel_size / stride)``
      accumulator sets, one per window in flight, used in turn; a held window is released when
      the next one completes. After a sequence's last step the input stalls for
      :meth:`flush_steps` virtual padding steps, one per cycle, that finish the windows the
      right padding completes (none without padding). Then ``ii`` = 1 input step per cycle
      plus those steps per sequence.

    Without backpressure, with steps numbered through a sequence's flush steps (which follow
    its last step one per cycle),
    ``out[j] = max(cycle[decision[j]] + latency, out[j − 1] + 1)``.

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
                       doc="Cycles from the step that decides an output (:meth:`decision_steps`) "
                           "to that output: 1, plus 1 for a finish stage (average, or a max "
                           "requantize that rounds or saturates), plus 1 for a divider that "
                           "multiplies.")
    ii = property(lambda self: 1, doc="Cycles between accepted input steps at full rate.")

    def decision_steps(self, steps: int) -> np.ndarray:
        """For a sequence of ``steps`` input steps, the index of the step after which each of
        its ``plan.out_length(steps)`` outputs is sent (indices from ``steps`` on are the flush
        steps). Output ``j`` but the final one: the step at which window ``j + 1`` holds
        ``kernel_size − pad_right`` padded steps (non-overlapping), or is complete
        (overlapping), ``(j+1)·stride + kernel_size − 1 − pad_left`` less ``pad_right`` in the
        first case. The final output: the sequence's last step, or its last flush step.

        Raises
        ------
        TypeError, ValueError
            ``steps`` is not a non-negative integer.
        """
        plan = self._plan
        n_out = plan.out_length(steps)
        left, right = plan.padding
        early = right if plan.stride >= plan.kernel_size else 0
        j = np.arange(1, n_out)
        return np.append(j * plan.stride + plan.kernel_size - early - 1 - left,
                         [steps - 1 + self.flush_steps(steps)] if n_out else []).astype(np.int64)

    def flush_steps(self, steps: int) -> int:
        """Cycles the input stalls after the last step of a sequence of ``steps`` steps: with
        overlapping windows, the padding steps up to the end of the final window when the
        right padding completes it; otherwise 0.

        Raises
        ------
        TypeError, ValueError
            ``steps`` is not a non-negative integer.
        """
        plan = self._plan
        n_out = plan.out_length(steps)
        if plan.stride >= plan.kernel_size or n_out == 0:
            return 0
        final_end = (n_out - 1) * plan.stride + plan.kernel_size - 1 - plan.padding[0]
        return max(0, final_end - (steps - 1))

    def describe(self) -> dict:
        """Parameters and formats for manifests and reports (JSON-serializable)."""
        return {**self._plan.describe(), "kind": "pool1d", "pool": self._plan.kind,
                "class": "Pool1d", "latency": self.latency, "ii": self.ii}

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

    def _window_result(self, m: Module, merged: list):
        """What the window stream carries for a finished window (``merged`` per channel): the
        accumulators when a finish stage follows, else the output codes (then wiring only)."""
        acc = Signal(data.ArrayLayout(format_shape(self._acc_format), len(merged)),
                     name="merged")
        m.d.comb += [acc[c].eq(v) for c, v in enumerate(merged)]
        if self._staged:
            return acc
        result = Signal(data.ArrayLayout(format_shape(self._plan.out_format), len(merged)),
                        name="result")
        m.d.comb += [result[c].eq(v) for c, v in enumerate(self._finish(m, acc))]
        return result

    def _outputs(self, m: Module, w, step, complete, result, release_when, end):
        """The hold register and the register of the window stream ``w``.

        On a ``step`` (an input step, or a virtual padding step) that completes a window
        with codes ``result``: the window is held until a later step with ``release_when``
        (then sent with ``last`` if the step is the sequence's ``end`` and completes nothing);
        a window completed at the ``end`` is final: straight out, or held one cycle when the
        step also releases the previous one.
        """
        hold = Signal.like(result, name="hold")
        hold_full, hold_final = Signal(), Signal()
        release = hold_full & ~hold_final & step & release_when
        drain = hold_full & hold_final & (~w.valid | w.ready)
        with m.If(w.ready):
            m.d.sync += w.valid.eq(0)
        with m.If(drain):
            m.d.sync += [w.payload.data.eq(hold), w.payload.last.eq(1),
                         w.valid.eq(1), hold_full.eq(0)]
        with m.If(release):
            m.d.sync += [w.payload.data.eq(hold), w.payload.last.eq(end & ~complete),
                         w.valid.eq(1), hold_full.eq(0)]
        with m.If(step & complete):
            # A held window has always left by now (released or drained).
            with m.If(end & ~drain & ~release):
                m.d.sync += [w.payload.data.eq(result), w.payload.last.eq(1),
                             w.valid.eq(1)]
            with m.Else():
                m.d.sync += [hold.eq(result), hold_full.eq(1), hold_final.eq(end)]

    def elaborate(self, platform):
        m = Module()
        if self._staged:
            # Windows leave as accumulators; a registered stage divides and fits them (two
            # with a divider that multiplies). One enable moves the stages: full throughput.
            w = stream.Signature(frame_layout(self._acc_format, self._plan.channels)).create()
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
            w = self.o
        if self._plan.stride >= self._plan.kernel_size:
            self._elaborate_disjoint(m, w)
        else:
            self._elaborate_overlapping(m, w)
        return m

    def _elaborate_disjoint(self, m: Module, w):
        plan = self._plan
        k, s = plan.kernel_size, plan.stride
        left, right = plan.padding
        fill = data.ArrayLayout(format_shape(self._acc_format), plan.channels).const(
            [plan.fill] * plan.channels)
        acc = Signal(fill.shape(), init=fill)
        # Padded steps of the current period (of `stride` steps) seen so far; a sequence
        # starts with its left padding already counted.
        count = Signal(range(s + 1), init=left)

        x, last = self.i.payload.data, self.i.payload.last
        out_free = ~w.valid | w.ready
        fire = self.i.valid & out_free
        m.d.comb += self.i.ready.eq(out_free)

        in_window = count < k
        count1 = count + 1
        merged = self._merge(acc, x, in_window)
        result = self._window_result(m, merged)
        complete = in_window & ((count1 == k) | (last & (count1 >= k - right)))
        # The held window is not last once the current one is sure to complete; it is last
        # when the sequence ends without completing the current one.
        self._outputs(m, w, fire, complete, result, (count1 == k - right) | last, last)
        with m.If(fire):
            m.d.sync += [acc[c].eq(v) for c, v in enumerate(merged)]
            m.d.sync += count.eq(Mux(count1 == s, 0, count1))
            with m.If(complete | last):
                m.d.sync += acc.eq(fill)
            with m.If(last):
                m.d.sync += count.eq(left)

    def _elaborate_overlapping(self, m: Module, w):
        plan = self._plan
        k, s = plan.kernel_size, plan.stride
        left, right = plan.padding
        slots = -(-k // s)  # windows in flight: window t lives in slot t mod slots
        period = slots * s  # slot a starts a window at every phase a·s
        fill = data.ArrayLayout(format_shape(self._acc_format), plan.channels).const(
            [plan.fill] * plan.channels)
        accs = [Signal(fill.shape(), init=fill, name=f"acc{a}") for a in range(slots)]
        # A sequence starts with its left padding seen: the windows that start in it are open.
        opened = [a * s < left for a in range(slots)]
        active = [Signal(init=o, name=f"active{a}") for a, o in enumerate(opened)]
        phase = Signal(range(period), init=left)
        # After the last step, virtual padding steps (input stalled) finish the windows that
        # the right padding completes; `flush` counts those still to run.
        flush = Signal(range(right + 1))
        flushing = flush != 0

        x, last = self.i.payload.data, self.i.payload.last
        out_free = ~w.valid | w.ready
        fire = self.i.valid & out_free & ~flushing
        m.d.comb += self.i.ready.eq(out_free & ~flushing)
        step = fire | (flushing & out_free)

        def at(values):
            return Cat(*(phase == v % period for v in values)).any()

        merged, complete_a, still = [], [], []
        for a in range(slots):
            starts = (phase == a * s) & ~flushing
            base = [Mux(starts, plan.fill, accs[a][c]) for c in range(plan.channels)]
            merged.append(self._merge(base, x, at(range(a * s, a * s + k)) & ~flushing))
            complete_a.append(at([a * s + k - 1]) & (active[a] | starts))
            still.append((active[a] | starts) & ~complete_a[a])
        complete = Cat(*complete_a).any()
        chosen = merged[0]
        for a in range(1, slots):
            chosen = [Mux(complete_a[a], v, w) for v, w in zip(merged[a], chosen)]
        result = self._window_result(m, chosen)

        # At the last step: virtual steps until the youngest window that the right padding
        # completes is done (k − seen for it, the largest such count among open windows).
        needed = Signal(range(right + 1))
        phase1 = Mux(phase == period - 1, 0, phase + 1)
        with m.Switch(phase1):
            for v in range(period):
                with m.Case(v):
                    largest = Const(0)
                    for a in range(slots):
                        if k - right <= (v - a * s) % period < k:
                            count = Mux(still[a], k - (v - a * s) % period, 0)
                            largest = Mux(count > largest, count, largest)
                    m.d.comb += needed.eq(largest)
        end = Mux(flushing, flush == 1, last & (needed == 0))
        self._outputs(m, w, step, complete, result, complete | end, end)

        with m.If(step):
            m.d.sync += [phase.eq(phase1)]
            for a in range(slots):
                m.d.sync += [accs[a][c].eq(v) for c, v in enumerate(merged[a])]
                m.d.sync += active[a].eq(still[a])
            with m.If(flushing):
                m.d.sync += flush.eq(flush - 1)
            with m.Elif(last):
                m.d.sync += flush.eq(needed)
            with m.If(end):
                m.d.sync += [phase.eq(left), *(acc.eq(fill) for acc in accs),
                             *(a.eq(o) for a, o in zip(active, opened))]
