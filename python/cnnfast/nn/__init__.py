"""cnnfast.nn — thin PyTorch-shaped layers with an explicit forward/backward over the fast ops.

    model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.Flatten(), nn.Linear(6*24*24, 10))
    crit = nn.CrossEntropyLoss()
    loss = crit(model(x), y)
    model.zero_grad(); model.backward(crit.backward()); opt.step()

Names, shapes and layouts of parameters and buffers match torch.nn (state dicts interchange).
"""
from .module import Module, Parameter
from .basic import Flatten, Identity, Linear
from .activation import Dropout, Dropout2d, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .conv import (Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d,
                   LocallyConnected2d, TiledConv2d)
from .norm import (BatchNorm1d, BatchNorm2d, BatchNorm3d, GlobalContrastNorm, LocalContrastNorm,
                   LocalResponseNorm)
from .pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d, AdaptiveMaxPool1d,
                      AdaptiveMaxPool2d, AdaptiveMaxPool3d, AvgPool1d, AvgPool2d, AvgPool3d,
                      GlobalAvgPool, LPPool1d, LPPool2d, LPPool3d, MaxPool1d, MaxPool2d,
                      MaxPool3d, MaxUnpool1d, MaxUnpool2d, MaxUnpool3d, Upsample)
from .container import Concat, ModuleList, Residual, Sequential, UNetSkip
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss

__all__ = [
    "Module", "Parameter", "Flatten", "Identity", "Linear", "Dropout", "Dropout2d", "LeakyReLU",
    "LogSoftmax", "ReLU", "Sigmoid", "Softmax", "Tanh", "Conv1d", "Conv2d", "Conv3d",
    "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "LocallyConnected2d", "TiledConv2d",
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "GlobalContrastNorm", "LocalContrastNorm",
    "LocalResponseNorm", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "AvgPool1d", "AvgPool2d",
    "AvgPool3d", "GlobalAvgPool", "LPPool1d", "LPPool2d", "LPPool3d", "MaxPool1d", "MaxPool2d",
    "MaxPool3d", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d", "Upsample", "Concat", "Residual",
    "Sequential", "ModuleList", "UNetSkip", "BCEWithLogitsLoss", "CrossEntropyLoss", "MSELoss", "NLLLoss",
]
