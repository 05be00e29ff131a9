"""Export bundles: a trained VAE's decoder and encoder as SavedModel and ONNX, verified.

One concept per module, as `keras/src/export/` does: `writer` builds a bundle's
new version and swaps it into place, `signatures` defines what each graph takes
and returns, `saved_model` and `onnx` write one format each, and `verification`
runs every part in every runtime that loads it against the Keras model.
"""

from keras_vae.export.errors import ExportVerificationError
from keras_vae.export.signatures import decode_function, encode_function
from keras_vae.export.writer import export_bundle

__all__ = ["ExportVerificationError", "decode_function", "encode_function", "export_bundle"]
