"""Data sources and input pipelines, on real local data."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest
import tensorflow as tf
from conftest import CIFAR10_CLASSES, CIFAR10_DIR

from larq_dybnn.training import data, preprocessing


def _first(dataset, n=1):
    return [(x.numpy(), y.numpy()) for x, y in dataset.take(n)]


def test_digits():
    train, test = data.load("digits", split="train"), data.load("digits", split="test")
    assert (train.num_examples, test.num_examples) == (1437, 360)
    (image, label), = _first(train.dataset)
    assert image.dtype == np.uint8 and image.shape == (8, 8, 3) and 0 <= label < 10
    assert train.class_names == [str(i) for i in range(10)]


@pytest.fixture(scope="module")
def cifar_folder():
    if not (CIFAR10_DIR / "cifar10-test-jpg.tar.gz").exists():
        pytest.skip("no CIFAR-10 copy")
    return CIFAR10_DIR


def test_folder_of_archives(cifar_folder):
    test = data.load(cifar_folder, split="test")
    assert test.num_examples == 10_000 and test.class_names == list(CIFAR10_CLASSES)
    labels = np.concatenate([y.numpy() for _, y in test.dataset.batch(2048)])
    assert np.bincount(labels).tolist() == [1000] * 10
    # Class-interleaved order: a shuffle buffer smaller than the data mixes classes.
    assert labels[:20].tolist() == list(range(10)) * 2
    (image, _), = _first(test.dataset)
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8


def test_single_archive_and_missing_split(cifar_folder):
    archive = cifar_folder / "cifar10-test-jpg.tar.gz"
    assert data.load(archive, split="test").num_examples == 10_000
    with pytest.raises(ValueError, match="No images of split 'train'"):
        data.load(archive, split="train")


def _png(path, value=0, size=(6, 5)):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((*size, 3), value, np.uint8)
    tf.io.write_file(str(path), tf.io.encode_png(image))


def test_image_folder(tmp_path):
    for i in range(3):
        _png(tmp_path / "train" / "cat" / f"{i}.png", 10)
        _png(tmp_path / "train" / "dog" / f"{i}.png", 200)
    _png(tmp_path / "test" / "cat" / "0.png")
    train = data.load(tmp_path, split="train")
    assert train.num_examples == 6 and train.class_names == ["cat", "dog"]
    pairs = _first(train.dataset, 6)
    assert {int(img[0, 0, 0]): int(y) for img, y in pairs} == {10: 0, 200: 1}
    assert [int(y) for _, y in pairs] == [0, 1, 0, 1, 0, 1]
    assert data.load(tmp_path, split="test").num_examples == 1
    train.check_num_classes(2)
    with pytest.raises(ValueError, match="3 outputs but .* has 2 classes"):
        train.check_num_classes(3)


def test_bad_sources(tmp_path):
    with pytest.raises(FileNotFoundError, match="No dataset at"):
        data.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no 'train' folder"):
        data.load(tmp_path / "empty")
    (tmp_path / "nothing" / "train" / "cat").mkdir(parents=True)
    with pytest.raises(ValueError, match="No images in"):
        data.load(tmp_path / "nothing")
    _png(tmp_path / "broken" / "train" / "cat" / "ok.png")
    (tmp_path / "broken" / "train" / "cat" / "bad.jpg").write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="Unreadable image .*bad.jpg"):
        data.load(tmp_path / "broken")
    archive = tmp_path / "broken.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "broken" / "train", arcname="set/train")
    with pytest.raises(ValueError, match="Unreadable image .*bad.jpg"):
        data.load(archive)
    with pytest.raises(ValueError, match="`split`"):
        data.load("digits", split="validation")


def test_tfds_dataset_not_prepared(tmp_path):
    with pytest.raises(FileNotFoundError, match="no prepared 'cifar10'"):
        data.load("cifar10", split="test", data_dir=str(tmp_path), download=False)
    with pytest.raises(ValueError, match="Unknown dataset"):
        data.load("no_such_dataset_anywhere", data_dir=str(tmp_path))


def test_tfds_loading_prepares_a_dataset_on_first_use(tmp_path, cifar10_test_batch):
    """The real tfds path (builder lookup, download_and_prepare, as_dataset) on a
    dataset builder made here, whose "download" reads local images."""
    import tensorflow_datasets as tfds

    x, y = cifar10_test_batch
    pixels = np.clip(np.round((x * preprocessing.CIFAR10_STD + preprocessing.CIFAR10_MEAN) * 255),
                     0, 255).astype(np.uint8)

    class LarqDybnnLocalCifar(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict({
                    "image": tfds.features.Image(shape=(32, 32, 3)),
                    "label": tfds.features.ClassLabel(names=list(CIFAR10_CLASSES)),
                }),
                supervised_keys=("image", "label"),
            )

        def _split_generators(self, dl_manager):
            return {"test": self._generate_examples()}

        def _generate_examples(self):
            for i, (image, label) in enumerate(zip(pixels, y)):
                yield i, {"image": image, "label": int(label)}

    with pytest.raises(FileNotFoundError, match="no prepared 'larq_dybnn_local_cifar'"):
        data.load("larq_dybnn_local_cifar", split="test", data_dir=str(tmp_path),
                  download=False)
    loaded = data.load("larq_dybnn_local_cifar", split="test", data_dir=str(tmp_path))
    assert (tmp_path / "larq_dybnn_local_cifar/1.0.0/dataset_info.json").is_file()
    assert loaded.num_examples == 100 and loaded.class_names == list(CIFAR10_CLASSES)
    images = np.stack([img for img, _ in _first(loaded.dataset, 100)])
    labels = np.array([lab for _, lab in _first(loaded.dataset, 100)])
    assert sorted(map(tuple, images.reshape(100, -1)[:, :8])) == sorted(
        map(tuple, pixels.reshape(100, -1)[:, :8]))
    assert np.bincount(labels).tolist() == [10] * 10


def test_cifar_pipeline():
    digits = data.load("digits", split="test")
    train = preprocessing.pipeline(digits, training=True, batch_size=32, preprocess="cifar",
                          image_size=8, seed=0, epochs=1)
    images, labels = next(iter(train))
    assert images.shape == (32, 8, 8, 3) and images.dtype == tf.float32
    assert labels.dtype == tf.int64
    assert sum(1 for _ in train) == 360 // 32  # drop_remainder in training
    evaluation = preprocessing.pipeline(digits, training=False, batch_size=100, image_size=8)
    batches = [b.numpy() for b, _ in evaluation]
    assert [len(b) for b in batches] == [100, 100, 100, 60]
    again = [b.numpy() for b, _ in evaluation]
    np.testing.assert_array_equal(batches[0], again[0])  # evaluation is deterministic
    raw = np.stack([img for img, _ in _first(digits.dataset, 100)]).astype(np.float32)
    expected = (raw / 255.0 - preprocessing.CIFAR10_MEAN) / preprocessing.CIFAR10_STD
    np.testing.assert_allclose(batches[0], expected, rtol=1e-5, atol=1e-5)


def test_cifar_training_augmentation_is_pad4_crop_and_flip(cifar_folder):
    test = data.load(cifar_folder, split="test")
    first = test.dataset.take(1)
    image = next(iter(first))[0].numpy()
    augmented = preprocessing.pipeline(
        data.LabelledImages(first.repeat(64), 64, test.class_names, "x"),
        training=True, batch_size=64, seed=1, cache=False,
    )
    batch = next(iter(augmented))[0].numpy()
    plain = (image / 255.0 - preprocessing.CIFAR10_MEAN) / preprocessing.CIFAR10_STD
    # Every augmented image is a shifted (by at most 4) and maybe flipped copy.
    distinct = {b.tobytes() for b in batch}
    assert len(distinct) > 8
    for b in batch[:8]:
        matches = False
        for candidate in (b, b[:, ::-1]):
            for dy in range(-4, 5):
                for dx in range(-4, 5):
                    shifted = np.roll(np.roll(plain, dy, 0), dx, 1)
                    inner = (slice(4, 28), slice(4, 28))
                    if np.allclose(candidate[inner], shifted[inner], atol=1e-5):
                        matches = True
        assert matches


def test_imagenet_pipeline_shapes(cifar_folder):
    test = data.load(cifar_folder, split="test")
    for training in (True, False):
        batches = preprocessing.pipeline(test, training=training, batch_size=16,
                                preprocess="imagenet", image_size=24, cache=False)
        images, _ = next(iter(batches))
        assert images.shape == (16, 24, 24, 3)
    with pytest.raises(ValueError, match="`preprocess`"):
        preprocessing.pipeline(test, training=False, batch_size=8, preprocess="mnist")


def test_training_epochs_depend_only_on_seed_and_epoch():
    digits = data.load("digits", split="train")
    steps = preprocessing.steps_per_epoch(digits, 64)
    assert steps == 1437 // 64

    def batches(first, epochs, seed=3):
        return [b.numpy() for b, _ in preprocessing.pipeline(
            digits, training=True, batch_size=64, preprocess="digits", image_size=8,
            seed=seed, first_epoch=first, epochs=epochs)]

    full = batches(0, 3)
    assert len(full) == 3 * steps
    resumed = batches(2, 1)  # what a run resumed at epoch 2 sees
    np.testing.assert_array_equal(np.stack(full[2 * steps:]), np.stack(resumed))
    assert not np.array_equal(full[0], full[steps])  # epochs differ
    assert not np.array_equal(full[0], batches(0, 1, seed=4)[0])  # seeds differ
    tf.keras.utils.set_random_seed(123)  # the process's global seed does not matter
    np.testing.assert_array_equal(batches(2, 1)[0], resumed[0])
    forever = preprocessing.pipeline(digits, training=True, batch_size=64, preprocess="digits",
                            image_size=8, seed=3)
    assert len(list(forever.take(3 * steps + 1))) == 3 * steps + 1


def test_digits_preprocessing_shifts_by_at_most_one_pixel_without_flips():
    digits = data.load("digits", split="test")
    first = digits.dataset.take(1)
    image = next(iter(first))[0].numpy().astype(np.float32) / 127.5 - 1.0
    augmented = preprocessing.pipeline(data.LabelledImages(first.repeat(32), 32, digits.class_names, "x"),
                              training=True, batch_size=32, preprocess="digits",
                              image_size=8, seed=0, cache=False, epochs=1)
    batch = next(iter(augmented))[0].numpy()
    assert batch.min() >= -1.0 and batch.max() <= 1.0
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), constant_values=-1.0)
    shifts = {(dy, dx) for b in batch for dy in range(3) for dx in range(3)
              if np.allclose(b, padded[dy:dy + 8, dx:dx + 8])}
    assert len(shifts) > 1
    assert all(any(np.allclose(b, padded[dy:dy + 8, dx:dx + 8]) for dy in range(3)
                   for dx in range(3)) for b in batch)  # never mirrored


def test_bad_training_pipeline_arguments():
    digits = data.load("digits", split="test")
    with pytest.raises(ValueError, match="`first_epoch` must be >= 0"):
        preprocessing.pipeline(digits, training=True, batch_size=8, first_epoch=-1)
    with pytest.raises(ValueError, match="`epochs`"):
        preprocessing.pipeline(digits, training=True, batch_size=8, epochs=0)
    with pytest.raises(ValueError, match="`batch_size`=400 is larger than 'digits'"):
        preprocessing.steps_per_epoch(digits, 400)
