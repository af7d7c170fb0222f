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

from ..checks import ParameterTypeError, ParameterValueError, check_bool, check_integer
from ..fixed import Format, to_float
from .functions import Function

__all__ = ["Piecewise", "domain_of", "check_pieces", "check_head", "is_int", "range_indices",
           "piece_ends"]


def is_int(value) -> bool:
    """An integer (Python or numpy), not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_head(plan) -> bool:
    """Check a piecewise plan's ``function``, ``in_format``, ``out_format`` and ``symmetric``;
    returns ``symmetric`` as a bool.

    Raises
    ------
    TypeError
        Not a Function, not Formats, ``symmetric`` not a bool.
    ValueError
        ``symmetric=True`` for a function without a symmetry or an unsigned input.
    """
    if not isinstance(plan.function, Function):
        raise ParameterTypeError("function", f"function must be a Function, not "
                                             f"{plan.function!r}")
    for name in ("in_format", "out_format"):
        if not isinstance(getattr(plan, name), Format):
            raise ParameterTypeError(name, f"{name} must be a Format, not "
                                           f"{getattr(plan, name)!r}")
    symmetric = check_bool(plan.symmetric, "symmetric")
    if symmetric and (plan.function.symmetry is None or not plan.in_format.signed):
        raise ParameterValueError(
            "symmetric", f"symmetric=True needs a function with a symmetry and a signed "
                         f"in_format, not {plan.function.name} on {plan.in_format}")
    return symmetric


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
    if not (is_int(range_start) and is_int(range_stop)
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


class Piecewise:
    """What a piecewise plan dataclass (``function``, ``in_format``, ``symmetric``,
    ``starts``, ``range_start``, ``range_stop`` fields) answers about its pieces."""

    @property
    def domain(self) -> tuple[int, int]:
        """Lowest and highest ``c`` (folded magnitude if symmetric), inclusive."""
        return domain_of(self.in_format, self.symmetric)

    @property
    def stored_pieces(self) -> int:
        """Pieces the hardware holds, saturation constants included."""
        return len(self.starts)

    @property
    def range_pieces(self) -> int:
        """Stored pieces inside the approximation range."""
        return len(range_indices(self.starts, self.range_start, self.range_stop))

    @property
    def input_range(self) -> tuple[float, float]:
        """Real input interval ``[low, high)`` the range pieces cover (unfolded)."""
        res = self.in_format.resolution
        if self.symmetric:
            stop = min(self.range_stop, 1 << (self.in_format.width - 1))
            return -stop * res, stop * res
        return self.range_start * res, self.range_stop * res

    @property
    def breakpoints(self) -> tuple[float, ...]:
        """Real value of each piece start (magnitudes when symmetric)."""
        return tuple(float(v) for v in to_float(np.array(self.starts), self.in_format))
