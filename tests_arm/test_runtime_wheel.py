"""The path a Raspberry Pi user walks, under emulation: `make wheel-arm`'s wheel is
installed with pip into the emulated aarch64 Python 3.11 (its dependencies resolved for
aarch64 / cp311 from the package registry), and `larq-dybnn-run` labels real CIFAR-10
test photos with the shipped models' exported files, compared with the project's x86
preparation (TensorFlow's JPEG decoder and the input contract) and Keras."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from conftest import LCE_SOURCE, REPO

IMAGES_PER_CLASS = 20  # 200 test photos
#: The shipped models' documented test accuracy of their default (int8) files, LCE x86.
DOCUMENTED_TEST_ACCURACY = {"reactnet-18": 0.8126, "dybnn-reactnet-18": 0.8215}


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[Path]:
    """The first IMAGES_PER_CLASS test JPEGs of each class, as files."""
    root = tmp_path_factory.mktemp("photos")
    archive = REPO.parent / "shared" / "data" / "cifar10" / "cifar10-test-jpg.tar.gz"
    taken: dict[str, int] = {}
    files = []
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) != 4 or taken.get(parts[2], 0) >= \
                    IMAGES_PER_CLASS:
                continue
            taken[parts[2]] = taken.get(parts[2], 0) + 1
            target = root / parts[2] / parts[3]
            target.parent.mkdir(exist_ok=True)
            target.write_bytes(tar.extractfile(member).read())
            files.append(target)
    assert len(files) == 10 * IMAGES_PER_CLASS
    return sorted(files)


@pytest.fixture(scope="module")
def installed(arm, tmp_path_factory) -> Path:
    """The wheel, built and pip-installed for aarch64 / cp311 into a fresh folder."""
    from larq_dybnn.device.wheel import build_wheel

    dist = tmp_path_factory.mktemp("dist")
    wheel = build_wheel(lce_source=LCE_SOURCE, output_dir=dist, version="0.0.0",
                        print_fn=lambda _: None)
    assert wheel.name.endswith("-py3-none-manylinux_2_24_aarch64.whl"), wheel.name
    site = tmp_path_factory.mktemp("pi-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--target",
         str(site), "--python-version", "3.11", "--implementation", "cp",
         "--only-binary=:all:", "--platform", "manylinux_2_34_aarch64",
         "--platform", "manylinux_2_28_aarch64", "--platform", "manylinux_2_24_aarch64",
         "--platform", "manylinux_2_17_aarch64", "--platform", "manylinux2014_aarch64",
         str(wheel)], check=True, capture_output=True, text=True)
    assert (site / "bin" / "larq-dybnn-run").is_file()
    assert not (site / "tensorflow").exists()
    return site


def _run(arm, site: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the installed console script with the emulated Python, as the Pi would."""
    return subprocess.run(arm.command(str(site / "bin" / "larq-dybnn-run"), *args),
                          env={**arm.environ(), "PYTHONPATH": str(site)},
                          capture_output=True, text=True, timeout=900)


def _x86_reference(model, contract, photos: list[Path], *, dct_method: str = "") -> np.ndarray:
    """Top-1 on x86 with the project's preparation: TensorFlow's JPEG decoder (its
    default fast integer DCT unless `dct_method` says otherwise), then the contract."""
    import tensorflow as tf

    images = np.stack([tf.io.decode_jpeg(p.read_bytes(), channels=3,
                                         dct_method=dct_method).numpy()
                       for p in photos]).astype(np.float32)
    return np.asarray(model(contract.normalize(images), training=False)).argmax(-1)


@pytest.mark.parametrize("name", ["reactnet-18", "dybnn-reactnet-18"])
def test_a_pi_user_labels_photos_with_the_installed_wheel(arm, installed, photos, tmp_path,
                                                           name):
    import tensorflow as tf

    from larq_dybnn.converter import convert
    from larq_dybnn.converter.int8 import round_hyper_weights
    from larq_dybnn.zoo import DyBNNReActNet18, ReActNet18

    builder = DyBNNReActNet18 if name.startswith("dybnn") else ReActNet18
    model = builder(input_shape=(32, 32, 3), stem="cifar", width_multiplier=0.25,
                    weights="cifar10")
    conversion = convert(model)
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(conversion.flatbuffer())  # the default export: int8 hyper weights
    done = _run(arm, installed, str(path), *map(str, photos), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)
    assert [r["path"] for r in results] == [str(p) for p in photos]
    classes = list(conversion.contract.class_names)
    truth = np.array([classes.index(p.parent.name) for p in photos])
    arm_top1 = np.array([r["index"] for r in results])
    assert all(r["label"] == classes[r["index"]] for r in results)
    assert all(abs(sum(r["probabilities"]) - 1) < 1e-4 for r in results)
    # The x86 reference of the int8 file: Keras with the hyper kernels rounded to int8.
    reference = tf.keras.models.clone_model(model)
    reference.set_weights(model.get_weights())
    round_hyper_weights(reference)
    # Pillow decodes JPEG with libjpeg's accurate integer DCT, bit for bit what
    # TensorFlow gives with dct_method="INTEGER_ACCURATE"; TensorFlow's default (what
    # the project's evaluate and training use) is the fast DCT, up to a few levels off.
    same_pixels = _x86_reference(reference, conversion.contract, photos,
                                 dct_method="INTEGER_ACCURATE")
    project = _x86_reference(reference, conversion.contract, photos)
    kernels_agree = float(np.mean(arm_top1 == same_pixels))
    decoders_agree = float(np.mean(arm_top1 == project))
    accuracy = float(np.mean(arm_top1 == truth))
    print(f"{name}: ARM vs x86 on the same pixels {kernels_agree:.3f}; vs the project's "
          f"evaluate preparation (fast DCT) {decoders_agree:.3f} "
          f"({int(np.sum(arm_top1 != project))} of {len(photos)} move); accuracy ARM "
          f"{accuracy:.3f}, x86 {np.mean(project == truth):.3f}")
    assert kernels_agree >= 0.99
    assert decoders_agree >= 0.90  # measured 0.955 (static) on these 200 photos
    assert abs(accuracy - DOCUMENTED_TEST_ACCURACY[name]) <= 0.06  # 200 images: SE 2.7
    assert abs(accuracy - float(np.mean(project == truth))) <= 0.03


def test_the_installed_runner_prints_labels_benchmarks_and_clear_errors(arm, installed,
                                                                         photos, tmp_path):
    from larq_dybnn.converter import convert
    from larq_dybnn.converter.conversion import export_tflite
    from larq_dybnn.zoo import ReActNet18

    model = ReActNet18(input_shape=(32, 32, 3), stem="cifar", width_multiplier=0.25,
                       weights="cifar10")
    path = tmp_path / "static.tflite"
    path.write_bytes(convert(model).flatbuffer())
    done = _run(arm, installed, str(path), str(photos[0]), "--top", "2", "--benchmark", "3",
                "--threads", "2", "--kernel", "indirect_bgemm")
    assert done.returncode == 0, done.stderr
    first, timing = done.stdout.strip().splitlines()
    assert first.startswith(f"{photos[0]}: ") and first.count("%") == 2
    assert "latency over 3 runs (indirect_bgemm, 2 threads): median" in timing and "p90" in timing
    bare = tmp_path / "bare.tflite"  # no input contract
    bare.write_bytes(export_tflite(model))
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    big = tmp_path / "big.png"
    big.write_bytes(_png(1000, 1000))
    for args, message in (
            ([str(bare), str(photos[0])], f"'{bare}' records no input contract"),
            ([str(path), str(text)], f"'{text}' is not an image Pillow can decode"),
            ([str(path), str(big)], f"'{big}' is 1000x1000; the model takes 32x32"),
            ([str(path), str(photos[0]), "--threads", "0"], "--threads: expected 1 to")):
        done = _run(arm, installed, *args)
        assert done.returncode == 2, (args, done.stdout)
        assert message in done.stderr, (args, done.stderr)
    done = _run(arm, installed, str(path), str(big), "--resize")
    assert done.returncode == 0, done.stderr


def _png(height: int, width: int) -> bytes:
    import tensorflow as tf

    return tf.io.encode_png(np.zeros((height, width, 3), np.uint8)).numpy()
