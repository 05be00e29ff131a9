import json
import os
import threading

import keras
import numpy as np
import onnx
import onnxruntime
import pytest
import tensorflow as tf

from keras_vae import VAE, architectures
from keras_vae.export import ExportVerificationError, export_bundle, writer
from keras_vae.export.onnx import RANDOM_OPS
from keras_vae_inference import BundleError, ExportedVAE, bundle, sha256, verify_bundle


def keras_decode(vae, z):
    return vae.likelihood(vae.decoder(z, training=False)).numpy()


def latest(manifest):
    return manifest["versions"][str(manifest["latest_version"])]


def test_bundle_layout_and_manifest(exported_bundle, small_trained_vae):
    directory, manifest = exported_bundle
    vae, _ = small_trained_vae
    assert json.loads((directory / "manifest.json").read_text()) == manifest
    assert manifest["latest_version"] == 1 and list(manifest["versions"]) == ["1"]
    for part in ("decoder", "encoder"):
        # TensorFlow Serving's model base and Triton's model repository at once.
        assert (directory / part / "1" / "saved_model.pb").is_file()
        assert (directory / part / "1" / "model.onnx").is_file()
        assert (directory / part / "config.pbtxt").is_file()
        assert latest(manifest)["onnx"][part] == f"{part}/1/model.onnx"
    assert manifest["model"]["latent_dim"] == 3
    assert manifest["model"]["image_shape"] == [12, 12, 1]
    assert manifest["model"]["likelihood"] == "bernoulli"
    assert manifest["decoder"]["inputs"] == [
        {"name": "z", "shape": ["batch", 3], "dtype": "float32",
         "range": "any real; the prior is N(0, I)"}
    ]  # fmt: skip
    assert manifest["decoder"]["outputs"][0]["range"] == [0.0, 1.0]
    assert [o["name"] for o in manifest["encoder"]["outputs"]] == ["mean", "log_var"]
    assert manifest["parts"] == ["decoder", "encoder"]
    assert manifest["onnx"]["opset"] == {"decoder": 17, "encoder": 17}
    assert manifest["sampling"]["graph"] is None
    assert (manifest["format"], manifest["format_version"]) == (
        bundle.FORMAT,
        bundle.FORMAT_VERSION,
    )
    assert "Bernoulli probabilities" in manifest["decoder"]["outputs"][0]["meaning"]
    assert latest(manifest)["training"] == {"dataset": "toy"}
    assert set(latest(manifest)["packages"]) >= {"keras", "tensorflow", "tf2onnx", "onnxruntime"}
    on_disk = {
        str(p.relative_to(directory))
        for p in directory.rglob("*")
        if p.is_file() and p.name != "manifest.json"
    }
    assert set(manifest["files"]) == on_disk
    for name, info in manifest["files"].items():
        assert info["sha256"] == sha256(directory / name)
        assert info["bytes"] == (directory / name).stat().st_size
    assert not [p for p in directory.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("part", ["decoder", "encoder"])
def test_onnx_files_are_valid_deterministic_and_batch_dynamic(
    exported_bundle, small_trained_vae, part
):
    directory, manifest = exported_bundle
    model = onnx.load(str(directory / latest(manifest)["onnx"][part]))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == manifest["onnx"]["opset"][part]
    assert not [n for n in model.graph.node if "Random" in n.op_type]
    for value in [*model.graph.input, *model.graph.output]:
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert [v.name for v in model.graph.input] == [i["name"] for i in manifest[part]["inputs"]]
    # The network convolves its 2x2 maps as one matrix product, the others with
    # TensorFlow's kernels: both forms reach the ONNX file.
    network = getattr(small_trained_vae[0], part)
    dense = [layer for layer in network.layers if isinstance(layer, keras.layers.Dense)]
    matmul = [layer for layer in network.layers if type(layer).__name__.startswith("Matmul")]
    op_types = [node.op_type for node in model.graph.node]
    assert matmul and op_types.count("MatMul") == len(dense) + len(matmul)
    assert ("ConvTranspose" if part == "decoder" else "Conv") in op_types


def test_parity_figures_are_recorded_and_reproduce(exported_bundle, small_trained_vae):
    directory, manifest = exported_bundle
    vae, images = small_trained_vae
    for part in ("decoder", "encoder"):
        figures = latest(manifest)["parity"][part]
        assert set(figures) == {
            "keras_vs_savedmodel", "keras_vs_savedmodel_session", "keras_vs_onnxruntime",
            "savedmodel_vs_onnxruntime",
        }  # fmt: skip
        assert max(figures.values()) <= latest(manifest)["parity"]["tolerance"] == 1e-4
    # Independently: other latent vectors, batch sizes the export never saw.
    session = onnxruntime.InferenceSession(str(directory / "decoder" / "1" / "model.onnx"))
    serving = tf.saved_model.load(str(directory / "decoder" / "1")).signatures["serving_default"]
    for batch in (1, 7):
        z = np.random.default_rng(batch).standard_normal((batch, 3)).astype("float32")
        expected = keras_decode(vae, z)
        np.testing.assert_allclose(session.run(["image"], {"z": z})[0], expected, atol=1e-5)
        np.testing.assert_allclose(serving(z=tf.constant(z))["image"].numpy(), expected, atol=1e-6)
    encoder = onnxruntime.InferenceSession(str(directory / "encoder" / "1" / "model.onnx"))
    mean, log_var = encoder.run(["mean", "log_var"], {"images": images[40:45]})
    expected_mean, expected_log_var = vae.encoder(images[40:45])
    np.testing.assert_allclose(mean, expected_mean, atol=1e-5)
    np.testing.assert_allclose(log_var, expected_log_var, atol=1e-5)


def test_variants_record_their_size_and_error(exported_bundle):
    directory, manifest = exported_bundle
    variants = latest(manifest)["variants"]
    assert list(variants) == ["float16"]
    # Valid ONNX for strict consumers too (ONNX's reference evaluator).
    onnx.checker.check_model(str(directory / variants["float16"]["file"]), True)
    z = np.random.default_rng(0).standard_normal((64, 3)).astype("float32")
    decoder = onnxruntime.InferenceSession(str(directory / latest(manifest)["onnx"]["decoder"]))
    reference = decoder.run(None, {"z": z})[0]
    for name in variants:
        info = variants[name]
        path = directory / info["file"]
        assert info["bytes"] == path.stat().st_size
        output = onnxruntime.InferenceSession(str(path)).run(None, {"z": z})[0]
        assert output.dtype == np.float32
        np.testing.assert_allclose(
            np.max(np.abs(output - reference)), info["max_abs_error_vs_float32"], rtol=1e-5
        )
    assert variants["float16"]["max_abs_error_vs_float32"] < 5e-3


def file_contents(directory):
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


@pytest.mark.exports
def test_exporting_again_adds_a_version_and_keeps_the_older_ones(small_trained_vae, tmp_path):
    vae, images = small_trained_vae
    target = tmp_path / "bundle"
    export_bundle(vae, target, images[:8], metadata={"round": 1})
    first = file_contents(target)
    manifest = export_bundle(vae, target, images[:8], variants=("float16",), metadata={"round": 2})
    assert manifest["latest_version"] == 2
    assert {v: e["training"] for v, e in manifest["versions"].items()} == {
        "1": {"round": 1}, "2": {"round": 2}
    }  # fmt: skip
    after = file_contents(target)
    for name, data in first.items():  # version 1 unchanged, byte for byte
        if name.startswith(("decoder/1/", "encoder/1/")):
            assert after[name] == data, name
    assert (target / "decoder" / "2" / "model.float16.onnx").is_file()
    assert not (target / "decoder" / "1" / "model.float16.onnx").exists()
    verify_bundle(target)
    assert ExportedVAE(target).version == 2
    old = ExportedVAE(target, version=1)
    z = np.random.default_rng(3).standard_normal((4, 3))
    np.testing.assert_allclose(old.decode(z), keras_decode(vae, z.astype("float32")), atol=1e-5)
    with pytest.raises(BundleError, match=r"Expected a version of .* among \['1', '2'\]"):
        ExportedVAE(target, version=3)
    export_bundle(vae, target, images[:8], overwrite=True, metadata={"round": 3})
    manifest = json.loads((target / "manifest.json").read_text())
    assert list(manifest["versions"]) == ["1"] and latest(manifest)["training"] == {"round": 3}
    assert not (target / "decoder" / "2").exists()


@pytest.mark.exports
def test_two_exports_at_once_each_add_their_own_version(small_trained_vae, tmp_path, monkeypatch):
    vae, images = small_trained_vae
    target = tmp_path / "bundle"
    export_bundle(vae, target, images[:8], metadata={"round": 1})
    build = writer._build
    second = []

    def build_and_start_another(*args):
        # The first export is past reading the versions: the second starts now.
        if not second:
            second.append(threading.Thread(target=export_bundle, args=(vae, target, images[:8]),
                                           kwargs={"metadata": {"round": 3}}))  # fmt: skip
            second[0].start()
        return build(*args)

    monkeypatch.setattr(writer, "_build", build_and_start_another)
    export_bundle(vae, target, images[:8], metadata={"round": 2})
    second[0].join(timeout=600)
    manifest = verify_bundle(target)
    assert {v: e["training"] for v, e in manifest["versions"].items()} == {
        "1": {"round": 1}, "2": {"round": 2}, "3": {"round": 3}
    }  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


@pytest.mark.exports
def test_a_model_that_cannot_join_the_versions_is_refused(small_trained_vae, tmp_path):
    vae, images = small_trained_vae
    target = tmp_path / "bundle"
    export_bundle(vae, target, images[:8])
    before = file_contents(target)
    shape = (12, 12, 1)
    other = VAE(
        architectures.conv_encoder(shape, 4, filters=(4, 8), hidden_units=(16,)),
        architectures.conv_decoder(shape, 4, filters=(8, 4), start_channels=8),
    )
    other(images[:2])
    with pytest.raises(ValueError, match=r"Expected a model with .*'latent_dim': 3.*Received"):
        export_bundle(other, target, images[:8])
    # A failed verification of version 2 leaves version 1 as it was.
    with pytest.raises(ExportVerificationError, match="Nothing was written"):
        export_bundle(vae, target, images[:8], tolerance=0.0)
    assert file_contents(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_a_folder_that_is_not_a_bundle_is_not_replaced_silently(small_trained_vae, tmp_path):
    vae, images = small_trained_vae
    target = tmp_path / "bundle"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(BundleError, match="No manifest.json .* pass overwrite=True"):
        export_bundle(vae, target, images[:8])
    assert (target / "notes.txt").read_text() == "mine"


def test_failed_verification_leaves_nothing(small_trained_vae, tmp_path):
    vae, images = small_trained_vae
    # No runtime reproduces float32 Keras to the last bit: a zero tolerance must fail.
    with pytest.raises(ExportVerificationError, match="Nothing was written"):
        export_bundle(vae, tmp_path / "strict", images[:8], tolerance=0.0)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments(small_trained_vae, tmp_path):
    vae, images = small_trained_vae
    with pytest.raises(ValueError, match=r"test images of shape \(n, 12, 12, 1\)"):
        export_bundle(vae, tmp_path / "a", images[:, :10])
    with pytest.raises(ValueError, match=r"Expected variants among \['float16'\]"):
        export_bundle(vae, tmp_path / "b", images[:8], variants=("int8",))


@pytest.mark.exports
def test_leftovers_of_killed_exports_are_removed_and_others_kept(small_trained_vae, tmp_path):
    vae, images = small_trained_vae
    dead = tmp_path / ".bundle.tmp-999999999-x"
    dead.mkdir()
    working = tmp_path / f".bundle.tmp-{os.getpid()}-y"
    working.mkdir()
    with pytest.raises(ValueError, match="bundle folder's name"):
        export_bundle(vae, tmp_path / "..", images[:8])
    export_bundle(vae, tmp_path / "bundle", images[:8])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["bundle", working.name])


@pytest.mark.parametrize("part", ["decoder", "encoder"])
def test_savedmodels_load_in_tensorflows_session_loader_and_in_keras(
    exported_bundle, small_trained_vae, part
):
    directory, manifest = exported_bundle
    vae, images = small_trained_vae
    path = str(directory / latest(manifest)["savedmodel"][part])
    if part == "decoder":
        feeds = {"z": np.random.default_rng(1).standard_normal((5, 3)).astype("float32")}
        expected = {"image": vae.decode(feeds["z"])}
    else:
        feeds = {"images": images[:5]}
        expected = dict(zip(("mean", "log_var"), vae.encode(images[:5]), strict=True))
    # The session-based loader TensorFlow Serving uses, in a graph of its own.
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
        signature = meta_graph.signature_def["serving_default"]
        fetched = session.run(
            {name: info.name for name, info in signature.outputs.items()},
            {signature.inputs[name].name: value for name, value in feeds.items()},
        )
    layer = keras.layers.TFSMLayer(path, call_endpoint="serving_default")
    (value,) = feeds.values()
    through_keras = layer(tf.constant(value))
    for name, value in expected.items():
        np.testing.assert_allclose(fetched[name], value, atol=1e-6)
        np.testing.assert_allclose(through_keras[name].numpy(), value, atol=1e-6)
    # One copy of the weights.
    network = vae.decoder if part == "decoder" else vae.encoder
    stored = sum(p.stat().st_size for p in (directory / part / "1" / "variables").iterdir())
    assert stored < 1.5 * 4 * network.count_params() + 4096


def test_onnx_files_describe_themselves_with_outputs_in_the_documented_order(exported_bundle):
    directory, manifest = exported_bundle
    for part in ("decoder", "encoder"):
        model = onnx.load(str(directory / latest(manifest)["onnx"][part]))
        session = onnxruntime.InferenceSession(str(directory / latest(manifest)["onnx"][part]))
        documented = [output["name"] for output in manifest[part]["outputs"]]
        assert [output.name for output in session.get_outputs()] == documented
        properties = {prop.key: prop.value for prop in model.metadata_props}
        assert properties["keras_vae.format"] == manifest["format"]
        assert properties["keras_vae.format_version"] == str(manifest["format_version"])
        assert properties["keras_vae.part"] == part
        assert properties["keras_vae.model_version"] == "1"
        assert int(properties["keras_vae.latent_dim"]) == manifest["model"]["latent_dim"]
        assert json.loads(properties["keras_vae.image_shape"]) == manifest["model"]["image_shape"]
        assert properties["keras_vae.likelihood"] == "bernoulli"
        assert json.loads(properties["keras_vae.outputs"]) == manifest[part]["outputs"]
        assert properties["keras_vae.training_dataset"] == "toy"
        assert model.doc_string == properties["keras_vae.summary"]
    images = np.zeros((2, 12, 12, 1), "float32")
    encoder = onnxruntime.InferenceSession(str(directory / latest(manifest)["onnx"]["encoder"]))
    mean, log_var = encoder.run(None, {"images": images})
    np.testing.assert_array_equal(mean, encoder.run(["mean"], {"images": images})[0])
    np.testing.assert_array_equal(log_var, encoder.run(["log_var"], {"images": images})[0])


@pytest.mark.exports
def test_a_savedmodel_that_tf_serving_could_not_run_is_never_written(
    small_trained_vae, tmp_path, monkeypatch
):
    vae, images = small_trained_vae

    def save_with_the_keras_model_attached(network, function, path):
        # Keras 3 models kept as a tf.Module attribute: TF2's loader copes, the session
        # loader finds no variables (tensorflow#72963).
        module = tf.Module()
        module.network = network
        module.serve = function
        tf.saved_model.save(module, str(path), signatures={"serving_default": function})

    monkeypatch.setattr(writer, "save_savedmodel", save_with_the_keras_model_attached)
    with pytest.raises(ExportVerificationError, match="session loader.*Nothing was written"):
        export_bundle(vae, tmp_path / "bundle", images[:8])
    assert list(tmp_path.iterdir()) == []


def test_keras_export_entry_point_writes_the_verified_bundle(small_trained_vae, tmp_path):
    vae, _ = small_trained_vae
    manifest = vae.export(tmp_path / "bundle")
    assert manifest == verify_bundle(tmp_path / "bundle")
    z = np.random.default_rng(1).normal(size=(5, vae.latent_dim)).astype("float32")
    served = ExportedVAE(tmp_path / "bundle").decode(z)
    np.testing.assert_allclose(served, keras_decode(vae, z), atol=1e-4)
    for part in ("decoder", "encoder"):
        graph = onnx.load(tmp_path / "bundle" / part / "1" / "model.onnx").graph
        assert not {node.op_type for node in graph.node} & RANDOM_OPS


@pytest.mark.parametrize("arguments", [{"format": "onnx"}, {"format": "tf_saved_model"}])
def test_keras_export_formats_that_would_trace_the_sampling_call_are_refused(
    small_trained_vae, tmp_path, arguments
):
    vae, _ = small_trained_vae
    with pytest.raises(ValueError, match=r"model\.decoder\.export"):
        vae.export(tmp_path / "graph", **arguments)
    assert not (tmp_path / "graph").exists()
