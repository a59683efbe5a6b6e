"""PixelNet app: draw or mask pixels, pick an architecture, watch a PixelRNN/PixelCNN fill
them in pixel by pixel, with the softmax behind every pixel.

    python demo/app.py            # http://0.0.0.0:7860 (or $GRADIO_SERVER_PORT)

Named API endpoints (``gradio_client``; every input has a default):
``/generate`` and ``/compare`` stream frames; ``/upload`` turns an image file into canvases.
See README.md, "The app's API" and "Serving a classroom".

One module per tab, each laying out its components and wiring its events next to them, with
plain-function handlers (tested directly in ``tests/test_app.py``): ``demo/generate_tab.py``,
``demo/compare_tab.py``, ``demo/explain_tab.py``. Their inputs are checked in
``demo/inputs.py``, a run's state and animation live in ``demo/runs.py``, every picture is
drawn by ``demo/imaging.py``. This file builds the Blocks from the tabs and serves it. The
app keeps no state outside its process.
"""
from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:       # `python demo/app.py` (a Space's entry point) finds demo/
    sys.path.insert(0, str(REPO))

import gradio as gr  # noqa: E402

from demo import batcher  # noqa: E402
from demo import imaging as im  # noqa: E402
from demo.compare_tab import build_compare_tab  # noqa: E402
from demo.generate_tab import build_generate_tab  # noqa: E402
from demo.runs import cache_images_atomically  # noqa: E402
from demo.theme import CSS, THEME, head  # noqa: E402


CONCURRENCY = int(os.environ.get("PIXELNET_CONCURRENCY", "64"))
"""Runs streaming at once (their handlers mostly wait: the samplers do the work)."""
QUEUE_SIZE = int(os.environ.get("PIXELNET_QUEUE", "128"))
SESSIONS = int(os.environ.get("PIXELNET_SESSIONS", "256"))
"""Sessions whose state (the last run, for Inspect) is kept; Gradio's default, 10,000,
would let about 0.4 MB per visitor or API call pile up (measured), for hours."""
CACHE_CLEANUP = (300, 900)          # Gradio's cached files: every 5 min, delete those over 15 min
INTRO = """## PixelNet: watch a PixelRNN draw
Draw on the canvas, paint the **mask** (red = *generate here*, the rest is kept) and press
**Generate**: the model fills the red pixels in raster order, one (sub-)pixel at a time, each
drawn from the softmax shown under the sample. Click a pixel of the sample to inspect it.
Paper: *Pixel Recurrent Neural Networks*, van den Oord et al., ICML 2016."""


def build_app() -> gr.Blocks:
    """The Gradio Blocks app (not launched)."""
    cache_images_atomically()
    with gr.Blocks(title="PixelNet", delete_cache=CACHE_CLEANUP) as demo:
        gr.Markdown(INTRO, elem_id="intro")
        with gr.Tab("Generate"):
            generate_tab = build_generate_tab(demo)
        with gr.Tab("Compare"):
            build_compare_tab(demo, generate_tab)
        with gr.Tab("Explain"):
            explain_tab()
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


def serve(port: int | None = None, host: str | None = None, block: bool = True) -> gr.Blocks:
    """Build and launch the app on ``host`` (``$GRADIO_SERVER_NAME`` or 0.0.0.0) and ``port``
    (``$GRADIO_SERVER_PORT`` or 7860). ``block=False`` returns at once with the app running
    (its address in ``.local_url``; ``.close()`` stops it)."""
    demo = build_app()
    demo.launch(server_name=host or os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"),
                server_port=port or int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                theme=THEME, css=CSS, head=head(), show_error=True, prevent_thread_lock=not block,
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