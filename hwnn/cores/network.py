"""A network core: the layer cores of a :class:`~hwnn.plans.network.NetworkPlan`, chained by
streams into one component with the stream ports of a single core."""

from __future__ import annotations

import functools

from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..checks import ParameterTypeError
from ..plans.network import NetworkPlan
from ._component import owned
from .activation import activation_core
from .conv1d import Conv1d
from .dense import Dense
from .flatten import Flatten
from .framed import Framed
from .pool import Pool1d

__all__ = ["Network", "layer_builders", "layer_core"]


def layer_core(layer, lanes_in: int, sequence: bool = False, fmt=None):
    """A fresh core for ``layer`` (a :class:`~hwnn.plans.network.Layer`) fed ``lanes_in``
    values of format ``fmt`` per transfer; an activation over a ``sequence`` carries ``last``
    beside its data (:class:`~hwnn.cores.framed.Framed`)."""
    if layer.kind == "dense":
        return Dense(layer.plan, **layer.options)
    if layer.kind == "conv1d":
        return Conv1d(layer.plan, **layer.options)
    if layer.kind == "pool":
        return Pool1d(layer.plan)
    if layer.kind == "flatten":
        return Flatten(layer.plan, fmt)
    unit = activation_core(layer.plan, lanes=lanes_in)
    return Framed(unit) if sequence else unit


def layer_builders(plan: NetworkPlan) -> list[tuple]:
    """Per layer of ``plan``, ``(layer, build)``: ``build()`` makes its core as the network
    does (the lanes, sequence and format it receives)."""
    builders, sequence, fmt = [], plan.sequences[0], plan.in_format
    for layer, lanes in zip(plan.layers, plan.lanes):
        builders.append((layer, functools.partial(layer_core, layer, lanes[0], sequence, fmt)))
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
    activation unit with as many lanes as the previous layer has outputs), and each layer's
    output stream feeds the next layer's input stream directly: no buffers, nothing copied.

    Throughput: one vector every ``ii`` cycles, the slowest layer's ``ii``. When the first
    layer is faster than that, the network's input takes a vector at most every ``ii`` cycles
    (a counter of ``ceil(log2(ii))`` bits), as a single folded core does: otherwise vectors
    would pile up before the slowest layer and wait there.
    Latency: the sum of the layers' latencies (every layer keeps up with that rate, so a vector
    never waits between layers).

    Over sequences (a first layer that is a conv1d or pool), the input is a framed stream and
    every layer keeps its own timing (:meth:`~hwnn.cores.conv1d.Conv1d.schedule`); the
    network's ``ii`` and ``latency`` are not stated yet (None), and results are exact under
    any stall pattern.

    Members
    -------
    i : In(stream.Signature(...))
        The first layer's input stream.
    o : Out(stream.Signature(...))
        The last layer's output stream.
    error : Out(1)
        Only with a flatten layer: high (sticky) once a sequence of the wrong length arrived
        and was dropped.

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
        first, last = self._cores[0], self._cores[-1]
        members = {
            "i": In(stream.Signature(first.i.signature.members["payload"].shape)),
            "o": Out(stream.Signature(last.o.signature.members["payload"].shape)),
        }
        # A flatten flags a sequence of the wrong length (dropped): the network says so too.
        self._flagging = [core for core in self._cores if "error" in core.signature.members]
        if self._flagging:
            members["error"] = Out(1)
        super().__init__(members)

    plan = property(lambda self: self._plan, doc="The :class:`NetworkPlan`.")
    cores = property(lambda self: self._cores, doc="The layer cores, in order.")

    @property
    def ii(self) -> int | None:
        """Cycles between input vectors at full rate; None over sequences (not stated yet)."""
        if self._plan.sequences[0]:
            return None
        return max(core.ii for core in self._cores)

    @property
    def latency(self) -> int | None:
        """Cycles from an input vector to its output; None over sequences (not stated yet:
        each sequence layer states its own per-sequence timing)."""
        if self._plan.sequences[0]:
            return None
        return sum(core.latency for core in self._cores)

    @property
    def multipliers(self) -> int:
        """Multipliers of the folded dense layers (shift-add layers have none)."""
        return sum(getattr(core, "multipliers", 0) for core in self._cores)

    def describe(self) -> dict:
        """The network and every layer's own description (JSON-serializable)."""
        # The busiest layer: its cycles per transfer times the transfers it sees per input.
        loads = [core.ii * rate for core, rate in zip(self._cores, self._plan.rates)]
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
        if self.ii is not None and self.ii > self._cores[0].ii:
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
        if self._flagging:
            m.d.comb += self.error.eq(Cat(core.error for core in self._flagging).any())
        return m
