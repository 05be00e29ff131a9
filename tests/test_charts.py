import numpy as np
import tensorflow as tf

from keras_vae.charts import plot_latent_space, plot_loss_curves, project_to_2d


def test_projection_keeps_2d_and_finds_the_principal_plane():
    rng = np.random.default_rng(0)
    flat = rng.normal(size=(500, 2)) * [5.0, 2.0]
    points = np.concatenate([flat, 0.01 * rng.normal(size=(500, 3))], axis=1)
    rotation, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    projected, explained = project_to_2d(points @ rotation)
    assert explained > 0.999
    # Distances within the principal plane are preserved by the projection.
    original = np.linalg.norm(flat[:50, None] - flat[None, :50], axis=-1)
    recovered = np.linalg.norm(projected[:50, None] - projected[None, :50], axis=-1)
    np.testing.assert_allclose(recovered, original, atol=0.1)
    same, share = project_to_2d(flat)
    np.testing.assert_array_equal(same, flat)
    assert share == 1.0


def test_plots_are_written_as_png(tmp_path):
    rng = np.random.default_rng(0)
    plot_latent_space(rng.normal(size=(100, 4)), rng.integers(0, 3, 100), ["a", "b", "c"],
                      tmp_path / "latent.png")  # fmt: skip
    plot_loss_curves(
        {"loss": [3.0, 2.0], "val_loss": [3.1, 2.2], "kl_loss": [1.0, 1.1]}, tmp_path / "loss.png"
    )
    for name in ("latent.png", "loss.png"):
        picture = tf.io.decode_png((tmp_path / name).read_bytes()).numpy()
        assert picture.shape[0] > 100 and picture.shape[1] > 100 and picture.std() > 0
