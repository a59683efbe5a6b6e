"""One sampler per model, batched across users (continuous batching, as in LLM servers).

Every run (one user's image) is a :class:`Job` with its own canvas, mask, temperature, seed
and label. :func:`submit` queues it at the :class:`Sampler` of its model; the sampler's one
worker thread steps every waiting run of that model together, as one batch, through
``pixelnet.sample_stream``; runs that arrive while a batch is being sampled join the next
one. Each run draws from its own uniforms (``pixelnet.sampling.draw_noise(model, 1,
seed)``), so it gets exactly the image it would get alone, in a batch of any size.

The worker samples at full speed, ahead of the animation, into the batch's arrays, then
scores every image of the batch in one forward pass (NLL, the distributions of the kept
sub-pixels, the entropy map). A viewer (the app's handler, in its own thread) reads what
its run has so far (:meth:`Job.available`, :meth:`Job.reveal`) and paces its frames itself.
:meth:`Job.cancel` (the user's Stop, a closed page) drops one run: the others in its batch
go on; the batch stops early only when every run in it is cancelled.

Why one worker per model: a fast engine's step is thousands of tiny torch calls. One thread
per run made them fight over the GIL (4 runs at once took longer than 4 in a row), while one
batch of 16 costs a fraction of 16 single runs (README speed table). A worker lives while its
model has work, and ends after ``IDLE_S`` seconds without any.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
import time

import numpy as np
import torch
import torch.nn.functional as F

import pixelnet
from pixelnet.sampling import MAX_SAMPLES, conditionals, cut_tail, draw_noise

MAX_BATCH = min(int(os.environ.get("PIXELNET_MAX_BATCH", "32")), MAX_SAMPLES)
"""The most runs stepped together."""
SCORE_CHUNK = 8             # images per forward pass when scoring (bounds the logits' memory)
IDLE_S = 5.0                # a worker without work for this long ends
GATHER_S = float(os.environ.get("PIXELNET_GATHER_S", "0.1"))
"""A batch starts this long after its first run arrived (if the worker is free): a class
pressing Generate together arrives over a fraction of a second, and one batch of all of them
is much cheaper than one run alone followed by a batch of the rest."""
LOG = bool(os.environ.get("PIXELNET_LOG_BATCHES"))   # one line per batch on stderr
NOTIFY_S = 0.02             # viewers are woken at most this often: one wake-up per step would
                            # cost every waiting thread a GIL switch per sub-pixel

_lock = threading.Condition()
"""Guards the samplers and their queues; notified when a batch starts or work arrives."""


class Job:
    """One run: what to generate and, once sampled, what was drawn.

    ``known`` ``(C, H, W)`` int levels, ``gen`` ``(H, W)`` or ``(C, H, W)`` bool (True =
    generate), ``temperature`` >= 0, ``seed`` in ``[0, 2**63)`` (``ValueError`` otherwise,
    from ``draw_noise``), ``y`` a class index or None, ``guidance`` how strongly the class
    is followed and ``min_p`` which unlikely values are never drawn (``pixelnet.sample``'s).
    ``order`` ``(total, 3)`` lists the run's own sub-pixels ``(i, j, c)`` in generation order.
    """

    def __init__(self, model: torch.nn.Module, known: np.ndarray, gen: np.ndarray,
                 temperature: float, seed: int, y: int | None = None, guidance: float = 1.0,
                 min_p: float = 0.0):
        C = model.cfg.channels
        self.model, self.temperature, self.seed, self.y = model, float(temperature), seed, y
        self.guidance, self.min_p = float(guidance), float(min_p)
        self.known = np.asarray(known, np.int64)
        self.gen = np.broadcast_to(np.asarray(gen, bool), self.known.shape).copy()
        self.noise = draw_noise(model, 1, seed)[0]                           # (C, H, W)
        order = [(i, j, c) for i, j in model.generation_order() for c in range(C)
                 if self.gen[c, i, j]]
        self.order = np.array(order, np.int64).reshape(-1, 3)
        self.total = len(order)
        self.batch: Batch | None = None
        self.index = -1                                                      # row in the batch
        self.cancelled = threading.Event()
        self.submitted = time.perf_counter()

    def cancel(self) -> None:
        """Stop this run (its batch goes on for the others)."""
        self.cancelled.set()

    def available(self) -> int:
        """How many of the run's own sub-pixels are sampled (0 before its batch starts)."""
        b = self.batch
        return 0 if b is None else int(b.own_done[self.index])

    def scored(self) -> bool:
        """Sampled and scored: :meth:`result` is ready."""
        b = self.batch
        return b is not None and b.scored

    def started(self) -> bool:
        return self.batch is not None

    def check(self) -> None:
        """Raise the error that stopped the run's batch, if any."""
        if self.batch is not None and self.batch.error is not None:
            raise self.batch.error

    def wait(self, seen: int, timeout: float) -> int:
        """Block until more than ``seen`` own sub-pixels are sampled, the run is scored,
        cancelled or failed, or ``timeout`` seconds have passed; then :meth:`available`."""
        deadline = time.perf_counter() + timeout
        while True:
            self.check()
            k = self.available()
            left = deadline - time.perf_counter()
            if k > seen or self.scored() or left <= 0 or self.cancelled.is_set():
                return k
            b = self.batch
            cond = b.cond if b is not None else _lock
            with cond:
                if self.batch is b:       # not started in between (then it notified already)
                    cond.wait(min(left, 0.25))

    def reveal(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The run's own sub-pixels ``start:stop`` (sampled already): coordinates ``(k, 3)``
        ``(i, j, c)``, values ``(k,)`` and distributions ``(k, levels)``."""
        ijc = self.order[start:stop]
        i, j, c = ijc[:, 0], ijc[:, 1], ijc[:, 2]
        b = self.batch
        return ijc, b.image[self.index, c, i, j], b.probs[self.index, c, i, j]

    def result(self, timeout: float | None = None) -> dict:
        """Wait until scored: ``image`` ``(C, H, W)``, ``probs`` ``(C, H, W, levels)`` (every
        sub-pixel's distribution at the run's temperature), ``nll`` (nats), ``entropy``
        ``(H, W)`` (bits), ``seconds`` (its batch's sampling time), ``batch_size``."""
        deadline = None if timeout is None else time.perf_counter() + timeout
        while True:
            if self.cancelled.is_set():
                raise RuntimeError("the run was stopped")
            self.check()
            if self.scored():
                break
            left = 1.0 if deadline is None else deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"the run did not finish within {timeout} s")
            self.wait(self.total, left)
        b, k = self.batch, self.index
        return dict(image=b.image[k].copy(), probs=b.probs[k].copy(), nll=float(b.nll[k]),
                    entropy=b.entropy[k], seconds=b.sampled - b.started, batch_size=len(b.jobs))


class Batch:
    """Runs sampled together, and everything drawn so far: ``image`` ``(B, C, H, W)`` and
    ``probs`` ``(B, C, H, W, levels)`` (each sub-pixel written once, when drawn), and
    ``own_done`` ``(B,)``, each run's own sub-pixels drawn so far."""

    def __init__(self, jobs: list[Job]):
        cfg = jobs[0].model.cfg
        self.jobs, self.model = jobs, jobs[0].model
        self.image = np.stack([j.known for j in jobs])
        self.probs = np.zeros((len(jobs), cfg.channels, cfg.height, cfg.width, cfg.levels),
                              np.float32)
        self.own_done = np.zeros(len(jobs), np.int64)
        self.nll = np.full(len(jobs), np.nan)
        self.entropy: list[np.ndarray | None] = [None] * len(jobs)
        self.cond = threading.Condition()
        self.error: BaseException | None = None
        self.scored = False
        # (B,) class per run, -1: none; None: no run has one (sampled and scored with it)
        self.y = (torch.tensor([-1 if j.y is None else j.y for j in jobs])
                  if any(j.y is not None for j in jobs) else None)
        self.guidance = torch.tensor([j.guidance for j in jobs], dtype=torch.float64)  # (B,)
        self.min_p = torch.tensor([j.min_p for j in jobs], dtype=torch.float64)        # (B,)
        self.started = self.sampled = time.perf_counter()

    def run(self) -> None:
        """Sample the batch to its end (or until every run in it is cancelled), score it."""
        jobs, y = self.jobs, self.y
        gen = np.stack([j.gen for j in jobs])                                # (B, C, H, W)
        try:
            stream = pixelnet.sample_stream(
                self.model, len(jobs), torch.from_numpy(self.image.copy()), torch.from_numpy(gen),
                torch.tensor([j.temperature for j in jobs], dtype=torch.float64), y=y,
                noise=torch.stack([j.noise for j in jobs]), guidance=self.guidance,
                min_p=self.min_p)
            last = time.perf_counter()
            for ev in stream:
                i, j, c = ev.i, ev.j, ev.c
                self.probs[:, c, i, j] = ev.probs.numpy()
                self.image[:, c, i, j] = ev.value.numpy()
                self.own_done += gen[:, c, i, j]
                if time.perf_counter() - last >= NOTIFY_S:
                    last = time.perf_counter()
                    if all(jb.cancelled.is_set() for jb in jobs):
                        stream.close()
                        break
                    with self.cond:
                        self.cond.notify_all()
            else:
                self.sampled = time.perf_counter()
                self.score(gen)
                self.scored = True
        except Exception as e:  # noqa: BLE001 - handed to every viewer of the batch
            self.error = e
        trim_memory()
        if LOG:
            print(f"batch {self.model.arch} x{len(jobs)}: waited {self.started - min(j.submitted for j in jobs):.2f} s, "
                  f"sampled {self.sampled - self.started:.2f} s, scored "
                  f"{time.perf_counter() - self.sampled:.2f} s", file=sys.stderr, flush=True)
        with self.cond:
            self.cond.notify_all()

    def score(self, gen: np.ndarray) -> None:
        """NLL of every image (under the model, given its class), the distributions of its
        kept sub-pixels (those it would have been drawn from: at its temperature, guidance and
        min-p)
        and its entropy map, from one forward pass per ``SCORE_CHUNK`` images (of twice as
        many where a run is guided: ``pixelnet.sampling.conditionals``)."""
        for s in range(0, len(self.jobs), SCORE_CHUNK):
            rows = slice(s, s + SCORE_CHUNK)
            x = torch.from_numpy(self.image[rows])
            with torch.no_grad():
                y = None if self.y is None else self.y[rows]      # scored given its class
                logits, drawn = conditionals(self.model, x, y, self.guidance[rows])
                logits = logits.float()                                    # (b, L, C, H, W)
                self.nll[rows] = F.cross_entropy(logits, x, reduction="none").flatten(1).sum(1)
                t = torch.tensor([j.temperature for j in self.jobs[rows]])
                p = tempered(drawn.float(), t, self.min_p[rows])
                p = p.movedim(1, -1).numpy()                               # (b, C, H, W, L)
            kept = ~gen[rows]
            self.probs[rows][kept] = p[kept]
            ent = -(p * np.log2(np.where(p > 0, p, 1))).sum(-1).sum(1)     # (b, H, W)
            for k in range(p.shape[0]):
                self.entropy[s + k] = ent[k]


def tempered(logits: torch.Tensor, temperature: torch.Tensor,
             min_p: torch.Tensor | None = None) -> torch.Tensor:
    """The distributions a run samples from: softmax over the levels of ``logits`` ``(b, L, C,
    H, W)`` at each image's ``temperature`` ``(b,)``, without the values under its ``min_p``
    ``(b,)`` (``pixelnet.sampling.cut_tail``; None: none cut); at temperature 0, all on the
    most likely value."""
    t = temperature.reshape(-1, 1, 1, 1, 1)
    p = torch.where(t > 0, torch.softmax(logits / t.clamp(min=1e-12), 1),
                    F.one_hot(logits.argmax(1), logits.shape[1]).movedim(-1, 1).float())
    if min_p is None or not bool((min_p > 0).any()):
        return p
    return cut_tail(p, min_p.reshape(-1, 1, 1, 1, 1).to(p.dtype))


_libc = ctypes.CDLL(ctypes.util.find_library("c")) if sys.platform.startswith("linux") else None


def trim_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's ``malloc_trim``; nothing
    elsewhere). glibc keeps what a batch or an Explain view freed for later, so without this
    the server's RSS only grows (measured: an emoji receptive field left 360 MB behind)."""
    if _libc is not None:
        try:
            _libc.malloc_trim(0)
        except (AttributeError, OSError):     # musl and others have no malloc_trim
            pass


def limit_arenas(n: int = 2) -> None:
    """At most ``n`` glibc malloc arenas for the threads created from now on (the default,
    8 per core, lets each of Gradio's worker threads keep its own heap: the server's RSS
    crept up by about 0.2 MB per run until every thread had one, measured)."""
    if _libc is not None:
        try:
            _libc.mallopt(-8, n)               # M_ARENA_MAX
        except (AttributeError, OSError):
            pass


class Sampler:
    """The queue and worker thread of one model (see the module docstring)."""

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.pending: list[Job] = []
        self.batches: list[int] = []     # the sizes of the last 1000 batches (tests, benchmark)
        self.thread: threading.Thread | None = None

    def _work(self) -> None:
        while True:
            with _lock:
                idle_until = time.perf_counter() + IDLE_S
                while True:
                    self.pending = [j for j in self.pending if not j.cancelled.is_set()]
                    if self.pending:
                        break
                    left = idle_until - time.perf_counter()
                    if left <= 0:                       # idle: this sampler is done
                        self.thread = None
                        if _samplers.get(self.model) is self:
                            del _samplers[self.model]
                        return
                    _lock.wait(left)
                gather = min(j.submitted for j in self.pending) + GATHER_S - time.perf_counter()
                if gather > 0 and len(self.pending) < MAX_BATCH:
                    _lock.wait(gather)          # others may join (submit notifies: re-check)
                    continue
                jobs, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
                batch = Batch(jobs)
                for k, j in enumerate(jobs):
                    j.index, j.batch = k, batch
                self.batches.append(len(jobs))
                del self.batches[:-1000]                # a bounded record
                _lock.notify_all()                      # viewers waiting for a start
            batch.run()


_samplers: dict[torch.nn.Module, Sampler] = {}
"""Model -> its sampler, while that has a worker. Keyed by the model object itself (not its
``id``, which a new model may reuse); a replaced checkpoint's model is dropped once idle."""


def submit(jobs: Job | list[Job]) -> None:
    """Queue runs; runs of one model submitted in one call start in the same batch (up to
    ``MAX_BATCH``)."""
    jobs = [jobs] if isinstance(jobs, Job) else jobs
    with _lock:
        for job in jobs:
            job.submitted = time.perf_counter()
            s = _samplers.get(job.model)
            if s is None:
                s = _samplers[job.model] = Sampler(job.model)
            s.pending.append(job)
            if s.thread is None:
                s.thread = threading.Thread(target=s._work, daemon=True,
                                            name=f"pixelnet-sampler-{job.model.arch}")
                s.thread.start()
        _lock.notify_all()


def sampler(model: torch.nn.Module) -> Sampler | None:
    """The live sampler of ``model`` (None when it has had no work for ``IDLE_S``)."""
    with _lock:
        return _samplers.get(model)


def run(model: torch.nn.Module, known: np.ndarray, gen: np.ndarray, temperature: float = 1.0,
        seed: int = 0, timeout: float | None = None) -> dict:
    """One run through the batched path, waited for: :meth:`Job.result`'s dict plus
    ``order`` (the run's own sub-pixels in generation order)."""
    job = Job(model, known, gen, temperature, seed)
    submit(job)
    try:
        return {**job.result(timeout), "order": job.order}
    finally:
        job.cancel()
