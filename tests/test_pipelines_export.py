import pytest

from keras_vae.run import RunError


@pytest.mark.slow
def test_export_of_a_real_run(real_run, real_bundle, tmp_path):
    from pipelines.export import export_run

    run_dir, summary = real_run
    directory, manifest = real_bundle
    assert manifest["training"]["test_metrics"] == summary["test"]
    assert manifest["training"]["dataset"] == "fashion_mnist"
    assert manifest["training"]["test_set"] == summary["test_set"]
    assert manifest["model"]["likelihood"] == "bernoulli"
    assert "Bernoulli probabilities" in manifest["decoder"]["outputs"][0]["meaning"]
    assert max(manifest["parity"]["decoder"].values()) <= 1e-4
    with pytest.raises(RunError, match="finished training run"):
        export_run(tmp_path / "nowhere", tmp_path / "other")
