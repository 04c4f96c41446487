"""torch.nn twins of cnnfast's LeNet-5, VGG, ResNet-18 and U-Net, laid out as torchvision does
(same module names, so a cnnfast state_dict loads with strict=True). Used by tests/test_models_torch.py
and bench/bench_models.py; needs torch."""
import torch

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
