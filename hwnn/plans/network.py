"""A network: an ordered chain of layer plans whose formats and widths meet exactly.

Each :class:`Layer` holds a layer's plan and the options of its core (``arith`` and
``parallelism`` of a dense or conv1d layer; the lanes of an activation unit follow from the layer
before). :func:`plan_network` checks that every layer's input is the previous layer's output,
format for format, lane for lane, and sequence or vector: ``conv1d`` and ``pool`` layers run over
sequences (one time step of all channels per transfer, framed by ``last``), ``flatten`` turns a
sequence of a fixed length into one vector in time-major order (index ``t·channels + c``; the
dense layer after it takes its weights in that order, see
:meth:`~hwnn.plans.pool.FlattenPlan.stream_weight`), ``dense`` layers take vectors, and an
activation takes whichever comes; ``lstm`` and ``gru`` layers (:mod:`hwnn.plans.rnn`) take
sequences of ``input_size`` values per step and give every step's hidden state (a
``bidirectional`` layer, :mod:`hwnn.plans.bidirectional`, both directions' ``[h_forward;
h_reverse]``; its core's option ``max_steps`` is the longest sequence it stores), ``last``
turns each sequence (of any length) into its last step's vector, and ``lstm_cell`` and
``gru_cell`` layers take vectors: one step of the cell per vector, from a state loaded with
it (the network's ``i_state_<name>`` stream), giving the next state ``[h'; c']`` (``h'`` for
a GRU) in :attr:`~hwnn.plans.rnn.RecurrentPlan.next_state_format`; ``binary_dense`` layers
(:mod:`hwnn.plans.binary_dense`) take vectors of bits (or integer codes) and give dot products
or threshold codes, folded by the ``pe`` and ``simd`` of their plan. :func:`balance`
chooses the parallelism of each folded dense layer for a target initiation interval with the
fewest multipliers.

A recurrent layer's cycles per time step follow from the core that runs it (the latencies of
its parts, :attr:`hwnn.cores.recurrent.Recurrent.step_cycles`), not from its plan: the plan
level takes them as ``step_ii`` (layer name → cycles per step) wherever timing needs them, and
says so (:class:`TimingUnknown`) when they are missing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from fractions import Fraction
from types import MappingProxyType

from ..checks import ParameterTypeError, ParameterValueError, check_integer
from .binary_dense import BinaryDensePlan
from .conv1d import Conv1dPlan
from .dense import ARITHMETIC, DensePlan, mac_schedule
from .pool import FlattenPlan, LastStepPlan, Pool1dPlan
from .bidirectional import BidirectionalPlan
from .rnn import RecurrentPlan

__all__ = ["BIDIRECTIONAL", "CELLS", "KINDS", "RECURRENT", "STEPPED", "Layer", "NetworkPlan",
           "TimingUnknown", "balance", "plan_network"]

#: The recurrent layer kinds (one direction of one layer, :class:`~hwnn.plans.rnn.RecurrentPlan`).
RECURRENT = ("lstm", "gru")
#: Both directions of a bidirectional LSTM or GRU layer
#: (:class:`~hwnn.plans.bidirectional.BidirectionalPlan`); its core needs ``max_steps``.
BIDIRECTIONAL = "bidirectional"
#: Cells (:class:`~hwnn.cores.cell_layer.CellLayer`): one LSTM or GRU step per vector, the
#: state loaded with it and ``[h'; c']`` out (PyTorch's ``LSTMCell``, ``GRUCell``).
CELLS = ("lstm_cell", "gru_cell")
#: Kinds whose cycles per time step (a cell's: per vector) only their core knows (``step_ii``).
STEPPED = (*RECURRENT, BIDIRECTIONAL, *CELLS)
_RECURRENT_OPTIONS = ("arith", "parallelism", "pipeline", "lanes", "cuts", "initial_state")
#: Layer kinds a network chains, with the core options each takes.
KINDS = {"dense": ("arith", "parallelism", "pipeline"), "activation": (),
         "conv1d": ("arith", "parallelism", "pipeline"), "pool": (), "flatten": (),
         "last": (), **{kind: _RECURRENT_OPTIONS for kind in RECURRENT},
         BIDIRECTIONAL: (*_RECURRENT_OPTIONS, "max_steps"),
         **{kind: ("arith", "parallelism", "pipeline", "lanes", "cuts") for kind in CELLS},
         "binary_dense": ("weight_ram",)}
# The plan class each kind needs (activations: any activation plan).
_PLANS = {"dense": DensePlan, "conv1d": Conv1dPlan, "pool": Pool1dPlan, "flatten": FlattenPlan,
          "last": LastStepPlan, **{kind: RecurrentPlan for kind in RECURRENT},
          BIDIRECTIONAL: BidirectionalPlan, **{kind: RecurrentPlan for kind in CELLS},
          "binary_dense": BinaryDensePlan}
# Whether a kind takes / gives sequences (None: whatever comes, an activation).
_SEQUENCES = {"dense": (False, False), "conv1d": (True, True), "pool": (True, True),
              "flatten": (True, False), "last": (True, False), "activation": (None, None),
              **{kind: (True, True) for kind in (*RECURRENT, BIDIRECTIONAL)},
              **{kind: (False, False) for kind in CELLS}, "binary_dense": (False, False)}


class TimingUnknown(LookupError):
    """A recurrent layer's cycles per step were needed but not given: only its core knows them
    (``Recurrent(plan, **options).ii``; :class:`~hwnn.cores.network.Network` passes them)."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Layer:
    """One layer of a network: its ``name`` (a Python identifier: it names the layer's core in
    the Verilog), ``kind`` (a key of :data:`KINDS`), ``plan`` and core ``options``."""
    name: str
    kind: str
    plan: object
    options: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    @property
    def in_format(self):
        """The input format (None for a flatten, which passes any format through)."""
        return getattr(self.plan, "in_format", None)

    @property
    def out_format(self):
        """The output format (a cell's ``[h'; c']``: :attr:`RecurrentPlan.next_state_format
        <hwnn.plans.rnn.RecurrentPlan.next_state_format>`)."""
        if self.kind in CELLS:
            return self.plan.next_state_format
        return getattr(self.plan, "out_format", None)

    def lanes(self, n_in: int) -> tuple[int, int]:
        """``(input lanes, output lanes)`` of the layer when ``n_in`` values arrive per
        transfer (a sequence layer's lanes are its channels)."""
        if self.kind in ("dense", "binary_dense"):
            return self.plan.n_in, self.plan.n_out
        if self.kind == "conv1d":
            return self.plan.in_channels, self.plan.out_channels
        if self.kind == "pool":
            return self.plan.channels, self.plan.channels
        if self.kind in ("flatten", "last"):
            return self.plan.channels, self.plan.n_out
        if self.kind in RECURRENT:
            return self.plan.input_size, self.plan.hidden_size
        if self.kind == BIDIRECTIONAL:
            return self.plan.input_size, 2 * self.plan.hidden_size
        if self.kind in CELLS:   # [h'; c'] of an LSTM, h' of a GRU
            states = 2 if self.plan.cell_format is not None else 1
            return self.plan.input_size, states * self.plan.hidden_size
        return n_in, n_in

    @property
    def initial_state(self) -> bool:
        """Whether the layer (an LSTM, GRU or bidirectional one) starts each sequence from a
        loaded state (core option ``initial_state``) rather than from zeros; a cell loads its
        state with every vector."""
        return self.kind in CELLS or bool(self.options.get("initial_state", False))

    def sequences(self, before: bool) -> tuple[bool, bool]:
        """``(takes sequences, gives sequences)``, after a layer that gives ``before``."""
        takes, gives = _SEQUENCES[self.kind]
        return (before, before) if takes is None else (takes, gives)

    @property
    def ii(self) -> int:
        """Cycles between inputs of its own at full rate (plan-level: no core is built):
        ``ceil(load)``."""
        return math.ceil(self.load)

    def cycles(self, step_ii=None) -> Fraction:
        """Cycles per input of its own at full rate: :attr:`load`, or for a recurrent layer
        ``step_ii[name]`` (its core's cycles per time step; a bidirectional layer's, while a
        sequence loads: its forward direction's).

        Raises
        ------
        TimingUnknown
            A recurrent layer whose name ``step_ii`` (None: empty) does not hold.
        """
        if self.kind not in STEPPED:
            return self.load
        if not step_ii or self.name not in step_ii:
            core = {BIDIRECTIONAL: "Bidirectional", **{kind: "CellLayer" for kind in CELLS}
                    }.get(self.kind, "Recurrent")
            raise TimingUnknown(f"layer {self.name!r} ({self.kind}): its cycles per time step "
                                f"are known only from its core ({core}(plan).ii); build "
                                f"the network's core (Network(plan).ii) or pass step_ii")
        return Fraction(step_ii[self.name])

    @property
    def mac_ii(self) -> int:
        """A dense or conv1d layer's MAC ii (per vector or window): the folded schedule's, 1
        for shift-add; a binary_dense layer's ``(n_out/pe)·(n_in/simd)``; 1 for the other
        kinds."""
        if self.kind == "binary_dense":
            return self.plan.ii
        if self.kind not in ("dense", "conv1d") or self.options.get("arith", "mult") != "mult":
            return 1
        plan = self.plan if self.kind == "dense" else self.plan.groups[0]
        return mac_schedule(plan, self.options.get("parallelism", 1)).ii

    @property
    def load(self) -> Fraction:
        """Cycles per input of its own at full rate: a conv1d's ``max(mac_ii, stride)``
        cycles per window of ``stride`` steps; every other layer's :attr:`mac_ii`.

        Raises
        ------
        TimingUnknown
            A recurrent layer (see :meth:`cycles`).
        """
        if self.kind in STEPPED:
            return self.cycles()
        if self.kind == "conv1d":
            return Fraction(max(self.mac_ii, self.plan.stride), self.plan.stride)
        return Fraction(self.mac_ii)


@dataclass(frozen=True)
class NetworkPlan:
    """An ordered chain of :class:`Layer` s; ``n_in`` values enter, ``n_out`` leave."""
    layers: tuple
    n_in: int
    sequence_input: bool = False   # an activation first: does it take sequences?

    @property
    def in_format(self):
        return self.layers[0].in_format

    @property
    def out_format(self):
        """The last layer's output format (a flatten passes on the one before it)."""
        return next(layer.out_format for layer in reversed(self.layers)
                    if layer.out_format is not None)

    @property
    def sequences(self) -> tuple[bool, bool]:
        """``(takes sequences, gives sequences)``: framed streams in and out."""
        first = current = self.layers[0].sequences(self.sequence_input)[0]
        for layer in self.layers:
            current = layer.sequences(current)[1]
        return first, current

    @property
    def lanes(self) -> tuple:
        """``(input lanes, output lanes)`` of every layer, in order."""
        result, n = [], self.n_in
        for layer in self.layers:
            result.append(layer.lanes(n))
            n = result[-1][1]
        return tuple(result)

    @property
    def n_out(self) -> int:
        return self.lanes[-1][1]

    @property
    def recurrent(self) -> bool:
        """Whether a layer is recurrent (then timing needs its core's ``step_ii``)."""
        return any(layer.kind in STEPPED for layer in self.layers)

    @property
    def stateful(self) -> tuple:
        """The layers that start each sequence from a loaded state (:attr:`Layer.initial_state`),
        in order."""
        return tuple(layer for layer in self.layers if layer.initial_state)

    def loads(self, step_ii=None) -> tuple:
        """Per layer, its cycles per network input: :meth:`Layer.cycles` times
        :attr:`rates` (a Fraction each).

        Raises
        ------
        TimingUnknown
            A recurrent layer missing from ``step_ii``.
        """
        return tuple(layer.cycles(step_ii) * rate
                     for layer, rate in zip(self.layers, self.rates))

    def initiation(self, step_ii=None) -> int:
        """Cycles between inputs (vectors, or time steps of sequences) at full rate: the
        busiest layer's cycles per input of its own times the inputs it sees per network input
        (:meth:`loads`), rounded up; a recurrent layer's cycles per step come from
        ``step_ii`` (name → its core's ``ii``). Only the layers up to the first bidirectional
        one count: it stores each sequence before its outputs go on, paced to the layers
        after it, so those set the cycles per sequence (``Network.period``), not the rate
        the steps of a sequence come in at.

        Raises
        ------
        TimingUnknown
            A recurrent layer missing from ``step_ii``.
        """
        loads = self.loads(step_ii)
        kinds = [layer.kind for layer in self.layers]
        upto = kinds.index(BIDIRECTIONAL) + 1 if BIDIRECTIONAL in kinds else len(loads)
        return math.ceil(max(loads[:upto]))

    @property
    def ii(self) -> int:
        """:meth:`initiation` of a network without recurrent layers.

        Raises
        ------
        TimingUnknown
            The network has a recurrent layer: its ii comes from the cores
            (:attr:`hwnn.cores.network.Network.ii`, or :meth:`initiation` with ``step_ii``).
        """
        return self.initiation()

    @property
    def paces(self) -> tuple:
        """:meth:`pacing` of a network without recurrent layers (:class:`TimingUnknown`
        otherwise)."""
        return self.pacing()

    def pacing(self, step_ii=None) -> tuple:
        """Per layer, the fewest cycles between its windows (a conv1d) or its outputs (a
        bidirectional layer; None for the others) that keep it from sending the layers after
        it transfers faster than they take them.

        Worked back from the network's output (always taken): a conv1d takes a window every
        ``take = max(mac_ii, need)`` cycles, ``need`` being the spacing the layers after it
        want, and wants its own inputs ``ceil(take / stride)`` apart; a pool wants
        ``ceil(need / stride)``, a flatten ``ceil(need / steps)``, a dense (or binary_dense) layer
        ``max(ii, need)``, a recurrent layer ``max(step_ii[name], need)``, an activation
        ``need``; a bidirectional layer emits its outputs ``need`` apart and, as it stores
        its sequences, wants its inputs ``step_ii[name]`` apart. Inside a sequence this
        spacing never makes a layer wait; at sequence boundaries (a tail, or a stride phase
        that starts over) it may, and :meth:`~hwnn.cores.network.Network.schedule` says so.

        Raises
        ------
        TimingUnknown
            A recurrent layer missing from ``step_ii``.
        """
        paces, need = [], 1
        for layer in reversed(self.layers):
            pace = None
            if layer.kind == "conv1d":
                pace = max(layer.mac_ii, need)
                need = -(-pace // layer.plan.stride)
            elif layer.kind == "pool":
                need = -(-need // layer.plan.stride)
            elif layer.kind in ("flatten", "last"):
                need = -(-need // layer.plan.steps)
            elif layer.kind in ("dense", "binary_dense"):
                need = max(layer.ii, need)
            elif layer.kind in (*RECURRENT, *CELLS):
                need = max(math.ceil(layer.cycles(step_ii)), need)
            elif layer.kind == BIDIRECTIONAL:
                pace, need = need, math.ceil(layer.cycles(step_ii))
            paces.append(pace)
        return tuple(reversed(paces))

    @property
    def rates(self) -> tuple:
        """Per layer, the inputs it sees per network input (a Fraction): 1, divided by the
        strides of the conv1d and pool layers before it and the length a flatten gathers."""
        rates, rate = [], Fraction(1)
        for layer in self.layers:
            rates.append(rate)
            if layer.kind in ("conv1d", "pool"):
                rate /= layer.plan.stride
            elif layer.kind in ("flatten", "last"):
                rate /= layer.plan.steps
        return tuple(rates)

    def layer(self, name: str) -> Layer:
        """The layer called ``name``."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)


def _check_layer(layer, index) -> Layer:
    where = f"layers[{index}]"
    if not isinstance(layer, Layer):
        raise ParameterTypeError("layers", f"{where} must be a Layer, not {layer!r}")
    if not isinstance(layer.name, str) or not _NAME.fullmatch(layer.name):
        raise ParameterValueError("layers", f"{where}.name must be an identifier (letters, "
                                            f"digits, _), not {layer.name!r}")
    if layer.kind not in KINDS:
        raise ParameterValueError("layers", f"{where}.kind must be one of "
                                            f"{', '.join(map(repr, KINDS))}, not {layer.kind!r}")
    unknown = sorted(set(layer.options) - set(KINDS[layer.kind]))
    if unknown:
        raise ParameterValueError("layers", f"{where} ({layer.name}): option {unknown[0]!r} "
                                            f"does not apply to a {layer.kind} layer")
    wanted = _PLANS.get(layer.kind)
    if wanted is not None and not isinstance(layer.plan, wanted):
        raise ParameterTypeError("layers", f"{where} ({layer.name}): a {layer.kind} layer needs "
                                           f"a {wanted.__name__}, not "
                                           f"{type(layer.plan).__name__}")
    plan_kind = layer.kind.removesuffix("_cell")
    if layer.kind in (*RECURRENT, *CELLS) and layer.plan.kind != plan_kind:
        raise ParameterValueError("layers", f"{where} ({layer.name}): a {layer.kind} layer "
                                            f"needs a {plan_kind} plan, not a "
                                            f"{layer.plan.kind} one")
    if not isinstance(layer.options.get("initial_state", False), bool):
        raise ParameterTypeError("layers", f"{where} ({layer.name}): option initial_state must "
                                           f"be a bool, not {layer.options['initial_state']!r}")
    if layer.kind == BIDIRECTIONAL:
        steps = layer.options.get("max_steps")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ParameterValueError("layers", f"{where} ({layer.name}): a bidirectional layer "
                                                f"needs option max_steps, a positive integer "
                                                f"(its longest sequence), not {steps!r}")
    if layer.kind in ("dense", "conv1d", *STEPPED):
        arith = layer.options.get("arith", "mult")
        if arith not in ARITHMETIC:
            raise ParameterValueError("layers", f"{where} ({layer.name}): arith must be one of "
                                                f"{', '.join(map(repr, ARITHMETIC))}, not "
                                                f"{arith!r}")
        if arith == "mult":
            macs = (layer.plan.groups if layer.kind == "conv1d" else
                    (layer.plan.gates,) if layer.kind in (*RECURRENT, *CELLS) else
                    (layer.plan.forward.gates, layer.plan.reverse.gates)
                    if layer.kind == BIDIRECTIONAL else (layer.plan,))
            for plan in macs:   # a recurrent layer's MAC is over [x; h]
                mac_schedule(plan, layer.options.get("parallelism", 1))  # checks it
        elif "parallelism" in layer.options:
            raise ParameterValueError("layers", f"{where} ({layer.name}): parallelism applies "
                                                f"to arith 'mult', not {arith!r}")
    return layer


def plan_network(layers, n_in: int | None = None, *,
                 sequence_input: bool = False) -> NetworkPlan:
    """Chain ``layers`` (a sequence of :class:`Layer`) into a :class:`NetworkPlan`.

    ``n_in`` is the number of input values per transfer; it defaults to the first layer's own
    (a dense layer's ``n_in``, a conv1d's ``in_channels``, a pool's ``channels``) and is
    required when the network starts with an activation, which takes sequences when
    ``sequence_input``.

    Raises
    ------
    TypeError
        ``layers`` holds something other than :class:`Layer`, or a plan of the wrong kind.
    ValueError
        No layers, a repeated or invalid name, an unknown kind or option, or a layer whose
        input format or width is not the previous layer's output (the message names both).
    """
    layers = tuple(layers)
    if not layers:
        raise ParameterValueError("layers", "layers must hold at least one layer, not none")
    for index, layer in enumerate(layers):
        _check_layer(layer, index)
    names = [layer.name for layer in layers]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ParameterValueError("layers", f"layer names must differ; {repeated[0]!r} is "
                                            f"used {names.count(repeated[0])} times")
    if n_in is None:
        if layers[0].kind == "activation":
            raise ParameterValueError("n_in", f"n_in is needed when the first layer is "
                                              f"{layers[0].kind}, not None")
        n_in = layers[0].lanes(0)[0]
    n_in = check_integer(n_in, "n_in", minimum=1)
    if layers[0].kind in ("flatten", "last"):
        raise ParameterValueError("layers", f"the first layer must give the network its input "
                                            f"format; a {layers[0].kind} has none (put it after "
                                            f"a layer)")
    width, fmt = n_in, layers[0].in_format
    sequence = layers[0].sequences(sequence_input)[0]
    for index, layer in enumerate(layers):
        before = f"layer {layers[index - 1].name!r} gives" if index else "the network has"
        if layer.in_format is not None and layer.in_format != fmt:
            raise ParameterValueError(
                "layers", f"layer {layer.name!r} takes {layer.in_format} but {before} {fmt}")
        wants, sequence_out = layer.sequences(sequence)
        if wants != sequence:
            what = {True: "sequences", False: "vectors"}
            hint = " (put a flatten between)" if sequence else ""
            raise ParameterValueError("layers", f"layer {layer.name!r} ({layer.kind}) takes "
                                                f"{what[wants]} but {before} {what[sequence]}"
                                                f"{hint}")
        takes, gives = layer.lanes(width)
        if takes != width:
            raise ParameterValueError("layers", f"layer {layer.name!r} takes {takes} values "
                                                f"but {before} {width}")
        width, sequence = gives, sequence_out
        fmt = layer.out_format if layer.out_format is not None else fmt
    return NetworkPlan(layers=layers, n_in=n_in, sequence_input=sequence_input)


def balance(plan: NetworkPlan, target_ii: int) -> NetworkPlan:
    """``plan`` with each folded (``arith="mult"``) dense or conv1d layer on the fewest
    multipliers that let the network take one input (a vector, or a time step of a sequence)
    every ``target_ii`` cycles.

    A layer that sees ``r`` of its own inputs per network input (1, divided by the strides of
    the conv1d and pool layers before it and by the length a flatten gathers) may spend
    ``budget = floor(target_ii / r)`` cycles on each: a dense layer gets
    ``parallelism = ceil(n_in·n_out / budget)`` (a folded MAC reaches
    ``ii = ceil(products / parallelism)`` exactly); a conv1d makes a window every ``stride``
    inputs, so each of its groups gets ``ceil(products / floor(budget·stride))``. Shift-add
    layers and activations already take one input per cycle. Recurrent layers are left as
    they are (their cycles per step are their core's, not a MAC's alone). Over sequences, a
    sequence's padding shifts with the next one's steps (``Network.period`` gives the cycles
    per sequence).

    Raises
    ------
    TypeError, ValueError
        ``target_ii`` is not an integer ≥ 1.
    """
    target_ii = check_integer(target_ii, "target_ii", minimum=1)
    layers = []
    for layer, rate in zip(plan.layers, plan.rates):
        folded = layer.options.get("arith", "mult") == "mult"
        if layer.kind == "dense" and folded:
            budget = max(1, math.floor(target_ii / rate))
            products = layer.plan.n_in * layer.plan.n_out
            layer = _with_parallelism(layer, -(-products // budget))
        elif layer.kind == "conv1d" and folded:
            budget = max(1, math.floor(target_ii * layer.plan.stride / rate))
            products = max(g.n_in * g.n_out for g in layer.plan.groups)
            layer = _with_parallelism(layer, -(-products // budget))
        layers.append(layer)
    return replace(plan, layers=tuple(layers))


def _with_parallelism(layer: Layer, parallelism: int) -> Layer:
    return replace(layer, options=MappingProxyType({**layer.options,
                                                     "parallelism": parallelism}))
