"""An LSTM or GRU layer direction whose whole time step is one datapath
(:class:`~hwnn.cores.rnn_datapath.StepDatapath`): every gate of every neuron at once, from the
registers x, h, c to the next state, with ``cuts`` register stages, one step at a time.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module
from amaranth.lib import wiring

from ..checks import ParameterTypeError, check_bool
from ..plans.rnn import RecurrentPlan
from ._component import rejects_quietly
from ._recurrent_io import mac_inputs, recurrent_members, sequence_control, step_schedule
from .rnn_datapath import StepDatapath

__all__ = ["UnrolledRecurrent"]


class UnrolledRecurrent(wiring.Component):
    """One direction of an LSTM or GRU layer, a whole time step at once: computes
    :func:`hwnn.ref.rnn.recurrent` on each sequence of a framed stream and sends every step's
    hidden state, as :class:`~hwnn.cores.recurrent.Recurrent` does, with the same ports.

    Timing. One step at a time, ``step_cycles = cuts + 1`` cycles each: a step's input is taken
    in the cycle the previous step's output is taken (or at once when idle) and its hidden state
    is valid ``cuts + 1`` cycles later, from the last cut's registers through the rest of the
    datapath (``o.payload`` is not registered again). That is the ``ii`` and the ``latency``.

    The step's chain of layers (:attr:`layers`) and where its cuts go (:attr:`cut_after`) are
    its :class:`~hwnn.cores.rnn_datapath.StepDatapath`'s. The registers x, h and c hold still
    for the step, so values read straight from them pass no cut.

    Parameters
    ----------
    plan : RecurrentPlan
    arith : "mcm" or "csd"
    cuts : int
        As for :class:`~hwnn.cores.rnn_datapath.StepDatapath`.
    sequences, initial_state : bool
        As for :class:`~hwnn.cores.recurrent.Recurrent`.

    Members
    -------
    i, o, i_state
        As for :class:`~hwnn.cores.recurrent.Recurrent` (:func:`~hwnn.cores._recurrent_io.
        recurrent_members`).

    Raises
    ------
    TypeError
        ``plan`` is not a RecurrentPlan, ``arith`` not a string, ``cuts`` not an integer,
        ``sequences`` or ``initial_state`` not a bool (``ParameterTypeError``).
    ValueError
        ``arith`` not "mcm" or "csd", ``cuts`` out of range (``ParameterValueError``).
    NotImplementedError
        ``plan.reverse``.
    """

    @rejects_quietly
    def __init__(self, plan: RecurrentPlan, *, arith: str = "mcm", cuts: int = 0,
                 sequences: bool = True, initial_state: bool = False):
        if not isinstance(plan, RecurrentPlan):
            raise ParameterTypeError("plan", f"plan must be a RecurrentPlan (see "
                                             f"hwnn.plans.rnn.plan_recurrent), not {plan!r}")
        if plan.reverse:
            raise NotImplementedError("a reverse direction needs its whole sequence before its "
                                      "first step; this core runs forward only")
        self._plan = plan
        self._datapath = StepDatapath(plan, arith, cuts)
        self._sequences = check_bool(sequences, "sequences")
        self._initial = check_bool(initial_state, "initial_state")
        super().__init__(recurrent_members(plan, sequences=self._sequences,
                                           initial_state=self._initial))

    plan = property(lambda self: self._plan, doc="The RecurrentPlan this core implements.")
    datapath = property(lambda self: self._datapath,
                        doc="The step's datapath (its layers, cuts and adder graph).")
    arith = property(lambda self: self._datapath.arith, doc="'mcm' or 'csd'.")
    cuts = property(lambda self: self._datapath.cuts, doc="Register stages inside the step.")
    layers = property(lambda self: self._datapath.layers, doc="The step's chain of layers.")
    cut_after = property(lambda self: self._datapath.cut_after,
                         doc="The names of the layers a cut follows, in order.")
    segments = property(lambda self: self._datapath.segments,
                        doc="The layers between registers: cuts + 1 lists of layer names.")
    critical_segment = property(lambda self: self._datapath.critical_segment,
                                doc="The segment with the largest estimated delay.")
    multipliers = property(lambda self: self._datapath.multipliers,
                           doc="Multipliers (see StepDatapath.multipliers).")
    sequences = property(lambda self: self._sequences,
                         doc="Whether every step's hidden state leaves (else each sequence's "
                             "last).")
    in_format = property(lambda self: self._plan.in_format)
    out_format = property(lambda self: self._plan.state_format)

    @property
    def step_cycles(self) -> int:
        """Cycles per time step: ``cuts + 1``."""
        return self._datapath.cuts + 1

    ii = property(lambda self: self.step_cycles,
                  doc="Cycles between time steps at full rate (:attr:`step_cycles`).")
    latency = property(lambda self: self.step_cycles,
                       doc="Cycles from a step's input to its hidden state (:attr:`step_cycles`).")

    def schedule(self, lengths, arrivals=None):
        """``(in_cycles, out_cycles)`` of back-to-back sequences of ``lengths`` steps, step
        ``k`` offered from cycle ``arrivals[k]`` (None: all from cycle 0), the output always
        taken: a pipeline whose ii and latency are :attr:`step_cycles`; with
        ``sequences=False`` only each sequence's last output.

        Raises
        ------
        ValueError
            ``lengths`` holds a negative number, or ``arrivals`` is not one non-decreasing
            non-negative integer per step.
        """
        return step_schedule(lengths, arrivals, self.step_cycles, self._sequences)

    def describe(self) -> dict:
        """Parameters, formats, timing, the layers and where the cuts are (JSON-serializable)."""
        return {"kind": self._plan.kind, "class": "UnrolledRecurrent",
                **self._datapath.describe(), "sequences": self._sequences,
                "initial_state": self._initial, "latency": self.latency, "ii": self.ii,
                **self._plan.describe()}

    # The hardware ---------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()

        def step(x, h, c, have_x, done):
            # x, h and c hold still for the step: a cut loads every cycle and carries nothing
            # read straight from them.
            return self._datapath.build(m, mac_inputs(m, self._plan, x, h), h, c, have_x,
                                        enable=Const(1), clear=done, carry=False)
        sequence_control(m, self, self._plan, step, sequences=self._sequences,
                         initial_state=self._initial)
        return m
