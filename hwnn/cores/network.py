"""A network core: the layer cores of a :class:`~hwnn.plans.network.NetworkPlan`, chained by
streams into one component with the stream ports of a single core."""

from __future__ import annotations

import functools
from fractions import Fraction

import numpy as np
from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..checks import ParameterTypeError, ParameterValueError, check_integer
from ..plans.network import BIDIRECTIONAL, CELLS, RECURRENT, STEPPED, NetworkPlan
from ..ref.network import state_fields
from ._component import inspected, owned
from ._timing import chain_schedule, check_arrivals, layer_lengths
from ._window import start_shifts
from .activation import activation_core
from .bidirectional import Bidirectional
from .binary_dense import BinaryDense
from .cell_layer import CellLayer
from .conv1d import Conv1d
from .dense import Dense
from .flatten import Flatten
from .framed import Framed
from .last import LastStep
from .pool import Pool1d
from .rnn_core import recurrent_core

__all__ = ["Network", "layer_builders", "layer_core", "state_port", "step_cycles"]

#: Sequences :meth:`Network.period` schedules first to find the steady state of a network with
#: a bidirectional layer (doubled until it is found).
_SETTLE = 8
#: The most sequences :meth:`Network.period` schedules before it gives up on a steady state.
_SETTLE_MAX = 1024


def state_port(name: str) -> str:
    """The name of the network's input stream that loads layer ``name``'s initial states:
    ``i_state_<name>``. A layer's name is a Python identifier
    (:func:`~hwnn.plans.network.plan_network` checks it), so this is one too, and two layers
    never share one."""
    return f"i_state_{name}"


def layer_core(layer, lanes_in: int, sequence: bool = False, fmt=None, pace=None):
    """A fresh core for ``layer`` (a :class:`~hwnn.plans.network.Layer`) fed ``lanes_in``
    values of format ``fmt`` per transfer; an activation over a ``sequence`` carries ``last``
    beside its data (:class:`~hwnn.cores.framed.Framed`); a conv1d takes windows at most every
    ``pace`` cycles (:meth:`~hwnn.plans.network.NetworkPlan.pacing`); an LSTM or GRU layer is
    a :class:`~hwnn.cores.recurrent.Recurrent` with the layer's options
    (:class:`~hwnn.cores.recurrent_unrolled.UnrolledRecurrent` with ``cuts``,
    :func:`~hwnn.cores.rnn_core.recurrent_core`), a bidirectional one a
    :class:`~hwnn.cores.bidirectional.Bidirectional` whose outputs come at most every ``pace``
    cycles, a cell a :class:`~hwnn.cores.cell_layer.CellLayer`, a binarized dense layer a
    :class:`~hwnn.cores.binary_dense.BinaryDense`."""
    if layer.kind == "dense":
        return Dense(layer.plan, **layer.options)
    if layer.kind == "binary_dense":
        return BinaryDense(layer.plan, **layer.options)
    if layer.kind == "conv1d":
        return Conv1d(layer.plan, **layer.options, pace=pace)
    if layer.kind == "pool":
        return Pool1d(layer.plan)
    if layer.kind == "flatten":
        return Flatten(layer.plan, fmt)
    if layer.kind == "last":
        return LastStep(layer.plan, fmt)
    if layer.kind in RECURRENT:
        return recurrent_core(layer.plan, **layer.options)
    if layer.kind == BIDIRECTIONAL:
        return Bidirectional(layer.plan.forward, layer.plan.reverse, pace=pace or 1,
                             **layer.options)
    if layer.kind in CELLS:
        return CellLayer(layer.plan, **layer.options)
    unit = activation_core(layer.plan, lanes=lanes_in)
    return Framed(unit) if sequence else unit


def step_cycles(plan: NetworkPlan) -> dict:
    """``{name: cycles per time step}`` of ``plan``'s recurrent layers, read off their cores
    (:attr:`~hwnn.cores.recurrent.Recurrent.ii`,
    :attr:`~hwnn.cores.bidirectional.Bidirectional.ii`): the ``step_ii`` the plan's timing
    needs."""
    return {layer.name: inspected(layer_core(layer, 0)).ii
            for layer in plan.layers if layer.kind in STEPPED}


def layer_builders(plan: NetworkPlan) -> list[tuple]:
    """Per layer of ``plan``, ``(layer, build)``: ``build()`` makes its core as the network
    does (the lanes, sequence, format and pace it receives)."""
    builders, sequence, fmt = [], plan.sequences[0], plan.in_format
    paces = plan.pacing(step_cycles(plan))
    for layer, lanes, pace in zip(plan.layers, plan.lanes, paces):
        builders.append((layer, functools.partial(layer_core, layer, lanes[0], sequence, fmt,
                                                  pace)))
        sequence = layer.sequences(sequence)[1]
        fmt = layer.out_format or fmt
    return builders


def _connect(m, source, sink, gate=None) -> None:
    """Stream ``source`` into ``sink``, with transfers allowed only while ``gate`` (if given).

    A one-element vector and a scalar of the same element are the same bits (element 0 in the
    low bits) but different shapes, so those are joined by hand, as is a gated stream;
    everything else by ``wiring.connect``, which checks the signatures."""
    same = source.signature.members["payload"].shape == sink.signature.members["payload"].shape
    if same and gate is None:
        wiring.connect(m, source, sink)
        return
    gate = 1 if gate is None else gate
    m.d.comb += [Value.cast(sink.payload).eq(Value.cast(source.payload)),
                 sink.valid.eq(source.valid & gate), source.ready.eq(sink.ready & gate)]


class Network(wiring.Component):
    """The layers of ``plan`` in a chain: computes :func:`hwnn.ref.network.network`.

    Each layer is its own core (``Dense`` in its ``arith`` with its ``parallelism``, an
    activation unit with as many lanes as the previous layer has outputs, a ``Recurrent``
    for an LSTM or GRU layer, whose cycles per time step are its ``step_cycles``, a
    ``Bidirectional`` for a bidirectional one, which stores each sequence and emits its
    outputs after the sequence's last step, no faster than the next layer takes them), and
    each layer's output stream feeds the next layer's input stream directly: no buffers,
    nothing copied.

    Throughput: one input (a vector, or a time step of a sequence) every ``ii`` cycles: the
    busiest layer's cycles per input of its own times the inputs it sees per network input
    (1, divided by the strides before it and the length a flatten gathers), rounded up; a
    conv1d spends ``max(ii_d, stride)`` cycles per ``stride`` steps. When the first layer is
    faster than that, the network's input takes an input at most every ``ii`` cycles (a
    counter of ``ceil(log2(ii))`` bits), as a single folded core does: otherwise inputs would
    pile up before the slowest layer and wait there. Likewise a conv1d takes its windows no
    closer than :attr:`NetworkPlan.paces <hwnn.plans.network.NetworkPlan.paces>` says, so a
    fast layer never sends a slower one a burst (its padding windows come one per cycle
    otherwise). Over sequences, :meth:`period` gives the cycles per sequence.

    Latency: the sum of the layers' latencies. For vectors, the cycles from an input to its
    output (every layer keeps up with the rate, so a vector never waits between layers).
    Over sequences, the cycles from the input step that completes an output's window in
    every layer to that output, when no window waits (gap-free geometry, ``ii_d = 1``, flags
    known in time): for a chain of stride-1 layers, output step ``t`` of a sequence leaves
    ``latency`` cycles after input step ``t + D`` would be taken, ``D`` the sum of the right
    paddings (bubbles stand in for the steps after a sequence's end).
    :meth:`schedule` gives every cycle of any run whose output is always taken.

    Members
    -------
    i : In(stream.Signature(...))
        The first layer's input stream.
    o : Out(stream.Signature(...))
        The last layer's output stream.
    i_state_<name> : In(stream.Signature(...))
        Only for a layer ``name`` with option ``initial_state`` (:func:`state_port`): one
        transfer per sequence, the state that layer starts the sequence from (the payload of
        its core's ``i_state``: ``h`` and, for an LSTM, ``c``;
        :class:`~hwnn.cores.bidirectional.Bidirectional` has both directions'). A sequence's
        first step waits in that layer until its state is there and both are taken together;
        the timing properties and :meth:`schedule` assume the state is offered in time. A
        cell layer (``lstm_cell``, ``gru_cell``) has one too: one transfer per vector, the
        state of that vector's step, taken together with it.
    error : Out(1)
        Only with a flatten or a bidirectional layer: high (sticky) once a sequence of the
        wrong length arrived and was dropped (a flatten) or one longer than ``max_steps``
        came (a bidirectional layer: its outputs are then not defined).

    Raises
    ------
    TypeError
        ``plan`` is not a :class:`NetworkPlan`.
    """

    def __init__(self, plan: NetworkPlan):
        if not isinstance(plan, NetworkPlan):
            raise ParameterTypeError("plan", f"plan must be a NetworkPlan, not "
                                             f"{type(plan).__name__}")
        self._plan = plan
        self._cores = tuple(owned(build()) for _, build in layer_builders(plan))
        self._step_ii = {layer.name: core.ii for layer, core in zip(plan.layers, self._cores)
                         if layer.kind in STEPPED}
        first, last = self._cores[0], self._cores[-1]
        members = {
            "i": In(stream.Signature(first.i.signature.members["payload"].shape)),
            "o": Out(stream.Signature(last.o.signature.members["payload"].shape)),
        }
        # A layer that loads its initial states takes them from a stream of the network's own.
        for layer, core in zip(plan.layers, self._cores):
            if layer.initial_state:
                members[state_port(layer.name)] = core.signature.members["i_state"]
        # A flatten flags a sequence of the wrong length (dropped): the network says so too.
        self._flagging = [core for core in self._cores if "error" in core.signature.members]
        if self._flagging:
            members["error"] = Out(1)
        super().__init__(members)

    plan = property(lambda self: self._plan, doc="The :class:`NetworkPlan`.")
    cores = property(lambda self: self._cores, doc="The layer cores, in order.")

    @property
    def ii(self) -> int:
        """Cycles between inputs (vectors, or time steps of sequences) at full rate
        (:meth:`NetworkPlan.initiation <hwnn.plans.network.NetworkPlan.initiation>`, with each
        recurrent layer's cycles per step from its core)."""
        return self._plan.initiation(self._step_ii)

    @property
    def latency(self) -> int:
        """The sum of the layers' latencies (see the class docstring for what it measures
        over sequences)."""
        return sum(core.latency for core in self._cores)

    @property
    def throttled(self) -> bool:
        """Whether the input is held to one transfer every :attr:`ii` cycles (the first
        layer alone would take them faster)."""
        return self.ii > self._cores[0].ii

    def period(self, steps: int):
        """Over sequences: cycles from one sequence's first step to the next one's when
        sequences of ``steps`` steps follow back to back at full rate (after the first few).
        Each layer needs its transfers per sequence times its cycles per transfer (a conv1d:
        one cycle per input step, and ``take_ii`` per window, of which the first of a
        sequence comes ``gap`` shifts after the last of the one before, when stride is 1; a
        bidirectional layer its own :meth:`~hwnn.cores.bidirectional.Bidirectional.period`),
        the input its steps times :attr:`ii` when :attr:`throttled`; the slowest sets the
        period. A lower bound; exact when every conv1d is
        :attr:`~hwnn.cores.conv1d.Conv1d.gap_free` with stride 1 (the tests check it). With a
        bidirectional layer, layers wait for each other at sequence boundaries (a stack of
        them, for instance), so the period is read off :meth:`schedule` instead, once it has
        settled (:meth:`_settled_period`; a Fraction when the spacing alternates between two
        values; the bound when the schedule is not modelled).

        Raises
        ------
        TypeError, ValueError
            ``steps`` is not a positive integer; the network does not take sequences.
        """
        steps = check_integer(steps, "steps", minimum=1)
        if not self._plan.sequences[0]:
            raise ParameterValueError("steps", "period applies to a network over sequences; "
                                               "this one takes vectors (see ii)")
        worst, count = steps * (self.ii if self.throttled else 1), steps
        for layer, core in zip(self._plan.layers, self._cores):
            if layer.kind == "conv1d":
                windows, take = layer.plan.out_length(count), core.take_ii
                if layer.plan.stride == 1 and windows:
                    # From a sequence's last window to the next one's first: `start_shifts`
                    # shifts, less the right padding (those shift with the next sequence).
                    gap = start_shifts(layer.plan.window) - layer.plan.padding[1]
                    worst = max(worst, (windows - 1) * take + max(take, gap))
                worst = max(worst, count, windows * take)
            elif layer.kind == BIDIRECTIONAL:
                worst = max(worst, core.period(count))
            else:
                worst = max(worst, count * core.ii)
            count = layer_lengths(layer, [count])
            count = count if isinstance(count, int) else count[0]
        if any(layer.kind == BIDIRECTIONAL for layer in self._plan.layers):
            try:
                return self._settled_period(steps, worst)
            except NotImplementedError:
                return worst
        return worst

    def _settled_period(self, steps: int, bound):
        """The cycles per sequence that :meth:`schedule` settles to over back-to-back
        sequences of ``steps`` steps: more sequences until the spacing of the last ones
        repeats with a period of one sequence (an int) or two (a Fraction, their mean) and is
        at least ``bound`` (every layer's own period). A bidirectional layer's banks can take
        many sequences to fill when its load and its reverse phases take nearly as long (each
        sequence adds their difference to its backlog, while the spacing stays at the load's),
        hence no fixed count, and the bound.

        Raises
        ------
        NotImplementedError
            The schedule is not modelled (see :meth:`schedule`).
        AssertionError
            No repeat within :data:`_SETTLE_MAX` sequences.
        """
        count = _SETTLE
        while count <= _SETTLE_MAX:
            ins, _ = self.schedule([steps] * count)
            spacing = np.diff(ins[::steps]).tolist()[-4:]
            mean = Fraction(spacing[-1] + spacing[-2], 2)
            if spacing[0] == spacing[2] and spacing[1] == spacing[3] and mean >= bound:
                return int(mean) if mean.denominator == 1 else mean
            count *= 2
        raise AssertionError(f"the schedule of sequences of {steps} steps does not settle "
                             f"within {_SETTLE_MAX} sequences")

    def schedule(self, lengths, arrivals=None):
        """``(in_cycles, out_cycles)`` of a run whose output is always taken: over sequences,
        back-to-back sequences of ``lengths`` steps (a list); over vectors, ``lengths``
        vectors (an int). Input transfer ``k`` is offered from cycle ``arrivals[k]`` (None:
        all from cycle 0). Composed from the layers' own models
        (:func:`hwnn.cores._timing.chain_schedule`).

        Raises
        ------
        ValueError
            ``lengths`` or ``arrivals`` is malformed.
        NotImplementedError
            A layer would hold up the one before it; the message names them.
        """
        if self._plan.sequences[0]:
            lengths = [check_integer(n, "lengths[i]", minimum=0) for n in lengths]
            total = sum(lengths)
        else:
            lengths = total = check_integer(lengths, "lengths", minimum=0)
        return chain_schedule(self._plan.layers, self._cores, lengths,
                              check_arrivals(arrivals, total),
                              self.ii if self.throttled else None)

    def state_inputs(self, initial_states, sequences: int) -> dict:
        """``{port: rows}`` that feed every ``i_state_<name>`` port (:func:`state_port`) for
        ``sequences`` sequences: ``initial_states`` holds the codes as
        :func:`hwnn.ref.network.network_layers` takes them (``{name: {"h": (sequences, ...),
        "c": ...}}``); a layer it does not name (or all, when None) gets zeros, the reference's
        default. The rows are what :func:`hwnn.sim.run_stream` takes for each port's payload."""
        initial_states, ports = initial_states or {}, {}
        for layer in self._plan.stateful:
            fields = state_fields(layer)
            given = initial_states.get(layer.name, {})
            state = {key: np.asarray(given[key]) if key in given else
                     np.zeros((sequences, *shape), dtype=np.int64)
                     for key, shape in fields.items()}
            if layer.kind == BIDIRECTIONAL:   # the core's flat record: h_forward, h_reverse...
                state = {f"{key}_{direction}": value[:, k]
                         for key, value in state.items()
                         for k, direction in enumerate(("forward", "reverse"))}
            ports[state_port(layer.name)] = state
        return ports

    @property
    def multipliers(self) -> int:
        """Multipliers of the folded dense layers (shift-add layers have none)."""
        return sum(getattr(core, "multipliers", 0) for core in self._cores)

    def describe(self) -> dict:
        """The network and every layer's own description (JSON-serializable)."""
        # The busiest layer: its cycles per transfer times the transfers it sees per input.
        loads = self._plan.loads(self._step_ii)
        bottleneck = max(range(len(loads)), key=loads.__getitem__)
        return {"kind": "network", "class": "Network", "ii": self.ii, "latency": self.latency,
                "multipliers": self.multipliers, "n_in": self._plan.n_in,
                "n_out": self._plan.n_out, "in_format": str(self._plan.in_format),
                "out_format": str(self._plan.out_format),
                "bottleneck": self._plan.layers[bottleneck].name,
                "layers": [{"name": layer.name, **core.describe()}
                           for layer, core in zip(self._plan.layers, self._cores)]}

    def elaborate(self, platform):
        m = Module()
        for layer, core in zip(self._plan.layers, self._cores):
            m.submodules[layer.name] = core
        gate = None
        if self.throttled:
            wait = Signal(range(self.ii), init=0)   # cycles before the next vector may enter
            gate = wait == 0
            with m.If(self.i.valid & self.i.ready):
                m.d.sync += wait.eq(self.ii - 1)
            with m.Elif(~gate):
                m.d.sync += wait.eq(wait - 1)
        _connect(m, wiring.flipped(self.i), self._cores[0].i, gate)
        for before, after in zip(self._cores, self._cores[1:]):
            _connect(m, before.o, after.i)
        _connect(m, self._cores[-1].o, wiring.flipped(self.o))
        for layer, core in zip(self._plan.layers, self._cores):
            if layer.initial_state:
                wiring.connect(m, wiring.flipped(getattr(self, state_port(layer.name))),
                               core.i_state)
        if self._flagging:
            m.d.comb += self.error.eq(Cat(core.error for core in self._flagging).any())
        return m
