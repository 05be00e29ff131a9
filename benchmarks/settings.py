"""Training throughput under settings that only a fresh process can change, on and off.

oneDNN's kernels, the thread pools and XLA are fixed once TensorFlow starts,
so each setting trains the default model in its own process (and so does a
larger batch, whose kernels differ too). The
settings take turns, round after round, so a slow spell of a shared machine
hits all of them, and each is set against the process as training runs it from
the same round.

    python -m benchmarks.settings '{"batch_size": 128, ...}'

runs one process's windows and prints, as JSON, its rates and the settings
TensorFlow reports it ran with (what `compare_settings` starts).
"""

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

AS_TRAINED = "as training runs it"

# Name -> (environment variables, options of the child).
SETTINGS = {
    AS_TRAINED: ({}, {}),
    "one inter-op thread": ({}, {"inter_op_threads": 1}),
    "one thread per op, two ops at once": ({}, {"threads": 1, "inter_op_threads": 2}),
    "Eigen's kernels instead of oneDNN's (TF_ENABLE_ONEDNN_OPTS=0)": (
        {"TF_ENABLE_ONEDNN_OPTS": "0"},
        {},
    ),
    "XLA (jit_compile=True)": ({}, {"jit_compile": True}),
    # More examples per step fill the matrix units better if anything does; it
    # also changes the optimisation, so it would be a change of recipe.
    "twice the examples per step": ({}, {"batch_scale": 2}),
}


def compare_settings(batch_size, steps_per_execution, threads, rounds=3, steps=96, windows=3,
                     data_options=None, settings=None):  # fmt: skip
    """Times each setting's process in turns.

    Args:
        batch_size: examples per step.
        steps_per_execution: the training function's steps per call.
        threads: TensorFlow's intra-op threads.
        rounds: processes per setting.
        steps: training steps per window.
        windows: timed windows per process, after a warm-up one; the fastest counts.
        data_options: `TFDSImages` arguments (`data_dir`, `idx_dir`, `max_examples`).
        settings: names of `SETTINGS` to time, `AS_TRAINED` first (default: all).

    Returns:
        A dict: `rows` (name, `examples_per_second` as median/min/max over the
        rounds, `rounds` each round's figure, `vs_as_trained`: the median over
        rounds of its figure over `AS_TRAINED`'s, and `applied`: what its last
        process's TensorFlow reported), and the settings of the run.
    """
    names = list(settings or SETTINGS)
    if names[0] != AS_TRAINED:
        raise ValueError(f"Expected {AS_TRAINED!r} first, to compare with. Received {names}.")
    options = {
        "batch_size": batch_size,
        "steps_per_execution": steps_per_execution,
        "threads": threads,
        "steps": steps,
        "windows": windows,
        "data_options": data_options or {},
    }
    figures = {name: [] for name in names}
    applied = {}
    for round_index in range(rounds):
        for name in names:
            environment, child_options = SETTINGS[name]
            report = _run_child({**options, **child_options}, environment)
            figures[name].append(max(report["rates"]))
            applied[name] = report["applied"]
        print(
            f"  round {round_index + 1}/{rounds}: "
            + ", ".join(f"{name} {figures[name][-1]:,.0f}" for name in names)
            + " examples/s",
            flush=True,
        )
    rows = []
    for name in names:
        own = figures[name]
        rows.append(
            {
                "name": name,
                "examples_per_second": {
                    "median": statistics.median(own),
                    "min": min(own),
                    "max": max(own),
                },
                "rounds": own,
                "vs_as_trained": statistics.median(
                    a / b for a, b in zip(own, figures[AS_TRAINED], strict=True)
                ),
                "applied": applied[name],
            }
        )
    return {"rows": rows, **options, "rounds": rounds}


def _search_path():
    """PYTHONPATH with the checkout first, where `benchmarks` and `pipelines` lie."""
    checkout = str(Path(__file__).resolve().parents[1])
    return os.pathsep.join([checkout, *filter(None, [os.environ.get("PYTHONPATH")])])


def _run_child(options, environment):
    """One process of `main`; returns what it printed."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.settings", json.dumps(options)],
        env={**os.environ, **environment, "PYTHONPATH": _search_path()},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode:
        raise RuntimeError(f"A settings process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(options):
    """Trains the default model in this process; prints each window's examples/s and
    the settings TensorFlow ran with."""
    import tensorflow as tf

    from .training import default_model, default_training_stream

    tf.config.threading.set_intra_op_parallelism_threads(options["threads"])
    if "inter_op_threads" in options:
        tf.config.threading.set_inter_op_parallelism_threads(options["inter_op_threads"])
    batch_size = options["batch_size"] * options.get("batch_scale", 1)
    data_options = dict(options["data_options"])
    max_examples = data_options.pop("max_examples", None)
    _, dataset = default_training_stream(batch_size, 0, max_examples, data_options)
    model = default_model(
        0,
        steps_per_execution=options["steps_per_execution"],
        jit_compile=options.get("jit_compile", False),
    )
    steps = options["steps"]
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    rates = []
    for _ in range(options["windows"]):
        started = time.perf_counter()
        model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
        rates.append(steps * batch_size / (time.perf_counter() - started))
    applied = {
        "batch_size": batch_size,
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0",
        "jit_compile": bool(model.jit_compile),
    }
    print(json.dumps({"rates": rates, "applied": applied}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
