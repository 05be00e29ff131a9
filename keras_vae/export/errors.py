"""The error of an export whose graphs do not reproduce the model."""


class ExportVerificationError(RuntimeError):
    """The exported graphs do not reproduce the Keras model closely enough."""
