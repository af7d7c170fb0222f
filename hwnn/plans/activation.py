"""One entry point for activation plans: pick a method, or fit the cheapest plan to an error.

``method="exact"`` serves relu, relu6, leaky_relu, hard_tanh and hard_sigmoid; ``"lut"``,
``"pwl"``, ``"poly"`` and ``"taylor"`` approximate smooth functions (sigmoid, tanh, and any
registered smooth function; ``"taylor"`` needs the function's series).
"""

from __future__ import annotations

from ..checks import ParameterValueError, check_choice, check_number
from ..fixed import check_format
from .exact import plan_exact
from .functions import get_function
from .lut import plan_lut
from .poly import FAITHFUL, fit_poly, fit_taylor, plan_poly, plan_taylor
from .pwl import fit_pwl, plan_pwl

__all__ = ["METHODS", "SMOOTH_METHODS", "plan_activation", "fit_activation"]

METHODS = ("exact", "lut", "pwl", "poly", "taylor")
#: The methods for smooth functions.
SMOOTH_METHODS = ("lut", "pwl", "poly", "taylor")


def _method(function, method):
    if method is None:
        return "pwl" if function.smooth else "exact"
    check_choice(method, "method", METHODS)
    if method == "exact" and function.smooth:
        raise ParameterValueError("method", f"{function.name} cannot be computed exactly; use "
                                            f"method 'lut', 'pwl', 'poly' or 'taylor'")
    if method != "exact" and not function.smooth:
        raise ParameterValueError("method", f"{function.name} is computed exactly; use method "
                                            f"'exact', not {method!r}")
    return method


def plan_activation(function, in_format, out_format, *, method=None, **options):
    """A plan for ``function``; ``options`` go to :func:`~hwnn.plans.lut.plan_lut`,
    :func:`~hwnn.plans.pwl.plan_pwl`, :func:`~hwnn.plans.poly.plan_poly`,
    :func:`~hwnn.plans.poly.plan_taylor` or :func:`~hwnn.plans.exact.plan_exact`.

    Every plan carries ``error`` (an :class:`~hwnn.plans.accuracy.ErrorBound` measured on every
    input code) and ``describe()``.
    """
    function = get_function(function)
    method = _method(function, method)
    if method == "exact":
        return plan_exact(function, in_format, out_format, **options)
    planner = {"lut": plan_lut, "pwl": plan_pwl, "poly": plan_poly, "taylor": plan_taylor}
    return planner[method](function, in_format, out_format, **options)


def fit_activation(function, in_format, out_format, max_error, *, method="pwl", **options):
    """The cheapest plan of ``method`` whose measured maximum error is at most ``max_error``.

    ``lut``: the smallest power-of-two table; ``pwl``: the fewest segments; ``poly``: the
    cheapest degree and piece count (:func:`~hwnn.plans.poly.fit_poly`); ``taylor``: the
    lowest order. ``poly`` and ``taylor`` also take ``max_error="faithful"``: every output
    within one ulp of the exact value saturated to the output format
    (:attr:`~hwnn.plans.accuracy.ErrorBound.faithful`).

    Raises
    ------
    ValueError
        ``max_error`` is not positive, or no plan of the method meets it (the message gives
        the best error reached).
    """
    function = get_function(function)
    method = _method(function, method)
    if method in ("poly", "taylor"):
        fit = fit_poly if method == "poly" else fit_taylor
        return fit(function, in_format, out_format, max_error, **options)
    if isinstance(max_error, str) and max_error == FAITHFUL:
        raise ParameterValueError("max_error", f"max_error {FAITHFUL!r} applies to methods poly "
                                               f"and taylor, not {method!r}; give a number")
    max_error = check_number(max_error, "max_error", positive=True, finite=False)
    if method == "pwl":
        return fit_pwl(function, in_format, out_format, max_error, **options)
    if method == "exact":
        plan = plan_activation(function, in_format, out_format, method="exact", **options)
        if plan.error.max_abs > max_error:
            raise ParameterValueError(
                "max_error", f"the exact {function.name} plan has error "
                             f"{plan.error.max_abs:.3g} > max_error {max_error:g}: the output "
                             f"format's rounding alone exceeds it")
        return plan
    in_format = check_format(in_format, "in_format")
    best = None
    size = 2
    while size <= 2 * (1 << in_format.width):
        try:
            plan = plan_lut(function, in_format, out_format, table_size=size, **options)
        except ParameterValueError as exc:
            # Past the largest table the range allows (sizes here are powers of two).
            if exc.parameter == "table_size":
                break
            raise
        if plan.error.max_abs <= max_error:
            return plan
        best = plan if best is None or plan.error.max_abs < best.error.max_abs else best
        size *= 2
    reached = f"{best.error.max_abs:.3g}" if best else "nothing"
    raise ParameterValueError(
        "max_error", f"no lookup table for {function.name} from {in_format} to {out_format} "
                     f"meets max_error {max_error:g}; the best reached {reached}")
