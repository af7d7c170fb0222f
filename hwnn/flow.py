"""Run a loaded spec: input vectors, simulation, generation and synthesis.

This is what the ``hwnn`` command and its demo both call: :mod:`hwnn.cli` parses arguments and
prints, :mod:`hwnn.demo` chains the steps. A problem with an argument (an input file that is not
a real-valued array, an output path that is a directory) is a :class:`FlowError`, whose message
is one line naming the command-line option it came from.

Long work shows a progress bar (:func:`hwnn.progress.progress_bar`).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .cores._component import inspected
from .cores._timing import timing_against_model
from .export import export
from .fixed import Format, Overflow, Rounding, quantize, to_float
from .cores.network import layer_builders
from .metrics import layer_metrics, network_metrics
from .progress import BAR_DELAY, _QuietBar, progress_bar  # noqa: F401 (flow's own names)
from .ref.network import network_layers
from .sim import EngineFallback, PayloadCodec, make_vectors, run_stream
from .sim.frames import frame, unframe
from .spec import Design
from .synth import TARGETS, synthesize
from .testbench import write_testbench

__all__ = ["FlowError", "Simulation", "BAR_DELAY", "EXHAUSTIVE_MAX_BITS", "FLOAT64_EXACT_BITS",
           "input_codes", "read_inputs", "check_output_path", "check_values_exact", "simulate",
           "stream_rows", "output_codes",
           "save_values", "save_codes", "generate", "plan_info", "synth_targets",
           "synth_reports", "table_notes", "progress_bar"]

#: ``--exhaustive`` simulates every input code only up to this input width.
EXHAUSTIVE_MAX_BITS = 20

#: A float64 holds every integer of up to 53 bits (its significand), so real output values
#: ``code * 2**-f`` are exact for output formats up to this width.
FLOAT64_EXACT_BITS = 53

Note = Callable[[str], None]


class FlowError(ValueError):
    """A bad argument of a flow step (reported by ``hwnn`` as one line, exit code 2)."""


# --- inputs --------------------------------------------------------------------------------

def input_codes(design: Design, *, vectors: int = 200, inputs=None, exhaustive: bool = False,
                seed: int = 0, note: Note | None = None) -> np.ndarray:
    """Input codes ``(n, in_lanes)`` for a simulation of ``design``.

    ``exhaustive``: every input code once, ascending, the same in all lanes; ``inputs``: real
    values read by :func:`read_inputs`; otherwise ``vectors`` corner and random vectors.

    Raises
    ------
    FlowError
        Too wide a format for ``exhaustive``, ``vectors`` below 1, or a bad ``inputs`` file.
    """
    steps = design.sequence_length
    if steps is not None:  # a network over sequences: n sequences of `steps` steps
        if exhaustive:
            raise FlowError(f"--exhaustive: {design.name} runs over sequences; give --vectors "
                            f"(sequences) or --inputs")
        if inputs is not None:
            return read_inputs(design, inputs, note=note)
        if vectors < 1:
            raise FlowError(f"--vectors must be at least 1, not {vectors}")
        return make_vectors(design.in_format, design.in_lanes, vectors * steps,
                            seed=seed).reshape(vectors, steps, design.in_lanes)
    if exhaustive:
        if design.in_format.width > EXHAUSTIVE_MAX_BITS:
            raise FlowError(f"--exhaustive: {design.in_format} has {design.in_format.width} bits; "
                            f"every code is only simulated up to {EXHAUSTIVE_MAX_BITS} bits")
        codes = design.in_format.codes()
        return np.repeat(codes[:, None], design.in_lanes, axis=1)
    if inputs is not None:
        return read_inputs(design, inputs, note=note)
    if vectors < 1:
        raise FlowError(f"--vectors must be at least 1, not {vectors}")
    return make_vectors(design.in_format, design.in_lanes, vectors, seed=seed)


def _saturated_codes(values: np.ndarray, fmt: Format) -> np.ndarray:
    """``quantize(values, fmt, HALF_EVEN, SAT)`` for any finite float, however large.

    Values beyond the format saturate anyway; clipping them first to one step outside the
    range keeps the scaling by ``2**f`` finite (1e308 · 2^7 would overflow float64).
    """
    step = 2.0 ** -fmt.f
    low, high = fmt.min_int * step - step, fmt.max_int * step + step
    return quantize(np.clip(values, low, high), fmt, Rounding.HALF_EVEN, Overflow.SAT)


def read_inputs(design: Design, path, *, note: Note | None = None) -> np.ndarray:
    """Input codes from a ``.npy`` file of real values, one row per vector, one column per lane.

    Values that are not codes of the input format are rounded half-even and saturated, and
    ``note`` is told how many.

    Raises
    ------
    FlowError
        The file is not a ``.npy`` array, has the wrong shape, or holds something other than
        finite real numbers.
    """
    option = f"--inputs {path}"
    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise FlowError(f"{option}: cannot read a .npy array ({exc})") from None
    if not isinstance(values, np.ndarray):  # np.load opens an .npz archive as an NpzFile
        values.close()
        raise FlowError(f"{option}: is an .npz archive; give one array saved with np.save "
                        f"(.npy)")
    if design.sequence_length is not None:
        shape = (design.sequence_length, design.in_lanes)
        if values.ndim != 3 or values.shape[1:] != shape or len(values) == 0:
            raise FlowError(f"{option}: need shape (sequences, {shape[0]}, {shape[1]}): "
                            f"sequences of {shape[0]} steps of {shape[1]} channels, not "
                            f"{values.shape}")
    else:
        if values.ndim == 1 and design.in_lanes == 1:
            values = values[:, None]
        if values.ndim != 2 or values.shape[1] != design.in_lanes or len(values) == 0:
            raise FlowError(f"{option}: need shape (n, {design.in_lanes}) with one row per "
                            f"vector, not {values.shape}")
    if values.dtype.kind not in "iuf":
        raise FlowError(f"{option}: values must be real numbers (integer or float), not dtype "
                        f"{values.dtype}")
    values = values.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise FlowError(f"{option}: values must be finite real numbers (found inf or nan)")
    codes = _saturated_codes(values, design.in_format)
    changed = int(np.count_nonzero(to_float(codes, design.in_format) != values))
    if changed and note is not None:
        note(f"note: {changed} of {values.size} input values are not codes of "
             f"{design.in_format}; they were rounded half-even and saturated")
    return codes


def check_output_path(option: str, path, *, suffix: str = "") -> Path | None:
    """The file that ``path`` names once ``suffix`` is added (as ``np.save`` adds ``.npy``).

    Checked before long work starts, so a simulation never ends in a failed write.

    Raises
    ------
    FlowError
        ``path`` is a directory, or its directory does not exist.
    """
    if path is None:
        return None
    given = Path(path)
    if given.is_dir():
        raise FlowError(f"{option} {path}: is a directory; give a file name")
    real = given if not suffix or given.name.endswith(suffix) else \
        given.with_name(given.name + suffix)
    if real.is_dir():
        raise FlowError(f"{option} {path}: {real} is a directory; give a file name")
    if not real.resolve().parent.is_dir():
        raise FlowError(f"{option} {path}: directory {real.resolve().parent} does not exist")
    return real


# --- simulation ----------------------------------------------------------------------------

def _payload_rows(core, x: np.ndarray) -> np.ndarray:
    """Rows ``(n, lanes)`` of codes as the core's input payload wants them (1-D for scalars)."""
    codec = PayloadCodec.for_shape(core.i.signature.members["payload"].shape)
    return x[:, 0] if codec.lanes is None else x


@dataclass(frozen=True)
class Simulation:
    """One simulation of a design: its input codes, the core's outputs and the reference's.

    ``core`` is the simulated core (for its ``latency``, ``ii`` and other properties);
    ``cycles`` is how long the run took, ``seconds`` how long it took to simulate.
    """
    design: Design
    core: object
    inputs: np.ndarray
    outputs: np.ndarray
    reference: np.ndarray
    cycles: int
    seconds: float = 0.0   # wall-clock time of the run (a compiled engine's build included)
    engine: str = "pysim"  # the engine that ran it
    framing: str | None = None  # a framed output whose last flags are wrong: what is wrong
    timing: str | None = None   # a network without stalls: its cycles against its model

    @property
    def exact(self) -> bool:
        """The core's outputs equal the reference's, code for code (and, over sequences, the
        outputs end each sequence where the reference's do)."""
        return self.framing is None and bool(np.array_equal(self.outputs, self.reference))

    def mismatch(self) -> str:
        """One line describing the first differing output (for a simulation that is not exact)."""
        if self.framing is not None:
            return f"{self.framing}: MISMATCH in the framing of the output sequences"
        design, got, want = self.design, self.outputs, self.reference
        where = tuple(np.argwhere(got != want)[0])
        vector, lane = where[0], where[-1]
        count = int(np.count_nonzero(np.any((got != want).reshape(len(got), -1), axis=1)))
        what = "sequences" if got.ndim == 3 else "vectors"
        at = (f"sequence {vector}, step {where[1]}, output {lane}" if got.ndim == 3
              else f"vector {vector}, output {lane}")
        inputs = "" if self.inputs.ndim == 3 else f"; input codes {self.inputs[vector].tolist()}"
        return (f"{design.name}: MISMATCH in {count} of {len(self.inputs)} {what}; first at "
                f"{at}: core {got[where]} ({to_float(got[where], design.out_format):g}) != "
                f"reference {want[where]} ({to_float(want[where], design.out_format):g})"
                + inputs)


def simulate(design: Design, x: np.ndarray, *, stall: float = 0.0, seed: int = 0,
             vcd=None, engine: str = "auto", note: Note | None = None,
             initial_states=None) -> Simulation:
    """Run a fresh core of ``design`` on input codes ``x`` and its reference beside it.

    ``engine`` is that of :func:`hwnn.sim.run_stream` (``"pysim"``, ``"cxxrtl"``,
    ``"verilator"`` or ``"auto"``: every engine gives the same cycles for the same seed);
    ``note`` is told when ``"auto"`` could not use a compiled engine, and why. A network's
    layers with an initial state start each sequence from ``initial_states`` (codes, as
    :func:`hwnn.ref.network.network_layers` takes them; zeros for a layer it does not name),
    fed to the core's ``i_state_<layer>`` streams with the same stalls as its input.

    Raises
    ------
    TimeoutError
        The core stopped moving.
    EngineError
        A compiled ``engine`` without a C++ compiler or its tool, or the model did not build.
    """
    core = design.build()
    # An always_ready output has no backpressure to exercise.
    stall_out = 0.0 if core.o.signature.always_ready else stall
    want = np.asarray(design.reference(x) if initial_states is None
                      else design.reference(x, initial_states))
    framed_in = design.sequence_length is not None and design.plan.sequences[0]
    feed, n_out = stream_rows(design, core, x, want)
    if getattr(design.plan, "stateful", ()):   # one state per sequence, or per vector (cells)
        feed = {"i": feed, **core.state_inputs(initial_states, len(x))}
    start = time.monotonic()
    with progress_bar(n_out, f"simulating {design.name}", "output") as bar, \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EngineFallback)
        run = run_stream(core, feed, n_outputs=n_out, stall_in=stall, stall_out=stall_out,
                         seed=seed, vcd=vcd, engine=engine,
                         max_cycles=_sequence_cycles(design, core, x, stall) if framed_in
                         else None,
                         progress=lambda done, total: bar.update(done - bar.n))
    for warning in caught:
        if issubclass(warning.category, EngineFallback) and note is not None:
            note(str(warning.message))
        else:  # not ours to swallow
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
    seconds = time.monotonic() - start
    got, want, framing = output_codes(design, run.outputs, want, len(x))
    # A network without stalls: its cycles against its timing model.
    timing = (timing_against_model(core, [x.shape[1]] * x.shape[0] if x.ndim == 3 else len(x),
                                   run.in_cycles, run.out_cycles)
              if stall == 0 and design.kind == "network" else None)
    return Simulation(design, core, x, got, want, run.cycles, seconds, run.engine, framing,
                      timing)


def stream_rows(design: Design, core, x: np.ndarray, want: np.ndarray):
    """What ``core``'s input stream takes for input codes ``x``, and how many output rows the
    reference ``want`` makes: ``(rows, n_out)``, rows as :func:`hwnn.sim.run_stream` takes
    them (framed sequences with their ``last`` flags, or one row per vector)."""
    framed_in, framed_out = (design.plan.sequences if design.sequence_length is not None
                             else (False, False))
    rows = frame(x, scalar=_scalar_data(core)) if framed_in else _payload_rows(core, x)
    return rows, (want.shape[0] * want.shape[1] if framed_out else len(x))


def output_codes(design: Design, outputs, want: np.ndarray, n: int):
    """A core's output rows (as :func:`hwnn.sim.run_stream` returns them) in the shape of the
    reference ``want`` for ``n`` inputs: ``(got, want, framing)``, ``framing`` saying what is
    wrong with the ``last`` flags of framed outputs (None when nothing is)."""
    framed_out = design.sequence_length is not None and design.plan.sequences[1]
    if framed_out:
        try:
            return unframe(outputs, want.shape[0], want.shape[1]), want, None
        except ValueError as exc:  # last misplaced: the core is wrong, as with a bad code
            return np.zeros_like(want), want, f"{design.name}: {exc}"
    want = want.reshape(n, design.out_lanes)
    return np.asarray(outputs).reshape(want.shape), want, None


def _sequence_cycles(design: Design, core, x, stall: float) -> int:
    """A generous bound on the cycles a network over sequences needs for ``x``: every layer's
    transfers at its own ii plus its latency, four times over, slowed by the stalls (the
    harness's default assumes one transfer per input row)."""
    rows = [x.shape[0] * x.shape[1]] + [
        y.shape[0] * (y.shape[1] if y.ndim == 3 else 1)
        for y in network_layers(design.plan, x)]
    work = sum(n * max(c.ii or 1, 1) + (c.latency or 0) for n, c in zip(rows, core.cores))
    return int(1000 + 4 * work / (1 - stall) ** 2)


def _scalar_data(core, port: str = "i") -> bool:
    """Whether a framed stream's ``data`` is a scalar (one channel) rather than a vector."""
    codec = PayloadCodec.for_shape(getattr(core, port).signature.members["payload"].shape)
    return dict((name, field) for name, _, field in codec.fields)["data"].lanes is None


def _out_rows(core, y: np.ndarray) -> np.ndarray:
    """Output rows ``(n, lanes)`` as the core's output payload has them (1-D for scalars)."""
    codec = PayloadCodec.for_shape(core.o.signature.members["payload"].shape)
    return y[:, 0] if codec.lanes is None else y


def float_errors(design: Design, codes: np.ndarray, inputs=None, states=None) -> list[dict]:
    """Per layer of a network: how far its quantized outputs are from the float model's.

    ``codes`` are the input codes the bit-exact reference runs on; the float model runs on the
    real values of ``inputs`` (the ``.npy`` file the codes were read from) when given, else on
    the values of the codes, so input quantization shows in the first layer; ``states``:
    ``(codes, real values)`` of the initial states (``initial_states`` of the reference and
    of the float model), or None for zeros. Each entry has
    the layer's ``name`` and ``out_format``, ``max_abs`` and ``rms`` of (quantized − float),
    and ``float_max`` (the largest float output, for scale).

    Raises
    ------
    FlowError
        ``design`` has no float model (only network specs keep their unquantized weights).
    """
    if design.float_model is None:
        raise FlowError(f"--float compares a network with its float model; {design.name} is a "
                        f"{design.kind} spec (use kind = \"network\", one layer is enough)")
    real = (np.load(inputs).astype(np.float64).reshape(codes.shape) if inputs is not None
            else to_float(codes, design.in_format))
    state_codes, state_values = states or (None, None)
    floats = design.float_model(real, state_values)
    rows, fmt = [], design.in_format
    for layer, ints, want in zip(design.plan.layers,
                                 network_layers(design.plan, codes, state_codes), floats):
        fmt = layer.out_format or fmt  # a flatten keeps the format before it
        error = to_float(ints, fmt) - want
        rows.append({"name": layer.name, "out_format": str(fmt),
                     "max_abs": float(np.max(np.abs(error))),
                     "rms": float(np.sqrt(np.mean(error ** 2))),
                     "float_max": float(np.max(np.abs(want)))})
    return rows


def check_values_exact(design: Design) -> None:
    """Refuse real-valued outputs for an output format wider than float64 holds exactly.

    Raises
    ------
    FlowError
        The output format has more than :data:`FLOAT64_EXACT_BITS` bits.
    """
    if design.out_format.width > FLOAT64_EXACT_BITS:
        raise FlowError(f"--output: {design.out_format} outputs have {design.out_format.width} "
                        f"bits, more than float64 holds exactly ({FLOAT64_EXACT_BITS}); use "
                        f"--codes FILE.npy for the integer output codes (value = code * "
                        f"2**-{design.out_format.f})")


def save_values(path, design: Design, codes: np.ndarray) -> Path:
    """Save the real values of output ``codes`` as float64 with ``np.save``; return the file.

    Raises
    ------
    FlowError
        The output format is wider than float64 holds exactly (use :func:`save_codes`), or
        ``path`` is not a writable file name.
    """
    check_values_exact(design)
    real = check_output_path("--output", path, suffix=".npy")
    np.save(real, to_float(codes, design.out_format))
    return real


def save_codes(path, codes: np.ndarray) -> Path:
    """Save integer output ``codes`` (int64, exact at any width) with ``np.save``."""
    real = check_output_path("--codes", path, suffix=".npy")
    np.save(real, np.asarray(codes, dtype=np.int64))
    return real


# --- generate / plan -----------------------------------------------------------------------

def generate(design: Design, out_dir, *, testbench: int = 100, seed: int = 0,
             note: Note | None = None) -> dict:
    """Write Verilog, RTLIL, a manifest and (with ``testbench`` vectors) a testbench.

    Returns a dict from what was written (``"verilog"``, ``"testbench"``...) to its path.

    Raises
    ------
    FlowError
        ``testbench`` is negative.
    """
    if testbench < 0:
        raise FlowError(f"--testbench must be 0 (none) or a number of vectors, not {testbench}")
    # An output path that cannot be a directory fails here, before a core exists that would
    # then be dropped unused (and reported so by Amaranth).
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    core = design.build()
    written = export(core, design.name, out_dir)
    # The Verilog testbench streams vectors into `i` and holds every other input idle (a
    # weight port's valid low), so the core computes with the weights it was built with, which
    # are the ones the reference uses.
    others = [name for name in core.signature.members if name not in ("i", "o")
              and not name.startswith("i_state_")]   # offered zero states (the reference's)
    if testbench and "i" not in core.signature.members:
        if note is not None:
            note(f"note: no testbench written: it streams vectors into i, and {design.name} "
                 f"has {', '.join(others)} instead")
    elif testbench and design.sequence_length is not None:
        # `testbench` sequences in, a framed stream; out, frames or one vector per sequence.
        x = input_codes(design, vectors=testbench, seed=seed)
        y = np.asarray(design.reference(x))
        y_rows = frame(y, scalar=_scalar_data(core, "o")) if y.ndim == 3 else _out_rows(core, y)
        written.update(write_testbench(core, design.name, frame(x, scalar=_scalar_data(core)),
                                       y_rows, out_dir,
                                       cycles=_sequence_cycles(design, core, x, 0.0)))
    elif testbench:
        if others and note is not None:
            note(f"note: the testbench holds {', '.join(others)} idle, so {design.name} runs "
                 f"with its initial weights")
        x = make_vectors(design.in_format, design.in_lanes, testbench, seed=seed)
        y = np.asarray(design.reference(x)).reshape(len(x), design.out_lanes)
        written.update(write_testbench(core, design.name, _payload_rows(core, x),
                                       _payload_rows(core, y), out_dir))
    return written


def plan_info(design: Design) -> dict:
    """What ``hwnn plan`` shows: the core's ``describe()``, facts of the spec, and the
    complexity metrics (:mod:`hwnn.metrics`) of a dense layer, an activation unit or each
    layer of a network and their total."""
    core = inspected(design.build())
    info = {**core.describe(), **design.info}
    if design.kind == "network":
        metrics = network_metrics([(layer.name, layer_core)
                                   for layer, layer_core in zip(design.plan.layers, core.cores)])
        counts = _steps_per_input(design)
        for entry, (_, layer), count in zip(info["layers"], metrics.layers, counts):
            entry["metrics"] = layer.describe()
        # Each layer's figures are per output step; an input (vector or sequence) makes
        # `count` of them.
        total = {key: sum(m.describe()[key] * c for (_, m), c in zip(metrics.layers, counts))
                 for key in ("rm", "bop", "additions", "shifts", "comparisons", "nabs")}
        if metrics.total.xnors:   # binarized layers' bit functions
            total["xnors"] = sum(m.xnors * c for (_, m), c in zip(metrics.layers, counts))
        info["metrics"] = {**total, "per": "sequence" if design.sequence_length else "vector"}
        if design.sequence_length:
            # Cycles per sequence of the spec's length when sequences follow back to back.
            info["period"] = {"steps": design.sequence_length,
                              # a Fraction when the spacing alternates (JSON: a float)
                              "cycles": _number(core.period(design.sequence_length))}
    elif design.kind in ("dense", "activation"):
        info["metrics"] = layer_metrics(core).describe()
    return info


# --- synth ---------------------------------------------------------------------------------

def _steps_per_input(design: Design) -> list[int]:
    """Per layer of a network, its output steps per input: 1 for a vector network; over
    sequences of ``sequence_length`` steps, each sequence layer's output length (and 1 from a
    flatten on)."""
    steps, counts = design.sequence_length, []
    sequence = design.sequence_length is not None
    for layer in design.plan.layers:
        if layer.kind in ("conv1d", "pool"):
            steps = layer.plan.out_length(steps)
        sequence = layer.sequences(sequence)[1]
        counts.append(steps if sequence else 1)
    return counts


def synth_parts(design: Design) -> list[tuple[str, Callable]]:
    """What ``hwnn synth`` synthesizes, as ``(top name, build)``: the design; for a network,
    first each layer alone (``<network>_<layer>``), so the cost of composing shows."""
    if design.kind != "network":
        return [(design.name, design.build)]
    return [(f"{design.name}_{layer.name}", build)
            for layer, build in layer_builders(design.plan)] + [(design.name, design.build)]


def composition_notes(design: Design, reports) -> list[str]:
    """For a network: per target, its LUTs and FFs against the sum of its layers alone."""
    if design.kind != "network":
        return []
    notes = []
    for target in dict.fromkeys(r.target for r in reports):
        on_target = [r for r in reports if r.target == target]
        whole = next(r for r in on_target if r.top == design.name)
        parts = [r for r in on_target if r is not whole]
        luts, ffs = sum(r.luts for r in parts), sum(r.ffs for r in parts)
        notes.append(f"{target}: the network uses {whole.luts} LUTs and {whole.ffs} FFs; its "
                     f"{len(parts)} layers alone {luts} and {ffs} (composition "
                     f"{whole.luts - luts:+d} LUTs, {whole.ffs - ffs:+d} FFs)")
    return notes


def synth_targets(names, *, fmax: bool = False, note: Note | None = None) -> list[str]:
    """``names`` checked and without repeats (first occurrence kept), noting which cannot time.

    Raises
    ------
    FlowError
        An unknown target.
    """
    for name in names:
        if name not in TARGETS:
            raise FlowError(f"--target: unknown target {name!r}; known targets: "
                            f"{', '.join(TARGETS)}")
    unique = list(dict.fromkeys(names))
    if fmax and note is not None:
        for name in unique:
            if not TARGETS[name].place_and_route:
                note(f"note: {name} is estimate-only (yosys, no place-and-route), so it has no "
                     f"Fmax")
    return unique


def _steps(target: str, fmax: bool) -> int:
    """Tool runs of one synthesis: yosys; with Fmax also the harness's yosys and nextpnr."""
    return 3 if fmax and TARGETS[target].place_and_route else 1


def synth_reports(build, name: str, targets, *, fmax: bool, dsp: bool = True,
                  bram: bool = True, keep=None, note: Note | None = None) -> list:
    """Synthesize a fresh core from ``build()`` for every target; return the reports.

    ``fmax`` places and routes on the targets that can; ``keep`` keeps each target's tool
    files in ``keep/<target>``. ``note`` is told each step before it runs.
    """
    reports = []
    with progress_bar(sum(_steps(t, fmax) for t in targets), f"synthesizing {name}",
                      "step") as bar:
        for target in targets:
            can_time = fmax and TARGETS[target].place_and_route
            if note is not None:
                note(f"synthesizing {name} for {target}"
                     + (" with place-and-route for Fmax" if can_time else "") + "...")
            started = []

            def tool_step(message, started=started, target=target):
                if started:  # the previous tool run of this target has finished
                    bar.update(1)
                started.append(message)
                tool = message.split(" ", 1)[0]
                bar.set_description_str(f"synthesizing {name} for {target}: {tool}",
                                        refresh=False)
                if note is not None:
                    note(message)
            workdir = Path(keep) / target if keep else None
            reports.append(synthesize(build(), target, name=name, fmax=can_time, dsp=dsp,
                                      bram=bram, workdir=workdir, progress=tool_step))
            bar.update(1)
    return reports


def table_notes(reports) -> list[str]:
    """Lines to print under a synthesis table: how its "fits" row was judged."""
    # A "maybe" (fits None on a target with totals) is an estimate too.
    if any((r.fits is not None or r.totals is not None) and r.pnr_utilization is None
           for r in reports):
        return ["fits: estimated from yosys cell counts, no place-and-route (--fmax checks it "
                "with nextpnr)"]
    return []


def _number(value):
    """``value`` for JSON: an int as is, a Fraction as a float."""
    return value if isinstance(value, int) else float(value)
