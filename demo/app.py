"""PixelNet app: draw or mask pixels, pick an architecture, watch a PixelRNN/PixelCNN fill
them in pixel by pixel, with the softmax behind every pixel.

    python demo/app.py            # http://0.0.0.0:7860 (or $GRADIO_SERVER_PORT)

Named API endpoints (``gradio_client``; every input has a default):
``/generate`` and ``/compare`` stream frames; ``/upload`` turns an image file into canvases.
See README.md, "The app's API".

The handlers are plain functions (tested directly in ``tests/test_app.py``); ``build_app``
wires them to the UI. Sampling is ``pixelnet.sample_stream`` at full speed; only the frames
are throttled, by the animation speed and a frame-rate cap.
"""
from __future__ import annotations

import os
import queue
import random
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import gradio as gr  # noqa: E402
from gradio import processing_utils  # noqa: E402

import pixelnet  # noqa: E402
from demo import imaging as im  # noqa: E402
from pixelnet.sampling import completion_inputs  # noqa: E402
from demo.registry import (ARCH_NAMES, DATASET_INFO, DATASETS, architectures, arch_key,  # noqa: E402
                           dataset_key, describe, get_model)

EXAMPLES = Path(__file__).resolve().parent / "examples"
SPEEDS: dict[str, float] = {"Slow": 20, "Medium": 80, "Fast": 300, "Max": 0}
"""Animation speed -> pixels per second (0: as fast as the sampler goes)."""
MAX_FPS = 15                        # frames per second sent to the browser, at most
PRESETS = {"Blank": "blank", "Seed pixel": "single_pixel", "Keep top half": "top_half",
           "Random example": "top_half"}
"""Preset button -> ``pixelnet.sampling.completion_inputs`` preset (the mask it sets)."""
DEFAULTS = dict(dataset="MNIST digits", architecture="PixelCNN", temperature=1.0, seed=0,
                speed="Fast")
CONCURRENCY = int(os.environ.get("PIXELNET_CONCURRENCY", "4"))
MAX_TEMPERATURE = 5.0


def fail(message: str) -> gr.Error:
    """A user-facing error (shown in the browser, raised to API clients)."""
    return gr.Error(message, print_exception=False)


# ----------------------------------------------------------------------------- inputs

def shape(dataset: str) -> tuple[str, int, int, int, int]:
    """``(key, channels, levels, height, width)`` of a dataset (key or display name)."""
    try:
        ds = dataset_key(dataset)
    except ValueError as e:
        raise fail(str(e)) from None
    info = DATASET_INFO[ds]
    return ds, info.channels, info.levels, info.height, info.width


def examples(dataset: str) -> list[Path]:
    """The example images shipped for ``dataset`` (``demo/examples/{key}_*.png``)."""
    return sorted(EXAMPLES.glob(f"{shape(dataset)[0]}_*.png"))


def image_levels(img, dataset: str, invert_light: bool = False) -> np.ndarray:
    """Any PIL image as the dataset's model input ``(C, H, W)``."""
    _, C, L, H, W = shape(dataset)
    return im.to_levels(img, C, L, H, W, invert_light)


def canvas_levels(canvas: dict | None, dataset: str) -> np.ndarray:
    """The drawing canvas (an ``ImageEditor`` value) as model input; blank when empty."""
    _, C, L, H, W = shape(dataset)
    try:
        img = im.editor_image(canvas)
    except ValueError as e:
        raise fail(f"canvas: {e}") from None
    if img is None:
        return blank(dataset)
    return im.to_levels(img, C, L, H, W)


def canvas_mask(mask_canvas: dict | None, dataset: str) -> np.ndarray:
    """The mask canvas as ``(H, W)`` bool, True = generate (everything when unpainted)."""
    _, _, _, H, W = shape(dataset)
    try:
        m = im.editor_mask(mask_canvas, H, W)
    except ValueError as e:
        raise fail(f"mask: {e}") from None
    return np.ones((H, W), bool) if m is None else m


def blank(dataset: str) -> np.ndarray:
    """An empty image: black for the grayscale datasets, white for emoji."""
    _, C, L, H, W = shape(dataset)
    return np.full((C, H, W), (L - 1) if C == 3 else 0, np.int64)


def canvases(x: np.ndarray, mask: np.ndarray | str, dataset: str) -> tuple[dict, dict]:
    """Values for the drawing canvas and the mask canvas; ``mask`` is ``(H, W)`` bool (True =
    generate) or the name of a ``pixelnet`` completion preset (``blank``, ``single_pixel``,
    ``top_half``)."""
    L = shape(dataset)[2]
    if isinstance(mask, str):
        C, H, W = x.shape
        mask = completion_inputs(mask, C, H, W, torch.from_numpy(x))[1].numpy()
    return im.editor_value(x, L), im.mask_editor_value(x, L, mask)


def apply_preset(preset: str = "Random example", dataset: str = DEFAULTS["dataset"],
                 canvas: dict | None = None, seed: float | None = None) -> tuple[dict, dict]:
    """Set up both canvases: ``Blank`` (generate everything), ``Seed pixel`` (keep the
    first pixel of the drawing), ``Keep top half`` (of the drawing), ``Random example``
    (a shipped image, its top half kept; ``seed`` picks it)."""
    if preset not in PRESETS:
        raise fail(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if preset == "Blank":
        x = blank(dataset)
    elif preset == "Random example":
        files = examples(dataset)
        if not files:
            raise fail(f"no example images for {dataset} in {EXAMPLES}")
        x = image_levels(im.open_image(random.Random(seed).choice(files)), dataset)
    else:
        x = canvas_levels(canvas, dataset)
    return canvases(x, PRESETS[preset], dataset)


def first_example(dataset: str) -> tuple[dict, dict]:
    """The canvases at start and on a dataset change: the first example (blank if none),
    its top half kept."""
    files = examples(dataset)
    x = image_levels(im.open_image(files[0]), dataset) if files else blank(dataset)
    return canvases(x, "top_half", dataset)


def upload(file: str | None, dataset: str = DEFAULTS["dataset"]) -> tuple[dict, dict]:
    """An uploaded image of any size and mode onto the canvas (top half kept).
    Grayscale images on a light background are inverted to the datasets' light-on-dark."""
    if file is None:
        raise fail("no file uploaded")
    path = getattr(file, "name", file)
    try:
        img = im.open_image(path)
    except ValueError as e:
        raise fail(str(e)) from None
    return canvases(image_levels(img, dataset, invert_light=True), "top_half", dataset)


def sync_mask(canvas: dict | None, mask_canvas: dict | None, dataset: str) -> dict:
    """The mask canvas redrawn over the current drawing (its painted area snapped to pixels)."""
    x = canvas_levels(canvas, dataset)
    return im.mask_editor_value(x, shape(dataset)[2], canvas_mask(mask_canvas, dataset))


def preview(canvas: dict | None, mask_canvas: dict | None, dataset: str) -> np.ndarray:
    """The sample panel before a run: the kept pixels, the ones to generate greyed out."""
    x = canvas_levels(canvas, dataset)
    return im.render_frame(x, shape(dataset)[2], canvas_mask(mask_canvas, dataset))


def check_controls(dataset: str, architecture: str, temperature, seed, speed
                   ) -> tuple[str, str, float, int, float]:
    """Validated ``(dataset key, arch key, temperature, seed, pixels per second)``."""
    ds = shape(dataset)[0]
    try:
        arch = arch_key(architecture)
    except ValueError as e:
        raise fail(str(e)) from None
    if arch not in architectures(ds):
        raise fail(f"{ARCH_NAMES[arch]} is not offered for {dataset}; choose one of "
                   f"{', '.join(ARCH_NAMES[a] for a in architectures(ds))}")
    try:
        temperature = float(temperature)
        seed = int(seed) if seed is not None and seed != "" else 0
    except (TypeError, ValueError):
        raise fail(f"temperature must be a number and seed an integer; got {temperature!r}, "
                   f"{seed!r}") from None
    if not 0 <= temperature <= MAX_TEMPERATURE:
        raise fail(f"temperature must be between 0 and {MAX_TEMPERATURE:g}; got {temperature:g}")
    if speed not in SPEEDS:
        raise fail(f"unknown speed {speed!r}; choose one of {', '.join(SPEEDS)}")
    return ds, arch, temperature, seed, SPEEDS[speed]


# ----------------------------------------------------------------------------- a run

@dataclass
class Run:
    """One generation, kept in the session for Inspect: the image, which sub-pixels were
    generated, and the distribution behind every sub-pixel whose distribution is known
    (generated ones as they are drawn; all of them once the run has finished)."""
    dataset: str
    arch: str
    levels: int
    temperature: float
    image: np.ndarray        # (C, H, W) levels
    generated: np.ndarray    # (C, H, W) bool: to be generated
    done: np.ndarray         # (C, H, W) bool: generated so far
    probs: np.ndarray        # (C, H, W, levels) float32
    have: np.ndarray         # (C, H, W) bool: probs known
    finished: bool = False
    nll: float | None = None

    @classmethod
    def start(cls, ds: str, arch: str, x: np.ndarray, mask: np.ndarray, temperature: float,
              levels: int) -> "Run":
        C, H, W = x.shape
        gen = np.broadcast_to(mask, (C, H, W)).copy()
        return cls(ds, arch, levels, temperature, x.copy(), gen, np.zeros_like(gen),
                   np.zeros((C, H, W, levels), np.float32), np.zeros_like(gen))

    def record(self, ev: pixelnet.SampleEvent) -> None:
        """Store one sampling event (the first sample of the batch)."""
        self.image[ev.c, ev.i, ev.j] = int(ev.value[0])
        self.probs[ev.c, ev.i, ev.j] = ev.probs[0].numpy()
        self.have[ev.c, ev.i, ev.j] = self.done[ev.c, ev.i, ev.j] = True

    def pending(self) -> np.ndarray:
        """(H, W): pixels still to be generated."""
        return (self.generated & ~self.done).any(0)

    def frame(self, pos: tuple[int, int] | None) -> np.ndarray:
        return im.render_frame(self.image, self.levels, self.pending(), pos)

    def chart(self, i: int, j: int, current: int | None = None, title: str = ""):
        """The bar chart of pixel ``(i, j)``'s channels (those whose distribution is known)."""
        C = self.image.shape[0]
        dists = [self.probs[c, i, j] if self.have[c, i, j] else None for c in range(C)]
        values = [int(self.image[c, i, j]) if self.have[c, i, j] else None for c in range(C)]
        return im.bar_chart(dists, values, self.levels, current, title)

    def finish(self, model: torch.nn.Module) -> tuple[float, np.ndarray]:
        """NLL of the image (nats) and the entropy map ``(H, W)`` in bits; fills in the
        distributions of the kept pixels from one forward pass (at the run's temperature)."""
        x = torch.from_numpy(self.image)[None]
        with torch.inference_mode():
            self.nll = float(pixelnet.nll(model, x)[0])
            logits = model(x)[0].float()                          # (levels, C, H, W)
        if self.temperature == 0:
            p = torch.nn.functional.one_hot(logits.argmax(0), self.levels).float()
        else:
            p = torch.softmax(logits / self.temperature, 0).permute(1, 2, 3, 0)
        p = p.numpy()
        self.probs[~self.have] = p[~self.have]
        self.have[:] = True
        self.finished = True
        ent = -(p * np.log2(np.where(p > 0, p, 1))).sum(-1).sum(0)
        return self.nll, ent


def inspect_pixel(run: Run | None, i: int, j: int) -> tuple[object, str]:
    """The distribution(s) the model had at pixel ``(i, j)`` of the session's run."""
    if run is None:
        raise fail("generate an image first, then click one of its pixels")
    C, H, W = run.image.shape
    if not (0 <= i < H and 0 <= j < W):
        raise fail(f"pixel ({i}, {j}) is outside the {H}x{W} image")
    names = im.CHANNEL_NAMES.get(C)
    value = ", ".join(f"{names[c]} {int(run.image[c, i, j])}" for c in range(C))
    if not run.have[:, i, j].any():
        return None, f"Pixel ({i}, {j}) has not been generated yet."
    kind = "generated" if run.generated[:, i, j].any() else "kept from your canvas"
    note = "" if run.have[:, i, j].all() else " (the rest once it is sampled)"
    chart = run.chart(i, j, title=f"pixel ({i}, {j}): {kind}")
    return chart, (f"**Pixel ({i}, {j})**, {kind}: value {value}. The bars are the model's "
                   f"softmax there given every earlier pixel, at temperature "
                   f"{run.temperature:g}{note}.")


def inspect_click(run: Run | None, evt: gr.SelectData) -> tuple[object, str]:
    """Inspect the pixel under a click on the generated image."""
    x, y = evt.index[:2]
    return inspect_pixel(run, int(y) // im.SCALE, int(x) // im.SCALE)


class Threaded:
    """Runs an iterator in a thread of its own, handing its items over in batches.

    Gradio resumes a streaming handler in whichever worker thread is free, but a sampler
    switches gradients off (``torch.no_grad``), and grad mode is per thread: so the whole
    sampler lives in one thread. Items travel in batches of ``batch_s`` seconds' worth (one queue hand-off
    per item would cost a GIL switch each, milliseconds). Leaving the loop early (Stop, an
    error, a closed page) stops the thread; so does a consumer idle for ``idle_s``.
    """
    _END = object()

    def __init__(self, make: Callable[[], Iterator], batch_s: float = 0.02, buffer: int = 8,
                 idle_s: float = 300):
        self.make, self.batch_s, self.idle_s = make, batch_s, idle_s
        self.q: queue.Queue = queue.Queue(buffer)
        self.stop = threading.Event()

    def _put(self, item) -> bool:
        waited = 0.0
        while not self.stop.is_set() and waited < self.idle_s:
            try:
                self.q.put(item, timeout=0.2)
                return True
            except queue.Full:
                waited += 0.2
        return False

    def _work(self) -> None:
        batch: list = []
        try:
            stream = self.make()
            try:
                t = time.perf_counter()
                for item in stream:
                    batch.append(item)
                    if time.perf_counter() - t >= self.batch_s:
                        if not self._put(batch):
                            return
                        batch, t = [], time.perf_counter()
            finally:
                getattr(stream, "close", lambda: None)()
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, raised there
            self._put(batch)
            self._put(e)
            return
        self._put(batch)
        self._put(self._END)

    def __iter__(self) -> Iterator:
        threading.Thread(target=self._work, daemon=True, name="pixelnet-sampler").start()
        try:
            while (batch := self.q.get()) is not self._END:
                if isinstance(batch, BaseException):
                    raise batch
                yield from batch
        finally:
            self.stop.set()


class Pacer:
    """Holds a stream to ``rate`` pixels per second (0: no wait) and says when a frame is
    due (at most ``MAX_FPS`` per second, and always the last one)."""

    def __init__(self, rate: float):
        self.rate, self.t0, self.last = rate, time.perf_counter(), -1.0

    def wait(self, pixels: float) -> None:
        if self.rate:
            delay = self.t0 + pixels / self.rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

    def frame_due(self, last_event: bool) -> bool:
        now = time.perf_counter()
        if last_event or now - self.last >= 1 / MAX_FPS:
            self.last = now
            return True
        return False

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


def start_inputs(canvas, mask_canvas, dataset, architecture, temperature, seed, speed):
    """Validate everything a run needs; ``(ds, arch, T, seed, rate, known, mask)``."""
    ds, arch, temperature, seed, rate = check_controls(dataset, architecture, temperature,
                                                        seed, speed)
    return (ds, arch, temperature, seed, rate, canvas_levels(canvas, ds),
            canvas_mask(mask_canvas, ds))


def generate(canvas: dict | None = None, mask: dict | None = None,
             dataset: str = DEFAULTS["dataset"], architecture: str = DEFAULTS["architecture"],
             temperature: float = DEFAULTS["temperature"], seed: float = DEFAULTS["seed"],
             speed: str = DEFAULTS["speed"]) -> Iterator[tuple]:
    """Stream a generation: yields ``(frame, softmax chart, progress, result, entropy map,
    run)`` as the raster scan moves; the last one holds the sample, its NLL and the map."""
    ds, arch, temperature, seed, rate, known, gen = start_inputs(
        canvas, mask, dataset, architecture, temperature, seed, speed)
    model = get_model(ds, arch)
    C, L = known.shape[0], model.cfg.levels
    run = Run.start(ds, arch, known, gen, temperature, L)
    status = describe(model)
    if not gen.any():
        gr.Warning("Nothing to generate: paint the mask canvas where pixels should be "
                   "generated (or pick a preset).")
    yield run.frame(None), None, f"Starting… {status}", "", None, run
    pacer, pos = Pacer(rate), None
    for ev in Threaded(lambda: pixelnet.sample_stream(
            model, 1, torch.from_numpy(known)[None], torch.from_numpy(gen), temperature, seed)):
        run.record(ev)
        pos = (ev.i, ev.j)
        pacer.wait((ev.step + 1) / C)
        if pacer.frame_due(ev.step + 1 == ev.total):
            k, n = ev.step // C + 1, ev.total // C
            channel = f" {im.CHANNEL_NAMES[C][ev.c]}" if C > 1 else ""
            progress = (f"Pixel {k} of {n} at ({ev.i}, {ev.j}){channel} · "
                        f"{k / max(pacer.elapsed(), 1e-6):.0f} pixels/s · {status}")
            chart = run.chart(ev.i, ev.j, ev.c, f"pixel ({ev.i}, {ev.j}): softmax over {L} "
                                                f"levels, sampled value in red")
            yield run.frame(pos), chart, progress, gr.skip(), gr.skip(), run
    nats, ent = run.finish(model)
    result = (f"**NLL of this sample: {nats:.2f} nats** "
              f"({pixelnet.bits_per_dim(nats, known.size):.3f} bits/dim) under {ARCH_NAMES[arch]}; "
              f"{int(gen.sum())} of {gen.size} pixels generated in {pacer.elapsed():.1f} s. "
              f"Uncertainty map: entropy per pixel, 0 (black) to {ent.max():.2f} bits (yellow). "
              "Click any pixel to inspect it.")
    chart = run.chart(*pos, title=f"last pixel ({pos[0]}, {pos[1]})") if pos else None
    yield run.frame(None), chart, f"Done. {status}", result, im.heatmap(ent), run


def compare(canvas: dict | None = None, mask: dict | None = None,
            dataset: str = DEFAULTS["dataset"], temperature: float = DEFAULTS["temperature"],
            seed: float = DEFAULTS["seed"], speed: str = DEFAULTS["speed"]) -> Iterator[tuple]:
    """The same canvas, mask and seed through every architecture, side by side: yields
    ``(frame, table)``; the table ends with each model's NLL and sampling time."""
    ds = shape(dataset)[0]
    archs = architectures(ds)
    ds, _, temperature, seed, rate, known, gen = start_inputs(
        canvas, mask, ds, archs[0], temperature, seed, speed)
    models = {a: get_model(ds, a) for a in archs}
    L, C = models[archs[0]].cfg.levels, known.shape[0]
    runs = {a: Run.start(ds, a, known, gen, temperature, L) for a in archs}
    spent = dict.fromkeys(archs, 0.0)
    pos: dict[str, tuple[int, int] | None] = dict.fromkeys(archs)
    labels = [ARCH_NAMES[a] for a in archs]

    def frame() -> np.ndarray:
        return im.side_by_side([runs[a].frame(pos[a]) for a in archs], labels)

    def lockstep() -> Iterator[list[tuple[str, pixelnet.SampleEvent, float]]]:
        """One event of every model per item, with the seconds each took."""
        streams = {a: pixelnet.sample_stream(m, 1, torch.from_numpy(known)[None],
                                             torch.from_numpy(gen), temperature, seed)
                   for a, m in models.items()}
        while True:
            step = []
            for a, s in streams.items():
                t = time.perf_counter()
                ev = next(s, None)
                if ev is not None:
                    step.append((a, ev, time.perf_counter() - t))
            if not step:
                return
            yield step

    pacer, total = Pacer(rate), int(gen.sum()) * C
    for step, events in enumerate(Threaded(lockstep), 1):
        for a, ev, dt in events:
            runs[a].record(ev)
            pos[a], spent[a] = (ev.i, ev.j), spent[a] + dt
        pacer.wait(step / C)
        if pacer.frame_due(step == total):
            yield frame(), f"Pixel {-(-step // C)} of {total // C}…"
    rows = ["| Architecture | NLL (nats) | bits/dim | sampling time | model |", "|---|---|---|---|---|"]
    for a in archs:
        nats, _ = runs[a].finish(models[a])
        trained = describe(models[a]).split(": ", 1)[1]
        rows.append(f"| {ARCH_NAMES[a]} | {nats:.2f} | {pixelnet.bits_per_dim(nats, known.size):.3f}"
                    f" | {spent[a]:.2f} s | {trained} |")
    for a in archs:
        pos[a] = None
    yield frame(), "\n".join(rows)


def stopped(progress: str | None) -> str:
    """The progress line after Stop."""
    progress = progress or ""
    return progress if "stopped" in progress or progress.startswith("Done") else \
        f"⏹ Stopped. {progress}"


def model_status(dataset: str, architecture: str) -> str:
    """The status line of the chosen model (trained or not)."""
    try:
        return describe(get_model(dataset, architecture))
    except ValueError as e:
        return f"⚠️ {e}"


def change_dataset(dataset: str, architecture: str):
    """New dataset: its first example with the bottom half to complete, its architectures."""
    archs = [ARCH_NAMES[a] for a in architectures(dataset)]
    arch = architecture if architecture in archs else archs[0]
    c, m = first_example(dataset)
    return c, m, gr.update(choices=archs, value=arch), model_status(dataset, arch), \
        im.bar_chart([None] * shape(dataset)[1], [None] * shape(dataset)[1], shape(dataset)[2])


# ----------------------------------------------------------------------------- the UI

CSS = """
.pixelated img, .pixelated canvas { image-rendering: pixelated; }
#progress { min-height: 2.5em; }
"""
INTRO = """# PixelNet: watch a PixelRNN draw
Draw on the left canvas, paint the **mask** (red = *regenerate here*, the rest is kept), pick a
model and press **Generate**: the network fills the masked pixels in raster order, one
(sub-)pixel at a time, each drawn from the softmax shown on the right.
Click any pixel of the result to see the distribution the model had there. Paper:
*Pixel Recurrent Neural Networks*, van den Oord et al., ICML 2016."""


def cache_images_atomically() -> None:
    """Make Gradio write each cached image file once, atomically.

    Gradio names a cached image after a hash of its bytes but rewrites the file every time
    the same image is sent again (a repeated frame, an unchanged canvas background); a browser
    still loading the previous copy then gets a truncated file. Same name means same bytes,
    so an existing file is left alone, and a new one appears by an atomic rename."""
    if getattr(processing_utils.save_pil_to_cache, "atomic", False):
        return

    def save_pil_to_cache(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
        data = processing_utils.encode_pil_to_bytes(img, format)
        folder = Path(cache_dir) / processing_utils.hash_bytes(data)
        folder.mkdir(exist_ok=True, parents=True)
        path = (folder / f"{name}.{format}").resolve()
        if not path.is_file():
            tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return str(path)

    save_pil_to_cache.atomic = True
    processing_utils.save_pil_to_cache = save_pil_to_cache


def build_app() -> gr.Blocks:
    """The Gradio Blocks app (not launched)."""
    cache_images_atomically()
    ds0 = DEFAULTS["dataset"]
    canvas0, mask0 = first_example(ds0)
    C0, L0 = shape(ds0)[1:3]
    size = (DATASET_INFO[dataset_key(ds0)].width * im.SCALE,) * 2
    gray_brush = gr.Brush(colors=["#ffffff", "#808080", "#000000"], default_size=12,
                          color_mode="defaults")
    with gr.Blocks(title="PixelNet") as demo:
        run_state = gr.State(None)
        gr.Markdown(INTRO)
        with gr.Tab("Generate"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=1, min_width=300):
                    canvas = gr.ImageEditor(
                        canvas0, label="Canvas",
                        type="pil", image_mode="RGBA", sources=[], format="png",
                        brush=gray_brush, eraser=gr.Eraser(default_size=12),
                        canvas_size=size, layers=False, transforms=[],
                        elem_id="canvas", elem_classes="pixelated", height=380)
                    with gr.Row():
                        preset_btns = {p: gr.Button(p, size="sm", elem_id=f"preset-{k}")
                                       for k, p in enumerate(PRESETS)}
                    upload_btn = gr.UploadButton("Upload an image (any size)", file_count="single",
                                                 size="sm")
                with gr.Column(scale=1, min_width=300):
                    mask_canvas = gr.ImageEditor(
                        mask0, label="Mask (red = generate)",
                        type="pil", image_mode="RGBA", sources=[], format="png",
                        brush=gr.Brush(colors=[("#ff2828", 0.55)], default_size=14,
                                       color_mode="fixed"),
                        eraser=gr.Eraser(default_size=14), canvas_size=size, layers=False,
                        transforms=[], elem_id="mask", elem_classes="pixelated", height=380)
                    with gr.Row():
                        dataset = gr.Dropdown(list(DATASETS), value=ds0, label="Dataset", elem_id="dataset")
                        architecture = gr.Dropdown(
                            [ARCH_NAMES[a] for a in architectures(ds0)],
                            value=DEFAULTS["architecture"], label="Architecture", elem_id="arch")
                    with gr.Row():
                        temperature = gr.Slider(0, 2, DEFAULTS["temperature"], step=0.05,
                                                label="Temperature (0 = most likely value)")
                        seed = gr.Number(DEFAULTS["seed"], precision=0, label="Seed")
                    speed = gr.Radio(list(SPEEDS), value=DEFAULTS["speed"],
                                     label="Animation speed (Slow 20, Medium 80, Fast 300 "
                                           "pixels/s; Max: as fast as it samples)")
                    status = gr.Markdown(model_status(ds0, DEFAULTS["architecture"]))
                with gr.Column(scale=1, min_width=320):
                    frame = gr.Image(preview(canvas0, mask0, ds0),
                                     label="Sample", type="numpy",
                                     format="png", interactive=False, elem_id="frame",
                                     elem_classes="pixelated", height=380)
                    with gr.Row():
                        go = gr.Button("Generate", variant="primary", elem_id="generate")
                        stop = gr.Button("Stop", variant="stop", elem_id="stop")
                    progress = gr.Markdown("", elem_id="progress", label="progress")
            with gr.Row(equal_height=False):
                chart = gr.Image(im.bar_chart([None] * C0, [None] * C0, L0), type="pil",
                                 format="png", show_label=False, interactive=False,
                                 elem_id="chart", scale=2, label="softmax")
                entropy = gr.Image(None, type="numpy", format="png", interactive=False,
                                   label="Uncertainty (entropy)", elem_classes="pixelated",
                                   elem_id="entropy", height=300, scale=1)
            result = gr.Markdown("", elem_id="result", label="result")
            with gr.Row(equal_height=False):
                inspect_chart = gr.Image(None, type="pil", format="png", interactive=False,
                                         show_label=False, scale=2, elem_id="inspect")
                inspect_text = gr.Markdown("**Inspect**: click a pixel of the sample to see "
                                           "the distribution the model had there.")
        with gr.Tab("Compare"):
            gr.Markdown("The canvas, mask and seed of the Generate tab through **every "
                        "architecture** at once, with each one's NLL and sampling time.")
            compare_btn = gr.Button("Compare all architectures", variant="primary",
                                    elem_id="compare")
            compare_img = gr.Image(None, type="numpy", format="png", interactive=False,
                                   label="side by side", show_label=False,
                                   elem_classes="pixelated")
            compare_table = gr.Markdown("", label="table", elem_id="compare-table")
        with gr.Tab("Explain"):
            explain_tab()

        controls = [dataset, architecture, temperature, seed, speed]
        gen_evt = go.click(generate, [canvas, mask_canvas, *controls],
                           [frame, chart, progress, result, entropy, run_state],
                           api_name="generate", concurrency_limit=CONCURRENCY,
                           concurrency_id="sampler")
        cmp_evt = compare_btn.click(compare, [canvas, mask_canvas, dataset, temperature, seed, speed],
                                    [compare_img, compare_table], api_name="compare",
                                    concurrency_id="sampler")
        stop.click(None, cancels=[gen_evt, cmp_evt]).then(
            stopped, progress, progress, api_visibility="private")
        previewed = dict(fn=preview, inputs=[canvas, mask_canvas, dataset], outputs=frame,
                         api_visibility="private")
        for name, btn in preset_btns.items():
            btn.click(partial(apply_preset, name), [dataset, canvas, seed], [canvas, mask_canvas],
                      api_visibility="private").success(**previewed)
        upload_btn.upload(upload, [upload_btn, dataset], [canvas, mask_canvas],
                          api_name="upload").success(**previewed)
        canvas.input(sync_mask, [canvas, mask_canvas, dataset], mask_canvas,
                      api_visibility="private", trigger_mode="always_last")
        dataset.input(change_dataset, [dataset, architecture],
                      [canvas, mask_canvas, architecture, status, chart],
                      api_visibility="private").success(**previewed)
        architecture.input(model_status, [dataset, architecture], status, api_visibility="private")
        frame.select(inspect_click, run_state, [inspect_chart, inspect_text],
                     api_visibility="private")
        demo.load(model_status, [dataset, architecture], status, api_visibility="private")
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=64)
    return demo


def explain_tab() -> None:
    """The Explain tab's content from ``demo/explain_tab.py`` (written separately): a note
    instead when that file is missing or fails to build, so the rest of the app still runs."""
    try:
        from demo.explain_tab import build_explain_tab
        build_explain_tab()
    except Exception as e:  # noqa: BLE001 - the other tabs must survive a broken Explain tab
        if isinstance(e, ModuleNotFoundError) and e.name == "demo.explain_tab":
            gr.Markdown("The Explain views are not installed in this version.")
            return
        traceback.print_exc()
        gr.Markdown(f"⚠️ The Explain tab failed to load: `{type(e).__name__}: {e}`")


THEME = gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"],
                       font_mono=["ui-monospace", "monospace"])   # no web fonts: works offline


def serve(port: int | None = None, host: str | None = None, block: bool = True) -> gr.Blocks:
    """Build and launch the app on ``host`` (``$GRADIO_SERVER_NAME`` or 0.0.0.0) and ``port``
    (``$GRADIO_SERVER_PORT`` or 7860). ``block=False`` returns at once with the app running
    (its address in ``.local_url``; ``.close()`` stops it)."""
    demo = build_app()
    demo.launch(server_name=host or os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"),
                server_port=port or int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                theme=THEME, css=CSS, show_error=True, prevent_thread_lock=not block,
                quiet=not block)
    return demo


def main() -> None:
    """``python demo/app.py``: serve until interrupted (one torch thread per sampler: small
    matrix products gain nothing from more, and several users share the cores)."""
    torch.set_num_threads(int(os.environ.get("PIXELNET_TORCH_THREADS", "1")))
    serve()


if __name__ == "__main__":
    main()
