"""Lookup-table activation plans: a table of output codes indexed by the input's top bits.

Integer semantics (what :func:`hwnn.ref.lut.lut` and the core compute)::

    c, negative = fold(q) if symmetric else (q, False)
    index = (clip(c, lo, hi) - lo) >> shift
    y = table[index]
    y = unfold(y, negative) if symmetric else y

``lo``/``hi`` are the input codes the table covers (outside, the input is clamped to the
nearest end, so the table's end entries act as saturation values). ``shift`` is 0 for one entry
per input code and larger when each entry serves ``2**shift`` codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import ParameterValueError, check_choice, check_integer
from ..fixed import Format, Rounding, check_format, quantize, to_float
from ..ref.lut import lut
from .accuracy import ErrorBound, check_exhaustive, check_output_range, measure_error
from .functions import Function, check_input_range, check_symmetry, get_function

__all__ = ["LUTPlan", "plan_lut", "ENTRIES"]

#: How each entry is chosen: "minimax" minimizes the maximum error over the codes it serves;
#: "left" samples the function at the entry's lowest code (what hls4ml's tables do).
ENTRIES = ("minimax", "left")


@dataclass(frozen=True, eq=False)
class LUTPlan:
    """A table plan; see the module docstring for the exact integer semantics."""
    function: Function
    in_format: Format
    out_format: Format
    symmetric: bool
    lo: int
    hi: int
    shift: int
    table: tuple
    entries: str
    error: ErrorBound | None = None

    method = "lut"

    @property
    def table_size(self) -> int:
        """Entries covering the input range, counted over the full (unfolded) input range."""
        return 2 * len(self.table) if self.symmetric else len(self.table)

    @property
    def input_range(self) -> tuple[float, float]:
        """Real input interval the table covers (unfolded)."""
        hi = float(to_float(self.hi, self.in_format))
        lo = -hi if self.symmetric else float(to_float(self.lo, self.in_format))
        return lo, hi

    def cost(self) -> dict:
        """Stored entries and their width: what the core's ROM holds."""
        return {"stored_entries": len(self.table), "entry_bits": self.out_format.width,
                "rom_bits": len(self.table) * self.out_format.width,
                "index_bits": max(1, (len(self.table) - 1).bit_length())}

    def describe(self) -> dict:
        info = {"method": "lut", "function": self.function.name,
                "in_format": str(self.in_format), "out_format": str(self.out_format),
                "symmetric": self.symmetric, "table_size": self.table_size,
                "input_range": list(self.input_range), "shift": self.shift,
                "entries": self.entries, **self.cost()}
        if self.error is not None:
            info["error"] = self.error.describe()
        return info


def _domain(in_format: Format, symmetric: bool) -> tuple[int, int]:
    """Codes a table may cover. Folded magnitudes reach ``2**(w-1)`` (the most negative code),
    one past ``max_int``; that one code is clamped to ``max_int`` so that table spans stay powers
    of two (the measured error includes it)."""
    if symmetric:
        return 0, in_format.max_int
    return in_format.min_int, in_format.max_int


def _choose_entries(function, in_format, out_format, lo, shift, count, entries):
    """Entry values: for each entry, the code minimizing the maximum error over its codes."""
    codes = lo + np.arange(count << shift, dtype=np.int64)
    exact = function(to_float(codes, in_format)).reshape(count, 1 << shift)
    if entries == "left":
        return quantize(exact[:, 0], out_format, Rounding.HALF_EVEN)
    # Midrange of the function over the entry's codes, rounded; then the neighbours, because
    # saturation at the format's ends can make a neighbour better.
    mid = (exact.min(axis=1) + exact.max(axis=1)) / 2
    centre = quantize(mid, out_format, Rounding.HALF_EVEN)
    best, best_error = centre, None
    for delta in (-1, 0, 1):
        candidate = np.clip(centre + delta, out_format.min_int, out_format.max_int)
        error = np.abs(to_float(candidate, out_format)[:, None] - exact).max(axis=1)
        if best_error is None:
            best, best_error = candidate, error
        else:
            better = error < best_error
            best, best_error = np.where(better, candidate, best), np.minimum(error, best_error)
    return best


def plan_lut(function, in_format, out_format, *, table_size=None, input_range=None,
             symmetric=None, entries="minimax") -> LUTPlan:
    """A lookup-table plan for a smooth ``function``, with its measured error.

    Parameters
    ----------
    function : str or Function
    in_format, out_format : Format or str
    table_size : int, optional
        Entries covering ``input_range``, counted over the full (unfolded) range: a power of
        two. Default: one entry per input code of the range.
    input_range : (float, float), optional
        Real interval the table covers; inputs outside are clamped to its ends. Default: the
        whole input format. A symmetric plan needs a range symmetric about 0.
    symmetric : bool, optional
        Store only the non-negative half (default: whenever the function has a symmetry).
    entries : "minimax" or "left"

    Raises
    ------
    TypeError
        A parameter has the wrong type.
    ValueError
        Unknown function or entries kind, a non-smooth function, table_size not a power of two
        or larger than the range's codes, a bad range, symmetry the function lacks, an
        out_format that cannot hold the function's range, or an input format too wide.
    """
    function = get_function(function)
    in_format = check_format(in_format, "in_format")
    out_format = check_format(out_format, "out_format")
    check_exhaustive(in_format)
    if not function.smooth:
        raise ParameterValueError("function", f"{function.name} is computed exactly (method "
                                              f"'exact'); lookup tables are for smooth functions")
    check_choice(entries, "entries", ENTRIES)
    symmetric = check_symmetry(function, in_format, out_format, symmetric)
    lo, hi = _range_codes(in_format, symmetric, input_range)
    span = hi - lo + 1
    if table_size is None:
        stored, shift = span, 0
    else:
        table_size = check_integer(table_size, "table_size", minimum=1, none=True)
        if table_size & (table_size - 1):
            raise ParameterValueError("table_size", f"table_size must be a power of two, not "
                                                    f"{table_size}")
        stored = table_size // 2 if symmetric else table_size
        if stored < 1 or stored > span:
            raise ParameterValueError(
                "table_size", f"table_size must be between {2 if symmetric else 1} and "
                              f"{span * (2 if symmetric else 1)} (one entry per input code of "
                              f"the range), not {table_size}")
        shift = max(0, int(np.ceil(np.log2(span / stored))))
        stored = -(-span // (1 << shift))
    check_output_range(function, in_format, out_format, in_format.codes())
    table = _choose_entries(function, in_format, out_format, lo, shift, stored, entries)
    plan = LUTPlan(function=function, in_format=in_format, out_format=out_format,
                   symmetric=symmetric, lo=lo, hi=hi, shift=shift,
                   table=tuple(int(v) for v in table), entries=entries)
    error = measure_error(function, in_format, out_format, lut(plan, in_format.codes()))
    return LUTPlan(**{**plan.__dict__, "error": error})


def _range_codes(in_format, symmetric, input_range) -> tuple[int, int]:
    """The input codes ``lo``..``hi`` a table covers (folded codes when symmetric)."""
    lo, hi = _domain(in_format, symmetric)
    if input_range is None:
        return lo, hi
    code_lo, code_stop = check_input_range(input_range, in_format, symmetric, "table")
    if symmetric:
        return 0, min(hi, code_stop - 1)
    return max(lo, code_lo), min(hi, code_stop - 1)
