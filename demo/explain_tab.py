"""The app's "Explain" tab: the paper's ideas shown from the loaded models.

Views (each picture computed by :mod:`pixelnet.explain` from a real model, rendered here
with PIL so it can be tested without a browser):

1. Receptive field of a clicked pixel for PixelCNN, Row LSTM and Diagonal BiLSTM side by side.
2. Masks A and B of a model, reduced to one kernel per (output, input) colour group.
3. The Diagonal BiLSTM's skew, column-by-column scan, unskew and one-row shift, animated.
4. Likelihood of a drawn or uploaded image under every architecture, with per-pixel NLL maps,
   and a preset comparing a digit, noise and out-of-distribution images.
5. A generation exported as an animated GIF (:func:`generation_gif`).

The app calls :func:`build_explain_tab` inside ``with gr.Tab("Explain"):``. Models come from
``demo/registry.py``'s ``get_model(dataset, arch)`` unless another factory is passed.
``python demo/explain_tab.py`` serves the tab alone.
"""
import functools
import math
import os
import sys
import tempfile
import textwrap
import time
import weakref
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pixelnet  # noqa: E402
from demo import imaging  # noqa: E402
from demo import batcher  # noqa: E402
from demo.registry import ARCH_NAMES as LABELS, DATASETS, architectures, class_names, is_untrained, single_scale  # noqa: E402
from pixelnet import explain as ex  # noqa: E402

DATASET_CHOICES = list(DATASETS.items())          # (display name, key) for the dropdowns
EXAMPLES = Path(__file__).resolve().parent / "examples"
RF_ARCHS = tuple(a for a in pixelnet.ARCHITECTURES if single_scale(a))
"""The architectures whose receptive fields and masks are shown (the single-scale ones)."""
GIF_DIR = Path(tempfile.gettempdir()) / "pixelnet_gifs"
GIF_KEEP_S = 900            # exported GIFs older than this are deleted when the next is made
GROUP_NAMES = ("R", "G", "B")
GROUP_RGB = ((214, 48, 49), (39, 160, 70), (40, 90, 215))
GREY_INK = (70, 70, 70)
BG = (255, 255, 255)
TEXT = (25, 25, 25)
FUTURE = (58, 60, 66)
FUTURE_HATCH = (92, 95, 104)
UNSEEN = (246, 190, 190)
TARGET = (230, 20, 20)
DECADES = 6.0
BAR = "█"                   # one tenth of a class's probability in the classification table

GetModel = Callable[[str, str], pixelnet.PixelModel]


# ----------------------------------------------------------------------------- drawing kit

@functools.lru_cache(maxsize=None)
def font(size: int = 14) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def text_width(text: str, size: int = 14) -> int:
    return int(math.ceil(font(size).getlength(text)))


def label(text: str, width: int, size: int = 14, height: int | None = None,
          colour=TEXT, centre: bool = True) -> Image.Image:
    """A white strip of ``width`` holding ``text`` (wrapped to fit)."""
    chars = max(8, int(width / (0.55 * size)))
    lines = [ln for para in text.split("\n") for ln in (textwrap.wrap(para, chars) or [""])]
    h = height or len(lines) * (size + 4) + 4
    im = Image.new("RGB", (width, h), BG)
    d = ImageDraw.Draw(im)
    for k, ln in enumerate(lines):
        x = (width - text_width(ln, size)) // 2 if centre else 4
        d.text((x, 2 + k * (size + 4)), ln, fill=colour, font=font(size))
    return im


def stack(images: list[Image.Image], axis: int = 0, gap: int = 8, align: str = "centre"
          ) -> Image.Image:
    """Images one under the other (``axis=0``) or side by side (``axis=1``) on white."""
    ws, hs = [im.width for im in images], [im.height for im in images]
    if axis == 0:
        out = Image.new("RGB", (max(ws), sum(hs) + gap * (len(images) - 1)), BG)
        y = 0
        for im in images:
            out.paste(im, ((out.width - im.width) // 2 if align == "centre" else 0, y))
            y += im.height + gap
    else:
        out = Image.new("RGB", (sum(ws) + gap * (len(images) - 1), max(hs)), BG)
        x = 0
        for im in images:
            out.paste(im, (x, 0))
            x += im.width + gap
    return out


def cmap(name: str) -> np.ndarray:
    """A matplotlib colour map as a ``(256, 3)`` uint8 table."""
    return _cmap(name)


@functools.lru_cache(maxsize=None)
def _cmap(name: str) -> np.ndarray:
    import matplotlib
    table = matplotlib.colormaps[name](np.linspace(0, 1, 256))[:, :3]
    return (table * 255).round().astype(np.uint8)


def picture(x: torch.Tensor, levels: int, s: int) -> Image.Image:
    """An image of levels ``(C, H, W)``, upscaled ``s`` times (nearest neighbour)."""
    return Image.fromarray(imaging.upscale(imaging.to_rgb(x.detach().cpu().numpy(), levels), s))


def pixel_scale(height: int, width: int, target: int = 224) -> int:
    """Upscale factor so that an image is about ``target`` pixels wide (at least 4)."""
    return max(4, target // max(height, width))


def outline(d: ImageDraw.ImageDraw, x: int, y: int, s: int, colour=TARGET, w: int = 2):
    d.rectangle([x - 1, y - 1, x + s, y + s], outline=colour, width=w)


# ----------------------------------------------------------------------------- 1. receptive field

def heat_cells(rf: torch.Tensor, future: torch.Tensor) -> np.ndarray:
    """``(H, W, 3)`` colours of one channel's receptive field: viridis on a log scale for
    seen sub-pixels, pink for earlier ones with no influence, dark for the future."""
    t = ex.log_scale(rf, DECADES).numpy()
    table = cmap("viridis")
    rgb = table[(40 + 215 * t).round().astype(int)]          # the weakest stays visible
    rgb[(rf == 0).numpy()] = UNSEEN
    rgb[future.numpy()] = FUTURE
    return rgb


def hatch(im: Image.Image, cells: np.ndarray, s: int, x0: int = 0, y0: int = 0):
    """Diagonal hatching over the cells ``cells`` (bool ``(H, W)``) of an upscaled image."""
    a = np.asarray(im).copy()
    yy, xx = np.mgrid[0: cells.shape[0] * s, 0: cells.shape[1] * s]
    on = np.kron(cells, np.ones((s, s), dtype=bool)) & ((xx + yy) % 8 < 2)
    region = a[y0: y0 + on.shape[0], x0: x0 + on.shape[1]]
    region[on] = FUTURE_HATCH
    return Image.fromarray(a)


def rf_layout(height: int, width: int, channels: int, n: int) -> dict:
    """Geometry of :func:`render_receptive_fields` (shared with the click handler)."""
    s = pixel_scale(height, width)
    left = 70 if channels > 1 else 0
    top = 58
    col_w = width * s
    gap = 18
    return dict(s=s, left=left, top=top, gap=gap, col_w=col_w, row_h=height * s + 8,
                x0=[left + k * (col_w + gap) for k in range(n)],
                width=left + n * col_w + (n - 1) * gap, H=height, W=width, C=channels)


def rf_pixel_at(layout: dict, x: float, y: float) -> tuple[int, int, int] | None:
    """The ``(panel, i, j)`` under the point ``(x, y)`` of a rendered receptive-field view,
    or None outside every heatmap."""
    s = layout["s"]
    for k, x0 in enumerate(layout["x0"]):
        if x0 <= x < x0 + layout["col_w"]:
            for r in range(layout["C"]):
                y0 = layout["top"] + r * layout["row_h"]
                if y0 <= y < y0 + layout["H"] * s:
                    return k, int((y - y0) // s), int((x - x0) // s)
    return None


def context_summary(rep: ex.ContextReport, width: int) -> str:
    """One line of what a report shows."""
    name = LABELS.get(rep.arch, rep.arch)
    missed = rep.missed_pixels()
    head = f"**{name}** sees {rep.n_seen} of the {rep.n_earlier} earlier sub-pixels"
    if rep.leaks:
        return head + f"; **{rep.leaks} future sub-pixels leak in: a causality bug**."
    if not missed:
        return head + ": the whole context."
    if missed == [(rep.i - 1, width - 1)]:
        return (head + f": all but ({rep.i - 1}, {width - 1}), the last pixel of the previous "
                "row. Only features *after* a pixel contain it (mask A), so the shifted "
                "right-to-left stream never carries it, and the left-to-right stream only "
                "passes it rightwards from where the 7x7 first layer reaches it.")
    what = pixelnet.MODELS[rep.arch].unseen or "unseen"
    return head + f"; {len(missed)} earlier pixels never reach it ({what})."


def render_receptive_fields(reports: list[ex.ContextReport]) -> Image.Image:
    """Heatmaps side by side, one column per report (same target), one row per input
    channel: log-scaled gradient magnitudes, the future hatched, unseen earlier pixels pink,
    the target outlined in red."""
    r0 = reports[0]
    C, H, W = r0.rf.shape
    L = rf_layout(H, W, C, len(reports))
    s = L["s"]
    im = Image.new("RGB", (L["width"], L["top"] + C * L["row_h"]), BG)
    d = ImageDraw.Draw(im)
    for k, rep in enumerate(reports):
        x0 = L["x0"][k]
        name = LABELS.get(rep.arch, rep.arch)
        d.text((x0 + (L["col_w"] - text_width(name, 17)) // 2, 4), name, fill=TEXT, font=font(17))
        sub = f"sees {rep.n_seen} of {rep.n_earlier} earlier"
        d.text((x0 + (L["col_w"] - text_width(sub, 13)) // 2, 28), sub, fill=(90, 90, 90),
               font=font(13))
        for ch in range(C):
            y0 = L["top"] + ch * L["row_h"]
            panel = Image.fromarray(imaging.upscale(heat_cells(rep.rf[ch], rep.future[ch]), s))
            panel = hatch(panel, rep.future[ch].numpy(), s)
            im.paste(panel, (x0, y0))
            if ch == rep.c:
                outline(d, x0 + rep.j * s, y0 + rep.i * s, s, TARGET, 3)
            else:
                outline(d, x0 + rep.j * s, y0 + rep.i * s, s, (255, 255, 255), 1)
    if C > 1:
        for ch in range(C):
            y0 = L["top"] + ch * L["row_h"] + H * s // 2 - 18
            d.text((6, y0), f"input\n{GROUP_NAMES[ch]}", fill=GROUP_RGB[ch], font=font(15))
    legend = rf_legend(max(L["width"], 560))
    return stack([im, legend], gap=6, align="left")     # keeps rf_layout's coordinates


def rf_legend(width: int) -> Image.Image:
    im = Image.new("RGB", (width, 44), BG)
    d = ImageDraw.Draw(im)
    bar = cmap("viridis")[np.linspace(40, 255, 120).round().astype(int)]
    im.paste(Image.fromarray(np.repeat(bar[None], 12, 0)), (8, 6))
    d.text((8, 21), f"weak (1e-{DECADES:.0f})", fill=TEXT, font=font(11))
    d.text((100, 21), "strong", fill=TEXT, font=font(11))
    x = 150
    for colour, text in ((UNSEEN, "earlier, no influence"), (FUTURE, "future (must not be seen)")):
        d.rectangle([x, 6, x + 12, 18], fill=colour)
        d.text((x + 17, 5), text, fill=TEXT, font=font(12))
        x += 22 + text_width(text, 12) + 10
    d.rectangle([x, 6, x + 12, 18], outline=TARGET, width=3)
    d.text((x + 17, 5), "target", fill=TEXT, font=font(12))
    d.text((150, 25), "influence = |gradient| of the features the output reads, log scale",
           fill=(90, 90, 90), font=font(11))
    return im


# ----------------------------------------------------------------------------- 2. masks

def centre_summary(grid: torch.Tensor) -> str:
    """What each output colour group sees at the kernel centre, e.g.
    ``"R sees nothing · G sees R · B sees R, G"``."""
    C, _, kh, kw = grid.shape
    if C == 1:
        return "the centre pixel is " + ("visible" if grid[0, 0, kh // 2, kw // 2] else "hidden")
    parts = []
    for a in range(C):
        seen = [GROUP_NAMES[b] for b in range(C) if grid[a, b, kh // 2, kw // 2] > 0]
        parts.append(f"{GROUP_NAMES[a]} sees {', '.join(seen) if seen else 'nothing'}")
    return " · ".join(parts)


def render_kernel(kernel: torch.Tensor, colour, cell: int) -> Image.Image:
    """One ``(kh, kw)`` 0/1 kernel: visible cells filled with ``colour``, the centre outlined."""
    kh, kw = kernel.shape
    im = Image.new("RGB", (kw * cell + 1, kh * cell + 1), BG)
    d = ImageDraw.Draw(im)
    for r in range(kh):
        for c in range(kw):
            box = [c * cell, r * cell, (c + 1) * cell, (r + 1) * cell]
            d.rectangle(box, fill=colour if kernel[r, c] > 0 else (250, 250, 250),
                        outline=(185, 185, 185))
    cr, cc = kh // 2, kw // 2
    d.rectangle([cc * cell, cr * cell, (cc + 1) * cell, (cr + 1) * cell], outline=(0, 0, 0),
                width=3)
    return im


def render_mask(title: str, grid: torch.Tensor) -> Image.Image:
    """A group mask ``(C, C, kh, kw)`` as a matrix of kernels: row = the colour group of the
    features being computed, column = the input colour group it reads."""
    C, _, kh, kw = grid.shape
    cell = max(16, min(44, 126 // max(kh, kw)))
    kern = kw * cell + 1
    lab_w = 70 if C > 1 else 0
    head = 24 if C > 1 else 0
    body = Image.new("RGB", (lab_w + C * (kern + 10), head + C * (kh * cell + 11)), BG)
    d = ImageDraw.Draw(body)
    for b in range(C):
        if C > 1:
            d.text((lab_w + b * (kern + 10) + kern // 2 - 22, 2), f"reads {GROUP_NAMES[b]}",
                   fill=GROUP_RGB[b], font=font(13))
    for a in range(C):
        y = head + a * (kh * cell + 11)
        if C > 1:
            d.text((2, y + kh * cell // 2 - 16), f"{GROUP_NAMES[a]}\nfeatures", fill=GROUP_RGB[a],
                   font=font(13))
        for b in range(C):
            colour = GROUP_RGB[b] if C > 1 else GREY_INK
            body.paste(render_kernel(grid[a, b], colour, cell), (lab_w + b * (kern + 10), y))
    top = label(title, max(body.width, 260), 15)
    foot = label("centre: " + centre_summary(grid), max(body.width, 260), 12)
    return stack([top, body, foot], gap=4)


def render_masks(entries: list[tuple[str, tuple[int, int], torch.Tensor, list[str]]]
                 ) -> Image.Image:
    """Every distinct mask of a model (:func:`pixelnet.explain.model_masks`) side by side."""
    panels = [render_mask(f"{kh}x{kw} mask {t}\n({', '.join(where)})", grid)
              for t, (kh, kw), grid, where in entries]
    groups = entries[0][2].shape[0] > 1
    legend = label("Filled cell: visible to the feature being computed (at the thick-outlined "
                   "centre, its own pixel). Empty: hidden." + (
                       " Rows are the colour group being computed, columns the colour group "
                       "read." if groups else ""), 640, 12)
    return stack([stack(panels, axis=1, gap=28), legend], gap=10)


# ----------------------------------------------------------------------------- 3. skew

ROW_TINTS = [tuple(int(v) for v in c) for c in (cmap("Pastel1")[np.linspace(0, 255, 9)
                                                               .astype(int)])]


def render_skew_frame(frame: ex.SkewFrame, height: int, width: int, index: int = 0,
                      count: int = 1) -> Image.Image:
    """One :class:`pixelnet.explain.SkewFrame` on a canvas fitting the widest (skewed) grid,
    so that an animation does not jump: numbers coloured by their image row, the column
    being computed orange, the cells it reads outlined blue, finished cells greyed."""
    cell = 44
    cols = width + height - 1
    W0 = cols * cell + 40
    grid = frame.grid
    h, w = grid.shape
    im = Image.new("RGB", (W0, height * cell + 1), BG)
    d = ImageDraw.Draw(im)
    x0 = 20
    for r in range(h):
        for c in range(w):
            v = int(grid[r, c])
            box = [x0 + c * cell, r * cell, x0 + (c + 1) * cell, (r + 1) * cell]
            if v == 0:
                d.rectangle(box, fill=(244, 244, 244), outline=(215, 215, 215))
                continue
            fill = ROW_TINTS[((v - 1) // width) % len(ROW_TINTS)]
            if frame.done[r, c]:
                fill = tuple(int(0.55 * f + 0.45 * 150) for f in fill)
            if frame.active[r, c]:
                fill = (255, 165, 40)
            d.rectangle(box, fill=fill, outline=(120, 120, 120))
            if frame.inputs[r, c]:
                d.rectangle([box[0] + 2, box[1] + 2, box[2] - 2, box[3] - 2], outline=(30, 80, 220),
                            width=3)
            t = str(v)
            d.text((box[0] + (cell - text_width(t, 16)) // 2, box[1] + 12), t, fill=TEXT,
                   font=font(16))
    title = label(f"{index + 1}/{count}  {frame.title}", W0, 17, height=46)
    caption = label(frame.caption, W0, 13, height=80)
    return stack([title, im, caption], gap=6)


# ----------------------------------------------------------------------------- 4. likelihood

def nll_panel(nmap: ex.NLLMap, vmin: float, vmax: float, s: int) -> Image.Image:
    t = ((nmap.per_pixel[0] - vmin) / max(vmax - vmin, 1e-9)).clamp(0, 1).numpy()
    return framed(Image.fromarray(imaging.upscale(cmap("inferno")[(t * 255).round().astype(int)], s)))


def framed(im: Image.Image) -> Image.Image:
    """A thin grey frame, so that a white or black image still shows its extent."""
    ImageDraw.Draw(im).rectangle([0, 0, im.width - 1, im.height - 1], outline=(160, 160, 160))
    return im


def nll_text(nmap: ex.NLLMap) -> str:
    return f"{float(nmap.nats[0]):.1f} nats · {float(nmap.bits_per_dim[0]):.3f} bits/dim"


def render_likelihoods(rows: list[tuple[str, torch.Tensor, dict[str, ex.NLLMap]]], levels: int,
                       notes: dict[str, str] | None = None) -> Image.Image:
    """One row per image: the image as the model sees it, then each architecture's per-pixel
    NLL map (one colour scale for the whole figure) with the image's NLL under it."""
    notes = notes or {}
    x0 = rows[0][1]
    H, W = x0.shape[-2:]
    s = pixel_scale(H, W, 160)
    archs = list(rows[0][2])
    every = [m.per_pixel for _, _, maps in rows for m in maps.values()]
    vmin, vmax = min(float(m.min()) for m in every), max(float(m.max()) for m in every)
    colw = W * s
    header = stack([label("image", colw, 14)] + [
        label(LABELS.get(a, a) + notes.get(a, ""), colw, 14, height=40) for a in archs],
        axis=1, gap=12)
    lines = [header]
    for name, x, maps in rows:
        cells = [stack([framed(picture(x[0] if x.dim() == 4 else x, levels, s)),
                        label(name, colw, 12, height=36)], gap=2)]
        for a in archs:
            cells.append(stack([nll_panel(maps[a], vmin, vmax, s), label(nll_text(maps[a]), colw, 12,
                                                                     height=36)], gap=2))
        lines.append(stack(cells, axis=1, gap=12))
    bar = cmap("inferno")[np.linspace(0, 255, 200).round().astype(int)]
    scale = Image.new("RGB", (420, 34), BG)
    scale.paste(Image.fromarray(np.repeat(bar[None], 12, 0)), (110, 4))
    d = ImageDraw.Draw(scale)
    d.text((4, 2), "NLL per pixel", fill=TEXT, font=font(12))
    d.text((110, 18), f"{vmin:.2f}", fill=TEXT, font=font(11))
    d.text((290, 18), f"{vmax:.2f} nats", fill=TEXT, font=font(11))
    lines.append(scale)
    return stack(lines, gap=6, align="left")


OOD = {"mnist": ("fashion", "a Fashion-MNIST item"), "fashion": ("mnist", "an MNIST digit"),
       "emoji": ("mnist", "an MNIST digit")}
"""The out-of-distribution picture of the likelihood preset: another dataset's example."""


def example_levels(name: str, channels: int, levels: int, height: int, width: int
                   ) -> torch.Tensor:
    """A shipped example picture (``demo/examples/{name}.png``) as ``(C, H, W)`` levels."""
    img = imaging.open_image(EXAMPLES / f"{name}.png")
    return torch.from_numpy(imaging.to_levels(img, channels, levels, height, width))


def preset_images(dataset: str, channels: int, levels: int, height: int, width: int
                  ) -> list[tuple[str, torch.Tensor]]:
    """The likelihood preset, ``[(name, (C, H, W) levels), ...]``: a test-set example of the
    dataset, uniform noise, another dataset's example (out of distribution), a blank image."""
    other, what = OOD[dataset]
    noise = torch.randint(0, levels, (channels, height, width),
                          generator=torch.Generator().manual_seed(0))
    blank = torch.full((channels, height, width), levels - 1 if channels == 3 else 0)
    return [(f"{dataset} test example", example_levels(f"{dataset}_0", channels, levels, height,
                                                       width)),
            ("uniform noise", noise),
            (f"out of distribution: {what}", example_levels(f"{other}_0", channels, levels,
                                                            height, width)),
            ("blank", blank)]


# ----------------------------------------------------------------------------- 5. GIF export

def render_generation_frame(snap: ex.Snapshot, levels: int, s: int, final: bool) -> Image.Image:
    """The image so far (first of the batch) with the sub-pixel just drawn outlined, over a
    progress strip ``step k / N`` (which also keeps every frame distinct, so GIF writers
    cannot merge two frames)."""
    img = picture(snap.image[0], levels, s)
    d = ImageDraw.Draw(img)
    if not final:
        outline(d, snap.j * s, snap.i * s, s, TARGET, 2)
    strip = Image.new("RGB", (img.width, 22), (30, 30, 30))
    ds = ImageDraw.Draw(strip)
    ds.rectangle([0, 0, int(img.width * (snap.step + 1) / snap.total), 3], fill=(255, 165, 40))
    ds.text((4, 5), f"step {snap.step + 1} / {snap.total}", fill=(240, 240, 240), font=font(12))
    return stack([img, strip], gap=0)


def generation_gif(model: pixelnet.Model, n_frames: int, seed: int = 0,
                   known: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                   temperature: float = 1.0, path: str | Path | None = None,
                   frame_ms: int = 60, hold_ms: int = 1500, scale: int | None = None) -> str:
    """Generate one image through the app's batched sampler (``demo/batcher.py``, shared
    with everyone's runs of the model) and write it as an animated GIF of exactly
    ``n_frames`` frames, evenly spaced over the generation steps (the last is the finished
    image, held ``hold_ms``). ``known``/``mask`` complete a partial image as in
    :func:`pixelnet.sample`. Returns the GIF's path (by default a new file in ``GIF_DIR``,
    where files older than ``GIF_KEEP_S`` are deleted)."""
    cfg = model.cfg
    shape = (cfg.channels, cfg.height, cfg.width)
    x0 = np.zeros(shape, np.int64) if known is None else known.reshape(shape).numpy()
    gen = np.ones(shape, bool) if mask is None else np.broadcast_to(mask.numpy(), shape)
    steps = ex.snapshot_steps(int(gen.sum()), n_frames)           # ValueError if out of range
    res = batcher.run(model, x0, gen, temperature, seed)
    order = res["order"]                                           # (total, 3): i, j, c
    step_of = np.full(shape, -1)
    step_of[order[:, 2], order[:, 0], order[:, 1]] = np.arange(len(order))
    snaps = []
    for s in steps:
        i, j, c = (int(v) for v in order[s])
        image = np.where(step_of <= s, res["image"], x0)           # generated up to step s
        snaps.append(ex.Snapshot(s, len(order), i, j, c, torch.from_numpy(image)[None]))
    s = scale or pixel_scale(cfg.height, cfg.width, 196)
    frames = [render_generation_frame(sn, cfg.levels, s, k == len(snaps) - 1)
              for k, sn in enumerate(snaps)]
    if path is None:
        path = new_gif_path(model.arch)
    durations = [frame_ms] * (len(frames) - 1) + [hold_ms]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0,
                   optimize=False, disposal=1)
    return str(path)


def new_gif_path(arch: str) -> Path:
    """A new file name in ``GIF_DIR``, after deleting the GIFs older than ``GIF_KEEP_S``
    (Gradio copies a returned file into its own cache, which it cleans itself)."""
    GIF_DIR.mkdir(exist_ok=True)
    now = time.time()
    for old in GIF_DIR.glob("*.gif"):
        try:
            if now - old.stat().st_mtime > GIF_KEEP_S:
                old.unlink()
        except OSError:
            pass                            # another request deleted it first
    fd, name = tempfile.mkstemp(prefix=f"pixelnet_{arch}_", suffix=".gif", dir=GIF_DIR)
    os.close(fd)
    return Path(name)


# ----------------------------------------------------------------------------- the tab

class ExplainViews:
    """The tab's computations over a model factory ``get_model(dataset, arch)``, with a
    cache of receptive fields (a 28x28 Diagonal BiLSTM's takes about a second). Every method
    returns what a Gradio output shows: PIL images, Markdown, table rows, file paths."""

    def __init__(self, get_model: GetModel):
        self.get_model = get_model
        # model -> {(i, j, c): report}; keyed by the model object, not its id (a reloaded
        # model may reuse an id), and dropped with the model
        self._rf_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def shape(self, dataset: str):
        """The config (channels, levels, height, width) of the dataset's models."""
        return self.get_model(dataset, RF_ARCHS[0]).cfg

    def levels_of(self, dataset: str, img: Image.Image, invert_light: bool = True
                  ) -> torch.Tensor:
        """A picture (drawn or uploaded) as the dataset's model input ``(C, H, W)``."""
        c = self.shape(dataset)
        return torch.from_numpy(imaging.to_levels(img, c.channels, c.levels, c.height, c.width,
                                             invert_light))

    # 1 ----------------------------------------------------------------------------
    def reports(self, dataset: str, i: int, j: int, c: int) -> list[ex.ContextReport]:
        out = []
        for arch in RF_ARCHS:
            m = self.get_model(dataset, arch)
            cache = self._rf_cache.setdefault(m, {})
            if (i, j, c) not in cache:
                if len(cache) > 256:
                    cache.clear()
                cache[(i, j, c)] = ex.context_report(m, i, j, c)
            out.append(cache[(i, j, c)])
        return out

    def receptive_field(self, dataset: str, i: int, j: int, channel: str = "R"
                        ) -> tuple[Image.Image, str]:
        cfg = self.shape(dataset)
        i = int(min(max(i, 0), cfg.height - 1))
        j = int(min(max(j, 0), cfg.width - 1))
        c = GROUP_NAMES.index(channel) if cfg.channels > 1 and channel in GROUP_NAMES else 0
        reps = self.reports(dataset, i, j, c)
        what = f" channel {GROUP_NAMES[c]} of" if cfg.channels > 1 else ""
        lines = [f"Prediction of{what} pixel **({i}, {j})** (row, column) of a "
                 f"{cfg.height}x{cfg.width} {dataset} image."]
        lines += ["- " + context_summary(r, cfg.width) for r in reps]
        return render_receptive_fields(reps), "\n".join(lines)

    def click(self, dataset: str, x: float, y: float) -> tuple[int, int] | None:
        """The pixel ``(i, j)`` under a click at ``(x, y)`` on the receptive-field image."""
        cfg = self.shape(dataset)
        hit = rf_pixel_at(rf_layout(cfg.height, cfg.width, cfg.channels, len(RF_ARCHS)), x, y)
        return None if hit is None else hit[1:]

    # 2 ----------------------------------------------------------------------------
    def masks(self, dataset: str, arch: str) -> tuple[Image.Image, str]:
        m = self.get_model(dataset, arch)
        entries = ex.model_masks(m)
        text = [f"Masks of the loaded {LABELS.get(arch, arch)} ({dataset}, "
                f"{m.cfg.channels} channel{'s' if m.cfg.channels > 1 else ''}), read from its "
                "layers' mask buffers:"]
        text += [f"- **{kh}x{kw} mask {t}** ({', '.join(w)}): {centre_summary(g)}"
                 for t, (kh, kw), g, w in entries]
        if m.cfg.channels == 1:
            text.append("\nWith one channel the colour groups collapse: mask A hides the "
                        "centre, mask B shows it. Pick **Emoji** to see R, G and B.")
        return render_masks(entries), "\n".join(text)

    # 3 ----------------------------------------------------------------------------
    @staticmethod
    @functools.lru_cache(maxsize=16)
    def skew_images(size: int) -> tuple[Image.Image, ...]:
        frames = ex.skew_frames(size)
        return tuple(render_skew_frame(f, size, size, k, len(frames)) for k, f in enumerate(frames))

    # 4 ----------------------------------------------------------------------------
    def score(self, dataset: str, rows: list[tuple[str, torch.Tensor]]
              ) -> tuple[Image.Image, list[list]]:
        """Every architecture's NLL of each ``(name, (C, H, W) image)``: the figure and
        table rows ``[image, architecture, nats, bits/dim]``."""
        models = {a: self.get_model(dataset, a) for a in architectures(dataset)}
        levels = next(iter(models.values())).cfg.levels
        scored = [(name, x, {a: ex.nll_heatmap(m, x) for a, m in models.items()})
                  for name, x in rows]
        notes = {a: "\n(untrained)" if is_untrained(m) else "" for a, m in models.items()}
        table = [[name, LABELS.get(a, a) + notes[a].replace("\n", " "),
                  round(float(maps[a].nats[0]), 2), round(float(maps[a].bits_per_dim[0]), 4)]
                 for name, _, maps in scored for a in models]
        return render_likelihoods(scored, levels, notes), table

    def posteriors(self, dataset: str, x: torch.Tensor
                   ) -> dict[str, tuple[list[str], np.ndarray] | None]:
        """p(class | image) for images ``x`` ``(B, C, H, W)`` under each architecture:
        ``{arch: (class names, (B, K) probabilities)}``, None for an unconditional model."""
        out = {}
        for a in architectures(dataset):
            m = self.get_model(dataset, a)
            names = class_names(m)
            if not names:
                out[a] = None
                continue
            with torch.no_grad():
                out[a] = names, pixelnet.class_posterior(m, x).numpy()
        return out

    def classify(self, dataset: str, rows: list[tuple[str, torch.Tensor]], top: int = 3) -> str:
        """Markdown: which class each class-conditional model thinks each ``(name, (C, H, W)
        image)`` is (its ``top`` classes), or a note that none of the models has classes."""
        post = self.posteriors(dataset, torch.stack([x for _, x in rows]))
        head = ("**Which class does the model think this is?** Bayes' rule over the "
                "class-conditional likelihoods: p(class | image) ∝ p(image | class), a uniform "
                "prior over classes. The generative model used as a classifier.")
        plain = [LABELS.get(a, a) for a, p in post.items() if p is None]
        if len(plain) == len(post):
            shown = {k: name for name, k in DATASET_CHOICES}.get(dataset, dataset)
            return (f"{head}\n\nNo {shown} model here is class-conditional (trained with "
                    "classes), so none of them can classify this image.")
        lines = [head, "", "| image | architecture | " + " | ".join(
                 f"{k + 1}." for k in range(top)) + " |", "|---" * (top + 2) + "|"]
        for r, (name, _) in enumerate(rows):
            for a, p in post.items():
                if p is None:
                    continue
                names, probs = p[0], p[1][r]
                best = np.argsort(-probs)[:top]
                cells = [f"{'**' + names[k] + '**' if n == 0 else names[k]} {probs[k]:.0%} "
                         f"{BAR * max(1, round(10 * float(probs[k])))}" for n, k in enumerate(best)]
                lines.append(f"| {name} | {LABELS.get(a, a)} | " + " | ".join(cells) + " |")
        if plain:
            lines.append(f"\n{', '.join(plain)}: no classes in this checkpoint.")
        return "\n".join(lines)

    def preset(self, dataset: str) -> tuple[Image.Image, list[list]]:
        cfg = self.shape(dataset)
        return self.score(dataset, preset_images(dataset, cfg.channels, cfg.levels,
                                                 cfg.height, cfg.width))

    # 5 ----------------------------------------------------------------------------
    def gif(self, dataset: str, arch: str, n_frames: int, seed: int, temperature: float,
            known: torch.Tensor | None = None) -> str:
        """A generation GIF; with ``known`` ``(C, H, W)``, its bottom half is regenerated.
        ``n_frames`` is capped at the number of generation steps. ``seed`` and
        ``temperature`` are checked (``gr.Error`` with the app's message)."""
        from demo.components import parse_seed, parse_temperature
        seed, temperature = parse_seed(seed), parse_temperature(temperature)
        m = self.get_model(dataset, arch)
        cfg = m.cfg
        mask = None
        if known is not None:
            mask = torch.zeros(cfg.height, cfg.width, dtype=torch.bool)
            mask[cfg.height // 2:] = True
        total = cfg.channels * (int(mask.sum()) if mask is not None else cfg.height * cfg.width)
        return generation_gif(m, min(int(n_frames), total), seed, known, mask, temperature)


def build_explain_tab(get_model: GetModel | None = None) -> ExplainViews:
    """Lay out the Explain views in the current Gradio context (the app's Explain tab).
    ``get_model(dataset, arch)`` defaults to ``demo/registry.py``'s."""
    import gradio as gr

    from demo.components import MAX_TEMPERATURE, image_input, raw

    if get_model is None:
        from demo.registry import get_model
    views = ExplainViews(get_model)
    ds0 = DATASET_CHOICES[0][1]

    def fail(e: Exception) -> gr.Error:
        return gr.Error(str(e), print_exception=False)

    def friendly(fn: Callable) -> Callable:
        """``fn`` with its ``ValueError`` (a bad input, a broken checkpoint) as the app's
        message."""
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except ValueError as e:
                raise fail(e) from None
            finally:
                batcher.trim_memory()       # the views' autograd passes free hundreds of MB
        return wrapped

    def canvas_value(dataset):
        c = views.shape(dataset)
        x = example_levels(f"{dataset}_0", c.channels, c.levels, c.height, c.width)
        return imaging.editor_value(x.numpy(), c.levels)

    def canvas_levels(dataset, value):
        try:
            img = imaging.editor_image(value)
        except ValueError as e:             # an upload that is not an image
            raise fail(e) from None
        if img is None:
            raise fail(ValueError("Draw or upload an image first."))
        return views.levels_of(dataset, img)

    def figure(first: Callable[[], tuple[Image.Image, str]], elem_id: str):
        """A picture and its Markdown, both first computed when a page loads (``first``
        is called once for each: it must be cheap or cached)."""
        def part(k: int):
            try:
                return first()[k]
            except ValueError as e:         # a broken checkpoint: say so, keep the page
                return None if k == 0 else f"⚠️ {e}"
            finally:
                batcher.trim_memory()

        return (gr.Image(lambda: part(0), type="pil", format="png", interactive=False,
                         show_label=False, elem_id=elem_id),
                gr.Markdown(lambda: part(1)))

    with gr.Tabs():
        with gr.Tab("Receptive field"):
            gr.Markdown("Which earlier pixels can change a pixel's prediction? **Click a pixel** "
                        "in any heatmap (or use the sliders). Computed from the loaded models by "
                        "back-propagating from the features their output layers read at that "
                        "pixel, on random images; exact zeros mean no path at all.")
            with gr.Row():
                rf_data = gr.Dropdown(DATASET_CHOICES, value=ds0, label="Dataset", scale=1)
                rf_i = gr.Slider(0, 27, value=14, step=1, label="Row", scale=2)
                rf_j = gr.Slider(0, 27, value=14, step=1, label="Column", scale=2)
                rf_c = gr.Radio(list(GROUP_NAMES), value="R", label="Colour predicted",
                                visible=False, scale=1)
            rf_img, rf_text = figure(lambda: views.receptive_field(ds0, 14, 14), "explain_rf")

            @friendly
            def rf_click(dataset, channel, i, j, evt: gr.SelectData):
                hit = views.click(dataset, *evt.index[:2])
                if hit is not None:
                    i, j = hit
                img, text = views.receptive_field(dataset, i, j, channel)
                return img, text, i, j

            @friendly
            def rf_dataset(dataset):
                cfg = views.shape(dataset)
                i, j = cfg.height // 2, cfg.width // 2
                img, text = views.receptive_field(dataset, i, j, "R")
                return (gr.update(maximum=cfg.height - 1, value=i),
                        gr.update(maximum=cfg.width - 1, value=j),
                        gr.update(visible=cfg.channels > 1, value="R"), img, text)

            rf_args = [rf_data, rf_i, rf_j, rf_c]
            rf_img.select(rf_click, [rf_data, rf_c, rf_i, rf_j], [rf_img, rf_text, rf_i, rf_j])
            rf_i.release(friendly(views.receptive_field), rf_args, [rf_img, rf_text])
            rf_j.release(friendly(views.receptive_field), rf_args, [rf_img, rf_text])
            rf_c.input(friendly(views.receptive_field), rf_args, [rf_img, rf_text])
            rf_data.input(rf_dataset, rf_data, [rf_i, rf_j, rf_c, rf_img, rf_text])

        with gr.Tab("Masks A and B"):
            gr.Markdown("Every convolution of a PixelRNN is masked so that a pixel's features "
                        "never see the future. The features are split into R, G and B groups: "
                        "**mask A** (first layer) lets a group see only the *earlier* colours "
                        "at the centre pixel, **mask B** (every later layer) also its own.")
            with gr.Row():
                mk_data = gr.Dropdown(DATASET_CHOICES, value="emoji", label="Dataset")
                mk_arch = gr.Dropdown([(LABELS[a], a) for a in RF_ARCHS], value=RF_ARCHS[0],
                                      label="Architecture")
            mk_img, mk_text = figure(lambda: views.masks("emoji", RF_ARCHS[0]), "explain_masks")
            for comp in (mk_data, mk_arch):
                comp.input(friendly(views.masks), [mk_data, mk_arch], [mk_img, mk_text])

        with gr.Tab("Diagonal skew"):
            gr.Markdown("How the Diagonal BiLSTM processes a whole diagonal at once, computed "
                        "with `pixelnet.layers.skew`/`unskew` on a grid of pixel numbers.")
            with gr.Row():
                sk_size = gr.Slider(3, 7, value=5, step=1, label="Grid size")
                sk_frame = gr.Slider(0, len(views.skew_images(5)) - 1, value=0, step=1,
                                     label="Step")
                sk_play = gr.Button("Play", variant="primary")
            sk_img = gr.Image(views.skew_images(5)[0], type="pil", format="png",
                              interactive=False, show_label=False)

            def sk_show(size, k):
                ims = views.skew_images(int(size))
                return ims[int(min(k, len(ims) - 1))]

            def sk_resize(size):
                ims = views.skew_images(int(size))
                return gr.update(maximum=len(ims) - 1, value=0), ims[0]

            def sk_animate(size, k):
                ims = views.skew_images(int(size))
                for n in range(int(k) if int(k) < len(ims) - 1 else 0, len(ims)):
                    yield n, ims[n]
                    time.sleep(0.8)

            sk_frame.input(sk_show, [sk_size, sk_frame], sk_img)
            sk_size.release(sk_resize, sk_size, [sk_frame, sk_img])
            sk_play.click(sk_animate, [sk_size, sk_frame], [sk_frame, sk_img])

        with gr.Tab("Likelihood"):
            gr.Markdown("How likely does each model find an image? Draw on the canvas or upload "
                        "a picture (a light one on paper is inverted for the grey datasets): it "
                        "is converted to the dataset's size and levels. The maps show each "
                        "pixel's NLL (bright = surprising), on one colour scale for the figure.")
            with gr.Row():
                with gr.Column(scale=1, min_width=300):
                    lk_data = gr.Dropdown(DATASET_CHOICES, value=ds0, label="Dataset")
                    lk_canvas = image_input(
                        lambda: canvas_value(ds0), type="pil", image_mode="RGBA",
                        label="Draw or upload", sources=["upload", "clipboard"], format="png",
                        brush=gr.Brush(colors=["#ffffff", "#808080", "#000000"], default_size=12,
                                       color_mode="defaults"),
                        eraser=gr.Eraser(default_size=12), canvas_size=(280, 280), layers=False,
                        transforms=[], height=380)
                with gr.Column(scale=2, min_width=300):
                    with gr.Row():
                        lk_score = gr.Button("Score this image", variant="primary")
                        lk_preset = gr.Button("Preset: a test example, noise, out of "
                                              "distribution, blank")
                    lk_img = gr.Image(type="pil", format="png", interactive=False,
                                      show_label=False)
            lk_classes = gr.Markdown("", elem_id="lk-classes")
            lk_table = gr.Dataframe(headers=["image", "architecture", "NLL (nats)", "bits/dim"],
                                    interactive=False)

            @friendly
            def lk_score_fn(dataset, value):
                rows = [("your image", canvas_levels(dataset, value))]
                return (*views.score(dataset, rows), views.classify(dataset, rows))

            @friendly
            def lk_preset_fn(dataset):
                cfg = views.shape(dataset)
                rows = preset_images(dataset, cfg.channels, cfg.levels, cfg.height, cfg.width)
                return (*views.score(dataset, rows), views.classify(dataset, rows))

            lk_data.input(canvas_value, lk_data, lk_canvas)
            lk_score.click(lk_score_fn, [lk_data, lk_canvas], [lk_img, lk_table, lk_classes])
            lk_preset.click(lk_preset_fn, lk_data, [lk_img, lk_table, lk_classes],
                            api_name="preset")

        with gr.Tab("Export GIF"):
            gr.Markdown("Generate an image and download the generation as an animated GIF, "
                        "one frame per step asked for (evenly spaced; the last frame is the "
                        "finished image).")
            with gr.Row():
                gf_data = gr.Dropdown(DATASET_CHOICES, value=ds0, label="Dataset")
                gf_arch = gr.Dropdown([(LABELS[a], a) for a in architectures(ds0)],
                                      value=architectures(ds0)[0], label="Architecture")
                gf_frames = gr.Slider(2, 200, value=60, step=1, label="Frames")
                gf_seed = raw(gr.Number(value=0, precision=0, label="Seed"))
                gf_temp = raw(gr.Slider(0, MAX_TEMPERATURE, value=1, step=0.05,
                                        label="Temperature"))
            gf_start = gr.Radio(["blank", "complete the Likelihood canvas's bottom half"],
                                value="blank", label="Start from")
            gf_go = gr.Button("Generate GIF", variant="primary")
            with gr.Row():
                gf_img = gr.Image(type="filepath", label="Generation", interactive=False)
                gf_file = gr.File(label="Download")

            def gf_dataset(dataset):
                return gr.update(choices=[(LABELS[a], a) for a in architectures(dataset)],
                                 value=architectures(dataset)[0])

            @friendly
            def gf_run(dataset, arch, n, seed, temp, start, value):
                known = None if start == "blank" else canvas_levels(dataset, value)
                path = views.gif(dataset, arch, n, seed, temp, known)
                return path, path

            gf_data.input(gf_dataset, gf_data, gf_arch)
            gf_go.click(gf_run, [gf_data, gf_arch, gf_frames, gf_seed, gf_temp, gf_start,
                                 lk_canvas], [gf_img, gf_file])
    return views


if __name__ == "__main__":                 # the tab alone: python demo/explain_tab.py
    import gradio as gr

    with gr.Blocks(title="PixelNet: Explain") as app:
        with gr.Tab("Explain"):
            build_explain_tab()
    app.launch(server_name="0.0.0.0")
