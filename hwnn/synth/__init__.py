"""Synthesis with the YoWASP yosys/nextpnr: resource counts, fit and Fmax of Amaranth designs.

``synthesize(core, "ice40-up5k", fmax=True)`` counts the core's LUTs, carries, flip-flops, DSP
and block-RAM cells with yosys and times it with nextpnr inside a registered harness;
``format_table`` prints several reports side by side.
"""

from .harness import RegisteredHarness
from .report import SynthReport, format_table
from .run import coarse_cells, synthesize, synthesize_rtlil
from .targets import TARGETS, Target, get_target
from .toolchain import ToolError, ToolTimeout, tool_env, tool_path

__all__ = [
    "coarse_cells", "synthesize", "synthesize_rtlil", "SynthReport", "format_table", "TARGETS", "Target",
    "get_target", "RegisteredHarness", "tool_path", "tool_env", "ToolError",
    "ToolTimeout",
]
