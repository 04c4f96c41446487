"""cnnfast.functional — ops on NumPy arrays, PyTorch-shaped; each `f` has an `f_backward` twin.

Conventions: NCHW activations, OIHW weights; float32 (fast path) or float64; other dtypes or
mixed dtypes raise TypeError; bad shapes/parameters raise ValueError naming the argument.
`f_backward(grad_out, <forward inputs>, ..., needs_input_grad=...)` returns the gradients of the
forward's array inputs in order (None where not requested or not applicable).
"""
from .conv import conv2d, conv2d_backward
from .matmul import matmul, matmul_backward

__all__ = ["conv2d", "conv2d_backward", "matmul", "matmul_backward"]
