"""Polynomial activation unit: the hardware of :func:`hwnn.ref.poly.poly` (``poly`` and
``taylor`` plans)."""

from __future__ import annotations

from amaranth.hdl import Array, Const, Mux, Signal, signed, unsigned
from amaranth.lib.memory import Memory

from ..fixed import signed_bits_for
from ..plans.poly import PolyPlan
from ._activation import _Activation, _unfold, folded_stage, memory_read, register_stage
from ._pieces import clamp_known, domain_end, piece_index, uniform_run

__all__ = ["PolyActivation", "poly_datapath", "poly_rom", "poly_stages", "coefficient_words"]


def poly_stages(degree: int) -> int:
    """Register stages of :func:`poly_datapath` in a unit, its output register included: fold,
    piece, table read and offset, two per Horner step (product, sum), clamp, unfold."""
    return 5 + 2 * degree


def _shape(lo: int, hi: int):
    """The narrowest shape holding every integer in ``[lo, hi]``."""
    if lo >= 0:
        return unsigned(max(1, hi.bit_length()))
    return signed(signed_bits_for(lo, hi))


def _columns(plan):
    """``(offset, shape)`` of each coefficient column in a table word, ``d**0`` first."""
    columns, offset = [], 0
    for column in zip(*plan.coefficients):
        shape = _shape(min(column), max(column))
        columns.append((offset, shape))
        offset += shape.width
    return columns, offset


def coefficient_words(plan) -> tuple[list[int], int]:
    """Each piece's coefficients packed in one unsigned word (``d**0`` in the low bits, each
    column in its narrowest shape), and the word's width: what the unit's table holds."""
    columns, width = _columns(plan)
    words = []
    for row in plan.coefficients:
        word = 0
        for value, (offset, shape) in zip(row, columns):
            word |= (value & ((1 << shape.width) - 1)) << offset
        words.append(word)
    return words, width


class PolyActivation(_Activation):
    """``y = poly(plan, x)`` (:func:`hwnn.ref.poly.poly`) on every lane, one transfer per cycle.

    Register stages after the input register (:func:`poly_stages`, ``5 + 2 * degree``): fold
    to the magnitude if the plan is symmetric; find the piece (a bit slice inside the uniform
    run of pieces, comparators against the other starts); read the piece's coefficients from a
    table (an ``amaranth.lib.memory.Memory`` with a synchronous read port per lane, so yosys
    puts a large table in block RAM) beside the offset ``d = c - origin``; then per Horner
    step the product ``acc * d`` (``*``, a DSP where the target has one, for ``multipliers ==
    "dsp"``; shifted partial products added in logic for ``"lut"``) and the floor and sum
    ``(product >> shift_k) + a_k``; floor by ``2**shift`` and clamp; unfold. Every signal has
    the exact width of its range over all input codes (``plan.ranges``). Latency ``7 + 2 *
    degree``, ``ii`` 1.

    Parameters, members and errors as :class:`~hwnn.cores.lut.LUTActivation`, with a
    :class:`~hwnn.plans.poly.PolyPlan`.
    """

    _plan_type = PolyPlan

    def __init__(self, plan, *, lanes=1, src_loc_at=0):
        if isinstance(plan, PolyPlan):
            self._stages = poly_stages(plan.degree)
        super().__init__(plan, lanes=lanes, src_loc_at=src_loc_at)

    def elaborate(self, platform):
        words, width = coefficient_words(self._plan)
        self._table = Memory(shape=unsigned(width), depth=len(words), init=words)
        m = super().elaborate(platform)
        m.submodules.table = self._table
        return m

    def _compute(self, m, x, result, advance, index):
        value = poly_datapath(m, self._plan, x, name=f"lane{index}",
                              stage=register_stage(m, advance, index),
                              read=memory_read(m, self._table, advance))
        with m.If(advance):
            m.d.sync += result.eq(value)


def poly_rom(plan):
    """The coefficient table of ``plan`` as logic: ``read(address)`` for
    :func:`poly_datapath` that looks the word up combinationally."""
    words, width = coefficient_words(plan)
    table = Array(Const(w, unsigned(width)) for w in words)
    return lambda address: table[address]


def poly_datapath(m, plan, x, *, name, stage, read):
    """``poly(plan, x)`` (:func:`hwnn.ref.poly.poly`) for one value ``x`` (codes of
    ``plan.in_format``): the steps of :class:`PolyActivation`.

    ``stage(value, shape, label)`` returns ``value`` after a step boundary and
    ``read(address)`` the table word of a piece as seen at the boundary after it: the unit
    registers and reads a synchronous memory (``poly_stages(degree) - 1`` boundaries; its own
    output register is the last), a combinational datapath passes values through and reads
    :func:`poly_rom`. Returns the output code (in range, at most ``out_format.width + 2``
    bits); ``name`` prefixes the signals it makes.
    """
    starts = list(plan.starts)
    ranges = plan.ranges
    c0, negative0 = folded_stage(m, plan, x, name, stage)

    # Piece; the offset needs only the bits of d over the pieces that are not constants
    # (a constant piece's products are 0 whatever d is): exact modulo 2**width.
    piece = piece_index(m, c0, starts, uniform_run(starts, domain_end(plan)), name)
    d_shape = _shape(*ranges["offset"])
    width = d_shape.width
    if width > len(c0):
        # An origin outside its piece (a Taylor centre) can make d wider than c: extend c
        # (sign or zero, as its shape says) before taking it modulo 2**width.
        wide = Signal(signed(width) if c0.shape().signed else unsigned(width),
                      name=f"{name}_c_wide")
        m.d.comb += wide.eq(c0)
        c0 = wide
    c1 = stage(c0[:width], unsigned(width), "c1")
    piece1 = stage(piece, range(len(starts)), "piece1")
    negative1 = stage(negative0, 1, "negative1")

    # Table word and offset.
    word = read(piece1)
    origins = Array(Const(o % (1 << width), unsigned(width)) for o in plan.origins)
    d = stage((c1 - origins[piece1])[:width], unsigned(width), "d2")
    d = d.as_signed() if d_shape.signed else d
    negative = stage(negative1, 1, "negative2")
    columns, _ = _columns(plan)
    coefficients = []
    for offset, shape in columns:
        field = word[offset:offset + shape.width]
        coefficients.append(field.as_signed() if shape.signed else field)

    # Horner: per step the product (registered) and the floor and sum (registered); the
    # coefficients and d still needed ride along.
    acc = coefficients[plan.degree]
    for step, k in enumerate(reversed(range(plan.degree))):
        product = stage(_multiply(m, acc, d, plan.multipliers, f"{name}_mul{k}"),
                        _shape(*ranges["products"][step]), f"product{k}")
        d = _carry(stage, d, f"d{k}p")
        negative = stage(negative, 1, f"negative{k}p")
        coefficients = [_carry(stage, a, f"a{j}_{k}p") for j, a in enumerate(coefficients[:k + 1])]
        acc = stage((product >> plan.shifts[k]) + coefficients[k],
                    _shape(*ranges["accumulators"][step + 1]), f"acc{k}")
        d = _carry(stage, d, f"d{k}s")
        negative = stage(negative, 1, f"negative{k}s")
        coefficients = [_carry(stage, a, f"a{j}_{k}s") for j, a in enumerate(coefficients[:k])]

    # Floor, clamp (only on a side the value can cross), unfold.
    out = plan.out_format
    low, high = (v >> plan.shift for v in ranges["accumulators"][-1])
    y = stage(clamp_known(acc >> plan.shift, low, high, out.min_int, out.max_int),
              signed(out.width + 1), "y")
    low, high = max(low, out.min_int), min(high, out.max_int)
    negative = stage(negative, 1, "negative_y")
    if plan.symmetric:
        return _unfold(y, negative, plan.function.symmetry, out, (low, high))
    return y


def _carry(stage, value, label):
    """``value`` through one more step boundary, keeping its shape."""
    return stage(value, value.shape(), label)


def _multiply(m, a, d, multipliers, name):
    """``a * d``: the ``*`` operator (yosys maps it to a DSP block where the target has one),
    or, for ``"lut"``, the sum of ``a`` shifted by each set bit of ``d`` (a signed ``d``'s top
    bit weighs ``-2**(width-1)``) in a balanced adder tree, which yosys builds from LUTs and
    carry chains."""
    if multipliers == "dsp":
        return a * d
    width = len(d)
    terms = []
    for i in range(width):
        term = Signal(signed(len(a) + width + 1), name=f"{name}_pp{i}")
        shifted = a << i
        negative = d.shape().signed and i == width - 1
        m.d.comb += term.eq(Mux(d[i], -shifted if negative else shifted, 0))
        terms.append(term)
    # A balanced tree of adders: log2(width) deep rather than a chain of width - 1.
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]
