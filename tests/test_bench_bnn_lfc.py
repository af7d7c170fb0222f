# amaranth: UnusedElaboratable=no
"""benchmarks/bnn_lfc.py's network builder and EBR packing, on a tiny network, so the script
cannot rot (the full 784-1024-1024-1024-10 network is the benchmark's, not the suite's)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from hwnn.cores._component import inspected
from hwnn.cores.network import Network
from hwnn.ref.binary import binary_dot
from hwnn.ref.network import network, network_layers
from hwnn.sim import run_stream

_SCRIPT = Path(__file__).parents[1] / "benchmarks" / "bnn_lfc.py"
_SPEC = importlib.util.spec_from_file_location("bnn_lfc", _SCRIPT)
bnn_lfc = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bnn_lfc)

# 14 → 16 → 16 → 16 → 2 with the LFC folding's shape: first layer simd a divisor of n_in that
# is not a power of two, hidden layers more PEs than simd, the last one PE.
TINY = (14, 16, 16, 16, 2)
TINY_FOLDING = ((4, 7), (8, 4), (8, 4), (1, 4))


def test_tiny_network_equals_reference_under_stalls():
    plan = bnn_lfc.lfc_plan(TINY, TINY_FOLDING, seed=3, popcount_pipeline=1)
    assert [layer.plan.ii for layer in plan.layers] == [8, 8, 8, 8]
    assert [(layer.plan.pe, layer.plan.simd) for layer in plan.layers] == list(TINY_FOLDING)
    # Hidden layers give one bit per neuron, the last its dot products.
    assert [layer.plan.activation is None for layer in plan.layers] == [False] * 3 + [True]
    x = np.random.default_rng(4).integers(0, 2, (25, 14))
    run = run_stream(inspected(Network(plan)), x, stall_in=0.3, stall_out=0.3, seed=5)
    np.testing.assert_array_equal(run.outputs, network(plan, x))
    # The last layer's outputs are the bipolar dot products of the third layer's bits.
    bits = network_layers(plan, x)[2]
    np.testing.assert_array_equal(run.outputs, binary_dot(bits, plan.layers[3].plan.weights))


def test_thresholds_lie_inside_the_dot_range_and_neurons_vary():
    plan = bnn_lfc.lfc_plan(TINY, TINY_FOLDING, seed=0)
    for layer in plan.layers[:3]:
        values = layer.plan.activation.thresholds
        n_in = layer.plan.n_in
        assert values.shape == (layer.plan.n_out, 1)
        assert (np.abs(values) <= int(np.sqrt(n_in))).all()
    x = np.random.default_rng(1).integers(0, 2, (200, 14))
    hidden = network_layers(plan, x)[0]
    assert 0 < hidden.mean() < 1 and (hidden.min(axis=0) != hidden.max(axis=0)).any()


def test_full_size_folding_and_packing():
    rows = bnn_lfc.layer_rows(bnn_lfc.lfc_plan())
    assert [r["ii"] for r in rows] == [448, 512, 512, 320]
    assert [r["ebr"] for r in rows] == [64, 64, 64, 1]
    assert sum(r["ebr"] for r in rows) <= 208


@pytest.mark.parametrize("depth, width, ebr", [(512, 32, 1), (512, 36, 1), (448, 56, 2),
                                               (256, 64, 2), (16384, 1, 1), (1024, 18, 1),
                                               (1025, 18, 2), (2048, 10, 2), (4096, 8, 2)])
def test_ebr_estimate(depth, width, ebr):
    assert bnn_lfc.ebr_estimate(depth, width) == ebr


def test_errors_name_the_parameter():
    with pytest.raises(ValueError, match=r"depth must be a positive integer, not 0"):
        bnn_lfc.ebr_estimate(0, 4)
    with pytest.raises(ValueError, match=r"width must be a positive integer, not True"):
        bnn_lfc.ebr_estimate(4, True)
    with pytest.raises(ValueError, match=r"folding must give one \(pe, simd\) per layer \(4\), "
                                         r"not 3"):
        bnn_lfc.lfc_plan(TINY, TINY_FOLDING[:3])
    with pytest.raises(ValueError, match="simd"):
        bnn_lfc.lfc_plan(TINY, ((4, 5), *TINY_FOLDING[1:]))


def test_scaled_network_keeps_the_schedule():
    sizes, folding = bnn_lfc.scaled(8)
    assert sizes == (98, 128, 128, 128, 10)
    assert folding == ((4, 7), (8, 4), (8, 4), (1, 4))
    full, small = bnn_lfc.lfc_plan(), bnn_lfc.lfc_plan(sizes, folding)
    for big, little in zip(full.layers, small.layers):
        assert big.plan.ii == little.plan.ii
        assert big.plan.n_out // big.plan.pe == little.plan.n_out // little.plan.pe
    with pytest.raises(ValueError, match=r"scale must be a positive integer dividing .*, not 3"):
        bnn_lfc.scaled(3)
