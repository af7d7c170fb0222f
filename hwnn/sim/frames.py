"""Sequences as framed streams: ``(sequences, steps, channels)`` arrays to and from rows with
``last``, in the order a framed stream carries them (one time step of all channels per
transfer, ``last`` on each sequence's final step)."""

from __future__ import annotations

import numpy as np

from ..checks import ParameterValueError

__all__ = ["frame", "unframe"]


def frame(x, scalar: bool = False) -> dict:
    """The framed-stream rows of sequences ``x`` ``(sequences, steps, channels)``: a dict with
    ``data`` ``(sequences·steps, channels)`` (``(sequences·steps,)`` when ``scalar``: a
    one-channel stream whose payload is a scalar) and ``last`` (true on each final step).

    Raises
    ------
    ValueError
        ``x`` is not 3-D, or its sequences are empty.
    """
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[1] == 0:
        raise ParameterValueError("x", f"sequences must have shape (sequences, steps, "
                                       f"channels) with steps >= 1, not {x.shape}")
    sequences, steps, channels = x.shape
    last = np.zeros((sequences, steps), dtype=bool)
    last[:, -1] = True
    data = x.reshape(sequences * steps, channels)
    return {"data": data[:, 0] if scalar else data, "last": last.reshape(-1)}


def unframe(outputs, sequences: int, steps: int) -> np.ndarray:
    """Output rows of a framed stream back to ``(sequences, steps, channels)``, checking that
    ``last`` marks exactly each sequence's final step.

    Raises
    ------
    ValueError
        The number of rows is not ``sequences·steps``, or ``last`` is misplaced (the message
        gives the first row where it is).
    """
    data, last = np.asarray(outputs["data"]), np.asarray(outputs["last"], dtype=bool)
    if len(data) != sequences * steps:
        raise ParameterValueError("outputs", f"{sequences} sequences of {steps} steps are "
                                             f"{sequences * steps} rows, not {len(data)}")
    want = np.zeros((sequences, steps), dtype=bool)
    if steps:
        want[:, -1] = True
    wrong = np.flatnonzero(last != want.reshape(-1))
    if len(wrong):
        raise ParameterValueError("outputs", f"last is {bool(last[wrong[0]])} on output row "
                                             f"{wrong[0]} (sequence {wrong[0] // steps}, step "
                                             f"{wrong[0] % steps} of {steps})")
    return data.reshape(sequences, steps, -1)
