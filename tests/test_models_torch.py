"""LeNet-5, VGG-11, ResNet-18 and a small U-Net against equivalent torch.nn models loaded with the
same weights through state_dict (so names and layouts must match torchvision's): forward outputs
and every parameter gradient, in training mode (batch-norm batch statistics)."""
import numpy as np
import pytest

from cnnfast import models
from helpers import assert_close

torch = pytest.importorskip("torch")
tnn = torch.nn


def torch_lenet5(num_classes=10):
    return tnn.Sequential(tnn.Conv2d(1, 6, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
                          tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
                          tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(),
                          tnn.Linear(84, num_classes))


class TorchVGG(tnn.Module):  # torchvision.models.VGG with configuration "A" (VGG-11)
    def __init__(self, widths, num_classes, hidden):
        super().__init__()
        layers, c = [], 3
        for v in widths:
            if v == "M":
                layers.append(tnn.MaxPool2d(2, 2))
            else:
                layers += [tnn.Conv2d(c, v, 3, padding=1), tnn.ReLU()]
                c = v
        self.features = tnn.Sequential(*layers)
        self.avgpool = tnn.AdaptiveAvgPool2d((7, 7))
        self.classifier = tnn.Sequential(tnn.Linear(c * 49, hidden), tnn.ReLU(), tnn.Dropout(0.0),
                                         tnn.Linear(hidden, hidden), tnn.ReLU(), tnn.Dropout(0.0),
                                         tnn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class TorchBasicBlock(tnn.Module):  # torchvision.models.resnet.BasicBlock
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = tnn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = tnn.Sequential(tnn.Conv2d(cin, planes, 1, stride, bias=False),
                                             tnn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + (x if self.downsample is None else self.downsample(x)))


class TorchResNet18(tnn.Module):
    def __init__(self, width, num_classes):
        super().__init__()
        self.conv1 = tnn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = tnn.BatchNorm2d(width)
        self.maxpool = tnn.MaxPool2d(3, 2, 1)
        cin = width
        for i in range(4):
            planes = width * 2 ** i
            setattr(self, f"layer{i + 1}", tnn.Sequential(
                TorchBasicBlock(cin, planes, 1 if i == 0 else 2),
                TorchBasicBlock(planes, planes, 1)))
            cin = planes
        self.fc = tnn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(tnn.functional.adaptive_avg_pool2d(x, 1), 1))


class TorchUNet(tnn.Module):
    def __init__(self, cin, num_classes, depth, width, pad):
        super().__init__()
        ch = [width * 2 ** i for i in range(depth + 1)]

        def double(a, b):
            return tnn.Sequential(tnn.Conv2d(a, b, 3, padding=pad), tnn.ReLU(),
                                  tnn.Conv2d(b, b, 3, padding=pad), tnn.ReLU())
        self.depth = depth
        self.enc = tnn.ModuleList([double(cin if i == 0 else ch[i - 1], ch[i])
                                   for i in range(depth + 1)])
        self.up = tnn.ModuleList([tnn.ConvTranspose2d(ch[i + 1], ch[i], 2, 2)
                                  for i in range(depth)])
        self.dec = tnn.ModuleList([double(2 * ch[i], ch[i]) for i in range(depth)])
        self.head = tnn.Conv2d(ch[0], num_classes, 1)

    def forward(self, x):
        skips = []
        for i in range(self.depth):
            x = self.enc[i](x)
            skips.append(x)
            x = tnn.functional.max_pool2d(x, 2)
        x = self.enc[self.depth](x)
        for i in reversed(range(self.depth)):
            x = self.up[i](x)
            s = skips[i]
            top, left = (s.shape[2] - x.shape[2]) // 2, (s.shape[3] - x.shape[3]) // 2
            s = s[:, :, top:top + x.shape[2], left:left + x.shape[3]]
            x = self.dec[i](torch.cat([s, x], 1))
        return self.head(x)


def compare(ours, theirs, x, rng, tol=2e-4):
    """Loads ours' weights into theirs (strict: same names and shapes), then compares the forward
    and the gradients of sum(y * g) for the input and every parameter."""
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in
                            ours.state_dict().items()}, strict=True)
    theirs.train()
    y = ours(x)
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = theirs(xt)
    assert_close(y, yt.detach().numpy(), tol, "forward")
    g = rng.standard_normal(y.shape).astype(np.float32)
    ours.zero_grad()
    gx = ours.backward(g)
    yt.backward(torch.from_numpy(g))
    assert_close(gx, xt.grad.numpy(), tol, "input gradient")
    tgrads = dict(theirs.named_parameters())
    assert set(tgrads) == {n for n, _ in ours.named_parameters()}
    for name, p in ours.named_parameters():
        assert_close(p.grad, tgrads[name].grad.numpy(), tol, name)


def test_lenet5_matches_torch(rng):
    compare(models.lenet5(10), torch_lenet5(10),
            rng.standard_normal((4, 1, 28, 28)).astype(np.float32), rng)


def test_vgg11_matches_torch(rng):
    ours = models.vgg11(5, width=1 / 16, hidden=24, dropout=0.0)
    widths = [v if v == "M" else max(1, round(v / 16)) for v in models.vgg.CONFIGS[11]]
    compare(ours, TorchVGG(widths, 5, 24), rng.standard_normal((2, 3, 32, 32)).astype(np.float32),
            rng)


def test_resnet18_matches_torch(rng):
    compare(models.resnet18(6, width=8), TorchResNet18(8, 6),
            rng.standard_normal((4, 3, 32, 32)).astype(np.float32), rng, tol=1e-3)


@pytest.mark.parametrize("padding, size", [("same", 24), ("valid", 44)])
def test_small_unet_matches_torch(padding, size, rng):
    ours = models.unet(2, 3, depth=2, width=4, padding=padding)
    compare(ours, TorchUNet(2, 3, 2, 4, 1 if padding == "same" else 0),
            rng.standard_normal((2, 2, size, size + 2)).astype(np.float32), rng)
