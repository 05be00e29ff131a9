"""What the VAE and the autoencoder share: encoder, latent code, decoder, likelihood."""

import os

import keras
import tensorflow as tf
from keras import ops

from keras_vae import likelihoods
from keras_vae.distribute import global_batch_position
from keras_vae.model_presets import PresetConstructors
from keras_vae.numpy_api import ArrayLike, NumpyAPI, images_of
from keras_vae_inference.model_inputs import ModelInputs


class EncoderDecoder(PresetConstructors, NumpyAPI, keras.Model):
    """An encoder to q(z|x), a latent code made from it, and a decoder to p(x|z).

    Subclasses define one method, `latent_code`: how the code `z` is made from
    the posterior's mean and log-variance, and what that adds to the loss.
    `VAE` samples `z` and adds the KL; `Autoencoder` takes the mean. The rest is
    here: the training and test steps (exact under `tf.distribute`), the input
    checks and saving; presets come from `PresetConstructors`
    (`keras_vae.model_presets`), and `encode`, `decode`, `sample`,
    `reconstruct` and `interpolate` from `NumpyAPI` (`keras_vae.numpy_api`).

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
    # The from_preset arguments that change a preset's architecture (its weights then
    # no longer fit).
    ARCHITECTURE_ARGUMENTS = ("input_shape", "latent_dim", "likelihood")

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

    @property
    def model_inputs(self) -> ModelInputs:
        """What the networks take: images, latent codes and, for a conditional model,
        labels (`keras_vae_inference.model_inputs.ModelInputs`)."""
        return ModelInputs(self.image_shape, self.latent_dim, self.num_classes)

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
        return images_of(data), None

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
            labels = self.model_inputs.cycled_labels(64)
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


def _refuse_empty(x, what):
    # Keras would run one step on an empty array and report its NaN as a loss.
    shape = getattr(x, "shape", None)
    if shape is not None and len(shape) > 0 and shape[0] == 0:
        raise ValueError(
            f"Expected at least one image to {what}. Received: an empty array of shape "
            f"{tuple(shape)}."
        )


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
