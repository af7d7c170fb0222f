"""What every recurrent core does around its step: the streams, the x/h/c registers, the
initial state and the output framing, apart from how the step itself is computed.

A recurrent core (:class:`~hwnn.cores.recurrent_unrolled.UnrolledRecurrent`,
:class:`~hwnn.cores.recurrent.Recurrent`) runs one time step at a time: both take their ports
(:func:`recurrent_members`), ``[x; h]`` (:func:`mac_inputs`) and their timing model
(:func:`step_schedule`) from here. :func:`sequence_control` holds the step's input ``x`` and
the state ``h`` (and ``c`` for an LSTM) in registers and asks the core's step function for the
next state; the step's input is taken in the cycle the previous step's output is taken (or at
once when idle), the state becomes the next state then, and starts over from zeros (or from
the ``i_state`` stream) after a sequence's ``last`` step. Recurrent has control of its own: it
writes h' and c' over h and c in block RAM and feeds the step's input to its MAC without an x
register.
"""

from __future__ import annotations

from amaranth.hdl import Signal, Value
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ._timing import last_steps, sequence_pipeline
from .framed import frame_layout
from .requantize import format_shape

__all__ = ["cell_members", "cell_output", "load_initial_state", "mac_inputs",
           "load_state", "recurrent_members", "sequence_control", "state_layout", "step_output",
           "step_schedule"]


def state_layout(plan) -> data.StructLayout:
    """A sequence's initial state: ``h0`` and, for an LSTM, ``c0``."""
    fields = {"h": data.ArrayLayout(format_shape(plan.state_format), plan.hidden_size)}
    if plan.cell_format is not None:
        fields["c"] = data.ArrayLayout(format_shape(plan.cell_format), plan.hidden_size)
    return data.StructLayout(fields)


def cell_members(plan) -> dict:
    """The members of a cell's signature (one independent step per transfer): ``i`` carries
    the step's input ``x`` and its state (:func:`state_layout`: ``h``, and ``c`` for an LSTM),
    ``o`` the next state (``h'``, and ``c'`` for an LSTM), PyTorch's ``LSTMCell``/``GRUCell``."""
    fields = {"x": data.ArrayLayout(format_shape(plan.in_format), plan.input_size),
              **state_layout(plan).members}
    return {"i": In(stream.Signature(data.StructLayout(fields))),
            "o": Out(stream.Signature(state_layout(plan)))}


def cell_output(m, core, h_next, c_next, valid) -> Value:
    """Drive a cell's ``core.o`` with ``h_next`` and, for an LSTM, ``c_next`` (flat values,
    there when ``valid``); returns whether the output is taken this cycle."""
    m.d.comb += [core.o.valid.eq(valid), Value.cast(core.o.payload.h).eq(h_next)]
    if c_next is not None:
        m.d.comb += Value.cast(core.o.payload.c).eq(c_next)
    return core.o.valid & core.o.ready


def recurrent_members(plan, *, sequences: bool, initial_state: bool) -> dict:
    """The members of a recurrent core's signature: ``i`` (framed steps), ``o`` (framed hidden
    states, or with ``sequences`` False one vector per sequence) and, with
    ``initial_state``, ``i_state`` (:func:`state_layout`)."""
    state = format_shape(plan.state_format)
    out = (frame_layout(plan.state_format, plan.hidden_size) if sequences
           else data.ArrayLayout(state, plan.hidden_size))
    return {
        "i": In(stream.Signature(frame_layout(plan.in_format, plan.input_size))),
        "o": Out(stream.Signature(out)),
        **({"i_state": In(stream.Signature(state_layout(plan)))} if initial_state else {}),
    }


def step_schedule(lengths, arrivals, step_cycles: int, sequences: bool):
    """``(in_cycles, out_cycles)`` of a core that runs one step at a time, ``step_cycles`` each
    (a step enters in the cycle the one before it leaves), over back-to-back sequences of
    ``lengths`` steps, step ``k`` offered from cycle ``arrivals[k]`` (None: all from cycle 0),
    the output always taken; with ``sequences`` False only each sequence's last output.

    Raises
    ------
    ValueError
        ``lengths`` holds a negative number, or ``arrivals`` is not one non-decreasing
        non-negative integer per step.
    """
    lengths, ins, outs = sequence_pipeline(lengths, arrivals, step_cycles, step_cycles)
    return ins, outs if sequences else outs[last_steps(lengths)]


def mac_inputs(m, plan, x, h) -> list:
    """``[x; h]`` in the MAC's input format (``plan.mac_in_format``): one signal per element,
    ``x`` and ``h`` (flat registers of their codes) shifted to its fraction bits, which is
    exact."""
    mac_shape = format_shape(plan.mac_in_format)
    state_w, in_w = plan.state_format.width, plan.in_format.width
    lanes = []
    for k, (value, width, shift, fmt) in enumerate(
            [(x, in_w, plan.x_shift, plan.in_format)] * plan.input_size
            + [(h, state_w, plan.h_shift, plan.state_format)] * plan.hidden_size):
        index = k if k < plan.input_size else k - plan.input_size
        lane = Signal(mac_shape, name=f"xh{k}")
        code = value[index * width:(index + 1) * width]
        code = code.as_signed() if fmt.signed else code
        m.d.comb += lane.eq(code << shift)
        lanes.append(lane)
    return lanes


def sequence_control(m, core, plan, step, *, sequences: bool, initial_state: bool):
    """Run a recurrent core's sequences around its ``step`` function.

    ``core`` has the members of :func:`recurrent_members`. This makes the registers ``x``
    (the step's input codes, flat), ``h`` and ``c`` (the state, flat; ``c`` is one unused bit
    for a GRU), ``have_x`` (a step is in: set when its input is taken, cleared when its output
    is) and ``done`` (the step's output is taken this cycle), and calls
    ``step(x, h, c, have_x, done)``, which builds the step and returns ``(h_next, c_next,
    valid)``: the next state (flat values; ``c_next`` None for a GRU) and when it is there.
    ``x``, ``h`` and ``c`` hold still from the cycle ``have_x`` rises until ``done``.

    The step's input enters in the cycle the step before it ends (``done``) or when idle; with
    ``initial_state`` a sequence's first step waits for its initial state and both enter
    together. With ``sequences`` every step's ``h_next`` leaves on ``o`` (framed, ``last``
    from the input); else only a sequence's last one does, and its other steps end as soon
    as ``valid``. Returns ``done``.
    """
    state_w = plan.state_format.width
    x = Signal(plan.in_format.width * plan.input_size, name="x")
    last = Signal(name="last")
    h = Signal(state_w * plan.hidden_size, name="h")
    c = Signal(plan.cell_format.width * plan.hidden_size if plan.cell_format else 1, name="c")
    have_x = Signal(name="have_x")
    done = Signal(name="done")
    h_next, c_next, valid = step(x, h, c, have_x, done)

    step_output(m, core, h_next, valid, last, done, sequences=sequences)
    idle = Signal(init=1, name="idle")
    if initial_state:
        first = Signal(init=1, name="first")
        m.d.comb += [core.i.ready.eq((idle | done) & (~first | core.i_state.valid)),
                     core.i_state.ready.eq((idle | done) & first & core.i.valid)]
    else:
        m.d.comb += core.i.ready.eq(idle | done)
    with m.If(done):
        m.d.sync += [idle.eq(1), have_x.eq(0), h.eq(h_next)]
        if c_next is not None:
            m.d.sync += c.eq(c_next)
        with m.If(last):  # the next sequence starts from zeros
            m.d.sync += [h.eq(0), c.eq(0)]
    with m.If(core.i.valid & core.i.ready):
        m.d.sync += [x.eq(Value.cast(core.i.payload.data)), last.eq(core.i.payload.last),
                     have_x.eq(1), idle.eq(0)]
        if initial_state:
            load_initial_state(m, core, plan, first, h, c)
    return done


def step_output(m, core, h_next, valid, last, done, *, sequences: bool) -> None:
    """Drive ``core.o`` with a step's ``h_next`` (there when ``valid``) and ``done`` (the
    step's output is taken this cycle): every step framed with ``last`` (``sequences``), or
    only a sequence's last state, its other steps ending as soon as ``valid``."""
    if sequences:
        m.d.comb += [core.o.valid.eq(valid),
                     Value.cast(core.o.payload.data).eq(h_next),
                     core.o.payload.last.eq(last),
                     done.eq(core.o.valid & core.o.ready)]
    else:
        m.d.comb += [core.o.valid.eq(valid & last),
                     Value.cast(core.o.payload).eq(h_next),
                     done.eq(valid & (~last | core.o.ready))]


def load_initial_state(m, core, plan, first, h, c) -> None:
    """In the cycle a step's input is taken: remember whether the next step starts a sequence
    (``first``, from its ``last``), and if this one does, load ``h`` (and ``c``, for an LSTM)
    from ``core.i_state``."""
    m.d.sync += first.eq(core.i.payload.last)
    with m.If(first):
        load_state(m, plan, core.i_state.payload, h, c)


def load_state(m, plan, state, h, c) -> None:
    """Load ``h`` (and ``c``, for an LSTM) from ``state`` (a :func:`state_layout` view)."""
    m.d.sync += h.eq(Value.cast(state.h))
    if plan.cell_format is not None:
        m.d.sync += c.eq(Value.cast(state.c))

