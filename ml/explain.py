"""Grad-CAM heatmaps: which parts of a face crop pushed the model towards "fake".

Grad-CAM (Selvaraju et al., 2017): the gradients of the fake logit with respect to the last
convolutional block's activations, averaged per channel, weight those activations; the positive
part of the weighted sum, upsampled to the crop, is the heatmap.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torch import nn

from .model import FAKE_CLASS, ModelSpec, gradcam_layer, preprocess


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
    heatmaps = []
    for cam, crop in zip(cams, crops):
        if cam.max() > 0:
            cam = cam / cam.max()
        heatmaps.append(cv2.resize(cam.astype(np.float32), crop.shape[1::-1], interpolation=cv2.INTER_LINEAR))
    return heatmaps


def overlay_png(crop: np.ndarray, heatmap: np.ndarray, *, alpha: float = 0.6) -> bytes:
    """The heatmap in viridis (a perceptually uniform colour map) over the BGR crop, as PNG.

    Each pixel's opacity grows with its heat, from a fifth of `alpha` where the model paid no
    attention to `alpha` where it paid the most, so the face stays visible under the colours.
    The page shows the matching colour bar.
    """
    heat = np.clip(heatmap, 0, 1).astype(np.float32)
    colours = cv2.applyColorMap(np.uint8(heat * 255), cv2.COLORMAP_VIRIDIS).astype(np.float32)
    opacity = (alpha * (0.2 + 0.8 * heat))[..., None]
    blended = np.uint8(np.clip(colours * opacity + crop.astype(np.float32) * (1 - opacity), 0, 255).round())
    ok, encoded = cv2.imencode(".png", blended)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return encoded.tobytes()
