"""An LSTM or GRU cell as a network layer: the step's input on the chain, its state on a
stream of its own, the next state on the chain as one vector.

A :class:`~hwnn.cores.rnn_cell.RecurrentCell` takes ``{x, h, c}`` in one record; a network
layer takes the previous layer's vector. :class:`CellLayer` joins the two streams (the vector
``x`` on ``i``, the state on ``i_state``, which the network exposes as ``i_state_<name>``)
into the cell's input and sends ``[h'; c']`` as one vector in
:attr:`~hwnn.plans.rnn.RecurrentPlan.next_state_format`, each code shifted left to that
format's fraction bits, which is exact. Nothing is registered here: the timing is the cell's.
"""

from __future__ import annotations

from amaranth.hdl import Module, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ._component import owned
from ._recurrent_io import state_layout
from .requantize import format_shape
from .rnn_cell import RecurrentCell

__all__ = ["CellLayer"]


class CellLayer(wiring.Component):
    """One LSTM or GRU step per vector, PyTorch's ``LSTMCell``/``GRUCell`` as a network layer:
    computes :func:`hwnn.ref.rnn.recurrent_step` on each ``x`` of ``i`` and the state taken
    with it from ``i_state``, and sends ``[h'; c']`` (``h'`` alone for a GRU) on ``o``.

    Timing: the cell's (:class:`~hwnn.cores.rnn_cell.RecurrentCell`): with ``cuts`` a pipeline
    of ``ii`` 1 and ``latency`` ``cuts + 1``; on the parts ``ii`` = ``latency`` =
    ``step_cycles``. A vector and its state are taken in the same cycle: each waits for the
    other.

    Parameters
    ----------
    plan : RecurrentPlan
    cuts, arith, parallelism, pipeline, lanes
        The cell's engine (:class:`~hwnn.cores.rnn_cell.RecurrentCell`).

    Members
    -------
    i : In(stream.Signature(ArrayLayout(<input shape>, input_size)))
    i_state : In(stream.Signature(StructLayout({"h": ..., "c": ...})))
        The state of the step (``c`` for an LSTM only), as a recurrent core's ``i_state``.
    o : Out(stream.Signature(ArrayLayout(<next_state_format shape>, hidden or 2·hidden)))
        ``h'_0 … h'_{H−1}`` then, for an LSTM, ``c'_0 … c'_{H−1}``.

    Raises
    ------
    TypeError, ValueError
        As :class:`~hwnn.cores.rnn_cell.RecurrentCell`.
    """

    def __init__(self, plan, **options):
        self._cell = owned(RecurrentCell(plan, **options))
        self._plan = plan
        fmt = plan.next_state_format
        states = 1 if plan.cell_format is None else 2
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(format_shape(plan.in_format),
                                                      plan.input_size))),
            "i_state": In(stream.Signature(state_layout(plan))),
            "o": Out(stream.Signature(data.ArrayLayout(format_shape(fmt),
                                                       states * plan.hidden_size))),
        })

    plan = property(lambda self: self._plan, doc="The RecurrentPlan this core implements.")
    cell = property(lambda self: self._cell, doc="The RecurrentCell inside.")
    in_format = property(lambda self: self._plan.in_format)
    out_format = property(lambda self: self._plan.next_state_format)
    ii = property(lambda self: self._cell.ii, doc="The cell's ii.")
    latency = property(lambda self: self._cell.latency, doc="The cell's latency.")
    multipliers = property(lambda self: self._cell.multipliers, doc="The cell's multipliers.")

    def schedule(self, count: int, arrivals=None):
        """The cell's :meth:`~hwnn.cores.rnn_cell.RecurrentCell.schedule` (states offered with
        their vectors)."""
        return self._cell.schedule(count, arrivals)

    def describe(self) -> dict:
        """The cell's description as a layer's: its kind (``lstm_cell``, ``gru_cell``), the
        values in and out, and the output format of ``[h'; c']``."""
        n_out = Value.cast(self.o.payload).shape().width // self.out_format.width
        return {**self._cell.describe(), "class": type(self).__name__,
                "kind": f"{self._plan.kind}_cell", "n_in": self._plan.input_size,
                "n_out": n_out, "out_format": str(self.out_format)}

    def elaborate(self, platform):
        m = Module()
        m.submodules.cell = cell = self._cell
        plan = self._plan
        m.d.comb += [cell.i.valid.eq(self.i.valid & self.i_state.valid),
                     self.i.ready.eq(cell.i.ready & self.i_state.valid),
                     self.i_state.ready.eq(cell.i.ready & self.i.valid),
                     Value.cast(cell.i.payload.x).eq(Value.cast(self.i.payload)),
                     Value.cast(cell.i.payload.h).eq(Value.cast(self.i_state.payload.h))]
        fields = [("h", plan.state_format)]
        if plan.cell_format is not None:
            m.d.comb += Value.cast(cell.i.payload.c).eq(Value.cast(self.i_state.payload.c))
            fields.append(("c", plan.cell_format))
        fmt = plan.next_state_format
        for k, (name, source) in enumerate(fields):
            for j in range(plan.hidden_size):
                code = getattr(cell.o.payload, name)[j]
                m.d.comb += self.o.payload[k * plan.hidden_size + j].eq(
                    code << (fmt.f - source.f))
        m.d.comb += [self.o.valid.eq(cell.o.valid), cell.o.ready.eq(self.o.ready)]
        return m
