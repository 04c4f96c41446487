"""Look-up of the functional ops the layers call, so layers whose op lands in another branch
(pooling: issue 4; conv1d/3d, transposed, tiled, locally connected: issue 5) fail with a clear
message until it is merged. All max-pool backward calls go through `max_pool_backward` (one place
to adapt if the pooling branch settles on a different signature)."""
from __future__ import annotations

from .. import functional as F


def op(name: str):
    fn = getattr(F, name, None)
    if fn is None:
        raise RuntimeError(f"cnnfast.functional.{name} is not available in this build "
                           f"(the layer needs it; it lands with the pooling / conv-family ops)")
    return fn


def available(name: str) -> bool:
    return hasattr(F, name)


def first(result):
    """The input gradient of a backward that may return a tuple of gradients."""
    return result[0] if isinstance(result, tuple) else result


def max_pool_backward(nd: int, grad_out, x, kernel_size, stride, padding, dilation, ceil_mode,
                      indices):
    return first(op(f"max_pool{nd}d_backward")(grad_out, x, kernel_size, stride, padding,
                                               dilation, ceil_mode, indices=indices))
