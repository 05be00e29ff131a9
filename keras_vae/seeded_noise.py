"""Standard normal noise that is a pure function of a seed, the same in every runtime.

A two-level bundle's sampler graph draws its noise with this generator, built
from integer and float32 ops that TensorFlow, its session loader and
onnxruntime (Python, Node.js, the browser, Triton) compute alike, so a seed gives
the same images wherever the graph runs. It is a counter-based generator: the
PCG hash (O'Neill's `pcg32` output function on a 32-bit state, "RXS-M-XS")

    pcg(v) = (w >> 22) ^ w, where w = ((s >> ((s >> 28) + 4)) ^ s) * 277803737
                           and s = v * 747796405 + 2891336453   (uint32 arithmetic)

keys each row by its seed (`key = pcg(low + pcg(high))` of the seed's two 32-bit
halves), and the row's `2 * dim` uniforms are `u_j = ((pcg(pcg(j) + key) >> 8) + 0.5)
/ 2**24` for counters `j = 0 … 2 dim - 1`. The Box-Muller transform turns
`u_j` and `u_{dim + j}` into the row's `j`-th normal,
`sqrt(-2 log u_j) * cos(2π u_{dim + j})`, in float32.
"""

import math

import numpy as np
from keras import ops

_U32 = "uint32"


def _constant(value):
    return ops.cast(np.array(value, np.uint32), _U32)


def _pcg(values):
    """The PCG hash of uint32 values, elementwise (wrapping uint32 arithmetic)."""
    state = ops.add(ops.multiply(values, _constant(747796405)), _constant(2891336453))
    shift = ops.add(ops.right_shift(state, _constant(28)), _constant(4))
    word = ops.multiply(ops.bitwise_xor(ops.right_shift(state, shift), state), _constant(277803737))
    return ops.bitwise_xor(ops.right_shift(word, _constant(22)), word)


def seeded_normal(seeds, dim):
    """Draws `dim` standard normal values for each seed.

    Args:
        seeds: int64 tensor `(batch,)` of seeds in [0, 2**63 - 1].
        dim: the number of values per seed.

    Returns:
        A float32 tensor `(batch, dim)`; row `i` depends on `seeds[i]` alone.
    """
    seeds = ops.cast(seeds, "int64")
    high = ops.floor_divide(seeds, 2**32)
    low = ops.cast(seeds - high * 2**32, _U32)
    key = _pcg(ops.add(low, _pcg(ops.cast(high, _U32))))
    counters = _pcg(ops.cast(ops.arange(2 * dim, dtype="int32"), _U32))
    bits = _pcg(ops.add(counters[None, :], key[:, None]))
    uniform = (ops.cast(ops.right_shift(bits, _constant(8)), "float32") + 0.5) * 2.0**-24
    radius = ops.sqrt(-2.0 * ops.log(uniform[:, :dim]))
    return radius * ops.cos((2.0 * math.pi) * uniform[:, dim:])
