"""`import larq_dybnn` selects legacy Keras, or explains why it cannot."""

from __future__ import annotations

import os
import subprocess
import sys


def _run(code: str, tmp_path, **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    environment.update(env, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=environment,
        capture_output=True, text=True, timeout=300,
    )


def test_import_selects_legacy_keras_before_tensorflow(tmp_path):
    result = _run(
        "import os, sys, larq_dybnn, tensorflow as tf, larq\n"
        "import larq_dybnn.zoo, larq_dybnn.converter, larq_dybnn.training\n"
        "print(os.environ['TF_USE_LEGACY_KERAS'], tf.keras.layers.Layer.__module__)\n"
        "print(*sorted(m for m in ('keras', 'larq_zoo', 'tensorflow_datasets') "
        "if m in sys.modules))",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    first, loaded = (result.stdout.splitlines() + [""])[:2]
    flag, module = first.split()
    assert flag == "1" and module.startswith("tf_keras")
    # Keras 3, larq-zoo (which imports Keras 3) and tfds load only when used: 1.5 s
    # of every command's start that builds no zoo model and reads no tfds dataset.
    assert loaded == "", f"imported on `import larq_dybnn`: {loaded}"


def test_import_overrides_a_keras3_setting_when_tensorflow_is_not_loaded(tmp_path):
    result = _run(
        "import larq_dybnn, tensorflow as tf\nprint(tf.keras.layers.Layer.__module__)",
        tmp_path, TF_USE_LEGACY_KERAS="0",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("tf_keras")


def test_import_after_keras3_tensorflow_raises_a_helpful_error(tmp_path):
    result = _run("import tensorflow\nimport larq_dybnn", tmp_path)
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "TF_USE_LEGACY_KERAS" in result.stderr and "restart" in result.stderr


def test_import_after_legacy_tensorflow_works(tmp_path):
    result = _run(
        "import tensorflow\nimport larq_dybnn\nprint('ok')", tmp_path,
        TF_USE_LEGACY_KERAS="1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_autograph_leaves_tf_keras_alone_and_still_converts_our_layers():
    """tf-keras' internals run as written (as Keras' did up to TF 2.15); the layers
    of Larq and larq_dybnn still go through AutoGraph."""
    import larq as lq
    import tensorflow as tf
    from tensorflow.python.autograph.impl import conversion

    from larq_dybnn import DynamicPReLU, DynamicSign
    from larq_dybnn._env import skip_autograph_in_tf_keras

    assert skip_autograph_in_tf_keras()  # in place after `import larq_dybnn`; idempotent
    assert conversion.is_allowlisted(tf.keras.layers.Dense.call)
    assert conversion.is_allowlisted(tf.keras.Model.train_step)
    for ours in (DynamicSign.call, DynamicPReLU.call, lq.layers.QuantConv2D.call):
        assert not conversion.is_allowlisted(ours), ours


def test_fewer_collections_raises_the_thresholds_and_puts_them_back():
    import gc

    import pytest

    from larq_dybnn._gc import GRAPH_BUILDING_THRESHOLDS, fewer_collections

    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        with fewer_collections():
            assert gc.get_threshold() == GRAPH_BUILDING_THRESHOLDS
        assert gc.get_threshold() == (700, 10, 10)
        gc.set_threshold(90_000, 5, 100)  # higher values stay; lower ones are raised
        with pytest.raises(RuntimeError), fewer_collections():
            assert gc.get_threshold() == (90_000, 50, 100)
            raise RuntimeError("restored after an error too")
        assert gc.get_threshold() == (90_000, 5, 100)
        gc.set_threshold(0)  # automatic collection off: stays off
        with fewer_collections():
            assert gc.get_threshold()[0] == 0
    finally:
        gc.set_threshold(*saved)
