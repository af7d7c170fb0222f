# amaranth: UnusedElaboratable=no
import json
import re
from types import SimpleNamespace

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwnn import cli
from hwnn.boards import build as build_module
from hwnn.boards.bridge import design_id
from hwnn.boards.build import (ECP5_EBR_BYTES, BitstreamError, ProgramError,
                               ProgrammerNotFound, build_board, build_overrides,
                               check_bitstream, find_programmer, format_report, plan_clock,
                               program)
from hwnn.boards.platforms import BOARDS, get_board
from hwnn.boards.top import BoardTop
from hwnn.demo import write_dense_spec


class Echo(wiring.Component):
    """Loopback: ``tx`` is ``rx`` one cycle later, inverted while a 24-bit counter's top bit and
    bit 3 are both set, so the design has a real carry chain in ``sync``."""
    rx: In(1)
    tx: Out(1)

    def elaborate(self, platform):
        m = Module()
        count = Signal(24)
        m.d.sync += count.eq(count + 1)
        m.d.sync += self.tx.eq(self.rx ^ (count[-1] & count[3]))
        return m


class IdleHigh(wiring.Component):
    """The bridge's ports: a UART line idles high."""
    rx: In(1, init=1)
    tx: Out(1, init=1)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.tx.eq(self.rx)
        return m


class WideTx(wiring.Component):
    rx: In(1)
    tx: Out(2)

    def elaborate(self, platform):
        return Module()


class NoTx(wiring.Component):
    rx: In(1)

    def elaborate(self, platform):
        return Module()


# A PLL clock for each board, and the primitive and parameters it must get.
PLL_CASES = {
    "icebreaker": (48, "SB_PLL40_PAD", {"DIVR": "4'0000", "DIVF": "7'0111111",
                                        "DIVQ": "3'100", "FILTER_RANGE": "3'001"}),
    "upduino-v3": (36, "SB_PLL40_CORE", {"DIVR": "4'0000", "DIVF": "7'0001011",
                                         "DIVQ": "3'100", "FILTER_RANGE": "3'100"}),
    "ulx3s-85f": (100, "EHXPLLL", {"CLKI_DIV": "1", "CLKFB_DIV": "4", "CLKOP_DIV": "6",
                                   "CLKOP_CPHASE": "3"}),
    "ulx3s-25f": (50, "EHXPLLL", {"CLKI_DIV": "1", "CLKFB_DIV": "2", "CLKOP_DIV": "12",
                                  "CLKOP_CPHASE": "6"}),
    "orangecrab-25f": (96, "EHXPLLL", {"CLKI_DIV": "1", "CLKFB_DIV": "2", "CLKOP_DIV": "6",
                                       "CLKOP_CPHASE": "3"}),
}


def prepare(name, clock_mhz):
    board = get_board(name)
    hz = None if clock_mhz is None else clock_mhz * 1_000_000
    return board.platform().prepare(BoardTop(Echo(), name, hz), name="top",
                                    **build_overrides(board, "top.nextpnr.json", 5)).files


def cell_parameters(rtlil, cell_type):
    """The parameters of the one cell of ``cell_type`` in RTLIL text."""
    cells = re.findall(rf"cell \\{cell_type} .*?\n((?:  .*\n)*?)  end", rtlil)
    assert len(cells) == 1, cells
    return dict(re.findall(r"parameter \\(\w+) (.+)", cells[0]))


@pytest.mark.parametrize("name", BOARDS)
def test_every_board_prepares_with_its_pll(name):
    clock, primitive, expected = PLL_CASES[name]
    files = prepare(name, clock)
    parameters = cell_parameters(files["top.il"], primitive)
    for key, value in expected.items():
        assert parameters[key].strip('"') == value, key
    board = BOARDS[name]
    constraints = files["top.pcf" if board.family == "ice40" else "top.lpf"]
    assert "uart_0__rx__io" in constraints and "uart_0__tx__io" in constraints
    if board.family == "ice40":
        assert f"set_frequency pll_clk {clock}.0" in constraints
    else:
        assert f'FREQUENCY NET "pll_clk" {clock * 1_000_000}.0 HZ;' in constraints
        assert "--compress" not in files["build_top.sh"]     # sized, uncompressed bitstreams
    assert "dfu-suffix" not in files["build_top.sh"]
    assert "--report top.nextpnr.json --timing-allow-fail --seed 5" in files["build_top.sh"]
    # Synthesis as `hwnn synth` does it: on the UP5K with its DSPs and UltraPlus timing.
    synth = {"ice40": r"synth_ice40 -device u -dsp -top top", "ecp5": r"synth_ecp5\s+-top top"}
    assert re.search(synth[board.family], files["top.ys"])
    assert board.target in ("ice40-up5k", "ecp5-25f", "ecp5-85f")
    assert board.part.startswith(board.platform.device)


def test_board_parts_and_pins():
    assert BOARDS["ulx3s-25f"].part == "LFE5U-25F-6CABGA381"
    assert BOARDS["orangecrab-25f"].part == "LFE5U-25F-8CSFBGA285"
    upduino = prepare("upduino-v3", None)["top.pcf"]
    assert "set_io uart_0__rx__io 2\n" in upduino and "set_io uart_0__tx__io 46\n" in upduino
    assert "set_frequency osc_clk 48.0" in upduino
    orangecrab = prepare("orangecrab-25f", None)["top.lpf"]
    assert 'LOCATE COMP "uart_0__rx__io" SITE "N17";' in orangecrab   # Feather pin 0
    assert 'LOCATE COMP "uart_0__tx__io" SITE "M18";' in orangecrab   # Feather pin 1
    assert "--freq 38.8" in prepare("orangecrab-25f", None)["build_top.sh"]


def test_oscillator_clock_needs_no_pll():
    files = prepare("upduino-v3", None)
    assert "SB_HFOSC" in files["top.il"] and "SB_PLL40" not in files["top.il"]
    files = prepare("icebreaker", 12)
    assert "SB_PLL40" not in files["top.il"] and "SB_GB_IO" in files["top.il"]


def test_upduino_pll_runs_from_the_internal_oscillator():
    rtlil = prepare("upduino-v3", 36)["top.il"]
    assert re.search(r"cell \\SB_HFOSC", rtlil) and re.search(r"cell \\SB_PLL40_CORE", rtlil)


def test_errors_before_anything_is_built(tmp_path):
    def factory(clock_hz):
        raise AssertionError("the device must not be made")
    with pytest.raises(ValueError, match="^Unknown board 'icestick'; valid boards are: "
                                         "icebreaker, upduino-v3, ulx3s-85f, ulx3s-25f, "
                                         "orangecrab-25f$"):
        build_board(factory, "icestick", out_dir=tmp_path)
    with pytest.raises(ValueError, match="^clock 17 MHz cannot be made from the 12 MHz "
                                         "oscillator"):
        build_board(factory, "icebreaker", clock_mhz=17, out_dir=tmp_path)
    with pytest.raises(ValueError, match="^clock 500 MHz is out of range"):
        build_board(factory, "ulx3s-25f", clock_mhz=500, out_dir=tmp_path)
    assert plan_clock("ulx3s-25f", 33.3)[2] == 33_300_000        # exactly, from a float
    with pytest.raises(TypeError, match="clock must be a frequency in MHz"):
        plan_clock("ulx3s-25f", "100")
    with pytest.raises(ValueError, match=r"^seed must be an integer from 0 to 2\*\*31 - 1, "
                                         r"not -1$"):
        build_board(factory, "ulx3s-25f", out_dir=tmp_path, seed=-1)
    with pytest.raises(TypeError, match="^seed must be an integer, not 1.0$"):
        build_board(factory, "ulx3s-25f", out_dir=tmp_path, seed=1.0)
    with pytest.raises(ValueError, match="^name must be an identifier"):
        build_board(factory, "ulx3s-25f", out_dir=tmp_path, name="my top")
    assert list(tmp_path.iterdir()) == []


def test_device_must_have_uart_ports(tmp_path):
    with pytest.raises(TypeError, match="Device must have a port tx: Out\\(1\\), not nothing$"):
        build_board(lambda hz: NoTx(), "icebreaker", out_dir=tmp_path)
    with pytest.raises(TypeError, match="Device must be an amaranth.lib.wiring.Component"):
        BoardTop(object(), "icebreaker")
    with pytest.raises(TypeError, match="^Device must have a port tx: Out\\(1\\), not "
                                        "Out\\(2\\)$"):
        BoardTop(WideTx(), "icebreaker")
    files = get_board("icebreaker").platform().prepare(BoardTop(IdleHigh(), "icebreaker"))
    assert "uart_0__tx__io" in files.files["top.pcf"]


def test_device_gets_the_achieved_clock(tmp_path):
    seen = []

    def factory(clock_hz):
        seen.append(clock_hz)
        return NoTx()    # refused right after: nothing is built
    with pytest.raises(TypeError):
        build_board(factory, "icebreaker", clock_mhz=36.75, out_dir=tmp_path)
    assert seen == [36_750_000] and isinstance(seen[0], int)


def test_missing_programmer(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ProgrammerNotFound, match="^cannot program ulx3s-25f: no programmer on "
                                                 "PATH; install openFPGALoader \\(from "
                                                 "openFPGALoader"):
        find_programmer("ulx3s-25f")
    with pytest.raises(ProgrammerNotFound, match="install iceprog \\(from icestorm"):
        find_programmer("icebreaker")
    with pytest.raises(ProgrammerNotFound, match="install dfu-util \\(from dfu-util"):
        find_programmer("orangecrab-25f")


def test_bitstream_checks(tmp_path):
    ice40 = tmp_path / "a.bin"
    ice40.write_bytes(bytes(104090))
    assert check_bitstream(ice40, "icebreaker") == 104090
    ice40.write_bytes(bytes(104089))
    with pytest.raises(BitstreamError, match="has 104089 bytes, but an iCE40UP5K bitstream "
                                             "has 104090"):
        check_bitstream(ice40, "upduino-v3")
    header = b"\xff\x00Part: LFE5U-25F-6CABGA381\x00\xff"
    ecp5 = tmp_path / "a.bit"
    ecp5.write_bytes(header + bytes(582340 + 3 * ECP5_EBR_BYTES))
    assert check_bitstream(ecp5, "ulx3s-25f") == 582369 + 3 * ECP5_EBR_BYTES
    with pytest.raises(BitstreamError, match="does not start with the header of a "
                                             "LFE5U-25F-8CSFBGA285 bitstream"):
        check_bitstream(ecp5, "orangecrab-25f")
    ecp5.write_bytes(header + bytes(582340 + 1))          # a compressed or damaged file
    with pytest.raises(BitstreamError, match="has 582370 bytes, but an uncompressed "
                                             "LFE5U-25F-6CABGA381 bitstream has 582369 bytes "
                                             "plus 2318 per initialized block RAM \\(up to 56\\)"):
        check_bitstream(ecp5, "ulx3s-25f")
    with pytest.raises(BitstreamError, match="wrote no bitstream"):
        check_bitstream(tmp_path / "none.bit", "ulx3s-25f")


def test_program_runs_the_board_programmer(monkeypatch, tmp_path):
    tool = tmp_path / "openFPGALoader"
    tool.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path / 'args'}\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    build = SimpleNamespace(board="ulx3s-25f", bitstream=tmp_path / "top.bit")
    lines = []
    program(build, progress=lines.append)
    assert (tmp_path / "args").read_text() == f"-b ulx3s -m {tmp_path / 'top.bit'}\n"
    assert lines == [f"openFPGALoader -b ulx3s -m {tmp_path / 'top.bit'}"]
    tool.write_text("#!/bin/sh\nexit 3\n")
    with pytest.raises(ProgramError, match="^openFPGALoader failed with exit status 3$"):
        program(build, "ulx3s-25f")
    with pytest.raises(ValueError, match="was built for ulx3s-25f, not for ulx3s-85f$"):
        program(build, "ulx3s-85f")


# --- the command line: one line on stderr, exit 2, before any build ---------------------

@pytest.mark.parametrize("argv, message", [
    (["--board", "icestick"], "hwnn: error: Unknown board 'icestick'; valid boards are: "
                              "icebreaker, upduino-v3, ulx3s-85f, ulx3s-25f, orangecrab-25f"),
    (["--board", "icebreaker", "--clock", "17"],
     "hwnn: error: --clock 17 MHz cannot be made from the 12 MHz oscillator by the iCE40 PLL "
     "(SB_PLL40) within 0.5 %: the nearest achievable frequencies are 16.875 MHz and 17.25 MHz"),
    (["--board", "icebreaker", "--clock", "fast"],
     "hwnn: error: --clock must be a positive number of MHz, not 'fast'"),
    (["--board", "ulx3s-25f", "--clock", "-5"],
     "hwnn: error: --clock must be a positive number of MHz, not '-5'"),
    (["--board", "ulx3s-25f", "--seed", "-1"],
     "hwnn: error: --seed must be an integer from 0 to 2**31 - 1, not -1"),
    (["--board", "ulx3s-25f", "--program"],
     "hwnn: error: cannot program ulx3s-25f: no programmer on PATH; install openFPGALoader "
     "(from openFPGALoader (apt install openfpgaloader, or "
     "https://github.com/trabucayre/openFPGALoader))"),
])
def test_cli_errors(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.setenv("PATH", str(tmp_path))
    spec = write_dense_spec(tmp_path)
    code = cli.main(["build", str(spec), "-o", str(tmp_path / "out"), *argv])
    out, err = capsys.readouterr()
    assert (code, out, err) == (2, "", message + "\n")
    assert not (tmp_path / "out").exists()


# --- real bitstreams ----------------------------------------------------------------------

@pytest.mark.synth
@pytest.mark.parametrize("name, clock_mhz", [("icebreaker", 48), ("ulx3s-25f", 100)])
def test_real_bitstream(tmp_path, name, clock_mhz):
    lines = []
    build = build_board(lambda hz: Echo(), name, clock_mhz=clock_mhz, out_dir=tmp_path,
                        name="echo", progress=lines.append)
    board = BOARDS[name]
    assert build.bitstream == tmp_path / f"echo{board.bitstream_suffix}"
    expected = {"icebreaker": 104090, "ulx3s-25f": 582369}[name]
    assert build.bitstream.stat().st_size == build.bitstream_bytes == expected
    assert build.clock_hz == build.requested_hz == clock_mhz * 1_000_000
    assert build.timing_met and build.fmax_mhz >= clock_mhz
    text = build.text_report.read_text()
    assert text == format_report(build) + "\n"
    assert f"timing met: Fmax {build.fmax_mhz:.2f} MHz >= {clock_mhz} MHz" in text
    assert "timing NOT met" not in text
    data = json.loads(build.json_report.read_text())
    assert data["timing_met"] is True and data["clock_hz"] == clock_mhz * 1e6
    pll = "ICESTORM_PLL" if board.family == "ice40" else "EHXPLLL"
    assert build.utilization[pll]["used"] == 1
    assert [line.split()[0] for line in lines] == ["yosys", f"nextpnr-{board.family}",
                                                   "icepack" if board.family == "ice40"
                                                   else "ecppack"]


@pytest.mark.synth
def test_cli_reports_timing_not_met(capsys, tmp_path, monkeypatch):
    # The bridge is not this test's subject: the CLI builds the loopback device instead.
    def build_echo(design, board, *, clock_mhz, baud, out_dir, seed, progress):
        assert (design.name, baud, seed) == ("demo_fc", 3_000_000, 3)
        return build_board(lambda hz: Echo(), board, clock_mhz=clock_mhz, out_dir=out_dir,
                           name=design.name, seed=seed, progress=progress)
    monkeypatch.setattr(cli, "build_design", build_echo)
    spec = write_dense_spec(tmp_path)
    code = cli.main(["build", str(spec), "--board", "icebreaker", "--clock", "150", "--seed", "3",
                     "-o", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == (tmp_path / "out" / "demo_fc.report.txt").read_text()
    fmax = float(re.search(r"Fmax +([\d.]+) MHz", out).group(1))
    assert fmax < 150
    assert f"timing NOT met: Fmax {fmax:.2f} MHz < 150 MHz" in out
    assert "clock      requested 150 MHz, achieved 150 MHz (SB_PLL40_PAD from 12 MHz: DIVR 0, " \
           "DIVF 49, DIVQ 2, FILTER_RANGE 1, VCO 600 MHz)" in out
    assert "hwnn: wrote" in err


def test_build_design_puts_the_core_behind_the_bridge(monkeypatch, tmp_path):
    from test_boards_link import Step
    seen = {}

    class Stop(Exception):
        pass

    def bridge(core, *, clock_hz, baud, design_id):
        seen.update(core=core, clock_hz=clock_hz, baud=baud, design_id=design_id)
        raise Stop
    monkeypatch.setattr(build_module, "UartBridge", bridge)
    cores = []
    design = SimpleNamespace(name="net", build=lambda: cores.append(Step()) or cores[-1])
    with pytest.raises(Stop):
        build_module.build_design(design, "ulx3s-25f", clock_mhz=50, baud=3_000_000,
                                  out_dir=tmp_path)
    # One core for the design id, a fresh one behind the bridge.
    assert seen == {"core": cores[1], "clock_hz": 50_000_000, "baud": 3_000_000,
                    "design_id": design_id(Step())}
    with pytest.raises(ValueError, match="baud 4000000 at 12 MHz|at least 4 clock cycles"):
        build_module.build_design(design, "icebreaker", baud=4_000_000, out_dir=tmp_path)
    with pytest.raises(ValueError, match="^baud must be a positive integer, not 0$"):
        build_module.build_design(design, "ulx3s-25f", baud=0, out_dir=tmp_path)


@pytest.mark.parametrize("name", list(BOARDS))
def test_every_board_defaults_to_a_clock_that_makes_the_default_baud_exactly(name):
    from hwnn.boards.bridge import DEFAULT_BAUD
    from hwnn.boards.uart import baud_divisor
    _, _, requested, achieved = plan_clock(name)
    assert requested == achieved == BOARDS[name].default_clock_hz
    assert baud_divisor(int(achieved), DEFAULT_BAUD) * DEFAULT_BAUD == achieved
    # Below what the bridge alone reaches on the slowest part, the UP5K (about 45 MHz).
    assert achieved <= 48_000_000 if BOARDS[name].family == "ecp5" else achieved <= 24_000_000
