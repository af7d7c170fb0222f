"""Popcount trees for LUT4 fabrics with carry chains: which adders and counters, at which level.

A plan is a netlist of *wires* (single bits) and *operations* on them. Wires ``0 … n−1`` are the
input bits; every operation creates new wires. Three operations exist:

* ``"adder"``: one carry chain ``A + B + cin`` of two little-endian rows (wire ids, or None for
  a constant 0 bit) and an optional carry-in wire, giving ``len(out)`` sum bits, one per cell.
  On iCE40 each cell is one logic cell (LUT4 + SB_CARRY); on ECP5 two share a CCU2C. A chain
  holds the adders of one tree level side by side, at most ``chain`` cells (see
  :func:`_pack`: a cell whose two operands are the same wire ``d`` hands the previous adder's
  carry-out to its sum and starts the next adder with carry-in ``d``).
* ``"full"``: a 3:2 counter (full adder) in LUTs: ``out = (x ^ y ^ z, maj(x, y, z))``.
* ``"half"``: a 2:2 counter (half adder) in LUTs: ``out = (x ^ y, x & y)``.

Methods (:data:`METHODS`):

* ``"adder_tree"``: a balanced tree of carry-chain adders, each taking one spare input bit on
  its carry-in: 3 bits → a 2-bit sum, two 2-bit sums and a bit → 3 bits, and so on. An adder
  with operands of ``w`` bits reduces ``2w + 1`` bits to ``w + 1`` with ``w + 1`` cells.
* ``"counters"``: the same tree whose leaves (groups of 2 or 3 input bits) are LUT counters
  (half/full adders) instead of one-bit carry-chain adders: no carry cells at the first level.
* ``"compressor"``: a Dadda tree of full and half adders in LUTs (one level per Dadda stage)
  reducing the input column to two rows, then one carry-chain adder.

Every operation has a logic ``level`` (1 for those fed by inputs only, one more than its
latest operand otherwise). With ``pipeline = k > 0`` a register follows every ``k`` levels
(operation at level ``l`` is in stage ``(l − 1) // k``), and wires used in a later stage are
delayed through registers; with ``pipeline = 0`` the tree is combinational. The count always
leaves through one output register, so ``latency = max(1, ceil(levels / k))`` (1 for ``k = 0``).

Every sum is exactly ``popcount_width(n) = ceil(log2(n + 1))`` bits wide at the output; an
adder's width is that of the largest value it can reach (the number of input bits below it), so
reducing its sum modulo ``2**width`` drops only bits that are always zero, and nothing carries
from one adder of a chain into the next.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..checks import check_choice, check_integer
from ..ref.popcount import bits_array, popcount, popcount_width

__all__ = ["METHODS", "MAX_BITS", "DEFAULT_CHAIN", "PopOp", "PopcountPlan", "plan_popcount"]

#: The tree constructions, see the module docstring.
METHODS = ("adder_tree", "counters", "compressor")

#: Largest input width a plan accepts (the bit-level model evaluates in int64 with headroom).
MAX_BITS = 4096

#: Default longest carry chain, in cells.
DEFAULT_CHAIN = 16

# Random rows the plan's self-check evaluates besides the corner rows.
_CHECK_ROWS = 64


@dataclass(frozen=True)
class PopOp:
    """One operation of a popcount plan (see the module docstring).

    Attributes
    ----------
    kind : str
        ``"adder"``, ``"full"`` or ``"half"``.
    operands : tuple of tuples
        ``"adder"``: ``(A, B)``, each little-endian wire ids or None (constant 0);
        ``"full"``/``"half"``: one tuple of the 3 or 2 input wires.
    carry_in : int or None
        The adder's carry-in wire (None: 0; always None for counters).
    out : tuple of int
        New wires: the adder's sum bits (little-endian), or a counter's ``(sum, carry)``.
    level : int
        Logic level, from 1.
    """
    kind: str
    operands: tuple
    carry_in: int | None
    out: tuple
    level: int

    @property
    def inputs(self) -> tuple:
        """Every wire the operation reads, once each (constant-0 operand bits left out)."""
        wires = [w for operand in self.operands for w in operand if w is not None]
        wires += [self.carry_in] if self.carry_in is not None else []
        return tuple(dict.fromkeys(wires))


@dataclass(frozen=True, eq=False)
class PopcountPlan:
    """A popcount of ``n`` bits as a netlist of adders and counters (see the module docstring).

    Attributes
    ----------
    n : int
        Input bits.
    method : str
        One of :data:`METHODS`.
    pipeline : int
        Logic levels per register stage (0: combinational tree, one output register).
    chain : int
        Most cells in one carry chain (0: no limit): the adders of a level share chains.
    ops : tuple of PopOp
        Operations in an order where every wire is created before it is read.
    output : tuple of int
        Wires of the count, little-endian, exactly :attr:`width` of them.
    """
    n: int
    method: str
    pipeline: int
    chain: int
    ops: tuple
    output: tuple

    def __post_init__(self):
        _check_structure(self)

    @property
    def width(self) -> int:
        """Output bits: ``ceil(log2(n + 1))``."""
        return popcount_width(self.n)

    @property
    def levels(self) -> int:
        """Logic levels of the tree (0 for ``n = 1``)."""
        return max((op.level for op in self.ops), default=0)

    @property
    def latency(self) -> int:
        """Cycles from an input to its count: one per register stage, at least the output one."""
        if self.pipeline == 0:
            return 1
        return max(1, math.ceil(self.levels / self.pipeline))

    def stage(self, level: int) -> int:
        """Register stage (from 0) of an operation at ``level``."""
        return 0 if self.pipeline == 0 else (level - 1) // self.pipeline

    @property
    def lut_inputs(self) -> tuple:
        """Input wires read by LUT counters, in order: an inverter on one of them folds into
        the LUT, while a carry chain cell needs its operand bits as they are."""
        return tuple(w for op in self.ops if op.kind != "adder" for w in op.inputs if w < self.n)

    def register_stages(self) -> dict:
        """For every wire, ``(made, used)``: the stage whose logic creates it (0 for inputs)
        and the last stage that reads it (``latency`` for output wires: the output register).
        A wire passes through ``used − made`` registers."""
        made = {w: 0 for w in range(self.n)}
        used = {}
        for op in self.ops:
            stage = self.stage(op.level)
            for w in op.inputs:
                used[w] = max(used.get(w, 0), stage)
            for w in op.out:
                made[w] = stage
        for w in self.output:
            used[w] = self.latency
        return {w: (made[w], used.get(w, made[w])) for w in made}

    def cost(self) -> dict:
        """Estimated iCE40 resources of the tree (yosys may map a little differently).

        ``luts``: one LUT4 per adder sum bit and per counter output; ``carries``: one SB_CARRY
        per adder bit below the top one; ``ffs``: the pipeline and output registers;
        ``delay_ffs``: those that hold input bits (no LUT drives them, so each takes a logic
        cell of its own); ``chains``: carry chains; ``logic_cells``: ``luts + delay_ffs`` and
        one cell per chain with a carry-in (it enters the chain through a cell of its own; a
        carry shares its cell with its sum bit's LUT, a flop with the LUT that drives it).
        """
        luts = carries = chains = feeds = 0
        for op in self.ops:
            luts += len(op.out)
            if op.kind == "adder":
                carries += len(op.out) - 1
                chains += 1
                feeds += op.carry_in is not None
        ffs = delay_ffs = 0
        for wire, (made, used) in self.register_stages().items():
            ffs += used - made
            if wire < self.n:
                delay_ffs += used - made
        return {"luts": luts, "carries": carries, "chains": chains, "ffs": ffs,
                "delay_ffs": delay_ffs, "logic_cells": luts + feeds + delay_ffs}

    def describe(self) -> dict:
        """The structure in plain data: method, widths, levels, latency, operation counts,
        adder widths and the estimated cost."""
        kinds = Counter(op.kind for op in self.ops)
        adders = Counter(len(op.out) for op in self.ops if op.kind == "adder")
        return {"method": self.method, "n": self.n, "width": self.width,
                "pipeline": self.pipeline, "chain": self.chain, "levels": self.levels,
                "latency": self.latency,
                "adders": kinds["adder"], "full_adders": kinds["full"],
                "half_adders": kinds["half"],
                "adder_widths": {str(w): adders[w] for w in sorted(adders)}, **self.cost()}

    def simulate(self, bits) -> np.ndarray:
        """The count the plan's netlist computes for each row of ``bits`` (shape ``(..., n)``),
        bit by bit as the cells compute it: counters and every carry-chain cell as XOR and
        majority (an adder's carry out of its top cell is dropped).

        Raises
        ------
        TypeError, ValueError
            ``bits`` is not 0/1 integers (see :func:`hwnn.ref.popcount.bits_array`) or its
            last axis is not ``n`` long.
        """
        bits = bits_array(bits)
        if bits.shape[-1] != self.n:
            raise ValueError(f"bits must have {self.n} bits along the last axis, "
                             f"not {bits.shape[-1]}")
        zero = np.zeros(bits.shape[:-1], dtype=np.int64)
        wires = {w: bits[..., w] for w in range(self.n)}

        def number(operand):
            return sum(((wires[w] << i) for i, w in enumerate(operand) if w is not None), zero)

        for op in self.ops:
            if op.kind == "adder":
                # Ripple through the chain cell by cell: sum = a ^ b ^ c, carry = maj(a, b, c).
                carry = zero if op.carry_in is None else wires[op.carry_in]
                for w, x, y in zip(op.out, *op.operands):
                    x = zero if x is None else wires[x]
                    y = zero if y is None else wires[y]
                    wires[w] = x ^ y ^ carry
                    carry = (x & y) | (x & carry) | (y & carry)
            else:
                ins = [wires[w] for w in op.operands[0]]
                parity = ins[0] ^ ins[1] ^ (ins[2] if op.kind == "full" else 0)
                carry = ((ins[0] & ins[1]) | (ins[0] & ins[2]) | (ins[1] & ins[2])
                         if op.kind == "full" else ins[0] & ins[1])
                wires[op.out[0]], wires[op.out[1]] = parity, carry
        return number(self.output)


def _check_structure(plan: PopcountPlan) -> None:
    """Every wire made once before it is read, read by at most one operation, every input
    read, levels consistent, the output exactly ``width`` wires; raise ValueError naming what
    is wrong."""
    level = {w: 0 for w in range(plan.n)}
    read = set()
    for index, op in enumerate(plan.ops):
        shape_ok = (op.kind == "adder" and len(op.operands) == 2 and len(op.out) >= 1
                    and len(op.operands[0]) == len(op.operands[1]) == len(op.out)) or (
            op.kind in ("full", "half") and len(op.operands) == 1 and op.carry_in is None
            and len(op.operands[0]) == (3 if op.kind == "full" else 2) and len(op.out) == 2)
        if not shape_ok:
            raise ValueError(f"ops[{index}] is not a well-formed {op.kind!r} operation: {op!r}")
        for w in op.inputs:
            if w not in level or w in read:
                raise ValueError(f"ops[{index}] reads wire {w}, which is "
                                 f"{'read before' if w in read else 'not made before it'}")
            read.add(w)
        expected = 1 + max((level[w] for w in op.inputs), default=0)
        if op.level != expected:
            raise ValueError(f"ops[{index}] has level {op.level}, but its inputs put it at "
                             f"level {expected}")
        for w in op.out:
            if w in level:
                raise ValueError(f"ops[{index}] makes wire {w} a second time")
            level[w] = op.level
    if len(plan.output) != plan.width or any(w not in level or w in read for w in plan.output):
        raise ValueError(f"output must be {plan.width} made and unread wires, not "
                         f"{plan.output!r}")
    for w in range(plan.n):
        if w not in read and w not in plan.output:
            raise ValueError(f"input wire {w} is never read")


@dataclass(frozen=True)
class _Logical:
    """One adder of the tree before packing: ``a + b + carry_in`` into ``out``."""
    a: tuple
    b: tuple
    carry_in: int | None
    out: tuple
    level: int


class _Builder:
    """Collects counters and logical adders, numbering new wires after the ``n`` inputs."""

    def __init__(self, n: int):
        self.n = n
        self.ops: list[PopOp] = []
        self.adders: list[_Logical] = []
        self.level = {w: 0 for w in range(n)}
        self.next_wire = n

    def new(self, count: int) -> tuple:
        wires = tuple(range(self.next_wire, self.next_wire + count))
        self.next_wire += count
        return wires

    def _made(self, inputs, count: int) -> tuple[tuple, int]:
        level = 1 + max((self.level[w] for w in inputs if w is not None), default=0)
        out = self.new(count)
        for w in out:
            self.level[w] = level
        return out, level

    def counter(self, bits: tuple) -> tuple:
        """A full (3 bits) or half (2 bits) adder in LUTs: ``(sum, carry)`` wires."""
        out, level = self._made(bits, 2)
        self.ops.append(PopOp("full" if len(bits) == 3 else "half", (bits,), None, out, level))
        return out

    def adder(self, a: tuple, b: tuple, carry_in, width: int) -> tuple:
        """A logical adder ``a + b + carry_in`` of ``width`` sum bits (packed later)."""
        out, level = self._made(a + b + (carry_in,), width)
        self.adders.append(_Logical(a, b, carry_in, out, level))
        return out


def _tree(builder: _Builder, bits: list, leaves: str) -> tuple:
    """The count of the input wires ``bits`` (little-endian wires), built as a carry-in adder
    tree; ``leaves`` is ``"adder"`` or ``"counter"`` for groups of 2 or 3 bits."""
    if len(bits) == 1:
        return (bits[0],)
    if len(bits) <= 3:
        if leaves == "counter":
            return builder.counter(tuple(bits))
        carry_in = bits[2] if len(bits) == 3 else None
        return builder.adder((bits[0],), (bits[1],), carry_in, 2)
    # One bit rides on the carry-in; the rest splits into two subtrees whose sizes are of the
    # form 2^k - 1 where possible (those use every carry-in of theirs).
    carry_in, rest = bits[-1], bits[:-1]
    left = _split(len(rest))
    a = _tree(builder, rest[:left], leaves)
    b = _tree(builder, rest[left:], leaves)
    return builder.adder(a, b, carry_in, popcount_width(len(bits)))


def _split(count: int) -> int:
    """Size of the first subtree of ``count`` bits: the larger half, rounded up to ``2^k − 1``
    when the other part stays at least a quarter (a full subtree wastes no carry-in)."""
    half = -(-count // 2)
    full = (1 << half.bit_length()) - 1
    return full if full < count and count - full >= full // 2 else half


def _dadda(builder: _Builder, n: int) -> tuple:
    """Dadda reduction of ``n`` weight-1 bits to two rows, then one carry-chain adder."""
    columns = [list(range(n))]
    heights = [2]
    while heights[-1] < n:
        heights.append(heights[-1] * 3 // 2)
    for target in reversed([h for h in heights if h < max(len(c) for c in columns)]):
        carries: list[list] = [[] for _ in range(len(columns) + 1)]
        new_columns = []
        for index, column in enumerate(columns):
            pending = list(column)
            height = len(pending) + len(carries[index])
            kept = []
            while height > target:
                if height - target >= 2 and len(pending) >= 3:
                    s, c = builder.counter(tuple(pending[:3]))
                    del pending[:3]
                    height -= 2
                else:
                    s, c = builder.counter(tuple(pending[:2]))
                    del pending[:2]
                    height -= 1
                kept.append(s)
                carries[index + 1].append(c)
            new_columns.append(kept + pending + carries[index])
        if carries[len(columns)]:
            new_columns.append(carries[len(columns)])
        columns = new_columns
    width = popcount_width(n)
    if len(columns) == width and all(len(c) == 1 for c in columns):
        return tuple(c[0] for c in columns)
    if len(columns) > width:
        raise AssertionError(f"Dadda reduction of {n} bits left a column above the count's "
                             f"{width} bits")
    rows = [tuple(c[r] if len(c) > r else None for c in columns) for r in (0, 1)]
    return builder.adder(rows[0], rows[1], None, width)


def _pack(builder: _Builder, chain: int) -> list:
    """The logical adders of each level packed into carry chains of at most ``chain`` cells
    (0: no limit); returns the chain operations.

    In a chain, an adder's top sum bit (its carry-out) and the next adder's carry-in share one
    cell: both operand bits of that cell are the next carry-in ``d``, so the cell's sum is the
    carry-out ``d + d + c ≡ c`` and its carry is ``maj(d, d, c) = d``. A lone adder on iCE40
    pays a cell to bring its carry-in onto the chain and one to take its carry-out off it; in
    a chain only the first and the last do. Logically the chain is one addition of the
    concatenated operands: each adder's sum stays below ``2**len(out)``, so nothing carries
    from one field into the next.
    """
    ops = []
    for level in sorted({a.level for a in builder.adders}):
        group = [a for a in builder.adders if a.level == level]
        start = 0
        while start < len(group):
            stop = start + 1
            while stop < len(group) and (chain == 0 or
                                         _chain_cells(group[start:stop + 1]) <= chain):
                stop += 1
            ops.append(_chain(builder, group[start:stop], level))
            start = stop
    return ops


def _fields(adders: list) -> list:
    """Per adder ``(operand positions, whether a separator cell follows)``."""
    fields = []
    for index, adder in enumerate(adders):
        span = max(len(adder.a), len(adder.b))
        follows = adders[index + 1].carry_in if index + 1 < len(adders) else None
        # The top sum bit is a pure carry-out (no operand bits there): the next carry-in rides
        # on it. Otherwise the carry-out is always 0 and the next carry-in needs a cell of
        # its own (none when there is no next carry-in).
        fields.append((len(adder.out) - 1 if span < len(adder.out) else len(adder.out),
                       span < len(adder.out) or follows is not None))
    return fields


def _chain_cells(adders: list) -> int:
    return sum(positions + separator for positions, separator in _fields(adders))


def _chain(builder: _Builder, adders: list, level: int) -> PopOp:
    a, b, out = [], [], []
    for index, (adder, (positions, separator)) in enumerate(zip(adders, _fields(adders))):
        for i in range(positions):
            a.append(adder.a[i] if i < len(adder.a) else None)
            b.append(adder.b[i] if i < len(adder.b) else None)
        out.extend(adder.out)
        if separator:
            follows = adders[index + 1].carry_in if index + 1 < len(adders) else None
            a.append(follows)
            b.append(follows)
            if positions == len(adder.out):
                out.extend(builder.new(1))  # the adder's carry-out: always 0, never read
    return PopOp("adder", (tuple(a), tuple(b)), adders[0].carry_in, tuple(out), level)


def plan_popcount(n, method: str = "adder_tree", pipeline=0, chain=DEFAULT_CHAIN
                  ) -> PopcountPlan:
    """Plan a popcount of ``n`` bits with ``method``, a register every ``pipeline`` levels,
    carry chains of at most ``chain`` cells.

    The plan is checked: its structure (see :class:`PopcountPlan`), then its bit-level model
    (:meth:`PopcountPlan.simulate`) against :func:`hwnn.ref.popcount.popcount` on all-zero,
    all-one, one-hot and all-but-one (the first 256 bits), and fixed-seed random rows.

    Parameters
    ----------
    n : int
        Input bits, 1 to :data:`MAX_BITS`.
    method : str
        One of :data:`METHODS`.
    pipeline : int
        Logic levels between registers, 0 for a combinational tree (non-negative).
    chain : int
        Most cells per carry chain, 0 for no limit (non-negative). Longer chains save the
        cells that bring carries on and off chains; shorter ones keep the carry path short
        (timing analysis follows a chain from end to end).

    Raises
    ------
    TypeError
        ``n``, ``pipeline`` or ``chain`` is not an integer, ``method`` not a string.
    ValueError
        ``n`` outside ``[1, MAX_BITS]``, unknown ``method``, negative ``pipeline`` or
        ``chain``.
    """
    n = check_integer(n, "n", minimum=1, maximum=MAX_BITS)
    method = check_choice(method, "method", METHODS)
    pipeline = check_integer(pipeline, "pipeline", minimum=0)
    chain = check_integer(chain, "chain", minimum=0)
    builder = _Builder(n)
    if method == "compressor":
        output = _dadda(builder, n)
    else:
        output = _tree(builder, list(range(n)), "adder" if method == "adder_tree" else "counter")
    ops = sorted(builder.ops + _pack(builder, chain), key=lambda op: op.level)
    plan = PopcountPlan(n, method, pipeline, chain, tuple(ops), tuple(output))
    rows = _check_rows(n)
    if not np.array_equal(plan.simulate(rows), popcount(rows)):
        raise AssertionError(f"the {method} plan of {n} bits does not count correctly")
    return plan


def _check_rows(n: int) -> np.ndarray:
    # One-hot and all-but-one rows for every bit while that stays small.
    eye = np.eye(n, dtype=np.int64)[:256]
    rng = np.random.default_rng(n)
    return np.concatenate([np.zeros((1, n), np.int64), np.ones((1, n), np.int64), eye, 1 - eye,
                           rng.integers(0, 2, (_CHECK_ROWS, n))])
