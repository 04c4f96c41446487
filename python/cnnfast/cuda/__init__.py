"""cnnfast.cuda — the optional CUDA backend: device arrays and the same ops on NVIDIA GPUs.

    import cnnfast, cnnfast.functional as F
    if cnnfast.cuda.is_available():
        x = cnnfast.cuda.from_numpy(x_host)            # explicit host -> device copy
        y = F.conv2d(x, w_dev, b_dev, padding=1)       # device inputs -> CUDA kernels
        y_host = y.to_numpy()
    else:
        print(cnnfast.cuda.reason())                    # why not (no build / driver / device)

``cnnfast.functional`` ops dispatch on where their array arguments live: NumPy -> CPU, device
arrays (DeviceArray, CuPy arrays, PyTorch CUDA tensors: anything with __cuda_array_interface__ or
a CUDA __dlpack_device__, taken zero-copy) -> CUDA; mixing both in one call is a TypeError.
CUDA kernels (float32): conv2d (+ fused bias/ReLU), conv1d, conv3d, conv_transpose1d/2d/3d and
their backward (one implicit-GEMM engine), relu, max/avg/adaptive/global pooling 1-D/2-D/3-D with switches,
max-unpooling, batch_norm, cross_entropy, linear, dropout / dropout2d, and the SGD / Adam updates
below. Other ops raise TypeError for device inputs. Importing needs no GPU or driver. The layer
API follows: `module.to('cuda')`, `cnnfast.train.fit(..., device='cuda')`.
"""
from __future__ import annotations

from ._array import (DeviceArray, as_device_array, empty, from_dlpack, from_numpy,
                     is_device_array, to_numpy, zeros)
from ._runtime import device_info, is_available, reason, require
from .. import _core

CudaError = getattr(_core, "CudaError", RuntimeError)  # a failed CUDA call (names the call)


def synchronize() -> None:
    """Waits for all queued device work; raises CudaError for an asynchronous kernel fault."""
    require()
    _core.cuda_synchronize()


def sgd_step(p, grad, momentum_buffer=None, lr: float = 1e-3, momentum: float = 0.0,
             dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
             first: bool = False) -> None:
    """torch.optim.SGD's update of the float32 device array p in place (momentum_buffer too;
    first: the buffer starts at this step's gradient)."""
    from ._ops_nn import sgd_step as f
    f(p, grad, momentum_buffer, lr, momentum, dampening, weight_decay, nesterov, first)


def adam_step(p, grad, exp_avg, exp_avg_sq, max_exp_avg_sq=None, step: int = 1,
              lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
              weight_decay: float = 0.0, decoupled: bool = False) -> None:
    """torch.optim.Adam's (decoupled: AdamW's) update of p in place; step >= 1 counts updates;
    max_exp_avg_sq given = AMSGrad."""
    from ._ops_nn import adam_step as f
    f(p, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay,
      decoupled)


__all__ = ["DeviceArray", "CudaError", "adam_step", "as_device_array", "device_info", "empty",
           "from_dlpack", "from_numpy", "is_available", "is_device_array", "reason", "require",
           "sgd_step", "synchronize", "to_numpy", "zeros"]
