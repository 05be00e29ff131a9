"""A second implementation of `keras_vae.seeded_noise`, from its docstring."""

import numpy as np


def numpy_seeded_normal(seeds, dim):
    """The generator of keras_vae.seeded_noise's docstring, written again in NumPy."""

    def pcg(v):
        with np.errstate(over="ignore"):
            state = v.astype(np.uint32) * np.uint32(747796405) + np.uint32(2891336453)
            word = ((state >> ((state >> np.uint32(28)) + np.uint32(4))) ^ state) * np.uint32(
                277803737
            )
        return (word >> np.uint32(22)) ^ word

    seeds = np.asarray(seeds, np.uint64)
    low = (seeds & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    high = (seeds >> np.uint64(32)).astype(np.uint32)
    with np.errstate(over="ignore"):
        key = pcg(low + pcg(high))
        bits = pcg(pcg(np.arange(2 * dim, dtype=np.uint32))[None, :] + key[:, None])
    uniform = ((bits >> np.uint32(8)).astype(np.float64) + 0.5) * 2.0**-24
    return np.sqrt(-2 * np.log(uniform[:, :dim])) * np.cos(2 * np.pi * uniform[:, dim:])
