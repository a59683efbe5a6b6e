"""Row LSTM PixelRNN (paper Sec. 3.1): row-by-row LSTM layers with a triangular receptive
field. MNIST defaults as the paper's Diagonal BiLSTM: 7 layers, h = 16, 32 output maps."""
from __future__ import annotations

from dataclasses import dataclass

from .base import BaseConfig, PixelModel
from .layers import RowLSTMLayer


@dataclass
class RowLSTMConfig(BaseConfig):
    pass


class RowLSTM(PixelModel):
    arch = "row_lstm"
    Config = RowLSTMConfig

    def make_layer(self, cond_channels: int) -> RowLSTMLayer:
        return RowLSTMLayer(self.cfg.h, self.cfg.channels, cond_channels)
