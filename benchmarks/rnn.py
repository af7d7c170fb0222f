#!/usr/bin/env python3
"""Recurrent layers: error of the fixed-point LSTM and GRU against float64, by bit width.

For LSTM and GRU of input 4 / hidden 8 and input 16 / hidden 32, at 8, 10, 12, 14 and 16 bits,
with σ and tanh as pwl and lut plans (and the "hard" functions at 8 and 16 bits), each layer is
planned by :func:`hwnn.plans.rnn.plan_recurrent` with its default formats for the bit budget
(what ``hwnn import --bits B`` chooses) and run by its bit-exact integer reference
(:func:`hwnn.ref.rnn.recurrent`) on a fixed set of sequences, against the float64 PyTorch model
(:mod:`hwnn.ref.rnn_float`) on the same weights:

* weights: PyTorch's default initialization, U(−1/√H, 1/√H) for ``weight_ih``, ``weight_hh``,
  ``bias_ih`` and ``bias_hh`` in that order, from a fixed seed (the same weights at every bit
  width and method of a layer);
* inputs: 200 sequences of 16 steps, uniform in [−1, 1] from a fixed seed; the integer model
  gets them rounded to the input format SQ(1, bits − 1) (half to even, saturating at
  1 − 2^−(bits−1)), the float model the real values;
* measured: max and RMS of |h_int − h_float| on the final state h_T and on every step's h_t,
  beside the formats the plan chose and its activation plans' own maximum errors (measured by
  the plans on every input code; for "hard" against hard_sigmoid/hard_tanh, not σ/tanh).

The hls4ml 1.3 figures that issue 11 quotes (its C emulation at ``ap_fixed<16,6>`` and
``ap_fixed<12,4>`` on LSTM(4→8) and GRU(4→8)) stand beside the rows they compare with, labelled
as quoted: they are not measured here, and not on these weights. Each row of the issue's goals
is marked pass or fail.

``--steps-bound`` also checks every step of every sequence against
:func:`hwnn.plans.rnn_error.step_error_bound`: both models take one step from the integer
state (the float model the real input, the integer model its codes), as
``tests/test_ref_rnn.py`` does, and the worst measured/bound ratio of each layer is reported;
a ratio above 1 is a violation, printed loudly, and the script exits with status 1.

    python benchmarks/rnn.py [--quick] [--steps-bound] [--plot docs/rnn_error.png]
                             [--cell-int K] [--weight-seed S]
                             [--json benchmarks/results/rnn.json]
    python benchmarks/rnn.py --resources [--quick] [--only WHICH | --missing]
                             [--json benchmarks/results/rnn_resources.json]

``--resources`` synthesizes the cores instead (:mod:`rnn_resources`, next to this file): LSTM
and GRU cores of a chosen subset of sizes, bit widths, activation methods, ariths, MAC
parallelisms and lanes, placed and routed on ``ice40-up5k`` and ``ecp5-85f`` (and the
``ecp5-25f`` of a goal) for LUT, carry, FF, DSP, BRAM, Fmax, cycles and time steps per second,
with issue 11's resource goals marked; hours (the ``unrolled`` rows take 10 to 25 minutes
each). ``--quick`` synthesizes one configuration and checks the cycle table's derived
shift-add steps against the core. ``--only`` (questions and row indices, comma-separated) or
``--missing`` (configurations without a row yet) measures just those and merges each row
into the existing JSON as it finishes.

``--cell-int K`` measures the LSTMs with the cell format SQ(K, bits − K) instead of the
default (no goals are marked then: they are about the defaults); ``--weight-seed`` draws other
weights.

Prints a Markdown table and writes JSON (and the table next to it as .md). Each kind of
measurement is one function of (layer, plan, weights, inputs) returning columns
(:data:`MEASUREMENTS`); ``resources`` is one of them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwnn.fixed import SQ, quantize, to_float
from hwnn.plans.rnn import KINDS, plan_recurrent
from hwnn.plans.rnn_error import step_error_bound
from hwnn.ref.rnn import recurrent, recurrent_step
from hwnn.ref.rnn_float import gru_cell_float, gru_float, lstm_cell_float, lstm_float

sys.path.insert(0, str(Path(__file__).parent))
import rnn_resources  # noqa: E402

SIZES = ((4, 8), (16, 32))
BITS = (8, 10, 12, 14, 16)
METHODS = ("pwl", "lut")
HARD_BITS = (8, 16)
QUICK_SIZES, QUICK_BITS = ((4, 8),), (8, 12, 16)
SEQUENCES, STEPS = 200, 16
WEIGHT_SEED, INPUT_SEED = 11, 12
#: hls4ml's table size; a narrower input format has fewer codes than that (lut plans refuse
#: more entries than codes), so it gets one entry per code.
LUT_ENTRIES = 1024


@dataclass(frozen=True)
class Layer:
    """One configuration measured: a layer kind and size, a bit budget and an activation
    method; ``cell_int`` (LSTM only) replaces the default cell format by SQ(cell_int,
    bits − cell_int). With a ``target``, also a core to synthesize (``--resources``, see
    :mod:`rnn_resources`): its ``arith``, ``parallelism`` (1 or a rule, ``"mid"``, ``"max"``),
    ``lanes`` (None: all), the ``question`` it answers and whether to place and route
    (``pnr``)."""
    kind: str
    input_size: int
    hidden_size: int
    bits: int
    method: str
    cell_int: int | None = None
    arith: str | None = None
    parallelism: int | str | None = None
    lanes: int | None = None
    target: str | None = None
    question: str | None = None
    pnr: bool = True

    @property
    def name(self) -> str:
        return f"{self.kind.upper()}({self.input_size}→{self.hidden_size})"

    def describe(self) -> dict:
        row = {"kind": self.kind, "input_size": self.input_size,
               "hidden_size": self.hidden_size, "bits": self.bits, "method": self.method,
               "cell_int": self.cell_int}
        if self.target is not None:
            row.update(arith=self.arith, parallelism=self.parallelism, lanes=self.lanes,
                       target=self.target, question=self.question)
        return row


@dataclass(frozen=True)
class Quoted:
    """A figure of a peer tool quoted from issue 11, not measured here."""
    kind: str
    input_size: int
    hidden_size: int
    bits: int
    label: str
    h_T_max: float
    h_T_rms: float

    def matches(self, layer: Layer) -> bool:
        return (self.kind, self.input_size, self.hidden_size, self.bits) == (
            layer.kind, layer.input_size, layer.hidden_size, layer.bits)


#: hls4ml 1.3's C emulation with its default tables, on h_T of PyTorch-initialized layers,
#: 200 sequences of 16 steps in [−1, 1], as issue 11 quotes it (its weights and data, not ours).
HLS4ML = (Quoted("lstm", 4, 8, 16, "hls4ml 1.3 ap_fixed<16,6>", 1.61e-2, 6.0e-3),
          Quoted("gru", 4, 8, 16, "hls4ml 1.3 ap_fixed<16,6>", 1.74e-2, 7.0e-3),
          Quoted("lstm", 4, 8, 12, "hls4ml 1.3 ap_fixed<12,4>", 4.6e-2, 1.8e-2))


@dataclass(frozen=True)
class Goal:
    """One of issue 11's numeric goals: ``metric`` of a layer at ``bits`` at most ``limit``."""
    kind: str
    input_size: int
    hidden_size: int
    bits: int
    metric: str
    limit: float

    def applies(self, layer: Layer) -> bool:
        return (self.kind, self.input_size, self.hidden_size, self.bits) == (
            layer.kind, layer.input_size, layer.hidden_size, layer.bits)

    @property
    def text(self) -> str:
        what = {"h_T_max": "max", "h_T_rms": "RMS"}[self.metric]
        return f"{what} ≤ {self.limit:g}"


GOALS = (Goal("lstm", 4, 8, 16, "h_T_max", 4e-3), Goal("lstm", 4, 8, 16, "h_T_rms", 1.5e-3),
         Goal("lstm", 4, 8, 12, "h_T_rms", 4.5e-3), Goal("gru", 4, 8, 16, "h_T_rms", 1.75e-3))


def layers(quick: bool = False, cell_int: int | None = None) -> list[Layer]:
    """Every configuration of the run, in table order (``quick``: input 4 / hidden 8 at 8, 12
    and 16 bits only; ``cell_int``: LSTMs only, with that cell format)."""
    sizes, bits = (QUICK_SIZES, QUICK_BITS) if quick else (SIZES, BITS)
    kinds = ("lstm",) if cell_int is not None else tuple(KINDS)
    return [Layer(kind, i, h, b, method, cell_int)
            for kind in kinds for i, h in sizes for b in bits
            for method in METHODS + (("hard",) if b in HARD_BITS else ())]


def pytorch_weights(kind: str, input_size: int, hidden_size: int, seed: int = WEIGHT_SEED):
    """``(weight_ih, weight_hh, bias_ih, bias_hh)`` drawn as PyTorch's ``reset_parameters``
    draws them (U(−1/√H, 1/√H), in that order), from numpy's generator seeded with
    ``seed``."""
    rows = KINDS[kind] * hidden_size
    k = 1 / math.sqrt(hidden_size)
    rng = np.random.default_rng(seed)
    return tuple(rng.uniform(-k, k, shape) for shape in (
        (rows, input_size), (rows, hidden_size), (rows,), (rows,)))


def sequences(input_size: int, seed: int = INPUT_SEED) -> np.ndarray:
    """``SEQUENCES`` sequences of ``STEPS`` steps of inputs uniform in [−1, 1]."""
    return np.random.default_rng(seed).uniform(-1, 1, (SEQUENCES, STEPS, input_size))


def make_plan(layer: Layer, weights):
    """The layer's plan with its default formats for ``layer.bits`` (input SQ(1, bits − 1))."""
    options, formats = None, {}
    if layer.method == "lut":
        # Gate and cell formats are ``bits`` wide: at most 2**bits codes.
        options = {"table_size": min(LUT_ENTRIES, 2 ** layer.bits)}
    if layer.cell_int is not None:
        formats["cell_format"] = SQ(layer.cell_int, layer.bits - layer.cell_int)
    return plan_recurrent(layer.kind, *weights, in_format=SQ(1, layer.bits - 1),
                          bits=layer.bits, method=layer.method, activation_options=options,
                          **formats)


def _stats(error: np.ndarray) -> tuple[float, float]:
    return float(error.max()), float(np.sqrt(np.mean(error ** 2)))


def float_sequence(kind: str, weights, x: np.ndarray):
    """Every step's hidden state of the float64 model, ``(sequences, steps, hidden)``, and its
    final cell state (None for a GRU)."""
    if kind == "lstm":
        y, _, c = lstm_float(x, *weights)
        return y, c
    return gru_float(x, *weights)[0], None


def measure_plan(layer: Layer, plan, weights, x) -> dict:
    """The formats the plan chose and its activation plans' maximum errors (each measured by
    the plan on every input code)."""
    formats = {"in": plan.in_format, "weight": plan.gates.weight_format,
               "gate": plan.gate_format, "sigmoid": plan.activations["sigmoid"].out_format,
               "tanh": plan.activations["tanh"].out_format, "cell": plan.cell_format,
               "state": plan.state_format}
    return {"formats": {k: None if v is None else str(v) for k, v in formats.items()},
            "activation_max_error": {name: act.error.max_abs
                                     for name, act in plan.activations.items()}}


def measure_error(layer: Layer, plan, weights, x) -> dict:
    """Max and RMS of |h_int − h_float| on h_T and on every h_t (real units), and for an LSTM
    the float model's largest |c_T| beside the range of the cell format the plan chose."""
    y, _, _ = recurrent(plan, quantize(x, plan.in_format))
    y_float, c_float = float_sequence(layer.kind, weights, x)
    error = np.abs(to_float(y, plan.state_format) - y_float)
    h_T_max, h_T_rms = _stats(error[:, -1])
    all_max, all_rms = _stats(error)
    row = {"h_T_max": h_T_max, "h_T_rms": h_T_rms, "all_h_max": all_max, "all_h_rms": all_rms}
    if c_float is not None:
        row.update(c_T_max_float=float(np.abs(c_float).max()),
                   cell_format_max=plan.cell_format.max)
    return row


def measure_steps_bound(layer: Layer, plan, weights, x) -> dict:
    """The worst ratio over every step of every sequence of the one-step error (both models
    from the integer state) to :func:`step_error_bound` for that step's largest |c|; None with
    the reason where the bound refuses the plan."""
    xq = quantize(x, plan.in_format)
    h = np.zeros((len(x), plan.hidden_size), dtype=np.int64)
    c = np.zeros_like(h) if layer.kind == "lstm" else None
    worst = {"step_ratio": 0.0, "step_error": 0.0, "step_bound": None, "step_at": None}
    for t in range(x.shape[1]):
        h_real = to_float(h, plan.state_format)
        c_real = None if c is None else to_float(c, plan.cell_format)
        try:
            bound, _ = step_error_bound(plan, *weights,
                                        c_max=None if c is None else np.abs(c_real).max())
        except ValueError as exc:
            return {"step_ratio": None, "step_refused": str(exc)}
        h, c = recurrent_step(plan, xq[:, t], h, c)
        if layer.kind == "lstm":
            want, _ = lstm_cell_float(x[:, t], h_real, c_real, *weights)
        else:
            want = gru_cell_float(x[:, t], h_real, *weights)
        error = float(np.abs(to_float(h, plan.state_format) - want).max())
        if error / bound > worst["step_ratio"]:
            worst = {"step_ratio": error / bound, "step_error": error, "step_bound": bound,
                     "step_at": t}
    return worst


#: Each kind of measurement: a function of (layer, plan, weights, inputs) returning columns.
MEASUREMENTS = {"plan": measure_plan, "error": measure_error, "steps_bound": measure_steps_bound,
                "resources": rnn_resources.measure_resources}


def goal_results(layer: Layer, row: dict) -> list[dict]:
    """Each of issue 11's goals that applies to ``layer``, with the measured value and
    whether it passes (none for a replaced cell format: the goals are about the defaults)."""
    if layer.cell_int is not None:
        return []
    return [{"goal": goal.text, "metric": goal.metric, "limit": goal.limit,
             "measured": row[goal.metric], "passed": row[goal.metric] <= goal.limit}
            for goal in GOALS if goal.applies(layer)]


def run(quick: bool = False, kinds=("plan", "error"), cell_int: int | None = None,
        weight_seed: int = WEIGHT_SEED, chosen: list[Layer] | None = None) -> list[dict]:
    """One row per layer of :func:`layers` (or of ``chosen``) with the columns of each
    measurement in ``kinds``, weights drawn from ``weight_seed``."""
    rows, data = [], {}
    for layer in layers(quick, cell_int) if chosen is None else chosen:
        started = time.monotonic()
        key = (layer.kind, layer.input_size, layer.hidden_size)
        if key not in data:
            data[key] = (pytorch_weights(*key, weight_seed), sequences(layer.input_size))
        weights, x = data[key]
        hardware = "" if layer.target is None else (
            f" {layer.arith} P={layer.parallelism} lanes={layer.lanes or 'all'} on "
            f"{layer.target}")
        print(f"{layer.name} {layer.bits} bits {layer.method}{hardware}...", file=sys.stderr,
              flush=True)
        plan_key = (key, layer.bits, layer.method, layer.cell_int)
        if plan_key not in data:
            data[plan_key] = make_plan(layer, weights)
        plan = data[plan_key]
        row = layer.describe()
        for kind in kinds:
            row.update(MEASUREMENTS[kind](layer, plan, weights, x))
        if "error" in kinds and layer.target is None:
            row["goals"] = goal_results(layer, row)
        row["seconds"] = round(time.monotonic() - started, 2)
        rows.append(row)
    return rows


def _e(value) -> str:
    return "—" if value is None else f"{value:.2e}"


def _short(fmt) -> str:
    return "—" if fmt is None else fmt.replace(" ", "")


def _row_layer(row) -> Layer:
    return Layer(row["kind"], row["input_size"], row["hidden_size"], row["bits"], row["method"],
                 row["cell_int"])


def markdown(rows: list[dict], steps_bound: bool) -> str:
    """The table: one line per measured row, and after the rows of a layer and bit width that
    issue 11 quotes hls4ml for, that quoted line (labelled as such)."""
    head = ("| layer | bits | method | weight | gate | cell | state | σ err | tanh err "
            "| tanh(c) err | h_T max | h_T RMS | all h_t max | all h_t RMS |")
    rule = "|---|---:|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
    if steps_bound:
        head += " step/bound |"
        rule += "---:|"
    head += " hls4ml (quoted) ÷ hwnn, max / RMS | issue 11 goals |"
    rule += "---:|---|"
    lines = [head, rule]
    for index, row in enumerate(rows):
        layer = _row_layer(row)
        f, act = row["formats"], row["activation_max_error"]
        line = (f"| {layer.name} | {layer.bits} | {layer.method} | {_short(f['weight'])} | "
                f"{_short(f['gate'])} | {_short(f['cell'])} | {_short(f['state'])} | "
                f"{_e(act['sigmoid'])} | {_e(act['tanh'])} | {_e(act.get('tanh_cell'))} | "
                f"{_e(row['h_T_max'])} | {_e(row['h_T_rms'])} | {_e(row['all_h_max'])} | "
                f"{_e(row['all_h_rms'])} |")
        if steps_bound:
            ratio = row["step_ratio"]
            line += (" no bound |" if ratio is None else
                     f" {ratio:.3f}{' **VIOLATION**' if ratio > 1 else ''} |")
        quoted = [q for q in HLS4ML if q.matches(layer)]
        line += " " + "; ".join(f"{q.h_T_max / row['h_T_max']:.1f}× / "
                                f"{q.h_T_rms / row['h_T_rms']:.1f}×" for q in quoted) + " |"
        line += " " + ", ".join(f"{g['goal']} {'pass' if g['passed'] else '**FAIL**'}"
                                for g in row["goals"]) + " |"
        lines.append(line)
        following = rows[index + 1] if index + 1 < len(rows) else None
        if following is not None and following["bits"] == layer.bits and (
                following["kind"], following["input_size"]) == (layer.kind, layer.input_size):
            continue
        for q in quoted:
            # Formats and activation errors (7 columns) are hls4ml's own, not quoted: dashes.
            lines.append(f"| {layer.name} | {layer.bits} | *{q.label}, quoted from issue 11, "
                         f"not measured by us* |{' — |' * 7} {_e(q.h_T_max)} | "
                         f"{_e(q.h_T_rms)} |{' — |' * (4 + steps_bound)}")
    return "\n".join(lines)


def violations(rows: list[dict]) -> list[str]:
    """One line per layer whose measured step error exceeds its derived bound."""
    return [f"VIOLATION: {_row_layer(r).name} {r['bits']} bits {r['method']}: step {r['step_at']}"
            f" error {r['step_error']:.3e} > bound {r['step_bound']:.3e} "
            f"(ratio {r['step_ratio']:.3f})"
            for r in rows if r.get("step_ratio") is not None and r["step_ratio"] > 1]


def plot(rows: list[dict], path) -> None:
    """h_T's max and RMS error against bits, one panel per layer, with the goals and the
    quoted hls4ml figures marked (needs the optional matplotlib extra)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install -e '.[plot]'") from None
    names = list(dict.fromkeys(_row_layer(r).name for r in rows))
    columns = min(2, len(names))
    height = 3.6 * math.ceil(len(names) / columns) + 0.7     # 0.7 inches for the legend
    fig, axes = plt.subplots(math.ceil(len(names) / columns), columns, sharey=True,
                             figsize=(5.2 * columns, height), squeeze=False)
    colors = {"pwl": "tab:blue", "lut": "tab:orange", "hard": "tab:gray"}
    legend = {}
    for ax, name in zip(axes.flat, names):
        mine = [r for r in rows if _row_layer(r).name == name]
        layer = _row_layer(mine[0])
        for method in dict.fromkeys(r["method"] for r in mine):
            chosen = [r for r in mine if r["method"] == method]
            bits = [r["bits"] for r in chosen]
            style = dict(color=colors[method], marker="o", ms=4)
            legend[f"{method} max"], = ax.plot(bits, [r["h_T_max"] for r in chosen], ls="--",
                                               **style)
            legend[f"{method} RMS"], = ax.plot(bits, [r["h_T_rms"] for r in chosen], ls="-",
                                               **style)
        same = (layer.kind, layer.input_size, layer.hidden_size)
        for q in HLS4ML:
            if (q.kind, q.input_size, q.hidden_size) == same:
                legend["hls4ml 1.3 max and RMS (quoted from issue 11, other data)"], = ax.plot(
                    [q.bits] * 2, [q.h_T_max, q.h_T_rms], "r*", ms=9, ls="none")
        for goal in GOALS:
            if (goal.kind, goal.input_size, goal.hidden_size) == same:
                legend["issue 11 goal (max or RMS)"], = ax.plot(goal.bits, goal.limit, "g_",
                                                                 ms=18, mew=2)
        ax.set_yscale("log")
        ax.set_xticks(sorted({r["bits"] for r in mine}))
        ax.set_xlabel("bits")
        ax.set_title(f"{name}: h_T against float64")
        ax.grid(alpha=0.3, which="both")
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("|h_int − h_float| on h_T")
    fig.legend(legend.values(), legend.keys(), loc="lower center", ncol=4, fontsize=8)
    fig.tight_layout(rect=(0, 0.7 / height, 1, 1))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"wrote {path}", file=sys.stderr)


def run_resources(quick: bool, json_path, only: str | None = None,
                  missing: bool = False) -> None:
    """``--resources``: synthesize the configurations of :mod:`rnn_resources`, add the cycle
    table of every layer at 8 and 16 bits, print and write ``json_path`` and its .md.

    With ``only`` (questions and row indices, :func:`rnn_resources.select_configs`) or
    ``missing`` (the configurations without a row in ``json_path``), measure just those, one at
    a time, and merge each row into the existing results as it finishes (the cycle table and
    the other rows stay)."""
    started = time.monotonic()
    configs = rnn_resources.resource_configs(quick)
    if only is not None or missing:
        results = json.loads(Path(json_path).read_text())
        chosen = rnn_resources.select_configs(configs, only,
                                              results["rows"] if missing else None)
        for config in chosen:
            row, = run(kinds=("resources", "error"), chosen=[Layer(**config)])
            rnn_resources.merge_rows(json_path, [row])
            print(f"merged {rnn_resources.row_key(row)} into {json_path} "
                  f"({row['seconds']:.0f} s)", file=sys.stderr, flush=True)
        print(f"{len(chosen)} rows in {time.monotonic() - started:.0f} s", file=sys.stderr)
        return
    plans = {}
    for layer in layers(quick):
        if layer.bits in HARD_BITS and layer.method in METHODS:
            weights = pytorch_weights(layer.kind, layer.input_size, layer.hidden_size)
            plans[(layer.kind, layer.input_size, layer.hidden_size, layer.bits,
                   layer.method)] = make_plan(layer, weights)
    cycles = rnn_resources.cycle_table(plans, check=quick)
    rows = run(kinds=("resources", "error"), chosen=[Layer(**config) for config in configs])
    seconds = round(time.monotonic() - started, 1)
    out = Path(json_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    setup = {"quick": quick, "weight_seed": WEIGHT_SEED, "input_seed": INPUT_SEED,
             "sequences": SEQUENCES, "steps": STEPS, "questions": rnn_resources.QUESTIONS,
             "seconds": seconds}
    results = {"benchmark": "rnn_resources", "setup": setup, "rows": rows,
               "goals": rnn_resources.goal_results(rows), "cycles": cycles,
               "notes": [f"Whole run: {seconds:.0f} s."]}
    rnn_resources.write_results(out, results)
    print(out.with_suffix(".md").read_text())
    print(f"wrote {out} and {out.with_suffix('.md')} in {seconds} s", file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="input 4 / hidden 8 only, at 8, 12 and 16 bits")
    parser.add_argument("--steps-bound", action="store_true",
                        help="also check every step against step_error_bound")
    parser.add_argument("--cell-int", type=int, metavar="K",
                        help="LSTMs only, cell format SQ(K, bits − K) instead of the default")
    parser.add_argument("--weight-seed", type=int, default=WEIGHT_SEED, metavar="S",
                        help=f"seed of the weights (default {WEIGHT_SEED})")
    parser.add_argument("--plot", metavar="PNG", help="also plot error against bits")
    parser.add_argument("--resources", action="store_true",
                        help="synthesize the cores instead (place-and-route, Fmax; about 25 "
                             "minutes); --quick: one configuration")
    parser.add_argument("--only", metavar="WHICH",
                        help="with --resources: only these questions and row indices (from 0, "
                             "table order), comma-separated, merged into the existing JSON")
    parser.add_argument("--missing", action="store_true",
                        help="with --resources: only the configurations without a row in the "
                             "JSON yet, merged into it")
    parser.add_argument("--json", help="output (default benchmarks/results/rnn.json, with "
                                       "--resources rnn_resources.json)")
    args = parser.parse_args(argv)
    results = Path(__file__).parent / "results"
    if args.resources:
        try:
            run_resources(args.quick, args.json or results / "rnn_resources.json", args.only,
                          args.missing)
        except ValueError as error:
            parser.error(str(error))
        return
    if args.only is not None or args.missing:
        parser.error("--only and --missing go with --resources")
    args.json = args.json or str(results / "rnn.json")
    started = time.monotonic()
    kinds = ("plan", "error") + (("steps_bound",) if args.steps_bound else ())
    if args.cell_int is not None and not 1 <= args.cell_int < min(QUICK_BITS + BITS):
        parser.error(f"--cell-int must be between 1 and {min(QUICK_BITS + BITS) - 1}, not "
                     f"{args.cell_int}")
    rows = run(args.quick, kinds, args.cell_int, args.weight_seed)
    table = markdown(rows, args.steps_bound)
    print(table)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    setup = {"quick": args.quick, "sequences": SEQUENCES, "steps": STEPS,
             "weight_seed": args.weight_seed,
             "input_seed": INPUT_SEED, "inputs": "uniform in [-1, 1]",
             "weights": "U(-1/sqrt(H), 1/sqrt(H)) (PyTorch's default initialization)",
             "in_format": "SQ(1, bits - 1)", "lut_entries": LUT_ENTRIES,
             "cell_format": "default" if args.cell_int is None else
             f"SQ({args.cell_int}, bits - {args.cell_int})",
             "seconds": round(time.monotonic() - started, 1)}
    quoted = [{**q.__dict__, "note": "quoted from issue 11, not measured by this benchmark"}
              for q in HLS4ML]
    out.write_text(json.dumps({"benchmark": "rnn", "setup": setup, "rows": rows,
                               "hls4ml_quoted": quoted,
                               "goals": [g.__dict__ for g in GOALS]}, indent=2) + "\n")
    out.with_suffix(".md").write_text(table + "\n")
    print(f"wrote {out} and {out.with_suffix('.md')} in {setup['seconds']} s", file=sys.stderr)
    if args.plot:
        plot(rows, args.plot)
    bad = violations(rows)
    for line in bad:
        print(line, file=sys.stderr)
    if bad:
        raise SystemExit(f"{len(bad)} layer(s) exceed their derived step bound")


if __name__ == "__main__":
    main()
