"""Grad-CAM heatmaps: which parts of a face crop pushed the model towards "fake".

Grad-CAM (Selvaraju et al., 2017): the gradients of the fake logit with respect to the last
convolutional block's activations, averaged per channel, weight those activations; the positive
part of the weighted sum, upsampled to the crop, is the heatmap.

Every registered architecture ends in that block, global average pooling and one linear layer.
There the gradient of the fake logit with respect to each activation is the head's weight for
its channel divided by the block's height times width, the same at every position; Grad-CAM's
channel weights are then the head's fake-class row up to that scale, which the heatmap's
normalisation removes (this is CAM, Zhou et al., 2016). So the detector computes its heatmaps
during the forward pass that scores the faces (`recording_cams`), with no backward pass;
`gradcams` keeps the gradient route, and a test holds the two equal.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from .heatmaps import heatmap_of, overlay_png  # noqa: F401  (re-exported)
from .model import FAKE_CLASS, ModelSpec, get_architecture, gradcam_layer, preprocess


def gradcam(model: nn.Module, spec: ModelSpec, crop: np.ndarray) -> np.ndarray:
    """A heatmap in [0, 1], float32, the crop's size, for one BGR face crop."""
    return gradcams(model, spec, [crop])[0]


def gradcams(model: nn.Module, spec: ModelSpec, crops: Sequence[np.ndarray]) -> list[np.ndarray]:
    """`gradcam` of several crops in one forward and one backward pass. In eval mode each crop's
    logit depends on its own activations only, so the gradient of their sum gives each crop its
    own Grad-CAM."""
    if not crops:
        return []
    layer = gradcam_layer(model, spec.arch)
    saved: dict[str, torch.Tensor] = {}

    def keep_activation(_module, _inputs, output):
        output.retain_grad()
        saved["activation"] = output

    handle = layer.register_forward_hook(keep_activation)
    device = next(model.parameters()).device
    try:
        with torch.enable_grad():
            batch = preprocess(list(crops), spec).to(device)
            logits = model(batch)
            model.zero_grad(set_to_none=True)
            logits[:, FAKE_CLASS].sum().backward()
    finally:
        handle.remove()
    activation = saved["activation"]
    weights = activation.grad.mean(dim=(2, 3), keepdim=True)
    cams = torch.relu((weights * activation).sum(dim=1)).detach().float().cpu().numpy()
    model.zero_grad(set_to_none=True)
    return [heatmap_of(cam, crop.shape[:2]) for cam, crop in zip(cams, crops)]


def class_activation_maps(fake_row: torch.Tensor, activation: torch.Tensor) -> torch.Tensor:
    """The fake class's activation maps (N x h x w) from the last block's activations (N x C x h
    x w) and the head's fake-class weights (C): what `recording_cams` records and the ONNX
    export (ml/export.py) computes."""
    return torch.relu(torch.einsum("c,nchw->nhw", fake_row.to(activation.dtype), activation))


@contextlib.contextmanager
def recording_cams(model: nn.Module, spec: ModelSpec) -> Iterator[list[np.ndarray]]:
    """While open, every forward pass of `model` appends one coarse class activation map per
    input (float32, the last block's height x width, not normalised) to the yielded list.
    `heatmap_of` turns one into the crop-sized heatmap `gradcams` would give (module docstring)."""
    entry = get_architecture(spec.arch)
    fake_row = entry.head(model).weight[FAKE_CLASS].detach()
    recorded: list[np.ndarray] = []

    def keep_cam(_module, _inputs, output):
        cams = class_activation_maps(fake_row, output)
        recorded.extend(cams.float().cpu().numpy())

    handle = entry.gradcam_layer(model).register_forward_hook(keep_cam)
    try:
        yield recorded
    finally:
        handle.remove()
