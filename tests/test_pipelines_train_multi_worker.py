"""Two real worker processes on 127.0.0.1 under MultiWorkerMirroredStrategy."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_vae  # noqa: F401  (registers the classes load_model needs)
from tests.support.toy_data import prototype_split, write_idx_dataset

ROOT = Path(__file__).resolve().parent.parent
WORKER = """
import json, sys
from keras_vae.run_config import RunConfig
from pipelines.train import train
summary = train(RunConfig(**json.loads(sys.argv[1])), sys.argv[2], verbose=0)
print("SUMMARY " + summary.to_json().decode().replace("\\n", " "))
"""


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_workers(config, run_dir, tf_configs, timeout=240):
    """Starts one process per TF_CONFIG (none: a single process); returns their summaries."""
    processes = []
    try:
        for tf_config in tf_configs:
            env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
            env.pop("TF_CONFIG", None)
            if tf_config is not None:
                env["TF_CONFIG"] = json.dumps(tf_config)
            command = ["timeout", "-k", "5", str(timeout), sys.executable, "-c", WORKER,
                       json.dumps(config), str(run_dir)]  # fmt: skip
            processes.append(
                subprocess.Popen(
                    command,
                    env=env,
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )  # fmt: skip
            )
        summaries = []
        for process in processes:
            out, err = process.communicate(timeout=timeout + 10)
            assert process.returncode == 0, err[-3000:]
            line = next(line for line in out.splitlines() if line.startswith("SUMMARY "))
            summaries.append(json.loads(line[len("SUMMARY ") :]))
        return summaries
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.mark.training
@pytest.mark.parametrize(
    "model, preset", [("vae", "keras_io_mnist"), ("hvae", "hvae_gated_28")], ids=["vae", "hvae"]
)
def test_two_workers_agree_with_each_other_and_with_one_process(model, preset, tmp_path):
    source = write_idx_dataset(tmp_path / "idx", prototype_split(512, 0), prototype_split(64, 1))
    data_dir = tmp_path / "tfds"
    from keras_vae.data import dataset_builder

    dataset_builder("mnist", data_dir=str(data_dir), idx_dir=str(source))
    # SGD, so that the comparison with one process is strict: Adam's normalised
    # steps would magnify the last-bit differences of kernels run at another
    # per-process batch size.
    config = {
        "model": model, "preset": preset, "dataset": "mnist", "idx_dir": str(source),
        "data_dir": str(data_dir), "epochs": 3, "batch_size": 32, "optimizer": "sgd",
        "learning_rate": 0.003, "max_train_examples": 512, "max_test_examples": 64,
    }  # fmt: skip
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    tf_configs = [{"cluster": cluster, "task": {"type": "worker", "index": i}} for i in range(2)]

    chief, worker = run_workers(config, tmp_path / "multi", tf_configs)
    (single,) = run_workers(config, tmp_path / "single", [None])

    assert chief["strategy"] == worker["strategy"] == "CollectiveAllReduceStrategy"
    assert chief["replicas"] == worker["replicas"] == 2 and single["replicas"] == 1
    # Both workers applied the same all-reduced updates: bit-identical weights.
    assert chief["weights_sha256"] == worker["weights_sha256"]
    # Only the chief wrote a run folder; the worker's scratch folder is gone.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx", "multi", "single", "tfds"]
    # The same global batch on one process: the same training.
    for name in ("loss", "reconstruction_loss", "val_loss"):
        np.testing.assert_allclose(chief["history"][name], single["history"][name], rtol=1e-5)
    assert chief["history"]["loss"][-1] < chief["history"]["loss"][0] - 1  # it learned
    multi_model = keras.models.load_model(tmp_path / "multi" / "model.keras")
    single_model = keras.models.load_model(tmp_path / "single" / "model.keras")
    latent_dim = single_model.latent_dim
    z = np.random.default_rng(0).standard_normal((16, latent_dim)).astype("float32")
    # Kernels run at another per-process batch size round differently in the
    # last bits, and 48 steps carry that into the weights: decoded pixels agree
    # to ~1e-4 (a wrongly scaled step would move them by far more).
    np.testing.assert_allclose(multi_model.decode(z), single_model.decode(z), atol=1e-3)
