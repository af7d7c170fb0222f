"""Both directions of a bidirectional LSTM or GRU layer, as two recurrent cores and three
sequence memories."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from amaranth.hdl import Cat, Const, Module, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..checks import check_bool, check_integer
from ..plans.bidirectional import BidirectionalPlan
from ..plans.rnn import RecurrentPlan
from ._component import owned, rejects_quietly
from ._recurrent_io import state_layout
from ._timing import check_arrivals, pipeline_schedule
from .framed import frame_layout
from .rnn_core import recurrent_core

__all__ = ["Bidirectional", "bidirectional_state_layout"]


def bidirectional_state_layout(forward: RecurrentPlan, reverse: RecurrentPlan) -> data.StructLayout:
    """Both directions' initial state as one flat record: ``h_forward``, ``h_reverse`` and, for
    an LSTM, ``c_forward``, ``c_reverse`` (each direction's fields of
    :func:`~hwnn.cores._recurrent_io.state_layout`, which may differ in format). Flat rather than
    two nested records: the simulators' payload codec packs one level of fields."""
    fields = {}
    for direction, plan in (("forward", forward), ("reverse", reverse)):
        for name, shape in state_layout(plan).members.items():
            fields[f"{name}_{direction}"] = shape
    return data.StructLayout(fields)


class Bidirectional(wiring.Component):
    """A bidirectional LSTM or GRU layer: each step's output is ``[h_forward(t); h_reverse(t)]``,
    PyTorch's concatenation, where the reverse direction runs from a sequence's last step to
    its first (:func:`hwnn.ref.rnn.recurrent` with each plan).

    The reverse direction needs a sequence's last step first, so a sequence goes through three
    phases, one after the other:

    1. *load*: each step enters the forward :class:`~hwnn.cores.recurrent.Recurrent` core (one
       every ``S_f`` = its ``step_cycles``) and a memory of ``max_steps`` steps; the forward
       hidden states go to a second memory;
    2. *reverse*: from the sequence's last step back to its first, the memory feeds a second
       Recurrent core built from the reverse plan run forwards (one step every ``S_r`` = its
       ``step_cycles`` cycles, or every 2 for a core of 1 cycle a step: each step is read from
       the memory, then sent); its hidden states go to a third memory;
    3. *emit*: both memories are read in time order, an output every ``emit_cycles =
       max(2, pace)`` cycles (a read, then the transfer; ``pace`` slows it down to what the
       layer after it takes, so that layer never holds it up).

    Timing without stalls: a sequence of ``L`` steps whose steps are offered at once takes
    ``L·S_f`` cycles to load; its first output comes ``max(S_f, R(L)) + 3`` cycles after
    its last step entered (``R(L) = 2 + (L − 1)·max(2, S_r) + S_r``, the reverse pass), the
    others ``emit_cycles`` apart, and the next
    sequence's first step enters in the cycle after the last output (:meth:`schedule` gives
    every cycle, :meth:`period` the cycles per sequence). So ``ii`` is ``S_f`` (steps within a
    sequence) and ``latency`` is counted from a sequence's last step to its first output, for
    a sequence of ``max_steps`` steps.

    Sequences longer than ``max_steps`` are not stored: their extra steps raise the sticky
    ``error`` output and the sequence's outputs are not defined (a network sets ``max_steps``
    to the spec's sequence length).

    Parameters
    ----------
    forward, reverse : RecurrentPlan
        The two directions' plans (``reverse.reverse`` true), of one kind, with the same input
        format and size, hidden size and state format.
    max_steps : int
        The longest sequence (the depth of the memories).
    pace : int
        The fewest cycles between outputs (at least 2 in any case).
    initial_state : bool
        Each sequence starts both directions from a state taken on ``i_state`` (PyTorch's
        ``h0[0]``/``h0[1]``) rather than zeros: the forward one with the sequence's first step,
        the reverse one (kept in a register meanwhile) with its first step, the sequence's last.
        The forward core's first step waits for it; nothing else changes in the timing.
    **options
        For both directions' cores (``arith``, ``parallelism``, ``pipeline``, ``lanes``; with
        ``cuts``, :class:`~hwnn.cores.recurrent_unrolled.UnrolledRecurrent`:
        :func:`~hwnn.cores.rnn_core.recurrent_core`).

    Members
    -------
    i : In(stream.Signature(frame_layout(in_format, input_size)))
    o : Out(stream.Signature(frame_layout(state_format, 2·hidden)))
    i_state : In(stream.Signature(bidirectional_state_layout(forward, reverse)))
        Only with ``initial_state``: one transfer per sequence.
    error : Out(1)

    Raises
    ------
    TypeError, ValueError
        Plans that are not RecurrentPlans or do not pair up (the message says how,
        :class:`~hwnn.plans.bidirectional.BidirectionalPlan`), a bad ``max_steps`` or
        ``pace``, and the Recurrent cores' errors.
    """

    @rejects_quietly
    def __init__(self, forward: RecurrentPlan, reverse: RecurrentPlan, *, max_steps: int,
                 pace: int = 1, initial_state: bool = False, **options):
        self._plan = BidirectionalPlan(forward, reverse)
        self._max_steps = check_integer(max_steps, "max_steps", minimum=1)
        self._pace = check_integer(pace, "pace", minimum=1)
        self._initial = check_bool(initial_state, "initial_state")
        options["initial_state"] = self._initial
        self._forward = owned(recurrent_core(forward, **options))
        self._reverse = owned(recurrent_core(replace(reverse, reverse=False), **options))
        state = ({"i_state": In(stream.Signature(bidirectional_state_layout(forward, reverse)))}
                 if self._initial else {})
        super().__init__({
            "i": In(stream.Signature(frame_layout(forward.in_format, forward.input_size))),
            "o": Out(stream.Signature(frame_layout(forward.state_format,
                                                   2 * forward.hidden_size))),
            **state,
            "error": Out(1),
        })

    plan = property(lambda self: self._plan, doc="The :class:`BidirectionalPlan`.")
    plans = property(lambda self: self._plan.directions, doc="``(forward, reverse)`` plans.")
    cores = property(lambda self: (self._forward, self._reverse),
                     doc="The forward core and the reverse direction's core.")
    max_steps = property(lambda self: self._max_steps)
    pace = property(lambda self: self._pace)
    multipliers = property(lambda self: self._forward.multipliers + self._reverse.multipliers)
    ii = property(lambda self: self._forward.step_cycles,
                  doc="Cycles between the steps of a sequence while it loads (``S_f``); the "
                      "cycles per sequence are :meth:`period`'s.")

    def _reverse_pass(self, steps: int) -> int:
        """Cycles from a sequence's last step in to its last reverse state out: ``2 + (L −
        1)·max(2, S_r) + S_r`` (``L`` steps; each step is read from the memory a cycle before
        it is sent, so a core of 1 cycle a step gets one every 2; for ``S_r`` ≥ 2 this is
        ``2 + L·S_r``)."""
        s_r = self._reverse.step_cycles
        return 2 + (steps - 1) * max(2, s_r) + s_r

    @property
    def emit_cycles(self) -> int:
        """Cycles between the outputs of the emit phase: ``max(2, pace)``."""
        return max(2, self._pace)

    @property
    def latency(self) -> int:
        """Cycles from the last step of a sequence of ``max_steps`` steps to its first output:
        ``max(S_f, R(max_steps)) + 3`` (a shorter sequence's come sooner), ``R`` the reverse
        pass (:meth:`_reverse_pass`: ``2 + L·S_r`` for ``S_r`` ≥ 2)."""
        return max(self._forward.step_cycles,
                   self._reverse_pass(self._max_steps)) + 3

    def period(self, steps: int) -> int:
        """Cycles from one sequence's first step to the next one's when sequences of ``steps``
        steps follow back to back at full rate: ``(steps − 1)·S_f + max(S_f, R(steps))
        + 4 + (steps − 1)·emit_cycles``.

        Raises
        ------
        TypeError, ValueError
            ``steps`` is not an integer between 1 and ``max_steps``.
        """
        steps = check_integer(steps, "steps", minimum=1, maximum=self._max_steps)
        s_f = self._forward.step_cycles
        return (steps - 1) * (s_f + self.emit_cycles) + max(s_f, self._reverse_pass(steps)) + 4

    #: :meth:`schedule` models outputs taken late (``taken``): a network may hold it up.
    holds_outputs = True

    def schedule(self, lengths, arrivals=None, taken=None):
        """``(in_cycles, out_cycles)`` of back-to-back sequences of ``lengths`` steps (each at
        most ``max_steps``), step ``k`` offered from cycle ``arrivals[k]`` (None: all from
        cycle 0), output ``k`` taken from cycle ``taken[k]`` on (None: always taken); the
        rules of the class docstring: output ``k`` of a sequence goes at ``max(taken[k],
        first)``, ``first`` the cycle its reverse pass ends in for its first output and the
        previous output's cycle plus ``emit_cycles`` for the others.

        Raises
        ------
        ValueError
            A length beyond ``max_steps`` or negative, or malformed ``arrivals`` or ``taken``.
        """
        lengths = [check_integer(n, "lengths[i]", minimum=0, maximum=self._max_steps)
                   for n in lengths]
        arrivals = check_arrivals(arrivals, sum(lengths))
        taken = np.zeros(sum(lengths), dtype=np.int64) if taken is None else \
            check_arrivals(taken, sum(lengths), "taken")
        s_f = self._forward.step_cycles
        ins, outs, free, k = [], [], 0, 0
        for length in lengths:
            if not length:
                continue
            load, _ = pipeline_schedule(s_f, s_f, np.maximum(arrivals[k:k + length], free))
            last_in = int(load[-1])
            out = max(last_in + s_f, last_in + self._reverse_pass(length)) + 3 - self.emit_cycles
            for j in range(length):
                out = max(out + self.emit_cycles, int(taken[k + j]))
                outs.append(out)
            ins.extend(load)
            free, k = out + 1, k + length
        return np.asarray(ins, dtype=np.int64), np.asarray(outs, dtype=np.int64)

    def describe(self) -> dict:
        """Parameters, timing and both cores (JSON-serializable)."""
        plan, forward = self._plan, self._forward.describe()
        return {"kind": f"bi{plan.kind}", "class": "Bidirectional", "bidirectional": True,
                "arith": forward["arith"], "method": forward["method"],
                "input_size": plan.input_size, "hidden_size": 2 * plan.hidden_size,
                "in_format": str(plan.in_format), "out_format": str(plan.out_format),
                "max_steps": self._max_steps, "pace": self._pace, "ii": self.ii,
                "initial_state": self._initial,
                "latency": self.latency, "multipliers": self.multipliers,
                "forward": forward, "reverse": self._reverse.describe()}

    def elaborate(self, platform):
        m = Module()
        fwd, rev = self._forward, self._reverse
        m.submodules.forward, m.submodules.reverse = fwd, rev
        depth = self._max_steps
        x_width = len(Value.cast(self.i.payload.data))
        h_width = len(Value.cast(fwd.o.payload.data))
        m.submodules.steps = steps = Memory(shape=x_width, depth=depth, init=[])
        m.submodules.forward_states = f_mem = Memory(shape=h_width, depth=depth, init=[])
        m.submodules.reverse_states = r_mem = Memory(shape=h_width, depth=depth, init=[])
        x_write, x_read = steps.write_port(), steps.read_port()
        f_write, f_read = f_mem.write_port(), f_mem.read_port()
        r_write, r_read = r_mem.write_port(), r_mem.read_port()

        load, backward, emit = range(3)
        phase = Signal(range(3), init=load)
        count = Signal(range(depth + 1))       # steps of the sequence loaded (its length)
        f_count = Signal(range(depth + 1))     # forward states stored
        r_count = Signal(range(depth + 1))     # reverse states stored
        at = Signal(range(depth))              # the step the reverse/emit phase reads
        fetched = Signal()                     # the memories' outputs are those of `at`
        error = Signal()
        m.d.comb += self.error.eq(error)
        # A read port's output is that of the address one cycle before: `fetched` a cycle after
        # `at` moved (every move below clears it, and comes later, so it wins).
        with m.If(~fetched):
            m.d.sync += fetched.eq(1)

        # Load: each step into the forward core and the step memory, side by side.
        loading = phase == load
        m.d.comb += [fwd.i.valid.eq(self.i.valid & loading),
                     fwd.i.payload.eq(self.i.payload),
                     self.i.ready.eq(fwd.i.ready & loading),
                     x_write.addr.eq(count), x_write.data.eq(Value.cast(self.i.payload.data))]
        with m.If(self.i.valid & self.i.ready):
            with m.If(count == depth):
                m.d.sync += error.eq(1)
            with m.Else():
                m.d.comb += x_write.en.eq(1)
                m.d.sync += count.eq(count + 1)
            with m.If(self.i.payload.last):
                m.d.sync += [phase.eq(backward), at.eq(count), fetched.eq(0)]
        m.d.comb += [fwd.o.ready.eq(1), f_write.addr.eq(f_count),
                     f_write.data.eq(Value.cast(fwd.o.payload.data)),
                     f_write.en.eq(fwd.o.valid)]
        with m.If(fwd.o.valid):
            m.d.sync += f_count.eq(f_count + 1)

        if self._initial:
            self._load_states(m)

        # Reverse: the stored steps, last first, into the reverse core.
        m.d.comb += [x_read.addr.eq(at), f_read.addr.eq(at), r_read.addr.eq(at)]
        r_sent = Signal(range(depth + 1))      # steps sent to the reverse core
        m.d.comb += [rev.i.valid.eq((phase == backward) & fetched & (r_sent != count)),
                     Value.cast(rev.i.payload.data).eq(x_read.data),
                     rev.i.payload.last.eq(at == 0)]
        with m.If(rev.i.valid & rev.i.ready):
            m.d.sync += [fetched.eq(0), r_sent.eq(r_sent + 1)]
            with m.If(at != 0):
                m.d.sync += at.eq(at - 1)
        m.d.comb += [rev.o.ready.eq(1), r_write.addr.eq(count - 1 - r_count),
                     r_write.data.eq(Value.cast(rev.o.payload.data)),
                     r_write.en.eq(rev.o.valid)]
        with m.If(rev.o.valid):
            m.d.sync += r_count.eq(r_count + 1)
        with m.If((phase == backward) & (f_count == count) & (r_count == count)):
            m.d.sync += [phase.eq(emit), at.eq(0), fetched.eq(0)]

        # Emit: both directions' states in time order.
        paced = Const(1)
        if self._pace > 2:   # outputs no closer than `pace` cycles: the next layer's rate
            wait = Signal(range(self._pace))
            paced = wait == 0
            with m.If(self.o.valid & self.o.ready):
                m.d.sync += wait.eq(self._pace - 1)
            with m.Elif(~paced):
                m.d.sync += wait.eq(wait - 1)
        m.d.comb += [self.o.valid.eq((phase == emit) & fetched & paced),
                     Value.cast(self.o.payload.data).eq(Cat(f_read.data, r_read.data)),
                     self.o.payload.last.eq(at == count - 1)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [fetched.eq(0), at.eq(at + 1)]
            with m.If(at == count - 1):
                m.d.sync += [phase.eq(load), count.eq(0), f_count.eq(0), r_count.eq(0),
                             r_sent.eq(0), at.eq(0)]
        return m

    def _load_states(self, m) -> None:
        """Feed ``i_state`` to both cores: the forward core takes it (with the sequence's first
        step), and the reverse half waits in a register, offered to the reverse core until its
        first step takes it. The next sequence's state cannot overwrite it before: its first
        step enters only after this sequence's emit phase, after the reverse pass."""
        fwd, rev = self._forward, self._reverse
        m.d.comb += [fwd.i_state.valid.eq(self.i_state.valid),
                     self.i_state.ready.eq(fwd.i_state.ready), rev.i_state.valid.eq(1)]
        for name in state_layout(self._plan.forward).members:
            m.d.comb += Value.cast(getattr(fwd.i_state.payload, name)).eq(
                Value.cast(getattr(self.i_state.payload, f"{name}_forward")))
        for name in state_layout(self._plan.reverse).members:
            held = Signal.like(Value.cast(getattr(self.i_state.payload, f"{name}_reverse")),
                               name=f"{name}_reverse")
            with m.If(self.i_state.valid & self.i_state.ready):
                m.d.sync += held.eq(Value.cast(getattr(self.i_state.payload,
                                                         f"{name}_reverse")))
            m.d.comb += Value.cast(getattr(rev.i_state.payload, name)).eq(held)

