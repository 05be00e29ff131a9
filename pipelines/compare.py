"""Compares evaluated runs image by image: which likelihood is better, and by how much.

    keras-vae compare runs/one-hour-fashion_mnist-seed0 runs/ablation-no-warm-up

Each run's per-image IWAE estimates (`keras-vae evaluate` writes them) are
paired with the first run's on the same test images, so the difference comes
with its own error, much smaller than the runs' standard errors: it says
whether a change helped even when the two figures overlap.
"""

import json

import numpy as np

from keras_vae.evaluation import paired_difference
from keras_vae.run import RunFolder


def compare_runs(run_dirs):
    """Each run's IWAE figure and its paired difference from the first run's.

    Args:
        run_dirs: evaluated run folders, the baseline first, all evaluated on
            the same test images with the same k.

    Returns:
        A list of dicts, one per run: `run`, `negative_log_likelihood`,
        `standard_error`, `epochs`, `training_seconds`, and `difference` and
        `difference_error` from the first run (0 for the first run itself).
    """
    runs = [_evaluated(run_dir) for run_dir in run_dirs]
    baseline_report, baseline = runs[0]
    rows = []
    for run_dir, (report, estimates) in zip(run_dirs, runs, strict=True):
        for key in ("test_set", "k", "examples"):
            ours, theirs = report["protocol"][key], baseline_report["protocol"][key]
            if ours != theirs:
                raise ValueError(
                    f"Expected runs evaluated alike, on the same test images with the same "
                    f"k: evaluate them with the same --protocol. Received: {key} {ours!r} in "
                    f"{run_dir}, {theirs!r} in {run_dirs[0]}."
                )
        paired = paired_difference(estimates, baseline)
        rows.append(
            {
                "run": str(run_dir),
                "negative_log_likelihood": report["iwae"]["negative_log_likelihood"],
                "standard_error": report["iwae"]["standard_error"],
                "epochs": report["protocol"]["epochs"],
                "training_seconds": report["protocol"]["training_seconds"],
                "difference": paired["difference"],
                "difference_error": paired["standard_error"],
            }
        )
    return rows


def _evaluated(run_dir):
    """A run's report and per-image estimates, or an error saying how to make them."""
    folder = RunFolder(run_dir)
    if not folder.report_json.is_file() or not folder.log_likelihoods.is_file():
        raise ValueError(
            f"Expected an evaluated run folder, with {folder.report_json.name} and "
            f"{folder.log_likelihoods.name}. Received: {run_dir}, without them: run "
            f"keras-vae evaluate --run-dir {run_dir} first."
        )
    return json.loads(folder.report_json.read_text()), np.load(folder.log_likelihoods)


def run(args):
    """`keras-vae compare`: prints the runs' figures as a Markdown table."""
    rows = compare_runs(args.run_dirs)
    print(
        "| run | epochs | training (min) | NLL (nats) | difference from the first |\n"
        "|---|---:|---:|---:|---:|"
    )
    for row in rows:
        print(
            f"| {row['run']} | {row['epochs']} | {row['training_seconds'] / 60:.1f} | "
            f"{row['negative_log_likelihood']:.2f} ± {row['standard_error']:.2f} | "
            f"{row['difference']:+.2f} ± {row['difference_error']:.2f} |"
        )


if __name__ == "__main__":
    from pipelines.cli import run_module

    run_module(__spec__.name)
