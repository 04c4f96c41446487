"""cnnfast.init — weight initializers (in place, like torch.nn.init) and hand-designed kernels.

Each `*_` function fills an ndarray or a Parameter's `.data` in place and returns it. Random ones
take `rng` (a numpy Generator; default: this module's generator, reseeded by `seed(n)`).
Fan-in/fan-out follow PyTorch: for weight (out, in, *kernel), fan_in = in·prod(kernel),
fan_out = out·prod(kernel). Also first-layer kernels obtained without supervised training:
edge-detector and Gabor filter banks (hand-designed) and random zero-mean kernels (Jarrett et al.
2009); the k-means ones (learned without labels) are in cnnfast.unsupervised.
"""
from __future__ import annotations

import math
import numbers
from typing import Optional, Tuple

import numpy as np

from ._checks import int_tuple

_rng = np.random.default_rng()


def seed(n: int) -> None:
    """Reseeds the default generator used when no rng is passed."""
    global _rng
    _rng = np.random.default_rng(n)


def _array(t) -> np.ndarray:
    a = t if isinstance(t, np.ndarray) else getattr(t, "data", None)  # ndarray or Parameter
    if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
        raise TypeError(f"tensor: expected a float numpy.ndarray or Parameter, got {type(t).__name__}")
    return a


def _fill(t, values):
    a = _array(t)
    a[...] = values
    return t


def calculate_fan_in_and_fan_out(t) -> Tuple[int, int]:
    a = _array(t)
    if a.ndim < 2:
        raise ValueError(f"tensor: fan in/out needs at least 2 dims, got shape {a.shape}")
    receptive = int(np.prod(a.shape[2:])) if a.ndim > 2 else 1
    return a.shape[1] * receptive, a.shape[0] * receptive


def calculate_gain(nonlinearity: str, param: Optional[float] = None) -> float:
    """PyTorch's recommended gains: linear/conv/sigmoid 1, tanh 5/3, relu √2, leaky_relu
    √(2/(1+slope²)) (slope default 0.01), selu 3/4."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                        "conv_transpose2d", "conv_transpose3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is not None and (isinstance(param, bool) or not isinstance(param, numbers.Real)):
            raise ValueError(f"negative_slope {param!r} is not a valid number (as torch)")
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"nonlinearity: unsupported {nonlinearity!r}")


def constant_(t, val: float):
    return _fill(t, val)


def zeros_(t):
    return _fill(t, 0.0)


def ones_(t):
    return _fill(t, 1.0)


def uniform_(t, a: float = 0.0, b: float = 1.0, rng=None):
    return _fill(t, (rng or _rng).uniform(a, b, _array(t).shape))


def normal_(t, mean: float = 0.0, std: float = 1.0, rng=None):
    return _fill(t, (rng or _rng).normal(mean, std, _array(t).shape))


def xavier_uniform_(t, gain: float = 1.0, rng=None):
    """Glorot & Bengio: U(−a, a), a = gain·√(6 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -a, a, rng)


def xavier_normal_(t, gain: float = 1.0, rng=None):
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng)


def _kaiming_std(t, a, mode, nonlinearity):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode: expected 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(t, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     rng=None):
    """He et al.: U(−b, b), b = gain·√(3 / fan)."""
    b = math.sqrt(3.0) * _kaiming_std(t, a, mode, nonlinearity)
    return uniform_(t, -b, b, rng)


def kaiming_normal_(t, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    rng=None):
    return normal_(t, 0.0, _kaiming_std(t, a, mode, nonlinearity), rng)


def orthogonal_(t, gain: float = 1.0, rng=None):
    """Saxe et al.: the (out, in·prod(kernel)) matrix has orthonormal rows or columns, × gain."""
    a = _array(t)
    if a.ndim < 2:
        raise ValueError(f"tensor: orthogonal init needs at least 2 dims, got shape {a.shape}")
    if a.size == 0:  # nothing to fill (torch returns the empty tensor)
        return t
    rows, cols = a.shape[0], a.size // a.shape[0]
    m = (rng or _rng).standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(m)
    q = q * np.sign(np.diag(r))  # a uniform (Haar) draw
    if rows < cols:
        q = q.T
    return _fill(t, gain * q.reshape(a.shape))


# ---- hand-designed kernels -------------------------------------------------------------------

def edge_kernels(dtype=np.float32) -> np.ndarray:
    """(4, 1, 3, 3) edge detectors: Sobel x, Sobel y, the two diagonals' Sobel, for conv2d."""
    sx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float64)
    d1 = np.array([[0, 1, 2], [-1, 0, 1], [-2, -1, 0]], np.float64)
    return np.stack([sx, sx.T, d1, d1[:, ::-1]])[:, None].astype(dtype)


def gabor_bank(n_orientations: int = 8, size: int = 7, sigma: float = 2.0,
               wavelength: float = 4.0, gamma: float = 0.5, phase: float = 0.0,
               dtype=np.float32) -> np.ndarray:
    """(n_orientations, 1, size, size) Gabor filters g(x', y') = exp(−(x'² + γ²y'²)/(2σ²)) ·
    cos(2π x'/λ + ψ) at orientations θ = kπ/n (x' = x cos θ + y sin θ, y' = −x sin θ + y cos θ),
    each made zero-mean — the V1-like first-layer features the chapter describes."""
    if n_orientations < 1 or size < 1:
        raise ValueError(f"n_orientations/size: must be >= 1, got {n_orientations}, {size}")
    for name, v in (("sigma", sigma), ("wavelength", wavelength)):
        if not 0 < v < math.inf:  # 0 or NaN made NaN kernels
            raise ValueError(f"{name}: must be finite and > 0, got {v}")
    if not math.isfinite(gamma) or not math.isfinite(phase):
        raise ValueError(f"gamma/phase: must be finite, got {gamma}, {phase}")
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2
    y, x = np.meshgrid(r, r, indexing="ij")
    out = []
    for k in range(n_orientations):
        th = k * math.pi / n_orientations
        xr, yr = x * math.cos(th) + y * math.sin(th), -x * math.sin(th) + y * math.cos(th)
        g = np.exp(-(xr ** 2 + gamma ** 2 * yr ** 2) / (2 * sigma ** 2)) * np.cos(
            2 * math.pi * xr / wavelength + phase)
        out.append(g - g.mean())
    return np.stack(out)[:, None].astype(dtype)


def gabor_kernels(n_orientations: int = 8, n_scales: int = 2, size: int = 7,
                  min_wavelength: float = 3.0, gamma: float = 0.5, phase: float = 0.0,
                  dtype=np.float32) -> np.ndarray:
    """(n_scales·n_orientations, 1, size, size) unit-norm, zero-mean Gabor filters, scale-major:
    kernel s·n_orientations + k has orientation θ_k = kπ/n_orientations (the wave vector points
    along (cos θ, sin θ) in (column, row) coordinates) and wavelength λ_s, geometrically spaced
    from `min_wavelength` to `size` (one scale: `min_wavelength`), with σ = 0.56·λ_s (a
    one-octave bandwidth), so each scale is `gabor_bank(n_orientations, size, σ, λ_s, ...)`."""
    for name, v in (("n_orientations", n_orientations), ("n_scales", n_scales), ("size", size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
    if not math.isfinite(gamma) or not math.isfinite(phase):
        raise ValueError(f"gamma/phase: must be finite, got {gamma}, {phase}")
    if not 0 < min_wavelength <= size:
        raise ValueError(f"min_wavelength: must be in (0, size={size}], got {min_wavelength}")
    wavelengths = (np.geomspace(min_wavelength, size, n_scales) if n_scales > 1
                   else np.array([min_wavelength]))
    bank = np.concatenate([gabor_bank(n_orientations, size, 0.56 * lam, lam, gamma, phase,
                                      np.float64) for lam in wavelengths])
    return _unit_norm(bank).astype(dtype)


def random_kernels(n_kernels: int, in_channels: int = 1, size=5, rng=None,
                   dtype=np.float32) -> np.ndarray:
    """(n_kernels, in_channels, R, S) random first-layer kernels: Gaussian draws made zero-mean
    and unit-norm (the same normalization as gabor_kernels and k-means kernels, so a frozen
    layer of any of them sees inputs at the same scale)."""
    for name, v in (("n_kernels", n_kernels), ("in_channels", in_channels)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
    r, s = int_tuple("size", size, 2, 1)
    w = (rng or _rng).standard_normal((n_kernels, in_channels, r, s))
    w -= w.mean(axis=(1, 2, 3), keepdims=True)
    return _unit_norm(w).astype(dtype)


def _unit_norm(w: np.ndarray) -> np.ndarray:
    """Each kernel w[k] scaled to L2 norm 1 (an all-zero kernel stays zero)."""
    norms = np.sqrt(np.sum(w.reshape(len(w), -1) ** 2, axis=1))
    return w / np.maximum(norms, 1e-12).reshape((-1,) + (1,) * (w.ndim - 1))
