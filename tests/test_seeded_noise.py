import math

import numpy as np
from keras import ops

from keras_vae.seeded_noise import seeded_normal
from tests.support.numpy_seeded_noise import numpy_seeded_normal


def test_seeded_normal_is_the_documented_generator():
    seeds = np.array([0, 1, 7, 2**32 - 1, 2**32, 2**40 + 3, 2**63 - 1], np.int64)
    values = ops.convert_to_numpy(seeded_normal(seeds, 40))
    assert values.shape == (7, 40) and values.dtype == np.float32
    np.testing.assert_allclose(values, numpy_seeded_normal(seeds, 40), atol=2e-6)
    # A row depends on its own seed alone, not on the rows beside it.
    np.testing.assert_array_equal(ops.convert_to_numpy(seeded_normal(seeds[3:4], 40)), values[3:4])
    assert len({row.tobytes() for row in values}) == len(seeds)


def test_seeded_normal_draws_independent_standard_normals():
    values = ops.convert_to_numpy(seeded_normal(np.arange(5000), 100)).astype(np.float64)
    x = np.sort(values.ravel())
    n = x.size
    cdf = 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    statistic = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    # Kolmogorov-Smirnov at the 1% level.
    assert statistic < 1.628 / math.sqrt(n)
    # Neighbouring seeds and neighbouring dimensions are uncorrelated (|r| < 4 sd).
    limit = 4 / math.sqrt(values.shape[1] * (values.shape[0] - 1))
    assert abs(np.corrcoef(values[:-1].ravel(), values[1:].ravel())[0, 1]) < limit
    assert abs(np.corrcoef(values[:, :-1].ravel(), values[:, 1:].ravel())[0, 1]) < limit
