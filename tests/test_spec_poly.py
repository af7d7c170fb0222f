"""The ``activation`` spec kind with methods poly and taylor: fields, defaults and errors."""

import json

import pytest

import numpy as np

from hwnn.cli import main
from hwnn.fixed import SQ
from hwnn.plans.activation import fit_activation, plan_activation
from hwnn.plans.poly import fit_poly
from hwnn.spec import SpecError, load_spec

from test_spec import plan_error

POLY = """\
[core]
kind = "activation"
name = "act"
[params]
function = "tanh"
method = "poly"
in_format = "SQ(3,5)"
out_format = "SQ(1,7)"
"""
TAYLOR = POLY.replace('method = "poly"', 'method = "taylor"')


def load(tmp_path, text):
    (tmp_path / "act.toml").write_text(text)
    return load_spec(tmp_path / "act.toml").plan


def same(a, b):
    """The fields that make two polynomial plans compute the same thing."""
    keys = ("method", "symmetric", "degree", "starts", "origins", "coefficients", "shifts",
            "shift", "multipliers", "centre", "range_start", "range_stop")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


def test_poly_defaults_are_16_uniform_segments_of_degree_2(tmp_path):
    plan = load(tmp_path, POLY)
    want = plan_activation("tanh", SQ(3, 5), SQ(1, 7), method="poly", segments=16, degree=2,
                           breakpoints="uniform", multipliers="dsp")
    assert same(plan, want) and plan.degree == 2 and plan.uniform


def test_poly_fields_reach_the_plan(tmp_path):
    text = POLY + ('segments = 6\ndegree = 3\nbreakpoints = "optimal"\nmultipliers = "lut"\n'
                   'symmetric = true\ninput_range = [-3, 3]\n')
    plan = load(tmp_path, text)
    want = plan_activation("tanh", SQ(3, 5), SQ(1, 7), method="poly", segments=6, degree=3,
                           breakpoints="optimal", multipliers="lut", symmetric=True,
                           input_range=(-3.0, 3.0))
    assert same(plan, want) and plan.multipliers == "lut" and not plan.uniform


def test_taylor_defaults_and_fields(tmp_path):
    plan = load(tmp_path, TAYLOR)
    assert same(plan, plan_activation("tanh", SQ(3, 5), SQ(1, 7), method="taylor", order=3))
    assert plan.order == 3 and plan.centre == 0.0
    text = TAYLOR + 'order = 5\ncentre = 0.5\nmultipliers = "lut"\ninput_range = [-1, 2]\n'
    plan = load(tmp_path, text)
    want = plan_activation("tanh", SQ(3, 5), SQ(1, 7), method="taylor", order=5, centre=0.5,
                           multipliers="lut", input_range=(-1.0, 2.0))
    assert same(plan, want) and plan.centre == 0.5


def test_max_error_fits_poly_and_taylor(tmp_path):
    plan = load(tmp_path, POLY + "max_error = 0.01\ndegree = 1\n")
    assert same(plan, fit_poly("tanh", SQ(3, 5), SQ(1, 7), 0.01, degree=1))
    assert plan.error.max_abs <= 0.01 and plan.degree == 1
    plan = load(tmp_path, POLY + 'max_error = "faithful"\ndegree = 2\n')
    assert plan.error.faithful
    plan = load(tmp_path, TAYLOR + "max_error = 0.1\n")
    assert plan.error.max_abs <= 0.1 and plan.method == "taylor"


@pytest.mark.parametrize("text, field, message", [
    (POLY + "degree = 4\n", "params.degree", "must be between 1 and 3, not 4"),
    (POLY + "degree = 2.0\n", "params.degree", "must be an integer, not 2.0"),
    (POLY + "segments = 0\n", "params.segments", "must be at least 1, not 0"),
    (POLY + 'breakpoints = "even"\n', "params.breakpoints",
     "must be one of uniform | optimal, not 'even'"),
    (POLY + 'multipliers = "dsps"\n', "params.multipliers",
     "must be one of dsp | lut, not 'dsps'"),
    (POLY + "order = 3\n", "params.order", "applies to method taylor, not 'poly'"),
    (POLY + "centre = 0\n", "params.centre", "applies to method taylor, not 'poly'"),
    (POLY + 'slopes = "pot"\n', "params.slopes", "applies to method pwl, not 'poly'"),
    (POLY + "table_size = 64\n", "params.table_size", "applies to method lut, not 'poly'"),
    (POLY + "segments = 8\nmax_error = 0.01\n", "params.max_error",
     "give either max_error (fit the cheapest plan) or segments, not both"),
    (POLY + "max_error = true\n", "params.max_error",
     "must be a number or \"faithful\", not True"),
    (POLY + 'max_error = "exact"\n', "params.max_error",
     "must be a number or \"faithful\", not 'exact'"),
    (POLY + "max_error = -1\n", "params.max_error",
     str(plan_error(fit_poly, "tanh", SQ(3, 5), SQ(1, 7), -1.0))),
    (POLY + "symmetric = 1\n", "params.symmetric", "must be true or false, not 1"),
    (POLY + "input_range = [1]\n", "params.input_range",
     "must be a pair of numbers [low, high], not [1]"),
    (POLY + "segments = 7\n", "params.segments",
     "a symmetric plan has an even number of segments (each stored piece serves both signs), "
     "not 7; set symmetric = false for an odd count"),
    (TAYLOR + "order = 10\n", "params.order", "must be between 1 and 9, not 10"),
    (TAYLOR + 'centre = "0"\n', "params.centre", "must be a number, not '0'"),
    (TAYLOR + "centre = 0.01\n", "params.centre",
     str(plan_error(plan_activation, "tanh", SQ(3, 5), SQ(1, 7), method="taylor",
                    centre=0.01))),
    (TAYLOR + "centre = 2\ninput_range = [-1, 1]\n", "params.centre",
     str(plan_error(plan_activation, "tanh", SQ(3, 5), SQ(1, 7), method="taylor", centre=2.0,
                    input_range=(-1.0, 1.0)))),
    (TAYLOR + "segments = 4\n", "params.segments", "applies to method pwl or poly, not "
                                                   "'taylor'"),
    (TAYLOR + 'breakpoints = "uniform"\n', "params.breakpoints",
     "applies to method pwl or poly, not 'taylor'"),
    (TAYLOR + "degree = 2\n", "params.degree", "applies to method poly, not 'taylor'"),
    (TAYLOR + "order = 3\nmax_error = 0.1\n", "params.max_error",
     "give either max_error (fit the cheapest plan) or order, not both"),
    (TAYLOR + "max_error = 1e-9\n", "params.max_error",
     str(plan_error(fit_activation, "tanh", SQ(3, 5),
                    SQ(1, 7), 1e-9, method="taylor"))),
    (POLY.replace('"poly"', '"pwl"') + "degree = 2\n", "params.degree",
     "applies to method poly, not 'pwl'"),
    (POLY.replace('"poly"', '"pwl"') + 'multipliers = "lut"\n', "params.multipliers",
     "applies to method poly or taylor, not 'pwl'"),
    (POLY.replace('"poly"', '"pwl"') + 'max_error = "faithful"\n', "params.max_error",
     "\"faithful\" applies to method poly or taylor, not 'pwl'; give a number"),
    (POLY.replace('method = "poly"', 'method = "exact"').replace("tanh", "relu")
     + "input_range = [0, 1]\n", "params.input_range",
     "applies to method lut, pwl, poly or taylor, not 'exact'"),
])
def test_poly_and_taylor_field_errors(tmp_path, text, field, message):
    (tmp_path / "act.toml").write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "act.toml")
    assert info.value.field == field
    assert str(info.value) == f"{tmp_path / 'act.toml'}: {field}: {message}"


@pytest.mark.parametrize("text", [POLY + "segments = 8\n",
                                  TAYLOR + 'order = 5\nmultipliers = "lut"\n'])
def test_hwnn_plan_prints_a_polynomial_plan(tmp_path, capsys, text):
    (tmp_path / "act.toml").write_text(text)
    plan = load_spec(tmp_path / "act.toml").plan
    assert main(["plan", str(tmp_path / "act.toml")]) == 0
    lines = capsys.readouterr().out.splitlines()
    shown = {line.split()[0]: line.split(None, 1)[1] for line in lines if "  " in line
             and not line.startswith(("guaranteed", "complexity"))}
    assert shown["method"] == plan.method and shown["degree"] == str(plan.degree)
    assert shown["coefficient_bits"] == str(plan.cost()["coefficient_bits"])
    assert shown["breakpoints"] == str([float(b) for b in plan.breakpoints])
    error = plan.error
    assert (f"guaranteed max error {error.max_abs:.6g} ({error.max_ulp:.4g} output ulp) at input "
            f"{error.at_input:.6g} (code {error.at_code})") in "\n".join(lines)
    nonzero = sum(1 for k in (*plan.shifts, plan.shift) if k)
    comparisons = 0 if plan.uniform else plan.stored_pieces - 1
    assert lines[-1] == (f"complexity per input vector: RM {plan.degree}, BoP 0, NABS "
                         f"{plan.degree + nonzero} ({plan.degree} additions, {nonzero} shifts), "
                         f"{comparisons} comparisons")
    assert main(["plan", "--json", str(tmp_path / "act.toml")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["method"] == plan.method and info["error"] == plan.error.describe()
    assert info["shifts"] == list(plan.shifts) and info["metrics"]["rm"] == plan.degree


@pytest.mark.parametrize("text", [POLY + 'max_error = "faithful"\n',
                                  TAYLOR + "order = 4\ncentre = -0.5\n"])
def test_hwnn_sim_exhaustive_is_bit_exact_and_the_stated_bound_holds(tmp_path, capsys, text):
    """What a user checks: every input code through ``hwnn sim --exhaustive`` against the
    reference, then the outputs against float64 by this test's own code: the stated maximum
    error holds on every code and is reached."""
    spec = tmp_path / "act.toml"
    spec.write_text(text)
    out = tmp_path / "codes.npy"
    assert main(["sim", str(spec), "--exhaustive", "--codes", str(out)]) == 0
    assert "bit-exact" in capsys.readouterr().out
    plan = load_spec(spec).plan
    fin, fout = plan.in_format, plan.out_format
    # --exhaustive sends every input code in ascending order.
    x = (np.arange(1 << fin.width) - (1 << (fin.width - 1))) * 2.0 ** -fin.f
    y = np.load(out).ravel() * 2.0 ** -fout.f
    error = np.abs(y - np.tanh(x))
    assert error.max() == plan.error.max_abs
