"""Building blocks shared by every architecture: masked convolutions, skew/unskew and the
LSTM cell update.

Colour groups (paper, Sec. 3.4): the features of every layer are split into one group per
image channel (R, G, B). Feature ``k`` of an ``n``-feature map belongs to group
``k * C // n`` (contiguous thirds for RGB; a single group for ``C = 1``). A mask lets a
feature of group ``g`` at the kernel centre see input features of groups ``< g`` (mask A) or
``<= g`` (mask B); every position strictly before the centre in raster order is fully
visible, every position after it is hidden.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def channel_groups(n: int, channels: int, blocks: int = 1) -> torch.Tensor:
    """Colour group of each of ``n`` features (LongTensor ``(n,)``).

    ``blocks > 1`` means the features are ``blocks`` stacked maps of ``n // blocks``
    features each (the LSTM's o, f, i, g gates), grouped the same way inside each block
    so that gate ``k`` and state ``k`` share a colour group.
    """
    per = n // blocks
    k = torch.arange(n) % per
    return k * channels // per


def make_mask(out_ch: int, in_ch: int, kh: int, kw: int, mask_type: str | None,
              channels: int, out_blocks: int = 1, in_groups: torch.Tensor | None = None
              ) -> torch.Tensor:
    """The ``(out_ch, in_ch, kh, kw)`` 0/1 mask of a causal convolution.

    ``mask_type`` is ``"A"`` (first layer: a group does not see itself at the centre),
    ``"B"`` (later layers: it does) or ``None`` (no mask). The centre is
    ``(kh // 2, kw // 2)``; rows above it and columns left of it in its row are visible.
    """
    mask = torch.ones(out_ch, in_ch, kh, kw)
    if mask_type is None:
        return mask
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A', 'B' or None, got {mask_type!r}")
    ci, cj = kh // 2, kw // 2
    mask[:, :, ci, cj + 1:] = 0          # right of the centre, same row
    mask[:, :, ci + 1:, :] = 0           # rows below
    go = channel_groups(out_ch, channels, out_blocks)[:, None]
    gi = (channel_groups(in_ch, channels) if in_groups is None else in_groups)[None, :]
    centre = (gi < go) if mask_type == "A" else (gi <= go)
    mask[:, :, ci, cj] = centre.float()
    return mask


class MaskedConv2d(nn.Conv2d):
    """A ``Conv2d`` whose kernel is multiplied by a fixed causal mask on every call.

    The mask is applied functionally (``weight * mask``), never written into the weight,
    so the optimizer, weight decay and checkpoints only ever see the free parameters.
    ``padding`` keeps the spatial size (``kernel // 2`` on each side).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int | tuple[int, int],
                 mask_type: str | None, channels: int, out_blocks: int = 1,
                 in_groups: torch.Tensor | None = None, bias: bool = True):
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        super().__init__(in_ch, out_ch, (kh, kw), padding=(kh // 2, kw // 2), bias=bias)
        self.mask_type = mask_type
        self.register_buffer(
            "mask", make_mask(out_ch, in_ch, kh, kw, mask_type, channels, out_blocks, in_groups),
            persistent=False)

    def masked_weight(self) -> torch.Tensor:
        return self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.masked_weight(), self.bias, padding=self.padding)


def scale_input(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Integer levels ``[0, levels)`` -> floats in ``[-1, 1]`` (what every model consumes)."""
    return x.float() * (2.0 / (levels - 1)) - 1.0


def lstm_update(gates: torch.Tensor, c: torch.Tensor, dim: int = 1
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step from pre-activations ``gates = [o, f, i, g]`` (``4h`` along ``dim``).

    o, f, i are sigmoids and g is a tanh (paper eq. 3):
    ``c = f * c_prev + i * g``, ``h = o * tanh(c)``.
    """
    h = gates.shape[dim] // 4
    o, f, i = torch.sigmoid(gates.narrow(dim, 0, 3 * h)).chunk(3, dim)   # one sigmoid for 3 gates
    c = f * c + i * torch.tanh(gates.narrow(dim, 3 * h, h))
    return o * torch.tanh(c), c


def skew(x: torch.Tensor) -> torch.Tensor:
    """Shift row ``r`` right by ``r``: ``(B, C, H, W) -> (B, C, H, W + H - 1)``.

    Done with one pad and one reshape: in a row of width ``W + H``, element ``(r, j)`` sits
    at ``r (W + H) + j = r (W + H - 1) + (r + j)``.
    """
    B, C, H, W = x.shape
    flat = F.pad(x, (0, H)).flatten(2)[:, :, : H * (W + H - 1)]
    return flat.reshape(B, C, H, W + H - 1)


def unskew(x: torch.Tensor, width: int) -> torch.Tensor:
    """Inverse of :func:`skew`: ``(B, C, H, W + H - 1) -> (B, C, H, W)``."""
    B, C, H, S = x.shape
    flat = F.pad(x.flatten(2), (0, H))
    return flat.reshape(B, C, H, S + 1)[:, :, :, :width]


def init_state(h: int) -> nn.Parameter:
    """A learned initial LSTM state ``(h,)`` (the paper learns it rather than using zeros)."""
    return nn.Parameter(torch.zeros(h))


class OutputHead(nn.Module):
    """The two output layers: ReLU, 1x1 mask B, ReLU, 1x1 mask B -> ``levels`` per channel.

    Output features are ordered ``c * levels + l`` so that channel ``c``'s logits form
    colour group ``c``; they are returned as ``(B, levels, C, H, W)``.
    """

    def __init__(self, in_ch: int, out_h: int, channels: int, levels: int):
        super().__init__()
        self.channels, self.levels = channels, levels
        self.conv1 = MaskedConv2d(in_ch, out_h, 1, "B", channels)
        self.conv2 = MaskedConv2d(out_h, channels * levels, 1, "B", channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(F.relu(x))))
        B, _, H, W = y.shape
        return y.view(B, self.channels, self.levels, H, W).transpose(1, 2)


def param_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)



class ResidualBlock(nn.Module):
    """PixelCNN residual block (paper Fig. 5): ReLU, 1x1 2h->h, ReLU, 3x3 mask B, ReLU,
    1x1 h->2h, added to the input. Every conv is mask B so colour groups never mix forward.

    With ``cond_channels > 0`` a 1x1 unmasked conv of a conditioning map is added to the
    first 1x1 conv's output (Multi-Scale PixelRNN with a PixelCNN base; the conditioning is
    known in full before generation, so it needs no mask).
    """

    def __init__(self, h: int, channels: int, cond_channels: int = 0):
        super().__init__()
        self.conv1 = MaskedConv2d(2 * h, h, 1, "B", channels)
        self.conv2 = MaskedConv2d(h, h, 3, "B", channels)
        self.conv3 = MaskedConv2d(h, 2 * h, 1, "B", channels)
        self.cond = nn.Conv2d(cond_channels, h, 1) if cond_channels else None

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        y = self.conv1(F.relu(x))                            # (B, h, H, W)
        if self.cond is not None:
            y = y + self.cond(cond)
        y = self.conv2(F.relu(y))
        return x + self.conv3(F.relu(y))


class RowLSTMLayer(nn.Module):
    """Row LSTM layer (paper Sec. 3.1): a whole row per step, top to bottom.

    - input-to-state ``K_is``: 1x3 conv along the row, mask B (sees ``(i, j-1)`` and the
      centre), computed for the whole map at once: ``(B, 2h, H, W) -> (B, 4h, H, W)``;
    - state-to-state ``K_ss``: 1x3 conv over the previous row's state ``h_{i-1}``
      ``(B, h, W) -> (B, 4h, W)``, unmasked (the whole previous row is in the past);
    - a 1x1 mask B conv brings ``h`` back to ``2h`` for the residual connection.

    The state above row 0 is learned (``h0``, ``c0``), the same at every column. With
    ``cond_channels > 0`` a 1x1 unmasked conv of a conditioning map is added to ``K_is``
    (Multi-Scale PixelRNN).
    """

    def __init__(self, h: int, channels: int, cond_channels: int = 0):
        super().__init__()
        self.h = h
        self.i2s = MaskedConv2d(2 * h, 4 * h, (1, 3), "B", channels, out_blocks=4)
        self.s2s = nn.Conv1d(h, 4 * h, 3, padding=1)
        self.h0, self.c0 = init_state(h), init_state(h)
        self.out = MaskedConv2d(h, 2 * h, 1, "B", channels)
        self.cond = nn.Conv2d(cond_channels, 4 * h, 1) if cond_channels else None

    def input_to_state(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        xs = self.i2s(x)
        return xs if self.cond is None else xs + self.cond(cond)

    def initial_state(self, batch: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(h, c)``, each ``(B, h, W)``: the learned state of the row above row 0."""
        shape = (batch, self.h, width)
        return self.h0[None, :, None].expand(shape), self.c0[None, :, None].expand(shape)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        B, _, H, W = x.shape
        xs = self.input_to_state(x, cond)                  # (B, 4h, H, W)
        h, c = self.initial_state(B, W)
        rows = []
        for xi in xs.unbind(2):                            # the only loop: one row per step
            h, c = lstm_update(xi + self.s2s(h), c)        # unbind, not xs[:, :, i]: O(H) backward
            rows.append(h)
        return x + self.out(torch.stack(rows, 2))          # (B, 2h, H, W)


class DiagonalBiLSTMLayer(nn.Module):
    """Diagonal BiLSTM layer (paper Sec. 3.2).

    Each direction: input-to-state 1x1 mask B ``(B, 2h, H, W) -> (B, 4h, H, W)``; skew to
    ``(B, 4h, H, W + H - 1)``; one LSTM step per skewed column, the whole column at once,
    with a 2x1 state-to-state conv over the previous column (cell ``(r, t)`` sees
    ``(r - 1, t - 1)`` and ``(r, t - 1)``, i.e. the pixel above and the pixel to the left);
    unskew. The right-to-left direction runs on the column-flipped map and its output is
    shifted down one row before the two are added, so it never sees a future pixel.

    Cells of the skewed map that lie outside the image are held at the learned initial
    state, so the state entering column 0 of every row, and the state above row 0, is
    exactly ``(h0, c0)`` (no row-dependent warm-up through the padding).
    """

    def __init__(self, h: int, channels: int, cond_channels: int = 0):
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

    def input_to_state(self, x: torch.Tensor, cond: torch.Tensor | None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-to-right and right-to-left pre-activations, each ``(B, 4h, H, W)``."""
        xs = self.i2s(x)
        if self.cond is not None:
            xs = xs + self.cond(cond)
        return xs[:, : 4 * self.h], xs[:, 4 * self.h:]

    def scan(self, xs: torch.Tensor) -> torch.Tensor:
        """Run both directions over ``xs`` ``(B, 2, 4h, H, W)`` (direction 1 already
        column-flipped); returns ``h`` ``(B, 2, h, H, W)``.

        Each step is one skewed column of both directions: ``gates = xs_t + K_ss [h_above;
        h_left]``, one batched matmul ``(2, 4h, 2h) @ (2, 2h, B*H)``. The fast sampler fuses
        the same kernels per pixel (``DiagonalBiLSTMEngine``); tests check both agree.
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

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        l2r, r2l = self.input_to_state(x, cond)
        hs = self.scan(torch.stack([l2r, r2l.flip(-1)], 1))
        hl, hr = hs[:, 0], hs[:, 1].flip(-1)
        hr = F.pad(hr, (0, 0, 1, 0))[:, :, :-1]           # shift down one row: row i gets row i-1
        return x + self.out(hl + hr)
