"""Long verification runs on a compiled simulation engine (issue 9, "Verification it enables").

10⁶ random input vectors through each multiply-accumulate core, and every one of the 65536
codes of 16-bit activation units, with random stalls on both sides, bit-exact against the numpy
reference. Marked ``slow``: they run by default (CI included); ``-m "not slow"`` deselects them.
Models are built in the test session's cache (``HWNN_CACHE_DIR``, see conftest.py).
"""

import numpy as np
import pytest

from hwnn.cores.activation import activation_core
from hwnn.cores.dense import Dense
from hwnn.cores.shift_mac import ShiftMac
from hwnn.fixed import SQ, UQ
from hwnn.plans.activation import plan_activation
from hwnn.plans.dense import plan_dense
from hwnn.plans.shift_mac import plan_shift_mac
from hwnn.ref.activation import activation
from hwnn.ref.dense import dense
from hwnn.ref.shift_mac import shift_mac
from hwnn.sim import EngineError, compiled, make_vectors, run_stream
from shift_add_matrices import benchmark_matrix

#: The compiled engine these runs use.
ENGINE = "cxxrtl"
VECTORS = 10**6
STALL_IN, STALL_OUT = 0.25, 0.3


def _compiler_missing():
    """Why the compiled engine cannot build models here (EngineError's message), or None."""
    try:
        compiled.find_compiler(ENGINE)
    except EngineError as error:
        return str(error)
    return None


pytestmark = [
    pytest.mark.slow,
    # The reason is EngineError's message: "engine='cxxrtl' needs a C++ compiler ...".
    pytest.mark.skipif(_compiler_missing() is not None, reason=str(_compiler_missing())),
]


def max_cycles(core, n):
    """A generous bound for ``n`` rows with the stalls above: the harness's default grows with
    4·(n_in + n_out)·ii, which for 10⁶ vectors means gigabytes of stall patterns."""
    per_row = max(core.ii, 1) / (1 - max(STALL_IN, STALL_OUT)) ** 2
    return int(2 * n * per_row) + 1000


def check_long_run(core, x, want, seed):
    """Run ``x`` through ``core`` with stalls; outputs must equal ``want``. A short unstalled
    run then must show the core's latency on every vector and one vector every ``ii`` cycles."""
    run = run_stream(core, x, stall_in=STALL_IN, stall_out=STALL_OUT, seed=seed, engine=ENGINE,
                     max_cycles=max_cycles(core, len(x)))
    np.testing.assert_array_equal(run.outputs, want)
    assert len(run.out_cycles) == len(x)
    assert run.latencies.min() == core.latency
    timing = run_stream(core, x[:200], engine=ENGINE)
    np.testing.assert_array_equal(timing.outputs, want[:200])
    assert set(timing.latencies.tolist()) == {core.latency}
    assert set(np.diff(timing.in_cycles).tolist()) == {core.ii}


def test_dense_mult_million_vectors():
    rng = np.random.default_rng(11)
    plan = plan_dense(np.clip(rng.normal(0, 0.4, (8, 16)), -1, 0.99), rng.normal(0, 0.1, 8),
                      in_format=SQ(1, 7), weight_format=SQ(1, 7), out_format=SQ(4, 8),
                      rounding="half_up", overflow="sat")
    core = Dense(plan, arith="mult", parallelism=8)
    assert core.ii == 16
    # Corner vectors (every extreme, alone and together) first, then uniform codes.
    x = make_vectors(plan.in_format, plan.n_in, VECTORS, seed=12)
    check_long_run(core, x, dense(plan, x), seed=13)


def test_dense_mcm_million_vectors():
    weight = benchmark_matrix("A")  # the 16×16 int8 matrix of benchmarks/shift_add.py
    assert weight.shape == (16, 16)
    # Rounded and saturated to SQ(10,4), so requantize acts (the benchmark keeps every bit).
    plan = plan_dense(weight, np.linspace(-3, 3, 16), in_format=SQ(1, 7),
                      weight_format=SQ(8, 0), out_format=SQ(10, 4), rounding="half_even",
                      overflow="sat")
    np.testing.assert_array_equal(plan.weight, weight)
    core = Dense(plan, arith="mcm")
    x = make_vectors(plan.in_format, plan.n_in, VECTORS, seed=22)
    want = dense(plan, x)
    # Both ends of the output range occur, so saturation is exercised in the core.
    assert want.min() == plan.out_format.min_int and want.max() == plan.out_format.max_int
    check_long_run(core, x, want, seed=23)


def test_shift_mac_million_vectors():
    rng = np.random.default_rng(31)
    plan = plan_shift_mac(8, 4, in_format=SQ(1, 7), weight_format=SQ(1, 7),
                          out_format=SQ(3, 6), weight_terms=2, bias=rng.uniform(-0.5, 0.5, 4))
    weights = plan.code.quantize(rng.uniform(-1, 1, (4, 8)))
    # i_weight is left idle: every vector sees the weights the core was built with.
    core = ShiftMac(plan, parallelism=16, weights=weights)
    assert core.ii == 2
    x = make_vectors(plan.in_format, plan.n_in, VECTORS, seed=32)
    check_long_run(core, x, shift_mac(plan, weights, x), seed=33)


UNITS = [
    ("lut", "tanh", SQ(6, 10), SQ(1, 15), dict(table_size=1024, input_range=(-8, 8))),
    ("lut", "sigmoid", SQ(6, 10), UQ(0, 16), dict(table_size=2048)),
    ("pwl", "tanh", SQ(6, 10), SQ(1, 15), dict(segments=16)),
    ("pwl", "sigmoid", SQ(6, 10), UQ(0, 16), dict(segments=24, slopes="pot2")),
]


@pytest.mark.parametrize("method, function, in_format, out_format, options", UNITS,
                         ids=[f"{u[0]}-{u[1]}" for u in UNITS])
def test_sixteen_bit_activation_every_code(method, function, in_format, out_format, options):
    plan = plan_activation(function, in_format, out_format, method=method, **options)
    core = activation_core(plan)
    codes = in_format.codes()
    assert len(codes) == 65536
    # Every code, in a shuffled order so neighbouring transfers differ in many bits.
    x = np.random.default_rng(41).permutation(codes)
    check_long_run(core, x, activation(plan, x), seed=42)
