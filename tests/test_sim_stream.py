import numpy as np
from amaranth.sim import Simulator

from hwnn.cores.dense import Dense
from hwnn.cores.requantize import Requantize
from hwnn.fixed import SQ, requantize
from hwnn.plans.dense import plan_dense
from hwnn.ref.dense import dense
from hwnn.sim import make_vectors, stream_get, stream_put


def simulate(core, *testbenches):
    sim = Simulator(core)
    sim.add_clock(1e-8)
    for testbench in testbenches:
        sim.add_testbench(testbench)
    sim.run()


def test_put_and_get_vectors_in_a_hand_written_testbench():
    plan = plan_dense(np.array([[0.5, -0.25], [0.125, 1.0]]), in_format=SQ(2, 4),
                      weight_format=SQ(2, 4), out_format=SQ(4, 4))
    core = Dense(plan, parallelism=2)
    vectors = make_vectors(plan.in_format, 2, 8)
    received = []

    async def producer(ctx):
        for vector in vectors:
            await stream_put(ctx, core.i, vector.tolist())

    async def consumer(ctx):
        for _ in vectors:
            received.append(await stream_get(ctx, core.o))

    simulate(core, producer, consumer)
    assert all(isinstance(row, list) for row in received)
    np.testing.assert_array_equal(received, dense(plan, vectors))


def test_put_and_get_scalars_leave_valid_and_ready_low():
    core = Requantize(SQ(4, 4), SQ(2, 2))
    codes = [-128, -1, 0, 37, 127]
    received, after_put, after_get = [], [], []

    async def producer(ctx):
        for code in codes:
            await stream_put(ctx, core.i, code)
            after_put.append(ctx.get(core.i.valid))

    async def consumer(ctx):
        for _ in codes:
            received.append(await stream_get(ctx, core.o))
            after_get.append(ctx.get(core.o.ready))
            await ctx.tick().repeat(3)  # the core must hold its output meanwhile

    simulate(core, producer, consumer)
    assert received == requantize(np.array(codes), SQ(4, 4), SQ(2, 2)).tolist()
    assert after_put == [0] * len(codes) and after_get == [0] * len(codes)
