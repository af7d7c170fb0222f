"""The plan of a bidirectional LSTM or GRU layer: the plans of its two directions, paired."""

from __future__ import annotations

from dataclasses import dataclass

from ..checks import ParameterTypeError, ParameterValueError
from .rnn import RecurrentPlan

__all__ = ["BidirectionalPlan"]

# What the two directions must share: they read one input and their states are concatenated.
_SHARED = ("kind", "input_size", "hidden_size", "in_format", "state_format")


@dataclass(frozen=True)
class BidirectionalPlan:
    """Both directions of one bidirectional layer (PyTorch's ``bidirectional=True``): each
    step's output is ``[h_forward(t); h_reverse(t)]`` (``2·hidden_size`` values in
    ``state_format``), the reverse direction running from a sequence's last step to its first
    (:func:`hwnn.ref.rnn.recurrent` with each plan).

    Each direction keeps its own formats (defaults come from its own weights); they share the
    kind, the input size and format, the hidden size and the state format.

    Raises
    ------
    TypeError
        ``forward`` or ``reverse`` is not a :class:`~hwnn.plans.rnn.RecurrentPlan`.
    ValueError
        ``forward`` is a reverse plan or ``reverse`` a forward one, or they differ in what they
        must share (the message names it and both values; ``exc.parameter`` is ``reverse``).
    """
    forward: RecurrentPlan
    reverse: RecurrentPlan

    def __post_init__(self):
        for name in ("forward", "reverse"):
            plan = getattr(self, name)
            if not isinstance(plan, RecurrentPlan):
                raise ParameterTypeError(name, f"{name} must be a RecurrentPlan, not {plan!r}")
        if self.forward.reverse or not self.reverse.reverse:
            raise ParameterValueError("reverse", "forward must be a forward plan and reverse a "
                                                 "reverse one (plan_recurrent(reverse=True))")
        for what in _SHARED:
            mine, theirs = getattr(self.forward, what), getattr(self.reverse, what)
            if mine != theirs:
                raise ParameterValueError("reverse", f"the two directions must have one "
                                                     f"{what}, not {mine} and {theirs}")

    kind = property(lambda self: self.forward.kind, doc='"lstm" or "gru".')
    input_size = property(lambda self: self.forward.input_size)
    hidden_size = property(lambda self: self.forward.hidden_size,
                           doc="Hidden size of each direction (the output has twice as many).")
    in_format = property(lambda self: self.forward.in_format)
    state_format = property(lambda self: self.forward.state_format)
    out_format = property(lambda self: self.forward.state_format,
                          doc="The hidden states' format: what the layer outputs.")
    directions = property(lambda self: (self.forward, self.reverse))

    def describe(self) -> dict:
        """Both directions' descriptions (JSON-serializable)."""
        return {"kind": self.kind, "bidirectional": True, "input_size": self.input_size,
                "hidden_size": self.hidden_size, "in_format": str(self.in_format),
                "state_format": str(self.state_format),
                "forward": self.forward.describe(), "reverse": self.reverse.describe()}
