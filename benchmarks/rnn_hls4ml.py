#!/usr/bin/env python3
"""hls4ml's LSTM/GRU C emulation, measured on ``rnn.py``'s weights and sequences.

``rnn.py`` compares hwnn's fixed-point LSTM and GRU with the float64 model on h_T and sets
hls4ml's figures beside them as issue 11 quotes them (other weights, other data). This script
measures hls4ml itself on exactly the same layers and inputs:

* layers: ``torch.nn.LSTM`` / ``torch.nn.GRU`` (``batch_first``, one layer, float32 as a
  PyTorch user would have them) holding ``rnn.pytorch_weights(kind, I, H)``, for input 4 /
  hidden 8 (and input 16 / hidden 32 unless ``--quick``);
* conversion: hls4ml's PyTorch frontend (``config_from_pytorch_model`` with
  ``default_precision`` P at model granularity, ``channels_last_conversion="off"``, then
  ``convert_from_pytorch_model``, backend Vitis, ``io_parallel``) with every other setting at
  its default: σ and tanh by 1024-entry tables of type ``ap_fixed<18,8>`` (σ over [−8, 8),
  tanh over [−4, 4)), weights, biases, accumulators, inputs, outputs and, for the LSTM, the cell
  state in P. hls4ml's PyTorch RNN layers always return the last state only (h_T);
* run: ``compile()`` (g++ and hls4ml's bundled ap_types: its C emulation; no HLS tool) and
  ``predict`` on ``rnn.sequences(I)``, the 200 sequences of 16 steps uniform in [−1, 1], given as
  float64 (hls4ml converts them to P itself);
* measured: max and RMS of |h_hls4ml − h_float| on h_T, against the float64 model of
  ``hwnn.ref.rnn_float`` (the same reference ``rnn.py`` uses); the PyTorch model run in float64
  is checked against it first, so the weights hls4ml reads are the benchmark's layer;
* P: ``ap_fixed<16,6>`` and ``ap_fixed<12,4>`` (issue 11's), beside hwnn's 16- and 12-bit
  rows (pwl and lut) read from ``benchmarks/results/rnn.json`` (``rnn.py``'s output) and the
  figures issue 11 quotes; and ``ap_fixed<32,12>``, where the words are wide enough that what
  is left is mostly the tables' error;
* ``--weight-seeds N``: also LSTM(4→8) and GRU(4→8) at ``ap_fixed<16,6>`` and
  ``ap_fixed<12,4>`` with the weights of seeds 11 … 10 + N (seed 11 is ``rnn.py``'s), beside
  hwnn's pwl and lut rows for the same weights, computed here by ``rnn.run`` (those of seed 11
  must equal ``rnn.json``'s exactly): how much the comparison depends on the weight draw.

torch and hls4ml are optional, benchmark-only dependencies: install them in a virtualenv of
their own (with hwnn from this checkout), e.g.::

    python -m venv /tmp/hls4ml-venv
    /tmp/hls4ml-venv/bin/pip install torch hls4ml==1.3.0 numpy -e .
    /tmp/hls4ml-venv/bin/python benchmarks/rnn_hls4ml.py [--quick] [--weight-seeds N] [--keep DIR]
                                 [--json benchmarks/results/rnn_hls4ml.json]

Prints a Markdown table and writes JSON (and the table next to it as .md). ``--keep DIR``
keeps the hls4ml projects (C++ sources, weights) under DIR; by default they are built in a
temporary directory and removed.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import rnn  # noqa: E402

try:
    import hls4ml
    import torch
    from hls4ml.converters import convert_from_pytorch_model
    from hls4ml.utils.config import config_from_pytorch_model
except ImportError as exc:      # optional: main() says what to install
    MISSING = exc
else:
    MISSING = None

#: hls4ml's default precision for the run, and the hwnn bit budget its rows stand beside
#: (None: no hwnn row; an informative setting).
PRECISIONS = (("ap_fixed<16,6>", 16), ("ap_fixed<12,4>", 12), ("ap_fixed<32,12>", None))
QUICK_SIZES = ((4, 8),)
BACKEND, IO_TYPE = "Vitis", "io_parallel"
#: The PyTorch model run in float64 must agree with hwnn.ref.rnn_float to this (both are
#: float64 but sum in different orders); a mismatch means the weights are not the layer's.
TORCH_CHECK = 1e-12
HWNN_METHODS = ("pwl", "lut")
#: PyTorch's names of ``rnn.pytorch_weights``'s four arrays, in its order.
PARAMETERS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
#: The layer size and precisions of the ``--weight-seeds`` runs (issue 11's comparisons).
SEED_SIZE, SEED_PRECISIONS = (4, 8), PRECISIONS[:2]


@dataclass(frozen=True)
class Config:
    """One hls4ml run: a layer kind and size at a default precision, and the hwnn bit budget
    whose rows it is compared with (None: none)."""
    kind: str
    input_size: int
    hidden_size: int
    precision: str
    hwnn_bits: int | None

    @property
    def name(self) -> str:
        return f"{self.kind.upper()}({self.input_size}→{self.hidden_size})"


def configs(quick: bool = False) -> list[Config]:
    """Every run in table order: LSTM then GRU, each size (``quick``: input 4 / hidden 8
    only), each precision of :data:`PRECISIONS`."""
    sizes = QUICK_SIZES if quick else rnn.SIZES
    return [Config(kind, i, h, precision, bits) for kind in ("lstm", "gru")
            for i, h in sizes for precision, bits in PRECISIONS]


class _LastState(torch.nn.Module if MISSING is None else object):
    """A batch-first one-layer LSTM or GRU whose forward returns the hidden-state sequence
    (hls4ml's converter keeps only h_T of it: PyTorch RNNs have no ``return_sequences``)."""

    def __init__(self, kind: str, input_size: int, hidden_size: int):
        super().__init__()
        layer = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
        self.rnn = layer(input_size, hidden_size, batch_first=True)

    def forward(self, x):
        output, _ = self.rnn(x)
        return output


def torch_model(kind: str, weights) -> "_LastState":
    """The float32 PyTorch layer holding ``weights`` = (weight_ih, weight_hh, bias_ih,
    bias_hh) in PyTorch's layout, in eval mode.

    Raises:
        ValueError: if ``kind`` is not "lstm" or "gru", or a weight's shape is not the
            layer's (names the parameter and shapes).
    """
    if kind not in ("lstm", "gru"):
        raise ValueError(f"kind must be 'lstm' or 'gru', not {kind!r}")
    rows, input_size = weights[0].shape
    model = _LastState(kind, input_size, rows // rnn.KINDS[kind])
    with torch.no_grad():
        for name, value in zip(PARAMETERS, weights):
            parameter = getattr(model.rnn, name)
            if tuple(parameter.shape) != value.shape:
                raise ValueError(f"{name}: shape {value.shape}, the layer's is "
                                 f"{tuple(parameter.shape)}")
            parameter.copy_(torch.from_numpy(value))
    return model.eval()


def check_torch(kind: str, model, x: np.ndarray, weights) -> float:
    """The largest |difference| between the PyTorch model run in float64 and
    ``hwnn.ref.rnn_float`` over every step of ``x``.

    Raises:
        RuntimeError: if it exceeds :data:`TORCH_CHECK` (the model is not the benchmark's
            layer).
    """
    wide = copy.deepcopy(model).double()
    # The float32 model's weights widened to float64 are not the drawn ones: reload them.
    wide.rnn.load_state_dict({name: torch.from_numpy(value)
                              for name, value in zip(PARAMETERS, weights)})
    with torch.no_grad():
        y_torch = wide(torch.from_numpy(x)).numpy()
    difference = float(np.abs(y_torch - rnn.float_sequence(kind, weights, x)[0]).max())
    if difference > TORCH_CHECK:
        raise RuntimeError(f"the PyTorch {kind} in float64 differs from hwnn.ref.rnn_float by "
                           f"{difference:.3e} (> {TORCH_CHECK:g}): its weights are not the "
                           "benchmark's layer")
    return difference


def hls4ml_types(hls_model) -> dict:
    """Every layer's data types (name → precision) and the recurrent layer's table size, as
    hls4ml chose them."""
    types, table_size = {}, None
    for layer in hls_model.get_layers():
        for name, precision in layer.get_layer_precision().items():
            types[name] = str(precision.precision)
        table_size = layer.get_attr("table_size", table_size)
    return {"types": types, "table_size": table_size}


def measure(config: Config, weights, x: np.ndarray, y_float: np.ndarray, workdir: Path) -> dict:
    """Convert the layer with hls4ml at ``config.precision``, compile its C emulation in
    ``workdir`` and return max and RMS of |h_T − float64 h_T| over the sequences ``x``, with
    the types hls4ml chose."""
    model = torch_model(config.kind, weights)
    hls_config = config_from_pytorch_model(
        model, [tuple(x.shape[1:])], default_precision=config.precision,
        channels_last_conversion="off", transpose_outputs=False)
    out = workdir / f"{config.kind}_{config.input_size}_{config.hidden_size}_{config.precision}"
    out = out.with_name(out.name.replace("<", "_").replace(">", "").replace(",", "_"))
    # hls4ml prints its progress on stdout; keep stdout for the table.
    with contextlib.redirect_stdout(sys.stderr):
        hls_model = convert_from_pytorch_model(model, hls_config=hls_config,
                                               output_dir=str(out), backend=BACKEND,
                                               io_type=IO_TYPE)
        hls_model.compile()
        y = hls_model.predict(np.ascontiguousarray(x))
    y = np.asarray(y, dtype=np.float64).reshape(y_float.shape)
    error = np.abs(y - y_float)
    return {"h_T_max": float(error.max()), "h_T_rms": float(np.sqrt(np.mean(error ** 2))),
            **hls4ml_types(hls_model)}


def hwnn_rows(path: Path) -> dict:
    """hwnn's h_T max and RMS from ``rnn.py``'s JSON, by (kind, input, hidden, bits, method),
    for the methods of :data:`HWNN_METHODS`.

    Raises:
        ValueError: if the file is a ``--cell-int`` run (not the default formats).
    """
    data = json.loads(path.read_text())
    if data["setup"].get("cell_format", "default") != "default":
        raise ValueError(f"{path}: cell_format {data['setup']['cell_format']!r}, not the "
                         "default formats this comparison is about")
    return {(r["kind"], r["input_size"], r["hidden_size"], r["bits"], r["method"]):
            {"h_T_max": r["h_T_max"], "h_T_rms": r["h_T_rms"]}
            for r in data["rows"] if r["method"] in HWNN_METHODS}


def quoted(config: Config) -> rnn.Quoted | None:
    """The figure issue 11 quotes for this layer and precision, if any."""
    for q in rnn.HLS4ML:
        if (q.kind, q.input_size, q.hidden_size, q.bits) == (
                config.kind, config.input_size, config.hidden_size, config.hwnn_bits) and \
                config.precision in q.label:
            return q
    return None


def run(quick: bool, workdir: Path, hwnn: dict) -> list[dict]:
    """One row per :func:`configs` entry: hls4ml's measured error, the quoted figure and
    hwnn's rows at the matching bit budget."""
    rows, data = [], {}
    for config in configs(quick):
        started = time.monotonic()
        key = (config.kind, config.input_size, config.hidden_size)
        if key not in data:
            weights, x = rnn.pytorch_weights(*key), rnn.sequences(config.input_size)
            check = check_torch(config.kind, torch_model(config.kind, weights), x, weights)
            data[key] = weights, x, rnn.float_sequence(config.kind, weights, x)[0][:, -1], check
        weights, x, y_float, check = data[key]
        print(f"{config.name} {config.precision}...", file=sys.stderr, flush=True)
        row = {"kind": config.kind, "input_size": config.input_size,
               "hidden_size": config.hidden_size, "precision": config.precision,
               "hwnn_bits": config.hwnn_bits, "torch_float64_vs_reference": check,
               **measure(config, weights, x, y_float, workdir)}
        q = quoted(config)
        row["quoted"] = None if q is None else {"h_T_max": q.h_T_max, "h_T_rms": q.h_T_rms}
        row["hwnn"] = {method: hwnn.get(key + (config.hwnn_bits, method))
                       for method in HWNN_METHODS} if config.hwnn_bits else None
        row["seconds"] = round(time.monotonic() - started, 2)
        rows.append(row)
    return rows


def hwnn_live(kind: str, bits: int, seed: int) -> dict:
    """hwnn's h_T max and RMS for LSTM/GRU ``SEED_SIZE`` at ``bits`` with the weights of
    ``seed``, per method of :data:`HWNN_METHODS`, by ``rnn.run`` (the integer reference)."""
    chosen = [rnn.Layer(kind, *SEED_SIZE, bits, method) for method in HWNN_METHODS]
    return {row["method"]: {"h_T_max": row["h_T_max"], "h_T_rms": row["h_T_rms"]}
            for row in rnn.run(kinds=("error",), weight_seed=seed, chosen=chosen)}


def seed_runs(count: int, workdir: Path, hwnn: dict) -> list[dict]:
    """hls4ml and hwnn on LSTM and GRU ``SEED_SIZE`` at :data:`SEED_PRECISIONS` for the
    weights of seeds ``rnn.WEIGHT_SEED`` … ``rnn.WEIGHT_SEED + count − 1``, one row each.

    Raises:
        ValueError: if ``count`` < 1.
        RuntimeError: if hwnn's live rows for ``rnn.WEIGHT_SEED`` differ from ``hwnn`` (the
            rows of ``rnn.json``): that file is stale.
    """
    if count < 1:
        raise ValueError(f"--weight-seeds must be at least 1, not {count}")
    rows, x = [], rnn.sequences(SEED_SIZE[0])
    for seed in range(rnn.WEIGHT_SEED, rnn.WEIGHT_SEED + count):
        for kind in ("lstm", "gru"):
            weights = rnn.pytorch_weights(kind, *SEED_SIZE, seed)
            check_torch(kind, torch_model(kind, weights), x, weights)
            y_float = rnn.float_sequence(kind, weights, x)[0][:, -1]
            for precision, bits in SEED_PRECISIONS:
                config = Config(kind, *SEED_SIZE, precision, bits)
                print(f"seed {seed}: {config.name} {precision}...", file=sys.stderr, flush=True)
                measured = measure(config, weights, x, y_float, workdir / f"seed{seed}")
                live = hwnn_live(kind, bits, seed)
                stored = {m: hwnn.get((kind, *SEED_SIZE, bits, m)) for m in HWNN_METHODS}
                if seed == rnn.WEIGHT_SEED and live != stored:
                    raise RuntimeError(f"hwnn's rows for seed {seed}, {config.name}, {bits} "
                                       f"bits: {live} computed, {stored} in rnn.json (stale?)")
                rows.append({"seed": seed, "kind": kind, "precision": precision,
                             "hwnn_bits": bits, "h_T_max": measured["h_T_max"],
                             "h_T_rms": measured["h_T_rms"], "hwnn": live})
    return rows


def _span(values, digits: str = ".2e", unit: str = "") -> str:
    return f"{min(values):{digits}}{unit} – {max(values):{digits}}{unit}"


def seed_markdown(rows: list[dict]) -> str:
    """The ``--weight-seeds`` table: per layer and precision, the range over the seeds of
    hls4ml's error, hwnn's pwl and lut errors and hls4ml's error over hwnn's."""
    lines = ["| layer | hls4ml precision | seeds | hls4ml h_T max | hls4ml h_T RMS | hwnn pwl "
             "max / RMS | hwnn lut max / RMS | hls4ml ÷ hwnn pwl, max / RMS | "
             "hls4ml ÷ hwnn lut, max / RMS |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for kind in dict.fromkeys(r["kind"] for r in rows):
        for precision in dict.fromkeys(r["precision"] for r in rows):
            chosen = [r for r in rows if (r["kind"], r["precision"]) == (kind, precision)]
            cells = [_span([r["h_T_max"] for r in chosen]),
                     _span([r["h_T_rms"] for r in chosen])]
            for method in HWNN_METHODS:
                cells.append(" / ".join(_span([r["hwnn"][method][m] for r in chosen])
                                        for m in ("h_T_max", "h_T_rms")))
            for method in HWNN_METHODS:
                cells.append(" / ".join(
                    _span([r[m] / r["hwnn"][method][m] for r in chosen], ".1f", "×")
                    for m in ("h_T_max", "h_T_rms")))
            name = f"{kind.upper()}({SEED_SIZE[0]}→{SEED_SIZE[1]})"
            lines.append(f"| {name} | `{precision}` | {len(chosen)} | " + " | ".join(cells)
                         + " |")
    return "\n".join(lines)


def _pair(entry) -> str:
    return "—" if entry is None else f"{entry['h_T_max']:.2e} / {entry['h_T_rms']:.2e}"


def _ratio(row, entry) -> str:
    if entry is None:
        return "—"
    return f"{row['h_T_max'] / entry['h_T_max']:.1f}× / {row['h_T_rms'] / entry['h_T_rms']:.1f}×"


def markdown(rows: list[dict]) -> str:
    """The table: per layer and precision, hls4ml measured, issue 11's quoted figure, hwnn's
    pwl and lut at the matching bit budget, and hls4ml's measured error over hwnn's."""
    lines = ["| layer | hls4ml precision | hls4ml measured, h_T max / RMS | hls4ml quoted "
             "(issue 11, other data) | hwnn bits | hwnn pwl | hwnn lut | hls4ml ÷ hwnn pwl "
             "| hls4ml ÷ hwnn lut |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        hwnn = row["hwnn"] or {}
        name = f"{row['kind'].upper()}({row['input_size']}→{row['hidden_size']})"
        lines.append(
            f"| {name} | `{row['precision']}` | {_pair(row)} | {_pair(row['quoted'])} | "
            f"{row['hwnn_bits'] or '—'} | {_pair(hwnn.get('pwl'))} | {_pair(hwnn.get('lut'))} | "
            f"{_ratio(row, hwnn.get('pwl'))} | {_ratio(row, hwnn.get('lut'))} |")
    return "\n".join(lines)


def compiler_version() -> str:
    """The first line of ``g++ --version`` (hls4ml's ``compile()`` builds with g++)."""
    result = subprocess.run(["g++", "--version"], capture_output=True, text=True, check=True)
    return result.stdout.splitlines()[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="input 4 / hidden 8 only")
    parser.add_argument("--keep", metavar="DIR", help="keep the hls4ml projects under DIR")
    parser.add_argument("--weight-seeds", type=int, metavar="N",
                        help="also LSTM/GRU(4→8) at ap_fixed<16,6> and <12,4> for the weights "
                             f"of seeds {rnn.WEIGHT_SEED} … {rnn.WEIGHT_SEED - 1} + N")
    parser.add_argument("--hwnn-json", default=str(Path(__file__).parent / "results" /
                                                   "rnn.json"),
                        help="rnn.py's results, for hwnn's rows (default: %(default)s)")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" /
                                              "rnn_hls4ml.json"),
                        help="output (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.weight_seeds is not None and args.weight_seeds < 1:
        parser.error(f"--weight-seeds must be at least 1, not {args.weight_seeds}")
    if MISSING is not None:
        raise SystemExit(f"rnn_hls4ml.py needs torch and hls4ml (optional, benchmark-only): "
                         f"{MISSING}. Install them in a virtualenv of their own, e.g. "
                         "python -m venv /tmp/hls4ml-venv && /tmp/hls4ml-venv/bin/pip install "
                         "torch hls4ml==1.3.0 numpy -e . and run this script with its python.")
    hwnn = hwnn_rows(Path(args.hwnn_json))
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if args.keep:
            workdir = Path(args.keep)
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(
                prefix="hwnn-hls4ml-")))
        rows = run(args.quick, workdir, hwnn)
        seeds = [] if args.weight_seeds is None else seed_runs(args.weight_seeds, workdir, hwnn)
    table = markdown(rows)
    if seeds:
        table += (f"\n\nOver the weights of {args.weight_seeds} seeds (min – max):\n\n"
                  + seed_markdown(seeds))
    print(table)
    setup = {"quick": args.quick, "sequences": rnn.SEQUENCES, "steps": rnn.STEPS,
             "weight_seed": rnn.WEIGHT_SEED, "input_seed": rnn.INPUT_SEED,
             "inputs": "uniform in [-1, 1], given to predict as float64",
             "weights": "rnn.pytorch_weights: U(-1/sqrt(H), 1/sqrt(H)), in a float32 "
                        "torch.nn.LSTM/GRU (batch_first)",
             "reference": "hwnn.ref.rnn_float (float64), h_T",
             "hls4ml": hls4ml.__version__, "torch": torch.__version__,
             "numpy": np.__version__, "python": platform.python_version(),
             "compiler": compiler_version(), "backend": BACKEND, "io_type": IO_TYPE,
             "conversion": "config_from_pytorch_model(model, [(steps, input)], "
                           "default_precision=P, channels_last_conversion='off', "
                           "transpose_outputs=False), granularity 'model'; "
                           "convert_from_pytorch_model; compile(); predict",
             "hwnn_rows": str(Path(args.hwnn_json).name), "weight_seeds": args.weight_seeds,
             "seconds": round(time.monotonic() - started, 1)}
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "rnn_hls4ml", "setup": setup, "rows": rows,
                               "weight_seed_rows": seeds}, indent=2) + "\n")
    out.with_suffix(".md").write_text(
        table + f"\n\nhls4ml {setup['hls4ml']}, torch {setup['torch']}, {setup['compiler']}; "
        f"backend {BACKEND}, {IO_TYPE}; whole run {setup['seconds']:.0f} s.\n")
    print(f"wrote {out} and {out.with_suffix('.md')} in {setup['seconds']} s", file=sys.stderr)


if __name__ == "__main__":
    main()
