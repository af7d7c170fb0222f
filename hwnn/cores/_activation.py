"""The pipeline shared by every activation unit (LUT, PWL, polynomial, exact), the ``stage`` and
``read`` callables their datapath functions take, and the fold/unfold helpers.

Each unit has an input register, the datapath's register stages (one for LUT and exact units, six
for PWL, ``5 + 2 * degree`` for polynomials), and a registered output whose readiness towards the
pipeline depends on flip-flops only. Throughput is one transfer per cycle (``ii = 1``); latency is
2 cycles plus the datapath's stages. A unit handles one value (``lanes=1``, a scalar payload) or a
vector of ``lanes`` values per transfer (an ``ArrayLayout``).
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..checks import ParameterTypeError, check_integer
from ..plans.functions import Symmetry
from ._component import rejects_quietly
from ._output import registered_output
from .requantize import format_shape

__all__ = ["register_stage", "memory_read", "folded_stage"]


def _payload_shape(fmt, lanes):
    return format_shape(fmt) if lanes == 1 else data.ArrayLayout(format_shape(fmt), lanes)


class _Activation(wiring.Component):
    """The pipeline shared by every activation unit; subclasses supply the datapath.

    A subclass sets ``_plan_type`` (the plan class it implements) and ``_stages`` and defines
    ``_compute(m, x, result, advance, index)``, which turns lane ``index`` of the input
    register ``x`` into lane ``index`` of ``result`` through exactly ``_stages`` register
    stages enabled by ``advance``.
    """

    #: The plan class this unit implements.
    _plan_type = None
    #: Register stages of the datapath between the input register and the output register.
    _stages = 1

    @rejects_quietly
    def __init__(self, plan, *, lanes=1, src_loc_at=0):
        # `src_loc_at` is Amaranth's: MustUse.__new__ has already used it to attribute the
        # unused-core warning (and its `# amaranth: UnusedElaboratable=no` opt-out) to the
        # caller `src_loc_at` frames up, which is how activation_core passes it on.
        if not isinstance(plan, self._plan_type):
            kind = self._plan_type.__name__
            article = "an" if kind[0] in "AEIOU" else "a"
            raise ParameterTypeError("plan", f"plan must be {article} {kind} (see "
                                     f"hwnn.plans.activation.plan_activation), not {plan!r}")
        self._plan, self._lanes = plan, check_integer(lanes, "lanes", minimum=1)
        super().__init__(self._members())

    def _members(self) -> dict:
        """The signature's members: ``i`` and ``o`` (a subclass may add ports of its own)."""
        return {"i": In(stream.Signature(_payload_shape(self._plan.in_format, self._lanes))),
                "o": Out(stream.Signature(_payload_shape(self._plan.out_format, self._lanes)))}

    plan = property(lambda self: self._plan, doc="The plan this unit implements.")
    lanes = property(lambda self: self._lanes, doc="Values per transfer.")
    latency = property(lambda self: 2 + self._stages,
                       doc="Cycles from an accepted input to its output.")
    ii = property(lambda self: 1, doc="Cycles between accepted inputs at full rate.")
    in_format = property(lambda self: self._plan.in_format)
    out_format = property(lambda self: self._plan.out_format)

    def describe(self) -> dict:
        return {"kind": "activation", "class": type(self).__name__, "lanes": self._lanes,
                "latency": self.latency, "ii": self.ii, **self._plan.describe()}

    def _lane(self, value, index):
        return value if self._lanes == 1 else value[index]

    def elaborate(self, platform):
        m = Module()
        x = Signal.like(self.i.payload, name="x")
        # valid[0] goes with `x`; valid[k] with the datapath's k-th register stage.
        valid = [Signal(name=f"valid{k}") for k in range(self._stages + 1)]
        result_valid = valid[-1]
        result = Signal.like(self.o.payload, name="result")
        accept = registered_output(m, self.o, result_valid, result, full_rate=True)
        # One enable for the whole pipeline; it depends on flip-flops only.
        advance = ~result_valid | accept
        m.d.comb += self.i.ready.eq(advance)
        with m.If(advance):
            m.d.sync += [x.eq(self.i.payload), valid[0].eq(self.i.valid)]
            m.d.sync += [later.eq(earlier) for earlier, later in zip(valid, valid[1:])]
        for index in range(self._lanes):
            # The datapath turns lane `index` of `x` into lane `index` of `result` through
            # exactly `_stages` register stages (enabled by `advance`), matching `result_valid`.
            self._compute(m, self._lane(x, index), self._lane(result, index), advance, index)
        return m


def register_stage(m, advance, index):
    """A ``stage(value, shape, label)`` for the datapath functions: ``value`` in a register of
    ``shape`` (named after lane ``index`` and ``label``) that loads while ``advance``."""
    def stage(value, shape, label):
        register = Signal(shape, name=f"lane{index}_{label}")
        with m.If(advance):
            m.d.sync += register.eq(value)
        return register
    return stage


def memory_read(m, memory, advance):
    """A ``read(address)`` for the datapath functions: a synchronous read port of ``memory``
    (the entry comes one register later), enabled while ``advance``. The port is driven
    outside any ``If``: its enable is a comb signal whose init is 1."""
    port = memory.read_port(domain="sync")

    def read(address):
        m.d.comb += [port.addr.eq(address), port.en.eq(advance)]
        return port.data
    return read


def folded_stage(m, plan, x, name, stage):
    """The first step of a piecewise datapath: ``c`` (the magnitude if the plan is symmetric,
    else ``x``) and its sign, after one ``stage`` boundary."""
    if plan.symmetric:
        c, negative = _magnitude(m, x, plan.in_format, name)
        code_shape = unsigned(plan.in_format.width)
    else:
        c, negative = x, Const(0)
        code_shape = format_shape(plan.in_format)
    return stage(c, code_shape, "c0"), stage(negative, 1, "negative0")


def _magnitude(m, x, in_format, name):
    """|x| for a signed input, unsigned of the same width (which holds ``|min_int|``), and its
    sign bit."""
    magnitude = Signal(unsigned(in_format.width), name=f"{name}_magnitude")
    negative = Signal(name=f"{name}_negative")
    m.d.comb += [negative.eq(x[-1]), magnitude.eq(Mux(x[-1], -x, x))]
    return magnitude, negative


def _unfold(y, negative, symmetry, out_format, y_range=None):
    """The output code for a negative input, from ``y`` computed on its magnitude (saturated).

    ``y_range`` (lowest, highest), when known, drops the comparators that cannot fire.
    """
    if symmetry is Symmetry.ODD:
        mirrored = -y
        low, high = (-y_range[1], -y_range[0]) if y_range else (None, None)
    else:
        one = 1 << out_format.f
        mirrored = Const(one, signed(out_format.width + 2)) - y
        low, high = (one - y_range[1], one - y_range[0]) if y_range else (None, None)
    wide = Mux(negative, mirrored, y)
    if y_range is None:
        return Mux(wide > out_format.max_int, out_format.max_int,
                   Mux(wide < out_format.min_int, out_format.min_int, wide))
    low, high = min(low, y_range[0]), max(high, y_range[1])
    if high > out_format.max_int:
        wide = Mux(wide > out_format.max_int, out_format.max_int, wide)
    if low < out_format.min_int:
        wide = Mux(wide < out_format.min_int, out_format.min_int, wide)
    return wide
