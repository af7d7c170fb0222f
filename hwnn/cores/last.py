"""The last step of each sequence: a framed stream reduced to one vector per sequence."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..checks import ParameterTypeError
from ..fixed import check_format
from ..plans.pool import LastStepPlan
from ._component import rejects_quietly
from ._timing import last_steps, sequence_pipeline
from .framed import frame_layout
from .requantize import format_shape

__all__ = ["LastStep"]


class LastStep(wiring.Component):
    """Passes on the step that ends each sequence (``last``) as a vector and drops the others:
    computes ``x[..., -1, :]`` of every sequence, whatever its length (what an LSTM or GRU
    layer with ``return_sequences = false`` gives).

    Timing: ``ii`` = 1 input step per cycle; ``latency`` = 1 cycle from a sequence's last
    step to its vector, held in the output register. A step is taken when that register is
    free (empty, or being read this cycle): while a vector waits for ``ready``, the input
    waits too.

    Parameters
    ----------
    plan : LastStepPlan
    fmt : Format or str
        Format of the codes (passed through unchanged).

    Members
    -------
    i : In(stream.Signature(frame_layout(fmt, plan.channels)))
    o : Out(stream.Signature(data.ArrayLayout(format_shape(fmt), plan.channels)))

    Raises
    ------
    TypeError
        ``plan`` is not a :class:`~hwnn.plans.pool.LastStepPlan`, ``fmt`` not a format.
    ValueError
        ``fmt`` is not a valid format.
    """

    @rejects_quietly
    def __init__(self, plan: LastStepPlan, fmt):
        if not isinstance(plan, LastStepPlan):
            raise ParameterTypeError("plan", f"plan must be a LastStepPlan, not "
                                             f"{type(plan).__name__}")
        self._plan = plan
        self._format = check_format(fmt, "fmt")
        super().__init__({
            "i": In(stream.Signature(frame_layout(self._format, plan.channels))),
            "o": Out(stream.Signature(data.ArrayLayout(format_shape(self._format),
                                                       plan.channels))),
        })

    plan = property(lambda self: self._plan, doc="The LastStepPlan this core implements.")
    in_format = property(lambda self: self._format)
    out_format = property(lambda self: self._format)
    latency = property(lambda self: 1, doc="Cycles from a sequence's last step to its vector.")
    ii = property(lambda self: 1, doc="Cycles between accepted input steps at full rate.")

    def schedule(self, lengths, arrivals=None):
        """``(in_cycles, out_cycles)`` of back-to-back sequences of ``lengths`` steps, step
        ``k`` offered from cycle ``arrivals[k]`` (None: all from cycle 0), the output always
        taken: every step is taken when offered (at most one per cycle), and each non-empty
        sequence gives its vector the cycle after its last step.

        Raises
        ------
        ValueError
            ``lengths`` holds a negative number, or ``arrivals`` is not one non-decreasing
            non-negative integer per step.
        """
        lengths, ins, outs = sequence_pipeline(lengths, arrivals, 1, self.latency)
        return ins, outs[last_steps(lengths)]

    def describe(self) -> dict:
        """Parameters and formats for manifests and reports (JSON-serializable)."""
        return {"kind": "last", "class": "LastStep", "channels": self._plan.channels,
                "format": str(self._format), "latency": self.latency, "ii": self.ii}

    def elaborate(self, platform):
        m = Module()
        free = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(free)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & free & self.i.payload.last):
            # Written while the previous vector is being taken: that transfer happens in this
            # cycle, and valid stays high for the new one.
            m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(self.i.payload.data)]
        return m
