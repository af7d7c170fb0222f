"""What the compiled engines of :func:`hwnn.sim.run_stream` share: driver, cache and run.

A compiled engine turns the core into a C++ model (CXXRTL from yosys, or Verilator), compiles
it with the system C++ compiler together with the driver written here, and runs it as a
program. The driver reads the packed inputs and the stall patterns of a
:class:`~hwnn.sim.harness.StreamPlan` from a file, runs the same producers and consumer as the
Python simulator cycle by cycle (no Python call per cycle), and writes the outputs and the cycle
stamps back; it prints the number of outputs taken now and then, for a progress bar, and writes
a VCD waveform when built for one. The engines differ only in an :class:`Access` (how the
driver declares the model, reaches a port and settles the logic) and in how they build. Either
engine also builds a driver of the caller's own (:func:`own_driver_source`), such as the
interactive one of :mod:`hwnn.boards.compiled_link`.

Builds are cached under ``$XDG_CACHE_HOME/hwnn/<engine>`` (``~/.cache/hwnn/<engine>``, or
``$HWNN_CACHE_DIR/<engine>``), keyed by a hash of everything that goes into them.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import string
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from amaranth.hdl import Value

from ..export import port_table
from .stalls import STALL_CPP

__all__ = ["Access", "EngineError", "cache_dir", "cached_build", "driver_for", "driver_source",
           "find_compiler", "own_driver_source", "run_model"]

#: The clock period in the compiled engines' waveforms, in ns (Amaranth's is 10 ns too).
VCD_PERIOD_NS = 10


class EngineError(RuntimeError):
    """A compiled simulation engine cannot run: no C++ compiler, the engine's tool is missing,
    or the model did not build."""


def cache_dir(engine: str) -> Path:
    """Where ``engine``'s models are kept: ``$HWNN_CACHE_DIR/<engine>`` if that is set, else
    ``$XDG_CACHE_HOME/hwnn/<engine>`` or ``~/.cache/hwnn/<engine>``.

    ``HWNN_CACHE_DIR`` moves hwnn's models alone (a test suite or a benchmark that wants a
    fresh cache would make YoWASP compile its tools again if it moved ``XDG_CACHE_HOME``).
    """
    if os.environ.get("HWNN_CACHE_DIR"):
        return Path(os.environ["HWNN_CACHE_DIR"]) / engine
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hwnn" / engine


def find_compiler(engine: str) -> list[str]:
    """The C++ compiler command: ``$CXX`` if set, else the first of c++, g++, clang++ on PATH.

    Raises
    ------
    EngineError
        None of them is found (the message names ``engine``, which needed it).
    """
    if os.environ.get("CXX"):
        command = shlex.split(os.environ["CXX"])
        if command and shutil.which(command[0]):
            return command
        raise EngineError(f"engine={engine!r} needs a C++ compiler; CXX={os.environ['CXX']!r} "
                          f"is not found")
    for name in ("c++", "g++", "clang++"):
        path = shutil.which(name)
        if path:
            return [path]
    raise EngineError(f"engine={engine!r} needs a C++ compiler: none of c++, g++, clang++ is on "
                      f"PATH and CXX is not set (use engine='pysim', or install g++ or clang++)")


@dataclass(frozen=True)
class Access:
    """How the driver reaches one engine's model.

    ``prelude`` is C++ placed before the driver (includes, and ``put``/``get`` overloads for the
    engine's port types: ``put(port, const uint32_t *words)`` and ``get(port, uint32_t *words)``
    move a payload as little-endian 32-bit words); ``declare`` declares the model as ``top``;
    ``settle`` evaluates it after inputs changed; ``port(name)`` is the C++ lvalue of the exported
    port ``name`` (``i__payload``), or raises :class:`EngineError` when the model has none.
    ``vcd_open``/``vcd_sample``/``vcd_close`` write a waveform (``path`` and ``time`` in scope);
    they are compiled only into a build made for a VCD.
    """
    prelude: str
    declare: str
    settle: str
    port: Callable[[str], str]
    vcd_open: str
    vcd_sample: str
    vcd_close: str


_DRIVER_HEAD = r"""
#include <cstdint>
#include <cstdio>
#include <vector>

${STALL}
template<class T> static void put_bit(T &x, bool b) { uint32_t c[2] = {b, 0}; put(x, c); }
template<class T> static bool get_bit(T &x) { uint32_t c[2]; get(x, c); return c[0] & 1; }
template<class T> static void load(FILE *f, std::vector<T> &v) {
  if (v.size() && fread(v.data(), sizeof(T), v.size(), f) != v.size()) throw 1;
}
template<class T> static void save(FILE *f, const std::vector<T> &v) {
  fwrite(v.data(), sizeof(T), v.size(), f);
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  FILE *in = fopen(argv[1], "rb");
  if (!in) return 3;
  std::vector<int64_t> header(4);
  load(in, header);
  // header[0] is the main port's row count; each port loads its own below.
  const int64_t n_out = header[1], max_cycles = header[2], every = header[3];
  ${DECLARE}
#ifdef HWNN_VCD
  if (argc < 4) return 2;
  const char *path = argv[3];
  uint64_t time = 0;
  ${VCD_OPEN}
#endif
"""

# Per input port K: the payload words, the idle pattern, the producer state.
_DRIVER_PORT_LOAD = r"""
  std::vector<int64_t> rows_${K}(1); load(in, rows_${K});  // each port has its own row count
  const int64_t n_${K} = rows_${K}[0];
  std::vector<uint32_t> pay_${K}(n_${K} * ${CH}); load(in, pay_${K});
  std::vector<uint64_t> idle_${K}(2); load(in, idle_${K});  // the stall pattern's key, threshold
  std::vector<int64_t> inc_${K}; inc_${K}.reserve(n_${K});
  int64_t index_${K} = 0; bool pending_${K} = false, ready_${K} = false, active_${K} = false;
"""

_DRIVER_LOOP = r"""
  std::vector<uint64_t> hold(2); load(in, hold);
  fclose(in);
  std::vector<uint32_t> outs(n_out * ${OCH});
  std::vector<int64_t> outc(n_out);
  int64_t taken = 0, cycles = 0, cycle = 0, status = 0, status_count = 0;
  // Amaranth's simulator starts with every register at its init value and no reset pulse; so
  // do the models. Every input port starts at 0: an input stream that is not fed stays idle.
${ZERO}
  for (;;) {
    bool any = false;
${PRODUCE}
    bool consuming = taken < n_out, ready = false;
    if (consuming) {
      any = true;
      ready = !stalled(hold[0], hold[1], cycle);
      ${SET_READY}
    }
    if (!any) break;
    ${SETTLE}  // settle the combinational logic before the edge, as the testbenches sample
#ifdef HWNN_VCD
    time = (uint64_t)cycle * ${PERIOD}; ${VCD_SAMPLE}
#endif
${SAMPLE}
    bool valid = get_bit(${VALID});
    if (consuming && ready && valid) get(${PAYLOAD}, &outs[taken * ${OCH}]);
    put_bit(${CLK}, true);
    ${SETTLE}
#ifdef HWNN_VCD
    time = (uint64_t)cycle * ${PERIOD} + ${PERIOD} / 2; ${VCD_SAMPLE}
#endif
${ACCEPT}
    if (consuming && ready && valid) {
      outc[taken++] = cycle;
      if (every && taken % every == 0) { printf("%lld\n", (long long)taken); fflush(stdout); }
    }
    cycle++;
    if (consuming && taken == n_out) { cycles = cycle; ${CLEAR_READY} }
${TIMEOUT}
    if (consuming && cycle > max_cycles) { status = 2; status_count = taken; break; }
    put_bit(${CLK}, false);
  }
#ifdef HWNN_VCD
  ${SETTLE}
  time = (uint64_t)cycle * ${PERIOD}; ${VCD_SAMPLE}
  ${VCD_CLOSE}
#endif
  FILE *out = fopen(argv[2], "wb");
  if (!out) return 3;
  std::vector<int64_t> result = {status, status_count, cycles, taken};
  save(out, result);
${SAVE}
  save(out, outc);
  save(out, outs);
  fclose(out);
  return 0;
}
"""

#: Every template the driver is made of, for the build keys.
DRIVER_TEMPLATES = (STALL_CPP, _DRIVER_HEAD, _DRIVER_PORT_LOAD, _DRIVER_LOOP)


def payload_width(core, port: str) -> int:
    """Bits of the payload of ``core``'s stream ``port``."""
    return len(Value.cast(getattr(core, port).payload))


def chunks(width: int) -> int:
    """32-bit words that hold ``width`` bits (at least one)."""
    return max(1, (width + 31) // 32)


def driver_source(core, plan, access: Access) -> str:
    """C++ of the driver that runs ``plan`` on ``core``'s model through ``access``."""
    port = access.port
    body = _DRIVER_HEAD
    produce, sample, accept, timeout, save = [], [], [], [], []
    for k, name in enumerate(plan.ports):
        payload, valid = port(f"{name}__payload"), port(f"{name}__valid")
        words = chunks(payload_width(core, name))
        # An always_ready input has a constant ready, which is no port of the model.
        always = getattr(core, name).signature.always_ready
        body += string.Template(_DRIVER_PORT_LOAD).substitute(K=k, CH=words)
        produce.append(
            f"    active_{k} = index_{k} < n_{k};\n"
            f"    if (active_{k}) {{ any = true; if (!pending_{k} && !stalled(idle_{k}[0], idle_{k}[1], cycle)) {{\n"
            f"      put({payload}, &pay_{k}[index_{k} * {words}]);\n"
            f"      put_bit({valid}, true); pending_{k} = true; }} }}")
        sample.append(f"    ready_{k} = true;" if always else
                      f"    ready_{k} = get_bit({port(name + '__ready')});")
        accept.append(
            f"    if (active_{k} && pending_{k} && ready_{k}) {{ inc_{k}.push_back(cycle); "
            f"index_{k}++; pending_{k} = false; put_bit({valid}, false); }}")
        timeout.append(f"    if (active_{k} && cycle > max_cycles) "
                       f"{{ status = {3 + k}; status_count = index_{k}; break; }}")
        save.append(f"  {{ std::vector<int64_t> n = {{(int64_t)inc_{k}.size()}}; save(out, n); "
                    f"save(out, inc_{k}); }}")
    zero = [f"  {{ uint32_t z[{chunks(p['width'])}] = {{0}}; put({port(p['name'])}, z); }}"
            for p in port_table(core) if p["direction"] == "in"]
    o_ready = None if plan.o_always_ready else port(f"{plan.o_port}__ready")
    replacements = {
        "STALL": STALL_CPP, "DECLARE": access.declare, "VCD_OPEN": access.vcd_open,
        "VCD_SAMPLE": access.vcd_sample, "VCD_CLOSE": access.vcd_close,
        "PERIOD": str(VCD_PERIOD_NS), "SETTLE": access.settle, "ZERO": "\n".join(zero),
        "OCH": str(chunks(payload_width(core, plan.o_port))), "PRODUCE": "\n".join(produce),
        "SET_READY": f"put_bit({o_ready}, ready);" if o_ready else "",
        "CLEAR_READY": f"put_bit({o_ready}, false);" if o_ready else "",
        "SAMPLE": "\n".join(sample), "VALID": port(f"{plan.o_port}__valid"),
        "PAYLOAD": port(f"{plan.o_port}__payload"), "CLK": port("clk"),
        "ACCEPT": "\n".join(accept), "TIMEOUT": "\n".join(timeout), "SAVE": "\n".join(save),
    }
    return access.prelude + string.Template(body + _DRIVER_LOOP).substitute(replacements)


class _Names(dict):
    """The values of a driver template: the fixed names given, then the model's ports."""

    def __init__(self, access: Access, fixed: dict):
        super().__init__(fixed)
        self.access = access

    def __missing__(self, name):
        return self.access.port(name)


def own_driver_source(template: str, access: Access) -> str:
    """The C++ of a driver of the caller's own: ``access.prelude`` followed by ``template``
    (a :class:`string.Template`) with ``${DECLARE}``, ``${SETTLE}``, ``${VCD_OPEN}``,
    ``${VCD_SAMPLE}`` and ``${VCD_CLOSE}`` replaced by ``access``'s code and every other
    ``${name}`` by the C++ lvalue of the model's port ``name`` (``${i__valid}``).

    Raises
    ------
    EngineError
        The template names a port the model does not have.
    """
    fixed = {"DECLARE": access.declare, "SETTLE": access.settle, "VCD_OPEN": access.vcd_open,
             "VCD_SAMPLE": access.vcd_sample, "VCD_CLOSE": access.vcd_close}
    return access.prelude + string.Template(template).substitute(_Names(access, fixed))


def driver_for(core, plan, driver: str | None) -> tuple[Callable[[Access], str], str]:
    """What a compiled engine's ``build(core, plan, driver=...)`` compiles with the model: the
    C++ of the driver as a function of the model's :class:`Access` (:func:`driver_source` for
    ``plan``, or :func:`own_driver_source` of the template ``driver``), and what the build's
    cache key takes of it (the ports the plan drives and their kinds, or the template).

    Raises
    ------
    TypeError
        Both or neither of ``plan`` and ``driver`` are given.
    """
    if (plan is None) == (driver is None):
        raise TypeError(f"build takes a plan or a driver, not plan={plan!r} and "
                        f"driver={'None' if driver is None else 'a template'}")
    if driver is not None:
        return (lambda access: own_driver_source(driver, access)), f"own driver\0{driver}"
    ports = [(p, str(getattr(core, p).signature)) for p in (*plan.ports, plan.o_port)]
    return (lambda access: driver_source(core, plan, access)), repr(ports)


def cached_build(engine: str, key_parts, make: Callable[[Path], None]) -> Path:
    """The program ``sim`` built by ``make(directory)``, from ``engine``'s cache or built now.

    ``key_parts`` (strings) are everything the build depends on; ``make`` writes ``sim`` into
    the empty directory it is given, or raises :class:`EngineError`. A build that fails leaves
    nothing in the cache.
    """
    key = hashlib.sha256("\0".join(key_parts).encode()).hexdigest()[:32]
    root = cache_dir(engine)
    target = root / key
    if (target / "sim").is_file():
        return target / "sim"
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=root))
    try:
        make(work)
        try:
            work.rename(target)
        except OSError:  # another run built the same model meanwhile
            if not (target / "sim").is_file():
                raise
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return target / "sim"


def _pattern_words(pattern) -> bytes:
    return np.array([pattern.key, pattern.threshold], dtype="<u8").tobytes()


def run_model(engine: str, executable: Path, core, plan, progress=None, vcd=None):
    """Run ``plan`` on a compiled model; ``progress(done, total)`` as outputs are taken.

    Returns ``(outputs, in_cycles, out_cycles, cycles)`` as :meth:`StreamPlan.result` takes them.

    Raises
    ------
    EngineError
        The model did not run.
    TimeoutError
        As the Python simulator raises it.
    """
    every = max(1, plan.n_out // 100) if progress is not None else 0
    with tempfile.TemporaryDirectory(prefix=f"hwnn-{engine}-") as tmp:
        tmp = Path(tmp)
        with open(tmp / "in.bin", "wb") as f:
            f.write(np.array([plan.n_in, plan.n_out, plan.max_cycles, every],
                             dtype="<i8").tobytes())
            for port in plan.ports:
                f.write(np.array([len(plan.rows[port])], dtype="<i8").tobytes())
                f.write(plan.codecs[port].words(plan.rows[port]).tobytes())
                f.write(_pattern_words(plan.idle_in[port]))
            f.write(_pattern_words(plan.hold_out))
        command = [str(executable), "in.bin", "out.bin"]
        if vcd is not None:
            command.append(str(Path(vcd).resolve()))
        with open(tmp / "stderr", "w+b") as errors:
            process = subprocess.Popen(command, cwd=tmp, stdout=subprocess.PIPE, stderr=errors,
                                       stdin=subprocess.DEVNULL, text=True)
            with process:
                for line in process.stdout:
                    progress(int(line), plan.n_out)
            if process.returncode != 0:
                errors.seek(0)
                raise EngineError(f"the {engine} model {executable} failed with exit status "
                                  f"{process.returncode}: "
                                  f"{errors.read()[-2000:].decode(errors='replace')}")
        raw = (tmp / "out.bin").read_bytes()
    status, count, cycles, taken = (int(v) for v in np.frombuffer(raw, dtype="<i8", count=4))
    offset, in_cycles = 32, {}
    for port in plan.ports:
        n = int(np.frombuffer(raw, dtype="<i8", count=1, offset=offset)[0])
        in_cycles[port] = np.frombuffer(raw, dtype="<i8", count=n, offset=offset + 8)
        offset += 8 * (n + 1)
    if status >= 3:   # input port status - 3 stopped being taken
        raise plan.in_timeout(count, plan.ports[status - 3])
    if status == 2:
        raise plan.out_timeout(count)
    out_cycles = np.frombuffer(raw, dtype="<i8", count=plan.n_out, offset=offset)[:taken]
    offset += 8 * plan.n_out
    size = 4 * plan.out_codec.chunks
    outputs = plan.out_codec.from_words(raw[offset:offset + size * taken])
    if progress is not None and (not every or taken % every):
        progress(taken, plan.n_out)
    return outputs, in_cycles, out_cycles, cycles
