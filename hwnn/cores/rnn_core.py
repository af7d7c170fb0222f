"""The core of one recurrent direction from a layer's options: stream parts or one datapath.

A network layer (and each direction of a bidirectional one) names its core by its options:
``cuts`` asks for :class:`~hwnn.cores.recurrent_unrolled.UnrolledRecurrent` (the whole step at
once, ``cuts + 1`` cycles a step, shift-add MAC), anything else for
:class:`~hwnn.cores.recurrent.Recurrent` (the step on folded or shift-add parts). Both have the
same ports and timing properties.
"""

from __future__ import annotations

from .recurrent import Recurrent
from .recurrent_unrolled import UnrolledRecurrent

__all__ = ["recurrent_core"]


def recurrent_core(plan, **options):
    """:class:`UnrolledRecurrent` when ``options`` holds ``cuts``, else :class:`Recurrent`, built
    from ``plan`` and ``options`` (each core's own errors for options it does not take)."""
    if "cuts" in options:
        return UnrolledRecurrent(plan, **options)
    return Recurrent(plan, **options)
