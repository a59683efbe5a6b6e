"""The app's "Explain" tab: the paper's ideas shown from the loaded models.

Views (each picture computed by :mod:`pixelnet.explain` from a real model, drawn by
``demo/explain_figures.py``):

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
import os
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Callable

import gradio as gr
import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pixelnet  # noqa: E402
from demo import batcher  # noqa: E402
from demo import imaging  # noqa: E402
from demo.components import image_input, raw  # noqa: E402
from demo.explain_figures import (GROUP_NAMES, centre_summary, context_summary,  # noqa: E402
                                  render_generation_frame, render_likelihoods, render_masks,
                                  render_receptive_fields, render_skew_frame, rf_layout,
                                  rf_pixel_at)
from demo.inputs import (MAX_TEMPERATURE, canvas_picture, fail, parse_seed,  # noqa: E402
                         parse_temperature)
from demo.registry import (ARCH_NAMES as LABELS, DATASET_INFO, DATASETS, architectures,  # noqa: E402
                           class_names, dataset_key, is_untrained, single_scale)
from pixelnet import explain as ex  # noqa: E402
from pixelnet.data import quantize  # noqa: E402

DATASET_CHOICES = list(DATASETS.items())          # (display name, key) for the dropdowns
EXAMPLES = Path(__file__).resolve().parent / "examples"
RF_ARCHS = tuple(a for a in pixelnet.ARCHITECTURES if single_scale(a))
"""The architectures whose receptive fields and masks are shown (the single-scale ones)."""
GIF_DIR = Path(tempfile.gettempdir()) / "pixelnet_gifs"
GIF_KEEP_S = 900            # exported GIFs older than this are deleted when the next is made
BAR = "█"                   # one tenth of a class's probability in the classification table

GetModel = Callable[[str, str], pixelnet.PixelModel]


# ----------------------------------------------------------------------------- 4. likelihood preset

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
    snaps, pending = [], []
    for s in steps:
        i, j, c = (int(v) for v in order[s])
        image = np.where(step_of <= s, res["image"], x0)           # generated up to step s
        snaps.append(ex.Snapshot(s, len(order), i, j, c, torch.from_numpy(image)[None]))
        pending.append((step_of > s).any(0))                       # (H, W): hatched
    s = scale or imaging.pixel_scale(cfg.height, cfg.width, 196)
    frames = [render_generation_frame(sn, cfg.levels, s, k == len(snaps) - 1, pending[k])
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

    @staticmethod
    def data_levels(dataset: str) -> int:
        """The levels of the dataset's images (the canvas's, the presets'): 8-bit colour and
        grey, binarized MNIST. A model with fewer levels sees them quantized (:meth:`seen`)."""
        return DATASET_INFO[dataset_key(dataset)].levels

    def seen(self, model: torch.nn.Module, dataset: str, x: torch.Tensor) -> torch.Tensor:
        """Images ``x`` at the dataset's levels as ``model`` sees them: quantized to its
        levels where it has fewer (``pixelnet.data.quantize``)."""
        return x if model.cfg.levels == self.data_levels(dataset) else quantize(x, model.cfg.levels)

    def flags(self, model: torch.nn.Module, dataset: str) -> str:
        """What to say under a model's name, e.g. ``"\\n(untrained, 8 levels)"``: untrained, or
        fewer levels than the data (its NLL and bits/dim are then over its own levels, not
        comparable with a 256-level model's); "" for neither."""
        words = ["untrained"] if is_untrained(model) else []
        if model.cfg.levels != self.data_levels(dataset):
            words.append(f"{model.cfg.levels} levels")
        return f"\n({', '.join(words)})" if words else ""

    def levels_of(self, dataset: str, img: Image.Image, invert_light: bool = True
                  ) -> torch.Tensor:
        """A picture (drawn or uploaded) as the dataset's image ``(C, H, W)`` at its levels."""
        c = self.shape(dataset)
        return torch.from_numpy(imaging.to_levels(img, c.channels, self.data_levels(dataset),
                                                  c.height, c.width, invert_light))

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
        """Every architecture's NLL of each ``(name, (C, H, W) image)`` at the dataset's levels
        (each model scores it at its own levels): the figure and table rows ``[image,
        architecture, nats, bits/dim]``; a model with fewer levels is marked "N levels"."""
        models = {a: self.get_model(dataset, a) for a in architectures(dataset)}
        scored = [(name, x, {a: ex.nll_heatmap(m, self.seen(m, dataset, x))
                             for a, m in models.items()}) for name, x in rows]
        notes = {a: self.flags(m, dataset) for a, m in models.items()}
        table = [[name, LABELS.get(a, a) + notes[a].replace("\n", " "),
                  round(float(maps[a].nats[0]), 2), round(float(maps[a].bits_per_dim[0]), 4)]
                 for name, _, maps in scored for a in models]
        return render_likelihoods(scored, self.data_levels(dataset), notes), table

    def levels_note(self, dataset: str) -> str:
        """Markdown (a paragraph, or "" when every model has the data's levels): which models
        predict fewer levels, so that their bits/dim are not compared with the others'."""
        coarse = [f"{LABELS.get(a, a)} ({m.cfg.levels} levels)" for a in architectures(dataset)
                  if (m := self.get_model(dataset, a)).cfg.levels != self.data_levels(dataset)]
        if not coarse:
            return ""
        return (f"**Levels differ:** {', '.join(coarse)} score{'s' if len(coarse) == 1 else ''} "
                f"the image quantized to fewer levels than its {self.data_levels(dataset)}; "
                "bits/dim are per each model's own levels, so they are not comparable across "
                "level counts.\n\n")

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
                out[a] = names, pixelnet.class_posterior(m, self.seen(m, dataset, x)).numpy()
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
        return self.score(dataset, preset_images(dataset, cfg.channels,
                                                 self.data_levels(dataset), cfg.height, cfg.width))

    # 5 ----------------------------------------------------------------------------
    def gif(self, dataset: str, arch: str, n_frames: int, seed: int, temperature: float,
            known: torch.Tensor | None = None) -> str:
        """A generation GIF; with ``known`` ``(C, H, W)`` at the dataset's levels, its bottom
        half is regenerated (by a model with fewer levels, from ``known`` quantized).
        ``n_frames`` is capped at the number of generation steps. ``seed`` and
        ``temperature`` are checked (``gr.Error`` with the app's message)."""
        seed, temperature = parse_seed(seed), parse_temperature(temperature)
        m = self.get_model(dataset, arch)
        cfg = m.cfg
        mask = None
        if known is not None:
            known = self.seen(m, dataset, known)
            mask = torch.zeros(cfg.height, cfg.width, dtype=torch.bool)
            mask[cfg.height // 2:] = True
        total = cfg.channels * (int(mask.sum()) if mask is not None else cfg.height * cfg.width)
        return generation_gif(m, min(int(n_frames), total), seed, known, mask, temperature)


# ----------------------------------------------------------------------------- its sections
# One builder per section, each laying out its components and wiring their events next to
# them; the handlers are plain functions over the section's ExplainViews.

def friendly(fn: Callable) -> Callable:
    """``fn`` with its ``ValueError`` (a bad input, a broken checkpoint) as the app's
    message; the memory of the views' autograd passes is given back after each call."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as e:
            raise fail(str(e)) from None
        finally:
            batcher.trim_memory()       # the views' autograd passes free hundreds of MB
    return wrapped


def figure(first: Callable[[], tuple[Image.Image, str]], elem_id: str, alt: str):
    """A picture and its Markdown, both first computed when a page loads (``first`` is
    called once for each: it must be cheap or cached)."""
    def part(k: int):
        try:
            return first()[k]
        except ValueError as e:         # a broken checkpoint: say so, keep the page
            return None if k == 0 else f"⚠️ {e}"
        finally:
            batcher.trim_memory()

    return (gr.Image(lambda: part(0), type="pil", format="png", interactive=False,
                     show_label=False, elem_id=elem_id, alt_text=alt),
            gr.Markdown(lambda: part(1)))


def example_canvas(views: ExplainViews, dataset: str) -> dict:
    """The Likelihood canvas's value: the dataset's first example."""
    c, levels = views.shape(dataset), views.data_levels(dataset)
    x = example_levels(f"{dataset}_0", c.channels, levels, c.height, c.width)
    return imaging.editor_value(x.numpy(), levels)


def drawn_levels(views: ExplainViews, dataset: str, value: dict | None) -> torch.Tensor:
    """The Likelihood canvas's picture as the dataset's image ``(C, H, W)``."""
    img = canvas_picture(value, "")
    if img is None:
        raise fail("Draw or upload an image first.")
    return views.levels_of(dataset, img)


def build_receptive_field(views: ExplainViews, ds0: str) -> None:
    """1. The receptive field of a clicked pixel, every single-scale architecture side by side."""
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
    rf_img, rf_text = figure(lambda: views.receptive_field(ds0, 14, 14), "explain_rf",
                             "receptive-field heatmaps: for each architecture, which "
                             "earlier pixels can change the chosen pixel's prediction")

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


def build_masks(views: ExplainViews) -> None:
    """2. Masks A and B of a model, one kernel per (output, input) colour group."""
    gr.Markdown("Every convolution of a PixelRNN is masked so that a pixel's features "
                "never see the future. The features are split into R, G and B groups: "
                "**mask A** (first layer) lets a group see only the *earlier* colours "
                "at the centre pixel, **mask B** (every later layer) also its own.")
    with gr.Row():
        mk_data = gr.Dropdown(DATASET_CHOICES, value="emoji", label="Dataset")
        mk_arch = gr.Dropdown([(LABELS[a], a) for a in RF_ARCHS], value=RF_ARCHS[0],
                              label="Architecture")
    mk_img, mk_text = figure(lambda: views.masks("emoji", RF_ARCHS[0]), "explain_masks",
                             "the masks of the masked convolutions: which inputs "
                             "each output colour may read")
    for comp in (mk_data, mk_arch):
        comp.input(friendly(views.masks), [mk_data, mk_arch], [mk_img, mk_text])


def build_skew(views: ExplainViews) -> None:
    """3. The Diagonal BiLSTM's skew, scan, unskew and shift, step by step or played."""
    gr.Markdown("How the Diagonal BiLSTM processes a whole diagonal at once, computed "
                "with `pixelnet.layers.skew`/`unskew` on a grid of pixel numbers.")
    with gr.Row():
        sk_size = gr.Slider(3, 7, value=5, step=1, label="Grid size")
        sk_frame = gr.Slider(0, len(views.skew_images(5)) - 1, value=0, step=1,
                             label="Step")
        sk_play = gr.Button("Play", variant="primary")
    sk_img = gr.Image(views.skew_images(5)[0], type="pil", format="png",
                      interactive=False, show_label=False,
                      alt_text="the skew of the Diagonal BiLSTM: each row shifted one "
                               "column more than the one above, step by step")

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


def build_likelihood(views: ExplainViews, ds0: str) -> gr.ImageEditor:
    """4. Every architecture's likelihood of a drawn or uploaded image, or of the preset's
    images; returns the canvas (the GIF export completes it)."""
    gr.Markdown("How likely does each model find an image? Draw on the canvas or upload "
                "a picture (a light one on paper is inverted for the grey datasets): it "
                "is converted to the dataset's size and levels. The maps show each "
                "pixel's NLL (bright = surprising), on one colour scale for the figure.")
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            lk_data = gr.Dropdown(DATASET_CHOICES, value=ds0, label="Dataset")
            lk_canvas = image_input(
                lambda: example_canvas(views, ds0), type="pil", image_mode="RGBA",
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
                              show_label=False,
                              alt_text="the scored images and every architecture's "
                                       "NLL of each")
    lk_classes = gr.Markdown("", elem_id="lk-classes")
    lk_table = gr.Dataframe(headers=["image", "architecture", "NLL (nats)", "bits/dim"],
                            interactive=False)

    @friendly
    def lk_score_fn(dataset, value):
        rows = [("your image", drawn_levels(views, dataset, value))]
        return (*views.score(dataset, rows), views.levels_note(dataset)
                + views.classify(dataset, rows))

    @friendly
    def lk_preset_fn(dataset):
        cfg = views.shape(dataset)
        rows = preset_images(dataset, cfg.channels, views.data_levels(dataset),
                             cfg.height, cfg.width)
        return (*views.score(dataset, rows), views.levels_note(dataset)
                + views.classify(dataset, rows))

    lk_data.input(functools.partial(example_canvas, views), lk_data, lk_canvas)
    lk_score.click(lk_score_fn, [lk_data, lk_canvas], [lk_img, lk_table, lk_classes])
    lk_preset.click(lk_preset_fn, lk_data, [lk_img, lk_table, lk_classes],
                    api_name="preset")
    return lk_canvas


def build_gif(views: ExplainViews, ds0: str, canvas: gr.ImageEditor) -> None:
    """5. A generation exported as an animated GIF, from a blank image or completing the
    bottom half of the Likelihood ``canvas``."""
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
        gf_img = gr.Image(type="filepath", label="Generation", interactive=False,
                          alt_text="the generation, pixel by pixel, as an animated GIF")
        gf_file = gr.File(label="Download")

    def gf_dataset(dataset):
        return gr.update(choices=[(LABELS[a], a) for a in architectures(dataset)],
                         value=architectures(dataset)[0])

    @friendly
    def gf_run(dataset, arch, n, seed, temp, start, value):
        known = None if start == "blank" else drawn_levels(views, dataset, value)
        path = views.gif(dataset, arch, n, seed, temp, known)
        return path, path

    gf_data.input(gf_dataset, gf_data, gf_arch)
    gf_go.click(gf_run, [gf_data, gf_arch, gf_frames, gf_seed, gf_temp, gf_start, canvas],
                [gf_img, gf_file])


def build_explain_tab(get_model: GetModel | None = None) -> ExplainViews:
    """Lay out the Explain views in the current Gradio context (the app's Explain tab), one
    sub-tab per section. ``get_model(dataset, arch)`` defaults to ``demo/registry.py``'s."""
    if get_model is None:
        from demo.registry import get_model
    views = ExplainViews(get_model)
    ds0 = DATASET_CHOICES[0][1]
    with gr.Tabs():
        with gr.Tab("Receptive field"):
            build_receptive_field(views, ds0)
        with gr.Tab("Masks A and B"):
            build_masks(views)
        with gr.Tab("Diagonal skew"):
            build_skew(views)
        with gr.Tab("Likelihood"):
            canvas = build_likelihood(views, ds0)
        with gr.Tab("Export GIF"):
            build_gif(views, ds0, canvas)
    return views


if __name__ == "__main__":                 # the tab alone: python demo/explain_tab.py
    with gr.Blocks(title="PixelNet: Explain") as app:
        with gr.Tab("Explain"):
            build_explain_tab()
    app.launch(server_name="0.0.0.0")
