import json

import numpy as np
import onnx
import pytest
import tensorflow as tf

from keras_vae.export.saved_model import run_in_session
from keras_vae_inference import BundleError, ExportedVAE, bundle

PARITY = 1e-5


def keras_draw(hvae, seeds):
    return {
        name: np.asarray(value)
        for name, value in zip(("image", "z", "z2"), hvae.sample_from_seeds(seeds), strict=True)
    }


def test_a_two_level_bundle_holds_every_network_and_the_sampler(two_level_bundle):
    directory, manifest, hvae, _ = two_level_bundle
    parts = ["decoder", "encoder", "top_decoder", "top_encoder", "sampler"]
    assert manifest["parts"] == parts
    assert manifest["model"] == {
        "latent_dim": 4, "image_shape": [8, 8, 1], "top_latent_dim": 2, "likelihood": "bernoulli",
    }  # fmt: skip
    assert manifest["sampling"]["graph"] == "sampler"
    assert manifest["onnx"]["opset"] == {**dict.fromkeys(parts[:4], 17), "sampler": 18}
    assert manifest["sampler"]["inputs"][0] | {"range": None} == {
        "name": "seed", "shape": ["batch"], "dtype": "int64", "range": None,
    }  # fmt: skip
    assert [o["name"] for o in manifest["sampler"]["outputs"]] == ["image", "z", "z2"]
    assert manifest["top_decoder"]["inputs"][0]["shape"] == ["batch", 2]
    assert manifest["top_encoder"]["outputs"][0]["shape"] == ["batch", 2]
    entry = manifest["versions"]["1"]
    for part in parts:
        assert (directory / part / "1" / "saved_model.pb").is_file()
        model = onnx.load(str(directory / entry["onnx"][part]))
        assert model.opset_import[0].version == manifest["onnx"]["opset"][part]
        config = (directory / bundle.triton_config(part)).read_text()
        assert f'name: "{part}"' in config
        # Each runtime agreed with Keras when exported.
        assert max(entry["parity"][part].values()) <= PARITY, entry["parity"][part]
    # Triton batches scalars per row as dims [1], reshaped to the model's [batch].
    sampler_config = (directory / bundle.triton_config("sampler")).read_text()
    assert "data_type: TYPE_INT64\n    dims: [ 1 ]\n    reshape: { shape: [ ] }" in sampler_config
    assert entry["model"]["parameters"] == {
        name: getattr(hvae, name).count_params()
        for name in ("encoder", "decoder", "top_encoder", "top_decoder")
    }


def test_exported_vae_samples_encodes_and_decodes_as_keras(two_level_bundle):
    directory, _, hvae, images = two_level_bundle
    exported = ExportedVAE(directory, threads=1)
    assert exported.parts == bundle.ALL_PARTS
    expected = keras_draw(hvae, 7 + np.arange(6))
    np.testing.assert_allclose(exported.sample(6, seed=7), expected["image"], atol=PARITY)
    drawn = exported.draw(np.array([7, 8, 9, 10, 11, 12]))
    for name in ("image", "z", "z2"):
        np.testing.assert_allclose(drawn[name], expected[name], atol=PARITY)
    # One client's seed gives its own draw, whatever else is in the batch.
    alone = exported.draw(np.array([9]))
    np.testing.assert_array_equal(alone["z2"], drawn["z2"][2:3])
    np.testing.assert_allclose(alone["image"], drawn["image"][2:3], atol=1e-6)

    mean, log_var = exported.encode(images[:5])
    keras_mean, keras_log_var = (np.asarray(v) for v in hvae.encoder(images[:5]))
    np.testing.assert_allclose(mean, keras_mean, atol=PARITY)
    np.testing.assert_allclose(log_var, keras_log_var, atol=PARITY)
    np.testing.assert_allclose(exported.decode(mean), hvae.decode(mean), atol=PARITY)
    for method, network, z in (
        (exported.top_decode, hvae.top_decoder, expected["z2"]),
        (exported.top_encode, hvae.top_encoder, expected["z"]),
    ):
        for ours, theirs in zip(method(z), network(z), strict=True):
            np.testing.assert_allclose(ours, np.asarray(theirs), atol=PARITY)


def test_the_sampler_runs_in_tensorflow_servings_session_loader(two_level_bundle):
    directory, _, hvae, _ = two_level_bundle
    seeds = np.array([0, 3, 2**33 + 5, 2**63 - 1], np.int64)
    outputs = run_in_session(str(directory / "sampler" / "1"), {"seed": seeds})
    expected = keras_draw(hvae, seeds)
    for name in ("image", "z", "z2"):
        np.testing.assert_allclose(outputs[name], expected[name], atol=PARITY)
    loaded = tf.saved_model.load(str(directory / "top_decoder" / "1"))
    mean = loaded.signatures["serving_default"](z=tf.constant(expected["z2"]))["mean"]
    np.testing.assert_allclose(mean, np.asarray(hvae.top_decoder(expected["z2"])[0]), atol=PARITY)


def test_bad_seeds_and_calls_get_clear_errors(two_level_bundle, exported_bundle):
    exported = ExportedVAE(two_level_bundle[0])
    with pytest.raises(ValueError, match=r"Expected `seed` to be an integer in \[0, 2\*\*63 - n\]"):
        exported.sample(2, seed=2**63 - 1)
    with pytest.raises(ValueError, match="Received: seed=-1"):
        exported.sample(2, seed=-1)
    with pytest.raises(ValueError, match="Expected seeds in"):
        exported.draw(np.array([-3]))
    with pytest.raises(ValueError, match="Expected `seeds` as integers of shape"):
        exported.draw(np.array([1.5]))
    with pytest.raises(ValueError, match="Expected upper codes z2 of shape"):
        exported.top_decode(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="it has no q\\(z2\\|z1\\)"):
        ExportedVAE(exported_bundle[0]).top_encode(np.zeros((1, 3)))


def test_a_manifest_whose_parts_disagree_with_its_model_is_refused(two_level_bundle, tmp_path):
    import shutil

    directory = shutil.copytree(two_level_bundle[0], tmp_path / "bundle")
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    for parts, message in (
        (["decoder", "encoder"], "Expected the parts"),
        (["encoder", "decoder"], "to list its parts"),
        (None, "to list its parts"),
    ):
        path.write_text(json.dumps({**manifest, "parts": parts}))
        with pytest.raises(BundleError, match=message):
            ExportedVAE(directory)


@pytest.mark.training
def test_the_convolutional_two_level_preset_exports_within_parity(tmp_path):
    import keras_vae

    hvae = keras_vae.HierarchicalVAE.from_preset("hvae_gated_conv_28", seed=0)
    manifest = hvae.export(tmp_path / "conv")
    parity = manifest["versions"]["1"]["parity"]
    assert {
        part: max(parity[part].values()) <= PARITY for part in manifest["parts"]
    } == dict.fromkeys(bundle.ALL_PARTS, True), parity
    exported = ExportedVAE(tmp_path / "conv")
    keras_images = np.asarray(hvae.sample_from_seeds(np.arange(3))[0])
    np.testing.assert_allclose(exported.sample(3, seed=0), keras_images, atol=PARITY)
