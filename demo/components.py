"""Gradio components of the app with bounded input (their values are checked in
``demo/inputs.py``).

Gradio's ``ImageEditor`` decodes (and converts to RGBA) every image it receives before the
handler runs: a 140 KB PNG of 12000x12000 pixels becomes 576 MB. :func:`image_input` first
reads each image's header (:func:`demo.imaging.check_image`: bytes, pixels, a readable
format) and refuses with the app's own message, naming the component, never a server path.
"""
from __future__ import annotations

import gradio as gr

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
