"""Diagonal BiLSTM PixelRNN (paper Sec. 3.2): skewed column-wise LSTMs in both directions,
whole context in every layer. MNIST defaults from the paper: 7 layers, h = 16, 32 output maps
(79.20 nats on binarized MNIST)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import BaseConfig, PixelModel
from .layers import DiagonalBiLSTMLayer


@dataclass
class DiagonalBiLSTMConfig(BaseConfig):
    pass


class DiagonalBiLSTM(PixelModel):
    arch = "diagonal_bilstm"
    Config = DiagonalBiLSTMConfig

    def make_layer(self, cond_channels: int) -> DiagonalBiLSTMLayer:
        return DiagonalBiLSTMLayer(self.cfg.h, self.cfg.channels, cond_channels)
