"""Train the CNN equalizer with numpy alone and save its weights (PyTorch names) to an .npz.

    python examples/equalizer/train.py              # writes equalizer.npz beside this file

The model, in PyTorch terms::

    nn.Sequential(nn.Conv1d(1, CHANNELS, K1, padding="same"),   # "conv1"
                  nn.ReLU(),
                  nn.Conv1d(CHANNELS, 1, K2, padding="same"))   # "conv2"

maps each received frame ``(length,)`` to one logit per sample, trained with the logistic loss
``log(1 + exp(−a·y))`` against the ±1 symbols ``a``; the decision is the logit's sign.
Training uses hand-written backpropagation and Adam on fresh frames from
:func:`hwnn.channel.transmit` every step (seeds derived from :data:`SEED`; evaluation in
``run.py`` uses other seeds), so it never sees a test symbol. Run time: about 15 s on one core.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from hwnn.channel import ser, transmit

__all__ = ["CHANNELS", "K1", "K2", "LENGTH", "SIGMA", "SEED", "forward", "train", "windows"]

CHANNELS, K1, K2 = 8, 7, 5
LENGTH = 64          # symbols per frame (the spec's sequence_length)
SIGMA = 0.1          # noise of the training (and evaluation) channel: 20.5 dB SNR
SEED = 2026
STEPS, BATCH, LR = 4000, 64, 3e-3


def windows(x: np.ndarray, k: int) -> np.ndarray:
    """``(batch, length, k, channels)``: the 'same'-padded window of each step (oldest first,
    PyTorch's padding: ``(k − 1) // 2`` zeros before, the rest after)."""
    left = (k - 1) // 2
    padded = np.pad(x, ((0, 0), (left, k - 1 - left), (0, 0)))
    return np.stack([padded[:, j:j + x.shape[1]] for j in range(k)], axis=2)


def forward(params: dict, received: np.ndarray):
    """Symbol estimates ``(batch, length)`` of frames ``received`` and what backprop needs."""
    x = received[:, :, None]
    p1 = windows(x, K1)                                           # (B, L, K1, 1)
    z1 = np.einsum("blkc,ock->blo", p1, params["conv1.weight"]) + params["conv1.bias"]
    h = np.maximum(z1, 0)
    p2 = windows(h, K2)                                           # (B, L, K2, C)
    y = np.einsum("blkc,ock->blo", p2, params["conv2.weight"]) + params["conv2.bias"]
    return y[:, :, 0], (p1, z1, p2)


def _gradients(params: dict, received: np.ndarray, symbols: np.ndarray):
    """Logistic loss of a batch and its gradient with respect to every parameter."""
    y, (p1, z1, p2) = forward(params, received)
    margin = symbols * y
    dy = (-symbols / (1 + np.exp(np.minimum(margin, 50))) / y.size)[:, :, None]   # (B, L, 1)
    grads = {"conv2.weight": np.einsum("blo,blkc->ock", dy, p2),
             "conv2.bias": dy.sum(axis=(0, 1))}
    dp2 = np.einsum("blo,ock->blkc", dy, params["conv2.weight"])   # (B, L, K2, C)
    # Each window entry j of step t is h[t + j − left]: scatter the gradients back.
    left, length = (K2 - 1) // 2, received.shape[1]
    dh = np.zeros_like(z1)
    for j in range(K2):
        lo, hi = max(0, left - j), min(length, length + left - j)
        dh[:, lo + j - left:hi + j - left] += dp2[:, lo:hi, j]
    dz1 = dh * (z1 > 0)
    grads["conv1.weight"] = np.einsum("blo,blkc->ock", dz1, p1)
    grads["conv1.bias"] = dz1.sum(axis=(0, 1))
    return float(np.mean(np.logaddexp(0, -margin))), grads


def train(steps: int = STEPS, seed: int = SEED, log=print) -> dict:
    """Float64 parameters (PyTorch names and layouts) after ``steps`` Adam steps."""
    rng = np.random.default_rng(seed)
    params = {"conv1.weight": rng.normal(0, 1 / np.sqrt(K1), (CHANNELS, 1, K1)),
              "conv1.bias": np.zeros(CHANNELS),
              "conv2.weight": rng.normal(0, 1 / np.sqrt(K2 * CHANNELS), (1, CHANNELS, K2)),
              "conv2.bias": np.zeros(1)}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(v) for k, v in params.items()}
    beta1, beta2 = 0.9, 0.999
    for step in range(1, steps + 1):
        symbols, received = transmit(BATCH, LENGTH, SIGMA, seed=seed * 1_000_003 + step)
        lr = LR * (0.1 if step > 0.8 * steps else 1.0)   # a last, finer stretch
        loss, grads = _gradients(params, received, symbols)
        for k in params:
            m[k] = beta1 * m[k] + (1 - beta1) * grads[k]
            v[k] = beta2 * v[k] + (1 - beta2) * grads[k] ** 2
            mh, vh = m[k] / (1 - beta1 ** step), v[k] / (1 - beta2 ** step)
            params[k] -= lr * mh / (np.sqrt(vh) + 1e-8)
        if step % 500 == 0 or step == steps:
            log(f"step {step}: loss {loss:.4f}")
    return params


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output", default=str(Path(__file__).with_name("equalizer.npz")))
    parser.add_argument("--steps", type=int, default=STEPS)
    args = parser.parse_args(argv)
    start = time.monotonic()
    params = train(args.steps)
    symbols, received = transmit(2000, LENGTH, SIGMA, seed=1)   # a quick check, not the test
    print(f"trained in {time.monotonic() - start:.1f} s; SER on 128 000 validation symbols: "
          f"{ser(forward(params, received)[0], symbols):.4f} (unequalized "
          f"{ser(received, symbols):.4f})")
    np.savez(args.output, **params)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
