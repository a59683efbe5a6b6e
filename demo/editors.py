"""The editors' presets in the browser: a preset click redraws the canvas, the mask and the
sample's preview at once, without a round trip to the server.

A preset through the server took 0.7 to 3.3 s on the busy 2-core machine (measured, README
"The editors"): the browser first uploads both editors' pictures, the handler draws new ones,
the browser fetches them, then the editors load them. Here the page holds the shipped examples
once (:func:`page_data`, at the dataset's levels), and :data:`EDITORS_JS` draws the pictures
the server would (:func:`demo.imaging.editor_value`, ``mask_editor_value``, ``render_frame``)
as data URLs. ``Blank`` and ``Random example`` need nothing else. ``Keep top half`` and
``Seed pixel`` keep the drawing: the page reads it from the mask editor's background (the
drawing as last sent to it); the server's preset follows them and sets the exact pictures.

The page names the drawing it sets as :func:`demo.inputs.drawing_key` does, so that the canvas's own event, fired when it loads a picture the app sent, can tell
that picture from a stroke (:func:`demo.inputs.sync_drawn`).
"""
from __future__ import annotations

import base64
import json

import numpy as np

from demo import imaging as im
from demo.inputs import blank, examples, image_levels, shape
from demo.registry import DATASETS

REPLACING = ("Blank", "Random example")
"""The presets that replace the drawing (the others keep it and change the mask)."""


def page_data() -> dict:
    """What the page needs to draw the presets: per dataset (by its display name) its shape,
    levels, blank drawing and examples (levels ``(C, H, W)`` as base64 bytes), and the
    colours of the mask and of pending pixels."""
    def b64(x: np.ndarray) -> str:
        return base64.b64encode(np.asarray(x, np.uint8).tobytes()).decode()

    sets = {}
    for name in DATASETS:
        _, C, L, H, W = shape(name)
        sets[name] = dict(C=C, L=L, H=H, W=W, blank=b64(blank(name)),
                          examples=[b64(image_levels(im.open_image(f), name))
                                    for f in examples(name)])
    return dict(datasets=sets, scale=im.SCALE, mask=list(im.MASK_RGBA),
                pending=im.PENDING.tolist(), stripe=im.PENDING_STRIPE.tolist(),
                period=im.HATCH_PERIOD, width=im.HATCH_WIDTH)


EDITORS_JS = """() => {
  // window.pixelnetPreset(name, dataset, mask): the values of the canvas, the mask editor,
  // the sample's preview and the drawing's key for a preset (see demo/editors.py)
  const P = %s;
  const bytes = s => Uint8Array.from(atob(s), c => c.charCodeAt(0));
  const key = (x, d) => {
    let h = 0x811c9dc5;
    for (const v of x) h = Math.imul(h ^ v, 0x01000193) >>> 0;
    return `${d.C}x${d.H}x${d.W}:${h.toString(16).padStart(8, '0')}`;
  };
  const rgb = (x, d, i, j) => {            // demo.imaging.to_rgb
    const v = c => Math.floor(x[(c * d.H + i) * d.W + j] * 255 / (d.L - 1));
    return d.C === 1 ? [v(0), v(0), v(0)] : [v(0), v(1), v(2)];
  };
  const picture = (d, colour) => {         // colour(i, j, X, Y) -> [r, g, b, a] per screen pixel
    const S = P.scale, c = document.createElement('canvas');
    c.width = d.W * S; c.height = d.H * S;
    const g = c.getContext('2d'), img = g.createImageData(c.width, c.height);
    for (let Y = 0; Y < c.height; Y++) for (let X = 0; X < c.width; X++) {
      const px = colour(Math.floor(Y / S), Math.floor(X / S), X, Y);
      img.data.set(px.length === 4 ? px : [...px, 255], 4 * (Y * c.width + X));
    }
    g.putImageData(img, 0, 0);
    return c.toDataURL('image/png');
  };
  const file = url => ({path: null, url, orig_name: 'preset.png', size: null,
                        mime_type: 'image/png', is_stream: false, meta: {_type: 'gradio.FileData'}});
  const levels = (d, url) => new Promise((ok, fail) => {   // a drawing's picture -> levels
    const img = new Image();
    img.onload = () => {
      const c = document.createElement('canvas'); c.width = d.W; c.height = d.H;
      const g = c.getContext('2d'); g.imageSmoothingEnabled = false;
      g.drawImage(img, 0, 0, d.W, d.H);       // one screen pixel of each cell
      const px = g.getImageData(0, 0, d.W, d.H).data, x = new Uint8Array(d.C * d.H * d.W);
      for (let c = 0; c < d.C; c++) for (let k = 0; k < d.H * d.W; k++)
        x[c * d.H * d.W + k] = Math.round(px[4 * k + c] * (d.L - 1) / 255);
      ok(x);
    };
    img.onerror = fail; img.src = url;
  });
  window.pixelnetPreset = async (name, dataset, mask, first) => {
    const d = P.datasets[dataset];
    let x;
    if (first) x = bytes(d.examples.length ? d.examples[0] : d.blank);   // the page's first canvas
    else if (name === 'Blank') x = bytes(d.blank);
    else if (name === 'Random example') x = bytes(d.examples[Math.floor(Math.random() * d.examples.length)]);
    else x = mask && mask.background && mask.background.url ? await levels(d, mask.background.url)
                                                             : bytes(d.blank);
    const gen = (i, j) => name === 'Keep top half' || name === 'Random example' ? i >= Math.floor(d.H / 2)
                          : name === 'Seed pixel' ? i > 0 || j > 0 : true;
    const drawing = picture(d, (i, j) => rgb(x, d, i, j));
    const layer = picture(d, (i, j) => gen(i, j) ? P.mask : [0, 0, 0, 0]);
    const frame = picture(d, (i, j, X, Y) => !gen(i, j) ? rgb(x, d, i, j) :
                                              (X + Y) %% P.period < P.width ? P.stripe : P.pending);
    return {canvas: {background: file(drawing), layers: [], composite: null},
            mask: {background: file(drawing), layers: [file(layer)], composite: null},
            frame: file(frame), key: key(x, d), drawing, layer};
  };
  // Until an editor has drawn its first picture (its script starts WebGL, then fetches the
  // picture: about 2.5 s after the sample on the busy 2-core machine), the picture is shown
  // over it where it will be drawn: a square of the editor's shorter side less 60 px, centred.
  const held = {};
  window.pixelnetPlaceholders = async (dataset, first) => {
    const p = await window.pixelnetPreset('Keep top half', dataset, null, first);
    for (const [id, urls] of [['canvas', [p.drawing]], ['mask', [p.drawing, p.layer]]]) {
      const block = document.getElementById(id);
      if (!block || (window.pixelnetDrawn || {})[id]) continue;     // drawn already
      const box = document.createElement('div');
      box.className = 'pixelnet-placeholder';
      box.style.cssText = 'position:absolute;pointer-events:none;z-index:100;';
      for (const u of urls) {
        const img = document.createElement('img');
        img.src = u; img.alt = '';
        img.style.cssText = 'position:absolute;inset:0;width:100%%;height:100%%;image-rendering:pixelated;';
        box.appendChild(img);
      }
      const place = () => {
        const side = Math.max(0, Math.min(block.clientWidth, block.clientHeight) - 60);
        Object.assign(box.style, {width: side + 'px', height: side + 'px',
          left: (block.clientWidth - side) / 2 + 'px', top: (block.clientHeight - side) / 2 + 'px'});
      };
      if (getComputedStyle(block).position === 'static') block.style.position = 'relative';
      block.appendChild(box); place();
      const watch = new ResizeObserver(place); watch.observe(block);
      held[id] = {box, watch, seen: 0};
    }
  };
  // an editor's input event: it has drawn a picture (the mask editor: its drawing, then its
  // mask layer); a second later at the latest, its placeholder goes
  window.pixelnetShown = (id, events) => {
    const h = held[id];
    if (!h) return;
    const drop = () => { h.watch.disconnect(); h.box.remove(); delete held[id]; };
    if (++h.seen >= events) drop(); else setTimeout(drop, 1000);
  };
}"""


def editors_js() -> str:
    """The page's preset script (run once, at load), with :func:`page_data`."""
    return EDITORS_JS % json.dumps(page_data(), separators=(",", ":"))


def placeholders_js(dataset: str) -> str:
    """The page's load script: :data:`EDITORS_JS`, then the editors' placeholders (the first
    example of ``dataset``, its top half kept: :func:`demo.inputs.first_example`)."""
    return (f"async () => {{ ({editors_js()})(); "
            f"await window.pixelnetPlaceholders({json.dumps(dataset)}, true); }}")


def shown_js(editor: str) -> str:
    """The script of an editor's input event: its placeholder goes once it has drawn."""
    events = 2 if editor == "mask" else 1
    return (f"() => {{ const d = window.pixelnetDrawn = window.pixelnetDrawn || {{}}; "
            f"d[{editor!r}] = (d[{editor!r}] || 0) + 1; "
            f"if (window.pixelnetShown) window.pixelnetShown({editor!r}, {events}); }}")


def preset_js(name: str) -> str:
    """A preset button's script: ``(dataset, mask) -> [canvas, mask, frame, key]`` for the
    presets that replace the drawing, ``[mask, frame]`` for those that keep it."""
    out = "[p.canvas, p.mask, p.frame, p.key]" if name in REPLACING else "[p.mask, p.frame]"
    return f"async (dataset, mask) => {{ const p = await window.pixelnetPreset({name!r}, dataset, mask); return {out}; }}"
