"""The strongest builder: CSE with lookahead, on minimal signed digits, both ways round.

:func:`transpose` turns a graph of ``W·x`` into one of ``Wᵀ·u``; :func:`build_cmvm` runs the
CSE of :mod:`.cse` with a lookahead on ``W`` and on ``Wᵀ``, from CSD and from minimal
signed-digit forms, within a work budget, and keeps the fewest adders.
"""

from __future__ import annotations

from .adder_graph import AdderGraph, GraphBuilder, as_ranges, weight_and_ranges
from .csd import csd
from .cse import _cse_graph

__all__ = ["build_cmvm", "transpose"]


def transpose(graph: AdderGraph, in_ranges) -> AdderGraph:
    """The transposed graph: computes ``Wᵀ·u`` from a graph of ``W·x`` (``in_ranges`` of ``u``).

    Transposition of the signal-flow graph: every edge is reversed, so a value read by ``f``
    users becomes a sum of ``f`` terms (``f − 1`` adders, a balanced tree) and every adder
    becomes a free fan-out. A graph with ``A`` adders, ``n_in`` inputs and ``n_out`` outputs
    (all used) gives one with ``A + n_out − n_in`` adders (or fewer, where the sums meet
    equal ones). CSE on ``Wᵀ`` is another way to share the rectangles of ``W``: pairs of
    outputs over many inputs instead of pairs of inputs over many outputs.
    """
    ranges = as_ranges(in_ranges, graph.n_out)
    builder = GraphBuilder(graph.n_out, ranges)
    uses = [[] for _ in graph.nodes]
    for j, o in enumerate(graph.outputs):
        if o.node is not None:
            uses[o.node].append((j, o.sign, o.shift))
    for k in range(len(graph.nodes) - 1, graph.n_in - 1, -1):
        n = graph.nodes[k]
        total = builder.sum(uses[k])
        if total is None:
            continue
        node, sign, shift = total
        uses[n.a].append((node, sign * n.sa, shift + n.s))
        uses[n.b].append((node, sign * n.sb, shift + n.t))
    outputs = [builder.sum(uses[i]) for i in range(graph.n_in)]
    return builder.finish(outputs, graph.method)


#: Work budget of :func:`build_cmvm`, in units of a term visited by the lookahead (about
#: 0.3 µs). A plain CSE run costs about :data:`_PAIR_COST` units per pair of terms of an output,
#: three times that with minimal signed digits. The budget bounds the time on large matrices:
#: a 64×64 int8 matrix (two million pairs) gets the plain CSE only.
_BUDGET = 10_000_000
_PAIR_COST = 4


def _cost_of(rows) -> int:
    """The work units of a plain CSE run on ``rows``, about: its initial pairs of terms."""
    total = 0
    for row in rows:
        digits = sum(len(csd(w)) for w in row)
        total += digits * digits
    return _PAIR_COST * total


def build_cmvm(weight, in_ranges) -> AdderGraph:
    """The strongest builder: CSE with lookahead, on minimal signed digits, both ways round.

    Candidates, the fewest adders kept (ties: least depth, then fewest adder bits, then this
    order):

    - the plain CSE of :func:`build_cse` (so this builder never does worse; its graph keeps the
      method name ``"cse"``, the others are ``"cmvm"``);
    - CSE with a one-step lookahead: among the patterns tied at the top count, the one whose
      substitution destroys the fewest savings of the other patterns (and makes the most new
      ones) is taken. Four runs: on ``W`` and on ``Wᵀ`` (the latter turned back by
      :func:`transpose`; the two orientations share different rectangles of the matrix, and
      for a wide matrix, few outputs of many inputs, the transposed one is much better), each
      from the CSD digits and from minimal signed-digit forms picked to raise the pattern
      counts.

    The lookahead runs share a work budget (:data:`_BUDGET`): the cheapest run first, each
    taking its share; a run whose plain cost exceeds what is left is skipped. So small
    matrices get every run at full strength, large ones fewer. Deterministic (the budget counts
    work, not time); a 64×64 int8 matrix takes a few seconds.
    """
    rows, ranges = weight_and_ranges(weight, in_ranges)
    graphs = [_cse_graph(rows, ranges, "cse")[0]]
    columns = tuple(zip(*rows))
    cost = {False: _cost_of(rows), True: _cost_of(columns)}
    runs = []
    left = _BUDGET - cost[False]
    for plain, transposed, msd in sorted((cost[t] * (3 if m else 1), t, m)
                                         for t in (False, True) for m in (False, True)):
        if plain <= left:
            runs.append((transposed, msd))
            left -= plain
    for k, (transposed, msd) in enumerate(runs):
        share = left // (len(runs) - k)
        if transposed:
            flipped, work = _cse_graph(columns, ((-1, 1),) * len(rows), "cmvm", msd, share)
            graphs.append(transpose(flipped, ranges))
        else:
            graph, work = _cse_graph(rows, ranges, "cmvm", msd, share)
            graphs.append(graph)
        left -= work
    return min(graphs, key=lambda g: (g.adders, g.depth, g.adder_bits))
