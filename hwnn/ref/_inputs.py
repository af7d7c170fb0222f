"""Input checking shared by the activation reference models."""

import numpy as np

__all__ = ["check_codes"]


def check_codes(fmt, q) -> np.ndarray:
    """``q`` as int64 after checking that it holds integer codes of ``fmt``.

    Raises
    ------
    TypeError
        ``q`` is not integer.
    ValueError
        ``q`` holds a code outside ``fmt`` (the message names the first one).
    """
    q = np.asarray(q)
    if q.dtype == np.bool_ or not np.issubdtype(q.dtype, np.integer):
        raise TypeError(f"inputs must be integer codes of {fmt}, not dtype {q.dtype}")
    if q.dtype == np.uint64 and q.size and q.max() > np.iinfo(np.int64).max:
        raise ValueError(f"inputs hold codes outside {fmt} [{fmt.min_int}, {fmt.max_int}]")
    if q.size and not fmt.contains(q).all():
        bad = q[~fmt.contains(q)].ravel()[0]
        raise ValueError(f"inputs hold the code {int(bad)}, outside {fmt} "
                         f"[{fmt.min_int}, {fmt.max_int}]")
    return q.astype(np.int64)
