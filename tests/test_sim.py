import numpy as np
import pytest
from amaranth.sim import Simulator

from hwnn.cores.dense import Dense
from hwnn.cores.requantize import Requantize
from hwnn.fixed import SQ, UQ, requantize
from hwnn.plans.dense import plan_dense
from hwnn.ref.dense import dense
from hwnn.sim import PayloadCodec, corner_vectors, make_vectors, run_stream, stream_get, stream_put
from amaranth.lib import data
from amaranth.hdl import signed, unsigned


def test_payload_codec_packs_element_zero_low():
    codec = PayloadCodec.for_shape(data.ArrayLayout(signed(4), 3))
    assert (codec.width, codec.signed, codec.lanes) == (4, True, 3)
    assert codec.pack([1, -1, -8]) == 0x8F1
    assert codec.unpack(0x8F1) == [1, -1, -8]
    scalar = PayloadCodec.for_shape(unsigned(5))
    assert scalar.pack(31) == 31 and scalar.unpack(31) == 31 and scalar.lanes is None


def test_payload_codec_checks_rows():
    codec = PayloadCodec.for_shape(data.ArrayLayout(signed(4), 3))
    with pytest.raises(ValueError, match=r"payload codes must lie in \[-8, 7\], found \[0, 8\]"):
        codec.rows([[0, 8, 0]])
    with pytest.raises(ValueError, match=r"need an array of shape \(n, 3\), not \(1, 2\)"):
        codec.rows([[0, 1]])
    with pytest.raises(TypeError, match="neither a scalar nor an ArrayLayout"):
        PayloadCodec.for_shape(data.StructLayout({"a": 4}))


def test_corner_vectors_cover_the_extremes():
    rows = corner_vectors(SQ(1, 3), 3)
    assert [-8] * 3 in rows.tolist() and [7] * 3 in rows.tolist() and [0] * 3 in rows.tolist()
    assert [-8, 7, -8] in rows.tolist() and [0, 0, 7] in rows.tolist()
    assert len({tuple(r) for r in rows.tolist()}) == len(rows)
    vectors = make_vectors(UQ(2, 2), 2, 50, seed=1)
    assert vectors.shape == (50, 2) and vectors.min() >= 0 and vectors.max() <= 15
    np.testing.assert_array_equal(vectors[:len(corner_vectors(UQ(2, 2), 2))],
                                  corner_vectors(UQ(2, 2), 2))
    np.testing.assert_array_equal(make_vectors(UQ(2, 2), 2, 50, seed=1), vectors)


def test_stream_put_and_get_in_a_hand_written_testbench():
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

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    np.testing.assert_array_equal(received, dense(plan, vectors))


def test_run_stream_reports_progress_and_counts_cycles():
    calls = []
    codes = SQ(4, 4).codes()
    run = run_stream(Requantize(SQ(4, 4), SQ(2, 2)), codes, progress=lambda d, t: calls.append(d))
    assert calls == list(range(1, 256 + 1))
    assert run.cycles >= len(codes) and len(run.in_cycles) == len(codes)
    np.testing.assert_array_equal(run.outputs, requantize(codes, SQ(4, 4), SQ(2, 2)))


def test_run_stream_times_out_on_a_stuck_core():
    core = Requantize(SQ(4, 4), SQ(2, 2))
    with pytest.raises(TimeoutError, match="core produced 3 of 5 outputs in 20 cycles"):
        run_stream(core, np.zeros(3, dtype=int), n_outputs=5, max_cycles=20)


def test_run_stream_rejects_bad_stall_probability():
    with pytest.raises(ValueError, match=r"stall_out must be a probability in \[0, 1\), not 1"):
        run_stream(Requantize(SQ(4, 4), SQ(2, 2)), [0], stall_out=1)


def test_run_stream_with_an_unwritable_vcd_leaves_no_coroutine_behind(tmp_path):
    """The error of a bad waveform path came with four 'never awaited' RuntimeWarnings."""
    import gc
    import warnings
    gc.collect()  # coroutines other tests left behind report here, not below
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(IsADirectoryError):
            run_stream(Requantize(SQ(4, 4), SQ(2, 2)), [0, 1], vcd=tmp_path)
        gc.collect()
    assert [str(w.message) for w in caught] == []
