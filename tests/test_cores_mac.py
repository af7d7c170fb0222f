# amaranth: UnusedElaboratable=no
"""FoldedMac driven directly, with product makers of the tests' own."""

import dataclasses
import re

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Signal, unsigned

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.cores.mac import FoldedMac, Multiply, Product
from hwnn.fixed import SQ, UQ
from hwnn.plans.dense import plan_dense
from hwnn.ref.dense import dense
from hwnn.sim import make_vectors, run_stream
from hwnn.synth import synthesize
from test_cores_shift_mac import simulate


class OffsetMultiply(Product):
    """A multiplier whose weights are stored in offset binary (``code + 2**(w-1)``, unsigned)
    and whose product takes ``depth`` register stages: exercises :meth:`Product.encode`, a
    word shape that is not the weight's, and a deep product."""

    def __init__(self, in_format, weight_format, depth):
        self.offset = 1 << (weight_format.width - 1)
        self.word_shape = unsigned(weight_format.width)
        self.shape = Multiply(in_format, weight_format).shape
        self.depth = depth

    def encode(self, codes):
        return [int(c) + self.offset for c in codes]

    def product(self, m, name, operand, word, advance):
        value = operand * (word - self.offset)
        for stage in range(self.depth - 1):
            register = Signal(self.shape, name=f"deep{name}_{stage}")
            with m.If(advance):
                m.d.sync += register.eq(value)
            value = register
        return value


def make_plan(n_out, n_in, *, in_format=SQ(2, 5), weight_format=SQ(1, 6), out_format=SQ(3, 4),
              rounding="half_up", overflow="sat", seed=0):
    rng = np.random.default_rng(seed)
    return plan_dense(rng.uniform(-1, 1, (n_out, n_in)), rng.uniform(-1, 1, n_out),
                      in_format=in_format, weight_format=weight_format, out_format=out_format,
                      rounding=rounding, overflow=overflow, saturate_weights=True)


def corner_and_random(plan, count, seed):
    fmt = plan.in_format
    corners = np.array([[fmt.min_int] * plan.n_in, [fmt.max_int] * plan.n_in, [0] * plan.n_in,
                        [fmt.min_int, fmt.max_int] * (plan.n_in // 2) + [0] * (plan.n_in % 2)],
                       dtype=np.int64)
    return np.concatenate([corners, make_vectors(fmt, plan.n_in, count, seed=seed)])


CASES = [
    # n_out, n_in, parallelism, product depth, requantize stages, plan options
    (3, 4, 1, 1, 1, {}),
    (3, 4, 5, 2, 1, dict(rounding="half_even", overflow="wrap")),
    (3, 4, 12, 3, 2, {}),
    (2, 5, 3, 1, 2, dict(in_format=UQ(2, 4), out_format=SQ(2, 2), rounding="trunc")),
    (4, 2, 8, 2, 2, dict(out_format=UQ(2, 6))),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c[:5])))
def test_equals_the_reference_with_stalls_latency_and_ii(case):
    n_out, n_in, parallelism, depth, stages, options = case
    plan = make_plan(n_out, n_in, **options)
    product = OffsetMultiply(plan.in_format, plan.weight_format, depth)
    core = FoldedMac(plan, product, parallelism=parallelism, requantize_stages=stages)
    ii = -(-n_out * n_in // parallelism)
    assert core.ii == ii and core.latency == ii + 2 + depth + stages
    x = corner_and_random(plan, 40, seed=parallelism)
    run = run_stream(core, x, stall_in=0.3, stall_out=0.4, seed=depth)
    np.testing.assert_array_equal(run.outputs, dense(plan, x))
    timing = run_stream(FoldedMac(plan, product, parallelism=parallelism,
                                  requantize_stages=stages), x[:8])
    np.testing.assert_array_equal(timing.outputs, dense(plan, x[:8]))
    assert set(timing.latencies.tolist()) == {core.latency}
    assert set(np.diff(timing.in_cycles).tolist()) == {ii}


@pytest.mark.parametrize("case", [(3, 4, 1, 1), (4, 1, 2, 1), (2, 5, 1, 2)],
                         ids=lambda c: "-".join(map(str, c)))
def test_rows_leave_one_per_transfer_as_each_finishes(case):
    n_out, n_in, depth, stages = case
    plan = make_plan(n_out, n_in)
    product = OffsetMultiply(plan.in_format, plan.weight_format, depth)
    x = corner_and_random(plan, 30, seed=n_in)
    core = FoldedMac(plan, product, rows=True, requantize_stages=stages)
    assert core.rows and core.latency == n_out * n_in + 2 + depth + stages
    run = run_stream(core, x, n_outputs=len(x) * n_out, stall_in=0.3, stall_out=0.4,
                     seed=depth)
    np.testing.assert_array_equal(run.outputs, dense(plan, x).reshape(-1, 1))
    # Without stalls: row r of vector v leaves latency − (n_out − 1 − r)·n_in cycles after v
    # entered, and vectors enter ii apart.
    steady = run_stream(FoldedMac(plan, product, rows=True, requantize_stages=stages), x[:4],
                        n_outputs=4 * n_out)
    np.testing.assert_array_equal(steady.outputs, dense(plan, x[:4]).reshape(-1, 1))
    assert set(np.diff(steady.in_cycles).tolist()) == {core.ii}
    offsets = core.latency - (n_out - 1 - np.arange(n_out)) * n_in
    np.testing.assert_array_equal(steady.out_cycles,
                                  (steady.in_cycles[:, None] + offsets).reshape(-1))


def test_weight_port_loads_words_for_later_vectors():
    plan = make_plan(2, 3)
    product = OffsetMultiply(plan.in_format, plan.weight_format, 2)
    core = FoldedMac(plan, product, parallelism=2, weight_port=True)
    new = np.array([[-64, 63, 1], [0, -1, 17]], dtype=np.int64)
    x = corner_and_random(plan, 6, seed=3)
    loads = [(k, word) for k, word in enumerate(product.encode(new.reshape(-1)))]
    log = simulate(core, [("x", list(x[:3])), ("w", loads), ("x", list(x[3:]))],
                   stall_in=0.3, stall_weight=0.3, stall_out=0.3, seed=1)
    reloaded = dataclasses.replace(plan, weight=new)
    np.testing.assert_array_equal(log["outputs"], np.concatenate([dense(plan, x[:3]),
                                                                  dense(reloaded, x[3:])]))
    assert log["collisions"] == 0 and core.weight_layout.members["code"] == unsigned(7)


def test_properties():
    plan = make_plan(3, 4)
    product = Multiply(plan.in_format, plan.weight_format)
    core = FoldedMac(plan, product, parallelism=5)
    assert core.plan is plan and core.product is product and core.parallelism == 5
    assert core.lanes == 4 and core.ii == 3 and core.latency == 3 + 4
    assert core.weight_port is False and core.weight_layout is None
    assert not hasattr(core, "i_weight")
    assert [lane.column for lane in core.schedule.lanes][0] == (0, 1, 2)


def test_parameter_errors():
    plan = make_plan(2, 3)
    product = Multiply(plan.in_format, plan.weight_format)
    cases = [
        (("x", product), {}, ParameterTypeError, "plan",
         "plan must be a DensePlan (see hwnn.plans.dense.plan_dense), not 'x'"),
        ((plan, "x"), {}, ParameterTypeError, "product",
         "product must be a hwnn.cores.mac.Product, not 'x'"),
        ((plan, product), dict(parallelism=0), ParameterValueError, "parallelism",
         "parallelism must be an integer between 1 and 6, not 0"),
        ((plan, product), dict(weight_port=1), ParameterTypeError, "weight_port",
         "weight_port must be True or False, not 1"),
        ((plan, product), dict(requantize_stages=3), ParameterValueError, "requantize_stages",
         "requantize_stages must be an integer between 1 and 2, not 3"),
        ((plan, product), dict(rows=1), ParameterTypeError, "rows",
         "rows must be True or False, not 1"),
        ((plan, product), dict(rows=True, parallelism=2), ParameterValueError, "rows",
         "rows needs parallelism 1 (one lane, so each row finishes in a cycle of its own), "
         "not parallelism=2"),
    ]
    for args, kwargs, error, parameter, message in cases:
        with pytest.raises(error, match=re.escape(message) + "$") as info:
            FoldedMac(*args, **kwargs)
        assert info.value.parameter == parameter


def test_exports_verilog_with_and_without_the_weight_port():
    plan = make_plan(2, 3)
    product = Multiply(plan.in_format, plan.weight_format)
    plain = verilog.convert(FoldedMac(plan, product, parallelism=2), name="mac")
    loaded = verilog.convert(FoldedMac(plan, product, parallelism=2, weight_port=True),
                             name="mac")
    for text in (plain, loaded):
        assert "module mac" in text and "i__payload" in text and "o__payload" in text
    assert "i_weight__payload" not in plain and "i_weight__payload" in loaded


@pytest.mark.synth
def test_synthesizes_one_dsp_per_lane():
    plan = make_plan(4, 6)
    core = FoldedMac(plan, Multiply(plan.in_format, plan.weight_format), parallelism=3)
    report = synthesize(core, "ice40-up5k", name="mac")
    assert report.dsps == core.lanes == 3
