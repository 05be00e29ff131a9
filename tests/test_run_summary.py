"""The run summary: written and read through one class, and the provenance it gives."""

import dataclasses
import json

import pytest

from keras_vae.run_config import RunConfig
from keras_vae.run_summary import RunSummary
from tests.support.run_summaries import a_summary


def test_a_summary_reads_back_equal_from_its_json():
    summary = a_summary()
    assert RunSummary.from_json(summary.to_json()) == summary
    record = json.loads(summary.to_json())
    # history.json stays plain JSON, the config as RunConfig writes it.
    assert record["config"] == RunConfig(epochs=3, preset="mlp_28", test_seed=5).to_dict()
    assert record["history"] == {"loss": [3.0, 2.0, 1.5]}


@pytest.mark.parametrize(
    "text, words",
    [
        ("{", "JSONDecodeError"),
        ('{"config": {}}', "KeyError: 'epoch_seconds, examples_per_epoch"),
        ("[1, 2]", "TypeError"),
    ],
)
def test_a_damaged_summary_is_named_with_what_is_wrong(text, words):
    with pytest.raises(ValueError, match=f"runs/x/history.json is not a training summary.*{words}"):
        RunSummary.from_json(text, "runs/x/history.json")


def test_provenance_names_the_data_the_training_and_the_test_figures():
    summary = a_summary()
    assert summary.provenance() == {
        "dataset": "fashion_mnist", "binarized": True, "preset": "mlp_28", "epochs": 3,
        "test": summary.test, "test_set": "10,000 test images", "test_seed": 5,
        "units": "nats per example", "weights_sha256": "ab" * 32,
    }  # fmt: skip
    assert dataclasses.replace(summary, test={"loss": 9.0}).provenance()["test"] == {"loss": 9.0}
