"""A run of the app: its state (kept in the session for Inspect), the animation that
reveals the batcher's samples into it, and the frame budget shared by everyone watching.

Sampling goes through ``demo/batcher.py``: one worker per model steps every user's run of
that model together as one batch, ahead of the animation; a handler only reveals its run's
sub-pixels at the animation speed and renders frames, at a rate that shrinks as more people
watch (``FRAME_CPU``).
"""
from __future__ import annotations

import io
import math
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import gradio as gr
from gradio import processing_utils

from demo import batcher
from demo import imaging as im
from demo.inputs import fail
from pixelnet.data import dequantize
from pixelnet.explain import generation_rank
from pixelnet.sampling import drawn_from


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


@dataclass
class Run:
    """One generation, kept in the session for Inspect (and read by it during the run): the
    image, which sub-pixels were generated, and the distribution behind every sub-pixel
    whose distribution is known (generated ones as they are revealed; kept ones when asked,
    :meth:`complete_kept`, or all of them once the run has finished)."""
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
    y: int | None = None                        # the class it is drawn for (None: any)
    guidance: float = 1.0                       # how strongly (pixelnet.sample's guidance)
    min_p: float = 0.0                          # the tail never drawn (pixelnet.sample's min_p)
    stopped: bool = False                       # Stop or a closed page before it finished

    @classmethod
    def start(cls, ds: str, arch: str, x: np.ndarray, mask: np.ndarray, temperature: float,
              levels: int, y: int | None = None, guidance: float = 1.0,
              min_p: float = 0.0) -> "Run":
        C, H, W = x.shape
        gen = np.broadcast_to(mask, (C, H, W)).copy()
        return cls(ds, arch, levels, temperature, x.copy(), gen, np.zeros_like(gen),
                   np.zeros((C, H, W, levels), np.float32), np.zeros_like(gen), y=y,
                   guidance=guidance, min_p=min_p)

    def reveal(self, job: batcher.Job, start: int, stop: int) -> None:
        """Copy the job's own sub-pixels ``start:stop`` (sampled already) into the run."""
        ijc, values, probs = job.reveal(start, stop)
        i, j, c = ijc.T
        self.image[c, i, j] = values
        self.probs[c, i, j] = probs
        self.have[c, i, j] = self.done[c, i, j] = True
        self.last = tuple(int(v) for v in ijc[-1])

    def complete_kept(self, model: torch.nn.Module, i: int, j: int) -> None:
        """Fill in the distributions of pixel ``(i, j)``'s kept sub-pixels not known yet that
        can be known: those whose every earlier sub-pixel (in ``model``'s generation order)
        has its value, during the run or after Stop. One forward pass of the image so far (two
        when guided), at the run's temperature, class, guidance and min-p (a finished run
        knows them all already)."""
        todo = ~self.generated[:, i, j] & ~self.have[:, i, j]
        if not todo.any():
            return
        rank = generation_rank(model).numpy()                        # (C, H, W)
        waiting = rank[self.generated & ~self.done]                  # not drawn yet
        ready = todo & (rank[:, i, j] < (waiting.min() if waiting.size else rank.size))
        if not ready.any():
            return                      # an earlier pixel is still to come: not defined yet
        x = torch.from_numpy(self.image.copy())[None]
        y = None if self.y is None else torch.tensor([self.y])
        with torch.no_grad():
            p = batcher.tempered(drawn_from(model, x, y, self.guidance).float(),
                                 torch.tensor([self.temperature]), torch.tensor([self.min_p]))
        p = p[0].movedim(0, -1).numpy()                               # (C, H, W, levels)
        for c in np.nonzero(ready)[0]:
            self.probs[c, i, j], self.have[c, i, j] = p[c, i, j], True

    def pending(self) -> np.ndarray:
        """(H, W): pixels still to be generated."""
        return (self.generated & ~self.done).any(0)

    def frame(self, pos: tuple[int, int] | None) -> np.ndarray:
        """The image so far, upscaled: every model's levels shown as 8-bit values
        (``pixelnet.data.dequantize``), so runs of models of different levels share a look."""
        return im.render_frame(eight_bit(self.image, self.levels), 256, self.pending(), pos)

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


def eight_bit(x: np.ndarray, levels: int) -> np.ndarray:
    """Levels ``[0, levels)`` of a model's image as the 8-bit values they stand for
    (``pixelnet.data.dequantize``: level ``l`` is ``255 l / (levels - 1)``)."""
    if levels == 256:
        return x
    return dequantize(torch.from_numpy(np.asarray(x)), levels).numpy().astype(np.int64)


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


def follow(jobs: list[batcher.Job], runs: list[Run], rate: float,
           stop: Callable[[], bool] = lambda: False) -> Iterator[int]:
    """Reveal the jobs' sampled sub-pixels into their runs at ``rate`` pixels per second (0:
    as soon as they are sampled), from the moment sampling starts. Yields the frame number
    whenever a frame is due (at ``VIEWERS.fps()``) and something changed; returns once every
    job is sampled and scored, its runs finished, or as soon as ``stop()`` is true (its runs
    then not finished). A batch's error is the app's message."""
    try:
        yield from _follow(jobs, runs, rate, stop)
    except Exception as e:  # noqa: BLE001 - the user sees the app's message, not a traceback
        raise fail(f"sampling failed ({type(e).__name__}: {e}); please try again") from e


def _follow(jobs: list[batcher.Job], runs: list[Run], rate: float,
            stop: Callable[[], bool]) -> Iterator[int]:
    C = runs[0].image.shape[0]
    shown = [0] * len(jobs)
    t0, last, frames = None, -math.inf, 0
    while not stop():
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


class Stops:
    """The Stop buttons: when each page's tab last asked its runs to stop. A run of that tab
    started before then ends at its next frame as a generator that simply returns, so that
    the page gets an ordinary last update: the frame as it stands and "Stopped". (Gradio's
    own ``cancels=`` closes the generator between two of its steps and, racing that step, can
    leave an "Error" badge on the outputs.) A run still in Gradio's queue when Stop is
    pressed is not stopped; a closed page still cancels its runs through Gradio."""

    KEEP_S = 3600.0                 # requests older than this are forgotten (bounded memory)

    def __init__(self):
        self._at: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def ask(self, session: str | None, tab: str) -> None:
        """Stop pressed in ``tab`` of the page ``session`` (Gradio's session hash)."""
        if session is None:
            return
        now = time.monotonic()
        with self._lock:
            if len(self._at) > 10_000:
                self._at = {k: t for k, t in self._at.items() if now - t < self.KEEP_S}
            self._at[session, tab] = now

    def asker(self, session: str | None, tab: str) -> Callable[[], bool]:
        """For a run starting now: a function that says whether Stop has been pressed since."""
        t0 = time.monotonic()
        return lambda: self._at.get((session, tab), -math.inf) > t0 if session else False


STOPS = Stops()


def press_stop(tab: str) -> Callable[[gr.Request], None]:
    """The handler of ``tab``'s Stop button (Gradio passes the page's request)."""
    def press(request: gr.Request) -> None:
        STOPS.ask(request.session_hash, tab)
    return press


def stopped_line(k: int, n: int, rest: str = "") -> str:
    """The progress line of a run stopped after ``k`` of its ``n`` pixels."""
    return f"⏹ Stopped at pixel {k} of {n}. {rest}".strip()


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
