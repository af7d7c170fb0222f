"""Train the bidirectional-LSTM equalizer with numpy alone and save its weights (PyTorch names).

    python examples/bilstm_equalizer/train.py        # writes hwnn/data/bilstm_equalizer.npz

The model, in PyTorch terms::

    lstm = nn.LSTM(1, HIDDEN, batch_first=True, bidirectional=True)   # "lstm"
    head = nn.Conv1d(2 * HIDDEN, 1, 1)                                 # "head"
    y = head(lstm(x[:, :, None])[0].transpose(1, 2))[:, 0]

maps each received frame ``(length,)`` to one logit per sample: the head is a per-step linear
map of the step's ``[h_forward(t); h_reverse(t)]``, written as a kernel-1 convolution because
that is how an hwnn network runs a linear map at every step of a sequence (its ``dense`` layers
take vectors). It is trained with the logistic loss ``log(1 + exp(−a·y))`` against the ±1
symbols ``a`` (the decision is the logit's sign) by hand-written backpropagation through time
and Adam, on fresh frames from :func:`hwnn.channel.transmit` every step (seeds derived from
:data:`SEED`; ``run.py`` and ``hwnn demo`` test on other seeds), so it never sees a test
symbol. Everything is float64 with sums in a fixed order (``np.einsum``, no BLAS): a rerun
writes the same ``.npz`` bit for bit. Run time: about 80 s on one core.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from hwnn.channel import ser, transmit
from hwnn.ref.rnn_float import sigmoid_float

__all__ = ["HIDDEN", "LENGTH", "SIGMA", "SEED", "STEPS", "WEIGHTS", "forward", "gradients",
           "initial", "train"]

HIDDEN = 4           # hidden units per direction
LENGTH = 32          # symbols per frame (the spec's sequence_length)
SIGMA = 0.2          # noise of the training (and evaluation) channel: 14.5 dB SNR
SEED = 2026
STEPS, BATCH, LR = 6000, 64, 1e-2
#: Where the weights go: the package's data, which ``hwnn demo`` ships and loads.
WEIGHTS = Path(__file__).resolve().parents[2] / "hwnn" / "data" / "bilstm_equalizer.npz"
_DIRECTIONS = ("", "_reverse")


def initial(seed: int = SEED, hidden: int = HIDDEN) -> dict:
    """PyTorch's default initialization of the model (every parameter uniform in ±1/√fan,
    fan = ``hidden`` for the LSTM, ``2·hidden`` for the head), from ``seed``; float64 arrays
    under PyTorch's ``state_dict`` names."""
    rng = np.random.default_rng(seed)
    k = 1 / np.sqrt(hidden)
    params = {}
    for suffix in _DIRECTIONS:
        for name, shape in (("weight_ih_l0", (4 * hidden, 1)),
                            ("weight_hh_l0", (4 * hidden, hidden)),
                            ("bias_ih_l0", (4 * hidden,)), ("bias_hh_l0", (4 * hidden,))):
            params[f"lstm.{name}{suffix}"] = rng.uniform(-k, k, shape)
    k = 1 / np.sqrt(2 * hidden)
    params["head.weight"] = rng.uniform(-k, k, (1, 2 * hidden, 1))
    params["head.bias"] = rng.uniform(-k, k, (1,))
    return params


def _direction(params: dict, suffix: str, x: np.ndarray):
    """Hidden states ``(batch, steps, hidden)`` of one direction over inputs ``x`` ``(batch,
    steps)`` taken in the order given, and each step's values for backpropagation."""
    w_ih = params[f"lstm.weight_ih_l0{suffix}"][:, 0]
    w_hh = params[f"lstm.weight_hh_l0{suffix}"]
    bias = params[f"lstm.bias_ih_l0{suffix}"] + params[f"lstm.bias_hh_l0{suffix}"]
    batch, steps = x.shape
    hidden = w_hh.shape[1]
    h, c = np.zeros((batch, hidden)), np.zeros((batch, hidden))
    hs, cache = np.empty((batch, steps, hidden)), []
    for t in range(steps):
        a = x[:, t, None] * w_ih + np.einsum("bk,gk->bg", h, w_hh) + bias
        i, f, o = (sigmoid_float(a[:, k * hidden:(k + 1) * hidden]) for k in (0, 1, 3))
        g = np.tanh(a[:, 2 * hidden:3 * hidden])
        cache.append((h, c, i, f, g, o))
        c = f * c + i * g
        tc = np.tanh(c)
        h = o * tc
        cache[-1] += (tc,)
        hs[:, t] = h
    return hs, cache


def _direction_gradients(params: dict, suffix: str, x: np.ndarray, cache, dhs: np.ndarray,
                         grads: dict) -> None:
    """Backpropagation through time of one direction: adds the gradients of its parameters
    for the loss gradient ``dhs`` on its hidden states (same step order as ``x``) to
    ``grads``."""
    w_hh = params[f"lstm.weight_hh_l0{suffix}"]
    batch, steps = x.shape
    hidden = w_hh.shape[1]
    dh_next, dc_next = np.zeros((batch, hidden)), np.zeros((batch, hidden))
    d_ih, d_hh, d_b = np.zeros(4 * hidden), np.zeros_like(w_hh), np.zeros(4 * hidden)
    for t in range(steps - 1, -1, -1):
        h, c, i, f, g, o, tc = cache[t]
        dh = dhs[:, t] + dh_next
        dc = dc_next + dh * o * (1 - tc ** 2)
        da = np.concatenate([dc * g * i * (1 - i), dc * c * f * (1 - f),
                             dc * i * (1 - g ** 2), dh * tc * o * (1 - o)], axis=1)
        d_ih += np.einsum("bg,b->g", da, x[:, t])
        d_hh += np.einsum("bg,bk->gk", da, h)
        d_b += da.sum(axis=0)
        dh_next = np.einsum("bg,gk->bk", da, w_hh)
        dc_next = dc * f
    grads[f"lstm.weight_ih_l0{suffix}"] = d_ih[:, None]
    grads[f"lstm.weight_hh_l0{suffix}"] = d_hh
    grads[f"lstm.bias_ih_l0{suffix}"] = d_b
    grads[f"lstm.bias_hh_l0{suffix}"] = d_b.copy()


def forward(params: dict, received: np.ndarray):
    """Logits ``(batch, length)`` of frames ``received`` ``(batch, length)``, and what
    :func:`gradients` needs."""
    forward_h, forward_cache = _direction(params, "", received)
    reverse_h, reverse_cache = _direction(params, "_reverse", received[:, ::-1])
    states = np.concatenate([forward_h, reverse_h[:, ::-1]], axis=2)
    y = np.einsum("btk,k->bt", states, params["head.weight"][0, :, 0]) + params["head.bias"][0]
    return y, (states, forward_cache, reverse_cache)


def gradients(params: dict, received: np.ndarray, symbols: np.ndarray):
    """The mean logistic loss of a batch and its gradient with respect to every parameter."""
    y, (states, forward_cache, reverse_cache) = forward(params, received)
    margin = symbols * y
    dy = -symbols / (1 + np.exp(np.minimum(margin, 50))) / y.size          # (B, L)
    grads = {"head.weight": np.einsum("bt,btk->k", dy, states)[None, :, None],
             "head.bias": dy.sum(keepdims=True).reshape(1)}
    dstates = dy[:, :, None] * params["head.weight"][0, :, 0]                # (B, L, 2H)
    hidden = dstates.shape[2] // 2
    _direction_gradients(params, "", received, forward_cache, dstates[:, :, :hidden], grads)
    _direction_gradients(params, "_reverse", received[:, ::-1], reverse_cache,
                         dstates[:, ::-1, hidden:], grads)
    return float(np.mean(np.logaddexp(0, -margin))), grads


def train(steps: int = STEPS, seed: int = SEED, log=print) -> dict:
    """Float64 parameters (PyTorch names and layouts) after ``steps`` Adam steps from
    :func:`initial`, the last fifth at a tenth of the learning rate."""
    params = initial(seed)
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(v) for k, v in params.items()}
    beta1, beta2 = 0.9, 0.999
    for step in range(1, steps + 1):
        symbols, received = transmit(BATCH, LENGTH, SIGMA, seed=seed * 1_000_003 + step)
        lr = LR * (0.1 if step > 0.8 * steps else 1.0)
        loss, grads = gradients(params, received, symbols)
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
    parser.add_argument("-o", "--output", default=str(WEIGHTS))
    parser.add_argument("--steps", type=int, default=STEPS)
    args = parser.parse_args(argv)
    start = time.monotonic()
    params = train(args.steps)
    symbols, received = transmit(2000, LENGTH, SIGMA, seed=1)   # a quick check, not the test
    print(f"trained in {time.monotonic() - start:.1f} s; SER on {symbols.size:,} validation "
          f"symbols: {ser(forward(params, received)[0], symbols):.4f} (unequalized "
          f"{ser(received, symbols):.4f})")
    np.savez(args.output, **params)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
