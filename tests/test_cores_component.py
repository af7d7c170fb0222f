import gc
import re
import warnings

import pytest
from amaranth.back import verilog
from amaranth.hdl import Fragment, Module, unsigned
from amaranth.hdl._ir import PortDirection
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hwnn.cores._component import inspected, owned, ports, rejects_quietly


class Pass(wiring.Component):
    """``o = i``, refusing a negative ``width``."""

    def __init__(self, width=4):
        if width < 0:
            raise ValueError(f"width must be at least 0, not {width!r}")
        super().__init__({"i": In(stream.Signature(unsigned(width))),
                          "o": Out(stream.Signature(unsigned(width), always_ready=True))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload),
                     self.i.ready.eq(1)]
        return m


class QuietPass(Pass):
    @rejects_quietly
    def __init__(self, width=4):
        """Builds a pass-through."""
        super().__init__(width)


class Wrapper(wiring.Component):
    i: In(stream.Signature(unsigned(4)))
    o: Out(stream.Signature(unsigned(4), always_ready=True))

    def __init__(self):
        super().__init__()
        self.part = owned(Pass())

    def elaborate(self, platform):
        m = Module()
        m.submodules.part = self.part
        wiring.connect(m, wiring.flipped(self.i), self.part.i)
        m.d.comb += [self.o.valid.eq(self.part.o.valid), self.o.payload.eq(self.part.o.payload)]
        return m


def unused_warnings(build):
    """The UnusedElaboratable warnings raised when what ``build()`` made is collected."""
    # Amaranth keeps the warning silent until something has been elaborated (a program that
    # failed before that would only bury its error under it).
    Fragment.get(Pass(), None)
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            build()
        except ValueError:
            pass
        gc.collect()
    return [str(w.message) for w in caught if w.category.__name__ == "UnusedElaboratable"]


def test_an_unused_core_warns():
    """The control for the tests below: without the helpers, Amaranth warns."""
    assert len(unused_warnings(lambda: Pass())) == 1
    assert len(unused_warnings(lambda: Pass(-1))) == 1


def test_rejects_quietly_silences_only_a_rejected_core():
    assert unused_warnings(lambda: QuietPass(-1)) == []
    assert len(unused_warnings(lambda: QuietPass())) == 1
    with pytest.raises(ValueError, match=re.escape("width must be at least 0, not -1") + "$"):
        QuietPass(-1)
    assert QuietPass.__init__.__doc__ == "Builds a pass-through."


def test_inspected_marks_a_core_read_only_for_its_properties():
    core = Pass()
    assert inspected(core) is core
    del core
    assert unused_warnings(lambda: inspected(Pass())) == []


def test_owned_leaves_the_warning_to_the_wrapper():
    messages = unused_warnings(Wrapper)
    assert len(messages) == 1 and "Wrapper" in messages[0] and "Pass" not in messages[0]

    def convert():
        wrapper = Wrapper()
        verilog.convert(wrapper, ports=ports(wrapper))
    assert unused_warnings(convert) == []  # the part was elaborated inside the wrapper


def test_ports_drop_the_constant_ready_of_an_always_ready_stream():
    core = Pass(3)
    result = ports(core)
    assert list(result) == ["i__payload", "i__valid", "i__ready", "o__payload", "o__valid"]
    assert result["i__payload"] == (core.i.payload, PortDirection.Input)
    assert result["i__ready"] == (core.i.ready, PortDirection.Output)
    assert result["o__valid"] == (core.o.valid, PortDirection.Output)
    text = verilog.convert(core, ports=result, name="pass3")
    assert "input [2:0] i__payload;" in text and "o__ready" not in text
