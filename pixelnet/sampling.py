"""Sampling: one loop for every architecture, over interchangeable logit engines.

``sample_stream`` walks the model's generation order (raster order; for ``multiscale`` the
subsample first) and, for every sub-pixel that must be generated, asks an *engine* for the
logits of that sub-pixel given the image so far, draws a value and yields an event.

Engines:
- ``naive``: the whole network on the whole image for every sub-pixel (the reference);
- ``fast``: only the work a new sub-pixel needs, reusing what earlier ones computed:
  - PixelCNN: every layer's activations are cached; a step computes each layer at the one
    new position from the cached neighbourhood of the layer below;
  - Row LSTM: every layer keeps the previous row's state; a step computes one LSTM cell per
    layer (the new pixel's column);
  - Diagonal BiLSTM: the left-to-right stream costs one LSTM cell per pixel per layer; the
    right-to-left stream only feeds the *next* row (it is shifted down), so it runs once per
    finished row;
  - Multi-Scale: a fast engine on the small image, then one on the full image with the
    conditioning map computed once.

A fast engine is asked for sub-pixels in generation order and catches up by itself over the
pixels it was not asked for (known pixels), so completion costs no more than generation.
Features at pixel (i, j) never depend on its last channel (mask A, then mask B), so the
computation done for the last channel is final for that pixel.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F

from .base import PixelModel
from .layers import (DiagonalBiLSTMLayer, MaskedConv2d, ResidualBlock, RowLSTMLayer,
                     scale_input)

METHODS = ("fast", "naive")


@dataclass
class SampleEvent:
    """One generated sub-pixel.

    ``probs`` ``(n, levels)`` is the distribution the value was drawn from (after
    temperature); ``value`` ``(n,)`` what was drawn (or kept, for samples where this
    sub-pixel was known); ``image`` ``(n, C, H, W)`` the images so far (a copy).
    """
    step: int
    total: int
    i: int
    j: int
    c: int
    probs: torch.Tensor
    value: torch.Tensor
    image: torch.Tensor


# ----------------------------------------------------------------------------- inputs

def prepare(model: PixelModel, n: int, known: torch.Tensor | None, mask: torch.Tensor | None
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate ``known``/``mask``; return the start image ``(n, C, H, W)`` and the bool map
    ``(n, C, H, W)`` of sub-pixels to generate."""
    cfg = model.cfg
    shape = (cfg.channels, cfg.height, cfg.width)
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if known is None:
        if mask is not None:
            raise ValueError("a mask needs `known` images holding the pixels to keep")
        return torch.zeros(n, *shape, dtype=torch.long), torch.ones(n, *shape, dtype=torch.bool)
    known = model.check_input(known.unsqueeze(0) if known.dim() == 3 else known)
    if known.shape[0] not in (1, n):
        raise ValueError(f"known holds {known.shape[0]} images; give 1 or n = {n}")
    x = known.expand(n, *shape).clone()
    if mask is None:
        raise ValueError("with `known`, give a `mask` (True where pixels must be generated)")
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise ValueError("mask must be a BoolTensor (True = generate)")
    if mask.shape == shape[1:]:
        gen = mask[None, None].expand(n, *shape)
    elif mask.dim() == 4 and mask.shape[1:] == shape and mask.shape[0] in (1, n):
        gen = mask.expand(n, *shape)
    else:
        raise ValueError(f"mask must have shape ({cfg.height}, {cfg.width}) or "
                         f"(n, {cfg.channels}, {cfg.height}, {cfg.width}); got {tuple(mask.shape)}")
    return x, gen.clone()


PRESETS = ("blank", "single_pixel", "top_half", "region")


def completion_inputs(preset: str, channels: int, height: int, width: int,
                      image: torch.Tensor | None = None, pixel: tuple[int, int] = (0, 0),
                      region: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(known, mask)`` for a completion preset, ready for :func:`sample_stream`.

    - ``blank``: generate everything;
    - ``single_pixel``: keep one pixel (``pixel``, its value from ``image`` or level 0 if none
      is given) and generate all the others (the seed's "complete an image from one pixel");
    - ``top_half``: keep the top half of ``image``, generate the bottom (the paper's
      occlusion completions);
    - ``region``: keep ``image`` except where ``region`` (BoolTensor ``(H, W)``) is True.
    """
    shape = (1, channels, height, width)
    known = torch.zeros(shape, dtype=torch.long) if image is None else image.reshape(shape).long()
    mask = torch.ones(height, width, dtype=torch.bool)
    if preset == "blank":
        pass
    elif preset == "single_pixel":
        i, j = pixel
        if not (0 <= i < height and 0 <= j < width):
            raise ValueError(f"pixel {pixel} is outside the {height}x{width} image")
        mask[i, j] = False
    elif preset == "top_half":
        if image is None:
            raise ValueError("top_half needs an image whose top half is kept")
        mask[: height // 2] = False
    elif preset == "region":
        if image is None or region is None:
            raise ValueError("region needs an image and a BoolTensor region (True = regenerate)")
        if region.shape != (height, width) or region.dtype != torch.bool:
            raise ValueError(f"region must be a BoolTensor of shape ({height}, {width})")
        mask = region.clone()
    else:
        raise ValueError(f"unknown preset {preset!r}; choose one of {PRESETS}")
    return known, mask


# ----------------------------------------------------------------------------- engines

class NaiveEngine:
    """Recompute the whole network on the whole image for every sub-pixel."""

    def __init__(self, model: PixelModel, x: torch.Tensor):
        self.model, self.x = model, x

    def logits(self, i: int, j: int, c: int) -> torch.Tensor:
        return self.model(self.x)[:, :, c, i, j]


def _matrix(conv: torch.nn.Module, rows: slice = slice(None), cols: slice = slice(None)
            ) -> torch.Tensor:
    """A conv's (masked) kernel restricted to a window, as the ``(in * kh * kw, out)``
    matrix that multiplies a feature-last window ``(n, kh, kw, in)`` flattened."""
    w = conv.masked_weight() if isinstance(conv, MaskedConv2d) else conv.weight
    if w.dim() == 3:                                   # Conv1d (out, in, k) -> (out, in, 1, k)
        w = w[:, :, None]
    w = w[:, :, rows, cols]
    return w.permute(2, 3, 1, 0).reshape(-1, w.shape[0]).contiguous()


def _feature_last(t: torch.Tensor) -> torch.Tensor:
    """``(n, F, H, W) -> (n, H, W, F)``, contiguous."""
    return t.permute(0, 2, 3, 1).contiguous()


def _cell_order(t: torch.Tensor) -> torch.Tensor:
    """Gate blocks along the last dim from ours, ``[o, f, i, g]``, to ``torch.lstm_cell``'s
    ``[i, f, g, o]``: ``(..., 4h) -> (..., 4h)``."""
    o, f, i, g = t.chunk(4, -1)
    return torch.cat([i, f, g, o], -1)


class _Cell:
    """:func:`~pixelnet.layers.lstm_update` after a matrix product, as one ATen call.

    ``cell(x, b, c)`` equals ``lstm_update(torch.addmm(b, x, w), c)`` for the gate matrix ``w``
    ``(in, 4h)`` given at creation, with ``b`` ``(n, 4h)`` already in ``torch.lstm_cell``'s
    gate order. The engines fold every recurrent term into ``x`` or ``b``, so the cell's own
    hidden-to-hidden weight is zero. One dispatch instead of about ten: at one image a pixel
    is launch-bound, and a cell at h = 16 takes 18 µs instead of 25.
    """

    def __init__(self, w: torch.Tensor, n: int):
        h = w.shape[1] // 4
        self.w = _cell_order(w).T.contiguous()                        # (4h, in)
        self.zero_w, self.zero_h = torch.zeros(4 * h, h), torch.zeros(n, h)

    def __call__(self, x: torch.Tensor, b: torch.Tensor, c: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.lstm_cell(x, (self.zero_h, c), self.w, self.zero_w, b)


class FastEngine:
    """Shared machinery: raster bookkeeping, the 7x7 first layer, skips and the head.

    At creation every (masked) kernel is turned once into a matrix, and per-position
    activations are kept in nested Python lists of ``(n, F)`` tensors (indexing a list costs
    nothing; indexing a tensor costs more than the tiny matrix product itself), so a step is
    a handful of small matrix products per layer. Subclasses implement ``body(i, j, z)``
    (all layers at one position, returning what the output layers read) and may implement
    ``end_row(i)``.
    """

    def __init__(self, model: PixelModel, x: torch.Tensor, cond: torch.Tensor | None = None):
        cfg = model.cfg
        self.model, self.x, self.cfg = model, x, cfg
        self.n, self.H, self.W = x.shape[0], cfg.height, cfg.width
        self.k = k = model.input.kernel_size[0] // 2
        # scaled image, zero-padded like the 7x7 conv's input: (n, H + k, W + 2k, C)
        self.xf = torch.zeros(self.n, self.H + k, self.W + 2 * k, cfg.channels)
        self.w_in, self.b_in = _matrix(model.input, slice(0, k + 1)), model.input.bias
        head = model.head
        self.w_head = (_matrix(head.conv1), head.conv1.bias, _matrix(head.conv2), head.conv2.bias)
        skips = model.skips
        # all skip connections as one matrix on the concatenated layer outputs
        self.w_skip = torch.cat([_matrix(c) for c in skips]) if skips is not None else None
        self.b_skip = sum(c.bias for c in skips) if skips is not None else None
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


class PixelCNNEngine(FastEngine):
    """Caches relu(1x1 conv) of every block at every position: the input of the block's
    3x3 mask B conv, which at (i, j) reads (i-1, j-1), (i-1, j), (i-1, j+1), (i, j-1) and
    the centre (the rest of its kernel is masked). With conditioning, the first 1x1 conv's
    bias becomes a per-position map ``(n, H, W, h)``: its bias plus the conditioning term."""

    def __init__(self, model, x, cond=None):
        super().__init__(model, x, cond)
        self.w = []
        for b in model.layers:
            b: ResidualBlock
            w2 = b.conv2.masked_weight()                                   # (h, h, 3, 3)
            taps = [w2[:, :, 0, 0], w2[:, :, 0, 1], w2[:, :, 0, 2], w2[:, :, 1, 0], w2[:, :, 1, 1]]
            self.w.append((_matrix(b.conv1), b.conv1.bias, torch.cat([t.T for t in taps]),
                           b.conv2.bias, _matrix(b.conv3), b.conv3.bias))
        self.condmaps = ([_feature_last(b.cond(cond)) + b.conv1.bias for b in model.layers]
                         if cond is not None else None)     # conditioning with the bias folded in
        zero = torch.zeros(self.n, model.cfg.h)
        # cache[k][i][j] with a zero border: row -1 and columns -1, W
        self.cache = [[[zero] * (self.W + 2) for _ in range(self.H + 1)] for _ in model.layers]

    def body(self, i, j, z):
        zs = []
        for k, (w1, b1, w2, b2, w3, b3) in enumerate(self.w):
            if self.condmaps is not None:
                b1 = self.condmaps[k][:, i, j]                      # (n, h)
            above, row = self.cache[k][i], self.cache[k][i + 1]     # rows i-1 and i, offset +1
            row[j + 1] = F.relu(torch.addmm(b1, F.relu(z), w1))
            win = torch.cat([above[j], above[j + 1], above[j + 2], row[j], row[j + 1]], 1)
            z = z + torch.addmm(b3, F.relu(torch.addmm(b2, win, w2)), w3)
            zs.append(z)
        return self.output(zs)


class RowLSTMEngine(FastEngine):
    """Keeps, for every layer, the part of row i's gates that comes from row i-1
    (``K_ss * h_{i-1}`` + biases + conditioning, computed once per row) and row i-1's cell
    state; a pixel then costs one LSTM cell per layer."""

    def __init__(self, model, x, cond=None):
        super().__init__(model, x, cond)
        layers: list[RowLSTMLayer] = list(model.layers)
        self.condmaps = ([_cell_order(_feature_last(lay.cond(cond))) for lay in layers]
                         if cond is not None else None)
        # K_ss and the biases reordered once, so a row's gate terms come out in cell order
        self.ss = [(_cell_order(lay.s2s.weight.movedim(0, -1)).movedim(-1, 0).contiguous(),
                    _cell_order(lay.s2s.bias + lay.i2s.bias)) for lay in layers]
        # the 1x3 kernel's left tap (in lstm_cell's gate order) and centre tap (as a cell)
        self.w = [(_cell_order(_matrix(lay.i2s, slice(None), slice(0, 1))),
                   _Cell(_matrix(lay.i2s, slice(None), slice(1, 2)), self.n),
                   _matrix(lay.out), lay.out.bias) for lay in layers]
        self.z = [[None] * self.W for _ in layers]  # layer inputs along the current row
        self.h = [[None] * self.W for _ in layers]
        self.c = [[None] * self.W for _ in layers]
        self.rowterm, self.cprev = [], []
        for k, lay in enumerate(layers):
            h0, c0 = lay.initial_state(self.n, self.W)
            self.rowterm.append(self.row_term(k, h0, 0))
            self.cprev.append(list(c0.transpose(1, 2).unbind(1)))

    def row_term(self, k: int, hprev: torch.Tensor, i: int) -> list[torch.Tensor]:
        """Row ``i``'s gate terms from row ``i-1`` (``hprev`` ``(n, h, W)``): W x ``(n, 4h)``,
        in ``torch.lstm_cell``'s gate order."""
        t = F.conv1d(hprev, *self.ss[k], padding=1).transpose(1, 2)
        if self.condmaps is not None:
            t = t + self.condmaps[k][:, i]
        return list(t.unbind(1))

    def body(self, i, j, z):
        zs = []
        for k, (w_left, centre, w_out, b_out) in enumerate(self.w):
            g = self.rowterm[k][j]
            if j > 0:                              # the 1x3 mask B kernel's left tap
                g = torch.addmm(g, self.z[k][j - 1], w_left)
            self.z[k][j] = z
            h, c = centre(z, g, self.cprev[k][j])
            self.h[k][j], self.c[k][j] = h, c
            z = torch.addmm(z + b_out, h, w_out)
            zs.append(z)
        return self.output(zs)

    def end_row(self, i):
        if i + 1 < self.H:
            for k in range(len(self.w)):
                self.rowterm[k] = self.row_term(k, torch.stack(self.h[k], 2), i + 1)
                self.cprev[k] = list(self.c[k])


class DiagonalBiLSTMEngine(FastEngine):
    """Left-to-right: one cell per pixel per layer. Right-to-left: one pass per finished row
    (its output only reaches the next row, after the one-row shift).

    The 2x1 state-to-state kernel and the 1x1 input-to-state kernel of a direction are
    fused into one matrix applied to ``[z, h_above, h_left]``."""

    def __init__(self, model, x, cond=None):
        super().__init__(model, x, cond)
        layers: list[DiagonalBiLSTMLayer] = list(model.layers)
        self.w = []
        for lay in layers:
            w_is, h4 = _matrix(lay.i2s), 4 * lay.h                         # (2h, 8h)
            ss = [lay.s2s[d].weight for d in range(2)]                     # (4h, h, 2)
            self.w.append(dict(                    # gate terms in torch.lstm_cell's order
                l=_Cell(torch.cat([w_is[:, :h4], ss[0][:, :, 0].T, ss[0][:, :, 1].T]), self.n),
                bl=_cell_order(lay.i2s.bias[:h4] + lay.s2s[0].bias),
                r_is=_cell_order(w_is[:, h4:]),
                r_ss=_Cell(torch.cat([ss[1][:, :, 0].T, ss[1][:, :, 1].T]), self.n),
                br=_cell_order(lay.i2s.bias[h4:] + lay.s2s[1].bias),
                out=_matrix(lay.out), b_out=lay.out.bias,
                h0=[lay.h0[d].expand(self.n, -1) for d in range(2)],
                c0=[lay.c0[d].expand(self.n, -1) for d in range(2)]))
        self.hl = [self.grid() for _ in layers]
        self.cl = [self.grid() for _ in layers]
        self.hr = [self.grid() for _ in layers]
        self.z = [self.grid() for _ in layers]                             # layer inputs
        self.condmaps = None
        if cond is not None:                       # conditioning with the biases folded in
            self.condmaps = []
            for lay, w in zip(layers, self.w):
                m = _feature_last(lay.cond(cond))                          # (n, H, W, 8h)
                m = torch.cat([_cell_order(t) for t in m.chunk(2, -1)], -1)
                self.condmaps.append(m + torch.cat([w["bl"], w["br"]]))

    def body(self, i, j, z):
        zs = []
        for k, w in enumerate(self.w):
            self.z[k][i][j] = z
            h0, c0 = w["h0"][0], w["c0"][0]
            above = self.hl[k][i - 1][j] if i > 0 else h0
            left, cleft = (self.hl[k][i][j - 1], self.cl[k][i][j - 1]) if j > 0 else (h0, c0)
            b = self.condmaps[k][:, i, j, : w["bl"].shape[0]] if self.condmaps is not None else w["bl"]
            h, c = w["l"](torch.cat([z, above, left], 1), b, cleft)
            self.hl[k][i][j], self.cl[k][i][j] = h, c
            if i > 0:
                h = h + self.hr[k][i - 1][j]       # right-to-left stream of the row above
            z = torch.addmm(z + w["b_out"], h, w["out"])
            zs.append(z)
        return self.output(zs)

    def end_row(self, i):
        if i + 1 == self.H:
            return
        for k, w in enumerate(self.w):
            h4 = w["br"].shape[0]
            zrow = torch.stack(self.z[k][i], 1)                              # (n, W, 2h)
            b = self.condmaps[k][:, i, :, h4:] if self.condmaps is not None else w["br"]
            xs = (zrow @ w["r_is"] + b).unbind(1)                            # the whole row at once
            h, c = w["h0"][1], w["c0"][1]
            for j in range(self.W - 1, -1, -1):
                above = self.hr[k][i - 1][j] if i > 0 else w["h0"][1]
                h, c = w["r_ss"](torch.cat([above, h], 1), xs[j], c)
                self.hr[k][i][j] = h


ENGINES = {"pixelcnn": PixelCNNEngine, "row_lstm": RowLSTMEngine,
           "diagonal_bilstm": DiagonalBiLSTMEngine}


class MultiScaleEngine:
    """The small model's fast engine on the subsample (a strided view of the image), then,
    once the subsample is complete, the conditional model's fast engine on the full image."""

    def __init__(self, model, x: torch.Tensor):
        self.model, self.x = model, x
        self.small = ENGINES[model.small.arch](model.small, model.subsample(x))
        self.full = None

    def logits(self, i: int, j: int, c: int) -> torch.Tensor:
        m = self.model
        if m.in_subsample(i, j):
            return self.small.logits(i // m.cfg.scale, j // m.cfg.scale, c)
        if self.full is None:
            xs = scale_input(m.subsample(self.x), m.cfg.levels)
            self.full = ENGINES[m.cond.arch](m.cond, self.x, cond=m.conditioning(xs))
        return self.full.logits(i, j, c)


def make_engine(model: PixelModel, x: torch.Tensor, method: str):
    """The logit engine for ``method`` (``"fast"`` or ``"naive"``) over the live image ``x``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "naive":
        return NaiveEngine(model, x)
    if model.arch == "multiscale":
        return MultiScaleEngine(model, x)
    if model.arch not in ENGINES:
        raise ValueError(f"no fast sampler for {model.arch!r}; use method='naive'")
    return ENGINES[model.arch](model, x)


# ----------------------------------------------------------------------------- the loop

def sample_stream(model: PixelModel, n: int = 1, known: torch.Tensor | None = None,
                  mask: torch.Tensor | None = None, temperature: float = 1.0,
                  seed: int | None = None, method: str = "fast") -> Iterator[SampleEvent]:
    """Generate ``n`` images sub-pixel by sub-pixel, yielding a :class:`SampleEvent` for
    every generated sub-pixel in generation order (raster; R, G, B within a pixel).

    ``known`` ``(n or 1, C, H, W)`` and ``mask`` (``(H, W)`` or ``(n, C, H, W)``, True =
    generate) complete partial images; other sub-pixels keep their known value.
    ``temperature`` divides the logits (0 = argmax). ``seed`` seeds a private
    ``torch.Generator``; the same seed gives the same images with either method.
    """
    if not isinstance(temperature, (int, float)) or temperature < 0:
        raise ValueError(f"temperature must be a number >= 0, got {temperature!r}")
    x, gen = prepare(model, n, known, mask)
    g = torch.Generator()
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed))
    # Grad mode is per thread and a generator may be resumed in another thread (as web
    # servers do), so no_grad is entered around each step, never held across a yield.
    # (No train/eval switch: no layer here behaves differently in the two modes.)
    with torch.no_grad():
        engine = make_engine(model, x, method)
    todo = [(i, j, c) for (i, j) in model.generation_order()
            for c in range(model.cfg.channels) if gen[:, c, i, j].any()]
    every = [bool(gen[:, c, i, j].all()) for (i, j, c) in todo]     # generated in every sample
    for step, (i, j, c) in enumerate(todo):
        with torch.no_grad():
            logits = engine.logits(i, j, c).float()                   # (n, levels)
            u = torch.rand(n, 1, generator=g)                         # one draw per sample
            if temperature == 0:
                probs = F.one_hot(logits.argmax(1), logits.shape[1]).float()
            else:
                probs = torch.softmax(logits if temperature == 1 else logits / temperature, 1)
            # inverse CDF: robust to float noise between methods, unlike multinomial
            v = (probs.cumsum(1) < u * probs.sum(1, keepdim=True)).sum(1).clamp_(max=probs.shape[1] - 1)
            if not every[step]:
                v = torch.where(gen[:, c, i, j], v, x[:, c, i, j])
            x[:, c, i, j] = v
            event = SampleEvent(step, len(todo), i, j, c, probs, v, x.clone())
        yield event


def sample(model: PixelModel, n: int = 1, known: torch.Tensor | None = None,
           mask: torch.Tensor | None = None, temperature: float = 1.0, seed: int | None = None,
           method: str = "fast") -> torch.Tensor:
    """Generate ``n`` images ``(n, C, H, W)``; arguments as :func:`sample_stream`."""
    x, _ = prepare(model, n, known, mask)
    for ev in sample_stream(model, n, known, mask, temperature, seed, method):
        x = ev.image
    return x
