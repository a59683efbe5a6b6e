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

from .base import BaseConfig, PixelModel
from .diagonal_bilstm import DiagonalBiLSTM, DiagonalBiLSTMConfig
from .layers import scale_input
from .pixelcnn import PixelCNN, PixelCNNConfig
from .row_lstm import RowLSTM, RowLSTMConfig

BASES = {"row_lstm": (RowLSTM, RowLSTMConfig), "diagonal_bilstm": (DiagonalBiLSTM, DiagonalBiLSTMConfig),
         "pixelcnn": (PixelCNN, PixelCNNConfig)}


@dataclass
class MultiScaleConfig(BaseConfig):
    """``layers``/``h``/``out_h`` size the conditional model, ``small_*`` the unconditional
    one; ``base`` is ``diagonal_bilstm``, ``row_lstm`` or ``pixelcnn``. The paper gives no
    sizes for this model; these match its MNIST PixelRNN."""
    base: str = "diagonal_bilstm"
    scale: int = 2
    small_layers: int = 7
    small_h: int = 16
    up_channels: int = 16

    def validate(self) -> None:
        super().validate()
        if self.base not in BASES:
            raise ValueError(f"multiscale base must be one of {sorted(BASES)}, got {self.base!r}")
        if self.scale < 2 or self.height % self.scale or self.width % self.scale:
            raise ValueError(f"scale must be >= 2 and divide the image size, got scale "
                             f"{self.scale} for {self.height}x{self.width}")


class MultiScale(PixelModel):
    arch = "multiscale"
    Config = MultiScaleConfig

    def __init__(self, cfg: MultiScaleConfig):
        cfg.validate()
        nn.Module.__init__(self)        # the stack lives in the two sub-models
        self.cfg = cfg
        model_cls, config_cls = BASES[cfg.base]
        common = dict(channels=cfg.channels, levels=cfg.levels, out_h=cfg.out_h, skip=cfg.skip)
        self.small = model_cls(config_cls(height=cfg.height // cfg.scale,
                                          width=cfg.width // cfg.scale,
                                          layers=cfg.small_layers, h=cfg.small_h, **common))
        self.cond = model_cls(config_cls(height=cfg.height, width=cfg.width, layers=cfg.layers,
                                         h=cfg.h, **common), cond_channels=cfg.up_channels)
        u, k = cfg.up_channels, cfg.scale
        # deconvolutional upsampler: (B, C, s, s) -> (B, u, n, n)
        self.upsample = nn.Sequential(
            nn.Conv2d(cfg.channels, u, 3, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(u, u, k, stride=k), nn.ReLU(),
            nn.Conv2d(u, u, 3, padding=1))

    @property
    def dtype(self) -> torch.dtype:
        return self.cond.dtype

    def subsample(self, x: torch.Tensor) -> torch.Tensor:
        """``x[..., ::scale, ::scale]``: the small image the first model generates."""
        return x[..., :: self.cfg.scale, :: self.cfg.scale]

    def conditioning(self, xs_float: torch.Tensor) -> torch.Tensor:
        """Upsampled conditioning map ``(B, up_channels, H, W)`` from the scaled subsample."""
        return self.upsample(xs_float)

    def forward_float(self, xf: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        xs = self.subsample(xf)
        logits = self.cond.forward_float(xf, self.conditioning(xs)).clone()
        k = self.cfg.scale
        logits[..., ::k, ::k] = self.small.forward_float(xs)
        return logits

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        x = self.check_input(x)
        return self.forward_float(scale_input(x, self.cfg.levels).to(self.dtype))

    def in_subsample(self, i: int, j: int) -> bool:
        return i % self.cfg.scale == 0 and j % self.cfg.scale == 0

    def generation_order(self) -> list[tuple[int, int]]:
        """The subsample's pixels in raster order, then all others in raster order."""
        raster = super().generation_order()
        return ([p for p in raster if self.in_subsample(*p)]
                + [p for p in raster if not self.in_subsample(*p)])

