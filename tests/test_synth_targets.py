import subprocess

import pytest

from hwnn.synth import TARGETS, Target, get_target, tool_path

NAMES = ["ice40-up5k", "ice40-hx8k", "ecp5-25f", "ecp5-45f", "ecp5-85f", "xc7", "gowin"]


def test_target_names():
    assert list(TARGETS) == NAMES


@pytest.mark.parametrize("name, luts, dsps, brams", [
    ("ice40-up5k", 5280, 8, 30),
    ("ice40-hx8k", 7680, 0, 32),
    ("ecp5-25f", 24288, 28, 56),
    ("ecp5-45f", 43848, 72, 108),
    ("ecp5-85f", 83640, 156, 208),
])
def test_totals(name, luts, dsps, brams):
    totals = TARGETS[name].totals
    assert (totals["luts"], totals["ffs"], totals["dsps"], totals["brams"]) == \
        (luts, luts, dsps, brams)
    assert TARGETS[name].place_and_route


@pytest.mark.parametrize("name", ["xc7", "gowin"])
def test_estimate_only_targets(name):
    assert TARGETS[name].totals is None and not TARGETS[name].place_and_route


@pytest.mark.parametrize("name, with_dsp, without_dsp", [
    ("ice40-up5k", "synth_ice40 -device u -dsp -top t", "synth_ice40 -device u -top t"),
    ("ice40-hx8k", "synth_ice40 -top t", "synth_ice40 -top t"),
    ("ecp5-25f", "synth_ecp5 -top t", "synth_ecp5 -nodsp -top t"),
    ("xc7", "synth_xilinx -family xc7 -flatten -noiopad -noclkbuf -top t",
     "synth_xilinx -family xc7 -flatten -noiopad -noclkbuf -nodsp -top t"),
    ("gowin", "synth_gowin -noiopads -top t", "synth_gowin -noiopads -nodsp -top t"),
])
def test_synth_command(name, with_dsp, without_dsp):
    assert TARGETS[name].synth_command("t", dsp=True) == with_dsp
    assert TARGETS[name].synth_command("t", dsp=False) == without_dsp
    assert TARGETS[name].synth_command("t", bram=False) == with_dsp.replace(" -top", " -nobram -top")


@pytest.mark.parametrize("name", ["ecp5-25f", "ecp5-45f", "ecp5-85f"])
def test_ecp5_nextpnr_args(name):
    size = name[5:7]
    assert TARGETS[name].nextpnr_args == (f"--{size}k", "--package", "CABGA381",
                                          "--lpf-allow-unconstrained")


@pytest.mark.synth
@pytest.mark.parametrize("name", ["ice40-up5k", "ecp5-25f", "xc7", "gowin"])
def test_every_option_is_in_the_commands_help(name):
    # Guards against a yosys release renaming or dropping a switch we pass.
    target = TARGETS[name]
    help_text = subprocess.run([str(tool_path("yosys")), "-p", f"help {target.synth}"],
                               capture_output=True, text=True, check=True).stdout
    if target.synth == "synth_ecp5":  # a wrapper: its options are documented by synth_lattice
        help_text = subprocess.run([str(tool_path("yosys")), "-p", "help synth_lattice"],
                                   capture_output=True, text=True, check=True).stdout
    for option in {*target.synth_args, *target.dsp_args, *target.nodsp_args}:
        if option.startswith("-"):
            assert f"\n    {option}" in help_text, option


def test_get_target():
    assert get_target("ecp5-45f") is TARGETS["ecp5-45f"]
    assert get_target(TARGETS["xc7"]) is TARGETS["xc7"]
    assert isinstance(hash(TARGETS["ice40-up5k"]), int)
    assert isinstance(TARGETS["gowin"], Target)


def test_get_target_unknown_lists_names():
    with pytest.raises(ValueError, match=r"^Unknown target 'ice99'; valid targets are: "
                                         r"ice40-up5k, ice40-hx8k, ecp5-25f, ecp5-45f, ecp5-85f, "
                                         r"xc7, gowin$"):
        get_target("ice99")


def test_get_target_wrong_type():
    with pytest.raises(TypeError, match=r"^Target must be a target name or a Target, not 5$"):
        get_target(5)
