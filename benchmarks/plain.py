"""The obvious alternative to hwnn's Dense core: the same function written as plain ``*``.

One registered input vector, every output a sum of ``x[j] * C`` with the weights as constants
(yosys decides how to build each product), the same requantize, one registered output. No
folding, no schedule: what an engineer writes first.
"""

from amaranth.hdl import Const, Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwnn.cores.requantize import format_shape, requantize


class PlainDense(wiring.Component):
    """``y = requantize(W·x + b)`` with one ``*`` per weight; latency 2, ii 1."""

    latency = 2
    ii = 1

    def __init__(self, plan):
        self.plan = plan
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(format_shape(plan.in_format), plan.n_in))),
            "o": Out(stream.Signature(data.ArrayLayout(format_shape(plan.out_format),
                                                       plan.n_out))),
        })

    def elaborate(self, platform):
        m = Module()
        plan = self.plan
        x = Signal(self.i.payload.shape())
        x_valid = Signal()
        weight_shape = format_shape(plan.weight_format)
        advance = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(~x_valid | advance)
        with m.If(self.i.ready):
            m.d.sync += [x.eq(self.i.payload), x_valid.eq(self.i.valid)]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(x_valid & advance):
            m.d.sync += self.o.valid.eq(1)
            for row in range(plan.n_out):
                total = Const(int(plan.bias[row]), signed(plan.acc_format.width))
                for col in range(plan.n_in):
                    total = total + x[col] * Const(int(plan.weight[row, col]), weight_shape)
                # The plan guarantees the exact sum fits the accumulator width.
                m.d.sync += self.o.payload[row].eq(
                    requantize(total[:plan.acc_format.width], plan.acc_format, plan.out_format,
                               plan.rounding, plan.overflow))
        return m
