"""Both directions of a bidirectional LSTM or GRU layer, as two recurrent cores and three
sequence memories."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..checks import ParameterTypeError, ParameterValueError, check_integer
from ..plans.rnn import RecurrentPlan
from ._component import owned, rejects_quietly
from ._timing import check_arrivals, pipeline_schedule
from .framed import frame_layout
from .recurrent import Recurrent

__all__ = ["Bidirectional"]


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
       Recurrent core built from the reverse plan run forwards (one step every ``S_r``
       cycles); its hidden states go to a third memory;
    3. *emit*: both memories are read in time order, an output every 2 cycles (a read, then
       the transfer).

    Timing without stalls: a sequence of ``L`` steps whose steps are offered at once takes
    ``L·S_f`` cycles to load, its reverse pass starts 2 cycles after its last step entered and
    its outputs ``max(S_f, 2 + L·S_r) + 2`` cycles after that; the emit phase takes ``2·L``
    cycles, and the next sequence's first step enters in the cycle after the last output
    (:meth:`schedule` gives every cycle).

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
    **options
        For both Recurrent cores (``arith``, ``parallelism``, ``pipeline``, ``lanes``).

    Members
    -------
    i : In(stream.Signature(frame_layout(in_format, input_size)))
    o : Out(stream.Signature(frame_layout(state_format, 2·hidden)))
    error : Out(1)

    Raises
    ------
    TypeError, ValueError
        Plans that are not RecurrentPlans or do not pair up (the message says how), a bad
        ``max_steps``, and the Recurrent cores' errors.
    """

    @rejects_quietly
    def __init__(self, forward: RecurrentPlan, reverse: RecurrentPlan, *, max_steps: int,
                 **options):
        for name, plan in (("forward", forward), ("reverse", reverse)):
            if not isinstance(plan, RecurrentPlan):
                raise ParameterTypeError(name, f"{name} must be a RecurrentPlan, not {plan!r}")
        if forward.reverse or not reverse.reverse:
            raise ParameterValueError("reverse", "forward must be a forward plan and reverse a "
                                                 "reverse one (plan_recurrent(reverse=True))")
        for what in ("kind", "input_size", "hidden_size", "in_format", "state_format"):
            if getattr(forward, what) != getattr(reverse, what):
                raise ParameterValueError("reverse", f"the two directions must have one "
                                                     f"{what}, not {getattr(forward, what)} and "
                                                     f"{getattr(reverse, what)}")
        self._max_steps = check_integer(max_steps, "max_steps", minimum=1)
        self._plans = (forward, reverse)
        self._forward = owned(Recurrent(forward, **options))
        self._reverse = owned(Recurrent(replace(reverse, reverse=False), **options))
        super().__init__({
            "i": In(stream.Signature(frame_layout(forward.in_format, forward.input_size))),
            "o": Out(stream.Signature(frame_layout(forward.state_format,
                                                   2 * forward.hidden_size))),
            "error": Out(1),
        })

    plans = property(lambda self: self._plans, doc="``(forward, reverse)`` plans.")
    cores = property(lambda self: (self._forward, self._reverse),
                     doc="The forward core and the reverse direction's core.")
    max_steps = property(lambda self: self._max_steps)
    multipliers = property(lambda self: self._forward.multipliers + self._reverse.multipliers)

    def schedule(self, lengths, arrivals=None):
        """``(in_cycles, out_cycles)`` of back-to-back sequences of ``lengths`` steps (each at
        most ``max_steps``), step ``k`` offered from cycle ``arrivals[k]`` (None: all from
        cycle 0), the output always taken; the rules of the class docstring.

        Raises
        ------
        ValueError
            A length beyond ``max_steps`` or negative, or malformed ``arrivals``.
        """
        lengths = [check_integer(n, "lengths[i]", minimum=0, maximum=self._max_steps)
                   for n in lengths]
        arrivals = check_arrivals(arrivals, sum(lengths))
        s_f, s_r = self._forward.step_cycles, self._reverse.step_cycles
        ins, outs, free, k = [], [], 0, 0
        for length in lengths:
            if not length:
                continue
            load, _ = pipeline_schedule(s_f, s_f, np.maximum(arrivals[k:k + length], free))
            last_in = int(load[-1])
            done = max(last_in + s_f, last_in + 2 + length * s_r) + 2
            emitted = done + 2 * np.arange(length) + 1
            ins.extend(load)
            outs.extend(emitted)
            free, k = int(emitted[-1]) + 1, k + length
        return np.asarray(ins, dtype=np.int64), np.asarray(outs, dtype=np.int64)

    def describe(self) -> dict:
        """Parameters, timing and both cores (JSON-serializable)."""
        return {"kind": self._plans[0].kind, "class": "Bidirectional",
                "max_steps": self._max_steps, "multipliers": self.multipliers,
                "forward": self._forward.describe(), "reverse": self._reverse.describe()}

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
        m.d.comb += [self.o.valid.eq((phase == emit) & fetched),
                     Value.cast(self.o.payload.data).eq(Cat(f_read.data, r_read.data)),
                     self.o.payload.last.eq(at == count - 1)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [fetched.eq(0), at.eq(at + 1)]
            with m.If(at == count - 1):
                m.d.sync += [phase.eq(load), count.eq(0), f_count.eq(0), r_count.eq(0),
                             r_sent.eq(0), at.eq(0)]
        return m

