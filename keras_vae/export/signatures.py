"""What a bundle's graphs take and return: the exported `tf.function`s, their manifest entries.

Every bundle has a decoder and an encoder. A two-level model's bundle adds the
upper layer's networks, `top_decoder` p(z1|z2) and `top_encoder` q(z2|z1), and a
`sampler` graph that draws `z2 → z1 → x` from a seed; its decoder and encoder
work on `z1`.
"""

import dataclasses

import tensorflow as tf

from keras_vae.export.onnx import OPSET, SAMPLER_OPSET
from keras_vae_inference import bundle


@dataclasses.dataclass(frozen=True)
class ExportedPart:
    """One graph of a bundle.

    Attributes:
        function: the `tf.function` exported, with its input signature.
        variables: the weights it reads, which its SavedModel stores.
        signature: its manifest entry: inputs and outputs.
        opset: the ONNX opset it is converted to.
    """

    function: object
    variables: list
    signature: dict
    opset: int = OPSET


def exported_parts(model):
    """The graphs of `model`'s bundle, by part name, in the manifest's order.

    Args:
        model: a `keras_vae.VAE`, `ConditionalVAE` or `HierarchicalVAE`.

    Returns:
        A dict `{part: ExportedPart}`.
    """
    signatures = manifest_signatures(model)
    parts = {
        "decoder": ExportedPart(
            decode_function(model), model.decoder.variables, signatures["decoder"]
        ),
        "encoder": ExportedPart(
            encode_function(model), model.encoder.variables, signatures["encoder"]
        ),
    }
    if not model.model_inputs.two_level:
        return parts
    for part, network, input_dim in (
        ("top_decoder", model.top_decoder, model.top_latent_dim),
        ("top_encoder", model.top_encoder, model.latent_dim),
    ):
        parts[part] = ExportedPart(
            _gaussian_function(network, input_dim), network.variables, signatures[part]
        )
    parts["sampler"] = ExportedPart(
        sample_function(model),
        [*model.top_decoder.variables, *model.decoder.variables],
        signatures["sampler"],
        SAMPLER_OPSET,
    )
    return parts


def manifest_sampling(model):
    """The manifest's `sampling` entry: how a reader draws images from the prior."""
    if model.model_inputs.two_level:
        return {
            "graph": "sampler",
            "prior": "z2 ~ N(0, I), z1 ~ p(z1|z2), x ~ p(x|z1)",
            "seeds": "sample(n, seed) runs the sampler on the seeds seed, seed + 1, ..., "
            "seed + n - 1: row i is the draw of seed + i alone",
            "generator": "keras_vae.seeded_noise (PCG hash, Box-Muller), inside the graph",
        }
    return {
        "graph": None,
        "prior": "z ~ N(0, I)",
        "seeds": "draw z from N(0, I) with any generator and run the decoder",
    }


def manifest_model(model):
    """The manifest's `model` entry: what the model takes, and its likelihood."""
    return {**model.model_inputs.manifest_entry(), "likelihood": model.likelihood.distribution}


def model_description(model):
    """The manifest's `model` entry with the model's name and parameter counts."""
    return {
        "name": model.name,
        **manifest_model(model),
        "parameters": {
            part: getattr(model, part).count_params()
            for part in ("encoder", "decoder", "top_encoder", "top_decoder")
            if hasattr(model, part)
        },
    }


def manifest_signatures(model):
    """The manifest's entry of each part: files, inputs and outputs."""
    latent, images = ["batch", model.latent_dim], ["batch", *model.image_shape]
    two_level = model.model_inputs.two_level
    z, latent_meaning = ("z", "any real; the prior is N(0, I)")
    if two_level:
        z, latent_meaning = "z1", "any real; z1, whose prior is p(z1|z2): draw it with the sampler"
    mean_meaning = f"mean of p(x|{z}): {model.likelihood.mean_meaning}"
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
    parts = [
        (
            "decoder",
            [_spec(bundle.LATENT, latent, latent_meaning), *labels],
            [_spec(bundle.IMAGE, images, [0.0, 1.0], mean_meaning)],
        ),
        (
            "encoder",
            [_spec(bundle.IMAGES, images, [0.0, 1.0]), *labels],
            _gaussian_specs(latent, f"q({z}|x)"),
        ),
    ]
    if two_level:
        top = ["batch", model.top_latent_dim]
        parts += [
            ("top_decoder", [_spec(bundle.LATENT, top, "any real; z2, whose prior is N(0, I)")],
             _gaussian_specs(latent, "p(z1|z2)")),
            ("top_encoder", [_spec(bundle.LATENT, latent, "any real; z1")],
             _gaussian_specs(top, "q(z2|z1)")),
            ("sampler", [_spec(bundle.SEED, ["batch"], list(bundle.SEED_RANGE), dtype="int64")],
             [_spec(bundle.IMAGE, images, [0.0, 1.0], mean_meaning),
              _spec(bundle.LATENT, latent, "any real", "z1 ~ p(z1|z2)"),
              _spec(bundle.TOP_LATENT, top, "any real", "z2 ~ N(0, I)")]),
        ]  # fmt: skip
    return {
        part: {
            "signature": bundle.SIGNATURE,
            "triton_config": bundle.triton_config(part),
            "triton_python_config": bundle.triton_python_config(part),
            "inputs": inputs,
            "outputs": outputs,
        }
        for part, inputs, outputs in parts
    }


def _gaussian_specs(shape, distribution):
    return [
        _spec(bundle.MEAN, shape, "any real", f"mean of {distribution}"),
        _spec(bundle.LOG_VAR, shape, "any real", f"log-variance of {distribution}"),
    ]


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


def _gaussian_function(network, input_dim):
    """A `tf.function` from `z` to a Gaussian network's `mean` and `log_var`."""

    @tf.function(input_signature=[tf.TensorSpec([None, input_dim], tf.float32, name=bundle.LATENT)])
    def gaussian(z):
        mean, log_var = (tf.cast(value, tf.float32) for value in network(z, training=False))
        return {bundle.MEAN: mean, bundle.LOG_VAR: log_var}

    return gaussian


def sample_function(model):
    """A `tf.function` from seeds to a two-level model's draws (`sample_from_seeds`).

    Returns:
        A `tf.function` taking `seed` (int64 `[batch]`) and returning
        `{"image": [batch, H, W, C], "z": z1, "z2": z2}`, float32.
    """

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name=bundle.SEED)])
    def sample(seed):
        images, z1, z2 = model.sample_from_seeds(seed)
        return {bundle.IMAGE: images, bundle.LATENT: z1, bundle.TOP_LATENT: z2}

    return sample


def _spec(name, shape, value_range, meaning=None, dtype="float32"):
    spec = {"name": name, "shape": shape, "dtype": dtype, "range": value_range}
    if meaning:
        spec["meaning"] = meaning
    return spec
