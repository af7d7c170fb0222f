"""Shift-add graphs: exact multiplierless plans for a constant matrix-vector product ``y = W·x``.

An :class:`AdderGraph` is the plan a shift-add core builds (pure Python, no Amaranth):

- nodes ``0 … n_in − 1`` are the inputs ``x_i``, each an integer in a known closed range
  ``[lo_i, hi_i]``;
- every later node is ONE two-operand adder/subtractor
  ``value = sa·(a << s) + sb·(b << t)`` of two earlier nodes ``a`` and ``b``, with signs
  ``sa, sb ∈ {+1, −1}`` (never both −1) and shifts ``s, t ≥ 0`` of which at least one is 0 (a
  shift common to both operands is applied by the users instead, where it is free wiring);
- output ``j`` is zero or ``sign·(node << shift)``.

Every node carries its exact linear form over the inputs (Python ints), hence its exact value
range, its exact two's-complement width and its adder depth. Node ids are a topological order
and the same weights always give the same graph. Build graphs with :mod:`hwnn.plans.shift_add`; this
module holds the representation, the exact checks (:meth:`AdderGraph.verify`,
:meth:`AdderGraph.evaluate`) and the :class:`GraphBuilder` the builders share.

Cost measures (all exact counts, see :meth:`AdderGraph.describe`):

``adders``
    Two-operand adders/subtractors (the usual "adder count" of the MCM literature).
``depth``
    Adder depth: the most adders on a path from an input to an output.
``shifts``
    Nonzero shifts: operand shifts of adder nodes plus output shifts.
``nabs``
    NABS, "number of additions and bit shifts" (the complexity measure of the optical-channel
    equalizer literature): ``adders + shifts``. In hardware a constant shift is wiring; NABS
    counts it because it is an operation in software and DSP implementations.
``adder_bits``
    Sum of the adder nodes' exact widths: each bit is about one LUT plus one carry cell on
    iCE40, so this is the proxy for area.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ...checks import ParameterTypeError, ParameterValueError
from ...fixed import Format, check_format, signed_bits_for

__all__ = ["AdderGraph", "Fanout", "GraphBuilder", "Node", "Output", "as_ranges", "as_weight",
           "format_ranges", "weight_and_ranges"]

#: A signed, shifted reference to a node: ``sign·(node << shift)``.
Term = tuple  # (node: int, sign: int, shift: int)


def _form_range(form, ranges):
    """Exact ``[lo, hi]`` of ``Σ c_i·x_i`` over the box ``x_i ∈ [lo_i, hi_i]``."""
    lo = hi = 0
    for c, (a, b) in zip(form, ranges):
        if c > 0:
            lo += c * a
            hi += c * b
        elif c < 0:
            lo += c * b
            hi += c * a
    return lo, hi


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def as_weight(weight) -> tuple[tuple[int, ...], ...]:
    """A constant matrix as a tuple of rows of Python ints (for exact arithmetic of any size).

    Raises
    ------
    TypeError
        The entries are not integers (floats and bools are rejected, even integral ones).
    ValueError
        ``weight`` is not a non-empty 2-D matrix.
    """
    try:
        array = np.asarray(weight)
    except ValueError:
        raise ParameterValueError(
            "weight", "weight must be a non-empty 2-D integer matrix (n_out, n_in), not a ragged "
                      "sequence") from None
    if array.ndim != 2 or 0 in array.shape:
        raise ParameterValueError(
            "weight", "weight must be a non-empty 2-D integer matrix (n_out, n_in), not shape "
                      f"{array.shape}")
    if array.dtype == object:
        for value in array.ravel():
            if not _is_int(value):
                raise ParameterTypeError("weight", f"weight must hold integers, not {value!r}")
    elif array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise ParameterTypeError("weight", f"weight must hold integers, not dtype {array.dtype}")
    return tuple(tuple(int(v) for v in row) for row in array.tolist())


def format_ranges(fmt, n_in: int) -> tuple[tuple[int, int], ...]:
    """The input ranges of ``n_in`` inputs that are all codes of ``fmt`` (a Format or string)."""
    fmt = check_format(fmt, "fmt")
    return ((fmt.min_int, fmt.max_int),) * n_in


def as_ranges(in_ranges, n_in: int) -> tuple[tuple[int, int], ...]:
    """Per-input ``(lo, hi)`` ranges from a list of pairs, one pair for all, or a Format.

    Raises
    ------
    TypeError
        A range is not a pair of integers, or ``in_ranges`` is none of the accepted kinds.
    ValueError
        The number of ranges differs from ``n_in``, or a range has ``lo > hi``.
    """
    if isinstance(in_ranges, (Format, str)):
        return format_ranges(in_ranges, n_in)
    try:
        items = list(in_ranges)
    except TypeError:
        raise ParameterTypeError(
            "in_ranges", "in_ranges must be a list of (lo, hi) pairs, one (lo, hi) pair or a "
                         f"Format, not {in_ranges!r}") from None
    if len(items) == 2 and all(_is_int(v) for v in items):
        items = [tuple(items)] * n_in
    if len(items) != n_in:
        raise ParameterValueError(
            "in_ranges", f"in_ranges must give one (lo, hi) pair per input ({n_in}), not "
                         f"{len(items)}")
    ranges = []
    for i, pair in enumerate(items):
        try:
            lo, hi = pair
        except (TypeError, ValueError):
            raise ParameterTypeError(
                "in_ranges", f"in_ranges[{i}] must be a (lo, hi) pair of integers, "
                             f"not {pair!r}") from None
        if not (_is_int(lo) and _is_int(hi)):
            raise ParameterTypeError(
                "in_ranges", f"in_ranges[{i}] must be a (lo, hi) pair of integers, not {pair!r}")
        if lo > hi:
            raise ParameterValueError(
                "in_ranges", f"in_ranges[{i}] must have lo <= hi, not ({lo}, {hi})")
        ranges.append((int(lo), int(hi)))
    return tuple(ranges)


def weight_and_ranges(weight, in_ranges):
    """``(rows, ranges)``: :func:`as_weight` of ``weight`` and :func:`as_ranges` of
    ``in_ranges`` for its inputs, the checked arguments every builder starts from."""
    rows = as_weight(weight)
    return rows, as_ranges(in_ranges, len(rows[0]))


@dataclass(frozen=True)
class Node:
    """One value of an :class:`AdderGraph`.

    An input (``is_input``: ``a`` and ``b`` are ``None``) or the adder/subtractor
    ``sa·(a << s) + sb·(b << t)``. ``form[i]`` is the coefficient of input ``i`` in the node's
    value, ``[lo, hi]`` the exact range of that value over the input box, ``depth`` the adders on
    the longest path from an input (inputs 0). ``depth`` is also the node's pipeline ``level``:
    a core that registers every ``k`` levels puts node ``n`` in stage ``level // k``.
    """
    a: int | None
    sa: int
    s: int
    b: int | None
    sb: int
    t: int
    form: tuple
    lo: int
    hi: int
    depth: int

    @property
    def is_input(self) -> bool:
        return self.a is None

    @property
    def width(self) -> int:
        """Exact two's-complement width of the value (:func:`signed_bits_for` of its range)."""
        return signed_bits_for(self.lo, self.hi)

    @property
    def level(self) -> int:
        return self.depth


@dataclass(frozen=True)
class Output:
    """Output ``j`` of an :class:`AdderGraph`: ``sign·(node << shift)``, or 0 if ``node is None``.

    ``form`` and ``[lo, hi]`` are the exact linear form and range of the output value.
    """
    node: int | None
    sign: int
    shift: int
    form: tuple
    lo: int
    hi: int

    @property
    def is_zero(self) -> bool:
        return self.node is None

    @property
    def width(self) -> int:
        return signed_bits_for(self.lo, self.hi)


class Fanout(NamedTuple):
    """Who reads a node: the adder nodes and the outputs that use it (ascending ids)."""
    nodes: tuple
    outputs: tuple


@dataclass(frozen=True, eq=False)
class AdderGraph:
    """A shift-add computation of ``y = W·x`` (see the module docstring for the rules).

    Build one with :func:`hwnn.plans.shift_add.build` (or a named builder); :meth:`verify` checks it
    against a matrix exactly.
    """
    n_in: int
    in_ranges: tuple
    nodes: tuple
    outputs: tuple
    method: str = ""

    @property
    def n_out(self) -> int:
        return len(self.outputs)

    @property
    def adders(self) -> int:
        """Two-operand adders/subtractors."""
        return len(self.nodes) - self.n_in

    @property
    def depth(self) -> int:
        """Adder depth: the largest depth of a node that feeds an output (0 without adders)."""
        return max((self.nodes[o.node].depth for o in self.outputs if o.node is not None),
                   default=0)

    @property
    def shifts(self) -> int:
        """Nonzero shifts: adder operand shifts plus output shifts."""
        count = sum((n.s != 0) + (n.t != 0) for n in self.nodes[self.n_in:])
        return count + sum(o.shift != 0 for o in self.outputs if o.node is not None)

    @property
    def nabs(self) -> int:
        """NABS, the number of additions and bit shifts: ``adders + shifts``."""
        return self.adders + self.shifts

    @property
    def adder_bits(self) -> int:
        """Sum of the adder nodes' exact widths (a proxy for LUT and carry-cell cost)."""
        return sum(n.width for n in self.nodes[self.n_in:])

    @property
    def max_width(self) -> int:
        """The widest node or output."""
        return max([n.width for n in self.nodes] + [o.width for o in self.outputs])

    def fanout(self) -> tuple:
        """For every node, the :class:`Fanout` (later adder nodes and outputs) that read it."""
        nodes = [set() for _ in self.nodes]
        outputs = [[] for _ in self.nodes]
        for k, n in enumerate(self.nodes):
            if not n.is_input:
                nodes[n.a].add(k)
                nodes[n.b].add(k)
        for j, o in enumerate(self.outputs):
            if o.node is not None:
                outputs[o.node].append(j)
        return tuple(Fanout(tuple(sorted(u)), tuple(o)) for u, o in zip(nodes, outputs))

    def levels(self) -> tuple:
        """Node ids grouped by level (= depth): ``levels()[d]`` holds the nodes of depth ``d``."""
        groups = [[] for _ in range(max(n.depth for n in self.nodes) + 1)]
        for k, n in enumerate(self.nodes):
            groups[n.depth].append(k)
        return tuple(tuple(g) for g in groups)

    def describe(self) -> dict:
        """A JSON-serializable summary of the graph's size and costs."""
        return {"method": self.method, "n_in": self.n_in, "n_out": self.n_out,
                "adders": self.adders, "depth": self.depth, "shifts": self.shifts,
                "nabs": self.nabs, "adder_bits": self.adder_bits, "max_width": self.max_width}

    def evaluate(self, x, *, nodes: bool = False):
        """Compute the outputs exactly (Python ints) for input vector(s) ``x``.

        ``x`` has shape ``(n_in,)`` or ``(batch, n_in)``; the result has the same leading shape
        with ``n_out`` last, dtype object (Python ints). With ``nodes=True`` returns
        ``(outputs, node_values)`` where ``node_values[k]`` holds node ``k``'s values.

        Raises
        ------
        TypeError
            ``x`` does not hold integers.
        ValueError
            ``x`` has the wrong shape or holds a value outside its input's range.
        """
        array = np.asarray(x)
        if array.dtype == object:
            if not all(_is_int(v) for v in array.ravel()):
                raise ParameterTypeError("x", "x must hold integers")
        elif array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
            raise ParameterTypeError("x", f"x must hold integers, not dtype {array.dtype}")
        if array.ndim not in (1, 2) or array.shape[-1] != self.n_in:
            raise ParameterValueError(
                "x", f"x must have shape ({self.n_in},) or (batch, {self.n_in}), not "
                     f"{array.shape}")
        single = array.ndim == 1
        array = array.reshape(-1, self.n_in).astype(object)
        values = []
        for i, (lo, hi) in enumerate(self.in_ranges):
            column = array[:, i]
            bad = [v for v in column if not lo <= v <= hi]
            if bad:
                raise ParameterValueError("x", f"x[{i}] = {int(bad[0])} is outside the input "
                                               f"range [{lo}, {hi}]")
            values.append(column)
        for n in self.nodes[self.n_in:]:
            a = values[n.a] << n.s
            b = values[n.b] << n.t
            values.append((a if n.sa > 0 else -a) + (b if n.sb > 0 else -b))
        zero = np.zeros(array.shape[0], dtype=object)
        out = []
        for o in self.outputs:
            if o.node is None:
                out.append(zero.copy())
            else:
                v = values[o.node] << o.shift
                out.append(v if o.sign > 0 else -v)
        result = np.stack(out, axis=-1)
        if single:
            result = result[0]
            values = [v[0] for v in values]
        return (result, values) if nodes else result

    def check(self) -> None:
        """Check the graph's internal consistency (every stored form, range, depth and rule).

        Raises
        ------
        ValueError
            Naming the first node or output that breaks a rule.
        """
        if len(self.in_ranges) != self.n_in or len(self.nodes) < self.n_in:
            raise ValueError("graph has fewer nodes or ranges than inputs")
        for k, n in enumerate(self.nodes):
            if k < self.n_in:
                form = tuple(int(i == k) for i in range(self.n_in))
                ok = n.is_input and n.depth == 0
            else:
                ok = (not n.is_input and 0 <= n.a < k and 0 <= n.b < k
                      and n.sa in (1, -1) and n.sb in (1, -1) and (n.sa, n.sb) != (-1, -1)
                      and n.s >= 0 and n.t >= 0
                      and n.depth == 1 + max(self.nodes[n.a].depth, self.nodes[n.b].depth))
                if not ok:
                    raise ValueError(f"node {k} breaks the adder-node rules: {n}")
                fa, fb = self.nodes[n.a].form, self.nodes[n.b].form
                form = tuple(n.sa * (p << n.s) + n.sb * (q << n.t) for p, q in zip(fa, fb))
            if not ok or n.form != form:
                raise ValueError(f"node {k} has form {n.form}, but its operands give {form}")
            if (n.lo, n.hi) != _form_range(form, self.in_ranges):
                raise ValueError(f"node {k} has range [{n.lo}, {n.hi}], but its form gives "
                                 f"{list(_form_range(form, self.in_ranges))}")
        for j, o in enumerate(self.outputs):
            if o.node is None:
                form = (0,) * self.n_in
            else:
                if not (0 <= o.node < len(self.nodes) and o.sign in (1, -1) and o.shift >= 0):
                    raise ValueError(f"output {j} breaks the output rules: {o}")
                form = tuple(o.sign * (c << o.shift) for c in self.nodes[o.node].form)
            if o.form != form or (o.lo, o.hi) != _form_range(form, self.in_ranges):
                raise ValueError(f"output {j} stores form {o.form} and range [{o.lo}, {o.hi}], "
                                 f"but its node gives {form}")

    def verify(self, weight) -> None:
        """Check that the graph computes ``weight @ x`` exactly (and is internally consistent).

        Raises
        ------
        ValueError
            The shapes differ, output ``j``'s linear form differs from row ``j`` of ``weight``,
            or :meth:`check` fails.
        """
        rows = as_weight(weight)
        if (len(rows), len(rows[0])) != (self.n_out, self.n_in):
            raise ValueError(f"weight has shape {(len(rows), len(rows[0]))}, but the graph "
                             f"computes {self.n_out} outputs of {self.n_in} inputs")
        self.check()
        for j, (o, row) in enumerate(zip(self.outputs, rows)):
            if o.form != row:
                raise ValueError(f"output {j} computes {list(o.form)}·x, but row {j} of "
                                 f"weight is {list(row)}")


class GraphBuilder:
    """Builds an :class:`AdderGraph` one adder at a time, sharing every repeated value.

    Values are passed around as terms ``(node, sign, shift)`` meaning ``sign·(node << shift)``.
    :meth:`add` normalizes every new adder (common shift and sign pushed to the users, the
    positive operand first) and, with ``share`` (the default), returns an existing node whenever
    the sum's linear form, up to sign and a power of two, is already computed, so equal
    subexpressions cost one adder. ``share=False`` builds every adder it is asked for (for
    baselines that must not share by accident).
    """

    def __init__(self, n_in: int, in_ranges, share: bool = True):
        self.n_in = n_in
        self.share = share
        self.in_ranges = tuple(in_ranges)
        self._ops = [None] * n_in
        self._forms = [tuple(int(i == k) for i in range(n_in)) for k in range(n_in)]
        self._depth = [0] * n_in
        self._mag = [max(abs(lo), abs(hi)).bit_length() for lo, hi in self.in_ranges]
        self._by_form = {f: k for k, f in enumerate(self._forms)}
        self._by_op = {}

    def input(self, i: int) -> Term:
        return (i, 1, 0)

    def depth(self, node: int) -> int:
        return self._depth[node]

    def form(self, node: int) -> tuple:
        return self._forms[node]

    def magnitude_bits(self, term: Term) -> int:
        """Bits of the largest magnitude the term's value can reach."""
        return self._mag[term[0]] + term[2]

    def find(self, form) -> Term | None:
        """A term whose value has exactly this linear form, if one costs no new adder."""
        form = tuple(form)
        sign = 1
        for c in form:
            if c:
                sign = 1 if c > 0 else -1
                break
        else:
            return None
        if sign < 0:
            form = tuple(-c for c in form)
        bits = 0
        for c in form:
            bits |= c
        shift = 0
        while True:
            node = self._by_form.get(form)
            if node is not None:
                return (node, sign, shift)
            if bits & (1 << shift):
                return None
            shift += 1
            form = tuple(c >> 1 for c in form)

    def add(self, x: Term, y: Term) -> Term | None:
        """``x + y`` as a term (``None`` if it is identically zero); at most one new adder."""
        a, sa, s = x
        b, sb, t = y
        m = min(s, t)
        s -= m
        t -= m
        fa, fb = self._forms[a], self._forms[b]
        form = tuple(sa * (p << s) + sb * (q << t) for p, q in zip(fa, fb))
        if not any(form):
            return None
        if self.share:
            found = self.find(form)
            if found is not None:
                return (found[0], found[1], found[2] + m)
        sign = 1
        for c in form:
            if c:
                sign = 1 if c > 0 else -1
                break
        if sign < 0:
            form = tuple(-c for c in form)
            sa, sb = -sa, -sb
        # The canonical orientation never gives two negative operands: the inputs' and every
        # node's first nonzero coefficient is positive, so −A−B would start negative.
        if sa < 0 or (sb > 0 and (b, t) < (a, s)):
            a, sa, s, b, sb, t = b, sb, t, a, sa, s
        # Even without sharing, an adder identical to an earlier one (same operands, signs and
        # shifts) is the earlier one: synthesis merges such twins (yosys opt_merge), and the
        # count must match the netlist.
        op = (a, sa, s, b, sb, t)
        if op in self._by_op:
            return (self._by_op[op], sign, m)
        node = len(self._forms)
        self._by_op[op] = node
        self._ops.append(op)
        self._forms.append(form)
        self._depth.append(1 + max(self._depth[a], self._depth[b]))
        lo, hi = _form_range(form, self.in_ranges)
        self._mag.append(max(abs(lo), abs(hi)).bit_length())
        if self.share:
            self._by_form[form] = node
        return (node, sign, m)

    def sum(self, terms) -> Term | None:
        """The sum of terms by a balanced adder tree (``None`` for an empty or zero sum).

        Always adds the two shallowest terms, the narrowest first among equals: that reaches
        the least possible depth (``⌈log2 n⌉`` above equal-depth terms) and keeps the early,
        numerous adders narrow. (A partial sum that already exists elsewhere is reused even
        if it is deeper: fewer adders first.)
        """
        heap = []
        for k, term in enumerate(terms):
            heap.append((self._depth[term[0]], self.magnitude_bits(term), k, term))
        heapq.heapify(heap)
        count = len(heap)
        while len(heap) > 1:
            x = heapq.heappop(heap)[3]
            y = heapq.heappop(heap)[3]
            z = self.add(x, y)
            if z is not None:
                heapq.heappush(heap, (self._depth[z[0]], self.magnitude_bits(z), count, z))
                count += 1
        return heap[0][3] if heap else None

    def finish(self, outputs, method: str = "") -> AdderGraph:
        """The graph computing ``outputs`` (terms or ``None``), without unused adders."""
        used = [False] * len(self._forms)
        for term in outputs:
            if term is not None:
                used[term[0]] = True
        for k in range(len(self._forms) - 1, self.n_in - 1, -1):
            if used[k]:
                a, _, _, b, _, _ = self._ops[k]
                used[a] = used[b] = True
        renumber = {}
        nodes = []
        for k in range(len(self._forms)):
            if k >= self.n_in and not used[k]:
                continue
            renumber[k] = len(nodes)
            lo, hi = _form_range(self._forms[k], self.in_ranges)
            if k < self.n_in:
                nodes.append(Node(None, 1, 0, None, 1, 0, self._forms[k], lo, hi, 0))
            else:
                a, sa, s, b, sb, t = self._ops[k]
                nodes.append(Node(renumber[a], sa, s, renumber[b], sb, t, self._forms[k],
                                  lo, hi, self._depth[k]))
        outs = []
        zero = (0,) * self.n_in
        for term in outputs:
            if term is None:
                outs.append(Output(None, 1, 0, zero, 0, 0))
                continue
            node, sign, shift = term
            form = tuple(sign * (c << shift) for c in self._forms[node])
            lo, hi = _form_range(form, self.in_ranges)
            outs.append(Output(renumber[node], sign, shift, form, lo, hi))
        return AdderGraph(self.n_in, self.in_ranges, tuple(nodes), tuple(outs), method)
