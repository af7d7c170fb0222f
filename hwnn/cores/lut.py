"""Lookup-table activation unit: the hardware of :func:`hwnn.ref.lut.lut`."""

from __future__ import annotations

from amaranth.hdl import Array, Const, Mux
from amaranth.lib.memory import Memory

from ..plans.lut import LUTPlan
from ._activation import _Activation, _magnitude, _unfold, memory_read, register_stage
from .requantize import format_shape

__all__ = ["LUTActivation", "lut_datapath", "lut_rom"]


class LUTActivation(_Activation):
    """``y = lut(plan, x)`` (:func:`hwnn.ref.lut.lut`) on every lane, one transfer per cycle.

    Latency 3, ``ii`` 1. The table is an ``amaranth.lib.memory.Memory`` with a synchronous read
    port per lane, so yosys maps large tables to block RAM and small ones to LUTs. A symmetric
    plan folds the input to its magnitude before the table and unfolds the result after it.

    Parameters
    ----------
    plan : LUTPlan
    lanes : int
        Values per transfer: 1 for a scalar payload, more for an ``ArrayLayout`` vector.

    Members
    -------
    i : In(stream.Signature(<in_format shape> or ArrayLayout(<in_format shape>, lanes)))
    o : Out(stream.Signature(<out_format shape> or ArrayLayout(<out_format shape>, lanes)))

    Raises
    ------
    TypeError
        ``plan`` is not a LUTPlan, or ``lanes`` not an integer (``ParameterTypeError`` with
        ``parameter`` ``"plan"`` or ``"lanes"``).
    ValueError
        ``lanes`` < 1 (``ParameterValueError``, ``parameter`` ``"lanes"``).
    """

    _plan_type = LUTPlan

    def elaborate(self, platform):
        self._table = Memory(shape=format_shape(self._plan.out_format),
                             depth=len(self._plan.table), init=self._plan.table)
        m = super().elaborate(platform)
        m.submodules.table = self._table
        return m

    def _compute(self, m, x, result, advance, index):
        m.d.comb += result.eq(lut_datapath(m, self._plan, x, name=f"lane{index}",
                                           read=memory_read(m, self._table, advance),
                                           stage=register_stage(m, advance, index)))


def lut_datapath(m, plan, x, *, name, read, stage):
    """``lut(plan, x)`` (:func:`hwnn.ref.lut.lut`) for one value ``x`` (codes of
    ``plan.in_format``): fold to the magnitude (symmetric plans), clamp, address, table entry
    and unfold.

    ``read(address)`` returns the table entry at ``address``; ``stage(value, shape, label)``
    returns ``value`` as seen when that entry is: the unit reads a synchronous memory port and
    registers the sign beside it, a combinational datapath (:func:`lut_rom`) passes both
    through. Returns the output code (``format_shape(plan.out_format)`` wide); ``name``
    prefixes the signals it makes.
    """
    if plan.symmetric:
        code, negative = _magnitude(m, x, plan.in_format, name)
    else:
        code, negative = x, None
    # Clamp only at a bound inside the code's range: one at its end can never fire (and a
    # constant comparison is what Verilator's lint rejects: UNSIGNED, CMPCONST).
    shape, clamped = code.shape(), code
    if plan.hi < (1 << shape.width - shape.signed) - 1:
        clamped = Mux(code > plan.hi, plan.hi, clamped)
    if plan.lo > (-(1 << shape.width - 1) if shape.signed else 0):
        clamped = Mux(code < plan.lo, plan.lo, clamped)
    entry = read((clamped - plan.lo) >> plan.shift)
    if not plan.symmetric:
        return entry
    negative_read = stage(negative, 1, "negative_read")   # aligned with the table read
    return _unfold(entry, negative_read, plan.function.symmetry, plan.out_format)


def lut_rom(plan):
    """The table of ``plan`` as logic: ``read(address)`` for :func:`lut_datapath` that looks
    the entry up combinationally (a case statement over the addresses, which yosys maps to
    LUTs rather than to a memory)."""
    table = Array(Const(int(v), format_shape(plan.out_format)) for v in plan.table)
    return lambda address: table[address]
