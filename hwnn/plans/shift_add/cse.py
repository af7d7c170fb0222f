"""Two-term common-subexpression elimination (CSE) across a whole constant matrix.

Hartley's method, da4ml-style: the most frequent two-term pattern over all outputs becomes one
adder, again and again. :class:`_Cse` holds the counts and, for :mod:`.cmvm`, a lookahead among
tied patterns and a choice among minimal signed-digit forms; :func:`build_cse` is the plain run.
"""

from __future__ import annotations

import functools
import heapq
from collections import Counter

from .adder_graph import AdderGraph, GraphBuilder, weight_and_ranges
from .csd import csd

__all__ = ["build_cse"]

#: Lookahead: at most this many tied patterns weighed per step ...
_LOOKAHEAD_WIDTH = 1024
#: ... and at most this many per unit of budget per initial pair (so the budget lasts a run).
_LOOKAHEAD_PER_PAIR = 1


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
        :data:`.cmvm._BUDGET`), the patterns tied at the top count are weighed by :meth:`_gain` and
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
    """``(graph, work)``: the CSE graph of ``rows`` and the work spent (see
    :data:`.cmvm._BUDGET`)."""
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
    rows, ranges = weight_and_ranges(weight, in_ranges)
    return _cse_graph(rows, ranges, "cse")[0]
