import gzip

import numpy as np
import pytest

from keras_vae.data import DataFileError, DataUnavailableError, load_images, read_idx


def idx_bytes(array):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_dataset(folder, train, test, compress=True):
    """Writes (images, labels) pairs as the four MNIST-format IDX files."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, (images, labels) in (("train", train), ("t10k", test)):
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            data = idx_bytes(array)
            name = f"{prefix}-{kind}-ubyte"
            if compress:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
    return folder


def small_split(n, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = np.arange(n)  # a key to match examples after TFDS' shuffle
    return images, rng.integers(0, 10, n).astype(np.uint8)


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trips(tmp_path, compress):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "a-idx3-ubyte"
    path.write_bytes(gzip.compress(idx_bytes(array)) if compress else idx_bytes(array))
    np.testing.assert_array_equal(read_idx(path), array)


def test_bad_idx_files_are_named_with_their_problem(tmp_path):
    good = idx_bytes(np.zeros((4, 5, 5), np.uint8))
    cases = {
        "missing": (None, "not found"),
        "truncated": (good[:-7], r"truncated.*\(4, 5, 5\).*100 bytes.*93"),
        "long": (good + b"\0", "longer than its header"),
        "magic": (b"\x00\x00\x0d\x03" + good[4:], "not an IDX file of unsigned bytes"),
        "gzip": (gzip.compress(good)[:-10], "corrupt or truncated gzip"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(DataFileError, match=message):
            read_idx(path)


def test_builder_prepares_local_idx_files_into_tfds(tmp_path):
    train, test = small_split(30, 0), small_split(12, 1)
    source = write_dataset(tmp_path / "idx", train, test)
    images, labels = next(
        iter(
            load_images(
                "mnist",
                "train",
                batch_size=100,
                with_labels=True,
                data_dir=str(tmp_path / "tfds"),
                source_dir=str(source),
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
    source = write_dataset(tmp_path / "idx", (images, np.zeros(40, np.uint8)), small_split(4, 2))
    options = dict(
        batch_size=40,
        binarize=True,
        seed=7,
        data_dir=str(tmp_path / "tfds"),
        source_dir=str(source),
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
    source = write_dataset(tmp_path / "idx", small_split(30, 0), small_split(4, 1))
    options = dict(batch_size=10, binarize=True, shuffle=True, seed=3, with_labels=True,
                   data_dir=str(tmp_path / "tfds"), source_dir=str(source))  # fmt: skip

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
    train, test = small_split(10, 0), small_split(10, 1)
    source = write_dataset(tmp_path / "idx", train, (test[0], test[1][:9]))
    with pytest.raises(DataFileError, match="10 images but .* 9 labels"):
        load_images("mnist", data_dir=str(tmp_path / "tfds"), source_dir=str(source))
    with pytest.raises(DataFileError, match="Missing data file.*train-images-idx3-ubyte"):
        load_images("mnist", data_dir=str(tmp_path / "tfds2"), source_dir=str(tmp_path / "none"))


def test_an_unreachable_dataset_says_what_to_do(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    def offline(*args, **kwargs):
        raise ConnectionError("network is unreachable")

    # MNIST has no default IDX folder, so TFDS' own builder would download it.
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", offline)
    with pytest.raises(DataUnavailableError, match="network is unreachable.*MNIST IDX.*--idx-dir"):
        load_images("mnist", data_dir=str(tmp_path))


@pytest.mark.parametrize("in_memory", [True, False])
def test_an_abandoned_iterator_does_not_truncate_later_epochs(tmp_path, in_memory):
    source = write_dataset(tmp_path / "idx", small_split(300, 0), small_split(20, 1))
    dataset = load_images(
        "mnist", batch_size=10, in_memory=in_memory, data_dir=str(tmp_path / "tfds"),
        source_dir=str(source),
    )  # fmt: skip
    next(iter(dataset))
    for _ in range(2):
        assert sum(len(batch) for batch in dataset) == 300
