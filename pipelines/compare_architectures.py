"""Trains candidate conv VAEs for Fashion-MNIST the same way and compares them.

    python -m pipelines.compare_architectures --epochs 5 --output runs/architectures.json

Each candidate is trained on dynamically binarised Fashion-MNIST (Bernoulli
likelihood, Adam 1e-3, batch 128, seed 0) and evaluated on the test set; the
figures chose the default preset `fashion_mnist_conv` (see the README).
"""

import argparse
import json
import statistics

import keras

import keras_vae
from keras_vae import architectures
from keras_vae.callbacks import EpochTimer
from keras_vae.data import load_images
from keras_vae.files import write_bytes_atomically

# (latent_dim, encoder filters, dense units after the convolutions)
CANDIDATES = [
    (16, (32, 64), ()),
    (32, (32, 64), ()),
    (64, (32, 64), ()),
    (16, (32, 64), (256,)),
    (32, (32, 64), (256,)),
    (64, (32, 64), (256,)),
    (32, (64, 128), (256,)),
]


def compare(epochs, batch_size=128, data_dir=None):
    """Trains every candidate; returns a list of result dicts."""
    results = []
    for latent_dim, filters, hidden_units in CANDIDATES:
        keras.utils.set_random_seed(0)
        options = {"batch_size": batch_size, "binarize": True, "data_dir": data_dir}
        train = load_images(split="train", shuffle=True, seed=0, drop_remainder=True, **options)
        test = load_images(split="test", seed=1, **options)
        shape = (28, 28, 1)
        vae = keras_vae.VAE(
            architectures.conv_encoder(shape, latent_dim, filters, hidden_units),
            architectures.conv_decoder(
                shape, latent_dim, filters[::-1], start_channels=filters[-1]
            ),
            seed=0,
        )
        vae.compile(optimizer=keras.optimizers.Adam(1e-3))
        timer = EpochTimer()
        vae.fit(train, epochs=epochs, verbose=0, callbacks=[timer])
        test_metrics = vae.evaluate(test, verbose=0, return_dict=True)
        result = {
            "latent_dim": latent_dim,
            "filters": list(filters),
            "hidden_units": list(hidden_units),
            "parameters": vae.count_params(),
            "epochs": epochs,
            "test": test_metrics,
            "train_examples_per_second": int(train.cardinality())
            * batch_size
            / statistics.median(timer.seconds[1:] or timer.seconds),
        }
        print(
            f"latent {latent_dim:3d}  filters {filters}  dense {hidden_units}  "
            f"params {result['parameters']:8d}  test loss {test_metrics['loss']:.2f} "
            f"(rec {test_metrics['reconstruction_loss']:.2f} + KL {test_metrics['kl_loss']:.2f})  "
            f"{result['train_examples_per_second']:.0f} ex/s",
            flush=True,
        )
        results.append(result)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--data-dir", help="TFDS data folder")
    parser.add_argument("--output", default="runs/architectures.json")
    args = parser.parse_args(argv)
    results = compare(args.epochs, data_dir=args.data_dir)
    write_bytes_atomically(args.output, json.dumps(results, indent=2).encode())
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
