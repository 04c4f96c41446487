"""cnnfast.summary(model, input_shape): one row per layer as a forward pass visits it — name, output
shape, parameters, FLOPs (2 per multiply-add of conv / transposed conv / linear layers; other
layers count 0) and receptive field (size and jump, in input pixels, per spatial dim) — then totals
and activation memory. Receptive fields follow r_out = r_in + (k−1)·d·j_in, j_out = j_in·s
(transposed: r_out = r_in + (⌈((k−1)·d+1)/s⌉ − 1)·j_in, j_out = j_in/s; adaptive and global
pooling: their widest window; linear upsampling: two taps); where branches meet (a composite's
add or concat) the widest of that composite's own branches is taken. Unpooling keeps the field
and scales the jump, an approximation (exact fields there depend on the switches)."""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import List, Optional, Sequence, Tuple

import numpy as np

from . import nn
from .nn.pooling import _AdaptiveMaxPoolNd, _MaxPoolNd, _MaxUnpoolNd, _Pool


@dataclass
class LayerRow:
    name: str
    kind: str
    output_shape: Tuple[int, ...]      # without the batch dim
    params: int
    flops: int                         # per image
    rf_size: Optional[Tuple[int, ...]]  # None when the output has no spatial dims
    rf_jump: Optional[Tuple[Fraction, ...]]


@dataclass
class Summary:
    input_shape: Tuple[int, ...]
    rows: List[LayerRow] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    total_flops: int = 0
    activation_bytes: int = 0   # input + every layer output, for batch_size images
    param_bytes: int = 0
    batch_size: int = 1

    def __str__(self) -> str:
        return format_summary(self)


def _tup(v, nd):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * nd


def _window(m, nd):
    """(kernel, stride, dilation) tuples of a sliding-window layer, or None if it has none."""
    if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.TiledConv2d, nn.LocallyConnected2d)):
        k = m.weight.shape[-nd:]
        return k, _tup(m.stride, nd), _tup(m.dilation, nd)
    if isinstance(m, _MaxPoolNd):
        s = m.kernel_size if m.stride is None else m.stride
        return _tup(m.kernel_size, nd), _tup(s, nd), _tup(m.dilation, nd)
    if isinstance(m, _Pool) and m._name.startswith(("avg_pool", "lp_pool")):
        args = m._args if m._name.startswith("avg") else m._args[1:]
        k, s = args[0], args[1] if args[1] is not None else args[0]
        return _tup(k, nd), _tup(s, nd), (1,) * nd
    return None


def _field(m, x_shape, y_shape, r_in, j_in):
    """Receptive field (size, jump) of m's output given its input's field."""
    nd = len(x_shape) - 2
    win = _window(m, nd)
    if win is not None:
        k, s, d = win
        return (tuple(r + (kk - 1) * dd * j for r, kk, dd, j in zip(r_in, k, d, j_in)),
                tuple(j * ss for j, ss in zip(j_in, s)))
    if isinstance(m, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        # an output reads the inputs whose kernel footprint covers it: at most ⌈ext / s⌉ of them
        k, s, d = m.weight.shape[-nd:], _tup(m.stride, nd), _tup(m.dilation, nd)
        taps = [-(-((kk - 1) * dd + 1) // ss) for kk, dd, ss in zip(k, d, s)]
        return (tuple(r + (t - 1) * j for r, t, j in zip(r_in, taps, j_in)),
                tuple(j / ss for j, ss in zip(j_in, s)))
    x_sp, y_sp = x_shape[2:], y_shape[2:]
    scaled = tuple(j * Fraction(a, b) for j, a, b in zip(j_in, x_sp, y_sp))
    if isinstance(m, _MaxUnpoolNd):
        return r_in, scaled
    if isinstance(m, nn.Upsample) or (isinstance(m, _Pool) and m._name == "interpolate"):
        linear = m._args[2] in ("linear", "bilinear", "trilinear")  # two taps a dim
        return (tuple(r + j for r, j in zip(r_in, j_in)) if linear else r_in), scaled
    if isinstance(m, _AdaptiveMaxPoolNd) or (isinstance(m, _Pool) and m._name.startswith(
            ("adaptive", "global"))):
        k = [_widest_adaptive_window(a, b) for a, b in zip(x_sp, y_sp)]
        return tuple(r + (kk - 1) * j for r, kk, j in zip(r_in, k, j_in)), scaled
    return r_in, j_in  # pointwise (activation, norm, dropout, identity)


def _widest_adaptive_window(size: int, out: int) -> int:
    """The widest of adaptive pooling's windows [⌊i·size/out⌋, ⌈(i+1)·size/out⌉)."""
    return max(-(-(i + 1) * size // out) - i * size // out for i in range(out))


def _flops(m, x, y) -> int:
    if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.TiledConv2d, nn.LocallyConnected2d)):
        macs_per_out = int(np.prod(m.weight.shape[-(x.ndim - 2):])) * (x.shape[1] // getattr(m, "groups", 1))
        return 2 * (y.size // y.shape[0]) * macs_per_out
    if isinstance(m, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        macs_per_in = int(np.prod(m.weight.shape[1:]))  # (C_out/groups)·k
        return 2 * (x.size // x.shape[0]) * macs_per_in
    if isinstance(m, nn.Linear):
        return 2 * (y.size // y.shape[0]) * m.in_features
    return 0


def summary(model: nn.Module, input_shape: Sequence[int], batch_size: int = 1,
            dtype=np.float32, rng: Optional[np.random.Generator] = None) -> Summary:
    """Runs one eval-mode forward of a random (batch_size, *input_shape) input through model and
    returns the per-layer Summary (print it for the table). The model's mode is restored."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"summary: model must be a cnnfast.nn.Module, got {type(model).__name__}")
    shape = (int(input_shape),) if isinstance(input_shape, (int, np.integer)) else \
        tuple(int(v) for v in input_shape)
    if len(shape) < 1 or min(shape) < 1:
        raise ValueError(f"summary: input_shape must be positive sizes (C, H, W), got {input_shape}")
    rng = rng if rng is not None else np.random.default_rng(0)
    x = rng.standard_normal((batch_size,) + shape).astype(dtype)
    nsp = len(shape) - 1
    fields = {id(x): (x, (1,) * nsp, (Fraction(1),) * nsp)}  # id -> (array kept alive, r, j)
    made: List[int] = [id(x)]  # the ids in `fields`, in the order the forward made them
    result = Summary(shape, batch_size=batch_size)

    def record(a, r, j):
        fields[id(a)] = (a, r, j)
        made.append(id(a))

    def widest(cands):
        return max(cands, key=lambda rj: tuple(rj[0])) if cands else None

    def lookup(a):
        if id(a) in fields:
            return fields[id(a)][1:]
        # not made by a layer seen (a custom module's own arithmetic): the widest of that shape
        return widest([(r, j) for arr, r, j in fields.values() if arr.shape[2:] == a.shape[2:]])

    def first(a):  # a max-pooling layer with return_indices returns (y, switches)
        return a[0] if isinstance(a, tuple) else a

    def wrap_leaf(name, m, forward):
        def recorded(*args, **kwargs):
            inp = args[0]
            out = forward(*args, **kwargs)
            y = first(out)
            rf = lookup(inp) if inp.ndim > 2 else None
            size = jump = None
            if rf is not None and y.ndim == inp.ndim:
                size, jump = _field(m, inp.shape, y.shape, *rf)
                record(y, size, jump)
            n_params = sum(p.data.size for p in m._parameters.values() if p is not None)
            result.rows.append(LayerRow(name, type(m).__name__, y.shape[1:], n_params,
                                        _flops(m, inp, y), size, jump))
            result.activation_bytes += y.nbytes
            return out
        return recorded

    def wrap_composite(m, forward):
        # An add or concat inside this composite made its output: the widest of the fields of
        # the arrays its own branches made (not an earlier sibling block's) of the same size.
        def recorded(*args, **kwargs):
            start = len(made)
            out = forward(*args, **kwargs)
            y = first(out)
            if getattr(y, "ndim", 0) > 2 and id(y) not in fields:
                inner = [fields[i][1:] for i in made[start:]
                         if i in fields and fields[i][0].shape[2:] == y.shape[2:]]
                if id(args[0]) in fields and args[0].shape[2:] == y.shape[2:]:
                    inner.append(fields[id(args[0])][1:])  # an identity shortcut
                rj = widest(inner)
                if rj is not None:
                    record(y, *rj)
            return out
        return recorded

    wrapped = [(n, m) for n, m in model.named_modules()]
    was_training = model.training
    try:
        for name, m in wrapped:
            wrap = wrap_leaf(name or type(m).__name__, m, m.forward) if not m._modules else \
                wrap_composite(m, m.forward)
            object.__setattr__(m, "forward", wrap)
        model.eval()
        model(x)
    finally:
        for _, m in wrapped:
            m.__dict__.pop("forward", None)
        model.train(was_training)
    params = list(model.parameters())
    result.total_params = result.trainable_params = sum(p.data.size for p in params)
    result.param_bytes = sum(p.data.nbytes for p in params)
    result.total_flops = sum(r.flops for r in result.rows)
    result.activation_bytes += x.nbytes
    return result


def _fmt_field(v) -> str:
    if v is None:
        return "-"
    return "x".join(str(int(a)) if Fraction(a).denominator == 1 else str(Fraction(a)) for a in v)


def format_summary(s: Summary) -> str:
    head = ("layer", "type", "output shape", "params", "FLOPs", "RF size", "RF jump")
    body = [(r.name, r.kind, str(tuple(r.output_shape)), f"{r.params:,}", f"{r.flops:,}",
             _fmt_field(r.rf_size), _fmt_field(r.rf_jump)) for r in s.rows]
    widths = [max(len(row[i]) for row in [head] + body) for i in range(len(head))]
    line = lambda row: "  ".join(c.ljust(w) if i < 3 else c.rjust(w)  # noqa: E731
                                 for i, (c, w) in enumerate(zip(row, widths)))
    rule = "-" * len(line(head))
    mib = 1024 * 1024
    return "\n".join([f"input shape {tuple(s.input_shape)}, batch {s.batch_size}", rule,
                      line(head), rule] + [line(b) for b in body] + [
        rule,
        f"total parameters: {s.total_params:,} ({s.param_bytes / mib:.2f} MiB)",
        f"total FLOPs per image: {s.total_flops:,} ({s.total_flops / 1e9:.3f} GFLOPs)",
        f"activation memory (input + layer outputs, batch {s.batch_size}): "
        f"{s.activation_bytes / mib:.2f} MiB"])


def build_zoo_model(name: str, input_shape: Sequence[int], num_classes: Optional[int] = None):
    """The cnnfast.models builder `name` fitted to input_shape (C, H, W): its in_channels (or
    channels, for context_module) and input_size (LeNet-5) follow the shape."""
    import inspect
    from . import models
    builder = getattr(models, name, None) if name in getattr(models, "__all__", ()) else None
    if not callable(builder) or not name.islower():
        names = sorted(n for n in models.__all__ if n.islower() and callable(getattr(models, n))
                       and n not in ("require_nn", "lenet5_flat_features", "class_balance_weights"))
        raise ValueError(f"model: unknown model {name!r}; choose one of {names}")
    params = inspect.signature(builder).parameters
    kwargs = {}
    if "in_channels" in params:
        kwargs["in_channels"] = input_shape[0]
    if "channels" in params:
        kwargs["channels"] = input_shape[0]
    if "input_size" in params and len(input_shape) > 1:
        kwargs["input_size"] = input_shape[1]
    if num_classes is not None and "num_classes" in params:
        kwargs["num_classes"] = num_classes
    return builder(**kwargs)
