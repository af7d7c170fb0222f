"""Input checking shared by the activation reference models."""

import numpy as np

from ..checks import ParameterTypeError, ParameterValueError

__all__ = ["check_codes"]


def check_codes(fmt, q) -> np.ndarray:
    """``q`` as int64 after checking that it holds integer codes of ``fmt``.

    The errors carry ``parameter == "q"``, the name of the references' input argument.

    Raises
    ------
    TypeError
        ``q`` is not integer.
    ValueError
        ``q`` holds a code outside ``fmt`` (the message names the first one).
    """
    q = np.asarray(q)
    if q.dtype == np.bool_ or not np.issubdtype(q.dtype, np.integer):
        raise ParameterTypeError("q", f"inputs must be integer codes of {fmt}, not dtype "
                                      f"{q.dtype}")
    if q.dtype == np.uint64 and q.size and q.max() > np.iinfo(np.int64).max:
        raise ParameterValueError("q", f"inputs hold codes outside {fmt} [{fmt.min_int}, "
                                       f"{fmt.max_int}]")
    if q.size and not fmt.contains(q).all():
        bad = q[~fmt.contains(q)].ravel()[0]
        raise ParameterValueError("q", f"inputs hold the code {int(bad)}, outside {fmt} "
                         f"[{fmt.min_int}, {fmt.max_int}]")
    return q.astype(np.int64)
