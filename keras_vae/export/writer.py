"""Export bundles: a trained VAE's networks as SavedModel and ONNX, verified.

The bundle format (its name, version and file names) is defined in
`keras_vae_inference.bundle`, which reads bundles too. Each export adds the next
integer version to the bundle and keeps the older ones, as TensorFlow Serving
and Triton expect. The new bundle is built beside the target under a temporary
name (older versions hard-linked, not copied) and swapped into place only once
the Keras model, the reloaded SavedModels and onnxruntime agree.
"""

import datetime
import json
import os
import shutil
from pathlib import Path

import numpy as np

from keras_vae import triton
from keras_vae.export.onnx import convert_to_onnx, make_variant, onnx_properties, run_onnx
from keras_vae.export.saved_model import save_savedmodel
from keras_vae.export.signatures import (
    exported_parts,
    manifest_model,
    manifest_sampling,
    model_description,
)
from keras_vae.export.verification import TOLERANCE, verify_parts
from keras_vae.files import (
    check_folder_name,
    exclusive_lock,
    recover_directory,
    remove_stale_temporaries,
    replace_directory,
    temporary_directory_beside,
    write_bytes_atomically,
)
from keras_vae.versions import package_versions
from keras_vae_inference import bundle
from keras_vae_inference.bundle import VARIANTS, BundleError


def export_bundle(
    model,
    directory,
    test_images,
    overwrite=False,
    variants=(),
    metadata=None,
    seed=0,
    tolerance=TOLERANCE,
    explorer=None,
    test_labels=None,
):
    """Exports `model`'s networks as the next version of a bundle.

    A conditional model's decoder takes `z` and `labels`, its encoder
    `images` and `labels`: float32 one-hot rows `[batch, classes]`. A
    two-level model's bundle adds its upper layer's networks and a sampler
    graph (`keras_vae.export.signatures`).

    Args:
        model: a trained `keras_vae.VAE`, `ConditionalVAE` or `HierarchicalVAE`.
        directory: the bundle folder. If it holds a bundle, the export becomes
            its next version; the model must then have the same latent size,
            image shape and likelihood as the versions already there.
        test_images: array `(n, H, W, C)` in [0, 1], used to verify the encoder.
        overwrite: whether to replace an existing bundle and all its versions
            by this export alone, as version 1.
        variants: smaller decoders to add: `"float16"`.
        metadata: dict stored in the version's entry under `"training"`.
        seed: seed of the latent vectors used to verify the decoder.
        tolerance: largest absolute difference accepted between runtimes.
        explorer: `None`, or the browser explorer's data for this version, as
            `keras_vae.explorer_data.explorer_data` makes it.
        test_labels: the labels `(n,)` of `test_images`, for a conditional model.

    Returns:
        The manifest, as a dict.

    Raises:
        ValueError: a bad argument, or a model that cannot join the bundle's
            versions (checked before anything is written).
        BundleError: the existing bundle cannot be read; pass `overwrite=True`.
        ExportVerificationError: a runtime disagrees with Keras beyond `tolerance`.
    """
    directory = Path(directory)
    check_folder_name(directory.name, "bundle folder's name")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise ValueError(f"Expected variants among {list(VARIANTS)}. Received: {unknown}.")
    if explorer is not None and not {"pixels", "codes", "plane"} <= set(explorer):
        raise ValueError(
            "Expected `explorer` to be made by keras_vae.explorer_data.explorer_data. "
            f"Received: a {type(explorer).__name__}."
        )
    test_images = np.asarray(test_images, dtype="float32")
    if test_images.ndim != 4 or test_images.shape[1:] != model.image_shape:
        raise ValueError(
            f"Expected test images of shape (n, {', '.join(map(str, model.image_shape))}). "
            f"Received: {test_images.shape}."
        )
    conditional = model.model_inputs.conditional
    if conditional:
        test_labels = model.one_hot_labels(test_labels, len(test_images))
    elif test_labels is not None:
        raise ValueError(f"{type(model).__name__} is not conditional. Received: test_labels.")
    if explorer is not None and conditional:
        raise ValueError("The browser explorer does not show conditional models yet.")
    # Exports into one folder of bundles take turns, so that each reads the
    # versions the one before it wrote and adds its own.
    directory.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(directory.parent):
        recover_directory(directory)
        previous = None if overwrite else _existing_manifest(directory, model)
        remove_stale_temporaries(directory)
        work = temporary_directory_beside(directory)
        try:
            if previous is not None:
                # Hard links: the older versions' files are never written again.
                shutil.copytree(directory, work, copy_function=os.link, dirs_exist_ok=True)
            manifest = _build(
                model, work, previous, (test_images, test_labels), variants, metadata, seed,
                tolerance, explorer,
            )  # fmt: skip
            replace_directory(work, directory)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    return manifest


def _existing_manifest(directory, model):
    """The manifest of the bundle at `directory`, if any, checked to accept `model`."""
    if not directory.exists():
        return None
    try:
        manifest = bundle.verify_bundle(directory)
    except BundleError as error:
        raise BundleError(
            f"{error} To replace {directory} and its versions, pass overwrite=True (--overwrite)."
        ) from None
    theirs, ours = manifest.get("model"), manifest_model(model)
    if theirs != ours:
        raise ValueError(
            f"Expected a model with {theirs}, like the versions already in {directory}, "
            f"since servers expect every version of a model to take the same inputs. "
            f"Received: {ours}. Export it under another name, or pass overwrite=True "
            "(--overwrite) to replace the bundle."
        )
    return manifest


def _build(model, work, previous, test_set, variants, metadata, seed, tolerance, explorer):
    """Writes the new version's files into `work`, verifies them and writes the manifest.

    Returns:
        The manifest, as a dict.
    """
    version = previous["latest_version"] + 1 if previous else 1
    description, parts = model_description(model), exported_parts(model)
    packages = package_versions(
        "keras-vae", "keras", "tensorflow", "tf2onnx", "onnx", "onnxruntime"
    )
    for name, part in parts.items():
        properties = onnx_properties(
            name, description, part.signature, metadata, packages["keras-vae"], version
        )
        _write_part(work, name, version, part, properties)
    decoder_feeds, parity = verify_parts(model, work, version, parts, test_set, seed, tolerance)
    reference = run_onnx(work / bundle.onnx_file("decoder", version), decoder_feeds)[bundle.IMAGE]
    entry = {
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "model": {"name": model.name, "parameters": description["parameters"]},
        "onnx": {name: bundle.onnx_file(name, version) for name in parts},
        "savedmodel": {name: bundle.savedmodel_dir(name, version) for name in parts},
        "variants": {
            name: make_variant(name, work, version, decoder_feeds, reference) for name in variants
        },
        "explorer": None if explorer is None else bundle.explorer_file(version),
        "parity": parity,
        "training": metadata or {},
        "packages": packages,
    }
    if explorer is not None:
        write_bytes_atomically(work / bundle.explorer_file(version), json.dumps(explorer).encode())
    return _write_manifest(work, previous, version, model, parts, entry)


def _write_part(work, name, version, part, properties):
    """Writes one graph as SavedModel, ONNX file and Triton configs."""
    save_savedmodel(part.variables, part.function, work / bundle.savedmodel_dir(name, version))
    convert_to_onnx(
        part.function,
        work / bundle.onnx_file(name, version),
        outputs=[output["name"] for output in part.signature["outputs"]],
        properties=properties,
        opset=part.opset,
    )
    for backend, path in (
        ("onnxruntime", bundle.triton_config(name)),
        ("python", bundle.triton_python_config(name)),
    ):
        config = triton.model_config(
            name, part.signature["inputs"], part.signature["outputs"],
            description=properties["keras_vae.summary"], backend=backend,
        )  # fmt: skip
        (work / path).parent.mkdir(exist_ok=True)
        write_bytes_atomically(work / path, config.encode())
    write_bytes_atomically(
        work / bundle.triton_python_model(name, version), triton.PYTHON_MODEL.read_bytes()
    )


def _write_manifest(work, previous, version, model, parts, entry):
    """Writes the manifest: the model, its parts and their signatures, how to sample,
    every version, every file's hash."""
    manifest = {
        "format": bundle.FORMAT,
        "format_version": bundle.FORMAT_VERSION,
        "model": manifest_model(model),
        "parts": list(parts),
        **{name: part.signature for name, part in parts.items()},
        "sampling": manifest_sampling(model),
        "onnx": {
            "opset": {name: part.opset for name, part in parts.items()},
            "converter": "tf2onnx",
        },
        "latest_version": version,
        "versions": {**(previous["versions"] if previous else {}), str(version): entry},
    }
    manifest["files"] = {
        str(path.relative_to(work)): {"sha256": bundle.sha256(path), "bytes": path.stat().st_size}
        for path in sorted(work.rglob("*"))
        if path.is_file() and path.name != bundle.MANIFEST
    }
    write_bytes_atomically(work / bundle.MANIFEST, json.dumps(manifest, indent=2).encode())
    return manifest
