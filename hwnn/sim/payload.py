"""Packing numpy integer arrays into stream payload bits and back.

Vectors use ``data.ArrayLayout`` with element 0 in the least significant bits, so a packed
payload is the same integer that a hand-written Verilog testbench drives on ``i__payload``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Shape, ShapeCastable
from amaranth.lib import data

__all__ = ["PayloadCodec"]


@dataclass(frozen=True)
class PayloadCodec:
    """Converts between integer codes (numpy) and the packed integer of a payload shape.

    ``lanes`` is ``None`` for a scalar payload (rows are single integers) and the element count
    for an ``ArrayLayout`` payload (rows have ``lanes`` integers, element 0 in the low bits).
    """
    width: int
    signed: bool
    lanes: int | None

    @classmethod
    def for_shape(cls, shape) -> "PayloadCodec":
        """The codec of a scalar shape or a one-level ``ArrayLayout`` of scalars.

        Raises
        ------
        TypeError
            The payload is some other layout.
        """
        if isinstance(shape, data.ArrayLayout):
            elem = shape.elem_shape
            if isinstance(elem, ShapeCastable) and not isinstance(elem, Shape):
                raise TypeError(f"Array payload elements must be plain integers, not {elem!r}")
            elem = Shape.cast(elem)
            return cls(elem.width, elem.signed, shape.length)
        if isinstance(shape, ShapeCastable) and not isinstance(shape, Shape):
            raise TypeError(f"Payload shape {shape!r} is neither a scalar nor an ArrayLayout")
        shape = Shape.cast(shape)
        return cls(shape.width, shape.signed, None)

    @property
    def _mask(self) -> int:
        return (1 << self.width) - 1

    def rows(self, values) -> np.ndarray:
        """``values`` as an int64 array of rows, checked against the element range.

        Raises
        ------
        ValueError
            Wrong shape, or a code outside the element's range.
        """
        values = np.asarray(values, dtype=np.int64)
        if self.lanes is None:
            if values.ndim != 1:
                raise ValueError(f"scalar payloads need a 1-D array, not shape {values.shape}")
        elif values.ndim != 2 or values.shape[1] != self.lanes:
            raise ValueError(f"payloads of {self.lanes} elements need an array of shape "
                             f"(n, {self.lanes}), not {values.shape}")
        lo = -(1 << (self.width - 1)) if self.signed else 0
        hi = (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1
        if values.size and (values.min() < lo or values.max() > hi):
            raise ValueError(f"payload codes must lie in [{lo}, {hi}], found "
                             f"[{values.min()}, {values.max()}]")
        return values

    def pack(self, row) -> int:
        """One row of codes to the packed payload integer."""
        if self.lanes is None:
            return int(row) & self._mask
        packed = 0
        for k, value in enumerate(row):
            packed |= (int(value) & self._mask) << (k * self.width)
        return packed

    def _to_signed(self, bits: int) -> int:
        if self.signed and bits >> (self.width - 1):
            return bits - (1 << self.width)
        return bits

    def unpack(self, packed: int):
        """The packed payload integer back to a code (scalar) or a list of codes."""
        packed = int(packed)
        if self.lanes is None:
            return self._to_signed(packed & self._mask)
        return [self._to_signed((packed >> (k * self.width)) & self._mask)
                for k in range(self.lanes)]
