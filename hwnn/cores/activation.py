"""Activation units: one entry point for every activation plan.

The units themselves live one per module, as their references do: :mod:`hwnn.cores.lut`
(:class:`LUTActivation`), :mod:`hwnn.cores.pwl` (:class:`PWLActivation`),
:mod:`hwnn.cores.poly` (:class:`PolyActivation`, for ``poly`` and ``taylor`` plans) and
:mod:`hwnn.cores.exact` (:class:`ExactActivation`), and a threshold plan's
:class:`~hwnn.cores.threshold.MultiThreshold` (:mod:`hwnn.cores.threshold`); they share the
pipeline of :mod:`hwnn.cores._activation`. This module picks the unit for a plan and re-exports
the first four.
"""

from __future__ import annotations

from ..checks import ParameterTypeError
from .exact import ExactActivation
from .lut import LUTActivation
from .poly import PolyActivation
from .pwl import PWLActivation
from .threshold import MultiThreshold

__all__ = ["LUTActivation", "PWLActivation", "PolyActivation", "ExactActivation",
           "activation_core"]

_UNITS = (LUTActivation, PWLActivation, PolyActivation, ExactActivation, MultiThreshold)


def activation_core(plan, *, lanes=1):
    """The activation unit that implements ``plan``, with ``lanes`` values per transfer.

    Matches :func:`hwnn.ref.activation.activation`: a ``LUTPlan`` gets a
    :class:`LUTActivation`, a ``PWLPlan`` a :class:`PWLActivation`, a ``PolyPlan`` a
    :class:`PolyActivation`, an ``ExactPlan`` an
    :class:`ExactActivation` and a ``ThresholdPlan`` a
    :class:`~hwnn.cores.threshold.MultiThreshold` (its ``channels`` 1 or ``lanes``). Latency
    and ``ii`` are the unit's.

    Raises
    ------
    TypeError
        ``plan`` is not an activation plan (``exc.parameter == "plan"``), or ``lanes`` is not
        an integer.
    ValueError
        ``lanes`` < 1.
    """
    for unit in _UNITS:
        if isinstance(plan, unit._plan_type):
            # The unit is the caller's: Amaranth's unused-core warning names the caller's line.
            return unit(plan, lanes=lanes, src_loc_at=1)
    raise ParameterTypeError("plan", f"plan must be an activation plan (LUTPlan, PWLPlan, "
                                     f"PolyPlan, ExactPlan, see "
                                     f"hwnn.plans.activation.plan_activation, or ThresholdPlan), "
                                     f"not {plan!r}")
