import base64

import numpy as np
import pytest

import keras_vae
from keras_vae import architectures
from keras_vae.explorer_data import explorer_data, latent_plane


def test_the_plane_is_the_codes_first_two_principal_directions():
    rng = np.random.default_rng(0)
    # Codes spread mostly along two known orthogonal directions.
    basis, _ = np.linalg.qr(rng.normal(size=(6, 2)))
    codes = rng.normal(size=(500, 2)) * [3.0, 1.5] @ basis.T + 0.05 * rng.normal(size=(500, 6)) + 2
    plane = latent_plane(codes)
    directions = np.array(plane["directions"])
    np.testing.assert_allclose(directions @ directions.T, np.eye(2), atol=1e-5)
    np.testing.assert_allclose(plane["center"], codes.mean(axis=0), atol=1e-5)
    # Each principal direction matches the known one up to sign, and the scales are the
    # codes' spread along them, from numpy's covariance eigendecomposition.
    values, vectors = np.linalg.eigh(np.cov(codes.T, bias=True))
    for k, index in enumerate((-1, -2)):
        assert abs(directions[k] @ vectors[:, index]) == pytest.approx(1, abs=1e-4)
        assert plane["scales"][k] == pytest.approx(np.sqrt(values[index]), rel=1e-4)


def test_a_two_dimensional_model_explores_its_own_latent_plane():
    codes = np.random.default_rng(1).normal(size=(50, 2))
    plane = latent_plane(codes)
    assert plane["center"] == [0.0, 0.0] and plane["directions"] == [[1.0, 0.0], [0.0, 1.0]]
    assert latent_plane(codes[:, :1]) is None


def test_shipped_images_are_8_bit_and_their_codes_are_the_encoders():
    vae = keras_vae.VAE(
        architectures.mlp_encoder((6, 6, 1), 3, hidden_units=(8,)),
        architectures.mlp_decoder((6, 6, 1), 3, hidden_units=(8,)),
    )
    images = np.random.default_rng(2).random((5, 6, 6, 1)).astype("float32")
    data = explorer_data(vae, images, labels=[0, 1, 0, 1, 1], class_names=["a", "b"])
    pixels = np.frombuffer(base64.b64decode(data["pixels"]), "uint8").reshape(images.shape)
    np.testing.assert_array_equal(pixels, np.round(images * 255))
    mean, _ = vae.encode(pixels / 255)
    np.testing.assert_allclose(data["codes"], mean, atol=1e-6)
    assert (data["count"], data["labels"], data["class_names"]) == (5, [0, 1, 0, 1, 1], ["a", "b"])
    with pytest.raises(ValueError, match="one label per image"):
        explorer_data(vae, images, labels=[0])
    with pytest.raises(ValueError, match=r"explorer images of shape \(n, 6, 6, 1\)"):
        explorer_data(vae, images[..., 0])
