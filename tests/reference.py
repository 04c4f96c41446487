"""NumPy references written directly from the textbook formulas, in float64.

conv2d: Z[n, k, i, j] = Σ_{c,m,l} V[n, g·Cg + c, i·s_h + m·d_h, j·s_w + l·d_w] · K[k, c, m, l] on the
zero-padded input V (g = k // Kg), plus b[k]. The gradients are the formulas' adjoints:
  dV[n, g·Cg + c, i·s_h + m·d_h, j·s_w + l·d_w] += G[n, k, i, j] · K[k, c, m, l]
  dK[k, c, m, l] = Σ_{n,i,j} G[n, k, i, j] · V[n, g·Cg + c, i·s_h + m·d_h, j·s_w + l·d_w]
"""
from __future__ import annotations

import numpy as np


def _taps(xp_shape, w_shape, stride, dilation, P, Q):
    """Yields (m, l, row_slice, col_slice): the padded-input window each kernel tap reads."""
    _, _, R, S = w_shape
    for m in range(R):
        for l in range(S):
            rs = slice(m * dilation[0], m * dilation[0] + (P - 1) * stride[0] + 1, stride[0])
            cs = slice(l * dilation[1], l * dilation[1] + (Q - 1) * stride[1] + 1, stride[1])
            yield m, l, rs, cs


def conv2d_out_size(H, W, R, S, stride, pad, dilation):
    P = (H + pad[0] + pad[1] - dilation[0] * (R - 1) - 1) // stride[0] + 1
    Q = (W + pad[2] + pad[3] - dilation[1] * (S - 1) - 1) // stride[1] + 1
    return P, Q


def conv2d(x, w, b=None, stride=(1, 1), pad=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    G, Kg = groups, K // groups
    P, Q = conv2d_out_size(H, W, R, S, stride, pad, dilation)
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[1]), (pad[2], pad[3])))
    xg = xp.reshape(N, G, Cg, *xp.shape[2:])
    wg = w.reshape(G, Kg, Cg, R, S)
    y = np.zeros((N, G, Kg, P, Q))
    for m, l, rs, cs in _taps(xp.shape, w.shape, stride, dilation, P, Q):
        y += np.einsum("ngcpq,gkc->ngkpq", xg[:, :, :, rs, cs], wg[:, :, :, m, l])
    y = y.reshape(N, K, P, Q)
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    return y


def conv2d_backward(gy, x, w, stride=(1, 1), pad=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """(grad_x, grad_w, grad_b) in float64."""
    gy = np.asarray(gy, np.float64)
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    G, Kg = groups, K // groups
    P, Q = gy.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[1]), (pad[2], pad[3])))
    xg = xp.reshape(N, G, Cg, *xp.shape[2:])
    wg = w.reshape(G, Kg, Cg, R, S)
    gyg = gy.reshape(N, G, Kg, P, Q)
    gxp = np.zeros_like(xg)
    gw = np.zeros_like(wg)
    for m, l, rs, cs in _taps(xp.shape, w.shape, stride, dilation, P, Q):
        gxp[:, :, :, rs, cs] += np.einsum("ngkpq,gkc->ngcpq", gyg, wg[:, :, :, m, l])
        gw[:, :, :, m, l] = np.einsum("ngkpq,ngcpq->gkc", gyg, xg[:, :, :, rs, cs])
    gx = gxp.reshape(xp.shape)[:, :, pad[0]:pad[0] + H, pad[2]:pad[2] + W]
    return gx, gw.reshape(w.shape), gy.sum(axis=(0, 2, 3))
