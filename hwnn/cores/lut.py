"""Lookup-table activation unit: the hardware of :func:`hwnn.ref.lut.lut`."""

from __future__ import annotations

from amaranth.hdl import Mux, Signal
from amaranth.lib.memory import Memory

from ..plans.lut import LUTPlan
from ._activation import _Activation, _magnitude, _unfold
from .requantize import format_shape

__all__ = ["LUTActivation"]


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
        plan = self._plan
        name = f"lane{index}"
        if plan.symmetric:
            code, negative = _magnitude(m, x, plan.in_format, name)
        else:
            code, negative = x, None
        clamped = Mux(code < plan.lo, plan.lo, Mux(code > plan.hi, plan.hi, code))
        port = self._table.read_port(domain="sync")
        m.d.comb += [port.addr.eq((clamped - plan.lo) >> plan.shift), port.en.eq(advance)]
        if not plan.symmetric:
            m.d.comb += result.eq(port.data)
            return
        negative_read = Signal(name=f"{name}_negative_read")  # aligned with the table read
        with m.If(advance):
            m.d.sync += negative_read.eq(negative)
        m.d.comb += result.eq(_unfold(port.data, negative_read, plan.function.symmetry,
                                      plan.out_format))
