"""Every zoo model exports through the converter with each binary conv as
LceBconv2d, minimal threshold ops, and LCE outputs that match Keras."""

from __future__ import annotations

import collections

import larq as lq
import numpy as np
import pytest
from conftest import randomize_and_calibrate

from larq_dybnn import DynamicPReLU, DynamicSign
from larq_dybnn.converter import export_and_verify
from larq_dybnn.zoo import DyBNNReActNet18, DyBNNReActNetA, ReActNet18, ReActNetA

# Small inputs keep conversion fast; the graphs are the full-depth ones.
SIZES = {"imagenet": 32, "cifar": 16}


# Every builder once, and both stems per architecture: DyBNN ReActNet-18 with both,
# DyBNN ReActNet-A (the slowest conversion in the suite) with the CIFAR stem and its
# static twin with the ImageNet stem, to keep the suite's time in budget.
@pytest.mark.parametrize(
    "builder, stem",
    [(DyBNNReActNetA, "cifar"), (ReActNetA, "imagenet"),
     (DyBNNReActNet18, "imagenet"), (DyBNNReActNet18, "cifar"), (ReActNet18, "imagenet")],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_zoo_model_converts_and_matches_lce(builder, stem, rng):
    size = SIZES[stem]
    model = builder(input_shape=(size, size, 3), num_classes=10, width_multiplier=0.25, stem=stem)
    x = rng.normal(size=(16, size, size, 3)).astype(np.float32)
    randomize_and_calibrate(model, x, seed=17)
    report = export_and_verify(model, samples=x, samples_source="random", benchmark=False)
    ops = collections.Counter(report.ops)
    assert report.binary.ok

    convs = [l for l in model.layers if isinstance(l, lq.layers.QuantConv2D)]
    signs = [c.input_quantizer for c in convs]
    assert all(isinstance(q, DynamicSign) for q in signs)
    assert ops["LceBconv2d"] == len(convs) == (26 if builder.__name__.endswith("A") else 16)
    assert ops["LceQuantize"] == len(convs)

    dynamic_signs = [c for c in convs if c.input_quantizer.dynamic_threshold]
    prelus = [l for l in model.layers if isinstance(l, DynamicPReLU)]
    dynamic_prelus = [p for p in prelus if p.dynamic_shifts]
    assert ops["PRELU"] == len(prelus)
    # Hyper functions: MEAN + 2 FC per DynamicSign, MEAN + 3 FC per DynamicPReLU;
    # the classifier adds one FC. The converter drops a MEAN over a 1x1 map (it is
    # the identity), which the small test inputs produce in the last stage.
    assert ops["FULLY_CONNECTED"] == 2 * len(dynamic_signs) + 3 * len(dynamic_prelus) + 1
    pooled = [l for l in dynamic_signs + dynamic_prelus if np.prod(l.input_shape[1:3]) > 1]
    assert ops["MEAN"] == len(pooled)
    thresholds = report.thresholds
    assert thresholds["dynamic_sign_layers"] == len(dynamic_signs)
    assert thresholds["dynamic_prelu_layers"] == len(dynamic_prelus)
    assert thresholds["minimal"] is True
    assert set(thresholds["added_ops"]) <= {"MEAN", "FULLY_CONNECTED"}
    assert report.size_bytes < report.float32_bytes
    assert "STRIDED_SLICE" not in ops
    assert ops["RESHAPE"] <= 1  # only larq-zoo's pooling head (Flatten)

    parity = report.parity
    assert float(np.abs(model(x)).max()) < 1e5  # calibrated: no blow-up
    # Per sample: most samples match to rounding. A rounding-level flip of one
    # binary activation can make a whole sample diverge in a deep random DyBNN (its
    # pooled context moves every later threshold), so a few samples may fall out;
    # a conversion error would make (nearly) all of them differ.
    assert parity.close_fraction >= 0.75, parity
    assert parity.top1_agreement >= 0.75, parity
