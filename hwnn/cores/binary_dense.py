"""A binarized dense layer on the folded MAC: PE lanes × SIMD-bit XNOR-popcount products."""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..checks import ParameterTypeError, check_choice
from ..fixed import signed_bits_for
from ..plans.binary_dense import BinaryDensePlan
from ..plans.popcount import PopcountPlan
from ..ref.binary import dot_range
from ._component import owned, rejects_quietly
from .mac import FoldedMac, Product, RowOutput
from .popcount import popcount_tree
from .requantize import format_shape
from .threshold import _balanced_sum, threshold_code, thresholded

__all__ = ["BinaryDense", "XnorPopcountProduct", "SelectProduct", "ThresholdRows",
           "WEIGHT_RAM", "AUTO_BLOCK_BITS"]

#: Where the PEs' weight memories go: "auto" (block RAM from :data:`AUTO_BLOCK_BITS` bits per
#: PE on, else yosys's choice), "block" (block RAM) or "logic" (LUTs and flip-flops).
WEIGHT_RAM = ("auto", "block", "logic")
#: A PE's weight memory of at least this many bits goes to block RAM with ``"auto"``: measured
#: on the UP5K, a 64→256 layer at pe = simd = 16 (64 × 16 bits per PE) took 2796
#: LUT4 with yosys's choice (logic) and 1144 LUT4 + 16 EBR in block RAM.
AUTO_BLOCK_BITS = 1024


def _bit_function(table: int, a, w):
    """``f(a, w)``, bit ``a + 2·w`` of the truth table ``table``, as a multiplexer on ``w``
    between the functions of ``a`` it leaves (0, 1, ``a`` or ``¬a``): with a constant ``w``
    (weights in LUT constants) it is a wire, an inverter or a constant."""
    def of_a(half):
        return (Const(0, 1), ~a, a, Const(1, 1))[half]
    return Mux(w, of_a(table >> 2 & 3), of_a(table & 3))


class XnorPopcountProduct(Product):
    """A group of ``simd`` one-bit inputs times a ``simd``-bit weight word: ``scale`` times the
    popcount of the bit functions ``f_k(a_j, w_j)`` (``len(tables)·simd`` bits; for bipolar ×
    bipolar, ``2·popcount(XNOR(a, w))``; :data:`hwnn.plans.binary_dense.TERMS`).

    The popcount is ``popcount``'s tree (:func:`hwnn.cores.popcount.popcount_tree`, in a
    submodule per lane); ``depth`` is its latency (its pipeline registers, then the array's
    product register). The factor 2 is a shift, so the product costs nothing beyond the tree.

    Parameters
    ----------
    tables : tuple of int
        Truth tables of the bit functions, bit ``a + 2·w`` is ``f(a, w)``.
    scale : int
        1 or 2.
    simd : int
        Bits of a group and of a weight word.
    popcount : PopcountPlan
        A tree of ``len(tables)·simd`` bits.
    """

    def __init__(self, tables, scale: int, simd: int, popcount: PopcountPlan):
        self._tables, self._scale, self._simd, self._popcount = tuple(tables), scale, simd, popcount
        self.word_shape = unsigned(simd)
        self.shape = unsigned((scale * popcount.n).bit_length())
        self.depth = popcount.latency

    def product(self, m, name, operand, word, advance):
        bits = [_bit_function(table, operand[j], word[j]) for table in self._tables
                for j in range(self._simd)]
        tree = Module()
        m.submodules[f"popcount{name}"] = tree
        count = popcount_tree(tree, self._popcount, bits, advance)
        return count << 1 if self._scale == 2 else count


class SelectProduct(Product):
    """A group of ``simd`` integer codes ``x_j`` of ``in_format`` times a ``simd``-bit weight
    word: ``Σ (w_j ? x_j : −x_j)`` for bipolar weights, ``Σ (w_j ? x_j : 0)`` for binary ones,
    a multiplexer per code and a balanced adder tree (no multiplier). ``depth`` 1.

    Parameters
    ----------
    in_format : Format
        The codes.
    w_encoding : str
        ``"bipolar"`` or ``"binary"``.
    simd : int
        Codes per group, bits per weight word.
    """

    def __init__(self, in_format, w_encoding: str, simd: int):
        self._format, self._bipolar, self._simd = in_format, w_encoding == "bipolar", simd
        self.word_shape = unsigned(simd)
        lo, hi = dot_range(simd, "integer", w_encoding, in_format)
        self.shape = signed(max(2, signed_bits_for(lo, hi)))

    def product(self, m, name, operand, word, advance):
        width = self._format.width
        terms = []
        for j in range(self._simd):
            x = operand[j * width:(j + 1) * width]
            x = x.as_signed() if self._format.signed else x
            terms.append(Mux(word[j], x, -x if self._bipolar else 0))
        return _balanced_sum(terms)


class ThresholdRows(RowOutput):
    """Each finished dot product through its neuron's thresholds
    (:func:`hwnn.cores.threshold.threshold_code`: :class:`~hwnn.cores.threshold.MultiThreshold`'s
    comparisons and decode, without its registers), so a PE keeps ``k`` bits per finished
    neuron instead of its sum. A PE has one set of comparators for the neurons it finishes
    before its last cycle, as FINN's PEs do: the finishing neuron's thresholds are read from a
    ROM of the PE's thresholds (constants, in LUTs) by the count of neurons it has finished,
    and one more set for the neuron it finishes last, against constants.

    Parameters
    ----------
    plan : ThresholdPlan
        On the dot product's format (:attr:`BinaryDensePlan.activation
        <hwnn.plans.binary_dense.BinaryDensePlan>`).
    """

    def __init__(self, plan):
        self._plan = plan
        self.shape = format_shape(plan.out_format)

    def _channel(self, row):
        return 0 if self._plan.channels == 1 else row

    def build(self, m, row, value):
        return thresholded(m, value, self._plan, self._channel(row), f"row{row}")

    def indexed(self, m, lane, rows, index, value):
        plan = self._plan
        if len(rows) == 1:
            return self.build(m, rows[0], value)
        # A threshold may lie one past the dot product's range: one bit wider, as
        # MultiThreshold's loadable thresholds are.
        width = plan.in_format.width + 1
        padded = list(rows) + [rows[-1]] * ((1 << (len(rows) - 1).bit_length()) - len(rows))
        thresholds = []
        for level in range(plan.thresholds.shape[1]):
            codes = [int(plan.thresholds[self._channel(row), level]) for row in padded]
            threshold = Signal(signed(width), name=f"lane{lane}_threshold{level}")
            # A ROM of the lane's thresholds in finishing order, read by the row count.
            m.d.comb += threshold.eq(codes[0] if len(set(codes)) == 1
                                     else Array(Const(c, signed(width)) for c in codes)[index])
            thresholds.append(threshold)
        flips = [bool(plan.descending[self._channel(row)]) for row in padded]
        descending = Const(int(flips[0]), 1)
        if len(set(flips)) > 1:
            descending = Signal(name=f"lane{lane}_descending")
            m.d.comb += descending.eq(Array(Const(int(f), 1) for f in flips)[index])
        return threshold_code(m, value, thresholds, descending, plan.in_format,
                              plan.out_format, f"lane{lane}")


class BinaryDense(wiring.Component):
    """A binarized dense layer: ``binary_dense(plan, x)`` (:mod:`hwnn.ref.binary_dense`).

    A :class:`~hwnn.cores.mac.FoldedMac` with ``plan.pe`` lanes over the ``n_out × (n_in /
    simd)`` matrix of ``simd``-bit weight words (:attr:`BinaryDensePlan.mac
    <hwnn.plans.binary_dense.BinaryDensePlan>`): the input vector, registered, is read as
    ``n_in / simd`` groups; each lane owns ``n_out / pe`` neurons, keeps their weight words in
    a memory of depth ``ii`` (a constant when ``ii == 1``; yosys puts deep ones in block RAM)
    and forms one group's product per cycle, an :class:`XnorPopcountProduct` for one-bit inputs
    or a :class:`SelectProduct` for integer codes. Each accumulator starts at the row's
    correction ``−c·n_in`` (:mod:`hwnn.plans.binary_dense`), so it ends at the exact dot
    product in ``plan.dot_format``. With thresholds, each finished dot product goes through
    its neuron's comparators as it leaves the accumulator (:class:`ThresholdRows`, the MAC's
    :class:`~hwnn.cores.mac.RowOutput`), and the PE keeps its ``k``-bit code, not its sum.

    Throughput: one vector every ``ii = (n_out / pe) · (n_in / simd)`` cycles. Latency: the
    folded MAC's ``ii + 3 + depth`` (``depth`` the popcount tree's latency, 1 for integer
    inputs), with or without thresholds.

    Parameters
    ----------
    plan : BinaryDensePlan
        From :func:`hwnn.plans.binary_dense.plan_binary_dense`.
    weight_ram : str
        Where the weight memories (``ii`` words of ``simd`` bits per PE; constants when ``ii``
        is 1) go, one of :data:`WEIGHT_RAM` (default ``"auto"``).

    Members
    -------
    i : In(stream.Signature(data.ArrayLayout(<in_format shape>, n_in)))
        The input vector, bit (code) 0 in the least significant bits: ``unsigned(1)`` per input
        for one-bit encodings.
    o : Out(stream.Signature(data.ArrayLayout(<out_format shape>, n_out)))
        The output codes: the dot products (``plan.dot_format``) or the activation's codes.

    Raises
    ------
    TypeError, ValueError
        ``plan`` is not a BinaryDensePlan, ``weight_ram`` not one of :data:`WEIGHT_RAM` (the
        error names the parameter).
    """

    @rejects_quietly
    def __init__(self, plan, *, weight_ram: str = "auto"):
        if not isinstance(plan, BinaryDensePlan):
            raise ParameterTypeError("plan", f"plan must be a BinaryDensePlan (see "
                                             f"hwnn.plans.binary_dense.plan_binary_dense), not "
                                             f"{plan!r}")
        self._plan = plan
        self._weight_ram = check_choice(weight_ram, "weight_ram", WEIGHT_RAM)
        if weight_ram == "auto":
            weight_ram = "block" if plan.ii * plan.simd >= AUTO_BLOCK_BITS else None
        attrs = None if weight_ram is None else {"ram_style": weight_ram}
        if plan.popcount is None:
            product = SelectProduct(plan.in_format, plan.w_encoding, plan.simd)
        else:
            tables, scale, _ = plan.terms
            product = XnorPopcountProduct(tables, scale, plan.simd, plan.popcount)
        rows = None if plan.activation is None else ThresholdRows(plan.activation)
        self._mac = owned(FoldedMac(plan.mac, product, parallelism=plan.pe, row_output=rows,
                                    memory_attrs=attrs))
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(format_shape(plan.in_format),
                                                      plan.n_in))),
            "o": Out(stream.Signature(data.ArrayLayout(format_shape(plan.out_format),
                                                       plan.n_out))),
        })

    plan = property(lambda self: self._plan, doc="The BinaryDensePlan it computes.")
    weight_ram = property(lambda self: self._weight_ram,
                          doc="Where the weight memories go (:data:`WEIGHT_RAM`).")
    mac = property(lambda self: self._mac, doc="The FoldedMac that forms the dot products.")
    schedule = property(lambda self: self._mac.schedule, doc="The PE lanes' MacSchedule.")
    ii = property(lambda self: self._mac.ii, doc="Cycles between accepted inputs at full rate.")
    in_format = property(lambda self: self._plan.in_format)
    out_format = property(lambda self: self._plan.out_format)

    latency = property(lambda self: self._mac.latency,
                       doc="Cycles from an accepted input to its output, without stalls.")

    def describe(self) -> dict:
        """Parameters, formats, latency and ii, for manifests and reports."""
        return {"kind": "binary_dense", "class": "BinaryDense", "latency": self.latency,
                "ii": self.ii, "weight_ram": self._weight_ram, **self._plan.describe()}

    def elaborate(self, platform):
        m = Module()
        mac = m.submodules.mac = self._mac
        # The vector of n_in inputs and the MAC's vector of n_in/simd groups are the same
        # bits, element 0 lowest: only the view changes.
        m.d.comb += [mac.i.valid.eq(self.i.valid), self.i.ready.eq(mac.i.ready),
                     Value.cast(mac.i.payload).eq(Value.cast(self.i.payload))]
        wiring.connect(m, mac.o, wiring.flipped(self.o))
        return m
