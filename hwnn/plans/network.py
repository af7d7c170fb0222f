"""A network: an ordered chain of layer plans whose formats and widths meet exactly.

Each :class:`Layer` holds a layer's plan and the options of its core (``arith`` and
``parallelism`` of a dense layer; the lanes of an activation unit follow from the layer before).
:func:`plan_network` checks that every layer's input is the previous layer's output, format for
format and lane for lane; :func:`balance` chooses the parallelism of each folded dense layer for a
target initiation interval with the fewest multipliers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from ..checks import ParameterTypeError, ParameterValueError, check_integer
from .dense import ARITHMETIC, DensePlan, mac_schedule

__all__ = ["KINDS", "Layer", "NetworkPlan", "balance", "plan_network"]

#: Layer kinds a network chains, with the core options each takes.
KINDS = {"dense": ("arith", "parallelism", "pipeline"), "activation": ()}

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Layer:
    """One layer of a network: its ``name`` (a Python identifier: it names the layer's core in
    the Verilog), ``kind`` (a key of :data:`KINDS`), ``plan`` and core ``options``."""
    name: str
    kind: str
    plan: object
    options: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    @property
    def in_format(self):
        return self.plan.in_format

    @property
    def out_format(self):
        return self.plan.out_format

    def lanes(self, n_in: int) -> tuple[int, int]:
        """``(input lanes, output lanes)`` of the layer when ``n_in`` values arrive."""
        if self.kind == "dense":
            return self.plan.n_in, self.plan.n_out
        return n_in, n_in

    @property
    def ii(self) -> int:
        """Cycles between input vectors at full rate (plan-level: no core is built)."""
        if self.kind == "dense" and self.options.get("arith", "mult") == "mult":
            return mac_schedule(self.plan, self.options.get("parallelism", 1)).ii
        return 1


@dataclass(frozen=True)
class NetworkPlan:
    """An ordered chain of :class:`Layer` s; ``n_in`` values enter, ``n_out`` leave."""
    layers: tuple
    n_in: int

    @property
    def in_format(self):
        return self.layers[0].in_format

    @property
    def out_format(self):
        return self.layers[-1].out_format

    @property
    def lanes(self) -> tuple:
        """``(input lanes, output lanes)`` of every layer, in order."""
        result, n = [], self.n_in
        for layer in self.layers:
            result.append(layer.lanes(n))
            n = result[-1][1]
        return tuple(result)

    @property
    def n_out(self) -> int:
        return self.lanes[-1][1]

    @property
    def ii(self) -> int:
        """Cycles between input vectors at full rate: the slowest layer's."""
        return max(layer.ii for layer in self.layers)

    def layer(self, name: str) -> Layer:
        """The layer called ``name``."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)


def _check_layer(layer, index) -> Layer:
    where = f"layers[{index}]"
    if not isinstance(layer, Layer):
        raise ParameterTypeError("layers", f"{where} must be a Layer, not {layer!r}")
    if not isinstance(layer.name, str) or not _NAME.fullmatch(layer.name):
        raise ParameterValueError("layers", f"{where}.name must be an identifier (letters, "
                                            f"digits, _), not {layer.name!r}")
    if layer.kind not in KINDS:
        raise ParameterValueError("layers", f"{where}.kind must be one of "
                                            f"{', '.join(map(repr, KINDS))}, not {layer.kind!r}")
    unknown = sorted(set(layer.options) - set(KINDS[layer.kind]))
    if unknown:
        raise ParameterValueError("layers", f"{where} ({layer.name}): option {unknown[0]!r} "
                                            f"does not apply to a {layer.kind} layer")
    if layer.kind == "dense":
        if not isinstance(layer.plan, DensePlan):
            raise ParameterTypeError("layers", f"{where} ({layer.name}): a dense layer needs a "
                                               f"DensePlan, not {type(layer.plan).__name__}")
        arith = layer.options.get("arith", "mult")
        if arith not in ARITHMETIC:
            raise ParameterValueError("layers", f"{where} ({layer.name}): arith must be one of "
                                                f"{', '.join(map(repr, ARITHMETIC))}, not "
                                                f"{arith!r}")
        if arith == "mult":
            mac_schedule(layer.plan, layer.options.get("parallelism", 1))  # checks it
        elif "parallelism" in layer.options:
            raise ParameterValueError("layers", f"{where} ({layer.name}): parallelism applies "
                                                f"to arith 'mult', not {arith!r}")
    return layer


def plan_network(layers, n_in: int | None = None) -> NetworkPlan:
    """Chain ``layers`` (a sequence of :class:`Layer`) into a :class:`NetworkPlan`.

    ``n_in`` is the number of input values; it defaults to the first dense layer's ``n_in``
    and is required when the network starts with an activation.

    Raises
    ------
    TypeError
        ``layers`` holds something other than :class:`Layer`, or a plan of the wrong kind.
    ValueError
        No layers, a repeated or invalid name, an unknown kind or option, or a layer whose
        input format or width is not the previous layer's output (the message names both).
    """
    layers = tuple(layers)
    if not layers:
        raise ParameterValueError("layers", "layers must hold at least one layer, not none")
    for index, layer in enumerate(layers):
        _check_layer(layer, index)
    names = [layer.name for layer in layers]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ParameterValueError("layers", f"layer names must differ; {repeated[0]!r} is "
                                            f"used {names.count(repeated[0])} times")
    if n_in is None:
        if layers[0].kind != "dense":
            raise ParameterValueError("n_in", f"n_in is needed when the first layer is "
                                              f"{layers[0].kind}, not None")
        n_in = layers[0].plan.n_in
    n_in = check_integer(n_in, "n_in", minimum=1)
    width = n_in
    for index, layer in enumerate(layers):
        if index and layer.in_format != layers[index - 1].out_format:
            raise ParameterValueError(
                "layers", f"layer {layer.name!r} takes {layer.in_format} but layer "
                          f"{layers[index - 1].name!r} gives {layers[index - 1].out_format}")
        takes, gives = layer.lanes(width)
        if takes != width:
            before = f"layer {layers[index - 1].name!r} gives" if index else "the network has"
            raise ParameterValueError("layers", f"layer {layer.name!r} takes {takes} values "
                                                f"but {before} {width}")
        width = gives
    return NetworkPlan(layers=layers, n_in=n_in)


def balance(plan: NetworkPlan, target_ii: int) -> NetworkPlan:
    """``plan`` with each folded (``arith="mult"``) dense layer on the fewest multipliers that
    keep its ``ii`` at or below ``target_ii``: ``parallelism = ceil(n_in·n_out / target_ii)``
    (a folded MAC reaches ``ii = ceil(products / parallelism)`` exactly). Fully parallel layers
    (shift-add, activations) already run at ii 1.

    Raises
    ------
    TypeError, ValueError
        ``target_ii`` is not an integer ≥ 1.
    """
    target_ii = check_integer(target_ii, "target_ii", minimum=1)
    layers = []
    for layer in plan.layers:
        if layer.kind == "dense" and layer.options.get("arith", "mult") == "mult":
            products = layer.plan.n_in * layer.plan.n_out
            options = {**layer.options, "parallelism": -(-products // target_ii)}
            layer = replace(layer, options=MappingProxyType(options))
        layers.append(layer)
    return replace(plan, layers=tuple(layers))
