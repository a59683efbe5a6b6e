"""The app's inputs: every canvas, control and upload checked and turned into model input.

Every bad canvas, mask, upload or control is refused with the app's own message
(:func:`fail`, a ``gr.Error``), never Gradio's raw error or a server path. The canvases hold
images at the dataset's levels; :func:`canvas_picture` is the one reader of an ``ImageEditor``
value (the Generate tab's canvases and the Explain tab's).
"""
from __future__ import annotations

import math
import random
from pathlib import Path

import gradio as gr
import numpy as np
import torch

import pixelnet
from demo import imaging as im
from demo import registry
from demo.registry import (ARCH_NAMES, DATASET_INFO, architectures, arch_key, class_names,
                           dataset_key, title)
from pixelnet.data import quantize
from pixelnet.sampling import MAX_SEED   # seeds are 0 <= seed < MAX_SEED (the library's check)
from pixelnet.sampling import CLASS_STRENGTH, completion_inputs

EXAMPLES = Path(__file__).resolve().parent / "examples"
MAX_TEMPERATURE = 2.0               # the sliders' range and the check's
MAX_GUIDANCE = 5.0                  # the class strength slider's range and the check's
MAX_MIN_P = 0.5                     # the tail cut slider's range and the check's
SPEEDS: dict[str, float] = {"Slow": 20, "Medium": 80, "Fast": 300, "Max": 0}
"""Animation speed -> pixels per second (0: as fast as the sampler goes)."""

PRESETS = {"Blank": "blank", "Seed pixel": "single_pixel", "Keep top half": "top_half",
           "Random example": "top_half"}
"""Preset button -> ``pixelnet.sampling.completion_inputs`` preset (the mask it sets)."""
ANY = "Any"
"""The class control's "no class" choice (an unconditional sample)."""
DEFAULTS = dict(dataset="MNIST digits", architecture=ARCH_NAMES[pixelnet.ARCHITECTURES[0]],
                temperature=1.0, seed=0, speed="Fast", label=ANY, samples=1,
                guidance=CLASS_STRENGTH, min_p=0.0)
SAMPLES = (1, 4, 9)
"""How many completions of the same input one run may draw (a 1x1, 2x2 or 3x3 grid)."""


# ----------------------------------------------------------------------------- checks

def fail(message: str) -> gr.Error:
    """A user-facing error (shown in the browser, raised to API clients)."""
    return gr.Error(message, print_exception=False)


def parse_seed(seed) -> int:
    """A seed from the control: a whole number ``0 <= seed < 2**63`` (blank: 0)."""
    if seed is None or seed == "":
        return 0
    try:
        if isinstance(seed, str):
            seed = float(seed) if any(ch in seed for ch in ".eEnN") else int(seed)
        if isinstance(seed, float):
            if not math.isfinite(seed) or seed != int(seed):
                raise ValueError
            seed = int(seed)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise fail(f"seed must be a whole number from 0 to 2**63 - 1; got {seed!r}") from None
    if not 0 <= seed < MAX_SEED:
        raise fail(f"seed must be from 0 to 2**63 - 1 ({MAX_SEED - 1}); got {seed}")
    return seed


def parse_temperature(temperature) -> float:
    """A temperature from the control: a number from 0 to ``MAX_TEMPERATURE`` (the slider's
    range; 0 = the most likely value)."""
    return parse_slider(temperature, "temperature", MAX_TEMPERATURE, "0 = the most likely value")


def parse_guidance(guidance) -> float:
    """A class strength (``pixelnet.sample``'s guidance) from the control: a number from 0 to
    ``MAX_GUIDANCE`` (the slider's range)."""
    return parse_slider(guidance, "class strength", MAX_GUIDANCE,
                        "1 = the model as trained, 0 = ignore the class")


def parse_min_p(min_p) -> float:
    """A tail cut (``pixelnet.sample``'s min_p) from the control: a number from 0 to
    ``MAX_MIN_P`` (the slider's range)."""
    return parse_slider(min_p, "tail cut (min-p)", MAX_MIN_P, "0 = draw from every value")


def parse_slider(value, what: str, high: float, meaning: str) -> float:
    """A number from 0 to ``high`` from a slider; ``what`` names it in the message and
    ``meaning`` says what its values mean."""
    try:
        if isinstance(value, bool):
            raise ValueError
        t = float(value)
    except (TypeError, ValueError, OverflowError):
        raise fail(f"{what} must be a number from 0 to {high:g}; got {value!r}") from None
    if not 0 <= t <= high:                             # NaN fails this too
        raise fail(f"{what} must be between 0 and {high:g} ({meaning}); got {t:g}")
    return t


def parse_index(value, what: str, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high`` from a number input (a pixel's row or column,
    a sample of the grid); ``what`` names it in the message."""
    try:
        if isinstance(value, bool) or value is None or value == "":
            raise ValueError
        v = float(value)
        if not math.isfinite(v) or v != int(v):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise fail(f"{what} must be a whole number from {low} to {high}; got {value!r}") from None
    if not low <= int(v) <= high:
        raise fail(f"{what} must be from {low} to {high}; got {int(v)}")
    return int(v)


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
        models = [registry.get_model(ds, a) for a in archs]
    except ValueError:
        models = []
    choices, info = label_choices(models)
    return gr.update(choices=choices, value=label if label in choices else ANY, info=info,
                     interactive=len(choices) > 1)


def load_model(dataset: str, arch: str) -> torch.nn.Module:
    """``registry.get_model`` (looked up on the module: tests put tiny models there), its
    errors (a broken checkpoint) as the app's message."""
    try:
        return registry.get_model(dataset, arch)
    except ValueError as e:
        raise fail(f"⚠️ {e}") from None



# ----------------------------------------------------------------------------- canvases

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


def canvas_picture(value: dict | None, what: str = "canvas"):
    """What an ``ImageEditor`` shows, as an RGBA picture (None when empty); a value that is
    not an image is the app's message, starting with ``what`` (if any)."""
    try:
        return im.editor_image(value)
    except ValueError as e:             # an upload that is not an image
        raise fail(f"{what}: {e}" if what else str(e)) from None


def canvas_levels(canvas: dict | None, dataset: str) -> np.ndarray:
    """The drawing canvas (an ``ImageEditor`` value) as model input; blank when empty."""
    _, C, L, H, W = shape(dataset)
    img = canvas_picture(canvas)
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


def drawing_key(x: np.ndarray) -> str:
    """A short name of the drawing ``x`` (levels ``(C, H, W)``, each below 256): its shape
    and the 32-bit FNV-1a hash of its values, as the page's preset script computes it
    (``demo/editors.py``)."""
    x = np.asarray(x)
    h = 0x811C9DC5
    for v in x.astype(np.uint8).ravel().tolist():
        h = ((h ^ v) * 0x01000193) & 0xFFFFFFFF
    C, H, W = x.shape
    return f"{C}x{H}x{W}:{h:08x}"


def sync_drawn(canvas: dict | None, mask_canvas: dict | None, dataset: str,
               sent: str | None) -> tuple[dict, str]:
    """:func:`sync_mask` after a stroke on the canvas, and the key (:func:`drawing_key`) of
    the drawing it shows. The editor also fires its ``input`` event when it loads a picture
    the app sent (``sent``: its key, e.g. set by a preset): then nothing is redrawn
    (``gr.skip()``), as the mask was sent with it and may not have loaded yet (reading it
    then would bring back the old mask). Nor is the key sent back: an answer that arrives
    after a preset has set a new key (the page's own, at once) would bring back the old one."""
    x = canvas_levels(canvas, dataset)
    key = drawing_key(x)
    if key == sent:
        return gr.skip(), gr.skip()
    return sync_mask(canvas, mask_canvas, dataset), key


def preset_sent(preset: str, dataset: str, canvas: dict | None, seed: float | None,
                sent: str | None = None) -> tuple[dict, dict, str, np.ndarray | None]:
    """:func:`apply_preset`'s two canvases, the key of the drawing they show (for
    :func:`sync_drawn`) and the sample panel's preview, for a preset that keeps the drawing.
    The page has drawn all of them already, from the drawing the mask editor gave it
    (``sent``: that drawing's key). Where that is the canvas's drawing, nothing is sent
    (``gr.skip()`` and no preview), as a late answer would undo what the user did since (a
    later preset, the sample of a run started at once). Else the mask editor gave an older
    drawing: one the server had not sent it yet, or one it had not loaded yet."""
    if sent == drawing_key(canvas_levels(canvas, dataset)):
        return gr.skip(), gr.skip(), gr.skip(), None
    drawing, mask = apply_preset(preset, dataset, canvas, seed)
    return (drawing, mask, drawing_key(canvas_levels(drawing, dataset)),
            preview(drawing, mask, dataset))


def preview(canvas: dict | None, mask_canvas: dict | None, dataset: str) -> np.ndarray:
    """The sample panel before a run: the kept pixels, the ones to generate greyed out."""
    x = canvas_levels(canvas, dataset)
    return im.render_frame(x, shape(dataset)[2], canvas_mask(mask_canvas, dataset))




def start_inputs(canvas, mask_canvas, dataset, architecture, temperature, seed, speed):
    """Validate everything a run needs; ``(ds, arch, T, seed, rate, known, mask)``."""
    ds, arch, temperature, seed, rate = check_controls(dataset, architecture, temperature,
                                                        seed, speed)
    return (ds, arch, temperature, seed, rate, canvas_levels(canvas, ds),
            canvas_mask(mask_canvas, ds))


def model_levels(x: np.ndarray, dataset: str, levels: int) -> np.ndarray:
    """A canvas image ``(C, H, W)`` at the dataset's levels as input for a model of ``levels``
    levels: quantized (``pixelnet.data.quantize``) where the model has fewer levels than the
    8-bit data (a coarse colour model), unchanged where they agree."""
    data_levels = shape(dataset)[2]
    if levels == data_levels:
        return x
    if data_levels != 256 or not 2 <= levels < 256:
        raise fail(f"a model of {levels} levels cannot read {dataset} images of {data_levels} "
                   "levels")
    return quantize(torch.from_numpy(np.asarray(x, np.int64)), levels).numpy()
