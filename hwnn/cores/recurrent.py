"""An LSTM or GRU layer direction over a framed sequence stream, built from hwnn's own parts.

The step of :mod:`hwnn.plans.rnn` runs on the cores of its parts: a
:class:`~hwnn.cores.dense.Dense` over ``[x; h]`` (folded multipliers or a shift-add graph), the
activation units of σ and tanh, and one :class:`~hwnn.cores.elementwise.Elementwise` per product
or sum. A step depends on the hidden state the step before it made, so one step is in flight at
a time: each part starts as soon as every value it reads has come out of the parts before it
(a register per value, set when the part that makes it gives its output), and the parts that
can work side by side do (the σ and tanh of the gates; the two products of an LSTM's cell).
"""

from __future__ import annotations

from dataclasses import replace

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from ..checks import ParameterTypeError, ParameterValueError, check_bool, check_integer
from ..plans.rnn import RecurrentPlan
from ._component import owned, rejects_quietly
from ._recurrent_io import (cell_members, cell_output, load_initial_state, load_state,
                            mac_inputs, recurrent_members, step_output, step_schedule)
from .activation import activation_core
from .dense import Dense
from .elementwise import Elementwise

__all__ = ["Recurrent"]


class _Part:
    """A part of the step: its core, the values it reads (names, in port order), the value it
    makes, and how many values (``count``) it takes through ``core.lanes`` lanes: ``chunks``
    transfers, one per cycle. It makes as many values on as many lanes, or ``out = (count,
    lanes)`` of them (a MAC takes its whole input in one transfer and sends its outputs in one
    transfer, or one per transfer)."""

    def __init__(self, name, core, count, reads, makes, ports=("i",), out=None):
        self.name, self.core, self.reads, self.makes, self.ports = name, core, reads, makes, ports
        self.count = count
        self.lanes = getattr(core, "lanes", count)
        self.chunks = -(-count // self.lanes)
        self.out_count, self.out_lanes = (count, self.lanes) if out is None else out
        self.out_chunks = -(-self.out_count // self.out_lanes)


class Recurrent(wiring.Component):
    """One direction of an LSTM or GRU layer: computes :func:`hwnn.ref.rnn.recurrent` on each
    sequence of a framed stream, and sends every step's hidden state.

    A sequence's steps follow each other; the step with ``last`` ends it and the state starts
    over from zeros for the next sequence, which may follow at once. ``plan.reverse`` is not
    supported by this core (a reverse direction needs the whole sequence first): it raises
    :class:`NotImplementedError`.

    Timing. One step at a time: its input is taken in the cycle the previous step's output is
    taken (or at once when idle), and goes to the MAC in that cycle; each later part starts
    the cycle after its last operand arrives. A part of ``n`` values on units of ``lanes``
    lanes takes ``k = ceil(n / lanes)`` transfers, one per cycle (the MAC ``k = 1``). A step
    takes :attr:`step_cycles` = ``Σ (latency + k)`` over the chain of parts that wait for each
    other (parts side by side count once, the later one): for an LSTM the MAC, σ∥tanh,
    f⊙c∥i⊙g, the sum, tanh(c'), o⊙tanh(c'); for a GRU the MAC, σ, r⊙n_h, the candidate sum,
    tanh, h − n, z⊙(h − n), the final sum. That is the ``ii`` (cycles per time step, at full
    rate) and the ``latency`` (from a step's input to its hidden state). The MAC's own ``ii``
    (its ``parallelism``) is inside its latency; on one multiplier (``arith="mult"``,
    ``parallelism`` 1) it sends the gates one by one as they complete (Dense's ``rows``), and
    its latency is that of the last.

    Storage. Each part's output is kept until the step ends: in block RAM
    (``amaranth.lib.memory``, one synchronous read port per reader) when it is made and read
    in several transfers of the same lanes, else in registers. The new state is written over
    the old one (h' over h, c' over c).

    Parameters
    ----------
    plan : RecurrentPlan
    arith, parallelism, pipeline
        As for :class:`~hwnn.cores.dense.Dense`, for the MAC over ``[x; h]``.
    lanes : int or None
        Values per transfer of each activation and elementwise unit (None: all of a part's
        values at once); a part of ``n`` values takes ``ceil(n / lanes)`` cycles more or less.
    sequences : bool
        Send every step's hidden state (True, framed), or only each sequence's last one (False,
        PyTorch's ``h_n``: a vector per sequence).
    initial_state : bool
        Take each sequence's initial state (``h0``, and ``c0`` for an LSTM) from the stream
        ``i_state``, one transfer per sequence, together with its first step (False: zeros).
    cell : bool
        Run independent steps instead of sequences, each bringing its own state and sending the
        next one (the ports of :func:`~hwnn.cores._recurrent_io.cell_members`, one step a
        transfer): the engine of :class:`~hwnn.cores.rnn_cell.RecurrentCell` on these parts.
        ``sequences`` False or ``initial_state`` with it is a ValueError.

    Members
    -------
    i : In(stream.Signature(frame_layout(plan.in_format, plan.input_size)))
    o : Out(stream.Signature(frame_layout(plan.state_format, plan.hidden_size)))
        Every step's hidden state; ``last`` on the last step of a sequence. With
        ``sequences=False``: ``Out(stream.Signature(ArrayLayout(<state shape>, hidden)))``,
        each sequence's last hidden state.
    i_state : In(stream.Signature(StructLayout({"h": ArrayLayout(<state shape>, hidden),
        "c": ArrayLayout(<cell shape>, hidden)})))
        Only with ``initial_state``; ``c`` only for an LSTM.

    With ``cell``, ``i`` and ``o`` are :func:`~hwnn.cores._recurrent_io.cell_members`'s.

    Raises
    ------
    TypeError
        ``plan`` is not a RecurrentPlan; Dense's type errors.
    ValueError
        Dense's value errors (``parallelism`` out of range...); ``cell`` with
        ``initial_state`` or without ``sequences``.
    NotImplementedError
        ``plan.reverse``.
    """

    @rejects_quietly
    def __init__(self, plan: RecurrentPlan, *, arith: str = "mult",
                 parallelism: int | None = None, pipeline: int | None = None,
                 lanes: int | None = None, sequences: bool = True,
                 initial_state: bool = False, cell: bool = False):
        if not isinstance(plan, RecurrentPlan):
            raise ParameterTypeError("plan", f"plan must be a RecurrentPlan (see "
                                             f"hwnn.plans.rnn.plan_recurrent), not {plan!r}")
        if plan.reverse:
            raise NotImplementedError("a reverse direction needs its whole sequence before its "
                                      "first step; this core runs forward only")
        self._plan = plan
        # On one multiplier the MAC sends each gate as its sum completes: no partial sums, no
        # vector of results in the MAC (the step keeps them, see elaborate).
        self._mac = owned(Dense(plan.gates, arith=arith, parallelism=parallelism,
                                pipeline=pipeline, rows=_one_lane(arith, parallelism)))
        self._hidden_mac = None
        if plan.hidden_gates is not None:   # the original GRU's second MAC, as folded
            products = plan.hidden_size ** 2
            hidden_parallelism = (None if parallelism is None
                                  else min(parallelism, products))
            self._hidden_mac = owned(Dense(
                plan.hidden_gates, arith=arith, pipeline=pipeline,
                parallelism=hidden_parallelism, rows=_one_lane(arith, hidden_parallelism)))
        self._lanes = None if lanes is None else check_integer(lanes, "lanes", minimum=1)
        self._sequences = check_bool(sequences, "sequences")
        self._initial = check_bool(initial_state, "initial_state")
        self._cell = check_bool(cell, "cell")
        if self._cell and (self._initial or not self._sequences):
            raise ParameterValueError(
                "cell", "cell=True runs independent steps that bring their own state: "
                        "initial_state and sequences=False do not apply")
        self._parts = self._build_parts(self._lanes)
        self._slices = _slices(plan)
        self._stored = self._memory_values()
        super().__init__(cell_members(plan) if self._cell else recurrent_members(
            plan, sequences=self._sequences, initial_state=self._initial))

    def _build_parts(self, lanes) -> list:
        plan, hidden = self._plan, self._plan.hidden_size
        act, stage = plan.activations, plan.stages

        def unit(name, count):
            return owned(activation_core(act[name], lanes=min(lanes or count, count))), count

        def ew(name):
            unit_plan = stage[name]
            if lanes is not None and lanes < hidden:
                unit_plan = replace(unit_plan, lanes=lanes)
            return owned(Elementwise(unit_plan)), hidden

        def mac(name, core, reads, makes):
            rows = core.plan.n_out
            return _Part(name, core, 1, reads, makes, out=(rows, 1 if core.rows else rows))
        two = ("i_a", "i_b")
        if plan.kind == "lstm":
            return [
                mac("mac", self._mac, ["xh"], "gates"),
                _Part("sigmoid", *unit("sigmoid", 3 * hidden), ["ifo_pre"], "ifo"),
                _Part("tanh", *unit("tanh", hidden), ["g_pre"], "g"),
                _Part("forget", *ew("forget"), ["f", "c"], "fc", two),
                _Part("input", *ew("input"), ["i", "g"], "ig", two),
                _Part("cell", *ew("cell"), ["fc", "ig"], "c_next", two),
                _Part("tanh_cell", *unit("tanh_cell", hidden), ["c_next"], "tc"),
                _Part("hidden", *ew("hidden"), ["o", "tc"], "h_next", two),
            ]
        if plan.reset_after:
            reset = [_Part("reset", *ew("reset"), ["r", "nh_pre"], "rn", two)]
        else:   # the original GRU: r⊙h, then the second MAC
            reset = [_Part("reset", *ew("reset"), ["r", "h"], "rh", two),
                     mac("hidden_mac", self._hidden_mac, ["rh"], "rn")]
        return [
            mac("mac", self._mac, ["xh"], "gates"),
            _Part("sigmoid", *unit("sigmoid", 2 * hidden), ["rz_pre"], "rz"),
            *reset,
            _Part("candidate", *ew("candidate"), ["nx_pre", "rn"], "cand", two),
            _Part("tanh", *unit("tanh", hidden), ["cand"], "n"),
            _Part("difference", *ew("difference"), ["h", "n"], "d", two),
            _Part("update", *ew("update"), ["z", "d"], "u", two),
            _Part("hidden", *ew("hidden"), ["n", "u"], "h_next", two),
        ]

    def _memory_values(self) -> set:
        """The part outputs kept in block RAM rather than registers.

        A value qualifies when it is made in several transfers and every part that reads it
        (or a slice of it) reads it in several transfers of as many lanes, each slice
        starting and ending on a transfer's boundary: each reader then needs one word per
        cycle, addressed one cycle ahead. A MAC's input is read whole: ``h`` (and ``h_next``,
        written over it) stays in registers, and so does ``c`` with an initial state (loaded
        whole); otherwise ``c_next`` is written over ``c`` in its memory and read as ``c`` in
        the next step. A slice whose first word is the value's last stays in registers too (it
        would be read in the cycle it is written). A cell's ``c`` is loaded whole with each step
        and its ``c_next`` sent whole: registers.
        """
        stored = set()
        for part in self._parts:
            name = part.makes
            whole_state = self._initial or self._cell
            if part.out_chunks < 2 or name == "h_next" or (name == "c_next" and whole_state):
                continue
            readers = [(reader, read) for reader in self._parts for read in reader.reads
                       if self._kept_in(read) == name]
            if readers and all(self._word_addresses(reader, read, part.out_lanes) is not None
                               for reader, read in readers):
                stored.add(name)
        return stored

    def _word_addresses(self, reader, read, lanes):
        """The memory words (of ``lanes`` values) that ``reader`` reads of value ``read``, in
        order, or None when it cannot read them from a memory (see :meth:`_memory_values`)."""
        source, segments = self._slices.get(read, (self._kept_in(read), [(0, None)]))
        if reader.lanes != lanes or reader.chunks < 2 or isinstance(reader.core, Dense):
            return None
        maker = next(part for part in self._parts if part.makes == source)
        words = []
        for offset, length in segments:
            length = maker.out_count if length is None else length
            if offset % lanes or length % lanes:
                return None
            words += range(offset // lanes, (offset + length) // lanes)
        if len(words) != reader.chunks or words[0] == maker.out_chunks - 1:
            return None
        return words

    plan = property(lambda self: self._plan, doc="The RecurrentPlan this core implements.")
    mac = property(lambda self: self._mac, doc="The Dense core over [x; h].")
    sequences = property(lambda self: self._sequences,
                         doc="Whether every step's hidden state leaves (else each sequence's "
                             "last).")
    lanes = property(lambda self: self._lanes,
                     doc="Values per transfer of each activation and elementwise unit (None: "
                         "all of a part's values at once).")

    @property
    def multipliers(self) -> int:
        """Multipliers: the MAC's, one per lane of each elementwise product, and one per lane
        of each PWL unit whose slopes are any integers (its slope product; power-of-two slopes
        are shifts)."""
        count = self._mac.multipliers
        if self._hidden_mac is not None:
            count += self._hidden_mac.multipliers
        for part in self._parts[1:]:
            if isinstance(part.core, Dense):
                continue
            plan = getattr(part.core, "plan", None)
            if getattr(plan, "op", None) == "mul" or getattr(plan, "slope_kind", None) == "any":
                count += part.lanes
        return count

    in_format = property(lambda self: self._plan.in_format)
    out_format = property(lambda self: self._plan.state_format)

    @property
    def step_cycles(self) -> int:
        """Cycles per time step (see the class docstring for the formula)."""
        # The cycle each value is ready, from the input's; the MAC takes [x; h] at once.
        made = {"xh": -1, "c": 0, "h": 0}
        for part in self._parts:
            start = max(made[self._source(name)] for name in part.reads)
            made[part.makes] = start + part.chunks - 1 + part.core.latency + 1
        return 1 + made["h_next"]

    ii = property(lambda self: self.step_cycles,
                  doc="Cycles between time steps at full rate (:attr:`step_cycles`).")
    latency = property(lambda self: self.step_cycles,
                       doc="Cycles from a step's input to its hidden state (:attr:`step_cycles`).")

    def schedule(self, lengths, arrivals=None):
        """``(in_cycles, out_cycles)`` of back-to-back sequences of ``lengths`` steps, step
        ``k`` offered from cycle ``arrivals[k]`` (None: all from cycle 0), the output always
        taken: a pipeline whose ii and latency are :attr:`step_cycles` (a step enters in the
        cycle the one before it leaves); with ``sequences=False`` only each sequence's last
        output.

        Raises
        ------
        ValueError
            ``lengths`` holds a negative number, or ``arrivals`` is not one non-decreasing
            non-negative integer per step.
        """
        return step_schedule(lengths, arrivals, self.step_cycles, self._sequences)

    def describe(self) -> dict:
        """Parameters, formats, timing, the values kept in block RAM and the parts
        (JSON-serializable)."""
        return {"kind": self._plan.kind, "class": "Recurrent", "arith": self._mac.arith,
                "parallelism": self._mac.parallelism, "lanes": self._lanes,
                "sequences": self._sequences, "initial_state": self._initial, "cell": self._cell,
                "multipliers": self.multipliers, "block_ram": sorted(self._stored),
                "latency": self.latency, "ii": self.ii, **self._plan.describe(),
                "mac": self._mac.describe()}

    def elaborate(self, platform):
        m = Module()
        plan, hidden = self._plan, self._plan.hidden_size
        last = Signal()
        h = Signal(plan.state_format.width * hidden, name="h")
        c = Signal(plan.cell_format.width * hidden if plan.cell_format else 1, name="c")
        values = {"h": h, "c": c}
        have = {"h": Const(1), "c": Const(1)}
        done = Signal()     # the step's output is taken this cycle
        idle = Signal(init=1)
        enter = idle | done     # a step may enter
        mac = self._parts[0].core
        if self._initial and not self._cell:
            # A sequence's first step waits for its initial state, and both enter together.
            first = Signal(init=1)
            both = ~first | self.i_state.valid
            m.d.comb += self.i_state.ready.eq(enter & mac.i.ready & first & self.i.valid)
        else:
            first, both = Const(0), Const(1)
        m.d.comb += self.i.ready.eq(enter & mac.i.ready & both)

        # The step's input goes to the MAC in the cycle it enters, with the state as the step
        # starts: h (the last step's h' is written in place), zeros after a sequence's last
        # step, or the initial state of a sequence's first.
        h_start = Mux(done & last, 0, h)
        if self._cell:      # every step brings its state
            h_start, x = Value.cast(self.i.payload.h), Value.cast(self.i.payload.x)
        else:
            if self._initial:
                h_start = Mux(first, Value.cast(self.i_state.payload.h), h_start)
            x = Value.cast(self.i.payload.data)
        # [x; h] in the MAC's input format: x and h shifted to its fraction bits (exact).
        lanes = mac_inputs(m, plan, x, h_start)
        m.d.comb += [mac.i.valid.eq(self.i.valid & enter & both),
                     Value.cast(mac.i.payload).eq(Cat(*lanes))]

        # h' and c' are written over h and c: every part that reads the old state is done
        # with it before the parts that make the new one give their first output.
        state = {"h_next": h, "c_next": c}
        fresh = Signal(init=1)  # the step is a sequence's first: c is zero
        if "c_next" in self._stored:
            cell = next(part for part in self._parts if part.makes == "c_next")
            state["c_next"] = values["c_next"] = m.submodules.c_memory = _memory(cell)
        for part in self._parts:
            m.submodules[part.name] = part.core
            self._run_part(m, part, values, have, done, state, fresh)

        # The step's output: the new hidden state, while the next step's input may enter.
        if self._cell:
            m.d.comb += done.eq(cell_output(m, self, values["h_next"], values.get("c_next"),
                                            have["h_next"]))
        else:
            step_output(m, self, values["h_next"], have["h_next"], last, done,
                        sequences=self._sequences)
        with m.If(done):
            m.d.sync += [idle.eq(1), fresh.eq(last)]
            if values["h_next"] is not h:
                m.d.sync += h.eq(values["h_next"])
            if "c_next" in values and values["c_next"] is not state["c_next"]:
                m.d.sync += c.eq(values["c_next"])
            with m.If(last):  # the next sequence starts from zeros
                m.d.sync += [h.eq(0), c.eq(0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += idle.eq(0)
            if self._cell:
                load_state(m, plan, self.i.payload, h, c)
            else:
                m.d.sync += last.eq(self.i.payload.last)
                if self._initial:
                    load_initial_state(m, self, plan, first, h, c)
        return m

    def _source(self, name: str) -> str:
        """The part output (or state) a value comes from: itself, or the value it slices."""
        return self._slices.get(name, (name,))[0]

    def _kept_in(self, name: str) -> str:
        """The value whose storage holds ``name``: its source, or for the cell state ``c``,
        ``c_next`` (written over it)."""
        return "c_next" if name == "c" else self._source(name)

    def _run_part(self, m, part, values, have, done, state, fresh):
        """Start ``part`` once every value it reads is in, and feed it ``chunks`` transfers,
        one per cycle (the step's MAC is fed by :meth:`elaborate`); keep its outputs, in
        order, in the value it makes (registers, the state register ``state[part.makes]``,
        or a memory written one word per transfer, see :meth:`_memory_values`), and name the
        slices of it that later parts read. ``c`` read from its memory is zero while
        ``fresh`` (a sequence's first step)."""
        o = part.core.o
        out_width = len(Value.cast(o.payload)) // part.out_lanes
        got = Signal(name=f"have_{part.makes}")
        sent = Signal(range(part.chunks + 1), name=f"sent_{part.name}")
        back = Signal(range(part.out_chunks), name=f"back_{part.name}")
        fed = part.reads != ["xh"]
        ready = Cat(*(have[self._source(name)] for name in part.reads if fed)).all()
        offer = ready & (sent != part.chunks)
        first = getattr(part.core, part.ports[0])
        transfer = first.valid & first.ready
        for port, name in zip(part.ports, part.reads if fed else ()):
            sink = getattr(part.core, port)
            width = len(Value.cast(sink.payload)) // part.lanes
            kept = self._kept_in(name)
            if kept in self._stored:
                # A synchronous read addressed one transfer ahead: the word of the next
                # transfer is there when it is offered.
                payload = _read_words(m, values[kept],
                                      self._word_addresses(part, name, part.lanes),
                                      Mux(transfer, sent + 1, sent))
                if name == "c":
                    payload = Mux(fresh, 0, payload)
            else:
                payload = _chunk(values[name], width, part, sent)
            m.d.comb += [sink.valid.eq(offer), Value.cast(sink.payload).eq(payload)]
        m.d.comb += o.ready.eq(1)
        with m.If(transfer):
            m.d.sync += sent.eq(sent + 1)
        if part.makes in self._stored:
            out = state.get(part.makes)
            if out is None:
                out = _memory(part)
                m.submodules[f"{part.makes}_memory"] = out
            write = out.write_port()
            m.d.comb += [write.en.eq(o.valid), write.addr.eq(back),
                         write.data.eq(Value.cast(o.payload))]
        else:
            out = state.get(part.makes)
            if out is None or len(out) != out_width * part.out_count:
                out = Signal(out_width * part.out_count, name=part.makes)
            with m.If(o.valid):
                with m.Switch(back):
                    for j in range(part.out_chunks):
                        lanes = min(part.out_lanes, part.out_count - j * part.out_lanes)
                        with m.Case(j):
                            m.d.sync += out[j * part.out_lanes * out_width:][
                                :lanes * out_width].eq(Value.cast(o.payload)[:lanes * out_width])
        with m.If(o.valid):
            m.d.sync += back.eq(back + 1)
            with m.If(back == part.out_chunks - 1):
                m.d.sync += [got.eq(1), back.eq(0)]
        with m.If(done):
            m.d.sync += [sent.eq(0), got.eq(0)]
        values[part.makes], have[part.makes] = out, got
        for name, (source, segments) in self._slices.items():
            if source == part.makes:
                have[name] = got
                values[name] = out if source in self._stored else Cat(
                    *(out[offset * out_width:(offset + length) * out_width]
                      for offset, length in segments))


def _memory(part):
    """A memory of one word per transfer of ``part``'s output, in block RAM."""
    width = len(Value.cast(part.core.o.payload))
    # yosys keeps a memory of a few words and several read ports in flip-flops by its own
    # estimate (which counts neither the read multiplexers nor the logic cells they fill);
    # block RAM costs no logic cell at all.
    return Memory(shape=unsigned(width), depth=part.out_chunks, init=[],
                  attrs={"ram_style": "block"})


def _one_lane(arith, parallelism) -> bool:
    """A MAC of ``arith`` and ``parallelism`` (None: Dense's default) runs on one lane."""
    return arith == "mult" and parallelism in (None, 1) and not isinstance(parallelism, bool)


def _slices(plan) -> dict:
    """``{name: (value, [(offset, length), ...])}``: the values that are pieces of a part's
    output (the gates of the MAC's, the gate activations of σ's), in units of one value."""
    h = plan.hidden_size
    if plan.kind == "lstm":     # gates i, f, g, o; σ makes i, f, o
        return {"ifo_pre": ("gates", [(0, 2 * h), (3 * h, h)]), "g_pre": ("gates", [(2 * h, h)]),
                "i": ("ifo", [(0, h)]), "f": ("ifo", [(h, h)]), "o": ("ifo", [(2 * h, h)])}
    slices = {"rz_pre": ("gates", [(0, 2 * h)]), "nx_pre": ("gates", [(2 * h, h)]),
              "r": ("rz", [(0, h)]), "z": ("rz", [(h, h)])}
    if plan.reset_after:
        slices["nh_pre"] = ("gates", [(3 * h, h)])
    return slices


def _read_words(m, memory, words, index):
    """Word ``words[index]`` of ``memory`` one cycle after ``index`` (a synchronous read;
    the index one past the last reads the first word again, ready for the next step)."""
    read = memory.read_port()
    m.d.comb += read.addr.eq(Array(Const(w, range(memory.depth)) for w in words + [words[0]])
                             [index])
    return read.data


def _chunk(value, width, part, index):
    """Transfer ``index`` of ``value`` (``part.count`` lanes of ``width`` bits) on the part's
    ``part.lanes`` lanes; a last, partial transfer is padded with zeros."""
    if part.chunks == 1:
        return value
    chunks = []
    for j in range(part.chunks):
        lanes = min(part.lanes, part.count - j * part.lanes)
        bits = value[j * part.lanes * width:][:lanes * width]
        chunks.append(Cat(bits, Const(0, (part.lanes - lanes) * width)))
    return Array(chunks)[index]
