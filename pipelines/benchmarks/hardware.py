"""The CPU's floating-point limit: nominal peak from its features, and a measured ceiling."""

import os
import time
from pathlib import Path

import numpy as np

# float32 lanes per vector register of the widest instruction set listed.
VECTOR_BITS = (("avx512f", 512), ("avx2", 256), ("avx", 256), ("sse2", 128))

# Fused multiply-add units per core. /proc/cpuinfo does not say; two is what
# current x86 server cores (Intel since Haswell, AMD since Zen 2) have.
FMA_UNITS = 2


def cpu_features(cpuinfo=None, cores=None):
    """Reads the CPU's model, clock, vector width and FMA support.

    Args:
        cpuinfo: the text of `/proc/cpuinfo`, or `None` to read it.
        cores: number of cores, or `None` for the ones this process may use.

    Returns:
        A dict: `model`, `cores`, `mhz` (the clock the kernel reports, `None`
        if unknown), `vector_bits`, `fma` (bool).
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    fields = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    vector_bits = next((bits for flag, bits in VECTOR_BITS if flag in flags), 32)
    mhz = float(fields["cpu MHz"]) if "cpu MHz" in fields else None
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "model": fields.get("model name", "unknown"),
        "cores": cores,
        "mhz": mhz,
        "vector_bits": vector_bits,
        "fma": "fma" in flags,
    }


def nominal_peak_gflops(features):
    """The float32 GFLOP/s of every core retiring full-width FMAs on every unit.

    Args:
        features: a dict from `cpu_features`.

    Returns:
        GFLOP/s, or `None` when the clock is unknown.
    """
    if features["mhz"] is None:
        return None
    lanes = features["vector_bits"] // 32
    per_cycle = lanes * (2 * FMA_UNITS if features["fma"] else 2)
    return features["cores"] * features["mhz"] / 1e3 * per_cycle


def measured_matmul_gflops(size=2048, repeats=5):
    """The best GFLOP/s of a float32 matrix product in TensorFlow and in NumPy.

    TensorFlow's CPU kernels pick the widest vector instructions the CPU has at
    run time; NumPy's OpenBLAS uses the kernel `OPENBLAS_CORETYPE` names when it
    is set (`Haswell`: AVX2, also on AVX-512 CPUs), so it can understate the
    ceiling. The faster of the two is the practical ceiling.

    Args:
        size: the matrices are `size x size`.
        repeats: timed products per library; the fastest counts.

    Returns:
        A dict: `{"tensorflow": GFLOP/s, "numpy": GFLOP/s}`.
    """
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    tf_a, tf_b = tf.constant(a), tf.constant(b)
    product = tf.function(tf.linalg.matmul)
    products = {
        "tensorflow": lambda: product(tf_a, tf_b).numpy(),
        "numpy": lambda: a @ b,
    }
    figures = {}
    for name, run in products.items():
        run()
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - started)
        figures[name] = 2 * size**3 / best / 1e9
    return figures
