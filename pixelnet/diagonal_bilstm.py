"""Diagonal BiLSTM PixelRNN (paper Sec. 3.2): LSTM layers that scan the skewed image along
its diagonals, in both directions, so that every layer sees the whole context. MNIST
defaults from the paper: 7 layers, h = 16, 32 output maps (79.20 nats on binarized MNIST).

Reading order: the layer (input-to-state, skew, the column-wise state-to-state scan, unskew,
the two directions), the model, the fast sampling engine.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import BaseConfig, PixelModel, register
from .engine import Cell, FastEngine, at, cell_order, matrix
from .layers import (MaskedConv2d, conditioning_term, init_state, label_embedding, lstm_update,
                     skew, unskew)


class DiagonalBiLSTMLayer(nn.Module):
    """Diagonal BiLSTM layer (paper Sec. 3.2).

    Each direction: input-to-state ``K_is`` 1x1 mask B ``(B, 2h, H, W) -> (B, 4h, H, W)``;
    skew to ``(B, 4h, H, W + H - 1)``; one LSTM step per skewed column, the whole column at
    once, with a 2x1 state-to-state conv ``K_ss`` over the previous column (cell ``(r, t)``
    sees ``(r - 1, t - 1)`` and ``(r, t - 1)``, i.e. the pixel above and the pixel to the
    left); unskew. The right-to-left direction runs on the column-flipped map and its output
    is shifted down one row before the two are added, so it never sees a future pixel.

    Cells of the skewed map that lie outside the image are held at the learned initial
    state, so the state entering column 0 of every row, and the state above row 0, is
    exactly ``(h0, c0)`` (no row-dependent warm-up through the padding). Conditioning (a
    Multi-Scale map, a class vector) is added to ``K_is * x``.
    """

    def __init__(self, h: int, channels: int, cond_channels: int = 0, classes: int = 0):
        super().__init__()
        self.h = h
        # both directions' input-to-state maps in one conv: 8h = 2 directions x [o, f, i, g]
        self.i2s = MaskedConv2d(2 * h, 8 * h, 1, "B", channels, out_blocks=8)
        # 2x1 state-to-state kernel per direction: tap 0 on the cell above, tap 1 on the left
        self.s2s = nn.ModuleList([nn.Conv1d(h, 4 * h, 2) for _ in range(2)])
        self.h0 = nn.ParameterList([init_state(h) for _ in range(2)])
        self.c0 = nn.ParameterList([init_state(h) for _ in range(2)])
        self.out = MaskedConv2d(h, 2 * h, 1, "B", channels)
        self.cond = nn.Conv2d(cond_channels, 8 * h, 1) if cond_channels else None
        self.label = label_embedding(classes, 8 * h)

    def input_to_state(self, x: torch.Tensor, cond: torch.Tensor | None,
                       y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-to-right and right-to-left ``K_is * x`` (plus conditioning), each
        ``(B, 4h, H, W)``."""
        xs = self.i2s(x)
        extra = conditioning_term(self.cond, self.label, cond, y)
        if extra is not None:
            xs = xs + extra
        return xs[:, : 4 * self.h], xs[:, 4 * self.h:]

    def scan(self, xs: torch.Tensor) -> torch.Tensor:
        """Run both directions over ``xs`` ``(B, 2, 4h, H, W)`` (direction 1 already
        column-flipped); returns ``h`` ``(B, 2, h, H, W)``.

        Each step is one skewed column of both directions: ``gates = xs_t + K_ss [h_above;
        h_left]``, one batched matmul ``(2, 4h, 2h) @ (2, 2h, B*H)``. The fast sampler
        computes the same cells one pixel at a time; tests check both agree.
        """
        B, _, G, H, W = xs.shape                           # G = 4h
        h, T = self.h, W + H - 1
        sk = skew(xs.reshape(B, 2 * G, H, W)).view(B, 2, G, H, T)
        bias = torch.stack([s.bias for s in self.s2s])[None, :, :, None, None]
        # (T, 2, 4h, B*H): one contiguous slab per step; unbind (not sk[t]) keeps backward O(T)
        steps = (sk.permute(4, 1, 2, 0, 3) + bias).reshape(T, 2, G, B * H).unbind(0)
        # s2s weight (4h, h, 2): tap 0 on the cell above, tap 1 on the left -> (2, 4h, 2h)
        k = torch.stack([s.weight.permute(0, 2, 1).reshape(G, 2 * h) for s in self.s2s])
        h0 = torch.stack(list(self.h0))[:, :, None, None].expand(2, h, B, H)
        c0 = torch.stack(list(self.c0))[:, :, None, None].expand(2, h, B, H)
        r = torch.arange(H, device=xs.device)
        hs, cs, cols = h0, c0, []
        for t in range(T):                                 # the only loop: a skewed column per step
            above = torch.cat([h0[..., :1], hs[..., :-1]], -1)     # cell r sees h[r-1]; h0 above row 0
            gates = torch.baddbmm(steps[t], k, torch.cat([above, hs], 1).reshape(2, 2 * h, B * H))
            hn, cn = lstm_update(gates, cs.reshape(2, h, B * H))
            inside = (t - r >= 0) & (t - r < W)            # (H,) cells of this column in the image
            hs = torch.where(inside, hn.view(2, h, B, H), h0)
            cs = torch.where(inside, cn.view(2, h, B, H), c0)
            cols.append(hs)
        out = torch.stack(cols, -1).permute(2, 0, 1, 3, 4).reshape(B, 2 * h, H, T)
        return unskew(out, W).view(B, 2, h, H, W)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None,
                y: torch.Tensor | None = None) -> torch.Tensor:
        l2r, r2l = self.input_to_state(x, cond, y)
        hs = self.scan(torch.stack([l2r, r2l.flip(-1)], 1))
        hl, hr = hs[:, 0], hs[:, 1].flip(-1)
        hr = F.pad(hr, (0, 0, 1, 0))[:, :, :-1]           # shift down one row: row i gets row i-1
        return x + self.out(hl + hr)


@dataclass
class DiagonalBiLSTMConfig(BaseConfig):
    pass


class LayerWeights(NamedTuple):
    """One Diagonal BiLSTM layer as matrices, gates in ``torch.lstm_cell``'s order."""
    l2r: Cell                    # left-to-right: [K_is; K_ss above; K_ss left] on [x, h_above, h_left]
    l2r_bias: torch.Tensor       # (4h,)
    r2l_K_is: torch.Tensor       # right-to-left input-to-state, (2h, 4h)
    r2l_K_ss: Cell               # right-to-left state-to-state on [h_above, h_right]
    r2l_bias: torch.Tensor       # (4h,)
    out: torch.Tensor            # the 1x1 output conv h -> 2h, (h, 2h)
    out_bias: torch.Tensor       # (2h,)
    h0: list                     # the learned initial state per direction, (n, h) each
    c0: list


@dataclass
class DiagonalState:
    """One layer's per-position caches, ``[i][j]`` -> ``(n, F)``."""
    x: list = field(default_factory=list)      # the layer's inputs
    h_l2r: list = field(default_factory=list)  # left-to-right h
    c_l2r: list = field(default_factory=list)  # left-to-right c
    h_r2l: list = field(default_factory=list)  # right-to-left h (filled once a row is done)


class DiagonalBiLSTMEngine(FastEngine):
    """Left-to-right: one cell per pixel per layer, on the pixel above and the pixel to the
    left. Right-to-left: one pass per finished row, since its output only reaches the next
    row (after the one-row shift).

    The 2x1 state-to-state kernel and the 1x1 input-to-state kernel of the left-to-right
    direction are fused into one matrix applied to ``[x, h_above, h_left]``."""

    def __init__(self, model: DiagonalBiLSTM, x, cond=None, y=None):
        super().__init__(model, x, cond, y)
        layers: list[DiagonalBiLSTMLayer] = list(model.layers)
        self.weights = []
        for lay in layers:
            K_is, h4 = matrix(lay.i2s), 4 * lay.h                         # (2h, 8h)
            K_ss = [lay.s2s[d].weight for d in range(2)]                  # (4h, h, 2)
            self.weights.append(LayerWeights(
                Cell(torch.cat([K_is[:, :h4], K_ss[0][:, :, 0].T, K_ss[0][:, :, 1].T]), self.n),
                cell_order(lay.i2s.bias[:h4] + lay.s2s[0].bias),
                cell_order(K_is[:, h4:]),
                Cell(torch.cat([K_ss[1][:, :, 0].T, K_ss[1][:, :, 1].T]), self.n),
                cell_order(lay.i2s.bias[h4:] + lay.s2s[1].bias),
                matrix(lay.out), lay.out.bias,
                [lay.h0[d].expand(self.n, -1) for d in range(2)],
                [lay.c0[d].expand(self.n, -1) for d in range(2)]))
        self.state = [DiagonalState(self.grid(), self.grid(), self.grid(), self.grid())
                      for _ in layers]
        # each stream's bias with the conditioning folded in, in the cell's gate order:
        # (4h,), (n, 4h) or (n, H, W, 4h)
        self.b_l2r, self.b_r2l = [], []
        for m, w in zip(self.condmaps, self.weights):
            l2r, r2l = m.chunk(2, -1) if m is not None else (None, None)
            self.b_l2r.append(w.l2r_bias if m is None else cell_order(l2r) + w.l2r_bias)
            self.b_r2l.append(w.r2l_bias if m is None else cell_order(r2l) + w.r2l_bias)

    def body(self, i, j, z):
        zs = []
        for k, (w, s) in enumerate(zip(self.weights, self.state)):
            s.x[i][j] = z
            h0, c0 = w.h0[0], w.c0[0]
            above = s.h_l2r[i - 1][j] if i > 0 else h0
            left, c_left = (s.h_l2r[i][j - 1], s.c_l2r[i][j - 1]) if j > 0 else (h0, c0)
            h, c = w.l2r(torch.cat([z, above, left], 1), at(self.b_l2r[k], i, j), c_left)
            s.h_l2r[i][j], s.c_l2r[i][j] = h, c
            if i > 0:
                h = h + s.h_r2l[i - 1][j]          # right-to-left stream of the row above
            z = torch.addmm(z + w.out_bias, h, w.out)                      # residual
            zs.append(z)
        return self.output(zs)

    def end_row(self, i):
        """Run the right-to-left stream over the finished row ``i``."""
        if i + 1 == self.H:
            return
        for k, (w, s) in enumerate(zip(self.weights, self.state)):
            xrow = torch.stack(s.x[i], 1)                                  # (n, W, 2h)
            b = self.b_r2l[k]                                              # row i: (n, W, 4h)
            b = b[:, i] if b.dim() == 4 else b[:, None] if b.dim() == 2 else b
            xs = (xrow @ w.r2l_K_is + b).unbind(1)                         # the whole row at once
            h, c = w.h0[1], w.c0[1]
            for j in range(self.W - 1, -1, -1):
                above = s.h_r2l[i - 1][j] if i > 0 else w.h0[1]
                h, c = w.r2l_K_ss(torch.cat([above, h], 1), xs[j], c)
                s.h_r2l[i][j] = h


@register
class DiagonalBiLSTM(PixelModel):
    arch = "diagonal_bilstm"
    title = "Diagonal BiLSTM"
    Config = DiagonalBiLSTMConfig
    Engine = DiagonalBiLSTMEngine

    def make_layer(self, cond_channels: int) -> DiagonalBiLSTMLayer:
        return DiagonalBiLSTMLayer(self.cfg.h, self.cfg.channels, cond_channels, self.cfg.classes)
