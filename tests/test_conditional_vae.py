"""The conditional VAE: labels steer samples; fit, evaluate, save, distribute and export."""

import json
import shutil
import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae
from keras_vae import ConditionalVAE, architectures
from tests.support.replicas import assert_one_step_on_two_replicas_equals_one, two_replicas

SHAPE = (12, 12, 1)


def labelled_prototypes(n, seed=0, flip_probability=0.03):
    """Noisy copies of two binary prototypes; the label says which one."""
    prototypes = np.random.default_rng(0).random((2, *SHAPE)) > 0.5
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    noise = rng.random((n, *SHAPE)) < flip_probability
    return (prototypes[labels] ^ noise).astype("float32"), labels, prototypes


def build(seed=0, batch_norm=False):
    keras.utils.set_random_seed(seed)
    encoder, decoder = architectures.conditional_networks(
        "conv", SHAPE, 2, 2,
        encoder={"filters": (4, 8), "hidden_units": (16,), "batch_norm": batch_norm},
        decoder={"filters": (8, 4), "start_channels": 8, "batch_norm": batch_norm},
    )  # fmt: skip
    return ConditionalVAE(encoder, decoder, num_classes=2, seed=seed)


@pytest.fixture(scope="module")
def trained():
    images, labels, prototypes = labelled_prototypes(512)
    cvae = build()
    cvae.compile(optimizer=keras.optimizers.Adam(3e-3))
    cvae.fit(images, labels, epochs=20, batch_size=32, verbose=0)
    return cvae, images, labels, prototypes


def test_the_label_decides_what_is_sampled(trained):
    cvae, _, _, prototypes = trained
    for label in (0, 1):
        samples = cvae.sample(32, seed=label, labels=[label] * 32) > 0.5
        distance = [np.mean(samples != prototype, axis=(1, 2, 3)) for prototype in prototypes]
        # Samples of class k are nearer prototype k (a model that ignored the
        # label would give each prototype half the time).
        assert np.mean(distance[label] < distance[1 - label]) >= 0.75


def test_class_indices_and_one_hot_rows_are_the_same_labels(trained):
    cvae, images, labels, _ = trained
    z = np.random.default_rng(0).standard_normal((6, 2)).astype("float32")
    one_hot = np.eye(2, dtype="float32")[labels[:6]]
    np.testing.assert_allclose(cvae.decode(z, labels[:6]), cvae.decode(z, one_hot), atol=1e-7)
    mean, _ = cvae.encode(images[:6], labels[:6])
    dataset = tf.data.Dataset.from_tensor_slices((images[:6], labels[:6])).batch(4)
    np.testing.assert_allclose(cvae.encode(dataset)[0], mean, atol=1e-6)
    np.testing.assert_allclose(cvae.reconstruct(images[:6], labels[:6]),
                               cvae.decode(mean, labels[:6]), atol=1e-6)  # fmt: skip
    # Keras' call takes the pair and, outside training, decodes the posterior mean.
    np.testing.assert_allclose(cvae.predict((images[:6], labels[:6]), verbose=0),
                               cvae.decode(mean, labels[:6]), atol=1e-6)  # fmt: skip


def test_the_loss_is_the_negative_elbo_of_the_labelled_pairs(trained):
    cvae, images, labels, _ = trained
    figures = cvae.evaluate(images[:64], labels[:64], verbose=0, return_dict=True)
    np.testing.assert_allclose(
        figures["loss"], figures["reconstruction_loss"] + figures["kl_loss"], rtol=1e-5
    )
    # The KL of q(z|x, y) against N(0, I), computed here from the encoder's outputs.
    mean, log_var = cvae.encode(images[:64], labels[:64])
    kl = 0.5 * np.sum(np.exp(log_var) + mean**2 - 1 - log_var, axis=1)
    np.testing.assert_allclose(figures["kl_loss"], kl.mean(), rtol=1e-4)


def test_missing_or_bad_labels_are_refused_before_any_update(trained):
    cvae, images, labels, _ = trained
    with pytest.raises(ValueError, match="needs the labels"):
        cvae.sample(2)
    with pytest.raises(ValueError, match=r"class indices in \[0, 2\)"):
        cvae.decode(np.zeros((2, 2)), [0, 2])
    with pytest.raises(ValueError, match=r"2 class indices .* \(2, 2\)"):
        cvae.decode(np.zeros((2, 2)), [0.5, 0.5])
    with pytest.raises(ValueError, match=r"\(images, labels\) pairs"):
        cvae.fit(images, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="not conditioned"):
        keras_vae.VAE.from_preset("mlp_28").sample(2, labels=[0, 1])
    before = [w.copy() for w in cvae.get_weights()]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"labels in \[0, 2\)"):
        cvae.fit(images[:32], labels[:32] + 2, epochs=1, batch_size=32, verbose=0)
    for kept, weight in zip(before, cvae.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, weight)
    with pytest.raises(ValueError, match="two inputs"):
        ConditionalVAE(*architectures.conditional_networks("conv", SHAPE, 2, 3), num_classes=2)
    with pytest.raises(ValueError, match="num_classes=..."):
        ConditionalVAE.from_preset("fashion_mnist_conv")


def test_a_saved_model_and_a_preset_folder_decode_the_same(trained, tmp_path):
    cvae, images, labels, _ = trained
    z = np.random.default_rng(1).standard_normal((5, 2)).astype("float32")
    expected = cvae.decode(z, labels[:5])
    cvae.save(tmp_path / "cvae.keras")
    reloaded = keras.models.load_model(tmp_path / "cvae.keras")
    assert isinstance(reloaded, ConditionalVAE) and reloaded.num_classes == 2
    np.testing.assert_allclose(reloaded.decode(z, labels[:5]), expected, atol=1e-6)
    cvae.save_to_preset(tmp_path / "preset")
    from_preset = ConditionalVAE.from_preset(tmp_path / "preset")
    np.testing.assert_allclose(from_preset.decode(z, labels[:5]), expected, atol=1e-6)
    with pytest.raises(ValueError, match="ConditionalVAE"):
        keras_vae.Autoencoder.from_preset(tmp_path / "preset")


@pytest.mark.training
@pytest.mark.parametrize("batch_norm", [False, True])
def test_one_step_on_two_replicas_equals_one_step_on_one(batch_norm):
    images, labels, _ = labelled_prototypes(16, seed=3)
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)
    one = build(seed=1, batch_norm=batch_norm)
    one.compile(optimizer=keras.optimizers.SGD(1e-3))
    with two_replicas().scope():
        two = build(seed=1, batch_norm=batch_norm)
        two.compile(optimizer=keras.optimizers.SGD(1e-3))
    assert_one_step_on_two_replicas_equals_one(one, two, data, batch_norm)


def test_the_export_takes_z_and_labels_in_every_runtime(trained, tmp_path):
    cvae, images, labels, _ = trained
    manifest = cvae.export(tmp_path / "cvae", test_images=images[:16], test_labels=labels[:16],
                           variants=["float16"])  # fmt: skip
    assert manifest["model"]["num_classes"] == 2
    assert [spec["name"] for spec in manifest["decoder"]["inputs"]] == ["z", "labels"]
    assert [spec["name"] for spec in manifest["encoder"]["inputs"]] == ["images", "labels"]
    z = np.random.default_rng(2).standard_normal((7, 2)).astype("float32")
    chosen = labels[:7]
    expected = cvae.decode(z, chosen)
    # onnxruntime, through the TF-free package.
    from keras_vae_inference import ExportedVAE

    exported = ExportedVAE(tmp_path / "cvae")
    np.testing.assert_allclose(exported.decode(z, chosen), expected, atol=1e-5)
    mean, _ = exported.encode(images[:7], chosen)
    np.testing.assert_allclose(mean, cvae.encode(images[:7], chosen)[0], atol=1e-5)
    with pytest.raises(ValueError, match="conditional VAE of 2 classes"):
        exported.decode(z)
    # TensorFlow's object loader, on the SavedModel's serving signature.
    entry = manifest["versions"]["1"]
    signature = tf.saved_model.load(str(tmp_path / "cvae" / entry["savedmodel"]["decoder"]))
    served = signature.signatures["serving_default"](
        z=tf.constant(z), labels=tf.constant(np.eye(2, dtype="float32")[chosen])
    )
    np.testing.assert_allclose(served["image"].numpy(), expected, atol=1e-5)
    # A mix of classes is a valid input too.
    half = np.full((7, 2), 0.5, "float32")
    np.testing.assert_allclose(exported.decode(z, half), cvae.decode(z, half), atol=1e-5)


@pytest.mark.node
def test_node_decodes_a_conditional_bundle_with_labels(trained, tmp_path):
    node = shutil.which("node")
    example = Path(__file__).resolve().parent.parent / "examples" / "node"
    if node is None or not (example / "node_modules" / "onnxruntime-node").is_dir():
        pytest.fail("Node.js or the example's npm packages are missing: run `make test`.")
    cvae, images, labels, _ = trained
    cvae.export(tmp_path / "cvae", test_images=images[:16], test_labels=labels[:16])
    z = np.random.default_rng(4).standard_normal((6, 2)).astype("float32")
    chosen = np.array([0, 1, 1, 0, 1, 0])
    (tmp_path / "z.json").write_text(json.dumps(z.tolist()))
    command = [node, "decode.mjs", str(tmp_path / "cvae"), str(tmp_path / "z.json"),
               str(tmp_path / "grid.png")]  # fmt: skip

    def decode(*options):
        return subprocess.run([*command, *options], cwd=example, capture_output=True,
                              text=True, timeout=120)  # fmt: skip

    done = decode("--labels", ",".join(map(str, chosen)), "--values", str(tmp_path / "v.json"))
    assert done.returncode == 0, done.stderr
    values = json.loads((tmp_path / "v.json").read_text())
    decoded = np.array(values["data"], "float32").reshape(values["shape"])
    np.testing.assert_allclose(decoded, cvae.decode(z, chosen), atol=1e-5)
    assert "pass --labels" in decode().stderr
    assert "integers in [0, 2)" in decode("--labels", "2").stderr
