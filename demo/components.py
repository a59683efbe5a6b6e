"""Gradio components of the app with bounded input (their values are checked in
``demo/inputs.py``), and images sent inside a run's updates.

Gradio's ``ImageEditor`` decodes (and converts to RGBA) every image it receives before the
handler runs: a 140 KB PNG of 12000x12000 pixels becomes 576 MB. :func:`image_input` first
reads each image's header (:func:`demo.imaging.check_image`: bytes, pixels, a readable
format) and refuses with the app's own message, naming the component, never a server path.
"""
from __future__ import annotations

import base64
import functools
import inspect
import io
from typing import Callable, Iterator

import gradio as gr
import numpy as np
from PIL import Image

from demo import imaging as im
from demo.inputs import fail


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


def inline(img: np.ndarray | Image.Image) -> dict:
    """An image as a ``gr.Image`` value that carries its pixels: a PNG data URL, which the page
    shows as soon as the update arrives. A file (what ``gr.Image`` sends by default) is fetched
    by the browser afterwards, one request per frame, late on a busy server: the progress line
    ran rows ahead of its frame. No ``meta``: Gradio passes it through as it is (an event with
    ``postprocess=False``)."""
    buf = io.BytesIO()
    (img if isinstance(img, Image.Image) else Image.fromarray(np.asarray(img, np.uint8))
     ).save(buf, "PNG")
    return dict(path=None, url="data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(),
                size=buf.tell(), orig_name="image.png", mime_type="image/png", is_stream=False,
                meta=None)


def inlined(fn: Callable[..., tuple | Iterator[tuple]]) -> Callable[..., tuple | Iterator[tuple]]:
    """The handler ``fn`` (a stream of updates, or one) with every image of its updates
    :func:`inline`, also inside ``gr.update``; wire it with ``postprocess=False``. Its
    signature is ``fn``'s, so that Gradio still passes ``gr.Request``."""
    def one(v):
        if isinstance(v, (np.ndarray, Image.Image)):
            return inline(v)
        if isinstance(v, dict) and isinstance(v.get("value"), (np.ndarray, Image.Image)):
            return {**v, "value": inline(v["value"])}
        return v

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(*args, **kwargs):
            for out in fn(*args, **kwargs):
                yield tuple(one(v) for v in out)
        return stream

    @functools.wraps(fn)
    def update(*args, **kwargs):
        return tuple(one(v) for v in fn(*args, **kwargs))
    return update
