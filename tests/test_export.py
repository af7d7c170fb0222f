import json
import re

import numpy as np
import pytest
from amaranth.back import rtlil

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.cores._component import inspected
from hwnn.cores.dense import Dense
from hwnn.export import (VERILOG_KEYWORDS, check_module_name, core_rtlil, core_verilog, export,
                         manifest, port_table, safe_names)
from hwnn.fixed import SQ, UQ
from hwnn.plans.dense import plan_dense
from hwnn.spec import design_from_dict
from hwnn.testbench import write_testbench
from verilog_designs import ALL_KINDS, build


def make_core(parallelism=2):
    rng = np.random.default_rng(0)
    plan = plan_dense(rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, 3), in_format=UQ(1, 7),
                      weight_format=SQ(1, 7), out_format=SQ(4, 8))
    return Dense(plan, parallelism=parallelism)


def test_port_table_uses_stream_names_and_packed_widths():
    ports = {p["name"]: p for p in port_table(inspected(make_core()))}
    assert list(ports) == ["clk", "rst", "i__payload", "i__valid", "i__ready", "o__payload",
                           "o__valid", "o__ready"]
    assert ports["i__payload"] == {"name": "i__payload", "direction": "in", "width": 32,
                                   "elements": 4, "element_width": 8, "element_signed": False}
    assert ports["o__payload"]["width"] == 36 and ports["o__payload"]["element_signed"]
    assert ports["i__ready"]["direction"] == "out" and ports["o__ready"]["direction"] == "in"


def test_manifest_has_timing_formats_and_parameters():
    core = inspected(make_core(parallelism=3))
    info = manifest(core, "fc1")
    assert info["module"] == "fc1" and info["latency"] == core.latency and info["ii"] == 4
    assert info["core"]["in_format"] == "UQ(1, 7)" and info["core"]["parallelism"] == 3
    assert info["reset"] == {"port": "rst", "kind": "synchronous", "active": "high"}


def test_export_writes_verilog_rtlil_and_manifest(tmp_path):
    written = export(make_core(), "fc1", tmp_path)
    assert set(written) == {"verilog", "rtlil", "manifest"}
    text = written["verilog"].read_text()
    assert "module fc1(" in text
    for port in ["clk", "rst", "i__payload", "i__valid", "i__ready", "o__payload", "o__valid",
                 "o__ready"]:
        assert f" {port}" in text
    assert "input [31:0] i__payload" in text and "output [35:0] o__payload" in text
    assert "module \\fc1" in written["rtlil"].read_text()
    assert json.loads(written["manifest"].read_text())["ii"] == 6


def test_export_only_verilog(tmp_path):
    written = export(make_core(), "fc1", tmp_path, formats=("verilog",))
    assert set(written) == {"verilog", "manifest"}


@pytest.mark.parametrize("name", ["1fc", "fc-1", "", "a b", "fc$1", "\\fc"])
def test_module_name_must_be_an_identifier(name):
    with pytest.raises(ParameterValueError) as info:
        check_module_name(name)
    assert str(info.value) == (f"Module name must be a Verilog identifier (letters, digits, _; "
                               f"not starting with a digit), not {name!r}")
    assert info.value.parameter == "name"


def test_module_name_must_be_a_string():
    with pytest.raises(ParameterTypeError) as info:
        check_module_name(3)
    assert str(info.value) == "Module name must be a string, not 3"
    assert info.value.parameter == "name"


# Verilog-2005 words, then words SystemVerilog adds (Verilator reads every file as such).
@pytest.mark.parametrize("name", ["module", "wire", "reg", "always", "input", "output", "begin",
                                  "endmodule", "integer", "initial", "assign", "logic", "bit",
                                  "int", "class", "interface", "program", "string", "type",
                                  "unique0", "nettype", "soft"])
def test_module_name_must_not_be_a_keyword(tmp_path, name):
    message = (f"Module name must be a Verilog identifier that is not a Verilog or SystemVerilog "
               f"keyword, not {name!r}")
    with pytest.raises(ParameterValueError, match=re.escape(message) + "$") as info:
        check_module_name(name)
    assert info.value.parameter == "name"
    with pytest.raises(ParameterValueError, match=re.escape(message) + "$"):
        export(inspected(make_core()), name, tmp_path)
    with pytest.raises(ParameterValueError, match=re.escape(message) + "$"):
        write_testbench(inspected(make_core()), name, np.zeros((1, 4), int),
                        np.zeros((1, 3), int), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_keywords_are_the_whole_systemverilog_list():
    # IEEE 1800-2017 Annex B lists 248 reserved words, Verilog-2005's among them; names that
    # only look special to C++ or to the testbench (main, std, clk, lfsr, dut) stay legal.
    assert len(VERILOG_KEYWORDS) == 248
    assert {"uwire", "cell", "config", "macromodule", "specparam"} <= VERILOG_KEYWORDS
    for name in ["main", "std", "clk", "rst", "lfsr", "dut", "N", "Module", "WIRE", "fc_tb"]:
        assert check_module_name(name) == name


def test_export_rejects_unknown_formats(tmp_path):
    with pytest.raises(ValueError, match=r"formats may contain 'verilog' and 'rtlil', not \['vhdl'\]"):
        export(inspected(make_core()), "fc1", tmp_path, formats=("vhdl",))


def test_safe_names_renames_bit_like_names_and_every_use():
    text = "\n".join([
        'attribute \\generator "Amaranth"',
        "module \\top",
        "  wire width 8 output 0 \\o__payload",
        "  wire width 4 \\o__payload[0]",
        "  wire width 4 \\o__payload__0",
        "  wire width 2 \\x[3][1]",
        "  memory width 8 size 4 \\m[1]",
        "  cell $memrd \\c",
        '    parameter \\MEMID "\\\\m[1]"',
        '    parameter \\TEXT "a[0] b"',
        "  end",
        "  connect \\o__payload [3:0] \\o__payload[0]",
        "  connect \\o__payload [7:4] { \\x[3][1] \\x[3][1] }",
        "end", ""])
    assert safe_names(text) == "\n".join([
        'attribute \\generator "Amaranth"',
        "module \\top",
        "  wire width 8 output 0 \\o__payload",
        "  wire width 4 \\o__payload__0$1",   # o__payload__0 is taken
        "  wire width 4 \\o__payload__0",
        "  wire width 2 \\x__3__1",
        "  memory width 8 size 4 \\m__1",
        "  cell $memrd \\c",
        '    parameter \\MEMID "\\\\m__1"',   # the memory's name follows it
        '    parameter \\TEXT "a[0] b"',       # a string that names nothing stays
        "  end",
        "  connect \\o__payload [3:0] \\o__payload__0$1",
        "  connect \\o__payload [7:4] { \\x__3__1 \\x__3__1 }",
        "end", ""])
    assert safe_names(safe_names(text)) == safe_names(text)


# Before: `\\o__payload[0]` beside the port `\\o__payload` (yosys abc9 asserts on it).
_BIT_LIKE_NAME = re.compile(r"\\\S*[\[\]]")


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_exported_files_have_no_bit_like_names(tmp_path, kind):
    core = build(kind, tmp_path)[0]
    written = export(core, "m", tmp_path)
    for role in ("verilog", "rtlil"):
        text = written[role].read_text()
        assert _BIT_LIKE_NAME.findall(text) == [], role
        assert "[-1:0]" not in text, role   # zero-width wires (Verilator: LITENDIAN)


def test_element_wires_keep_readable_names():
    core = make_core()
    text = core_verilog(core, "fc1")
    assert "wire [7:0] i__payload__0;" in text and "wire [11:0] o__payload__2;" in text
    assert "\\o__payload__2 " in core_rtlil(make_core(), "fc1") + " "


def test_one_entry_table_has_no_zero_width_wire():
    design = design_from_dict({"core": {"kind": "activation", "name": "act"}, "params": {
        "function": "sigmoid", "method": "pwl", "in_format": "SQ(2,2)", "out_format": "UQ(0,2)",
        "segments": 2}})
    assert "wire width 0 " in rtlil.convert(design.build(), name="act")  # Amaranth keeps them
    assert "wire width 0 " not in core_rtlil(design.build(), "act")
    assert "[-1:0]" not in core_verilog(design.build(), "act")
