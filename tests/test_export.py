import json

import numpy as np
import pytest

from hwnn.cores.dense import Dense
from hwnn.export import check_module_name, export, manifest, port_table
from hwnn.fixed import SQ, UQ
from hwnn.plans.dense import plan_dense


def make_core(parallelism=2):
    rng = np.random.default_rng(0)
    plan = plan_dense(rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, 3), in_format=UQ(1, 7),
                      weight_format=SQ(1, 7), out_format=SQ(4, 8))
    return Dense(plan, parallelism=parallelism)


def test_port_table_uses_stream_names_and_packed_widths():
    ports = {p["name"]: p for p in port_table(make_core())}
    assert list(ports) == ["clk", "rst", "i__payload", "i__valid", "i__ready", "o__payload",
                           "o__valid", "o__ready"]
    assert ports["i__payload"] == {"name": "i__payload", "direction": "in", "width": 32,
                                   "elements": 4, "element_width": 8, "element_signed": False}
    assert ports["o__payload"]["width"] == 36 and ports["o__payload"]["element_signed"]
    assert ports["i__ready"]["direction"] == "out" and ports["o__ready"]["direction"] == "in"


def test_manifest_has_timing_formats_and_parameters():
    core = make_core(parallelism=3)
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


@pytest.mark.parametrize("name", ["1fc", "fc-1", "", "a b"])
def test_module_name_must_be_an_identifier(name):
    with pytest.raises(ValueError, match="Module name must be a Verilog identifier"):
        check_module_name(name)


def test_export_rejects_unknown_formats(tmp_path):
    with pytest.raises(ValueError, match=r"formats may contain 'verilog' and 'rtlil', not \['vhdl'\]"):
        export(make_core(), "fc1", tmp_path, formats=("vhdl",))
