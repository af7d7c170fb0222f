"""Helpers shared by every core's constructor."""

import functools

from amaranth.hdl import Const, Value
from amaranth.hdl._ir import PortDirection  # the type convert(ports=) expects (no public name)
from amaranth.lib import wiring

__all__ = ["inspected", "owned", "ports", "rejects_quietly"]


def rejects_quietly(init):
    """Decorate a Component ``__init__`` so a core whose parameters were rejected stays quiet.

    Amaranth warns when an Elaboratable is garbage-collected unused; a core that raised
    ``TypeError``/``ValueError`` in its constructor never existed for the caller, so the
    warning would only bury the real error.
    """
    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        try:
            return init(self, *args, **kwargs)
        except Exception:
            self._MustUse__used = True
            raise
    return wrapper


def inspected(core):
    """Mark ``core`` as built only to read its properties (``describe``, ``latency``...).

    Such a core is never elaborated; telling Amaranth so keeps its unused-core warning for
    the cases where it points at a real mistake.
    """
    core._MustUse__used = True
    return core


def owned(part):
    """Mark ``part``, built by a wrapper core's constructor, as the wrapper's business.

    The wrapper elaborates ``part`` as its submodule; if the wrapper itself is never used,
    Amaranth's unused-core warning names the wrapper (where the caller can act on it), not the
    part inside it.
    """
    part._MustUse__used = True
    return part


def ports(core) -> dict:
    """The ``ports=`` argument of ``amaranth.back.rtlil/verilog.convert`` for ``core``.

    The same as the default for a Component, except that constant members are left out: an
    ``always_ready`` stream's ``ready`` is ``Const(1)``, which Amaranth 0.5's default port
    list passes on and then rejects ("Only signals and IO ports may be added as ports").
    """
    result = {}
    for path, member, value in core.signature.flatten(core):
        value = Value.cast(value)
        if isinstance(value, Const):
            continue
        direction = PortDirection.Input if member.flow == wiring.In else PortDirection.Output
        result["__".join(map(str, path))] = (value, direction)
    return result
