import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from keras_vae_inference import ExportedVAE, bundle

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "node"


@pytest.fixture(scope="module")
def node():
    executable = shutil.which("node")
    if executable is None or not (EXAMPLE / "node_modules" / "onnxruntime-node").is_dir():
        pytest.fail("Node.js or the example's npm packages are missing: run `make test`.")
    return executable


def decoded_by_node(node, directory, source, picture, *options):
    """The images decode.mjs writes with --values, for a latents file or `--prior N`."""
    values = picture.with_suffix(".json")
    result = subprocess.run(
        [node, "decode.mjs", str(directory), *source, str(picture), "--values", str(values),
         *options],
        cwd=EXAMPLE, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    decoded = json.loads(values.read_text())
    return np.array(decoded["data"], np.float32).reshape(decoded["shape"]), result.stdout


def latents_file(folder, z):
    path = folder / "latents.json"
    path.write_text(json.dumps(np.asarray(z).tolist()))
    return [str(path)]


def test_node_decoder_agrees_with_python_onnxruntime(node, exported_bundle, tmp_path):
    directory, _ = exported_bundle
    z = np.random.default_rng(3).standard_normal((10, 3)).astype("float32")
    picture = tmp_path / "grid.png"
    node_images, _ = decoded_by_node(node, directory, latents_file(tmp_path, z), picture)
    python_images = ExportedVAE(directory).decode(z)
    assert node_images.shape == python_images.shape == (10, 12, 12, 1)
    np.testing.assert_allclose(node_images, python_images, atol=1e-6)

    grid = tf.io.decode_png(picture.read_bytes()).numpy()
    assert grid.shape == (2 * 14 + 2, 8 * 14 + 2, 4)  # 10 images, 8 per row, RGBA
    assert np.all(grid[..., 3] == 255)
    np.testing.assert_array_equal(grid[2:14, 2:14, 0], np.round(python_images[0, ..., 0] * 255))


def decode_with_node(node, directory, tmp_path, *options):
    latents = tmp_path / "latents.json"
    latents.write_text("[[0, 0, 0]]")
    return subprocess.run(
        [node, "decode.mjs", str(directory), str(latents), str(tmp_path / "x.png"), *options],
        cwd=EXAMPLE, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_node_refuses_a_tampered_model(node, exported_bundle, tmp_path):
    directory = shutil.copytree(exported_bundle[0], tmp_path / "bundle")
    data = bytearray((directory / "decoder" / "1" / "model.onnx").read_bytes())
    data[-50] ^= 0x01
    (directory / "decoder" / "1" / "model.onnx").write_bytes(bytes(data))
    result = decode_with_node(node, directory, tmp_path)
    assert result.returncode == 1
    assert "does not match the sha256" in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_node_refuses_a_bundle_format_it_does_not_know(node, exported_bundle, tmp_path):
    directory = shutil.copytree(exported_bundle[0], tmp_path / "bundle")
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["format_version"] == bundle.FORMAT_VERSION
    manifest["format_version"] = bundle.FORMAT_VERSION + 1
    (directory / "manifest.json").write_text(json.dumps(manifest))
    result = decode_with_node(node, directory, tmp_path)
    assert result.returncode == 1
    assert f"format version {bundle.FORMAT_VERSION + 1}; this reader knows" in result.stderr
    assert not (tmp_path / "x.png").exists()


def mulberry32_normals(count, dimensions, seed=0):
    """The example's seeded N(0, I) draws, written again in Python."""
    state, values = seed, []

    def uniform():
        nonlocal state
        state = (state + 0x6D2B79F5) & 0xFFFFFFFF
        t = state
        t = ((t ^ (t >> 15)) * (t | 1)) & 0xFFFFFFFF
        t ^= (t + (((t ^ (t >> 7)) * (t | 61)) & 0xFFFFFFFF)) & 0xFFFFFFFF
        return (((t ^ (t >> 14)) & 0xFFFFFFFF) + 0.5) / 4294967296

    for _ in range(count * dimensions):
        radius = np.sqrt(-2 * np.log(uniform()))
        values.append(radius * np.cos(2 * np.pi * uniform()))
    return np.array(values, np.float32).reshape(count, dimensions)


def test_node_decodes_prior_samples_without_a_latents_file(node, exported_bundle, tmp_path):
    directory, _ = exported_bundle
    picture = tmp_path / "grid.png"
    for options, seed in (([], 0), (["--seed", "5"], 5)):
        node_images, _ = decoded_by_node(node, directory, ["--prior", "64"], picture, *options)
        z = mulberry32_normals(64, 3, seed)
        assert abs(z.mean()) < 0.2 and abs(z.std() - 1) < 0.15  # standard normal draws
        np.testing.assert_allclose(node_images, ExportedVAE(directory).decode(z), atol=1e-5)
    assert picture.is_file()


def test_node_times_its_decoder_and_checks_its_options(node, exported_bundle, tmp_path):
    directory, _ = exported_bundle
    latents = tmp_path / "latents.json"
    latents.write_text(json.dumps([[0.5, -1.0, 0.0]] * 4))
    base = [node, "decode.mjs", str(directory), str(latents), str(tmp_path / "x.png")]

    def run(*options):
        return subprocess.run([*base, *options], cwd=EXAMPLE, capture_output=True, text=True,
                              timeout=120)  # fmt: skip

    timed = run("--timings", str(tmp_path / "t.json"), "--threads", "1")
    assert timed.returncode == 0, timed.stderr
    times = json.loads((tmp_path / "t.json").read_text())["times"]
    assert len(times) >= 5 and all(t > 0 for t in times)
    for options, message in ((["--threads", "0"], "--threads expects a positive integer"),
                             (["--speed", "1"], "unknown option"),
                             (["--values"], "missing value")):  # fmt: skip
        result = run(*options)
        assert result.returncode == 1 and message in result.stderr, result.stderr


def test_node_samples_a_two_level_bundle_with_its_sampler_as_keras(
    node, two_level_bundle, tmp_path
):
    directory, _, hvae, _ = two_level_bundle
    picture, seed = tmp_path / "grid.png", 2**40 + 9
    node_images, printed = decoded_by_node(
        node, directory, ["--prior", "5"], picture, "--seed", str(seed)
    )
    assert "Decoded 5 draws of the sampler" in printed
    keras_images = np.asarray(hvae.sample_from_seeds(seed + np.arange(5))[0])
    np.testing.assert_allclose(node_images, keras_images, atol=1e-5)
    np.testing.assert_allclose(node_images, ExportedVAE(directory).sample(5, seed), atol=1e-6)
    # z1 from a file goes through the decoder, p(x|z1).
    z1 = np.asarray(hvae.sample_from_seeds(np.arange(3))[1])
    node_images, _ = decoded_by_node(node, directory, latents_file(tmp_path, z1), picture)
    np.testing.assert_allclose(node_images, hvae.decode(z1), atol=1e-5)
    for seed_text in ("-1", "2**3", str(2**63)):
        result = decode_with_node(node, directory, tmp_path, "--seed", seed_text)
        assert result.returncode == 1 and "--seed expects an integer" in result.stderr
