"""Reading the IDX files of MNIST-format datasets, plain or gzip-compressed."""

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

_UNSIGNED_BYTE = 0x08


class DataFileError(ValueError):
    """A data file is missing, truncated or not in the expected format."""


def read_idx(path):
    """Reads an IDX file of unsigned bytes (`.gz` or not) into a NumPy array.

    Args:
        path: path of the file.

    Returns:
        A `uint8` array whose shape is given by the file's header.

    Raises:
        DataFileError: the file is missing, truncated, corrupt or not IDX.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"Data file not found: {path}.")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as error:
            raise DataFileError(
                f"{path} is a corrupt or truncated gzip file ({error}). "
                "Reinstall or re-download it."
            ) from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != _UNSIGNED_BYTE or not 1 <= raw[3] <= 4:
        raise DataFileError(
            f"{path} is not an IDX file of unsigned bytes: its header is {raw[:4].hex()}, "
            "expected 0000 08 followed by the number of dimensions (1 to 4)."
        )
    rank = raw[3]
    header_size = 4 + 4 * rank
    if len(raw) < header_size:
        raise DataFileError(f"{path} is truncated inside its header.")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank))
    expected, found = math.prod(shape), len(raw) - header_size
    if found != expected:
        problem = "truncated" if found < expected else "longer than its header says"
        raise DataFileError(
            f"{path} is {problem}: its header declares shape {shape}, i.e. {expected} "
            f"bytes of data, but it holds {found}. Reinstall or re-download it."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)


def read_idx_pair(images_path, labels_path):
    """Reads matching image and label IDX files.

    Args:
        images_path: IDX file of shape `(n, height, width)` or `(n, H, W, C)`.
        labels_path: IDX file of shape `(n,)`.

    Returns:
        A tuple `(images, labels)`, images of shape `(n, H, W, C)`, both `uint8`.

    Raises:
        DataFileError: a file is unreadable, or the two do not match.
    """
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or labels.ndim != 1:
        raise DataFileError(
            f"Expected images of rank 3 or 4 and labels of rank 1. Received: shapes "
            f"{images.shape} in {images_path} and {labels.shape} in {labels_path}."
        )
    if len(images) != len(labels):
        raise DataFileError(
            f"{images_path} holds {len(images)} images but {labels_path} holds "
            f"{len(labels)} labels: the files do not belong together."
        )
    return images, labels
