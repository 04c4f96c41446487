"""cnnfast.optim — SGD, Adam, AdamW with torch.optim's update rules and argument names (a step
matches torch.optim exactly), updates in place in C++; gradient clipping; LR schedulers (step,
multi-step, cosine, linear warm-up; several on one optimizer multiply their factors, as torch
chains them).

    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    sched = optim.StepLR(opt, step_size=30, gamma=0.1)
    ... opt.zero_grad(); loss backward ...; optim.clip_grad_norm_(model.parameters(), 5.0);
    opt.step(); sched.step()   # once per epoch

Parameters on the GPU (Module.to('cuda')) are updated in place by cnnfast.cuda.sgd_step /
adam_step, with their optimizer state on the device too; state_dict() always returns NumPy
copies, and state loaded from NumPy moves to the parameter's side at its next step.
"""
from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from typing import Dict, Iterable, List, Sequence

import numpy as np

from . import _core
from ._checks import check_int
from .nn import _device
from .nn.module import Parameter


def _state_array(state: Dict, key: str, p: Parameter, on_gpu: bool, init: str):
    """state[key] on the parameter's side, created with init ('empty' or 'zeros') if absent;
    a NumPy state (loaded, or the parameter moved since) is moved once."""
    a = state.get(key)
    if a is None:
        if on_gpu:
            from . import cuda
            a = (cuda.empty if init == "empty" else cuda.zeros)(p.data.shape)
        else:
            a = (np.empty_like if init == "empty" else np.zeros_like)(p.data)
        state[key] = a
    elif (type(a) is not np.ndarray) != on_gpu:
        a = state[key] = _device.move(a, "cuda" if on_gpu else "cpu", key)
    return a


class Optimizer:
    """Holds param_groups (dicts with 'params' and hyperparameters) and per-parameter state."""

    def __init__(self, params, defaults: Dict):
        params = list(params)
        if not params:
            raise ValueError("params: optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = defaults
        self.param_groups: List[Dict] = []
        self.state: Dict[int, Dict] = {}
        seen = set()
        for g in groups:
            g = {**defaults, **g, "params": list(g["params"])}
            for p in g["params"]:
                if not isinstance(p, Parameter):
                    raise TypeError(f"params: expected cnnfast.nn.Parameter, got "
                                    f"{type(p).__name__}")
                if id(p) in seen:  # it would be updated once per group
                    raise ValueError(f"params: a parameter of shape {p.shape} appears more than "
                                     f"once (in one group or in several)")
                seen.add(id(p))
            self.param_groups.append(g)
        self._check()

    def _check(self):
        for g in self.param_groups:
            if g["lr"] < 0:
                raise ValueError(f"lr: must be >= 0, got {g['lr']}")
            if g.get("weight_decay", 0) < 0:
                raise ValueError(f"weight_decay: must be >= 0, got {g['weight_decay']}")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zeroes every gradient; with set_to_none (torch's default) a parameter then has no
        gradient until its next backward, and step() leaves it alone (Parameter.has_grad)."""
        for g in self.param_groups:
            for p in g["params"]:
                p.zero_grad(set_to_none)

    def step(self) -> None:
        """Updates every parameter that has a gradient (torch skips a None grad)."""
        for g in self.param_groups:
            for p in g["params"]:
                if p.has_grad:
                    self._update(p, g, self.state.setdefault(id(p), {}))

    def _update(self, p: Parameter, group: Dict, state: Dict) -> None:
        raise NotImplementedError

    def _params(self) -> List[Parameter]:
        return [p for g in self.param_groups for p in g["params"]]

    def state_dict(self) -> Dict:
        """torch.optim's layout: per-parameter state keyed by the parameter's position across
        the groups (as a string, so it survives JSON), and the groups' hyperparameters with
        'params' as those positions. Arrays are copies."""
        index = {id(p): i for i, p in enumerate(self._params())}
        state = {str(index[pid]): {k: (_device.host_copy(v) if isinstance(v, np.ndarray)
                                       or _device.on_device(v) else v)
                                   for k, v in st.items()}
                 for pid, st in self.state.items() if pid in index}
        groups, start = [], 0
        for g in self.param_groups:
            n = len(g["params"])
            groups.append({**{k: (list(v) if isinstance(v, tuple) else v)
                              for k, v in g.items() if k != "params"},
                           "params": list(range(start, start + n))})
            start += n
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Dict) -> None:
        """Restores hyperparameters and per-parameter state saved by state_dict(); the group
        layout, the hyperparameter names (another optimizer type's state is refused) and every
        state array's shape must match this optimizer's."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"optimizer state_dict: expected a mapping, got "
                            f"{type(state_dict).__name__}")
        absent = [k for k in ("state", "param_groups") if k not in state_dict]
        if absent:
            raise ValueError(f"optimizer state_dict: no {' or '.join(map(repr, absent))} entry "
                             f"(not made by Optimizer.state_dict()?)")
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(sg["params"]) != len(g["params"]) for sg, g in zip(groups, self.param_groups)):
            raise ValueError("optimizer state_dict: parameter groups do not match this optimizer "
                             f"({[len(g['params']) for g in self.param_groups]} parameters per "
                             f"group, got {[len(sg['params']) for sg in groups]})")
        for sg, g in zip(groups, self.param_groups):
            theirs, ours = (sorted(set(d) - {"params", "initial_lr"}) for d in (sg, g))
            if theirs != ours:
                raise ValueError(f"optimizer state_dict: its groups hold {theirs}, this "
                                 f"{type(self).__name__} has {ours} (saved by another "
                                 f"optimizer type?)")
        params = self._params()
        new_state: Dict[int, Dict] = {}
        for key, st in state_dict["state"].items():
            i = int(key)
            if not 0 <= i < len(params):
                raise ValueError(f"optimizer state_dict: state for parameter {i}, but there are "
                                 f"only {len(params)}")
            p = params[i]
            restored = {}
            for k, v in st.items():
                if isinstance(v, np.ndarray):
                    if v.shape != p.shape:
                        raise ValueError(f"optimizer state_dict: '{k}' of parameter {i} has shape "
                                         f"{v.shape}, the parameter {p.shape}")
                    v = v.astype(p.data.dtype, copy=True)
                restored[k] = v
            new_state[id(p)] = restored
        for g, sg in zip(self.param_groups, groups):
            for k, v in sg.items():
                if k != "params":
                    g[k] = tuple(v) if k == "betas" else v
        self.state = new_state


def _cuda_op(name: str):
    """cnnfast.cuda's sgd_step / adam_step with the positional order of _core's CPU twins."""
    from .cuda import _ops_nn
    return getattr(_ops_nn, name)


class SGD(Optimizer):
    """torch.optim.SGD: momentum (buffer starts at the first gradient), dampening, Nesterov,
    weight decay (L2 added to the gradient)."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        if momentum < 0:
            raise ValueError(f"momentum: must be >= 0, got {momentum}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov: requires momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _update(self, p, g, state):
        buf, first = None, False
        on_gpu = type(p.data) is not np.ndarray
        if g["momentum"] != 0:
            first = "momentum_buffer" not in state
            buf = _state_array(state, "momentum_buffer", p, on_gpu, "empty")
        step = _cuda_op("sgd_step") if on_gpu else _core.sgd_step
        step(p.data, p.grad, buf, g["lr"], g["momentum"], g["dampening"], g["weight_decay"],
             g["nesterov"], first)


class Adam(Optimizer):
    """torch.optim.Adam (L2 weight decay added to the gradient; optional AMSGrad)."""
    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: Sequence[float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False):
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"betas: each must be in [0, 1), got {betas}")
        if eps < 0:
            raise ValueError(f"eps: must be >= 0, got {eps}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad))

    def _update(self, p, g, state):
        on_gpu = type(p.data) is not np.ndarray
        state.setdefault("step", 0)
        m = _state_array(state, "exp_avg", p, on_gpu, "zeros")
        v = _state_array(state, "exp_avg_sq", p, on_gpu, "zeros")
        vmax = _state_array(state, "max_exp_avg_sq", p, on_gpu, "zeros") if g["amsgrad"] else None
        state["step"] += 1
        b1, b2 = g["betas"]
        step = _cuda_op("adam_step") if on_gpu else _core.adam_step
        step(p.data, p.grad, m, v, vmax, state["step"], g["lr"], b1, b2, g["eps"],
             g["weight_decay"], self._decoupled)


class AdamW(Adam):
    """torch.optim.AdamW: decoupled weight decay p ← p·(1 − lr·wd) before the Adam step."""
    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: Sequence[float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


# ---- gradient clipping ------------------------------------------------------------------------

def clip_grad_norm_(parameters: Iterable[Parameter], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    """Scales all grads by max_norm / (total_norm + 1e-6) when the total norm exceeds max_norm
    (torch.nn.utils.clip_grad_norm_); returns the total norm before clipping. A NaN total norm
    makes every gradient NaN, as in torch (finite ones must not go out unclipped), and an
    infinite one zeroes the finite elements; `error_if_nonfinite=True` raises a RuntimeError
    instead, leaving the gradients as they were."""
    grads = _host_grads(parameters, "clip_grad_norm_")
    if not grads:
        return 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        if norm_type == math.inf:  # np.max keeps a NaN wherever it is (max() dropped it)
            total = float(np.max([np.max(np.abs(g)) if g.size else 0.0 for g in grads]))
        else:
            total = float(sum(float(np.sum(np.abs(g.astype(np.float64)) ** norm_type))
                              for g in grads) ** (1.0 / norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the "
                           f"gradients is {total}, so they cannot be clipped (pass "
                           f"error_if_nonfinite=False to scale them anyway)")
    coef = max_norm / (total + 1e-6)
    if coef < 1 or math.isnan(coef):
        with np.errstate(invalid="ignore"):  # inf · 0
            for g in grads:
                g *= coef
    return total


def clip_grad_value_(parameters: Iterable[Parameter], clip_value: float) -> None:
    """Clamps every gradient element to [−clip_value, clip_value] in place."""
    for g in _host_grads(parameters, "clip_grad_value_"):
        np.clip(g, -clip_value, clip_value, out=g)


def _host_grads(parameters, what: str) -> List[np.ndarray]:
    """The gradients of the parameters that have one (torch skips a None grad)."""
    params = list(parameters)
    grads = [p._grad for p in params if p.has_grad]
    if any(type(g) is not np.ndarray for g in grads) or any(
            type(p.data) is not np.ndarray for p in params):
        raise TypeError(f"{what}: the gradients are CUDA device arrays and gradient clipping has "
                        f"no CUDA kernel yet; clip on the CPU (model.to('cpu'))")
    return grads


# ---- learning-rate schedulers (closed forms; call step() once per epoch) -----------------------

# optimizer -> its schedulers (weak both ways: a dropped scheduler stops counting)
_CHAINS: "weakref.WeakKeyDictionary[Optimizer, List[weakref.ref]]" = weakref.WeakKeyDictionary()


class LRScheduler:
    """A schedule of each group's lr from its lr when the first scheduler was made
    ('initial_lr', kept in the group as torch does). Several live schedulers on one optimizer
    multiply their factors — torch's chaining (LinearLR warm-up with StepLR: 0.01, 0.04, 0.035,
    0.05, ... from 0.1).

    Two differences from torch's recursive (chainable) form, both from computing each lr in
    closed form: an lr set by hand in param_groups is replaced at the next step() (torch scales
    the edited value), and a chained CosineAnnealingLR with eta_min != 0 multiplies its closed
    form (torch's recursion differs by up to ~2 % of the lr there; eta_min = 0 matches)."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        self.optimizer = optimizer
        self.base_lrs = [g.setdefault("initial_lr", g["lr"]) for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        chain = [r for r in _CHAINS.get(optimizer, []) if r() is not None]
        _CHAINS[optimizer] = chain + [weakref.ref(self)]
        self.step()

    def factor(self, epoch: int, base_lr: float) -> float:
        raise NotImplementedError

    def _group_lr(self, group: int, epoch: int, base_lr: float) -> float:
        """The schedule's lr for param group `group` (one rule for all groups but LambdaLR's)."""
        return self.factor(epoch, base_lr)

    def get_last_lr(self) -> List[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def _set_lrs(self) -> None:
        live = [s for s in (r() for r in _CHAINS.get(self.optimizer, ()))
                if s is not None and s.last_epoch >= 0]
        for i, (g, base) in enumerate(zip(self.optimizer.param_groups, self.base_lrs)):
            lr = self._group_lr(i, self.last_epoch, base)
            for s in live:
                if s is not self:
                    lr = lr * s._group_lr(i, s.last_epoch, base) / base if base else 0.0
            g["lr"] = lr

    def step(self) -> None:
        self.last_epoch += 1
        self._set_lrs()

    def state_dict(self) -> Dict:
        """Every attribute but the optimizer (as torch's schedulers do)."""
        return {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: Dict) -> None:
        """Restores the schedule and sets the groups' lr for the restored epoch (closed form),
        so it does not matter whether the optimizer's state was loaded before or after."""
        self.__dict__.update({k: v for k, v in state_dict.items() if k != "optimizer"})
        self._set_lrs()


class ExponentialLR(LRScheduler):
    """lr = base · gamma^epoch."""

    def __init__(self, optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def factor(self, epoch, base):
        return base * self.gamma ** epoch


class LambdaLR(LRScheduler):
    """lr = base · lr_lambda(epoch); one function, or one per parameter group. Its state_dict
    leaves the functions out (as torch's does for lambdas): give them to the constructor. With
    other live schedulers it multiplies like them; torch's LambdaLR instead overwrites the lr at
    every step, dropping the others' factors (an order-dependent result not reproduced here)."""

    def __init__(self, optimizer, lr_lambda, last_epoch: int = -1):
        fns = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else \
            [lr_lambda] * len(optimizer.param_groups)
        if len(fns) != len(optimizer.param_groups) or not all(callable(f) for f in fns):
            raise TypeError(f"lr_lambda: expected a function or one per parameter group "
                            f"({len(optimizer.param_groups)}), got {lr_lambda!r}")
        self._fns = fns
        super().__init__(optimizer, last_epoch)

    def _group_lr(self, group, epoch, base):
        return base * float(self._fns[group](epoch))

    def state_dict(self) -> Dict:
        return {k: v for k, v in super().state_dict().items() if k != "_fns"}

    def load_state_dict(self, state_dict: Dict) -> None:
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "_fns"})


class StepLR(LRScheduler):
    """lr = base · gamma^(epoch // step_size)."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self.step_size, self.gamma = check_int("step_size", step_size, 1), gamma
        super().__init__(optimizer, last_epoch)

    def factor(self, epoch, base):
        return base * self.gamma ** (epoch // self.step_size)


class MultiStepLR(LRScheduler):
    """lr = base · gamma^(number of milestones <= epoch)."""

    def __init__(self, optimizer, milestones: Sequence[int], gamma: float = 0.1,
                 last_epoch: int = -1):
        self.milestones, self.gamma = sorted(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def factor(self, epoch, base):
        return base * self.gamma ** sum(1 for m in self.milestones if m <= epoch)


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base − eta_min)·(1 + cos(π·epoch / T_max)) / 2."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        self.T_max, self.eta_min = check_int("T_max", T_max, 1), eta_min
        super().__init__(optimizer, last_epoch)

    def factor(self, epoch, base):
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class LinearLR(LRScheduler):
    """Linear warm-up: the factor goes from start_factor to end_factor over total_iters steps."""

    def __init__(self, optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError("start_factor/end_factor: must be in (0, 1] and [0, 1]")
        self.start_factor, self.end_factor = start_factor, end_factor
        self.total_iters = check_int("total_iters", total_iters, 1)
        super().__init__(optimizer, last_epoch)

    def factor(self, epoch, base):
        t = min(epoch, self.total_iters) / self.total_iters
        return base * (self.start_factor + (self.end_factor - self.start_factor) * t)
