"""Timing models of the cores a network chains, composed into the network's.

Each model answers: when a core whose output is always taken is offered input transfer ``k``
from cycle ``arrivals[k]`` on, in which cycle does it take each input and send each output?
A sequence core (:class:`~hwnn.cores.conv1d.Conv1d`, :class:`~hwnn.cores.pool.Pool1d`,
:class:`~hwnn.cores.flatten.Flatten`) has its own ``schedule(lengths, arrivals)``; every other
core is a pipeline that takes a transfer at most every ``ii`` cycles and sends its result
``latency`` cycles later (:func:`pipeline_schedule`). :func:`chain_schedule` feeds each core's
output cycles to the next core as its arrivals; it is exact as long as no core holds up the
one before it, which it checks.
"""

from __future__ import annotations

import numpy as np

from ..checks import ParameterValueError, check_integer

__all__ = ["chain_schedule", "check_arrivals", "last_steps", "layer_lengths",
           "pipeline_schedule", "sequence_pipeline", "timing_against_model"]


def check_arrivals(arrivals, total: int, name: str = "arrivals") -> np.ndarray:
    """``arrivals`` (called ``name`` in the message) as an int64 array of ``total``
    non-decreasing non-negative cycles (None: all 0, every transfer offered from the start).

    Raises
    ------
    ValueError
        ``arrivals`` is anything else (the message says what it must be).
    """
    if arrivals is None:
        return np.zeros(total, dtype=np.int64)
    array = np.asarray(arrivals)
    if (array.shape != (total,) or not np.issubdtype(array.dtype, np.integer)
            or (total and (array[0] < 0 or (np.diff(array) < 0).any()))):
        raise ParameterValueError(name, f"{name} must be {total} non-decreasing "
                                        f"non-negative integers, one per "
                                        f"{'input' if name == 'arrivals' else 'output'} step, "
                                        f"not {arrivals!r}")
    return array.astype(np.int64)


def pipeline_schedule(ii: int, latency: int, arrivals) -> tuple[np.ndarray, np.ndarray]:
    """``(in_cycles, out_cycles)`` of a pipeline with initiation interval ``ii`` and
    ``latency``: transfer ``k`` is taken at ``max(arrivals[k], in_cycles[k − 1] + ii)`` and
    sent ``latency`` cycles later."""
    ins = np.asarray(arrivals, dtype=np.int64).copy()
    for k in range(1, len(ins)):
        ins[k] = max(ins[k], ins[k - 1] + ii)
    return ins, ins + latency


def sequence_pipeline(lengths, arrivals, ii: int, latency: int):
    """``(lengths, in_cycles, out_cycles)`` of back-to-back sequences of ``lengths`` steps
    through a pipeline (:func:`pipeline_schedule`), step ``k`` offered from cycle
    ``arrivals[k]`` (None: all from cycle 0): the lengths checked, and every step's cycles.

    Raises
    ------
    ValueError
        ``lengths`` holds a negative number, or ``arrivals`` is not one non-decreasing
        non-negative integer per step.
    """
    lengths = [check_integer(n, "lengths[i]", minimum=0) for n in lengths]
    ins, outs = pipeline_schedule(ii, latency, check_arrivals(arrivals, sum(lengths)))
    return lengths, ins, outs


def last_steps(lengths) -> np.ndarray:
    """The stream index of each non-empty sequence's last step."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return (np.cumsum(lengths) - 1)[lengths > 0]


def layer_lengths(layer, lengths):
    """What the layer after ``layer`` receives, given what ``layer`` receives: the sequence
    lengths after a conv1d or pool, a vector count after a flatten (sequences of its length
    only; others are dropped) or a last step (one per non-empty sequence), else the same."""
    if layer.kind in ("conv1d", "pool"):
        return [layer.plan.out_length(n) for n in lengths]
    if layer.kind == "flatten":
        return sum(n == layer.plan.steps for n in lengths)
    if layer.kind == "last":
        return sum(n > 0 for n in lengths)
    return lengths


def _transfers(lengths) -> int:
    return lengths if isinstance(lengths, int) else sum(lengths)


def _core_schedule(layer, core, lengths, arrivals, taken=None):
    if layer.kind in ("dense", "activation"):
        return pipeline_schedule(core.ii, core.latency, arrivals)
    if taken is not None:
        return core.schedule(lengths, arrivals, taken=taken)
    return core.schedule(lengths, arrivals)


def chain_schedule(layers, cores, lengths, arrivals, gate: int | None = None):
    """``(in_cycles, out_cycles)`` of ``cores`` (built for ``layers``) chained by streams, the
    last output always taken, the first input offered as ``arrivals`` says and, with
    ``gate``, taken at most every ``gate`` cycles (the network's input throttle).

    A core whose ``schedule`` models outputs taken late (``holds_outputs``: a
    :class:`~hwnn.cores.bidirectional.Bidirectional` takes ``taken``, the earliest cycle each
    output can go) may be held up by the core after it: the chain is then scheduled again
    with the cycles that core takes them in, until every output goes in the cycle the next
    core takes it (each pass fixes at least one more transfer, and times only grow).

    Raises
    ------
    NotImplementedError
        Any other core would not take a transfer in the cycle the core before it sends it:
        the model of each such core assumes its output is always taken, so the chain's timing
        is then not modelled (the message names the two layers and the cycle).
    """
    arrivals = np.asarray(arrivals, dtype=np.int64)
    taken = {}
    for _ in range(_transfers(lengths) * len(cores) + 1):
        schedule, held = _chain_pass(layers, cores, lengths, arrivals, gate, taken)
        if held is None:
            return schedule
        index, ins, k, offered = held
        if not getattr(cores[index], "holds_outputs", False):
            raise NotImplementedError(
                f"layer {layers[index + 1].name!r} would hold up layer {layers[index].name!r} "
                f"(its transfer {k}, sent in cycle {int(offered[k])}, taken in cycle "
                f"{int(ins[k])}): the timing of a chain whose layers wait for each other is "
                f"not modelled")
        taken[index] = ins
    raise AssertionError("the chain's schedule does not settle")


def _chain_pass(layers, cores, lengths, arrivals, gate, taken):
    """One pass of :func:`chain_schedule`: ``((in_cycles, out_cycles) of the chain, None)``,
    or ``(None, (index, in_cycles, k, offered))`` of the first core (at ``index + 1``) that
    would take transfer ``k`` later than core ``index`` offers it."""
    ins, outs = _first_schedule(layers[0], cores[0], lengths, arrivals, gate, taken.get(0))
    first_ins = ins
    for index, (before, layer, core) in enumerate(zip(layers, layers[1:], cores[1:])):
        lengths = layer_lengths(before, lengths)
        offered = outs
        ins, outs = _core_schedule(layer, core, lengths, offered, taken.get(index + 1))
        late = np.flatnonzero(ins != offered)
        if late.size:
            return None, (index, ins, int(late[0]), offered)
    return (first_ins, outs), None


def _first_schedule(layer, core, lengths, arrivals, gate, taken=None):
    """The first core's schedule behind the input throttle: transfer ``k`` is offered from
    ``max(arrivals[k], in_cycles[k − 1] + gate)``. Each pass fixes at least one more leading
    transfer, so passes repeat until nothing moves."""
    offered = arrivals
    for _ in range(_transfers(lengths) + 1):
        ins, outs = _core_schedule(layer, core, lengths, offered, taken)
        if gate is None:
            return ins, outs
        wanted = arrivals.copy()
        wanted[1:] = np.maximum(arrivals[1:], ins[:-1] + gate)
        if np.array_equal(wanted, offered):
            return ins, outs
        offered = wanted
    raise AssertionError("the input throttle's schedule does not settle")


def timing_against_model(core, lengths, in_cycles, out_cycles) -> str:
    """Whether a run without stalls took every input and sent every output in the cycle
    ``core.schedule(lengths)`` says: ``"as modelled"``, ``"not modelled (<why>)"``, or
    ``"MISMATCH: <the first cycle that differs>"``."""
    try:
        model = core.schedule(lengths)
    except NotImplementedError as exc:
        return f"not modelled ({exc})"
    for what, got, want in zip(("input", "output"), (in_cycles, out_cycles), model):
        got = np.asarray(got)
        if not np.array_equal(got, want):
            k = int(np.flatnonzero(got != want)[0]) if len(got) == len(want) else 0
            return f"MISMATCH: {what} {k} in cycle {int(got[k])}, the model says {int(want[k])}"
    return "as modelled"
