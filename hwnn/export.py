"""Export a core as Verilog and RTLIL, with a JSON manifest that lets other tools drive it.

Top-level ports keep Amaranth's stream names (``clk``, ``rst``, ``i__payload``, ``i__valid``,
``i__ready``, ``o__payload``, ``o__valid``, ``o__ready``); vector payloads are packed with element
0 in the least significant bits. ``rst`` is synchronous and active high.

Internal names never look like a bit of another wire: Amaranth names the element wires of an
``ArrayLayout`` view ``o__payload[0]``, ``o__payload[1]`` ..., and yosys's abc9 (in ``synth_ice40``
and ``synth_ecp5``, yosys issues #4349 and #4451, still in 0.70) asserts when such a wire meets
the port ``o__payload``, whose bits it names the same way. :func:`safe_names` renames them
(``o__payload__0``), for the exported files and for every design ``hwnn.synth`` runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from amaranth.back import rtlil
# The RTLIL-to-Verilog step of `verilog.convert` (same yosys, same commands), given our RTLIL.
from amaranth.back.verilog import _convert_rtlil_text
from amaranth.hdl import Shape
from amaranth.lib import data, wiring

from . import __version__
from .checks import ParameterTypeError, ParameterValueError
from .cores._component import ports as component_ports

__all__ = ["GENERATOR_LINT_WARNINGS", "VERILOG_KEYWORDS", "check_module_name", "core_rtlil",
           "core_verilog", "export", "manifest", "initial_statements", "port_table", "rtlil_verilog", "safe_names"]

#: Verilator warnings that flag how yosys's Verilog backend writes Amaranth's design, not the
#: hardware, switched off for the exported module and on again after it (so they stay on for
#: files read after it, such as a testbench): WIDTH (operands narrower than their context, relying
#: on Verilog's well-defined context extension), CASEINCOMPLETE (a ``case`` without ``default``
#: after a full assignment of the default value, the way yosys writes a switch or a ROM),
#: UNUSEDSIGNAL (named wires Amaranth keeps for debugging, such as the elements of a vector view,
#: and the unused top bits of yosys's widened intermediate results) and DECLFILENAME (a
#: submodule is a module ``<name>.<submodule>`` in the same file).
GENERATOR_LINT_WARNINGS = ("WIDTH", "CASEINCOMPLETE", "UNUSEDSIGNAL", "DECLFILENAME")

_VERILOG_PREAMBLE = ("// Verilog written by hwnn from Amaranth; widths follow Verilog context "
                     "rules on purpose.\n"
                     + "".join(f"/* verilator lint_off {w} */\n" for w in GENERATOR_LINT_WARNINGS))
_VERILOG_POSTSCRIPT = "".join(f"/* verilator lint_on {w} */\n" for w in GENERATOR_LINT_WARNINGS)

_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: The reserved words of IEEE 1364-2005 (Verilog) and IEEE 1800-2017 (SystemVerilog, a superset),
#: Annex B of each: none may name a module, and Verilator reads every file as SystemVerilog.
VERILOG_KEYWORDS = frozenset("""
    accept_on alias always always_comb always_ff always_latch and assert assign assume automatic
    before begin bind bins binsof bit break buf bufif0 bufif1 byte case casex casez cell chandle
    checker class clocking cmos config const constraint context continue cover covergroup
    coverpoint cross deassign default defparam design disable dist do edge else end endcase
    endchecker endclass endclocking endconfig endfunction endgenerate endgroup endinterface
    endmodule endpackage endprimitive endprogram endproperty endspecify endsequence endtable
    endtask enum event eventually expect export extends extern final first_match for force
    foreach forever fork forkjoin function generate genvar global highz0 highz1 if iff ifnone
    ignore_bins illegal_bins implements implies import incdir include initial inout input inside
    instance int integer interconnect interface intersect join join_any join_none large let
    liblist library local localparam logic longint macromodule matches medium modport module
    nand negedge nettype new nexttime nmos nor noshowcancelled not notif0 notif1 null or output
    package packed parameter pmos posedge primitive priority program property protected pull0
    pull1 pulldown pullup pulsestyle_ondetect pulsestyle_onevent pure rand randc randcase
    randsequence rcmos real realtime ref reg reject_on release repeat restrict return rnmos
    rpmos rtran rtranif0 rtranif1 s_always s_eventually s_nexttime s_until s_until_with
    scalared sequence shortint shortreal showcancelled signed small soft solve specify
    specparam static string strong strong0 strong1 struct super supply0 supply1 sync_accept_on
    sync_reject_on table tagged task this throughout time timeprecision timeunit tran tranif0
    tranif1 tri tri0 tri1 triand trior trireg type typedef union unique unique0 unsigned until
    until_with untyped use uwire var vectored virtual void wait wait_order wand weak weak0 weak1
    while wildcard wire with within wor xnor xor
""".split())


def check_module_name(name) -> str:
    """``name`` if it can name the exported module and its testbench (``<name>_tb``).

    That is a simple Verilog identifier (letters, digits and ``_``, not starting with a digit)
    that is not a reserved word of Verilog or SystemVerilog (:data:`VERILOG_KEYWORDS`). The
    testbench's own signals live inside module ``<name>_tb``, a scope apart from module names,
    so no other name collides with them (checked in Icarus Verilog and Verilator).

    Raises
    ------
    ParameterTypeError
        ``name`` is not a string (parameter ``"name"``).
    ParameterValueError
        ``name`` is not an identifier, or is a keyword (parameter ``"name"``).
    """
    if not isinstance(name, str):
        raise ParameterTypeError("name", f"Module name must be a string, not {name!r}")
    if not _MODULE_NAME.match(name):
        raise ParameterValueError("name", f"Module name must be a Verilog identifier (letters, "
                                          f"digits, _; not starting with a digit), not {name!r}")
    if name in VERILOG_KEYWORDS:
        raise ParameterValueError("name", f"Module name must be a Verilog identifier that is "
                                          f"not a Verilog or SystemVerilog keyword, not {name!r}")
    return name


# An RTLIL token that may hold a name: a quoted string, or a public name (`\` up to whitespace).
_RTLIL_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\\\S+')


def safe_names(text: str) -> str:
    r"""RTLIL ``text`` with every public name that holds ``[`` or ``]`` renamed.

    ``\x[3]`` becomes ``\x__3`` (``\x[3][1]`` becomes ``\x__3__1``), or ``\x__3$<n>`` if the
    design already has that name; every use of the name follows, including a memory cell's
    ``MEMID`` string. No other name and nothing else changes, so the logic is the same.
    """
    taken = {token for token in _RTLIL_TOKEN.findall(text) if not token.startswith('"')}
    renamed = {}

    def rename(name: str) -> str:
        if name not in renamed:
            base = name.replace("[", "__").replace("]", "")
            candidate, suffix = base, 0
            while candidate in taken:
                suffix += 1
                candidate = f"{base}${suffix}"
            taken.add(candidate)
            renamed[name] = candidate
        return renamed[name]

    def substitute(match) -> str:
        token = match.group()
        if not ("[" in token or "]" in token):
            return token
        if not token.startswith('"'):
            return rename(token)
        # A string that spells a name (a MEMID, "\\mem[0]" for \mem[0]) follows the rename.
        name = token[1:-1].replace("\\\\", "\\")
        if name in taken:
            return '"' + rename(name).replace("\\", "\\\\") + '"'
        return token

    return _RTLIL_TOKEN.sub(substitute, text)


# One module of an RTLIL design (its body ends at the first unindented `end`).
_MODULE = re.compile(r"^module .*?^end\n", re.MULTILINE | re.DOTALL)
# A zero-width internal wire (not a port) with the attribute lines that belong to it.
_EMPTY_WIRE = re.compile(r"^((?:[ \t]*attribute .*\n)*)[ \t]*wire width 0 (\\\S+)\n",
                         re.MULTILINE)
_EMPTY_CONNECT = re.compile(r"^[ \t]*connect (\\\S+) \{\s*\}\n", re.MULTILINE)


def _drop_empty_wires(text: str) -> str:
    """RTLIL ``text`` without its zero-width internal wires (each other use becomes ``{ }``).

    Amaranth keeps zero-width signals (the index of a one-entry table), and yosys's Verilog
    backend writes them as ``wire [-1:0]``, which Verilog reads as a two-bit wire (Verilator:
    LITENDIAN). They carry nothing, so dropping them changes no logic.
    """
    def drop(module: re.Match) -> str:
        body = module.group()
        empty = {match.group(2) for match in _EMPTY_WIRE.finditer(body)}
        if not empty:
            return body
        body = _EMPTY_WIRE.sub("", body)
        body = _EMPTY_CONNECT.sub(lambda m: "" if m.group(1) in empty else m.group(), body)
        return _RTLIL_TOKEN.sub(lambda m: "{ }" if m.group() in empty else m.group(), body)

    return _MODULE.sub(drop, text)


def core_rtlil(core: wiring.Component, name: str) -> str:
    """RTLIL of ``core`` as module ``name``, ports as :func:`port_table` lists them, with
    :func:`safe_names` and without zero-width internal wires; no source locations."""
    return safe_names(_drop_empty_wires(rtlil.convert(core, name=name, emit_src=False,
                                                      ports=component_ports(core))))


def core_verilog(core: wiring.Component, name: str) -> str:
    """Verilog of ``core`` as module ``name``, converted by yosys from :func:`core_rtlil`.

    Verilator's ``-Wall`` lint passes except for :data:`GENERATOR_LINT_WARNINGS`, switched off
    inside the file.
    """
    return rtlil_verilog(core_rtlil(core, name))


def rtlil_verilog(rtlil: str) -> str:
    """The Verilog :func:`core_verilog` makes of a core's :func:`core_rtlil` text (the caller
    that already has the RTLIL, to hash it, saves an export)."""
    return (_VERILOG_PREAMBLE + initial_statements(_convert_rtlil_text(rtlil))
            + _VERILOG_POSTSCRIPT)


# A variable declared with a value: `reg [3:0] x = 4'h0;` (yosys's way to write an init value).
_DECLARED_WITH_VALUE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<kind>(?:reg|integer)\b(?: signed)?(?: \[[^\]]*\])?) "
    r"(?P<name>\\\S+ |[A-Za-z_][\w$]*) ?= (?P<value>[^;]+);$", re.M)


def initial_statements(verilog: str) -> str:
    """``verilog`` with every ``reg x = v;`` declaration written as ``reg x; initial x = v;``.

    The same start value in every simulator and in synthesis, but Verilator 5.2x and later
    warn (PROCASSINIT) about a declaration's value on a variable that an ``always`` block
    assigns, and older Verilators reject that warning's name in a ``lint_off``, so the value is
    moved instead of the warning switched off.
    """
    # An escaped name (\\$26 ) keeps the space that ends it; the initial statement's " = "
    # supplies one.
    return _DECLARED_WITH_VALUE.sub(
        lambda m: (f"{m['indent']}{m['kind']} {m['name']};\n"
                   f"{m['indent']}initial {m['name'].rstrip()} = {m['value']};"), verilog)


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
    ParameterTypeError, ParameterValueError
        ``name`` cannot name a module (see :func:`check_module_name`).
    ValueError
        ``formats`` names an unknown format.
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
        path.write_text(core_verilog(core, name))
        written["verilog"] = path
    if "rtlil" in formats:
        path = out_dir / f"{name}.il"
        path.write_text(core_rtlil(core, name))
        written["rtlil"] = path
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(info, indent=2) + "\n")
    written["manifest"] = path
    return written
