"""A tiny NumPy stand-in for the cnnfast.nn / cnnfast.optim contract (issue 6), used to test the
training loop, checkpoints and CLI without the real layer library: a flatten -> (dropout) ->
linear classifier, softmax cross-entropy, SGD with PyTorch's update rule and a step scheduler."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np


class Parameter:
    def __init__(self, data: np.ndarray):
        self.data = data
        self.grad = np.zeros_like(data)

    @property
    def shape(self):
        return self.data.shape


class LinearClassifier:
    """logits = dropout(flatten(x)) @ weight.T + bias; weight (classes, features) like nn.Linear."""

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.0):
        bound = 1.0 / np.sqrt(in_features)
        self.weight = Parameter(np.random.uniform(-bound, bound, (num_classes, in_features)))
        self.bias = Parameter(np.random.uniform(-bound, bound, num_classes))
        self.dropout, self.training = dropout, True
        self.rng = np.random.default_rng()  # unseeded, like a Dropout layer's: fit reseeds it

    def named_parameters(self):
        return [("weight", self.weight), ("bias", self.bias)]

    def named_modules(self):
        return [("", self)]

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def zero_grad(self):
        for p in self.parameters():
            p.grad[...] = 0

    def train(self, mode: bool = True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def forward(self, x):
        h = x.reshape(len(x), -1).astype(np.float64)
        if self.training and self.dropout > 0:
            keep = self.rng.random(h.shape) >= self.dropout
            h = h * keep / (1 - self.dropout)
        self._h = h
        return h @ self.weight.data.T + self.bias.data

    __call__ = forward

    def backward(self, grad_logits):
        self.weight.grad += grad_logits.T @ self._h
        self.bias.grad += grad_logits.sum(axis=0)
        return grad_logits @ self.weight.data

    def state_dict(self):
        return OrderedDict((n, p.data.copy()) for n, p in self.named_parameters())

    def load_state_dict(self, state):
        own = dict(self.named_parameters())
        if set(state) != set(own):
            raise KeyError(f"state_dict keys {sorted(state)} != {sorted(own)}")
        for n, p in own.items():
            p.data[...] = state[n]


class CrossEntropyLoss:
    def __call__(self, logits, target):
        z = logits - logits.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        self._p, self._target = np.exp(logp), target
        return float(-logp[np.arange(len(target)), target].mean())

    def backward(self):
        g = self._p.copy()
        g[np.arange(len(self._target)), self._target] -= 1
        return g / len(self._target)


class SGD:
    """torch.optim.SGD's rule: g += wd * p; buf = momentum * buf + g (buf = g at first); p -= lr * buf."""

    def __init__(self, params, lr=0.1, momentum=0.0, weight_decay=0.0):
        self.params = list(params)
        self.param_groups = [{"lr": lr, "momentum": momentum, "weight_decay": weight_decay,
                              "params": list(range(len(self.params)))}]
        self.state = {}

    def zero_grad(self):
        for p in self.params:
            p.grad[...] = 0

    def step(self):
        g0 = self.param_groups[0]
        for i, p in enumerate(self.params):
            g = p.grad + g0["weight_decay"] * p.data
            if g0["momentum"]:
                buf = self.state.get(i)
                buf = g.copy() if buf is None else g0["momentum"] * buf + g
                self.state[i] = buf
                g = buf
            p.data -= g0["lr"] * g

    def state_dict(self):
        return {"state": {i: {"momentum_buffer": b.copy()} for i, b in self.state.items()},
                "param_groups": [dict(g) for g in self.param_groups]}

    def load_state_dict(self, state):
        self.state = {int(i): np.array(s["momentum_buffer"]) for i, s in state["state"].items()}
        self.param_groups = [dict(g) for g in state["param_groups"]]


class StepLR:
    def __init__(self, optimizer, step_size, gamma=0.1):
        self.optimizer, self.step_size, self.gamma, self.last_epoch = optimizer, step_size, gamma, 0
        self.base_lr = optimizer.param_groups[0]["lr"]

    def step(self):
        self.last_epoch += 1
        self.optimizer.param_groups[0]["lr"] = self.base_lr * self.gamma ** (
            self.last_epoch // self.step_size)

    def state_dict(self):
        return {"step_size": self.step_size, "gamma": self.gamma, "last_epoch": self.last_epoch,
                "base_lr": self.base_lr}

    def load_state_dict(self, state):
        self.__dict__.update({k: state[k] for k in ("step_size", "gamma", "last_epoch", "base_lr")})


def cli_training(config):
    """Stand-in for cnnfast.__main__.build_training: this linear classifier, its loss and SGD."""
    features = config["in_channels"] * config["input_size"] ** 2
    model = LinearClassifier(features, config["num_classes"])
    opt = SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"],
              weight_decay=config["weight_decay"])
    return model, CrossEntropyLoss(), opt
