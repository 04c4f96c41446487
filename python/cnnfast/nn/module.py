"""Module and Parameter: the explicit forward/backward layer protocol of cnnfast.nn.

A Module's `forward(x)` computes the output and stores what its backward needs; `backward(g)`
takes dL/d(output), accumulates dL/d(parameter) into each Parameter's `.grad` (+=) and returns
dL/d(input). No autograd graph: a module instance is used once per forward/backward pair (share
weights by sharing Parameters, not by calling one instance twice: a backward that would run on
inputs a second forward overwrote raises RuntimeError). Parameter and buffer names,
shapes and layouts match torch.nn, so a torch state_dict converted to NumPy loads unchanged.

`module.to('cuda')` moves parameters, gradients and float buffers to the GPU (DeviceArrays; the
functional ops then run their CUDA twins), `.to('cpu')` brings them back. On the device a zeroed
gradient is dropped rather than cleared (no kernel): the next backward's gradient array becomes
`.grad`, and reading `.grad` before any backward gives zeros.
"""
from __future__ import annotations

import functools
from collections import OrderedDict, namedtuple
from collections.abc import Mapping
from typing import Dict, Iterator, Optional, Tuple

import numpy as np

from . import _device


# What load_state_dict(strict=False) left out, as torch.nn.Module.load_state_dict returns it.
IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Parameter:
    """A trainable array: `.data` (updated in place by optimizers) and `.grad` (same shape);
    NumPy arrays, or DeviceArrays after Module.to('cuda').

    torch's `grad is None` (no gradient since zero_grad(set_to_none=True), or ever) is kept as a
    flag, `has_grad`, next to a zeroed array: optimizers skip a parameter without a gradient,
    as torch's skip a None grad (weight decay and momentum do not move an unused parameter),
    while `.grad` still reads as zeros (reading it, or assigning it, counts as a gradient)."""

    __slots__ = ("data", "_grad", "has_grad")

    def __init__(self, data: np.ndarray):
        if not isinstance(data, np.ndarray) or data.dtype not in (np.float32, np.float64):
            raise TypeError(f"Parameter: expected a float32/float64 numpy.ndarray, got "
                            f"{getattr(data, 'dtype', type(data).__name__)}")
        if not (data.flags.c_contiguous and data.flags.aligned and data.flags.writeable):
            # torch's Parameter shares its tensor's storage: a silent copy here would leave the
            # caller's array untouched by every optimizer step
            raise ValueError(f"Parameter: data must be a writeable, aligned, C-contiguous array "
                             f"(it is updated in place), got strides {data.strides} for shape "
                             f"{data.shape}; pass numpy.ascontiguousarray(data) for a copy")
        self.data = data
        self._grad = np.zeros_like(self.data)
        self.has_grad = False

    @property
    def grad(self):
        g = self._grad
        if g is None:  # a dropped device gradient (zero_grad): zeros when asked for
            from .. import cuda
            g = self._grad = cuda.zeros(self.data.shape)
        self.has_grad = True  # the caller may write into it
        return g

    @grad.setter
    def grad(self, value):
        self._grad = value
        self.has_grad = True

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Host: grad[...] = 0 in place. Device: the gradient is dropped (no kernel). With
        set_to_none (torch's default) the parameter also has no gradient until the next
        backward, so an optimizer step leaves it alone."""
        if type(self._grad) is np.ndarray:
            self._grad[...] = 0
        else:
            self._grad = None
        if set_to_none:
            self.has_grad = False

    def numel(self) -> int:
        return int(self.data.size)

    @property
    def ndim(self) -> int:
        return len(self.data.shape)

    def size(self, dim: Optional[int] = None):
        """The shape, or its length along `dim` (torch.Tensor.size)."""
        return self.data.shape if dim is None else self.data.shape[dim]

    @property
    def device(self) -> str:
        return "cuda" if _device.on_device(self.data) else "cpu"

    @property
    def shape(self) -> Tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


def _counted_forward(f):
    """A forward (or forward_relu) that counts its outermost calls: see _checked_backward."""
    @functools.wraps(f)
    def forward(self, *args, **kwargs):
        d = self.__dict__
        if d.get("_in_forward"):  # a subclass's forward calling super().forward(): one call
            return f(self, *args, **kwargs)
        d["_in_forward"] = True
        try:
            out = f(self, *args, **kwargs)
        finally:
            d["_in_forward"] = False
        if d.get("_backward_calls", 0):  # the first forward after a backward: a new round
            d["_forward_calls"] = 0
        d["_forward_calls"] = d.get("_forward_calls", 0) + 1
        d["_backward_calls"] = 0
        return out
    forward._counted = True
    return forward


def _checked_backward(f):
    """A backward that refuses to run for a forward whose saved inputs a later call of the same
    instance overwrote. Forwards save what their backward needs on the instance, so one instance
    called twice (Sequential(lin, relu, lin), a siamese encoder) keeps the second call's inputs;
    the backward for the first call would silently use them. The pattern that shows it: two or
    more forwards, then a second backward before the next forward."""
    @functools.wraps(f)
    def backward(self, *args, **kwargs):
        d = self.__dict__
        if d.get("_in_backward"):
            return f(self, *args, **kwargs)
        calls, backs = d.get("_forward_calls", 0), d.get("_backward_calls", 0) + 1
        if calls >= 2 and backs >= 2:
            raise RuntimeError(
                f"{type(self).__name__}.backward: this instance ran forward {calls} times before "
                f"its backwards, and its saved inputs are the last call's, so the backward for "
                f"an earlier call would be wrong. Use one instance per place in the network and "
                f"share the weights by sharing Parameters (b.weight = a.weight), or run forward "
                f"and backward in turn")
        d["_backward_calls"] = backs
        d["_in_backward"] = True
        try:
            return f(self, *args, **kwargs)
        finally:
            d["_in_backward"] = False
    backward._counted = True
    return backward


class Module:
    """Base class: registers Parameters, buffers and sub-modules assigned as attributes."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name, wrap in (("forward", _counted_forward), ("forward_relu", _counted_forward),
                           ("backward", _checked_backward)):
            f = cls.__dict__.get(name)
            if callable(f) and not getattr(f, "_counted", False):
                setattr(cls, name, wrap(f))

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        d = self.__dict__
        # Hot path (forwards saving their inputs): a name already held as a plain attribute is
        # in none of the three registries (each move between them pops the others).
        if name in d and value is not None and not isinstance(value, (Parameter, Module)):
            d[name] = value
            return
        if "_parameters" not in d:
            raise AttributeError(f"{type(self).__name__}: call Module.__init__() before "
                                 f"assigning attributes")
        if not isinstance(value, (Parameter, Module)):  # as torch: buffers stay buffers
            if name in self._buffers:
                self._buffers[name] = value
                return
            if value is not None and name in self._parameters:
                raise TypeError(f"{type(self).__name__}.{name}: cannot assign a "
                                f"{type(value).__name__} to a parameter (expected a "
                                f"cnnfast.nn.Parameter or None; to change its values, assign to "
                                f".{name}.data)")
        for d in (self._parameters, self._buffers, self._modules):
            d.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif value is None and name in ("weight", "bias"):
            self._parameters[name] = None  # e.g. bias=False: keeps torch's attribute
        else:
            object.__setattr__(self, name, value)
            return
        self.__dict__.pop(name, None)

    def __getattr__(self, name):
        for key in ("_parameters", "_buffers", "_modules"):
            d = self.__dict__.get(key)
            if d is not None and name in d:
                return d[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def register_buffer(self, name: str, value: np.ndarray) -> None:
        """A non-trainable array saved in state_dict (e.g. BatchNorm's running_mean)."""
        self._buffers[name] = value
        self.__dict__.pop(name, None)

    def add_module(self, name: str, module: "Module") -> None:
        """Registers `module` as the sub-module `name` (torch.nn.Module.add_module)."""
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"add_module: name must be a non-empty string without '.', got "
                             f"{name!r}")
        if not isinstance(module, Module):
            raise TypeError(f"add_module: {type(module).__name__} is not a Module")
        setattr(self, name, module)

    def apply(self, fn) -> "Module":
        """Calls fn(m) for every sub-module, children first, then self (torch's order); e.g. a
        custom weight init."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ---- the layer protocol --------------------------------------------------------------
    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__}.backward")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    @property
    def needs_input_grad(self) -> bool:
        return self.__dict__.get("_needs_input_grad", True)

    def set_needs_input_grad(self, needed: bool = True) -> "Module":
        """Whether backward must return dL/d(input). When the input is data (fit() turns it
        off for the duration of training), conv and linear layers skip their input-gradient pass
        and backward returns None; containers pass the flag to the module that sees their input.
        Other layers still compute and return it."""
        object.__setattr__(self, "_needs_input_grad", bool(needed))
        return self

    # ---- traversal -------------------------------------------------------------------------
    def named_children(self) -> Iterator[Tuple[str, "Module"]]:
        return iter(self._modules.items())

    def children(self) -> Iterator["Module"]:
        return iter(self._modules.values())

    def named_modules(self, memo: Optional[set] = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[Tuple[str, "Module"]]:
        """(name, module) for this module and every submodule, depth first, as torch: a module
        reached twice (shared, e.g. one layer used at two places) is yielded once, under its
        first name, unless remove_duplicate=False."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(memo, f"{prefix}.{name}" if prefix else name,
                                       remove_duplicate)

    def modules(self) -> Iterator["Module"]:
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix: str = "") -> Iterator[Tuple[str, Parameter]]:
        seen = set()
        for mname, m in self.named_modules(prefix=prefix):
            for name, p in m._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mname}.{name}" if mname else name), p

    def parameters(self) -> Iterator[Parameter]:
        return (p for _, p in self.named_parameters())

    def named_buffers(self, prefix: str = "") -> Iterator[Tuple[str, np.ndarray]]:
        seen = set()
        for mname, m in self.named_modules(prefix=prefix):
            for name, b in m._buffers.items():
                if id(b) not in seen:
                    seen.add(id(b))
                    yield (f"{mname}.{name}" if mname else name), b

    def buffers(self) -> Iterator[np.ndarray]:
        return (b for _, b in self.named_buffers())

    # ---- state -------------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            p.zero_grad(set_to_none)

    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    @property
    def device(self) -> str:
        """'cuda' when the parameters are on the GPU (Module.to('cuda')), else 'cpu'."""
        for p in self.parameters():
            return p.device
        for _, b in self.named_buffers():
            if _device.on_device(b):
                return "cuda"
        return "cpu"

    def to(self, target) -> "Module":
        """to('cuda') / to('cpu'): moves every parameter, its gradient and every float buffer
        (BatchNorm's running statistics) to the GPU (float32 only) or back to NumPy; integer
        buffers (num_batches_tracked) stay on the host. to(dtype): casts parameters, gradients
        and float buffers to float32/float64 (on the host)."""
        if _device.is_device_name(target):
            return self._to_device(target)
        dtype = np.dtype(target)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype: expected float32 or float64, got {dtype}")
        if self.device == "cuda":
            raise TypeError(f"to({dtype}): the module is on the GPU (float32 only); move it "
                            f"back first with .to('cpu')")
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None and p.data.dtype != dtype:  # the same dtype: nothing copied
                    p.data = p.data.astype(dtype)
                    p._grad = p._grad.astype(dtype)  # not .grad: that would mark a gradient
            for name, b in m._buffers.items():
                if b.dtype.kind == "f":
                    m._buffers[name] = b.astype(dtype)
        return self

    def float(self) -> "Module":
        return self.to(np.float32)

    def double(self) -> "Module":
        return self.to(np.float64)

    def _to_device(self, device: str) -> "Module":
        if device == "cuda":
            _device.require_cuda(f"{type(self).__name__}.to")
            for name, p in self.named_parameters():  # check all before moving any
                if p.data.dtype != np.float32:
                    raise TypeError(f"{name}: the CUDA kernels take float32, got "
                                    f"{p.data.dtype} (cast with .to(numpy.float32) first)")
        for mname, m in self.named_modules():
            for name, p in m._parameters.items():
                if p is not None:
                    what = f"{mname}.{name}" if mname else name
                    p.data = _device.move(p.data, device, what)
                    g, had = p._grad, p.has_grad
                    p._grad = None if g is None and device == "cuda" else \
                        _device.move(p.grad, device, what + ".grad")
                    p.has_grad = had  # moving is not a gradient (p.grad marked one)
            for name, b in m._buffers.items():
                if getattr(b, "dtype", None) is not None and b.dtype.kind == "f":
                    m._buffers[name] = _device.move(b, device, f"{mname}.{name}" if mname else name)
        return self

    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Copies of every parameter and buffer, keyed as torch.nn names them."""
        sd: "OrderedDict[str, np.ndarray]" = OrderedDict()
        for mname, m in self.named_modules(remove_duplicate=False):  # shared: under each name
            for name, p in m._parameters.items():
                if p is not None:
                    sd[f"{mname}.{name}" if mname else name] = _device.host_copy(p.data)
            for name, b in m._buffers.items():
                sd[f"{mname}.{name}" if mname else name] = _device.host_copy(b)
        return sd

    def load_state_dict(self, state_dict: Mapping[str, np.ndarray],
                        strict: bool = True) -> "IncompatibleKeys":
        """Copies arrays into the parameters/buffers in place (dtype cast to the module's). Every
        entry is checked before any is copied: ValueError naming the keys when keys are
        missing/unexpected (strict) or shapes differ, TypeError for non-numeric values. Returns
        (missing_keys, unexpected_keys), as torch does, so that strict=False says what it
        skipped."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict: expected a mapping of names to arrays, got "
                            f"{type(state_dict).__name__}")
        targets: Dict[str, Tuple[Module, str, bool]] = {}
        for mname, m in self.named_modules(remove_duplicate=False):
            for name, p in m._parameters.items():
                if p is not None:
                    targets[f"{mname}.{name}" if mname else name] = (m, name, True)
            for name in m._buffers:
                targets[f"{mname}.{name}" if mname else name] = (m, name, False)
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        if strict and (missing or unexpected):
            raise ValueError(f"load_state_dict: missing keys {missing}, unexpected keys "
                             f"{unexpected}")
        staged = []
        for key, value in state_dict.items():
            if key not in targets:
                continue
            m, name, is_param = targets[key]
            dst = m._parameters[name].data if is_param else m._buffers[name]
            value = np.asarray(value)
            if value.dtype.kind not in "biuf":
                raise TypeError(f"load_state_dict: {key!r} holds {value.dtype} values, expected "
                                f"real numbers")
            if value.shape != dst.shape:
                raise ValueError(f"load_state_dict: {key!r} has shape {value.shape}, the module "
                                 f"expects {dst.shape}")
            staged.append((dst, value))
        for dst, value in staged:
            _device.assign(dst, value)
        return IncompatibleKeys(missing, unexpected)

    # ---- printing ------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        return "\n".join(lines) + (")" if len(lines) == 1 else "\n)")


def accumulate(param: Optional[Parameter], grad: Optional[np.ndarray]) -> None:
    """param.grad += grad (the parameter-gradient convention); no-op if either is None. A
    dropped device gradient (zero_grad on the GPU) takes `grad` itself: the ops return fresh
    gradient arrays, so no zero fill and no add kernel run."""
    if param is not None and grad is not None:
        if param._grad is None:
            param._grad = grad
        else:
            param._grad += grad
        param.has_grad = True


def saved(value, layer: Module, what: str = "input"):
    """The array a forward stored for backward; a clear error if backward came first."""
    if value is None:
        raise RuntimeError(f"{type(layer).__name__}.backward called before forward "
                           f"(no saved {what})")
    return value
