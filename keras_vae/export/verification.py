"""Each exported part run in every runtime that loads it, against the Keras model."""

import numpy as np
import tensorflow as tf

from keras_vae.export.errors import ExportVerificationError
from keras_vae.export.onnx import run_onnx
from keras_vae.export.saved_model import run_in_session
from keras_vae_inference import bundle

TOLERANCE = 1e-4


def verify_parts(model, work, version, parts, test_set, seed, tolerance):
    """Runs every part in every runtime against Keras on latent vectors, test images, seeds.

    Args:
        parts: `{part: ExportedPart}`, as `signatures.exported_parts` gives them.

    Returns:
        The decoder's feeds, and the parity record: each runtime's largest difference.

    Raises:
        ExportVerificationError: a runtime differs by more than `tolerance`.
    """
    feeds, inputs = _feeds(model, test_set, seed)
    parity = {"tolerance": tolerance}
    for part in parts:
        parity[part] = _compare(parts[part].function, work, part, version, feeds[part])
        worst = max(parity[part].values())
        if not worst <= tolerance:
            raise ExportVerificationError(
                f"The exported {part} differs from the Keras model by up to {worst:.3g} "
                f"(tolerance {tolerance:g}): {parity[part]}. Nothing was written."
            )
    for part in parts:
        parity[f"{part}_inputs"] = inputs[part]
    return feeds["decoder"], parity


def _feeds(model, test_set, seed):
    """Each part's inputs for the checks, and what they are in words."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((64, model.latent_dim)).astype("float32")
    test_images, test_labels = test_set
    feeds = {"decoder": {bundle.LATENT: z}, "encoder": {bundle.IMAGES: test_images}}
    inputs = {
        "decoder": f"{len(z)} latent vectors from N(0, I), seed {seed}",
        "encoder": f"{len(test_images)} test images",
    }
    cycled = model.model_inputs.cycled_labels(len(z))
    if cycled is not None:
        feeds["decoder"][bundle.LABELS] = model.one_hot_labels(cycled, len(z))
        feeds["encoder"][bundle.LABELS] = test_labels
    if model.model_inputs.two_level:
        z2 = rng.standard_normal((64, model.top_latent_dim)).astype("float32")
        # Seeds past 2**32 and the largest one check both halves of the seed.
        largest = bundle.SEED_RANGE[1]
        seeds = np.array([*range(seed, seed + 62), seed + 2**32 + 1, largest], np.int64)
        feeds |= {
            "top_decoder": {bundle.LATENT: z2},
            "top_encoder": {bundle.LATENT: z},
            "sampler": {bundle.SEED: seeds},
        }
        inputs |= {
            "top_decoder": f"{len(z2)} vectors z2 from N(0, I), seed {seed}",
            "top_encoder": "the decoder's latent vectors",
            "sampler": f"seeds {seed} to {seed + 61}, {seed + 2**32 + 1} and 2**63 - 1",
        }
    return feeds, inputs


def _compare(function, work, part, version, feeds):
    """Max absolute differences between Keras, the reloaded SavedModel (in TensorFlow's
    object loader and in its session loader, TF Serving's) and onnxruntime."""
    keras_out = {k: v.numpy() for k, v in function(**feeds).items()}
    path = str(work / bundle.savedmodel_dir(part, version))
    signature = tf.saved_model.load(path).signatures[bundle.SIGNATURE]
    saved_out = {
        k: v.numpy() for k, v in signature(**{k: tf.constant(v) for k, v in feeds.items()}).items()
    }
    onnx_out = run_onnx(work / bundle.onnx_file(part, version), feeds)

    def largest(a, b):
        return float(max(np.max(np.abs(a[key] - b[key])) for key in a))

    return {
        "keras_vs_savedmodel": largest(keras_out, saved_out),
        "keras_vs_savedmodel_session": largest(keras_out, run_in_session(path, feeds)),
        "keras_vs_onnxruntime": largest(keras_out, onnx_out),
        "savedmodel_vs_onnxruntime": largest(saved_out, onnx_out),
    }
