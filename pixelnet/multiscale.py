"""Multi-Scale PixelRNN (paper Sec. 3.5).

An unconditional PixelRNN models the ``s x s`` subsample ``x_s = x[..., ::scale, ::scale]``;
a conditional PixelRNN models the ``n x n`` image given it. ``x_s`` goes through a small
deconvolutional upsampler to a ``(up_channels, n, n)`` map, which every conditional LSTM layer
maps with a 1x1 unmasked conv to ``4h`` features and adds to its input-to-state map.

``base`` picks the architecture of both models: the paper's PixelRNNs (``diagonal_bilstm``,
``row_lstm``), or ``pixelcnn``, whose residual blocks add the 1x1-mapped conditioning (``h``
features) to their first 1x1 conv's output. The PixelCNN base is ours, not the paper's: it
is the cheapest of the three to train on a CPU.

Likelihood. ``x_s`` is a deterministic part of ``x`` (the pixels at rows and columns that are
multiples of ``scale``), so with ``S`` those positions

    p(x) = p_small(x_s) * prod_{i not in S} p_cond(x_i | x_{<i}, x_s).

The pixels of ``S`` are not predicted a second time by the conditional model. This is an exact,
normalized likelihood under the generation order "the subsample in raster order, then every
other pixel in raster order". ``forward`` returns logits in the usual ``(B, levels, C, H, W)``
layout: at positions of ``S`` the small model's logits, elsewhere the conditional model's, so
``F.cross_entropy(logits, x)`` summed over all sub-pixels is exactly ``-log p(x)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from .base import MODELS, BaseConfig, Model, PixelModel, register
from .layers import scale_input


def bases() -> list[str]:
    """The architectures a Multi-Scale model can be built on: every single-scale one."""
    return [a for a, m in MODELS.items() if issubclass(m, PixelModel)]


@dataclass
class MultiScaleConfig(BaseConfig):
    """``layers``/``h``/``out_h`` size the conditional model, ``small_*`` the unconditional
    one; ``base`` is the architecture of both (see :func:`bases`). The paper gives no sizes
    for this model; these match its MNIST PixelRNN. With ``classes`` both models are
    class-conditional."""
    base: str = "diagonal_bilstm"
    scale: int = 2
    small_layers: int = 7
    small_h: int = 16
    up_channels: int = 16

    def validate(self) -> None:
        super().validate()
        if self.base not in bases():
            raise ValueError(f"multiscale base must be one of {bases()}, got {self.base!r}")
        if self.scale < 2 or self.height % self.scale or self.width % self.scale:
            raise ValueError(f"scale must be >= 2 and divide the image size, got scale "
                             f"{self.scale} for {self.height}x{self.width}")


class MultiScaleEngine:
    """The small model's fast engine on the subsample (a strided view of the image), then,
    once the subsample is complete, the conditional model's fast engine on the full image."""

    def __init__(self, model: MultiScale, x: torch.Tensor, y: torch.Tensor | None = None):
        self.model, self.x, self.y = model, x, y
        self.small = model.small.Engine(model.small, model.subsample(x), y=y)
        self.full = None

    def logits(self, i: int, j: int, c: int) -> torch.Tensor:
        m = self.model
        if m.in_subsample(i, j):
            return self.small.logits(i // m.cfg.scale, j // m.cfg.scale, c)
        if self.full is None:
            xs = scale_input(m.subsample(self.x), m.cfg.levels).to(m.dtype)
            self.full = m.cond.Engine(m.cond, self.x, cond=m.conditioning(xs), y=self.y)
        return self.full.logits(i, j, c)


@register
class MultiScale(Model):
    arch = "multiscale"
    title = "Multi-Scale"
    Config = MultiScaleConfig
    Engine = MultiScaleEngine

    def __init__(self, cfg: MultiScaleConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        model_cls = MODELS[cfg.base]
        common = dict(channels=cfg.channels, levels=cfg.levels, out_h=cfg.out_h, skip=cfg.skip,
                      classes=cfg.classes, dropout=cfg.dropout)
        self.small = model_cls(model_cls.Config(height=cfg.height // cfg.scale,
                                                width=cfg.width // cfg.scale,
                                                layers=cfg.small_layers, h=cfg.small_h, **common))
        self.cond = model_cls(model_cls.Config(height=cfg.height, width=cfg.width,
                                               layers=cfg.layers, h=cfg.h, **common),
                              cond_channels=cfg.up_channels)
        u, k = cfg.up_channels, cfg.scale
        # deconvolutional upsampler: (B, C, s, s) -> (B, u, n, n)
        self.upsample = nn.Sequential(
            nn.Conv2d(cfg.channels, u, 3, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(u, u, k, stride=k), nn.ReLU(),
            nn.Conv2d(u, u, 3, padding=1))

    def subsample(self, x: torch.Tensor) -> torch.Tensor:
        """``x[..., ::scale, ::scale]``: the small image the first model generates."""
        return x[..., :: self.cfg.scale, :: self.cfg.scale]

    def conditioning(self, xs_float: torch.Tensor) -> torch.Tensor:
        """Upsampled conditioning map ``(B, up_channels, H, W)`` from the scaled subsample."""
        return self.upsample(xs_float)

    def forward_float(self, xf, cond=None, y=None):
        xs = self.subsample(xf)
        logits = self.cond.forward_float(xf, self.conditioning(xs), y).clone()
        k = self.cfg.scale
        logits[..., ::k, ::k] = self.small.forward_float(xs, y=y)
        return logits

    def prediction_inputs(self, xf, i, j, c):
        # the two stacks meet only in the logits, so their gradient is what is measured
        return self.forward_float(xf, y=self.labels(None, xf.shape[0]))[:, :, c, i, j]

    def masked_stack(self):
        return self.cond

    def in_subsample(self, i: int, j: int) -> bool:
        return i % self.cfg.scale == 0 and j % self.cfg.scale == 0

    def generation_order(self) -> list[tuple[int, int]]:
        """The subsample's pixels in raster order, then all others in raster order."""
        raster = super().generation_order()
        return ([p for p in raster if self.in_subsample(*p)]
                + [p for p in raster if not self.in_subsample(*p)])
