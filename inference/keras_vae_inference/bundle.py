"""The export bundle format: its name, version, file names, and reading its manifest.

`keras_vae.export` writes bundles with these names and this package reads them;
both go through this module, which imports neither TensorFlow nor Keras. A
bundle is a folder that is at once a TensorFlow Serving model base per part and
a Triton model repository; each export adds the next integer version:

    manifest.json                 format, shapes, names, the versions, sha256 of every file
    decoder/config.pbtxt          Triton model configuration (onnxruntime backend)
    decoder/configs/python.pbtxt  the same for Triton's python backend
                                  (tritonserver --model-config-name=python)
    decoder/<version>/model.onnx  z [batch, latent_dim] -> image [batch, H, W, C]
    decoder/<version>/model.py    the python backend's model: model.onnx in onnxruntime
    decoder/<version>/model.float16.onnx   optional smaller decoder
    decoder/<version>/explorer.json   optional: test images, their codes and a latent plane
                                  for the browser explorer (examples/web)
    decoder/<version>/saved_model.pb, variables/   the decoder as a TensorFlow SavedModel
    encoder/config.pbtxt, encoder/configs/python.pbtxt
    encoder/<version>/model.onnx  images [batch, H, W, C] -> mean, log_var [batch, latent_dim]
    encoder/<version>/model.py, saved_model.pb, variables/

A two-level model's bundle has three parts more, in the same layout: its
decoder and encoder then work on z1, `top_decoder` maps z2 to the mean and
log_var of p(z1|z2), `top_encoder` z1 to those of q(z2|z1), and `sampler` draws
seed [batch] int64 -> image, z (z1) and z2 inside the graph. The manifest lists
a bundle's parts (`parts`) and says how to sample (`sampling`).
"""

import hashlib
import json
from pathlib import Path

FORMAT = "keras-vae-bundle"
# Raised whenever a reader of the previous version could misread a bundle.
# Version 3: the manifest lists the parts, says how to sample, and gives each
# part's opset; a two-level model's bundle has five parts.
FORMAT_VERSION = 3
MANIFEST = "manifest.json"
# The parts every bundle has; `parts` reads a bundle's own list.
CORE_PARTS = ("decoder", "encoder")
ALL_PARTS = (*CORE_PARTS, "top_decoder", "top_encoder", "sampler")
SIGNATURE = "serving_default"
TRITON_CONFIG = "config.pbtxt"
# Triton loads <model>/configs/<name>.pbtxt instead of config.pbtxt when started
# with --model-config-name=<name>.
TRITON_PYTHON_CONFIG_NAME = "python"

# The tensors of a bundle's graphs. The export names them so, the Python readers
# (ExportedVAE, keras-vae-serve) look them up so, and the manifest's signatures
# list them for every other reader (Triton, the Node and browser examples).
LATENT = "z"  # the decoder's input: latent vectors [batch, latent_dim]
LABELS = "labels"  # a conditional model's second input: one-hot rows [batch, classes]
IMAGE = "image"  # the decoder's output: the mean image [batch, H, W, C]
IMAGES = "images"  # the encoder's input [batch, H, W, C]
MEAN = "mean"  # the encoder's outputs, the posterior's mean and log-variance
LOG_VAR = "log_var"
SEED = "seed"  # a two-level sampler's input: int64 seeds [batch]
SEED_RANGE = (0, 2**63 - 1)  # the seeds every sampler takes: non-negative int64
TOP_LATENT = "z2"  # its upper code, an output beside the image and z1


class BundleError(RuntimeError):
    """An export bundle is missing, incomplete, tampered with or of another format."""


def savedmodel_dir(part, version):
    """The folder of one version of a part (`"decoder"` or `"encoder"`), relative to the bundle.

    It holds the part's TensorFlow SavedModel and, as Triton's version folder, its ONNX file.
    """
    return f"{part}/{version}"


def onnx_file(part, version):
    """The ONNX file of one version of a part, relative to the bundle."""
    return f"{savedmodel_dir(part, version)}/model.onnx"


def explorer_file(version):
    """The browser explorer's data of one version, relative to the bundle.

    It lies in the decoder's version folder, where TensorFlow Serving and Triton
    ignore it; a top-level folder would be taken for a model by Triton.
    """
    return f"{savedmodel_dir('decoder', version)}/explorer.json"


# The smaller decoders an export may add. int8 was dropped: onnxruntime has no
# int8 ConvTranspose, so it ran no faster and was 2-7e-2 off (docs/benchmarks.md
# of 2026-11-22).
VARIANTS = ("float16",)


def variant_file(variant, version):
    """The ONNX file of a smaller decoder variant (e.g. `"float16"`) of one version."""
    return f"{savedmodel_dir('decoder', version)}/model.{variant}.onnx"


def triton_config(part):
    """The Triton model configuration of a part, relative to the bundle."""
    return f"{part}/{TRITON_CONFIG}"


def triton_python_config(part):
    """A part's Triton configuration for the python backend, relative to the bundle."""
    return f"{part}/configs/{TRITON_PYTHON_CONFIG_NAME}.pbtxt"


def triton_python_model(part, version):
    """The python backend's `model.py` of one version of a part, relative to the bundle."""
    return f"{savedmodel_dir(part, version)}/model.py"


def version_entry(directory, manifest, version=None):
    """One version's entry of a manifest.

    Args:
        directory: the bundle folder (for messages).
        manifest: its manifest, from `read_manifest`.
        version: an integer version, or `None` for the latest.

    Returns:
        A tuple `(version, entry)`: the integer version and its dict.

    Raises:
        BundleError: the bundle has no such version.
    """
    versions = manifest.get("versions")
    if not isinstance(versions, dict) or not versions:
        raise BundleError(f"The manifest of {directory} lists no versions. Export the model again.")
    if version is None:
        version = manifest.get("latest_version")
    if isinstance(version, bool) or not isinstance(version, int) or str(version) not in versions:
        raise BundleError(
            f"Expected a version of {directory} among {sorted(versions, key=int)}. "
            f"Received: {version!r}."
        )
    return version, versions[str(version)]


def parts(directory, manifest):
    """The parts of a bundle, as its manifest lists them.

    Args:
        directory: the bundle folder (for messages).
        manifest: its manifest, from `read_manifest`.

    Returns:
        A tuple of part names, the decoder and encoder first.

    Raises:
        BundleError: the list is missing or names parts this package does not know.
    """
    names = manifest.get("parts")
    if (
        not isinstance(names, list)
        or tuple(names[:2]) != CORE_PARTS
        or not set(names) <= set(ALL_PARTS)
        or len(set(names)) != len(names)
    ):
        raise BundleError(
            f"Expected the manifest of {directory} to list its parts, {list(CORE_PARTS)} "
            f"first, among {list(ALL_PARTS)}. Received: {names!r}. Export the model again."
        )
    return tuple(names)


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
