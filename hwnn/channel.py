"""A simulated optical-like channel: PAM-2 through fibre dispersion and square-law detection.

An intensity-modulated, directly detected (IM/DD) link, reduced to what makes it hard to
equalize. Symbol ``a[n] ∈ {−1, +1}`` (equiprobable) sets the field amplitude
``u[n] = LEVELS[a[n]]`` (on-off keying with a finite extinction ratio); chromatic dispersion is
a complex FIR on the field; the photodiode detects its intensity; a fixed AC coupling and gain
centre the signal; the receiver adds white Gaussian noise:

    E[n] = sum_k h[k] · u[n + k − CENTER]
    h[k] ∝ exp(j·BETA·(k − CENTER)²) · exp(−((k − CENTER)/2)²)
    r[n] = GAIN · (|E[n]|² − MEAN) + w[n],     w ~ N(0, sigma²)

The square law mixes neighbouring symbols with each other (``u[n]·u[m]·cos(phase)`` terms), so
the inter-symbol interference is nonlinear in the symbols and a linear (FIR) equalizer leaves
errors a small nonlinear one removes. ``MEAN`` is the exact mean of ``|E|²`` over random
symbols, so ``r`` has zero mean. Everything is drawn from ``numpy.random.default_rng(seed)``:
a seed gives the same symbols and samples on every machine.

Symbols are sent in frames of ``length`` (one frame is one sequence of the equalizer) with
silence (zero field) around each, so every frame is an independent sequence, as the core
processes them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BETA", "CENTER", "GAIN", "LEVELS", "MEAN", "TAPS", "snr_db", "transmit", "ser"]

#: Field amplitude of symbol −1 and of symbol +1.
LEVELS = (0.35, 1.0)
#: Dispersion: the quadratic phase across the taps (radians per tap²).
BETA = 0.7
#: Index of the middle tap: received sample ``n`` is aligned with symbol ``n``.
CENTER = 3
_K = np.arange(2 * CENTER + 1) - CENTER
#: Field impulse response of the fibre (unit energy).
TAPS = np.exp(1j * BETA * _K ** 2) * np.exp(-(_K / 2.0) ** 2)
TAPS = TAPS / np.sqrt(np.sum(np.abs(TAPS) ** 2))
_U_MEAN, _U_VAR = np.mean(LEVELS), np.var(LEVELS)
#: Mean of ``|E|²`` over independent equiprobable symbols: ``Var(u)·Σ|h|² + E[u]²·|Σh|²``.
MEAN = float(_U_VAR * np.sum(np.abs(TAPS) ** 2) + _U_MEAN ** 2 * np.abs(np.sum(TAPS)) ** 2)
#: Receiver gain after AC coupling (puts the noiseless signal within about ±1.5).
GAIN = 2.0


def _noiseless(symbols: np.ndarray) -> np.ndarray:
    """Received samples without noise of symbol frames ``(frames, length)``."""
    length = symbols.shape[1]
    field = np.where(symbols > 0, LEVELS[1], LEVELS[0])
    padded = np.pad(field, ((0, 0), (CENTER, len(TAPS) - 1 - CENTER)))
    dispersed = sum(TAPS[k] * padded[:, k:k + length] for k in range(len(TAPS)))
    return GAIN * (np.abs(dispersed) ** 2 - MEAN)


def snr_db(sigma: float) -> float:
    """The SNR in dB of noise ``sigma``: the variance of the noiseless received signal (over
    256 000 random symbols of seed 0, frame edges included) over ``sigma**2``.

    Raises
    ------
    ValueError
        ``sigma`` is not positive.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, not {sigma!r}")
    symbols = np.random.default_rng(0).integers(0, 2, (4000, 64)) * 2.0 - 1.0
    return float(10 * np.log10(np.var(_noiseless(symbols)) / sigma ** 2))


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
    return symbols, _noiseless(symbols) + sigma * rng.standard_normal((frames, length))


def ser(estimates: np.ndarray, symbols: np.ndarray) -> float:
    """Symbol error rate of the decisions ``sign(estimates)`` (0 decides +1) against
    ``symbols``."""
    decisions = np.where(np.asarray(estimates) >= 0, 1.0, -1.0)
    return float(np.mean(decisions != symbols))
