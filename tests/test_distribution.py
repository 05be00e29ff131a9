"""The keras-vae wheel: its files, and installed into a fresh environment, run from elsewhere."""

import json
import subprocess
import zipfile


def test_the_wheel_installs_no_generic_top_level_name(keras_vae_wheel):
    with zipfile.ZipFile(keras_vae_wheel) as archive:
        names = archive.namelist()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith("-info")}
    assert top_level == {"keras_vae", "keras_vae_inference", "keras_vae_pipelines"}
    assert "keras-vae = keras_vae_pipelines.cli:main" in scripts
    # The benchmarks and the tests' helpers stay in the checkout.
    assert not [name for name in names if "benchmark" in name or "support" in name]
    for name in ("keras_vae/py.typed", "keras_vae/pretrained/fashion_mnist_conv/model.weights.h5"):
        assert name in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)


def test_keras_vae_runs_from_an_unrelated_folder_after_pip_install(
    keras_vae_venv, toy_idx_data, tmp_path
):
    bin_folder = keras_vae_venv
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def keras_vae(*arguments):
        return subprocess.run([bin_folder / "keras-vae", *arguments], cwd=elsewhere,
                              capture_output=True, text=True, timeout=600)  # fmt: skip

    help_text = keras_vae("--help")
    assert help_text.returncode == 0 and "train" in help_text.stdout
    data = [f"--{key.replace('_', '-')}={value}" for key, value in toy_idx_data.items()]
    trained = keras_vae("train", "--run-dir", "run", "--preset", "keras_io_mnist", "--epochs",
                        "1", "--batch-size", "32", "--max-train-examples", "128",
                        "--max-test-examples", "32", *data)  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    summary = json.loads((elsewhere / "run" / "history.json").read_text())
    assert summary["config"]["epochs"] == 1 and "loss" in summary["test"]
    # The shipped preset loads from the installed package, not from this checkout.
    loaded = subprocess.run(
        [bin_folder / "python", "-c",
         "import keras_vae; vae = keras_vae.VAE.from_preset('fashion_mnist_conv'); "
         "print(keras_vae.__file__, vae.sample(2, seed=0).shape)"],
        cwd=elsewhere, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert str(bin_folder.parent) in loaded.stdout and "(2, 28, 28, 1)" in loaded.stdout
