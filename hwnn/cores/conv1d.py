"""1-D convolution over a framed sequence stream: a window buffer feeding one Dense per group."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from ..checks import ParameterTypeError, check_integer
from ..plans.conv1d import Conv1dPlan
from ._component import owned, rejects_quietly
from ._window import WindowBuffer, gap_free, padding_steps, window_schedule
from .dense import Dense
from .framed import frame_layout
from .requantize import format_shape

__all__ = ["Conv1d"]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class Conv1d(wiring.Component):
    """``Conv1d`` over a sequence stream: computes :func:`hwnn.ref.conv1d.conv1d` per sequence.

    A :class:`~hwnn.cores._window.WindowBuffer` (a shift register of ``receptive_field`` time
    steps of all channels) forms each window, zero padding included; group ``g`` takes
    channels ``g·Cg … g·Cg + Cg − 1`` of every tap (tap-major, oldest tap first) into its own
    :class:`~hwnn.cores.dense.Dense` core built from ``plan.groups[g]`` with this core's
    ``arith``, ``parallelism`` and ``pipeline`` (each group has ``parallelism`` multipliers).
    The group outputs are joined into one vector, channel ``g·Og + r`` from group ``g``'s
    output ``r``, whose ``last`` is set on the last output of each sequence.

    Sequences follow each other back to back (the step after one with ``last`` starts the next
    sequence) and every window sees only its own sequence's steps. A sequence of ``L`` steps
    gives ``plan.out_length(L)`` outputs; one too short for a window gives **no output at all**
    (so no beat carries its ``last``).

    Timing. ``ii_d`` is the group cores' ii and ``L_d`` the largest of their latencies. One
    step shifts into the buffer per cycle, as long as the window the previous shift completed
    (if any) is taken by the groups in that cycle or before; the groups take a window at most
    every ``ii_d`` cycles. A sequence's right padding shifts together with the next
    sequence's first steps (:class:`~hwnn.cores._window.WindowBuffer`): with
    :attr:`gap_free` geometry (``"valid"``, ``"same"``, causal padding) and ``ii_d ≤
    stride``, input steps offered every cycle are all taken one per cycle, across sequence
    boundaries too, and the last sequence's padding windows follow its ``last`` at one per
    cycle (zero bubbles). Otherwise the input waits where windows pile up (``ii_d > stride``)
    or where a tail and the next sequence's first window would collide.
    :meth:`schedule` gives the cycle of every input and output for any lengths and arrival
    times (the tests assert it).

    Latency (``latency``): ``L_d + 1`` cycles from the shift that completes a window (the
    cycle its last input step is accepted, or the cycle its last padding step shifts) to its
    output, when the groups take it at once (``ii_d ≤ stride``), except that an output waits
    for its ``last`` flag: when ``stride > pad_right + 1`` a window completed by a step other
    than the sequence's ``last`` could be the last one, and its flag is decided only ``stride
    − 1 − pad_right`` steps later (or at ``last``) and can be read two cycles after that. The
    wait adds nothing while ``stride − pad_right ≤ L_d`` (always for ``stride ≤ 3``: ``L_d ≥
    3``).

    Parameters
    ----------
    plan : Conv1dPlan
        From :func:`hwnn.plans.conv1d.plan_conv1d`.
    arith, parallelism, pipeline
        As for :class:`~hwnn.cores.dense.Dense`, for each group's core (checked there).
    pace : int or None
        Cycles between window takes at least (None: the group cores' ii). A network sets it
        so that a layer faster than the network never sends the one after it a burst.

    Members
    -------
    i : In(stream.Signature(StructLayout({"data": ArrayLayout(<in_format shape>,
        in_channels), "last": 1})))
        One time step of all channels per transfer; ``last`` on the final step of a sequence.
    o : Out(stream.Signature(StructLayout({"data": ArrayLayout(<out_format shape>,
        out_channels), "last": 1})))
        One output step per transfer; ``last`` on the final output step of a sequence.

    Raises
    ------
    TypeError
        ``plan`` is not a Conv1dPlan; and :class:`~hwnn.cores.dense.Dense`'s type errors for
        ``arith``, ``parallelism``, ``pipeline``.
    ValueError
        :class:`~hwnn.cores.dense.Dense`'s value errors (``parallelism`` outside ``1 …
        kernel_size·in_channels·out_channels/groups²``, ``pipeline`` with ``arith="mult"``,
        ``parallelism`` with shift-add...); ``pace`` below 1.
    """

    @rejects_quietly
    def __init__(self, plan: Conv1dPlan, *, arith: str = "mult", parallelism: int | None = None,
                 pipeline: int | None = None, pace: int | None = None):
        if not isinstance(plan, Conv1dPlan):
            raise ParameterTypeError("plan", f"plan must be a Conv1dPlan (see "
                                             f"hwnn.plans.conv1d.plan_conv1d), not {plan!r}")
        self._plan = plan
        self._dense = tuple(owned(Dense(group, arith=arith, parallelism=parallelism,
                                        pipeline=pipeline)) for group in plan.groups)
        self._dense_ii = self._dense[0].ii
        # Cycles between window takes at least: the groups' ii, or the pace asked for.
        self._take_ii = max(self._dense_ii,
                            1 if pace is None else check_integer(pace, "pace", minimum=1))
        self._dense_latency = max(core.latency for core in self._dense)
        # Windows between their `last` decision and their output: the pending one, those in
        # a group core (about one per ii_d cycles of its latency), its output registers, and
        # the flag on its way to the FIFO.
        last_depth = _ceil_div(self._dense_latency + 1, self._dense_ii) + 4
        in_shape = format_shape(plan.in_format)
        self._buffer = owned(WindowBuffer(plan.window, in_shape, plan.in_channels,
                                          last_depth=last_depth, take_ii=self._take_ii))
        super().__init__({
            "i": In(stream.Signature(frame_layout(plan.in_format, plan.in_channels))),
            "o": Out(stream.Signature(frame_layout(plan.out_format, plan.out_channels))),
        })

    plan = property(lambda self: self._plan, doc="The Conv1dPlan this core implements.")
    cores = property(lambda self: self._dense, doc="The group cores (Dense), group order.")
    arith = property(lambda self: self._dense[0].arith, doc="'mult', 'csd' or 'mcm'.")
    parallelism = property(lambda self: self._dense[0].parallelism,
                           doc="Multipliers requested per group (all of a group's products "
                               "for shift-add).")
    in_format = property(lambda self: self._plan.in_format)
    out_format = property(lambda self: self._plan.out_format)

    @property
    def multipliers(self) -> int:
        """Multipliers instantiated, all groups (0 for shift-add)."""
        return sum(core.multipliers for core in self._dense)

    take_ii = property(lambda self: self._take_ii,
                       doc="Cycles between window takes at least: ``max(ii_d, pace)``.")

    @property
    def window_ii(self) -> int:
        """Cycles between windows inside a sequence at full rate: ``max(ii_d, stride,
        pace)``."""
        return max(self._take_ii, self._plan.stride)

    @property
    def ii(self) -> int:
        """Cycles per input step at full rate inside a sequence, rounded up:
        ``ceil(window_ii / stride)``. Input steps offered every ``ii`` cycles complete
        windows at least ``window_ii`` cycles apart, so no such window holds up the input;
        the windows of the padding may, unless :attr:`gap_free` and ``ii_d = 1``
        (:meth:`schedule` has every cycle)."""
        return _ceil_div(self.window_ii, self._plan.stride)

    @property
    def latency(self) -> int:
        """Cycles from the shift that completes a window to its output, without stalls
        (``L_d + 1``; see the class docstring for the wait on ``last`` at large strides)."""
        return self._dense_latency + 1

    @property
    def explicit_padding(self) -> int:
        """Left padding steps that take a cycle each (``pad_left − receptive_field + 1`` when
        positive): the rest of the left padding is preloaded."""
        return padding_steps(self._plan.window)[1]

    @property
    def gap_free(self) -> bool:
        """Whether a sequence's right padding always shifts together with the next sequence's
        first steps (:func:`~hwnn.cores._window.gap_free`)."""
        return gap_free(self._plan.window)

    def schedule(self, lengths, arrivals=None):
        """``(in_cycles, out_cycles)`` of a run of back-to-back sequences of ``lengths`` steps
        whose output is always taken, input step ``k`` offered from cycle ``arrivals[k]``
        (None: all from cycle 0), as :func:`hwnn.sim.run_stream` reports them (see
        :func:`hwnn.cores._window.window_schedule` for the rules).

        Raises
        ------
        ValueError
            ``lengths`` holds a negative number, or ``arrivals`` is not one non-decreasing
            non-negative integer per step.
        """
        return window_schedule(self._plan.window, lengths, window_ii=self._take_ii,
                               latency=self._dense_latency, arrivals=arrivals)

    def describe(self) -> dict:
        """Parameters, formats, timing and each group's Dense description (JSON-serializable)."""
        return {"kind": "conv1d", "class": "Conv1d", "arith": self.arith,
                "parallelism": self.parallelism, "multipliers": self.multipliers,
                "latency": self.latency, "ii": self.ii, "window_ii": self.window_ii,
                "explicit_padding": self.explicit_padding,
                "gap_free": self.gap_free, **self._plan.describe(),
                "group_cores": [core.describe() for core in self._dense]}

    def elaborate(self, platform):
        m = Module()
        plan, buffer = self._plan, self._buffer
        m.submodules.window = buffer
        wiring.connect(m, wiring.flipped(self.i), buffer.i)

        # Fork: every group takes the pending window, each in its own time; it leaves the
        # buffer once all have (`sent` remembers who has, so a valid is never withdrawn).
        taps = Value.cast(buffer.o.payload)
        step_bits = len(taps) // plan.kernel_size
        group_bits = step_bits // plan.n_groups
        takes = []
        for g, core in enumerate(self._dense):
            m.submodules[f"group{g}"] = core
            sent = Signal(name=f"sent{g}")
            m.d.comb += [
                Value.cast(core.i.payload).eq(Cat(*(
                    taps[j * step_bits + g * group_bits:][:group_bits]
                    for j in range(plan.kernel_size)))),
                core.i.valid.eq(buffer.o.valid & ~sent),
            ]
            takes.append(sent | core.i.ready)
            with m.If(buffer.o.valid & core.i.ready):
                m.d.sync += sent.eq(1)
            # Placed after the set above, so that clearing wins when the window leaves.
            with m.If(buffer.o.valid & buffer.o.ready):
                m.d.sync += sent.eq(0)
        m.d.comb += buffer.o.ready.eq(Cat(*takes).all())
        self._join(m)
        return m

    def _join(self, m):
        """Drive ``o`` from the group outputs and the buffer's ``last`` flags, all at once.

        A group whose core is faster than the slowest (shift-add graphs differ in depth) gets
        a FIFO of one vector per cycle of difference, plus one, so that at full rate it never
        holds up its core while the slowest group catches up.
        """
        outputs = []
        for g, core in enumerate(self._dense):
            lag = self._dense_latency - core.latency
            if not lag:
                outputs.append(core.o)
                continue
            fifo = SyncFIFO(width=len(Value.cast(core.o.payload)), depth=lag + 1)
            m.submodules[f"group{g}_fifo"] = fifo
            m.d.comb += [fifo.w_data.eq(Value.cast(core.o.payload)), fifo.w_en.eq(core.o.valid),
                         core.o.ready.eq(fifo.w_rdy)]
            outputs.append(_FifoOut(fifo))
        last = self._buffer.o_last
        valid = Cat(last.valid, *(out.valid for out in outputs)).all()
        take = Signal()
        m.d.comb += [
            self.o.valid.eq(valid), take.eq(valid & self.o.ready),
            Value.cast(self.o.payload.data).eq(Cat(*(Value.cast(out.payload)
                                                     for out in outputs))),
            self.o.payload.last.eq(last.payload), last.ready.eq(take),
        ]
        m.d.comb += [out.ready.eq(take) for out in outputs]


class _FifoOut:
    """The read side of a SyncFIFO seen as a stream's ``valid``/``payload``/``ready``."""

    def __init__(self, fifo):
        self.valid, self.payload, self.ready = fifo.r_rdy, fifo.r_data, fifo.r_en
