"""Multiple-constant multiplication (MCM): one input times many constants, adders shared.

:func:`mcm` finds the adders for one input and a set of constants; :func:`build_mcm_columns`
uses one such multiplier per input column of a matrix and sums the products per output.
"""

from __future__ import annotations

from dataclasses import dataclass

from .adder_graph import AdderGraph, GraphBuilder, weight_and_ranges
from .csd import odd_part
from .scm import _astar, _factors, _partners, _scm_chain

__all__ = ["Step", "build_mcm_columns", "mcm"]


@dataclass(frozen=True)
class Step:
    """One adder of a single-input MCM: ``value = su·(u << i) + sv·(v << j)`` (odd, positive)."""
    value: int
    u: int
    su: int
    i: int
    v: int
    sv: int
    j: int
    depth: int


def _explicit(t: int, u: int, v: int):
    """Signs and shifts with ``t == su·(u << i) + sv·(v << j)`` and ``min(i, j) == 0``."""
    i = 0
    while (u << i) <= t + v or (v << i) <= t + u:
        for su, sv in ((1, 1), (1, -1), (-1, 1)):
            if su * (u << i) + sv * v == t:
                return su, i, sv, 0
            if su * u + sv * (v << i) == t:
                return su, 0, sv, i
        i += 1
    return None


class _Mcm:
    """State of one multiple-constant multiplication: the fundamentals computed so far."""

    def __init__(self, limit):
        self.limit = limit
        self.depth = {1: 0}
        self.steps = []
        # One adder away from what is computed, with the least depth that adder can have.
        self.succ = dict.fromkeys(_astar(1, 1, limit), 1)

    def best_op(self, t):
        """The shallowest way to make ``t`` with one adder from computed fundamentals."""
        best = None
        top = max(self.depth) + 1
        for u in sorted(self.depth):
            for v in _partners(t, u, top):
                if v in self.depth:
                    key = (1 + max(self.depth[u], self.depth[v]), max(u, v), u, v)
                    best = key if best is None or key < best else best
        for u, _ in _factors(t):
            if u in self.depth:
                key = (1 + self.depth[u], u, u, u)
                best = key if best is None or key < best else best
        return best

    def add(self, t):
        depth, _, u, v = self.best_op(t)
        su, i, sv, j = _explicit(t, u, v)
        self.steps.append(Step(t, u, su, i, v, sv, j, depth))
        self.depth[t] = depth
        succ = self.succ
        for r in sorted(self.depth):
            d = 1 + max(depth, self.depth[r])
            for s in _astar(t, r, self.limit):
                if s not in self.depth and succ.get(s, d + 1) > d:
                    succ[s] = d
        succ.pop(t, None)

    def successors_for(self, t):
        """Fundamentals one adder away that would put ``t`` one adder away."""
        out = set()
        for u in self.depth:
            out |= _partners(t, u, self.limit)
        out.update(u for u, _ in _factors(t))
        return out & self.succ.keys()


def mcm(constants) -> tuple:
    """The adders that multiply one input by every constant in ``constants``, shared.

    Works on the distinct odd parts of the nonzero magnitudes (signs and powers of two are
    free). An RAG-n/Hcub-class heuristic: (1) add every target one adder away from what is
    computed; (2) else add the one-adder fundamental that puts the most targets one adder away
    (ties: shallower, then smaller); (3) else add the cheapest remaining target by its best
    single-constant graph (optimal up to 3 adders, see :func:`scm_adders`), or one adder after
    such a graph of a partner of a computed fundamental. For one constant the adder count is
    optimal for every constant of up to 13 bits (checked against an independent exhaustive
    search by ``benchmarks/single_constant.py``).

    Returns the :class:`Step` list in order (each step's operands are 1 or earlier steps).

    Raises
    ------
    TypeError
        A constant is not an integer.
    """
    targets = set()
    for c in constants:
        m = abs(odd_part(c)[0])
        if m > 1:
            targets.add(m)
    if not targets:
        return ()
    state = _Mcm(1 << (max(targets).bit_length() + 1))
    pending = set(targets)
    while pending:
        ready = sorted(t for t in pending if t in state.succ)
        if ready:
            for t in ready:
                state.add(t)
                pending.discard(t)
            continue
        benefit = {}
        for t in sorted(pending):
            for s in state.successors_for(t):
                benefit[s] = benefit.get(s, 0) + 1
        if benefit:
            s = min(benefit, key=lambda s: (-benefit[s], state.succ[s], s))
            state.add(s)
            continue
        # Every target is at least three adders away: build the cheapest one outright.
        best = None
        for t in sorted(pending):
            plans = [_scm_chain(t)]
            for r in sorted(state.depth):
                for u in sorted(_partners(t, r, state.limit)):
                    if u in state.depth:
                        continue
                    plans.append(_scm_chain(u) + (t,))
            for chain in plans:
                new = tuple(f for f in chain if f not in state.depth)
                if best is None or len(new) < len(best):
                    best = new
        for f in best:
            if f not in state.depth:
                state.add(f)
            pending.discard(f)
    return tuple(state.steps)


def build_mcm_columns(weight, in_ranges) -> AdderGraph:
    """Per input column, a shared multiple-constant multiplier (:func:`mcm`); outputs sum.

    Repeated weights (and weights equal up to sign and a power of two) are computed once.
    """
    rows, ranges = weight_and_ranges(weight, in_ranges)
    n_in = len(rows[0])
    builder = GraphBuilder(n_in, ranges)
    products = []
    for i in range(n_in):
        terms = {1: builder.input(i)}
        for step in mcm(row[i] for row in rows):
            u, v = terms[step.u], terms[step.v]
            terms[step.value] = builder.add((u[0], u[1] * step.su, u[2] + step.i),
                                            (v[0], v[1] * step.sv, v[2] + step.j))
        products.append(terms)
    outputs = []
    for row in rows:
        summands = []
        for i, w in enumerate(row):
            if w:
                m, shift = odd_part(w)
                node, sign, base = products[i][abs(m)]
                summands.append((node, sign if m > 0 else -sign, base + shift))
        outputs.append(builder.sum(summands))
    return builder.finish(outputs, "columns")
