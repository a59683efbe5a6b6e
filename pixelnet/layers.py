"""What every architecture shares: masked convolutions, the LSTM update, skew/unskew, the
output layers and the conditioning terms. Each architecture's own layer lives in its module
(``pixelcnn.py``, ``row_lstm.py``, ``diagonal_bilstm.py``).

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


def conditioning_term(cond_conv: nn.Module | None, label: nn.Embedding | None,
                      cond: torch.Tensor | None, y: torch.Tensor | None) -> torch.Tensor | None:
    """What a layer adds to its pre-activations from outside the image, or None.

    - ``cond_conv(cond)``: a 1x1 unmasked conv of a conditioning map ``(B, c, H, W)``
      (Multi-Scale PixelRNN, paper Sec. 3.5) -> ``(B, G, H, W)``;
    - ``label(y)``: a learned vector per class (the conditional PixelCNN's ``V^T h`` for a
      one-hot ``h``, van den Oord et al. 2016b, eq. 4) -> ``(B, G, 1, 1)``. ``y`` holds class
      indices, with ``classes`` (the embedding's last row) meaning "no class".

    Both are known in full before generation starts, so neither needs a mask.
    """
    t = cond_conv(cond) if cond_conv is not None else None
    if label is not None:
        v = label(y)[:, :, None, None]
        t = v if t is None else t + v
    return t


def label_embedding(classes: int, features: int) -> nn.Embedding | None:
    """``classes + 1`` learned vectors of ``features`` (the last: "no class"), or None when
    ``classes == 0``. Zero at start, so a class-conditional model warm-started from an
    unconditional checkpoint begins as exactly that model."""
    if not classes:
        return None
    emb = nn.Embedding(classes + 1, features)
    nn.init.zeros_(emb.weight)
    return emb
