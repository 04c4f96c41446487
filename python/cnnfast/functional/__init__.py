"""cnnfast.functional — ops on NumPy arrays, PyTorch-shaped; each `f` has an `f_backward` twin.

Conventions: NCHW activations, OIHW weights; float32 (fast path) or float64; other dtypes or
mixed dtypes raise TypeError; bad shapes/parameters raise ValueError naming the argument.
`f_backward(grad_out, <forward inputs>, ..., needs_input_grad=...)` returns the gradients of the
forward's array inputs in order (None where not requested or not applicable). Exceptions, each
stated in its docstring: sigmoid/tanh/softmax/log_softmax backwards take the forward's `output`,
dropout's its `mask`; ops with one array input return its gradient alone, without
needs_input_grad.
"""
from . import interpolate as _interpolate_mod, pool as _pool_mod, unpool as _unpool_mod
from .activations import (dropout, dropout2d, dropout2d_backward, dropout_backward, leaky_relu,
                          leaky_relu_backward, log_softmax, log_softmax_backward, relu,
                          relu_backward, sigmoid, sigmoid_backward, softmax, softmax_backward,
                          tanh, tanh_backward)
from .conv import conv2d, conv2d_backward
from .conv_family import (conv1d, conv1d_backward, conv3d, conv3d_backward, conv_transpose1d,
                          conv_transpose1d_backward, conv_transpose2d, conv_transpose2d_backward,
                          conv_transpose3d, conv_transpose3d_backward)
from .interpolate import interpolate, interpolate_backward
from .linear import linear, linear_backward
from .local_conv import (locally_connected1d, locally_connected1d_backward, locally_connected2d,
                         locally_connected2d_backward, locally_connected3d,
                         locally_connected3d_backward, tiled_conv1d, tiled_conv1d_backward,
                         tiled_conv2d, tiled_conv2d_backward, tiled_conv3d, tiled_conv3d_backward)
from .loss import (binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_backward,
                   cross_entropy, cross_entropy_backward, mse_loss, mse_loss_backward, nll_loss,
                   nll_loss_backward)
from .matmul import matmul, matmul_backward
from .padding import pad, pad_backward
from .norm import (batch_norm, batch_norm_backward, gaussian_taps, global_contrast_norm,
                   global_contrast_norm_backward, local_contrast_norm,
                   local_contrast_norm_backward, local_response_norm,
                   local_response_norm_backward)
from .pool import *  # noqa: F401,F403  max/avg/lp/adaptive/global pooling (1-D/2-D/3-D) + backward
from .switches import Switches
from .unpool import *  # noqa: F401,F403  max_unpool1d/2d/3d + backward

__all__ = [
    # convolution (conv2d: foundation; engine: matmul; conv family)
    "conv2d", "conv2d_backward", "matmul", "matmul_backward",
    "conv1d", "conv1d_backward", "conv3d", "conv3d_backward",
    "conv_transpose1d", "conv_transpose1d_backward", "conv_transpose2d",
    "conv_transpose2d_backward", "conv_transpose3d", "conv_transpose3d_backward",
    "tiled_conv1d", "tiled_conv1d_backward", "tiled_conv2d", "tiled_conv2d_backward",
    "tiled_conv3d", "tiled_conv3d_backward",
    "locally_connected1d", "locally_connected1d_backward", "locally_connected2d",
    "locally_connected2d_backward", "locally_connected3d", "locally_connected3d_backward",
    # layer ops
    "relu", "relu_backward", "leaky_relu", "leaky_relu_backward", "sigmoid",
    "sigmoid_backward", "tanh", "tanh_backward", "softmax", "softmax_backward",
    "log_softmax", "log_softmax_backward", "dropout", "dropout_backward", "dropout2d",
    "dropout2d_backward", "linear", "linear_backward", "batch_norm", "batch_norm_backward",
    "local_response_norm", "local_response_norm_backward", "global_contrast_norm",
    "global_contrast_norm_backward", "local_contrast_norm", "local_contrast_norm_backward",
    "gaussian_taps", "cross_entropy", "cross_entropy_backward", "nll_loss",
    "nll_loss_backward", "mse_loss", "mse_loss_backward",
    "binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_backward",
    # pooling, unpooling, upsampling
    "Switches",
    # padding (torch.nn.functional.pad's modes)
    "pad", "pad_backward",
]
__all__ += _pool_mod.__all__ + _unpool_mod.__all__ + _interpolate_mod.__all__
