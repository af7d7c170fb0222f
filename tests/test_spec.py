import re
import tomllib

import numpy as np
import pytest

from hwnn.cores._component import inspected
from hwnn.fixed import SQ, UQ
from hwnn.fixed import requantize
from hwnn.plans.activation import plan_activation
from hwnn.plans.dense import plan_dense
from hwnn.plans.shift_mac import plan_shift_mac
from hwnn.spec import SpecError, design_from_dict, load_spec


def whole(source, field, message):
    """A ``match`` pattern for the whole text of the SpecError ``source: field: message``."""
    return "^" + re.escape(f"{source}: {field}: {message}") + "$"


def plan_error(plan, *args, **kwargs):
    """The error a plan raises for these parameters (the spec passes it on at its field)."""
    try:
        plan(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        return exc
    raise AssertionError("the plan accepted parameters the test expects it to reject")


SPEC = """\
[core]
kind = "dense"
name = "fc1"
[params]
in_format = "SQ(1,7)"
weight_format = "SQ(1,7)"
out_format = "SQ(4,8)"
rounding = "half_up"
overflow = "sat"
parallelism = 4
weights = "fc1.npz"
"""


@pytest.fixture
def spec_dir(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "fc1.npz", weight=rng.uniform(-1, 1, (3, 5)), bias=rng.uniform(-1, 1, 3))
    (tmp_path / "fc1.toml").write_text(SPEC)
    return tmp_path


def write(spec_dir, text):
    path = spec_dir / "case.toml"
    path.write_text(text)
    return path


def test_load_dense_spec(spec_dir):
    design = load_spec(spec_dir / "fc1.toml")
    assert design.kind == "dense" and design.name == "fc1"
    assert design.in_format == SQ(1, 7) and design.out_format == SQ(4, 8)
    assert (design.in_lanes, design.out_lanes) == (5, 3)
    core = inspected(design.build())
    assert core.parallelism == 4 and core.ii == 4
    x = np.zeros((2, 5), dtype=np.int64)
    assert design.reference(x).shape == (2, 3)


def test_defaults(spec_dir):
    text = SPEC.replace('rounding = "half_up"\n', "").replace('overflow = "sat"\n', "")
    text = text.replace("parallelism = 4\n", "")
    design = load_spec(write(spec_dir, text))
    assert design.plan.rounding.value == "half_up" and design.plan.overflow.value == "sat"
    assert inspected(design.build()).parallelism == 1


@pytest.mark.parametrize("arith", ["csd", "mcm"])
def test_shift_add_spec(spec_dir, arith):
    text = SPEC.replace("parallelism = 4", f'arith = "{arith}"\npipeline = 1')
    core = inspected(load_spec(write(spec_dir, text)).build())
    assert core.arith == arith and core.pipeline == 1 and core.ii == 1
    text = SPEC.replace("parallelism = 4", f'arith = "{arith}"')
    core = inspected(load_spec(write(spec_dir, text)).build())
    assert core.pipeline == 2 and not core.always_ready     # the defaults
    text = SPEC.replace("parallelism = 4", f'arith = "{arith}"\nalways_ready = true')
    assert inspected(load_spec(write(spec_dir, text)).build()).o.signature.always_ready


def test_weight_quantizer_field(spec_dir):
    text = SPEC.replace("parallelism = 4",
                        'weight_quantizer = "pot"\narith = "mcm"\nsaturate_weights = true')
    plan = load_spec(write(spec_dir, text)).plan
    assert plan.weight_quantizer == "pot"
    assert all(w == 0 or abs(int(w)) & (abs(int(w)) - 1) == 0 for w in plan.weight.ravel())
    with pytest.raises(SpecError, match=whole(
            spec_dir / "case.toml", "params.weight_quantizer",
            "must be one of fixed | pot | pot2, not 'log'")):
        load_spec(write(spec_dir, SPEC.replace("parallelism = 4", 'weight_quantizer = "log"')))


def test_weights_beyond_the_format_need_saturate_weights(spec_dir):
    weight = np.full((3, 5), 0.5)
    weight[0, 1] = 3.0
    np.savez(spec_dir / "fc1.npz", weight=weight)
    with pytest.raises(SpecError) as info:
        load_spec(spec_dir / "fc1.toml")
    assert str(info.value) == (f"{spec_dir / 'fc1.toml'}: params.weights: 1 weights in fc1.npz "
                               f"do not fit weight_format SQ(1, 7); widen weight_format, or set "
                               f"saturate_weights = true to clamp them")
    text = SPEC.replace("parallelism = 4", "saturate_weights = true")
    assert load_spec(write(spec_dir, text)).plan.saturated_weights == 1
    with pytest.raises(SpecError, match=whole(spec_dir / "case.toml", "params.saturate_weights",
                                              "must be true or false, not 1")):
        load_spec(write(spec_dir, SPEC.replace("parallelism = 4", "saturate_weights = 1")))


def test_bias_is_optional(spec_dir):
    np.savez(spec_dir / "fc1.npz", weight=np.full((2, 2), 0.25))
    design = load_spec(spec_dir / "fc1.toml")
    np.testing.assert_array_equal(design.plan.bias, [0, 0])


@pytest.mark.parametrize("edit, field, message", [
    (("kind = \"dense\"", "kind = \"conv\""), "core.kind", "unknown kind 'conv'; known kinds: dense, activation, shift_mac, network"),
    (("name = \"fc1\"\n", ""), "core.name", "missing (required)"),
    (("name = \"fc1\"", "name = \"1fc\""), "core.name",
     "Module name must be a Verilog identifier (letters, digits, _; not starting with a digit), "
     "not '1fc'"),
    (("in_format = \"SQ(1,7)\"", "in_format = \"SQ(1,x)\""), "params.in_format",
     "Format must look like 'SQ(4,12)' or 'UQ(0,8)', not 'SQ(1,x)'"),
    (("out_format = \"SQ(4,8)\"\n", ""), "params.out_format", "missing (required)"),
    (("in_format = \"SQ(1,7)\"", "in_format = 8"), "params.in_format", "must be a string, not 8"),
    (("rounding = \"half_up\"", "rounding = \"up\""), "params.rounding",
     "must be one of trunc | half_up | half_even, not 'up'"),
    (("overflow = \"sat\"", "overflow = \"clip\""), "params.overflow",
     "must be one of wrap | sat, not 'clip'"),
    (("parallelism = 4", "parallelism = 16"), "params.parallelism",
     "must be between 1 and 15, not 16"),
    (("parallelism = 4", "parallelism = 2.5"), "params.parallelism", "must be an integer, not 2.5"),
    (("fc1.npz", "missing.npz"), "params.weights", "file not found: {dir}/missing.npz"),
    (("parallelism = 4", "parallelism = 4\nspeed = 3"), "params.speed",
     "unknown field; params takes always_ready, arith, in_format, out_format, overflow, "
     "parallelism, pipeline, rounding, saturate_weights, weight_format, weight_quantizer, "
     "weights"),
    (("parallelism = 4", 'arith = "dsp"'), "params.arith",
     "must be one of mult | csd | mcm, not 'dsp'"),
    (("parallelism = 4", 'arith = "mcm"\npipeline = -1'), "params.pipeline",
     "must be at least 0, not -1"),
    (("parallelism = 4", 'arith = "csd"\npipeline = "fast"'), "params.pipeline",
     "must be an integer, not 'fast'"),
    (("parallelism = 4", 'arith = "mcm"\nparallelism = 4'), "params.parallelism",
     'applies to arith = "mult"; arith = "mcm" is fully parallel (one vector per cycle)'),
    (("parallelism = 4", "pipeline = 2"), "params.pipeline",
     'applies to arith = "csd" or "mcm" (shift-add), not "mult"'),
    (("parallelism = 4", "always_ready = true"), "params.always_ready",
     'applies to arith = "csd" or "mcm" (shift-add), not "mult"'),
    (("parallelism = 4", 'arith = "mcm"\nalways_ready = "yes"'), "params.always_ready",
     "must be true or false, not 'yes'"),
])
def test_spec_errors_name_the_field(spec_dir, edit, field, message):
    old, new = edit
    assert old in SPEC
    with pytest.raises(SpecError, match=whole(spec_dir / "case.toml", field,
                                              message.format(dir=spec_dir))):
        load_spec(write(spec_dir, SPEC.replace(old, new)))


def test_weights_file_errors(spec_dir):
    np.savez(spec_dir / "fc1.npz", w=np.ones((2, 2)))
    spec = spec_dir / "fc1.toml"
    with pytest.raises(SpecError, match=whole(spec, "params.weights",
                                              "fc1.npz has no array 'weight' (it has: w)")):
        load_spec(spec)
    np.savez(spec_dir / "fc1.npz", weight=np.ones(4))
    with pytest.raises(SpecError, match=whole(
            spec, "params.weights", "array 'weight' in fc1.npz must be a non-empty 2-D array "
                                    "(n_out x n_in), not shape (4,)")):
        load_spec(spec)
    np.savez(spec_dir / "fc1.npz", weight=np.ones((2, 3)), bias=np.ones(3))
    with pytest.raises(SpecError, match=whole(
            spec, "params.weights", "array 'bias' in fc1.npz must have shape (2,) to match "
                                    "weight (2, 3), not (3,)")):
        load_spec(spec)
    (spec_dir / "fc1.npz").write_text("not a zip")
    with pytest.raises(SpecError, match=whole(
            spec, "params.weights", "fc1.npz is not a readable .npz file (neither an .npz "
                                    "archive nor a .npy array); write it with numpy.savez")):
        load_spec(spec)


def test_file_level_errors(spec_dir):
    with pytest.raises(SpecError, match=whole(spec_dir / "nope.toml", "spec", "file not found")):
        load_spec(spec_dir / "nope.toml")
    with pytest.raises(tomllib.TOMLDecodeError) as toml_says:   # its wording: Python's
        tomllib.loads("[core\nkind=")
    with pytest.raises(SpecError, match=whole(spec_dir / "case.toml", "spec",
                                              f"not valid TOML: {toml_says.value}")):
        load_spec(write(spec_dir, "[core\nkind="))
    with pytest.raises(SpecError, match=whole(spec_dir / "case.toml", "core",
                                              "missing [core] table")):
        load_spec(write(spec_dir, "[params]\n"))
    with pytest.raises(SpecError, match=whole("<spec>", "spec.layers",
                                              "unknown field; spec takes core, params")):
        design_from_dict({"core": {"kind": "dense", "name": "x"}, "layers": {}})


ACTIVATION = """\
[core]
kind = "activation"
name = "act"
[params]
function = "tanh"
method = "lut"
table_size = 64
in_format = "SQ(3,5)"
out_format = "SQ(1,7)"
lanes = 2
"""


def test_load_activation_spec(tmp_path):
    (tmp_path / "act.toml").write_text(ACTIVATION)
    design = load_spec(tmp_path / "act.toml")
    assert design.kind == "activation" and (design.in_lanes, design.out_lanes) == (2, 2)
    assert design.plan.table_size == 64 and inspected(design.build()).lanes == 2


def test_activation_fit_to_target(tmp_path):
    text = ACTIVATION.replace("table_size = 64", "max_error = 0.02")
    (tmp_path / "act.toml").write_text(text)
    design = load_spec(tmp_path / "act.toml")
    assert design.plan.error.max_abs <= 0.02


@pytest.mark.parametrize("edit, field, message", [
    (("function = \"tanh\"", "function = \"swish\""), "params.function",
     "must be one of hard_sigmoid | hard_tanh | leaky_relu | relu | relu6 | sigmoid | tanh, not "
     "'swish'"),
    (("method = \"lut\"", "method = \"cordic\""), "params.method",
     "must be one of exact | lut | pwl | poly | taylor, not 'cordic'"),
    (("table_size = 64", "table_size = 100"), "params.table_size",
     str(plan_error(plan_activation, "tanh", SQ(3, 5), SQ(1, 7), method="lut", table_size=100))),
    (("table_size = 64", "segments = 8"), "params.segments",
     "applies to method pwl or poly, not 'lut'"),
    (("table_size = 64", "table_size = 64\nmax_error = 0.1"), "params.max_error",
     "give either max_error (fit the cheapest plan) or table_size, not both"),
    (("lanes = 2", "lanes = 0"), "params.lanes", "must be between 1 and 4096, not 0"),
    (("table_size = 64", "input_range = [4]"), "params.input_range",
     "must be a pair of numbers [low, high], not [4]"),
    (("out_format = \"SQ(1,7)\"", "out_format = \"UQ(0,4)\""), "params.out_format",
     str(plan_error(plan_activation, "tanh", SQ(3, 5), UQ(0, 4), method="lut", table_size=64))),
])
def test_activation_spec_errors(tmp_path, edit, field, message):
    old, new = edit
    assert old in ACTIVATION
    (tmp_path / "act.toml").write_text(ACTIVATION.replace(old, new))
    with pytest.raises(SpecError, match=whole(tmp_path / "act.toml", field, message)):
        load_spec(tmp_path / "act.toml")


def test_activation_symmetric_field(tmp_path):
    text = ACTIVATION.replace('method = "lut"\ntable_size = 64', 'method = "pwl"\nsegments = 7')
    (tmp_path / "act.toml").write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "act.toml")
    # The plan's hint, written as a spec sets it (the plan says "pass symmetric=False").
    said = str(plan_error(plan_activation, "tanh", SQ(3, 5), SQ(1, 7), method="pwl", segments=7))
    assert said == ("a symmetric plan has an even number of segments (each stored piece serves "
                    "both signs), not 7; pass symmetric=False for an odd count")
    assert str(info.value) == (f"{tmp_path / 'act.toml'}: params.segments: a symmetric plan has "
                               f"an even number of segments (each stored piece serves both "
                               f"signs), not 7; set symmetric = false for an odd count")
    (tmp_path / "act.toml").write_text(text + "symmetric = false\n")
    assert load_spec(tmp_path / "act.toml").plan.symmetric is False
    (tmp_path / "act.toml").write_text(text + "symmetric = 1\n")
    with pytest.raises(SpecError, match=whole(tmp_path / "act.toml", "params.symmetric",
                                              "must be true or false, not 1")):
        load_spec(tmp_path / "act.toml")


def error_of(path):
    """The SpecError loading ``path`` raises; its text is ``path: field: message``, whole."""
    with pytest.raises(SpecError) as info:
        load_spec(path)
    error = info.value
    assert str(error) == f"{path}: {error.field}: {error.message}"
    return error


def test_weights_in_a_npy_file_are_a_spec_error(spec_dir):
    np.save(spec_dir / "w.npy", np.ones((3, 5)))
    error = error_of(write(spec_dir, SPEC.replace("fc1.npz", "w.npy")))
    assert (error.field, error.message) == (
        "params.weights", "w.npy is a single .npy array; weights must be an .npz archive "
                          "(np.savez) with array 'weight' (and optionally 'bias')")


SHIFT_MAC = """\
[core]
kind = "shift_mac"
name = "s"
[params]
in_format = "SQ(8,0)"
weight_format = "SQ(8,0)"
out_format = "SQ(4,4)"
n_in = 2
n_out = 2
"""


def test_a_huge_shift_mac_is_refused_before_allocating(tmp_path):
    text = SHIFT_MAC.replace("n_in = 2\nn_out = 2", "n_in = 100000\nn_out = 100000")
    error = error_of(write(tmp_path, text))
    assert (error.field, error.message) == (
        "params.n_in", "n_out·n_in must be at most 8388608 weights (MAX_WEIGHTS = 2**23: more "
                       "than any supported device holds), not 100000·100000 = 10000000000")


@pytest.mark.parametrize("kind", ["dense", "shift_mac"])
def test_output_fractions_beyond_int64_are_refused_when_the_spec_loads(spec_dir, kind):
    np.savez(spec_dir / "w8.npz", weight=np.full((2, 3), 3.0))
    text = (SPEC.replace("SQ(1,7)", "SQ(8,0)").replace("fc1.npz", "w8.npz")
            .replace("parallelism = 4", "parallelism = 1") if kind == "dense" else SHIFT_MAC)
    error = error_of(write(spec_dir, text.replace('out_format = "SQ(4,8)"',
                                                  'out_format = "SQ(-55,60)"')
                                         .replace('out_format = "SQ(4,4)"',
                                                  'out_format = "SQ(-55,60)"')))
    assert (error.field, error.message) == ("params.out_format", refusal(kind))


def refusal(kind):
    """What refuses SQ(-55,60) outputs from SQ(8,0) inputs and weights: the plan itself (once
    it checks the reach of its requantize), else the reference's requantize."""
    formats = dict(in_format=SQ(8, 0), weight_format=SQ(8, 0), out_format=SQ(-55, 60))
    try:
        plan = (plan_dense(np.full((2, 3), 3.0), **formats) if kind == "dense"
                else plan_shift_mac(2, 2, **formats))
        requantize(np.zeros(1, dtype=np.int64), plan.acc_format, plan.out_format)
    except ValueError as exc:
        return str(exc)
    raise AssertionError("SQ(-55,60) outputs were accepted")


def test_shift_mac_without_weights_says_they_are_zero(tmp_path):
    design = load_spec(write(tmp_path, SHIFT_MAC))
    assert design.notes == ("note: s has no weights file, so its weights and bias are all zero "
                            "and every output is 0; set weights = \"FILE.npz\" to check real "
                            "products",)


def test_a_missing_function_is_missing(tmp_path):
    error = error_of(write(tmp_path, ACTIVATION.replace('function = "tanh"\n', "")))
    assert (error.field, error.message) == ("params.function", "missing (required)")


NARROW = dict(method="pwl", segments=16, input_range=(-0.001, 0.001))   # 16: the spec's default


def test_a_narrow_input_range_is_blamed_not_the_default_segments(tmp_path):
    text = ACTIVATION.replace('method = "lut"\ntable_size = 64', 'method = "pwl"').replace(
        "SQ(3,5)", "SQ(6,10)") + "input_range = [-0.001, 0.001]\n"
    error = error_of(write(tmp_path, text))
    assert error.field == "params.input_range"
    assert error.message == str(plan_error(plan_activation, "tanh", SQ(6, 10), SQ(1, 15),
                                           **NARROW))


@pytest.mark.parametrize("parameter, extra, field", [
    ("segments", "input_range = [-1, 1]\n", "params.input_range"),   # a default vs. a set field
    ("segments", "input_range = [-1, 1]\nsegments = 8\n", "params.segments"),
    ("segments", "", "params.segments"),
    ("out_format", "", "params.out_format"),
    ("x", "", "params.function"),           # an internal name: the kind's fallback
    (None, "", "params.function"),          # no parameter at all: the fallback too
])
def test_plan_errors_go_to_the_field_of_their_parameter(tmp_path, monkeypatch, parameter,
                                                        extra, field):
    from hwnn.spec import layers as spec
    from hwnn.checks import ParameterValueError

    def refuse(*args, **kwargs):
        if parameter is None:
            raise ValueError("no parameter")
        raise ParameterValueError(parameter, f"{parameter} is bad")
    monkeypatch.setattr(spec, "plan_activation", refuse)
    text = ACTIVATION.replace('method = "lut"\ntable_size = 64', 'method = "pwl"') + extra
    error = error_of(write(tmp_path, text))
    assert (error.field, error.message) == (
        field, "no parameter" if parameter is None else f"{parameter} is bad")


def test_weight_parameters_are_the_weights_field(spec_dir, monkeypatch):
    from hwnn.spec import layers as spec
    from hwnn.checks import ParameterTypeError

    def refuse(*args, **kwargs):
        raise ParameterTypeError("bias", "bias must hold real numbers, not dtype complex128")
    monkeypatch.setattr(spec, "plan_dense", refuse)
    error = error_of(spec_dir / "fc1.toml")
    assert (error.field, error.message) == ("params.weights", "bias must hold real numbers, "
                                                              "not dtype complex128")


def test_python_hints_become_spec_settings():
    from hwnn.spec import _as_toml
    fields = ("symmetric", "saturate_weights")
    assert _as_toml("clamped (pass saturate_weights=True)", fields) == \
        "clamped (set saturate_weights = true)"
    assert _as_toml("symmetric=True, but relu has none", fields) == \
        "symmetric = true, but relu has none"
    assert _as_toml("pass other=False", fields) == "pass other=False"   # not a spec field
