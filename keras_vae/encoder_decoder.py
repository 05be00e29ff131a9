"""What the VAE and the autoencoder share: encoder, latent code, decoder, likelihood."""

import math
import os
import weakref

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_vae import likelihoods, preset_folders
from keras_vae.architectures import ARCHITECTURES
from keras_vae.distribute import global_batch_position
from keras_vae.preset_folders import ARCHITECTURE_ARGUMENTS
from keras_vae.presets import PRESETS, PRETRAINED, is_two_level

# What the user methods take: arrays (or nested lists), or tf.data datasets of them.
ArrayLike = np.ndarray | list
ArrayOrDataset = np.ndarray | list | tf.data.Dataset


class EncoderDecoder(keras.Model):
    """An encoder to q(z|x), a latent code made from it, and a decoder to p(x|z).

    Subclasses define one method, `latent_code`: how the code `z` is made from
    the posterior's mean and log-variance, and what that adds to the loss.
    `VAE` samples `z` and adds the KL; `Autoencoder` takes the mean. The rest is
    here: the training and test steps (exact under `tf.distribute`), the input
    checks, `encode`, `decode`, `sample`, `reconstruct`, `interpolate`, presets
    and saving.

    Losses are in nats per example: `reconstruction_loss` is -log p(x|z) summed
    over pixels, and `loss` adds the code's terms (`CODE_METRICS`, each also
    reported), all averaged over the global batch. Under a `tf.distribute`
    strategy the gradient is scaled for the global batch, so N replicas take
    the same step as one device.

    Args:
        encoder: a `keras.Model` mapping images `(batch, H, W, C)` to
            `[mean, log_var]`, each `(batch, latent_dim)`.
        decoder: a `keras.Model` mapping `(batch, latent_dim)` to decoder
            outputs `(batch, H, W, C)`.
        likelihood: `"bernoulli"`, `"gaussian"` or a `Likelihood` instance.
    """

    # Per-example terms that `latent_code` adds to the reported loss, by metric name.
    CODE_METRICS = ()
    # Classes of the label both networks also take; `None`: not conditional.
    num_classes = None

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        likelihood: str | likelihoods.Likelihood = "bernoulli",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_shape, self.latent_dim = _check_pair(encoder, decoder)
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihoods.get(likelihood)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.code_trackers = [keras.metrics.Mean(name=name) for name in self.CODE_METRICS]
        self.built = True

    @classmethod
    def from_preset(
        cls, preset: str | os.PathLike, load_weights: bool | None = None, **kwargs
    ) -> "EncoderDecoder":
        """Builds a model from a named preset or a preset folder, KerasHub-style.

        Named presets are in `keras_vae.presets.PRESETS`; those listed in
        `keras_vae.presets.PRETRAINED` ship trained weights with the package,
        loaded offline. A folder is one written by `save_to_preset`.

        Args:
            preset: a preset name, or the path of a preset folder.
            load_weights: `None` (the default) loads the preset's weights when
                it has them and its architecture is kept; `True` requires
                them; `False` builds the networks untrained.
            **kwargs: other arguments of the model class. `input_shape`,
                `latent_dim` and `likelihood` change a named preset's
                architecture (then it is untrained); `beta`, `seed`,
                `free_bits`, `importance_samples` and `name` apply to any preset.

        Returns:
            An instance of this class.
        """
        if load_weights not in (None, True, False):
            raise ValueError(
                f"Expected `load_weights` to be None, True or False. Received: {load_weights!r}"
            )
        if isinstance(preset, str) and preset in PRESETS:
            changed = any(kwargs.get(name) is not None for name in ARCHITECTURE_ARGUMENTS)
            folder = preset_folders.pretrained_folder(preset)
            if load_weights is True and (folder is None or changed):
                reason = (
                    "the changed architecture does not fit them"
                    if folder
                    else f"it ships no weights (those that do: {sorted(PRETRAINED)})"
                )
                raise ValueError(
                    f"Preset {preset!r} cannot load weights: {reason}. Pass "
                    "load_weights=False for untrained networks."
                )
            if folder is not None and load_weights is not False and not changed:
                kept = {key: value for key, value in kwargs.items() if value is not None}
                return preset_folders.load_preset(cls, folder, **kept)
            return cls._from_architecture(preset, **kwargs)
        if isinstance(preset, (str, os.PathLike)) and preset_folders.is_preset_folder(preset):
            return preset_folders.load_preset(cls, preset, load_weights, **kwargs)
        raise ValueError(
            f"Unknown preset. Expected one of {sorted(PRESETS)}, or a folder written by "
            f"save_to_preset (holding {preset_folders.CONFIG_FILE}). Received: "
            f"preset={preset!r}"
        )

    @classmethod
    def _from_architecture(cls, name, input_shape=None, latent_dim=None, likelihood=None,
                           **kwargs):  # fmt: skip
        """Builds the untrained networks of the named preset `name`."""
        preset = PRESETS[name]
        input_shape = tuple(preset["input_shape"] if input_shape is None else input_shape)
        latent_dim = preset["latent_dim"] if latent_dim is None else latent_dim
        # Shapes and sizes of the wrong kind are refused by the networks, with their own messages.
        sizes = (*input_shape, latent_dim)
        whole = all(type(size) is int and size > 0 for size in sizes) and len(input_shape) == 3
        if whole and latent_dim > (values := math.prod(input_shape)):
            raise ValueError(
                f"Expected `latent_dim` of at most {values}, the number of values in one "
                f"{'x'.join(map(str, input_shape))} image: a code larger than the image it "
                f"encodes only adds weights. Received: latent_dim={latent_dim}"
            )
        kwargs.setdefault("name", f"{cls.__name__.lower()}_{name}")
        return cls(
            *cls._preset_networks(name, preset, input_shape, latent_dim),
            likelihood=likelihood or preset["likelihood"],
            **kwargs,
        )

    @classmethod
    def _preset_networks(cls, name, preset, input_shape, latent_dim):
        """The untrained networks of the preset `name` (`preset`, its entry), as the
        constructor takes them."""
        if is_two_level(name):
            raise ValueError(
                f"Preset {name!r} has two stochastic layers: build it with "
                f"keras_vae.HierarchicalVAE.from_preset({name!r}). Received: "
                f"{cls.__name__}.from_preset({name!r})."
            )
        return cls._encoder_and_decoder(preset, input_shape, latent_dim)

    @staticmethod
    def _encoder_and_decoder(preset, input_shape, latent_dim):
        """The untrained encoder q(z|x) and decoder p(x|z) of a preset entry."""
        build_encoder, build_decoder = ARCHITECTURES[preset["architecture"]]
        return [
            build_encoder(input_shape, latent_dim, **preset["encoder"]),
            build_decoder(input_shape, latent_dim, **preset["decoder"]),
        ]

    def save_to_preset(
        self,
        preset_dir: str | os.PathLike,
        description: str = "",
        evaluation: dict | None = None,
        overwrite: bool = False,
    ) -> dict:
        """Writes the model as a preset folder: config, weights, metadata and a model card.

        `from_preset(preset_dir)` loads it back. The folder is built beside
        `preset_dir` and renamed into place when complete.

        Args:
            preset_dir: the folder to write.
            description: one paragraph for the model card.
            evaluation: dict of figures for the metadata and the card, e.g.
                `{"test_set": ..., "test": {"loss": ...}, "units": ...}`.
            overwrite: whether to replace an existing folder.

        Returns:
            The metadata written, as a dict.
        """
        return preset_folders.save_preset(self, preset_dir, description, evaluation, overwrite)

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, *self.code_trackers]

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, **kwargs) -> None:
        """Configures the model for training: the loss (the negative ELBO) is built in.

        Args:
            optimizer: as in `keras.Model.compile`.
            loss: must be `None`; the model optimises its own loss.
            metrics: must be `None`; the model reports its loss and its terms.
            **kwargs: the other arguments of `keras.Model.compile`
                (`steps_per_execution`, `jit_compile`, ...).
        """
        given = {
            "loss": loss,
            "metrics": metrics,
            "loss_weights": kwargs.pop("loss_weights", None),
            "weighted_metrics": kwargs.pop("weighted_metrics", None),
        }
        refused = {name: value for name, value in given.items() if value is not None}
        if refused:
            reported = ", ".join(["loss", "reconstruction_loss", *self.CODE_METRICS])
            raise ValueError(
                f"{type(self).__name__}.compile takes no loss or metrics: the model "
                "optimises its negative ELBO (its likelihood's reconstruction term plus "
                f"its code's terms) and reports {reported} itself; choose the likelihood "
                "with likelihood=... when building the model. Received: "
                + ", ".join(f"{name}={value!r}" for name, value in refused.items())
            )
        super().compile(optimizer=optimizer, **kwargs)
        # Built here, not in the first step: a `fit` that failed before its
        # first update would otherwise leave the next one creating variables
        # inside a traced function, which TensorFlow refuses.
        self.optimizer.build(self.trainable_variables)

    def compile_from_config(self, config):
        # Keras skips a custom `compile` when loading a model; this one takes
        # what Keras saved, so a reloaded model keeps its optimizer and state.
        self.compile(**keras.saving.deserialize_keras_object(config))

    def fit(self, x=None, *args, **kwargs):
        _refuse_empty(x, "train on")
        if isinstance(x, tf.data.Dataset) and not args:
            # A dataset shuffles in its own pipeline; Keras' default shuffle=True
            # would only warn that it is ignored.
            kwargs.setdefault("shuffle", False)
        return super().fit(x, *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        _refuse_empty(x, "evaluate")
        return super().evaluate(x, *args, **kwargs)

    def latent_code(self, mean, log_var, training: bool | None):
        """Makes the code `z` from q(z|x); the one method a subclass defines.

        Args:
            mean: float32 tensor `(batch, latent_dim)`, the posterior mean.
            log_var: float32 tensor of the same shape, the posterior log-variance.
            training: Python boolean or `None`.

        Returns:
            A tuple `(z, penalty, reported_terms)`: the code, `(batch, latent_dim)`; the
            scalar the optimised loss adds to the batch's mean reconstruction
            term; and a dict mapping each name of `CODE_METRICS` to a pair
            `(per-example values, weight)` that the reported loss adds.
        """
        raise NotImplementedError

    def call(self, inputs, training=None, sample=None):
        images, labels = self._split_inputs(inputs)
        images = self._check_images(images)
        if sample is None:
            sample = bool(training)
        if sample:
            _, _, params, _, _ = self._forward(images, labels, training)
        else:
            # Like Keras' noise layers, deterministic outside training: z is
            # the posterior mean, so `predict` gives the same images each time.
            mean, _ = self.encoder(self.network_inputs(images, labels), training=training)
            params = self.decoder(self.network_inputs(mean, labels), training=training)
            params = ops.cast(params, "float32")
        return self.likelihood(params)

    def network_inputs(self, values, labels):
        """What the encoder (given images) or the decoder (given `z`) takes.

        Args:
            values: images or latent vectors.
            labels: `None`; a conditional model's one-hot labels `(batch, num_classes)`.

        Returns:
            `values`, or `[values, labels]` for a conditional model.
        """
        if labels is not None:
            raise ValueError(
                f"{type(self).__name__} is not conditioned on labels; ConditionalVAE is. "
                "Received: labels."
            )
        return values

    def _split_inputs(self, data):
        """`(images, labels)` from what `call` or a step gets: images alone, or
        `(images,)`, `(images, labels)` or `(images, labels, sample_weight)`;
        the labels are `None` unless the model is conditional."""
        return _images_of(data), None

    def _forward(self, images, labels, training):
        """Runs encoder, latent code and decoder.

        Keras keeps `add_loss` values on the layer object, which all replicas of
        a `MirroredStrategy` share while they are traced in turn, switching at
        cross-replica ops; so each part's losses are read right after its own
        call, before another replica can replace them.

        Returns:
            `(mean, log_var, params, penalty, reported_terms)`: the posterior, the decoder
            outputs in float32, the penalty added to the optimised loss, and
            the code's reported terms.
        """
        mean, log_var = self.encoder(self.network_inputs(images, labels), training=training)
        # Under mixed precision the code, its loss terms and the likelihood stay in float32.
        mean, log_var = ops.cast(mean, "float32"), ops.cast(log_var, "float32")
        penalty = ops.sum(self.encoder.losses)
        z, code_penalty, reported_terms = self.latent_code(mean, log_var, training)
        penalty += code_penalty
        params = ops.cast(self.decoder(self.network_inputs(z, labels), training=training),
                          "float32")  # fmt: skip
        penalty += ops.sum(self.decoder.losses)
        return mean, log_var, params, penalty, reported_terms

    def _objective(self, images, labels):
        """What a training step minimises, and what it reports.

        Returns:
            `(objective, penalty, reconstruction, reported_terms)`: the per-example
            loss whose batch mean is minimised, a scalar penalty added to it,
            and the per-example reconstruction term and code terms that the
            reported losses are made of.
        """
        _, _, params, penalty, reported_terms = self._forward(images, labels, training=True)
        reconstruction = self.likelihood.negative_log_likelihood(images, params)
        return reconstruction, penalty, reconstruction, reported_terms

    def _check_images(self, images):
        shape = tuple(images.shape)
        if len(shape) != 4 or shape[1:] != self.image_shape:
            expected = ", ".join(map(str, self.image_shape))
            if len(shape) == 3 and (*shape[1:], 1) == self.image_shape:
                advice = "The images have no channel axis: add one with images[..., None]."
            elif len(shape) == 4:
                advice = f"Resize the data, or build the model with input_shape={shape[1:]}."
            else:
                advice = "Pass a batch of images, a 4-D array (batch, height, width, channels)."
            raise ValueError(
                f"{self.name} expects images of shape (batch, {expected}). "
                f"Received: shape {shape}. {advice}"
            )
        return images

    def _update_metrics(self, reconstruction, reported_terms):
        # Per-example values: metric totals and counts are summed over replicas,
        # so the reported means are exact for the global batch.
        loss = reconstruction
        for tracker in self.code_trackers:
            values, weight = reported_terms[tracker.name]
            tracker.update_state(values)
            loss = loss + weight * values
        self.reconstruction_tracker.update_state(reconstruction)
        self.loss_tracker.update_state(loss)

    def _checks(self, images, labels, where):
        """The input checks, as a context: ops made inside it run only once the
        batch passed, so a bad batch stops the step before any state changes."""
        checks = [
            self._check_finite(images, where),
            self._check_support(images, where),
            self._check_labels(labels, where),
        ]
        return tf.control_dependencies([check for check in checks if check is not None])

    def _check_labels(self, labels, where):
        """Fails the step if labels are out of range; a conditional model's check."""
        return None

    def _check_finite(self, images, where):
        """Fails the step, naming the bad examples, if the batch holds NaN or inf."""
        finite = ops.all(ops.isfinite(ops.reshape(images, (ops.shape(images)[0], -1))), axis=1)
        return tf.debugging.Assert(
            ops.all(finite),
            [
                "Non-finite values (NaN or inf) in the input data,",
                *where,
                ": examples",
                tf.where(~finite)[:, 0],
                "of the batch (0-based). Clean the data first.",
            ],
            summarize=20,
        )

    def _check_support(self, images, where):
        """Fails the step if pixels lie outside the likelihood's support (Bernoulli: [0, 1])."""
        if self.likelihood.support is None:
            return None
        low, high = self.likelihood.support
        smallest, largest = ops.min(images), ops.max(images)
        return tf.debugging.Assert(
            ops.logical_and(smallest >= low, largest <= high),
            [
                f"Expected pixel values in [{low:g}, {high:g}] for the "
                f"{self.likelihood.distribution} likelihood,",
                *where,
                ": received values from",
                smallest,
                "to",
                largest,
                ". Divide 8-bit images by 255.",
            ],
        )

    def train_step(self, data):
        images, labels = self._split_inputs(data)
        images = self._check_images(images)
        where = ["in the batch of training step", self.optimizer.iterations + 1]
        with self._checks(images, labels, where):
            with tf.GradientTape() as tape:
                objective, penalty, reconstruction, reported_terms = self._objective(images, labels)
                local_size = ops.shape(images)[0]
                _, global_size = global_batch_position(local_size)
                share = ops.cast(local_size, "float32") / ops.cast(global_size, "float32")
                # Gradients are summed over replicas: scale each replica's share of
                # the global-batch mean so the sum is the global mean.
                loss = ops.sum(objective) / ops.cast(global_size, "float32") + penalty * share
                scaled_loss = self.optimizer.scale_loss(loss)
            gradients = tape.gradient(scaled_loss, self.trainable_variables)
            # Variables the loss does not reach (an autoencoder's log-variance head)
            # get a zero gradient rather than none, so the optimizer tracks every
            # trainable variable and its saved state matches the model's on reload.
            self.optimizer.apply_gradients(
                [
                    (ops.zeros_like(v) if g is None else g, v)
                    for g, v in zip(gradients, self.trainable_variables, strict=True)
                ]
            )
            self._update_metrics(reconstruction, reported_terms)
        return self._results()

    def test_step(self, data):
        images, labels = self._split_inputs(data)
        images = self._check_images(images)
        with self._checks(images, labels, ["in an evaluation batch"]):
            _, _, params, _, reported_terms = self._forward(images, labels, training=False)
            reconstruction = self.likelihood.negative_log_likelihood(images, params)
            self._update_metrics(reconstruction, reported_terms)
        return self._results()

    def _results(self):
        results = {metric.name: metric.result() for metric in self.metrics}
        if isinstance(self.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
            # Keras reduces step outputs with a mean over axis 0 across workers,
            # which fails on scalars (keras issue 20585); shape [1] reduces to ().
            results = {name: ops.reshape(value, (1,)) for name, value in results.items()}
        return results

    def encode(
        self, images: ArrayOrDataset, labels: ArrayLike | None = None, batch_size: int = 256
    ) -> tuple[np.ndarray, np.ndarray]:
        """Returns the posterior mean and log-variance of each image.

        Args:
            images: array of shape `(n, H, W, C)` in [0, 1], or a `tf.data.Dataset`
                of such images (batched or not, alone or as `(images, labels)`).
            labels: a conditional model's labels, see `ConditionalVAE`.
            batch_size: images per forward pass.

        Returns:
            A tuple `(mean, log_var)` of NumPy arrays of shape `(n, latent_dim)`.
        """
        images, labels = self._user_inputs(images, labels, "images", item_rank=3)
        self._check_images(images)
        if self.likelihood.support is not None and images.size:
            low, high = self.likelihood.support
            if images.min() < low or images.max() > high:
                raise ValueError(
                    f"Expected pixel values in [{low:g}, {high:g}] for the "
                    f"{self.likelihood.distribution} likelihood. Received: values from "
                    f"{images.min():g} to {images.max():g}. Divide 8-bit images by 255."
                )
        inputs = self.network_inputs(images, labels)
        mean, log_var = _predict(self.encoder, inputs, batch_size)
        return mean, log_var

    def decode(
        self, z: ArrayOrDataset, labels: ArrayLike | None = None, batch_size: int = 256
    ) -> np.ndarray:
        """Returns the mean image of p(x|z) for each latent vector.

        Args:
            z: array of shape `(n, latent_dim)`, or a `tf.data.Dataset` of latent
                vectors (batched or not).
            labels: a conditional model's labels, see `ConditionalVAE`.
            batch_size: latent vectors per forward pass.

        Returns:
            A NumPy array of shape `(n, H, W, C)` in [0, 1].
        """
        z, labels = self._user_inputs(z, labels, "z", item_rank=1)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"{self.name} expects latent vectors of shape (n, {self.latent_dim}). "
                f"Received: shape {z.shape}."
            )
        (params,) = _predict(self.decoder, self.network_inputs(z, labels), batch_size)
        return ops.convert_to_numpy(self.likelihood(params))

    def _user_inputs(self, values, labels, name, item_rank):
        """`values` as a finite float32 array and `labels` as the networks take them."""
        if labels is not None:
            self.network_inputs(None, labels)  # refused by an unconditional model
        return _as_finite_array(name, values, item_rank), None

    def sample(self, n: int, seed: int | None = None, labels: ArrayLike | None = None
               ) -> np.ndarray:  # fmt: skip
        """Decodes `n` latent vectors drawn from the prior N(0, I).

        Args:
            n: number of images.
            seed: int for a repeatable draw, or `None`.
            labels: a conditional model's labels, see `ConditionalVAE`.

        Returns:
            A NumPy array of shape `(n, H, W, C)` in [0, 1].
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"Expected `n` to be a non-negative integer. Received: n={n!r}")
        if n == 0:
            return np.zeros((0, *self.image_shape), "float32")
        return self.decode(self.prior_codes(int(n), seed), labels)

    def prior_codes(self, n: int, seed: int | None = None) -> np.ndarray:
        """Draws `n` codes from the prior, N(0, I): what `sample` decodes.

        Args:
            n: a positive number of codes.
            seed: int for a repeatable draw, or `None`.

        Returns:
            A float32 NumPy array `(n, latent_dim)`.
        """
        return ops.convert_to_numpy(keras.random.normal((n, self.latent_dim), seed=seed))

    def reconstruct(self, images: ArrayOrDataset, labels: ArrayLike | None = None
                    ) -> np.ndarray:  # fmt: skip
        """Decodes the posterior mean of each image.

        Args:
            images: array of shape `(n, H, W, C)` in [0, 1], or a `tf.data.Dataset`
                of them, as `encode` takes.
            labels: a conditional model's labels, see `ConditionalVAE`.

        Returns:
            A NumPy array of shape `(n, H, W, C)`.
        """
        mean, _ = self.encode(images, labels)
        return self.decode(mean, labels)

    def interpolate(self, image_a: ArrayLike, image_b: ArrayLike, steps: int = 8) -> np.ndarray:
        """Decodes evenly spaced points between the posterior means of two images.

        Args:
            image_a: one image `(H, W, C)`, or a batch `(n, H, W, C)`.
            image_b: an array of the same shape as `image_a`.
            steps: number of points, ends included (at least 2).

        Returns:
            A NumPy array of shape `(steps,) + image_a.shape`.
        """
        if steps < 2:
            raise ValueError(f"Expected `steps` to be at least 2. Received: steps={steps}")
        image_a = _as_finite_array("image_a", image_a, item_rank=3)
        image_b = _as_finite_array("image_b", image_b, item_rank=3)
        if image_a.shape != image_b.shape:
            raise ValueError(
                "Expected two images (or batches) of the same shape. "
                f"Received: {image_a.shape} and {image_b.shape}."
            )
        single = image_a.ndim == 3
        batch = np.stack([image_a, image_b]) if single else np.concatenate([image_a, image_b])
        mean, _ = self.encode(batch)
        start, end = np.split(mean, 2)
        weights = np.linspace(0.0, 1.0, steps, dtype=mean.dtype)[:, None, None]
        path = (1.0 - weights) * start[None] + weights * end[None]
        images = self.decode(path.reshape(-1, self.latent_dim))
        return images.reshape((steps,) + image_a.shape)

    def export(
        self,
        filepath: str | os.PathLike,
        format: str = "bundle",
        verbose=None,
        input_signature=None,
        test_images: ArrayLike | None = None,
        overwrite: bool = False,
        variants: tuple[str, ...] | list[str] = (),
        **kwargs,
    ) -> dict:
        """Exports the decoder and encoder as a verified bundle (SavedModel and ONNX).

        Keras' own formats would trace `call`, which samples when training;
        the bundle holds the deterministic networks servers need, each checked
        against TensorFlow's loaders and onnxruntime before it is written.
        For one network alone, export `model.decoder` or `model.encoder`.

        Args:
            filepath: the bundle folder. An existing bundle gets the next version.
            format: `"bundle"`, the only format.
            verbose: unused; Keras' argument.
            input_signature: must be `None`: the bundle fixes its inputs.
            test_images: array `(n, H, W, C)` in [0, 1] to verify the encoder
                on, or `None` for 64 images sampled from the model.
            overwrite: whether to replace an existing bundle and its versions.
            variants: smaller decoders to add: `"float16"`.
            **kwargs: `metadata` (a dict stored with the version) or `tolerance`.

        Returns:
            The bundle's manifest, as a dict.
        """
        if format != "bundle" or input_signature is not None:
            raise ValueError(
                f"{type(self).__name__}.export writes a verified bundle: format='bundle', "
                "no input_signature. For a single network in a Keras format, call "
                "model.decoder.export(...) or model.encoder.export(...). Received: "
                f"format={format!r}, input_signature={input_signature!r}"
            )
        # Imported here: the exporter brings onnx and tf2onnx, which training never needs.
        from keras_vae.export import export_bundle

        if test_images is None:
            labels = None if self.num_classes is None else np.arange(64) % self.num_classes
            test_images = self.sample(64, seed=0, labels=labels)
            kwargs.setdefault("test_labels", labels)
        return export_bundle(
            self, filepath, test_images, overwrite=overwrite, variants=variants, **kwargs
        )

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "likelihood": keras.saving.serialize_keras_object(self.likelihood),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "decoder", "likelihood"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


# One traced inference function per network, made on first use.
_INFERENCE_CALLS = weakref.WeakKeyDictionary()


def _predict(network, values, batch_size):
    """`network`'s outputs for `values` (an array, or a list of arrays for a
    network of several inputs), batch by batch, as a list of NumPy arrays.

    One function, traced once for any batch size, serves every call; `predict`
    makes and traces new functions, and TensorFlow warns of retracing when
    several models are used in turn.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"Expected `batch_size` to be a positive integer. Received: batch_size={batch_size!r}"
        )
    call = _INFERENCE_CALLS.get(network)
    if call is None:
        # A weak reference: the function must not keep its network alive.
        reference = weakref.ref(network)
        call = tf.function(
            lambda *batch: reference()(list(batch) if len(batch) > 1 else batch[0],
                                       training=False),
            input_signature=[tf.TensorSpec(spec.shape, "float32") for spec in network.inputs],
        )  # fmt: skip
        _INFERENCE_CALLS[network] = call
    values = values if isinstance(values, list) else [values]
    if not len(values[0]):
        # An empty batch in, an empty batch out, of the shapes a batch would have.
        shapes = tf.nest.flatten(call.get_concrete_function().structured_outputs)
        return [np.zeros((0, *shape.shape[1:]), "float32") for shape in shapes]
    parts = [
        tf.nest.flatten(call(*(tf.constant(part[start : start + batch_size]) for part in values)))
        for start in range(0, len(values[0]), batch_size)
    ]
    return [np.concatenate([ops.convert_to_numpy(part[i]) for part in parts])
            for i in range(len(parts[0]))]  # fmt: skip


def _images_of(data):
    """Takes the images out of `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`."""
    return data[0] if isinstance(data, (tuple, list)) else data


def _refuse_empty(x, what):
    # Keras would run one step on an empty array and report its NaN as a loss.
    shape = getattr(x, "shape", None)
    if shape is not None and len(shape) > 0 and shape[0] == 0:
        raise ValueError(
            f"Expected at least one image to {what}. Received: an empty array of shape "
            f"{tuple(shape)}."
        )


def _as_finite_array(name, values, item_rank):
    """`values` (an array, nested lists or a `tf.data.Dataset` of items of rank
    `item_rank`, batched or not) as one finite float32 array."""
    if isinstance(values, tf.data.Dataset):
        parts = [np.asarray(_images_of(element)) for element in values.as_numpy_iterator()]
        if not parts:
            raise ValueError(
                f"Expected `{name}` to hold at least one element. Received: an empty dataset."
            )
        batched = parts[0].ndim == item_rank + 1
        values = np.concatenate(parts) if batched else np.stack(parts)
    try:
        array = np.asarray(values, dtype="float32")
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"Expected `{name}` to be an array of numbers of one shape. Received values "
            f"NumPy cannot read as one ({error})."
        ) from None
    if not np.all(np.isfinite(array)):
        raise ValueError(
            f"`{name}` contains NaN or infinite values "
            f"({np.count_nonzero(~np.isfinite(array))} of {array.size}). Clean the input first."
        )
    return array


def _check_pair(encoder, decoder):
    """Checks that the encoder and decoder fit together; returns (image_shape, latent_dim)."""
    outputs = encoder.output_shape
    if not (isinstance(outputs, list) and len(outputs) == 2 and outputs[0] == outputs[1]):
        raise ValueError(
            "Expected the encoder to output [mean, log_var] of equal shapes "
            f"(batch, latent_dim). Received: output shapes {outputs}."
        )
    latent_dim = outputs[0][-1]
    # A conditional model's networks take a second input, the one-hot label.
    image_shape = tuple(encoder.inputs[0].shape[1:])
    if tuple(decoder.inputs[0].shape[1:]) != (latent_dim,):
        raise ValueError(
            f"Expected the decoder to take latent vectors of shape (batch, {latent_dim}), "
            f"as the encoder outputs. Received: decoder input shape {decoder.input_shape}."
        )
    if tuple(decoder.output_shape[1:]) != image_shape:
        raise ValueError(
            f"Expected the decoder to output images of shape (batch, {image_shape}) like "
            f"the encoder's input. Received: decoder output shape {decoder.output_shape}."
        )
    return image_shape, latent_dim
