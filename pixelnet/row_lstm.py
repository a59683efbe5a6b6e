"""Row LSTM PixelRNN (paper Sec. 3.1): LSTM layers that process the image row by row, top to
bottom, a whole row per step. Its receptive field is a triangle above the pixel: it does not
see the whole context. MNIST defaults as the paper's Diagonal BiLSTM: 7 layers, h = 16,
32 output maps.

Reading order: the layer (input-to-state, state-to-state, the gates), the model, the fast
sampling engine (one LSTM cell per pixel per layer).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import BaseConfig, PixelModel, register
from .engine import Cell, FastEngine, cell_order, matrix
from .layers import MaskedConv2d, conditioning_term, init_state, label_embedding, lstm_update


class RowLSTMLayer(nn.Module):
    """Row LSTM layer (paper Sec. 3.1, eq. 3): ``[o, f, i, g] = sigma(K_ss * h_{i-1} +
    K_is * x_i)``, ``c_i = f * c_{i-1} + i * g``, ``h_i = o * tanh(c_i)``, one row ``i`` at a
    time.

    - input-to-state ``K_is``: 1x3 conv along the row, mask B (sees ``(i, j-1)`` and the
      centre), computed for the whole map at once: ``(B, 2h, H, W) -> (B, 4h, H, W)``;
    - state-to-state ``K_ss``: 1x3 conv over the previous row's state ``h_{i-1}``
      ``(B, h, W) -> (B, 4h, W)``, unmasked (the whole previous row is in the past);
    - a 1x1 mask B conv brings ``h`` back to ``2h`` for the residual connection.

    The state above row 0 is learned (``h0``, ``c0``), the same at every column. Conditioning
    (a Multi-Scale map, a class vector) is added to ``K_is * x``.
    """

    def __init__(self, h: int, channels: int, cond_channels: int = 0, classes: int = 0):
        super().__init__()
        self.h = h
        self.i2s = MaskedConv2d(2 * h, 4 * h, (1, 3), "B", channels, out_blocks=4)   # K_is
        self.s2s = nn.Conv1d(h, 4 * h, 3, padding=1)                                 # K_ss
        self.h0, self.c0 = init_state(h), init_state(h)
        self.out = MaskedConv2d(h, 2 * h, 1, "B", channels)
        self.cond = nn.Conv2d(cond_channels, 4 * h, 1) if cond_channels else None
        self.label = label_embedding(classes, 4 * h)

    def input_to_state(self, x: torch.Tensor, cond: torch.Tensor | None,
                       y: torch.Tensor | None) -> torch.Tensor:
        """``K_is * x`` plus conditioning, for the whole map: ``(B, 4h, H, W)``."""
        xs = self.i2s(x)
        extra = conditioning_term(self.cond, self.label, cond, y)
        return xs if extra is None else xs + extra

    def initial_state(self, batch: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(h, c)``, each ``(B, h, W)``: the learned state of the row above row 0."""
        shape = (batch, self.h, width)
        return self.h0[None, :, None].expand(shape), self.c0[None, :, None].expand(shape)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None,
                y: torch.Tensor | None = None) -> torch.Tensor:
        B, _, H, W = x.shape
        xs = self.input_to_state(x, cond, y)               # (B, 4h, H, W)
        h, c = self.initial_state(B, W)
        rows = []
        for xi in xs.unbind(2):                            # the only loop: one row per step
            h, c = lstm_update(xi + self.s2s(h), c)        # unbind, not xs[:, :, i]: O(H) backward
            rows.append(h)
        return x + self.out(torch.stack(rows, 2))          # (B, 2h, H, W)


@dataclass
class RowLSTMConfig(BaseConfig):
    pass


class LayerWeights(NamedTuple):
    """One Row LSTM layer as matrices, gates in ``torch.lstm_cell``'s order."""
    K_is_left: torch.Tensor      # the 1x3 input-to-state kernel's left tap, (2h, 4h)
    K_is_centre: Cell            # its centre tap, fused with the LSTM update
    K_ss: torch.Tensor           # state-to-state 1x3 kernel, Conv1d layout (4h, h, 3)
    bias: torch.Tensor           # K_ss's and K_is's biases, (4h,)
    out: torch.Tensor            # the 1x1 output conv h -> 2h, (h, 2h)
    out_bias: torch.Tensor       # (2h,)


@dataclass
class RowState:
    """One layer's state while row ``i`` is generated; lists are indexed by column."""
    x: list                      # the layer's inputs along row i so far, (n, 2h) each
    h: list                      # h_i along row i so far, (n, h) each
    c: list                      # c_i along row i so far
    from_above: list             # K_ss * h_{i-1} + biases + conditioning, (n, 4h) per column
    c_above: list                # c_{i-1}, (n, h) per column


class RowLSTMEngine(FastEngine):
    """Keeps, for every layer, the part of row i's gates that comes from row i-1
    (``K_ss * h_{i-1}`` + biases + conditioning, computed once per row) and ``c_{i-1}``; a
    pixel then costs one LSTM cell per layer: the left tap of ``K_is`` on the input at
    ``(i, j-1)``, and its centre tap fused into the cell."""

    def __init__(self, model: RowLSTM, x, cond=None, y=None):
        super().__init__(model, x, cond, y)
        layers: list[RowLSTMLayer] = list(model.layers)
        self.condmaps = [None if m is None else cell_order(m) for m in self.condmaps]
        self.weights = [LayerWeights(
            cell_order(matrix(lay.i2s, slice(None), slice(0, 1))),
            Cell(matrix(lay.i2s, slice(None), slice(1, 2)), self.n),
            # reordered once, so a row's gate terms come out in the cell's order
            cell_order(lay.s2s.weight.movedim(0, -1)).movedim(-1, 0).contiguous(),
            cell_order(lay.s2s.bias + lay.i2s.bias),
            matrix(lay.out), lay.out.bias) for lay in layers]
        self.state = []
        for k, lay in enumerate(layers):
            h0, c0 = lay.initial_state(self.n, self.W)
            self.state.append(RowState([None] * self.W, [None] * self.W, [None] * self.W,
                                       self.from_above(k, h0, 0), list(c0.transpose(1, 2).unbind(1))))

    def from_above(self, k: int, h_above: torch.Tensor, i: int) -> list[torch.Tensor]:
        """Row ``i``'s gate terms from row ``i-1`` (``h_above`` ``(n, h, W)``): W x
        ``(n, 4h)``."""
        w = self.weights[k]
        t = F.conv1d(h_above, w.K_ss, w.bias, padding=1).transpose(1, 2)   # (n, W, 4h)
        m = self.condmaps[k]                                 # (n, H, W, 4h) or (n, 4h)
        if m is not None:
            t = t + (m[:, i] if m.dim() == 4 else m[:, None])
        return list(t.unbind(1))

    def body(self, i, j, z):
        zs = []
        for w, s in zip(self.weights, self.state):
            g = s.from_above[j]
            if j > 0:                              # the 1x3 mask B kernel's left tap
                g = torch.addmm(g, s.x[j - 1], w.K_is_left)
            s.x[j] = z
            s.h[j], s.c[j] = w.K_is_centre(z, g, s.c_above[j])
            z = torch.addmm(z + w.out_bias, s.h[j], w.out)                 # residual
            zs.append(z)
        return self.output(zs)

    def end_row(self, i):
        if i + 1 < self.H:
            for k, s in enumerate(self.state):
                s.from_above = self.from_above(k, torch.stack(s.h, 2), i + 1)
                s.c_above = list(s.c)


@register
class RowLSTM(PixelModel):
    arch = "row_lstm"
    title = "Row LSTM"
    unseen = ("everything outside its triangle: far left in its row, far to the sides in the "
              "rows just above")
    Config = RowLSTMConfig
    Engine = RowLSTMEngine

    def make_layer(self, cond_channels: int) -> RowLSTMLayer:
        return RowLSTMLayer(self.cfg.h, self.cfg.channels, cond_channels, self.cfg.classes)
