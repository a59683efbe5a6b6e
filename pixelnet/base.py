"""The skeleton every architecture shares (paper Table 1): a 7x7 mask A input layer, a stack
of ``layers`` blocks on a ``2h``-feature residual stream, optional learnable skip connections,
and two mask B output layers giving a ``levels``-way softmax per channel.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from .layers import MaskedConv2d, OutputHead, scale_input


@dataclass
class BaseConfig:
    """Fields every architecture has. Defaults: binarized MNIST (28x28x1, 2 levels)."""
    channels: int = 1
    levels: int = 2
    height: int = 28
    width: int = 28
    layers: int = 7          # LSTM layers / residual blocks
    h: int = 16              # hidden size; the residual stream has 2h features
    out_h: int = 32          # features of the first output layer (paper: 32 for MNIST)
    skip: bool = True        # learnable 1x1 skip connections from every layer to the output

    def validate(self) -> None:
        if self.channels < 1:
            raise ValueError(f"channels must be >= 1, got {self.channels}")
        if self.levels < 2:
            raise ValueError(f"levels must be >= 2, got {self.levels}")
        if self.height < 1 or self.width < 1:
            raise ValueError(f"height and width must be >= 1, got {self.height}x{self.width}")
        if self.layers < 0 or self.h < 1 or self.out_h < 1:
            raise ValueError("layers must be >= 0 and h, out_h >= 1")
        if 2 * self.h < self.channels:
            raise ValueError(f"2h = {2 * self.h} features cannot hold {self.channels} colour "
                             "groups: use a larger h")


class PixelModel(nn.Module):
    """Base class: input checking, the shared stack, ``config`` and the generation order.

    Subclasses set ``arch``, ``Config`` and build ``self.layers`` (blocks taking
    ``(z, cond)`` and returning the updated ``(B, 2h, H, W)`` residual stream).
    """

    arch = "base"
    Config = BaseConfig
    first_kernel = 7

    def __init__(self, cfg: BaseConfig, cond_channels: int = 0):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.cond_channels = cond_channels
        C, h = cfg.channels, cfg.h
        self.input = MaskedConv2d(C, 2 * h, self.first_kernel, "A", C)
        self.layers = nn.ModuleList([self.make_layer(cond_channels) for _ in range(cfg.layers)])
        self.skips = nn.ModuleList(
            [MaskedConv2d(2 * h, 2 * h, 1, "B", C) for _ in range(cfg.layers)]
        ) if cfg.skip else None
        self.head = OutputHead(2 * h, cfg.out_h, C, cfg.levels)

    def make_layer(self, cond_channels: int) -> nn.Module:
        raise NotImplementedError

    @property
    def config(self) -> dict:
        """Plain dict such that ``build_model(**model.config)`` rebuilds this model."""
        return {"arch": self.arch, **asdict(self.cfg)}

    @property
    def dtype(self) -> torch.dtype:
        return self.head.conv2.weight.dtype

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        """Validate an image batch against the config; returns it as a LongTensor."""
        c = self.cfg
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"expected a torch.Tensor of integer levels, got {type(x).__name__}")
        if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
            raise ValueError(f"expected integer levels in [0, {c.levels}) (a LongTensor), got "
                             f"dtype {x.dtype}; convert images with x.long() after quantizing")
        want = (c.channels, c.height, c.width)
        if x.dim() != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(f"expected shape (B, {c.channels}, {c.height}, {c.width}) for this "
                             f"{self.arch} model, got {tuple(x.shape)}")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= c.levels):
            raise ValueError(f"pixel values must lie in [0, {c.levels}), got range "
                             f"[{int(x.min())}, {int(x.max())}]")
        return x.long()

    def features(self, xf: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """What the output layers read, ``(B, 2h, H, W)``, from the scaled float image
        ``(B, C, H, W)`` (the last residual stream, or the sum of the skip connections)."""
        z = self.input(xf)                                   # (B, 2h, H, W)
        s = 0
        for k, layer in enumerate(self.layers):
            z = layer(z, cond)
            if self.skips is not None:
                s = s + self.skips[k](z)
        return s if self.skips is not None else z

    def forward_float(self, xf: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, levels, C, H, W)`` from the scaled float image ``(B, C, H, W)``."""
        return self.head(self.features(xf, cond))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, levels, C, H, W)`` for an image batch ``(B, C, H, W)`` of levels."""
        x = self.check_input(x)
        return self.forward_float(scale_input(x, self.cfg.levels).to(self.dtype), cond)

    def generation_order(self) -> list[tuple[int, int]]:
        """Pixel positions in the order they are generated (raster order here)."""
        return [(i, j) for i in range(self.cfg.height) for j in range(self.cfg.width)]
