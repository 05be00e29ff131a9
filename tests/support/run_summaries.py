"""A run summary to write where a test needs a finished run's `history.json`."""

from keras_vae.run_config import RunConfig
from keras_vae.run_summary import RunSummary


def a_summary(**changes):
    """A `RunSummary` of a short run, with `changes` to its fields."""
    fields = dict(
        config=RunConfig(epochs=3, preset="mlp_28", test_seed=5), strategy="MirroredStrategy",
        replicas=1, parameters=1234, weights_sha256="ab" * 32,
        history={"loss": [3.0, 2.0, 1.5]}, resumed_from_epoch=0,
        test={"loss": 1.5, "reconstruction_loss": 1.0, "kl_loss": 0.5},
        test_set="10,000 test images", epoch_seconds=[2.0, 1.0, 1.0], examples_per_epoch=640,
        train_examples_per_second=640.0, units="nats per example", steps_per_execution=4,
    )  # fmt: skip
    return RunSummary(**{**fields, **changes})
