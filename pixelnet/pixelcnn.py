"""PixelCNN (paper Sec. 3.3): a 7x7 mask A conv, residual blocks of 1x1 / 3x3 mask B / 1x1
convs, two output layers. Parallel over positions in training; it has the blind spot the
paper describes (pixels above and to the right that never reach a prediction).

Reading order: the residual block, the model, the fast sampling engine.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import BaseConfig, PixelModel, register
from .engine import FastEngine, at, matrix
from .layers import MaskedConv2d, conditioning_term, label_embedding


class ResidualBlock(nn.Module):
    """PixelCNN residual block (paper Fig. 5): ReLU, 1x1 2h->h, ReLU, 3x3 mask B, ReLU,
    1x1 h->2h, added to the input. Every conv is mask B so colour groups never mix forward.

    Conditioning (a Multi-Scale map through a 1x1 unmasked conv, ``cond``, and/or a class
    vector, ``label``) is added to the first 1x1 conv's output ``(B, h, H, W)``. The paper's
    Multi-Scale model uses PixelRNN layers; a PixelCNN base is our addition.
    """

    def __init__(self, h: int, channels: int, cond_channels: int = 0, classes: int = 0):
        super().__init__()
        self.conv1 = MaskedConv2d(2 * h, h, 1, "B", channels)
        self.conv2 = MaskedConv2d(h, h, 3, "B", channels)
        self.conv3 = MaskedConv2d(h, 2 * h, 1, "B", channels)
        self.cond = nn.Conv2d(cond_channels, h, 1) if cond_channels else None
        self.label = label_embedding(classes, h)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None,
                y: torch.Tensor | None = None) -> torch.Tensor:
        a = self.conv1(F.relu(x))                            # (B, h, H, W)
        extra = conditioning_term(self.cond, self.label, cond, y)
        if extra is not None:
            a = a + extra
        b = self.conv2(F.relu(a))                            # (B, h, H, W)
        return x + self.conv3(F.relu(b))                     # (B, 2h, H, W)


@dataclass
class PixelCNNConfig(BaseConfig):
    """PixelCNN at MNIST size. The paper's CIFAR-10 model has 15 layers, h = 128; it gives no
    MNIST size, so we keep its depth (15 residual blocks) at the MNIST width h = 16."""
    layers: int = 15
    skip: bool = False       # Table 1's PixelCNN is a plain residual stack


class BlockWeights(NamedTuple):
    """One residual block as matrices on feature-last vectors ``(n, F)``."""
    w1: torch.Tensor         # 1x1 conv 2h -> h, (2h, h) (its bias: the engine's b1)
    w3x3: torch.Tensor       # the 3x3 mask B conv's five visible taps, stacked: (5h, h)
    b3x3: torch.Tensor       # (h,)
    w2: torch.Tensor         # 1x1 conv h -> 2h, (h, 2h)
    b2: torch.Tensor         # (2h,)


class PixelCNNEngine(FastEngine):
    """Caches ``relu(1x1 conv)`` of every block at every position: the input of the block's
    3x3 mask B conv, which at (i, j) reads (i-1, j-1), (i-1, j), (i-1, j+1), (i, j-1) and the
    centre (the rest of its kernel is masked). A pixel costs four small products per block.

    Conditioning is folded into the first 1x1 conv's bias: once per run for a class vector
    ``(n, h)``, per position for a Multi-Scale map ``(n, H, W, h)``.
    """

    def __init__(self, model: PixelCNN, x, cond=None, y=None):
        super().__init__(model, x, cond, y)
        self.blocks = []
        for b in model.layers:
            w = b.conv2.masked_weight()                                    # (h, h, 3, 3)
            taps = [w[:, :, 0, 0], w[:, :, 0, 1], w[:, :, 0, 2], w[:, :, 1, 0], w[:, :, 1, 1]]
            self.blocks.append(BlockWeights(matrix(b.conv1), torch.cat([t.T for t in taps]),
                                            b.conv2.bias, matrix(b.conv3), b.conv3.bias))
        # the first 1x1 conv's bias with the conditioning folded in: (h,), (n, h) or (n, H, W, h)
        self.b1 = [b.conv1.bias if m is None else m + b.conv1.bias
                   for m, b in zip(self.condmaps, model.layers)]
        zero = torch.zeros(self.n, model.cfg.h, dtype=self.dtype, device=self.device)
        # relu(1x1 conv) of block k at (i, j) is act[k][i + 1][j + 1]: a zero border at
        # row -1 and columns -1 and W, which the 3x3 conv reads as its zero padding
        self.act = [[[zero] * (self.W + 2) for _ in range(self.H + 1)] for _ in model.layers]

    def body(self, i, j, z):
        zs = []
        for k, w in enumerate(self.blocks):
            b1 = at(self.b1[k], i, j)                                     # (n, h) or (h,)
            above, row = self.act[k][i], self.act[k][i + 1]               # rows i-1 and i
            row[j + 1] = F.relu(torch.addmm(b1, F.relu(z), w.w1))
            win = torch.cat([above[j], above[j + 1], above[j + 2], row[j], row[j + 1]], 1)
            z = z + torch.addmm(w.b2, F.relu(torch.addmm(w.b3x3, win, w.w3x3)), w.w2)
            zs.append(z)
        return self.output(zs)


@register
class PixelCNN(PixelModel):
    arch = "pixelcnn"
    title = "PixelCNN"
    unseen = "the blind spot above and to the right, which no depth removes"
    Config = PixelCNNConfig
    Engine = PixelCNNEngine

    def make_layer(self, cond_channels: int) -> ResidualBlock:
        return ResidualBlock(self.cfg.h, self.cfg.channels, cond_channels, self.cfg.classes)
