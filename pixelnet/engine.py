"""What every fast sampler shares (each architecture's own engine lives in its module).

A fast engine gives the logits of one sub-pixel given the image so far, reusing what earlier
sub-pixels computed, so a step costs a handful of small matrix products per layer instead of
the whole network. It is asked for sub-pixels in generation order and catches up by itself
over the pixels it was not asked for (known pixels), so completion costs no more than
generation. Features at pixel (i, j) never depend on its last channel (mask A, then mask B),
so the computation done for the last channel is final for that pixel.

At creation every (masked) kernel is turned once into a matrix, and per-position
activations are kept in nested Python lists of ``(n, F)`` tensors (indexing a list costs
nothing; indexing a tensor costs more than the tiny matrix product itself). Everything is
allocated on the model's device and in its dtype.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import MaskedConv2d, conditioning_term, scale_input


def matrix(conv: nn.Module, rows: slice = slice(None), cols: slice = slice(None)) -> torch.Tensor:
    """A conv's (masked) kernel restricted to a window, as the ``(in * kh * kw, out)``
    matrix that multiplies a feature-last window ``(n, kh, kw, in)`` flattened."""
    w = conv.masked_weight() if isinstance(conv, MaskedConv2d) else conv.weight
    if w.dim() == 3:                                   # Conv1d (out, in, k) -> (out, in, 1, k)
        w = w[:, :, None]
    w = w[:, :, rows, cols]
    return w.permute(2, 3, 1, 0).reshape(-1, w.shape[0]).contiguous()


def cell_order(t: torch.Tensor) -> torch.Tensor:
    """Gate blocks along the last dim from ours, ``[o, f, i, g]``, to ``torch.lstm_cell``'s
    ``[i, f, g, o]``: ``(..., 4h) -> (..., 4h)``."""
    o, f, i, g = t.chunk(4, -1)
    return torch.cat([i, f, g, o], -1)


def condition_map(layer: nn.Module, cond: torch.Tensor | None, y: torch.Tensor | None
                  ) -> torch.Tensor | None:
    """A layer's conditioning term (:func:`~pixelnet.layers.conditioning_term`) feature-last:
    ``(n, H, W, G)`` where it varies with position (a Multi-Scale map), ``(n, G)`` where it
    does not (a class vector alone: the engines fold it into a bias once, so a step costs what
    an unconditional one does), or None."""
    t = conditioning_term(layer.cond, layer.label, cond, y)
    if t is None:
        return None
    t = t.permute(0, 2, 3, 1)
    return t.contiguous() if t.shape[1] > 1 else t[:, 0, 0]


def at(bias: torch.Tensor, i: int, j: int) -> torch.Tensor:
    """A folded bias at position ``(i, j)``: a per-position map ``(n, H, W, G)`` indexed
    there, anything else (``(G,)``, ``(n, G)``) as it is."""
    return bias[:, i, j] if bias.dim() == 4 else bias


class Cell:
    """:func:`~pixelnet.layers.lstm_update` after a matrix product, as one ATen call.

    ``cell(x, b, c)`` equals ``lstm_update(torch.addmm(b, x, w), c)`` for the gate matrix ``w``
    ``(in, 4h)`` given at creation, with ``b`` ``(n, 4h)`` already in ``torch.lstm_cell``'s
    gate order. The engines fold every recurrent term into ``x`` or ``b``, so the cell's own
    hidden-to-hidden weight is zero: one dispatch instead of about ten, which matters because
    at one image a pixel is launch-bound.
    """

    def __init__(self, w: torch.Tensor, n: int):
        h = w.shape[1] // 4
        self.w = cell_order(w).T.contiguous()                          # (4h, in)
        self.zero_w = w.new_zeros(4 * h, h)
        self.zero_h = w.new_zeros(n, h)

    def __call__(self, x: torch.Tensor, b: torch.Tensor, c: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.lstm_cell(x, (self.zero_h, c), self.w, self.zero_w, b)


class FastEngine:
    """Raster bookkeeping, the 7x7 mask A first layer, the skip connections and the output
    layers, for a :class:`~pixelnet.base.PixelModel` over the live image ``x`` ``(n, C, H, W)``.

    Subclasses implement ``body(i, j, z)`` (every layer at one position, from the first
    layer's output ``z`` ``(n, 2h)``; returns what the output layers read) and may implement
    ``end_row(i)``. ``cond`` ``(n, c, H, W)`` is a conditioning map (Multi-Scale), ``y``
    ``(n,)`` class indices (see :meth:`~pixelnet.base.Model.labels`).
    """

    def __init__(self, model, x: torch.Tensor, cond: torch.Tensor | None = None,
                 y: torch.Tensor | None = None):
        cfg = model.cfg
        self.model, self.x, self.cfg = model, x, cfg
        self.n, self.H, self.W = x.shape[0], cfg.height, cfg.width
        self.dtype, self.device = model.dtype, x.device
        self.k = k = model.input.kernel_size[0] // 2
        # scaled image, zero-padded like the 7x7 conv's input: (n, H + k, W + 2k, C)
        self.xf = torch.zeros(self.n, self.H + k, self.W + 2 * k, cfg.channels,
                              dtype=self.dtype, device=self.device)
        self.w_in, self.b_in = matrix(model.input, slice(0, k + 1)), model.input.bias
        head = model.head
        self.w_head = (matrix(head.conv1), head.conv1.bias, matrix(head.conv2), head.conv2.bias)
        skips = model.skips
        # all skip connections as one matrix on the concatenated layer outputs
        self.w_skip = torch.cat([matrix(c) for c in skips]) if skips is not None else None
        self.b_skip = sum(c.bias for c in skips) if skips is not None else None
        # per layer: the conditioning term, feature-last (n, H, W, G) or (n, G), or None
        self.condmaps = [condition_map(lay, cond, y) for lay in model.layers]
        self.next = (0, 0)          # first pixel not yet final
        self.last = None            # (i, j, c) of the latest computation

    def load_pixel(self, i: int, j: int) -> None:
        """Copy pixel ``(i, j)`` of the live image into the scaled, padded cache."""
        self.xf[:, i + self.k, j + self.k] = scale_input(self.x[:, :, i, j], self.cfg.levels)

    def first(self, i: int, j: int) -> torch.Tensor:
        """The 7x7 mask A layer at ``(i, j)``: ``(n, 2h)`` (rows i-k..i only: the rest is
        masked). Reads the image cache, in which pixel ``(i, j)`` holds what was loaded."""
        win = self.xf[:, i: i + self.k + 1, j: j + 2 * self.k + 1].reshape(self.n, -1)
        return torch.addmm(self.b_in, win, self.w_in)

    def compute(self, i: int, j: int) -> torch.Tensor:
        """All layers and the output layers at ``(i, j)``: logits ``(n, levels, C)``."""
        w1, b1, w2, b2 = self.w_head
        y = torch.addmm(b1, F.relu(self.body(i, j, self.first(i, j))), w1)
        return torch.addmm(b2, F.relu(y), w2).view(self.n, self.cfg.channels, -1).transpose(1, 2)

    def body(self, i: int, j: int, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def end_row(self, i: int) -> None:
        pass

    def output(self, zs: list[torch.Tensor]) -> torch.Tensor:
        """What the output layers read, from every layer's output ``zs`` at one position:
        the sum of the skip connections, or the last layer's output."""
        if self.w_skip is None:
            return zs[-1]
        return torch.addmm(self.b_skip, torch.cat(zs, 1), self.w_skip)

    def grid(self, value=None) -> list[list]:
        """An ``H x W`` nested list (a per-position cache)."""
        return [[value] * self.W for _ in range(self.H)]

    def logits(self, i: int, j: int, c: int) -> torch.Tensor:
        """Logits ``(n, levels)`` of sub-pixel ``(i, j, c)`` given the live image."""
        C = self.cfg.channels
        while self.next < (i, j):                  # make every earlier pixel final
            pi, pj = self.next
            self.load_pixel(pi, pj)                # now final: its last channel came after compute
            if self.last != (pi, pj, C - 1):
                self.compute(pi, pj)
            if pj == self.W - 1:
                self.end_row(pi)
            self.next = (pi, pj + 1) if pj < self.W - 1 else (pi + 1, 0)
        if c > 0:                                  # channels < c were drawn since the last load
            self.load_pixel(i, j)                  # (for c = 0, mask A hides the whole centre)
        self.last = (i, j, c)
        return self.compute(i, j)[:, :, c]
