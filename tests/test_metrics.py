# amaranth: UnusedElaboratable=no
import math
import re
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.cores.dense import Dense
from hwnn.fixed import SQ, UQ
from hwnn.metrics import (LayerMetrics, bop, digit_counts, layer_metrics, nabs, network_metrics,
                          recurrent_metrics, rm, weight_layer_metrics)
from hwnn.plans.activation import plan_activation
from hwnn.plans.dense import plan_dense, shift_add_graph
from hwnn.plans.pwl.plan import PWLPlan
from hwnn.plans.rnn import plan_recurrent
from test_plans_rnn import weights

# The tiny dense layer counted by hand below (codes of SQ(4, 0), bias codes at 2**-7).
WEIGHT = [[3, -6, 0], [1, 7, 4]]
BIAS = [5, 0]


def tiny_plan():
    return plan_dense(np.array(WEIGHT, dtype=float), [5 / 128, 0], in_format=SQ(1, 7),
                      weight_format=SQ(4, 0), out_format=SQ(8, 4))


def literature_bop(m, n, k, b_a, b_w, p):
    return m * n * k * (p * b_a * b_w + b_a + b_w + math.log2(n * k))


# --- rm / bop ----------------------------------------------------------------------------------

def test_rm_dense_and_conv1d():
    assert rm(16, 64) == 1024
    assert rm(4, 6, kernel=5) == 6 * 4 * 5
    assert rm(4, 6, kernel=5, groups=2) == 6 * 2 * 5
    assert rm(8, 8, kernel=3, groups=8) == 8 * 3  # depthwise


def test_bop_mlp_known_value():
    widths = [16, 64, 32, 32, 5]
    total = sum(bop(n, m, 32, 32) for n, m in zip(widths, widths[1:]))
    assert total == 4_652_832
    assert isinstance(total, float)


def test_bop_matches_formula_with_kernel_groups_and_pruning():
    assert bop(3, 2, 8, 4, p=5 / 6) == literature_bop(2, 3, 1, 8, 4, 5 / 6)
    assert bop(6, 4, 6, 5, kernel=7, p=0.25) == literature_bop(4, 6, 7, 6, 5, 0.25)
    assert bop(6, 4, 6, 5, kernel=7, groups=2) == literature_bop(4, 3, 7, 6, 5, 1.0)
    # Pruning removes exactly the product term of the pruned fraction.
    full, half = bop(8, 8, 8, 8), bop(8, 8, 8, 8, p=0.5)
    assert full - half == 64 * 0.5 * 64


@pytest.mark.parametrize("args, exc, message", [
    ((0, 4), ParameterValueError, "n_in must be a positive integer, not 0"),
    ((4, -1), ParameterValueError, "n_out must be a positive integer, not -1"),
    ((4.0, 4), ParameterTypeError, "n_in must be a positive integer, not 4.0"),
    ((4, True), ParameterTypeError, "n_out must be a positive integer, not True"),
    ((4, 4, 0), ParameterValueError, "kernel must be a positive integer, not 0"),
    ((4, 4, 1, 0), ParameterValueError, "groups must be a positive integer, not 0"),
    ((4, 6, 1, 4), ParameterValueError, "groups must divide n_in = 4 and n_out = 6, not 4"),
])
def test_rm_errors(args, exc, message):
    with pytest.raises(exc, match=re.escape(message)):
        rm(*args)


@pytest.mark.parametrize("kwargs, exc, parameter, message", [
    ({"b_a": 0}, ParameterValueError, "b_a", "b_a must be a positive integer, not 0"),
    ({"b_w": 2.5}, ParameterTypeError, "b_w", "b_w must be a positive integer, not 2.5"),
    ({"p": 0}, ParameterValueError, "p", "p must be a number in (0, 1] (the fraction of "
                                          "non-zero weights), not 0"),
    ({"p": 1.5}, ParameterValueError, "p", "not 1.5"),
    ({"p": float("nan")}, ParameterValueError, "p", "not nan"),
    ({"p": "1"}, ParameterTypeError, "p", "not '1'"),
    ({"p": True}, ParameterTypeError, "p", "not True"),
    ({"kernel": -2}, ParameterValueError, "kernel", "kernel must be a positive integer, not -2"),
    ({"groups": 3}, ParameterValueError, "groups", "groups must divide n_in = 4"),
])
def test_bop_errors(kwargs, exc, parameter, message):
    args = {"n_in": 4, "n_out": 4, "b_a": 8, "b_w": 8, **kwargs}
    with pytest.raises(exc, match=re.escape(message)) as info:
        bop(**args)
    assert info.value.parameter == parameter


# --- nabs --------------------------------------------------------------------------------------

def test_nabs_digits_by_hand():
    # Row 0: 3 = 4 − 1 (1 addition, 1 shift), −6 = 2 − 8 (1 addition, 2 shifts), 0 (nothing),
    #        2 products summed (1 addition), bias 5 (1 addition): 4 additions, 3 shifts.
    # Row 1: 1 (nothing), 7 = 8 − 1 (1 addition, 1 shift), 4 (1 shift), 3 products summed
    #        (2 additions), no bias: 3 additions, 2 shifts.
    assert digit_counts(WEIGHT, BIAS) == (7, 5)
    assert nabs(WEIGHT, BIAS) == 12
    assert nabs(WEIGHT) == 11
    assert nabs(np.array(WEIGHT, dtype=np.int8)) == 11


def test_nabs_conv1d_weight_counts_every_tap():
    weight = np.array(WEIGHT).reshape(2, 1, 3)  # out 2, in/groups 1, kernel 3
    assert digit_counts(weight, BIAS) == digit_counts(WEIGHT, BIAS)


def test_nabs_output_of_bias_alone_adds_nothing():
    # Row 0 is the bias alone; row 1: 2 (1 shift), 3 = 4 − 1 (1 addition, 1 shift), the sum
    # (1 addition), the bias (1 addition).
    assert digit_counts([[0, 0], [2, 3]], [7, 7]) == (3, 2)


def test_nabs_graph_is_the_graphs_count():
    plan = tiny_plan()
    for arith in ("csd", "mcm"):
        graph = shift_add_graph(plan, arith)
        assert nabs(plan.weight, graph=graph) == graph.nabs
        assert nabs(plan.weight, plan.bias, graph=graph) == graph.nabs + 1
    # The CSD graph sums the same digits but builds an adder identical to an earlier one only
    # once, so the digits' count (7 additions, 1 of them the bias) bounds it.
    assert shift_add_graph(plan, "csd").adders <= 7 - 1


@pytest.mark.parametrize("call, exc, parameter, message", [
    (lambda: nabs([[1.0, 2.0]]), ParameterTypeError, "weight",
     "weight must hold integers, not dtype float64"),
    (lambda: nabs([[True, False]]), ParameterTypeError, "weight",
     "weight must hold integers, not dtype bool"),
    (lambda: nabs(np.array([[1, "a"]], dtype=object)), ParameterTypeError, "weight",
     "weight must hold integers, not 'a'"),
    (lambda: nabs([1, 2]), ParameterValueError, "weight", "not shape (2,)"),
    (lambda: nabs(np.zeros((0, 3), int)), ParameterValueError, "weight", "not shape (0, 3)"),
    (lambda: nabs([[1, 2], [3]]), ParameterValueError, "weight", "ragged"),
    (lambda: nabs(WEIGHT, [1]), ParameterValueError, "bias",
     "bias must have shape (2,), one per output, not (1,)"),
    (lambda: nabs(WEIGHT, [1.0, 2.0]), ParameterTypeError, "bias",
     "bias must hold integers, not dtype float64"),
    (lambda: nabs(WEIGHT, graph="g"), ParameterTypeError, "graph",
     "graph must be an AdderGraph or None, not 'g'"),
    (lambda: nabs([[3, -6, 1], [1, 7, 4]], graph=shift_add_graph(tiny_plan(), "csd")),
     ParameterValueError, "graph", "graph must compute weight @ x: output 0"),
])
def test_nabs_errors(call, exc, parameter, message):
    with pytest.raises(exc, match=re.escape(message)) as info:
        call()
    assert info.value.parameter == parameter


# --- layer_metrics -----------------------------------------------------------------------------

def test_dense_plan_on_multipliers():
    metrics = layer_metrics(tiny_plan())
    assert metrics == LayerMetrics(kind="dense", rm=6, bop=literature_bop(2, 3, 1, 8, 4, 5 / 6),
                                   additions=7, shifts=5, p=5 / 6)
    assert metrics.nabs == 12
    assert metrics.describe()["nabs"] == 12


@pytest.mark.parametrize("arith", ["csd", "mcm"])
def test_dense_plan_shift_add_reads_the_graph(arith):
    rng = np.random.default_rng(7)
    weight = rng.integers(-127, 128, (5, 6)) / 128
    plan = plan_dense(weight, rng.uniform(-1, 1, 5), in_format=SQ(2, 6),
                      weight_format=SQ(1, 7), out_format=SQ(4, 6))
    graph = shift_add_graph(plan, arith)
    metrics = layer_metrics(plan, arith=arith)
    bias_adds = sum(1 for o, b in zip(graph.outputs, plan.bias) if b and not o.is_zero)
    assert bias_adds > 0
    assert (metrics.additions, metrics.shifts) == (graph.adders + bias_adds, graph.shifts)
    assert metrics.rm == 30
    # A core (anything with plan, arith and graph) gives the same figures from its own graph.
    core = SimpleNamespace(plan=plan, arith=arith, graph=graph)
    assert layer_metrics(core) == metrics
    # A Dense core: the graph figures `hwnn plan` shows (its describe()), plus its bias adders.
    dense = Dense(plan, arith=arith)
    shown = dense.describe()["graph"]
    assert layer_metrics(dense) == metrics
    assert metrics.nabs == shown["nabs"] + bias_adds
    assert metrics.additions == shown["adders"] + dense.output_adders


def test_dense_plan_pruned_p():
    plan = plan_dense([[0.5, 0, 0, 0.25], [0, 0, 0.75, 0]], in_format=SQ(1, 3),
                      weight_format=SQ(1, 3), out_format=SQ(3, 3))
    metrics = layer_metrics(plan)
    assert metrics.p == 3 / 8
    assert metrics.bop == literature_bop(2, 4, 1, 4, 4, 3 / 8)
    assert metrics.rm == 8  # RM counts the zero weights too


def test_weight_layer_metrics_conv1d():
    weight = np.array([[[1, 0, 3]], [[2, -1, 0]], [[0, 0, 4]], [[5, 1, 1]]])  # depthwise-like
    metrics = weight_layer_metrics(weight, b_a=8, b_w=4, groups=1, kind="conv1d")
    assert metrics.rm == 4 * 1 * 3
    assert metrics.bop == literature_bop(4, 1, 3, 8, 4, 8 / 12)
    grouped = weight_layer_metrics(np.ones((4, 2, 3), int), b_a=8, b_w=4, groups=2)
    assert grouped.rm == rm(4, 4, kernel=3, groups=2) == 24
    assert grouped.bop == literature_bop(4, 2, 3, 8, 4, 1.0)


def test_activation_metrics():
    lut = plan_activation("sigmoid", SQ(3, 5), UQ(0, 8), method="lut", table_size=64)
    assert layer_metrics(lut, lanes=4) == LayerMetrics(kind="activation/lut", rm=0, bop=0.0,
                                                       additions=0, shifts=0)
    pwl = plan_activation("tanh", SQ(3, 5), SQ(1, 7), method="pwl", segments=6)
    assert isinstance(pwl, PWLPlan) and pwl.slope_kind == "any"
    comparisons = 0 if pwl.uniform else pwl.stored_pieces - 1
    assert comparisons > 0
    assert layer_metrics(pwl, lanes=2) == LayerMetrics(
        kind="activation/pwl", rm=2, bop=0.0, additions=2, shifts=2 * (pwl.shift > 0),
        comparisons=2 * comparisons)
    relu = plan_activation("relu", SQ(3, 5), SQ(3, 5))
    assert layer_metrics(relu) == LayerMetrics(kind="activation/exact", rm=0, bop=0.0,
                                               additions=0, shifts=0, comparisons=1)
    sigmoid = plan_activation("hard_sigmoid", SQ(3, 5), UQ(0, 8))
    assert layer_metrics(sigmoid).describe() == {
        "kind": "activation/exact", "rm": 1, "bop": 0.0, "additions": 1, "shifts": 1,
        "comparisons": 2, "p": 1.0, "nabs": 2}
    core = SimpleNamespace(plan=relu, lanes=3)
    assert layer_metrics(core).comparisons == 3


def test_polynomial_metrics_count_horner_steps():
    uniform = plan_activation("tanh", SQ(3, 5), SQ(1, 7), method="poly", segments=8, degree=2)
    assert uniform.uniform and uniform.degree == 2
    nonzero = sum(1 for k in (*uniform.shifts, uniform.shift) if k)
    assert layer_metrics(uniform, lanes=3) == LayerMetrics(
        kind="activation/poly", rm=6, bop=0.0, additions=6, shifts=3 * nonzero, comparisons=0)
    # Zero shifts cost nothing: the same plan with its first step's shift and the final one 0.
    unshifted = replace(uniform, shifts=(0, uniform.shifts[1]), shift=0, error=None)
    assert layer_metrics(unshifted).shifts == (uniform.shifts[1] > 0) == 1
    optimal = plan_activation("tanh", SQ(3, 5), SQ(1, 7), method="poly", segments=6, degree=3,
                              breakpoints="optimal")
    assert not optimal.uniform and optimal.stored_pieces > 1
    metrics = layer_metrics(optimal)
    assert (metrics.rm, metrics.additions, metrics.comparisons) == (
        3, 3, optimal.stored_pieces - 1)
    taylor = plan_activation("sigmoid", SQ(3, 5), UQ(0, 8), method="taylor", order=5)
    metrics = layer_metrics(taylor, lanes=2)
    assert metrics.kind == "activation/taylor"
    assert (metrics.rm, metrics.additions) == (10, 10)
    assert metrics.comparisons == 2 * (taylor.stored_pieces - 1) > 0    # the clamp
    assert metrics.shifts == 2 * sum(1 for k in (*taylor.shifts, taylor.shift) if k)


def test_recurrent_polynomial_units_add_their_horner_products():
    # degree products per lane of σ (3H), tanh (H) and tanh(c') (H), beside the MAC's 4H(I + H)
    # and the elementwise 3H.
    w_ih, w_hh, b_ih, b_hh = weights("lstm")          # H = 3, I = 2
    for method, degree in (("poly", 2), ("taylor", 3)):
        plan = plan_recurrent("lstm", w_ih, w_hh, b_ih, b_hh, in_format=SQ(1, 7), bits=8,
                              method=method)
        assert {unit.degree for unit in plan.activations.values()} == {degree}
        assert recurrent_metrics(plan).rm == 4 * 3 * 5 + 3 * 3 + degree * (3 * 3 + 3 + 3)


def test_pwl_pot_slopes_cost_shifts_not_multiplications():
    pwl = plan_activation("tanh", SQ(3, 5), SQ(1, 7), method="pwl", segments=6, slopes="pot2")
    metrics = layer_metrics(pwl)
    costs = [digit_counts([[s]]) for s in pwl.slopes if s]
    additions, shifts = max(costs, key=sum)
    assert metrics.rm == 0
    assert (metrics.additions, metrics.shifts) == (1 + additions, shifts + (pwl.shift > 0))


@pytest.mark.parametrize("call, exc, parameter, message", [
    (lambda: layer_metrics(tiny_plan(), arith="fast"), ParameterValueError, "arith",
     "arith must be one of mult | csd | mcm, not 'fast'"),
    (lambda: layer_metrics(tiny_plan(), arith=3), ParameterTypeError, "arith", "not 3"),
    (lambda: layer_metrics(tiny_plan(), lanes=2), ParameterValueError, "lanes",
     "lanes applies to activation units, not to a dense layer; got lanes=2"),
    (lambda: layer_metrics(plan_activation("relu", SQ(3, 5), SQ(3, 5)), arith="mult"),
     ParameterValueError, "arith", "arith applies to dense layers, not to ExactPlan"),
    (lambda: layer_metrics(plan_activation("relu", SQ(3, 5), SQ(3, 5)), lanes=0),
     ParameterValueError, "lanes", "lanes must be a positive integer, not 0"),
    (lambda: layer_metrics("dense"), ParameterTypeError, "plan",
     "plan must be a DensePlan, LUTPlan, PWLPlan, PolyPlan, ExactPlan, ThresholdPlan or a core "
     "with such a plan, not 'dense'"),
    (lambda: layer_metrics(SimpleNamespace(plan=tiny_plan(), arith="mult", graph=None),
                           arith="csd"),
     ParameterValueError, "arith", "arith comes from the core ('mult')"),
    (lambda: weight_layer_metrics(WEIGHT, b_a=8, b_w=4, groups=2), ParameterValueError,
     "groups", "groups must be 1 for a 2-D (dense) weight, not 2"),
    (lambda: weight_layer_metrics([[0, 0]], b_a=8, b_w=4), ParameterValueError, "weight",
     "weight must have a non-zero code"),
    (lambda: network_metrics([]), ParameterValueError, "layers",
     "layers must hold at least one layer, not none"),
    (lambda: network_metrics([(1, tiny_plan())]), ParameterTypeError, "layers",
     "layers[0] must be a layer or a (name, layer) pair with a string name"),
])
def test_layer_and_network_errors(call, exc, parameter, message):
    with pytest.raises(exc, match=re.escape(message)) as info:
        call()
    assert info.value.parameter == parameter


# --- network_metrics ---------------------------------------------------------------------------

def test_network_metrics_names_and_totals():
    dense = tiny_plan()
    relu = plan_activation("relu", SQ(8, 4), SQ(8, 4))
    given = LayerMetrics(kind="dense", rm=10, bop=1.5, additions=3, shifts=4)
    result = network_metrics([dense, ("act", relu), ("extra", given)])
    assert [name for name, _ in result.layers] == ["layer0", "act", "extra"]
    assert result.layers[0][1] == layer_metrics(dense)
    assert result.layers[2][1] is given
    assert result.total == LayerMetrics(
        kind="total", rm=6 + 0 + 10, bop=literature_bop(2, 3, 1, 8, 4, 5 / 6) + 1.5,
        additions=7 + 0 + 3, shifts=5 + 0 + 4, comparisons=1)
    assert result.describe()["total"]["nabs"] == 12 + 7


def test_network_metrics_mlp_bop():
    widths = [16, 64, 32, 32, 5]
    layers = [(f"fc{j}", LayerMetrics(kind="dense", rm=rm(n, m), bop=bop(n, m, 32, 32),
                                      additions=0, shifts=0))
              for j, (n, m) in enumerate(zip(widths, widths[1:]))]
    total = network_metrics(layers).total
    assert total.bop == 4_652_832
    assert total.rm == 16 * 64 + 64 * 32 + 32 * 32 + 32 * 5
