"""Every spec (```toml) and Python (```python) block of README.md runs as written."""

import re
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Elaboratable

from hwnn import cli
from hwnn.cores._component import inspected
from hwnn.spec import load_spec

README = (Path(__file__).parent.parent / "README.md").read_text()
BLOCKS = re.findall(r"^```(toml|python)\n(.*?)^```$", README, re.MULTILINE | re.DOTALL)
SPECS = [text for kind, text in BLOCKS if kind == "toml"]
PYTHON = [text for kind, text in BLOCKS if kind == "python"]


def test_every_block_is_collected():
    # A fence the pattern missed (say, indented or unterminated) would go untested silently.
    assert len(SPECS) == README.count("```toml\n") and SPECS
    assert len(PYTHON) == README.count("```python\n") and PYTHON


def name_of(text):
    return re.search(r'^name = "(\w+)"', text, re.MULTILINE).group(1)


def weights_for(spec, directory):
    """A weights file for a spec that names one: random weights inside its weight format. A
    network spec's comment gives its arrays' shapes: ``fc1.weight (16 x 8), fc1.bias``."""
    match = re.search(r'^weights = "([\w.]+)"(.*)$', spec, re.MULTILINE)
    if match:
        rng = np.random.default_rng(0)
        shapes = re.findall(r"(\w+)\.weight \((\d+(?: x \d+)+)\)", match.group(2))
        arrays = {f"{name}.weight": rng.uniform(-0.25, 0.25,
                                                tuple(int(n) for n in shape.split(" x ")))
                  for name, shape in shapes}
        arrays.update({f"{name}.bias": rng.uniform(-0.5, 0.5, int(shape.split(" x ")[0]))
                       for name, shape in shapes if f"{name}.bias" in match.group(2)})
        if not shapes:
            arrays = {"weight": rng.uniform(-0.9, 0.9, (4, 8)),
                      "bias": rng.uniform(-0.5, 0.5, 4)}
        np.savez(directory / match.group(1), **arrays)


@pytest.mark.parametrize("spec", SPECS, ids=[name_of(text) for text in SPECS])
def test_spec_blocks_plan_and_simulate(capsys, tmp_path, spec):
    weights_for(spec, tmp_path)
    path = tmp_path / "spec.toml"
    path.write_text(spec)
    design = load_spec(path)
    assert design.name == name_of(spec)
    assert cli.main(["plan", str(path)]) == 0
    assert cli.main(["sim", str(path), "--vectors", "20"]) == 0
    out = capsys.readouterr().out
    what = "sequences" if design.sequence_length else "vectors"
    assert f"{design.name}: 20 {what} bit-exact (core == reference)" in out


# The tour synthesizes with place-and-route (about 20 s): it runs with the synth tests.
@pytest.mark.parametrize("code", [pytest.param(code, marks=pytest.mark.synth)
                                  if "synthesize(" in code else code for code in PYTHON],
                         ids=[f"python{k}" for k in range(len(PYTHON))])
def test_python_blocks_run(tmp_path, monkeypatch, code):
    monkeypatch.chdir(tmp_path)  # the tour exports into build/
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    for value in namespace.values():  # a reader goes on to use the cores a block shows built
        if isinstance(value, Elaboratable):
            inspected(value)
    if "export(" in code:
        assert (tmp_path / "build" / "fc1.v").is_file()
