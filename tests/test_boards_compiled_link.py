"""The compiled simulated boards (CXXRTL, Verilator) against the one in Amaranth's simulator: the
same bytes at the same cycles, and a spec's run over the link bit-exact."""

import numpy as np
import pytest

from hwnn.board_run import run_on_board, simulated_board
from hwnn.boards.bridge import UartBridge
from hwnn.boards.compiled_link import CompiledTransport, simulated_transport
from hwnn.boards.protocol import END, Error, FrameDecoder, Kind, encode_frame, row_bytes
from hwnn.boards.simulated import SimulatedTransport
from hwnn.demo import write_dense_spec
from hwnn.flow import input_codes
from hwnn.sim import EngineError, EngineFallback, compiled, cxxrtl, verilator
from hwnn.spec import load_spec


def _compiler_problem():
    try:
        compiled.find_compiler("test")
    except EngineError as error:
        return str(error)
    return None


def _verilator_problem():
    try:
        verilator.find_verilator()
    except EngineError as error:
        return str(error)
    return None


needs_compiler = pytest.mark.skipif(_compiler_problem() is not None,
                                    reason=f"needs a C++ compiler: {_compiler_problem()}")
ENGINES = [pytest.param("cxxrtl", marks=needs_compiler),
           pytest.param("verilator", marks=[needs_compiler, pytest.mark.skipif(
               _verilator_problem() is not None,
               reason=f"needs Verilator: {_verilator_problem()}")])]

# A short frame timeout, so the test of a frame cut short stays short in pysim.
TIMEOUT_CYCLES = 1500
GAP_CYCLES = 300


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    return load_spec(write_dense_spec(tmp_path_factory.mktemp("spec")))


def _bridge(design):
    return UartBridge(design.build(), clock_hz=12_000_000, baud=3_000_000, design_id=7,
                      timeout_cycles=TIMEOUT_CYCLES)


def _script(transport, in_bytes: int) -> list:
    """Writes, gaps, breaks and reads of every kind; what each read returned and when."""
    log = []

    def read(size, cycles):
        log.append((transport.read(size, cycles / transport.clock_hz), transport.cycles))

    def drain(size=4096, cycles=900):
        while True:
            read(size, cycles)
            if not log[-1][0]:
                return

    def poll(count):
        """Read ``count`` bytes one cycle at a time: the cycle of every byte, exactly."""
        for _ in range(count):
            data = b""
            while not data:
                data = transport.read(1, 1 / transport.clock_hz)
            log.append((data, transport.cycles))

    rng = np.random.default_rng(5)
    transport.write(encode_frame(Kind.INFO))
    read(3, 2000)                      # part of the reply: the rest waits in the transport
    read(1, 1)
    drain(7)
    transport.write(encode_frame(Kind.INFO)[:9])
    read(1, 100)                       # ends in the middle of a byte on the line
    transport.write(encode_frame(Kind.INFO)[9:])   # queued behind it, offered a cycle late
    poll(10)
    drain(7)
    garbage = bytes(rng.integers(0, 256, 40, dtype=np.uint8)) + bytes([0xDB, END, 0xDB, 0x00])
    transport.write(garbage + bytes([END]))
    drain()
    bad_crc = bytearray(encode_frame(Kind.INFER, bytes(in_bytes)))
    bad_crc[-2] ^= 0x01              # the CRC's high byte (neither END nor an escape after it)
    transport.write(bytes(bad_crc))
    drain()
    transport.write(encode_frame(Kind.INFER, bytes(in_bytes + 1)))   # not whole rows
    drain()
    transport.write(encode_frame(Kind.INFER, bytes(in_bytes))[:-3])  # cut short
    read(4096, TIMEOUT_CYCLES + 2000)
    drain()
    transport.write(encode_frame(Kind.INFER, bytes(in_bytes))[:4])
    transport.line_break()                                           # mid-frame
    transport.write(bytes([END]))
    drain()
    transport.line_break()                                           # between frames
    transport.gap()
    drain()
    rows = bytes(rng.integers(0, 256, 2 * in_bytes, dtype=np.uint8))
    transport.write(encode_frame(Kind.INFER, rows))
    transport.gap()
    transport.write(encode_frame(Kind.INFO))
    drain(5, 3000)
    read(10, 37)                       # silence: returns after 37 cycles
    return log


def _frames(log) -> list:
    decoder = FrameDecoder()
    return [frame for data, _ in log for frame in decoder.feed(data)]


def _run_script(design, engine):
    bridge = _bridge(design)
    transport = simulated_transport(bridge, engine=engine, gap_cycles=GAP_CYCLES)
    try:
        assert transport.engine == engine
        return _script(transport, row_bytes(bridge.in_bits))
    finally:
        transport.close()


@pytest.fixture(scope="module")
def pysim_log(design):
    return _run_script(design, "pysim")


@pytest.mark.parametrize("engine", ENGINES)
def test_compiled_link_same_bytes_and_cycles_as_pysim(design, pysim_log, engine):
    assert _run_script(design, engine) == pysim_log


def test_script_exercises_every_reply(pysim_log):
    pysim = pysim_log
    # The script did what it meant to: every error reply, the info, the ack and two results,
    # and reads that came back empty after exactly their timeout.
    frames = _frames(pysim)
    assert all(frame.good for frame in frames)
    errors = [frame.payload[0] for frame in frames if frame.kind == Kind.ERROR]
    assert {Error.CRC, Error.LENGTH, Error.TIMEOUT, Error.LINE, Error.ESCAPE} <= set(errors)
    kinds = [frame.kind for frame in frames]
    assert kinds.count(Kind.INFO_REPLY) == 3 and kinds.count(Kind.ACK) == 1
    assert kinds.count(Kind.RESULT) == 2
    assert pysim[-1] == (b"", pysim[-2][1] + 37)
    assert len(pysim[0][0]) == 3 and len(pysim[1][0]) == 1 and pysim[1][1] == pysim[0][1]


def _board_run(design, engine):
    x = input_codes(design, vectors=6, seed=3)
    transport = simulated_board(design, engine=engine)
    try:
        assert transport.engine == engine
        return run_on_board(design, x, transport), transport.cycles
    finally:
        transport.close()


@pytest.fixture(scope="module")
def pysim_board_run(design):
    return _board_run(design, "pysim")


@pytest.mark.parametrize("engine", ENGINES)
def test_compiled_board_run_is_bit_exact(design, pysim_board_run, engine):
    (compiled_run, compiled_cycles), (pysim_run, pysim_cycles) = (_board_run(design, engine),
                                                                  pysim_board_run)
    assert compiled_run.simulation.exact, compiled_run.simulation.mismatch()
    np.testing.assert_array_equal(compiled_run.simulation.outputs, pysim_run.simulation.outputs)
    assert compiled_run.stats == pysim_run.stats and compiled_cycles == pysim_cycles
    assert compiled_run.stats.rows_out == len(compiled_run.simulation.inputs) == 6


@pytest.mark.parametrize("engine", ENGINES)
def test_compiled_link_writes_a_waveform(design, tmp_path, engine):
    path = tmp_path / "link.vcd"
    transport = CompiledTransport(_bridge(design), engine=engine, vcd=path)
    transport.write(encode_frame(Kind.INFO))
    assert transport.read(4096, 1e-4)
    cycles = transport.cycles
    transport.close()
    text = path.read_text()
    assert "$enddefinitions" in text and "i_valid" in text.replace("__", "_")
    assert f"#{(cycles - 1) * 10 + 5}\n" in text      # the last clock edge simulated
    with pytest.raises(EngineError, match=f"the {engine} model of the simulated board is closed"):
        transport.read(1, 1e-4)


@needs_compiler
def test_a_model_that_stops_is_an_error(design):
    transport = CompiledTransport(_bridge(design), gap_cycles=GAP_CYCLES)
    transport._process.kill()
    transport.write(encode_frame(Kind.INFO))
    with pytest.raises(EngineError, match=r"^the cxxrtl model .* of the simulated board stopped "
                                          r"with exit status -9"):
        transport.read(1, 1e-4)
    transport.close()


@needs_compiler
def test_auto_uses_the_fastest_compiled_engine(design):
    transport = simulated_transport(_bridge(design), gap_cycles=GAP_CYCLES)
    try:
        assert isinstance(transport, CompiledTransport)
        assert transport.engine == ("cxxrtl" if _verilator_problem() else "verilator")
    finally:
        transport.close()


@pytest.mark.parametrize("engine", ENGINES[1:])
def test_auto_falls_back_to_cxxrtl_when_verilator_fails(design, monkeypatch, engine):
    monkeypatch.setattr(verilator, "VERILATOR_FLAGS", (*verilator.VERILATOR_FLAGS,
                                                       "--no-such-option-hwnn"))
    with pytest.warns(EngineFallback, match=r"^engine 'auto' runs cxxrtl: Verilator failed"):
        transport = simulated_transport(_bridge(design), gap_cycles=GAP_CYCLES)
    try:
        assert transport.engine == "cxxrtl"
    finally:
        transport.close()


def test_auto_without_a_compiler_runs_pysim(design, monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler-hwnn")
    with pytest.warns(EngineFallback, match=r"^engine 'auto' runs pysim: .*no-such-compiler"):
        transport = simulated_transport(_bridge(design))
    assert isinstance(transport, SimulatedTransport) and transport.engine == "pysim"
    transport.write(encode_frame(Kind.INFO))
    assert transport.read(1, 1e-4)      # it runs


def test_cxxrtl_without_a_compiler_is_an_error(design, monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler-hwnn")
    bridge = _bridge(design)
    with pytest.raises(EngineError, match="no-such-compiler-hwnn"):
        simulated_transport(bridge, engine="cxxrtl")
    assert SimulatedTransport(bridge).read(1, 1e-6) == b""  # Amaranth wants the bridge used


def test_unknown_engine():
    with pytest.raises(ValueError, match=r"engine must be one of 'pysim', 'cxxrtl', "
                                         r"'verilator', 'auto', not 'verilog'"):
        simulated_transport(None, engine="verilog")
    with pytest.raises(ValueError, match=r"engine must be one of 'cxxrtl', 'verilator', "
                                         r"not 'pysim'"):
        CompiledTransport(None, engine="pysim")


@pytest.mark.parametrize("build", [cxxrtl.build, verilator.build])
def test_build_takes_a_plan_or_a_driver(build):
    with pytest.raises(TypeError, match="build takes a plan or a driver"):
        build(None)
    with pytest.raises(TypeError, match="build takes a plan or a driver"):
        build(None, object(), driver="int main() {}")


def test_own_driver_source_names_ports_through_the_access():
    def port(name):
        if name != "i__valid":
            raise EngineError(f"no port {name!r}")
        return "top.p_i____valid"

    access = compiled.Access(prelude="P;", declare="D;", settle="S;", port=port, vcd_open="O;",
                             vcd_sample="V;", vcd_close="C;")
    template = "${DECLARE} ${i__valid} = 1; ${SETTLE} ${VCD_OPEN}${VCD_SAMPLE}${VCD_CLOSE} $$"
    assert compiled.own_driver_source(template, access) == "P;D; top.p_i____valid = 1; S; O;V;C; $"
    with pytest.raises(EngineError, match="no port 'o__ready'"):
        compiled.own_driver_source("${o__ready}", access)
