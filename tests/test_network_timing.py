# amaranth: UnusedElaboratable=no
"""A network's timing over sequences: its model (`Network.schedule`) against simulation, the
period of back-to-back sequences, the latency, and what the model refuses to claim."""

import re
from types import MappingProxyType

import numpy as np
import pytest

from hwnn import SQ
from hwnn.checks import ParameterValueError
from hwnn.cores._component import inspected
from hwnn.cores._timing import timing_against_model
from hwnn.cores.network import Network
from hwnn.plans.activation import plan_activation
from hwnn.plans.conv1d import plan_conv1d
from hwnn.plans.dense import plan_dense
from hwnn.plans.network import Layer, plan_network
from hwnn.plans.pool import plan_flatten
from hwnn.ref.network import network
from hwnn.sim import make_vectors, run_stream
from hwnn.sim.frames import frame, unframe

FMT = SQ(1, 7)


def conv(rng, c_in, c_out, kernel, **options):
    return plan_conv1d(rng.uniform(-.5, .5, (c_out, c_in, kernel)), rng.uniform(-.2, .2, c_out),
                       in_format=FMT, weight_format=FMT, out_format=FMT, saturate_weights=True,
                       **options)


def dense(rng, n_out, n_in, out_format=FMT):
    return plan_dense(rng.uniform(-1, 1, (n_out, n_in)), None, in_format=FMT,
                      weight_format=FMT, out_format=out_format)


def layer(name, kind, plan, **options):
    return Layer(name, kind, plan, MappingProxyType(options))


def tanh():
    return plan_activation("tanh", FMT, FMT, method="lut")


def random_chain(seed):
    """1 to 3 stride-1 conv layers with gap-free padding (same, valid, causal, or one more on
    the right), each with a random arithmetic and parallelism, tanh between some."""
    rng = np.random.default_rng(seed)
    layers, channels = [], int(rng.integers(1, 4))
    for i in range(int(rng.integers(1, 4))):
        c_out, kernel = int(rng.integers(1, 4)), int(rng.integers(1, 5))
        padding = ["same", "valid", (kernel - 1, 0), (kernel // 2, 0)][int(rng.integers(0, 4))]
        products = channels * c_out * kernel
        options = [dict(arith="mcm"), dict(parallelism=products),
                   dict(parallelism=max(1, products // 3))][int(rng.integers(0, 3))]
        layers.append(layer(f"c{i}", "conv1d", conv(rng, channels, c_out, kernel,
                                                    padding=padding), **options))
        if rng.random() < 0.5:
            layers.append(Layer(f"a{i}", "activation", tanh()))
        channels = c_out
    return plan_network(layers)


def run_sequences(core, x, **stalls):
    want = network(core.plan, x)
    run = run_stream(core, frame(x), n_outputs=want.shape[0] * want.shape[1], **stalls)
    np.testing.assert_array_equal(unframe(run.outputs, *want.shape[:2]), want)
    return run


@pytest.mark.parametrize("seed", range(10))
def test_model_of_a_chain_is_exact_and_its_period_is_stated(seed):
    core = Network(random_chain(seed))
    rng = np.random.default_rng(seed)
    steps = int(rng.integers(4, 12))
    x = rng.integers(-128, 128, (6, steps, core.plan.n_in))
    run = run_sequences(core, x)
    in_cycles, out_cycles = core.schedule([steps] * 6)
    np.testing.assert_array_equal(run.in_cycles, in_cycles)
    np.testing.assert_array_equal(run.out_cycles, out_cycles)
    # Back-to-back sequences settle to one every `period` cycles.
    assert set(np.diff(run.in_cycles[::steps])[2:].tolist()) == {core.period(steps)}
    if all(c.take_ii == 1 for c in core.cores if hasattr(c, "take_ii")):
        assert core.ii == 1
        np.testing.assert_array_equal(run.in_cycles, np.arange(x.shape[0] * steps))
    run_sequences(core, x, stall_in=0.3, stall_out=0.3, seed=seed)


def test_one_window_per_cycle_chain_has_the_stated_latency():
    # Stride 1, every layer ii 1, same or causal padding: output step t of a sequence leaves
    # `latency` cycles after input step t + D would be taken (D: the right paddings), the
    # steps after a sequence's end standing in as bubbles.
    rng = np.random.default_rng(3)
    plan = plan_network([
        layer("c0", "conv1d", conv(rng, 2, 3, 5, padding="same"), parallelism=30),
        Layer("a0", "activation", tanh()),
        layer("c1", "conv1d", conv(rng, 3, 2, 4, padding="same"), arith="mcm"),
        layer("c2", "conv1d", conv(rng, 2, 2, 3, padding=(2, 0)), arith="csd"),
    ])
    core = Network(plan)
    assert core.ii == 1 and core.latency == sum(inspected(c).latency for c in core.cores)
    right = sum(layer.plan.padding[1] for layer in plan.layers if layer.kind == "conv1d")
    assert right == 2 + 2 + 0
    steps, count = 11, 5
    run = run_sequences(core, rng.integers(-128, 128, (count, steps, 2)))
    np.testing.assert_array_equal(run.in_cycles, np.arange(steps * count))
    t = np.tile(np.arange(steps), count)
    firsts = np.repeat(run.in_cycles[::steps], steps)
    np.testing.assert_array_equal(run.out_cycles, firsts + t + right + core.latency)


def test_strided_layers_and_a_dense_head_are_modelled_exactly():
    rng = np.random.default_rng(5)
    plan = plan_network([
        layer("c0", "conv1d", conv(rng, 2, 4, 3, padding="same"), parallelism=8),
        Layer("a0", "activation", tanh()),
        layer("c1", "conv1d", conv(rng, 4, 2, 2, stride=2), arith="mcm"),
        Layer("flat", "flatten", plan_flatten(4, 2)),
        layer("fc", "dense", dense(rng, 3, 8, SQ(3, 5)), parallelism=2),
    ])
    core = Network(plan)
    # c0: 24 products on 8 multipliers, 3 cycles per step. The head's 24 products on 2
    # multipliers take 12 cycles per vector, so the flatten wants its 4 steps 3 cycles
    # apart and c1 takes its windows no closer (its pace).
    assert core.ii == 3 and plan.paces == (3, None, 3, None, None)
    assert [c.take_ii for c in core.cores[::2][:2]] == [3, 3]
    x = rng.integers(-128, 128, (5, 8, 2))
    want = network(plan, x)
    run = run_stream(core, frame(x), n_outputs=len(want))
    np.testing.assert_array_equal(run.outputs, want)
    in_cycles, out_cycles = core.schedule([8] * 5)
    np.testing.assert_array_equal(run.in_cycles, in_cycles)
    np.testing.assert_array_equal(run.out_cycles, out_cycles)
    assert set(np.diff(run.out_cycles)[1:].tolist()) == {8 * 3}


def test_a_layer_that_holds_up_the_one_before_is_not_modelled():
    # Padding 1 around a one-step kernel: two windows of padding alone per sequence, so c1
    # makes more outputs than it takes inputs and, at ii 1, must hold c0 up.
    rng = np.random.default_rng(6)
    plan = plan_network([
        layer("c0", "conv1d", conv(rng, 1, 2, 3, padding="same"), arith="mcm"),
        layer("c1", "conv1d", conv(rng, 2, 2, 1, padding=1), arith="mcm"),
    ])
    core = Network(plan)
    with pytest.raises(NotImplementedError, match=re.escape(
            "layer 'c1' would hold up layer 'c0' (its transfer 0, sent in cycle")):
        core.schedule([6, 6])
    run_sequences(core, rng.integers(-128, 128, (3, 6, 1)), stall_in=0.2, stall_out=0.2, seed=1)


def test_a_network_over_vectors_is_a_pipeline():
    rng = np.random.default_rng(7)
    plan = plan_network([
        layer("fc1", "dense", dense(rng, 4, 6), parallelism=3),
        Layer("act", "activation", tanh()),
        layer("fc2", "dense", dense(rng, 2, 4), arith="mcm"),
    ])
    core = Network(plan)
    x = make_vectors(FMT, 6, 20, seed=1)
    run = run_stream(core, x)
    in_cycles, out_cycles = core.schedule(20)
    np.testing.assert_array_equal(run.in_cycles, in_cycles)
    np.testing.assert_array_equal(run.out_cycles, out_cycles)
    np.testing.assert_array_equal(np.diff(in_cycles), core.ii)
    np.testing.assert_array_equal(out_cycles - in_cycles, core.latency)
    with pytest.raises(ParameterValueError, match="^period applies to a network over sequences"):
        core.period(4)


def test_schedule_arguments_are_checked():
    core = Network(random_chain(0))
    with pytest.raises(ParameterValueError, match="^lengths\\[i\\] must be"):
        core.schedule([3, -1])
    with pytest.raises(ParameterValueError, match="^arrivals must be 5 non-decreasing"):
        core.schedule([2, 3], [0, 1, 2])
    with pytest.raises(ParameterValueError, match="^steps must be"):
        core.period(0)


def test_a_run_is_compared_with_the_model_cycle_by_cycle():
    core = Network(random_chain(1))
    in_cycles, out_cycles = core.schedule([5, 5])
    assert timing_against_model(core, [5, 5], in_cycles, out_cycles) == "as modelled"
    late = out_cycles.copy()
    late[3] += 1
    assert timing_against_model(core, [5, 5], in_cycles, late) == (
        f"MISMATCH: output 3 in cycle {late[3]}, the model says {out_cycles[3]}")
    assert timing_against_model(core, [5, 5], in_cycles[:-1], out_cycles).startswith(
        "MISMATCH: input 0")
    rng = np.random.default_rng(6)
    held = Network(plan_network([
        layer("c0", "conv1d", conv(rng, 1, 2, 3, padding="same"), arith="mcm"),
        layer("c1", "conv1d", conv(rng, 2, 2, 1, padding=1), arith="mcm"),
    ]))
    assert timing_against_model(held, [6], [], []).startswith(
        "not modelled (layer 'c1' would hold up layer 'c0'")
