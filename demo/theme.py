"""The app's look: the Gradio theme, the CSS and a small script for labels (passed to
``launch``).

Accessibility (issue 17): every text at least 4.5:1 against its background (WCAG 2 contrast;
the Soft theme's label chips, primary buttons, selected tab and muted texts are darker here;
measured figures in README.md, "Accessibility"), every canvas labelled for screen readers, and the sample column
first in the page's order (so Generate is an early Tab stop and the first thing on a phone)
while wide screens still show it on the right.
"""
from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

THEME = gr.themes.Soft(
    font=["ui-sans-serif", "system-ui", "sans-serif"],       # no web fonts: works offline
    font_mono=["ui-monospace", "monospace"],
).set(
    # Soft's defaults and their contrast: labels primary_500 on primary_100 3.6:1, white on
    # primary_500 4.5:1 (4.47), subdued text neutral_400 on white 2.5:1.
    block_label_text_color="*primary_700",                   # 6.4:1 on primary_100
    block_title_text_color="*primary_700",
    block_info_text_color="*neutral_600",                    # 7.6:1 on white
    body_text_color_subdued="*neutral_600",                  # slider limits, footer
    button_primary_background_fill="*primary_600",           # white on it: 6.3:1
    button_primary_background_fill_hover="*primary_700",
    checkbox_label_background_fill_selected="*primary_600",  # a chosen radio's white text
    color_accent="*primary_600",                             # the selected tab: 6.0:1
    slider_color="*primary_600",
)

CSS = """
.pixelated img, .pixelated canvas { image-rendering: pixelated; }
/* The sample (and Compare's panels) start under the label chip and buttons (they covered the
   pixels of the top corners). */
#frame .image-frame, .compare-panel .image-frame { padding-top: 36px; box-sizing: border-box; }
#progress { min-height: 2.5em; }
#compare-table { min-height: 3.2em; }
#intro h2 { margin: 0 0 0.2em 0; }
#intro p { margin: 0; }

/* The editors' zoom and pan are useless on a 28x28 or 32x32 canvas; without them the toolbar
   no longer covers the editor's label, and there are fewer Tab stops before Generate. */
#canvas .top-panel button[aria-label^="Zoom"], #mask .top-panel button[aria-label^="Zoom"],
#canvas .top-panel button[aria-label="Pan"], #mask .top-panel button[aria-label="Pan"],
#canvas .top-panel .zoom-number, #mask .top-panel .zoom-number,
#canvas .top-panel .separator, #mask .top-panel .separator { display: none !important; }
/* The editors' label chips end above the picture (by default they cover its first row's top). */
#canvas [data-testid="block-label"], #mask [data-testid="block-label"] {
  padding-top: 1px; padding-bottom: 1px; }

/* The Generate tab's columns come in the page's order sample, Inspect, canvas, mask,
   controls (Tab order; a phone's single column). A wide screen shows them as a grid:
       canvas    mask     sample
       controls  Inspect  sample
   so that Inspect's answer sits beside the sample and its chart. The first row is as tall
   as the editors (the sample spans the flexible second row, so it does not stretch it). */
@media (min-width: 1000px) {
  #generate-row { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr));
                  grid-template-rows: auto 1fr; align-items: start; }
  #canvas-col { grid-area: 1 / 1; }
  #mask-col { grid-area: 1 / 2; }
  #controls-col { grid-area: 2 / 1; }
  #inspect-panel { grid-area: 2 / 2; }
  #sample-col { grid-area: 1 / 3 / 3 / 4; }
}
/* Inspect's answer keeps its room (its chart does not move as the answer's length changes). */
#inspect-text { min-height: 5.2em; }
/* Generate and Stop side by side at any width. */
#sample-col .row:has(#generate) { flex-wrap: nowrap; }
#sample-col .row:has(#generate) > * { min-width: 0 !important; }
/* A phone: a compact intro, so that Generate, the sample and its chart make the first screen. */
@media (max-width: 640px) {
  #intro h2 { font-size: var(--text-xl); }
  #intro p { font-size: var(--text-md); line-height: 1.35; }
}
"""

LABELS = {
    "canvas": "Drawing canvas: the input image. Draw with the brush, or use a preset or an "
              "upload.",
    "mask": "Mask canvas: the drawing with the pixels to generate painted red over it.",
}
"""Screen-reader labels of the editors' canvases (by the component's elem_id)."""

HEAD = """<script>
/* WebGL canvases keep their picture after showing it, so that the page can read what the image
   editors show (demo/editors.py: a stroke shown under the mask at once). */
(() => {
  const get = HTMLCanvasElement.prototype.getContext;
  HTMLCanvasElement.prototype.getContext = function (kind, opts) {
    if (kind === "webgl" || kind === "webgl2") opts = {...(opts || {}), preserveDrawingBuffer: true};
    return get.call(this, kind, opts);
  };
})();
/* Label every canvas and image for screen readers: the editors' canvases by LABELS, any
   other image or canvas without alt text by its component's label (Gradio's image editor
   draws into unlabelled canvases and gives some images an empty alt). */
(() => {
  const LABELS = %s;
  function name(el) {
    const block = el.closest("[id]");
    if (block && LABELS[block.id]) return LABELS[block.id];
    const label = el.closest(".block") && el.closest(".block").querySelector("[data-testid=block-label]");
    const text = label ? label.innerText.trim() : "";
    return text ? text + " (image)" : "";
  }
  function label() {
    for (const c of document.querySelectorAll("canvas:not([aria-label])")) {
      const text = name(c);
      if (text) { c.setAttribute("role", "img"); c.setAttribute("aria-label", text); }
    }
    for (const i of document.querySelectorAll("img:not([alt]), img[alt='']")) {
      const text = name(i);
      if (text) i.setAttribute("alt", text);
    }
  }
  let queued = false;
  new MutationObserver(() => {
    if (!queued) { queued = true; requestAnimationFrame(() => { queued = false; label(); }); }
  }).observe(document.documentElement, {childList: true, subtree: true, attributes: true,
                                        attributeFilter: ["alt", "src"]});
})();
</script>"""


def editor_chunk() -> str | None:
    """The file name of Gradio's image-editor script among its built assets (None if not
    found: another Gradio build)."""
    assets = Path(gr.__file__).parent / "templates" / "frontend" / "assets"
    for path in sorted(assets.glob("Index-*.js")):
        if b"add_layers_from_url" in path.read_bytes():
            return path.name
    return None


def head() -> str:
    """The ``<head>`` addition: the labelling script (with :data:`LABELS`), and a preload of
    the image editor's script (the largest component script, which Gradio only requests once
    the page has its layout; preloaded, its download starts with the page)."""
    chunk = editor_chunk()
    preload = f'<link rel="modulepreload" href="./assets/{chunk}">\n' if chunk else ""
    return preload + HEAD % json.dumps(LABELS)
