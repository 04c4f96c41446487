"""LeNet-5 definition (shape arithmetic; the nn guard; the real model once cnnfast.nn exists)
and the training figures (matplotlib, skipped without it)."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from cnnfast.functional import conv2d
from cnnfast.models import ModelUnavailable, lenet5, lenet5_flat_features

HAVE_NN = importlib.util.find_spec("cnnfast.nn") is not None


def test_lenet5_shape_arithmetic():
    assert lenet5_flat_features(28) == 400  # the classic 16 x 5 x 5
    assert lenet5_flat_features(32) == 16 * 6 * 6
    with pytest.raises(ValueError, match="too small"):
        lenet5_flat_features(8)


@pytest.mark.skipif(HAVE_NN, reason="cnnfast.nn is available")
def test_lenet5_without_nn():
    with pytest.raises(ModelUnavailable, match="cnnfast.nn"):
        lenet5()


@pytest.mark.skipif(not HAVE_NN, reason="cnnfast.nn (issue 6) not in this build yet")
def test_lenet5_with_nn(rng):
    model = lenet5(num_classes=10)
    shapes = [tuple(p.shape) for _, p in model.named_parameters()]
    assert shapes == [(6, 1, 5, 5), (6,), (16, 6, 5, 5), (16,), (120, 400), (120,), (84, 120),
                      (84,), (10, 84), (10,)]
    x = rng.standard_normal((3, 1, 28, 28)).astype(np.float32)
    assert np.asarray(model(x)).shape == (3, 10)
    with pytest.raises(ValueError, match="activation"):
        lenet5(activation="gelu")


class _Seq(list):
    """A minimal sequential model: iterates over its layers, has eval()/named_parameters()."""

    def eval(self):
        return self

    def named_parameters(self):
        return [("0.weight", self.w)]


def test_plots(tmp_path, rng):
    pytest.importorskip("matplotlib")
    from cnnfast.plot import feature_maps, plot_run
    w = rng.standard_normal((6, 1, 5, 5)).astype(np.float32)
    model = _Seq([lambda x: conv2d(x, w, None, padding=2), lambda x: np.maximum(x, 0),
                  lambda x: x.reshape(len(x), -1)])
    model.w = w
    image = rng.random((1, 12, 12)).astype(np.float32)
    (name0, map0), (name1, map1) = feature_maps(model, image)
    assert name0 == "0: function" and map0.shape == (6, 12, 12)
    assert np.array_equal(map0, conv2d(image[None], w, None, padding=2)[0])
    assert np.array_equal(map1, np.maximum(map0, 0))
    hist = {"epoch": [1, 2], "loss": [1.0, 0.5], "accuracy": [0.5, 0.8], "val_loss": [1.1, 0.6],
            "val_accuracy": [0.4, 0.7]}
    written = plot_run(model, hist, image, str(tmp_path / "figs"))
    assert [p.rsplit("/", 1)[1] for p in written] == ["curves.png", "filters.png",
                                                      "feature_maps.png"]
    for p in written:
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    from cnnfast.plot import plot_filters
    with pytest.raises(ValueError, match=r"\(K, C, R, S\)"):
        plot_filters(w[0], str(tmp_path / "x.png"))
    with pytest.raises(TypeError, match="does not iterate"):
        feature_maps(object(), image)
