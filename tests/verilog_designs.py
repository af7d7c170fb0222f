"""Small designs of every core kind hwnn exports, with vectors from their references.

Shared by the tests that take exported Verilog through other tools (Icarus Verilog, Verilator,
stock yosys scripts). Every design is built as a user builds it, from a spec (except
``requantize``, ``elementwise`` and ``folded_mac``, which have no spec kind), and kept small so the tools run
in seconds.
"""

import shutil

import numpy as np
import pytest
from amaranth.lib import data

from hwnn.cores.elementwise import Elementwise
from hwnn.cores.mac import FoldedMac, Multiply
from hwnn.cores.requantize import Requantize
from hwnn.export import export
from hwnn.fixed import SQ, Overflow, Rounding, requantize
from hwnn.plans.dense import plan_dense
from hwnn.plans.elementwise import plan_elementwise
from hwnn.ref.dense import dense
from hwnn.ref.elementwise import elementwise
from hwnn.sim import make_vectors
from hwnn.spec import design_from_dict
from hwnn.testbench import write_testbench

_LAYER = {"in_format": "SQ(1,7)", "weight_format": "SQ(1,7)", "out_format": "SQ(3,6)",
          "weights": "w.npz", "saturate_weights": True}

#: Spec ``params`` of each kind (``None``: built without a spec).
PARAMS = {
    "dense_mult": {"kind": "dense", **_LAYER, "arith": "mult", "parallelism": 2},
    "dense_csd": {"kind": "dense", **_LAYER, "arith": "csd", "pipeline": 1},
    "dense_mcm": {"kind": "dense", **_LAYER, "arith": "mcm", "always_ready": True},
    "shift_mac": {"kind": "shift_mac", **_LAYER, "weight_terms": 2, "parallelism": 3},
    "lut": {"kind": "activation", "function": "sigmoid", "method": "lut",
            "in_format": "SQ(3,4)", "out_format": "UQ(0,6)", "lanes": 2},
    "pwl": {"kind": "activation", "function": "tanh", "method": "pwl", "segments": 6,
            "in_format": "SQ(3,5)", "out_format": "SQ(1,6)", "lanes": 2},
    "exact": {"kind": "activation", "function": "hard_sigmoid", "in_format": "SQ(4,3)",
              "out_format": "UQ(1,5)"},
    "poly": {"kind": "activation", "function": "tanh", "method": "poly", "segments": 6,
             "degree": 2, "in_format": "SQ(3,5)", "out_format": "SQ(1,6)", "lanes": 2},
    "taylor": {"kind": "activation", "function": "sigmoid", "method": "taylor", "order": 3,
               "centre": 0.5, "multipliers": "lut", "in_format": "SQ(3,5)",
               "out_format": "UQ(0,7)"},
    "requantize": None,
    "elementwise": None,
    "folded_mac": None,
}

#: Kinds whose testbench runs (it drives ``i`` and ``o``), and all exported kinds: the
#: elementwise join has two input streams, ``i_a`` and ``i_b``.
KINDS = tuple(PARAMS)
ALL_KINDS = KINDS + ("elementwise_join",)


def _rows(stream, codes):
    """Codes ``(n, lanes)`` as ``stream``'s payload takes them (1-D for a scalar payload)."""
    vector = isinstance(stream.signature.members["payload"].shape, data.ArrayLayout)
    return codes if vector else codes[:, 0]


def build(kind, directory, vectors=40):
    """``(core, x_rows, y_rows)`` for ``kind``: a fresh core and payload rows from its reference
    (``directory`` receives the weights file a spec reads; no rows for the elementwise join)."""
    params = PARAMS.get(kind)
    if kind == "requantize":
        core = Requantize(SQ(4, 4), SQ(2, 2), Rounding.HALF_EVEN, Overflow.SAT)
        x = make_vectors(SQ(4, 4), 1, vectors, seed=5)[:, 0]
        return core, x, requantize(x, SQ(4, 4), SQ(2, 2), Rounding.HALF_EVEN, Overflow.SAT)
    if kind == "folded_mac":
        # With a weight port, which the testbench holds idle: the plan's weights stay.
        rng = np.random.default_rng(3)
        plan = plan_dense(rng.uniform(-1, 1, (3, 4)), rng.uniform(-0.5, 0.5, 3),
                          in_format=SQ(1, 7), weight_format=SQ(1, 7), out_format=SQ(3, 6))
        x = make_vectors(SQ(1, 7), 4, vectors, seed=5)
        core = FoldedMac(plan, Multiply(plan.in_format, plan.weight_format), parallelism=2,
                         weight_port=True)
        return core, x, dense(plan, x)
    if kind.startswith("elementwise"):
        constant = [-100, 77] if kind == "elementwise" else None
        plan = plan_elementwise("mul", SQ(1, 7), SQ(1, 7), SQ(2, 6), lanes=2, constant=constant)
        x = make_vectors(SQ(1, 7), 2, vectors, seed=5)
        return Elementwise(plan), x, (elementwise(plan, x) if constant else None)
    params = dict(params)
    directory.mkdir(parents=True, exist_ok=True)
    kind_name = params.pop("kind")
    if "weights" in params:
        rng = np.random.default_rng(len(kind))
        np.savez(directory / "w.npz", weight=rng.uniform(-1, 1, (3, 4)),
                 bias=rng.uniform(-0.5, 0.5, 3))
    design = design_from_dict({"core": {"kind": kind_name, "name": kind}, "params": params},
                              base_dir=directory)
    core = design.build()
    x = make_vectors(design.in_format, design.in_lanes, vectors, seed=5)
    y = np.asarray(design.reference(x)).reshape(len(x), design.out_lanes)
    return core, _rows(core.i, x), _rows(core.o, y)


def write(kind, directory, name="dut_core", vectors=40):
    """Export ``kind`` as module ``name`` with its testbench into ``directory``; the core."""
    core, x, y = build(kind, directory, vectors)
    export(core, name, directory)
    write_testbench(core, name, x, y, directory)
    return core


def needs(*tools):
    """Skip unless every one of ``tools`` (system programs pip does not install) is on PATH."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} (a system "
                                                    f"tool that pip does not install)")
