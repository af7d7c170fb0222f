"""Single-constant multiplication: short (mostly optimal) adder graphs of one constant.

Conventions of the single-constant literature used here: a *fundamental* is a positive odd
multiple ``f·x`` of one input; the A-operation ``A(u, v) = |±(u << i) ± (v << j)|`` makes one
from two others with one adder. Unlike the textbook A-operation, no right shift of a sum is
used (every adder node is exactly ``sa·(a << s) + sb·(b << t)``); for all constants up to
13 bits this costs nothing: the optimal adder counts with and without right shifts are the same.

The exhaustive table of :func:`_scm_table` gives optimal graphs of every constant that needs
at most 3 adders; :func:`_scm_chain` extends it to any constant. :mod:`.mcm` builds on both.
"""

from __future__ import annotations

import functools

from .csd import csd, odd_part

__all__ = ["scm_adders"]

#: The smallest table of optimal single-constant graphs: every fundamental below 2**13, which
#: covers every constant of up to 12 bits.
_TABLE_BITS = 13
#: The largest table (about 18000 constants, a quarter of a second to build): beyond 19-bit
#: constants only the table's pieces and CSD are used.
_MAX_TABLE_BITS = 20


def _astar(u: int, v: int, limit: int) -> set:
    """Odd fundamentals below ``limit`` that one adder makes from ``u`` and ``v`` (no right
    shift)."""
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
