"""Export a core as Verilog and RTLIL, with a JSON manifest that lets other tools drive it.

Top-level ports keep Amaranth's stream names (``clk``, ``rst``, ``i__payload``, ``i__valid``,
``i__ready``, ``o__payload``, ``o__valid``, ``o__ready``); vector payloads are packed with element
0 in the least significant bits. ``rst`` is synchronous and active high.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from amaranth.back import rtlil, verilog
from amaranth.hdl import Shape
from amaranth.lib import data, wiring

from . import __version__
from .cores._component import ports as component_ports

__all__ = ["port_table", "manifest", "export", "check_module_name"]

# Yosys's Verilog backend writes expressions whose operands are narrower than their context and
# relies on Verilog's (well-defined) context extension; Verilator's lint flags each as WIDTH.
_VERILOG_PREAMBLE = ("// Verilog written by hwnn from Amaranth; widths follow Verilog context "
                     "rules on purpose.\n/* verilator lint_off WIDTH */\n")

_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_module_name(name) -> str:
    """``name`` if it is a legal Verilog module name, else ``ValueError``/``TypeError``."""
    if not isinstance(name, str):
        raise TypeError(f"Module name must be a string, not {name!r}")
    if not _MODULE_NAME.match(name):
        raise ValueError(f"Module name must be a Verilog identifier (letters, digits, _; not "
                         f"starting with a digit), not {name!r}")
    return name


def _shape_info(shape) -> dict:
    if isinstance(shape, data.ArrayLayout):
        elem = Shape.cast(shape.elem_shape)
        return {"width": shape.size, "elements": shape.length, "element_width": elem.width,
                "element_signed": elem.signed}
    if isinstance(shape, data.Layout):
        return {"width": shape.size,
                "fields": {name: _shape_info(field.shape) for name, field in shape}}
    shape = Shape.cast(shape)
    return {"width": shape.width, "signed": shape.signed}


def port_table(core: wiring.Component) -> list[dict]:
    """The top-level ports of ``core`` as exported: name, direction, width and layout."""
    ports = [{"name": "clk", "direction": "in", "width": 1},
             {"name": "rst", "direction": "in", "width": 1}]
    exported = component_ports(core)
    for path, member in core.signature.members.flatten():
        name = "__".join(str(part) for part in path)
        if not member.is_port or name not in exported:
            continue             # a constant (an always_ready stream's ready) is no port
        entry = {"name": name,
                 "direction": "in" if member.flow == wiring.In else "out"}
        entry.update(_shape_info(member.shape))
        ports.append(entry)
    return ports


def manifest(core: wiring.Component, name: str) -> dict:
    """What an integrator needs: ports, timing (latency, ii), formats and parameters."""
    describe = getattr(core, "describe", None)
    return {
        "module": name,
        "generator": f"hwnn {__version__}",
        "clock": {"port": "clk", "edge": "rising"},
        "reset": {"port": "rst", "kind": "synchronous", "active": "high"},
        "latency": getattr(core, "latency", None),
        "ii": getattr(core, "ii", None),
        "ports": port_table(core),
        "core": describe() if describe else {"class": type(core).__name__},
    }


def export(core: wiring.Component, name: str, out_dir, *, formats=("verilog", "rtlil")) -> dict:
    """Write ``<name>.v``, ``<name>.il`` and ``<name>.json`` for ``core`` into ``out_dir``.

    Returns a dict from ``"verilog"``, ``"rtlil"`` and ``"manifest"`` to the written paths.

    Raises
    ------
    ValueError
        ``name`` is not a Verilog identifier, or ``formats`` names an unknown format.
    """
    check_module_name(name)
    unknown = set(formats) - {"verilog", "rtlil"}
    if unknown:
        raise ValueError(f"formats may contain 'verilog' and 'rtlil', not {sorted(unknown)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    info = manifest(core, name)  # before conversion, which marks the core as used
    written = {}
    if "verilog" in formats:
        path = out_dir / f"{name}.v"
        path.write_text(_VERILOG_PREAMBLE + verilog.convert(core, name=name, emit_src=False,
                                                            ports=component_ports(core)))
        written["verilog"] = path
    if "rtlil" in formats:
        path = out_dir / f"{name}.il"
        path.write_text(rtlil.convert(core, name=name, emit_src=False,
                                      ports=component_ports(core)))
        written["rtlil"] = path
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(info, indent=2) + "\n")
    written["manifest"] = path
    return written
