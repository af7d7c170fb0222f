"""Both directions of a bidirectional LSTM or GRU layer, as two recurrent cores and three
sequence memories (two of them in two banks, so consecutive sequences overlap)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value
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

__all__ = ["Bidirectional", "bank_schedule", "bidirectional_state_layout", "steady_period"]


def bidirectional_state_layout(forward: RecurrentPlan,
                               reverse: RecurrentPlan) -> data.StructLayout:
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
    phases, one after the other (the next sequence's load runs beside its other two):

    1. *load*: each step enters the forward :class:`~hwnn.cores.recurrent.Recurrent` core (one
       every ``S_f`` = its ``step_cycles``) and a memory of steps; the forward hidden states
       go to a second memory;
    2. *reverse*: from the sequence's last step back to its first, the memory feeds a second
       Recurrent core built from the reverse plan run forwards (one step every ``S_r`` = its
       ``step_cycles`` cycles, or every 2 for a core of 1 cycle a step: each step is read from
       the memory, then sent); its hidden states go to a third memory;
    3. *emit*: both directions' states are read in time order, an output every ``emit_cycles =
       max(2, pace)`` cycles (a read, then the transfer; ``pace`` slows it down to what the
       layer after it takes, so that layer never holds it up).

    The step and forward-state memories have two banks of ``max_steps`` steps (one memory of
    twice the depth: no more block RAMs while that depth fits one, 256 words of 16 bits on
    the iCE40), so a sequence loads while the one before it is reversed and sent: the forward
    core and the reverse core work side by side, and a sequence's first step waits only for
    its bank, free once the sequence two before it has sent its last output.

    Timing without stalls (:meth:`schedule` gives every cycle, the rules in its docstring):
    a sequence of ``L`` steps takes ``L·S_f`` cycles to load; its reverse pass starts 2 cycles
    after its last step entered (or after the previous sequence's last output, if later) and
    takes ``R(L) = 2 + (L − 1)·max(2, S_r) + S_r`` cycles; its outputs follow, ``emit_cycles``
    apart. Back to back, a sequence every :meth:`period` cycles: the slower of the load and
    the reverse-and-emit phases, not their sum. ``ii`` is ``S_f`` (steps within a sequence)
    and ``latency`` is counted from a sequence's last step to its first output, for a
    sequence of ``max_steps`` steps.

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
        the reverse one (kept in a register of the sequence's bank meanwhile) with its first
        step, the sequence's last.
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
        """Cycles from the last step of a sequence of ``max_steps`` steps to its first output
        when no sequence before it is still being sent: ``max(S_f + 3, R(max_steps) + 4)``
        (a shorter sequence's come sooner), ``R`` the reverse pass (:meth:`_reverse_pass`:
        ``2 + L·S_r`` for ``S_r`` ≥ 2)."""
        return max(self._forward.step_cycles + 3, self._reverse_pass(self._max_steps) + 4)

    def period(self, steps: int) -> int:
        """Cycles from one sequence's first step to the next one's when sequences of ``steps``
        steps follow back to back at full rate, in the steady state (:func:`steady_period`:
        the slower of the load, ``steps·S_f``, and the reverse and emit phases, ``R(steps) +
        4 + (steps − 1)·emit_cycles``).

        Raises
        ------
        TypeError, ValueError
            ``steps`` is not an integer between 1 and ``max_steps``.
        """
        steps = check_integer(steps, "steps", minimum=1, maximum=self._max_steps)
        return steady_period(steps, self._forward.step_cycles, self._reverse_pass(steps),
                             self.emit_cycles)

    #: :meth:`schedule` models outputs taken late (``taken``): a network may hold it up.
    holds_outputs = True

    def schedule(self, lengths, arrivals=None, taken=None):
        """``(in_cycles, out_cycles)`` of back-to-back sequences of ``lengths`` steps (each at
        most ``max_steps``), step ``k`` offered from cycle ``arrivals[k]`` (None: all from
        cycle 0), output ``k`` taken from cycle ``taken[k]`` on (None: always taken).

        The rules (``S_f``, ``S_r``: the cores' ``step_cycles``; ``R``: :meth:`_reverse_pass`;
        ``E``: :attr:`emit_cycles`): step ``k`` enters at the earliest at its arrival and
        ``S_f`` cycles after the step before it; a sequence's first step also waits for its
        bank, free the cycle after the last output of the sequence two before it. A sequence
        starts its reverse pass ``B = max(last_in, last_out') + 2`` (``last_in`` its last
        step's cycle, ``last_out'`` the previous sequence's last output); its first output
        goes at ``max(last_in + S_f + 3, B + R(L) + 2)`` or when taken, the others ``E``
        cycles after the one before or when taken.

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
        return bank_schedule(lengths, arrivals, taken, self._forward.step_cycles,
                             self._reverse_pass, self.emit_cycles)

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
        # Two banks of `depth` steps in the step and forward-state memories: one sequence
        # loads into one bank while the one before it is reversed and sent from the other.
        m.submodules.steps = steps = Memory(shape=x_width, depth=2 * depth, init=[])
        m.submodules.forward_states = f_mem = Memory(shape=h_width, depth=2 * depth, init=[])
        m.submodules.reverse_states = r_mem = Memory(shape=h_width, depth=depth, init=[])
        x_write, x_read = steps.write_port(), steps.read_port()
        f_write, f_read = f_mem.write_port(), f_mem.read_port()
        r_write, r_read = r_mem.write_port(), r_mem.read_port()

        def address(bank, index):
            return Mux(bank, depth + index, index)

        # Per bank: its sequence's steps are all in (`loaded`), its forward states are all
        # written (`forwarded`), and its length. A bank is free again once its last output
        # is sent.
        loaded = [Signal(name=f"loaded{b}") for b in range(2)]
        forwarded = [Signal(name=f"forwarded{b}") for b in range(2)]
        lengths = Array(Signal(range(depth + 1), name=f"length{b}") for b in range(2))
        x_bank, f_bank, b_bank = Signal(), Signal(), Signal()
        count = Signal(range(depth + 1))       # steps of the loading sequence so far
        f_count = Signal(range(depth + 1))     # its forward states written
        error = Signal()
        m.d.comb += self.error.eq(error)

        # Load: each step into the forward core and the step memory, side by side, while
        # the bank it goes to is free.
        free = ~Array(loaded)[x_bank]
        take = self.i.valid & self.i.ready
        m.d.comb += [fwd.i.valid.eq(self.i.valid & free),
                     fwd.i.payload.eq(self.i.payload),
                     self.i.ready.eq(fwd.i.ready & free),
                     x_write.addr.eq(address(x_bank, count)),
                     x_write.data.eq(Value.cast(self.i.payload.data))]
        with m.If(take):
            with m.If(count == depth):
                m.d.sync += error.eq(1)
            with m.Else():
                m.d.comb += x_write.en.eq(1)
                m.d.sync += count.eq(count + 1)
            with m.If(self.i.payload.last):
                m.d.sync += [lengths[x_bank].eq(Mux(count == depth, depth, count + 1)),
                             count.eq(0), x_bank.eq(~x_bank)]
        m.d.comb += [fwd.o.ready.eq(1), f_write.addr.eq(address(f_bank, f_count)),
                     f_write.data.eq(Value.cast(fwd.o.payload.data)),
                     f_write.en.eq(fwd.o.valid & (f_count != depth))]
        with m.If(fwd.o.valid):
            m.d.sync += f_count.eq(Mux(f_count == depth, depth, f_count + 1))
            with m.If(fwd.o.payload.last):
                m.d.sync += [f_count.eq(0), f_bank.eq(~f_bank)]

        # Reverse, then emit, one bank after the other.
        idle, backward, emit = range(3)
        phase = Signal(range(3), init=idle)
        length = Signal(range(depth + 1))      # the sequence's, copied as it starts
        r_count = Signal(range(depth + 1))     # reverse states stored
        r_sent = Signal(range(depth + 1))      # steps sent to the reverse core
        at = Signal(range(depth))              # the step the reverse/emit phase reads
        fetched = Signal()                     # the memories' outputs are those of `at`
        # A read port's output is that of the address one cycle before: `fetched` a cycle after
        # `at` moved (every move below clears it, and comes later, so it wins).
        with m.If(~fetched):
            m.d.sync += fetched.eq(1)
        with m.If((phase == idle) & Array(loaded)[b_bank]):
            m.d.sync += [phase.eq(backward), length.eq(lengths[b_bank]),
                         at.eq(lengths[b_bank] - 1), fetched.eq(0), r_sent.eq(0),
                         r_count.eq(0)]

        if self._initial:
            self._load_states(m, x_bank, b_bank)

        # Reverse: the stored steps, last first, into the reverse core.
        m.d.comb += [x_read.addr.eq(address(b_bank, at)), f_read.addr.eq(address(b_bank, at)),
                     r_read.addr.eq(at)]
        m.d.comb += [rev.i.valid.eq((phase == backward) & fetched & (r_sent != length)),
                     Value.cast(rev.i.payload.data).eq(x_read.data),
                     rev.i.payload.last.eq(at == 0)]
        with m.If(rev.i.valid & rev.i.ready):
            m.d.sync += [fetched.eq(0), r_sent.eq(r_sent + 1)]
            with m.If(at != 0):
                m.d.sync += at.eq(at - 1)
        m.d.comb += [rev.o.ready.eq(1), r_write.addr.eq(length - 1 - r_count),
                     r_write.data.eq(Value.cast(rev.o.payload.data)),
                     r_write.en.eq(rev.o.valid)]
        with m.If(rev.o.valid):
            m.d.sync += r_count.eq(r_count + 1)
        with m.If((phase == backward) & Array(forwarded)[b_bank] & (r_count == length)):
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
                     self.o.payload.last.eq(at == length - 1)]
        done = self.o.valid & self.o.ready & (at == length - 1)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [fetched.eq(0), at.eq(at + 1)]
            with m.If(done):
                m.d.sync += [phase.eq(idle), b_bank.eq(~b_bank), at.eq(0)]

        # The banks' flags: set by the load, cleared when the bank's last output leaves (the
        # two never meet on one bank: a bank is not loaded again before it is free).
        for b in range(2):
            with m.If(take & self.i.payload.last & (x_bank == b)):
                m.d.sync += loaded[b].eq(1)
            with m.If(fwd.o.valid & fwd.o.payload.last & (f_bank == b)):
                m.d.sync += forwarded[b].eq(1)
            with m.If(done & (b_bank == b)):
                m.d.sync += [loaded[b].eq(0), forwarded[b].eq(0)]
        return m

    def _load_states(self, m, x_bank, b_bank) -> None:
        """Feed ``i_state`` to both cores: the forward core takes it with the sequence's first
        step, which goes to bank ``x_bank``; the reverse half waits in that bank's register
        until the reverse core's first step of the sequence (bank ``b_bank``) takes it. A
        bank's register is not written again before: the bank is not loaded again before
        its sequence has been sent, after its reverse pass."""
        fwd, rev = self._forward, self._reverse
        m.d.comb += [fwd.i_state.valid.eq(self.i_state.valid),
                     self.i_state.ready.eq(fwd.i_state.ready), rev.i_state.valid.eq(1)]
        for name in state_layout(self._plan.forward).members:
            m.d.comb += Value.cast(getattr(fwd.i_state.payload, name)).eq(
                Value.cast(getattr(self.i_state.payload, f"{name}_forward")))
        for name in state_layout(self._plan.reverse).members:
            given = Value.cast(getattr(self.i_state.payload, f"{name}_reverse"))
            held = [Signal.like(given, name=f"{name}_reverse_{b}") for b in range(2)]
            with m.If(self.i_state.valid & self.i_state.ready):
                m.d.sync += Array(held)[x_bank].eq(given)
            m.d.comb += Value.cast(getattr(rev.i_state.payload, name)).eq(Array(held)[b_bank])

def bank_schedule(lengths, arrivals, taken, s_f: int, reverse_pass, emit: int):
    """The cycles of :meth:`Bidirectional.schedule` (its rules) from its parts: the forward
    core's ``s_f``, ``reverse_pass(L)`` (``R(L)``), ``emit`` cycles between outputs; checked
    ``lengths``, ``arrivals`` and ``taken`` (int64 arrays, one entry per step)."""
    ins, outs, k = [], [], 0
    # The last outputs of the last two sequences (-inf: none yet).
    last_outs = [-(1 << 62), -(1 << 62)]
    entered = -(1 << 62)
    for length in lengths:
        if not length:
            continue
        for j in range(length):
            start = int(arrivals[k + j])
            if j == 0:      # the sequence's bank is free
                start = max(start, last_outs[0] + 1)
            entered = max(start, entered + s_f)
            ins.append(entered)
        reverse = max(entered, last_outs[1]) + 2
        out = max(entered + s_f + 3, reverse + reverse_pass(length) + 2, int(taken[k]))
        outs.append(out)
        for j in range(1, length):
            out = max(out + emit, int(taken[k + j]))
            outs.append(out)
        last_outs = [last_outs[1], out]
        k += length
    return np.asarray(ins, dtype=np.int64), np.asarray(outs, dtype=np.int64)


def steady_period(steps: int, s_f: int, reverse_pass: int, emit: int) -> int:
    """The cycles per sequence of :func:`bank_schedule` over back-to-back sequences of
    ``steps`` steps offered at once, outputs always taken, in the steady state:
    ``max(steps·s_f, R + 4 + (steps − 1)·emit)``, the load or the reverse and emit phases.

    The schedule is a max-plus linear recurrence in ``a_n`` (sequence ``n``'s first step in)
    and ``o_n`` (its last output out): with ``K = (steps − 1)·s_f``, ``E = (steps − 1)·emit``
    and ``R = reverse_pass``, ``a_{n+1} = max(a_n + steps·s_f, o_{n−1} + 1)`` and ``o_n =
    max(a_n + K + max(s_f + 3, R + 4), o_{n−1} + R + 4) + E``. Its growth rate is the largest
    mean weight of a cycle of its graph: the load alone, the reverse and emit phases alone,
    or the two in turn through the bank, ``(K + E + max(s_f + 3, R + 4) + 1) / 2``. That last
    one never exceeds both others: above the reverse phases it needs ``R + 3 < (steps −
    1)·(s_f − emit)``, above the load ``R + 5 > (steps + 1)·s_f − (steps − 1)·emit``, together
    ``s_f < 1`` (and with ``s_f + 3 > R + 4`` it cannot exceed both either). The tests check
    this against the schedule on random timings.
    """
    return max(steps * s_f, reverse_pass + 4 + (steps - 1) * emit)
