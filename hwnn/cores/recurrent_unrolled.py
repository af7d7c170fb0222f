"""An LSTM or GRU layer direction whose whole time step is one datapath: every gate of every
neuron at once, from the registers x, h, c to the next state, with ``cuts`` register stages.

The step is :mod:`hwnn.plans.rnn`'s, built from the datapath code of its parts, not from their
stream cores: the shift-add adder graph over ``[x; h]``
(:func:`~hwnn.cores.shift_add.graph_datapath`, no pipeline registers) with Dense's bias sum
and requantize, the activation units' functions (:func:`~hwnn.cores.lut.lut_datapath` on the
table as logic, :func:`~hwnn.cores.pwl.pwl_datapath`, :func:`~hwnn.cores.exact.exact_datapath`)
and the elementwise operation (:func:`~hwnn.cores.elementwise.elementwise_exact`) with its
requantize, all with their stages wired through. The step is a chain of layers (below); a cut
is a register after a layer, on every value a later layer reads (values that come straight
from x, h and c need none: they hold still for the whole step).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import wiring

from ..checks import ParameterTypeError, check_bool, check_choice, check_integer
from ..plans.dense import shift_add_graph
from ..plans.exact import ExactPlan
from ..plans.lut import LUTPlan
from ..plans.pwl import PWLPlan
from ..plans.rnn import RecurrentPlan
from ._component import rejects_quietly
from ._recurrent_io import mac_inputs, recurrent_members, sequence_control, step_schedule
from .dense import biased_output, shift_add_polarity
from .elementwise import elementwise_exact
from .exact import exact_datapath
from .lut import lut_datapath, lut_rom
from .pwl import pwl_datapath
from .requantize import format_shape, requantize, requantize_has_logic
from .shift_add import graph_datapath

__all__ = ["UnrolledRecurrent", "balanced_cuts"]

#: Estimated delay of each kind of layer, in carry-chain adders of about the datapath's width
#: (what cut placement balances): a requantize that rounds or saturates is one more; a table
#: of 7 to 8 address bits as LUT logic is about two adders deep; a PWL unit compares, subtracts
#: the piece start, adds two shifted terms and the intercept and clamps; an 8×8 product (DSP
#: or LUTs) is about three.
DELAY = {"adder": 1, "requantize": 1, "lut": 2, "pwl": 5, "exact": 2, "hard_sigmoid": 3,
         "mul": 3}


@dataclass(frozen=True)
class Layer:
    """One layer of the step's chain: its ``name``, the values it ``reads`` and ``makes``
    (names), and its estimated ``delay`` (:data:`DELAY` units)."""
    name: str
    reads: tuple
    makes: tuple
    delay: float


def balanced_cuts(delays, cuts: int) -> tuple:
    """The ``cuts`` layer boundaries (boundary ``j`` is after layer ``j``) that make the largest
    sum of ``delays`` between two registers as small as possible; among equals, the earliest
    boundaries. Exhaustive over a chain of a dozen layers at most (dynamic programming)."""
    n = len(delays)
    prefix = [0.0]
    for d in delays:
        prefix.append(prefix[-1] + d)
    # best[k][j]: (largest segment, boundaries) for layers 0..j-1 split by k cuts.
    best = [[None] * (n + 1) for _ in range(cuts + 1)]
    for j in range(1, n + 1):
        best[0][j] = (prefix[j], ())
    for k in range(1, cuts + 1):
        for j in range(k + 1, n + 1):
            options = []
            for i in range(k, j):       # the last cut after layer i - 1
                if best[k - 1][i] is None:
                    continue
                worst, bounds = best[k - 1][i]
                options.append((max(worst, prefix[j] - prefix[i]), bounds + (i - 1,)))
            best[k][j] = min(options) if options else None
    return best[cuts][n][1]


class UnrolledRecurrent(wiring.Component):
    """One direction of an LSTM or GRU layer, a whole time step at once: computes
    :func:`hwnn.ref.rnn.recurrent` on each sequence of a framed stream and sends every step's
    hidden state, as :class:`~hwnn.cores.recurrent.Recurrent` does, with the same ports.

    Timing. One step at a time, ``step_cycles = cuts + 1`` cycles each: a step's input is taken
    in the cycle the previous step's output is taken (or at once when idle) and its hidden state
    is valid ``cuts + 1`` cycles later, from the last cut's registers through the rest of the
    datapath (``o.payload`` is not registered again). That is the ``ii`` and the ``latency``.

    The step's chain of layers (:attr:`layers`), LSTM: the adder graph over ``[x; h]``, bias and
    requantize (the gates), σ ∥ tanh, f⊙c ∥ i⊙g, their sum (c'), tanh(c'), o⊙tanh(c') (h').
    GRU: graph, gates, σ, r⊙n_h (the original GRU: r⊙h, its second graph and gates), the
    candidate sum, tanh, h − n, z⊙(h − n), the final sum. The cuts go after the layers that
    :func:`balanced_cuts` picks from the estimated delays (:attr:`cut_after`); the adder graph
    itself is never cut.

    Parameters
    ----------
    plan : RecurrentPlan
    arith : "mcm" or "csd"
        The shift-add graph of the MAC (:func:`hwnn.plans.dense.shift_add_graph`).
    cuts : int
        Register stages inside the step, 0 to ``len(layers) - 1``.
    sequences, initial_state : bool
        As for :class:`~hwnn.cores.recurrent.Recurrent`.

    Members
    -------
    i, o, i_state
        As for :class:`~hwnn.cores.recurrent.Recurrent` (:func:`~hwnn.cores._recurrent_io.
        recurrent_members`).

    Raises
    ------
    TypeError
        ``plan`` is not a RecurrentPlan, ``arith`` not a string, ``cuts`` not an integer,
        ``sequences`` or ``initial_state`` not a bool (``ParameterTypeError``).
    ValueError
        ``arith`` not "mcm" or "csd", ``cuts`` out of range (``ParameterValueError``).
    NotImplementedError
        ``plan.reverse``.
    """

    @rejects_quietly
    def __init__(self, plan: RecurrentPlan, *, arith: str = "mcm", cuts: int = 0,
                 sequences: bool = True, initial_state: bool = False):
        if not isinstance(plan, RecurrentPlan):
            raise ParameterTypeError("plan", f"plan must be a RecurrentPlan (see "
                                             f"hwnn.plans.rnn.plan_recurrent), not {plan!r}")
        if plan.reverse:
            raise NotImplementedError("a reverse direction needs its whole sequence before its "
                                      "first step; this core runs forward only")
        self._plan = plan
        self._arith = check_choice(arith, "arith", ("mcm", "csd"))
        self._sequences = check_bool(sequences, "sequences")
        self._initial = check_bool(initial_state, "initial_state")
        self._graph = shift_add_graph(plan.gates, arith)
        self._hidden_graph = (None if plan.hidden_gates is None
                              else shift_add_graph(plan.hidden_gates, arith))
        self._layers = self._chain()
        self._cuts = check_integer(cuts, "cuts", minimum=0, maximum=len(self._layers) - 1)
        self._cut_after = balanced_cuts([layer.delay for layer in self._layers], self._cuts)
        super().__init__(recurrent_members(plan, sequences=self._sequences,
                                           initial_state=self._initial))

    plan = property(lambda self: self._plan, doc="The RecurrentPlan this core implements.")
    arith = property(lambda self: self._arith, doc="'mcm' or 'csd'.")
    cuts = property(lambda self: self._cuts, doc="Register stages inside the step.")
    layers = property(lambda self: self._layers, doc="The step's chain of layers.")
    sequences = property(lambda self: self._sequences,
                         doc="Whether every step's hidden state leaves (else each sequence's "
                             "last).")
    in_format = property(lambda self: self._plan.in_format)
    out_format = property(lambda self: self._plan.state_format)

    @property
    def cut_after(self) -> tuple:
        """The names of the layers a cut follows, in order."""
        return tuple(self._layers[j].name for j in self._cut_after)

    @property
    def segments(self) -> list:
        """The layers between registers: ``cuts + 1`` lists of layer names."""
        out, current = [], []
        for j, layer in enumerate(self._layers):
            current.append(layer.name)
            if j in self._cut_after:
                out.append(current)
                current = []
        return out + [current]

    @property
    def critical_segment(self) -> list:
        """The segment with the largest estimated delay (the first of equals)."""
        delay = {layer.name: layer.delay for layer in self._layers}
        return max(self.segments, key=lambda names: sum(delay[n] for n in names))

    @property
    def step_cycles(self) -> int:
        """Cycles per time step: ``cuts + 1``."""
        return self._cuts + 1

    ii = property(lambda self: self.step_cycles,
                  doc="Cycles between time steps at full rate (:attr:`step_cycles`).")
    latency = property(lambda self: self.step_cycles,
                       doc="Cycles from a step's input to its hidden state (:attr:`step_cycles`).")

    @property
    def multipliers(self) -> int:
        """Multipliers: one per value of each elementwise product, and one per value of each
        PWL activation whose slopes are any integers (power-of-two slopes are shifts)."""
        plan, hidden = self._plan, self._plan.hidden_size
        count = sum(hidden for stage in plan.stages.values() if stage.op == "mul")
        for name, values in self._activation_counts().items():
            if getattr(plan.activations[name], "slope_kind", None) == "any":
                count += values
        return count

    def _activation_counts(self) -> dict:
        """How many values each activation plan computes in a step."""
        hidden = self._plan.hidden_size
        if self._plan.kind == "lstm":
            return {"sigmoid": 3 * hidden, "tanh": hidden, "tanh_cell": hidden}
        return {"sigmoid": 2 * hidden, "tanh": hidden}

    def schedule(self, lengths, arrivals=None):
        """``(in_cycles, out_cycles)`` of back-to-back sequences of ``lengths`` steps, step
        ``k`` offered from cycle ``arrivals[k]`` (None: all from cycle 0), the output always
        taken: a pipeline whose ii and latency are :attr:`step_cycles`; with
        ``sequences=False`` only each sequence's last output.

        Raises
        ------
        ValueError
            ``lengths`` holds a negative number, or ``arrivals`` is not one non-decreasing
            non-negative integer per step.
        """
        return step_schedule(lengths, arrivals, self.step_cycles, self._sequences)

    def describe(self) -> dict:
        """Parameters, formats, timing, the layers and where the cuts are (JSON-serializable)."""
        return {"kind": self._plan.kind, "class": "UnrolledRecurrent", "arith": self._arith,
                "cuts": self._cuts, "cut_after": list(self.cut_after),
                "layers": [{"name": layer.name, "delay": layer.delay}
                           for layer in self._layers],
                "critical_segment": self.critical_segment,
                "sequences": self._sequences, "initial_state": self._initial,
                "multipliers": self.multipliers, "latency": self.latency, "ii": self.ii,
                "graph": self._graph.describe(), **self._plan.describe()}

    # The chain ------------------------------------------------------------------------------

    def _act_delay(self, name) -> float:
        plan = self._plan.activations[name]
        if isinstance(plan, LUTPlan):
            return DELAY["lut"]
        if isinstance(plan, PWLPlan):
            return DELAY["pwl"]
        return DELAY["hard_sigmoid" if plan.function.name == "hard_sigmoid" else "exact"]

    def _ew_delay(self, name) -> float:
        stage = self._plan.stages[name]
        rounds = requantize_has_logic(stage.full_format, stage.out_format, stage.rounding,
                                      stage.overflow)
        return DELAY["mul" if stage.op == "mul" else "adder"] + DELAY["requantize"] * rounds

    def _gates_delay(self, dense) -> float:
        return DELAY["adder"] + DELAY["requantize"] * requantize_has_logic(
            dense.acc_format, dense.out_format, dense.rounding, dense.overflow)

    def _chain(self) -> list:
        plan = self._plan
        ew, act = self._ew_delay, self._act_delay
        head = [Layer("mac", ("xh",), ("nodes",), DELAY["adder"] * self._graph.depth),
                Layer("gates", ("nodes",), ("gates",), self._gates_delay(plan.gates))]
        if plan.kind == "lstm":
            return head + [
                Layer("activations", ("gates",), ("i", "f", "g", "o"),
                      max(act("sigmoid"), act("tanh"))),
                Layer("products", ("f", "c", "i", "g"), ("fc", "ig"),
                      max(ew("forget"), ew("input"))),
                Layer("cell", ("fc", "ig"), ("c_next",), ew("cell")),
                Layer("tanh_cell", ("c_next",), ("tc",), act("tanh_cell")),
                Layer("hidden", ("o", "tc"), ("h_next",), ew("hidden"))]
        if plan.reset_after:
            reset = [Layer("reset", ("r", "gates"), ("rn",), ew("reset"))]
        else:
            reset = [Layer("reset", ("r", "h"), ("rh",), ew("reset")),
                     Layer("hidden_mac", ("rh",), ("hidden_nodes",),
                           DELAY["adder"] * self._hidden_graph.depth),
                     Layer("hidden_gates", ("hidden_nodes",), ("rn",),
                           self._gates_delay(plan.hidden_gates))]
        return head + [
            Layer("sigmoid", ("gates",), ("r", "z"), act("sigmoid")),
            *reset,
            Layer("candidate", ("gates", "rn"), ("cand",), ew("candidate")),
            Layer("tanh", ("cand",), ("n",), act("tanh")),
            Layer("difference", ("h", "n"), ("d",), ew("difference")),
            Layer("update", ("z", "d"), ("u",), ew("update")),
            Layer("hidden", ("n", "u"), ("h_next",), ew("hidden"))]

    # The hardware ---------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()

        def step(x, h, c, have_x, done):
            return self._step(m, x, h, c, have_x, done)
        sequence_control(m, self, self._plan, step, sequences=self._sequences,
                         initial_state=self._initial)
        return m

    def _step(self, m, x, h, c, have_x, done):
        """Build the step on the registers; return ``(h_next, c_next, valid)`` (flat)."""
        plan, hidden = self._plan, self._plan.hidden_size
        values = {"xh": mac_inputs(m, plan, x, h), "h": _lanes(h, plan.state_format, hidden)}
        if plan.cell_format is not None:
            values["c"] = _lanes(c, plan.cell_format, hidden)
        held = set(values)          # registers, or values that passed a cut: no more cuts
        builders = self._builders(m)
        valid = have_x
        for j, layer in enumerate(self._layers):
            builders[layer.name](values)
            if j not in self._cut_after:
                continue
            later = {name for after in self._layers[j + 1:] for name in after.reads}
            later |= {"h_next", "c_next"}
            for name in sorted(set(values) - held):
                if name in later:
                    values[name] = [None if v is None else _register(m, v, f"{name}{k}_cut")
                                    for k, v in enumerate(values[name])]
                    held.add(name)
            stage_valid = Signal(name=f"valid_{layer.name}")
            # One step at a time: a stage's value is good once the stage before it was for a
            # cycle, until the step's output is taken.
            m.d.sync += stage_valid.eq(valid & ~done)
            valid = stage_valid
        h_next = _flat(values["h_next"])
        c_next = _flat(values["c_next"]) if plan.kind == "lstm" else None
        return h_next, c_next, valid

    def _builders(self, m) -> dict:
        """One function per layer name that adds the layer's values to ``values``."""
        plan, hidden = self._plan, self._plan.hidden_size
        act, stages = plan.activations, plan.stages
        graphs = {}

        def mac(reads, makes, graph, dense, name):
            def build(values):
                polarity = shift_add_polarity(graph, dense.bias)
                inputs = values[reads]
                outputs, _ = graph_datapath(m, graph, inputs, pipeline=0, advance=Const(1),
                                            name=name, polarity=polarity)
                graphs[makes] = outputs
                values[makes] = [None if o is None else o[0] for o in outputs]
            return build

        def gates(reads, makes, dense, name):
            def build(values):
                acc = format_shape(dense.acc_format)
                out = []
                for row, (output, node) in enumerate(zip(graphs[reads], values[reads])):
                    full = None if output is None else (node, output[1], output[2])
                    total = Signal(acc, name=f"{name}_sum{row}")
                    m.d.comb += total.eq(biased_output(full, int(dense.bias[row]), acc))
                    out.append(_signal(m, requantize(total, dense.acc_format, dense.out_format,
                                                     dense.rounding, dense.overflow),
                                       dense.out_format, f"{name}{row}"))
                values[makes] = out
            return build

        def gate_rows(values, block):
            """Gate block ``block`` (LSTM i, f, g, o; GRU r, z, n_x, n_h) of every neuron."""
            return values["gates"][block * hidden:(block + 1) * hidden]

        def activate(plan_name, lanes, label):
            unit = act[plan_name]
            return [_signal(m, _activation(m, unit, v, f"{label}{k}"), unit.out_format,
                            f"{label}{k}_y") for k, v in enumerate(lanes)]

        def ew(stage_name, a, b, label):
            stage = stages[stage_name]
            out = []
            for k, (u, v) in enumerate(zip(a, b)):
                full = Signal(format_shape(stage.full_format), name=f"{label}{k}_full")
                m.d.comb += full.eq(elementwise_exact(stage, u, v))
                out.append(_signal(m, requantize(full, stage.full_format, stage.out_format,
                                                 stage.rounding, stage.overflow),
                                   stage.out_format, f"{label}{k}"))
            return out

        def lstm_activations(values):
            for name, block in (("i", 0), ("f", 1), ("o", 3)):
                values[name] = activate("sigmoid", gate_rows(values, block), name)
            values["g"] = activate("tanh", gate_rows(values, 2), "g")

        def products(values):
            values["fc"] = ew("forget", values["f"], values["c"], "fc")
            values["ig"] = ew("input", values["i"], values["g"], "ig")

        def sigmoid(values):
            values["r"] = activate("sigmoid", gate_rows(values, 0), "r")
            values["z"] = activate("sigmoid", gate_rows(values, 1), "z")

        def reset(values):
            if plan.reset_after:
                values["rn"] = ew("reset", values["r"], gate_rows(values, 3), "rn")
            else:
                values["rh"] = ew("reset", values["r"], values["h"], "rh")

        builders = {
            "mac": mac("xh", "nodes", self._graph, plan.gates, "g"),
            "gates": gates("nodes", "gates", plan.gates, "gate"),
            "activations": lstm_activations, "products": products, "sigmoid": sigmoid,
            "reset": reset,
            "cell": lambda v: v.update(c_next=ew("cell", v["fc"], v["ig"], "c_next")),
            "tanh_cell": lambda v: v.update(tc=activate("tanh_cell", v["c_next"], "tc")),
            "candidate": lambda v: v.update(cand=ew("candidate", gate_rows(v, 2), v["rn"],
                                                    "cand")),
            "tanh": lambda v: v.update(n=activate("tanh", v["cand"], "n")),
            "difference": lambda v: v.update(d=ew("difference", v["h"], v["n"], "d")),
            "update": lambda v: v.update(u=ew("update", v["z"], v["d"], "u")),
            "hidden": lambda v: v.update(h_next=ew("hidden", *(
                (v["o"], v["tc"]) if plan.kind == "lstm" else (v["n"], v["u"])), "h_next")),
        }
        if plan.hidden_gates is not None:
            builders["hidden_mac"] = mac("rh", "hidden_nodes", self._hidden_graph,
                                         plan.hidden_gates, "hg")
            builders["hidden_gates"] = gates("hidden_nodes", "rn", plan.hidden_gates, "hgate")
        return builders


def _through(m):
    """A ``stage`` for the activation datapaths that adds no register: the value, held in a
    signal of the stage's shape (what the register would have kept)."""
    def stage(value, shape, label):
        wire = Signal(shape, name=f"{label}_w")
        m.d.comb += wire.eq(value)
        return wire
    return stage


def _activation(m, plan, x, name):
    """The activation of ``plan`` on one value, combinationally (a LUT's table as logic)."""
    if isinstance(plan, LUTPlan):
        return lut_datapath(m, plan, x, name=name, read=lut_rom(plan), stage=_through(m))
    if isinstance(plan, PWLPlan):
        return pwl_datapath(m, plan, x, name=name, stage=_through(m))
    assert isinstance(plan, ExactPlan), plan
    return exact_datapath(m, plan, x, name=name)


def _signal(m, value, fmt, name):
    """``value`` (a code of ``fmt``, in range) in a signal of ``fmt``'s shape."""
    wire = Signal(format_shape(fmt), name=name)
    m.d.comb += wire.eq(value)
    return wire


def _register(m, value, name):
    """``value`` through a register that loads every cycle (its inputs hold still for a step,
    so a cut needs no enable)."""
    register = Signal(value.shape(), name=name)
    m.d.sync += register.eq(value)
    return register


def _lanes(flat, fmt, count) -> list:
    """The ``count`` codes of ``fmt`` packed in ``flat``, one value each."""
    width = fmt.width
    out = []
    for k in range(count):
        code = flat[k * width:(k + 1) * width]
        out.append(code.as_signed() if fmt.signed else code)
    return out


def _flat(values):
    """Lane values side by side, lane 0 in the least significant bits."""
    return Cat(*values)
