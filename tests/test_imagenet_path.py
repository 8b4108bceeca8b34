"""The ImageNet path end to end, as a user runs it: `train --data imagenet2012` through
tensorflow-datasets (its own mock data, `tfds.testing.mock_data`, standing in for the
prepared dataset), ImageNet preprocessing, a few training steps of the zoo's tiny DyBNN
at a small image size with 1000 classes, evaluation, and export with parity; and an
image folder of ImageNet-sized JPEGs through train, evaluate and convert --verify. (The
zoo's ReActNets with the ImageNet stem are built, converted and compared with LCE in
test_zoo.py and test_zoo_conversion.py.)"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from larq_dybnn_cli import main
from larq_dybnn.contract import read_contract
from larq_dybnn.training import data


@pytest.fixture
def mock_imagenet(tmp_path):
    """tfds metadata for imagenet2012 (32 train, 16 validation images) and its mock."""
    meta = tmp_path / "tfds"
    builder = tfds.builder("imagenet2012", data_dir=str(meta))
    builder.info.set_splits(tfds.core.SplitDict([
        tfds.core.SplitInfo(name="train", shard_lengths=[32], num_bytes=0),
        tfds.core.SplitInfo(name="validation", shard_lengths=[16], num_bytes=0),
    ]))
    builder.data_path.mkdir(parents=True)
    builder.info.write_to_directory(builder.data_path)
    with tfds.testing.mock_data(num_examples=32, policy=tfds.testing.MockPolicy.USE_FILES,
                                data_dir=str(meta)):
        yield meta


def test_imagenet_through_tfds_train_evaluate_export(mock_imagenet, tmp_path, capsys):
    meta = str(mock_imagenet)
    images = data.load("imagenet2012", split="validation[:8]", data_dir=meta)
    assert images.num_classes == 1000 and images.class_names[0] == "n01440764"
    assert images.num_examples == 8
    out = tmp_path / "run"
    status = main([
        "train", "--model", "tiny-dybnn", "--data", "imagenet2012", "--data-dir", meta,
        "--eval-split", "validation",
        "--image-size", "64", "--preprocess", "imagenet", "--epochs", "1",
        "--batch-size", "16", "--export", "--quiet", "--output-dir", str(out),
    ])
    printed = capsys.readouterr().out
    assert status == 0, printed[-3000:]
    assert "32 train / 16 validation images, 1000 classes, 64x64, preprocess=imagenet" in printed
    assert "2 LceBconv2d / 2 binary QuantConv2D (all binary)" in printed
    report = json.loads((out / "report.json").read_text())
    # Untrained on noise, 1000 logits are nearly tied; export_and_verify's own
    # tolerances passed (it raises otherwise), and top-1 mostly agrees.
    assert report["conversion"]["parity"]["top1_agreement"] >= 0.9
    contract = read_contract(out / "model.tflite")
    assert contract.preprocess == "imagenet" and len(contract.class_names) == 1000
    assert main(["evaluate", str(out / "model.tflite"), "--data", "imagenet2012",
                 "--data-dir", meta, "--split", "validation", "--limit", "16",
                 "--batch-size", "8"]) == 0
    printed = capsys.readouterr().out
    assert "(lce) on tfds:imagenet2012 [validation]: 16 images, preprocess 'imagenet'" in printed
    assert "[evaluate] 8/16 images" in printed


def _write_jpegs(root, sizes, rng):
    for split, per_class in (("train", 8), ("test", 4)):
        for name in ("n01440764", "n01443537"):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                height, width = sizes[i % len(sizes)]
                pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
                (folder / f"{i:03d}.JPEG").write_bytes(tf.io.encode_jpeg(pixels).numpy())


def test_image_folder_at_imagenet_sizes(tmp_path, capsys):
    root = tmp_path / "images"
    _write_jpegs(root, [(375, 500), (500, 333), (281, 300)], np.random.default_rng(0))
    out = tmp_path / "run"
    status = main(["train", "--model", "tiny-dybnn", "--data", str(root), "--image-size", "96",
                   "--epochs", "1", "--batch-size", "8", "--quiet", "--output-dir", str(out)])
    printed = capsys.readouterr().out
    assert status == 0, printed[-3000:]
    # Images above 64 pixels get ImageNet's preprocessing (random resized crop, flip).
    assert "16 train / 8 test images, 2 classes, 96x96, preprocess=imagenet" in printed
    assert main(["evaluate", str(out / "model.keras"), "--data", str(root)]) == 0
    assert ": 8 images, preprocess 'imagenet'" in capsys.readouterr().out
    assert main(["convert", str(out / "model.keras"), "-o", str(tmp_path / "m.tflite"),
                 "--verify", str(root / "test")]) == 0
    assert "8 images from" in capsys.readouterr().out
