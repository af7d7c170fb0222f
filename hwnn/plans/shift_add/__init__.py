"""Builders of shift-add graphs for constant matrix-vector products (pure Python, no Amaranth).

Each builder takes an integer matrix ``weight`` (``n_out × n_in``) and the input ranges and
returns an exact :class:`~hwnn.plans.shift_add.adder_graph.AdderGraph` of ``y = weight @ x``:

:func:`build_csd`
    No sharing: every output sums the canonical-signed-digit terms of its weights.
:func:`build_mcm_columns`
    Per input, one multiple-constant multiplier (MCM) shares the products of that input by all
    the distinct odd weight magnitudes of its column; outputs sum them. Single constants up to
    13 bits get an optimal adder count (see :func:`mcm`).
:func:`build_cse`
    Common subexpressions across the whole matrix, da4ml-style: the most frequent two-term
    pattern becomes one adder, again and again (Hartley's method).
:func:`build_cmvm`
    The same with a lookahead among tied patterns, from minimal signed digits as well as CSD,
    on the matrix and on its transpose (:func:`transpose`): the fewest adders of these runs.
:func:`build`
    One of the above by name, or ``"best"``: the fewest adders of all.

In every builder the final sums are balanced trees (least depth), and every graph passes
:meth:`~hwnn.plans.shift_add.adder_graph.AdderGraph.verify`. Everything is deterministic.

One module per algorithm: :mod:`.adder_graph` (the graph and its builder), :mod:`.csd` (digits
and the CSD graph), :mod:`.scm` (single constants), :mod:`.mcm` (one input, many constants),
:mod:`.cse` and :mod:`.cmvm` (sharing across the matrix). This module picks among them.
"""

from __future__ import annotations

from ...checks import check_choice
from .adder_graph import (AdderGraph, Fanout, GraphBuilder, Node, Output, as_ranges, as_weight,
                          format_ranges, weight_and_ranges)
from .cmvm import build_cmvm, transpose
from .csd import build_csd, csd, csd_adders, odd_part
from .cse import build_cse
from .mcm import Step, build_mcm_columns, mcm
from .scm import scm_adders

__all__ = ["AdderGraph", "Fanout", "GraphBuilder", "METHODS", "Node", "Output", "Step",
           "as_ranges", "as_weight", "build", "build_cmvm", "build_csd", "build_cse",
           "build_mcm_columns", "csd", "csd_adders", "format_ranges", "mcm", "odd_part",
           "scm_adders", "transpose"]

METHODS = ("csd", "columns", "cse", "cmvm", "best")

_BUILDERS = {"csd": build_csd, "columns": build_mcm_columns, "cse": build_cse,
             "cmvm": build_cmvm}


def build(weight, in_ranges, method: str = "best") -> AdderGraph:
    """Build the shift-add graph of ``weight @ x`` with ``method``.

    ``"csd"``, ``"columns"``, ``"cse"``, ``"cmvm"`` name a builder; ``"best"`` keeps the fewest
    adders of them all (ties: the fewest adder bits, then that order). :func:`build_cmvm`
    includes the graph of :func:`build_cse`, so ``"best"`` runs the other three.

    Raises
    ------
    TypeError
        ``weight`` is not an integer matrix, ``in_ranges`` is malformed, or ``method`` is not a
        string.
    ValueError
        An unknown method, an empty or non-2-D ``weight``, wrong number of ranges, ``lo > hi``.
    """
    method = check_choice(method, "method", METHODS)
    rows, ranges = weight_and_ranges(weight, in_ranges)
    if method != "best":
        return _BUILDERS[method](rows, ranges)
    graphs = [f(rows, ranges) for f in (build_csd, build_mcm_columns, build_cmvm)]
    return min(graphs, key=lambda g: (g.adders, g.adder_bits))
