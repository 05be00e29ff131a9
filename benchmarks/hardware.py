"""The CPU's floating-point limit: its clock measured, the nominal peak at that clock,
and the matrix products that set the practical ceiling."""

import ctypes
import mmap
import os
import platform
import statistics
import threading
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
        if unknown; under a hypervisor often the base clock), `vector_bits`,
        `fma` and `bf16` (native bfloat16 dot products, AVX512-BF16 or AMX).
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
        "bf16": bool({"avx512_bf16", "amx_bf16"} & flags),
    }


def nominal_peak_gflops(features, ghz=None):
    """The float32 GFLOP/s of every core retiring full-width FMAs on every unit.

    Args:
        features: a dict from `cpu_features`.
        ghz: the clock the cores run at (`measured_clock_ghz`), or `None` for
            the one `/proc/cpuinfo` reports.

    Returns:
        GFLOP/s, or `None` when the clock is unknown.
    """
    if ghz is None:
        if features["mhz"] is None:
            return None
        ghz = features["mhz"] / 1e3
    lanes = features["vector_bits"] // 32
    per_cycle = lanes * (2 * FMA_UNITS if features["fma"] else 2)
    return features["cores"] * ghz * per_cycle


# x86-64 machine code of `uint64_t chain(uint64_t n)`: n rounds of 32 dependent
# `add rcx, rdx`, one cycle each on every x86-64 core (a register operand: the
# immediate-add folding of recent Intel cores does not apply), so the loop
# runs 32 n cycles. `xor ecx, ecx; mov edx, 1`, the body, `dec rdi; jnz body`,
# `mov rax, rcx; ret`.
_CHAIN_ADDS = 32
_CHAIN_BODY = bytes([0x48, 0x01, 0xD1]) * _CHAIN_ADDS + bytes([0x48, 0xFF, 0xCF])
_CHAIN_CODE = (
    bytes([0x31, 0xC9, 0xBA, 0x01, 0x00, 0x00, 0x00])
    + _CHAIN_BODY
    + bytes([0x75, (-(len(_CHAIN_BODY) + 2)) & 0xFF])
    + bytes([0x48, 0x89, 0xC8, 0xC3])
)


def measured_clock_ghz(cores, rounds=5, cycles=5e8):
    """The clock the cores run at while all of them are busy, measured.

    Each core runs a chain of dependent integer additions, one cycle each, at
    the same time as the others (ctypes releases the GIL during the call);
    cycles divided by seconds is the clock, turbo included, which
    `/proc/cpuinfo` does not show under a hypervisor.

    Args:
        cores: threads run at once, one per core.
        rounds: timed chains per thread; the fastest counts.
        cycles: cycles per chain.

    Returns:
        GHz, the median over the threads, or `None` where machine code cannot
        run (not x86-64, or executable memory refused).
    """
    if platform.machine() not in ("x86_64", "AMD64"):
        return None
    try:
        protection = mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC
        memory = mmap.mmap(-1, mmap.PAGESIZE, prot=protection)
    except (OSError, AttributeError):
        return None
    memory.write(_CHAIN_CODE)
    address = ctypes.addressof(ctypes.c_char.from_buffer(memory))
    chain = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64)(address)
    iterations = int(cycles / _CHAIN_ADDS)
    figures = []

    def run():
        seconds = _fastest_seconds(lambda: chain(iterations), rounds)
        figures.append(iterations * _CHAIN_ADDS / seconds / 1e9)

    threads = [threading.Thread(target=run) for _ in range(cores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statistics.median(figures)


class MatmulCeiling:
    """Times a float32 matrix product in TensorFlow and in NumPy, ready to be re-timed.

    TensorFlow's `tf.linalg.matmul` runs oneDNN's kernels, which pick the widest
    vector instructions the CPU has at run time: the kernels the models run on.
    NumPy's OpenBLAS uses the kernel `OPENBLAS_CORETYPE` names when it is set
    (`Haswell`: AVX2, also on AVX-512 CPUs), so it can understate what the CPU
    does. The faster of the two is the practical ceiling. Timing it again in
    every round of a benchmark puts each figure beside the ceiling of the same
    minute of a shared machine.

    Args:
        size: the matrices are `size x size`.
        repeats: timed products per library and measurement; the fastest counts.
    """

    def __init__(self, size=2048, repeats=5):
        import tensorflow as tf

        rng = np.random.default_rng(0)
        a = rng.standard_normal((size, size), dtype=np.float32)
        b = rng.standard_normal((size, size), dtype=np.float32)
        tf_a, tf_b = tf.constant(a), tf.constant(b)
        product = tf.function(tf.linalg.matmul)
        self._products = {
            "tensorflow": lambda: product(tf_a, tf_b).numpy(),
            "numpy": lambda: a @ b,
        }
        self.flops = 2 * size**3
        self.repeats = repeats
        for run in self._products.values():
            run()

    def measure(self):
        """Returns `{"tensorflow": GFLOP/s, "numpy": GFLOP/s}`, each the fastest of `repeats`."""
        return {
            name: self.flops / _fastest_seconds(run, self.repeats) / 1e9
            for name, run in self._products.items()
        }


def _fastest_seconds(call, repeats):
    """The shortest of `repeats` timed calls of `call`, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best
