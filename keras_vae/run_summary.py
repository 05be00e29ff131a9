"""What a finished training run records (`history.json`), written and read through one class.

`RunSummary` is the run folder's record of its training: the settings, the
per-epoch metrics, the test figures and where they came from. Its
`provenance` is the one record of where a model came from that an export
bundle's manifest and a preset folder's metadata both carry, under the same
keys, which the browser explorer reads too. Importable without TensorFlow.
"""

import dataclasses
import json

from keras_vae.run_config import RunConfig


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """A finished run's record, as `history.json` holds it.

    Attributes:
        config: the run's `RunConfig`.
        strategy: the `tf.distribute` strategy's class name.
        replicas: the replicas the strategy trained on.
        parameters: the model's parameter count.
        weights_sha256: the sha256 of all the trained weights, in order.
        history: each metric's per-epoch values, over every resumed segment.
        resumed_from_epoch: the epoch the last segment resumed from (0: none).
        test: the test figures (`loss`, `reconstruction_loss`, a VAE's `kl_loss`).
        test_set: what the test figures were measured on, in words.
        epoch_seconds: the wall time of each epoch of the last segment.
        examples_per_epoch: the training examples of one epoch.
        train_examples_per_second: the steady training rate (`None` without epochs).
        units: the unit of the losses.
        steps_per_execution: training steps per call of the training function.
    """

    config: RunConfig
    strategy: str
    replicas: int
    parameters: int
    weights_sha256: str
    history: dict
    resumed_from_epoch: int
    test: dict
    test_set: str | None
    epoch_seconds: list
    examples_per_epoch: int
    train_examples_per_second: float | None
    units: str
    steps_per_execution: int

    def to_json(self):
        """The summary as `history.json`'s bytes."""
        record = dataclasses.asdict(self)
        record["config"] = self.config.to_dict()
        return json.dumps(record, indent=2).encode()

    @classmethod
    def from_json(cls, text, origin="history.json"):
        """Reads a summary that `to_json` wrote.

        Args:
            text: the JSON text.
            origin: where it came from, for error messages.

        Raises:
            ValueError: the text is not a summary this keras-vae wrote.
        """
        try:
            record = json.loads(text)
            if not isinstance(record, dict):
                raise TypeError(f"expected a JSON object, found a {type(record).__name__}")
            names = {field.name for field in dataclasses.fields(cls)}
            missing = sorted(names - set(record))
            if missing:
                raise KeyError(", ".join(missing))
            record = {name: record[name] for name in names}
            record["config"] = RunConfig.from_dict(record["config"], origin=origin)
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
            raise ValueError(
                f"{origin} is not a training summary this keras-vae can read "
                f"({type(error).__name__}: {error})."
            ) from None
        return cls(**record)

    def provenance(self):
        """Where the trained model came from: its data, training and test figures.

        Returns:
            A dict with `dataset`, `binarized`, `preset`, `epochs`, `test` (the
            test figures), `test_set`, `test_seed`, `units` and `weights_sha256`.
        """
        return {
            "dataset": self.config.dataset,
            "binarized": self.config.binarize,
            "preset": self.config.preset,
            "epochs": self.config.epochs,
            "test": self.test,
            "test_set": self.test_set,
            "test_seed": self.config.test_seed,
            "units": self.units,
            "weights_sha256": self.weights_sha256,
        }
