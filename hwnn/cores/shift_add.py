"""Shift-add datapaths: an :class:`~hwnn.plans.shift_add.AdderGraph` as pipelined adders.

This is the multiplierless arithmetic behind ``Dense(plan, arith="csd" | "mcm")``: every node
of the graph becomes one adder/subtractor of exactly the node's width, constant shifts are
wiring, and a register stage closes every ``pipeline`` adder levels. Each adder's sum is a
signal with a ``keep`` attribute: without it yosys's ``alumacc`` merges chains of adders into
one multi-operand ``$macc`` and maps it as a LUT carry-save tree, which costs about twice the
LUT4 of one carry chain per adder on iCE40 (and turns ECP5 carry chains into LUTs).

Each node may be built negated (:func:`polarities`): an iCE40 carry cell cannot invert its
operand, so a subtractor costs a LUT per bit more than an adder, and a negated output costs an
adder of its own. Choosing which nodes to hold negated turns subtractors into adders (about
30 % fewer subtracted bits on the benchmark's matrices).
"""

from __future__ import annotations

import math

from amaranth.hdl import Signal, Value, signed

from ..fixed import signed_bits_for

__all__ = ["graph_stages", "graph_datapath", "polarities"]


def graph_stages(depth: int, pipeline: int) -> int:
    """Register stages inside a graph of adder ``depth`` registered every ``pipeline`` levels
    (0: none, the whole graph is combinational)."""
    if pipeline == 0 or depth == 0:
        return 0
    return -(-depth // pipeline)


def polarities(graph, negative_outputs_cost=None) -> list:
    """The sign (+1 or -1) each node is built with, chosen to subtract as few bits as possible.

    Node ``k`` holds ``p[k]·value[k]``; an adder then combines its operands with the signs
    ``p[k]·sa·p[a]`` and ``p[k]·sb·p[b]``. Both positive is an adder; one negative a
    subtractor, which costs the subtrahend's width in inverters on iCE40; both negative would
    need a second adder and is never chosen. An output that reads its node with a negative
    overall sign costs the node's width (``negative_outputs_cost`` overrides that per output,
    e.g. 0 where a following adder can subtract for free). Inputs are +1. A deterministic local search flips single nodes
    while the total cost falls, starting from all +1 (the graph's own orientation, which never
    has two negative operands).
    """
    nodes = graph.nodes
    n_in = graph.n_in
    p = [1] * len(nodes)
    fanout = graph.fanout()
    users = [f.nodes for f in fanout]      # adder nodes reading node k
    readers = [f.outputs for f in fanout]  # outputs reading node k

    def adder_cost(k):
        n = nodes[k]
        first, second = p[k] * n.sa * p[n.a], p[k] * n.sb * p[n.b]
        if first > 0 and second > 0:
            return 0
        if first < 0 and second < 0:
            return math.inf
        return nodes[n.a if first < 0 else n.b].width

    def output_cost(j):
        o = graph.outputs[j]
        if o.sign * p[o.node] > 0:
            return 0
        if negative_outputs_cost is not None:
            return negative_outputs_cost[j]
        return nodes[o.node].width

    def cost_around(group):
        """The cost of every adder and output whose signs depend on a node of ``group``."""
        adders = set(group) | {u for k in group for u in users[k]}
        outputs = {j for k in group for j in readers[k]}
        return sum(map(adder_cost, adders)) + sum(map(output_cost, outputs))

    def try_flip(group):
        before = cost_around(group)
        for k in group:
            p[k] = -p[k]
        if cost_around(group) < before:
            return True
        for k in group:
            p[k] = -p[k]
        return False

    # Single flips, then a node with one of its adder operands: an adder a + b whose value
    # is wanted negated can only turn into (-a) - b... by also flipping an operand.
    for _ in range(64):
        improved = False
        for k in range(n_in, len(nodes)):
            if try_flip((k,)):
                improved = True
                continue
            for operand in (nodes[k].a, nodes[k].b):
                if operand >= n_in and try_flip((k, operand)):
                    improved = True
                    break
        if not improved:
            break
    return p


def graph_datapath(m, graph, inputs, *, pipeline: int, advance, name: str = "g",
                   polarity=None):
    """Build ``graph`` on ``inputs`` (one Amaranth value per graph input).

    Nodes of adder depth ``d`` are computed in stage ``ceil(d / pipeline) - 1`` and registered
    at its end (``advance`` enables every register); a value read in a later stage than it is
    made travels through one register per stage. Returns ``(outputs, stages)``: ``outputs[j]``
    is ``(value, sign, shift)`` with output ``j`` = ``sign·(value << shift)`` and ``value`` the
    node as seen after the last of the ``stages`` register stages, or ``None`` for an output
    that is always 0. The sign is left to the caller, who can fold it into a following adder.
    Nodes are built with the signs ``polarity`` (default :func:`polarities`), which the
    returned output signs include.
    """
    p = polarities(graph) if polarity is None else polarity
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
        first, second = p[k] * n.sa * p[n.a], p[k] * n.sb * p[n.b]
        if first > 0 and second > 0:
            total = a + b
        elif first > 0:
            total = a - b
        else:
            assert second > 0, "polarities() never makes both operands negative"
            total = b - a
        # Exactly the node's width: the true value always fits, so the wider expression that
        # Amaranth infers is cut without loss, and the adder is no wider than it must be.
        lo, hi = (n.lo, n.hi) if p[k] > 0 else (-n.hi, -n.lo)
        adder = Signal(signed(signed_bits_for(lo, hi)), name=f"{name}_n{k}", attrs={"keep": 1})
        m.d.comb += adder.eq(total)
        made[k] = adder
    outputs = []
    for o in graph.outputs:
        if o.node is None:
            outputs.append(None)
            continue
        outputs.append((read(o.node, stages), o.sign * p[o.node], o.shift))
    return outputs, stages
