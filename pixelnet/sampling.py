"""Sampling: one loop for every architecture, over interchangeable logit engines.

``sample_stream`` walks the model's generation order (raster order; for ``multiscale`` the
subsample first) and, for every sub-pixel that must be generated, asks an *engine* for the
logits of that sub-pixel given the image so far, draws a value and yields an event.

Engines:
- ``naive``: the whole network on the whole image for every sub-pixel (the reference);
- ``fast``: the model's own engine (``model.Engine``, in its architecture's module), which
  does only the work a new sub-pixel needs, reusing what earlier ones computed.
Both give the same probabilities and, for the same seed, the same images (tested).

Random numbers. A run's uniforms ``(n, C, H, W)`` are drawn once, at the start, from its own
generator (:func:`draw_noise`); sub-pixel ``(i, j, c)`` of image ``b`` is drawn from
``noise[b, c, i, j]`` by inverse CDF. So several runs can be stepped together as one batch
(concatenate their inputs, noise, temperatures and labels) and each gets exactly the images
it would get alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F

from .base import NO_CLASS, Model
from .layers import scale_input

METHODS = ("fast", "naive")
MAX_SAMPLES = 256
"""The most images one call generates: a fast engine keeps per-position activations of
every image, so memory grows with ``n`` (a 28x28 PixelCNN at h = 16 holds about 1 MB per
image)."""
MAX_SEED = 2 ** 63


@dataclass
class SampleEvent:
    """One generated sub-pixel.

    ``probs`` ``(n, levels)`` is the distribution the value was drawn from (after
    temperature and ``min_p``); ``value`` ``(n,)`` what was drawn (or kept, for samples where
    this sub-pixel was known); ``image`` ``(n, C, H, W)`` the images so far (a copy).
    """
    step: int
    total: int
    i: int
    j: int
    c: int
    probs: torch.Tensor
    value: torch.Tensor
    image: torch.Tensor


# ----------------------------------------------------------------------------- inputs

def prepare(model: Model, n: int, known: torch.Tensor | None, mask: torch.Tensor | None
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate ``known``/``mask``; return the start image ``(n, C, H, W)`` and the bool map
    ``(n, C, H, W)`` of sub-pixels to generate."""
    cfg = model.cfg
    shape = (cfg.channels, cfg.height, cfg.width)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SAMPLES:
        raise ValueError(f"n must be an integer from 1 to {MAX_SAMPLES} (images per call), "
                         f"got {n!r}")
    if known is None:
        if mask is not None:
            raise ValueError("a mask needs `known` images holding the pixels to keep")
        return torch.zeros(n, *shape, dtype=torch.long), torch.ones(n, *shape, dtype=torch.bool)
    known = model.check_input(known.unsqueeze(0) if known.dim() == 3 else known)
    if known.shape[0] not in (1, n):
        raise ValueError(f"known holds {known.shape[0]} images; give 1 or n = {n}")
    x = known.expand(n, *shape).clone()
    if mask is None:
        raise ValueError("with `known`, give a `mask` (True where pixels must be generated)")
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise ValueError("mask must be a BoolTensor (True = generate)")
    if mask.shape == shape[1:]:
        gen = mask[None, None].expand(n, *shape)
    elif mask.dim() == 4 and mask.shape[1:] == shape and mask.shape[0] in (1, n):
        gen = mask.expand(n, *shape)
    else:
        raise ValueError(f"mask must have shape ({cfg.height}, {cfg.width}) or "
                         f"(n, {cfg.channels}, {cfg.height}, {cfg.width}); got {tuple(mask.shape)}")
    return x, gen.clone()


PRESETS = ("blank", "single_pixel", "top_half", "region")


def completion_inputs(preset: str, channels: int, height: int, width: int,
                      image: torch.Tensor | None = None, pixel: tuple[int, int] = (0, 0),
                      region: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(known, mask)`` for a completion preset, ready for :func:`sample_stream`.

    - ``blank``: generate everything;
    - ``single_pixel``: keep one pixel (``pixel``, its value from ``image`` or level 0 if none
      is given) and generate all the others (the seed's "complete an image from one pixel");
    - ``top_half``: keep the top half of ``image``, generate the bottom (the paper's
      occlusion completions);
    - ``region``: keep ``image`` except where ``region`` (BoolTensor ``(H, W)``) is True.
    """
    shape = (1, channels, height, width)
    known = torch.zeros(shape, dtype=torch.long) if image is None else image.reshape(shape).long()
    mask = torch.ones(height, width, dtype=torch.bool)
    if preset == "blank":
        pass
    elif preset == "single_pixel":
        i, j = pixel
        if not (0 <= i < height and 0 <= j < width):
            raise ValueError(f"pixel {pixel} is outside the {height}x{width} image")
        mask[i, j] = False
    elif preset == "top_half":
        if image is None:
            raise ValueError("top_half needs an image whose top half is kept")
        mask[: height // 2] = False
    elif preset == "region":
        if image is None or region is None:
            raise ValueError("region needs an image and a BoolTensor region (True = regenerate)")
        if region.shape != (height, width) or region.dtype != torch.bool:
            raise ValueError(f"region must be a BoolTensor of shape ({height}, {width})")
        mask = region.clone()
    else:
        raise ValueError(f"unknown preset {preset!r}; choose one of {PRESETS}")
    return known, mask


# ----------------------------------------------------------------------------- random numbers

def draw_noise(model: Model, n: int, seed: int | None = None) -> torch.Tensor:
    """The uniforms ``(n, C, H, W)`` a run draws its values from, from a private
    ``torch.Generator`` seeded with ``seed`` (random when None). The first ``k`` images of
    ``draw_noise(model, n, s)`` are ``draw_noise(model, k, s)``."""
    g = torch.Generator()
    if seed is None:
        g.seed()
    else:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < MAX_SEED:
            raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")
        g.manual_seed(seed)
    cfg = model.cfg
    return torch.rand(n, cfg.channels, cfg.height, cfg.width, generator=g)


def per_image(value: float | Sequence[float] | torch.Tensor, n: int, name: str, meaning: str,
              most: float = float("inf")) -> torch.Tensor:
    """One number per image, ``(n, 1)`` float64, from one number or ``n`` of them;
    ValueError (naming ``name`` and saying what 0 means, ``meaning``) unless each is finite
    and in ``[0, most]``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        t = torch.full((n,), float(value), dtype=torch.float64)
    else:
        try:
            t = torch.as_tensor(value, dtype=torch.float64).flatten()
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"{name} must be a number >= 0 or one per image, got "
                             f"{value!r}") from None
        if t.numel() != n:
            raise ValueError(f"give one {name} or one per image ({n}), got {t.numel()}")
    if not torch.isfinite(t).all() or (t < 0).any() or (t > most).any():
        within = ">= 0" if most == float("inf") else f"in [0, {most:g}]"
        raise ValueError(f"{name} must be a finite number {within} ({meaning}), got {value!r}")
    return t[:, None]


def temperatures(temperature: float | Sequence[float] | torch.Tensor, n: int) -> torch.Tensor:
    """One temperature per image, ``(n, 1)`` float64; ValueError unless each is a finite
    number >= 0 (0 = the most likely value)."""
    return per_image(temperature, n, "temperature", "0 = the most likely value")


def min_ps(min_p: float | Sequence[float] | torch.Tensor, n: int) -> torch.Tensor:
    """One min-p per image, ``(n, 1)`` float64, in ``[0, 1]``."""
    return per_image(min_p, n, "min_p", "0 = keep every value", 1.0)


def cut_tail(probs: torch.Tensor, min_p: torch.Tensor) -> torch.Tensor:
    """Min-p sampling (Nguyen et al., 2024; our addition, not the paper's): drop the values
    of ``probs`` ``(n, L, ...)`` less likely than ``min_p`` ``(n, 1, ...)`` times the most
    likely one and renormalize. The cut follows the model's confidence: where one value
    dominates, rare ones (a stray colour in a face) go; where many are alike, they all stay."""
    keep = probs >= min_p * probs.max(1, keepdim=True).values
    kept = probs * keep
    return kept / kept.sum(1, keepdim=True)


MAX_GUIDANCE = 10.0
"""The largest guidance scale accepted (beyond a few, samples collapse onto a class's mode)."""
CLASS_STRENGTH = 2.0
"""The guidance the app samples a class at by default, and the published "guided" figures."""


def guidances(guidance: float | Sequence[float] | torch.Tensor, n: int) -> torch.Tensor:
    """One guidance scale per image, ``(n, 1)`` float64, in ``[0, MAX_GUIDANCE]``."""
    return per_image(guidance, n, "guidance", "0 = no class, 1 = the class as trained",
                     MAX_GUIDANCE)


def is_guided(model: Model, labels: torch.Tensor | None, scales: torch.Tensor) -> bool:
    """Whether some image has a class (``labels`` from ``model.labels``) and a scale other
    than 1: only then does guidance change anything."""
    return labels is not None and bool(
        ((scales[:, 0] != 1) & (labels != model.cfg.classes).cpu()).any())


def guided(logits: torch.Tensor, n: int, scale: torch.Tensor) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans, 2022) of a doubled batch's logits ``(2n, L,
    ...)``: the first ``n`` rows given each image's class, the last ``n`` given "no class".
    Returns ``(n, L, ...)`` log-probabilities ``log p(v) + s (log p(v | y) - log p(v))`` up to
    a constant, for scales ``s`` ``(n, 1, ...)``: ``s = 1`` is the conditional model itself,
    ``s = 0`` the unconditional one, ``s > 1`` leans further toward what sets the class apart."""
    cond, free = torch.log_softmax(logits, 1).split(n)
    return free + scale * (cond - free)


def drawn_from(model: Model, x: torch.Tensor, y: torch.Tensor | int | None = None,
               guidance: float | Sequence[float] | torch.Tensor = 1.0) -> torch.Tensor:
    """The logits ``(B, L, C, H, W)`` every sub-pixel of the images ``x`` is drawn from,
    before temperature, given the sub-pixels before it: the model's own (``model(x, y)``),
    or, for guided images, :func:`guided` log-probabilities (arguments as :func:`sample`)."""
    return conditionals(model, x, y, guidance)[1]


def conditionals(model: Model, x: torch.Tensor, y: torch.Tensor | int | None = None,
           guidance: float | Sequence[float] | torch.Tensor = 1.0
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(model(x, y), drawn_from(model, x, y, guidance))`` from one forward pass: of ``x``,
    or, if any image is guided, of the doubled batch ``[x given y, x given no class]``."""
    n = x.shape[0]
    labels, scales = model.labels(y, n), guidances(guidance, n)
    if not is_guided(model, labels, scales):
        logits = model(x, y)
        return logits, logits
    y = torch.where(labels == model.cfg.classes, NO_CLASS, labels)             # (n,)
    both = model(torch.cat([x, x]), torch.cat([y, torch.full_like(y, NO_CLASS)]))
    drawn = guided(both.double(), n, scales.to(both.device).view(n, 1, 1, 1, 1))
    return both[:n], drawn.to(both.dtype)


# ----------------------------------------------------------------------------- engines

class NaiveEngine:
    """Recompute the whole network on the whole image for every sub-pixel."""

    def __init__(self, model: Model, x: torch.Tensor, y: torch.Tensor | None = None):
        self.model, self.x, self.y = model, x, y

    def logits(self, i: int, j: int, c: int) -> torch.Tensor:
        xf = scale_input(self.x, self.model.cfg.levels).to(self.model.dtype)
        return self.model.forward_float(xf, y=self.y)[:, :, c, i, j]


def make_engine(model: Model, x: torch.Tensor, method: str, y: torch.Tensor | None = None):
    """The logit engine for ``method`` (``"fast"`` or ``"naive"``) over the live image ``x``,
    with class indices ``y`` from ``model.labels``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return NaiveEngine(model, x, y) if method == "naive" else model.engine(x, y)


# ----------------------------------------------------------------------------- the loop

def _check(model: Model, n: int, known, mask, temperature, seed, method, y, noise,
           guidance=1.0, min_p=0.0):
    """Validate every argument before any work: ``(x, gen, temps, labels, noise, scales,
    cuts)``; ``scales`` is None unless some image is guided (a class and a scale other than
    1), ``cuts`` ``(n, 1)`` None unless some image has a min-p."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    x, gen = prepare(model, n, known, mask)
    temps = temperatures(temperature, n)
    labels = model.labels(y, n)
    scales = guidances(guidance, n)
    if not is_guided(model, labels, scales):
        scales = None                     # nothing to guide: no doubled batch
    cuts = min_ps(min_p, n)
    if not bool((cuts > 0).any()):
        cuts = None
    if noise is None:
        noise = draw_noise(model, n, seed)
    elif (not isinstance(noise, torch.Tensor) or noise.shape != x.shape
          or not noise.is_floating_point()):
        raise ValueError(f"noise must be a float tensor of shape {tuple(x.shape)} (uniforms "
                         "in [0, 1))")
    return x, gen, temps, labels, noise, scales, cuts


def _run(model: Model, x: torch.Tensor, gen: torch.Tensor, temps: torch.Tensor,
         labels: torch.Tensor | None, noise: torch.Tensor, scales: torch.Tensor | None,
         cuts: torch.Tensor | None, method: str) -> Iterator[SampleEvent]:
    """The loop, on validated inputs; writes the values into ``x`` as it goes. With guidance
    ``scales`` ``(n, 1)`` the engine runs a doubled batch, ``[x given y, x given no class]``,
    whose two halves get the same values: ``x`` is a view of its first half."""
    device = model.device
    n = x.shape[0]
    live = x.to(device)
    if scales is not None:
        live = live.repeat(2, 1, 1, 1)
        labels = torch.cat([labels, torch.full_like(labels, model.cfg.classes)])
        scales = scales.to(device)
    x = live[:n]
    # Grad mode is per thread and a generator may be resumed in another thread (as web
    # servers do), so no_grad is entered around each step, never held across a yield.
    with torch.no_grad():
        engine = make_engine(model, live, method, labels)
    todo = [(i, j, c) for (i, j) in model.generation_order()
            for c in range(model.cfg.channels) if gen[:, c, i, j].any()]
    every = [bool(gen[:, c, i, j].all()) for (i, j, c) in todo]     # generated in every image
    gen, noise = gen.to(device), noise.to(device, torch.float64)
    temps = temps.to(device)
    cuts = None if cuts is None else cuts.to(device)
    greedy = (temps == 0).squeeze(1)
    any_greedy = bool(greedy.any())               # fixed for the run: no sync per step
    scale = torch.where(temps == 0, 1.0, temps)
    for step, (i, j, c) in enumerate(todo):
        with torch.no_grad():
            logits = engine.logits(i, j, c).double()           # (n or 2n, levels)
            if scales is not None:
                logits = guided(logits, n, scales)
            probs = torch.softmax(logits / scale, 1)
            if cuts is not None:
                probs = cut_tail(probs, cuts)
            if any_greedy:
                top = F.one_hot(logits.argmax(1), logits.shape[1]).double()
                probs = torch.where(greedy[:, None], top, probs)
            u = noise[:, c, i, j, None]
            # inverse CDF: robust to float noise between methods, unlike multinomial
            v = (probs.cumsum(1) < u * probs.sum(1, keepdim=True)).sum(1)
            v = v.clamp_(max=probs.shape[1] - 1)
            if not every[step]:
                v = torch.where(gen[:, c, i, j], v, x[:, c, i, j])
            live[:, c, i, j] = v if scales is None else v.repeat(2)
            event = SampleEvent(step, len(todo), i, j, c, probs.float(), v, x.clone())
        yield event


def sample_stream(model: Model, n: int = 1, known: torch.Tensor | None = None,
                  mask: torch.Tensor | None = None,
                  temperature: float | Sequence[float] | torch.Tensor = 1.0,
                  seed: int | None = None, method: str = "fast",
                  y: torch.Tensor | int | None = None, noise: torch.Tensor | None = None,
                  guidance: float | Sequence[float] | torch.Tensor = 1.0,
                  min_p: float | Sequence[float] | torch.Tensor = 0.0
                  ) -> Iterator[SampleEvent]:
    """Generate ``n`` images sub-pixel by sub-pixel, yielding a :class:`SampleEvent` for
    every generated sub-pixel in generation order (raster; R, G, B within a pixel).

    - ``known`` ``(n or 1, C, H, W)`` and ``mask`` (``(H, W)`` or ``(n, C, H, W)``, True =
      generate) complete partial images; other sub-pixels keep their known value.
    - ``temperature`` divides the logits (0 = the most likely value); one number, or one per
      image. NaN, infinite or negative values are refused.
    - ``seed`` seeds the run's private generator (:func:`draw_noise`); the same seed gives
      the same images with either method. ``noise`` ``(n, C, H, W)`` gives the uniforms
      directly instead (to batch several runs, each with its own seed).
    - ``y``: class labels for a class-conditional model: None (no class), an int, or a
      LongTensor ``(n,)`` (``-1`` = no class for that image).
    - ``guidance``: how strongly a class is followed (classifier-free guidance, :func:`guided`;
      one number or one per image, in ``[0, MAX_GUIDANCE]``): 1, the default, samples the
      model as trained; above 1 costs a second pass per step (one batch of ``2n``) and
      gives images more typical of their class, less varied. Images without a class ignore it.
    - ``min_p`` (in ``[0, 1]``; one number or one per image): after temperature, never draw a
      value less likely than ``min_p`` times the most likely one (:func:`cut_tail`); 0, the
      default, draws from the whole distribution.
    - ``n`` is at most :data:`MAX_SAMPLES`.

    Every argument is checked before the first event.
    """
    args = _check(model, n, known, mask, temperature, seed, method, y, noise, guidance, min_p)
    return _run(model, *args, method)


def sample(model: Model, n: int = 1, known: torch.Tensor | None = None,
           mask: torch.Tensor | None = None,
           temperature: float | Sequence[float] | torch.Tensor = 1.0, seed: int | None = None,
           method: str = "fast", y: torch.Tensor | int | None = None,
           noise: torch.Tensor | None = None,
           guidance: float | Sequence[float] | torch.Tensor = 1.0,
           min_p: float | Sequence[float] | torch.Tensor = 0.0) -> torch.Tensor:
    """Generate ``n`` images ``(n, C, H, W)``; arguments as :func:`sample_stream`."""
    args = _check(model, n, known, mask, temperature, seed, method, y, noise, guidance, min_p)
    x = args[0]
    for ev in _run(model, *args, method):
        x = ev.image
    return x.cpu()
