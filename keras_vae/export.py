"""Export bundles: a trained VAE's decoder and encoder as SavedModel and ONNX, verified.

The bundle format (its name, version and file names) is defined in
`keras_vae_inference.bundle`, which reads bundles too. Each export adds the next
integer version to the bundle and keeps the older ones, as TensorFlow Serving
and Triton expect. The new bundle is built beside the target under a temporary
name (older versions hard-linked, not copied) and swapped into place only once
the Keras model, the reloaded SavedModels and onnxruntime agree.
"""

import datetime
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import tensorflow as tf
import tf2onnx

from keras_vae import triton
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

# Opset 17 is the newest that tf2onnx 1.17 converts this model to and that
# onnxruntime-web and older runtimes still accept.
OPSET = 17
TOLERANCE = 1e-4
_RANDOM_OPS = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
               "Multinomial", "Bernoulli"}  # fmt: skip


class ExportVerificationError(RuntimeError):
    """The exported graphs do not reproduce the Keras model closely enough."""


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
    """Exports `model`'s decoder and encoder as the next version of a bundle.

    A conditional model's decoder takes `z` and `labels`, its encoder
    `images` and `labels`: float32 one-hot rows `[batch, num_classes]`.

    Args:
        model: a trained `keras_vae.VAE` or `keras_vae.ConditionalVAE`.
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
    conditional = model.num_classes is not None
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
    description = _model_description(model)
    shared = ("latent_dim", "image_shape", "likelihood", "num_classes")
    theirs = {key: (manifest.get("model") or {}).get(key) for key in shared}
    ours = {key: description.get(key) for key in shared}
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
    description, signatures = _model_description(model), _signatures(model)
    packages = package_versions(
        "keras-vae", "keras", "tensorflow", "tf2onnx", "onnx", "onnxruntime"
    )
    functions = {"decoder": decode_function(model), "encoder": encode_function(model)}
    for part, function in functions.items():
        properties = _onnx_properties(
            part, description, signatures[part], metadata, packages["keras-vae"], version
        )
        _write_part(work, part, version, function, getattr(model, part), signatures[part],
                    properties)  # fmt: skip
    decoder_feeds, parity = _verify_parts(model, work, version, functions, test_set, seed,
                                          tolerance)  # fmt: skip
    reference = _run_onnx(work / bundle.onnx_file("decoder", version), decoder_feeds)["image"]
    entry = {
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "model": {"name": model.name, "parameters": description["parameters"]},
        "onnx": {part: bundle.onnx_file(part, version) for part in bundle.PARTS},
        "savedmodel": {part: bundle.savedmodel_dir(part, version) for part in bundle.PARTS},
        "variants": {
            name: _make_variant(name, work, version, decoder_feeds, reference) for name in variants
        },
        "explorer": None if explorer is None else bundle.explorer_file(version),
        "parity": parity,
        "training": metadata or {},
        "packages": packages,
    }
    if explorer is not None:
        write_bytes_atomically(work / bundle.explorer_file(version), json.dumps(explorer).encode())
    return _write_manifest(work, previous, version, description, signatures, entry)


def _write_part(work, part, version, function, network, signature, properties):
    """Writes one network as SavedModel, ONNX file and Triton config."""
    _save_savedmodel(network, function, work / bundle.savedmodel_dir(part, version))
    _convert_to_onnx(
        function,
        work / bundle.onnx_file(part, version),
        outputs=[output["name"] for output in signature["outputs"]],
        properties=properties,
    )
    for backend, path in (
        ("onnxruntime", bundle.triton_config(part)),
        ("python", bundle.triton_python_config(part)),
    ):
        config = triton.model_config(
            part, signature["inputs"], signature["outputs"],
            description=properties["keras_vae.summary"], backend=backend,
        )  # fmt: skip
        (work / path).parent.mkdir(exist_ok=True)
        write_bytes_atomically(work / path, config.encode())
    write_bytes_atomically(
        work / bundle.triton_python_model(part, version), triton.PYTHON_MODEL.read_bytes()
    )


def _verify_parts(model, work, version, functions, test_set, seed, tolerance):
    """Runs both parts in every runtime against Keras on latent vectors and test images.

    Returns:
        The decoder's feeds, and the parity record: each runtime's largest difference.

    Raises:
        ExportVerificationError: a runtime differs by more than `tolerance`.
    """
    z = np.random.default_rng(seed).standard_normal((64, model.latent_dim)).astype("float32")
    test_images, test_labels = test_set
    feeds = {"decoder": {"z": z}, "encoder": {"images": test_images}}
    if model.num_classes is not None:
        feeds["decoder"]["labels"] = model.one_hot_labels(
            np.arange(len(z)) % model.num_classes, len(z)
        )
        feeds["encoder"]["labels"] = test_labels
    parity = {"tolerance": tolerance}
    for part in bundle.PARTS:
        parity[part] = _compare(functions[part], work, part, version, feeds[part])
        worst = max(parity[part].values())
        if not worst <= tolerance:
            raise ExportVerificationError(
                f"The exported {part} differs from the Keras model by up to {worst:.3g} "
                f"(tolerance {tolerance:g}): {parity[part]}. Nothing was written."
            )
    parity["decoder_inputs"] = f"{len(z)} latent vectors from N(0, I), seed {seed}"
    parity["encoder_inputs"] = f"{len(test_images)} test images"
    return feeds["decoder"], parity


def _write_manifest(work, previous, version, description, signatures, entry):
    """Writes the manifest: the model, the signatures, every version, every file's hash."""
    manifest = {
        "format": bundle.FORMAT,
        "format_version": bundle.FORMAT_VERSION,
        "model": {
            key: description[key]
            for key in ("latent_dim", "image_shape", "likelihood", "num_classes")
            if key in description
        },
        **signatures,
        "onnx": {"opset": OPSET, "converter": "tf2onnx"},
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


def _model_description(model):
    likelihood = model.likelihood
    return {
        "name": model.name,
        "latent_dim": model.latent_dim,
        "image_shape": list(model.image_shape),
        "likelihood": likelihood.distribution,
        **({} if model.num_classes is None else {"num_classes": model.num_classes}),
        "parameters": {
            "encoder": model.encoder.count_params(),
            "decoder": model.decoder.count_params(),
        },
    }


def _signatures(model):
    """The manifest's `decoder` and `encoder` entries: files, inputs and outputs."""
    latent, images = ["batch", model.latent_dim], ["batch", *model.image_shape]
    mean_meaning = f"mean of p(x|z): {model.likelihood.mean_meaning}"
    labels = []
    if model.num_classes is not None:
        labels = [
            _spec(
                "labels",
                ["batch", model.num_classes],
                [0.0, 1.0],
                "one-hot class, or weights of classes that mix them",
            )  # fmt: skip
        ]
    return {
        part: {
            "signature": bundle.SIGNATURE,
            "triton_config": bundle.triton_config(part),
            "triton_python_config": bundle.triton_python_config(part),
            "inputs": inputs,
            "outputs": outputs,
        }
        for part, inputs, outputs in (
            (
                "decoder",
                [_spec("z", latent, "any real; the prior is N(0, I)"), *labels],
                [_spec("image", images, [0.0, 1.0], mean_meaning)],
            ),
            (
                "encoder",
                [_spec("images", images, [0.0, 1.0]), *labels],
                [
                    _spec("mean", latent, "any real", "posterior mean"),
                    _spec("log_var", latent, "any real", "posterior log-variance"),
                ],
            ),
        )
    }


def decode_function(model):
    """A `tf.function` from `z` to the decoder's mean image, with a dynamic batch.

    Args:
        model: a `keras_vae.VAE`.

    Returns:
        A `tf.function` taking `z` (float32 `[batch, latent_dim]`), and for a
        conditional model `labels` (float32 `[batch, num_classes]`), and
        returning `{"image": float32 [batch, H, W, C]}`.
    """
    z = tf.TensorSpec([None, model.latent_dim], tf.float32, name="z")
    if model.num_classes is None:

        @tf.function(input_signature=[z])
        def decode(z):
            return {"image": model.likelihood(model.decoder(z, training=False))}

        return decode

    @tf.function(input_signature=[z, _labels_spec(model)])
    def decode_conditional(z, labels):
        return {"image": model.likelihood(model.decoder([z, labels], training=False))}

    return decode_conditional


def _labels_spec(model):
    return tf.TensorSpec([None, model.num_classes], tf.float32, name="labels")


def encode_function(model):
    """A `tf.function` from images to the posterior mean and log-variance.

    Args:
        model: a `keras_vae.VAE`.

    Returns:
        A `tf.function` taking `images` (float32 `[batch, H, W, C]`) and returning
        `{"mean": ..., "log_var": ...}`, each float32 `[batch, latent_dim]`.
    """
    spec = tf.TensorSpec([None, *model.image_shape], tf.float32, name="images")
    if model.num_classes is None:

        @tf.function(input_signature=[spec])
        def encode(images):
            mean, log_var = model.encoder(images, training=False)
            return {"mean": mean, "log_var": log_var}

        return encode

    @tf.function(input_signature=[spec, _labels_spec(model)])
    def encode_conditional(images, labels):
        mean, log_var = model.encoder([images, labels], training=False)
        return {"mean": mean, "log_var": log_var}

    return encode_conditional


def _save_savedmodel(network, function, path):
    # tf.saved_model.save with an explicit signature stores each weight once,
    # unlike Keras' export(format="tf_saved_model"), and keeps our names. The
    # module tracks the network's raw tf.Variables, not the Keras model: with
    # the model as an attribute, TensorFlow's session-based loaders (TF
    # Serving, saved_model_cli run) cannot find its variables (tensorflow#72963).
    module = tf.Module()
    module.tracked_variables = [variable.value for variable in network.variables]
    module.serve = function
    tf.saved_model.save(module, str(path), signatures={bundle.SIGNATURE: function})


def _convert_to_onnx(function, path, outputs, properties):
    """Converts a `tf.function` to ONNX with its outputs in the order given.

    Args:
        function: a `tf.function` with an input signature.
        path: the ONNX file to write.
        outputs: the output names, in the order consumers will see them.
        properties: dict of strings stored as the model's `metadata_props`,
            with `doc_string` as its summary.
    """
    proto, _ = tf2onnx.convert.from_function(
        function, input_signature=function.input_signature, opset=OPSET
    )
    expected = ([spec.name for spec in function.input_signature], sorted(outputs))
    received = ([v.name for v in proto.graph.input], sorted(v.name for v in proto.graph.output))
    if received != expected:
        raise ExportVerificationError(
            f"tf2onnx named the inputs and outputs {received}; expected {expected}."
        )
    # tf2onnx orders outputs by name; `session.run(None, ...)` returns them in
    # graph order, so it must be the documented one (mean before log_var).
    ordered = sorted(proto.graph.output, key=lambda value: outputs.index(value.name))
    del proto.graph.output[:]
    proto.graph.output.extend(ordered)
    onnx.helper.set_model_props(proto, properties)
    proto.doc_string = properties["keras_vae.summary"]
    # tf2onnx names each unknown dimension separately; consumers want one `batch`.
    for value in [*proto.graph.input, *proto.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    random_ops = sorted({node.op_type for node in proto.graph.node} & _RANDOM_OPS)
    if random_ops:
        raise ExportVerificationError(f"The ONNX graph contains random ops {random_ops}.")
    onnx.checker.check_model(proto, full_check=True)
    onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    write_bytes_atomically(path, proto.SerializeToString())


def _compare(function, work, part, version, feeds):
    """Max absolute differences between Keras, the reloaded SavedModel (in TensorFlow's
    object loader and in its session loader, TF Serving's) and onnxruntime."""
    keras_out = {k: v.numpy() for k, v in function(**feeds).items()}
    path = str(work / bundle.savedmodel_dir(part, version))
    signature = tf.saved_model.load(path).signatures[bundle.SIGNATURE]
    saved_out = {
        k: v.numpy() for k, v in signature(**{k: tf.constant(v) for k, v in feeds.items()}).items()
    }
    onnx_out = _run_onnx(work / bundle.onnx_file(part, version), feeds)

    def largest(a, b):
        return float(max(np.max(np.abs(a[key] - b[key])) for key in a))

    return {
        "keras_vs_savedmodel": largest(keras_out, saved_out),
        "keras_vs_savedmodel_session": largest(keras_out, _run_in_session(path, feeds)),
        "keras_vs_onnxruntime": largest(keras_out, onnx_out),
        "savedmodel_vs_onnxruntime": largest(saved_out, onnx_out),
    }


def _without_deprecation_notice(function, *args):
    """Calls a TF1 function without TensorFlow's notice that TF2 deprecates it:
    here it is the point, since TensorFlow Serving loads models that way."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return function(*args)
    finally:
        logger.setLevel(level)


def _run_in_session(path, feeds):
    """Runs a SavedModel's signature the way TensorFlow Serving loads it: a TF1 session."""
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        try:
            meta_graph = _without_deprecation_notice(
                tf.compat.v1.saved_model.loader.load, session, ["serve"], path
            )
            signature = meta_graph.signature_def[bundle.SIGNATURE]
            return session.run(
                {name: info.name for name, info in signature.outputs.items()},
                {signature.inputs[name].name: value for name, value in feeds.items()},
            )
        except tf.errors.OpError as error:
            raise ExportVerificationError(
                f"The SavedModel {path} does not run in TensorFlow's session loader, the one "
                f"TensorFlow Serving uses: {error.message.splitlines()[0]} Nothing was written."
            ) from None


def _run_onnx(path, feeds):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def _make_variant(name, work, version, feeds, reference):
    """Writes a smaller decoder; returns its file, size and error against float32."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    path = work / bundle.variant_file(name, version)
    source = onnx.load(str(work / bundle.onnx_file("decoder", version)))
    # Inputs and outputs stay float32, so consumers call it like the original.
    # The converter appends the input's Cast last; strict consumers need the
    # nodes in topological order.
    converted = convert_float_to_float16(source, keep_io_types=True)
    _sort_topologically(converted.graph)
    write_bytes_atomically(path, converted.SerializeToString())
    onnx.checker.check_model(str(path), full_check=True)
    output = _run_onnx(path, feeds)["image"]
    return {
        "file": bundle.variant_file(name, version),
        "bytes": path.stat().st_size,
        "max_abs_error_vs_float32": float(np.max(np.abs(output - reference))),
    }


def _sort_topologically(graph):
    """Reorders a graph's nodes so that each comes after the nodes it reads from."""
    available = {"", *(v.name for v in graph.input), *(t.name for t in graph.initializer)}
    remaining, ordered = list(graph.node), []
    while remaining:
        ready = [node for node in remaining if all(name in available for name in node.input)]
        if not ready:
            raise ExportVerificationError("The ONNX graph has a cycle or an undefined input.")
        for node in ready:
            available.update(node.output)
        ordered += ready
        placed = {id(node) for node in ready}
        remaining = [node for node in remaining if id(node) not in placed]
    del graph.node[:]
    graph.node.extend(ordered)


def _onnx_properties(part, description, signature, metadata, package_version, version):
    """The manifest's essentials as ONNX `metadata_props`, so a lone file describes itself."""

    def shapes(values):
        return ", ".join(f"{v['name']} {v['dtype']} {v['shape']}" for v in values)

    summary = (
        f"keras-vae {part} of {description['name']}: {shapes(signature['inputs'])} -> "
        f"{shapes(signature['outputs'])}; "
        + "; ".join(f"{v['name']}: {v['meaning']}" for v in signature["outputs"])
        + "."
    )
    return {
        "keras_vae.format": bundle.FORMAT,
        "keras_vae.format_version": str(bundle.FORMAT_VERSION),
        "keras_vae.part": part,
        "keras_vae.model_version": str(version),
        "keras_vae.summary": summary,
        "keras_vae.latent_dim": str(description["latent_dim"]),
        "keras_vae.image_shape": json.dumps(description["image_shape"]),
        "keras_vae.likelihood": description["likelihood"],
        "keras_vae.inputs": json.dumps(signature["inputs"]),
        "keras_vae.outputs": json.dumps(signature["outputs"]),
        "keras_vae.training_dataset": str((metadata or {}).get("dataset", "unknown")),
        "keras_vae.version": str(package_version),
    }


def _spec(name, shape, value_range, meaning=None):
    spec = {"name": name, "shape": shape, "dtype": "float32", "range": value_range}
    if meaning:
        spec["meaning"] = meaning
    return spec
