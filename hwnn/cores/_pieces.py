"""Finding the piece of a piecewise activation (PWL, polynomial) in hardware, and clamping a
value whose range is known: what :mod:`hwnn.cores.pwl` and :mod:`hwnn.cores.poly` share."""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Mux, Signal

__all__ = ["uniform_run", "domain_end", "piece_index", "clamp_known"]


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


def domain_end(plan):
    """One past the last ``c`` of the plan's domain (folded magnitudes when symmetric)."""
    fmt = plan.in_format
    return (1 << (fmt.width - 1)) + 1 if plan.symmetric else fmt.max_int + 1


def piece_index(m, c, starts, run, name):
    """Index of the piece holding code ``c`` (the last start at or below it); ``run`` is
    the plan's :func:`uniform_run`."""
    a, b, bits = run
    pieces = len(starts)
    index = Signal(range(pieces), name=f"{name}_piece")
    if b < a:
        m.d.comb += index.eq(_thermometer_index([_at_least(c, s) for s in starts[1:]]))
        return index
    run_end = starts[a] + ((b - a + 1) << bits)
    before = _thermometer_index([_at_least(c, s) for s in starts[1:a]])
    after = _thermometer_index([_at_least(c, s) for s in starts[b + 2:]])
    if starts[a] % (1 << bits) == 0:
        # An aligned run: the index is a bit slice of the code, less a constant.
        run_index = a + ((c >> bits) - (starts[a] >> bits))
    else:
        run_index = a + ((c - starts[a]) >> bits)
    m.d.comb += index.eq(Mux(~_at_least(c, starts[a]), before,
                             Mux(_at_least(c, run_end), b + 1 + after, run_index)))
    return index


def _at_least(c, constant):
    """``c >= constant`` for a constant, comparing only the bits above its trailing zeros."""
    if constant <= 0 and not c.shape().signed:
        return Const(1)
    zeros = (constant & -constant).bit_length() - 1 if constant else 0
    return (c >> zeros) >= (constant >> zeros)


def _thermometer_index(flags):
    """How many of ``flags`` are set, for flags that are monotone (``flags[j]`` implies every
    ``flags[i < j]``): a binary search over the flags, one multiplexer level per index bit,
    instead of an adder tree."""
    if not flags:
        return Const(0, 1)
    count = len(flags)
    bits = count.bit_length()
    index = []          # index bits from the most significant down
    for bit in reversed(range(bits)):
        prefix_width = len(index)
        choices = []
        for high in range(1 << prefix_width):
            position = (high << (bit + 1)) + (1 << bit)    # the flag that decides this bit
            choices.append(flags[position - 1] if position <= count else Const(0))
        prefix = Cat(*reversed(index)) if index else Const(0, 1)
        index.append(Array(choices)[prefix] if index else choices[0])
    return Cat(*reversed(index))


def clamp_known(value, low, high, minimum, maximum):
    """``value`` (known to lie in ``[low, high]``) clamped to ``[minimum, maximum]``, with a
    comparator only on a side it can actually cross."""
    if high > maximum:
        value = Mux(value > maximum, maximum, value)
    if low < minimum:
        value = Mux(value < minimum, minimum, value)
    return value
