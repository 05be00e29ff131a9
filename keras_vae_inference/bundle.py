"""The export bundle format: its name, version, file names, and reading its manifest.

`keras_vae.export` writes bundles with these names and this package reads them;
both go through this module, which imports neither TensorFlow nor Keras. A
bundle is a folder:

    manifest.json     format, version, shapes, names, parity figures, sha256 of every file
    decoder.onnx      z [batch, latent_dim] -> image [batch, H, W, C]
    encoder.onnx      images [batch, H, W, C] -> mean, log_var [batch, latent_dim]
    decoder/1/        the decoder as a TensorFlow SavedModel (TF Serving's layout)
    encoder/1/        the encoder as a TensorFlow SavedModel
"""

import hashlib
import json
from pathlib import Path

FORMAT = "keras-vae-bundle"
# Raised whenever a reader of the previous version could misread a bundle.
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PARTS = ("decoder", "encoder")
SAVEDMODEL_VERSION = "1"
SIGNATURE = "serving_default"


class BundleError(RuntimeError):
    """An export bundle is missing, incomplete, tampered with or of another format."""


def onnx_file(part):
    """The ONNX file name of a part (`"decoder"` or `"encoder"`)."""
    return f"{part}.onnx"


def variant_file(variant):
    """The ONNX file name of a smaller decoder variant, e.g. `"float16"`."""
    return f"decoder.{variant}.onnx"


def savedmodel_dir(part):
    """The SavedModel folder of a part, relative to the bundle."""
    return f"{part}/{SAVEDMODEL_VERSION}"


def sha256(path):
    """Returns the hex SHA-256 digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(directory):
    """Reads a bundle's manifest and checks its format and version.

    Args:
        directory: the bundle folder.

    Returns:
        The manifest, as a dict.

    Raises:
        BundleError: no manifest, not JSON, another format, or a format version
            this package does not know.
    """
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise BundleError(f"No {MANIFEST} in {directory}: not an export bundle.")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BundleError(f"{path} is not valid JSON ({error}). Export the model again.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{path} is not a {FORMAT} manifest.")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"{path} is a {FORMAT} of format version {version!r}; this keras-vae reads "
            f"version {FORMAT_VERSION}. Export the model again with this keras-vae, or "
            "install the keras-vae that wrote it."
        )
    return manifest


def check_files(directory, manifest, names):
    """Checks that files of a bundle exist and match the sha256 its manifest records.

    Args:
        directory: the bundle folder.
        manifest: its manifest, from `read_manifest`.
        names: file paths relative to the bundle.

    Raises:
        BundleError: a file is not listed, missing, or changed since export.
    """
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise BundleError(f"The manifest of {directory} has no file table. Export the model again.")
    for name in names:
        expected = files.get(name)
        path = Path(directory) / name
        if expected is None:
            raise BundleError(f"The manifest of {directory} does not list {name}.")
        if not path.is_file():
            raise BundleError(f"{path} is missing from the bundle.")
        if sha256(path) != expected["sha256"]:
            raise BundleError(
                f"{path} does not match the sha256 in the manifest: the file was changed "
                "or corrupted after export. Export the model again."
            )


def verify_bundle(directory):
    """Checks every file of a bundle against the sha256 recorded in its manifest.

    Args:
        directory: the bundle folder.

    Returns:
        The manifest, as a dict.

    Raises:
        BundleError: a file is missing or differs from what was exported.
    """
    manifest = read_manifest(directory)
    check_files(directory, manifest, sorted(manifest.get("files") or ()))
    return manifest
