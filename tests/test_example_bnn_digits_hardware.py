# amaranth: UnusedElaboratable=no
"""The digits BNN as hardware (examples/bnn_digits/hardware.py): the committed spec holds the
trained model's bits and folded thresholds, and the network it builds gives the integer
reference's logits, bit for bit, on the whole test split in a compiled engine, at its ii and
latency, as hardware.json records."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the digits example needs scikit-learn for its data "
                                      "(pip install hwnn[examples])")

from hwnn.cores.network import Network  # noqa: E402
from hwnn.sim import EngineError, compiled  # noqa: E402
from hwnn.spec import load_spec  # noqa: E402

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "bnn_digits"
_SPEC = importlib.util.spec_from_file_location("bnn_digits_hardware", EXAMPLE / "hardware.py")
hardware = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(hardware)


def _compiler():
    try:
        return compiled.find_compiler("test")
    except EngineError:
        return None


def test_committed_spec_is_the_trained_model():
    model = hardware.run.load_model()
    with np.load(hardware.ARRAYS) as saved:
        saved = dict(saved)
    want = hardware.spec_arrays(model)
    assert sorted(saved) == sorted(want)
    for key, value in want.items():
        np.testing.assert_array_equal(saved[key], value)
    assert hardware.SPEC.read_text() == hardware.spec_text()
    plan = load_spec(hardware.SPEC).plan
    assert [layer.plan.pe for layer in plan.layers] == [2, 4, 1]
    assert plan.ii == 512


@pytest.mark.skipif(_compiler() is None, reason="needs a C++ compiler (c++, g++ or clang++)")
def test_hardware_gives_the_reference_logits_on_the_test_split():
    # All 360 images: about 5 s once the C++ model is built (the build takes about 2 minutes
    # once, cached under $HWNN_CACHE_DIR).
    result = hardware.simulate(engine="cxxrtl")
    assert result["images"] == 360
    assert result["logits_equal"] and result["predictions_equal"]
    assert result["correct"] == 345   # 95.83 %, as run.reference (results.json)
    assert result["measured_ii"] == [result["ii"]] == [512]
    assert result["measured_latency"] == [result["latency"]]
    saved = json.loads(hardware.RESULTS.read_text())["simulation"]
    assert saved["correct"] == 345 and saved["latency"] == result["latency"]
