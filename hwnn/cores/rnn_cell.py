"""LSTM and GRU cells: one time step per transfer, the state in and the next state out
(PyTorch's ``LSTMCell`` and ``GRUCell``), for a user who keeps the state in their own design.

A cell runs the step of :mod:`hwnn.plans.rnn` on one of two engines, chosen by its options:

- ``cuts``: the whole step as one datapath (:class:`~hwnn.cores.rnn_datapath.StepDatapath`,
  shift-add MAC) with ``cuts`` register stages, pipelined: steps do not depend on each other
  here, so one enters every cycle and ``cuts + 1`` are in flight.
- otherwise: the step on hwnn's stream parts (:class:`~hwnn.cores.recurrent.Recurrent` with
  ``cell=True``: a folded or shift-add Dense over ``[x; h]``, the activation units and the
  elementwise cores), one step at a time, ``step_cycles`` each.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Signal, Value
from amaranth.lib import wiring

from ..checks import ParameterTypeError, ParameterValueError
from ..plans.rnn import RecurrentPlan
from ._component import owned, rejects_quietly
from ._recurrent_io import cell_members, cell_output, mac_inputs
from ._timing import check_arrivals, pipeline_schedule
from .recurrent import Recurrent
from .rnn_datapath import StepDatapath

__all__ = ["GRUCell", "LSTMCell", "RecurrentCell"]


class RecurrentCell(wiring.Component):
    """One LSTM or GRU time step per transfer: computes :func:`hwnn.ref.rnn.recurrent_step`
    on each ``(x, h, c)`` of ``i`` and sends ``(h', c')`` on ``o`` (no ``c`` for a GRU).

    Timing. With ``cuts`` (the datapath engine): a pipeline, ``ii`` 1 and ``latency``
    ``cuts + 1`` (the step's input is registered as it is taken, then ``cuts`` register stages;
    ``o.payload`` comes combinationally from the last of them); a held output stalls the whole
    pipeline. Without (the parts engine): one step at a time, ``ii`` = ``latency`` =
    :attr:`~hwnn.cores.recurrent.Recurrent.step_cycles` of the same parts (a step enters in the
    cycle the one before it leaves). :meth:`schedule` gives every transfer's cycles.

    Parameters
    ----------
    plan : RecurrentPlan
        The step (``plan.reverse`` does not matter to a single step).
    cuts : int or None
        The datapath engine with this many register stages (0 to ``len(layers) - 1``,
        :class:`~hwnn.cores.rnn_datapath.StepDatapath`); None: the parts engine.
    arith : str or None
        The MAC over ``[x; h]``: "mcm" or "csd" with ``cuts`` (None: "mcm"); with the parts,
        Dense's "mult", "csd" or "mcm" (None: "mult").
    parallelism, pipeline, lanes
        The parts engine's, as for :class:`~hwnn.cores.recurrent.Recurrent`; not with ``cuts``.

    Members
    -------
    i : In(stream.Signature(StructLayout({"x": ArrayLayout(<input shape>, input_size),
        "h": ArrayLayout(<state shape>, hidden), "c": ArrayLayout(<cell shape>, hidden)})))
    o : Out(stream.Signature(StructLayout({"h": ..., "c": ...})))
        ``c`` only for an LSTM (:func:`~hwnn.cores._recurrent_io.cell_members`).

    Raises
    ------
    TypeError
        ``plan`` is not a RecurrentPlan; the engine's type errors.
    ValueError
        ``parallelism``, ``pipeline`` or ``lanes`` with ``cuts``; the engine's value errors
        (``arith`` not one it takes, ``cuts`` out of range...).
    """

    _kind = None    # "lstm" or "gru" in the subclasses

    @rejects_quietly
    def __init__(self, plan: RecurrentPlan, *, cuts: int | None = None, arith: str | None = None,
                 parallelism: int | None = None, pipeline: int | None = None,
                 lanes: int | None = None):
        if not isinstance(plan, RecurrentPlan):
            raise ParameterTypeError("plan", f"plan must be a RecurrentPlan (see "
                                             f"hwnn.plans.rnn.plan_recurrent), not {plan!r}")
        if self._kind is not None and plan.kind != self._kind:
            raise ParameterValueError("plan", f"{type(self).__name__} needs a {self._kind} "
                                              f"plan, not a {plan.kind} one")
        self._plan = plan
        self._datapath = self._parts = None
        if cuts is not None:
            for name, value in (("parallelism", parallelism), ("pipeline", pipeline),
                                ("lanes", lanes)):
                if value is not None:
                    raise ParameterValueError(
                        name, f"{name}={value!r} is an option of the folded parts; with "
                              f"cuts={cuts!r} the whole step runs at once")
            self._datapath = StepDatapath(plan, "mcm" if arith is None else arith, cuts)
        else:
            self._parts = owned(Recurrent(plan, arith="mult" if arith is None else arith,
                                          parallelism=parallelism, pipeline=pipeline,
                                          lanes=lanes, cell=True))
        super().__init__(cell_members(plan))

    plan = property(lambda self: self._plan, doc="The RecurrentPlan this core implements.")
    datapath = property(lambda self: self._datapath,
                        doc="The datapath engine's StepDatapath (None on the parts).")
    parts = property(lambda self: self._parts,
                     doc="The parts engine's Recurrent core (None with cuts).")
    in_format = property(lambda self: self._plan.in_format)
    out_format = property(lambda self: self._plan.state_format)

    @property
    def ii(self) -> int:
        """Cycles between steps at full rate: 1 with ``cuts``, else the parts' step_cycles."""
        return 1 if self._datapath is not None else self._parts.step_cycles

    @property
    def latency(self) -> int:
        """Cycles from a step's input to its output: ``cuts + 1``, or the parts'
        step_cycles."""
        if self._datapath is not None:
            return self._datapath.cuts + 1
        return self._parts.step_cycles

    @property
    def multipliers(self) -> int:
        """The engine's multipliers (:attr:`StepDatapath.multipliers
        <hwnn.cores.rnn_datapath.StepDatapath.multipliers>`, :attr:`Recurrent.multipliers
        <hwnn.cores.recurrent.Recurrent.multipliers>`)."""
        engine = self._datapath if self._datapath is not None else self._parts
        return engine.multipliers

    def schedule(self, count: int, arrivals=None):
        """``(in_cycles, out_cycles)`` of ``count`` steps, step ``k`` offered from cycle
        ``arrivals[k]`` (None: all from cycle 0), the output always taken: a pipeline of
        :attr:`ii` and :attr:`latency`.

        Raises
        ------
        ValueError
            ``arrivals`` is not one non-decreasing non-negative integer per step.
        """
        return pipeline_schedule(self.ii, self.latency, check_arrivals(arrivals, count))

    def describe(self) -> dict:
        """Parameters, formats, timing and the engine's own description (JSON-serializable)."""
        if self._datapath is not None:
            engine = {"engine": "datapath", **self._datapath.describe()}
        else:
            parts = self._parts.describe()
            engine = {"engine": "parts", "arith": parts["arith"],
                      "parallelism": parts["parallelism"], "lanes": parts["lanes"],
                      "block_ram": parts["block_ram"], "mac": parts["mac"],
                      "multipliers": parts["multipliers"]}
        return {"class": type(self).__name__, **engine, "latency": self.latency,
                "ii": self.ii, **self._plan.describe()}

    def elaborate(self, platform):
        m = Module()
        if self._parts is not None:
            m.submodules.step = self._parts
            wiring.connect(m, wiring.flipped(self.i), self._parts.i)
            wiring.connect(m, self._parts.o, wiring.flipped(self.o))
            return m
        plan = self._plan
        # A held output holds every stage: the pipeline moves only when its last stage's step
        # leaves or there is none.
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]
        valid = Signal(name="have_step")
        x = Signal(len(Value.cast(self.i.payload.x)), name="x")
        h = Signal(len(Value.cast(self.i.payload.h)), name="h")
        c = Signal(len(Value.cast(self.i.payload.c)) if plan.cell_format else 1, name="c")
        with m.If(advance):
            m.d.sync += [valid.eq(self.i.valid), x.eq(Value.cast(self.i.payload.x)),
                         h.eq(Value.cast(self.i.payload.h))]
            if plan.cell_format is not None:
                m.d.sync += c.eq(Value.cast(self.i.payload.c))
        h_next, c_next, valid = self._datapath.build(
            m, mac_inputs(m, plan, x, h), h, c, valid, enable=advance, clear=Const(0),
            carry=True)
        cell_output(m, self, h_next, c_next, valid)
        return m


class LSTMCell(RecurrentCell):
    """An LSTM step per transfer, PyTorch's ``LSTMCell``: ``(x, h, c) → (h', c')``
    (:class:`RecurrentCell`; ``plan`` must be an LSTM's, else ``ValueError``)."""
    _kind = "lstm"


class GRUCell(RecurrentCell):
    """A GRU step per transfer, PyTorch's ``GRUCell``: ``(x, h) → h'`` (either reset variant;
    :class:`RecurrentCell`; ``plan`` must be a GRU's, else ``ValueError``)."""
    _kind = "gru"
