import re

import numpy as np
import pytest

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
from hwnn.sim import PayloadCodec, cxxrtl, make_vectors, run_stream

needs_compiler = pytest.mark.skipif(
    not any(cxxrtl.shutil.which(c) for c in ("c++", "g++", "clang++")),
    reason="engine='cxxrtl' needs a C++ compiler (c++, g++ or clang++ on PATH)")


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory):
    """Build the models into a fresh cache, so every run compiles (and can fail) for real."""
    directory = tmp_path_factory.mktemp("cxxrtl")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cxxrtl, "cache_dir", lambda: directory)
        yield directory


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


CASES = [case_dense_mult, case_dense_mcm, case_pwl_lanes, case_elementwise_join, case_shift_mac,
         case_always_ready]


@needs_compiler
@pytest.mark.parametrize("case", CASES, ids=[c.__name__[5:] for c in CASES])
def test_engines_agree_cycle_for_cycle(case):
    core, inputs = case()
    stall_out = 0.0 if core.o.signature.always_ready else 0.3
    runs = [run_stream(core, inputs, stall_in=0.3, stall_out=stall_out, seed=7, engine=engine)
            for engine in ("pysim", "cxxrtl")]
    assert runs[0].cycles == runs[1].cycles > 0
    for field in ("outputs", "in_cycles", "out_cycles"):
        np.testing.assert_array_equal(getattr(runs[1], field), getattr(runs[0], field))
    assert len(runs[1].out_cycles) == len(next(iter(inputs.values())) if isinstance(inputs, dict)
                                          else inputs)


@needs_compiler
def test_long_run_equals_reference_and_second_build_is_cached(private_cache, monkeypatch):
    plan = dense_plan(4, 8, seed=6)
    core = Dense(plan, parallelism=4)
    x = x_of(plan, 20000, seed=2)
    run = run_stream(core, x, stall_in=0.1, stall_out=0.1, seed=1, engine="cxxrtl")
    np.testing.assert_array_equal(run.outputs, dense(plan, x))
    assert len(list(private_cache.glob("*/sim"))) >= 1

    def no_compile(*args):
        raise AssertionError("the compiler ran for a cached model")
    monkeypatch.setattr(cxxrtl, "_compile", no_compile)
    again = run_stream(core, x[:100], stall_in=0.5, seed=2, engine="cxxrtl")
    np.testing.assert_array_equal(again.outputs, dense(plan, x[:100]))


@needs_compiler
def test_timeout_matches_the_python_simulator():
    core, inputs = case_dense_mult()
    messages = []
    for engine in ("pysim", "cxxrtl"):
        with pytest.raises(TimeoutError) as info:
            run_stream(core, inputs, stall_out=0.5, max_cycles=30, engine=engine)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_unknown_engine_is_named():
    core, inputs = case_dense_mult()
    inspected(core)
    message = "engine must be one of 'pysim', 'cxxrtl', not 'verilator'"
    with pytest.raises(ValueError, match=re.escape(message) + "$"):
        run_stream(core, inputs, engine="verilator")


def test_vcd_is_pysim_only(tmp_path):
    core, inputs = case_dense_mult()
    inspected(core)
    with pytest.raises(NotImplementedError,
                       match=re.escape("vcd is only written by engine='pysim', not 'cxxrtl'") + "$"):
        run_stream(core, inputs, vcd=tmp_path / "a.vcd", engine="cxxrtl")


def test_missing_compiler_is_one_clear_error(monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(cxxrtl.shutil, "which", lambda name: None)
    core, inputs = case_dense_mult()
    inspected(core)
    message = ("engine='cxxrtl' needs a C++ compiler: none of c++, g++, clang++ is on PATH and "
               "CXX is not set (use engine='pysim', or install g++ or clang++)")
    with pytest.raises(cxxrtl.EngineError, match=re.escape(message) + "$"):
        run_stream(core, inputs, engine="cxxrtl")


@needs_compiler
def test_failed_compile_shows_the_compiler_output(monkeypatch, tmp_path):
    monkeypatch.setattr(cxxrtl, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(cxxrtl, "CXXFLAGS", ("-std=c++14", "-include", "no_such.h"))
    core, inputs = case_dense_mult()
    with pytest.raises(cxxrtl.EngineError) as info:
        run_stream(core, inputs, engine="cxxrtl")
    assert str(info.value).startswith("compiling the CXXRTL model failed with exit status ")
    assert "no_such.h" in str(info.value)
    assert not list(tmp_path.glob("*/sim"))


@pytest.mark.parametrize("width, signed, lanes", [(1, False, None), (7, True, 5), (32, True, 3),
                                                  (13, False, 9), (33, True, 2), (40, False, None)])
def test_payload_chunks_are_the_packed_integers(width, signed, lanes):
    codec = PayloadCodec(width, signed, lanes)
    lo = -(1 << (width - 1)) if signed else 0
    rng = np.random.default_rng(width)
    rows = rng.integers(lo, lo + (1 << width), (50,) if lanes is None else (50, lanes),
                        dtype=np.int64)
    count = (width * (lanes or 1) + 31) // 32
    chunks = cxxrtl._to_chunks(rows, codec)
    assert chunks.tobytes() == b"".join(codec.pack(row).to_bytes(4 * count, "little")
                                        for row in rows)
    np.testing.assert_array_equal(cxxrtl._from_chunks(chunks.tobytes(), codec), rows)
