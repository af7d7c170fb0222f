"""Builders of shift-add graphs for constant matrix-vector products (pure Python, no Amaranth).

Each builder takes an integer matrix ``weight`` (``n_out × n_in``) and the input ranges and
returns an exact :class:`~hwnn.plans.adder_graph.AdderGraph` of ``y = weight @ x``:

:func:`build_csd`
    No sharing: every output sums the canonical-signed-digit terms of its weights.
:func:`build_mcm_columns`
    Per input, one multiple-constant multiplier (MCM) shares the products of that input by all
    the distinct odd weight magnitudes of its column; outputs sum them. Single constants up to
    13 bits get an optimal adder count (see :func:`mcm`).
:func:`build_cse`
    Common subexpressions across the whole matrix, da4ml-style: the most frequent two-term
    pattern becomes one adder, again and again (Hartley's method).
:func:`build_cmvm`
    The same with a lookahead among tied patterns, from minimal signed digits as well as CSD,
    on the matrix and on its transpose (:func:`transpose`): the fewest adders of these runs.
:func:`build`
    One of the above by name, or ``"best"``: the fewest adders of all.

In every builder the final sums are balanced trees (least depth), and every graph passes
:meth:`~hwnn.plans.adder_graph.AdderGraph.verify`. Everything is deterministic.

Conventions of the single-constant literature used here: a *fundamental* is a positive odd
multiple ``f·x`` of one input; the A-operation ``A(u, v) = |±(u << i) ± (v << j)|`` makes one
from two others with one adder. Unlike the textbook A-operation, no right shift of a sum is
used (every adder node is exactly ``sa·(a << s) + sb·(b << t)``); for all constants up to
13 bits this costs nothing: the optimal adder counts with and without right shifts are the same.
"""

from __future__ import annotations

import functools
import heapq
from collections import Counter
from dataclasses import dataclass

from .adder_graph import AdderGraph, GraphBuilder, as_ranges, as_weight
from .csd import csd, odd_part

__all__ = ["METHODS", "Step", "build", "build_cmvm", "build_csd", "build_cse", "build_mcm_columns",
           "mcm", "scm_adders", "transpose"]

METHODS = ("csd", "columns", "cse", "cmvm", "best")

#: The smallest table of optimal single-constant graphs: every fundamental below 2**13, which
#: covers every constant of up to 12 bits.
_TABLE_BITS = 13
#: The largest table (about 18000 constants, a quarter of a second to build): beyond 19-bit
#: constants only the table's pieces and CSD are used.
_MAX_TABLE_BITS = 20


def _inputs(weight, in_ranges):
    rows = as_weight(weight)
    return rows, as_ranges(in_ranges, len(rows[0]))


# --- Single-input multiple-constant multiplication -------------------------------------------

def _astar(u: int, v: int, limit: int) -> set:
    """Odd fundamentals below ``limit`` that one adder makes from ``u`` and ``v`` (no right shift)."""
    out = set()
    i = 1
    while True:
        ui, vi = u << i, v << i
        if ui - v >= limit and vi - u >= limit:
            return out
        for w in (ui + v, ui - v, v - ui, u + vi, u - vi, vi - u):
            if 0 < w < limit:
                out.add(w)
        i += 1


def _partners(t: int, u: int, limit: int):
    """Every ``v`` below ``limit`` for which one adder makes ``t`` from ``u`` and ``v``.

    ``t = ±(u << i) ± v`` gives ``v = |t − (u << i)|`` or ``t + (u << i)``; ``t = ±u ± (v << i)``
    gives ``v`` = the odd part of ``t − u``, ``u − t`` or ``t + u``.
    """
    out = set()
    i = 1
    while True:
        ui = u << i
        if ui - t >= limit:
            break
        for w in (t - ui, ui - t, t + ui):
            if 0 < w < limit:
                out.add(w)
        i += 1
    for w in (t - u, u - t, t + u):
        if w > 0:
            w >>= (w & -w).bit_length() - 1
            if w < limit:
                out.add(w)
    return out


def _factors(t: int):
    """``(u, m)`` with ``t == u·m``, ``m = 2**i ± 1 > 1``: ``t`` is one adder from ``u``."""
    i = 1
    while (1 << i) - 1 <= t:
        for m in ((1 << i) - 1, (1 << i) + 1):
            if m > 1 and t % m == 0:
                yield t // m, m
        i += 1


@functools.lru_cache(maxsize=8)
def _scm_table(bits: int) -> dict:
    """Optimal graphs of every odd constant below ``2**bits`` that needs at most 3 adders.

    Maps the constant to the tuple of fundamentals its graph computes, in order, itself last
    (``()`` for 1). Exhaustive over all graphs of up to 3 adders whose fundamentals stay below
    ``2**bits``; among the optimal ones it keeps the least adder depth, then the smallest
    largest fundamental. A few hundredths of a second for ``bits = 13``.
    """
    limit = 1 << bits
    best = {1: ((0, 0), ())}          # constant -> ((depth, largest fundamental), chain)

    def offer(value, depth, chain):
        key = (len(chain), depth, max(chain))
        old = best.get(value)
        if old is None or key < (len(old[1]), *old[0]):
            best[value] = ((depth, max(chain)), chain)

    level1 = sorted(_astar(1, 1, limit))
    for f1 in level1:
        offer(f1, 1, (f1,))
    level2 = []
    for f1 in level1:
        seconds = {}
        for f2 in level1:                   # two independent one-adder fundamentals
            seconds[f2] = 1
        for f2 in _astar(1, f1, limit) | _astar(f1, f1, limit):
            seconds.setdefault(f2, 2)
        for f2 in sorted(seconds):
            if f2 not in (1, f1):
                offer(f2, seconds[f2], (f1, f2))
                level2.append((f1, f2, seconds[f2]))
    for f1, f2, d2 in level2:
        for r, dr in ((1, 0), (f1, 1), (f2, d2)):
            depth = 1 + max(d2, dr)
            for f3 in _astar(f2, r, limit):
                if f3 not in (1, f1, f2):
                    offer(f3, depth, (f1, f2, f3))
    return {value: chain for value, (_, chain) in best.items()}


def _table_bits(t: int) -> int:
    return min(max(_TABLE_BITS, t.bit_length() + 1), _MAX_TABLE_BITS)


def _csd_chain(t: int) -> tuple:
    """The fundamentals of ``t``'s CSD: partial sums from the least significant digit up."""
    chain = []
    partial = 0
    for sign, shift in csd(t):
        partial += sign << shift
        if abs(partial) > 1:
            chain.append(abs(partial))
    return tuple(chain)


@functools.lru_cache(maxsize=1 << 16)
def _scm_chain(t: int) -> tuple:
    """A short graph (fundamentals in order, ``t`` last) for one odd constant ``t > 0``.

    Optimal from the table when ``t`` needs at most 3 adders. Otherwise the best of: one adder
    after an optimal graph (``t = A(u, 1)`` or ``t = u·(2**i ± 1)``), two graphs combined
    (``t = A(u, v)``, or the product ``u·v``), and the CSD graph. Every odd constant of up to 12
    bits that needs 4 adders gets 4 this way (``t = A(u, 1)`` alone finds them all).
    """
    bits = _table_bits(t)
    table = _scm_table(bits)
    if t in table:
        return table[t]
    limit = 1 << bits
    best = _csd_chain(t)

    def consider(chain):
        nonlocal best
        if len(chain) < len(best):
            best = chain

    for u in sorted(_partners(t, 1, limit)):
        if u in table:
            consider(table[u] + (t,))
    for u, m in _factors(t):
        if u in table:
            consider(table[u] + (t,))
    if len(best) <= 4 or t >= limit:
        return best
    cheap = sorted(f for f, chain in table.items() if 1 <= len(chain) <= 2)
    for v in cheap:
        for u in sorted(_partners(t, v, limit)):
            if u in table:
                chain = table[v] + tuple(f for f in table[u] if f not in table[v])
                consider(chain + (t,))
        if t % v == 0 and t // v in table:
            u = t // v
            consider(table[u] + tuple(u * f for f in table[v]))
    return best


def scm_adders(c) -> int:
    """Adders of the single-constant multiplier hwnn builds for the integer ``c`` (0 for 0).

    Averaged over every constant ``1 … 2**b − 1`` (the literature's population, where CSD
    averages 2.12 at 8 bits and 3.45 at 12), this is 2.00 at 8 bits and 2.90 at 12: optimal.
    """
    c = odd_part(c)[0]
    return len(_scm_chain(abs(c))) if c else 0


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


# --- Builders ----------------------------------------------------------------------------------

def build_csd(weight, in_ranges) -> AdderGraph:
    """No sharing: output ``j`` sums ``±(x_i << k)`` over the CSD digits of its weights.

    At most (nonzero digits of the row − 1) adders per output, as a balanced tree; zero
    weights cost nothing. The textbook baseline: no subexpression is searched for, and a
    partial sum that another tree reaches by other operands is built again; only an adder
    identical to an earlier one (same operands and shifts) is not, as synthesis would merge
    the two anyway.
    """
    rows, ranges = _inputs(weight, in_ranges)
    builder = GraphBuilder(len(rows[0]), ranges, share=False)
    outputs = []
    for row in rows:
        terms = [(i, sign, shift) for i, w in enumerate(row) for sign, shift in csd(w)]
        outputs.append(builder.sum(terms))
    return builder.finish(outputs, "csd")


def build_mcm_columns(weight, in_ranges) -> AdderGraph:
    """Per input column, a shared multiple-constant multiplier (:func:`mcm`); outputs sum.

    Repeated weights (and weights equal up to sign and a power of two) are computed once.
    """
    rows, ranges = _inputs(weight, in_ranges)
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


@functools.lru_cache(maxsize=1 << 14)
def _msd_forms(n: int) -> tuple:
    """The minimal signed-digit forms of ``n`` (CSD first), at most ``_MSD_FORMS`` of them.

    Each form is a tuple of ``(sign, shift)`` pairs, ascending shift, with as few nonzero
    digits as the CSD. Numbers with a run of ones (``…0110…``) have several: ``3 = 4 − 1 = 2 + 1``,
    and a form other than the CSD may share a digit pair with other weights where the CSD does
    not. Only constants of up to ``_MSD_BITS`` bits get alternatives.
    """
    digits = csd(n)
    if abs(n).bit_length() > _MSD_BITS:
        return (digits,)
    forms = []

    def walk(m, shift, acc, left):
        # ``left`` digits remain for ``m``: no minimal form needs more than its CSD weight.
        if len(forms) >= _MSD_FORMS:
            return
        if m == 0:
            forms.append(tuple(acc))
            return
        if left == 0:
            return
        while not m & 1:
            m >>= 1
            shift += 1
        for d in (1, -1):
            rest = (m - d) >> 1
            if len(csd(rest)) <= left - 1:
                walk(rest, shift + 1, acc + [(d, shift)], left - 1)

    walk(n, 0, [], len(digits))
    if digits not in forms:
        forms[-1] = digits
    forms.sort(key=lambda f: (f != digits, f))
    return tuple(forms)


#: Weights of more bits keep their CSD digits (their minimal forms can be very many).
_MSD_BITS = 24
#: At most this many minimal forms are weighed per weight.
_MSD_FORMS = 16


def _keys_with(flat, node, shift, sign) -> list:
    """The patterns the term ``sign·(node << shift)`` forms with the terms ``flat`` (other than
    itself): ``flat`` maps ``(node, shift)`` to sign."""
    if sign > 0:
        return [(n, node, shift - s, g) if n < node or (n == node and s < shift)
                else (node, n, s - shift, g)
                for (n, s), g in flat.items() if n != node or s != shift]
    return [(n, node, shift - s, -g) if n < node or (n == node and s < shift)
            else (node, n, s - shift, -g)
            for (n, s), g in flat.items() if n != node or s != shift]


class _Cse:
    """Two-term common-subexpression elimination over all outputs (Hartley's method).

    Each output holds terms ``sign·(node << shift)``, at most one per ``(node, shift)``. A
    pattern is a pair of terms of one output up to a common shift and sign:
    ``(n1, n2, d, rel)`` stands for ``(n1) + rel·(n2 << d)`` with ``(n1, 0) < (n2, d)`` (any
    ``d`` if ``n1 != n2``, ``d > 0`` if equal; negative ``d`` shifts ``n1`` instead).
    A pattern's count is the number of pairs of terms that form it, over all outputs, kept up
    to date as terms come and go (``made − lost``: two counters updated in bulk), so each step
    costs a pass over the affected outputs only.

    With ``msd``, each weight's digits are first chosen among its minimal signed-digit forms
    (:func:`_msd_forms`) to raise the counts of the patterns it forms.
    """

    def __init__(self, builder, rows, msd: bool = False):
        self.builder = builder
        self.terms = [dict() for _ in rows]          # output -> node -> {shift: sign}
        self.flat = [dict() for _ in rows]           # output -> (node, shift) -> sign
        self.where = {}                               # node -> outputs holding it
        self.made = Counter()                         # pattern -> pairs made
        self.lost = Counter()                         # pattern -> pairs lost
        self.grown = set()                            # patterns whose count grew this step
        self.step = 0                                 # substitutions so far
        self.touched = [0] * len(rows)                # output -> step of its last change
        self.cache = {}                               # pattern -> (step, gain)
        self.work = 0                                 # lookahead work spent
        self.multi = set()                            # patterns that reached count 2 (run)
        for j, row in enumerate(rows):
            flat = self.flat[j]
            for i, w in enumerate(row):
                for sign, shift in csd(w):
                    self.terms[j].setdefault(i, {})[shift] = sign
                    self.where.setdefault(i, set()).add(j)
                    self.made.update(_keys_with(flat, i, shift, sign))
                    flat[(i, shift)] = sign
        if msd:
            self._choose_forms(rows)

    def counts(self):
        """``(pattern, count)`` for every pattern that may occur twice."""
        lost = self.lost.get
        for key, made in self.made.items():
            c = made - lost(key, 0)
            if c >= 2:
                yield key, c

    def _choose_forms(self, rows, passes: int = 3):
        """Re-pick every weight's digits among its minimal forms, most shared pairs first.

        A form scores the summed counts of the patterns its digits would form with the rest of
        the output (and among themselves); the current form wins ties.
        """
        made, lost = self.made.get, self.lost.get
        for _ in range(passes):
            changed = False
            for j, row in enumerate(rows):
                for i, w in enumerate(row):
                    forms = _msd_forms(w) if w else ()
                    if len(forms) < 2:
                        continue
                    shifts = self.terms[j][i]
                    current = tuple((shifts[s], s) for s in sorted(shifts))
                    for s in sorted(shifts):
                        self.remove(j, i, s)
                    flat = self.flat[j]
                    digit = {}
                    for form in forms:
                        for d in form:
                            if d not in digit:
                                digit[d] = sum(made(k, 0) - lost(k, 0)
                                               for k in _keys_with(flat, i, d[1], d[0]))
                    best = best_score = None
                    for form in forms:
                        score = sum(digit[d] for d in form)
                        for k, (g1, s1) in enumerate(form):
                            for g2, s2 in form[k + 1:]:
                                key = (i, i, s2 - s1, g1 * g2)
                                score += made(key, 0) - lost(key, 0)
                        if best_score is None or score > best_score or (
                                score == best_score and form == current):
                            best, best_score = form, score
                    changed |= best != current
                    for g, s in best:
                        self.insert(j, i, s, g)
            if not changed:
                break

    def remove(self, j, node, shift):
        flat = self.flat[j]
        sign = flat.pop((node, shift))
        shifts = self.terms[j][node]
        del shifts[shift]
        if not shifts:
            del self.terms[j][node]
            self.where[node].discard(j)
        self.lost.update(_keys_with(flat, node, shift, sign))
        self.touched[j] = self.step
        return sign

    def insert(self, j, node, shift, sign):
        shifts = self.terms[j].get(node)
        if shifts is not None and shift in shifts:
            # Cannot happen for CSD-derived terms (their digits never repeat), kept exact anyway.
            old = self.remove(j, node, shift)
            if old == sign:
                self.insert(j, node, shift + 1, sign)
            return
        flat = self.flat[j]
        keys = _keys_with(flat, node, shift, sign)
        self.made.update(keys)
        self.grown.update(keys)
        flat[(node, shift)] = sign
        self.terms[j].setdefault(node, {})[shift] = sign
        self.where.setdefault(node, set()).add(j)
        self.touched[j] = self.step

    def occurrences(self, j, key):
        """Non-overlapping occurrences ``(shift of n1, sign of n1)`` of pattern ``key`` in ``j``."""
        n1, n2, d, rel = key
        first = self.terms[j].get(n1, {})
        second = self.terms[j].get(n2, {})
        used = set()
        found = []
        for s in sorted(first):
            g = first[s]
            if s in used or second.get(s + d) != g * rel or (n1 == n2 and s + d in used):
                continue
            found.append((s, g))
            used.update((s, s + d))
        return found

    def _entry(self, key, count, raw=None):
        """A heap entry: most frequent first, then the shallowest new node, then the narrowest."""
        depth = self.builder.depth
        return (-count, 1 + max(depth(key[0]), depth(key[1])), abs(key[2]), key,
                count if raw is None else raw)

    def _valid(self, entry, heap) -> bool:
        """Whether a popped heap entry holds its pattern's current count; re-files it if not."""
        key, raw = entry[3], entry[4]
        current = self.made.get(key, 0) - self.lost.get(key, 0)
        if current != raw:
            # Stale: the count changed since this entry was pushed. Growth pushes a fresh
            # entry itself; after a drop, this is where the pattern gets its new place.
            if 2 <= current < raw:
                heapq.heappush(heap, self._entry(key, current))
            return False
        if key[0] == key[1] and -entry[0] == raw:
            # Pairs of one node can chain (s, s+d, s+2d): count non-overlapping ones.
            true = sum(len(self.occurrences(j, key)) for j in sorted(self.where[key[0]]))
            if true < raw:
                if true >= 2:
                    heapq.heappush(heap, self._entry(key, true, raw))
                return False
        return True

    def _gain(self, key) -> int:
        """What substituting ``key`` does to the other patterns' savings (the lookahead).

        A pattern of count ``c`` can still save ``c − 1`` adders. Substituting ``key`` removes
        its terms, so the patterns they form with the rest of their outputs lose counts, and
        adds the new node's terms, whose patterns with the rest (over all occurrences) are new.
        Returns the change of the summed savings of all other patterns. Cached until one of the
        outputs holding ``key`` changes (the counts elsewhere may have moved meanwhile: a
        heuristic either way).
        """
        n1, n2, d, rel = key
        outs = sorted(self.where.get(n1, set()) & self.where.get(n2, set()))
        old = self.cache.get(key)
        if old is not None and all(self.touched[j] < old[0] for j in outs):
            return old[1]
        lost = Counter()
        new = Counter()
        for j in outs:
            found = self.occurrences(j, key)
            if not found:
                continue
            kept = dict(self.flat[j])
            self.work += len(kept) * (1 + 3 * len(found))
            dropped = []
            for s, g in found:
                del kept[(n1, s)]
                del kept[(n2, s + d)]
                dropped.append((n1, s, g))
                dropped.append((n2, s + d, g * rel))
            for n, s, g in dropped:
                lost.update(_keys_with(kept, n, s, g))
            for s, g in found:
                base = min(s, s + d)
                new.update([(m, t - base, g * h) for (m, t), h in kept.items()])
        # New patterns of the new node: every count c >= 1 adds c - 1.
        gain = sum(new.values()) - len(new)
        made, gone = self.made.get, self.lost.get
        for k in lost.keys() & self.multi:
            now = made(k, 0) - gone(k, 0)
            if now >= 2:
                gain -= min(lost[k], now - 1)
        self.cache[key] = (self.step, gain)
        return gain

    def run(self, budget: int = 0):
        """Substitute the most frequent pattern until none occurs twice.

        With a lookahead ``budget`` (work units: terms visited by :meth:`_gain`, see
        :data:`_BUDGET`), the patterns tied at the top count are weighed by :meth:`_gain` and
        the one that leaves the most savings for later is taken (ties: the usual order). At
        most ``_LOOKAHEAD_PER_PAIR · budget / pairs`` are weighed per step, ``pairs`` being the
        initial pair count (so the budget lasts the run, roughly); when it is spent, the rest
        is plain.
        """
        pairs = sum(len(flat) ** 2 for flat in self.flat) or 1
        width = min(_LOOKAHEAD_WIDTH, _LOOKAHEAD_PER_PAIR * budget // pairs)
        heap = [self._entry(k, c) for k, c in self.counts()]
        heapq.heapify(heap)
        self.multi = {entry[3] for entry in heap}
        while heap:
            entry = heapq.heappop(heap)
            if not self._valid(entry, heap):
                continue
            if width > 1 and self.work < budget:
                tied = [entry]
                while heap and heap[0][0] == entry[0] and len(tied) < width:
                    other = heapq.heappop(heap)
                    if self._valid(other, heap):
                        tied.append(other)
                if len(tied) > 1:
                    best = max(range(len(tied)), key=lambda k: (self._gain(tied[k][3]), -k))
                    entry = tied[best]
                    for k, other in enumerate(tied):
                        if k != best:
                            heapq.heappush(heap, other)
            key = entry[3]
            self.step += 1
            self.grown = {key}
            self.substitute(key)
            made, lost, multi = self.made.get, self.lost.get, self.multi
            for k in self.grown:        # (the pop order does not depend on the push order)
                c = made(k, 0) - lost(k, 0)
                if c >= 2:
                    heapq.heappush(heap, self._entry(k, c))
                    multi.add(k)

    def substitute(self, key):
        n1, n2, d, rel = key
        pattern = None
        for j in sorted(self.where.get(n1, set()) & self.where.get(n2, set())):
            for s, g in self.occurrences(j, key):
                if pattern is None:
                    pattern = self.builder.add((n1, 1, max(0, -d)), (n2, rel, max(0, d)))
                self.remove(j, n1, s)
                self.remove(j, n2, s + d)
                if pattern is not None:
                    node, sign, shift = pattern
                    self.insert(j, node, shift + min(s, s + d), sign * g)

    def outputs(self):
        out = []
        for terms in self.terms:
            flat = [(n, g, s) for n in sorted(terms) for s, g in sorted(terms[n].items())]
            out.append(self.builder.sum(flat))
        return out


def _cse_graph(rows, ranges, method, msd=False, budget=0):
    """``(graph, work)``: the CSE graph of ``rows`` and the work spent (see :data:`_BUDGET`)."""
    builder = GraphBuilder(len(rows[0]), ranges)
    cse = _Cse(builder, rows, msd=msd)
    cse.run(budget)
    return builder.finish(cse.outputs(), method), cse.work


def build_cse(weight, in_ranges) -> AdderGraph:
    """Sharing across the whole matrix by two-term common-subexpression elimination.

    Starts from the CSD terms of every output; repeatedly makes one adder of the most frequent
    two-term pattern ``(x_a << s) ± (x_b << t)`` (up to a common shift and sign; counted over
    all outputs, non-overlapping within one; ties to the shallower new node, then to the
    smaller shift between its operands (a narrower adder), then to the smallest pattern) and
    substitutes it, until no pattern occurs twice; then sums each output by a balanced tree.
    Patterns may combine earlier patterns, so sums of any size are shared. Counts are updated
    incrementally (a 64×64 int8 matrix takes a few seconds).
    """
    rows, ranges = _inputs(weight, in_ranges)
    return _cse_graph(rows, ranges, "cse")[0]


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
#: Lookahead: at most this many tied patterns weighed per step ...
_LOOKAHEAD_WIDTH = 1024
#: ... and at most this many per unit of budget per initial pair (so the budget lasts a run).
_LOOKAHEAD_PER_PAIR = 1


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
    rows, ranges = _inputs(weight, in_ranges)
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


_BUILDERS = {"csd": build_csd, "columns": build_mcm_columns, "cse": build_cse,
             "cmvm": build_cmvm}


def build(weight, in_ranges, method: str = "best") -> AdderGraph:
    """Build the shift-add graph of ``weight @ x`` with ``method``.

    ``"csd"``, ``"columns"``, ``"cse"``, ``"cmvm"`` name a builder; ``"best"`` keeps the fewest
    adders of them all (ties: the fewest adder bits, then that order). :func:`build_cmvm`
    includes the graph of :func:`build_cse`, so ``"best"`` runs the other three.

    Raises
    ------
    TypeError
        ``weight`` is not an integer matrix, ``in_ranges`` is malformed, or ``method`` is not a
        string.
    ValueError
        An unknown method, an empty or non-2-D ``weight``, wrong number of ranges, ``lo > hi``.
    """
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, not {method!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {' | '.join(METHODS)}, not {method!r}")
    rows, ranges = _inputs(weight, in_ranges)
    if method != "best":
        return _BUILDERS[method](rows, ranges)
    graphs = [f(rows, ranges) for f in (build_csd, build_mcm_columns, build_cmvm)]
    return min(graphs, key=lambda g: (g.adders, g.adder_bits))
