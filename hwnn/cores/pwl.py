"""Piecewise-linear activation unit: the hardware of :func:`hwnn.ref.pwl.pwl`."""

from __future__ import annotations

from amaranth.hdl import Array, Const, Mux, Signal, signed, unsigned

from ..plans.dense import signed_bits_for
from ..plans.pwl import slope_terms
from ._component import rejects_quietly
from .activation import _Activation, _magnitude, _unfold

__all__ = ["PWLActivation", "uniform_run"]


def uniform_run(starts, end) -> tuple[int, int, int]:
    """The longest run of consecutive pieces ``a..b`` that all have width ``2**m``.

    ``starts`` are the pieces' first codes and ``end`` is one past the domain's last code.
    Inside the run the piece index is ``a + ((c - starts[a]) >> m)`` and the offset into the
    piece is the low ``m`` bits of ``c - starts[a]``: no comparator, no subtractor per piece.
    Returns ``(a, b, m)``; ``b < a`` when no piece has a power-of-two width.
    """
    widths = [hi - lo for lo, hi in zip(starts, list(starts[1:]) + [end])]
    best = (0, -1, -1)
    a = 0
    while a < len(widths):
        width = widths[a]
        b = a
        while b + 1 < len(widths) and widths[b + 1] == width:
            b += 1
        if width & (width - 1) == 0 and b - a > best[1] - best[0]:
            best = (a, b, width.bit_length() - 1)
        a = b + 1
    return best


class PWLActivation(_Activation):
    """``y = pwl(plan, x)`` (:func:`hwnn.ref.pwl.pwl`) on every lane, one transfer per cycle.

    Six registered stages after the input register: (0) fold to the magnitude if the plan is
    symmetric; (1) find the piece (a bit slice inside the uniform run of pieces, comparators
    against the other starts); (2) offset into the piece, slope and intercept; (3) the product
    ``slope × offset``: a multiplier for ``slope_kind == "any"`` (a DSP where the target has
    one), one or two shifts and an add for ``"pot"``/``"pot2"``; (4) add the intercept, floor by
    ``2**shift`` and clamp; (5) unfold. Latency 8, ``ii`` 1.

    Parameters, members and errors as :class:`~hwnn.cores.activation.LUTActivation`, with a
    :class:`~hwnn.plans.pwl.PWLPlan`.
    """

    _stages = 6

    @property
    def _plan_type(self):
        from ..plans.pwl import PWLPlan
        return PWLPlan

    @rejects_quietly
    def __init__(self, plan, *, lanes=1):
        super().__init__(plan, lanes=lanes)

    def _compute(self, m, x, result, advance, index):
        plan = self._plan
        name = f"lane{index}"
        starts = [int(s) for s in plan.starts]
        slopes = [int(s) for s in plan.slopes]
        intercepts = [int(c) for c in plan.intercepts]
        pieces = len(starts)

        def stage(value, shape, label):
            register = Signal(shape, name=f"{name}_{label}")
            with m.If(advance):
                m.d.sync += register.eq(value)
            return register

        # Stage 0: magnitude (symmetric plans); stage 1: piece index.
        if plan.symmetric:
            c, negative = _magnitude(m, x, plan.in_format, name)
        else:
            c, negative = x, Const(0)
        code_shape = signed(plan.in_format.width + 1)
        c0 = stage(c, code_shape, "c0")
        negative0 = stage(negative, 1, "negative0")
        end = self._domain_end()
        run = uniform_run(starts, end)
        piece = self._piece_index(m, c0, starts, run, name)
        c1 = stage(c0, code_shape, "c1")
        piece1 = stage(piece, range(pieces), "piece1")
        negative1 = stage(negative0, 1, "negative1")

        # Stage 2: offset into the piece, slope and intercept of the piece.
        a, b, bits = run
        offset_width = max(1, (max(hi - lo for lo, hi in zip(starts, starts[1:] + [end])) - 1)
                           .bit_length())
        if b >= a and all(a <= j <= b for j in range(pieces) if slopes[j] != 0):
            # Only pieces of the uniform run have a slope (the others are constants, whose
            # offset is multiplied by 0): the offset is a bit slice.
            offset = (c1 - starts[a])[:bits] if bits > 0 else Const(0, 1)
        else:
            offset = c1 - Array(Const(v, code_shape) for v in starts)[piece1]
        offset2 = stage(offset, unsigned(offset_width), "offset2")
        slope_shape = signed(signed_bits_for(min(slopes + [0]), max(slopes + [0])))
        intercept_shape = signed(signed_bits_for(min(intercepts + [0]), max(intercepts + [0])))
        intercept2 = stage(Array(Const(v, intercept_shape) for v in intercepts)[piece1],
                           intercept_shape, "intercept2")
        negative2 = stage(negative1, 1, "negative2")

        # Stage 3: the product slope × offset.
        product_shape = signed(slope_shape.width + offset_width + 1)
        if plan.slope_kind == "any":
            slope2 = stage(Array(Const(v, slope_shape) for v in slopes)[piece1], slope_shape,
                           "slope2")
            product = slope2 * offset2
        else:
            product = self._shift_add_product(m, slopes, piece1, offset2, stage, name)
        product3 = stage(product, product_shape, "product3")
        intercept3 = stage(intercept2, intercept_shape, "intercept3")
        negative3 = stage(negative2, 1, "negative3")

        # Stage 4: intercept, floor, clamp; stage 5: unfold.
        out = plan.out_format
        total = Signal(signed(max(product_shape.width, intercept_shape.width) + 1),
                       name=f"{name}_total")
        m.d.comb += total.eq(product3 + intercept3)
        floor = total >> plan.shift
        y4 = stage(Mux(floor > out.max_int, out.max_int,
                       Mux(floor < out.min_int, out.min_int, floor)),
                   signed(out.width + 2), "y4")
        negative4 = stage(negative3, 1, "negative4")
        value = _unfold(y4, negative4, plan.function.symmetry, out) if plan.symmetric else y4
        with m.If(advance):
            m.d.sync += result.eq(value)

    def _domain_end(self):
        fmt = self._plan.in_format
        return (1 << (fmt.width - 1)) + 1 if self._plan.symmetric else fmt.max_int + 1

    def _piece_index(self, m, c, starts, run, name):
        """Index of the piece holding code ``c`` (the last start at or below it); ``run`` is
        the plan's :func:`uniform_run`."""
        a, b, bits = run
        pieces = len(starts)
        index = Signal(range(pieces), name=f"{name}_piece")
        if b < a:
            # No uniform run: a thermometer of comparators, one per start.
            m.d.comb += index.eq(sum((c >= starts[j] for j in range(1, pieces)),
                                     Const(0, range(pieces))))
            return index
        run_end = starts[a] + ((b - a + 1) << bits)
        before = sum((c >= starts[j] for j in range(1, a)), Const(0, range(pieces)))
        after = sum((c >= starts[j] for j in range(b + 2, pieces)),
                    Const(b + 1, range(pieces)))
        run_index = a + ((c - starts[a]) >> bits)
        m.d.comb += index.eq(Mux(c < starts[a], before, Mux(c >= run_end, after, run_index)))
        return index

    def _shift_add_product(self, m, slopes, piece, offset, stage, name):
        """``slope × offset`` as one or two shifted, signed copies of ``offset``."""
        decomposed = [slope_terms(s) for s in slopes]
        exponents = [e for terms in decomposed for _, e in terms] or [0]
        exponent_shape = range(max(exponents) + 1)
        terms = []
        for k in range(2):
            signs = [terms_[k][0] if len(terms_) > k else 0 for terms_ in decomposed]
            shifts = [terms_[k][1] if len(terms_) > k else 0 for terms_ in decomposed]
            sign = stage(Array(Const(s, signed(2)) for s in signs)[piece], signed(2),
                         f"sign{k}")
            shift = stage(Array(Const(e, exponent_shape) for e in shifts)[piece],
                          exponent_shape, f"exponent{k}")
            shifted = Signal(unsigned(len(offset) + max(exponents)), name=f"{name}_term{k}")
            m.d.comb += shifted.eq(offset << shift)
            terms.append(Mux(sign == 0, 0, Mux(sign < 0, -shifted, shifted)))
        return terms[0] + terms[1]
