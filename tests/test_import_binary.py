"""Binarized networks in ONNX (as PyTorch exports a BNN: Sign, ±1 MatMul/Gemm weights, batch norm
before a Sign) read into binarized float layers: the float model against ONNX's own evaluation,
the folded thresholds against float batch norm + sign on every dot product, the ties ONNX's
Sign(0) = 0 makes; imported as specs (threshold and binary_dense layers), simulated bit-exactly
and compared with ONNX; and what is refused."""

import re

import numpy as np
import pytest

from hwnn import cli
from hwnn.fixed import SQ, signed_bits_for
from hwnn.flow import make_vectors, simulate
from hwnn.io import ModelError, UnsupportedLayer, import_model, read_model
from hwnn.io.model import FloatBinaryDense, FloatDense, FloatSign, forward
from hwnn.io.onnx_binary import quant, sign_ties
from hwnn.plans.threshold import plan_batchnorm_sign
from hwnn.ref.binary import binary_dot, dot_range, from_bipolar, multithreshold
from hwnn.spec import load_spec

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

SIZES = (16, 12, 8, 4)


def tensor(name, array):
    return numpy_helper.from_array(np.asarray(array, dtype=np.float64), name)


def batchnorm(name, x, out, n, rng, **fixed):
    """A BatchNormalization node and its parameters (random unless given in ``fixed``)."""
    params = {"scale": rng.uniform(-2, 2, n), "bias": rng.uniform(-1, 1, n),
              "mean": rng.uniform(-3, 3, n), "var": rng.uniform(0.5, 4, n), **fixed}
    names = [f"{name}_{key}" for key in ("scale", "bias", "mean", "var")]
    node = helper.make_node("BatchNormalization", [x, *names], [out], name=name, epsilon=1e-5)
    return node, [tensor(k, params[k.split("_")[-1]]) for k in names]


def bnn(path, rng, *, input_sign=True, bias=True, bipolar=True, fixed=None):
    """x (N, 16) → [Sign] → MatMul ±1 (+ Add) → BN → Sign → MatMul ±1 → BN → Sign → Gemm ±1
    (+ C) → y. ``bipolar`` False makes the first weights real; ``fixed`` sets the first batch
    norm's parameters."""
    nodes, inits, data = [], [], "x"
    if input_sign:
        nodes.append(helper.make_node("Sign", ["x"], ["x_s"], name="sign_in"))
        data = "x_s"
    weights = [rng.choice([-1.0, 1.0], (a, b)) for a, b in zip(SIZES, SIZES[1:])]
    if not bipolar:
        weights[0] = weights[0] * rng.uniform(0.5, 1.5, weights[0].shape)
    for k in range(2):
        inits.append(tensor(f"w{k}", weights[k]))
        nodes.append(helper.make_node("MatMul", [data, f"w{k}"], [f"m{k}"], name=f"fc{k}"))
        pre = f"m{k}"
        if bias:
            inits.append(tensor(f"b{k}", rng.uniform(-1, 1, SIZES[k + 1])))
            nodes.append(helper.make_node("Add", [pre, f"b{k}"], [f"a{k}"], name=f"add{k}"))
            pre = f"a{k}"
        node, more = batchnorm(f"bn{k}", pre, f"n{k}", SIZES[k + 1], rng,
                               **((fixed or {}) if k == 0 else {}))
        nodes += [node, helper.make_node("Sign", [f"n{k}"], [f"s{k}"], name=f"sign{k}")]
        inits += more
        data = f"s{k}"
    inits += [tensor("w2", weights[2].T), tensor("c2", rng.uniform(-1, 1, SIZES[3]))]
    nodes.append(helper.make_node("Gemm", [data, "w2", "c2"], ["y"], name="fc2", transB=1))
    graph = helper.make_graph(
        nodes, "bnn", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["N", SIZES[0]])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["N", SIZES[3]])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return model


@pytest.mark.parametrize("bias", [True, False])
def test_bnn_reads_as_binarized_layers_and_matches_onnx(tmp_path, bias):
    rng = np.random.default_rng(1 + bias)
    model = bnn(tmp_path / "m.onnx", rng, bias=bias)
    layers, _ = read_model(tmp_path / "m.onnx")
    assert [type(layer) for layer in layers] == [FloatSign] + [FloatBinaryDense] * 3
    assert [layer.batchnorm is not None for layer in layers[1:]] == [True, True, False]
    assert all(layer.binary_input for layer in layers[1:])
    x = rng.normal(size=(500, SIZES[0]))
    theirs = ReferenceEvaluator(model).run(None, {"x": x})[0]
    assert sign_ties(layers, x) == [0, 0, 0, 0]
    np.testing.assert_array_equal(forward(layers, x)[-1], theirs)


def test_thresholds_fold_each_batchnorm_on_every_dot_product(tmp_path):
    rng = np.random.default_rng(3)
    bnn(tmp_path / "m.onnx", rng)
    layers, _ = read_model(tmp_path / "m.onnx")
    for layer in layers[1:3]:
        n = layer.weight.shape[1]
        lo, hi = dot_range(n, "bipolar")
        fmt = SQ(signed_bits_for(lo, hi), 0)
        gamma, beta, mean, var, eps = layer.batchnorm
        plan = plan_batchnorm_sign(fmt, gamma, beta, mean - layer.bias, var, eps)
        # Every dot product the layer can see, against its float model: the layer's own
        # decision on d, through an input vector that makes that d for each row.
        d = np.arange(lo, hi + 1, 2)   # a ±1 dot of length n has n's parity
        bits = multithreshold(plan, np.repeat(d[:, None], layer.weight.shape[0], axis=1))
        z = gamma * (d[:, None] + layer.bias - mean) / np.sqrt(var + eps) + beta
        # The float model's decision takes the bias into the mean; away from ties it is
        # batch norm + sign of d + bias.
        near = np.abs(z) < 1e-9
        assert not near.any()
        np.testing.assert_array_equal(bits, (z >= 0).astype(np.int64))
    # And on the network's own ±1 vectors: the layer's float output is its thresholds' bits
    # applied to the integer dot (XNOR-popcount) of the bits before it.
    x = rng.normal(size=(300, SIZES[0]))
    a = from_bipolar(layers[0].evaluate(x).astype(np.int64))
    for layer in layers[1:3]:
        d = binary_dot(a, layer.bits)
        n = layer.weight.shape[1]
        fmt = SQ(signed_bits_for(*dot_range(n, "bipolar")), 0)
        plan = plan_batchnorm_sign(fmt, *layer.batchnorm[:2], layer.batchnorm[2] - layer.bias,
                                   *layer.batchnorm[3:])
        want = from_bipolar(layer.evaluate(2.0 * a - 1.0).astype(np.int64))
        np.testing.assert_array_equal(multithreshold(plan, d), want)
        a = want


def test_ties_go_to_plus_one_where_onnx_gives_zero(tmp_path):
    rng = np.random.default_rng(4)
    # The first batch norm is the identity around 0 on its integer dot: z = d exactly, so
    # every even dot of 0 (n = 16) is a tie.
    n = SIZES[1]
    fixed = {"scale": np.ones(n), "bias": np.zeros(n), "mean": np.zeros(n),
             "var": np.full(n, 1 - 1e-5)}
    model = bnn(tmp_path / "m.onnx", rng, bias=False, fixed=fixed)
    layers, _ = read_model(tmp_path / "m.onnx")
    x = rng.normal(size=(400, SIZES[0]))
    hidden = forward(layers, x)[1]
    d = layers[0].evaluate(x) @ layers[1].weight.T
    ties = sign_ties(layers, x)
    assert ties[1] == np.count_nonzero(d == 0) > 0
    assert np.all(hidden[d == 0] == 1)   # hwnn: sign(0) = +1
    onnx_hidden = ReferenceEvaluator(model).run(["s0"], {"x": x})[0]
    assert np.all(onnx_hidden[d == 0] == 0)   # ONNX: Sign(0) = 0
    np.testing.assert_array_equal(hidden[d != 0], onnx_hidden[d != 0])


def test_batchnorm_after_real_weights_is_folded_and_imports_with_a_sign_layer(tmp_path):
    rng = np.random.default_rng(5)
    bnn(tmp_path / "m.onnx", rng, input_sign=False, bipolar=False)
    layers, _ = read_model(tmp_path / "m.onnx")
    # Real first weights: the batch norm folds into them and the Sign is a layer of its own.
    assert [type(layer) for layer in layers] == [FloatDense, FloatSign, FloatBinaryDense,
                                                 FloatBinaryDense]
    assert layers[2].binary_input and layers[3].binary_input
    spec, _ = import_model(tmp_path / "m.onnx", tmp_path / "m.toml", bits=8)
    design = load_spec(spec)
    assert [layer.kind for layer in design.plan.layers] == ["dense", "activation",
                                                            "binary_dense", "dense"]
    x = make_vectors(design.in_format, design.in_lanes, 60, seed=5)
    run = simulate(design, x, stall=0.3, seed=5, engine="pysim")
    assert run.exact, run.mismatch()


def import_and_check(tmp_path, model, seed):
    """Import ``model`` (saved at m.onnx), simulate it bit-exactly, and compare it with ONNX's
    evaluation on the codes' real values: the hidden bits equal wherever no sign input is
    exactly 0 (counted and asserted zero), the last dense layer's outputs within its rounding
    (half an output unit) plus the bias's (half a unit of the accumulator)."""
    spec, _ = import_model(tmp_path / "m.onnx", tmp_path / "m.toml", bits=8)
    design = load_spec(spec)
    x = make_vectors(design.in_format, design.in_lanes, 300, seed=seed)
    x[x == 0] = 1   # ONNX's Sign(0) = 0 where hwnn gives +1: keep the inputs off 0
    run = simulate(design, x[:40], stall=0.3, seed=seed, engine="pysim")
    assert run.exact, run.mismatch()
    real = x * 2.0 ** -design.in_format.f
    layers, _ = read_model(tmp_path / "m.onnx")
    assert sum(sign_ties(layers, real)) == 0
    outputs = ReferenceEvaluator(model).run(None, {"x": real})[0]
    last = design.plan.layers[-1]
    got = design.reference(x) * 2.0 ** -design.out_format.f
    if last.kind == "dense":
        bound = 2.0 ** -(last.plan.out_format.f + 1) + 2.0 ** -(last.plan.acc_format.f + 1)
        assert np.max(np.abs(got - outputs)) <= bound
    else:
        np.testing.assert_array_equal(got, outputs)
    return design


@pytest.mark.parametrize("input_sign", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_imported_bnn_is_bit_exact_and_agrees_with_onnx(tmp_path, input_sign, bias):
    rng = np.random.default_rng(10 + 2 * input_sign + bias)
    model = bnn(tmp_path / "m.onnx", rng, input_sign=input_sign, bias=bias)
    design = import_and_check(tmp_path, model, seed=2 * input_sign + bias)
    kinds = [layer.kind for layer in design.plan.layers]
    # The last Gemm has a bias: a dense layer on the bits (weights ±2, bias c - W·1).
    assert kinds == ["activation"] * input_sign + ["binary_dense"] * 2 + ["dense"]
    first = design.plan.layers[input_sign].plan
    assert first.in_encoding == ("bipolar" if input_sign else "integer")


def test_last_layer_without_bias_gives_its_dot_products(tmp_path):
    rng = np.random.default_rng(20)
    model = bnn(tmp_path / "m.onnx", rng, bias=False)
    gemm = next(node for node in model.graph.node if node.op_type == "Gemm")
    del gemm.input[2]   # no C: the last layer's dot products are the outputs
    onnx.save(model, str(tmp_path / "m.onnx"))
    design = import_and_check(tmp_path, model, seed=20)
    assert [layer.kind for layer in design.plan.layers][-1] == "binary_dense"
    assert design.out_format == SQ(signed_bits_for(*dot_range(SIZES[2], "bipolar")), 0)


def test_only_dense_and_binarized_layers_may_take_bits(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w0"], ["m"], name="fc0"),
         helper.make_node("Sign", ["m"], ["s"], name="sign"),
         helper.make_node("Relu", ["s"], ["r"], name="relu"),
         helper.make_node("MatMul", ["r", "w"], ["y"], name="fc")], "bad",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["N", 2])],
        [tensor("w0", np.full((4, 4), 0.5)), tensor("w", np.ones((4, 2)))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              str(tmp_path / "m.onnx"))
    with pytest.raises(UnsupportedLayer, match=r"node 'relu' \(Relu\): takes the ±1 outputs of "
                                               r"a binarized layer; hwnn writes only dense and "
                                               r"binarized layers after one"):
        import_model(tmp_path / "m.onnx", tmp_path / "m.toml", bits=8)


def test_binary_input_binarizes_the_inputs_and_makes_the_first_layer_one_bit(tmp_path):
    rng = np.random.default_rng(22)
    model = bnn(tmp_path / "m.onnx", rng, input_sign=False, bias=False)
    gemm = next(node for node in model.graph.node if node.op_type == "Gemm")
    del gemm.input[2]
    onnx.save(model, str(tmp_path / "m.onnx"))
    spec, _ = import_model(tmp_path / "m.onnx", tmp_path / "m.toml", binary_input=True)
    design = load_spec(spec)
    assert [layer.kind for layer in design.plan.layers] == ["activation"] + ["binary_dense"] * 3
    assert design.plan.layers[1].plan.in_encoding == "bipolar"
    assert design.in_format == SQ(2, 6)   # holds -1 and +1
    x = rng.choice([-1.0, 1.0], (200, SIZES[0]))
    codes = (x * 2 ** 6).astype(np.int64)
    np.testing.assert_array_equal(design.reference(codes),
                                  ReferenceEvaluator(model).run(None, {"x": x})[0])
    run = simulate(design, codes[:30], stall=0.3, seed=22, engine="pysim")
    assert run.exact, run.mismatch()
    bnn(tmp_path / "s.onnx", rng)
    with pytest.raises(ModelError, match=r"binary_input: node 'sign_in' \(Sign\) binarizes "
                                         r"the inputs already"):
        import_model(tmp_path / "s.onnx", tmp_path / "s.toml", binary_input=True)


def test_cli_imports_and_simulates_a_bnn(tmp_path, capsys):
    bnn(tmp_path / "m.onnx", np.random.default_rng(21))
    assert cli.main(["import", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "m.toml")]) == 0
    assert cli.main(["import", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "b.toml"),
                     "--binary-input"]) == 2   # the model has its Sign: one line, exit 2
    assert "binarizes the inputs already" in capsys.readouterr().err
    assert 'kind = "threshold"' in (tmp_path / "m.toml").read_text()
    capsys.readouterr()
    assert cli.main(["sim", str(tmp_path / "m.toml"), "--vectors", "20", "--engine",
                     "pysim"]) == 0
    assert "20 vectors bit-exact" in capsys.readouterr().out


def test_first_layer_on_real_inputs_and_plain_bipolar_dense_layers(tmp_path):
    rng = np.random.default_rng(6)
    model = bnn(tmp_path / "m.onnx", rng, input_sign=False)
    layers, _ = read_model(tmp_path / "m.onnx")
    # ±1 weights on real inputs with batch norm + sign after: a binarized neuron whose inputs
    # are multi-bit (a BNN's first layer).
    assert type(layers[0]) is FloatBinaryDense and not layers[0].binary_input
    x = rng.normal(size=(200, SIZES[0]))
    np.testing.assert_array_equal(forward(layers, x)[-1],
                                  ReferenceEvaluator(model).run(None, {"x": x})[0])
    # ±1 weights alone, without a Sign before or after, are an ordinary dense layer.
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")], "plain",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["N", 2])],
        [tensor("w", rng.choice([-1.0, 1.0], (4, 2)))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              str(tmp_path / "p.onnx"))
    assert [type(layer) for layer in read_model(tmp_path / "p.onnx")[0]] == [FloatDense]


QONNX = "qonnx.custom_op.general"


def qonnx_bnn(path, rng, *, act_scale=1.0, data_quant=False):
    """x (N, 16) → BipolarQuant → MatMul(BipolarQuant(latent w0)) → BN → BipolarQuant →
    MatMul(Quant(w1, 2**-3, 0, 4 bits)) → y, as Brevitas exports a BNN to QONNX."""
    latent = rng.normal(size=(16, 12))
    latent[0, 0] = 0.0   # BipolarQuant(0) = +1
    real = rng.uniform(-1.2, 1.2, (12, 4))
    inits = [tensor("w0", latent), tensor("w1", real), tensor("one", 1.0),
             tensor("act_scale", act_scale), tensor("q_scale", 0.125), tensor("zero", 0.0),
             tensor("bits", 4.0)]
    node, more = batchnorm("bn0", "m0", "n0", 12, rng)
    quant_in = (helper.make_node("Quant", ["x", "q_scale", "zero", "bits"], ["xs"], name="q_in",
                                 domain=QONNX) if data_quant else
                helper.make_node("BipolarQuant", ["x", "one"], ["xs"], name="sign_in",
                                 domain=QONNX))
    nodes = [quant_in,
             helper.make_node("BipolarQuant", ["w0", "one"], ["w0q"], name="wq0", domain=QONNX),
             helper.make_node("MatMul", ["xs", "w0q"], ["m0"], name="fc0"), node,
             helper.make_node("BipolarQuant", ["n0", "act_scale"], ["s0"], name="act0",
                              domain=QONNX),
             helper.make_node("Quant", ["w1", "q_scale", "zero", "bits"], ["w1q"], name="wq1",
                              domain=QONNX, signed=1, narrow=0, rounding_mode="ROUND"),
             helper.make_node("MatMul", ["s0", "w1q"], ["y"], name="fc1")]
    graph = helper.make_graph(
        nodes, "qbnn", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["N", 16])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["N", 4])], inits + more)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid(QONNX, 1)])
    onnx.save(model, str(path))
    return latent, real, {t.name: numpy_helper.to_array(t) for t in more}


def test_qonnx_bipolar_quant_and_quant_of_weights(tmp_path):
    rng = np.random.default_rng(30)
    latent, real, bn = qonnx_bnn(tmp_path / "q.onnx", rng)
    layers, _ = read_model(tmp_path / "q.onnx")
    assert [type(layer) for layer in layers] == [FloatSign, FloatBinaryDense, FloatDense]
    np.testing.assert_array_equal(layers[1].weight, np.where(latent.T >= 0, 1.0, -1.0))
    assert layers[1].weight[0, 0] == 1.0
    # QONNX's Quant: half-even rounding of w / 2**-3, clipped to 4-bit codes [-8, 7].
    np.testing.assert_array_equal(layers[2].weight,
                                  np.clip(np.rint(real.T * 8), -8, 7) / 8)
    x = rng.normal(size=(300, 16))
    s = np.where(x >= 0, 1.0, -1.0)
    z = ((s @ layers[1].weight.T - bn["bn0_mean"]) / np.sqrt(bn["bn0_var"] + 1e-5)
         * bn["bn0_scale"] + bn["bn0_bias"])
    want = np.where(z >= 0, 1.0, -1.0) @ layers[2].weight.T
    np.testing.assert_array_equal(forward(layers, x)[-1], want)
    spec, _ = import_model(tmp_path / "q.onnx", tmp_path / "q.toml")
    assert [layer.kind for layer in load_spec(spec).plan.layers] == ["activation",
                                                                     "binary_dense", "dense"]


@pytest.mark.parametrize("kw, message", [
    (dict(act_scale=0.5), r"node 'act0' \(BipolarQuant\): BipolarQuant of scale \[0.5\]; hwnn "
                          r"reads activations binarized to ±1 \(scale 1\)"),
    (dict(data_quant=True), r"node 'q_in' \(Quant\): a Quant of activations; hwnn reads Quant "
                            r"nodes of weights \(folded\)"),
])
def test_qonnx_quantizers_hwnn_does_not_read(tmp_path, kw, message):
    qonnx_bnn(tmp_path / "q.onnx", np.random.default_rng(31), **kw)
    with pytest.raises(UnsupportedLayer, match=message):
        read_model(tmp_path / "q.onnx")


def test_qonnx_quant_semantics():
    x = np.array([-3.3, -0.0625, 0.0625, 0.1875, 2.0, 9.0])
    np.testing.assert_array_equal(quant(x, 0.125, 0.0, 4), [-1.0, -0.0, 0.0, 0.25, 0.875, 0.875])
    np.testing.assert_array_equal(quant(x, 0.125, 0.0, 4, narrow=1)[0], -0.875)
    np.testing.assert_array_equal(quant(x, 1.0, 0.0, 2, signed=0), [0, 0, 0, 0, 2, 3])
    np.testing.assert_array_equal(quant(x, 1.0, 0.0, 2, signed=0, rounding_mode="CEIL"),
                                  [0, 0, 1, 1, 2, 3])
    with pytest.raises(ModelError, match="rounding_mode must be one of ROUND, CEIL, FLOOR, "
                                         "ROUND_TO_ZERO, not 'UP'"):
        quant(x, 1.0, 0.0, 2, rounding_mode="UP")
    with pytest.raises(ModelError, match=re.escape("bitwidth must be one integer from 1 to 62, "
                                                   "not [0.5]")):
        quant(x, 1.0, 0.0, 0.5)
    with pytest.raises(ModelError, match=re.escape("bitwidth must be one integer from 1 to 62, "
                                                   "not [4.0, 4.0]")):
        quant(x, 1.0, 0.0, np.array([4, 4]))
    with pytest.raises(ModelError, match=re.escape("scale must be positive and finite, not "
                                                   "[0.0]")):
        quant(x, 0.0, 0.0, 4)
