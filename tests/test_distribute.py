import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae
from keras_vae import architectures
from tests.support.replicas import assert_one_step_on_two_replicas_equals_one, two_replicas
from tests.support.toy_data import prototype_images


def build(strategy, batch_norm, size=16):
    with strategy.scope():
        keras.utils.set_random_seed(1)
        vae = keras_vae.VAE(
            architectures.conv_encoder(
                (size, size, 1), 4, filters=(8, 16), hidden_units=(32,), batch_norm=batch_norm
            ),
            architectures.conv_decoder(
                (size, size, 1), 4, filters=(16, 8), start_channels=16, batch_norm=batch_norm
            ),
            seed=9,
        )
        vae.compile(optimizer=keras.optimizers.SGD(1e-3))
    return vae


# BatchNorm's synchronised statistics, and a batch that splits unevenly, are the
# costlier cases.
@pytest.mark.parametrize(
    "batch_norm, size",
    [
        (False, 16),
        pytest.param(True, 16, marks=pytest.mark.training),
        pytest.param(True, 8, marks=pytest.mark.training),
    ],
)
def test_one_step_on_two_replicas_equals_one_step_on_one(batch_norm, size):
    data = tf.data.Dataset.from_tensor_slices(prototype_images(16, (size, size, 1))).batch(16)
    one = build(tf.distribute.get_strategy(), batch_norm, size)
    two = build(two_replicas(), batch_norm, size)
    # On 8x8 images the encoder's last and the decoder's first block work on 2x2
    # maps: convolutions as one matrix product.
    matmul_layers = [
        layer
        for network in (two.encoder, two.decoder)
        for layer in network.layers
        if type(layer).__name__.startswith("Matmul")
    ]
    assert len(matmul_layers) == (2 if size == 8 else 0)
    assert_one_step_on_two_replicas_equals_one(one, two, data, batch_norm)


def test_evaluation_with_an_uneven_last_batch_equals_one_replica():
    # 15 examples in batches of 4: the last global batch of 3 splits 2 + 1.
    data = tf.data.Dataset.from_tensor_slices(prototype_images(15, (16, 16, 1))).batch(4)
    one = build(tf.distribute.get_strategy(), batch_norm=False)
    two = build(two_replicas(), batch_norm=False)
    two.set_weights(one.get_weights())
    expected = one.evaluate(data, verbose=0, return_dict=True)
    received = two.evaluate(data, verbose=0, return_dict=True)
    for name, value in expected.items():
        np.testing.assert_allclose(received[name], value, rtol=1e-6)


def test_choose_strategy(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert keras_vae.choose_strategy() is tf.distribute.get_strategy()
    assert keras_vae.choose_strategy("default").num_replicas_in_sync == 1
    with pytest.raises(ValueError, match="Unknown strategy.*'tpu'"):
        keras_vae.choose_strategy("tpu")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        keras_vae.choose_strategy()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"task": {}}))
    assert keras_vae.choose_strategy() is tf.distribute.get_strategy()
