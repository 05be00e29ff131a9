import json
import shutil

import pytest

from keras_vae_inference import BundleError, ExportedVAE, verify_bundle


@pytest.fixture
def bundle_copy(exported_bundle, tmp_path):
    directory, _ = exported_bundle
    return shutil.copytree(directory, tmp_path / "bundle")


def test_a_tampered_file_is_detected(bundle_copy):
    verify_bundle(bundle_copy)
    onnx_file = bundle_copy / "decoder" / "1" / "model.onnx"
    data = bytearray(onnx_file.read_bytes())
    data[-100] ^= 0x01
    onnx_file.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="decoder/1/model.onnx does not match the sha256"):
        ExportedVAE(bundle_copy)
    with pytest.raises(BundleError, match="does not match the sha256"):
        verify_bundle(bundle_copy)


def test_a_tampered_savedmodel_is_detected_by_verify_bundle(bundle_copy):
    variables = next((bundle_copy / "encoder" / "1" / "variables").glob("variables.data*"))
    variables.write_bytes(variables.read_bytes()[:-4] + b"\0\0\0\0")
    ExportedVAE(bundle_copy)  # the ONNX files are intact
    with pytest.raises(BundleError, match="encoder/1/variables"):
        verify_bundle(bundle_copy)


def test_missing_or_foreign_bundles(bundle_copy, tmp_path):
    with pytest.raises(BundleError, match="No manifest.json"):
        ExportedVAE(tmp_path / "nowhere")
    (bundle_copy / "encoder" / "1" / "model.onnx").unlink()
    with pytest.raises(BundleError, match="encoder/1/model.onnx is missing"):
        ExportedVAE(bundle_copy)
    (bundle_copy / "manifest.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(BundleError, match="not a keras-vae-bundle manifest"):
        ExportedVAE(bundle_copy)


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ({"format_version": 99}, "format version 99; this keras-vae reads version 3"),
        ({"format_version": None}, "format version None"),
        ({"files": None}, "has no file table"),
    ],
)
def test_a_manifest_of_another_version_or_without_files_is_refused(bundle_copy, manifest, message):
    path = bundle_copy / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **manifest}))
    with pytest.raises(BundleError, match=message):
        ExportedVAE(bundle_copy)
    with pytest.raises(BundleError, match=message):
        verify_bundle(bundle_copy)


def test_a_manifest_that_is_not_an_object_is_refused(bundle_copy):
    (bundle_copy / "manifest.json").write_text("[1, 2]")
    with pytest.raises(BundleError, match="not a keras-vae-bundle manifest"):
        ExportedVAE(bundle_copy)


def test_a_manifest_that_disagrees_with_its_onnx_files_is_refused(bundle_copy):
    path = bundle_copy / "manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "model": {**manifest["model"], "latent_dim": 4}}))
    with pytest.raises(
        BundleError, match=r"decoder/1/model.onnx does not match the bundle's manifest"
    ):
        ExportedVAE(bundle_copy)
    path.write_text(json.dumps({**manifest, "model": {"latent_dim": 3}}))
    with pytest.raises(BundleError, match="does not record the model's latent_dim and image_shape"):
        ExportedVAE(bundle_copy)
