"""Settings fixed per process: each runs in its own process, which reports it applied."""

import pytest

from benchmarks.settings import AS_TRAINED, SETTINGS, compare_settings


@pytest.mark.training
def test_each_setting_trains_in_a_process_that_applied_it(fashion_mnist_data_dir):
    eigen = next(name for name in SETTINGS if "TF_ENABLE_ONEDNN_OPTS=0" in name)
    names = [AS_TRAINED, "one inter-op thread", eigen, "twice the examples per step"]
    result = compare_settings(
        batch_size=16, steps_per_execution=2, threads=2, rounds=2, steps=4, windows=2,
        data_options={"data_dir": fashion_mnist_data_dir, "max_examples": 256},
        settings=names,
    )  # fmt: skip
    rows = {row["name"]: row for row in result["rows"]}
    assert list(rows) == names
    assert rows[AS_TRAINED]["applied"] == {
        "batch_size": 16, "inter_op_threads": 0, "intra_op_threads": 2, "onednn": True,
        "jit_compile": False,
    }  # fmt: skip
    assert rows["one inter-op thread"]["applied"]["inter_op_threads"] == 1
    assert rows[eigen]["applied"]["onednn"] is False
    assert rows["twice the examples per step"]["applied"]["batch_size"] == 32
    baseline = rows[AS_TRAINED]["rounds"]
    for row in rows.values():
        assert len(row["rounds"]) == 2 and min(row["rounds"]) > 0
        ratios = sorted(a / b for a, b in zip(row["rounds"], baseline, strict=True))
        assert row["vs_as_trained"] == pytest.approx(sum(ratios) / 2)
    assert rows[AS_TRAINED]["vs_as_trained"] == 1.0


def test_the_process_as_training_runs_it_comes_first():
    with pytest.raises(ValueError, match="Expected 'as training runs it' first"):
        compare_settings(16, 1, 2, settings=["one inter-op thread", AS_TRAINED])
