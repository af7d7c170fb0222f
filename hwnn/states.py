"""Initial states of a network's recurrent layers, read from a file of PyTorch-shaped arrays.

``hwnn sim --initial-state S.npz`` gives every layer with ``initial_state = true`` the state
each sequence starts from, as PyTorch's ``lstm(x, (h0, c0))`` takes it per layer: arrays
``h0_<layer>`` (and ``c0_<layer>`` for an LSTM) of shape ``(sequences, hidden)``, or
``(sequences, 2, hidden)`` for a bidirectional layer (forward, reverse), in real values; a
cell layer (``lstm_cell``, ``gru_cell``) takes the state of each vector's step,
``(vectors, hidden)``.
They are rounded half-even to the layer's ``state_format`` (``h``) and ``cell_format``
(``c``) as inputs are; a value outside the format is an error, not clamped: a state is the
result of an earlier run, and a clamped one would be silently another state.
"""

from __future__ import annotations

import numpy as np

from .cores.network import state_port
from .fixed import Format, Overflow, Rounding, quantize, to_float
from .flow import FlowError, Note
from .plans.network import CELLS
from .ref.network import state_fields
from .spec import Design

__all__ = ["read_initial_states", "state_arrays", "state_lines"]


def state_arrays(design: Design) -> dict:
    """``{array name: (layer, field)}`` that an initial-state file of ``design`` holds:
    ``h0_<layer>`` (field ``"h"``) and, for an LSTM layer, ``c0_<layer>`` (``"c"``), per
    layer with an initial state."""
    names = {}
    for layer in getattr(design.plan, "stateful", ()):
        for key in state_fields(layer):
            names[f"{key}0_{layer.name}"] = (layer, key)
    return names


def state_lines(design: Design) -> list[str]:
    """One line per layer of ``design`` with an initial state: its stream and the arrays of
    ``--initial-state`` that feed it."""
    arrays = state_arrays(design)
    return [f"{'state' if layer.kind in CELLS else 'initial state'} of layer {layer.name}: "
            f"stream {state_port(layer.name)}, one per "
            f"{'vector' if layer.kind in CELLS else 'sequence'} (--initial-state arrays "
            f"{', '.join(n for n, (owner, _) in arrays.items() if owner is layer)})"
            for layer in getattr(design.plan, "stateful", ())]


def _formats(layer, key: str) -> list[Format]:
    """The format of field ``key`` (``"h"``: state, ``"c"``: cell) of each direction."""
    plans = layer.plan.directions if layer.kind == "bidirectional" else (layer.plan,)
    return [plan.state_format if key == "h" else plan.cell_format for plan in plans]


def _codes(option: str, name: str, values: np.ndarray, fmt: Format) -> np.ndarray:
    """``values`` rounded half-even to codes of ``fmt``; a FlowError naming array ``name`` for
    a value outside it."""
    step = 2.0 ** -fmt.f
    # Clipped a step beyond the range (so that scaling stays finite), rounded into a format
    # two bits wider: a code outside fmt's is a value outside it.
    wide = Format(fmt.signed, fmt.i + 2, fmt.f)
    codes = quantize(np.clip(values, fmt.min_int * step - 2 * step,
                             fmt.max_int * step + 2 * step), wide, Rounding.HALF_EVEN,
                     Overflow.SAT)
    bad = np.argwhere((codes < fmt.min_int) | (codes > fmt.max_int))
    if len(bad):
        where = tuple(int(k) for k in bad[0])
        raise FlowError(f"{option}: array '{name}' holds {values[where]:g} at {list(where)}, "
                        f"outside {fmt} [{fmt.min_int * step:g}, {fmt.max_int * step:g}] "
                        f"({len(bad)} values are); states are not clamped")
    return codes


def read_initial_states(design: Design, path, sequences: int, *,
                        note: Note | None = None) -> tuple[dict, dict]:
    """``(codes, values)`` of the initial states in the ``.npz`` file ``path`` for
    ``sequences`` sequences: each ``{layer name: {"h": ..., "c": ...}}``, as
    :func:`hwnn.ref.network.network_layers` (codes) and the float model (real values) take
    them. ``note`` is told how many values were not codes and were rounded.

    Raises
    ------
    FlowError
        ``design`` has no layer with an initial state; the file is not an ``.npz`` archive,
        lacks an array or holds one no layer takes (the message names it and those it
        expects), or an array has the wrong shape, holds something other than finite real
        numbers, or a value outside its format.
    """
    option = f"--initial-state {path}"
    expected = state_arrays(design)
    if not expected:
        raise FlowError(f"{option}: {design.name} has no layer with initial_state = true")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise FlowError(f"{option}: cannot read an .npz archive ({exc})") from None
    if isinstance(archive, np.ndarray):
        raise FlowError(f"{option}: is a single .npy array; give an .npz archive (np.savez) "
                        f"with arrays {', '.join(expected)}")
    with archive:
        arrays = {name: np.asarray(archive[name]) for name in archive.files}
    missing = [name for name in expected if name not in arrays]
    extra = sorted(set(arrays) - set(expected))
    if missing or extra:
        what = (f"has no array '{missing[0]}'" if missing
                else f"holds array '{extra[0]}', which no layer with initial_state takes")
        raise FlowError(f"{option}: {what} (it needs {', '.join(expected)}; it has "
                        f"{', '.join(sorted(arrays)) or 'nothing'})")
    codes, values, changed = {}, {}, 0
    for name, (layer, key) in expected.items():
        value, shape = arrays[name], (sequences, *state_fields(layer)[key])
        if value.shape != shape:
            rows = "vectors" if layer.kind in CELLS else "sequences"
            raise FlowError(f"{option}: array '{name}' must have shape {shape} ({rows}, "
                            f"{'2, ' if len(shape) == 3 else ''}hidden), not {value.shape}")
        if value.dtype.kind not in "iuf":
            raise FlowError(f"{option}: array '{name}' must hold real numbers, not dtype "
                            f"{value.dtype}")
        if not np.all(np.isfinite(value)):
            raise FlowError(f"{option}: array '{name}' must hold finite numbers (found inf "
                            f"or nan)")
        value = value.astype(np.float64)
        formats = _formats(layer, key)
        if len(formats) == 1:
            code = _codes(option, name, value, formats[0])
            changed += int(np.count_nonzero(to_float(code, formats[0]) != value))
        else:   # a bidirectional layer: each direction in its own format
            parts = [_codes(option, f"{name}[:, {k}]", value[:, k], fmt)
                     for k, fmt in enumerate(formats)]
            changed += sum(int(np.count_nonzero(to_float(part, fmt) != value[:, k]))
                           for k, (part, fmt) in enumerate(zip(parts, formats)))
            code = np.stack(parts, axis=1)
        codes.setdefault(layer.name, {})[key] = code
        values.setdefault(layer.name, {})[key] = value
    if changed and note is not None:
        note(f"note: {changed} initial-state values are not codes of their formats; they "
             f"were rounded half-even")
    return codes, values
