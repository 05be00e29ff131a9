"""The TF-free distribution keras-vae-inference: built, installed alone, run on a real bundle."""

import json
import subprocess
import zipfile

import numpy as np

from keras_vae_inference import ExportedVAE

RUN_BUNDLE = """
import json, sys
import numpy as np
from keras_vae_inference import ExportedVAE, verify_bundle

bundle, latents, out = sys.argv[1:]
verify_bundle(bundle)
vae = ExportedVAE(bundle)
z = np.load(latents)
images = vae.decode(z)
mean, log_var = vae.encode(images)
np.savez(out, images=images, mean=mean, log_var=log_var, sampled=vae.sample(4, seed=7))
"""


def requirements(wheel):
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        text = archive.read(metadata).decode()
        packages = {n.split("/")[0] for n in archive.namelist() if "/" in n}
    required = [line.split(":", 1)[1].strip() for line in text.splitlines()
                if line.startswith("Requires-Dist:")]  # fmt: skip
    return required, packages


def test_the_wheel_needs_only_numpy_and_onnxruntime(inference_wheel):
    required, packages = requirements(inference_wheel)
    plain = sorted(
        r.split(">")[0].split("<")[0].split("=")[0] for r in required if "extra" not in r
    )
    assert plain == ["numpy", "onnxruntime"]
    served = sorted(r.split(">")[0].split("<")[0] for r in required if 'extra == "serve"' in r)
    assert served == ["httptools", "orjson", "uvicorn", "uvloop"]
    assert {p for p in packages if not p.endswith(".dist-info")} == {"keras_vae_inference"}


def test_the_installed_wheel_runs_a_real_bundle_without_tensorflow(
    inference_venv, real_bundle, tmp_path
):
    python = inference_venv
    directory, _ = real_bundle
    installed = subprocess.run(
        [python, "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    names = {package["name"].lower() for package in json.loads(installed.stdout)}
    assert "keras-vae-inference" in names
    assert not names & {"tensorflow", "keras", "tf2onnx", "tensorflow-cpu", "jax", "torch"}
    check = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    vae = ExportedVAE(directory)
    z = np.random.default_rng(5).standard_normal((8, vae.latent_dim)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    result = subprocess.run(
        [python, "-c", RUN_BUNDLE, directory, tmp_path / "z.npy", tmp_path / "out.npz"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    received = np.load(tmp_path / "out.npz")
    # The same computation in this (TensorFlow) environment's onnxruntime.
    images = vae.decode(z)
    mean, log_var = vae.encode(images)
    np.testing.assert_allclose(received["images"], images, atol=1e-6)
    np.testing.assert_allclose(received["mean"], mean, atol=1e-6)
    np.testing.assert_allclose(received["log_var"], log_var, atol=1e-6)
    np.testing.assert_allclose(received["sampled"], vae.sample(4, seed=7), atol=1e-6)
    # Nothing of the repository leaked in: the package came from the wheel.
    where = subprocess.run(
        [python, "-c", "import keras_vae_inference; print(keras_vae_inference.__file__)"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    assert "site-packages" in where.stdout
