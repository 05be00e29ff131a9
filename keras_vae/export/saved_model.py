"""The SavedModel of one part, and running it as TensorFlow Serving loads it."""

import logging

import tensorflow as tf

from keras_vae.export.errors import ExportVerificationError
from keras_vae_inference import bundle


def save_savedmodel(variables, function, path):
    """Saves `function` as a SavedModel's serving signature, with the Keras `variables` it reads."""
    # tf.saved_model.save with an explicit signature stores each weight once,
    # unlike Keras' export(format="tf_saved_model"), and keeps our names. The
    # module tracks the networks' raw tf.Variables, not the Keras models: with
    # a model as an attribute, TensorFlow's session-based loaders (TF
    # Serving, saved_model_cli run) cannot find its variables (tensorflow#72963).
    module = tf.Module()
    module.tracked_variables = [variable.value for variable in variables]
    module.serve = function
    tf.saved_model.save(module, str(path), signatures={bundle.SIGNATURE: function})


def _without_deprecation_notice(function, *args):
    """Calls a TF1 function without TensorFlow's notice that TF2 deprecates it:
    here it is the point, since TensorFlow Serving loads models that way."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return function(*args)
    finally:
        logger.setLevel(level)


def run_in_session(path, feeds):
    """Runs a SavedModel's signature the way TensorFlow Serving loads it: a TF1 session."""
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        try:
            meta_graph = _without_deprecation_notice(
                tf.compat.v1.saved_model.loader.load, session, ["serve"], path
            )
            signature = meta_graph.signature_def[bundle.SIGNATURE]
            return session.run(
                {name: info.name for name, info in signature.outputs.items()},
                {signature.inputs[name].name: value for name, value in feeds.items()},
            )
        except tf.errors.OpError as error:
            raise ExportVerificationError(
                f"The SavedModel {path} does not run in TensorFlow's session loader, the one "
                f"TensorFlow Serving uses: {error.message.splitlines()[0]} Nothing was written."
            ) from None
