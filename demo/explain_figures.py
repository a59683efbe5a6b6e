"""The Explain tab's figures, drawn with PIL from :mod:`pixelnet.explain`'s data (so they
can be tested without a browser): receptive fields, masks A and B, the Diagonal BiLSTM's
skew, per-pixel NLL maps and the frames of a generation GIF. The drawing kit they share is
``demo/imaging.py``'s "figures" section.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

import pixelnet
from demo.imaging import (FIGURE_BG as BG, FIGURE_TEXT as TEXT, cmap, font, framed, label,
                          outline, picture, pixel_scale, render_frame, stack, text_width, upscale)
from demo.registry import ARCH_NAMES as LABELS
from pixelnet import explain as ex
from pixelnet.data import dequantize

GROUP_NAMES = ("R", "G", "B")
GROUP_RGB = ((214, 48, 49), (39, 160, 70), (40, 90, 215))
GREY_INK = (70, 70, 70)
FUTURE = (58, 60, 66)
FUTURE_HATCH = (92, 95, 104)
UNSEEN = (246, 190, 190)
TARGET = (230, 20, 20)
DECADES = 6.0


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
            panel = Image.fromarray(upscale(heat_cells(rep.rf[ch], rep.future[ch]), s))
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
    return framed(Image.fromarray(upscale(cmap("inferno")[(t * 255).round().astype(int)], s)))


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


# ----------------------------------------------------------------------------- 5. GIF export

def render_generation_frame(snap: ex.Snapshot, levels: int, s: int, final: bool,
                            pending: np.ndarray | None = None) -> Image.Image:
    """The image so far (first of the batch) with the sub-pixel just drawn outlined and the
    ``pending`` ``(H, W)`` pixels hatched as in the Generate tab, over a progress strip
    ``step k / N`` (which also keeps every frame distinct, so GIF writers cannot merge two
    frames)."""
    x = dequantize(snap.image[0], levels).numpy()                # levels as 8-bit values
    img = Image.fromarray(render_frame(x, 256, pending, None, s))
    d = ImageDraw.Draw(img)
    if not final:
        outline(d, snap.j * s, snap.i * s, s, TARGET, 2)
    strip = Image.new("RGB", (img.width, 22), (30, 30, 30))
    ds = ImageDraw.Draw(strip)
    ds.rectangle([0, 0, int(img.width * (snap.step + 1) / snap.total), 3], fill=(255, 165, 40))
    ds.text((4, 5), f"step {snap.step + 1} / {snap.total}", fill=(240, 240, 240), font=font(12))
    return stack([img, strip], gap=0)

