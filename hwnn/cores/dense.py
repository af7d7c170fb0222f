"""Dense (fully connected) layer on a folded multiplier MAC array."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..checks import ParameterTypeError, ParameterValueError, check_bool, check_choice, \
    check_integer
from ..plans.dense import ARITHMETIC, DensePlan, shift_add_graph
from ._component import owned, rejects_quietly
from ._output import registered_output
from .mac import FoldedMac, Multiply
from .requantize import format_shape, requantize, requantize_has_logic
from .shift_add import graph_datapath, graph_stages, polarities

__all__ = ["Dense", "biased_output", "shift_add_polarity"]


class Dense(wiring.Component):
    """``y = requantize(W·x + b)`` for constant weights, on multipliers or with shifts and adds.

    Matches :func:`hwnn.ref.dense.dense` bit for bit: products are accumulated exactly in
    ``plan.acc_format`` and narrowed once, to ``plan.out_format``, with the plan's rounding and
    overflow modes.

    ``arith="mult"`` (the default): a :class:`~hwnn.cores.mac.FoldedMac` with a
    :class:`~hwnn.cores.mac.Multiply` product: the input vector is registered; each multiplier
    (lane) walks a fixed slice of the output-major product list (see
    :func:`hwnn.plans.dense.mac_schedule`). A lane's pipeline has three registered stages:
    operands (weight from a synchronous ROM in ``amaranth.lib.memory``, or a constant when
    fully parallel; the selected input element), product, and accumulator (which starts each
    output's sum at its bias). A final stage adds each output's lane partial sums,
    requantizes and registers the output vector.

    Throughput: one vector every ``ii = ceil(n_in·n_out / parallelism)`` cycles.
    Latency: ``ii + 4`` cycles from the cycle an input is accepted to the cycle its output is
    first valid (input register, ``ii`` issue cycles, operand, product and output stages).

    ``arith="csd"`` or ``"mcm"``: no multipliers. The constant matrix is an adder graph
    (:func:`hwnn.plans.dense.shift_add_graph`: canonical signed digits without sharing, or the
    fewest adders with shared subexpressions) built fully parallel, one adder of exact width
    per graph node, registered every ``pipeline`` adder levels; a last stage adds the bias,
    requantizes and registers the output. With ``pipeline`` ≥ 1 and a requantize that rounds
    or saturates, the bias sum is registered first (``sum_stage``). One vector per cycle
    (``ii = 1``); latency ``3 + ceil(depth / pipeline) + sum_stage`` (``3`` with
    ``pipeline=0``: the graph is combinational between the input and output registers), one
    less with ``always_ready``.

    Parameters
    ----------
    plan : DensePlan
        Quantized weights, bias and formats, from :func:`hwnn.plans.dense.plan_dense`.
    parallelism : int
        Multipliers to use, from 1 (the default) to ``n_in·n_out``; ``arith="mult"`` only.
    arith : str
        ``"mult"``, ``"csd"`` or ``"mcm"`` (see above).
    pipeline : int
        Shift-add only: register every ``pipeline`` adder levels (default 2; 0 = none).
    always_ready : bool
        Shift-add only: both streams are ``always_ready`` (``amaranth.lib.stream``): the core
        takes a vector in any cycle and its consumer must take every output in the cycle it is
        valid. The pipeline then never stalls and needs no skid register (one multiplexer and
        two flip-flops fewer per output bit), like a bare pipelined datapath.
    rows : bool
        ``arith="mult"`` with ``parallelism`` 1 only: each output leaves on its own, in row
        order, as soon as its sum is complete (:class:`~hwnn.cores.mac.FoldedMac`'s ``rows``;
        ``o`` then carries one value per transfer and ``latency`` is that of the last row).

    Members
    -------
    i : In(stream.Signature(data.ArrayLayout(<in_format shape>, n_in)))
        Input vector, element 0 in the least significant bits.
    o : Out(stream.Signature(data.ArrayLayout(<out_format shape>, n_out)))
        Output vector (with ``rows``: ``ArrayLayout(<out_format shape>, 1)``, one row).

    Raises
    ------
    TypeError
        ``plan`` is not a DensePlan, ``arith`` not a string, ``parallelism`` or ``pipeline``
        not an integer, ``always_ready`` or ``rows`` not a bool (``ParameterTypeError``;
        ``exc.parameter`` names the parameter).
    ValueError
        ``parallelism`` is outside ``1 … n_in·n_out``, ``arith`` unknown, ``pipeline`` < 0,
        ``pipeline`` or ``always_ready`` with ``arith="mult"``, ``parallelism`` or ``rows``
        with shift-add arithmetic, ``rows`` with ``parallelism`` other than 1
        (``ParameterValueError``).
    """

    @rejects_quietly
    def __init__(self, plan: DensePlan, *, parallelism: int | None = None, arith: str = "mult",
                 pipeline: int | None = None, always_ready: bool = False, rows: bool = False):
        if not isinstance(plan, DensePlan):
            raise ParameterTypeError("plan", f"plan must be a DensePlan (see "
                                             f"hwnn.plans.dense.plan_dense), not {plan!r}")
        arith = check_choice(arith, "arith", ARITHMETIC)
        always_ready = check_bool(always_ready, "always_ready")
        rows = check_bool(rows, "rows")
        self._plan, self._arith, self._always_ready = plan, arith, always_ready
        if arith == "mult":
            if always_ready:
                raise ParameterValueError(
                    "always_ready", "always_ready needs a core that takes a vector every cycle "
                    "whatever happens downstream: arith 'csd' or 'mcm', not 'mult'")
            if pipeline is not None:
                raise ParameterValueError(
                    "pipeline", f"pipeline applies to shift-add arithmetic (arith 'csd' or "
                    f"'mcm'), not to arith 'mult'; got pipeline={pipeline!r}")
            parallelism = 1 if parallelism is None else parallelism
            self._mac = owned(FoldedMac(plan, Multiply(plan.in_format, plan.weight_format),
                                        parallelism=parallelism, rows=rows))
            self._parallelism, self._graph, self._pipeline = self._mac.parallelism, None, None
        else:
            if rows:
                raise ParameterValueError(
                    "rows", f"rows applies to arith 'mult' (a folded MAC on one multiplier), "
                            f"not to arith {arith!r}")
            if parallelism is not None:
                raise ParameterValueError(
                    "parallelism", f"arith {arith!r} is fully parallel (one vector per "
                    f"cycle); parallelism applies to arith 'mult' only, got "
                    f"parallelism={parallelism!r}")
            pipeline = check_integer(2 if pipeline is None else pipeline, "pipeline",
                                     minimum=0)
            self._graph, self._pipeline = shift_add_graph(plan, arith), pipeline
            self._polarity = shift_add_polarity(self._graph, plan.bias)
            # With pipelining, a requantize that rounds or saturates gets a stage of its own
            # after the bias adder: three carry chains in one stage would set the clock.
            self._sum_stage = int(pipeline > 0 and requantize_has_logic(
                plan.acc_format, plan.out_format, plan.rounding, plan.overflow))
            self._mac, self._parallelism = None, plan.n_in * plan.n_out
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(format_shape(plan.in_format), plan.n_in),
                                     always_ready=always_ready)),
            "o": Out(stream.Signature(data.ArrayLayout(format_shape(plan.out_format),
                                                       1 if rows else plan.n_out),
                                      always_ready=always_ready)),
        })

    plan = property(lambda self: self._plan, doc="The DensePlan this core implements.")
    arith = property(lambda self: self._arith, doc="'mult', 'csd' or 'mcm'.")
    parallelism = property(lambda self: self._parallelism,
                           doc="Requested multipliers (n_in·n_out for shift-add: all at once).")
    graph = property(lambda self: self._graph,
                     doc="The AdderGraph of a shift-add core (None for arith 'mult').")
    pipeline = property(lambda self: self._pipeline,
                        doc="Adder levels per register stage (None for arith 'mult').")
    always_ready = property(lambda self: self._always_ready,
                            doc="Streams without backpressure (a free-running pipeline).")
    rows = property(lambda self: self._mac is not None and self._mac.rows,
                    doc="Outputs leave one row per transfer (else the whole vector).")
    multipliers = property(lambda self: self._mac.lanes if self._graph is None else 0,
                           doc="Multipliers actually instantiated (lanes with work).")

    @property
    def ii(self) -> int:
        """Cycles between accepted inputs at full rate."""
        return self._mac.ii if self._graph is None else 1

    @property
    def latency(self) -> int:
        """Cycles from an accepted input to its output, without stalls."""
        if self._graph is None:
            return self._mac.latency
        # Without backpressure the result register is the output register: one cycle less.
        return (3 + graph_stages(self._graph.depth, self._pipeline) + self._sum_stage
                - self._always_ready)
    in_format = property(lambda self: self._plan.in_format)
    out_format = property(lambda self: self._plan.out_format)

    def describe(self) -> dict:
        """Parameters and formats for manifests and reports (JSON-serializable)."""
        info = {"kind": "dense", "class": "Dense", "arith": self._arith,
                "parallelism": self._parallelism, "multipliers": self.multipliers,
                "latency": self.latency, "ii": self.ii, **self._plan.describe()}
        if self._graph is not None:
            info.update(pipeline=self._pipeline, always_ready=self._always_ready,
                        graph=self._graph.describe(), output_adders=self.output_adders)
        return info

    @property
    def output_adders(self) -> int:
        """Shift-add only: adders after the graph, one per output that adds a nonzero bias or
        subtracts its graph value (an output's negation folds into its bias adder)."""
        if self._graph is None:
            return 0
        return sum(1 for o, b in zip(self._graph.outputs, self._plan.bias)
                   if o.node is not None
                   and (int(b) != 0 or o.sign * self._polarity[o.node] < 0))

    def elaborate(self, platform):
        if self._graph is not None:
            return self._elaborate_shift_add()
        m = Module()
        m.submodules.mac = self._mac
        wiring.connect(m, wiring.flipped(self.i), self._mac.i)
        wiring.connect(m, self._mac.o, wiring.flipped(self.o))
        return m

    def _elaborate_shift_add(self):
        m = Module()
        plan = self._plan
        x = Signal.like(self.i.payload, name="x")
        # valid[0] goes with `x`, valid[k] with the graph's k-th register stage, valid[-1] with
        # `result`. One enable moves the whole pipeline; it depends on flip-flops only.
        stages = graph_stages(self._graph.depth, self._pipeline) + self._sum_stage
        valid = [Signal(name=f"valid{k}") for k in range(stages + 2)]
        result = Signal.like(self.o.payload, name="result")
        if self._always_ready:
            # Nothing downstream can stall: every stage moves every cycle and the result
            # register is the output (no skid register, no multiplexer in front of it).
            advance = Const(1)
            m.d.comb += [self.o.payload.eq(result), self.o.valid.eq(valid[-1])]
        else:
            accept = registered_output(m, self.o, valid[-1], result, full_rate=True)
            advance = ~valid[-1] | accept
            m.d.comb += self.i.ready.eq(advance)
        with m.If(advance):
            m.d.sync += [x.eq(self.i.payload), valid[0].eq(self.i.valid)]
            m.d.sync += [later.eq(earlier) for earlier, later in zip(valid, valid[1:])]
        outputs, _ = graph_datapath(m, self._graph, [x[i] for i in range(plan.n_in)],
                                    pipeline=self._pipeline, advance=advance,
                                    polarity=self._polarity)
        acc_shape = format_shape(plan.acc_format)
        for row, output in enumerate(outputs):
            value = biased_output(output, int(plan.bias[row]), acc_shape)
            total = Signal(acc_shape, name=f"sum{row}")
            if self._sum_stage:
                with m.If(advance):
                    m.d.sync += total.eq(value)
            else:
                m.d.comb += total.eq(value)
            with m.If(advance):
                m.d.sync += result[row].eq(requantize(total, plan.acc_format, plan.out_format,
                                                      plan.rounding, plan.overflow))
        return m


def shift_add_polarity(graph, bias) -> list:
    """The node signs (:func:`~hwnn.cores.shift_add.polarities`) of a shift-add Dense whose
    outputs add ``bias`` (one integer per output): a negated output costs a subtractor in its
    bias adder, or, with no bias, an adder of its own (a negation), so the signs are steered
    away from the latter."""
    return polarities(graph, [
        (1 if int(b) else 4) * graph.nodes[o.node].width if o.node is not None else 0
        for o, b in zip(graph.outputs, bias)])


def biased_output(output, bias: int, shape):
    """One output of :func:`~hwnn.cores.shift_add.graph_datapath` plus its ``bias``: the
    expression ``sign·(node << shift) + bias`` (a constant of ``shape`` for an output that
    is always 0), whose negation folds into the bias adder."""
    if output is None:
        return Const(bias, shape)
    node, sign, shift = output
    term = node << shift
    return (term + bias if bias else term) if sign > 0 else Const(bias) - term
