"""What a bundle's graphs take and return: the exported `tf.function`s, their manifest entries."""

import tensorflow as tf

from keras_vae_inference import bundle


def manifest_model(model):
    """The manifest's `model` entry: what the model takes, and its likelihood."""
    return {**model.model_inputs.manifest_entry(), "likelihood": model.likelihood.distribution}


def model_description(model):
    """The manifest's `model` entry with the model's name and parameter counts."""
    return {
        "name": model.name,
        **manifest_model(model),
        "parameters": {
            "encoder": model.encoder.count_params(),
            "decoder": model.decoder.count_params(),
        },
    }


def manifest_signatures(model):
    """The manifest's `decoder` and `encoder` entries: files, inputs and outputs."""
    latent, images = ["batch", model.latent_dim], ["batch", *model.image_shape]
    mean_meaning = f"mean of p(x|z): {model.likelihood.mean_meaning}"
    labels = []
    if model.model_inputs.conditional:
        labels = [
            _spec(
                bundle.LABELS,
                ["batch", *model.model_inputs.label_shape],
                [0.0, 1.0],
                "one-hot class, or weights of classes that mix them",
            )  # fmt: skip
        ]
    return {
        part: {
            "signature": bundle.SIGNATURE,
            "triton_config": bundle.triton_config(part),
            "triton_python_config": bundle.triton_python_config(part),
            "inputs": inputs,
            "outputs": outputs,
        }
        for part, inputs, outputs in (
            (
                "decoder",
                [_spec(bundle.LATENT, latent, "any real; the prior is N(0, I)"), *labels],
                [_spec(bundle.IMAGE, images, [0.0, 1.0], mean_meaning)],
            ),
            (
                "encoder",
                [_spec(bundle.IMAGES, images, [0.0, 1.0]), *labels],
                [
                    _spec(bundle.MEAN, latent, "any real", "posterior mean"),
                    _spec(bundle.LOG_VAR, latent, "any real", "posterior log-variance"),
                ],
            ),
        )
    }


def decode_function(model):
    """A `tf.function` from `z` to the decoder's mean image, with a dynamic batch.

    Args:
        model: a `keras_vae.VAE`.

    Returns:
        A `tf.function` taking `z` (float32 `[batch, latent_dim]`), and for a
        conditional model `labels` (float32 `[batch, classes]`), and
        returning `{"image": float32 [batch, H, W, C]}`.
    """
    z = tf.TensorSpec([None, model.latent_dim], tf.float32, name=bundle.LATENT)
    if not model.model_inputs.conditional:

        @tf.function(input_signature=[z])
        def decode(z):
            return {bundle.IMAGE: model.likelihood(model.decoder(z, training=False))}

        return decode

    @tf.function(input_signature=[z, _labels_spec(model)])
    def decode_conditional(z, labels):
        return {bundle.IMAGE: model.likelihood(model.decoder([z, labels], training=False))}

    return decode_conditional


def _labels_spec(model):
    shape = [None, *model.model_inputs.label_shape]
    return tf.TensorSpec(shape, tf.float32, name=bundle.LABELS)


def encode_function(model):
    """A `tf.function` from images to the posterior mean and log-variance.

    Args:
        model: a `keras_vae.VAE`.

    Returns:
        A `tf.function` taking `images` (float32 `[batch, H, W, C]`) and returning
        `{"mean": ..., "log_var": ...}`, each float32 `[batch, latent_dim]`.
    """
    spec = tf.TensorSpec([None, *model.image_shape], tf.float32, name=bundle.IMAGES)
    if not model.model_inputs.conditional:

        @tf.function(input_signature=[spec])
        def encode(images):
            mean, log_var = model.encoder(images, training=False)
            return {bundle.MEAN: mean, bundle.LOG_VAR: log_var}

        return encode

    @tf.function(input_signature=[spec, _labels_spec(model)])
    def encode_conditional(images, labels):
        mean, log_var = model.encoder([images, labels], training=False)
        return {bundle.MEAN: mean, bundle.LOG_VAR: log_var}

    return encode_conditional


def _spec(name, shape, value_range, meaning=None):
    spec = {"name": name, "shape": shape, "dtype": "float32", "range": value_range}
    if meaning:
        spec["meaning"] = meaning
    return spec
