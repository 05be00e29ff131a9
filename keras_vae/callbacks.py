"""Keras callbacks for VAE training."""

import time

import keras


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of each training epoch (validation excluded).

    Attributes:
        seconds: list of epoch durations in seconds, in order.
    """

    def __init__(self):
        super().__init__()
        self.seconds = []
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_test_begin(self, logs=None):
        # Validation runs inside the epoch; stop the clock before it.
        if self._start is not None:
            self.seconds.append(time.perf_counter() - self._start)
            self._start = None

    def on_epoch_end(self, epoch, logs=None):
        if self._start is not None:
            self.seconds.append(time.perf_counter() - self._start)
            self._start = None
