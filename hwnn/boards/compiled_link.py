"""A simulated board as a compiled model, and the choice of engine for a simulated board.

:class:`CompiledTransport` runs the :class:`~hwnn.boards.simulated.LinkShell` of a bridge as a
CXXRTL model (:mod:`hwnn.sim.cxxrtl`) or a Verilator model (:mod:`hwnn.sim.verilator`), built
and cached like every compiled model, with a driver of its own that stays alive and talks with
Python over pipes; it gives the same bytes at the same cycles as
:class:`~hwnn.boards.simulated.SimulatedTransport`, much faster. :func:`simulated_transport`
chooses among them.

The pipe protocol (little-endian; the program replies only to ``R`` and flushes every reply):

* ``'Q'``, ``n`` (u32), then ``n`` pairs of bytes ``data, action``: append to the host's queue.
* ``'R'``, ``limit`` (i64), ``chunk`` (i64): simulate chunks of ``chunk`` cycles, at least one,
  until a byte has arrived or ``limit`` cycles have passed; reply with the cycle count (i64),
  ``n`` (u32) and the ``n`` bytes that arrived.
* End of input: the program writes the rest of its waveform, if any, and exits.
"""

from __future__ import annotations

import struct
import subprocess
import tempfile
from pathlib import Path

from ..sim import cxxrtl, verilator
from ..sim.compiled import EngineError, find_compiler
from ..sim.harness import auto_candidates, first_engine
from .bridge import UartBridge
from .simulated import SimulatedLink, SimulatedTransport

__all__ = ["CompiledTransport", "simulated_transport", "LINK_ENGINES"]

#: The engines of a simulated board, slowest first; ``"auto"`` chooses among them.
LINK_ENGINES = ("pysim", "cxxrtl", "verilator")
# The build of each compiled engine.
_BUILDS = {"cxxrtl": cxxrtl.build, "verilator": verilator.build}

# The driver: LinkShell's host side cycle by cycle, as SimulatedTransport's testbench runs it.
# prepare() is one testbench iteration up to its tick (offer the queue's head, settle, sample
# i.ready and o); step() is the tick and the next iteration, so a run ends with the inputs of
# its last cycle set, as run_until leaves the Python simulator.
DRIVER = r"""
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <vector>

template<class T> static void put_word(T &x, uint32_t w) { uint32_t c[2] = {w, 0}; put(x, c); }
template<class T> static uint32_t get_word(T &x) { uint32_t c[2] = {0, 0}; get(x, c); return c[0]; }
static bool read_exactly(void *p, size_t n) { return fread(p, 1, n, stdin) == n; }

int main(int argc, char **argv) {
  ${DECLARE}
#ifdef HWNN_VCD
  if (argc < 2) return 2;
  const char *path = argv[1];
  uint64_t time = 0;
  ${VCD_OPEN}
#endif
  const uint64_t period = 10;  // ns per cycle in the waveform, as the other engines
  put_word(${clk}, 0); put_word(${rst}, 0); put_word(${i__valid}, 0); put_word(${i__payload}, 0);
  std::deque<uint32_t> queue;  // (action << 8) | data, as HOST_LAYOUT packs them
  std::vector<uint8_t> received;
  int64_t cycles = 0;
  bool prepared = false, taken = false;
  auto prepare = [&]() {
    bool offered = !queue.empty();
    if (offered) put_word(${i__payload}, queue.front());
    put_word(${i__valid}, offered);
    ${SETTLE}
    taken = offered && (get_word(${i__ready}) & 1);
    uint32_t o = get_word(${o__payload});  // RX_LAYOUT: data in bits 0-7, error in bit 8
    if ((get_word(${o__valid}) & 1) && !((o >> 8) & 1)) received.push_back(o & 0xff);
#ifdef HWNN_VCD
    time = (uint64_t)cycles * period; ${VCD_SAMPLE}
#endif
    prepared = true;
  };
  auto step = [&]() {
    put_word(${clk}, 1);
    ${SETTLE}
#ifdef HWNN_VCD
    time = (uint64_t)cycles * period + period / 2; ${VCD_SAMPLE}
#endif
    put_word(${clk}, 0);
    cycles++;
    if (taken) queue.pop_front();
    prepare();
  };
  for (;;) {
    int command = getchar();
    if (command == EOF) break;
    if (command == 'Q') {
      uint32_t n;
      if (!read_exactly(&n, 4)) return 5;
      std::vector<uint8_t> items(2 * (size_t)n);
      if (n && !read_exactly(items.data(), items.size())) return 5;
      for (size_t k = 0; k < n; k++)
        queue.push_back(items[2 * k] | (uint32_t)items[2 * k + 1] << 8);
    } else if (command == 'R') {
      int64_t limits[2];
      if (!read_exactly(limits, sizeof limits)) return 5;
      const int64_t limit = limits[0], chunk = limits[1];
      do {
        const int64_t target = std::min(cycles + chunk, limit);
        if (!prepared) prepare();
        while (cycles < target) step();
      } while (received.empty() && cycles < limit);
      uint32_t n = (uint32_t)received.size();
      fwrite(&cycles, 8, 1, stdout);
      fwrite(&n, 4, 1, stdout);
      if (n) fwrite(received.data(), 1, n, stdout);
      fflush(stdout);
      received.clear();
    } else {
      return 6;
    }
  }
#ifdef HWNN_VCD
  ${VCD_CLOSE}
#endif
  return 0;
}
"""

_REPLY = struct.Struct("<qI")


class CompiledTransport(SimulatedLink):
    """A board as a compiled model, with the ``write``/``read`` of a serial port
    (:class:`~hwnn.boards.simulated.SimulatedLink` says how they run): the same bytes at the
    same cycles as :class:`~hwnn.boards.simulated.SimulatedTransport`.

    The model (``engine`` ``"cxxrtl"`` or ``"verilator"``) is built, or taken from the cache,
    when the transport is made, and runs as a child process until :meth:`close`; ``vcd`` is a
    path for a waveform of the run, complete after :meth:`close`.

    Raises
    ------
    ValueError
        An unknown ``engine``.
    hwnn.sim.EngineError
        No C++ compiler or Verilator, the model did not build, or (later, from ``read``) the
        model stopped.
    """

    def __init__(self, bridge: UartBridge, *, engine: str = "cxxrtl", gap_cycles: int = 1000,
                 vcd=None):
        self._process = None  # what close() ends, from __del__ too
        if engine not in _BUILDS:
            raise ValueError(f"engine must be one of {', '.join(map(repr, _BUILDS))}, "
                             f"not {engine!r}")
        # The tools first: a shell made and never elaborated would warn (UnusedElaboratable).
        find_compiler(engine)
        if engine == "verilator":
            verilator.find_verilator()
        super().__init__(bridge, gap_cycles=gap_cycles)
        self.engine = engine
        self._pending = bytearray()
        self.executable = _BUILDS[engine](self.shell, driver=DRIVER, vcd=vcd is not None)
        self._errors = tempfile.TemporaryFile()
        command = [str(self.executable)]
        if vcd is not None:
            command.append(str(Path(vcd).resolve()))
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self._errors)

    def _queue(self, byte: int, action: int) -> None:
        self._pending += bytes((byte, action))

    def _run(self, limit: int) -> None:
        """Send what was queued and one ``R`` command; take the reply's cycles and bytes."""
        if self._process is None:
            raise EngineError(f"the {self.engine} model of the simulated board is closed")
        message = bytearray()
        if self._pending:
            message += b"Q" + struct.pack("<I", len(self._pending) // 2) + self._pending
            self._pending.clear()
        message += b"R" + struct.pack("<qq", limit, self.CHUNK)
        try:
            self._process.stdin.write(message)
            self._process.stdin.flush()
        except BrokenPipeError:
            self._failed()
        reply = self._process.stdout.read(_REPLY.size)
        if len(reply) != _REPLY.size:
            self._failed()
        cycles, n = _REPLY.unpack(reply)
        data = self._process.stdout.read(n) if n else b""
        if len(data) != n:
            self._failed()
        self.cycles = cycles
        self._from_board += data

    def _stop(self) -> tuple[int, str]:
        """End the model (end of input: it writes the rest of its waveform and exits); its
        exit status and the end of its stderr."""
        process, self._process = self._process, None
        try:
            process.stdin.close()
        except BrokenPipeError:  # what was still buffered cannot reach a model that stopped
            pass
        returncode = process.wait()
        process.stdout.close()
        self._errors.seek(0)
        errors = self._errors.read()[-2000:].decode(errors="replace")
        self._errors.close()
        return returncode, errors

    def _failed(self):
        """Raise the error of a model that stopped answering."""
        returncode, errors = self._stop()
        raise EngineError(f"the {self.engine} model {self.executable} of the simulated board "
                          f"stopped with exit status {returncode}: {errors}")

    def close(self) -> None:
        """End the model (it writes the rest of its waveform first)."""
        if self._process is not None:
            self._stop()

    def __del__(self):
        self.close()


def simulated_transport(bridge: UartBridge, *, engine: str = "auto", gap_cycles: int = 1000,
                        vcd=None) -> SimulatedLink:
    """A transport to ``bridge`` in a simulator: ``engine`` ``"pysim"``
    (:class:`~hwnn.boards.simulated.SimulatedTransport`), ``"cxxrtl"`` or ``"verilator"``
    (:class:`CompiledTransport`), or ``"auto"``: the fastest compiled one that builds
    (Verilator where it is installed, then CXXRTL), else pysim, with an
    :class:`~hwnn.sim.EngineFallback` warning for each engine it could not use, saying why.
    All give the same bytes at the same cycles; ``transport.engine`` says which one runs.

    Raises
    ------
    ValueError
        An unknown ``engine``.
    hwnn.sim.EngineError
        A compiled ``engine`` (not ``"auto"``) without a C++ compiler or its tool, or its build
        failed.
    """
    if engine not in (*LINK_ENGINES, "auto"):
        raise ValueError(f"engine must be one of "
                         f"{', '.join(map(repr, (*LINK_ENGINES, 'auto')))}, not {engine!r}")
    candidates = auto_candidates() if engine == "auto" else [engine] if engine in _BUILDS else []
    transport = first_engine(candidates, engine, lambda name: CompiledTransport(
        bridge, engine=name, gap_cycles=gap_cycles, vcd=vcd))
    if transport is not None:
        return transport
    return SimulatedTransport(bridge, gap_cycles=gap_cycles, vcd=vcd)
