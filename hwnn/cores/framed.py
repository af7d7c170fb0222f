"""A per-element core on framed streams: the core's data, with ``last`` carried beside it."""

from __future__ import annotations

from amaranth.hdl import Module, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..checks import ParameterTypeError, ParameterValueError
from ..fixed import Format
from ._component import owned
from .requantize import format_shape

__all__ = ["Framed", "frame_layout", "framed_layout"]


def framed_layout(shape) -> data.StructLayout:
    """The payload of a framed stream of ``shape`` elements: ``data`` and ``last``."""
    return data.StructLayout({"data": shape, "last": 1})


def frame_layout(fmt: Format, lanes: int) -> data.StructLayout:
    """The payload of a framed stream of ``lanes`` codes of ``fmt`` per step:
    ``{"data": ArrayLayout(format_shape(fmt), lanes), "last": 1}``."""
    return framed_layout(data.ArrayLayout(format_shape(fmt), lanes))


class Framed(wiring.Component):
    """``core`` (one output per input, in order) applied to the ``data`` of a framed stream.

    ``i`` carries ``{data, last}``; ``data`` goes through ``core``, and ``last`` waits in a
    small FIFO (one bit per vector in flight, ``core.latency + 2`` deep) until the core's output
    of the same vector leaves, so ``o`` carries ``{core output, last}``. The core keeps its own
    timing: latency and ii are the core's (the FIFO is never full, since no more than
    ``latency + 1`` vectors are ever inside the core and its output register).

    Members
    -------
    i : In(stream.Signature(StructLayout({"data": core's input payload, "last": 1})))
    o : Out(stream.Signature(StructLayout({"data": core's output payload, "last": 1})))

    Raises
    ------
    TypeError
        ``core`` has no ``i``/``o`` streams.
    ValueError
        ``core`` has an ``always_ready`` output (nothing could hold its outputs while the
        next layer is busy).
    """

    def __init__(self, core):
        for name in ("i", "o"):
            member = getattr(core, name, None)
            if not isinstance(getattr(member, "signature", None), stream.Signature):
                raise ParameterTypeError("core", f"core must have stream members i and o, not "
                                                 f"{type(core).__name__}")
        if core.o.signature.always_ready:
            raise ParameterValueError("core", "core must not have an always_ready output")
        self._core = owned(core)
        super().__init__({
            "i": In(stream.Signature(framed_layout(core.i.signature.members["payload"].shape))),
            "o": Out(stream.Signature(framed_layout(core.o.signature.members["payload"].shape))),
        })

    core = property(lambda self: self._core)
    ii = property(lambda self: self._core.ii)
    latency = property(lambda self: self._core.latency)
    plan = property(lambda self: self._core.plan)
    lanes = property(lambda self: getattr(self._core, "lanes", 1))

    def describe(self) -> dict:
        return {**self._core.describe(), "framed": True}

    def elaborate(self, platform):
        m = Module()
        core = self._core
        m.submodules.core = core
        m.submodules.lasts = lasts = SyncFIFOBuffered(width=1, depth=core.latency + 2)
        # The core takes a vector only when its last has room, so they stay paired.
        m.d.comb += [
            Value.cast(core.i.payload).eq(Value.cast(self.i.payload.data)),
            core.i.valid.eq(self.i.valid & lasts.w_rdy),
            self.i.ready.eq(core.i.ready & lasts.w_rdy),
            lasts.w_data.eq(self.i.payload.last),
            lasts.w_en.eq(self.i.valid & self.i.ready),
            # Out: the core's output and the oldest last leave together.
            Value.cast(self.o.payload.data).eq(Value.cast(core.o.payload)),
            self.o.payload.last.eq(lasts.r_data),
            self.o.valid.eq(core.o.valid & lasts.r_rdy),
            core.o.ready.eq(self.o.ready & lasts.r_rdy),
            lasts.r_en.eq(self.o.valid & self.o.ready),
        ]
        return m
