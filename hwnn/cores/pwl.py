"""Piecewise-linear activation unit: the hardware of :func:`hwnn.ref.pwl.pwl`."""

from __future__ import annotations

from amaranth.hdl import Array, Const, Mux, Signal, signed, unsigned

from ..fixed import signed_bits_for
from ..plans.pwl import PWLPlan, slope_terms
from ._activation import _Activation, _unfold, folded_stage, register_stage
from ._pieces import clamp_known, domain_end, piece_index, uniform_run

__all__ = ["PWLActivation", "pwl_datapath", "uniform_run"]


class PWLActivation(_Activation):
    """``y = pwl(plan, x)`` (:func:`hwnn.ref.pwl.pwl`) on every lane, one transfer per cycle.

    Six registered stages after the input register: (0) fold to the magnitude if the plan is
    symmetric; (1) find the piece (a bit slice inside the uniform run of pieces, comparators
    against the other starts); (2) offset into the piece, slope and intercept; (3) the product
    ``slope × offset``: a multiplier for ``slope_kind == "any"`` (a DSP where the target has
    one), one or two shifts and an add for ``"pot"``/``"pot2"``; (4) add the intercept, floor by
    ``2**shift`` and clamp; (5) unfold. Latency 8, ``ii`` 1.

    Parameters, members and errors as :class:`~hwnn.cores.lut.LUTActivation`, with a
    :class:`~hwnn.plans.pwl.PWLPlan`.
    """

    _plan_type = PWLPlan
    _stages = 6

    def _compute(self, m, x, result, advance, index):
        value = pwl_datapath(m, self._plan, x, name=f"lane{index}",
                             stage=register_stage(m, advance, index))
        with m.If(advance):
            m.d.sync += result.eq(value)


def pwl_datapath(m, plan, x, *, name, stage):
    """``pwl(plan, x)`` (:func:`hwnn.ref.pwl.pwl`) for one value ``x`` (codes of
    ``plan.in_format``): the steps of :class:`PWLActivation` (fold, piece, offset and slope,
    product and intercept, clamp, unfold).

    ``stage(value, shape, label)`` returns ``value`` after a step boundary: the unit registers
    it there (five register stages; its own output register is the sixth), a combinational
    datapath passes it through. Returns the output code (at most ``plan.out_format.width + 2``
    bits, in range); ``name`` prefixes the signals it makes.
    """
    starts = [int(s) for s in plan.starts]
    slopes = [int(s) for s in plan.slopes]
    intercepts = [int(c) for c in plan.intercepts]
    pieces = len(starts)
    ends = starts[1:] + [domain_end(plan)]

    def rom(values):
        values = list(values)
        shape = signed(signed_bits_for(min(values + [0]), max(values + [0])))
        return Array(Const(v, shape) for v in values), shape

    # Stage 0: magnitude (symmetric plans); stage 1: piece index.
    c0, negative0 = folded_stage(m, plan, x, name, stage)
    run = uniform_run(starts, ends[-1])
    piece = piece_index(m, c0, starts, run, name)
    # Only pieces with a slope look at the offset into the piece, and no such offset
    # exceeds the widest sloped piece: the offset is exact modulo 2**offset_width.
    sloped = [j for j in range(pieces) if slopes[j] != 0]
    offset_width = max([(ends[j] - 1 - starts[j]).bit_length() for j in sloped] + [1])
    c1 = stage(c0[:offset_width], unsigned(offset_width), "c1")
    piece1 = stage(piece, range(pieces), "piece1")
    negative1 = stage(negative0, 1, "negative1")

    # Stage 2: offset into the piece, slope and intercept of the piece.
    offset_starts, _ = rom(s % (1 << offset_width) for s in starts)
    offset2 = stage((c1 - offset_starts[piece1])[:offset_width], unsigned(offset_width),
                    "offset2")
    negative2 = stage(negative1, 1, "negative2")
    piece2 = stage(piece1, range(pieces), "piece2")

    # Stage 3: the product slope × offset, and the intercept. Shift-add slopes negate a
    # term as its ones' complement; the missing +1 is folded into the intercept.
    if plan.slope_kind == "any":
        slope_rom, slope_shape = rom(slopes)
        intercept_rom, intercept_shape = rom(intercepts)
        slope2 = stage(slope_rom[piece1], slope_shape, "slope2")
        product = slope2 * offset2
        product_shape = signed(slope_shape.width + offset_width + 1)
        intercept3 = stage(intercept_rom[piece2], intercept_shape, "intercept3")
    else:
        product, product_shape, corrections = _shift_add_product(
            m, slopes, piece1, offset2, offset_width, stage, name)
        intercept_rom, intercept_shape = rom(b + k for b, k in zip(intercepts, corrections))
        intercept3 = stage(intercept_rom[piece2], intercept_shape, "intercept3")
    product3 = stage(product, product_shape, "product3")
    negative3 = stage(negative2, 1, "negative3")

    # Stage 4: intercept, floor and (only where some piece can leave the output range)
    # clamp; stage 5: unfold.
    out = plan.out_format
    low, high = _value_range(starts, ends, slopes, intercepts)
    total = Signal(signed(max(product_shape.width, intercept_shape.width) + 1),
                   name=f"{name}_total")
    m.d.comb += total.eq(product3 + intercept3)
    floor = total >> plan.shift
    low, high = low >> plan.shift, high >> plan.shift
    y4 = stage(clamp_known(floor, low, high, out.min_int, out.max_int),
               signed(out.width + 1), "y4")
    low, high = max(low, out.min_int), min(high, out.max_int)
    negative4 = stage(negative3, 1, "negative4")
    value = (_unfold(y4, negative4, plan.function.symmetry, out, (low, high))
             if plan.symmetric else y4)
    return value



def _value_range(starts, ends, slopes, intercepts):
    """Lowest and highest ``slope * (c - start) + intercept`` over every piece's codes."""
    values = [v for start, end, s, b in zip(starts, ends, slopes, intercepts)
              for v in (b, s * (end - 1 - start) + b)]
    return min(values), max(values)


def _shift_add_product(m, slopes, piece, offset, offset_width, stage, name):
    """``slope × offset`` as the sum of two signed, shifted copies of ``offset``.

    A negative term is the ones' complement of its magnitude, one less than its value; the
    returned corrections (one per piece) are what each piece's intercept must add back.
    """
    decomposed = [slope_terms(s) for s in slopes]
    exponents = [e for terms in decomposed for _, e in terms] or [0]
    term_shape = signed(offset_width + max(exponents) + 1)
    terms, corrections = [], [0] * len(slopes)
    for k in range(max(len(t) for t in decomposed)):
        used = [len(t) > k for t in decomposed]
        negated = [len(t) > k and t[k][0] < 0 for t in decomposed]
        shifts = [t[k][1] if len(t) > k else 0 for t in decomposed]
        for j, flag in enumerate(negated):
            corrections[j] += int(flag)
        use = stage(Array(Const(v, 1) for v in used)[piece], 1, f"use{k}")
        negate = stage(Array(Const(v, 1) for v in negated)[piece], 1, f"negate{k}")
        shift = stage(Array(Const(e, range(max(exponents) + 1)) for e in shifts)[piece],
                      range(max(exponents) + 1), f"exponent{k}")
        shifted = Signal(term_shape, name=f"{name}_term{k}")
        m.d.comb += shifted.eq(Mux(use, offset << shift, 0) ^ negate.replicate(len(shifted)))
        terms.append(shifted)
    if not terms:
        return Const(0, 1), signed(1), corrections
    product_shape = signed(term_shape.width + len(terms) - 1)
    return sum(terms[1:], terms[0]), product_shape, corrections
