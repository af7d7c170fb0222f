"""The folded MAC lane shared by Dense (multipliers) and ShiftMac (barrel shifters).

A lane follows a :class:`~hwnn.plans.dense.LaneSchedule`: in cycle ``t`` of a vector it reads
one input element and one weight, forms their product (the caller's business) and adds it to
the running sum of the output that cycle belongs to. This module holds what does not depend on
how the product is made: which input element a lane reads, and the accumulator with its
segment restarts and partial sums.
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Mux, Signal, Value
from amaranth.lib.memory import Memory

__all__ = ["any_equal", "select_input", "accumulate_lane"]


def any_equal(value, constants):
    """``value`` equals one of ``constants``."""
    result = Const(0)
    for constant in constants:
        result = result | (value == constant)
    return result


def select_input(m, index, columns, x, n_in, t, ii):
    """The element of the input vector ``x`` that a lane reads in cycle ``t`` (unregistered).

    ``columns[t]`` is the element's index: a constant when it never changes, ``t`` itself when
    the lane walks the columns in order, otherwise a small asynchronous ROM.
    """
    # Indexing the vector view with a signal would scale the index by a `*`; an Array of its
    # elements is the same multiplexer without one.
    elements = Array(x[k] for k in range(n_in))
    if len(set(columns)) == 1:
        return Value.cast(x[columns[0]])
    if list(columns) == list(range(ii)):
        return Value.cast(elements[t])
    rom = Memory(shape=range(n_in), depth=ii, init=columns)
    m.submodules[f"columns{index}"] = rom
    port = rom.read_port(domain="comb")
    m.d.comb += port.addr.eq(t)
    return Value.cast(elements[port.data])


def accumulate_lane(m, index, lane, product, *, t, advance, accumulate, acc_shape, bias, sums):
    """Accumulate lane ``index``'s ``product`` (registered, aligned with cycle ``t``).

    Each output segment of the lane starts from 0, or from its row's bias if it holds the
    row's column 0 (every row has exactly one such segment, so the bias joins each sum once
    without an adder of its own). The register holding each finished segment is appended to
    ``sums[row]``; the caller adds a row's partial sums.
    """
    init_value = Const(0, acc_shape)
    for row, first, _ in lane.segments:
        if lane.column[first] == 0 and int(bias[row]):
            init_value = Mux(t == first, Const(int(bias[row]), acc_shape), init_value)
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
    for row, _, last_t in lane.segments:
        if last_t == lane.last_busy_cycle:
            # The final segment stays in the accumulator until the next vector's first product
            # arrives, which is no earlier than the output stage reads it.
            sums[row].append(acc)
            continue
        done = Signal(name=f"done{index}_row{row}")
        with m.If(advance):
            m.d.sync += done.eq(t == last_t)
        partial = Signal(acc_shape, name=f"partial{index}_row{row}")
        with m.If(accumulate & done):
            m.d.sync += partial.eq(acc_next)
        sums[row].append(partial)
