"""The window buffer of a sliding-window layer over a framed sequence stream.

:class:`WindowBuffer` turns a stream of time steps (``data``, ``last``) into the stream of the
windows a :class:`~hwnn.ref.windows.Window` defines (zero padding included), and a second
stream saying which window is the last of its sequence. :func:`window_schedule` is its timing
model: the exact cycles of an unstalled run, which the tests assert.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from ..checks import check_integer
from ..ref.windows import Window
from .framed import framed_layout

__all__ = ["WindowBuffer", "padding_steps", "window_schedule"]


def padding_steps(window: Window) -> tuple[int, int]:
    """``(preloaded, explicit)`` left padding steps of a sequence.

    Up to ``receptive_field − 1`` left zero steps cost nothing: the buffer starts each
    sequence with them in place (``preloaded``). Only the rest (``explicit``, nonzero when
    ``pad_left ≥ receptive_field``: windows of padding alone) are shifted in, a cycle each.
    """
    preloaded = min(window.pad_left, window.receptive_field - 1)
    return preloaded, window.pad_left - preloaded


def _future(kind: str, pads: int, pad_right: int) -> tuple[int, bool]:
    """Steps that follow a shift in its sequence: ``(count, exact)``; a lower bound (not
    exact) while the sequence's ``last`` has not been seen. ``pads`` counts the padding steps
    of the current phase still to shift, this one included."""
    if kind == "left":
        return pads - 1 + 1 + pad_right, False  # at least one data step follows
    if kind == "data":
        return 1 + pad_right, False
    if kind == "last":
        return pad_right, True
    return pads - 1, True


def window_schedule(window: Window, lengths, *, window_ii: int, latency: int):
    """The cycles of an unstalled run of a :class:`WindowBuffer` feeding a core that takes a
    window at most every ``window_ii`` cycles and gives its result ``latency`` cycles later.

    Rules (those of the hardware): one step shifts per cycle; a shift that completes a window
    makes it pending from the next cycle; the core takes it in the first cycle allowed
    (``window_ii`` after the previous one), and the next shift happens in that cycle. The
    result is output ``latency`` cycles after the take, but not before its ``last`` flag is
    known (two cycles after the shift that decides it) nor in the same cycle as the previous one.

    Returns ``(in_cycles, out_cycles)``: the cycle each input step is accepted (steps of all
    sequences, in order, the first offered in cycle 0) and the cycle each output is taken.
    """
    preloaded, explicit = padding_steps(window)
    start, stride, pad_right = window.receptive_field - preloaded, window.stride, window.pad_right
    cycle, wait, last_take, undecided = 0, start, None, None
    ins, takes, decided = [], [], []
    for length in lengths:
        kinds = (["left"] * explicit + ["data"] * (length - 1) + ["last"]
                 + ["right"] * pad_right)
        for k, kind in enumerate(kinds):
            pads = explicit - k if kind == "left" else len(kinds) - k
            if kind in ("data", "last"):
                ins.append(cycle)
            created = wait == 1
            after = stride if created else wait - 1
            following, exact = _future(kind, pads, pad_right)
            subject = len(takes) if created else undecided
            if subject is not None and (exact or after <= following):
                decided.append(cycle)
                undecided = None
            elif subject is not None:
                undecided = subject
            wait = start if k == len(kinds) - 1 else after
            if created:
                take = cycle + 1 if last_take is None else max(cycle + 1, last_take + window_ii)
                takes.append(take)
                last_take, cycle = take, take
            else:
                cycle += 1
    outs = []
    for take, known in zip(takes, decided):
        outs.append(max(take + latency, known + 2, outs[-1] + 1 if outs else 0))
    return np.asarray(ins, dtype=np.int64), np.asarray(outs, dtype=np.int64)


class WindowBuffer(wiring.Component):
    """A shift register of ``receptive_field`` time steps that emits the windows of ``window``.

    For each sequence (steps up to and including the one with ``last``), the buffer holds
    ``pad_left`` zero steps before the first step and gets ``pad_right`` zero steps after the
    step with ``last``; it emits the window ending at every ``stride``-th padded step once
    ``receptive_field`` steps are in, so a sequence of ``L`` steps gives exactly
    ``window.out_length(L)`` windows (none for a sequence too short for one). After the
    sequence's final step the state starts over, so the next sequence may follow in the next
    cycle and never sees the previous one's steps.

    Timing: one step shifts in per cycle while no window is pending or the pending one is
    taken in that cycle. Left padding up to ``receptive_field − 1`` steps costs no cycle
    (:func:`padding_steps`); each other padding step costs one. A window is valid on ``o``
    the cycle after the shift that completes it.

    ``o_last`` carries one flag per window, in window order: whether it is the last window of
    its sequence. A flag is known once enough later steps are in to tell: at once when the
    window is completed by padding or by the ``last`` step, or when ``stride ≤ pad_right + 1``;
    otherwise after ``stride − 1 − pad_right`` more steps of its sequence, or its ``last``.
    Flags enter a FIFO of ``last_depth`` entries the cycle after their decision and can be read
    the cycle after that; while it has fewer than two free entries nothing shifts.

    Parameters
    ----------
    window : Window
    shape : Shape
        One channel's value.
    channels : int
    last_depth : int
        Entries of the ``o_last`` FIFO (windows between their flag's decision and its read),
        at least 2.

    Members
    -------
    i : In(stream.Signature(StructLayout({"data": ArrayLayout(shape, channels), "last": 1})))
    o : Out(stream.Signature(ArrayLayout(ArrayLayout(shape, channels), kernel_size)))
        Window taps, oldest (tap 0) first.
    o_last : Out(stream.Signature(1))
    """

    def __init__(self, window: Window, shape, channels: int, *, last_depth: int):
        self._window = window
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
        start = span - preloaded   # shifts of a sequence before its first window

        steps = [Signal(self._step, name=f"step{k}") for k in range(span)]  # oldest first
        m.d.comb += Value.cast(self.o.payload).eq(
            Cat(*(steps[j * window.dilation] for j in range(window.kernel_size))))
        pending = self.o.valid                          # a register: set below
        wait = Signal(range(max(start, stride) + 1), init=start)   # shifts to the next window
        fresh = Signal(init=1)                          # no step of this sequence in yet
        undecided = Signal()                            # the last window's flag is not known
        left, data_, right = range(3)
        phase = Signal(range(3), init=left if explicit else data_)
        pads = Signal(range(max(explicit, pad_right) + 1), init=explicit)  # left in the phase
        fifo = m.submodules.last_fifo = SyncFIFO(width=1, depth=self._last_depth)
        m.d.comb += [self.o_last.payload.eq(fifo.r_data), self.o_last.valid.eq(fifo.r_rdy),
                     fifo.r_en.eq(self.o_last.ready)]

        # Shift when the pending window (if any) leaves now and a flag would have room.
        room_for_flags = Signal()
        room = (~pending | self.o.ready) & room_for_flags
        in_data = phase == data_
        shift = Signal()
        m.d.comb += [self.i.ready.eq(in_data & room), shift.eq(room & (~in_data | self.i.valid))]
        last = in_data & self.i.payload.last
        final = last if pad_right == 0 else (phase == right) & (pads == 1)

        incoming = Mux(in_data, Value.cast(self.i.payload.data), 0)
        # The first shift of a sequence puts its preloaded left padding just behind its step.
        cleared = range(span - 1 - preloaded, span - 1)
        with m.If(shift):
            for k in range(span - 1):
                older = Value.cast(steps[k + 1])
                m.d.sync += Value.cast(steps[k]).eq(Mux(fresh, 0, older) if k in cleared
                                                    else older)
            m.d.sync += [Value.cast(steps[-1]).eq(incoming), fresh.eq(final)]

        created = wait == 1
        after = Mux(created, stride, wait - 1)
        with m.If(self.o.ready):
            m.d.sync += pending.eq(0)
        with m.If(shift):
            m.d.sync += [wait.eq(Mux(final, start, after)), pending.eq(created)]

        # Whether the window completed now (or the undecided one) is its sequence's last: it is
        # iff fewer than `after` steps follow in the sequence. Before `last` is seen only a
        # lower bound on them is known, which may already be enough to say "not last".
        # `after` is `stride` or `wait − 1`: each comparison with it is made on `wait` and a
        # constant instead, so no subtractor sits in front of the comparators.
        def after_at_most(bound):
            """``after ≤ bound`` (an int or a small Value)."""
            if isinstance(bound, int):   # constant comparisons are decided here
                later = 1 if bound + 1 >= max(start, stride) else wait <= bound + 1
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
            if pad_right:
                with m.Case(right):  # exactly pads − 1 steps follow
                    m.d.comb += [decided.eq(1), value.eq(~after_at_most(pads - 1))]
        subject = created | undecided
        # The flag is written a cycle later, so the FIFO's controls are no part of the shift's
        # logic; a flag may be on its way, hence the room for two.
        write, flag = Signal(), Signal()
        m.d.sync += [write.eq(shift & subject & decided), flag.eq(value)]
        m.d.comb += [fifo.w_en.eq(write), fifo.w_data.eq(flag), room_for_flags.eq(
            fifo.level < self._last_depth - 1)]
        with m.If(shift):
            m.d.sync += undecided.eq(subject & ~decided)

        with m.If(shift):
            self._advance_phase(m, phase, pads, last, explicit, pad_right,
                                (left, data_, right))
        return m

    @staticmethod
    def _advance_phase(m, phase, pads, last, explicit, pad_right, phases):
        """Step the phase of the sequence (left padding, data, right padding) after a shift."""
        left, data_, right = phases
        first = left if explicit else data_
        with m.Switch(phase):
            if explicit:
                with m.Case(left):
                    m.d.sync += pads.eq(pads - 1)
                    with m.If(pads == 1):
                        m.d.sync += phase.eq(data_)
            with m.Case(data_):
                with m.If(last):
                    m.d.sync += [phase.eq(right if pad_right else first),
                                 pads.eq(pad_right if pad_right else explicit)]
            if pad_right:
                with m.Case(right):
                    m.d.sync += pads.eq(pads - 1)
                    with m.If(pads == 1):
                        m.d.sync += [phase.eq(first), pads.eq(explicit)]
