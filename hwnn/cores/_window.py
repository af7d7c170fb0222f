"""The window buffer of a sliding-window layer over a framed sequence stream.

:class:`WindowBuffer` turns a stream of time steps (``data``, ``last``) into the stream of the
windows a :class:`~hwnn.ref.windows.Window` defines (zero padding included), and a second
stream saying which window is the last of its sequence. :func:`window_schedule` is its timing
model: the exact cycles of a run whose output is always taken, which the tests assert.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from ..checks import check_integer
from ..ref.windows import Window
from ._timing import check_arrivals
from .framed import framed_layout

__all__ = ["WindowBuffer", "gap_free", "padding_steps", "start_shifts", "tail_shifts",
           "window_schedule"]


def padding_steps(window: Window) -> tuple[int, int]:
    """``(preloaded, explicit)`` left padding steps of a sequence.

    Up to ``receptive_field − 1`` left zero steps cost nothing: the buffer starts each
    sequence with them in place (``preloaded``). Only the rest (``explicit``, nonzero when
    ``pad_left ≥ receptive_field``: windows of padding alone) are shifted in, a cycle each.
    """
    preloaded = min(window.pad_left, window.receptive_field - 1)
    return preloaded, window.pad_left - preloaded


def tail_shifts(window: Window, after: int) -> int:
    """Right padding steps a sequence needs after its last step, when its next window would
    end ``after`` shifts later: up to the end of the last window the right padding completes
    (0 when it completes none; padding steps after that window change nothing)."""
    if after > window.pad_right:
        return 0
    return after + window.stride * ((window.pad_right - after) // window.stride)


def gap_free(window: Window) -> bool:
    """Whether a sequence's right padding always overlaps the next sequence's first steps:
    no explicit left padding, and fewer right padding steps than the shifts before a
    sequence's first window (``pad_right < receptive_field − preloaded``; true for
    ``"valid"``, ``"same"`` and causal padding)."""
    preloaded, explicit = padding_steps(window)
    return explicit == 0 and window.pad_right < window.receptive_field - preloaded


def start_shifts(window: Window) -> int:
    """Shifts of a sequence (explicit padding and data) before its first window."""
    return window.receptive_field - padding_steps(window)[0]


def window_schedule(window: Window, lengths, *, window_ii: int, latency: int, arrivals=None):
    """The cycles of a run of a :class:`WindowBuffer` feeding a core that takes a window at
    most every ``window_ii`` cycles and gives its result ``latency`` cycles later, when the
    result is always taken and input step ``k`` (all sequences' steps in order) is offered
    from cycle ``arrivals[k]`` on (None: every step offered from cycle 0).

    A cycle-by-cycle model of the buffer's rules (its docstring): in each cycle the pending
    window (if any) is taken when ``window_ii`` cycles have passed since the previous take;
    then, unless a window is still pending, one step shifts: the current sequence's step (an
    input step, an explicit padding step, or a right padding step after its ``last``), or a
    bubble that only moves the previous sequence's right padding on (when the window it
    completes, if any, could be taken in the next cycle). The result of a window
    leaves ``latency`` cycles after its take, but not before its ``last`` flag is known (two
    cycles after the shift that decides it) nor in the cycle of the previous result.

    Returns ``(in_cycles, out_cycles)`` (int64 arrays): the cycle each input step is accepted
    and the cycle each result is taken.

    Raises
    ------
    TypeError, ValueError
        ``lengths`` holds something other than a non-negative integer, or ``arrivals`` is
        not one non-decreasing non-negative integer per input step.
    """
    lengths = [check_integer(n, "lengths[i]", minimum=0) for n in lengths]
    total = sum(lengths)
    arrivals = check_arrivals(arrivals, total)
    is_last = np.zeros(total, dtype=bool)
    is_last[np.cumsum(lengths)[np.asarray(lengths) > 0] - 1] = True
    explicit = padding_steps(window)[1]
    start = start_shifts(window)
    first = "left" if explicit else "data"

    state = dict(phase=first, pads=explicit, wait=start, fresh=True, undecided=None)
    tail = dict(left=0, wait=0)             # the previous sequence's right padding
    ins, takes, decided = [], [], []        # decided[w]: the cycle window w's flag is known
    pending_from, last_take, k, cycle = None, None, 0, 0
    limit = (int(arrivals[-1]) if total else 0) + 4 * max(window_ii, 1) * (
        total + len(lengths) * (window.pad_left + window.pad_right + 2)) + latency + 16
    while k < total or tail["left"] or state["phase"] == "right" or pending_from is not None:
        if cycle > limit:   # a rule no sequence of steps can satisfy: a model error
            raise AssertionError("window_schedule does not terminate")
        if (pending_from is not None and cycle >= pending_from
                and (last_take is None or cycle >= last_take + window_ii)):
            takes.append(cycle)
            last_take, pending_from = cycle, None
        if pending_from is None:
            soon = last_take is None or cycle + 1 >= last_take + window_ii
            kind = _shift_kind(state, tail, k < total and arrivals[k] <= cycle,
                               k < total and is_last[k], soon)
            if kind is not None:
                created = _shift(window, state, tail, kind, cycle, decided)
                if kind in ("data", "last"):
                    ins.append(cycle)
                    k += 1
                if created:
                    pending_from = cycle + 1
        cycle += 1
    outs = []
    for take, known in zip(takes, decided):
        outs.append(max(take + latency, known + 2, outs[-1] + 1 if outs else 0))
    return np.asarray(ins, dtype=np.int64), np.asarray(outs, dtype=np.int64)


def _shift_kind(state, tail, offered: bool, last: bool, soon: bool):
    """What shifts in this cycle (the buffer's rule), or None; ``soon``: a window made now
    could be taken in the next cycle."""
    if state["phase"] == "right":
        return "right"
    if offered and tail["left"] < state["wait"]:
        if state["phase"] == "left":
            return "left"
        return "last" if last else "data"
    if tail["left"] and state["fresh"] and (tail["wait"] != 1 or soon):
        return "bubble"
    return None


def _shift(window, state, tail, kind, cycle, decided) -> bool:
    """Apply one shift of ``kind`` to the model's state; append to ``decided`` a slot for
    every window it makes and fill in the cycle of every flag it decides; return whether it
    made a window."""
    stride, pad_right = window.stride, window.pad_right
    tail_before = tail["left"]
    tail_created = tail_before > 0 and tail["wait"] == 1
    if tail_before:
        tail["left"] -= 1
        tail["wait"] = stride if tail_created else tail["wait"] - 1
    if tail_created:      # its flag is known at once: whether it is the tail's final window
        decided.append(cycle)
    if kind == "bubble":
        return tail_created
    wait = state["wait"]
    created = wait == 1
    assert not (created and tail_created), "two windows in one shift"
    after = stride if created else wait - 1
    if kind == "left":
        known = after <= state["pads"] + pad_right
    elif kind == "data":
        known = after <= 1 + pad_right
    else:
        known = True
    if created:
        decided.append(None)
        subject = len(decided) - 1
    else:
        subject = state["undecided"]
    if subject is not None:
        if known:
            decided[subject] = cycle
            state["undecided"] = None
        else:
            state["undecided"] = subject
    state["fresh"], state["wait"] = False, after
    ends = False
    if kind == "left":
        state["pads"] -= 1
        if state["pads"] == 0:
            state["phase"] = "data"
    elif kind == "last":
        shifts = tail_shifts(window, after)
        if shifts and tail_before == 0:     # the tail takes the right padding over
            tail["left"], tail["wait"] = shifts, after
            ends = True
        elif shifts:                        # the tail is busy: shift it here
            state["phase"], state["pads"] = "right", shifts
        else:
            ends = True
    elif kind == "right":
        ends = state["pads"] == 1
        state["pads"] -= 1
    if ends:
        explicit = padding_steps(window)[1]
        state.update(phase="left" if explicit else "data", pads=explicit,
                     wait=start_shifts(window), fresh=True)
    return created or tail_created


class WindowBuffer(wiring.Component):
    """A shift register of ``receptive_field`` time steps that emits the windows of ``window``.

    For each sequence (steps up to and including the one with ``last``), the windows are
    those of the sequence with ``pad_left`` zero steps before it and ``pad_right`` after it:
    the window ending at every ``stride``-th padded step once ``receptive_field`` steps are
    in, so a sequence of ``L`` steps gives exactly ``window.out_length(L)`` windows (none for
    a sequence too short for one).

    **Back to back.** One step shifts per cycle while no window is pending, or the pending one
    is taken in that cycle. A sequence's left padding up to ``receptive_field − 1`` steps
    costs nothing: the register slots older than the sequence's first step read as zeros in
    its windows (a count of its steps masks them). The right padding shifts *together with*
    the next sequence's first steps: after a sequence's ``last`` the buffer keeps a *tail*,
    the number of shifts up to its final window (:func:`tail_shifts`; padding after that is
    skipped); each later shift (the next sequence's step, or a zero *bubble* while that
    sequence has not begun) moves the tail on, and the tail's windows read the slots of the
    next sequence as zeros. A sequence's step shifts during a tail only if its next window
    ends after the tail's final one (``tail < wait``), so windows stay in order, one per
    shift. With :func:`gap_free` geometry (no explicit left padding, ``pad_right <
    receptive_field − preloaded``) that always holds: back-to-back sequences then enter
    without a single idle cycle. Otherwise the next sequence waits for the tail (bubbles).
    Explicit left padding (``pad_left ≥ receptive_field``) shifts a zero step per cycle,
    once the sequence's first step is offered. A sequence that ends while a tail is still
    running (one shorter than the tail) shifts its own right padding before the next one
    starts.

    ``o_last`` carries one flag per window, in window order: whether it is the last window of
    its sequence. A flag is known once enough later steps are in to tell: at once for a
    window completed by padding or by the ``last`` step, or when ``stride ≤ pad_right + 1``;
    otherwise after ``stride − 1 − pad_right`` more steps of its sequence, or its ``last``.
    Flags enter a FIFO of ``last_depth`` entries the cycle after their decision and can be read
    the cycle after that; while it has fewer than two free entries nothing shifts.
    :func:`window_schedule` models all of this cycle by cycle.

    Parameters
    ----------
    window : Window
    shape : Shape
        One channel's value.
    channels : int
    last_depth : int
        Entries of the ``o_last`` FIFO (windows between their flag's decision and its read),
        at least 2.
    take_ii : int
        Cycles from one window's take to the next one's at least (``o.valid`` stays low
        until then): the consumer's ii, or a slower pace. A bubble that would complete a
        tail window waits until that window could be taken in the next cycle, so that it
        never holds up a step that comes meanwhile.

    Members
    -------
    i : In(stream.Signature(StructLayout({"data": ArrayLayout(shape, channels), "last": 1})))
    o : Out(stream.Signature(ArrayLayout(ArrayLayout(shape, channels), kernel_size)))
        Window taps, oldest (tap 0) first.
    o_last : Out(stream.Signature(1))
    """

    def __init__(self, window: Window, shape, channels: int, *, last_depth: int,
                 take_ii: int = 1):
        self._window = window
        self._take_ii = check_integer(take_ii, "take_ii", minimum=1)
        self._channels = check_integer(channels, "channels", minimum=1)
        self._last_depth = check_integer(last_depth, "last_depth", minimum=2)
        self._step = data.ArrayLayout(shape, channels)
        super().__init__({
            "i": In(stream.Signature(framed_layout(self._step))),
            "o": Out(stream.Signature(data.ArrayLayout(self._step, window.kernel_size))),
            "o_last": Out(stream.Signature(1)),
        })

    def elaborate(self, platform):
        m = Module()
        window = self._window
        span, stride, pad_right = window.receptive_field, window.stride, window.pad_right
        preloaded, explicit = padding_steps(window)
        start = start_shifts(window)
        waits = max(start, stride)      # the largest `wait`
        tails = [tail_shifts(window, after) for after in range(waits + 1)]
        longest = max(tails)            # the longest tail (0: right padding makes no window)

        steps = [Signal(self._step, name=f"step{k}") for k in range(span)]  # oldest first
        pending = Signal()                              # a window is in the register
        # Cycles before the next take is allowed (`take_ii` after the previous one).
        gap = Signal(range(self._take_ii))
        m.d.comb += self.o.valid.eq(pending & (gap == 0))
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += gap.eq(self._take_ii - 1)
        with m.Elif(gap != 0):
            m.d.sync += gap.eq(gap - 1)
        pending_tail = Signal()                         # the pending window is a tail's
        wait = Signal(range(waits + 1), init=start)     # shifts to the sequence's next window
        # Steps of the current sequence in the register, as the pending window sees them, and
        # whether the next shift of a sequence starts it (the count then starts over).
        count = Signal(range(span + 1))
        fresh = Signal(init=1)
        undecided = Signal()                            # the last window's flag is not known
        left, data_, right = range(3)
        first = left if explicit else data_
        phase = Signal(range(3), init=first)
        pads = Signal(range(max(explicit, longest) + 1), init=explicit)  # left in the phase
        tail = Signal(range(longest + 1))               # shifts to the tail's final window
        tail_wait = Signal(range(waits + 1))            # shifts to the tail's next window
        fifo = m.submodules.last_fifo = SyncFIFO(width=1, depth=self._last_depth)
        m.d.comb += [self.o_last.payload.eq(fifo.r_data), self.o_last.valid.eq(fifo.r_rdy),
                     fifo.r_en.eq(self.o_last.ready)]

        # Masks. A window reads the slots older than its sequence's first step as (left
        # padding) zeros, and a tail's window reads the slots of the sequence after it as
        # (right padding) zeros. Slot k holds one of the newest n steps iff n ≥ span − k: the
        # steps of the current sequence (`count`) and those of the tail's sequence with all
        # that came after it (`tail_count`) say which. Only the oldest `preloaded` and the
        # newest `longest` slots can need it. (Clearing slots as they shift instead, once no
        # tail needs them, takes more logic: up to `preloaded + longest` slots, each with a
        # condition of its own.)
        tail_count = Signal(range(span + 1))
        seen = Mux(pending_tail, tail_count, count)
        taps = []
        for k in range(span):
            zero = 0
            if k < preloaded:
                zero = zero | (seen < span - k)
            if k >= span - longest:
                zero = zero | (pending_tail & (count >= span - k))
            taps.append(Mux(zero, 0, steps[k]) if k < preloaded or k >= span - longest
                        else Value.cast(steps[k]))
        m.d.comb += Value.cast(self.o.payload).eq(
            Cat(*(taps[j * window.dilation] for j in range(window.kernel_size))))

        room_for_flags = Signal()
        room = (~pending | (self.o.valid & self.o.ready)) & room_for_flags
        in_left, in_data, in_right = phase == left, phase == data_, phase == right
        tail_busy = tail != 0
        may_step = tail < wait      # this sequence's next window ends after the tail's last
        step, bubble, shift = Signal(), Signal(), Signal()
        m.d.comb += [
            self.i.ready.eq(room & in_data & may_step),
            step.eq(room & (in_right | ((in_left | in_data) & self.i.valid & may_step))),
            bubble.eq(room & ~step & tail_busy & fresh & ~in_right
                      & ((tail_wait != 1) | (gap <= 1))),
            shift.eq(step | bubble),
        ]
        last = in_data & self.i.payload.last

        with m.If(shift):
            for k in range(span - 1):
                m.d.sync += Value.cast(steps[k]).eq(steps[k + 1])
            m.d.sync += Value.cast(steps[-1]).eq(
                Mux(in_data & step, Value.cast(self.i.payload.data), 0))

        # The tail moves on with every shift; its windows' flags are known at once.
        tail_created = Signal()
        if longest:
            m.d.comb += tail_created.eq(tail_busy & (tail_wait == 1))
            with m.If(shift & tail_busy):
                m.d.sync += [tail.eq(tail - 1),
                             tail_wait.eq(Mux(tail_created, stride, tail_wait - 1))]

        created = wait == 1
        after = Signal.like(wait)
        m.d.comb += after.eq(Mux(created, stride, wait - 1))
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += pending.eq(0)
        with m.If(shift):
            m.d.sync += [pending.eq((step & created) | tail_created),
                         pending_tail.eq(tail_created)]
        with m.If(bubble):
            m.d.sync += count.eq(0)
        counted = Signal.like(count)       # `count` after this sequence's step
        m.d.comb += counted.eq(Mux(fresh | (count == span), Mux(fresh, 1, span), count + 1))
        with m.If(step):
            m.d.sync += [count.eq(counted), fresh.eq(0), wait.eq(after)]
        with m.If(shift & tail_busy & (tail_count != span)):
            m.d.sync += tail_count.eq(tail_count + 1)

        value, decided = self._decide(m, wait, created, after, phase, pads, last,
                                      (left, data_, right), explicit)
        subject = created | undecided
        # The flag is written a cycle later, so the FIFO's controls are no part of the shift's
        # logic; a flag may be on its way, hence the room for two.
        write, flag = Signal(), Signal()
        m.d.sync += [write.eq((step & subject & decided) | (shift & tail_created)),
                     flag.eq(Mux(tail_created, tail == 1, value))]
        m.d.comb += [fifo.w_en.eq(write), fifo.w_data.eq(flag), room_for_flags.eq(
            fifo.level < self._last_depth - 1)]
        with m.If(step):
            m.d.sync += undecided.eq(subject & ~decided)

        # The sequence's phases. At `last`, a tail that is free takes the right padding over
        # (the next sequence may begin at once); else the sequence shifts it itself.
        ends = Signal()
        tail_after = Signal.like(tail)
        with m.Switch(after):
            for a in range(1, waits + 1):
                with m.Case(a):
                    m.d.comb += tail_after.eq(tails[a])
        with m.If(step):
            with m.Switch(phase):
                if explicit:
                    with m.Case(left):
                        m.d.sync += pads.eq(pads - 1)
                        with m.If(pads == 1):
                            m.d.sync += phase.eq(data_)
                with m.Case(data_):
                    with m.If(last):
                        m.d.comb += ends.eq((tail_after == 0) | ~tail_busy)
                        if longest:
                            with m.If(tail_after != 0):
                                with m.If(tail_busy):
                                    m.d.sync += [phase.eq(right), pads.eq(tail_after)]
                                with m.Else():
                                    m.d.sync += [tail.eq(tail_after), tail_wait.eq(after),
                                                     tail_count.eq(counted)]
                if longest:
                    with m.Case(right):
                        m.d.comb += ends.eq(pads == 1)
                        m.d.sync += pads.eq(pads - 1)
            with m.If(ends):
                m.d.sync += [phase.eq(first), pads.eq(explicit), wait.eq(start),
                             fresh.eq(1)]
        return m

    def _decide(self, m, wait, created, after, phase, pads, last, phases, explicit):
        """``(value, decided)``: whether the window this shift completes (or the undecided
        one) is its sequence's last, and whether that is known yet. It is iff fewer than
        `after` steps follow in the sequence; before `last` is seen only a lower bound on
        them is known, which may already be enough to say "not last"."""
        left, data_, right = phases
        pad_right, stride = self._window.pad_right, self._window.stride
        waits = max(start_shifts(self._window), stride)

        # `after` is `stride` or `wait − 1`: each comparison with it is made on `wait` and a
        # constant instead, so no subtractor sits in front of the comparators.
        def after_at_most(bound):
            """``after ≤ bound`` (an int or a small Value)."""
            if isinstance(bound, int):   # constant comparisons are decided here
                later = 1 if bound + 1 >= waits else wait <= bound + 1
                return Mux(created, int(stride <= bound), later)
            return Mux(created, stride <= bound, wait <= bound + 1)

        decided, value = Signal(), Signal()
        with m.Switch(phase):
            if explicit:            # (phases a layer never has get no logic)
                with m.Case(left):  # the sequence's data and right padding follow
                    m.d.comb += decided.eq(after_at_most(pads + pad_right))
            with m.Case(data_):     # at least one more data step, or exactly pad_right
                m.d.comb += [decided.eq(last | after_at_most(1 + pad_right)),
                             value.eq(last & ~after_at_most(pad_right))]
            with m.Case(right):     # the final window of the right padding is the last
                m.d.comb += [decided.eq(1), value.eq(pads == 1)]
        return value, decided
