"""PixelCNN (paper Sec. 3.3): a 7x7 mask A conv, residual blocks of 1x1 / 3x3 mask B / 1x1
convs, two output layers. Parallel over positions; has the blind spot the paper describes.
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import BaseConfig, PixelModel
from .layers import ResidualBlock


@dataclass
class PixelCNNConfig(BaseConfig):
    """PixelCNN at MNIST size. The paper's CIFAR-10 model has 15 layers, h = 128; it gives no
    MNIST size, so we keep its depth (15 residual blocks) at the MNIST width h = 16."""
    layers: int = 15
    skip: bool = False       # Table 1's PixelCNN is a plain residual stack


class PixelCNN(PixelModel):
    arch = "pixelcnn"
    Config = PixelCNNConfig

    def make_layer(self, cond_channels: int) -> ResidualBlock:
        return ResidualBlock(self.cfg.h, self.cfg.channels, cond_channels)
