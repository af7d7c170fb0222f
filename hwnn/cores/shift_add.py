"""Shift-add datapaths: an :class:`~hwnn.plans.adder_graph.AdderGraph` as pipelined adders.

This is the multiplierless arithmetic behind ``Dense(plan, arith="csd" | "mcm")``: every node
of the graph becomes one adder/subtractor of exactly the node's width, constant shifts are
wiring, and a register stage closes every ``pipeline`` adder levels. Each adder's sum is a
signal with a ``keep`` attribute: without it yosys's ``alumacc`` merges chains of adders into
one multi-operand ``$macc`` and maps it as a LUT carry-save tree, which costs about twice the
LUT4 of one carry chain per adder on iCE40 (and turns ECP5 carry chains into LUTs).
"""

from __future__ import annotations

from amaranth.hdl import Signal, Value, signed

__all__ = ["graph_stages", "graph_datapath"]


def graph_stages(depth: int, pipeline: int) -> int:
    """Register stages inside a graph of adder ``depth`` registered every ``pipeline`` levels
    (0: none, the whole graph is combinational)."""
    if pipeline == 0 or depth == 0:
        return 0
    return -(-depth // pipeline)


def graph_datapath(m, graph, inputs, *, pipeline: int, advance, name: str = "g"):
    """Build ``graph`` on ``inputs`` (one Amaranth value per graph input).

    Nodes of adder depth ``d`` are computed in stage ``ceil(d / pipeline) - 1`` and registered
    at its end (``advance`` enables every register); a value read in a later stage than it is
    made travels through one register per stage. Returns ``(outputs, stages)``: ``outputs[j]``
    is ``(value, sign, shift)`` with output ``j`` = ``sign·(value << shift)`` and ``value`` the
    node as seen after the last of the ``stages`` register stages, or ``None`` for an output
    that is always 0. The sign is left to the caller, who can fold it into a following adder.
    """
    stages = graph_stages(graph.depth, pipeline)
    made = {}         # node -> its value in the stage that computes it
    delayed = {}      # (node, stage) -> the node's value as read in that stage

    def stage_of(node):
        depth = graph.nodes[node].depth
        return 0 if depth == 0 or pipeline == 0 else (depth - 1) // pipeline

    def read(node, stage):
        """The node's value, read in ``stage`` (registered once per stage boundary)."""
        if (node, stage) in delayed:
            return delayed[node, stage]
        home = 0 if graph.nodes[node].is_input else stage_of(node)
        if stage == home:
            value = made[node]
        else:
            previous = read(node, stage - 1)
            value = Signal(Value.cast(previous).shape(), name=f"{name}_n{node}_s{stage}")
            with m.If(advance):
                m.d.sync += value.eq(previous)
        delayed[node, stage] = value
        return value

    for node, value in enumerate(inputs):
        made[node] = Value.cast(value)
    for k in range(graph.n_in, len(graph.nodes)):
        n = graph.nodes[k]
        stage = stage_of(k)
        a, b = read(n.a, stage) << n.s, read(n.b, stage) << n.t
        if n.sa > 0 and n.sb > 0:
            total = a + b
        elif n.sb < 0:
            total = a - b
        else:
            total = b - a
        # Exactly the node's width: the true value always fits, so the wider expression that
        # Amaranth infers is cut without loss, and the adder is no wider than it must be.
        adder = Signal(signed(n.width), name=f"{name}_n{k}", attrs={"keep": 1})
        m.d.comb += adder.eq(total)
        made[k] = adder
    outputs = []
    for o in graph.outputs:
        if o.node is None:
            outputs.append(None)
            continue
        outputs.append((read(o.node, stages), o.sign, o.shift))
    return outputs, stages
