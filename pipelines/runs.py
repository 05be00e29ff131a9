"""Reading the folder of a finished training run, as `pipelines.train` writes it."""

import json
from pathlib import Path

import keras
import numpy as np

import keras_vae  # noqa: F401  (registers the classes that load_model needs)
from keras_vae.data import dataset_builder, load_images


def load_run(run_dir):
    """Returns `(model, summary)` of a training run folder."""
    run_dir = Path(run_dir)
    for name in ("model.keras", "history.json"):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(
                f"{run_dir / name} is missing: pass the folder of a finished training run "
                "(make run writes runs/default)."
            )
    summary = json.loads((run_dir / "history.json").read_text())
    return keras.models.load_model(run_dir / "model.keras"), summary


def test_set(config, max_examples=None):
    """The run's test images (preprocessed as in training), labels and class names."""
    options = {"data_dir": config["data_dir"], "source_dir": config["idx_dir"]}
    batches = load_images(
        config["dataset"],
        "test",
        batch_size=1000,
        binarize=config["binarize"],
        seed=config["seed"] + 1,
        with_labels=True,
        max_examples=max_examples,
        **options,
    )
    images, labels = zip(*((x.numpy(), y.numpy()) for x, y in batches), strict=True)
    info = dataset_builder(config["dataset"], **options).info
    return np.concatenate(images), np.concatenate(labels), info.features["label"].names
