
import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import ClockDomain, Module, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.cores._component import inspected, ports
from hwnn.cores.pool import Pool1d, constant_divide, frame_layout, reciprocal
from hwnn.fixed import SQ, UQ, Rounding, signed_bits_for
from hwnn.plans.pool import plan_flatten, plan_pool1d
from hwnn.ref.integers import divide_rounded
from hwnn.ref.pool import pool1d
from hwnn.sim import run_stream
from hwnn.synth import synthesize

ROUNDINGS = list(Rounding)


def sequences(plan, lengths, rng, corner=False):
    """Random sequences of ``lengths`` steps (``corner``: min and max codes only)."""
    lo, hi = plan.in_format.min_int, plan.in_format.max_int
    if corner:
        return [rng.choice([lo, hi, 0 if lo <= 0 else lo], (n, plan.channels)) for n in lengths]
    return [rng.integers(lo, hi + 1, (n, plan.channels)) for n in lengths]


def framed(xs):
    """The framed stream input of sequences ``xs``."""
    return {"data": np.concatenate(xs),
            "last": np.concatenate([np.arange(len(x)) == len(x) - 1 for x in xs])}


def expected(plan, xs):
    """Reference outputs (codes, last flags) of back-to-back sequences ``xs``."""
    ys = [pool1d(plan, x) for x in xs]
    return (np.concatenate(ys),
            np.concatenate([np.arange(len(y)) == len(y) - 1 for y in ys]))


def check(plan, xs, *, stall=0.0, seed=0):
    """Run ``Pool1d(plan)`` on ``xs``, assert the outputs equal the reference; the run."""
    codes, last = expected(plan, xs)
    run = run_stream(Pool1d(plan), framed(xs), n_outputs=len(codes), stall_in=stall,
                     stall_out=stall, seed=seed)
    np.testing.assert_array_equal(run.outputs["data"], codes)
    np.testing.assert_array_equal(run.outputs["last"], last)
    return run


# (kind, kernel, stride, padding, channels, in_format, out_format, rounding, overflow)
CASES = [
    ("max", 2, 2, 0, 3, SQ(4, 2), None, "trunc", "sat"),
    ("max", 3, 3, 1, 2, SQ(3, 3), SQ(2, 1), "half_even", "sat"),
    ("max", 4, 6, 2, 2, UQ(4, 0), UQ(2, 1), "half_up", "wrap"),
    ("max", 1, 1, 0, 1, SQ(2, 2), None, "trunc", "sat"),
    ("avg", 2, 2, 0, 2, SQ(4, 2), None, "half_up", "sat"),
    ("avg", 2, 2, 1, 2, SQ(4, 2), SQ(4, 4), "half_even", "sat"),
    ("avg", 3, 3, 1, 3, SQ(4, 2), SQ(3, 3), "half_even", "sat"),
    ("avg", 3, 3, 0, 2, UQ(4, 2), UQ(3, 1), "trunc", "sat"),
    ("avg", 5, 7, 2, 2, SQ(3, 3), SQ(2, 4), "half_up", "wrap"),
    ("avg", 6, 6, 3, 1, SQ(2, 4), SQ(5, -1), "half_even", "sat"),
    ("avg", 4, 4, 2, 2, SQ(5, 0), SQ(3, 0), "half_up", "sat"),
    # Overlapping windows.
    ("max", 3, 1, 1, 2, SQ(4, 2), None, "trunc", "sat"),
    ("max", 4, 1, 2, 1, UQ(3, 1), UQ(2, 0), "half_up", "sat"),
    ("max", 6, 4, 3, 2, SQ(3, 0), None, "trunc", "sat"),
    ("avg", 3, 2, 1, 2, SQ(4, 2), None, "half_even", "sat"),
    ("avg", 5, 2, 2, 2, SQ(3, 2), SQ(3, 4), "half_up", "wrap"),
    ("avg", 4, 3, 0, 3, UQ(3, 2), UQ(3, 1), "trunc", "sat"),
    ("avg", 2, 1, 1, 1, SQ(4, 0), SQ(4, 1), "half_even", "sat"),
]
IDS = ["-".join(str(p) for p in case[:5]) + f"-{case[7]}" for case in CASES]
LENGTHS = [9, 1, 2, 5, 3, 12, 4, 7, 6, 8]


def make(case):
    kind, k, s, p, ch, fin, fout, rounding, overflow = case
    return plan_pool1d(kind, k, s, p, channels=ch, in_format=fin, out_format=fout,
                       rounding=rounding, overflow=overflow)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_equals_reference_back_to_back_with_stalls(case):
    plan = make(case)
    rng = np.random.default_rng(hash(case) % 2**32)
    xs = sequences(plan, LENGTHS, rng) + sequences(plan, [5, 6, 3], rng, corner=True)
    check(plan, xs, stall=0.3, seed=len(case[0]) + case[1])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_exact_cycles_without_stalls(case):
    plan = make(case)
    core = inspected(Pool1d(plan))
    xs = sequences(plan, LENGTHS, np.random.default_rng(5))
    run = check(plan, xs)
    in_cycles, out_cycles = core.schedule(LENGTHS)
    np.testing.assert_array_equal(run.in_cycles, in_cycles)
    np.testing.assert_array_equal(run.out_cycles, out_cycles)
    # ii 1, sequences back to back, whatever the padding; but with stride 1, an even kernel
    # and padding k/2, L steps give L + 1 outputs and a sequence may wait a cycle.
    waits = np.diff(run.in_cycles) - 1
    if plan.stride == 1 and sum(plan.padding) == plan.kernel_size:
        assert set(np.nonzero(waits)[0]) <= set(np.cumsum(LENGTHS) - 1) and max(waits) == 1
    else:
        np.testing.assert_array_equal(run.in_cycles, np.arange(sum(LENGTHS)))


def random_case(rng):
    """A random plan: kind, kernel, stride (overlapping or not), padding, channels, formats,
    rounding and overflow."""
    kernel = int(rng.integers(1, 7))
    stride = int(rng.integers(1, kernel + 3))
    kind = SQ if rng.random() < 0.7 else UQ
    f_in, f_out = int(rng.integers(-1, 4)), int(rng.integers(-2, 5))
    fin = kind(int(rng.integers(2, 6)) - f_in, f_in)  # widths 2 to 5
    fout = kind(int(rng.integers(2, 7)) - f_out, f_out)
    return plan_pool1d(str(rng.choice(["max", "avg"])), kernel, stride,
                       int(rng.integers(0, kernel // 2 + 1)), channels=int(rng.integers(1, 4)),
                       in_format=fin, out_format=fout, rounding=str(rng.choice(
                           [r.value for r in Rounding])), overflow=str(rng.choice(["sat",
                                                                                   "wrap"])))


@pytest.mark.parametrize("seed", range(24))
def test_random_plans(seed):
    rng = np.random.default_rng(100 + seed)
    plan = random_case(rng)
    xs = sequences(plan, rng.integers(1, 14, 8), rng)
    check(plan, xs, stall=0.25, seed=seed)


def test_every_window_value_exhaustively_avg():
    # Every pair of codes of SQ(3, 1) through a 2-wide average (all 256 sums), three roundings.
    codes = np.arange(SQ(3, 1).min_int, SQ(3, 1).max_int + 1)
    pairs = np.array(np.meshgrid(codes, codes)).reshape(2, -1).T
    x = pairs.reshape(-1, 2, 1)
    for rounding in ROUNDINGS:
        plan = plan_pool1d("avg", 2, channels=1, in_format=SQ(3, 1), out_format=SQ(3, 0),
                           rounding=rounding)
        codes_out, _ = expected(plan, list(x))
        run = run_stream(Pool1d(plan), framed(list(x)), n_outputs=len(codes_out))
        np.testing.assert_array_equal(run.outputs["data"], codes_out)


class Divider(wiring.Component):
    """The combinational divider of ``constant_divide`` between two streams (test only)."""

    def __init__(self, lo, hi, divisor, rounding):
        self._args = lo, hi, divisor, rounding
        # A non-negative range arrives unsigned (the zero-extension path), any other signed.
        shape = unsigned(hi.bit_length()) if lo >= 0 else signed(signed_bits_for(lo, hi))
        super().__init__({"i": In(stream.Signature(shape)),
                          "o": Out(stream.Signature(signed(24)))})

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain()  # the harness clocks `sync`; the divider itself has none
        quotient = constant_divide(m, self.i.payload, *self._args)
        m.d.comb += [self.o.payload.eq(quotient), self.o.valid.eq(self.i.valid),
                     self.i.ready.eq(self.o.ready)]
        return m


@pytest.mark.parametrize("divisor, lo, hi", [(3, -200, 190), (6, -300, 299), (5, 0, 255),
                                             (7, -96, 93), (12, -400, 380), (8, -130, 127),
                                             (1, -20, 20), (24, -3, 400)])
def test_constant_divide_every_value(divisor, lo, hi):
    # The proof of exactness for the ranges pooling meets: every value, every rounding.
    n = np.arange(lo, hi + 1)
    for rounding in ROUNDINGS:
        run = run_stream(Divider(lo, hi, divisor, rounding), n)
        np.testing.assert_array_equal(run.outputs, divide_rounded(n, divisor, rounding))


@pytest.mark.parametrize("divisor", [3, 5, 6, 7, 9, 11, 12, 24, 25, 96, 100])
def test_reciprocal_is_exact_on_its_range(divisor):
    for bits in (1, 4, 9, 14):
        multiplier, shift = reciprocal(divisor, bits)
        n = np.arange(1 << bits, dtype=object)
        np.testing.assert_array_equal((n * multiplier) >> shift, n // divisor)
    # One bit less of shift is not enough for every divisor: the bound is not loose for all.
    multiplier, shift = reciprocal(7, 14)
    m2 = -(-(1 << (shift - 1)) // 7)
    n = np.arange(1 << 14, dtype=object)
    assert not np.array_equal((n * m2) >> (shift - 1), n // 7)


def test_payload_shapes_follow_the_formats():
    plan = plan_pool1d("avg", 2, channels=3, in_format=UQ(3, 2), out_format=SQ(4, 2))
    core = inspected(Pool1d(plan))
    assert core.i.signature.members["payload"].shape == frame_layout(UQ(3, 2), 3)
    assert core.o.signature.members["payload"].shape == frame_layout(SQ(4, 2), 3)
    assert frame_layout(SQ(4, 2), 3).members["data"].elem_shape == signed(6)
    assert (core.latency, core.ii) == (2, 1)  # the divider has a stage of its own
    same = inspected(Pool1d(plan_pool1d("max", 2, channels=1, in_format=SQ(3, 1))))
    finer = inspected(Pool1d(plan_pool1d("max", 2, channels=1, in_format=SQ(3, 1),
                                         out_format=SQ(3, 0))))
    assert (same.latency, finer.latency) == (1, 2)
    info = core.describe()
    assert info["kind"] == "pool1d" and info["pool"] == "avg" and info["divisor"] == 2 and info["ii"] == 1


def test_rejects_bad_parameters():
    with pytest.raises(ParameterTypeError, match="^plan must be a Pool1dPlan, not FlattenPlan$"):
        Pool1d(plan_flatten(2, 2))
    with pytest.raises(ParameterValueError, match=r"^lo must be at most hi \(1\), not 2$"):
        constant_divide(inspected(Module()), Signal(4), 2, 1, 3, "trunc")
    with pytest.raises(ParameterValueError, match="divisor"):
        reciprocal(0, 4)


@pytest.mark.parametrize("stride", [3, 1])
def test_exports_verilog(stride):
    plan = plan_pool1d("avg", 3, stride, 1, channels=2, in_format=SQ(4, 2),
                       rounding="half_even")
    core = Pool1d(plan)
    text = verilog.convert(core, name="pool", ports=ports(core))
    assert "module pool" in text and "o__payload" in text


@pytest.mark.synth
def test_synthesizes_a_small_instance():
    plan = plan_pool1d("max", 2, channels=2, in_format=SQ(4, 2))
    report = synthesize(Pool1d(plan), "ice40-up5k", name="pool")
    # Two channels in two slots (accumulators that also hold a finished window until it
    # leaves), plus the phase, the pointers and a few flags per slot.
    assert inspected(Pool1d(plan)).slots == 2
    assert report.dsps == 0 and 2 * 2 * 6 <= report.ffs <= 2 * 2 * 6 + 12


@pytest.mark.synth
def test_average_by_three_takes_no_multiplier():
    plan = plan_pool1d("avg", 3, channels=1, in_format=SQ(4, 4), rounding="half_even")
    report = synthesize(Pool1d(plan), "ice40-up5k", name="pool")
    assert report.dsps == 0 and report.carries > 0
