"""Random stall patterns that every simulation engine computes the same way, cycle by cycle.

A pattern answers "is this stream stalled in cycle ``c``?" with a counter-based generator:
``splitmix64(key + c)``, whose top 53 bits are compared with ``probability·2**53``. Nothing is
stored per cycle (a run of 10⁸ cycles needs no 10⁸-entry array), and the C++ drivers of the
compiled engines evaluate the same integer function (:data:`STALL_CPP`), so a seed gives the
same stalls, and the same cycles, in every engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import check_integer

__all__ = ["STALL_CPP", "StallPattern", "splitmix64", "stall_patterns"]

_MASK = (1 << 64) - 1
_FRACTION_BITS = 53


def splitmix64(x: int) -> int:
    """The SplitMix64 output function of a 64-bit state ``x`` (Steele, Lea, Flood 2014)."""
    z = (x + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


#: The same generator in C++ for the compiled drivers.
STALL_CPP = r"""
static inline bool stalled(uint64_t key, uint64_t threshold, int64_t cycle) {
  uint64_t z = key + (uint64_t)cycle + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (z >> 11) < threshold;
}
"""


@dataclass(frozen=True)
class StallPattern:
    """Stalls of one stream: cycle ``c`` is stalled when the top 53 bits of
    ``splitmix64(key + c)`` are below ``threshold`` (``probability·2**53``, rounded down)."""
    key: int
    threshold: int

    def __getitem__(self, cycle: int) -> bool:
        return (splitmix64((self.key + cycle) & _MASK) >> (64 - _FRACTION_BITS)) < self.threshold

    def first(self, count: int) -> np.ndarray:
        """The pattern of cycles ``0 .. count - 1`` as a bool array (vectorized)."""
        z = (np.uint64(self.key) + np.arange(count, dtype=np.uint64)
             + np.uint64(0x9E3779B97F4A7C15))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
        return (z >> np.uint64(64 - _FRACTION_BITS)) < np.uint64(self.threshold)


def stall_patterns(seed, probabilities) -> list[StallPattern]:
    """One :class:`StallPattern` per probability in ``probabilities``, all from ``seed``.

    Raises
    ------
    TypeError, ValueError
        ``seed`` is not an integer in [0, 2**64).
    """
    base = splitmix64(check_integer(seed, "seed", minimum=0, maximum=_MASK))
    return [StallPattern(splitmix64((base + k) & _MASK), int(p * (1 << _FRACTION_BITS)))
            for k, p in enumerate(probabilities)]
