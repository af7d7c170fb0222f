"""Pool1d's timing: gap-free back-to-back sequences and :meth:`Pool1d.schedule`, asserted in
simulation (with the input offered at given cycles, and under random stalls)."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.cores._component import inspected
from hwnn.cores.pool import Pool1d
from hwnn.fixed import SQ, UQ
from hwnn.plans.pool import plan_pool1d
from hwnn.sim import run_stream
from test_cores_pool import check, expected, framed, random_case, sequences


def run_arrivals(core, xs, arrivals):
    """Simulate ``core`` (pysim) on the sequences ``xs``: step ``k`` offered from cycle
    ``arrivals[k]`` on (or from the cycle after step ``k − 1`` went in, if later), the output
    always ready. Returns ``(codes, last, in_cycles, out_cycles)``, cycles counted as
    :func:`hwnn.sim.run_stream` counts them."""
    rows = framed(xs)
    n_out = len(expected(core.plan, xs)[0])
    in_cycles, out_cycles, codes, lasts = [], [], [], []
    limit = int(arrivals[-1]) + 4 * (len(arrivals) + n_out) + 20

    async def producer(ctx):
        cycle = 0
        for k, (row, last) in enumerate(zip(rows["data"], rows["last"])):
            while cycle < arrivals[k]:
                await ctx.tick()
                cycle += 1
            for c, value in enumerate(row):
                ctx.set(core.i.payload.data[c], int(value))
            ctx.set(core.i.payload.last, int(last))
            ctx.set(core.i.valid, 1)
            ready = False
            while not ready:
                _, _, ready = await ctx.tick().sample(core.i.ready)
                cycle += 1
            in_cycles.append(cycle - 1)
            ctx.set(core.i.valid, 0)

    async def consumer(ctx):
        ctx.set(core.o.ready, 1)
        cycle = 0
        while len(out_cycles) < n_out:
            _, _, valid, payload = await ctx.tick().sample(core.o.valid, core.o.payload)
            if valid:
                codes.append([int(v) for v in payload.data])
                lasts.append(bool(payload.last))
                out_cycles.append(cycle)
            cycle += 1
            assert cycle < limit, f"{len(out_cycles)} of {n_out} outputs in {limit} cycles"

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    return (np.array(codes, dtype=np.int64).reshape(-1, core.plan.channels), np.array(lasts),
            np.array(in_cycles), np.array(out_cycles))


def output_bound(plan):
    """Whether a sequence of L steps has L + 1 outputs (stride 1, even kernel, padding k/2)."""
    return plan.stride == 1 and plan.padding[0] + plan.padding[1] == plan.kernel_size


def decide_steps(plan, length):
    """Independently of the core: for each output of a sequence of ``length`` steps, the step
    that decides it (as the class docstring says): the final window at the last step; window
    ``j`` at the step that finishes it, or later at the step where window ``j + 1`` holds
    ``kernel_size − pad_right`` steps."""
    k, s, (left, right) = plan.kernel_size, plan.stride, plan.padding
    n = plan.out_length(length)
    ends = [min(j * s + k - 1 - left, length - 1) for j in range(n)]
    return [length - 1 if j == n - 1 else max(ends[j], (j + 1) * s + k - 1 - right - left)
            for j in range(n)]


def random_arrivals(rng, steps):
    """Nondecreasing cycles with bursts (several steps offered at once) and gaps."""
    gaps = rng.integers(0, 4, steps) * (rng.random(steps) < 0.4)
    return np.cumsum(gaps) + int(rng.integers(0, 3))


# Overlapping windows, every padding, max and avg (the avg by 3 and 5 have a divider that
# multiplies, the avg by 2 and 4 a shift).
OVERLAPPING = [(kind, k, s, p) for kind in ("max", "avg") for k in (2, 3, 4, 5)
               for s in range(1, k) for p in range(k // 2 + 1)]


@pytest.mark.parametrize("kind, k, s, p", OVERLAPPING,
                         ids=[f"{kind}-k{k}-s{s}-p{p}" for kind, k, s, p in OVERLAPPING])
def test_overlapping_back_to_back_short_and_long_with_stalls(kind, k, s, p):
    plan = plan_pool1d(kind, k, s, p, channels=2, in_format=SQ(4, 1),
                       out_format=SQ(4, 1) if kind == "max" else SQ(4, 2))
    rng = np.random.default_rng(k * 100 + s * 10 + p)
    # Too short for a window, one step, exactly one window, and long ones, back to back.
    one = min(n for n in range(1, 20) if plan.out_length(n) >= 1)
    lengths = [1, 1, one, 17, 2, one + 1, 1, 23, 3, one, 5, 1]
    xs = sequences(plan, lengths, rng) + sequences(plan, [4, 1, 9], rng, corner=True)
    check(plan, xs, stall=0.3, seed=k + s + p)
    core = inspected(Pool1d(plan))
    run = check(plan, xs)
    all_lengths = lengths + [4, 1, 9]
    in_cycles, out_cycles = core.schedule(all_lengths)
    np.testing.assert_array_equal(run.in_cycles, in_cycles)
    np.testing.assert_array_equal(run.out_cycles, out_cycles)
    if not output_bound(plan):
        # Gap-free: one step per cycle from cycle 0, across every sequence boundary.
        np.testing.assert_array_equal(run.in_cycles, np.arange(sum(all_lengths)))


@pytest.mark.parametrize("seed", range(20))
def test_schedule_with_arrivals_matches_simulation(seed):
    rng = np.random.default_rng(500 + seed)
    plan = random_case(rng)
    core = Pool1d(plan)
    one = min(n for n in range(1, 30) if plan.out_length(n) >= 1)
    lengths = [int(n) for n in rng.integers(1, plan.kernel_size + 8, 6)] + [one]
    if one > 1:
        lengths.insert(3, one - 1)  # too short: no output
    rng.shuffle(lengths)
    xs = sequences(plan, lengths, rng)
    arrivals = random_arrivals(rng, sum(lengths))
    codes, last, in_cycles, out_cycles = run_arrivals(core, xs, arrivals)
    want_codes, want_last = expected(plan, xs)
    np.testing.assert_array_equal(codes, want_codes)
    np.testing.assert_array_equal(last, want_last)
    want_in, want_out = core.schedule(lengths, arrivals)
    np.testing.assert_array_equal(in_cycles, want_in)
    np.testing.assert_array_equal(out_cycles, want_out)


@pytest.mark.parametrize("kind, k, p", [("max", 2, 1), ("avg", 4, 2), ("max", 6, 3)])
def test_output_bound_case_waits_at_most_a_cycle_per_sequence(kind, k, p):
    # Stride 1, even kernel, padding k/2: L steps give L + 1 outputs.
    plan = plan_pool1d(kind, k, 1, p, channels=1, in_format=SQ(4, 0))
    assert output_bound(plan) and plan.out_length(5) == 6
    core = inspected(Pool1d(plan))
    lengths = [1, 1, 6, 1, 2, 9, 1, 1]
    xs = sequences(plan, lengths, np.random.default_rng(k))
    run = check(plan, xs)
    np.testing.assert_array_equal(run.in_cycles, core.schedule(lengths)[0])
    np.testing.assert_array_equal(run.out_cycles, core.schedule(lengths)[1])
    waits = np.diff(run.in_cycles) - 1
    firsts = np.cumsum(lengths)[:-1] - 1  # the gap before each later sequence's first step
    assert set(np.nonzero(waits)[0]) <= set(firsts) and waits.max() == 1
    # One-step sequences back to back: two outputs each, so two cycles each once the queue
    # (deeper for a larger kernel) has filled.
    in_cycles, out_cycles = core.schedule([1] * 8)
    assert set(np.diff(in_cycles)) <= {1, 2} and (np.diff(in_cycles)[-3:] == 2).all()
    np.testing.assert_array_equal(np.diff(out_cycles), 1)


def test_schedule_by_hand():
    # Overlapping, avg by 5 (latency 3): windows end at padded positions 4, 6, 8, 10; for 7
    # steps (positions 2 … 8) at steps 2, 4, 6 and, by the right padding, at the last step 6.
    core = inspected(Pool1d(plan_pool1d("avg", 5, 2, 2, channels=1, in_format=SQ(4, 0))))
    assert (core.latency, core.slots) == (3, 3)
    in_cycles, out_cycles = core.schedule([7, 2])
    # No flush: the 2-step sequence follows at once; its one window finishes at its last step.
    np.testing.assert_array_equal(in_cycles, np.arange(9))
    np.testing.assert_array_equal(out_cycles, [5, 7, 9, 10, 11])
    xs = sequences(core.plan, [7, 2], np.random.default_rng(1))
    run = check(core.plan, xs)
    np.testing.assert_array_equal(run.out_cycles, out_cycles)

    # Non-overlapping windows [p,0,1] [2,3,4] [5,6,7]: decided when the next one holds 2
    # steps (steps 3, 6), the final one at the last step 7; latency 1.
    core = inspected(Pool1d(plan_pool1d("max", 3, 3, 1, channels=1, in_format=SQ(4, 0))))
    np.testing.assert_array_equal(core.schedule([8])[1], [4, 7, 8])
    # Arrivals: step 2 offered at cycle 10, the rest behind it.
    in_cycles, out_cycles = core.schedule([8], [0, 0, 10, 10, 11, 20, 20, 20])
    np.testing.assert_array_equal(in_cycles, [0, 1, 10, 11, 12, 20, 21, 22])
    np.testing.assert_array_equal(out_cycles, [12, 22, 23])

    # The output-bound case, step by step: max k2 s1 p1, 3 slots, window g in slot g mod 3.
    # Windows 0-3 of the first sequence finish at steps 0, 1, 2, 2 and leave in cycles 1-4;
    # the 1-step sequence opens windows 4 and 5 (window 2 leaves in that cycle 3); the last
    # sequence's first step opens windows 6 and 7, and must wait for window 4 to leave.
    core = inspected(Pool1d(plan_pool1d("max", 2, 1, 1, channels=1, in_format=SQ(4, 0))))
    in_cycles, out_cycles = core.schedule([3, 1, 2])
    np.testing.assert_array_equal(in_cycles, [0, 1, 2, 3, 5, 6])
    np.testing.assert_array_equal(out_cycles, np.arange(1, 10))


@pytest.mark.parametrize("seed", range(40))
def test_schedule_follows_the_stated_rules(seed):
    # The model against the docstring's closed forms, on many plans (no simulation).
    rng = np.random.default_rng(900 + seed)
    plan = random_case(rng)
    core = inspected(Pool1d(plan))
    lengths = [int(n) for n in rng.integers(1, 3 * plan.kernel_size + 4, 12)]
    arrivals = random_arrivals(rng, sum(lengths)) if seed % 2 else np.zeros(sum(lengths), int)
    in_cycles, out_cycles = core.schedule(lengths, arrivals if seed % 2 else None)
    offered = np.maximum(arrivals, np.concatenate([[0], in_cycles[:-1] + 1]))
    waits = in_cycles - offered
    if output_bound(plan):
        starts = np.cumsum([0] + lengths[:-1])
        assert set(np.nonzero(waits)[0]) <= set(starts) and waits.max(initial=0) <= 1
    else:
        np.testing.assert_array_equal(waits, 0)
    want, start, previous = [], 0, -1
    for length in lengths:
        for step in decide_steps(plan, length):
            previous = max(int(in_cycles[start + step]) + core.latency, previous + 1)
            want.append(previous)
        start += length
    np.testing.assert_array_equal(out_cycles, want)


@pytest.mark.parametrize("k", range(1, 10))
def test_no_step_waits_at_full_rate_for_any_geometry(k):
    # Every stride and padding of kernels up to 9 (the model only; the simulations above
    # assert it equals the core): the input never waits for a slot, but in the output-bound
    # case, where a sequence's first step waits at most one cycle.
    rng = np.random.default_rng(k)
    for s in range(1, k + 3):
        for p in range(k // 2 + 1):
            plan = plan_pool1d("max", k, s, p, channels=1, in_format=SQ(4, 0))
            core = inspected(Pool1d(plan))
            for trial in range(6):
                lengths = [int(n) for n in rng.integers(1, 3 * k + 4, 10)]
                arrivals = random_arrivals(rng, sum(lengths)) if trial % 2 else None
                in_cycles, _ = core.schedule(lengths, arrivals)
                offered = np.concatenate([[0], in_cycles[:-1] + 1])
                if arrivals is not None:
                    offered = np.maximum(arrivals, offered)
                waits = in_cycles - offered
                if output_bound(plan):
                    starts = set(np.cumsum([0] + lengths[:-1]))
                    assert set(np.nonzero(waits)[0]) <= starts and waits.max() <= 1
                else:
                    assert not waits.any(), (k, s, p, lengths)


def test_long_runs_on_a_compiled_engine():
    plan = plan_pool1d("avg", 5, 2, 2, channels=3, in_format=SQ(4, 2), rounding="half_even")
    rng = np.random.default_rng(21)
    lengths = [int(n) for n in rng.integers(1, 40, 120)]
    xs = sequences(plan, lengths, rng)
    codes, last = expected(plan, xs)
    for stall in (0.3, 0.0):
        run = run_stream(Pool1d(plan), framed(xs), n_outputs=len(codes), stall_in=stall,
                         stall_out=stall, seed=5, engine="cxxrtl")
        assert run.engine == "cxxrtl"
        np.testing.assert_array_equal(run.outputs["data"], codes)
        np.testing.assert_array_equal(run.outputs["last"], last)
    in_cycles, out_cycles = inspected(Pool1d(plan)).schedule(lengths)
    np.testing.assert_array_equal(run.in_cycles, in_cycles)
    np.testing.assert_array_equal(run.out_cycles, out_cycles)
    np.testing.assert_array_equal(in_cycles, np.arange(sum(lengths)))


@pytest.mark.parametrize("k, s, p, slots", [(3, 3, 1, 2), (2, 1, 0, 3), (5, 1, 2, 5),
                                            (8, 1, 4, 9), (8, 3, 4, 3), (7, 2, 3, 4),
                                            (1, 2, 0, 2), (6, 4, 3, 2)])
def test_slots(k, s, p, slots):
    # Windows in flight (plus one that waits for its last flag when stride > padding), or
    # the right padding's windows leaving while the left padding's open.
    core = inspected(Pool1d(plan_pool1d("max", k, s, p, channels=1, in_format=SQ(4, 0))))
    assert core.slots == slots and core.describe()["slots"] == slots


def test_deep_queue_under_output_backpressure():
    # k5 s1 p2: the last step finishes 3 windows at once; the output stalls half the time.
    plan = plan_pool1d("avg", 5, 1, 2, channels=3, in_format=UQ(3, 2), out_format=UQ(3, 3))
    xs = sequences(plan, [1, 7, 1, 1, 12, 2, 3], np.random.default_rng(4))
    check(plan, xs, stall=0.5, seed=11)


def test_schedule_rejects_bad_arguments():
    core = inspected(Pool1d(plan_pool1d("max", 3, 1, 1, channels=1, in_format=SQ(4, 0))))
    with pytest.raises(ParameterTypeError, match=r"^lengths must be a sequence of positive "
                                                 r"integers, not 5$"):
        core.schedule(5)
    with pytest.raises(ParameterValueError, match=r"^lengths\[1\] must be a positive integer, "
                                                  r"not 0$"):
        core.schedule([2, 0])
    with pytest.raises(ParameterValueError, match=r"^arrivals must have one cycle per input "
                                                  r"step \(3\), not 2$"):
        core.schedule([3], [0, 1])
    with pytest.raises(ParameterValueError, match=r"^arrivals\[2\] must be an integer of at "
                                                  r"least 4, not 3$"):
        core.schedule([3], [0, 4, 3])
    with pytest.raises(ParameterValueError, match=r"^arrivals\[0\] must be a non-negative "
                                                  r"integer, not -1$"):
        core.schedule([1], [-1])
    with pytest.raises(ParameterTypeError, match=r"^arrivals must be a sequence of integers, "
                                                 r"not 7$"):
        core.schedule([1], 7)
