"""The ``hwnn`` command: generate, simulate, plan and synthesize cores described by TOML specs.

Exit codes: 0 success; 1 a check failed (simulation mismatch, design does not fit) or a tool
failed; 2 bad usage or a bad spec (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from . import __version__

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A bad command-line argument (reported as one line, exit 2)."""


def progress(message: str) -> None:
    """Progress of long steps goes to stderr, so stdout stays the result."""
    print(f"hwnn: {message}", file=sys.stderr, flush=True)


# --- sim -----------------------------------------------------------------------------------

def _input_codes(design, args):
    """Input codes for ``hwnn sim``: from ``--inputs`` (real values) or generated vectors."""
    from .fixed import Overflow, Rounding, quantize, to_float
    from .sim import make_vectors

    if args.exhaustive:
        if design.in_format.width > 20:
            raise UsageError(f"--exhaustive: {design.in_format} has {design.in_format.width} "
                             f"bits; every code is only simulated up to 20 bits")
        codes = design.in_format.codes()
        return np.repeat(codes[:, None], design.in_lanes, axis=1)
    if args.inputs is None:
        if args.vectors < 1:
            raise UsageError(f"--vectors must be at least 1, not {args.vectors}")
        return make_vectors(design.in_format, design.in_lanes, args.vectors, seed=args.seed)
    try:
        values = np.load(args.inputs, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--inputs {args.inputs}: cannot read a .npy array ({exc})") from None
    if values.ndim == 1 and design.in_lanes == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[1] != design.in_lanes or len(values) == 0:
        raise UsageError(f"--inputs {args.inputs}: need shape (n, {design.in_lanes}) with one "
                         f"row per vector, not {values.shape}")
    if not np.issubdtype(values.dtype, np.number) or not np.all(np.isfinite(values)):
        raise UsageError(f"--inputs {args.inputs}: values must be finite real numbers")
    codes = quantize(values, design.in_format, Rounding.HALF_EVEN, Overflow.SAT)
    changed = int(np.count_nonzero(to_float(codes, design.in_format) != values))
    if changed:
        progress(f"note: {changed} of {values.size} input values are not codes of "
                 f"{design.in_format}; they were rounded half-even and saturated")
    return codes


def _describe_mismatch(design, x, got, want):
    from .fixed import to_float
    vector, lane = np.argwhere(got != want)[0]
    count = int(np.count_nonzero(np.any(got != want, axis=1)))
    return (f"{design.name}: MISMATCH in {count} of {len(x)} vectors; first at vector {vector}, "
            f"output {lane}: core {got[vector, lane]} "
            f"({to_float(got[vector, lane], design.out_format):g}) != reference "
            f"{want[vector, lane]} ({to_float(want[vector, lane], design.out_format):g}); "
            f"input codes {x[vector].tolist()}")


def _check_output_path(option, path):
    """Fail before long work if ``path`` cannot be created (its directory is missing)."""
    if path is not None and not Path(path).resolve().parent.is_dir():
        raise UsageError(f"{option} {path}: directory {Path(path).resolve().parent} does not "
                         f"exist")


def simulate_design(design, x, *, stall=0.0, seed=0, vcd=None):
    """Run a fresh core of ``design`` on input codes ``x``; return (outputs, reference, run, core)."""
    from .sim import run_stream
    core = design.build()
    show = (lambda done, total: progress(f"  {done}/{total} vectors")) if len(x) >= 1000 else None
    # An always_ready output has no backpressure to exercise.
    stall_out = 0.0 if core.o.signature.always_ready else stall
    run = run_stream(core, payload_rows(core, x), stall_in=stall, stall_out=stall_out, seed=seed,
                     vcd=vcd, progress=show)
    want = np.asarray(design.reference(x)).reshape(len(x), design.out_lanes)
    got = run.outputs.reshape(len(x), design.out_lanes)
    return got, want, run, core


def payload_rows(core, x):
    """Rows ``(n, lanes)`` of codes as the core's input payload wants them (1-D for scalars)."""
    from .sim import PayloadCodec
    codec = PayloadCodec.for_shape(core.i.signature.members["payload"].shape)
    return x[:, 0] if codec.lanes is None else x


def cmd_sim(args):
    from .fixed import to_float
    from .spec import load_spec
    design = load_spec(args.spec)
    if not 0 <= args.stall < 1:
        raise UsageError(f"--stall must be a probability in [0, 1), not {args.stall}")
    _check_output_path("--output", args.output)
    _check_output_path("--vcd", args.vcd)
    x = _input_codes(design, args)
    progress(f"simulating {len(x)} vectors through {design.name} (Amaranth simulator)...")
    got, want, run, core = simulate_design(design, x, stall=args.stall, seed=args.seed,
                                           vcd=args.vcd)
    if args.output:
        np.save(args.output, to_float(got, design.out_format))
    if not np.array_equal(got, want):
        print(_describe_mismatch(design, x, got, want))
        return EXIT_FAILED
    print(f"{design.name}: {len(x)} vectors bit-exact (core == reference), {run.cycles} cycles "
          f"with {args.stall:g} stall probability; latency {core.latency} cycles, ii {core.ii}")
    return EXIT_OK


# --- generate / plan -----------------------------------------------------------------------

def cmd_generate(args):
    from .export import export
    from .sim import make_vectors
    from .spec import load_spec
    from .testbench import write_testbench
    design = load_spec(args.spec)
    if args.testbench < 0:
        raise UsageError(f"--testbench must be 0 (none) or a number of vectors, "
                         f"not {args.testbench}")
    core = design.build()
    written = export(core, design.name, args.output)
    # The Verilog testbench drives `i` and `o` only; other inputs (a weight port) would float.
    others = [name for name in core.signature.members if name not in ("i", "o")]
    if args.testbench and others:
        progress(f"note: no testbench written: it drives only i and o, and {design.name} also "
                 f"has {', '.join(others)} (see the manifest)")
    elif args.testbench:
        x = make_vectors(design.in_format, design.in_lanes, args.testbench, seed=args.seed)
        y = np.asarray(design.reference(x)).reshape(len(x), design.out_lanes)
        written.update(write_testbench(core, design.name, payload_rows(core, x),
                                       payload_rows(core, y), args.output))
    for kind, path in written.items():
        print(f"{kind:9} {path}")
    return EXIT_OK


def cmd_plan(args):
    from .spec import load_spec
    from .cores._component import inspected
    design = load_spec(args.spec)
    info = {**inspected(design.build()).describe(), **design.info}
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        error = info.pop("error", None)
        graph = info.pop("graph", None)
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
        saturated = info.get("saturated_weights")
        if saturated:
            print(f"note: {saturated} weights were outside {info['weight_format']} and were "
                  f"saturated")
    return EXIT_OK


# --- synth ---------------------------------------------------------------------------------

def _check_targets(names):
    from .synth import TARGETS
    for name in names:
        if name not in TARGETS:
            raise UsageError(f"--target: unknown target {name!r}; known targets: "
                             f"{', '.join(TARGETS)}")


def synth_reports(build, name, targets, *, fmax, dsp=True, bram=True, keep=None):
    """Synthesize a fresh core from ``build()`` for every target; return the reports."""
    from .synth import TARGETS, synthesize
    reports = []
    for target in targets:
        can_time = fmax and TARGETS[target].place_and_route
        progress(f"synthesizing {name} for {target}"
                 + (" with place-and-route for Fmax" if can_time else "") + "...")
        workdir = Path(keep) / target if keep else None
        reports.append(synthesize(build(), target, name=name, fmax=can_time, dsp=dsp,
                                  bram=bram, workdir=workdir, progress=progress))
    return reports


def cmd_synth(args):
    from .spec import load_spec
    from .synth import format_table
    targets = args.target or ["ice40-up5k"]
    _check_targets(targets)
    _check_output_path("--json", args.json)
    design = load_spec(args.spec)
    reports = synth_reports(design.build, design.name, targets, fmax=args.fmax,
                            dsp=not args.no_dsp, bram=not args.no_bram, keep=args.keep)
    print(format_table(reports))
    if args.json:
        Path(args.json).write_text(json.dumps([r.to_dict() for r in reports], indent=2) + "\n")
        progress(f"wrote {args.json}")
    return EXIT_OK if all(r.fits is not False for r in reports) else EXIT_FAILED


def cmd_demo(args):
    from .demo import run_demo
    return run_demo(Path(args.out), fmax=not args.no_fmax, progress=progress)


# --- parser --------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hwnn",
        description="Quantized neural-network cores for FPGAs on the open toolchain.")
    parser.add_argument("--version", action="version", version=f"hwnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("demo", help="run a built-in layer through generate, sim and synth")
    p.add_argument("--out", default="hwnn-demo", help="output directory (default: hwnn-demo)")
    p.add_argument("--no-fmax", action="store_true", help="skip place-and-route (faster)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("generate", help="write Verilog, RTLIL and a JSON manifest")
    p.add_argument("spec", help="TOML spec file")
    p.add_argument("-o", "--output", default=".", help="output directory (default: .)")
    p.add_argument("--testbench", type=int, default=100, metavar="N",
                   help="also write a self-checking Verilog testbench with N reference "
                        "vectors (default: 100; 0: none)")
    p.add_argument("--seed", type=int, default=0, help="seed of the testbench vectors")
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
    p.add_argument("--output", metavar="FILE.npy", help="save the core's outputs (real values)")
    p.add_argument("--vcd", metavar="FILE", help="write a waveform")
    p.add_argument("--stall", type=float, default=0.2,
                   help="probability of a stall cycle on each side (default: 0.2)")
    p.add_argument("--seed", type=int, default=0, help="seed of vectors and stalls")
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
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit code."""
    from .spec import SpecError
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (SpecError, UsageError) as exc:
        print(f"hwnn: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away; stop quietly as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:  # a path that cannot be read or written: the user's argument
        where = f": {exc.filename}" if exc.filename else ""
        print(f"hwnn: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_USAGE
    except TimeoutError as exc:  # the simulated core stopped moving: a failed check
        print(f"hwnn: error: simulation stalled: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("hwnn: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a tool failure: one line, the log path is in the message
        from .synth import ToolError
        if isinstance(exc, ToolError):
            print(f"hwnn: error: {exc}", file=sys.stderr)
            return EXIT_FAILED
        raise


if __name__ == "__main__":
    sys.exit(main())
