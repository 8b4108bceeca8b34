"""Zoo weights: registry, verified download from a loopback HTTP server, loading."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import randomize_weights

from larq_dybnn.zoo import DyBNNReActNet18, ReActNetA, register_weights, registered_weights
from larq_dybnn.zoo import weights as zoo_weights

KWARGS = dict(input_shape=(32, 32, 3), width_multiplier=0.25, stem="cifar", num_classes=10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        _QuietHandler.requests.append(self.path)
        super().do_GET()


@pytest.fixture
def served(tmp_path):
    """A folder served over HTTP on 127.0.0.1, and its base URL."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _QuietHandler.requests = []
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch, tmp_path):
    """Private download cache and registry for each test."""
    monkeypatch.setenv(zoo_weights.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(zoo_weights, "_REGISTRY", {})


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def trained(served, rng):
    """A 'trained' DyBNN ReActNet-18 whose weights are served over HTTP."""
    folder, url = served
    model = DyBNNReActNet18(**KWARGS)
    randomize_weights(model, seed=31, scale=0.3)
    path = folder / "dybnn18_cifar.h5"
    model.save_weights(path)
    x = rng.normal(size=(3, 32, 32, 3)).astype(np.float32)
    return model, path, f"{url}/{path.name}", x


def test_download_verify_and_load(trained, tmp_path):
    model, path, url, x = trained
    register_weights(model="dybnn_reactnet_18", name="cifar10-test", url=url,
                     sha256=_sha256(path), num_classes=10)
    assert [e.name for e in registered_weights("dybnn_reactnet_18")] == ["cifar10-test"]
    loaded = DyBNNReActNet18(weights="cifar10-test", **KWARGS)
    np.testing.assert_array_equal(loaded(x), model(x))
    assert _QuietHandler.requests == [f"/{path.name}"]
    # The file lands in the cache the user chose, even though that folder did not exist.
    cached = sorted(p.name for p in (tmp_path / "cache").rglob("*.h5"))
    assert cached == ["dybnn_reactnet_18_cifar10-test.h5"]
    # The second build reads the verified file from the cache: no new request.
    again = DyBNNReActNet18(weights="cifar10-test", **KWARGS)
    np.testing.assert_array_equal(again(x), model(x))
    assert len(_QuietHandler.requests) == 1


def test_no_top_model_loads_the_full_file_by_name(trained):
    model, path, url, x = trained
    register_weights(model="dybnn_reactnet_18", name="cifar10-test", url=url,
                     sha256=_sha256(path), num_classes=10)
    features = DyBNNReActNet18(weights="cifar10-test", include_top=False, **KWARGS)
    expected = tf.keras.Model(model.input, model.get_layer("stage4_block4_prelu").output)
    np.testing.assert_array_equal(features(x), expected(x))


def test_registered_no_top_file_is_preferred(trained, served):
    model, _, _, x = trained
    folder, url = served
    no_top = DyBNNReActNet18(include_top=False, **KWARGS)
    no_top.set_weights(model.get_weights()[: len(no_top.weights)])
    no_top_path = folder / "notop.h5"
    no_top.save_weights(no_top_path)
    register_weights(model="dybnn_reactnet_18", name="cifar10-test", url=f"{url}/notop.h5",
                     sha256=_sha256(no_top_path), num_classes=10, include_top=False)
    loaded = DyBNNReActNet18(weights="cifar10-test", include_top=False, **KWARGS)
    np.testing.assert_array_equal(loaded(x), no_top(x))
    assert _QuietHandler.requests == ["/notop.h5"]


def test_hash_mismatch_is_a_clear_error_and_the_file_is_not_kept(trained, tmp_path):
    model, path, url, _ = trained
    register_weights(model="dybnn_reactnet_18", name="cifar10-test", url=url,
                     sha256="0" * 64, num_classes=10)
    with pytest.raises(ValueError, match="sha256 .* expected 0{64}.*deleted"):
        DyBNNReActNet18(weights="cifar10-test", **KWARGS)
    cached = list((tmp_path / "cache").rglob("*.h5"))
    assert cached == []


def test_num_classes_must_match_registered_weights(trained):
    model, path, url, _ = trained
    register_weights(model="dybnn_reactnet_18", name="cifar10-test", url=url,
                     sha256=_sha256(path), num_classes=10)
    with pytest.raises(ValueError, match="`num_classes`=100 does not match"):
        DyBNNReActNet18(weights="cifar10-test", **{**KWARGS, "num_classes": 100})
    assert _QuietHandler.requests == []  # refused before downloading


def test_names_are_per_model(trained):
    model, path, url, _ = trained
    register_weights(model="dybnn_reactnet_18", name="cifar10-test", url=url,
                     sha256=_sha256(path), num_classes=10)
    with pytest.raises(ValueError, match="registered for reactnet_a \\(none registered\\)"):
        ReActNetA(weights="cifar10-test", **KWARGS)


def test_local_file(trained, tmp_path):
    model, path, _, x = trained
    loaded = DyBNNReActNet18(weights=str(path), **KWARGS)
    np.testing.assert_array_equal(loaded(x), model(x))
    with pytest.raises(ValueError, match="do not fit"):
        DyBNNReActNet18(weights=str(path), **{**KWARGS, "num_classes": 7})
    other = tmp_path / "weights.npz"
    other.write_bytes(b"not weights")
    with pytest.raises(ValueError, match="not an .h5 weights file"):
        DyBNNReActNet18(weights=str(other), **KWARGS)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"sha256": "abc"}, "64 hex digits"), ({"url": ""}, "non-empty")],
)
def test_register_rejects_bad_entries(kwargs, message):
    entry = dict(model="reactnet_a", name="x", url="http://127.0.0.1/x.h5",
                 sha256="a" * 64, num_classes=1000)
    with pytest.raises(ValueError, match=message):
        register_weights(**{**entry, **kwargs})
