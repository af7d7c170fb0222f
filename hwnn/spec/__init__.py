"""TOML spec files: a core described in a few lines, loaded into a :class:`Design`.

A spec has a ``[core]`` table (``kind``, ``name``) and a ``[params]`` table whose fields depend on
the kind. Paths inside a spec are relative to the spec file. Every problem is a
:class:`SpecError` whose message names the file and the field.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from ..export import check_module_name
from .binary import BINARY_KINDS
from .fields import Design, SpecError, _as_toml, _Fields
from .layers import _activation_design, _dense_design, _shift_mac_design
from .network import network_design
from .recurrent import CELL_KINDS, RECURRENT_KINDS
from .sequence import SEQUENCE_KINDS

__all__ = ["SpecError", "Design", "load_spec", "design_from_dict", "KINDS"]


#: Spec kinds: name -> (allowed params fields, builder).
KINDS = {
    "dense": (("in_format", "weight_format", "out_format", "rounding", "overflow",
               "parallelism", "weights", "arith", "pipeline", "weight_quantizer",
               "saturate_weights", "always_ready"),
              _dense_design),
    "activation": (("function", "method", "in_format", "out_format", "lanes", "segments",
                    "breakpoints", "slopes", "table_size", "entries", "input_range",
                    "rounding", "leaky_shift", "max_error", "symmetric", "degree", "order",
                    "centre", "multipliers"), _activation_design),
    "shift_mac": (("in_format", "weight_format", "out_format", "weight_terms", "weight_e_min",
                   "weight_exponent_bits", "rounding", "overflow", "parallelism", "weights",
                   "n_in", "n_out", "saturate_weights"), _shift_mac_design),
}


def _network_design(core: dict, params, base_dir, source) -> Design:
    return network_design(core, params, base_dir, source, _LAYER_FIELDS)


# The fields of each kind of network layer.
_LAYER_FIELDS = {"dense": KINDS["dense"][0], "activation": KINDS["activation"][0],
                 **SEQUENCE_KINDS, **RECURRENT_KINDS, **CELL_KINDS, **BINARY_KINDS}
# A network's [params]: its own fields, and any layer field as a default for its layers.
KINDS["network"] = (("layers", "target_ii", "sequence_length",
                     *dict.fromkeys(f for fields in _LAYER_FIELDS.values() for f in fields)),
                    _network_design)


def design_from_dict(document: dict, base_dir=".", source="<spec>") -> Design:
    """Build a :class:`Design` from an already-parsed spec document.

    Raises
    ------
    SpecError
        Anything wrong with the document; the message names the field.
    """
    top = _Fields(document, "spec", source, ("core", "params"))
    if "core" not in document:
        raise SpecError(source, "core", "missing [core] table")
    core = _Fields(document["core"], "core", source, ("kind", "name"))
    kind = core.string("kind", required=True)
    if kind not in KINDS:
        raise core.error("kind", f"unknown kind {kind!r}; known kinds: {', '.join(KINDS)}")
    name = core.string("name", required=True)
    try:
        check_module_name(name)
    except ValueError as exc:
        raise core.error("name", str(exc)) from None
    allowed, builder = KINDS[kind]
    params = _Fields(top.raw("params", {}), "params", source, allowed)
    return builder({"kind": kind, "name": name}, params, base_dir, source)


def load_spec(path) -> Design:
    """Read and check a TOML spec file.

    Raises
    ------
    SpecError
        The file is missing, is not TOML, or has a bad field.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except FileNotFoundError:
        raise SpecError(path, "spec", "file not found") from None
    except IsADirectoryError:
        raise SpecError(path, "spec", "is a directory, not a spec file") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(path, "spec", f"not valid TOML: {exc}") from None
    return design_from_dict(document, path.parent, path)
