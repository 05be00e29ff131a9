import ast
import inspect
import json
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_vae
from keras_vae import presets


def test_keras_io_preset_has_the_example_architecture():
    vae = keras_vae.VAE.from_preset("keras_io_mnist")
    # The keras.io example's encoder has 69,076 weights and its decoder 65,089.
    assert vae.encoder.count_params() == 69_076
    assert vae.decoder.count_params() == 65_089
    assert vae.latent_dim == 2


def test_vanilla_vae_preset_has_the_reference_blocks():
    vae = keras_vae.VAE.from_preset("vanilla_vae_64")
    convs = [layer for layer in vae.encoder.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [layer.filters for layer in convs] == [32, 64, 128, 256, 512]
    assert all(layer.strides == (2, 2) for layer in convs)
    assert vae.encoder.get_layer("mean").input.shape == (None, 2 * 2 * 512)
    transposed = [
        layer for layer in vae.decoder.layers if isinstance(layer, keras.layers.Conv2DTranspose)
    ]
    assert [layer.filters for layer in transposed] == [256, 128, 64, 32, 32, 3]
    assert [layer.strides for layer in transposed] == [(2, 2)] * 5 + [(1, 1)]
    assert vae.latent_dim == 128 and vae.image_shape == (64, 64, 3)
    images = vae.predict(np.random.default_rng(0).random((2, 64, 64, 3)), verbose=0)
    assert images.shape == (2, 64, 64, 3)
    assert images.min() >= 0.0 and images.max() <= 1.0


@pytest.mark.parametrize("name", sorted(presets.PRESETS))
def test_every_preset_builds_and_decodes_to_its_image_shape(name):
    model_class = keras_vae.HierarchicalVAE if presets.is_two_level(name) else keras_vae.VAE
    vae = model_class.from_preset(name, seed=0)
    assert vae.sample(2, seed=0).shape == (2,) + presets.PRESETS[name]["input_shape"]


def test_ungated_preset_is_the_gated_one_without_its_gates():
    gated = keras_vae.VAE.from_preset("mlp_gated_28")
    ungated = keras_vae.VAE.from_preset("mlp_relu_28")
    # Each gated layer adds a sigmoid Dense layer of its own: 784 -> 300 and 300 -> 300
    # in the encoder, 40 -> 300 and 300 -> 300 in the decoder.
    assert gated.encoder.count_params() - ungated.encoder.count_params() == (
        (784 + 1) * 300 + (300 + 1) * 300
    )
    assert gated.decoder.count_params() - ungated.decoder.count_params() == (
        (40 + 1) * 300 + (300 + 1) * 300
    )
    assert ungated.latent_dim == gated.latent_dim == 40


def test_the_conv_two_level_preset_changes_only_the_networks_of_x():
    mlp = keras_vae.HierarchicalVAE.from_preset("hvae_gated_28")
    conv = keras_vae.HierarchicalVAE.from_preset("hvae_gated_conv_28")
    for network in ("top_encoder", "top_decoder"):
        assert getattr(conv, network).count_params() == getattr(mlp, network).count_params()
    assert (conv.latent_dim, conv.top_latent_dim) == (mlp.latent_dim, mlp.top_latent_dim)
    # The encoder's log-variance is clipped to [-6, 2], as the two-level presets' are.
    (clip,) = [layer for layer in conv.encoder.layers if layer.name == "log_var"]
    assert (clip.minimum, clip.maximum) == (-6.0, 2.0)


def test_presets_are_plain_data():
    tree = ast.parse(inspect.getsource(presets))
    assert not [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert all(
        set(preset) - {"top"} == {"description", "architecture", "input_shape", "latent_dim",
                                  "encoder", "decoder", "likelihood"}
        for preset in presets.PRESETS.values()
    )  # fmt: skip


def test_preset_changes_and_unknown_names():
    vae = keras_vae.VAE.from_preset(
        "mlp_28", load_weights=False, input_shape=(8, 6, 3), latent_dim=5, beta=0.5
    )
    assert (vae.image_shape, vae.latent_dim, float(vae.beta.numpy())) == ((8, 6, 3), 5, 0.5)
    assert vae.name == "vae_mlp_28"
    with pytest.raises(ValueError, match="Unknown preset.*'nope'"):
        keras_vae.VAE.from_preset("nope")
    with pytest.raises(ValueError, match="latent_dim.*positive integer.*0"):
        keras_vae.VAE.from_preset("mlp_28", load_weights=False, latent_dim=0)


def small_vae(seed=0):
    keras.utils.set_random_seed(seed)
    return keras_vae.VAE.from_preset(
        "mlp_28", input_shape=(6, 6, 1), latent_dim=3, load_weights=False, seed=seed, beta=0.5
    )


def small_trained_vae(seed=0):
    vae = small_vae(seed)
    vae.compile(optimizer="adam")
    images = (np.random.default_rng(seed).random((64, 6, 6, 1)) > 0.5).astype("float32")
    vae.fit(images, batch_size=16, epochs=1, verbose=0)
    return vae, images


def test_save_to_preset_and_from_preset_round_trip(tmp_path):
    vae, images = small_trained_vae()
    metadata = vae.save_to_preset(
        tmp_path / "tiny", description="A tiny model.", evaluation={"test": {"loss": 12.5}}
    )
    assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == [
        "README.md", "config.json", "metadata.json", "model.weights.h5"
    ]  # fmt: skip
    assert metadata["parameter_count"] == vae.count_params()
    card = (tmp_path / "tiny" / "README.md").read_text()
    assert "A tiny model." in card and "loss 12.50" in card
    loaded = keras_vae.VAE.from_preset(str(tmp_path / "tiny"))
    for ours, theirs in zip(vae.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), vae.predict(images, verbose=0))
    assert float(loaded.beta.numpy()) == 0.5
    changed = keras_vae.VAE.from_preset(tmp_path / "tiny", beta=2.0, seed=3)
    assert (float(changed.beta.numpy()), changed.seed) == (2.0, 3)
    untrained = keras_vae.VAE.from_preset(tmp_path / "tiny", load_weights=False)
    assert untrained.latent_dim == 3
    assert not np.array_equal(untrained.get_weights()[0], vae.get_weights()[0])


def test_preset_folders_are_refused_for_the_wrong_class_or_architecture(tmp_path):
    vae, _ = small_trained_vae()
    vae.save_to_preset(tmp_path / "tiny")
    with pytest.raises(ValueError, match="preset of a Autoencoder.*keras_vae.VAE.from_preset"):
        keras_vae.Autoencoder.from_preset(tmp_path / "tiny")
    with pytest.raises(ValueError, match=r"load_weights=False.*latent_dim=4"):
        keras_vae.VAE.from_preset(tmp_path / "tiny", latent_dim=4)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        vae.save_to_preset(tmp_path / "tiny")
    with pytest.raises(ValueError, match="Unknown preset.*save_to_preset"):
        keras_vae.VAE.from_preset(tmp_path)


def test_saving_a_preset_over_an_old_one_is_atomic(tmp_path, monkeypatch):
    small_vae().save_to_preset(tmp_path / "tiny")
    before = (tmp_path / "tiny" / "model.weights.h5").read_bytes()
    other = small_vae(seed=1)

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(keras_vae.VAE, "save_weights", fail)
    with pytest.raises(OSError, match="disk full"):
        other.save_to_preset(tmp_path / "tiny", overwrite=True)
    assert (tmp_path / "tiny" / "model.weights.h5").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"]


def test_named_presets_load_shipped_weights_only_where_they_fit():
    with pytest.raises(ValueError, match="ships no weights.*load_weights=False"):
        keras_vae.VAE.from_preset("mlp_28", load_weights=True)
    with pytest.raises(ValueError, match="changed architecture.*load_weights=False"):
        keras_vae.VAE.from_preset("fashion_mnist_conv", load_weights=True, latent_dim=2)
    # An architecture change builds untrained networks.
    assert keras_vae.VAE.from_preset("fashion_mnist_conv", latent_dim=2).latent_dim == 2


def test_the_shipped_default_preset_gives_the_readme_test_loss(fashion_mnist_data_dir):
    from keras_vae.evaluation import evaluate_losses
    from keras_vae.preset_folders import METADATA_FILE, pretrained_folder
    from keras_vae.run import EVALUATION_BATCH_SIZE, RunData
    from keras_vae.run_config import RunConfig

    metadata = json.loads((pretrained_folder("fashion_mnist_conv") / METADATA_FILE).read_text())
    evaluation = metadata["evaluation"]
    config = RunConfig(data_dir=fashion_mnist_data_dir, test_seed=evaluation["test_seed"])
    vae = keras_vae.VAE.from_preset("fashion_mnist_conv")
    vae.compile()
    images = RunData(config).test_set.images
    figures = evaluate_losses(vae, images, seed=config.test_seed, batch_size=EVALUATION_BATCH_SIZE)
    for name, value in evaluation["test"].items():
        np.testing.assert_allclose(figures[name], value, rtol=1e-5)
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert f"{figures['loss']:.2f}" in readme


def test_the_two_level_preset_bounds_its_three_gaussians_log_variances():
    hvae = keras_vae.HierarchicalVAE.from_preset("hvae_gated_28", load_weights=False)
    for network in (hvae.encoder, hvae.top_encoder, hvae.top_decoder):
        clip = network.get_layer("log_var")
        assert isinstance(clip, keras_vae.architectures.Clip)
        assert (clip.minimum, clip.maximum) == (-6.0, 2.0)
