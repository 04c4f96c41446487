"""cnnfast.functional — ops on NumPy arrays, PyTorch-shaped; each `f` has an `f_backward` twin.

Conventions: NCHW activations, OIHW weights; float32 (fast path) or float64; other dtypes or
mixed dtypes raise TypeError; bad shapes/parameters raise ValueError naming the argument.
`f_backward(grad_out, <forward inputs>, ..., needs_input_grad=...)` returns the gradients of the
forward's array inputs in order (None where not requested or not applicable).
"""
from .conv import conv2d, conv2d_backward
from .conv_family import (conv1d, conv1d_backward, conv3d, conv3d_backward, conv_transpose1d,
                          conv_transpose1d_backward, conv_transpose2d, conv_transpose2d_backward,
                          conv_transpose3d, conv_transpose3d_backward)
from .local_conv import (locally_connected1d, locally_connected1d_backward, locally_connected2d,
                         locally_connected2d_backward, locally_connected3d,
                         locally_connected3d_backward, tiled_conv1d, tiled_conv1d_backward,
                         tiled_conv2d, tiled_conv2d_backward, tiled_conv3d, tiled_conv3d_backward)

__all__ = ["conv2d", "conv2d_backward",
           "conv1d", "conv1d_backward", "conv3d", "conv3d_backward",
           "conv_transpose1d", "conv_transpose1d_backward", "conv_transpose2d",
           "conv_transpose2d_backward", "conv_transpose3d", "conv_transpose3d_backward",
           "tiled_conv1d", "tiled_conv1d_backward", "tiled_conv2d", "tiled_conv2d_backward",
           "tiled_conv3d", "tiled_conv3d_backward",
           "locally_connected1d", "locally_connected1d_backward", "locally_connected2d",
           "locally_connected2d_backward", "locally_connected3d", "locally_connected3d_backward"]
