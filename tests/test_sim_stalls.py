import math
import re

import numpy as np
import pytest

from hwnn.sim.stalls import StallPattern, splitmix64, stall_patterns


def test_splitmix64_matches_the_published_sequence():
    # SplitMix64 from state 0 (Vigna's splitmix64.c): the state advances by the golden gamma
    # before each output; splitmix64(x) is the output for state x.
    gamma = 0x9E3779B97F4A7C15
    assert splitmix64(0) == 0xE220A8397B1DCDAF
    assert splitmix64(gamma) == 0x6E789E6AA1B965F4
    assert splitmix64((2 * gamma) % 2**64) == 0x06C45D188009454F


@pytest.mark.parametrize("probability", [0.0, 0.05, 0.3, 0.9])
def test_vectorized_pattern_equals_the_cycle_by_cycle_one(probability):
    pattern, = stall_patterns(12345, [probability])
    first = pattern.first(5000)
    assert first.dtype == bool
    assert first.tolist() == [pattern[c] for c in range(5000)]


@pytest.mark.parametrize("probability", [0.0, 0.01, 0.25, 0.5, 0.99])
def test_stall_rate_is_the_probability(probability):
    n = 200_000
    stalls = int(stall_patterns(7, [probability])[0].first(n).sum())
    # Binomial: mean n·p, standard deviation sqrt(n·p·(1−p)); 6 sigma fails about once in 10⁹.
    assert abs(stalls - n * probability) <= 6 * math.sqrt(n * probability * (1 - probability))


def test_streams_and_seeds_get_different_patterns():
    a, b = stall_patterns(1, [0.5, 0.5])
    c, = stall_patterns(2, [0.5])
    first = [p.first(256).tolist() for p in (a, b, c)]
    assert first[0] != first[1] and first[0] != first[2]
    assert stall_patterns(1, [0.5, 0.5]) == [a, b]   # the same seed, the same patterns


def test_pattern_is_exact_at_the_threshold():
    # Stalled iff the top 53 bits are below the threshold: check one cycle on each side.
    value = splitmix64(0) >> 11
    assert StallPattern(0, value + 1)[0] and not StallPattern(0, value)[0]


@pytest.mark.parametrize("seed, error, message", [
    (-1, ValueError, "seed must be an integer between 0 and 18446744073709551615, not -1"),
    (2**64, ValueError, "seed must be an integer between 0 and 18446744073709551615, not "
                        "18446744073709551616"),
    (1.5, TypeError, "seed must be an integer between 0 and 18446744073709551615, not 1.5"),
])
def test_bad_seeds_are_named(seed, error, message):
    with pytest.raises(error, match=re.escape(message) + "$"):
        stall_patterns(seed, [0.1])
