"""Computed views of what a model sees (used by the tests and the app's Explain tab)."""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import Model as PixelModel
from .layers import MaskedConv2d, channel_groups, make_mask, scale_input, skew, unskew


def receptive_field(model: PixelModel, i: int, j: int, c: int = 0, samples: int = 4,
                    seed: int = 0) -> torch.Tensor:
    """Which input sub-pixels can influence the prediction of sub-pixel ``(c, i, j)``.

    Returns gradient magnitudes ``(C, H, W)`` (float64, summed over ``samples`` random
    images) of the features the output layers read at ``(i, j)``, restricted to the colour
    groups ``<= c`` (the only ones channel ``c``'s mask B output layers use). The output
    layers are pointwise, so this is the prediction's receptive field, without the ReLU
    gating of the output layers that can hide it in an untrained net. Exactly zero where
    masked weights cut every path (they contribute exact zeros), positive elsewhere.
    For ``multiscale`` the gradient of the logits themselves is used.
    """
    cfg = model.cfg
    if not (0 <= i < cfg.height and 0 <= j < cfg.width and 0 <= c < cfg.channels):
        raise ValueError(f"position ({c}, {i}, {j}) is outside the {cfg.channels}x"
                         f"{cfg.height}x{cfg.width} image")
    m = copy.deepcopy(model).double().eval()
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, cfg.levels, (samples, cfg.channels, cfg.height, cfg.width), generator=g)
    xf = scale_input(x, cfg.levels).double().requires_grad_(True)
    out = m.prediction_inputs(xf, i, j, c)                            # (S, F)
    w = torch.randn(out.shape, generator=g, dtype=torch.float64)
    (out * w).sum().backward()
    return xf.grad.abs().sum(0)


# ----------------------------------------------------------------------------- causality

def generation_rank(model: PixelModel) -> torch.Tensor:
    """``rank[c, i, j]``: the index of sub-pixel ``(c, i, j)`` in the model's generation
    order (its pixel order, then R, G, B within a pixel), LongTensor ``(C, H, W)``."""
    cfg = model.cfg
    rank = torch.empty(cfg.channels, cfg.height, cfg.width, dtype=torch.long)
    for k, (i, j) in enumerate(model.generation_order()):
        rank[:, i, j] = k * cfg.channels + torch.arange(cfg.channels)
    return rank


@dataclass
class ContextReport:
    """What the prediction of sub-pixel ``(c, i, j)`` sees, from :func:`receptive_field`.

    ``rf`` ``(C, H, W)`` gradient magnitudes; ``future`` the sub-pixels at or after the
    target in generation order (the model must not see them); ``missed`` the earlier
    sub-pixels it does not see (zero influence: PixelCNN's blind spot, the parts of the
    context outside the Row LSTM's triangle). All ``(C, H, W)``.
    """
    arch: str
    i: int
    j: int
    c: int
    rf: torch.Tensor
    future: torch.Tensor
    missed: torch.Tensor

    @property
    def n_earlier(self) -> int:
        return int((~self.future).sum())

    @property
    def n_seen(self) -> int:
        return int(((self.rf > 0) & ~self.future).sum())

    @property
    def leaks(self) -> int:
        """Future sub-pixels with a non-zero influence (0 for a correct model)."""
        return int(((self.rf > 0) & self.future).sum())

    def missed_pixels(self) -> list[tuple[int, int]]:
        """Positions ``(i, j)`` where some earlier sub-pixel is unseen, in raster order."""
        return [tuple(p) for p in self.missed.any(0).nonzero().tolist()]


def context_report(model: PixelModel, i: int, j: int, c: int = 0, samples: int = 4,
                   seed: int = 0) -> ContextReport:
    """:func:`receptive_field` of ``(c, i, j)`` with the causal context it is judged against."""
    rf = receptive_field(model, i, j, c, samples=samples, seed=seed)
    rank = generation_rank(model)
    future = rank >= rank[c, i, j]
    return ContextReport(model.arch, i, j, c, rf, future, (rf == 0) & ~future)


def log_scale(rf: torch.Tensor, decades: float = 6.0) -> torch.Tensor:
    """Magnitudes on a log scale in ``[0, 1]``: 1 for the largest, 0 for ``decades`` orders
    of magnitude below it or less, so that far pixels with tiny gradients still show.
    Exact zeros (no path at all) stay 0; use ``rf > 0`` to tell them from tiny values."""
    rf = rf.double()
    top = rf.max()
    if top <= 0:
        return torch.zeros_like(rf)
    t = (torch.log10(rf.clamp_min(1e-300) / top) + decades) / decades
    return torch.where(rf > 0, t.clamp(0.0, 1.0), torch.zeros_like(t))


# ----------------------------------------------------------------------------- masks

def mask_grid(mask_type: str, kernel: int | tuple[int, int], channels: int = 3) -> torch.Tensor:
    """The mask rule as one kernel per (output group, input group): ``(C, C, kh, kw)``,
    built with :func:`pixelnet.layers.make_mask` (one feature per colour group)."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    return make_mask(channels, channels, kh, kw, mask_type, channels)


def group_mask(conv: MaskedConv2d, channels: int) -> torch.Tensor:
    """A model's real mask (the buffer of a :class:`MaskedConv2d`) reduced to one kernel per
    (output colour group, input colour group): ``(C, C, kh, kw)``.

    Input features are grouped as :func:`channel_groups` does; an output feature's group is
    read off the mask itself (how many input groups it sees at the centre: ``g`` for mask A,
    ``g + 1`` for mask B), so stacked gate blocks need no bookkeeping. Raises if features of
    one group pair disagree (a mask that follows no group rule)."""
    mask = conv.mask.detach()
    out_ch, in_ch, kh, kw = mask.shape
    gi = channel_groups(in_ch, channels)
    centre = mask[:, :, kh // 2, kw // 2]
    seen = torch.stack([centre[:, gi == g].amax(1) for g in range(channels)], 1)   # (out, C)
    go = seen.sum(1).long() - (1 if conv.mask_type == "B" else 0)
    grid = torch.zeros(channels, channels, kh, kw)
    for a in range(channels):
        for b in range(channels):
            block = mask[go == a][:, gi == b]
            if block.numel() == 0:
                raise ValueError(f"no features of colour group pair ({a}, {b}) in this mask")
            if not (block == block[:1, :1]).all():
                raise ValueError(f"features of colour groups ({a}, {b}) have different masks")
            grid[a, b] = block[0, 0]
    return grid


def model_masks(model: PixelModel) -> list[tuple[str, tuple[int, int], torch.Tensor, list[str]]]:
    """The distinct masked kernels of a model, each reduced by :func:`group_mask`:
    ``[(mask_type, (kh, kw), (C, C, kh, kw) grid, [where it is used]), ...]`` in module
    order (the first layer's mask A first). Layer indices are dropped from the names
    (``layers.conv2`` stands for every block's ``conv2``); for ``multiscale``, the
    full-size conditional model's masks."""
    C = model.cfg.channels
    root = model.masked_stack()
    found: dict[tuple, tuple[str, tuple[int, int], torch.Tensor, list[str]]] = {}
    for name, mod in root.named_modules():
        if isinstance(mod, MaskedConv2d):
            grid = group_mask(mod, C)
            kernel = tuple(grid.shape[2:])
            key = (mod.mask_type, kernel, tuple(grid.flatten().tolist()))
            where = re.sub(r"\.\d+", "", name)
            entry = found.setdefault(key, (mod.mask_type, kernel, grid, []))
            if where not in entry[3]:
                entry[3].append(where)
    return list(found.values())


# ----------------------------------------------------------------------------- the skew

@dataclass
class SkewFrame:
    """One step of the Diagonal BiLSTM's data movement on a numbered grid.

    ``grid`` holds pixel numbers (``1 + i * W + j`` for pixel ``(i, j)``; 0 = an empty cell:
    skew padding or the shifted-in initial state). ``active``: cells computed in this step;
    ``inputs``: the cells whose state they read; ``done``: cells computed earlier in the
    pass. All 2-D, the shape of ``grid``.
    """
    stage: str
    title: str
    caption: str
    grid: torch.Tensor
    active: torch.Tensor
    inputs: torch.Tensor
    done: torch.Tensor


def _frame(stage: str, title: str, caption: str, grid: torch.Tensor) -> SkewFrame:
    z = torch.zeros(grid.shape, dtype=torch.bool)
    return SkewFrame(stage, title, caption, grid, z, z.clone(), z.clone())


def _scan_frames(sk: torch.Tensor, direction: str) -> list[SkewFrame]:
    """One frame per column of the skewed grid ``sk``: the column being computed and the
    cells it reads (left neighbour and pixel above, both in the previous column)."""
    H, S = sk.shape
    frames, done = [], torch.zeros(H, S, dtype=torch.bool)
    name = "left-to-right" if direction == "l2r" else "right-to-left"
    for t in range(S):
        active = torch.zeros(H, S, dtype=torch.bool)
        active[:, t] = sk[:, t] > 0
        inputs = torch.zeros(H, S, dtype=torch.bool)
        if t > 0:
            rows = active[:, t].nonzero().flatten()
            inputs[rows, t - 1] = True                     # the left neighbour
            inputs[(rows - 1).clamp_min(0), t - 1] |= rows > 0   # the pixel above
            inputs &= sk > 0
        cells = [str(int(v)) for v in sk[:, t] if v > 0]
        what = (f"pixels {', '.join(cells)} at once" if len(cells) > 1 else f"pixel {cells[0]}")
        f = SkewFrame(f"{direction}_column", f"{name} LSTM, column {t + 1} of {S}",
                      f"One LSTM step computes {what}. Each reads the state of the cell to its "
                      f"left and the cell up-left in the skewed map: in the image, its "
                      f"{'left' if direction == 'l2r' else 'right'} neighbour and the pixel "
                      f"above (the 2x1 state-to-state kernel).", sk.clone(), active, inputs,
                      done.clone())
        frames.append(f)
        done |= active
    return frames


def skew_frames(height: int = 5, width: int | None = None) -> list[SkewFrame]:
    """The Diagonal BiLSTM's data movement on a numbered ``height x width`` grid, computed
    with :func:`pixelnet.layers.skew` / :func:`unskew` as the layer uses them: the image;
    skew; the left-to-right LSTM column by column; unskew; the right-to-left stream (flip,
    skew, columns, unskew, flip back); its shift down one row; the sum of the two."""
    W = height if width is None else width
    H = height
    if H < 1 or W < 1:
        raise ValueError(f"grid size must be positive, got {H}x{W}")
    img = torch.arange(1, H * W + 1).view(H, W)
    sk = skew(img[None, None])[0, 0]
    back = unskew(sk[None, None], W)[0, 0]
    flip = img.flip(-1)
    sk_r = skew(flip[None, None])[0, 0]
    back_r = unskew(sk_r[None, None], W)[0, 0].flip(-1)
    shifted = F.pad(back_r[None, None], (0, 0, 1, 0))[0, 0, :-1]   # as DiagonalBiLSTMLayer
    frames = [_frame("image", "The image", "Pixels numbered in raster order, the order in "
                     "which they are generated.", img),
              _frame("skew", "Skew", f"Row r moves right by r: {H}x{W} becomes {H}x{H + W - 1}. "
                     "Each column of the skewed map is one anti-diagonal of the image, and the "
                     "pixels on an anti-diagonal do not depend on each other, so a whole column "
                     "is one LSTM step.", sk)]
    frames += _scan_frames(sk, "l2r")
    frames.append(_frame("unskew", "Unskew", "Shift every row back: the left-to-right output "
                         "is an image-shaped map again. Its state at (i, j) depends on the pixels "
                         "above and to the left (the rectangle from (0, 0) to (i, j)), none to "
                         "the right in the rows above.", back))
    frames.append(_frame("flip", "Right-to-left: flip", "The second stream runs on the map "
                         "with its columns flipped, so that it sweeps from the right.", flip))
    frames.append(_frame("skew_r", "Right-to-left: skew", "The flipped map is skewed the same "
                         "way.", sk_r))
    frames += _scan_frames(sk_r, "r2l")
    frames.append(_frame("unskew_r", "Right-to-left: unskew and flip back", "At (i, j) this "
                         "stream has seen the pixels to the right in its own row: (i, j+1) "
                         "is a future pixel, so it cannot be used as it is.", back_r))
    frames.append(_frame("shift", "Right-to-left: shift down one row", "Row i receives row "
                         "i-1's right-to-left output (row 0 gets the initial state, 0 here). "
                         "Row i-1 lies wholly in the past, so nothing leaks; added to the "
                         "left-to-right output, every pixel above now reaches (i, j).", shifted))
    return frames


# ----------------------------------------------------------------------------- likelihood

@dataclass
class NLLMap:
    """Likelihood of a batch: ``nats`` and ``bits_per_dim`` ``(B,)``; ``per_subpixel``
    ``(B, C, H, W)`` nats (sums to ``nats``); ``per_pixel`` ``(B, H, W)``, summed over C."""
    nats: torch.Tensor
    bits_per_dim: torch.Tensor
    per_subpixel: torch.Tensor
    per_pixel: torch.Tensor


def nll_heatmap(model: PixelModel, x: torch.Tensor) -> NLLMap:
    """Per-pixel NLL of images ``x`` ``(B, C, H, W)`` (or one ``(C, H, W)``) with
    :func:`pixelnet.nll_map`, and the totals in nats and bits per dimension."""
    from . import bits_per_dim, nll_map
    if x.dim() == 3:
        x = x[None]
    with torch.no_grad():
        m = nll_map(model, x).double()
    nats = m.flatten(1).sum(1)
    return NLLMap(nats, bits_per_dim(nats, x[0].numel()), m, m.sum(1))


# ----------------------------------------------------------------------------- generation

@dataclass
class Snapshot:
    """The image ``(n, C, H, W)`` after generation step ``step`` (0-based) of ``total``,
    which drew sub-pixel ``(c, i, j)``."""
    step: int
    total: int
    i: int
    j: int
    c: int
    image: torch.Tensor


def snapshot_steps(total: int, n_frames: int) -> list[int]:
    """``n_frames`` distinct steps spread evenly over ``total`` steps, the last one last."""
    if total < 1:
        raise ValueError("there is nothing to generate (the mask selects no pixel)")
    if not 1 <= n_frames <= total:
        raise ValueError(f"n_frames must be between 1 and the {total} generation steps, "
                         f"got {n_frames}")
    return [-(-(k + 1) * total // n_frames) - 1 for k in range(n_frames)]


def generation_snapshots(model: PixelModel, n_frames: int, seed: int | None = 0,
                         known: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                         temperature: float = 1.0, n: int = 1, method: str = "fast"
                         ) -> list[Snapshot]:
    """Run :func:`pixelnet.sample_stream` and keep ``n_frames`` snapshots, evenly spaced
    over its generation steps (:func:`snapshot_steps`); the last is the finished image."""
    from .sampling import sample_stream
    keep, out = None, []
    for ev in sample_stream(model, n, known, mask, temperature, seed, method):
        if keep is None:
            keep = set(snapshot_steps(ev.total, n_frames))
        if ev.step in keep:
            out.append(Snapshot(ev.step, ev.total, ev.i, ev.j, ev.c, ev.image))
    if keep is None:
        snapshot_steps(0, n_frames)                 # raises: nothing to generate
    return out
