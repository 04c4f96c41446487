"""Pooling, unpooling and interpolation against torch.nn.functional (skipped without torch):
forward values, indices and gradients of sum(y * g) on random configurations."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast.functional as F

from helpers import assert_close

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _grad(fn, x, g):
    t = torch.tensor(x, requires_grad=True)
    out = fn(t)
    y = out[0] if isinstance(out, tuple) else out
    (y * torch.tensor(g)).sum().backward()
    return out, t.grad.numpy()


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("k,s,p,d,ceil", [(2, 2, 0, 1, False), (3, 2, 1, 1, False),
                                          (3, 2, 1, 2, True), (3, 3, 0, 1, True),
                                          (4, 1, 2, 1, False)])
def test_max_pool_vs_torch(rng, nd, k, s, p, d, ceil):
    x = rng.standard_normal((2, 3) + (11, 9, 13)[3 - nd:])
    y, sw = getattr(F, f"max_pool{nd}d")(x, k, s, p, d, ceil, return_indices=True)
    g = rng.standard_normal(y.shape)
    tfn = getattr(TF, f"max_pool{nd}d")
    (ty, ti), tgx = _grad(lambda t: tfn(t, k, s, p, d, ceil, return_indices=True), x, g)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_array_equal(sw.indices, ti.numpy())
    assert_close(getattr(F, f"max_pool{nd}d_backward")(g, x, k, s, p, d, ceil, indices=sw),
                 tgx, 1e-13)
    if s >= k and not ceil:  # torch: overlap is unspecified and it rejects some sizes
        u = getattr(F, f"max_unpool{nd}d")(y, sw)
        tu = getattr(TF, f"max_unpool{nd}d")(ty, ti, k, s, p, output_size=x.shape[2:])
        np.testing.assert_array_equal(u, tu.detach().numpy())


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("k,s,p,ceil,include,div", [(2, 2, 0, False, True, None),
                                                    (3, 2, 1, True, True, None),
                                                    (3, 2, 1, True, False, None),
                                                    (3, 1, 1, False, False, 5)])
def test_avg_pool_vs_torch(rng, nd, k, s, p, ceil, include, div):
    if nd == 1 and div is not None:
        pytest.skip("torch.avg_pool1d has no divisor_override")
    x = rng.standard_normal((2, 3) + (10, 9, 13)[3 - nd:])
    args = (k, s, p, ceil, include) + ((div,) if nd > 1 else ())
    y = getattr(F, f"avg_pool{nd}d")(x, k, s, p, ceil, include, div)
    g = rng.standard_normal(y.shape)
    ty, tgx = _grad(lambda t: getattr(TF, f"avg_pool{nd}d")(t, *args), x, g)
    assert_close(y, ty.detach().numpy(), 1e-13)
    assert_close(getattr(F, f"avg_pool{nd}d_backward")(g, x, k, s, p, ceil, include, div), tgx,
                 1e-13)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("out", [1, 3, 7])
def test_adaptive_vs_torch(rng, nd, out):
    x = rng.standard_normal((2, 3) + (13, 10, 17)[3 - nd:])
    for kind in ("avg", "max"):
        y = getattr(F, f"adaptive_{kind}_pool{nd}d")(x, out)
        g = rng.standard_normal(y.shape)
        ty, tgx = _grad(lambda t: getattr(TF, f"adaptive_{kind}_pool{nd}d")(t, out), x, g)
        assert_close(y, ty.detach().numpy(), 1e-13)
        assert_close(getattr(F, f"adaptive_{kind}_pool{nd}d_backward")(g, x, out), tgx, 1e-12)


@pytest.mark.parametrize("nd", [1, 2])
def test_lp_pool_vs_torch(rng, nd):
    x = rng.uniform(0.1, 2.0, (2, 3) + (10, 9)[2 - nd:])  # x > 0: torch's x^p equals |x|^p
    # ceil_mode=False only: torch rescales partial ceil-mode windows by k/count (avg_pool · k);
    # cnnfast's Lp pooling is the plain norm of the window's taps.
    for p, k, s, ceil in ((2.0, 2, 2, False), (3.0, 3, 2, False)):
        y = getattr(F, f"lp_pool{nd}d")(x, p, k, s, ceil)
        g = rng.standard_normal(y.shape)
        ty, tgx = _grad(lambda t: getattr(TF, f"lp_pool{nd}d")(t, p, k, s, ceil), x, g)
        assert_close(y, ty.detach().numpy(), 1e-12)
        assert_close(getattr(F, f"lp_pool{nd}d_backward")(g, x, p, k, s, ceil), tgx, 1e-11)


@pytest.mark.parametrize("mode,nd", [("nearest", 1), ("nearest", 2), ("nearest", 3),
                                     ("linear", 1), ("bilinear", 2), ("trilinear", 3)])
@pytest.mark.parametrize("size,scale", [((7, 9, 5), None), ((3, 4, 2), None), (None, 2.0),
                                        (None, 1.5)])
def test_interpolate_vs_torch(rng, mode, nd, size, scale):
    x = rng.standard_normal((2, 3) + (5, 6, 4)[3 - nd:])
    size = None if size is None else size[3 - nd:]
    for align in ((None,) if mode == "nearest" else (False, True)):
        kw = dict(size=size, scale_factor=scale, mode=mode, align_corners=align)
        y = F.interpolate(x, **kw)
        g = rng.standard_normal(y.shape)
        ty, tgx = _grad(lambda t: TF.interpolate(t, **kw), x, g)
        assert_close(y, ty.detach().numpy(), 1e-12, f"{kw}")
        assert_close(F.interpolate_backward(g, x, **kw), tgx, 1e-12, f"{kw}")
