"""Analytic complexity of layers and networks: RM (RMpS), BoP and NABS.

Three measures from the literature on neural networks in signal processing, computed exactly
from a layer's hyperparameters, its quantized weights and, for shift-add layers, its adder graph
(nothing is synthesized or simulated):

RM, real multiplications (RMpS per output sample)
    The multiplications of one output step of the layer's algorithm: ``n_out·n_in`` for a
    dense layer (one input vector), ``out_channels·(in_channels/groups)·kernel`` for a conv1d
    layer (one output sample: this is its RMpS, "real multiplications per sample"). P. J.
    Freire et al., "Computational complexity evaluation of neural network applications in
    signal processing", arXiv:2206.12191 (2022). RM is the algorithm's count, whatever the
    arithmetic: a shift-add layer has RM multiplications computed as shifts and additions (its
    NABS), zero weights included (pruning is what BoP's ``p`` accounts for).
BoP, bit operations
    ``m·n·k·(p·b_a·b_w + b_a + b_w + log2(n·k))`` for ``m`` outputs, ``n`` inputs per output
    channel, ``k`` kernel taps, ``b_a``-bit activations, ``b_w``-bit weights and a fraction
    ``p`` of non-zero weights: the multiplications' bit products plus the accumulator width of
    the additions. C. Baskin et al., "UNIQ: uniform noise injection for non-uniform
    quantization of neural networks", ACM TOCS 37 (2021), in Freire et al.'s form. The
    literature writes it for 2-D kernels, ``k²`` taps; a 1-D convolution has ``k`` taps, so
    hwnn counts ``k`` (for a dense layer ``k = 1`` and both agree).
NABS, additions and bit shifts
    What a layer costs once every multiplication by a constant is written as shifts and
    additions (Freire et al.). An addition or subtraction of two operands counts 1, a shift by
    a non-zero constant amount counts 1; negation, rounding and saturation count 0 (the
    requantize stage every layer ends with is left out of every measure).

Binarized layers (:mod:`hwnn.plans.binary_dense`) have no multiplications (RM 0): their
products are bit functions, counted as ``xnors`` (an XNOR, or for mixed encodings the AND/OR
pairs of :data:`~hwnn.plans.binary_dense.TERMS`, one per weight bit and function), and their
popcounts are additions (a popcount of ``n`` bits adds ``n − 1`` times); BoP is the formula's
with ``b_a`` the input's width (1 for bits) and ``b_w = 1``.

The counts of one layer are a :class:`LayerMetrics`; :func:`layer_metrics` derives them from a
plan (or a core that holds one) and :func:`network_metrics` adds them up.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields

import numpy as np

from .checks import ParameterTypeError, ParameterValueError, check_choice, check_integer
from .plans.bidirectional import BidirectionalPlan
from .plans.binary_dense import BinaryDensePlan
from .plans.conv1d import Conv1dPlan
from .plans.dense import ARITHMETIC, DensePlan, shift_add_graph
from .plans.exact import ExactPlan
from .plans.lut import LUTPlan
from .plans.pool import FlattenPlan, LastStepPlan, Pool1dPlan
from .plans.poly import PolyPlan
from .plans.pwl.plan import PWLPlan
from .plans.rnn import RecurrentPlan
from .plans.shift_add import AdderGraph, csd
from .plans.threshold import ThresholdPlan

__all__ = ["LayerMetrics", "NetworkMetrics", "binary_dense_metrics", "bop", "digit_counts",
           "layer_metrics", "network_metrics", "nabs", "recurrent_metrics", "rm",
           "weight_layer_metrics"]


def _shape(n_in, n_out, kernel, groups) -> tuple[int, int, int, int]:
    n_in = check_integer(n_in, "n_in", minimum=1)
    n_out = check_integer(n_out, "n_out", minimum=1)
    kernel = check_integer(kernel, "kernel", minimum=1)
    groups = check_integer(groups, "groups", minimum=1)
    if n_in % groups or n_out % groups:
        raise ParameterValueError(
            "groups", f"groups must divide n_in = {n_in} and n_out = {n_out}, not {groups}")
    return n_in, n_out, kernel, groups


def rm(n_in, n_out, kernel=1, groups=1) -> int:
    """Real multiplications of one output step: ``n_out·(n_in/groups)·kernel``.

    For a dense layer (``kernel = 1``, ``groups = 1``) that is ``n_out·n_in`` per input vector;
    for a conv1d layer (``n_in``/``n_out`` channels) it is per output sample, the RMpS of
    Freire et al. (arXiv:2206.12191): a sequence of ``L`` output samples takes ``L`` times as
    many. Stride and dilation change how many output samples there are, not this count.

    Raises
    ------
    TypeError
        A parameter is not an integer.
    ValueError
        A parameter is below 1, or ``groups`` does not divide ``n_in`` and ``n_out``.
    """
    n_in, n_out, kernel, groups = _shape(n_in, n_out, kernel, groups)
    return n_out * (n_in // groups) * kernel


def _check_p(p) -> float:
    allowed = "a number in (0, 1] (the fraction of non-zero weights)"
    if not isinstance(p, numbers.Real) or isinstance(p, bool):
        raise ParameterTypeError("p", f"p must be {allowed}, not {p!r}")
    if not 0 < p <= 1:  # NaN fails too
        raise ParameterValueError("p", f"p must be {allowed}, not {p!r}")
    return float(p)


def bop(n_in, n_out, b_a, b_w, kernel=1, p=1.0, groups=1) -> float:
    """Bit operations of one output step: ``m·n·k·(p·b_a·b_w + b_a + b_w + log2(n·k))``.

    ``m = n_out`` outputs (channels), ``n = n_in/groups`` inputs each output sums over (input
    channels), ``k = kernel`` taps, ``b_a``/``b_w`` the activation (input) and weight widths in
    bits, ``p`` the fraction of non-zero weights. Baskin et al. (UNIQ, ACM TOCS 2021) in the
    form of Freire et al. (arXiv:2206.12191), where a 2-D ``k×k`` kernel has ``k²`` taps; here
    ``k`` is the number of taps of a 1-D kernel (a conv1d's ``kernel_size``), so the formula
    is the literature's with ``k²`` replaced by ``k``. A dense layer has ``k = 1``: an MLP
    16→64→32→32→5 with 32-bit weights and activations, ``p = 1``, has 4 652 832 BoP.

    Returns a float: ``log2`` is an integer only for powers of two.

    Raises
    ------
    TypeError
        ``n_in``, ``n_out``, ``b_a``, ``b_w``, ``kernel`` or ``groups`` is not an integer, or
        ``p`` is not a real number.
    ValueError
        An integer parameter is below 1, ``groups`` does not divide ``n_in`` and ``n_out``, or
        ``p`` is not in ``(0, 1]``.
    """
    n_in, n_out, kernel, groups = _shape(n_in, n_out, kernel, groups)
    b_a = check_integer(b_a, "b_a", minimum=1)
    b_w = check_integer(b_w, "b_w", minimum=1)
    p = _check_p(p)
    m, n, k = n_out, n_in // groups, kernel
    return m * n * k * (p * b_a * b_w + b_a + b_w + math.log2(n * k))


def _weight_rows(weight) -> np.ndarray:
    """``weight`` (n_out × n_in, or a conv1d's out × in/groups × k) as an object array of
    Python ints, one row per output."""
    try:
        array = np.asarray(weight)
    except ValueError:
        raise ParameterValueError("weight", "weight must be a non-empty 2-D or 3-D integer "
                                            "array, not a ragged sequence") from None
    if array.ndim not in (2, 3) or 0 in array.shape:
        raise ParameterValueError("weight", f"weight must be a non-empty 2-D (n_out, n_in) or "
                                            f"3-D (out, in/groups, k) integer array, not shape "
                                            f"{array.shape}")
    if array.dtype == object:
        bad = [v for v in array.ravel()
               if isinstance(v, bool) or not isinstance(v, (int, np.integer))]
        if bad:
            raise ParameterTypeError("weight", f"weight must hold integers, not {bad[0]!r}")
    elif array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise ParameterTypeError("weight", f"weight must hold integers, not dtype {array.dtype}")
    rows = array.reshape(array.shape[0], -1)
    return np.array([[int(v) for v in row] for row in rows.tolist()], dtype=object)


def _bias_codes(bias, n_out: int) -> list[int]:
    if bias is None:
        return [0] * n_out
    array = np.asarray(bias)
    if array.shape != (n_out,):
        raise ParameterValueError("bias", f"bias must have shape ({n_out},), one per output, "
                                          f"not {array.shape}")
    if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.integer)
                                       or array.dtype == object):
        raise ParameterTypeError("bias", f"bias must hold integers, not dtype {array.dtype}")
    return [int(v) for v in array.tolist()]


def digit_counts(weight, bias=None, *, graph: AdderGraph | None = None) -> tuple[int, int]:
    """``(additions, shifts)`` of one output step of ``y = W·x + b`` (see :func:`nabs`)."""
    rows = _weight_rows(weight)
    bias = _bias_codes(bias, rows.shape[0])
    if graph is None:
        additions = shifts = 0
        for row in rows:
            digits = [csd(w) for w in row if w]
            # A weight of d digits: d − 1 additions; the products of the row: one fewer
            # addition than there are non-zero weights.
            additions += sum(len(d) - 1 for d in digits) + max(len(digits) - 1, 0)
            shifts += sum(shift != 0 for d in digits for _, shift in d)
        computed = [any(row) for row in rows]
    else:
        if not isinstance(graph, AdderGraph):
            raise ParameterTypeError("graph", f"graph must be an AdderGraph or None, not "
                                              f"{graph!r}")
        try:
            graph.verify(rows)
        except ValueError as exc:
            raise ParameterValueError("graph", f"graph must compute weight @ x: {exc}") from None
        additions, shifts = graph.adders, graph.shifts
        computed = [not o.is_zero for o in graph.outputs]
    # A non-zero bias is one more addition, unless the output is the bias alone.
    additions += sum(1 for b, c in zip(bias, computed) if b and c)
    return additions, shifts


def nabs(weight, bias=None, *, graph: AdderGraph | None = None) -> int:
    """NABS (additions and bit shifts) of one output step of ``y = W·x + b`` by constants.

    ``weight`` holds integer codes: ``n_out × n_in`` (dense, one input vector) or a conv1d's
    ``out × in/groups × k`` (one output sample: each output sums its ``in/groups·k`` taps);
    ``bias`` holds ``n_out`` integer codes (``None``: zeros).

    Without ``graph`` (multipliers, or any layer counted from its digits): each non-zero weight
    in canonical signed digits (:func:`hwnn.plans.shift_add.csd`) with ``d`` non-zero digits
    costs ``d − 1`` additions and one shift per digit not at position 0; each output adds its
    products with (non-zero weights − 1) additions (``n_in − 1`` without zero weights); zero
    weights cost nothing. With ``graph`` (a shift-add layer): the
    :class:`~hwnn.plans.shift_add.AdderGraph`'s own ``adders`` and ``shifts`` (its ``nabs``).
    Either way each output with a non-zero bias and a non-zero sum adds one addition.

    Raises
    ------
    TypeError
        ``weight`` or ``bias`` does not hold integers, ``graph`` is not an AdderGraph.
    ValueError
        ``weight`` is not a non-empty 2-D or 3-D array, ``bias`` has the wrong shape, or
        ``graph`` does not compute ``weight @ x``.
    """
    additions, shifts = digit_counts(weight, bias, graph=graph)
    return additions + shifts


@dataclass(frozen=True)
class LayerMetrics:
    """The complexity of one output step of a layer (module docstring: the definitions).

    ``rm`` real multiplications (RMpS for a layer over a sequence), ``bop`` bit operations,
    ``nabs = additions + shifts``, ``comparisons`` (an activation's segment search and clips;
    in none of the other counts). ``p`` is the fraction of non-zero weights BoP used (1 for
    layers without weights). ``xnors``: a binarized layer's bit functions (module docstring;
    0 for every other layer, and then left out of :meth:`describe`).
    """
    kind: str
    rm: int
    bop: float
    additions: int
    shifts: int
    comparisons: int = 0
    p: float = 1.0
    xnors: int = 0

    @property
    def nabs(self) -> int:
        return self.additions + self.shifts

    def describe(self) -> dict:
        """A JSON-serializable summary (``nabs`` included)."""
        info = {f.name: getattr(self, f.name) for f in fields(self)}
        info["nabs"] = self.nabs
        if not self.xnors:
            del info["xnors"]
        return info


def weight_layer_metrics(weight, bias=None, *, b_a, b_w, groups=1, graph=None,
                         kind="dense") -> LayerMetrics:
    """:class:`LayerMetrics` of ``y = W·x + b`` from integer codes (see :func:`nabs` for the
    layouts): RM and BoP with ``p`` = non-zero codes / all codes, NABS from the digits or
    ``graph``. A 3-D ``weight`` is a conv1d's ``out × in/groups × k``.

    Raises
    ------
    TypeError, ValueError
        As :func:`nabs` and :func:`bop`; ``groups`` other than 1 with a 2-D weight; a weight
        of zeros only (``p = 0``).
    """
    rows = _weight_rows(weight)
    shape = np.shape(weight)
    groups = check_integer(groups, "groups", minimum=1)
    if len(shape) == 2 and groups != 1:
        raise ParameterValueError("groups", f"groups must be 1 for a 2-D (dense) weight, not "
                                            f"{groups}")
    kernel = shape[2] if len(shape) == 3 else 1
    n_in, n_out = shape[1] * groups, shape[0]
    nonzero = sum(1 for row in rows for w in row if w)
    if not nonzero:
        raise ParameterValueError("weight", "weight must have a non-zero code (BoP's p is the "
                                            "fraction of non-zero weights, in (0, 1])")
    additions, shifts = digit_counts(rows, bias, graph=graph)
    return LayerMetrics(kind=kind, rm=rm(n_in, n_out, kernel, groups),
                        bop=bop(n_in, n_out, b_a, b_w, kernel, nonzero / rows.size, groups),
                        additions=additions, shifts=shifts, p=nonzero / rows.size)


def _activation_metrics(plan, lanes: int) -> LayerMetrics:
    """Per sample (times ``lanes``): LUT 0 of everything (a table read; the index is address
    bits); PWL 1 multiplication (slope, 0 for slopes of kind pot/pot2 and instead their shifts
    and additions, the costliest slope's) + 1 addition (intercept; the offset into the piece is
    folded into it: ``s·(c − start) + b = s·c + (b − s·start)``) + 1 shift if ``shift > 0``,
    and ``pieces − 1`` comparisons to find the piece (none for uniform pieces: the index is
    bits of the code); polynomial (poly and taylor): ``degree`` multiplications and
    ``degree`` additions (one of each per Horner step), one shift per non-zero shift (the
    steps' and the final one), and ``stored_pieces − 1`` comparisons unless uniform (a Taylor
    plan's clamp is its comparisons); exact: comparisons for the clips (relu, leaky_relu 1;
    relu6, hard_tanh, hard_sigmoid 2), leaky_relu one shift, hard_sigmoid one addition
    (``q + 3``), one multiplication (by the reciprocal of 3) and one shift; thresholds: one
    comparison per threshold (``2**k − 1``)."""
    if isinstance(plan, LUTPlan):
        rm_, additions, shifts, comparisons = 0, 0, 0, 0
    elif isinstance(plan, PWLPlan):
        if plan.slope_kind == "any":
            rm_, additions, shifts = 1, 1, 0
        else:
            costs = [digit_counts([[s]]) for s in plan.slopes if s] or [(0, 0)]
            slope_additions, shifts = max(costs, key=sum)
            rm_, additions = 0, 1 + slope_additions
        shifts += plan.shift > 0
        comparisons = 0 if plan.uniform else plan.stored_pieces - 1
    elif isinstance(plan, PolyPlan):
        rm_ = additions = plan.degree
        shifts = sum(1 for k in (*plan.shifts, plan.shift) if k)
        comparisons = 0 if plan.uniform else plan.stored_pieces - 1
    elif isinstance(plan, ExactPlan):
        name = plan.function.name
        rm_, additions, shifts, comparisons = {
            "relu": (0, 0, 0, 1), "relu6": (0, 0, 0, 2), "hard_tanh": (0, 0, 0, 2),
            "leaky_relu": (0, 0, 1, 1), "hard_sigmoid": (1, 1, 1, 2)}[name]
    elif isinstance(plan, ThresholdPlan):
        rm_, additions, shifts, comparisons = 0, 0, 0, plan.thresholds.shape[1]
    else:
        raise ParameterTypeError("plan", f"plan must be a DensePlan, LUTPlan, PWLPlan, "
                                         f"PolyPlan, ExactPlan, ThresholdPlan or a core with "
                                         f"such a plan, not {plan!r}")
    return LayerMetrics(kind=f"activation/{plan.method}", rm=rm_ * lanes, bop=0.0,
                        additions=additions * lanes, shifts=shifts * lanes,
                        comparisons=comparisons * lanes)


def layer_metrics(layer, *, arith=None, lanes=1) -> LayerMetrics:
    """:class:`LayerMetrics` of a plan, or of a core that holds one (``.plan``).

    ``DensePlan``: RM ``n_out·n_in``; BoP with ``b_a`` = the input format's width, ``b_w`` =
    the weight format's width, ``p`` = the fraction of non-zero weight codes; NABS from the
    weights' digits for ``arith="mult"`` (the default), from the adder graph the ``Dense`` core
    builds (:func:`hwnn.plans.dense.shift_add_graph`, the graph ``hwnn plan`` reports) for
    ``"csd"`` and ``"mcm"``. A ``Dense`` core brings its own ``arith`` and graph.
    Activation plans (LUT, PWL, poly, taylor, exact, thresholds) of ``lanes`` values per step
    (an activation core brings its own ``lanes``): see
    :func:`_activation_metrics`; BoP 0 (the formula counts weight layers' MACs).
    ``BinaryDensePlan`` (or a ``BinaryDense`` core): :func:`binary_dense_metrics`.
    ``RecurrentPlan`` (or a recurrent core or cell): :func:`recurrent_metrics` (``arith`` for
    the MAC over ``[x; h]``). ``BidirectionalPlan`` (or a ``Bidirectional`` core): the sum of
    its two directions' (one output step is one step of each), kind ``"bi<kind>"``; ``p``
    the non-zero weights over both directions' gate products.

    Raises
    ------
    TypeError
        ``layer`` is none of these, ``arith`` is not a string, ``lanes`` not an integer.
    ValueError
        An unknown ``arith``, ``arith`` given with a core or an activation plan, ``lanes``
        below 1 (or given with a dense layer), a weight matrix of zeros only.
    """
    graph = None
    lanes = check_integer(lanes, "lanes", minimum=1)
    plan = getattr(layer, "plan", layer)
    if isinstance(plan, BidirectionalPlan):
        parts = layer.cores if plan is not layer else plan.directions
        if plan is not layer and arith is not None:
            raise ParameterValueError("arith", f"arith comes from the core "
                                               f"({parts[0].mac.arith!r}); pass arith=None, "
                                               f"not {arith!r}")
        return _bidirectional_metrics([layer_metrics(part, arith=arith) for part in parts],
                                      plan)
    if isinstance(plan, BinaryDensePlan):
        if arith is not None:
            raise ParameterValueError("arith", f"arith does not apply to a binarized layer; "
                                               f"got arith={arith!r}")
        return binary_dense_metrics(plan)
    if isinstance(plan, RecurrentPlan):
        if plan is not layer and arith is not None:
            raise ParameterValueError("arith", f"arith comes from the core "
                                               f"({_recurrent_mac(layer)[0]!r}); pass "
                                               f"arith=None, not {arith!r}")
        if plan is not layer:
            arith, graph = _recurrent_mac(layer)
        arith = check_choice("mult" if arith is None else arith, "arith", ARITHMETIC)
        return recurrent_metrics(plan, arith=arith, graph=graph)
    if plan is not layer and not isinstance(plan, DensePlan) and lanes == 1:
        lanes = check_integer(getattr(layer, "lanes", 1), "lanes", minimum=1)
    if plan is not layer and isinstance(plan, DensePlan) and hasattr(layer, "graph"):
        if arith is not None:
            raise ParameterValueError("arith", f"arith comes from the core "
                                               f"({layer.arith!r}); pass arith=None, not "
                                               f"{arith!r}")
        arith, graph = layer.arith, layer.graph
    if isinstance(plan, DensePlan):
        arith = check_choice("mult" if arith is None else arith, "arith", ARITHMETIC)
        if lanes != 1:
            raise ParameterValueError("lanes", f"lanes applies to activation units, not to a "
                                               f"dense layer; got lanes={lanes!r}")
        if arith != "mult" and graph is None:
            graph = shift_add_graph(plan, arith)
        return weight_layer_metrics(plan.weight, plan.bias, b_a=plan.in_format.width,
                                    b_w=plan.weight_format.width, graph=graph)
    if arith is not None:
        raise ParameterValueError("arith", f"arith applies to dense layers, not to "
                                           f"{type(plan).__name__}; got arith={arith!r}")
    if isinstance(plan, (Conv1dPlan, Pool1dPlan, FlattenPlan, LastStepPlan)):
        return _sequence_metrics(plan)
    return _activation_metrics(plan, lanes)


def binary_dense_metrics(plan) -> LayerMetrics:
    """:class:`LayerMetrics` of one vector through a binarized dense layer (module
    docstring), from :meth:`BinaryDensePlan.binary_ops
    <hwnn.plans.binary_dense.BinaryDensePlan.binary_ops>`: ``xnors`` its bit functions,
    ``additions`` the popcount trees' additions (for integer inputs the group sums') plus one
    accumulation per weight word, ``shifts`` the doubling of each bipolar popcount (a wire in
    hardware, a shift in NABS's terms), ``comparisons`` the thresholds'."""
    ops = plan.binary_ops()
    words = plan.n_out * plan.groups
    doubled = plan.terms is not None and plan.terms[1] == 2
    b_a = 1 if plan.popcount is not None else plan.in_format.width
    return LayerMetrics(kind="binary_dense", rm=0, bop=bop(plan.n_in, plan.n_out, b_a, 1),
                        additions=ops.get("popcount_adds", ops.get("adds", 0))
                        + ops["accumulate"], shifts=words if doubled else 0,
                        comparisons=ops["compare"], xnors=ops.get("xnor", 0))


def _recurrent_mac(core) -> tuple:
    """``(arith, graph)`` of the MAC over ``[x; h]`` of a recurrent core: a ``Recurrent``'s
    Dense, the datapath of an ``UnrolledRecurrent`` or a cell with ``cuts``, the parts of a
    cell without (a ``CellLayer`` brings its cell)."""
    core = getattr(core, "cell", core)
    core = getattr(core, "parts", None) or core
    source = getattr(core, "mac", None) or core.datapath
    return source.arith, source.graph


def _sequence_metrics(plan) -> LayerMetrics:
    """One output step of a sequence layer.

    Conv1d: as a dense layer over the window, per output sample (RMpS), NABS from the digits
    of its weights (also for a shift-add conv1d: the groups' adder graphs are not summed here).
    Max pooling: ``(k − 1)·channels`` comparisons; average pooling: ``(k − 1)·channels``
    additions (the division by k is a constant shift-add, not counted). Flatten and the last
    step: nothing.
    """
    if isinstance(plan, Conv1dPlan):
        metrics = weight_layer_metrics(plan.weight(), plan.bias(), b_a=plan.in_format.width,
                                       b_w=plan.weight_format.width, groups=plan.n_groups,
                                       kind="conv1d")
        return metrics
    if isinstance(plan, Pool1dPlan):
        work = (plan.kernel_size - 1) * plan.channels
        return LayerMetrics(kind=f"pool/{plan.kind}", rm=0, bop=0.0,
                            additions=work if plan.kind == "avg" else 0, shifts=0,
                            comparisons=work if plan.kind == "max" else 0)
    kind = "last" if isinstance(plan, LastStepPlan) else "flatten"
    return LayerMetrics(kind=kind, rm=0, bop=0.0, additions=0, shifts=0)


def recurrent_metrics(plan: RecurrentPlan, *, arith: str = "mult",
                      graph: AdderGraph | None = None) -> LayerMetrics:
    """One time step of an LSTM or GRU direction (``H`` hidden, ``I`` inputs):

    * RM: the gate products, ``4H(I + H)`` (LSTM) or ``3H(I + H)`` (GRU: its MAC's ``n_x`` and
      ``n_h`` rows hold structural zeros, which are not products), plus the elementwise
      products: ``3H`` (LSTM: f⊙c, i⊙g, o⊙tanh(c')) or ``2H`` (GRU: r⊙n_h, z⊙(h − n)),
      plus the activation units' (a PWL unit's slope product per lane, a polynomial unit's
      ``degree`` products per lane; none for tables);
    * BoP: :func:`bop` of the gate blocks (LSTM one ``4H × (I + H)``; GRU ``2H × (I + H)``,
      ``H × I`` and ``H × H``), ``b_a`` the MAC's input width (x and h aligned), ``b_w`` the
      weight width, ``p`` the non-zero weight codes over the gate products; plus ``b_a·b_b``
      per elementwise product (the bit products of its two operand widths);
    * NABS: the MAC's, as a dense layer's (digits for ``arith="mult"``, the adder graph
      ``graph``, or the one :func:`~hwnn.plans.dense.shift_add_graph` builds, for shift-add),
      plus the activation units' (:func:`_activation_metrics`, σ on ``3H`` or ``2H`` lanes,
      tanh on ``H``, an LSTM's tanh(c') on ``H``) and the elementwise additions and
      subtractions (LSTM ``H``: c'; GRU ``3H``: n_x + r⊙n_h, h − n, n + z⊙(h − n));
      comparisons are the activation units'.

    Raises
    ------
    TypeError, ValueError
        ``plan`` is not a RecurrentPlan, an unknown ``arith``, a weight matrix of zeros only.
    """
    if not isinstance(plan, RecurrentPlan):
        raise ParameterTypeError("plan", f"plan must be a RecurrentPlan, not {plan!r}")
    arith = check_choice(arith, "arith", ARITHMETIC)
    hidden, inputs, gates = plan.hidden_size, plan.input_size, plan.gates
    if arith != "mult" and graph is None:
        graph = shift_add_graph(gates, arith)
    mac = weight_layer_metrics(gates.weight, gates.bias, b_a=gates.in_format.width,
                               b_w=gates.weight_format.width, graph=graph)
    blocks = ([(inputs + hidden, 4 * hidden)] if plan.kind == "lstm" else
              [(inputs + hidden, 2 * hidden), (inputs, hidden), (hidden, hidden)])
    products = sum(n * m for n, m in blocks)
    p = int(np.count_nonzero(gates.weight)) / products
    bops = [bop(n, m, gates.in_format.width, gates.weight_format.width, p=p)
            for n, m in blocks]
    lanes = {"sigmoid": (3 if plan.kind == "lstm" else 2) * hidden, "tanh": hidden,
             "tanh_cell": hidden}
    units = [_activation_metrics(unit, lanes[name]) for name, unit in plan.activations.items()]
    stages = plan.stages.values()
    multiplied = [s for s in stages if s.op == "mul"]
    bops += [s.lanes * s.a_format.width * s.b_format.width for s in multiplied]
    return LayerMetrics(kind=plan.kind,
                        rm=products + sum(s.lanes for s in multiplied)
                        + sum(u.rm for u in units),
                        bop=math.fsum(bops),
                        additions=mac.additions + sum(u.additions for u in units)
                        + sum(s.lanes for s in stages if s.op != "mul"),
                        shifts=mac.shifts + sum(u.shifts for u in units),
                        comparisons=sum(u.comparisons for u in units), p=p)


def _bidirectional_metrics(directions, plan: BidirectionalPlan) -> LayerMetrics:
    """The sum of both directions' :class:`LayerMetrics`; ``p`` weighted by their products
    (the two directions have the same gate blocks)."""
    return LayerMetrics(kind=f"bi{plan.kind}", rm=sum(m.rm for m in directions),
                        bop=math.fsum(m.bop for m in directions),
                        additions=sum(m.additions for m in directions),
                        shifts=sum(m.shifts for m in directions),
                        comparisons=sum(m.comparisons for m in directions),
                        p=sum(m.p for m in directions) / len(directions))


@dataclass(frozen=True)
class NetworkMetrics:
    """Per-layer metrics (``layers``: ``(name, LayerMetrics)`` pairs, in order) and their sums
    (``total``, kind ``"total"``; its ``p`` is 1)."""
    layers: tuple
    total: LayerMetrics

    def describe(self) -> dict:
        return {"layers": [{"name": n, **m.describe()} for n, m in self.layers],
                "total": self.total.describe()}


def network_metrics(layers) -> NetworkMetrics:
    """The metrics of each layer and their total.

    ``layers`` is an iterable of :class:`LayerMetrics`, of anything :func:`layer_metrics`
    takes (with its defaults), or of ``(name, either)`` pairs; unnamed layers are called
    ``layer0``, ``layer1``, ... by position. Totals add each layer's figures for one output
    step of that layer: for a chain whose layers all step once per input vector (dense and
    activations) that is the network's count per vector.

    Raises
    ------
    TypeError, ValueError
        A layer :func:`layer_metrics` refuses, a name that is not a string, no layers.
    """
    named = []
    for index, item in enumerate(layers):
        name, layer = item if isinstance(item, tuple) else (f"layer{index}", item)
        if not isinstance(name, str):
            raise ParameterTypeError("layers", f"layers[{index}] must be a layer or a (name, "
                                               f"layer) pair with a string name, not {item!r}")
        named.append((name, layer if isinstance(layer, LayerMetrics) else layer_metrics(layer)))
    if not named:
        raise ParameterValueError("layers", "layers must hold at least one layer, not none")
    metrics = [m for _, m in named]
    total = LayerMetrics(kind="total", rm=sum(m.rm for m in metrics),
                         bop=math.fsum(m.bop for m in metrics),
                         additions=sum(m.additions for m in metrics),
                         shifts=sum(m.shifts for m in metrics),
                         comparisons=sum(m.comparisons for m in metrics),
                         xnors=sum(m.xnors for m in metrics))
    return NetworkMetrics(layers=tuple(named), total=total)
