"""Requantization in hardware: the Amaranth twin of :func:`hwnn.fixed.requantize`."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Value, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..checks import ParameterValueError, check_enum
from ..fixed import Format, Overflow, Rounding, check_format, requantize_shift
from ._component import rejects_quietly

__all__ = ["format_shape", "requantize", "requantize_has_logic", "Requantize"]


def format_shape(fmt: Format):
    """The Amaranth shape that holds the integer codes of ``fmt``."""
    return signed(fmt.width) if fmt.signed else unsigned(fmt.width)


def _extend(value: Value, signed_: bool, width: int) -> Value:
    """``value`` sign- or zero-extended to at least ``width`` bits, keeping its signedness."""
    extra = width - len(value)
    if extra <= 0:
        return value
    pad = value[-1].replicate(extra) if signed_ else Const(0, extra)
    wide = Cat(value, pad)
    return wide.as_signed() if signed_ else wide


def requantize(value, src, dst, rounding=Rounding.TRUNC, overflow=Overflow.WRAP) -> Value:
    """Combinational logic that converts ``value`` (codes of ``src``) to codes of ``dst``.

    Bit-exact with :func:`hwnn.fixed.requantize` for every code and mode. The result has the
    shape :func:`format_shape` of ``dst``.

    Cost: a right shift is wiring; rounding adds one incrementer of the kept width (half-even also
    an OR of the dropped bits); saturation adds two comparators against constants, only on the
    sides where the source range can exceed the destination's.

    Raises
    ------
    TypeError
        A format or mode has the wrong type (``ParameterTypeError``, ``exc.parameter`` names
        it: ``src``, ``dst``, ``rounding`` or ``overflow``).
    ValueError
        A format or mode has a bad value, or ``value`` is not ``src.width`` bits wide
        (``ParameterValueError``).
    """
    src = check_format(src, "src")
    dst = check_format(dst, "dst")
    rounding = check_enum(Rounding, rounding, "rounding")
    overflow = check_enum(Overflow, overflow, "overflow")
    value = Value.cast(value)
    if len(value) != src.width:
        raise ParameterValueError("value", f"value must be {src.width} bits wide (the width of "
                                           f"src {src}), not {len(value)}")
    value = value.as_signed() if src.signed else value.as_unsigned()
    # Track the integer range of the expression so saturation only builds the comparators
    # that can ever fire.
    lo, hi = src.min_int, src.max_int

    shift = requantize_shift(src, dst)
    if shift > 0:
        # Keep at least one bit beyond the shift so `floor` and the dropped bits both exist.
        value = _extend(value, src.signed, shift + 1)
        floor = value >> shift
        lo, hi = lo >> shift, hi >> shift
        if rounding is Rounding.TRUNC:
            scaled = floor
        else:
            half_bit = value[shift - 1]
            if rounding is Rounding.HALF_UP:
                round_up = half_bit
            else:
                sticky = value[:shift - 1].any() if shift > 1 else Const(0, 1)
                round_up = half_bit & (sticky | floor[0])
            scaled = floor + round_up
            hi += 1
    elif shift < 0:
        scaled = value << -shift
        lo, hi = lo << -shift, hi << -shift
    else:
        scaled = value

    if overflow is Overflow.SAT:
        # Both comparisons read the rounded value, side by side: chaining the second after the
        # first clamp put two comparators in series behind the rounding incrementer (a 2-lane
        # 8x8 product on iCE40 UP5K: 33.8 MHz chained, 53.6 MHz side by side, 49 -> 36 carries).
        # At most one of them holds, so the order of the multiplexers does not matter.
        above = scaled > dst.max_int if hi > dst.max_int else Const(0, 1)
        below = scaled < dst.min_int if lo < dst.min_int else Const(0, 1)
        scaled = Mux(above, dst.max_int, Mux(below, dst.min_int, scaled))
    # After saturation the value is in range, so keeping the low bits is exact; with WRAP this
    # slice *is* the wrap-around.
    bits = _extend(scaled, scaled.shape().signed, dst.width)[:dst.width]
    return bits.as_signed() if dst.signed else bits


def requantize_has_logic(src, dst, rounding=Rounding.TRUNC, overflow=Overflow.WRAP) -> bool:
    """Whether :func:`requantize` from ``src`` to ``dst`` builds a rounding incrementer or a
    saturation comparator, rather than only wiring (shifts, slices, sign extension)."""
    src, dst = check_format(src, "src"), check_format(dst, "dst")
    rounding = check_enum(Rounding, rounding, "rounding")
    overflow = check_enum(Overflow, overflow, "overflow")
    shift = requantize_shift(src, dst)
    if shift > 0 and rounding is not Rounding.TRUNC:
        return True
    lo, hi = ((src.min_int >> shift, src.max_int >> shift) if shift >= 0
              else (src.min_int << -shift, src.max_int << -shift))
    return overflow is Overflow.SAT and (hi > dst.max_int or lo < dst.min_int)


class Requantize(wiring.Component):
    """A registered requantizer for a stream of scalars: ``o = requantize(i, src, dst)``.

    Latency 1 cycle, ``ii`` 1 (one value per cycle); a full-throughput pipeline register that
    obeys the stream rules under any backpressure.

    Parameters
    ----------
    src, dst : Format
        Input and output formats.
    rounding : Rounding
    overflow : Overflow

    Members
    -------
    i : In(stream.Signature(format_shape(src)))
    o : Out(stream.Signature(format_shape(dst)))

    Raises
    ------
    TypeError, ValueError
        A format or mode is rejected (``ParameterTypeError``/``ParameterValueError``,
        ``exc.parameter`` names it).
    """

    @rejects_quietly
    def __init__(self, src, dst, rounding=Rounding.TRUNC, overflow=Overflow.WRAP):
        self._src = check_format(src, "src")
        self._dst = check_format(dst, "dst")
        self._rounding = check_enum(Rounding, rounding, "rounding")
        self._overflow = check_enum(Overflow, overflow, "overflow")
        super().__init__({
            "i": In(stream.Signature(format_shape(self._src))),
            "o": Out(stream.Signature(format_shape(self._dst))),
        })

    latency = property(lambda self: 1, doc="Cycles from an accepted input to its output.")
    ii = property(lambda self: 1, doc="Cycles between accepted inputs at full rate.")
    src = property(lambda self: self._src)
    dst = property(lambda self: self._dst)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [
                self.o.valid.eq(1),
                self.o.payload.eq(requantize(self.i.payload, self._src, self._dst,
                                             self._rounding, self._overflow)),
            ]
        return m
