import itertools
import re

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Signal

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.cores.requantize import Requantize, format_shape
from hwnn.cores.requantize import requantize as hardware_requantize
from hwnn.fixed import SQ, UQ, Overflow, Rounding, requantize
from hwnn.sim import run_stream
from oracle import REQUANT_PAIRS

MODES = list(itertools.product(Rounding, Overflow))


@pytest.mark.parametrize("src, dst", REQUANT_PAIRS, ids=str)
@pytest.mark.parametrize("rounding, overflow", MODES, ids=lambda m: m.value)
def test_hardware_requantize_equals_reference_on_every_code(src, dst, rounding, overflow):
    codes = src.codes()
    run = run_stream(Requantize(src, dst, rounding, overflow), codes)
    np.testing.assert_array_equal(run.outputs, requantize(codes, src, dst, rounding, overflow))


def test_hardware_requantize_eight_bit_every_code_with_stalls():
    src, dst = SQ(3, 5), UQ(2, 3)
    codes = np.concatenate([src.codes(), src.codes()[::-1]])
    for rounding, overflow in MODES:
        run = run_stream(Requantize(src, dst, rounding, overflow), codes, stall_in=0.3,
                         stall_out=0.4, seed=3)
        np.testing.assert_array_equal(run.outputs, requantize(codes, src, dst, rounding, overflow))


def test_requantize_stage_latency_and_throughput():
    core = Requantize(SQ(4, 4), SQ(2, 2))
    run = run_stream(core, SQ(4, 4).codes()[:50])
    assert core.latency == 1 and core.ii == 1
    assert set(run.latencies) == {core.latency}
    assert set(np.diff(run.in_cycles)) == {core.ii}


def test_format_shape():
    assert format_shape(SQ(4, 12)).signed and format_shape(SQ(4, 12)).width == 16
    assert not format_shape(UQ(0, 8)).signed


def test_requantize_rejects_bad_parameters():
    cases = [
        (lambda: Requantize(SQ(4, 4), SQ(2, 2), rounding="up"), ParameterValueError, "rounding",
         "rounding must be one of trunc | half_up | half_even, not 'up'"),
        (lambda: Requantize(8, SQ(2, 2)), ParameterTypeError, "src",
         "src must be a Format (SQ/UQ) or a format string, not 8"),
        (lambda: Requantize(SQ(4, 4), SQ(2, 2), overflow=3), ParameterTypeError, "overflow",
         "overflow must be one of wrap | sat (or a member of Overflow), not 3"),
        (lambda: hardware_requantize(Signal(5), SQ(4, 4), SQ(2, 2)), ParameterValueError,
         "value", "value must be 8 bits wide (the width of src SQ(4, 4)), not 5"),
    ]
    for call, error, parameter, message in cases:
        with pytest.raises(error, match=re.escape(message) + "$") as info:
            call()
        assert info.value.parameter == parameter


def test_requantize_exports_verilog():
    text = verilog.convert(Requantize(SQ(4, 4), SQ(2, 2), Rounding.HALF_EVEN, Overflow.SAT),
                           name="rq")
    assert "module rq" in text and "i__payload" in text and "o__payload" in text
