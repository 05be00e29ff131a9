"""The browser explorer (examples/web), in a real headless Chromium.

The page and a bundle are served from 127.0.0.1 by examples/web/serve.py; Selenium
drives Debian's chromium through its chromedriver (`make web-deps` installs both):
no browser download. The helpers are in tests/support/browser.py.
"""

import json
import shutil

import numpy as np
import onnxruntime
import pytest

from keras_vae_inference import verify_bundle
from tests.support.browser import (
    headless_chromium,
    run_in_open_page,
    run_in_page,
    serving_explorer,
)


@pytest.fixture(scope="module")
def browser():
    with headless_chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def explorer_bundle(small_trained_vae, tmp_path_factory):
    """The small VAE exported with the explorer's data: 6 test images, two classes."""
    from keras_vae.explorer_data import explorer_data
    from keras_vae.export import export_bundle

    vae, images = small_trained_vae
    directory = tmp_path_factory.mktemp("explorer") / "small"
    data = explorer_data(vae, images[:6], [0, 1, 0, 1, 0, 1], ["left", "right"], images)
    export_bundle(vae, directory, images[:32], explorer=data)
    return directory


@pytest.fixture(params=["exported_bundle", "explorer_bundle"])
def served_bundle(request, tmp_path):
    """A copy of a small bundle (without, then with, the explorer's data), served:
    (folder, URL). Tests may damage the copy."""
    source = request.getfixturevalue(request.param)
    source = source[0] if isinstance(source, tuple) else source
    bundle = tmp_path / "bundle"
    shutil.copytree(source, bundle)
    with serving_explorer(bundle, tmp_path / "server.log") as url:
        yield bundle, url


def test_the_page_decodes_and_encodes_like_python_onnxruntime(browser, served_bundle, tmp_path):
    bundle, url = served_bundle
    manifest = json.loads((bundle / "manifest.json").read_text())
    latent_dim, shape = manifest["model"]["latent_dim"], manifest["model"]["image_shape"]
    rng = np.random.default_rng(0)
    z = rng.standard_normal((5, latent_dim)).astype("float32")
    images = rng.random((4, *shape)).astype("float32")
    result = run_in_page(
        browser, url,
        """const decoded = await vae.decode(args[0], 5);
           const { mean, logVar } = await vae.encode(args[1], 4);
           return { decoded: [...decoded], mean: [...mean], logVar: [...logVar],
                    backend: vae.backend, card: document.getElementById("card").textContent };""",
        z.ravel().tolist(), images.ravel().tolist(),
    )  # fmt: skip
    assert result["ok"], result
    value = result["value"]
    decoder = onnxruntime.InferenceSession(str(bundle / "decoder" / "1" / "model.onnx"))
    encoder = onnxruntime.InferenceSession(str(bundle / "encoder" / "1" / "model.onnx"))
    (expected,) = decoder.run(["image"], {"z": z})
    mean, log_var = encoder.run(["mean", "log_var"], {"images": images})
    np.testing.assert_allclose(np.reshape(value["decoded"], expected.shape), expected, atol=1e-5)
    np.testing.assert_allclose(np.reshape(value["mean"], mean.shape), mean, atol=1e-5)
    np.testing.assert_allclose(np.reshape(value["logVar"], log_var.shape), log_var, atol=1e-5)
    # Headless Chromium without a GPU has no WebGPU adapter: the page falls back to wasm.
    assert value["backend"] in ("wasm", "webgpu")
    assert f"Latent dimensions{latent_dim}" in value["card"]
    browser.save_screenshot(str(tmp_path / "explorer.png"))
    assert (tmp_path / "explorer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def damage_decoder(bundle):
    path = bundle / "decoder" / "1" / "model.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def old_format(bundle):
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["format_version"] = 1
    (bundle / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "damage, message",
    [
        (damage_decoder, "decoder/1/model.onnx does not match the sha256 in manifest.json"),
        (old_format, "Expected bundle format version 3. Received: version 1"),
        (lambda b: (b / "encoder" / "1" / "model.onnx").unlink(), "HTTP 404"),
    ],
)
def test_a_bundle_the_page_cannot_use_is_named_on_the_page(browser, served_bundle, damage, message):
    bundle, url = served_bundle
    damage(bundle)
    result = run_in_page(browser, url, "return true;")
    assert not result["ok"]
    error = browser.find_element("id", "error")
    assert error.is_displayed() and message in error.text
    assert not browser.find_element("tag name", "main").is_displayed()


def test_the_explorer_interpolates_between_shipped_test_images_like_python(
    browser, explorer_bundle, tmp_path
):
    with serving_explorer(explorer_bundle, tmp_path / "server.log") as url:
        result = run_in_page(
            browser, url,
            """const { explorer } = vae;
               const path = await vae.interpolate(explorer.codes[0], explorer.codes[1], 8);
               return { path: [...path], codes: explorer.codes.map((c) => [...c]),
                        images: [...explorer.images],
                        buttons: document.querySelectorAll("#gallery button").length,
                        pressed: document.querySelectorAll('#gallery [aria-pressed="true"]').length,
                        plane: !document.getElementById("plane").hidden };""",
        )  # fmt: skip
    assert result["ok"], result
    value = result["value"]
    manifest = json.loads((explorer_bundle / "manifest.json").read_text())
    shape = manifest["model"]["image_shape"]
    decoder = onnxruntime.InferenceSession(str(explorer_bundle / "decoder" / "1" / "model.onnx"))
    encoder = onnxruntime.InferenceSession(str(explorer_bundle / "encoder" / "1" / "model.onnx"))
    images = np.reshape(value["images"], (6, *shape)).astype("float32")
    (mean,) = encoder.run(["mean"], {"images": images})
    np.testing.assert_allclose(value["codes"], mean, atol=1e-5)
    weights = np.linspace(0, 1, 8, dtype="float32")[:, None]
    path = (1 - weights) * mean[0] + weights * mean[1]
    (expected,) = decoder.run(["image"], {"z": path})
    np.testing.assert_allclose(np.reshape(value["path"], expected.shape), expected, atol=1e-5)
    assert (value["buttons"], value["pressed"], value["plane"]) == (6, 2, True)
    # The data lies in the decoder's version folder, listed and hashed like every file.
    assert manifest["versions"]["1"]["explorer"] == "decoder/1/explorer.json"
    assert verify_bundle(explorer_bundle) == manifest


def test_an_image_file_and_a_drawing_are_encoded_like_python(browser, explorer_bundle, tmp_path):
    from PIL import Image
    from selenium.webdriver.common.action_chains import ActionChains

    manifest = json.loads((explorer_bundle / "manifest.json").read_text())
    height, width, _ = manifest["model"]["image_shape"]
    pixels = np.random.default_rng(3).integers(0, 256, (height, width), dtype="uint8")
    Image.fromarray(pixels, mode="L").save(tmp_path / "picture.png")
    wait_for_encoding = """
        for (let i = 0; i < 400 && vae.lastEncoding === window.seenEncoding; i++) {
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
        window.seenEncoding = vae.lastEncoding;
        return { image: [...vae.lastEncoding.image], mean: [...vae.lastEncoding.mean] };"""
    encoder = onnxruntime.InferenceSession(str(explorer_bundle / "encoder" / "1" / "model.onnx"))
    with serving_explorer(explorer_bundle, tmp_path / "server.log") as url:
        assert run_in_page(browser, url, "return true;")["ok"]
        browser.find_element("id", "image-file").send_keys(str(tmp_path / "picture.png"))
        from_file = run_in_open_page(browser, wait_for_encoding)
        # "Clear", a stroke across the input canvas, then "Encode the drawing".
        browser.find_element("id", "clear-drawing").click()
        canvas = browser.find_element("id", "input")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
        third = canvas.size["width"] // 3
        stroke = ActionChains(browser).move_to_element_with_offset(canvas, -third, -third)
        stroke.click_and_hold().move_by_offset(2 * third, 2 * third).release().perform()
        browser.find_element("id", "encode-drawing").click()
        drawn = run_in_open_page(browser, wait_for_encoding)
    image = np.reshape(from_file["value"]["image"], (1, height, width, 1)).astype("float32")
    np.testing.assert_allclose(image[0, ..., 0], pixels / 255, atol=1e-6)
    for result in (from_file, drawn):
        assert result["ok"], result
        page_image = np.reshape(result["value"]["image"], (1, height, width, 1)).astype("float32")
        (mean,) = encoder.run(["mean"], {"images": page_image})
        np.testing.assert_allclose(result["value"]["mean"], mean[0], atol=1e-5)
    # The stroke is light on dark: some pixels of the drawing are lit, the corners are not.
    drawing = np.reshape(drawn["value"]["image"], (height, width))
    assert drawing.max() > 0.5 and drawing[0, -1] == 0 and drawing[-1, 0] == 0


@pytest.fixture(scope="module")
def autoencoder_bundle(small_trained_vae, tmp_path_factory):
    """An autoencoder of the same network and data, exported with the same test images."""
    import keras

    from keras_vae import Autoencoder, architectures
    from keras_vae.explorer_data import explorer_data
    from keras_vae.export import export_bundle

    _, images = small_trained_vae
    keras.utils.set_random_seed(1)
    shape = images.shape[1:]
    autoencoder = Autoencoder(
        architectures.conv_encoder(shape, 3, filters=(4, 8), hidden_units=(16,)),
        architectures.conv_decoder(shape, 3, filters=(8, 4), start_channels=8),
    )
    autoencoder.compile(optimizer="adam")
    autoencoder.fit(images, epochs=1, batch_size=32, verbose=0)
    directory = tmp_path_factory.mktemp("autoencoder") / "small-autoencoder"
    data = explorer_data(autoencoder, images[:6], [0, 1, 0, 1, 0, 1], ["left", "right"], images)
    export_bundle(autoencoder, directory, images[:32], explorer=data)
    return directory


def test_a_second_bundle_interpolates_beside_the_first(
    browser, explorer_bundle, autoencoder_bundle, exported_bundle, tmp_path
):
    body = """const other = vae.compare;
        const path = await other.interpolate(other.explorer.codes[0], other.explorer.codes[1], 8);
        return { path: [...path], name: other.name,
                 shown: !document.getElementById("compare-figure").hidden };"""
    with serving_explorer(explorer_bundle, tmp_path / "a.log", compare=autoencoder_bundle) as url:
        result = run_in_page(browser, url, body)
    assert result["ok"], result
    value = result["value"]
    manifest = json.loads((autoencoder_bundle / "manifest.json").read_text())
    assert value["shown"] and value["name"] == manifest["versions"]["1"]["model"]["name"]
    explorer = json.loads((autoencoder_bundle / "decoder" / "1" / "explorer.json").read_text())
    codes = np.array(explorer["codes"], dtype="float32")
    weights = np.linspace(0, 1, 8, dtype="float32")[:, None]
    decoder = onnxruntime.InferenceSession(str(autoencoder_bundle / "decoder/1/model.onnx"))
    (expected,) = decoder.run(["image"], {"z": (1 - weights) * codes[0] + weights * codes[1]})
    np.testing.assert_allclose(np.reshape(value["path"], expected.shape), expected, atol=1e-5)
    # A bundle without the same test images is left out, and the page says why.
    source, _ = exported_bundle
    with serving_explorer(explorer_bundle, tmp_path / "b.log", compare=source) as url:
        result = run_in_page(browser, url, "return vae.compare;")
    assert result["ok"] and result["value"] is None
    note = browser.find_element("id", "compare-note").text
    assert "does not ship the same test images" in note


def test_the_page_decodes_a_conditional_bundle_for_the_chosen_class(browser, tmp_path):
    import keras

    from keras_vae import ConditionalVAE, architectures
    from keras_vae_inference import ExportedVAE

    keras.utils.set_random_seed(0)
    cvae = ConditionalVAE(
        *architectures.conditional_networks(
            "conv", (12, 12, 1), 3, 2, encoder={"filters": (4,)}, decoder={"filters": (4,)}
        ),
        num_classes=2,
        seed=0,
    )
    images = (np.random.default_rng(0).random((16, 12, 12, 1)) > 0.5).astype("float32")
    cvae.export(tmp_path / "cvae", test_images=images, test_labels=np.arange(16) % 2,
                metadata={"class_names": ["left", "right"]})  # fmt: skip
    z = np.random.default_rng(1).standard_normal((3, 3)).astype("float32")
    with serving_explorer(tmp_path / "cvae", tmp_path / "server.log") as url:
        result = run_in_page(
            browser, url,
            """const select = document.getElementById("class");
               select.value = "1";
               select.dispatchEvent(new Event("change"));
               const decoded = await vae.decode(args[0], 3);
               const { mean } = await vae.encode(args[1], 2);
               return { decoded: [...decoded], mean: [...mean], label: vae.label,
                        options: [...select.options].map((o) => o.textContent),
                        shown: !document.getElementById("class-row").hidden };""",
            z.ravel().tolist(), images[:2].ravel().tolist(),
        )  # fmt: skip
    assert result["ok"], result
    value = result["value"]
    assert value["options"] == ["left", "right"] and value["shown"] and value["label"] == 1
    exported = ExportedVAE(tmp_path / "cvae")
    expected = exported.decode(z, [1, 1, 1])
    np.testing.assert_allclose(np.reshape(value["decoded"], expected.shape), expected, atol=1e-5)
    mean, _ = exported.encode(images[:2], [1, 1])
    np.testing.assert_allclose(np.reshape(value["mean"], mean.shape), mean, atol=1e-5)
    assert not np.allclose(expected, exported.decode(z, [0, 0, 0]), atol=1e-3)


def test_a_two_level_bundle_samples_and_moves_through_z1_like_keras(
    browser, two_level_bundle, tmp_path_factory, tmp_path
):
    from keras_vae.explorer_data import explorer_data
    from keras_vae.export import export_bundle

    _, _, hvae, images = two_level_bundle
    directory = tmp_path_factory.mktemp("explorer") / "two_level"
    data = explorer_data(hvae, images[:6], [0, 1, 0, 1, 0, 1], ["left", "right"], images)
    export_bundle(hvae, directory, images[:32], explorer=data)
    seeds = [0, 1, 2**40 + 3, 2**53 - 1]
    z1 = np.asarray(hvae.sample_from_seeds(np.arange(3))[1])
    with serving_explorer(directory, tmp_path / "server.log") as url:
        result = run_in_page(
            browser, url,
            """const drawn = await vae.sampleSeeds(args[0]);
               const decoded = await vae.decode(args[1], 3);
               const { mean } = await vae.encode(vae.explorer.images, 6);
               return { drawn: [...drawn], decoded: [...decoded], mean: [...mean],
                        title: document.getElementById("latent-title").textContent,
                        legend: document.querySelector("#sliders legend").textContent,
                        sliders: document.querySelectorAll("#sliders input").length,
                        temperature: document.getElementById("temperature").disabled,
                        card: document.getElementById("card").textContent };""",
            seeds, z1.ravel().tolist(),
        )  # fmt: skip
    assert result["ok"], result
    value = result["value"]
    keras_images = np.asarray(hvae.sample_from_seeds(np.array(seeds))[0])
    np.testing.assert_allclose(np.reshape(value["drawn"], keras_images.shape), keras_images,
                               atol=1e-5)  # fmt: skip
    np.testing.assert_allclose(np.reshape(value["decoded"], (3, 8, 8, 1)), hvae.decode(z1),
                               atol=1e-5)  # fmt: skip
    mean = np.asarray(hvae.encoder(np.reshape(data_images(data), (6, 8, 8, 1)))[0])
    np.testing.assert_allclose(np.reshape(value["mean"], (6, 4)), mean, atol=1e-5)
    assert value["title"] == "Move through z1, the lower of the two latent spaces"
    assert (value["legend"], value["sliders"], value["temperature"]) == ("z1", 4, True)
    assert "Latent dimensions4 (z1), 2 (z2, above z1)" in value["card"]


def data_images(data):
    """The explorer data's test images in [0, 1], as the page reads them."""
    import base64

    return np.frombuffer(base64.b64decode(data["pixels"]), np.uint8).astype("float32") / 255
