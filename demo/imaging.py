"""Pictures in and out of the app: canvas <-> model levels, frames, bar charts, heatmaps.

Everything here is plain numpy/PIL (no Gradio), drawn with PIL because a frame is rendered
many times a second while the sampler runs. Images at the model's resolution are integer
level arrays ``(C, H, W)``; on screen every model pixel is a ``SCALE x SCALE`` block.
"""
from __future__ import annotations

import io
import math
import os
import textwrap
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

SCALE = 10                                  # screen pixels per model pixel
# Not generated yet: a diagonal hatch of two slate blues. No data value is a hatch (a model
# pixel is one uniform SCALE x SCALE block), and neither blue is a grey, so a pending pixel
# stands out on any image, emoji included, and in a GIF (issue 17: it was black).
PENDING = np.array([52, 62, 92], np.uint8)          # the hatch's ground
PENDING_STRIPE = np.array([128, 144, 196], np.uint8)
HATCH_PERIOD, HATCH_WIDTH = 5, 2            # a stripe of 2 screen pixels every 5, along x + y
MARK = (255, 40, 40)                        # the current position / the sampled value
MASK_RGBA = (255, 40, 40, 140)              # painted "regenerate here"
CHANNEL_COLOURS = {1: [(165, 165, 165)], 3: [(236, 150, 150), (140, 198, 140), (150, 170, 236)]}
"""Bar colours (light, so that the sampled value's bar in ``MARK`` red stands out)."""
CHANNEL_TEXT = {1: [(60, 60, 60)], 3: [(178, 24, 24), (24, 110, 24), (36, 66, 200)]}
"""Channel names' colours: >= 4.5:1 on white and on the current channel's band."""
CHANNEL_NAMES = {1: ["gray"], 3: ["R", "G", "B"]}


# ----------------------------------------------------------------------------- input

def background_rgb(channels: int) -> tuple[int, int, int]:
    """The datasets' background: black digits/clothes, white behind emoji."""
    return (255, 255, 255) if channels == 3 else (0, 0, 0)


MAX_INPUT_BYTES = 20 * 1024 * 1024
"""The largest image file the app reads (the server's upload limit too)."""
MAX_INPUT_PIXELS = 4096 * 4096
"""The most pixels of an image the app decodes (checked from the header, before decoding)."""
WORK_SIDE = 1024
"""Images are downscaled to at most this many pixels a side before anything else (the
models see 32x32 at most; the canvases are 320x320)."""
Image.MAX_IMAGE_PIXELS = MAX_INPUT_PIXELS   # any other decode in this process: refused at 2x


def check_image(source: str | os.PathLike | bytes, what: str = "the image") -> tuple[int, int]:
    """``(width, height)`` of an image file or bytes, read from its header only;
    ``ValueError`` with a clear message when it is too large (bytes or pixels) or not an image
    PIL reads. Nothing is decoded."""
    try:
        size = len(source) if isinstance(source, (bytes, bytearray)) else os.path.getsize(source)
    except OSError:
        raise ValueError(f"{what} could not be read (the file is gone; upload it again)") from None
    if size > MAX_INPUT_BYTES:
        raise ValueError(f"{what} is {size / 2**20:.1f} MB; the app reads images of at most "
                         f"{MAX_INPUT_BYTES // 2**20} MB")
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source) as img:
            w, h = img.size
    except Image.DecompressionBombError:
        w = h = None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise ValueError(f"{what} is not an image this app can read (PNG, JPEG, GIF, BMP, "
                         f"WebP, ...): {type(e).__name__}") from None
    if w is None or w * h > MAX_INPUT_PIXELS:
        dims = f"{w}x{h} pixels" if w is not None else \
            f"more than {2 * MAX_INPUT_PIXELS / 1e6:.0f} megapixels"
        side = int(MAX_INPUT_PIXELS ** 0.5)
        raise ValueError(f"{what} has {dims}; the app reads images of at most "
                         f"{MAX_INPUT_PIXELS / 1e6:.1f} megapixels ({side}x{side}): scale it down first")
    return w, h


def shrink(img: Image.Image, side: int = WORK_SIDE) -> Image.Image:
    """``img`` downscaled (box filter, aspect kept) so that neither side exceeds ``side``."""
    if max(img.size) <= side:
        return img
    f = side / max(img.size)
    size = (max(1, round(img.width * f)), max(1, round(img.height * f)))
    if img.mode.startswith("I;16"):
        img = img.convert("I")
    elif img.mode not in ("1", "L", "LA", "RGB", "RGBA", "I", "F"):
        img = img.convert("RGBA")          # palette, CMYK, ...: resize needs a plain mode
    return img.resize(size, Image.Resampling.BOX, reducing_gap=2.0)


def open_image(path: str | os.PathLike, what: str | None = None) -> Image.Image:
    """Open any image file PIL reads, bounded (:func:`check_image`) and downscaled to at most
    ``WORK_SIDE`` a side (JPEGs decoded at reduced size); ``ValueError`` with a clear message
    otherwise."""
    what = what or repr(os.path.basename(str(path)))
    check_image(path, what)
    try:
        img = Image.open(path)
        img.draft(img.mode, (WORK_SIDE, WORK_SIDE))          # JPEG: decode at 1/2, 1/4, 1/8
        img.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise ValueError(f"{what} is not an image this app can read (PNG, JPEG, GIF, BMP, "
                         f"WebP, ...): {type(e).__name__}") from None
    return shrink(img)


def flatten(img: Image.Image, channels: int) -> Image.Image:
    """Any mode -> ``RGB`` (3 channels) or ``L`` (1), transparency over the background."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):       # 16-bit / float: stretch
        a = np.asarray(img, np.float64)
        lo, hi = float(a.min()), float(a.max())
        img = Image.fromarray(((a - lo) / (hi - lo or 1) * 255).round().astype(np.uint8))
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        back = Image.new("RGBA", rgba.size, background_rgb(channels) + (255,))
        img = Image.alpha_composite(back, rgba)
    return img.convert("RGB" if channels == 3 else "L")


def to_levels(img: Image.Image, channels: int, levels: int, height: int, width: int,
              invert_light: bool = False) -> np.ndarray:
    """An image of any size and mode as model input ``(C, H, W)`` int64 in ``[0, levels)``.

    Keeps the aspect ratio (pads with the background), averages down to ``H x W``, and
    quantizes (2 levels: threshold at half). ``invert_light``: a grayscale image with a light
    border (ink on paper) is inverted to the datasets' light-on-black.
    """
    img = flatten(img, channels)
    if invert_light and channels == 1:
        a = np.asarray(img)
        if np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]]).mean() > 127:
            img = ImageOps.invert(img)
    img = ImageOps.pad(img, (width, height), Image.Resampling.BOX,
                       color=background_rgb(channels)[:channels] if channels == 3 else 0)
    a = np.asarray(img, np.int64).reshape(height, width, channels).transpose(2, 0, 1)
    if levels == 256:
        return a
    return np.minimum(a * levels // 256, levels - 1)


# ----------------------------------------------------------------------------- output

def to_rgb(x: np.ndarray, levels: int) -> np.ndarray:
    """Levels ``(C, H, W)`` -> displayable ``(H, W, 3)`` uint8."""
    a = (np.asarray(x, np.int64) * 255 // (levels - 1)).astype(np.uint8).transpose(1, 2, 0)
    return np.repeat(a, 3, 2) if a.shape[2] == 1 else a


def upscale(rgb: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """Nearest-neighbour upscaling of ``(H, W, ...)``."""
    return rgb.repeat(scale, 0).repeat(scale, 1)


@lru_cache(maxsize=8)
def hatch(height: int, width: int) -> np.ndarray:
    """The pending pattern ``(height, width, 3)`` uint8 (read-only): ``PENDING`` with diagonal
    ``PENDING_STRIPE`` stripes, in screen pixels, so that it runs on across cells."""
    y, x = np.ogrid[:height, :width]
    out = np.where(((x + y) % HATCH_PERIOD < HATCH_WIDTH)[..., None], PENDING_STRIPE, PENDING)
    out = out.astype(np.uint8)
    out.flags.writeable = False
    return out


def pending_cells(frame: np.ndarray, scale: int = SCALE, tol: int = 0) -> np.ndarray:
    """``(H, W)`` bool: the cells of an upscaled frame ``(H * scale, W * scale, 3)`` that show
    the pending hatch (within ``tol`` per channel: a GIF's palette may move colours)."""
    frame = np.asarray(frame)[..., :3].astype(np.int16)
    h, w = frame.shape[0] // scale, frame.shape[1] // scale
    frame = frame[:h * scale, :w * scale]
    close = (np.abs(frame - hatch(h * scale, w * scale)) <= tol).all(-1)
    return close.reshape(h, scale, w, scale).all((1, 3))


def render_frame(x: np.ndarray, levels: int, pending: np.ndarray | None = None,
                 pos: tuple[int, int] | None = None, scale: int = SCALE) -> np.ndarray:
    """The image so far, upscaled: ``pending`` (H, W) pixels hatched (:func:`hatch`), ``pos``
    outlined."""
    big = upscale(to_rgb(x, levels), scale)
    if pending is not None:
        pending = np.asarray(pending, bool)
        pattern, cols = hatch(*big.shape[:2]), pending.repeat(scale, 1)
        for i in np.nonzero(pending.any(1))[0]:     # row by row: 4x faster than one np.where
            rows = slice(i * scale, (i + 1) * scale)
            if pending[i].all():
                big[rows] = pattern[rows]
            else:
                np.copyto(big[rows], pattern[rows], where=cols[i][None, :, None])
    if pos is not None:
        i, j = pos
        y0, x0, y1, x1 = i * scale, j * scale, (i + 1) * scale - 1, (j + 1) * scale - 1
        t = max(1, scale // 5)
        for sl in ((slice(y0, y0 + t), slice(x0, x1 + 1)), (slice(y1 - t + 1, y1 + 1), slice(x0, x1 + 1)),
                   (slice(y0, y1 + 1), slice(x0, x0 + t)), (slice(y0, y1 + 1), slice(x1 - t + 1, x1 + 1))):
            big[sl] = MARK
    return big


@lru_cache(maxsize=16)
def font(size: int = 13) -> ImageFont.ImageFont:
    """PIL's built-in font at ``size`` pixels (scalable where FreeType is available)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):                     # old PIL / no FreeType
        return ImageFont.load_default()


CHART_W, CHART_H = 320, 190
"""A softmax chart's size in pixels: the size it is shown at (``#chart`` is 190 CSS px high
and 394 wide at 1280x800, 326 on a 390x844 phone), so that its text is not scaled down."""
CHART_FONT = 12
"""The smallest text in a chart, in pixels (>= 11 CSS px on screen, shown 1:1)."""
CHART_BINS = 32
"""Bars in a panel at most: 256 levels are shown as 32 bins of 8 values (1-px spikes were
unreadable), each bin's height its total probability."""
CURRENT_BAND = (255, 244, 208)               # behind the channel being sampled
INK, GREY_INK = (20, 20, 20), (84, 84, 84)   # text: 16:1 and 6.6:1 on white


def chart_ticks(levels: int) -> list[int]:
    """The levels labelled under a chart: every level up to 8, else 0, the quarters and the
    last (256 levels: 0, 64, 128, 192, 255)."""
    if levels <= 8:
        return list(range(levels))
    return sorted({0, levels // 4, levels // 2, 3 * levels // 4, levels - 1})


def fit_text(text: str, width: float, size: int) -> str:
    """``text``, cut at a word with "..." if it is wider than ``width`` pixels at ``size``."""
    f = font(size)
    if f.getlength(text) <= width:
        return text
    words = text.split(" ")
    while words and f.getlength(" ".join(words) + " ...") > width:
        words.pop()
    return " ".join(words) + " ..."


def bar_chart(dists: list[np.ndarray | None], values: list[int | None], levels: int,
              current: int | None = None, title: str = "", width: int = CHART_W,
              height: int = CHART_H) -> Image.Image:
    """The softmax of one pixel: one panel per channel (gray, or R, G and B one under the
    other on a shared axis), the sampled value's bar in red with a red triangle under it and
    its value in words ("sampled 187").

    ``dists[c]`` is channel ``c``'s distribution over ``levels`` (None: not drawn yet),
    ``values[c]`` the value drawn there; ``current`` is the channel being sampled (its panel
    is on a light band). More than ``CHART_BINS`` levels are binned (256: 32 bins of 8 values);
    bars are scaled to the tallest. All text is at least ``CHART_FONT`` pixels.
    """
    C = len(dists)
    names = CHANNEL_NAMES.get(C, [str(c) for c in range(C)])
    bar_colours = CHANNEL_COLOURS.get(C, [(165, 165, 165)] * C)
    name_colours = CHANNEL_TEXT.get(C, [INK] * C)
    small, big = CHART_FONT, CHART_FONT + 2
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    binned = levels > CHART_BINS
    size = -(-levels // CHART_BINS) if binned else 1        # values per bar
    top = 0
    if title or binned:
        note = f"{size} values a bar" if binned else ""
        room = width - 8 - (font(small).getlength(note) + 10 if note else 0)
        stamp(img, (4, 1), fit_text(title, room, small), INK, small)
        stamp(img, (width - 4 - font(small).getlength(note), 1), note, GREY_INK, small)
        top = small + 5
    tick_h = small + 6                                      # the shared axis' labels
    panel_h = (height - top - tick_h) // C
    left, right = (6, 8) if C == 1 else (84, 8)
    plot_w = width - left - right

    def x_of(v: float) -> float:                            # level -> x of its left edge
        return left + v * plot_w / levels

    if current is not None and 0 <= current < C and C > 1:
        y0 = top + current * panel_h
        d.rectangle((0, y0, width - 1, y0 + panel_h - 1), fill=CURRENT_BAND)
    for c in range(C):
        y0 = top + c * panel_h
        base = y0 + panel_h - 8                             # room for the triangle under it
        p, v = dists[c], values[c]
        # the words: above the bars for one channel, in a column on the left for three
        if C == 1:
            words_h = big + 4
            if p is not None and v is not None:
                stamp(img, (left, y0 + 2), f"sampled {v}", INK, big)
                x = left + font(big).getlength(f"sampled {v}") + 8
                stamp(img, (x, y0 + 3), f"p = {float(p[v]):.3f}", GREY_INK, small)
        else:
            words_h = 2
            stamp(img, (6, y0 + 2), names[c], name_colours[c], big)
            if p is not None and v is not None:
                stamp(img, (6 + font(big).getlength(names[c]) + 6, y0 + 3), "sampled", GREY_INK, small)
                stamp(img, (6, y0 + big + 4), str(v), INK, big)
                stamp(img, (6 + font(big).getlength(str(v)) + 6, y0 + big + 5),
                      f"p {float(p[v]):.3f}", GREY_INK, small)
        plot_top = y0 + words_h + (small + 2 if (not binned and C == 1 and plot_w / levels >= 36) else 2)
        plot_h = max(4, base - plot_top)
        d.line((left, base, left + plot_w, base), fill=(120, 120, 120))
        for k in chart_ticks(levels):
            x = x_of(k + 0.5)
            d.line((x, base + 1, x, base + 3), fill=(120, 120, 120))
        if p is None:
            stamp(img, (left + 6, base - plot_h // 2 - small // 2), "not sampled yet", GREY_INK, small)
            continue
        p = np.asarray(p, np.float64)
        starts = np.arange(0, levels, size)
        pb = np.add.reduceat(p, starts)                     # (bars,) probability of each bar
        heights = np.round(pb / (float(pb.max()) or 1.0) * plot_h).astype(int)
        hit = None if v is None else int(v) // size
        if hit is not None:
            heights[hit] = max(heights[hit], 2)             # a sampled unlikely value shows
        gap = 1 if plot_w / len(starts) >= 4 else 0
        for b in np.nonzero(heights)[0]:
            x0, x1 = x_of(starts[b]) + gap, x_of(min(starts[b] + size, levels)) - gap - 1
            d.rectangle((x0, base - heights[b], max(x0, x1), base - 1),
                        fill=MARK if b == hit else bar_colours[c])
            if not binned and C == 1 and plot_w / levels >= 36:   # room for its probability
                label = f"{pb[b]:.3f}"
                tx = (x0 + x1) / 2 - font(small).getlength(label) / 2
                stamp(img, (tx, base - heights[b] - small - 2), label, INK, small)
        if v is not None:
            xv = x_of(int(v) + 0.5)
            d.polygon([(xv, base + 1), (xv - 5, base + 7), (xv + 5, base + 7)], fill=MARK)
    # the shared axis: tick labels under the last panel, inside the image
    y = top + C * panel_h + 1
    for k in chart_ticks(levels):
        label = f"{k} ({'black' if k == 0 else 'white'})" if C == 1 and levels == 2 else str(k)
        w = font(small).getlength(label)
        x = min(max(x_of(k + 0.5) - w / 2, 1), width - 1 - w)
        stamp(img, (x, y), label, GREY_INK, small)
    return img


@lru_cache(maxsize=4096)
def _text(word: str, size: int) -> Image.Image:
    """``word``'s coverage mask (mode L), rendered once: FreeType text costs about 0.4 ms a
    call (measured), most of a chart's time when every label was drawn afresh."""
    f = font(size)
    x0, y0, x1, y1 = f.getbbox(word)
    mask = Image.new("L", (max(1, x1), max(1, y1)), 0)
    ImageDraw.Draw(mask).text((0, 0), word, fill=255, font=f)
    return mask


def stamp(img: Image.Image, xy: tuple[float, float], text: str, fill: tuple[int, int, int],
          size: int) -> None:
    """Draw ``text`` at ``xy`` on ``img``, word by word from the cache of rendered words
    (the numbers in a chart's lines change every frame, the words do not)."""
    x, y = xy[0], int(xy[1])
    f = font(size)
    space = f.getlength(" ")
    for word in text.split(" "):
        if word:
            mask = _text(word, size)
            img.paste(tuple(fill), (int(x), y, int(x) + mask.width, y + mask.height), mask)
            x += f.getlength(word)
        x += space


@lru_cache(maxsize=1)
def _magma() -> np.ndarray:
    import matplotlib
    return (matplotlib.colormaps["magma"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)


def heatmap(values: np.ndarray, vmax: float | None = None, scale: int = SCALE) -> np.ndarray:
    """A non-negative map ``(H, W)`` as an upscaled magma image (0 black, ``vmax`` yellow)."""
    vmax = float(values.max()) if vmax is None else vmax
    idx = np.clip(np.asarray(values, np.float64) / (vmax or 1.0) * 255, 0, 255).astype(np.uint8)
    return upscale(_magma()[idx], scale)


def side_by_side(images: list[np.ndarray], labels: list[str], gap: int = 12) -> np.ndarray:
    """Equal-size RGB images in a row, each with a caption line above it."""
    h, w = images[0].shape[:2]
    out = Image.new("RGB", (len(images) * (w + gap) - gap, h + 18), "white")
    d = ImageDraw.Draw(out)
    for k, (im, lab) in enumerate(zip(images, labels)):
        out.paste(Image.fromarray(im), (k * (w + gap), 18))
        d.text((k * (w + gap) + 2, 2), lab, fill="black", font=font(14))
    return np.asarray(out)


# ----------------------------------------------------------------------------- canvas

GRID_GAP = 10                               # screen pixels between the cells of a grid


def grid(images: list[np.ndarray], gap: int = GRID_GAP) -> np.ndarray:
    """Equal-size RGB images ``(h, w, 3)`` in a square grid (1, 4 or 9 as 1x1, 2x2, 3x3),
    white between the cells; one image is returned as it is."""
    if len(images) == 1:
        return images[0]
    n = math.isqrt(len(images) - 1) + 1                 # cells per side
    h, w = images[0].shape[:2]
    out = np.full((n * (h + gap) - gap, n * (w + gap) - gap, 3), 255, np.uint8)
    for k, img in enumerate(images):
        r, c = divmod(k, n)
        out[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = img
    return out


def grid_cell(x: float, y: float, count: int, h: int, w: int, gap: int = GRID_GAP
              ) -> tuple[int, float, float] | None:
    """Which cell of a :func:`grid` of ``count`` ``(h, w)`` images a point ``(x, y)`` is in:
    ``(cell, x, y)`` within that cell, or None between cells or outside."""
    n = math.isqrt(count - 1) + 1
    r, c = int(y // (h + gap)), int(x // (w + gap))
    x, y = x - c * (w + gap), y - r * (h + gap)
    k = r * n + c
    if not (0 <= r < n and 0 <= c < n and k < count and x < w and y < h):
        return None
    return k, x, y


def editor_value(x: np.ndarray, levels: int) -> dict:
    """An ``ImageEditor`` value showing ``x`` (levels ``(C, H, W)``) as its background."""
    return {"background": Image.fromarray(upscale(to_rgb(x, levels))), "layers": [],
            "composite": None}


def mask_editor_value(x: np.ndarray, levels: int, mask: np.ndarray) -> dict:
    """The mask canvas: ``x`` as background, one layer painted where ``mask`` (H, W) is True."""
    layer = np.zeros(mask.shape + (4,), np.uint8)
    layer[mask] = MASK_RGBA
    return {"background": Image.fromarray(upscale(to_rgb(x, levels))),
            "layers": [Image.fromarray(upscale(layer))], "composite": None}


def _as_image(v) -> Image.Image | None:
    if v is None:
        return None
    if isinstance(v, Image.Image):
        if v.width * v.height > MAX_INPUT_PIXELS:
            raise ValueError(f"the image has {v.width}x{v.height} pixels; the app reads images "
                             f"of at most {MAX_INPUT_PIXELS / 1e6:.1f} megapixels")
        return shrink(v)
    if isinstance(v, np.ndarray):
        return shrink(Image.fromarray(v))
    return open_image(v, "the image")


def editor_image(value: dict | None) -> Image.Image | None:
    """What an ``ImageEditor`` shows (its composite, else background plus layers) as RGBA."""
    if not isinstance(value, dict):
        return None
    comp = _as_image(value.get("composite"))
    if comp is not None:
        return comp.convert("RGBA")
    bg = _as_image(value.get("background"))
    layers = [_as_image(v) for v in value.get("layers") or []]
    layers = [lay.convert("RGBA") for lay in layers if lay is not None]
    if bg is None and not layers:
        return None
    out = bg.convert("RGBA") if bg is not None else Image.new("RGBA", layers[0].size, (0, 0, 0, 0))
    for lay in layers:
        out.alpha_composite(lay.resize(out.size, Image.Resampling.NEAREST))
    return out


def editor_mask(value: dict | None, height: int, width: int) -> np.ndarray | None:
    """The painted area of an ``ImageEditor``'s layers as a ``(H, W)`` bool mask: a model
    pixel is painted when at least half of its screen area is. None without layers."""
    if not isinstance(value, dict):
        return None
    layers = [_as_image(v) for v in value.get("layers") or []]
    layers = [lay for lay in layers if lay is not None]
    if not layers:
        return None
    painted = np.zeros(layers[0].size[::-1], bool)
    for lay in layers:
        a = np.asarray(lay.convert("RGBA").resize(layers[0].size, Image.Resampling.NEAREST))
        painted |= a[..., 3] > 0
    small = Image.fromarray(painted.astype(np.uint8) * 255).resize((width, height), Image.Resampling.BOX)
    return np.asarray(small) >= 128


# ----------------------------------------------------------------------------- figures

# The Explain tab's drawing kit: text strips, stacking, colour maps, upscaled pictures.
FIGURE_BG = (255, 255, 255)
FIGURE_TEXT = (25, 25, 25)


def text_width(text: str, size: int = 14) -> int:
    """Pixels ``text`` takes at ``size``."""
    return int(math.ceil(font(size).getlength(text)))


def label(text: str, width: int, size: int = 14, height: int | None = None,
          colour=FIGURE_TEXT, centre: bool = True) -> Image.Image:
    """A white strip of ``width`` holding ``text`` (wrapped to fit)."""
    chars = max(8, int(width / (0.55 * size)))
    lines = [ln for para in text.split("\n") for ln in (textwrap.wrap(para, chars) or [""])]
    h = height or len(lines) * (size + 4) + 4
    im = Image.new("RGB", (width, h), FIGURE_BG)
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
        out = Image.new("RGB", (max(ws), sum(hs) + gap * (len(images) - 1)), FIGURE_BG)
        y = 0
        for im in images:
            out.paste(im, ((out.width - im.width) // 2 if align == "centre" else 0, y))
            y += im.height + gap
    else:
        out = Image.new("RGB", (sum(ws) + gap * (len(images) - 1), max(hs)), FIGURE_BG)
        x = 0
        for im in images:
            out.paste(im, (x, 0))
            x += im.width + gap
    return out


@lru_cache(maxsize=None)
def cmap(name: str) -> np.ndarray:
    """A matplotlib colour map as a ``(256, 3)`` uint8 table."""
    import matplotlib
    table = matplotlib.colormaps[name](np.linspace(0, 1, 256))[:, :3]
    return (table * 255).round().astype(np.uint8)


def picture(x, levels: int, s: int) -> Image.Image:
    """An image of levels ``(C, H, W)`` (array or tensor), upscaled ``s`` times (nearest
    neighbour)."""
    x = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    return Image.fromarray(upscale(to_rgb(x, levels), s))


def pixel_scale(height: int, width: int, target: int = 224) -> int:
    """Upscale factor so that an image is about ``target`` pixels wide (at least 4)."""
    return max(4, target // max(height, width))


def outline(d: ImageDraw.ImageDraw, x: int, y: int, s: int, colour, w: int = 2):
    """Outline the ``s x s`` cell at ``(x, y)`` just outside its edge."""
    d.rectangle([x - 1, y - 1, x + s, y + s], outline=colour, width=w)


def framed(im: Image.Image) -> Image.Image:
    """A thin grey frame, so that a white or black image still shows its extent."""
    ImageDraw.Draw(im).rectangle([0, 0, im.width - 1, im.height - 1], outline=(160, 160, 160))
    return im
