"""The whole time step of an LSTM or GRU direction as one datapath, with register cuts.

Every gate of every neuron at once, from x, h and c to the next state: the step of
:mod:`hwnn.plans.rnn`, built from the datapath code of its parts, not from their stream cores:
the shift-add adder graph over ``[x; h]`` (:func:`~hwnn.cores.shift_add.graph_datapath`, no
pipeline registers) with Dense's bias sum and requantize, the activation units' functions
(:func:`~hwnn.cores.lut.lut_datapath` on the table as logic, :func:`~hwnn.cores.pwl.pwl_datapath`,
:func:`~hwnn.cores.poly.poly_datapath` on its coefficient table as logic,
:func:`~hwnn.cores.exact.exact_datapath`) and the elementwise operation
(:func:`~hwnn.cores.elementwise.elementwise_exact`) with its requantize, all with their stages
wired through. The step is a chain of layers; a cut is a register after a layer, on every value
a later layer reads.

Two cores run it: :class:`~hwnn.cores.recurrent_unrolled.UnrolledRecurrent` (a sequence, one
step at a time: x, h and c are registers that hold still for the step, so values read straight
from them need no cut register) and :class:`~hwnn.cores.rnn_cell.RecurrentCell` (independent
steps, one a cycle: every value a later layer reads, h and c too, goes through each cut).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Signal

from ..checks import check_choice, check_integer
from ..plans.dense import shift_add_graph
from ..plans.exact import ExactPlan
from ..plans.lut import LUTPlan
from ..plans.poly import PolyPlan
from ..plans.pwl import PWLPlan
from .dense import biased_output, shift_add_polarity
from .elementwise import elementwise_exact
from .exact import exact_datapath
from .lut import lut_datapath, lut_rom
from .poly import poly_datapath, poly_rom
from .pwl import pwl_datapath
from .requantize import format_shape, requantize, requantize_has_logic
from .shift_add import graph_datapath

__all__ = ["DELAY", "Layer", "StepDatapath", "balanced_cuts", "lanes"]

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


class StepDatapath:
    """The step of ``plan`` as one datapath with ``cuts`` register stages: its chain of layers,
    where the cuts go, and (:meth:`build`) its hardware.

    The chain (:attr:`layers`), LSTM: the adder graph over ``[x; h]``, bias and requantize (the
    gates), σ ∥ tanh, f⊙c ∥ i⊙g, their sum (c'), tanh(c'), o⊙tanh(c') (h'). GRU: graph, gates,
    σ, r⊙n_h (the original GRU: r⊙h, its second graph and gates), the candidate sum, tanh,
    h − n, z⊙(h − n), the final sum. The cuts go after the layers that :func:`balanced_cuts`
    picks from the estimated delays (:attr:`cut_after`); the adder graph itself is never cut.

    Parameters
    ----------
    plan : RecurrentPlan
    arith : "mcm" or "csd"
        The shift-add graph of the MAC (:func:`hwnn.plans.dense.shift_add_graph`).
    cuts : int
        Register stages inside the step, 0 to ``len(layers) - 1``.

    Raises
    ------
    TypeError
        ``arith`` not a string, ``cuts`` not an integer (``ParameterTypeError``).
    ValueError
        ``arith`` not "mcm" or "csd", ``cuts`` out of range (``ParameterValueError``).
    """

    def __init__(self, plan, arith: str, cuts: int):
        self._plan = plan
        self._arith = check_choice(arith, "arith", ("mcm", "csd"))
        self._graph = shift_add_graph(plan.gates, arith)
        self._hidden_graph = (None if plan.hidden_gates is None
                              else shift_add_graph(plan.hidden_gates, arith))
        self._layers = self._chain()
        self._cuts = check_integer(cuts, "cuts", minimum=0, maximum=len(self._layers) - 1)
        self._cut_after = balanced_cuts([layer.delay for layer in self._layers], self._cuts)

    arith = property(lambda self: self._arith, doc="'mcm' or 'csd'.")
    cuts = property(lambda self: self._cuts, doc="Register stages inside the step.")
    layers = property(lambda self: self._layers, doc="The step's chain of layers.")
    graph = property(lambda self: self._graph, doc="The adder graph over [x; h].")

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
    def multipliers(self) -> int:
        """Multipliers: one per value of each elementwise product, one per value of each PWL
        activation whose slopes are any integers (power-of-two slopes are shifts), and one per
        Horner step and value of each polynomial activation on DSP multipliers."""
        plan, hidden = self._plan, self._plan.hidden_size
        count = sum(hidden for stage in plan.stages.values() if stage.op == "mul")
        for name, values in self._activation_counts().items():
            activation = plan.activations[name]
            if getattr(activation, "slope_kind", None) == "any":
                count += values
            elif getattr(activation, "multipliers", None) == "dsp":
                count += values * activation.degree
        return count

    def _activation_counts(self) -> dict:
        """How many values each activation plan computes in a step."""
        hidden = self._plan.hidden_size
        if self._plan.kind == "lstm":
            return {"sigmoid": 3 * hidden, "tanh": hidden, "tanh_cell": hidden}
        return {"sigmoid": 2 * hidden, "tanh": hidden}

    def describe(self) -> dict:
        """The arith, the layers and where the cuts are (JSON-serializable)."""
        return {"arith": self._arith, "cuts": self._cuts, "cut_after": list(self.cut_after),
                "layers": [{"name": layer.name, "delay": layer.delay}
                           for layer in self._layers],
                "critical_segment": self.critical_segment, "multipliers": self.multipliers,
                "graph": self._graph.describe()}

    # The chain ------------------------------------------------------------------------------

    def _act_delay(self, name) -> float:
        plan = self._plan.activations[name]
        if isinstance(plan, LUTPlan):
            return DELAY["lut"]
        if isinstance(plan, PWLPlan):
            return DELAY["pwl"]
        if isinstance(plan, PolyPlan):
            # The piece and its table, a product and a sum per Horner step, the clamp.
            return DELAY["lut"] + plan.degree * (DELAY["mul"] + DELAY["adder"]) + DELAY["adder"]
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

    def build(self, m, xh, h, c, valid, *, enable, clear, carry: bool):
        """Build the step in ``m``; return ``(h_next, c_next, valid)``: the next state as flat
        values (lane 0 in the low bits; ``c_next`` None for a GRU) and when it is there.

        ``xh`` is ``[x; h]`` in the MAC's input format (one value per element,
        :func:`~hwnn.cores._recurrent_io.mac_inputs`), ``h`` and ``c`` the state (flat codes;
        ``c`` unused for a GRU), ``valid`` says they hold a step. Each cut's registers load
        while ``enable``; its valid flag follows the one before it then, and drops while
        ``clear``. With ``carry`` every value a later layer reads passes each cut, ``h`` and
        ``c`` too (steps follow each other through the cuts); without, values read straight from
        ``h`` and ``c`` do not (they hold still for the whole step).
        """
        plan, hidden = self._plan, self._plan.hidden_size
        values = {"xh": xh, "h": lanes(h, plan.state_format, hidden)}
        if plan.cell_format is not None:
            values["c"] = lanes(c, plan.cell_format, hidden)
        held = {"xh"} if carry else set(values)     # no more cuts for these
        builders = self._builders(m)
        for j, layer in enumerate(self._layers):
            builders[layer.name](values)
            if j not in self._cut_after:
                continue
            later = {name for after in self._layers[j + 1:] for name in after.reads}
            later |= {"h_next", "c_next"}
            for name in sorted(set(values) - held):
                if name in later:
                    values[name] = [None if v is None
                                    else _register(m, v, enable, f"{name}{k}_cut{j}")
                                    for k, v in enumerate(values[name])]
                    if not carry:
                        held.add(name)
            stage_valid = Signal(name=f"valid_{layer.name}")
            with m.If(enable):
                m.d.sync += stage_valid.eq(valid & ~clear)
            valid = stage_valid
        h_next = Cat(*values["h_next"])
        c_next = Cat(*values["c_next"]) if plan.kind == "lstm" else None
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
    if isinstance(plan, PolyPlan):
        return poly_datapath(m, plan, x, name=name, stage=_through(m), read=poly_rom(plan))
    assert isinstance(plan, ExactPlan), plan
    return exact_datapath(m, plan, x, name=name)


def _signal(m, value, fmt, name):
    """``value`` (a code of ``fmt``, in range) in a signal of ``fmt``'s shape."""
    wire = Signal(format_shape(fmt), name=name)
    m.d.comb += wire.eq(value)
    return wire


def _register(m, value, enable, name):
    """``value`` through a register that loads while ``enable``."""
    register = Signal(value.shape(), name=name)
    with m.If(enable):
        m.d.sync += register.eq(value)
    return register


def lanes(flat, fmt, count) -> list:
    """The ``count`` codes of ``fmt`` packed in ``flat``, one value each."""
    width = fmt.width
    out = []
    for k in range(count):
        code = flat[k * width:(k + 1) * width]
        out.append(code.as_signed() if fmt.signed else code)
    return out
