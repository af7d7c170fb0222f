"""A simulated optical-like channel: PAM-2 symbols through dispersion, a nonlinearity and noise.

The received sample of symbol ``n`` is

    r[n] = tanh(GAIN · s[n]) / GAIN + w[n],    s[n] = sum_k h[k] · a[n + k − CENTER]

with PAM-2 symbols ``a ∈ {−1, +1}`` (equiprobable), ``h`` = :data:`TAPS` (a short, asymmetric
FIR: the inter-symbol interference of chromatic dispersion seen after square-law detection is
a few symbols long, with a heavier tail on one side), ``tanh`` a memoryless compression (a
saturating driver or photodiode amplifier) and ``w`` white Gaussian noise of standard deviation
``sigma``. Everything is drawn from ``numpy.random.default_rng(seed)``, so a seed gives the same
symbols and samples on every machine.

Symbols are sent in frames of ``length`` symbols (one frame is one sequence of the equalizer);
the channel's memory does not cross frames (each frame starts and ends with silence), so
every frame is an independent sequence, as the core processes them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TAPS", "CENTER", "GAIN", "snr_db", "transmit", "ser"]

#: Channel impulse response (main tap at index :data:`CENTER`), unit energy-ish.
TAPS = np.array([0.08, -0.20, 0.95, 0.45, -0.25, 0.12])
#: Index of the main tap: the received sample ``n`` is aligned with symbol ``n``.
CENTER = 2
#: Strength of the tanh compression (0 would be linear).
GAIN = 0.7


def snr_db(sigma: float) -> float:
    """The SNR in dB of noise ``sigma``: noiseless received power over ``sigma**2``."""
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, not {sigma!r}")
    return 10 * np.log10(np.sum(TAPS ** 2) / sigma ** 2)


def transmit(frames: int, length: int, sigma: float, seed: int):
    """Symbols ``(frames, length)`` of ±1 and the received samples ``(frames, length)``.

    ``sigma`` is the noise's standard deviation; ``seed`` seeds all randomness.

    Raises
    ------
    ValueError
        ``frames`` or ``length`` below 1, or ``sigma`` negative.
    """
    if frames < 1 or length < 1:
        raise ValueError(f"frames and length must be >= 1, not {frames!r}, {length!r}")
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, not {sigma!r}")
    rng = np.random.default_rng(seed)
    symbols = rng.integers(0, 2, (frames, length)) * 2.0 - 1.0
    # s[n] = sum_k h[k] a[n + k - CENTER]: a 'same' correlation of each frame with the taps.
    padded = np.pad(symbols, ((0, 0), (CENTER, len(TAPS) - 1 - CENTER)))
    dispersed = sum(TAPS[k] * padded[:, k:k + length] for k in range(len(TAPS)))
    received = np.tanh(GAIN * dispersed) / GAIN + sigma * rng.standard_normal((frames, length))
    return symbols, received


def ser(estimates: np.ndarray, symbols: np.ndarray) -> float:
    """Symbol error rate of the decisions ``sign(estimates)`` (0 decides +1) against
    ``symbols``."""
    decisions = np.where(np.asarray(estimates) >= 0, 1.0, -1.0)
    return float(np.mean(decisions != symbols))
