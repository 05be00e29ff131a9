"""Two replicas on the two logical CPUs of conftest, and one step on them against one device."""

import numpy as np
import tensorflow as tf


def two_replicas():
    # The default all-reduce on CPU devices orders the collectives of synchronised
    # BatchNorm inconsistently; reducing through one device is exact and reliable.
    return tf.distribute.MirroredStrategy(
        ["/cpu:0", "/cpu:1"], cross_device_ops=tf.distribute.ReductionToOneDevice()
    )


def assert_one_step_on_two_replicas_equals_one(one, two, data, batch_norm):
    """Fits `one` (one device) and `two` (two replicas), from the same weights, for one
    epoch of `data`, and checks that they report the same losses and land on the same
    weights."""
    assert two.distribute_strategy.num_replicas_in_sync == 2
    two.set_weights(one.get_weights())
    before = [w.copy() for w in one.get_weights()]

    one_metrics = one.fit(data, epochs=1, verbose=0).history
    two_metrics = two.fit(data, epochs=1, verbose=0).history

    for name in ("loss", "reconstruction_loss", "kl_loss"):
        np.testing.assert_allclose(two_metrics[name], one_metrics[name], rtol=1e-6)
    largest_update = max(
        np.abs(a - b).max() for a, b in zip(one.get_weights(), before, strict=True)
    )
    assert largest_update > 1e-4  # the step moved the weights
    # A wrongly scaled gradient would be off by a whole step (2x on 2 replicas).
    # Synchronised BatchNorm divides by per-batch standard deviations, which
    # magnify float rounding of the two devices' partial sums, hence its looser bound.
    tolerance = (1e-2 if batch_norm else 1e-4) * largest_update
    for single, mirrored in zip(one.get_weights(), two.get_weights(), strict=True):
        np.testing.assert_allclose(mirrored, single, rtol=1e-5, atol=tolerance)
