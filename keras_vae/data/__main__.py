"""Prepares a dataset for offline use: `python -m keras_vae.data prepare fashion_mnist`."""

import argparse

from keras_vae.data.pipeline import dataset_builder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare", help="prepare a TFDS dataset")
    prepare.add_argument("name", help="dataset name, e.g. fashion_mnist or mnist")
    prepare.add_argument("--data-dir", help="TFDS data folder (default: TFDS' own)")
    prepare.add_argument("--idx-dir", help="folder of local IDX files")
    args = parser.parse_args(argv)
    builder = dataset_builder(args.name, data_dir=args.data_dir, idx_dir=args.idx_dir)
    splits = ", ".join(
        f"{name}: {split.num_examples}" for name, split in builder.info.splits.items()
    )
    print(f"{builder.info.full_name} is prepared in {builder.data_dir} ({splits}).")


if __name__ == "__main__":
    main()
