"""Computed views of what a model sees (used by the tests and the app's Explain tab)."""
from __future__ import annotations

import copy

import torch

from .base import PixelModel
from .layers import channel_groups, scale_input


def receptive_field(model: PixelModel, i: int, j: int, c: int = 0, samples: int = 4,
                    seed: int = 0) -> torch.Tensor:
    """Which input sub-pixels can influence the prediction of sub-pixel ``(c, i, j)``.

    Returns gradient magnitudes ``(C, H, W)`` (float64, summed over ``samples`` random
    images) of the features the output layers read at ``(i, j)``, restricted to the colour
    groups ``<= c`` (the only ones channel ``c``'s mask B output layers use). The output
    layers are pointwise, so this is the prediction's receptive field, without the ReLU
    gating of the output layers that can hide it in an untrained net. Exactly zero where
    masked weights cut every path (they contribute exact zeros), positive elsewhere.
    For ``multiscale`` the gradient of the logits themselves is used.
    """
    cfg = model.cfg
    if not (0 <= i < cfg.height and 0 <= j < cfg.width and 0 <= c < cfg.channels):
        raise ValueError(f"position ({c}, {i}, {j}) is outside the {cfg.channels}x"
                         f"{cfg.height}x{cfg.width} image")
    m = copy.deepcopy(model).double().eval()
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, cfg.levels, (samples, cfg.channels, cfg.height, cfg.width), generator=g)
    xf = scale_input(x, cfg.levels).double().requires_grad_(True)
    if hasattr(m, "small"):
        out = m.forward_float(xf)[:, :, c, i, j]                      # (S, levels)
    else:
        f = m.features(xf)[:, :, i, j]                                # (S, 2h)
        out = f[:, channel_groups(f.shape[1], cfg.channels) <= c]
    w = torch.randn(out.shape, generator=g, dtype=torch.float64)
    (out * w).sum().backward()
    return xf.grad.abs().sum(0)
