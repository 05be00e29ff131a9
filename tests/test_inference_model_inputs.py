"""The one description of a model's inputs: asked of the models, read back from bundles."""

import numpy as np
import pytest

import keras_vae
from keras_vae_inference import ExportedVAE
from keras_vae_inference.model_inputs import ModelInputs


def test_a_description_reads_back_from_its_manifest_entry():
    for inputs in (ModelInputs((28, 28, 1), 32), ModelInputs((64, 64, 3), 8, 10)):
        manifest = {"model": {**inputs.manifest_entry(), "likelihood": "bernoulli"}}
        assert ModelInputs.from_manifest(manifest) == inputs
    assert ModelInputs((28, 28, 1), 32).manifest_entry() == {
        "latent_dim": 32, "image_shape": [28, 28, 1]
    }  # fmt: skip


def test_labels_go_round_every_class_and_fill_a_row_per_class():
    plain, conditional = ModelInputs((8, 8, 1), 2), ModelInputs((8, 8, 1), 2, 3)
    assert not plain.conditional and plain.label_shape is None
    assert plain.cycled_labels(5) is None and plain.class_rows(4) is None
    assert conditional.conditional and conditional.label_shape == (3,)
    np.testing.assert_array_equal(conditional.cycled_labels(5), [0, 1, 2, 0, 1])
    np.testing.assert_array_equal(conditional.class_rows(2), [0, 0, 1, 1, 2, 2])


def test_a_callers_arrays_are_checked_against_the_description():
    plain, conditional = ModelInputs((2, 2, 1), 2), ModelInputs((2, 2, 1), 2, 3)
    z = plain.latent_batch([[1, 2], [3, 4]])
    assert z.dtype == np.float32 and z.flags.c_contiguous and z.tolist() == [[1, 2], [3, 4]]
    assert plain.label_rows(None, 2) is None
    # Class indices become the one-hot rows an identity matrix holds; rows pass as they are.
    np.testing.assert_array_equal(conditional.label_rows([2, 0], 2), np.eye(3)[[2, 0]])
    mixed = [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]
    np.testing.assert_array_equal(conditional.label_rows(mixed, 2), np.float32(mixed))
    with pytest.raises(ValueError, match="not conditional: pass no labels"):
        plain.label_rows([0, 1], 2)
    with pytest.raises(ValueError, match="conditional VAE of 3 classes: pass labels=, 2 class"):
        conditional.label_rows(None, 2)
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\)\. Received: .* 0 to 3"):
        conditional.label_rows([0, 3], 2)
    with pytest.raises(ValueError, match=r"one-hot labels of shape \(n, 3\)\. .*shape \(2, 2\)"):
        conditional.label_rows([[1, 0], [0, 1]], 2)
    with pytest.raises(ValueError, match=r"Expected latent vectors of shape \(n, 2\)"):
        plain.latent_batch(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="`z` contains 1 NaN or infinite values"):
        plain.latent_batch([[0.0, np.inf]])
    with pytest.raises(ValueError, match=r"values in \[0, 1\]; received values from 0 to 2"):
        plain.image_batch(np.arange(4.0).reshape(1, 2, 2, 1) * 2 / 3)


@pytest.mark.parametrize(
    "model, words",
    [
        ({}, "does not record the model's latent_dim and image_shape"),
        (
            {"latent_dim": 0, "image_shape": [28, 28, 1]},
            r"records latent_dim 0 and image_shape \(28, 28, 1\), which no model has",
        ),
        (
            {"latent_dim": 2, "image_shape": [28, 28]},
            r"records latent_dim 2 and image_shape \(28, 28\), which no model has",
        ),
        (
            {"latent_dim": 2, "image_shape": [8, 8, 1], "num_classes": "ten"},
            "records num_classes 'ten', which no model has",
        ),
    ],
)
def test_a_manifest_that_describes_no_model_is_named(model, words):
    with pytest.raises(ValueError, match=f"The manifest of bundles/x {words}"):
        ModelInputs.from_manifest({"model": model}, "bundles/x")


def test_every_model_class_describes_its_inputs():
    vae = keras_vae.VAE.from_preset("mlp_28", load_weights=False)
    assert vae.model_inputs == ModelInputs((28, 28, 1), 32)
    cvae = keras_vae.ConditionalVAE.from_preset("mlp_28", num_classes=4)
    assert cvae.model_inputs == ModelInputs((28, 28, 1), 32, 4)
    hvae = keras_vae.HierarchicalVAE.from_preset("hvae_gated_28", load_weights=False)
    assert hvae.model_inputs == ModelInputs((28, 28, 1), 40, top_latent_dim=40)
    autoencoder = keras_vae.Autoencoder.from_preset("keras_io_mnist")
    assert autoencoder.model_inputs == ModelInputs((28, 28, 1), 2)


def test_a_bundle_describes_the_inputs_of_the_model_it_was_exported_from(
    small_trained_vae, exported_bundle
):
    vae, _ = small_trained_vae
    directory, _ = exported_bundle
    assert ExportedVAE(directory).model_inputs == vae.model_inputs == ModelInputs((12, 12, 1), 3)


@pytest.mark.exports
def test_a_conditional_bundle_describes_its_labels(conditional_bundle):
    directory, manifest = conditional_bundle
    inputs = ExportedVAE(directory).model_inputs
    assert inputs == ModelInputs((12, 12, 1), 2, 3)
    assert manifest["decoder"]["inputs"][1]["shape"] == ["batch", *inputs.label_shape]
