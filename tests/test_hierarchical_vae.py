import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae
from keras_vae import architectures
from keras_vae.evaluation import importance_weighted_log_likelihood
from keras_vae.run import load_run
from keras_vae.run_config import RunConfig
from keras_vae_inference import ExportedVAE, bundle
from pipelines.cli import main
from pipelines.evaluate import evaluate_run
from pipelines.train import train
from tests.support.numpy_seeded_noise import numpy_seeded_normal
from tests.support.replicas import assert_one_step_on_two_replicas_equals_one, two_replicas
from tests.support.toy_data import prototype_images
from tests.support.toy_models import two_level_gaussian_model


def per_example_loss(model, x):
    """The reported loss (reconstruction + KL term) of each example, one draw each."""
    _, _, reconstruction, terms = model._objective(tf.constant(x), None)
    kl, beta = terms["kl_loss"]
    return np.asarray(reconstruction) + float(beta) * np.asarray(kl)


def test_with_the_exact_posteriors_every_importance_weight_is_p_x():
    model, x, truth = two_level_gaussian_model()
    # Each sample's weight is p(x) itself, so any k gives log p(x) exactly.
    for k in (1, 3):
        estimate = importance_weighted_log_likelihood(model, x, k=k, seed=k)
        np.testing.assert_allclose(estimate, truth, atol=2e-4)
    # The training objective on the bound is the same quantity.
    model, x, truth = two_level_gaussian_model(importance_samples=4)
    values, penalty, _, _ = model._objective(tf.constant(x), None)
    np.testing.assert_allclose(np.asarray(values) + float(penalty), -truth, atol=2e-4)


def test_the_elbo_loss_is_minus_log_p_x_in_expectation_and_a_bound_otherwise():
    model, x, truth = two_level_gaussian_model()
    repeated, truths = np.tile(x, (10, 1, 1, 1)), np.tile(truth, 10)
    # The upper layer's KL is in closed form, so one draw's loss is not exact,
    # but its mean over draws is -log p(x).
    losses = per_example_loss(model, repeated)
    error = losses.std() / np.sqrt(len(losses))
    assert abs(losses.mean() + truths.mean()) < 4 * error, (losses.mean(), -truths.mean())

    shifted, x, truth = two_level_gaussian_model(posterior_shift=0.8)
    bounds = {
        k: -importance_weighted_log_likelihood(shifted, repeated, k=k, seed=k).mean()
        for k in (1, 100)
    }
    elbo = per_example_loss(shifted, repeated).mean()
    # A wrong posterior: the ELBO and the k=1 estimate agree, lie above -log p(x), and
    # k=100 closes most of the gap.
    assert abs(elbo - bounds[1]) < 0.05 * (bounds[1] + truths.mean()), (elbo, bounds)
    assert -truths.mean() + 0.01 < bounds[100] < bounds[1] - 0.1, bounds


def small_hvae(seed=0, importance_samples=1):
    keras.utils.set_random_seed(seed)
    return keras_vae.HierarchicalVAE(
        architectures.mlp_encoder((8, 8, 1), 4, hidden_units=(32,)),
        architectures.mlp_decoder((8, 8, 1), 4, hidden_units=(32,)),
        architectures.mlp_gaussian(4, 2, hidden_units=(16,), name="top_encoder"),
        architectures.mlp_gaussian(2, 4, hidden_units=(16,), name="top_decoder"),
        seed=seed,
        importance_samples=importance_samples,
    )


@pytest.mark.parametrize("importance_samples", [1, pytest.param(3, marks=pytest.mark.training)])
def test_fit_learns_reports_the_elbo_and_saves_every_network(importance_samples, tmp_path):
    images = prototype_images(256, (8, 8, 1))
    hvae = small_hvae(importance_samples=importance_samples)
    hvae.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = hvae.fit(images, epochs=4, batch_size=32, verbose=0).history
    assert history["loss"][-1] < history["loss"][0] - 5
    np.testing.assert_allclose(
        history["loss"], np.add(history["reconstruction_loss"], history["kl_loss"]), rtol=1e-5
    )
    hvae.save_to_preset(tmp_path / "preset")
    loaded = keras_vae.HierarchicalVAE.from_preset(tmp_path / "preset")
    assert (loaded.top_latent_dim, loaded.importance_samples) == (2, importance_samples)
    for network in ("encoder", "decoder", "top_encoder", "top_decoder"):
        for saved, kept in zip(getattr(loaded, network).get_weights(),
                               getattr(hvae, network).get_weights(), strict=True):  # fmt: skip
            np.testing.assert_array_equal(saved, kept)
    np.testing.assert_array_equal(loaded.sample(5, seed=3), hvae.sample(5, seed=3))


def test_sampling_goes_through_the_learned_prior_of_z1_and_repeats_with_its_seed():
    hvae = small_hvae()
    images = hvae.sample(6, seed=2)
    np.testing.assert_array_equal(images, hvae.sample(6, seed=2))
    assert not np.array_equal(images, hvae.sample(6, seed=3))
    # A second implementation: z2 ~ N(0, I), z1 = mean + sd * noise of p(z1|z2), decode.
    generator = keras.random.SeedGenerator(2)
    z2 = keras.random.normal((6, 2), seed=generator)
    noise = keras.random.normal((6, 4), seed=generator)
    mean, log_var = (np.asarray(v) for v in hvae.top_decoder(z2))
    expected = hvae.decode(mean + np.exp(0.5 * log_var) * np.asarray(noise))
    np.testing.assert_allclose(images, expected, atol=1e-6)
    assert hvae.sample(0).shape == (0, 8, 8, 1)


def test_sampling_from_seeds_is_the_seeded_noise_through_both_layers():
    hvae = small_hvae()
    seeds = np.array([0, 5, 2**40])
    images, z1, z2 = (np.asarray(v) for v in hvae.sample_from_seeds(seeds))
    noise = numpy_seeded_normal(seeds, 2 + 4)
    np.testing.assert_allclose(z2, noise[:, :2], atol=2e-6)
    mean, log_var = (np.asarray(v) for v in hvae.top_decoder(noise[:, :2].astype("float32")))
    np.testing.assert_allclose(z1, mean + np.exp(0.5 * log_var) * noise[:, 2:], atol=1e-5)
    np.testing.assert_allclose(images, hvae.decode(z1), atol=1e-6)
    # A row is its seed's alone (up to the rounding of a smaller matrix product).
    alone = [np.asarray(v) for v in hvae.sample_from_seeds(seeds[1:2])]
    np.testing.assert_array_equal(alone[2], z2[1:2])
    np.testing.assert_allclose(alone[0], images[1:2], atol=1e-6)


@pytest.mark.training
def test_one_step_on_two_replicas_equals_one_step_on_one():
    data = tf.data.Dataset.from_tensor_slices(prototype_images(16, (8, 8, 1))).batch(16)

    def build(strategy):
        with strategy.scope():
            hvae = small_hvae(seed=1)
            hvae.compile(optimizer=keras.optimizers.SGD(1e-3))
        return hvae

    one, two = build(tf.distribute.get_strategy()), build(two_replicas())
    assert_one_step_on_two_replicas_equals_one(one, two, data, batch_norm=False)


def test_what_a_two_level_model_cannot_take_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"HierarchicalVAE.from_preset\('hvae_gated_28'\)"):
        keras_vae.VAE.from_preset("hvae_gated_28")
    with pytest.raises(ValueError, match="Received: 'mlp_gated_28', which has one"):
        keras_vae.HierarchicalVAE.from_preset("mlp_gated_28")
    with pytest.raises(ValueError, match="Expected free_bits=0"):
        keras_vae.HierarchicalVAE.from_preset("hvae_gated_28", free_bits=0.5)
    with pytest.raises(ValueError, match="the top decoder gives"):
        keras_vae.HierarchicalVAE(
            architectures.mlp_encoder((8, 8, 1), 4),
            architectures.mlp_decoder((8, 8, 1), 4),
            architectures.mlp_gaussian(4, 2, name="top_encoder"),
            architectures.mlp_gaussian(2, 3, name="top_decoder"),
        )
    with pytest.raises(ValueError, match="model='hvae' with preset in"):
        RunConfig.from_dict({"preset": "hvae_gated_28"})
    with pytest.raises(ValueError, match="model='hvae' with preset in"):
        RunConfig.from_dict({"model": "hvae", "preset": "mlp_gated_28"})
    with pytest.raises(ValueError, match="Expected free_bits=0 with model='hvae'"):
        RunConfig.from_dict({"model": "hvae", "preset": "hvae_gated_28", "free_bits": 0.5})


class Interrupted(Exception):
    pass


@pytest.mark.training
def test_a_two_level_run_interrupted_resumes_to_the_same_weights_and_is_evaluated(
    tmp_path, monkeypatch
):
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (48, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "grey.npz", x_train=grey[:40], x_test=grey[40:])
    config = RunConfig.from_dict(
        {"dataset": str(tmp_path / "grey.npz"), "model": "hvae", "preset": "hvae_gated_28",
         "epochs": 3, "batch_size": 8, "validation_examples": 8, "importance_samples": 2}
    )  # fmt: skip
    straight = train(config, tmp_path / "straight", verbose=0)

    logged = keras.callbacks.TensorBoard.on_epoch_end

    def stop_after_the_second_epoch(self, epoch, logs=None):
        logged(self, epoch, logs)
        if epoch == 1:  # after the epoch's checkpoint, which an earlier callback writes
            raise Interrupted

    monkeypatch.setattr(keras.callbacks.TensorBoard, "on_epoch_end", stop_after_the_second_epoch)
    with pytest.raises(Interrupted):
        train(config, tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()
    monkeypatch.undo()
    resumed = train(config, tmp_path / "run", verbose=0)
    assert resumed.resumed_from_epoch == 2 and len(resumed.epoch_seconds) == 1
    assert resumed.weights_sha256 == straight.weights_sha256

    report = evaluate_run(tmp_path / "run", k=3, iwae_examples=8)
    assert report["iwae"]["examples"] == 8
    assert np.isfinite(report["iwae"]["negative_log_likelihood"])

    # `keras-vae export` writes its bundle, which samples as the trained model does.
    main(["export", "--run-dir", str(tmp_path / "run"), "--output-dir", str(tmp_path / "out"),
          "--name", "two_level"])  # fmt: skip
    exported = ExportedVAE(tmp_path / "out" / "two_level")
    assert exported.parts == bundle.ALL_PARTS
    model = load_run(tmp_path / "run").model
    keras_images = np.asarray(model.sample_from_seeds(np.arange(11, 15))[0])
    np.testing.assert_allclose(exported.sample(4, seed=11), keras_images, atol=1e-5)
