"""export_and_verify: the report, model paths, failure modes; the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import larq as lq
import numpy as np
import pytest
import tensorflow as tf
from conftest import CIFAR10_DIR, randomize_weights

from larq_dybnn.converter import FloatFallbackError, export_and_verify, read_operators
from larq_dybnn.converter.conversion import export_tflite
from larq_dybnn.converter.int8 import quantize_hyper_weights
from larq_dybnn.converter.latency import KERNELS
from larq_dybnn.training.data import read_image_sample
from larq_dybnn.zoo import TinyDyBNN


@pytest.fixture(scope="module")
def tiny():
    model = TinyDyBNN(input_shape=(16, 16, 3), width=32, blocks=2, reduction=4)
    randomize_weights(model, seed=2, scale=0.3)
    return model


def test_report_fields(tiny, tmp_path):
    out = tmp_path / "tiny.tflite"
    lines = []
    report = export_and_verify(tiny, output_path=out, runs=3, progress=lines.append)
    assert out.stat().st_size == report.size_bytes
    assert report.binary.ok and report.binary.lce_bconv2d == 2
    assert len(report.binary.keras_binary_convs) == 2 and report.binary.fell_back == []
    assert report.ops["LceBconv2d"] == 2 and sum(report.ops.values()) > 10
    t = report.thresholds
    assert t["dynamic_sign_layers"] == 2 and t["dynamic_prelu_layers"] == 2
    assert t["minimal"] is True
    assert t["added_ops"] == {"MEAN": 4, "FULLY_CONNECTED": 10}
    for ops in t["per_dynamic_sign"].values():
        assert ops == ["MEAN", "FULLY_CONNECTED+RELU", "FULLY_CONNECTED", "SUB"]
    assert report.float32_bytes == 4 * tiny.count_params()
    assert report.size_bytes < report.float32_bytes
    assert report.parity.samples == 16 and report.parity_inputs == "random normal inputs"
    assert report.parity.top1_agreement == 1.0 and report.parity.close_fraction == 1.0
    assert set(report.latency.median_ms) == {1, 2}
    assert all(ms > 0 for ms in report.latency.median_ms.values())
    assert set(report.latency.kernel) == set(report.latency.median_ms)
    assert set(report.latency.kernel.values()) <= set(KERNELS) and report.latency.runs == 3
    if report.latency.machine in ("x86_64", "AMD64"):
        assert "not predict" in report.latency.note and "ARM" in report.latency.note
    data = json.loads(report.to_json())
    assert set(data) >= {"binary", "ops", "thresholds", "size_bytes", "float32_bytes",
                         "parity", "latency"}
    assert data["latency"]["median_ms"].keys() == {"1", "2"}
    text = report.format()
    assert "2 LceBconv2d / 2 binary QuantConv2D (all binary)" in text
    assert len(lines) >= 3 and any("parity" in line for line in lines)


@pytest.mark.parametrize("filename", ["m.keras", "m.h5", "saved_model"])
def test_model_paths(tiny, filename, tmp_path):
    path = tmp_path / filename
    tiny.save(path, save_format="tf" if filename == "saved_model" else None)
    if filename == "saved_model":
        # A SavedModel is a program: a path is refused; a model the user loaded
        # (trusting the folder) converts.
        from larq_dybnn.loading import UnsafeModelError

        with pytest.raises(UnsafeModelError, match="is a SavedModel folder"):
            export_and_verify(path, benchmark=False)
        path = tf.keras.models.load_model(path, compile=False)
    report = export_and_verify(path, benchmark=False)
    assert report.binary.ok and report.latency is None
    assert report.parity.top1_agreement == 1.0


def test_parity_and_accuracy_on_real_images(cifar10_test_batch):
    x, y = cifar10_test_batch
    model = TinyDyBNN(input_shape=(32, 32, 3), width=16, blocks=2, reduction=4)
    report = export_and_verify(model, samples=x, labels=y, samples_source="cifar10",
                               benchmark=False)
    assert report.parity.samples == 100 and report.parity_inputs == "cifar10"
    assert report.accuracy.keys() == {"keras", "lce"}
    assert abs(report.accuracy["keras"] - report.accuracy["lce"]) <= 0.02


def _dorefa_model():
    inputs = tf.keras.Input((8, 8, 16))
    x = lq.layers.QuantConv2D(
        16, 3, padding="same", pad_values=1.0, name="dorefa_conv",
        input_quantizer=lq.quantizers.DoReFa(k_bit=1, mode="activations"),
        kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
    )(inputs)
    x = lq.layers.QuantConv2D(
        16, 3, padding="same", pad_values=1.0, name="binary_conv",
        input_quantizer="ste_sign", kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip",
    )(x)
    return tf.keras.Model(inputs, x)


def test_unbinarizable_quantizer_is_an_error_naming_the_layer(tmp_path):
    out = tmp_path / "m.tflite"
    with pytest.raises(FloatFallbackError, match="dorefa_conv: input_quantizer DoReFa") as error:
        export_and_verify(_dorefa_model(), output_path=out, benchmark=False)
    assert "binary_conv" not in str(error.value)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_float_fallback_can_be_allowed(tmp_path):
    out = tmp_path / "m.tflite"
    report = export_and_verify(_dorefa_model(), output_path=out, benchmark=False,
                               allow_float_fallback=True)
    assert out.exists() and not report.binary.ok
    assert [name for name, _ in report.binary.fell_back] == ["dorefa_conv"]


@pytest.mark.parametrize("bad", [None, "not a model", np.zeros(3), tf.keras.layers.Dense(3)])
def test_not_a_model(bad):
    with pytest.raises((TypeError, FileNotFoundError), match="model"):
        export_and_verify(bad, benchmark=False)


def test_keras3_model_is_rejected_with_the_cause(tmp_path):
    """Keras 3 is only imported here, in a child process, to make the bad input."""
    code = (
        "import importlib, larq_dybnn\n"
        "keras3 = importlib.import_module('keras')\n"
        "m = keras3.Sequential([keras3.Input((4,)), keras3.layers.Dense(2)])\n"
        "from larq_dybnn.converter import export_and_verify\n"
        "try:\n"
        "    export_and_verify(m, benchmark=False)\n"
        "except TypeError as e:\n"
        "    print('TypeError:', e)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
                            timeout=300)
    assert "TypeError: `model` is a Keras 3 model" in result.stdout, result.stderr[-2000:]


def test_missing_and_unloadable_model_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="No model at"):
        export_and_verify(tmp_path / "missing.keras")
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"junk")
    with pytest.raises(ValueError, match="Cannot load .*junk.keras"):
        export_and_verify(junk)


def test_unwritable_output_leaves_no_partial_file(tiny, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_and_verify(tiny, output_path=tmp_path / "no" / "dir" / "m.tflite", benchmark=False)
    target = tmp_path / "occupied.tflite"
    target.mkdir()  # a directory where the file should go: the final rename fails
    with pytest.raises(OSError):
        export_and_verify(tiny, output_path=target, benchmark=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["occupied.tflite"]
    assert list(target.iterdir()) == []


def test_corrupted_flatbuffers_are_clear_errors(tiny):
    good = export_tflite(tiny)
    with pytest.raises(ValueError, match="not a TFLite model"):
        read_operators(b"garbage that is not a model")
    with pytest.raises(ValueError, match="not a valid TFLite model"):
        read_operators(good[:200])
    with pytest.raises(TypeError, match="bytes"):
        read_operators("a string")


def _cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "larq_dybnn_cli", *map(str, args)], capture_output=True,
        text=True, cwd=cwd, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=600,
    )


def test_cli_convert_verify_benchmark_and_inspect(tmp_path, capsys):
    model = TinyDyBNN(input_shape=(32, 32, 3), width=16, blocks=2, reduction=4)
    model.save(tmp_path / "m.keras")
    archive = CIFAR10_DIR / "cifar10-test-jpg.tar.gz"
    result = _cli("convert", "m.keras", "-o", "m.tflite", "--verify", archive,
                  "--samples", "20", "--benchmark", "--runs", "3", "--report", "r.json",
                  cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[convert] converting" in result.stdout and "[convert] wrote" in result.stdout
    assert "2 LceBconv2d / 2 binary QuantConv2D (all binary)" in result.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["parity"]["samples"] == 20 and "cifar10-test-jpg" in report["parity"]["inputs"]
    assert report["accuracy"].keys() == {"keras", "lce"}
    assert report["latency"]["median_ms"].keys() == {"1", "2"}
    # The default stores the hyper kernels in int8 (up to 10 tensors: this untrained
    # model's zero-initialized head kernels are identical constants that the converter
    # stores once); --float-hyper-weights does not.
    tensors = report["int8_hyper_weights"]["tensors"]
    assert 0 < tensors <= 10 and report["ops"]["DEQUANTIZE"] == tensors
    assert "int8 rounding    top-1 agreement" in result.stdout
    from larq_dybnn_cli import main

    assert main(["convert", str(tmp_path / "m.keras"), "-o", str(tmp_path / "f.tflite"),
                 "--float-hyper-weights", "--report", str(tmp_path / "f.json")]) == 0
    float_report = json.loads((tmp_path / "f.json").read_text())
    assert float_report["int8_hyper_weights"] is None and "DEQUANTIZE" not in float_report["ops"]
    assert float_report["size_bytes"] > report["size_bytes"]

    # The other commands run in this process (`main` returns the exit status).
    capsys.readouterr()
    assert main(["inspect", str(tmp_path / "m.tflite")]) == 0
    inspected = capsys.readouterr().out
    assert "LceBconv2d" in inspected and "KiB" in inspected
    assert "FULLY_CONNECTED (fused RELU)" in inspected
    assert "plain TFLite cannot run" in inspected


def test_cli_errors(tmp_path, capsys, monkeypatch):
    """Exit status 2 and a message naming the file (`main` returns the process's
    exit status; the console script passes it to `sys.exit`)."""
    from larq_dybnn_cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.tflite").write_bytes(b"\x00" * 64)
    assert main(["inspect", "bad.tflite"]) == 2
    assert "not a TFLite model" in capsys.readouterr().err
    assert main(["inspect", "missing.tflite"]) == 2
    assert "no file" in capsys.readouterr().err
    assert main(["convert", "missing.keras", "-o", "x.tflite"]) == 2
    assert "No model at" in capsys.readouterr().err
    assert not (tmp_path / "x.tflite").exists()


def test_image_sample_reader(tmp_path):
    archive = CIFAR10_DIR / "cifar10-test-jpg.tar.gz"
    if not archive.exists():
        pytest.skip("no CIFAR-10 copy")
    x, y, classes = read_image_sample(archive, limit=20, size=(16, 16))
    assert x.shape == (20, 16, 16, 3) and x.max() <= 255.0
    assert len(classes) == 10 and sorted(set(y)) == list(range(10))  # round robin
    folder = tmp_path / "images" / "cats"
    folder.mkdir(parents=True)
    tf.io.write_file(str(folder / "a.png"), tf.io.encode_png(np.zeros((4, 4, 3), np.uint8)))
    (folder / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="broken.jpg"):
        read_image_sample(tmp_path / "images")
    with pytest.raises(FileNotFoundError):
        read_image_sample(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No images"):
        read_image_sample(tmp_path / "empty")


def test_parity_and_latency_reject_bad_arguments(tiny):
    from larq_dybnn.converter import compare_with_lce
    from larq_dybnn.converter.latency import measure_latency
    from larq_dybnn.converter.latency import fastest_kernel, make_runner

    flatbuffer = export_tflite(tiny)
    with pytest.raises(ValueError, match="`inputs` must be a non-empty batch of shape"):
        compare_with_lce(tiny, flatbuffer, np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="`inputs`"):
        compare_with_lce(tiny, flatbuffer, np.zeros((0, 16, 16, 3), np.float32))
    with pytest.raises(ValueError, match="`kernel`"):
        measure_latency(flatbuffer, kernel="fastest-please")
    with pytest.raises(ValueError, match="`threads`"):
        measure_latency(flatbuffer, threads=(0,), kernel="bgemm")
    with pytest.raises(ValueError, match="`runs`"):
        measure_latency(flatbuffer, runs=0)
    with pytest.raises(ValueError, match="`settle_ms`"):
        make_runner(flatbuffer, kernel="bgemm", threads=1, settle_ms=-1.0)
    with pytest.raises(ValueError, match="`trials`"):
        fastest_kernel(flatbuffer, trials=0)


def test_non_binary_quantized_layers_are_reported_and_warned(recwarn):
    """A DoReFa k_bit=2 conv and a QuantDense are quantized but not binary: the report
    says they run as float ops in LCE, and why, instead of "all binary"."""
    from larq_dybnn.converter import export_and_verify

    inputs = tf.keras.Input((8, 8, 3))
    x = lq.layers.QuantConv2D(
        8, 3, input_quantizer=lq.quantizers.DoReFa(k_bit=2),
        kernel_quantizer=lq.quantizers.DoReFa(k_bit=2, mode="weights"), name="dorefa_conv",
    )(inputs)
    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(10, kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
                             name="binary_dense")(x)
    report = export_and_verify(tf.keras.Model(inputs, x), benchmark=False)
    float_layers = dict(report.binary.float_quantized)
    assert set(float_layers) == {"dorefa_conv", "binary_dense"}
    assert "DoReFa (2-bit)" in float_layers["dorefa_conv"]
    assert "no binary kernel for QuantDense" in float_layers["binary_dense"]
    text = report.format()
    assert "(all binary)" not in text and "no binary convolution" in text
    assert "2 quantized layers are not binary and run as float ops" in text
    assert any("run as float ops in LCE" in str(w.message) for w in recwarn)
    assert report.as_dict()["binary"]["float_quantized"]


def test_compare_latency_times_several_files_side_by_side(tiny):
    from larq_dybnn.converter import compare_latency

    files = {"float32 hyper": export_tflite(tiny, int8_hyper_weights=False)}
    files["int8 hyper"] = quantize_hyper_weights(files["float32 hyper"], tiny)[0]
    latencies = compare_latency(files, threads=(1,), runs=3, warmup=1)
    assert list(latencies) == ["float32 hyper", "int8 hyper"]
    for latency in latencies.values():
        assert latency.runs == 3 and latency.median_ms[1] > 0
        assert latency.kernel[1] in KERNELS
    with pytest.raises(ValueError, match="`flatbuffers`"):
        compare_latency({})
    with pytest.raises(ValueError, match="`runs`"):
        compare_latency(files, runs=0)


def test_the_public_namespace_is_small_and_old_names_warn():
    import importlib
    import warnings

    import larq_dybnn.converter as converter

    assert len(converter.__all__) <= 12
    assert all(hasattr(converter, name) for name in converter.__all__)
    for name, (module, advice) in converter.DEPRECATED.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = getattr(converter, name)
        assert [str(w.message) for w in caught if w.category is DeprecationWarning] == [
            f"larq_dybnn.converter.{name} is deprecated and will be removed in the next "
            f"release; use {advice}."]
        assert value is getattr(importlib.import_module(f"larq_dybnn.converter.{module}"), name)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        converter.nothing  # noqa: B018
