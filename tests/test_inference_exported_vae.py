import subprocess
import sys

import numpy as np
import pytest

from keras_vae_inference import BundleError, ExportedVAE


def test_imports_neither_tensorflow_nor_keras(exported_bundle):
    directory, _ = exported_bundle
    script = (
        "import sys\n"
        "from keras_vae_inference import ExportedVAE\n"
        f"vae = ExportedVAE({str(directory)!r})\n"
        "images = vae.sample(3, seed=0)\n"
        "vae.encode(images)\n"
        "loaded = sorted(m for m in ('tensorflow', 'keras', 'keras_vae') if m in sys.modules)\n"
        "print(','.join(loaded) or 'none')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "none"


def test_matches_the_keras_model(exported_bundle, small_trained_vae):
    directory, _ = exported_bundle
    vae, images = small_trained_vae
    exported = ExportedVAE(directory, threads=1)
    z = np.random.default_rng(5).standard_normal((9, 3))
    np.testing.assert_allclose(exported.decode(z), vae.decode(z), atol=1e-5)
    mean, log_var = exported.encode(images[:6])
    expected_mean, expected_log_var = vae.encode(images[:6])
    np.testing.assert_allclose(mean, expected_mean, atol=1e-5)
    np.testing.assert_allclose(log_var, expected_log_var, atol=1e-5)
    np.testing.assert_array_equal(
        exported.sample(4, seed=2),
        exported.decode(np.random.default_rng(2).standard_normal((4, 3))),
    )


def test_variants_load_and_stay_within_their_recorded_error(exported_bundle):
    directory, manifest = exported_bundle
    z = np.random.default_rng(0).standard_normal((64, 3))
    reference = ExportedVAE(directory).decode(z)
    variants = manifest["versions"]["1"]["variants"]
    for name in variants:
        output = ExportedVAE(directory, variant=name).decode(z)
        recorded = variants[name]["max_abs_error_vs_float32"]
        assert np.max(np.abs(output - reference)) == pytest.approx(recorded, rel=1e-5)


def test_bad_inputs_get_clear_errors(exported_bundle):
    directory, _ = exported_bundle
    vae = ExportedVAE(directory)
    with pytest.raises(ValueError, match=r"latent vectors of shape \(n, 3\).*\(2, 4\)"):
        vae.decode(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"latent vectors of shape \(n, 3\).*\(3,\)"):
        vae.decode(np.zeros(3))
    with pytest.raises(ValueError, match="contains 1 NaN"):
        vae.decode([[0.0, np.nan, 0.0]])
    with pytest.raises(TypeError, match="numeric array.*dtype <U"):
        vae.decode([["a", "b", "c"]])
    with pytest.raises(ValueError, match="empty"):
        vae.decode(np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"values in \[0, 1\].*to 255.*Divide 8-bit images by 255"):
        vae.encode(np.full((1, 12, 12, 1), 255, np.uint8))
    with pytest.raises(ValueError, match=r"images of shape \(n, 12, 12, 1\)"):
        vae.encode(np.zeros((1, 12, 12)))
    for n in (0, True, 2.0):
        with pytest.raises(ValueError, match=f"positive integer. Received: n={n!r}"):
            vae.sample(n)
    with pytest.raises(ValueError, match=r"latent vectors of shape \(n, 3\).*unequal lengths"):
        vae.decode([[0.0, 0.0, 0.0], [0.0]])
    with pytest.raises(
        BundleError, match="Version 1 of the bundle has no 'bfloat16' decoder.*float16"
    ):
        ExportedVAE(directory, variant="bfloat16")
    assert vae.decode(np.zeros((2, 3), np.float64)).dtype == np.float32
    for threads in (0, -1, 1.5):
        with pytest.raises(ValueError, match="threads.*positive integer"):
            ExportedVAE(directory, threads=threads)


def test_a_session_without_spinning_threads_computes_the_same(exported_bundle):
    directory, _ = exported_bundle
    z = np.random.default_rng(4).standard_normal((5, 3))
    quiet = ExportedVAE(directory, threads=2, spinning=False)
    np.testing.assert_array_equal(quiet.decode(z), ExportedVAE(directory, threads=2).decode(z))
