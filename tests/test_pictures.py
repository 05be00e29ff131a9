import numpy as np
import pytest
from PIL import Image

from keras_vae.pictures import image_grid, latent_manifold, write_gif


def test_image_grid_places_each_image():
    images = np.stack([np.full((3, 2, 1), value) for value in (0.0, 0.5, 1.0)])
    grid = image_grid(images, columns=2, padding=1)
    assert grid.shape == (2 * 4 + 1, 2 * 3 + 1, 1)
    assert np.all(grid[1:4, 1:3] == 0) and np.all(grid[1:4, 4:6] == 128)
    assert np.all(grid[5:8, 1:3] == 255)


def test_gif_plays_each_panel_there_and_back(tmp_path):
    steps = np.linspace(0, 1, 5)[:, None, None, None] * np.ones((5, 4, 4, 1))
    write_gif(tmp_path / "a.gif", {"VAE": steps, "AE": 1 - steps}, scale=2, padding=2)
    gif = Image.open(tmp_path / "a.gif")
    assert gif.n_frames == 8  # 0..4 then 3..1
    gif.seek(4)
    frame = np.asarray(gif.convert("L"))
    top = 14 + 2
    assert frame[top, 2] == 255 and frame[top, 2 + 8 + 2] == 0  # last step: VAE white, AE black


def test_manifold_needs_two_latent_dimensions(small_trained_vae):
    vae, _ = small_trained_vae
    with pytest.raises(ValueError, match="2 latent dimensions. Received: 3"):
        latent_manifold(vae)


def test_manifold_grid_follows_prior_quantiles():
    class Latents:
        latent_dim = 2

        def decode(self, z):
            return z.reshape(-1, 2, 1, 1)

    z = latent_manifold(Latents(), points=3).reshape(3, 3, 2)
    q = 1.6448536  # the 95% quantile of N(0, 1)
    np.testing.assert_allclose(z[0, :, 0], [-q, 0, q], atol=1e-5)  # z[0] grows to the right
    np.testing.assert_allclose(z[:, 0, 1], [q, 0, -q], atol=1e-5)  # z[1] grows upwards
