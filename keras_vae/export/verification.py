"""Each exported part run in every runtime that loads it, against the Keras model."""

import numpy as np
import tensorflow as tf

from keras_vae.export.errors import ExportVerificationError
from keras_vae.export.onnx import run_onnx
from keras_vae.export.saved_model import run_in_session
from keras_vae_inference import bundle

TOLERANCE = 1e-4


def verify_parts(model, work, version, functions, test_set, seed, tolerance):
    """Runs both parts in every runtime against Keras on latent vectors and test images.

    Returns:
        The decoder's feeds, and the parity record: each runtime's largest difference.

    Raises:
        ExportVerificationError: a runtime differs by more than `tolerance`.
    """
    z = np.random.default_rng(seed).standard_normal((64, model.latent_dim)).astype("float32")
    test_images, test_labels = test_set
    feeds = {"decoder": {bundle.LATENT: z}, "encoder": {bundle.IMAGES: test_images}}
    cycled = model.model_inputs.cycled_labels(len(z))
    if cycled is not None:
        feeds["decoder"][bundle.LABELS] = model.one_hot_labels(cycled, len(z))
        feeds["encoder"][bundle.LABELS] = test_labels
    parity = {"tolerance": tolerance}
    for part in bundle.PARTS:
        parity[part] = _compare(functions[part], work, part, version, feeds[part])
        worst = max(parity[part].values())
        if not worst <= tolerance:
            raise ExportVerificationError(
                f"The exported {part} differs from the Keras model by up to {worst:.3g} "
                f"(tolerance {tolerance:g}): {parity[part]}. Nothing was written."
            )
    parity["decoder_inputs"] = f"{len(z)} latent vectors from N(0, I), seed {seed}"
    parity["encoder_inputs"] = f"{len(test_images)} test images"
    return feeds["decoder"], parity


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
