"""Build a bitstream for a board: board top, the platform's build script, a timing report.

:func:`build_board` elaborates :class:`~hwnn.boards.top.BoardTop` around a device with the
amaranth-boards platform's own ``prepare``, then runs the commands of the build script it wrote
(``build_<name>.json``: yosys, nextpnr, icepack/ecppack) one by one with the YoWASP tools of
this interpreter, by absolute path (:func:`hwnn.synth.toolchain.run_tool`), so nothing on PATH is
needed; each tool's output goes to ``<name>.<tool>.log``. nextpnr writes a JSON report
(``--report``; ``--timing-allow-fail`` turns a missed clock into a number), from which the
result takes the utilization and the Fmax of the ``sync`` clock.

Bitstreams are written uncompressed: an uncompressed iCE40 or ECP5 bitstream has a size fixed
by its part (:data:`BITSTREAM_BYTES`), which the build checks, so a wrong part or a truncated
file is caught here and not on the board. Both ECP5 platforms ask ecppack for ``--compress``;
hwnn leaves it out (:data:`hwnn.boards.platforms.BOARDS` ``overrides``). The price is load
time: a 25F bitstream is about 0.6 MB, an 85F one 1.9 MB, a second or two over JTAG.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from numbers import Rational
from pathlib import Path
from typing import Callable

from ..progress import progress_bar
from ..synth.report import parse_pnr_report
from ..synth.targets import get_target
from ..synth.toolchain import ToolError, log_tail, run_tool
from .bridge import DEFAULT_BAUD, UartBridge, design_id
from .platforms import Board, get_board
from .pll import clock_hz, find_pll, format_mhz
from .top import BoardTop, check_device
from .uart import baud_divisor

__all__ = ["BoardBuild", "BitstreamError", "ProgramError", "ProgrammerNotFound",
           "ICE40_BITSTREAM_BYTES", "ECP5_FRAME_BYTES", "ECP5_EBR_BYTES",
           "build_board", "build_design", "build_overrides", "check_bitstream",
           "find_programmer", "format_report", "plan_clock", "program"]

#: Size in bytes of an uncompressed iCE40 bitstream per part (``platform.device``): icepack
#: writes every configuration and block-RAM bank whatever the design uses (measured; the UP5K
#: figure is the one iCE40 UltraPlus flash images are known by).
ICE40_BITSTREAM_BYTES = {"iCE40UP5K": 104090}

#: ECP5: bytes of the configuration frames and commands of an uncompressed bitstream per part
#: (measured from ecppack, which writes every frame of the part), and the number of block RAMs.
#: To them ecppack adds a header, ``FF 00 "Part: <part>" 00 FF``, and 2318 bytes per block RAM
#: whose contents the design initializes (address and write commands, 256 frames of 9 bytes,
#: a CRC: prjtrellis libtrellis/src/Bitstream.cpp, ``serialise_chip``).
ECP5_FRAME_BYTES = {"LFE5U-25F": (582340, 56), "LFE5U-85F": (1927696, 208)}
ECP5_EBR_BYTES = 2318

Progress = Callable[[str], None] | None


class BitstreamError(RuntimeError):
    """The bitstream is missing or does not have the size its part's bitstreams have."""


class ProgramError(RuntimeError):
    """The board's programmer failed."""


class ProgrammerNotFound(ProgramError):
    """No programmer for the board is installed (the message names the tools and packages)."""


@dataclass(frozen=True)
class BoardBuild:
    """The result of :func:`build_board`.

    Attributes
    ----------
    board : str
        The board name.
    part : str
        FPGA part and package.
    name : str
        Top module and file stem.
    out_dir : Path
    bitstream : Path
        ``<name>.bin`` (iCE40) or ``<name>.bit`` (ECP5).
    bitstream_bytes : int
    pnr_report : Path
        nextpnr's JSON report.
    text_report, json_report : Path
        This build's report (:func:`format_report`) as text and JSON.
    requested_hz, clock_hz : Fraction
        The requested and the achieved ``sync`` clock.
    pll : dict or None
        The PLL's primitive and parameters, None when the oscillator drives ``sync``.
    fmax_mhz : float
        nextpnr's achieved Fmax of the ``sync`` clock.
    timing_met : bool
        Whether ``fmax_mhz`` reaches the achieved clock.
    utilization : dict
        nextpnr's ``{"used", "available"}`` per cell type.
    seed : int
        nextpnr's placement seed.
    seconds : float
        Wall-clock time of the tool runs.
    """
    board: str
    part: str
    name: str
    out_dir: Path
    bitstream: Path
    bitstream_bytes: int
    pnr_report: Path
    text_report: Path
    json_report: Path
    requested_hz: Fraction
    clock_hz: Fraction
    pll: dict | None
    fmax_mhz: float
    timing_met: bool
    utilization: dict
    seed: int
    seconds: float

    def to_dict(self) -> dict:
        """A JSON-serializable dict (paths as strings, clocks in Hz as floats)."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, Path):
                data[key] = str(value)
            elif isinstance(value, Fraction):
                data[key] = float(value)
        return data


def plan_clock(board, clock_mhz=None, *, parameter: str = "clock"):
    """Check ``board`` and the requested clock; returns ``(Board, pll, requested_hz, clock_hz)``.

    ``clock_mhz`` (MHz: an int, Fraction or float; None: the board's ``default_clock_hz``) becomes the exact
    requested frequency in Hz; ``pll`` is :func:`~hwnn.boards.pll.find_pll`'s setting (None: no
    PLL) and ``clock_hz`` the achieved frequency; ``parameter`` names the clock in errors (the
    CLI says ``--clock``). Call it before anything slow.

    Raises
    ------
    TypeError
        ``board`` or ``clock_mhz`` has the wrong type.
    ValueError
        Unknown board (the message lists the boards), or a clock the board's PLL cannot make
        (the message names the nearest achievable frequencies).
    """
    board = get_board(board)
    if clock_mhz is None:
        requested = Fraction(board.default_clock_hz)
    else:
        if isinstance(clock_mhz, bool) or not isinstance(clock_mhz, (Rational, float)):
            raise TypeError(f"{parameter} must be a frequency in MHz (a number), not "
                            f"{clock_mhz!r}")
        if isinstance(clock_mhz, float) and math.isfinite(clock_mhz):
            # The decimal the user wrote (36.1), not its binary neighbour (36.10000000000000142).
            clock_mhz = Fraction(repr(clock_mhz))
        requested = clock_hz(clock_mhz * 1_000_000 if isinstance(clock_mhz, Rational)
                             else clock_mhz, parameter)
    pll = find_pll(board.family, board.oscillator_hz, requested, parameter=parameter)
    return board, pll, requested, (Fraction(board.oscillator_hz) if pll is None
                                   else pll.output_hz)


def build_design(design, board, *, clock_mhz=None, baud: int = DEFAULT_BAUD, out_dir,
                 seed: int = 1, progress: Progress = None) -> BoardBuild:
    """Build a bitstream of a spec's core behind the UART bridge for ``board``.

    ``design`` is a loaded spec (:class:`hwnn.spec.Design`: its ``build()`` makes the core and
    its ``name`` names the files); the device is
    ``UartBridge(design.build(), clock_hz=..., baud=baud, design_id=...)`` at the achieved
    clock, reporting the core's :func:`~hwnn.boards.bridge.design_id`. The other parameters,
    the result and the errors are :func:`build_board`'s.

    Raises
    ------
    ValueError
        ``baud`` is not a positive integer or the achieved clock cannot make it within the
        UART's tolerance (and see :func:`build_board`).
    """
    if isinstance(baud, bool) or not isinstance(baud, int) or baud <= 0:
        raise ValueError(f"baud must be a positive integer, not {baud!r}")
    # The baud rate the achieved clock cannot make is refused before any core is built.
    baud_divisor(round(plan_clock(board, clock_mhz)[3]), baud)
    identity = design_id(design.build())

    def device(clock_hz: int):
        return UartBridge(design.build(), clock_hz=clock_hz, baud=baud, design_id=identity)
    return build_board(device, board, clock_mhz=clock_mhz, out_dir=out_dir, name=design.name,
                       seed=seed, progress=progress)


def build_overrides(board, report: str, seed: int) -> dict[str, str]:
    """The template overrides hwnn gives ``board``'s ``platform.prepare``.

    The board's own (ecppack options without ``--compress``); the synthesis options of its
    :data:`hwnn.synth.TARGETS` entry, so a board build maps logic as ``hwnn synth`` does (the
    platform's bare ``synth_ice40`` would leave the UP5K's DSPs unused and time with generic
    delays); nextpnr's JSON report ``report``, ``--timing-allow-fail`` and ``--seed``; and
    the tools' full output (``verbose``), which goes to the log files.
    """
    board = get_board(board)
    target = get_target(board.target)
    return {**board.overrides, "verbose": True,
            "synth_opts": " ".join((*target.synth_args, *target.dsp_args)),
            "nextpnr_opts": f"--report {report} --timing-allow-fail --seed {seed}"}


def _check_name(name) -> str:
    if not isinstance(name, str) or not name.isidentifier() or not name.isascii():
        raise ValueError(f"name must be an identifier of letters, digits and _, not {name!r}")
    return name


def build_board(device_factory: Callable, board, *, clock_mhz=None, out_dir, name: str = "top",
                seed: int = 1, progress: Progress = None) -> BoardBuild:
    """Build a bitstream of ``device_factory(clock_hz)`` inside a :class:`BoardTop` for ``board``.

    Parameters
    ----------
    device_factory : callable
        Called once with the achieved ``sync`` clock in Hz (an int, rounded to the nearest Hz)
        after the clock has been checked; returns the device (a Component with ``rx: In(1)``
        and ``tx: Out(1)``, e.g. the UART bridge, which derives its baud divisor from it).
    board : str or Board
        A name from :data:`~hwnn.boards.platforms.BOARDS`.
    clock_mhz : number or None
        The ``sync`` clock in MHz (None: the board's ``default_clock_hz``).
    out_dir : path-like
        Receives the build files, the tool logs, the bitstream and the reports (created).
    name : str
        Top module and file stem.
    seed : int
        nextpnr's placement seed.
    progress : callable taking one str, optional
        Told what runs (one line per tool).

    Returns
    -------
    BoardBuild
        Also written to ``<name>.report.txt`` and ``<name>.report.json`` in ``out_dir``.

    Raises
    ------
    TypeError, ValueError
        A bad argument: unknown board, unreachable clock (before anything is built), a device
        without ``rx``/``tx``, a bad name or seed.
    ToolError
        A tool failed; the message ends with its log.
    BitstreamError
        The bitstream does not have its part's size.
    """
    board, _, requested, achieved = plan_clock(board, clock_mhz)
    name = _check_name(name)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer, not {seed!r}")
    if not 0 <= seed < 2**31:
        raise ValueError(f"seed must be an integer from 0 to 2**31 - 1, not {seed!r}")
    device = device_factory(round(achieved))
    check_device(device)
    top = BoardTop(device, board, requested)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pnr_report = out_dir / f"{name}.nextpnr.json"
    platform = board.platform()
    plan = platform.prepare(top, name=name, **build_overrides(board, pnr_report.name, seed))
    plan.extract(out_dir)
    commands = json.loads((out_dir / f"build_{name}.json").read_text())["commands"]
    start = time.monotonic()
    with progress_bar(len(commands), f"building for {board.name}", "step") as bar:
        for command in commands:
            tool = command[0]
            try:
                run_tool(tool, command[1:], out_dir, out_dir / f"{name}.{tool}.log",
                         progress, what=f"for {board.name}")
            except ToolError as error:
                if tool != "yosys":
                    raise
                # yosys's own log (-l) keeps the lines its console loses when it stops on an
                # internal error (an assertion inside abc9, say): show its end too.
                report = out_dir / f"{name}.rpt"
                tail = "\n".join(filter(None, [error.tail, log_tail(report)]))
                raise ToolError("yosys", error.returncode, report, tail) from None
            bar.update(1)
    seconds = time.monotonic() - start
    bitstream = out_dir / f"{name}{board.bitstream_suffix}"
    size = check_bitstream(bitstream, board)
    result = parse_pnr_report(pnr_report.read_text())
    fmax = _sync_fmax(pnr_report, float(achieved) / 1_000_000)
    build = BoardBuild(
        board=board.name, part=board.part, name=name, out_dir=out_dir, bitstream=bitstream,
        bitstream_bytes=size, pnr_report=pnr_report,
        text_report=out_dir / f"{name}.report.txt", json_report=out_dir / f"{name}.report.json",
        requested_hz=requested, clock_hz=achieved, pll=_pll_dict(top.pll, board), fmax_mhz=fmax,
        timing_met=fmax * 1_000_000 >= achieved, utilization=result.utilization, seed=seed,
        seconds=round(seconds, 1))
    build.text_report.write_text(format_report(build) + "\n")
    build.json_report.write_text(json.dumps(build.to_dict(), indent=2) + "\n")
    return build


def check_bitstream(path, board) -> int:
    """Check that ``path`` is an uncompressed bitstream for ``board``'s part; returns its size.

    iCE40: exactly :data:`ICE40_BITSTREAM_BYTES` of the part. ECP5: the header names the part
    (``Board.part``), and the size is :data:`ECP5_FRAME_BYTES` plus the header plus a whole
    number of block-RAM initializations (at most the part's block RAMs).

    Raises
    ------
    BitstreamError
        The file is missing, or its header or size is not what the part's bitstreams have.
    ValueError
        Unknown board.
    """
    board = get_board(board)
    path = Path(path)
    if not path.is_file():
        raise BitstreamError(f"the build wrote no bitstream {path}")
    size = path.stat().st_size
    device = board.platform.device
    if board.family == "ice40":
        expected = ICE40_BITSTREAM_BYTES[device]
        if size != expected:
            raise BitstreamError(f"bitstream {path} has {size} bytes, but an {device} "
                                 f"bitstream has {expected}")
        return size
    header = b"\xff\x00Part: " + board.part.encode() + b"\x00\xff"
    with open(path, "rb") as file:
        start = file.read(len(header))
    if start != header:
        raise BitstreamError(f"bitstream {path} does not start with the header of a "
                             f"{board.part} bitstream ({start[:40]!r})")
    frames, ebrs = ECP5_FRAME_BYTES[device]
    extra = size - len(header) - frames
    if extra < 0 or extra % ECP5_EBR_BYTES or extra // ECP5_EBR_BYTES > ebrs:
        raise BitstreamError(
            f"bitstream {path} has {size} bytes, but an uncompressed {board.part} bitstream "
            f"has {len(header) + frames} bytes plus {ECP5_EBR_BYTES} per initialized block RAM "
            f"(up to {ebrs})")
    return size


def _sync_fmax(report: Path, clock_mhz: float) -> float:
    """The Fmax of the ``sync`` clock in nextpnr's report ``report``.

    nextpnr names each clock after a net of its choice (``clk``, ``$glbnet$clk``...), so the
    ``sync`` clock is found by its constraint instead: the clock constrained closest to
    ``clock_mhz``. The other clock, with a PLL, is the oscillator of the power-on timer.
    """
    clocks = json.loads(report.read_text()).get("fmax", {})
    if not clocks:
        raise BitstreamError(f"nextpnr reported no clock in {report}")
    net = min(clocks, key=lambda net: abs(float(clocks[net]["constraint"]) - clock_mhz))
    return round(float(clocks[net]["achieved"]), 2)


def _pll_dict(pll, board: Board) -> dict | None:
    if pll is None:
        return None
    primitive = ("EHXPLLL" if pll.family == "ecp5" else
                 "SB_PLL40_PAD" if board.pll_pad else "SB_PLL40_CORE")
    params = {name: value if isinstance(value, (int, str)) else value.value
              for name, value in pll.parameters().items()}
    return {"primitive": primitive, "input_hz": float(pll.input_hz),
            "vco_hz": float(pll.vco_hz), "parameters": params}


def format_report(build: BoardBuild) -> str:
    """The build as text: board, bitstream, clocks, Fmax, "timing met" or "timing NOT met",
    and nextpnr's utilization of every cell type the design uses."""
    if build.pll is None:
        source = "the board oscillator directly, no PLL"
    else:
        params = build.pll["parameters"]
        shown = ("DIVR", "DIVF", "DIVQ", "FILTER_RANGE") if "DIVR" in params else (
            "CLKI_DIV", "CLKFB_DIV", "CLKOP_DIV", "CLKOP_CPHASE")
        source = (f"{build.pll['primitive']} from {format_mhz(build.pll['input_hz'])}: "
                  + ", ".join(f"{key} {params[key]}" for key in shown)
                  + f", VCO {format_mhz(build.pll['vco_hz'])}")
    verdict = "timing met" if build.timing_met else "timing NOT met"
    relation = ">=" if build.timing_met else "<"
    lines = [
        f"board      {build.board} ({build.part})",
        f"bitstream  {build.bitstream} ({build.bitstream_bytes} bytes)",
        f"clock      requested {format_mhz(build.requested_hz)}, achieved "
        f"{format_mhz(build.clock_hz)} ({source})",
        f"Fmax       {build.fmax_mhz:.2f} MHz (sync clock, after routing, nextpnr seed "
        f"{build.seed})",
        f"{verdict}: Fmax {build.fmax_mhz:.2f} MHz {relation} {format_mhz(build.clock_hz)}",
        "utilization (nextpnr, used/available):",
    ]
    used = {cell: u for cell, u in sorted(build.utilization.items()) if u["used"]}
    width = max((len(cell) for cell in used), default=0)
    for cell, u in used.items():
        share = 100 * u["used"] / u["available"] if u["available"] else 0.0
        lines.append(f"  {cell:{width}}  {u['used']:>6}/{u['available']:<6} {share:5.1f}%")
    return "\n".join(lines)


def find_programmer(board) -> tuple[str, ...]:
    """The first of ``board``'s programmer commands whose tool is on PATH.

    Raises
    ------
    ProgrammerNotFound
        None is installed; the message names each tool and what provides it.
    """
    board = get_board(board)
    for command in board.programmers:
        if shutil.which(command[0]) is not None:
            return command
    missing = "; ".join(f"{tool} (from {package})"
                        for tool, package in board.programmer_packages.items())
    raise ProgrammerNotFound(f"cannot program {board.name}: no programmer on PATH; install "
                             f"{missing}")


def program(build: BoardBuild, board=None, *, progress: Progress = None) -> None:
    """Load ``build``'s bitstream onto ``board`` (default: the board it was built for).

    The OrangeCrab's DFU bootloader wants a DFU suffix: when ``dfu-suffix`` is installed, it is
    added to a copy, ``<name>.dfu``; without it dfu-util warns and loads the plain bitstream.

    Raises
    ------
    ValueError
        ``board`` is not the board of ``build``.
    ProgrammerNotFound
        No programmer for the board is on PATH.
    ProgramError
        The programmer exited with a non-zero status.
    """
    board: Board = get_board(build.board if board is None else board)
    if board.name != build.board:
        raise ValueError(f"the bitstream {build.bitstream} was built for {build.board}, not "
                         f"for {board.name}")
    command = find_programmer(board)
    bitstream = build.bitstream
    if command[0] == "dfu-util":
        suffix_tool = shutil.which("dfu-suffix")
        if suffix_tool is not None:
            bitstream = build.bitstream.with_suffix(".dfu")
            shutil.copyfile(build.bitstream, bitstream)
            subprocess.run([suffix_tool, "-v", "1209", "-p", "5af0", "-a", str(bitstream)],
                           check=True, stdout=subprocess.DEVNULL)
        elif progress is not None:
            progress("note: dfu-suffix is not installed; dfu-util loads the bitstream without a "
                     "DFU suffix (and warns)")
    argv = [part.format(bitstream=bitstream) for part in command]
    if progress is not None:
        progress(" ".join(argv))
    returncode = subprocess.run(argv).returncode
    if returncode != 0:
        raise ProgramError(f"{command[0]} failed with exit status {returncode}")
