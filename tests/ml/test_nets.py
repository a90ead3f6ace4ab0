"""Our two backbones are torchvision's, name for name and output for output (that the worker
never imports torchvision is checked in test_detector.py)."""

import pytest
import torch
import torchvision

from ml.nets import MobileNetV2, ResNet18


@pytest.mark.parametrize(
    "ours,theirs",
    [(MobileNetV2, torchvision.models.mobilenet_v2), (ResNet18, torchvision.models.resnet18)],
    ids=["mobilenet_v2", "resnet18"],
)
def test_each_backbone_loads_torchvisions_weights_and_computes_the_same(ours, theirs):
    torch.manual_seed(0)
    reference = theirs().eval()
    for norm in (m for m in reference.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        norm.running_mean.uniform_(-0.5, 0.5)  # trained-looking statistics, not the defaults
        norm.running_var.uniform_(0.5, 2.0)
    model = ours()
    expected = {name: tuple(t.shape) for name, t in reference.state_dict().items()}
    assert {name: tuple(t.shape) for name, t in model.state_dict().items()} == expected

    model.load_state_dict(reference.state_dict())
    model.eval()
    batch = torch.randn(2, 3, 160, 160)
    with torch.no_grad():
        assert torch.allclose(model(batch), reference(batch), atol=1e-5)
