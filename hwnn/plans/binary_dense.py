"""The plan of a binarized dense layer folded by PE (neurons) × SIMD (input bits per cycle).

A layer computes, for every neuron ``r`` of ``n_out``, the dot product ``s_r`` of the input
vector with the one-bit weight row ``r`` (:func:`hwnn.ref.binary.binary_dot` for one-bit
inputs, :func:`hwnn.ref.binary.integer_dot` for integer codes, a BNN's first layer), then
optionally a multi-threshold activation of ``s`` (:func:`hwnn.ref.binary.multithreshold`).
:func:`hwnn.ref.binary_dense.binary_dense` is the reference.

Folding (FINN's matrix-vector unit): the input vector is ``n_in / simd`` groups of ``simd``
values; ``pe`` processing elements each own ``n_out / pe`` consecutive neurons and take one
group and one ``simd``-bit weight word per cycle, so a vector takes exactly ``ii = (n_out /
pe) · (n_in / simd)`` cycles. That is :class:`~hwnn.cores.mac.FoldedMac`'s schedule with
``parallelism = pe`` over the ``n_out × (n_in / simd)`` matrix of weight words, which
:attr:`BinaryDensePlan.mac` describes.

One-bit inputs: the product of a group is a popcount. Per bit position, the decoded product
``a·w`` of the two encodings is ``scale · Σ_k f_k(a, w) − c`` for one or two bit functions
``f_k`` (:data:`TERMS`, truth tables indexed by ``a + 2·w``)::

    bipolar × bipolar   2 · XNOR(a, w) − 1                 (FINN: 2·popcount(XNOR) − N)
    binary × bipolar    (a AND w) + (NOT a OR w) − 1
    bipolar × binary    (a AND w) + (a OR NOT w) − 1
    binary × binary     a AND w

so a group's product is ``scale`` times the popcount of its ``len(f)·simd`` function bits
(``scale = 2`` is a shift, a wire), and the ``− c·N`` of the whole row is the accumulator's
start value (the folded MAC's bias): the accumulated sum is the dot product itself, with no
correction after the accumulator. Integer inputs: the product of a group is ``Σ (w ? x :
−x)`` (``Σ (w ? x : 0)`` for binary weights) over its ``simd`` codes.

The accumulator (:attr:`BinaryDensePlan.dot_format`) holds the exact range of the dot product
(:func:`hwnn.ref.binary.dot_range`), which contains every partial sum: they start at ``−c·N``
and only grow by non-negative products for one-bit inputs, and are dot products of fewer terms
for integer inputs. Thresholds given in the dot product's domain (any format with its fraction
bits that holds that range) are moved onto :attr:`~BinaryDensePlan.dot_format` by clipping them
to ``[dot.min_int, dot.max_int + 1]``, which changes no comparison ``s ≥ T`` of a reachable
``s``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import ParameterTypeError, ParameterValueError, check_choice, check_integer
from ..fixed import MAX_WIDTH, SQ, UQ, Format, Overflow, Rounding, check_format, signed_bits_for
from ..ref.binary import ENCODINGS, check_bits, dot_range
from .dense import DensePlan, check_weight_count
from .popcount import METHODS, PopcountPlan, plan_popcount
from .threshold import ThresholdPlan

__all__ = ["TERMS", "BinaryDensePlan", "plan_binary_dense"]

#: ``(activation, weight) encoding → (truth tables, scale, c)``: the decoded product of one bit
#: position is ``scale · Σ f(a, w) − c`` with ``f(a, w)`` bit ``a + 2·w`` of each table.
TERMS = {
    ("bipolar", "bipolar"): ((0b1001,), 2, 1),          # XNOR
    ("binary", "bipolar"): ((0b1000, 0b1101), 1, 1),    # a AND w, NOT a OR w
    ("bipolar", "binary"): ((0b1000, 0b1011), 1, 1),    # a AND w, a OR NOT w
    ("binary", "binary"): ((0b1000,), 1, 0),            # a AND w
}


@dataclass(frozen=True, eq=False)
class BinaryDensePlan:
    """A binarized dense layer, folded (module docstring). Build one with
    :func:`plan_binary_dense`.

    Attributes
    ----------
    weights : int64 array (n_out, n_in) of 0/1
        The weight bits, in ``w_encoding``.
    in_encoding : str
        ``"bipolar"``, ``"binary"`` (one bit per input) or ``"integer"`` (codes of
        ``in_format``).
    w_encoding : str
        ``"bipolar"`` or ``"binary"``.
    in_format : Format
        The codes of one input: ``UQ(1, 0)`` for one-bit inputs.
    pe, simd : int
        Neurons in parallel, input values per cycle.
    dot_format : Format
        Exact format of the dot product (and of every partial sum): signed, ``in_format.f``
        fraction bits (0 for one-bit inputs).
    mac : DensePlan
        The folded MAC over ``n_out × (n_in / simd)`` weight words: ``in_format`` one group of
        inputs (``UQ(simd·bits, 0)``), ``weight_format`` one word (``UQ(simd, 0)``, bit ``j`` the
        weight of the group's input ``j``), bias ``−c·n_in`` per row, accumulator and output
        ``dot_format`` (nothing is narrowed).
    popcount : PopcountPlan or None
        The tree of one group's ``len(terms)·simd`` function bits (None for integer inputs).
    thresholds : ThresholdPlan or None
        The activation as given (``None``: the layer outputs the dot product).
    activation : ThresholdPlan or None
        ``thresholds`` moved onto ``dot_format`` (what the core compares against).
    """
    weights: np.ndarray
    in_encoding: str
    w_encoding: str
    in_format: Format
    pe: int
    simd: int
    dot_format: Format
    mac: DensePlan
    popcount: PopcountPlan | None
    thresholds: ThresholdPlan | None
    activation: ThresholdPlan | None

    n_out = property(lambda self: self.weights.shape[0], doc="Neurons.")
    n_in = property(lambda self: self.weights.shape[1], doc="Inputs.")
    groups = property(lambda self: self.n_in // self.simd,
                      doc="Groups of ``simd`` inputs in a vector (weight words per neuron).")

    @property
    def ii(self) -> int:
        """Cycles per vector: ``(n_out / pe) · (n_in / simd)``."""
        return (self.n_out // self.pe) * self.groups

    @property
    def out_format(self) -> Format:
        """The output codes: the activation's, or ``dot_format`` without thresholds."""
        return self.dot_format if self.activation is None else self.activation.out_format

    @property
    def terms(self) -> tuple:
        """``(truth tables, scale, c)`` of one-bit inputs (:data:`TERMS`); None for integer
        inputs."""
        if self.in_encoding == "integer":
            return None
        return TERMS[(self.in_encoding, self.w_encoding)]

    def binary_ops(self) -> dict:
        """Operations per vector: ``xnor`` (the bit functions, one per weight bit and term),
        ``popcount_adds`` (the additions of the popcount trees: a tree of ``n`` bits adds
        ``n − 1`` times), ``accumulate`` (accumulator additions, one per weight word) and
        ``compare`` (threshold comparisons); for integer inputs ``select`` (``w ? x : −x``)
        replaces the first two and ``adds`` counts the group sums' additions."""
        words = self.n_out * self.groups
        compare = 0 if self.activation is None else self.n_out * self.activation.thresholds.shape[1]
        if self.popcount is None:
            return {"select": self.n_out * self.n_in, "adds": words * (self.simd - 1),
                    "accumulate": words, "compare": compare}
        return {"xnor": words * self.popcount.n, "popcount_adds": words * (self.popcount.n - 1),
                "accumulate": words, "compare": compare}

    def describe(self) -> dict:
        """A JSON-serializable summary for manifests and reports."""
        info = {"n_in": self.n_in, "n_out": self.n_out, "pe": self.pe, "simd": self.simd,
                "ii": self.ii, "in_encoding": self.in_encoding, "w_encoding": self.w_encoding,
                "in_format": str(self.in_format), "dot_format": str(self.dot_format),
                "out_format": str(self.out_format), "binary_ops": self.binary_ops()}
        if self.popcount is not None:
            info["popcount"] = {key: self.popcount.describe()[key]
                                for key in ("method", "n", "pipeline", "levels", "latency")}
        if self.activation is not None:
            info["thresholds"] = {"channels": self.activation.channels, "k": self.activation.k,
                                  "source": self.activation.source}
        return info


def _in_encoding(value) -> tuple[str, Format]:
    """``(encoding, format of one input)`` of the ``in_encoding`` argument."""
    if isinstance(value, Format):
        return "integer", value
    if isinstance(value, str) and value in ENCODINGS:
        return value, UQ(1, 0)
    if isinstance(value, str):
        try:
            return "integer", check_format(value, "in_encoding")
        except ValueError:
            pass
    kind = ParameterValueError if isinstance(value, str) else ParameterTypeError
    raise kind("in_encoding", f"in_encoding must be one of {' | '.join(ENCODINGS)} or a Format "
                              f"of integer inputs, not {value!r}")


def _activation(thresholds, dot_format: Format, lo: int, hi: int, n_out: int):
    """``thresholds`` (checked) moved onto ``dot_format`` (module docstring)."""
    if thresholds is None:
        return None
    if not isinstance(thresholds, ThresholdPlan):
        raise ParameterTypeError("thresholds", f"thresholds must be a ThresholdPlan (see "
                                               f"hwnn.plans.threshold) or None, not "
                                               f"{thresholds!r}")
    fmt = thresholds.in_format
    if fmt.f != dot_format.f or not (fmt.min_int <= lo and hi <= fmt.max_int):
        raise ParameterValueError("thresholds", f"thresholds must compare the dot product: an "
                                                f"in_format with {dot_format.f} fraction bits "
                                                f"that holds its codes [{lo}, {hi}], not "
                                                f"{fmt}")
    if thresholds.channels not in (1, n_out):
        raise ParameterValueError("thresholds", f"thresholds must have 1 or n_out = {n_out} "
                                                f"channels, not {thresholds.channels}")
    moved = np.clip(thresholds.thresholds, dot_format.min_int, dot_format.max_int + 1)
    return ThresholdPlan(dot_format, thresholds.out_format, moved, thresholds.descending,
                         thresholds.source)


def _pack(weights: np.ndarray, simd: int) -> np.ndarray:
    """The weight words: word ``g`` of row ``r`` has bit ``j`` = ``weights[r, g·simd + j]``."""
    n_out, n_in = weights.shape
    groups = weights.reshape(n_out, n_in // simd, simd)
    return (groups << np.arange(simd, dtype=np.int64)).sum(axis=2, dtype=np.int64)


def plan_binary_dense(weights, *, in_encoding="bipolar", w_encoding: str = "bipolar",
                      pe: int = 1, simd: int = 1, thresholds=None,
                      popcount_method: str = "adder_tree", popcount_pipeline: int = 0
                      ) -> BinaryDensePlan:
    """Plan a binarized dense layer folded by ``pe`` × ``simd`` (module docstring).

    Parameters
    ----------
    weights : array (n_out, n_in) of 0/1 (ints or bools)
        The weight bits in ``w_encoding`` (bipolar: bit 1 is +1, bit 0 is −1).
    in_encoding : str or Format
        ``"bipolar"`` or ``"binary"`` for one-bit inputs, or the Format (or format string) of
        integer input codes (a BNN's first layer).
    w_encoding : str
        ``"bipolar"`` or ``"binary"``.
    pe : int
        Processing elements (neurons computed in parallel); must divide ``n_out``.
    simd : int
        Inputs per cycle; must divide ``n_in``, and a group of ``simd`` inputs (``simd`` bits,
        or ``simd`` codes) is at most :data:`~hwnn.fixed.MAX_WIDTH` bits.
    thresholds : ThresholdPlan, optional
        A multi-threshold activation of the dot product: its ``in_format`` has the dot
        product's fraction bits (0, or ``in_format.f`` for integer inputs) and holds every dot
        product (:func:`hwnn.ref.binary.dot_range`); 1 or ``n_out`` channels.
    popcount_method, popcount_pipeline : str, int
        The popcount tree of one-bit inputs (:func:`hwnn.plans.popcount.plan_popcount`'s
        ``method`` and ``pipeline``).

    Raises
    ------
    TypeError, ValueError
        ``weights`` is not a non-empty 2-D array of bits (or has more than
        :data:`~hwnn.plans.dense.MAX_WEIGHTS`), an encoding is unknown, ``pe`` or ``simd`` is
        not a positive integer dividing ``n_out`` or ``n_in`` or ``simd`` makes a group too
        wide, ``thresholds`` is not a ThresholdPlan in the dot product's domain, or the
        popcount options are bad (the error names the parameter).
    """
    weights = check_bits(weights, "weights")
    if weights.ndim != 2 or 0 in weights.shape:
        raise ParameterValueError("weights", f"weights must be a non-empty 2-D array (n_out, "
                                             f"n_in), not shape {weights.shape}")
    n_out, n_in = weights.shape
    check_weight_count(n_out, n_in, "weights", "weights' n_out·n_in")
    encoding, in_format = _in_encoding(in_encoding)
    w_encoding = check_choice(w_encoding, "w_encoding", ENCODINGS)
    pe = check_integer(pe, "pe", minimum=1)
    if n_out % pe:
        raise ParameterValueError("pe", f"pe must divide n_out = {n_out} (each PE computes "
                                        f"n_out/pe whole neurons), not {pe}")
    simd = check_integer(simd, "simd", minimum=1)
    if n_in % simd:
        raise ParameterValueError("simd", f"simd must divide n_in = {n_in} (a vector is n_in/"
                                          f"simd whole groups), not {simd}")
    popcount_method = check_choice(popcount_method, "popcount_method", METHODS)
    popcount_pipeline = check_integer(popcount_pipeline, "popcount_pipeline", minimum=0)
    bits = in_format.width
    if simd * bits > MAX_WIDTH:
        raise ParameterValueError("simd", f"simd must be at most {MAX_WIDTH // bits} for "
                                          f"{bits}-bit inputs (a group is one word of at most "
                                          f"MAX_WIDTH = {MAX_WIDTH} bits), not {simd}")
    if encoding == "integer":
        lo, hi = dot_range(n_in, "integer", w_encoding, in_format)
        bias, popcount = 0, None
    else:
        lo, hi = dot_range(n_in, encoding, w_encoding)
        tables, _, c = TERMS[(encoding, w_encoding)]
        bias = -c * n_in
        popcount = plan_popcount(len(tables) * simd, popcount_method, popcount_pipeline)
    dot_format = SQ(max(2, signed_bits_for(lo, hi)) - in_format.f, in_format.f)
    activation = _activation(thresholds, dot_format, lo, hi, n_out)
    words = _pack(weights, simd)
    words.setflags(write=False)
    bias_codes = np.full(n_out, bias, dtype=np.int64)
    bias_codes.setflags(write=False)
    weights.setflags(write=False)
    mac = DensePlan(in_format=UQ(simd * bits, 0), weight_format=UQ(simd, 0),
                    out_format=dot_format, acc_format=dot_format, rounding=Rounding.TRUNC,
                    overflow=Overflow.WRAP, weight=words, bias=bias_codes)
    return BinaryDensePlan(weights=weights, in_encoding=encoding, w_encoding=w_encoding,
                           in_format=in_format, pe=pe, simd=simd, dot_format=dot_format,
                           mac=mac, popcount=popcount, thresholds=thresholds,
                           activation=activation)
