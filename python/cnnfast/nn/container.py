"""Composites: Sequential (plain chains), Residual (H(x) = F(x) + shortcut(x), ResNet), Concat
(branches joined along channels: Inception, DenseNet) and UNetSkip (encoder features concatenated
with what the inner encoder–decoder returns). Backward through each is exact: a sum's gradient
goes to both terms, a concatenation's gradient is split back to its branches."""
from __future__ import annotations

from collections import OrderedDict
from typing import Iterable, Optional

import numpy as np

from .activation import ReLU
from .basic import Identity
from .conv import Conv2d
from .module import Module, saved


def _check_module(owner: str, what, m) -> Module:
    if not isinstance(m, Module):
        raise TypeError(f"{owner}: {what} is {type(m).__name__}, not a Module")
    return m


class _ModuleSeq(Module):
    """Indexing, iteration and append over the registered sub-modules (Sequential, ModuleList)."""

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self._from_items(list(self._modules.items())[i])
        return list(self._modules.values())[i]

    def _from_items(self, items):
        raise NotImplementedError

    def append(self, m: Module):
        setattr(self, str(len(self)),
                _check_module(f"{type(self).__name__}.append", "the item", m))
        return self


class Sequential(_ModuleSeq):
    """Runs its modules in order; they are named "0", "1", … as in torch.nn.Sequential, or by the
    keys of one OrderedDict argument. A slice keeps the modules' names, as torch's does."""

    def __init__(self, *modules: Module):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                setattr(self, str(name), _check_module("Sequential", f"item {name!r}", m))
            return
        for i, m in enumerate(modules):
            setattr(self, str(i), _check_module("Sequential", f"item {i}", m))

    def _from_items(self, items):
        return Sequential(OrderedDict(items))

    def set_needs_input_grad(self, needed: bool = True) -> "Sequential":
        super().set_needs_input_grad(needed)
        mods = list(self._modules.values())
        if mods:
            mods[0].set_needs_input_grad(needed)
        return self

    def forward(self, x):
        # A Conv2d directly followed by a ReLU runs as one conv with a fused ReLU epilogue; the
        # ReLU module is then skipped in both directions (the conv masks its gradient).
        mods = list(self._modules.values())
        self._fused = set()
        i = 0
        while i < len(mods):
            if i + 1 < len(mods) and _fusable(mods[i], mods[i + 1]):
                x = mods[i].forward_relu(x)
                self._fused.add(i)
                i += 2
            else:
                x = mods[i](x)
                i += 1
        return x

    def backward(self, grad_out):
        mods = list(self._modules.values())
        fused = self.__dict__.get("_fused", set())
        i = len(mods) - 1
        while i >= 0:
            if i - 1 in fused:  # the ReLU at i ran inside the conv at i - 1
                i -= 1
            grad_out = mods[i].backward(grad_out)
            i -= 1
        return grad_out


class ModuleList(_ModuleSeq):
    """Holds sub-modules in a list, registered (parameters, state_dict "0.weight", ...) as
    torch.nn.ModuleList; it has no forward of its own."""

    def __init__(self, modules: Optional[Iterable[Module]] = None):
        super().__init__()
        for m in modules or ():
            self.append(m)

    def _from_items(self, items):
        return ModuleList(m for _, m in items)

    def __setitem__(self, i: int, m: Module) -> None:
        name = list(self._modules)[i]
        setattr(self, name, _check_module("ModuleList", f"item {i}", m))

    def extend(self, modules: Iterable[Module]) -> "ModuleList":
        for m in modules:
            self.append(m)
        return self

    def forward(self, x):
        raise NotImplementedError("ModuleList has no forward: call its modules")


def _fusable(m: Module, nxt: Module) -> bool:
    # Exact classes only, and neither forward wrapped on the instance (summary() and user
    # instrumentation replace `forward` per instance; they must see both layers run).
    return (type(m) is Conv2d and type(nxt) is ReLU and "forward" not in m.__dict__
            and "forward" not in nxt.__dict__)


class Residual(Module):
    """y = block(x) + shortcut(x); shortcut defaults to Identity (e.g. a 1×1 conv + BN to
    change shape). Follow with ReLU for the ResNet basic block."""

    def __init__(self, block: Module, shortcut: Optional[Module] = None):
        super().__init__()
        self.block = block
        self.shortcut = shortcut if shortcut is not None else Identity()

    def forward(self, x):
        f, s = self.block(x), self.shortcut(x)
        if f.shape != s.shape:
            raise ValueError(f"Residual: block output {f.shape} and shortcut output {s.shape} "
                             f"differ; give a shortcut that maps the input to the block's shape")
        return f + s

    def set_needs_input_grad(self, needed: bool = True) -> "Residual":
        # both paths see the input: a residual block on data skips its first conv's dx pass
        super().set_needs_input_grad(needed)
        self.block.set_needs_input_grad(needed)
        self.shortcut.set_needs_input_grad(needed)
        return self

    def backward(self, grad_out):
        gb, gs = self.block.backward(grad_out), self.shortcut.backward(grad_out)
        if not self.needs_input_grad:
            return None
        return gb + gs


class Concat(Module):
    """Runs every branch on the same input and concatenates the outputs along `dim`
    (channels by default); branches are named "0", "1", …"""

    def __init__(self, branches: Iterable[Module], dim: int = 1):
        super().__init__()
        for i, m in enumerate(branches):
            setattr(self, str(i), m)
        if not self._modules:
            raise ValueError("Concat: needs at least one branch")
        self.dim = dim
        self._sizes = None

    def forward(self, x):
        outs = [m(x) for m in self._modules.values()]
        if not all(isinstance(o, np.ndarray) for o in outs):
            raise TypeError(f"{type(self).__name__}: concatenating CUDA device arrays has no "
                            f"device kernel yet; run this model on the CPU (.to('cpu'))")
        self._sizes = [o.shape[self.dim] for o in outs]
        try:
            return np.concatenate(outs, axis=self.dim)
        except ValueError as e:
            raise ValueError(f"Concat: branch outputs {[o.shape for o in outs]} cannot be "
                             f"joined along dim {self.dim}: {e}") from None

    def set_needs_input_grad(self, needed: bool = True) -> "Concat":
        super().set_needs_input_grad(needed)  # every branch sees the input
        for m in self._modules.values():
            m.set_needs_input_grad(needed)
        return self

    def backward(self, grad_out):
        sizes = saved(self._sizes, self, "branch sizes")
        parts = np.split(grad_out, np.cumsum(sizes)[:-1], axis=self.dim)
        grad = None
        for m, g in zip(self._modules.values(), parts):
            gi = m.backward(np.ascontiguousarray(g))  # parameter gradients accumulate either way
            if self.needs_input_grad:
                grad = gi if grad is None else grad + gi
        return grad


class UNetSkip(Concat):
    """U-Net's skip connection around an inner encoder–decoder: y = concat(x, inner(x)) along
    channels, so the decoder sees the encoder's features (inner must restore the spatial size)."""

    def __init__(self, inner: Module, dim: int = 1):
        super().__init__([Identity(), inner], dim)
