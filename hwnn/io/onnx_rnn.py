"""ONNX ``LSTM`` and ``GRU`` nodes in a chain, and the axes of the tensors around them.

ONNX's recurrent nodes take ``X`` as (steps, batch, input) and give ``Y`` as (steps,
num_directions, batch, hidden); convolutions take (batch, channels, steps); PyTorch's exporter
joins them with ``Transpose``, ``Squeeze`` and ``Unsqueeze`` nodes (a ``batch_first`` model
transposes its input to (steps, batch, input) and its output back). hwnn's stream is always
time-major, one step of all channels per transfer, so these nodes move no data in hwnn: the
reader follows each tensor's axes by name (``batch``, ``steps``, ``channels``, and the size-1
``dirs`` and ``one``) and checks that every layer gets its axes in the order it reads them.

Supported: ``direction = "forward"`` or ``"bidirectional"``, every step's hidden state
(``Y``) or, of a forward node, only the last one (``Y_h``, axes (dirs, batch, hidden): a layer
with ``return_sequences = false``), the other outputs read by nobody. A bidirectional node's
``Y`` is (steps, directions, batch, hidden); PyTorch's exporter moves the directions next to
the hidden units and merges them, ``Transpose(perm=[0, 2, 1, 3])`` then
``Reshape([0, 0, -1])``, which is ``[h_forward; h_reverse]`` per step, hwnn's bidirectional
layer (:func:`merge_directions` checks it). A stacked module is one node per layer, each
reading the one before. No ``sequence_lens``. Initial
states absent, zero constants, or zeros computed from the input's shape (what PyTorch's
exporter makes of ``torch.zeros(1, batch, hidden)`` with a dynamic batch:
:func:`zero_states`) are zeros; initial states that are graph inputs, read whole or sliced by
rows (what the exporter makes of ``lstm(x, (h0, c0))``: a single-layer module reads ``h0`` and
``c0`` as they are, layer ``k`` of a stack ``Slice(h0, [k·d], [(k+1)·d], axes=[0])``), make
layers with a loaded initial state (:func:`loaded_states`, the spec's ``initial_state =
true``); the LSTM/GRU attributes that PyTorch's modules cannot express are refused
by :mod:`hwnn.io.rnn`; GRU ``linear_before_reset = 0`` is the original GRU
(``reset_after = false``). A reverse-only node (which ``nn.LSTM`` cannot express) and the
``Y_h`` of a bidirectional node (PyTorch's ``h_n``, which is not a last output step) raise
:class:`~hwnn.io.model.UnsupportedLayer` naming the node.
"""

from __future__ import annotations

import numpy as np

from .model import FloatRecurrent, ModelError, UnsupportedLayer
from .rnn import gru_from_onnx, lstm_from_onnx

__all__ = ["AXES", "DIRECTIONS_AXIS", "RESHAPES", "first_axes", "loaded_states",
           "merge_directions", "rearrange", "recurrent_node", "strip", "zero_states"]

#: The axes each kind of layer reads, in order.
AXES = {"conv": ("batch", "channels", "steps"), "recurrent": ("steps", "batch", "channels"),
        "vector": ("batch", "channels")}
#: Nodes that only rename or reorder axes (no data moves in hwnn's stream).
RESHAPES = ("Transpose", "Squeeze", "Unsqueeze")
_SIZE_ONE = ("dirs", "one")
#: The size-2 axis of a bidirectional node's Y.
DIRECTIONS_AXIS = "directions"
#: Operators of shape arithmetic: their results depend on tensors' shapes, not their values.
_SHAPE_OPS = ("Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast", "Reshape")


def _zero_fill(g, node) -> bool:
    """Whether ``node`` (a ConstantOfShape or an Expand) fills its output with zeros."""
    if node.op_type == "ConstantOfShape":
        value = g.attributes(node).get("value")
        return value is None or not np.any(g.onnx.numpy_helper.to_array(value))
    source = node.input[0] if node.input else ""
    return node.op_type == "Expand" and source in g.constants and \
        not np.any(g.constants[source])


def _shape_nodes(producers, name) -> set | None:
    """Positions of the nodes that compute ``name`` from shapes alone (shape arithmetic down
    to ``Shape`` nodes, constants and initializers), or None when a value enters."""
    found, pending = set(), [name]
    while pending:
        tensor = pending.pop()
        if tensor not in producers:
            continue   # an initializer or Constant: fine; a graph input: read below by Shape
        position, node = producers[tensor]
        if node.op_type not in _SHAPE_OPS:
            return None
        found.add(position)
        if node.op_type != "Shape":   # a Shape reads its input's shape, not its values
            pending += [i for i in node.input if i]
    return found


def zero_states(g, graph) -> set:
    """The nodes that only compute zero initial states of LSTM/GRU nodes: positions in
    ``graph.node``, so the chain reader treats them as read.

    PyTorch's exporter turns the zeros an ``nn.LSTM`` starts from into
    ``ConstantOfShape(Concat(1, Shape(x)[0], hidden))`` (or an ``Expand`` of a zero) when the
    batch is dynamic. Such an initial state is a zero constant for hwnn (its recurrent layers
    start every sequence from zeros): its output joins ``g.constants`` as zeros, and its
    nodes' reads of other tensors (a ``Shape`` of the input) leave ``g.consumers``.

    Raises
    ------
    UnsupportedLayer
        Such a fill of a nonzero value (a real initial state).
    """
    producers = {out: (position, node) for position, node in enumerate(graph.node)
                 for out in node.output if out}
    ignored = set()
    for node in graph.node:
        if node.op_type not in ("LSTM", "GRU"):
            continue
        for index in (5, 6):   # initial_h, initial_c
            name = node.input[index] if index < len(node.input) else ""
            if not name or name in g.constants or name not in producers:
                continue
            position, fill = producers[name]
            if fill.op_type not in ("ConstantOfShape", "Expand"):
                continue   # recurrent_node refuses it: not a constant
            if not _zero_fill(g, fill):
                state = ("initial_h", "initial_c")[index - 5]
                raise UnsupportedLayer(f"{_what(node)} has a nonzero {state} ({_what(fill)}): "
                                       f"hwnn's recurrent layers start each sequence from "
                                       f"zeros")
            shape = fill.input[0] if fill.op_type == "ConstantOfShape" else fill.input[1]
            found = _shape_nodes(producers, shape)
            if found is None:
                continue
            ignored |= found | {position}
            g.constants[name] = np.zeros(1)
    for tensor in list(g.consumers):
        users = [user for user in g.consumers[tensor] if user[0] not in ignored]
        if users:
            g.consumers[tensor] = users
        else:
            del g.consumers[tensor]
    return ignored


def _what(node) -> str:
    return f"node {node.name or '(unnamed)'!r} ({node.op_type})"


def _dims(value_info) -> list:
    """The dimensions of a graph input: ints where static, None where symbolic."""
    return [d.dim_value if d.HasField("dim_value") else None
            for d in value_info.type.tensor_type.shape.dim]


def _slice_rows(g, node, rows) -> tuple[int, int]:
    """``(start, stop)``: the rows a ``Slice`` node takes along axis 0 of a tensor of ``rows``
    rows (None: symbolic), with step 1 and constant bounds.

    Raises
    ------
    UnsupportedLayer
        Any other slice (the message names the node).
    """
    attrs = g.attributes(node)
    try:
        if "starts" in attrs:   # opset < 10: attributes
            starts, ends, axes = attrs["starts"], attrs["ends"], attrs.get("axes", [0])
            steps = [1]
        else:
            starts, ends = g.constant(node, 1), g.constant(node, 2)
            axes = g.constant(node, 3, required=False)
            steps = g.constant(node, 4, required=False)
        starts, ends = [int(v) for v in np.ravel(starts)], [int(v) for v in np.ravel(ends)]
        axes = [0] if axes is None else [int(v) for v in np.ravel(axes)]
        steps = [1] if steps is None else [int(v) for v in np.ravel(steps)]
    except ModelError:
        starts = None
    if starts is None or (len(starts), axes, steps) != (1, [0], [1]) or starts[0] < 0 \
            or ends[0] <= starts[0]:
        raise UnsupportedLayer(f"{_what(node)} slices an initial state in a way hwnn does not "
                               f"follow: it reads the rows [k·d, (k+1)·d) of a graph input "
                               f"along axis 0 with constant bounds (PyTorch's export of a "
                               f"stacked module)")
    stop = ends[0] if rows is None else min(ends[0], rows)
    return starts[0], stop


def loaded_states(g, graph) -> tuple[set, set]:
    """Find the initial states of LSTM/GRU nodes that are loaded from graph inputs:
    ``(positions, inputs)``, the ``Slice`` nodes that only take rows of such an input (the
    chain reader treats them as read) and the graph inputs that hold nothing but initial
    states (not the chain's input).

    A node's ``initial_h`` (``initial_c``) that is a graph input ``h0`` of shape
    ``(directions, batch, hidden)``, or a Slice of rows ``[a, b)`` of one, is recorded in
    ``g.loaded``: the tensor's name to ``"h0"`` or ``"h0[a:b]"``, for :func:`recurrent_node`.

    Raises
    ------
    UnsupportedLayer
        A slice hwnn does not follow.
    ModelError
        A state input whose static shape is not ``(directions, batch, hidden)`` of its node.
    """
    inputs = {i.name: i for i in graph.input if i.name not in g.constants}
    producers = {out: (position, node) for position, node in enumerate(graph.node)
                 for out in node.output if out}
    positions, reads = set(), {}
    for position, node in enumerate(graph.node):
        if node.op_type not in ("LSTM", "GRU"):
            continue
        attrs = g.attributes(node)
        direction = attrs.get("direction", b"forward")
        directions = 2 if direction in (b"bidirectional", "bidirectional") else 1
        for index in (5, 6):   # initial_h, initial_c
            name = node.input[index] if index < len(node.input) else ""
            if name in inputs:
                source, dims, rows = name, _dims(inputs[name]), None
                reads.setdefault(name, set()).add((position, index))
            elif name in producers and producers[name][1].op_type == "Slice" \
                    and producers[name][1].input[0] in inputs:
                at, cut = producers[name]
                dims = _dims(inputs[cut.input[0]])
                start, stop = _slice_rows(g, cut, dims[0] if dims else None)
                source, rows = f"{cut.input[0]}[{start}:{stop}]", stop - start
                positions.add(at)
                reads.setdefault(cut.input[0], set()).add((at, 0))
            else:
                continue
            hidden = attrs.get("hidden_size")
            want = (directions, None, hidden)
            shape = [rows if rows is not None else dims[0], *dims[1:]] if dims else []
            if len(shape) != 3 or any(s is not None and w is not None and s != w
                                      for s, w in zip(shape, want)):
                raise ModelError(f"{_what(node)} reads its {('initial_h', 'initial_c')[index - 5]}"
                                 f" from {source} of shape {shape}, not (directions = "
                                 f"{directions}, batch, hidden_size = {hidden})")
            g.loaded[name] = source
    # A graph input that only feeds initial states is not the chain's input.
    states = {name for name, read in reads.items()
              if {(p, k) for p, _, k in g.consumers.get(name, [])} <= read}
    for name in states:
        g.consumers.pop(name, None)
    return positions, states


def first_axes(g, start: str):
    """The axes of the graph input ``start`` as its first layer reads them: the axes of that
    layer (a Conv or pool: ``AXES["conv"]``; an LSTM or GRU: ``AXES["recurrent"]``) taken
    back through the Transpose nodes before it. None when the first layer is neither."""
    perms, current = [], start
    while True:
        users = g.consumers.get(current, [])
        if len(users) != 1 or users[0][1].op_type != "Transpose":
            break
        node = users[0][1]
        perms.append([int(p) for p in g.attributes(node).get("perm", [])])
        current = node.output[0]
    op = users[0][1].op_type if len(users) == 1 else None
    axes = (AXES["recurrent"] if op in ("LSTM", "GRU") else
            AXES["conv"] if op in ("Conv", "MaxPool", "AveragePool", "GlobalMaxPool",
                                   "GlobalAveragePool") else None)
    if axes is None:
        return None
    for perm in reversed(perms):
        if sorted(perm) != list(range(len(axes))):
            return None   # the Transpose node's own check names it later
        before = [None] * len(axes)
        for out, source in enumerate(perm):
            before[source] = axes[out]
        axes = tuple(before)
    return axes


def _axes_argument(g, node, rank) -> list[int]:
    """A Squeeze/Unsqueeze's ``axes`` (attribute before opset 13, input 1 after), made
    non-negative for a tensor of ``rank`` dimensions."""
    value = g.attributes(node).get("axes")
    if value is None:
        value = g.constant(node, 1, required=False)
    if value is None:
        raise ModelError(f"{_what(node)} has no axes: hwnn follows a tensor's axes by name and "
                         f"needs them stated")
    return sorted(int(a) + rank if int(a) < 0 else int(a)
                  for a in np.asarray(value).reshape(-1))


def rearrange(g, node, axes):
    """The axes after a Transpose, Squeeze or Unsqueeze ``node`` of a tensor with ``axes``.

    Raises
    ------
    ModelError
        The tensor is a vector (no axes followed), a bad ``perm``, or a Squeeze of an axis that
        is not of size one.
    """
    what = _what(node)
    if axes is None:
        raise ModelError(f"{what}: hwnn follows {node.op_type} only on sequences (around Conv, "
                         f"LSTM and GRU nodes), not on vectors")
    if node.op_type == "Transpose":
        perm = [int(p) for p in g.attributes(node).get("perm", reversed(range(len(axes))))]
        if sorted(perm) != list(range(len(axes))):
            raise ModelError(f"{what} has perm = {perm}, not a permutation of the "
                             f"{len(axes)} axes {list(axes)}")
        return tuple(axes[p] for p in perm)
    if node.op_type == "Squeeze":
        drop = _axes_argument(g, node, len(axes))
        wrong = [axes[a] for a in drop if a >= len(axes) or axes[a] not in _SIZE_ONE]
        if wrong or not drop:
            raise ModelError(f"{what} squeezes axes {drop} of a tensor with axes {list(axes)}: "
                             f"hwnn squeezes only the size-one ones ({', '.join(_SIZE_ONE)})")
        return tuple(a for k, a in enumerate(axes) if k not in drop)
    result = list(axes)
    for position in _axes_argument(g, node, len(axes) + 1):
        result.insert(position, "one")
    return tuple(result)


def strip(axes) -> tuple:
    """``axes`` without the size-one ones."""
    return tuple(a for a in axes if a not in _SIZE_ONE)


def _zero_state(g, node, index, what):
    value = g.constant(node, index, required=False)
    if value is not None and np.any(value != 0):
        raise UnsupportedLayer(f"{_what(node)} has a nonzero {what}: hwnn's recurrent layers "
                               f"start each sequence from zeros")


def recurrent_node(g, node, name, features, axes, steps) -> tuple[FloatRecurrent, str]:
    """``(layer, output)``: the :class:`FloatRecurrent` of an ONNX LSTM or GRU ``node``
    reading a tensor of ``features`` ``(channels, steps)`` with ``axes`` (``steps`` its static
    length), and the output the chain goes on from (``Y``, or ``Y_h`` for the last state).

    Raises
    ------
    UnsupportedLayer
        ``direction`` reverse, ``sequence_lens``, a nonzero constant initial state, an LSTM
        that loads only one of h and c, or what :mod:`hwnn.io.rnn` refuses.
    ModelError
        Its input's axes are not (steps, batch, input), its weights do not take the channels
        before it, or more than one of its outputs (or ``Y_c``) feeds other nodes.
    """
    what = _what(node)
    if axes is None or strip(axes) != AXES["recurrent"]:
        raise ModelError(f"{what} reads X as (steps, batch, input), but gets a tensor with axes "
                         f"{list(axes) if axes else '(batch, features)'}: transpose it first")
    attrs = g.attributes(node)
    direction = attrs.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction == "reverse":
        raise UnsupportedLayer(f"{what} has direction = 'reverse': a reverse-only layer, which "
                               f"PyTorch's modules do not have; hwnn imports forward and "
                               f"bidirectional LSTM/GRU layers")
    if len(node.input) > 4 and node.input[4]:
        raise UnsupportedLayer(f"{what} has sequence_lens: hwnn's sequences end with their "
                               f"last step (the stream's last flag), not by a length input")
    loaded = [g.loaded.get(node.input[k]) if k < len(node.input) else None
              for k in ((5, 6) if node.op_type == "LSTM" else (5,))]
    if any(loaded) and not all(loaded):
        given, other = (("initial_h", "initial_c") if loaded[0] else ("initial_c", "initial_h"))
        raise UnsupportedLayer(f"{what} loads its {given} from {loaded[0] or loaded[1]} but "
                               f"not its {other}: hwnn loads an LSTM's h and c together (give "
                               f"both as graph inputs, zeros where a sequence starts from "
                               f"zero)")
    if not any(loaded):
        _zero_state(g, node, 5, "initial_h")
        if node.op_type == "LSTM":
            _zero_state(g, node, 6, "initial_c")
    arrays = [g.constant(node, k, required=k < 3) for k in (1, 2, 3)]   # W, R, B
    options = {key: attrs[key] for key in ("hidden_size", "clip", "activations",
                                           "activation_alpha", "activation_beta", "layout")
               if key in attrs}
    options["direction"] = direction
    if node.op_type == "LSTM":
        peepholes = g.constant(node, 7, required=False)
        weights = lstm_from_onnx(*arrays, P=peepholes,
                                 input_forget=attrs.get("input_forget", 0), **options)
    else:
        weights, reset_after = gru_from_onnx(
            *arrays, linear_before_reset=attrs.get("linear_before_reset", 0), **options)
    layer = FloatRecurrent(name, node.op_type.lower(), weights, what, in_steps=steps,
                           reset_after=node.op_type == "LSTM" or reset_after,
                           initial_state=(f"ONNX input{'s' * (len(loaded) > 1)} "
                                          f"{', '.join(loaded)}" if any(loaded) else ""))
    if layer.input_size != features[0]:
        raise ModelError(f"{what}: W of shape {arrays[0].shape} takes {layer.input_size} "
                         f"inputs, but the tensor before it has {features[0]} channels")
    readers = [k for k, o in enumerate(node.output) if o and o in g.consumers]
    if len(readers) != 1 or readers[0] == 2:
        names = [node.output[k] for k in readers]
        raise ModelError(f"{what}: outputs {names} feed other nodes; hwnn imports a chain "
                         f"that goes on from Y (every step's hidden state) or Y_h (the last "
                         f"one) alone")
    if readers[0] == 1 and layer.bidirectional:
        raise UnsupportedLayer(f"{what}: Y_h of a bidirectional node is each direction's "
                               f"final state (PyTorch's h_n); hwnn's last step of a "
                               f"bidirectional layer is [h_forward(T); h_reverse(T)] (the reverse "
                               f"direction after its first step): read Y")
    layer.return_sequences = readers[0] == 0
    return layer, node.output[readers[0]]


def merge_directions(g, node, axes, features) -> tuple[tuple, tuple]:
    """``(axes, features)`` after a Reshape ``node`` that merges the directions of a
    bidirectional node's ``Y`` (``axes`` holding :data:`DIRECTIONS_AXIS`, ``features``
    ``(hidden, steps)``) into its channels: ``(..., directions, channels)`` adjacent, the
    directions first (so each step is ``[h_forward; h_reverse]``), into one ``channels`` axis
    of ``2·hidden``, every other axis kept (each target entry 0 to copy it, before the merged
    axis, its size, or one -1).

    Raises
    ------
    ModelError
        Directions not right before the channels, or a target shape that does anything else
        (the message names the node, the axes and the shape).
    """
    what = _what(node)
    at = axes.index(DIRECTIONS_AXIS)
    if at + 1 >= len(axes) or axes[at + 1] != "channels":
        raise ModelError(f"{what} reshapes a bidirectional Y with axes {list(axes)}: hwnn "
                         f"merges the directions into the channels when they come right "
                         f"before them ([h_forward; h_reverse], PyTorch's Transpose(perm=[0, "
                         f"2, 1, 3]) then Reshape)")
    merged = axes[:at] + axes[at + 1:]
    hidden, steps = features
    shape = [int(v) for v in np.asarray(g.constant(node, 1)).reshape(-1)]
    sizes = {"channels": 2 * hidden, "steps": steps}
    allowed = [({-1, 0} if k < at else {-1}) | ({sizes[a]} if a in sizes else set())
               for k, a in enumerate(merged)]
    if (len(shape) != len(merged) or shape.count(-1) > 1
            or (g.attributes(node).get("allowzero", 0) and 0 in shape)
            or any(v not in ok and not (v > 0 and a == "batch")
                   for v, ok, a in zip(shape, allowed, merged))):
        raise ModelError(f"{what} reshapes a bidirectional Y with axes {list(axes)} to "
                         f"{shape}: hwnn merges its directions and channels alone, into axes "
                         f"{list(merged)} ({2 * hidden} channels; e.g. [0, 0, -1])")
    return merged, (2 * hidden, steps)
