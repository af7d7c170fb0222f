"""hwnn.channel: the simulated IM/DD channel the equalizer examples and ``hwnn demo`` use."""

import numpy as np
import pytest

from hwnn import channel


def test_transmit_is_reproducible_and_seeded():
    first = channel.transmit(3, 10, 0.1, seed=5)
    again = channel.transmit(3, 10, 0.1, seed=5)
    other = channel.transmit(3, 10, 0.1, seed=6)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[1], other[1])
    symbols, received = first
    assert symbols.shape == received.shape == (3, 10)
    assert set(np.unique(symbols)) <= {-1.0, 1.0}


def test_noiseless_samples_are_the_square_law_of_the_dispersed_field():
    symbols, received = channel.transmit(2, 9, 0.0, seed=1)
    field = np.where(symbols > 0, channel.LEVELS[1], channel.LEVELS[0])
    n = 4   # a sample away from the frame's edges: every tap sees a symbol
    dispersed = sum(channel.TAPS[k] * field[0, n + k - channel.CENTER]
                    for k in range(len(channel.TAPS)))
    assert received[0, n] == pytest.approx(channel.GAIN * (abs(dispersed) ** 2 - channel.MEAN),
                                           abs=1e-12)


def test_received_samples_have_zero_mean_inside_frames():
    _, received = channel.transmit(4000, 64, 0.0, seed=2)
    assert abs(received[:, channel.CENTER:-channel.CENTER].mean()) < 0.01


def test_ser_counts_sign_decisions_with_zero_deciding_plus_one():
    symbols = np.array([1.0, -1.0, 1.0, -1.0])
    assert channel.ser(np.array([0.0, 0.0, -2.0, -1.0]), symbols) == 0.5


def test_snr_db_of_the_examples_noise():
    assert channel.snr_db(0.1) == pytest.approx(20.5, abs=0.05)
    assert channel.snr_db(0.2) == pytest.approx(channel.snr_db(0.1) - 20 * np.log10(2))


@pytest.mark.parametrize("call, message", [
    (lambda: channel.transmit(0, 4, 0.1, 1), "frames and length must be >= 1, not 0, 4"),
    (lambda: channel.transmit(2, 0, 0.1, 1), "frames and length must be >= 1, not 2, 0"),
    (lambda: channel.transmit(2, 4, -0.5, 1), "sigma must be >= 0, not -0.5"),
    (lambda: channel.snr_db(0.0), "sigma must be > 0, not 0.0"),
])
def test_bad_parameters_are_named(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()
