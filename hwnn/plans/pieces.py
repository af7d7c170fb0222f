"""What piecewise plans (PWL, polynomial) share: the domain, the pieces' starts, the
approximation range and the uniform grid, with the checks that keep them consistent.

A piecewise plan covers the domain (folded magnitudes ``0 .. 2**(width-1)`` when symmetric,
every input code otherwise) with pieces ``starts[j] <= c < starts[j+1]``. Pieces starting inside
the approximation range ``[range_start, range_stop)`` approximate the function; the others are
saturation constants. A uniform plan's range pieces all have width ``2**segment_bits``.
"""

from __future__ import annotations

import bisect

import numpy as np

from ..checks import ParameterValueError, check_bool, check_integer
from ..fixed import Format, to_float

__all__ = ["domain_of", "check_pieces", "range_indices", "piece_ends", "real_input_range",
           "breakpoints_of"]


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def domain_of(in_format: Format, symmetric: bool) -> tuple[int, int]:
    """Lowest and highest ``c`` a plan sees (folded magnitudes reach ``2**(width-1)``)."""
    if symmetric:
        return 0, 1 << (in_format.width - 1)
    return in_format.min_int, in_format.max_int


def range_indices(starts, range_start, range_stop) -> range:
    """Indices of the pieces inside the approximation range."""
    first = starts.index(range_start)
    return range(first, bisect.bisect_left(starts, range_stop))


def piece_ends(starts, in_format: Format, symmetric: bool) -> list[int]:
    """One past the last code of each piece."""
    high = domain_of(in_format, symmetric)[1]
    return list(starts[1:]) + [high + 1]


def real_input_range(in_format, symmetric, range_start, range_stop) -> tuple[float, float]:
    """Real input interval ``[low, high)`` the range pieces cover (unfolded)."""
    res = in_format.resolution
    if symmetric:
        stop = min(range_stop, 1 << (in_format.width - 1))
        return -stop * res, stop * res
    return range_start * res, range_stop * res


def breakpoints_of(starts, in_format) -> tuple[float, ...]:
    """Real value of each piece start (magnitudes when symmetric)."""
    return tuple(float(v) for v in to_float(np.array(starts), in_format))


def check_pieces(starts, in_format, symmetric, range_start, range_stop, uniform, segment_bits,
                 constant, constant_rule) -> tuple[bool, int | None]:
    """Check a plan's partition; returns ``(uniform, segment_bits)`` normalized.

    ``constant[j]`` says whether piece ``j`` is a constant; pieces outside the range must be,
    and ``constant_rule`` is ``(parameter, what)`` for the error ("slopes", "its slope must be
    0").

    Raises
    ------
    ValueError
        A first start that is not the domain's low end, unordered starts or starts beyond the
        domain, a range that is empty, outside the domain or not on piece starts, a
        non-constant piece outside the range, or uniform range pieces off their grid.
    """
    low, high = domain_of(in_format, symmetric)
    if starts[0] != low:
        raise ParameterValueError("starts", f"starts[0] must be the domain's low end {low}, "
                                            f"not {starts[0]}")
    if any(b <= a for a, b in zip(starts, starts[1:])) or starts[-1] > high:
        raise ParameterValueError("starts", f"starts must be strictly ascending codes within "
                                            f"[{low}, {high}], not {starts!r}")
    if not (_is_int(range_start) and _is_int(range_stop)
            and low <= range_start < range_stop <= high + 1):
        raise ParameterValueError(
            "range_start", f"range [{range_start}, {range_stop}) must be a non-empty part of "
                           f"the domain [{low}, {high + 1})")
    if range_start not in starts or (range_stop <= high and range_stop not in starts):
        raise ParameterValueError("range_start", "range_start and range_stop must be piece "
                                                 "starts")
    outside = [j for j, c in enumerate(starts)
               if not range_start <= c < range_stop and not constant[j]]
    if outside:
        parameter, what = constant_rule
        raise ParameterValueError(parameter, f"piece {outside[0]} lies outside the range, so "
                                             f"{what}")
    uniform = check_bool(uniform, "uniform")
    if uniform:
        segment_bits = check_integer(segment_bits, "segment_bits", minimum=0)
        width = 1 << segment_bits
        inside = [starts[j] for j in range_indices(starts, range_start, range_stop)]
        # The last may be shorter, or one code longer for the lone folded code 2**(w-1).
        lone = symmetric and range_stop == high + 1
        if inside != list(range(range_start, range_start + width * len(inside), width)) \
                or range_stop - inside[-1] > width + lone:
            raise ParameterValueError(
                "starts", f"a uniform plan's range pieces must start every 2**{segment_bits} "
                          f"codes from {range_start}")
    elif segment_bits is not None:
        raise ParameterValueError("segment_bits", f"segment_bits must be None for a "
                                                  f"non-uniform plan, not {segment_bits!r}")
    return uniform, segment_bits
