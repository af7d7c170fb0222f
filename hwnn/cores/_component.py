"""Helpers shared by every core's constructor."""

import functools

__all__ = ["inspected", "rejects_quietly"]


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
