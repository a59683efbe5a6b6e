"""PixelNet app: draw or mask pixels, pick an architecture, watch a PixelRNN/PixelCNN fill
them in pixel by pixel, with the softmax behind every pixel.

    python demo/app.py            # http://0.0.0.0:7860 (or $GRADIO_SERVER_PORT)

Named API endpoints (``gradio_client``; every input has a default):
``/generate`` and ``/compare`` stream frames; ``/upload`` turns an image file into canvases.
See README.md, "The app's API" and "Serving a classroom".

The handlers are plain functions (tested directly in ``tests/test_app.py``); ``build_app``
wires them to the UI. Sampling goes through ``demo/batcher.py``: one worker per model steps
every user's run of that model together as one batch, ahead of the animation; a handler
only reveals its run's sub-pixels at the animation speed and renders frames, at a rate that
shrinks as more people watch (``FRAME_CPU``). The app keeps no state outside its process.
"""
from __future__ import annotations

import io
import math
import os
import random
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:       # `python demo/app.py` (a Space's entry point) finds demo/
    sys.path.insert(0, str(REPO))

import gradio as gr  # noqa: E402
from gradio import processing_utils  # noqa: E402

import pixelnet  # noqa: E402
from demo import batcher  # noqa: E402
from demo import imaging as im  # noqa: E402
from demo.components import (MAX_SEED, MAX_TEMPERATURE, fail, image_input,  # noqa: E402
                             parse_seed, parse_temperature, raw)
from demo.registry import (ARCH_NAMES, DATASET_INFO, DATASETS, architectures, arch_key,  # noqa: E402
                           class_names, dataset_key, describe, get_model, title, training)
from pixelnet.sampling import completion_inputs  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent / "examples"
SPEEDS: dict[str, float] = {"Slow": 20, "Medium": 80, "Fast": 300, "Max": 0}
"""Animation speed -> pixels per second (0: as fast as the sampler goes)."""
MAX_FPS = 15                        # frames per second to one viewer, at most
MIN_FPS = 1                         # ... and at least, however many watch
FRAME_CPU = float(os.environ.get("PIXELNET_FRAME_CPU", "0.3"))
"""Cores the server spends on frame updates, shared by everyone watching: each viewer's
frame rate follows from the measured cost of an update. Every core-second spent on frames
is also a second the samplers wait for Python's GIL (measured: a batch of 16 took 0.5 s
alone and 2.9 s beside 8 threads busy 10% of the time), so this is kept small."""
UPDATE_S = 0.008
"""Seconds of CPU Gradio spends on one streamed update besides our rendering and encoding
(postprocessing, the message, the file; measured: 13.5 ms per update in all, 5 of them ours)."""
CHART_EVERY_ABOVE = 4               # more viewers than this: the softmax chart on every 3rd frame
PRESETS = {"Blank": "blank", "Seed pixel": "single_pixel", "Keep top half": "top_half",
           "Random example": "top_half"}
"""Preset button -> ``pixelnet.sampling.completion_inputs`` preset (the mask it sets)."""
ANY = "Any"
"""The class control's "no class" choice (an unconditional sample)."""
DEFAULTS = dict(dataset="MNIST digits", architecture=ARCH_NAMES[pixelnet.ARCHITECTURES[0]],
                temperature=1.0, seed=0, speed="Fast", label=ANY, samples=1)
SAMPLES = (1, 4, 9)
"""How many completions of the same input one run may draw (a 1x1, 2x2 or 3x3 grid)."""
CONCURRENCY = int(os.environ.get("PIXELNET_CONCURRENCY", "64"))
"""Runs streaming at once (their handlers mostly wait: the samplers do the work)."""
QUEUE_SIZE = int(os.environ.get("PIXELNET_QUEUE", "128"))
SESSIONS = int(os.environ.get("PIXELNET_SESSIONS", "256"))
"""Sessions whose state (the last run, for Inspect) is kept; Gradio's default, 10,000,
would let about 0.4 MB per visitor or API call pile up (measured), for hours."""
CACHE_CLEANUP = (300, 900)          # Gradio's cached files: every 5 min, delete those over 15 min


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
    temperature, seed = parse_temperature(temperature), parse_seed(seed)
    if not isinstance(speed, str) or speed not in SPEEDS:
        raise fail(f"unknown speed {speed!r}; choose one of {', '.join(SPEEDS)}")
    return ds, arch, temperature, seed, SPEEDS[speed]


def parse_label(label, model: torch.nn.Module) -> int | None:
    """The class index of ``label`` (a class name of ``model``), None for "Any" (or blank)."""
    if label is None or label == "" or label == ANY:
        return None
    names = class_names(model)
    if not names:
        raise fail(f"{title(model)} has no classes here (its checkpoint is not "
                   f"class-conditional); use label {ANY!r}")
    if not isinstance(label, str) or label not in names:
        raise fail(f"unknown label {label!r} for {title(model)}; choose one of {ANY}, "
                   f"{', '.join(names)}")
    return names.index(label)


def parse_samples(samples) -> int:
    """The samples control: 1, 4 or 9 (blank: 1)."""
    if samples is None or samples == "":
        return 1
    try:
        n = int(samples) if isinstance(samples, (int, str)) and not isinstance(samples, bool) \
            else None
    except ValueError:
        n = None
    if n not in SAMPLES:
        raise fail(f"samples must be one of {', '.join(map(str, SAMPLES))}; got {samples!r}")
    return n


def label_choices(models: list[torch.nn.Module]) -> tuple[list[str], str]:
    """The class control's choices for ``models`` ("Any", then every class name of the
    class-conditional ones, in order) and its note."""
    names: list[str] = []
    for m in models:
        names += [n for n in class_names(m) if n not in names]
    if not names:
        return [ANY], "This model has no classes (its checkpoint is not class-conditional)."
    return [ANY, *names], "Any: no class. A class: the model draws that class."


def label_control(dataset: str, architecture: str | None = None, label: str = ANY) -> dict:
    """The class control for the chosen model (Generate) or, without ``architecture``, for
    every architecture of the dataset (Compare); keeps ``label`` where still offered."""
    try:
        ds = dataset_key(dataset)
        archs = [arch_key(architecture)] if architecture else architectures(ds)
        models = [get_model(ds, a) for a in archs]
    except ValueError:
        models = []
    choices, info = label_choices(models)
    return gr.update(choices=choices, value=label if label in choices else ANY, info=info,
                     interactive=len(choices) > 1)


def load_model(dataset: str, arch: str) -> torch.nn.Module:
    """``get_model``, its errors (a broken checkpoint) as the app's message."""
    try:
        return get_model(dataset, arch)
    except ValueError as e:
        raise fail(f"⚠️ {e}") from None


# ----------------------------------------------------------------------------- a run

@dataclass
class Run:
    """One generation, kept in the session for Inspect: the image, which sub-pixels were
    generated, and the distribution behind every sub-pixel whose distribution is known
    (generated ones as they are revealed; all of them once the run has finished)."""
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
    entropy: np.ndarray | None = None           # (H, W) bits, once finished
    last: tuple[int, int, int] | None = None   # (i, j, c) revealed last

    @classmethod
    def start(cls, ds: str, arch: str, x: np.ndarray, mask: np.ndarray, temperature: float,
              levels: int) -> "Run":
        C, H, W = x.shape
        gen = np.broadcast_to(mask, (C, H, W)).copy()
        return cls(ds, arch, levels, temperature, x.copy(), gen, np.zeros_like(gen),
                   np.zeros((C, H, W, levels), np.float32), np.zeros_like(gen))

    def reveal(self, job: batcher.Job, start: int, stop: int) -> None:
        """Copy the job's own sub-pixels ``start:stop`` (sampled already) into the run."""
        ijc, values, probs = job.reveal(start, stop)
        i, j, c = ijc.T
        self.image[c, i, j] = values
        self.probs[c, i, j] = probs
        self.have[c, i, j] = self.done[c, i, j] = True
        self.last = tuple(int(v) for v in ijc[-1])

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

    def finish(self, result: dict) -> tuple[float, np.ndarray]:
        """Take the scored run (``batcher.Job.result``): the NLL of the image (nats) and the
        entropy map ``(H, W)`` in bits; the distributions of the kept pixels come from the
        batch's forward pass (at the run's temperature)."""
        self.image[:] = result["image"]
        self.probs[~self.have] = result["probs"][~self.have]
        self.have[:], self.done[:] = True, self.generated
        self.finished, self.nll, self.entropy = True, result["nll"], result["entropy"]
        return self.nll, self.entropy


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


def inspect_click(run: Run | list[Run] | None, evt: gr.SelectData) -> tuple[object, str]:
    """Inspect the pixel under a click on the generated image (on a grid of samples, in the
    cell clicked)."""
    x, y = evt.index[:2]
    if not isinstance(run, list):
        return inspect_pixel(run, int(y) // im.SCALE, int(x) // im.SCALE)
    _, H, W = run[0].image.shape
    hit = im.grid_cell(x, y, len(run), H * im.SCALE, W * im.SCALE)
    if hit is None:
        raise fail("click inside one of the samples")
    k, x, y = hit
    chart, text = inspect_pixel(run[k], int(y) // im.SCALE, int(x) // im.SCALE)
    return chart, f"Sample {k + 1}: {text}"


class Viewers:
    """How many runs are streaming frames now, and what a frame costs. Frames cost CPU
    (rendering the image and the softmax chart, PNG encoding, writing the files) that the
    samplers need too, so each viewer's frame rate is ``FRAME_CPU`` cores' worth of frames
    shared among the viewers, between ``MIN_FPS`` and ``MAX_FPS``. The cost of a frame is
    measured as the app runs (:meth:`spent`; a moving average per 20 frames)."""

    def __init__(self, cost: float = 0.01):
        self.n, self._lock = 0, threading.Lock()
        self.cost = cost                  # seconds of CPU per frame we render and encode
        self._frames, self._seconds = 0, 0.0

    def spent(self, seconds: float, frames: int = 0) -> None:
        """Add ``seconds`` spent on frames (and ``frames`` frames rendered)."""
        with self._lock:
            self._seconds += seconds
            self._frames += frames
            if self._frames >= 20:
                self.cost = 0.5 * self.cost + 0.5 * self._seconds / self._frames
                self._frames, self._seconds = 0, 0.0

    @contextmanager
    def watching(self) -> Iterator[None]:
        with self._lock:
            self.n += 1
        try:
            yield
        finally:
            with self._lock:
                self.n -= 1

    def fps(self) -> float:
        return min(MAX_FPS, max(MIN_FPS, FRAME_CPU / (max(1, self.n) * (self.cost + UPDATE_S))))

    def chart_every(self) -> int:
        """Frames per softmax chart (the chart costs about three frames to draw)."""
        return 1 if self.n <= CHART_EVERY_ABOVE else 3


VIEWERS = Viewers()


def follow(jobs: list[batcher.Job], runs: list[Run], rate: float) -> Iterator[int]:
    """Reveal the jobs' sampled sub-pixels into their runs at ``rate`` pixels per second (0:
    as soon as they are sampled), from the moment sampling starts. Yields the frame number
    whenever a frame is due (at ``VIEWERS.fps()``) and something changed; returns once every
    job is sampled and scored, its runs finished. A batch's error is the app's message."""
    try:
        yield from _follow(jobs, runs, rate)
    except Exception as e:  # noqa: BLE001 - the user sees the app's message, not a traceback
        raise fail(f"sampling failed ({type(e).__name__}: {e}); please try again") from e


def _follow(jobs: list[batcher.Job], runs: list[Run], rate: float) -> Iterator[int]:
    C = runs[0].image.shape[0]
    shown = [0] * len(jobs)
    t0, last, frames = None, -math.inf, 0
    while True:
        for job in jobs:
            job.check()
        if t0 is None and any(job.started() for job in jobs):
            t0 = time.perf_counter()
        allowed = math.inf if not rate or t0 is None else (time.perf_counter() - t0) * rate * C
        changed = False
        for k, (job, run) in enumerate(zip(jobs, runs)):
            target = int(min(job.available(), allowed))
            if target > shown[k]:
                run.reveal(job, shown[k], target)
                shown[k], changed = target, True
        waiting = [job for k, job in enumerate(jobs) if shown[k] < job.total or not job.scored()]
        if not waiting:
            for job, run in zip(jobs, runs):
                run.finish(job.result())
            return
        now = time.perf_counter()
        due = last + 1 / VIEWERS.fps()
        if changed and now >= due:
            last, frames = now, frames + 1
            yield frames
            continue
        # sleep until the next frame is due, or the sampler has finished (a prompt last frame)
        job = waiting[0]
        timeout = max(due - time.perf_counter(), 0.01)
        if shown[jobs.index(job)] >= job.total:
            job.wait(job.total, timeout)                # being scored
        elif job.available() < job.total:
            job.wait(job.total - 1, timeout)            # being sampled
        else:
            time.sleep(timeout)                         # sampled: the animation paces


def start_inputs(canvas, mask_canvas, dataset, architecture, temperature, seed, speed):
    """Validate everything a run needs; ``(ds, arch, T, seed, rate, known, mask)``."""
    ds, arch, temperature, seed, rate = check_controls(dataset, architecture, temperature,
                                                        seed, speed)
    return (ds, arch, temperature, seed, rate, canvas_levels(canvas, ds),
            canvas_mask(mask_canvas, ds))


def generate(canvas: dict | None = None, mask: dict | None = None,
             dataset: str = DEFAULTS["dataset"], architecture: str = DEFAULTS["architecture"],
             temperature: float = DEFAULTS["temperature"], seed: float = DEFAULTS["seed"],
             speed: str = DEFAULTS["speed"], label: str = DEFAULTS["label"],
             samples: int = DEFAULTS["samples"]) -> Iterator[tuple]:
    """Stream a generation: yields ``(frame, softmax chart, progress, result, entropy map,
    run)`` as the raster scan moves; the last one holds the sample, its NLL and the map.
    ``label``: "Any" or one of a class-conditional model's class names. ``samples`` (1, 4
    or 9): completions of the same input, seeds ``seed, seed + 1, ...``, sampled as one
    batch and shown as a grid (the frame, the entropy map); ``run`` is then the list of
    runs, and the chart and progress follow the first."""
    ds, arch, temperature, seed, rate, known, gen = start_inputs(
        canvas, mask, dataset, architecture, temperature, seed, speed)
    count = parse_samples(samples)
    model = load_model(ds, arch)
    y = parse_label(label, model)
    C, L = known.shape[0], model.cfg.levels
    runs = [Run.start(ds, arch, known, gen, temperature, L) for _ in range(count)]
    run, state = runs[0], (runs[0] if count == 1 else runs)
    status = describe(model)
    if not gen.any():
        gr.Warning("Nothing to generate: paint the mask canvas where pixels should be "
                   "generated (or pick a preset).")
    jobs = [batcher.Job(model, known, gen, temperature, (seed + k) % MAX_SEED, y)
            for k in range(count)]
    job = jobs[0]
    batcher.submit(jobs)
    t0 = time.perf_counter()

    def frame(pos):
        return im.grid([r.frame(pos) for r in runs])

    try:
        with VIEWERS.watching():
            yield frame(None), None, f"Starting… {status}", "", None, state
            n = job.total // C
            for frame_no in follow(jobs, runs, rate):
                i, j, c = run.last
                k = int(run.done.sum()) // C
                channel = f" {im.CHANNEL_NAMES[C][c]}" if C > 1 else ""
                progress = (f"Pixel {k} of {n} at ({i}, {j}){channel} · "
                            f"{k / max(time.perf_counter() - t0, 1e-6):.0f} pixels/s · {status}")
                t = time.thread_time()
                chart = gr.skip()
                if frame_no % VIEWERS.chart_every() == 1 or VIEWERS.chart_every() == 1:
                    chart = run.chart(i, j, c, f"pixel ({i}, {j}): softmax over {L} levels, "
                                               "sampled value in red")
                image = frame((i, j))
                VIEWERS.spent(time.thread_time() - t, count)
                yield image, chart, progress, gr.skip(), gr.skip(), state
    finally:
        for jb in jobs:
            jb.cancel()               # Stop or a closed page: the rest of the batch goes on
    nats, ent = run.nll, run.entropy
    seconds = time.perf_counter() - t0
    many = "" if count == 1 else (
        f"**NLL of the {count} samples (seeds {seed} to {seed + count - 1}):** "
        f"{', '.join(f'{r.nll:.2f}' for r in runs)} nats. The first: ")
    result = (f"{many}**NLL of this sample: {nats:.2f} nats** "
              f"({pixelnet.bits_per_dim(nats, known.size):.3f} bits/dim) under {ARCH_NAMES[arch]}"
              f"{'' if y is None else f' given class {label}'}; "
              f"{int(gen.sum())} of {gen.size} pixels generated in {seconds:.1f} s. "
              f"Uncertainty map: entropy per pixel, 0 (black) to "
              f"{max(float(r.entropy.max()) for r in runs):.2f} bits (yellow). "
              "Click any pixel to inspect it.")
    pos = run.last[:2] if run.last else None
    chart = run.chart(*pos, title=f"last pixel ({pos[0]}, {pos[1]})") if pos else None
    ents = [im.heatmap(r.entropy, vmax=max(float(q.entropy.max()) for q in runs)) for r in runs]
    yield frame(None), chart, f"Done. {status}", result, im.grid(ents), state


def compare(canvas: dict | None = None, mask: dict | None = None,
            dataset: str = DEFAULTS["dataset"], temperature: float = DEFAULTS["temperature"],
            seed: float = DEFAULTS["seed"], speed: str = DEFAULTS["speed"],
            label: str = DEFAULTS["label"]) -> Iterator[tuple]:
    """The same canvas, mask and seed through every architecture, side by side (the API's
    ``/compare``): yields ``(frame, table)``, the frames in one image with their names above;
    the table ends with each model's NLL and sampling time (that of the batch its run was
    sampled in, with other users' runs of the same model)."""
    for archs, frames, table in compare_stream(canvas, mask, dataset, temperature, seed, speed,
                                               label):
        yield im.side_by_side(frames, [ARCH_NAMES[a] for a in archs]), table


def compare_panels(canvas: dict | None = None, mask: dict | None = None,
                   dataset: str = DEFAULTS["dataset"], temperature: float = DEFAULTS["temperature"],
                   seed: float = DEFAULTS["seed"], speed: str = DEFAULTS["speed"],
                   label: str = DEFAULTS["label"]) -> Iterator[tuple]:
    """Compare in the UI: one image per architecture of ``pixelnet.ARCHITECTURES`` (its name
    is the component's label; those not offered for the dataset hidden), then the table."""
    for archs, frames, table in compare_stream(canvas, mask, dataset, temperature, seed, speed,
                                               label):
        shown = dict(zip(archs, frames))
        yield (*(gr.update(value=shown[a], visible=True) if a in shown else
                 gr.update(visible=False) for a in pixelnet.ARCHITECTURES), table)


def compare_stream(canvas, mask, dataset, temperature, seed, speed, label
                   ) -> Iterator[tuple[list[str], list[np.ndarray], str]]:
    """Run every architecture of ``dataset`` on the same input: yields ``(architecture keys,
    their frames, progress or the final table)``. Stop or a closed page cancels every run
    (the batcher's per-run cancel; the other users' runs go on)."""
    ds = shape(dataset)[0]
    archs = architectures(ds)
    ds, _, temperature, seed, rate, known, gen = start_inputs(
        canvas, mask, ds, archs[0], temperature, seed, speed)
    models = {a: load_model(ds, a) for a in archs}
    ys = compare_labels(label, [models[a] for a in archs])
    L, C = models[archs[0]].cfg.levels, known.shape[0]
    runs = [Run.start(ds, a, known, gen, temperature, L) for a in archs]
    jobs = [batcher.Job(models[a], known, gen, temperature, seed, y) for a, y in zip(archs, ys)]
    batcher.submit(jobs)
    try:
        with VIEWERS.watching():
            for _ in follow(jobs, runs, rate):
                k = max(int(r.done.sum()) for r in runs) // C
                t = time.thread_time()
                frames = [r.frame(r.last[:2] if r.last else None) for r in runs]
                VIEWERS.spent(time.thread_time() - t, 1)
                yield archs, frames, f"Pixel {k} of {jobs[0].total // C}…"
    finally:
        for job in jobs:
            if not job.scored():
                job.cancel()          # Stop or a closed page
    rows = ["| Architecture | class | NLL (nats) | bits/dim | sampling time (batch) | model |",
            "|---|---|---|---|---|---|"]
    for a, run, job, y in zip(archs, runs, jobs, ys):
        res = job.result()
        cls = label if y is not None else (ANY if class_names(models[a]) or label == ANY
                                           else f"{ANY} (no classes)")
        rows.append(f"| {ARCH_NAMES[a]} | {cls} | {run.nll:.2f} | "
                    f"{pixelnet.bits_per_dim(run.nll, known.size):.3f} | {res['seconds']:.2f} s "
                    f"({res['batch_size']} run{'s' if res['batch_size'] > 1 else ''}) | "
                    f"{title(models[a])}: {training(models[a])} |")
    yield archs, [r.frame(None) for r in runs], "\n".join(rows)


def compare_labels(label, models: list[torch.nn.Module]) -> list[int | None]:
    """Each model's class index for ``label`` in Compare: the class for the
    class-conditional models, None (no class) for the others; the app's message when no
    model knows the label."""
    if label is None or label == "" or label == ANY:
        return [None] * len(models)
    if not any(isinstance(label, str) and label in class_names(m) for m in models):
        choices = label_choices(models)[0]
        raise fail(f"unknown label {label!r}; choose one of {', '.join(choices)}"
                   + ("" if len(choices) > 1 else " (no model here is class-conditional)"))
    return [parse_label(label, m) if class_names(m) else None for m in models]


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

EDITOR_H, FRAME_H, CHART_H = 300, 300, 190
"""Pixel heights of the editors, the sample and its softmax chart: at 1280x800 the canvas,
the sample, the chart and Generate fit the first screen, before and during a run; fixed, so
that nothing moves when a run starts or the chart changes."""
CSS = """
.pixelated img, .pixelated canvas { image-rendering: pixelated; }
#progress { min-height: 2.5em; }
#compare-table { min-height: 3.2em; }
#intro h2 { margin: 0 0 0.2em 0; }
#intro p { margin: 0; }
"""
COMPARE_PLACEHOLDER = ("*Nothing compared yet.* Press **Compare all architectures**: each "
                       "panel below fills the Generate tab's mask from the same canvas and seed, "
                       "pixel by pixel, and a table of each model's NLL and sampling time "
                       "appears here.")
INTRO = """## PixelNet: watch a PixelRNN draw
Draw on the canvas, paint the **mask** (red = *generate here*, the rest is kept) and press
**Generate**: the model fills the red pixels in raster order, one (sub-)pixel at a time, each
drawn from the softmax shown under the sample. Click a pixel of the sample to inspect it.
Paper: *Pixel Recurrent Neural Networks*, van den Oord et al., ICML 2016."""


def cache_images_atomically() -> None:
    """Make Gradio write each cached image file once, atomically.

    Gradio names a cached image after a hash of its bytes but rewrites the file every time
    the same image is sent again (a repeated frame, an unchanged canvas background); a browser
    still loading the previous copy then gets a truncated file. Same name means same bytes,
    so an existing file is left alone, and a new one appears by an atomic rename."""
    if getattr(processing_utils.save_pil_to_cache, "atomic", False):
        return

    def save_pil_to_cache(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
        t = time.thread_time()
        try:
            return save(img, cache_dir, name, format)
        finally:
            VIEWERS.spent(time.thread_time() - t)

    def save(img, cache_dir: str, name: str, format: str) -> str:
        data = encode(img, format)
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


def encode(img, format: str) -> bytes:
    """An image's file bytes; PNG at zlib level 1 (a frame or chart in about 2/3 of the
    default level's time, measured; our flat images stay small either way)."""
    if format.lower() != "png":
        return processing_utils.encode_pil_to_bytes(img, format)
    buf = io.BytesIO()
    img.save(buf, "png", compress_level=1, pnginfo=processing_utils.get_pil_metadata(img))
    return buf.getvalue()


def build_app() -> gr.Blocks:
    """The Gradio Blocks app (not launched)."""
    cache_images_atomically()
    ds0 = DEFAULTS["dataset"]
    canvas0, mask0 = first_example(ds0)
    C0, L0 = shape(ds0)[1:3]
    size = (DATASET_INFO[dataset_key(ds0)].width * im.SCALE,) * 2
    gray_brush = gr.Brush(colors=["#ffffff", "#808080", "#000000"], default_size=12,
                          color_mode="defaults")
    with gr.Blocks(title="PixelNet", delete_cache=CACHE_CLEANUP) as demo:
        run_state = gr.State(None)
        gr.Markdown(INTRO, elem_id="intro")
        with gr.Tab("Generate"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=1, min_width=300):
                    canvas = image_input(
                        canvas0, label="Canvas",
                        type="pil", image_mode="RGBA", sources=[], format="png",
                        brush=gray_brush, eraser=gr.Eraser(default_size=12),
                        canvas_size=size, layers=False, transforms=[],
                        elem_id="canvas", elem_classes="pixelated", height=EDITOR_H)
                    with gr.Row():
                        preset_btns = {p: gr.Button(p, size="sm", elem_id=f"preset-{k}")
                                       for k, p in enumerate(PRESETS)}
                    upload_btn = gr.UploadButton("Upload an image (any size)", file_count="single",
                                                 size="sm")
                with gr.Column(scale=1, min_width=300):
                    mask_canvas = image_input(
                        mask0, label="Mask (red = generate)",
                        type="pil", image_mode="RGBA", sources=[], format="png",
                        brush=gr.Brush(colors=[("#ff2828", 0.55)], default_size=14,
                                       color_mode="fixed"),
                        eraser=gr.Eraser(default_size=14), canvas_size=size, layers=False,
                        transforms=[], elem_id="mask", elem_classes="pixelated",
                        height=EDITOR_H)
                    with gr.Row():
                        dataset = raw(gr.Dropdown(list(DATASETS), value=ds0, label="Dataset",
                                                  elem_id="dataset"))
                        architecture = raw(gr.Dropdown(
                            [ARCH_NAMES[a] for a in architectures(ds0)],
                            value=DEFAULTS["architecture"], label="Architecture", elem_id="arch"))
                    with gr.Row():
                        temperature = raw(gr.Slider(0, MAX_TEMPERATURE, DEFAULTS["temperature"],
                                                    step=0.05,
                                                    label="Temperature (0 = most likely value)"))
                        seed = raw(gr.Number(DEFAULTS["seed"], precision=0, label="Seed"))
                        label = raw(gr.Dropdown([ANY], value=ANY, label="Class",
                                                elem_id="label", interactive=False))
                    speed = raw(gr.Radio(list(SPEEDS), value=DEFAULTS["speed"],
                                         label="Animation speed (Slow 20, Medium 80, Fast 300 "
                                               "pixels/s; Max: as fast as it samples)"))
                    samples = raw(gr.Radio(list(SAMPLES), value=1, elem_id="samples",
                                           label="Samples (completions of the same input, "
                                                 "as a grid)"))
                    status = gr.Markdown(model_status(ds0, DEFAULTS["architecture"]))
                with gr.Column(scale=1, min_width=320):
                    frame = gr.Image(preview(canvas0, mask0, ds0),
                                     label="Sample", type="numpy",
                                     format="png", interactive=False, elem_id="frame",
                                     elem_classes="pixelated", height=FRAME_H)
                    with gr.Row():
                        go = gr.Button("Generate", variant="primary", elem_id="generate")
                        stop = gr.Button("Stop", variant="stop", elem_id="stop")
                    chart = gr.Image(im.bar_chart([None] * C0, [None] * C0, L0), type="pil",
                                     format="png", show_label=False, interactive=False,
                                     elem_id="chart", label="softmax of the current pixel",
                                     height=CHART_H, buttons=[],
                                     alt_text="bar chart: the model's softmax for the current "
                                              "pixel, the sampled value in red")
                    progress = gr.Markdown("", elem_id="progress", label="progress")
            with gr.Row(equal_height=False):
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
            with gr.Row():
                compare_label = raw(gr.Dropdown([ANY], value=ANY, label="Class",
                                                elem_id="compare-label", interactive=False))
                compare_btn = gr.Button("Compare all architectures", variant="primary",
                                        elem_id="compare")
                compare_stop = gr.Button("Stop", variant="stop", elem_id="compare-stop")
            compare_table = gr.Markdown(COMPARE_PLACEHOLDER, label="table",
                                        elem_id="compare-table")
            with gr.Row(equal_height=True):
                offered = architectures(ds0)
                compare_imgs = [gr.Image(None, type="numpy", format="png", interactive=False,
                                         label=ARCH_NAMES[a], elem_id=f"compare-{a}",
                                         elem_classes="pixelated", height=FRAME_H, buttons=[],
                                         visible=a in offered, min_width=200,
                                         alt_text=f"{ARCH_NAMES[a]}'s completion")
                                for a in pixelnet.ARCHITECTURES]
            compare_img = gr.Image(None, type="numpy", format="png", visible=False,
                                   label="side by side")      # the API's /compare output
        with gr.Tab("Explain"):
            explain_tab()

        controls = [dataset, architecture, temperature, seed, speed, label, samples]
        gen_evt = go.click(generate, [canvas, mask_canvas, *controls],
                           [frame, chart, progress, result, entropy, run_state],
                           api_name="generate", concurrency_id="sampler")
        compare_inputs = [canvas, mask_canvas, dataset, temperature, seed, speed, compare_label]
        cmp_evt = compare_btn.click(compare_panels, compare_inputs, [*compare_imgs, compare_table],
                                    api_visibility="private", concurrency_id="sampler")
        # /compare for API clients, its outputs as before: (side by side, table)
        cmp_api = gr.Button(visible=False).click(compare, compare_inputs,
                                                 [compare_img, compare_table], api_name="compare",
                                                 concurrency_id="sampler")
        stop.click(None, cancels=[gen_evt]).then(
            stopped, progress, progress, api_visibility="private")
        compare_stop.click(None, cancels=[cmp_evt, cmp_api]).then(
            stopped, compare_table, compare_table, api_visibility="private")
        previewed = dict(fn=preview, inputs=[canvas, mask_canvas, dataset], outputs=frame,
                         api_visibility="private")
        for name, btn in preset_btns.items():
            btn.click(partial(apply_preset, name), [dataset, canvas, seed], [canvas, mask_canvas],
                      api_visibility="private").success(**previewed)
        upload_btn.upload(upload, [upload_btn, dataset], [canvas, mask_canvas],
                          api_name="upload").success(**previewed)
        canvas.input(sync_mask, [canvas, mask_canvas, dataset], mask_canvas,
                      api_visibility="private", trigger_mode="always_last")
        ds_evt = dataset.input(change_dataset, [dataset, architecture],
                               [canvas, mask_canvas, architecture, status, chart],
                               api_visibility="private")
        ds_evt.success(**previewed)
        labelled = dict(fn=label_control, inputs=[dataset, architecture, label], outputs=label,
                        api_visibility="private")
        compare_labelled = dict(fn=lambda d, lb: label_control(d, None, lb),
                                inputs=[dataset, compare_label], outputs=compare_label,
                                api_visibility="private")
        ds_evt.success(**labelled)
        ds_evt.success(**compare_labelled)
        ds_evt.success(lambda d: [gr.update(visible=a in architectures(d))
                                  for a in pixelnet.ARCHITECTURES], dataset, compare_imgs,
                       api_visibility="private")
        architecture.input(model_status, [dataset, architecture], status, api_visibility="private")
        architecture.input(**labelled)
        frame.select(inspect_click, run_state, [inspect_chart, inspect_text],
                     api_visibility="private")
        demo.load(model_status, [dataset, architecture], status, api_visibility="private")
        demo.load(**labelled)
        demo.load(**compare_labelled)
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
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
                quiet=not block, max_file_size=im.MAX_INPUT_BYTES, state_session_capacity=SESSIONS,
                max_threads=max(40, CONCURRENCY + 32))
    return demo


def main() -> None:
    """``python demo/app.py``: serve until interrupted (one torch thread: a sampler's small
    matrix products gain nothing from more, and the cores are shared by every model's
    sampler and the frames)."""
    torch.set_num_threads(int(os.environ.get("PIXELNET_TORCH_THREADS", "1")))
    batcher.limit_arenas()
    serve()


if __name__ == "__main__":
    main()
