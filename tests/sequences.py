"""Random sequences of input codes for the tests of cores over framed streams."""

import numpy as np


def random_sequences(fmt, lanes, lengths, seed=1, corners=0.2):
    """One ``(length, lanes)`` array of random codes of ``fmt`` per length (a fraction
    ``corners`` of them min, max or 0), and the framed stream of all of them back to back."""
    rng = np.random.default_rng(seed)
    xs = []
    for length in lengths:
        x = rng.integers(fmt.min_int, fmt.max_int + 1, (length, lanes))
        corner = rng.random(x.shape) < corners
        x[corner] = rng.choice([fmt.min_int, fmt.max_int, 0], corner.sum())
        xs.append(x)
    stream = {"data": np.concatenate(xs),
              "last": np.concatenate([np.arange(len(x)) == len(x) - 1 for x in xs])}
    return xs, stream
