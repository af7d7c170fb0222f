"""Parts of a folded MAC lane (see :class:`hwnn.cores.mac.FoldedMac`).

A lane follows a :class:`~hwnn.plans.dense.LaneSchedule`: in cycle ``t`` of a vector it reads
one input element and one weight, forms their product (a :class:`~hwnn.cores.mac.Product`'s
business) and adds it to the running sum of the output that cycle belongs to. This module
holds what does not depend on how the product is made: which input element a lane reads, the
accumulator with its segment restarts and partial sums, and the issue sequencing.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Mux, Shape, Signal, Value
from amaranth.lib.memory import Memory

__all__ = ["any_equal", "select_input", "accumulate_lane", "mac_sequencer"]


def any_equal(value, constants):
    """``value`` equals one of ``constants``: a balanced OR of the comparisons (a chain of
    hundreds of ORs, one per row of a deep lane, overflows YoWASP yosys's stack in ABC9)."""
    terms = [value == constant for constant in constants] or [Const(0)]
    while len(terms) > 1:
        terms = [a | b for a, b in zip(terms[::2], terms[1::2])] + terms[len(terms) & ~1:]
    return terms[0]


def select_input(m, index, columns, x, n_in, t, ii):
    """The element of the input vector ``x`` that a lane reads in cycle ``t`` (unregistered).

    ``columns[t]`` is the element's index: a constant when it never changes, ``t`` itself when
    the lane walks the columns in order, otherwise a small asynchronous ROM.
    """
    # Indexing the vector view with a signal would scale the index by a `*`; an Array of its
    # elements is the same multiplexer without one. Padding it to a power of two covers every
    # index pattern (no incomplete `case` in the Verilog).
    padded = 1 << max(n_in - 1, 0).bit_length()
    elements = Array(x[k if k < n_in else 0] for k in range(padded))
    if len(set(columns)) == 1:
        return Value.cast(x[columns[0]])
    if list(columns) == list(range(ii)):
        return Value.cast(elements[t])
    rom = Memory(shape=range(n_in), depth=ii, init=columns)
    m.submodules[f"columns{index}"] = rom
    port = rom.read_port(domain="comb")
    m.d.comb += port.addr.eq(t)
    return Value.cast(elements[port.data])


def accumulate_lane(m, index, lane, product, *, t, advance, accumulate, acc_shape, bias, sums,
                    row_output=None, early=None):
    """Accumulate lane ``index``'s ``product`` (registered, aligned with cycle ``t``).

    Each output segment of the lane starts from 0, or from its row's bias if it holds the
    row's column 0 (every row has exactly one such segment, so the bias joins each sum once
    without an adder of its own). The register holding each finished segment is appended to
    ``sums[row]``; the caller adds a row's partial sums. With ``sums`` None no segment is kept
    beyond the accumulator (the caller takes each from it in time). With ``row_output`` (a
    :class:`~hwnn.cores.mac.RowOutput`) each finished sum is kept as ``row_output``'s value of
    it instead (every row then lies in one lane): the rows finished before the lane's last
    cycle shift, in order, into one register (``early``: ``(flag, count, rows)`` from
    :func:`mac_sequencer`: the flag set while the product register holds such a row's last
    product, the count of early rows already finished in the vector, ``rows`` the most early
    rows of a lane), their outputs from :meth:`~hwnn.cores.mac.RowOutput.indexed` by that
    count, so no per-row decode or enable is needed. Returns the accumulator.
    """
    starts = {first: int(bias[row]) if lane.column[first] == 0 else 0
              for row, first, _ in lane.segments}
    init_value = Const(0, acc_shape)
    if len(set(starts.values())) == 1:
        # Every segment starts from the same value (a binarized layer's correction): no
        # multiplexer chain over the lane's rows.
        init_value = Const(next(iter(starts.values())), acc_shape)
    else:
        for first, value in starts.items():
            if value:
                init_value = Mux(t == first, Const(value, acc_shape), init_value)
    restart = Signal(name=f"restart{index}")        # a new output's sum begins
    init = Signal(acc_shape, name=f"init{index}")  # ... from this value
    with m.If(advance):
        m.d.sync += [restart.eq(any_equal(t, [first for _, first, _ in lane.segments])),
                     init.eq(init_value)]
    acc = Signal(acc_shape, name=f"acc{index}")
    acc_next = Signal(acc_shape, name=f"acc{index}_next")
    m.d.comb += acc_next.eq(Mux(restart, init, acc) + product)
    with m.If(accumulate):
        m.d.sync += acc.eq(acc_next)
    if row_output is not None:
        _shift_rows(m, index, lane, acc, acc_next, accumulate, sums, row_output, early)
        return acc
    segments = () if sums is None else lane.segments
    done = {}   # the rows finished before the lane's last cycle: set as their sum completes
    for row, _, last_t in segments:
        if last_t != lane.last_busy_cycle:
            done[row] = Signal(name=f"done{index}_row{row}")
            with m.If(advance):
                m.d.sync += done[row].eq(t == last_t)
    for row, _, last_t in segments:
        if row not in done:
            # The final segment stays in the accumulator until the next vector's first product
            # arrives, which is no earlier than the output stage reads it.
            sums[row].append(acc)
            continue
        partial = Signal(acc_shape, name=f"partial{index}_row{row}")
        with m.If(accumulate & done[row]):
            m.d.sync += partial.eq(acc_next)
        sums[row].append(partial)
    return acc


def _shift_rows(m, index, lane, acc, acc_next, accumulate, sums, row_output, early):
    """The row outputs of lane ``index`` (see :func:`accumulate_lane`): the early rows' values
    shifted into one register as they finish, the last row's built from the accumulator."""
    rows = [row for row, _, _ in lane.segments]
    width = Shape.cast(row_output.shape).width
    if len(rows) > 1:
        flag, count, n_early = early
        shifted = Signal(width * (len(rows) - 1), name=f"outputs{index}")
        value = row_output.indexed(m, index, rows[:-1], count, acc_next)
        shift = accumulate & flag
        if len(rows) - 1 < n_early:
            # A last lane with fewer rows: the other lanes' later early rows are not its own.
            shift = shift & (count < len(rows) - 1)
        with m.If(shift):
            # Row j of the lane ends at bit j once the lane's len(rows) - 1 early rows are in.
            m.d.sync += shifted.eq(Cat(shifted[width:], value))
        for j, row in enumerate(rows[:-1]):
            sums[row].append(shifted[j * width:(j + 1) * width])
    # The final row stays in the accumulator until the next vector's first product arrives,
    # which is no earlier than the output stage reads it.
    sums[rows[-1]].append(row_output.build(m, rows[-1], acc))


def mac_sequencer(m, ii, *, accepted, advance, finish, partials_valid, depth=1, ends=None,
                  early_ends=()):
    """The issue, operand and product stages' control of a folded MAC array.

    A vector accepted (``accepted``) is issued over ``ii`` cycles ``t = 0 … ii − 1`` while
    ``busy``; the operand stage follows one cycle later and the product register ``depth``
    cycles after that, all moving only when ``advance`` is high. ``partials_valid`` (the
    caller's register) is set when the product of a cycle in ``ends`` (default: the last,
    ``ii − 1``) has been accumulated and cleared on ``finish`` (the output stage took the
    sums).

    With ``early_ends`` (the cycles in which rows end before a lane's last one, ascending)
    it also keeps ``early = (flag, count, len(early_ends))`` for :func:`accumulate_lane`:
    ``flag`` is set while the product register holds a valid product of one of those cycles,
    ``count`` (a register beside the accumulators) is how many such products the vector has
    accumulated so far.

    Returns ``(busy, last_issue, t, t_late, accumulate, early)`` (``early`` None without
    ``early_ends``): ``last_issue`` is ``t == ii − 1`` kept in a register, so the input handshake (which enables the wide input
    register) is one LUT deep rather than a comparator deep; ``t_late`` is the cycle index of
    the stage just before the product register (the operand stage for ``depth == 1``), the
    one the accumulator's controls are decoded from (and registered with the product, so the
    accumulate stage has a single multiplexer in front of its adder); ``accumulate`` enables
    the accumulators.
    """
    busy = Signal(name="busy")
    t = Signal(range(ii), name="t")
    last_issue = Signal(init=ii == 1, name="last_issue")
    with m.If(busy & advance):
        m.d.sync += [t.eq(Mux(last_issue, 0, t + 1)),
                     last_issue.eq(Mux(last_issue, ii == 1, t == ii - 2))]
        with m.If(last_issue):
            m.d.sync += busy.eq(0)
    with m.If(accepted):
        m.d.sync += [busy.eq(1), t.eq(0), last_issue.eq(ii == 1)]

    valid_operands, valid_product = Signal(name="valid_operands"), Signal(name="valid_product")
    t_operands = Signal.like(t, name="t_operands")
    last_product = Signal(name="last_product")
    stages = [valid_operands.eq(busy), t_operands.eq(t)]
    # The product's own register stages, beyond the one every product has.
    valid_late, t_late = valid_operands, t_operands
    for stage in range(1, depth):
        valid_stage = Signal(name=f"valid_product_stage{stage}")
        t_stage = Signal.like(t, name=f"t_product_stage{stage}")
        stages += [valid_stage.eq(valid_late), t_stage.eq(t_late)]
        valid_late, t_late = valid_stage, t_stage
    with m.If(advance):
        m.d.sync += stages + [valid_product.eq(valid_late),
                              last_product.eq(any_equal(t_late, [ii - 1] if ends is None
                                                        else ends))]
    accumulate = valid_product & advance
    with m.If(finish):
        m.d.sync += partials_valid.eq(0)
    with m.If(accumulate & last_product):
        m.d.sync += partials_valid.eq(1)
    early = None
    if early_ends:
        flag = Signal(name="early_product")
        count = Signal(range(len(early_ends)), name="early_count")
        with m.If(advance):
            m.d.sync += flag.eq(valid_late & any_equal(t_late, early_ends))
        with m.If(accumulate & flag):
            m.d.sync += count.eq(count + 1)
        with m.If(accumulate & last_product):
            m.d.sync += count.eq(0)
        early = (flag, count, len(early_ends))
    return busy, last_issue, t, t_late, accumulate, early
