import pytest

from keras_vae.run import RunError


def test_export_of_a_real_run(real_run, real_bundle, tmp_path):
    from pipelines.export import export_run

    run_dir, summary = real_run
    directory, manifest = real_bundle
    training = manifest["versions"]["1"]["training"]
    # The run's provenance, under the keys a preset's metadata has too.
    assert training == {
        **summary.provenance(),
        "run_dir": str(run_dir.resolve()),
        "class_names": training["class_names"],
    }
    assert training["dataset"] == "fashion_mnist" and len(training["class_names"]) == 10
    assert manifest["model"]["likelihood"] == "bernoulli"
    assert "Bernoulli probabilities" in manifest["decoder"]["outputs"][0]["meaning"]
    assert max(manifest["versions"]["1"]["parity"]["decoder"].values()) <= 1e-4
    with pytest.raises(RunError, match="finished training run"):
        export_run(tmp_path / "nowhere", tmp_path / "other")


@pytest.mark.parametrize("name", ["", ".", "..", "a/b"])
def test_a_bundle_name_that_is_not_one_folder_is_refused(name, tmp_path, capsys):
    from pipelines.cli import main

    exported = tmp_path / "exported"
    exported.mkdir()
    (exported / "README.md").write_text("kept")
    (exported / "other").mkdir()
    with pytest.raises(SystemExit) as stop:
        main(["export", "--run-dir", str(tmp_path / "nowhere"), "--output-dir", str(exported),
              "--name", name, "--overwrite"])  # fmt: skip
    assert stop.value.code == 2
    assert "Expected the bundle name to be one folder name" in capsys.readouterr().err
    assert sorted(p.name for p in exported.iterdir()) == ["README.md", "other"]
