import numpy as np

from hwnn.fixed import SQ, UQ
from hwnn.sim import corner_vectors, make_vectors


def test_corner_vectors_of_a_signed_format():
    assert corner_vectors(SQ(1, 3), 2).tolist() == [
        [-8, -8], [7, 7], [0, 0],  # all minimum, all maximum, all zero
        [-8, 7], [7, -8],          # the two alternations
        [-1, -1], [1, 1],          # one ulp around zero
        [-8, 0], [7, 0], [0, -8], [0, 7],  # each extreme alone, walking through the lanes
    ]


def test_corner_vectors_of_an_unsigned_format_and_odd_lanes():
    rows = corner_vectors(UQ(1, 1), 3).tolist()
    assert rows[:5] == [[0, 0, 0], [3, 3, 3], [0, 3, 0], [3, 0, 3], [1, 1, 1]]
    assert rows[5:] == [[3, 0, 0], [0, 0, 3]]  # [0, 3, 0] is already the first alternation


def test_make_vectors_starts_with_the_corners_then_random_codes_in_range():
    corners = corner_vectors(UQ(2, 2), 2)
    vectors = make_vectors(UQ(2, 2), 2, 50, seed=1)
    assert vectors.shape == (50, 2) and vectors.dtype.name == "int64"
    assert vectors.min() == 0 and vectors.max() == 15
    np.testing.assert_array_equal(vectors[:len(corners)], corners)


def test_make_vectors_is_deterministic_per_seed():
    np.testing.assert_array_equal(make_vectors(SQ(2, 2), 3, 40, seed=1),
                                  make_vectors(SQ(2, 2), 3, 40, seed=1))
    assert not np.array_equal(make_vectors(SQ(2, 2), 3, 40, seed=1),
                              make_vectors(SQ(2, 2), 3, 40, seed=2))
    assert np.array_equal(make_vectors(SQ(2, 2), 3, 40), make_vectors(SQ(2, 2), 3, 40, seed=0))


def test_make_vectors_shorter_than_the_corners():
    np.testing.assert_array_equal(make_vectors(SQ(1, 3), 2, 4), corner_vectors(SQ(1, 3), 2)[:4])
    assert make_vectors(SQ(1, 3), 2, 0).shape == (0, 2)
