"""A folder of PNG or JPEG images as a dataset, labelled by sub-folder."""

import functools
import os
import warnings
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from keras_vae.data.idx import DataFileError
from keras_vae.data.source import ImageSource

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# Pillow's mode and the channel count of each colour mode.
COLOR_MODES = {"grayscale": ("L", 1), "rgb": ("RGB", 3)}
SPLITS = ("train", "test")


class FolderImages(ImageSource):
    """The PNG and JPEG images of a folder as a dataset with `train` and `test` splits.

    The splits are the folder's `train/` and `test/` sub-folders when it has
    both; otherwise each image goes to `test` when a hash of its path inside
    the folder falls in the first `test_percent` of 100 buckets: a fixed split
    that adding or removing other files does not move. Images in sub-folders
    of a split are labelled by the sub-folder's name (classes in sorted order);
    images without a sub-folder are unlabelled (label 0, no class names).
    Transparent pixels are composited onto white. The images are decoded
    once, into memory.

    Args:
        folder: the folder.
        image_size: `(height, width)` to resize every image to, or `None`
            to require one size for all.
        color_mode: `"rgb"` or `"grayscale"`.
        crop_to_aspect_ratio: whether to crop the centre of an image to the
            target aspect ratio before resizing, rather than stretch it.
        skip_unreadable: whether to skip files that cannot be decoded (with
            a warning that counts them) rather than fail.
        test_percent: the share of images in `test` without `train/` and `test/`.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        image_size: tuple[int, int] | None = None,
        color_mode: str = "rgb",
        crop_to_aspect_ratio: bool = False,
        skip_unreadable: bool = False,
        test_percent: int = 10,
    ):
        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise DataFileError(
                f"Expected a folder of PNG or JPEG images. Received: {str(folder)!r}, "
                "which is not a folder."
            )
        if color_mode not in COLOR_MODES:
            raise ValueError(
                f"Expected color_mode to be one of {sorted(COLOR_MODES)}. Received: {color_mode!r}"
            )
        if image_size is not None:
            image_size = tuple(image_size)
            if len(image_size) != 2 or not all(
                isinstance(side, int) and not isinstance(side, bool) and side > 0
                for side in image_size
            ):
                raise ValueError(
                    "Expected image_size to be (height, width), two positive integers. "
                    f"Received: {image_size!r}"
                )
        if not 0 < test_percent < 100:
            raise ValueError(f"Expected test_percent between 1 and 99. Received: {test_percent!r}")
        self.image_size = image_size
        self.color_mode = color_mode
        self.crop_to_aspect_ratio = crop_to_aspect_ratio
        self.skip_unreadable = skip_unreadable
        self.test_percent = test_percent

    def __repr__(self):
        return f"FolderImages({str(self.folder)!r})"

    @functools.cached_property
    def files(self):
        """`{split: [(path, class name or None), ...]}`, each list sorted by path."""
        roots = {split: self.folder / split for split in SPLITS}
        if all(root.is_dir() for root in roots.values()):
            found = {split: _image_files(root) for split, root in roots.items()}
        else:
            found = {split: [] for split in SPLITS}
            for path, label in _image_files(self.folder):
                found[self._split_of(path)].append((path, label))
        if not any(found.values()):
            raise DataFileError(
                f"No PNG or JPEG images in {self.folder} (files ending in "
                f"{', '.join(IMAGE_SUFFIXES)}, in the folder or its sub-folders)."
            )
        for split, items in found.items():
            if not items:
                raise DataFileError(
                    f"The {split} split of {self.folder} has no images. Add images, or "
                    "make train/ and test/ sub-folders that both hold some."
                )
        return found

    def _split_of(self, path):
        key = path.relative_to(self.folder).as_posix().encode()
        return "test" if zlib.crc32(key) % 100 < self.test_percent else "train"

    @functools.cached_property
    def class_names(self):
        names = {label for items in self.files.values() for _, label in items}
        return [] if names == {None} else sorted(names)

    @property
    def image_shape(self):
        images, _ = self.read_split("train")
        return images.shape[1:]

    def split_sizes(self):
        return {split: len(self._decoded[split][0]) for split in SPLITS}

    def read_split(self, name):
        return self._decoded[name]

    @functools.cached_property
    def _decoded(self):
        index = {name: number for number, name in enumerate(self.class_names)}
        pictures, unreadable = {}, []
        for items in self.files.values():
            for path, label in items:
                try:
                    pictures[path] = (self._decode(path), index.get(label, 0))
                except (OSError, ValueError, Image.DecompressionBombError) as error:
                    if not self.skip_unreadable:
                        raise DataFileError(
                            f"Cannot read {path} as an image ({type(error).__name__}: "
                            f"{error}). Remove or replace the file, or skip unreadable "
                            "files (skip_unreadable=True, --skip-unreadable)."
                        ) from None
                    unreadable.append((path, error))
        if unreadable:
            path, error = unreadable[0]
            warnings.warn(
                f"Skipped {len(unreadable)} unreadable file(s) of {self.folder}, e.g. "
                f"{path} ({type(error).__name__}: {error}).",
                stacklevel=2,
            )
        self._check_one_size(pictures)
        channels = COLOR_MODES[self.color_mode][1]
        decoded = {}
        for split, items in self.files.items():
            kept = [pictures[path] for path, _ in items if path in pictures]
            if not kept:
                raise DataFileError(f"No readable images are left in the {split} split.")
            images = np.stack([np.asarray(picture) for picture, _ in kept])
            images = images.reshape((*images.shape[:3], channels))
            labels = np.array([label for _, label in kept], "int64")
            decoded[split] = (images, labels)
        return decoded

    def _decode(self, path):
        with Image.open(path) as picture:
            picture.load()
            if picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info:
                picture = picture.convert("RGBA")
                white = Image.new("RGBA", picture.size, (255, 255, 255, 255))
                picture = Image.alpha_composite(white, picture)
            picture = picture.convert(COLOR_MODES[self.color_mode][0])
        if self.image_size is None or picture.size == self.image_size[::-1]:
            return picture
        size = self.image_size[::-1]  # Pillow takes (width, height)
        if self.crop_to_aspect_ratio:
            return ImageOps.fit(picture, size, Image.Resampling.BILINEAR)
        return picture.resize(size, Image.Resampling.BILINEAR)

    def _check_one_size(self, pictures):
        by_size = {}
        for path, (picture, _) in pictures.items():
            by_size.setdefault(picture.size, path)
        if len(by_size) > 1:
            (size_a, path_a), (size_b, path_b) = list(by_size.items())[:2]
            raise DataFileError(
                f"Expected images of one size in {self.folder}. Received "
                f"{size_a[1]}x{size_a[0]} ({path_a.name}) and {size_b[1]}x{size_b[0]} "
                f"({path_b.name}), height x width. Pass image_size=(height, width) "
                "(--image-size H W) to resize them."
            )


def _image_files(root):
    """The images under `root`, with the name of their sub-folder (or `None`)."""
    found = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            parts = path.relative_to(root).parts
            found.append((path, parts[0] if len(parts) > 1 else None))
    labelled = {label is not None for _, label in found}
    if labelled == {True, False}:
        loose = next(path for path, label in found if label is None)
        raise DataFileError(
            f"{root} holds images both in sub-folders (labelled by the folder's name) "
            f"and directly, e.g. {loose.name}. Move the loose images into a sub-folder."
        )
    return found
