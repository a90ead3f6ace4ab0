"""The two backbones the registry knows (ml/model.py), written from their papers, with the
parameter names torchvision uses, so torchvision's ImageNet files and every checkpoint saved
from a torchvision model load into them unchanged (tests/ml/test_nets.py holds both equal,
name for name and output for output).

Why not import them from torchvision: `import torchvision` imports `torchvision.ops`, which
imports `torch._dynamo`, which pulls in sympy, triton and torch.distributed. On this project's
2-core machines that cost 1.0 s of every worker's start and 150 MB of its memory, for two
networks of 60 lines each. Training and tests may still import torchvision; the site and the
worker never do.

- MobileNetV2 (Sandler et al., 2018, table 2): a 3x3 stem of 32 channels, seven stages of
  inverted residual blocks (1x1 expansion, 3x3 depthwise, 1x1 linear projection, with a
  shortcut where the shape allows), a 1x1 convolution to 1280 channels, global average
  pooling, dropout 0.2 and a linear classifier. BatchNorm after every convolution, ReLU6 after
  all but the projections.
- ResNet-18 (He et al., 2016, table 1): a 7x7 stem of 64 channels with max pooling, four stages
  of two basic blocks (two 3x3 convolutions and a shortcut, 1x1 with stride where the shape
  changes), global average pooling and a linear classifier.
"""

from __future__ import annotations

import torch
from torch import nn

# (expansion t, output channels c, blocks n, first block's stride s), from the paper's table 2.
MOBILENET_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def conv_bn_relu6(inputs: int, outputs: int, kernel: int, *, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Convolution (no bias, "same" padding), BatchNorm, ReLU6: indices 0, 1, 2 as torchvision."""
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """One MobileNetV2 block; its layers are `conv`, as in torchvision."""

    def __init__(self, inputs: int, outputs: int, *, stride: int, expansion: int):
        super().__init__()
        hidden = inputs * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_bn_relu6(inputs, hidden, 1))
        layers += [
            conv_bn_relu6(hidden, hidden, 3, stride=stride, groups=hidden),
            nn.Conv2d(hidden, outputs, 1, bias=False),
            nn.BatchNorm2d(outputs),
        ]
        self.conv = nn.Sequential(*layers)
        self.shortcut = stride == 1 and inputs == outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.shortcut else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        layers: list[nn.Module] = [conv_bn_relu6(3, 32, 3, stride=2)]
        channels = 32
        for expansion, outputs, blocks, stride in MOBILENET_V2_STAGES:
            for k in range(blocks):
                layers.append(InvertedResidual(channels, outputs, stride=stride if k == 0 else 1, expansion=expansion))
                channels = outputs
        layers.append(conv_bn_relu6(channels, 1280, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(1280, num_classes))
        _initialise(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut (`downsample` where the shape changes)."""

    def __init__(self, inputs: int, outputs: int, *, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.downsample = None
        if stride != 1 or inputs != outputs:
            self.downsample = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + shortcut)


class ResNet18(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages = []
        channels = 64
        for outputs, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages.append(nn.Sequential(BasicBlock(channels, outputs, stride=stride), BasicBlock(outputs, outputs, stride=1)))
            channels = outputs
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)
        _initialise(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _initialise(model: nn.Module) -> None:
    """He initialisation (fan out) for convolutions, unit BatchNorms, small linear weights: only
    for training from scratch; every real use loads ImageNet weights or a checkpoint."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)
