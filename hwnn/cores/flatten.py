"""Flatten in hardware: a framed sequence of vectors collected into one vector."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..checks import ParameterTypeError
from ..fixed import check_format
from ..plans.pool import FlattenPlan
from ._component import rejects_quietly
from ._timing import last_steps, sequence_pipeline
from .framed import frame_layout
from .requantize import format_shape

__all__ = ["Flatten"]


class Flatten(wiring.Component):
    """Collects each sequence of ``plan.steps`` vectors of ``plan.channels`` codes into one
    vector of ``plan.n_out`` codes, in **time-major stream order**: element ``t·channels + c``
    is channel ``c`` of step ``t`` (``x.reshape(-1)`` of a ``(steps, channels)`` sequence).

    PyTorch's ``nn.Flatten`` after a ``Conv1d`` is channel-major (``c·steps + t``,
    :func:`hwnn.ref.pool.flatten`). This core does not transpose: the dense layer that follows
    takes the stream order when its weight is permuted with
    :meth:`~hwnn.plans.pool.FlattenPlan.stream_weight` (``stream_weight(W) @ x.reshape(-1) ==
    W @ flatten(x)``), which costs nothing in hardware. A network must do that permutation.
    So the core is one register per output code and a step counter, no second buffer.

    Sequences of another length than ``steps`` are **dropped**: no output, and the sticky
    ``error`` flag goes high (until reset); the next sequence is collected normally.

    Timing: ``ii`` = 1 cycle per input step (one output per sequence, every ``steps`` cycles
    at full rate); ``latency`` = 1 cycle from the sequence's last step to the output. The
    output register is also the collecting register, so while an output waits for ``ready``
    the input waits too (the next sequence's first step is accepted in the cycle the output
    is taken).

    Parameters
    ----------
    plan : FlattenPlan
    fmt : Format or str
        Format of the codes (passed through unchanged).

    Members
    -------
    i : In(stream.Signature(frame_layout(fmt, plan.channels)))
    o : Out(stream.Signature(data.ArrayLayout(format_shape(fmt), plan.n_out)))
    error : Out(1)
        Sticky: a sequence of the wrong length was dropped.

    Raises
    ------
    TypeError
        ``plan`` is not a :class:`~hwnn.plans.pool.FlattenPlan`, ``fmt`` not a format.
    ValueError
        ``fmt`` is not a valid format.
    """

    @rejects_quietly
    def __init__(self, plan: FlattenPlan, fmt):
        if not isinstance(plan, FlattenPlan):
            raise ParameterTypeError("plan", f"plan must be a FlattenPlan, not "
                                             f"{type(plan).__name__}")
        self._plan = plan
        self._format = check_format(fmt, "fmt")
        super().__init__({
            "i": In(stream.Signature(frame_layout(self._format, plan.channels))),
            "o": Out(stream.Signature(data.ArrayLayout(format_shape(self._format),
                                                       plan.n_out))),
            "error": Out(1),
        })

    plan = property(lambda self: self._plan, doc="The FlattenPlan this core implements.")
    in_format = property(lambda self: self._format)
    out_format = property(lambda self: self._format)
    latency = property(lambda self: 1, doc="Cycles from a sequence's last step to its output.")
    ii = property(lambda self: 1, doc="Cycles between accepted input steps at full rate.")

    def schedule(self, lengths, arrivals=None):
        """``(in_cycles, out_cycles)`` of back-to-back sequences of ``lengths`` steps, step
        ``k`` offered from cycle ``arrivals[k]`` (None: all from cycle 0), the output always
        taken: every step is taken when offered (at most one per cycle), and a sequence of
        ``plan.steps`` steps gives its vector the cycle after its last step (others none).

        Raises
        ------
        ValueError
            ``lengths`` holds a negative number, or ``arrivals`` is not one non-decreasing
            non-negative integer per step.
        """
        lengths, ins, outs = sequence_pipeline(lengths, arrivals, 1, self.latency)
        whole = [n == self._plan.steps for n in lengths if n]
        return ins, outs[last_steps(lengths)[whole]]

    def describe(self) -> dict:
        """Parameters and formats for manifests and reports (JSON-serializable)."""
        return {"kind": "flatten", "class": "Flatten", "steps": self._plan.steps,
                "channels": self._plan.channels, "n_out": self._plan.n_out,
                "format": str(self._format), "order": "time-major",
                "latency": self.latency, "ii": self.ii}

    def elaborate(self, platform):
        m = Module()
        steps, channels = self._plan.steps, self._plan.channels
        # Steps of the current sequence so far, saturating at `steps` (one too many).
        count = Signal(range(steps + 1))
        error = Signal()
        m.d.comb += self.error.eq(error)

        out_free = ~self.o.valid | self.o.ready
        fire = self.i.valid & out_free
        m.d.comb += self.i.ready.eq(out_free)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(fire):
            # Writing while the previous output is being taken is safe: its transfer
            # happens in this cycle, and valid is low from the next one on.
            with m.Switch(count):
                for t in range(steps):
                    with m.Case(t):
                        m.d.sync += [self.o.payload[t * channels + c].eq(self.i.payload.data[c])
                                     for c in range(channels)]
            with m.If(count != steps):
                m.d.sync += count.eq(count + 1)
            with m.If(self.i.payload.last):
                m.d.sync += count.eq(0)
                with m.If(count == steps - 1):
                    m.d.sync += self.o.valid.eq(1)
                with m.Else():
                    m.d.sync += error.eq(1)
        return m
