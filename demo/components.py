"""Gradio components of the app with bounded input, and the checks of its controls.

Every bad canvas, mask, upload or control gets the app's own message (``gr.Error``), never
Gradio's raw error or a server path.

Gradio's ``ImageEditor`` decodes (and converts to RGBA) every image it receives before the
handler runs: a 140 KB PNG of 12000x12000 pixels becomes 576 MB. :func:`image_input` first
reads each image's header (:func:`demo.imaging.check_image`: bytes, pixels, a readable
format) and refuses with the app's own message, naming the component, never a server path.
"""
from __future__ import annotations

import math

import gradio as gr

from demo import imaging as im
from pixelnet.sampling import MAX_SEED   # seeds are 0 <= seed < MAX_SEED (the library's check)

MAX_TEMPERATURE = 2.0               # the sliders' range and the check's


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
    try:
        if isinstance(temperature, bool):
            raise ValueError
        t = float(temperature)
    except (TypeError, ValueError, OverflowError):
        raise fail(f"temperature must be a number from 0 to {MAX_TEMPERATURE:g}; got "
                   f"{temperature!r}") from None
    if not 0 <= t <= MAX_TEMPERATURE:                  # NaN fails this too
        raise fail(f"temperature must be between 0 and {MAX_TEMPERATURE:g} (0 = the most "
                   f"likely value); got {t:g}")
    return t


def image_input(*args, **kwargs) -> gr.ImageEditor:
    """A ``gr.ImageEditor`` whose images are checked from their headers before Gradio
    decodes them (the arguments are ``gr.ImageEditor``'s). The check replaces the instance's
    ``preprocess``: a subclass would make Gradio write a ``.pyi`` stub beside this file."""
    editor = gr.ImageEditor(*args, **kwargs)
    decode = editor.preprocess

    def preprocess(payload):
        if payload is not None:
            what = f"the {(editor.label or 'image').split(' (')[0].lower()} image"
            sources: list = []
            if getattr(payload, "id", None) is not None:         # blobs sent by the browser
                cached = editor.blob_storage.get(payload.id)
                if cached is not None:
                    sources = [cached.background, *(cached.layers or []), cached.composite]
            else:
                sources = [payload.background, *(payload.layers or []), payload.composite]
            for src in sources:
                if isinstance(src, memoryview):
                    src = bytes(src)
                if not isinstance(src, (bytes, bytearray)):
                    src = getattr(src, "path", None)
                if src is None:
                    continue
                try:
                    im.check_image(src, what)
                except ValueError as e:
                    raise fail(str(e)) from None
        return decode(payload)

    editor.preprocess = preprocess
    return editor


def raw(component: gr.components.Component) -> gr.components.Component:
    """``component`` handing its value to the handler as sent, which checks it with the
    app's own message: Gradio's own checks fail with raw errors (a NaN seed, a value not
    among a dropdown's choices, a temperature outside the slider)."""
    component.preprocess = lambda payload: payload
    return component
