"""Paired seeds: with one seed, a static model and its DyBNN twin start from identical
shared weights (whatever the global random state) and `train` feeds them the same
batches; `dynamize` with that seed gives the DyBNN model's own initial weights."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import randomize_and_calibrate

from larq_dybnn import dynamize, initialize_per_layer
from larq_dybnn.initialization import weight_paths
from larq_dybnn.zoo import build_model

PAIRS = [("reactnet-18", "dybnn-reactnet-18"), ("reactnet-a", "dybnn-reactnet-a")]


def _values(model):
    return {path: weight.numpy() for path, (_, weight) in weight_paths(model).items()}


@pytest.mark.parametrize("static_name, dynamic_name", PAIRS, ids=["reactnet-18", "reactnet-a"])
def test_twins_share_every_initial_weight_and_dynamize_gives_the_dybnn_start(
        static_name, dynamic_name):
    def build(name, global_seed):
        tf.keras.utils.set_random_seed(global_seed)  # must not matter
        return build_model(name, input_shape=(32, 32, 3), num_classes=10,
                           width_multiplier=0.25)

    static, dynamic = build(static_name, 1), build(dynamic_name, 2)
    assert initialize_per_layer(static, seed=7) == len(static.weights)
    assert initialize_per_layer(dynamic, seed=7) == len(dynamic.weights)
    shared, dyn = _values(static), _values(dynamic)
    assert set(shared) < set(dyn)
    for path, value in shared.items():
        np.testing.assert_array_equal(dyn[path], value, err_msg=path)
    extra = set(dyn) - set(shared)
    assert extra and all("hyper_function" in p for p in extra)
    # Initializers are the layers' own: random kernels, constant BN, thresholds, heads.
    assert np.std(shared["stem_conv/kernel"]) > 0
    assert all(np.all(dyn[p] == 0) for p in extra if "head" in p)
    assert all(np.std(dyn[p]) > 0 for p in extra if p.endswith("hidden_kernel"))
    assert all(np.all(v == 1) for p, v in shared.items() if p.endswith("bn/gamma"))
    # The upgrade path with the same seed starts where the DyBNN model starts.
    twin = _values(dynamize(static, seed=7))
    assert set(twin) == set(dyn)
    for path, value in dyn.items():
        np.testing.assert_array_equal(twin[path], value, err_msg=path)
    # Another seed draws other random weights.
    initialize_per_layer(static, seed=8)
    assert not np.array_equal(_values(static)["stem_conv/kernel"], shared["stem_conv/kernel"])
    # With trained-like weights (non-zero thresholds and shifts) the twin computes
    # exactly what the static model computes.
    x = np.random.default_rng(2).normal(size=(4, 32, 32, 3)).astype(np.float32)
    randomize_and_calibrate(static, x, seed=11)
    np.testing.assert_array_equal(dynamize(static, seed=1)(x, training=False).numpy(),
                                  static(x, training=False).numpy())


def test_train_pairs_static_and_dybnn_runs_of_one_seed(tmp_path):
    """Through `train`'s own stages: equal shared weights at step 0 and identical first
    batches for the twins; a --dynamize run starts with the static model's outputs."""
    from larq_dybnn.training import TrainConfig
    from larq_dybnn.training import loop

    def start(model, **options):
        config = TrainConfig(model=model, data="digits", width_multiplier=0.25, seed=3,
                             epochs=1, batch_size=32, output_dir=str(tmp_path / model),
                             **options)
        run = loop._start(config, lambda _: None)
        data = loop._read_data(run)
        fitting = loop._build(run, data)
        first = next(iter(loop._train_batches(run.config, data, first_epoch=0)))
        return run.config, fitting.model, first

    static_config, static, static_batch = start("reactnet-18")
    assert static_config.init_scheme == "per-layer"
    tf.keras.utils.set_random_seed(99)
    _, dynamic, dynamic_batch = start("dybnn-reactnet-18")
    shared, dyn = _values(static), _values(dynamic)
    for path, value in shared.items():
        np.testing.assert_array_equal(dyn[path], value, err_msg=path)
    for a, b in zip(static_batch, dynamic_batch):
        np.testing.assert_array_equal(a.numpy(), b.numpy())

    source = tmp_path / "static.keras"
    static.save(source)
    config, twin, _ = start("reactnet-18", init_from=str(source), dynamize=True,
                            dynamic="sign")
    assert config.reduction == 64
    x = static_batch[0][:8]
    np.testing.assert_array_equal(twin(x, training=False).numpy(),
                                  static(x, training=False).numpy())
    assert len(twin.weights) > len(static.weights)


@pytest.mark.parametrize("options, match", [
    ({"dynamize": True}, "give `init_from`"),
    ({"init_scheme": "random"}, "`init_scheme` must be one of per-layer, global"),
])
def test_pairing_options_are_checked(options, match):
    from larq_dybnn.training import TrainConfig
    from larq_dybnn.training.config import check_config

    with pytest.raises(ValueError, match=match):
        check_config(TrainConfig(model="reactnet-18", **options))
