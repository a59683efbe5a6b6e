"""The editors in the browser: a preset or a stroke shows in both editors at once, without
waiting for the server.

An image editor is slow to show a picture it is sent (its script loads it into WebGL), and a
picture from the server first waits for the round trip (times: README, "The editors"). So the
page draws what the editors will show and lays it over them
(a *cover*) until they have drawn it themselves:

- Presets: the page holds the shipped examples once (:func:`page_data`, at the dataset's
  levels) and draws the pictures the server would (:func:`demo.imaging.editor_value`,
  ``mask_editor_value``, ``render_frame``) as data URLs. ``Blank`` and ``Random example`` need
  nothing else. ``Keep top half`` and ``Seed pixel`` keep the drawing: the page reads it from
  the mask editor's background (the drawing as last sent to it); the server's preset follows
  them and sets the exact pictures.
- A stroke on the canvas: the page reads the canvas editor's picture just before and after the
  stroke and covers the mask editor with its own picture, the cells the stroke changed redrawn
  (quantized as the server does, red over them where the mask is); the server's answer
  (:func:`demo.inputs.sync_drawn`) then sets the mask editor's drawing. A cell the brush only
  grazes may come out differently there.

The page names the drawing it sets as :func:`demo.inputs.drawing_key` does, so that the
canvas's own event, fired when it loads a picture the app sent, can tell that picture from a
stroke (:func:`demo.inputs.sync_drawn`).
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
  window.pixelnetPreset = async (name, dataset, mask, first, covered = true) => {
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
    if (covered) {                       // shown at once; the editors follow
      if (name === 'Blank' || name === 'Random example') cover('canvas', [drawing], 1);
      cover('mask', [drawing, layer], 2);
    }
    return {canvas: {background: file(drawing), layers: [], composite: null},
            mask: {background: file(drawing), layers: [file(layer)], composite: null},
            frame: file(frame), key: key(x, d), drawing, layer};
  };
  // Covers: a picture shown over an editor, where the editor draws it (a square of its
  // shorter side less 60 px, centred), from the moment the page knows it until the editor has
  // drawn it itself. It goes at the editor's input events
  // (:func:`shown_js`: it has drawn), at a touch on the editor, or after LIMIT ms.
  const LIMIT = 4000, held = {};
  const square = block => {
    const side = Math.max(0, Math.min(block.clientWidth, block.clientHeight) - 60);
    return {side, left: (block.clientWidth - side) / 2, top: (block.clientHeight - side) / 2};
  };
  const uncover = id => {
    const h = held[id];
    if (!h) return;
    clearTimeout(h.timer); h.watch.disconnect(); h.box.remove(); delete held[id];
  };
  // cover(id, layers, events): layers are data URLs or canvases, stacked
  const cover = (id, layers, events) => {
    const block = document.getElementById(id);
    if (!block) return;
    uncover(id);
    const box = document.createElement('div');
    box.className = 'pixelnet-cover';
    box.style.cssText = 'position:absolute;pointer-events:none;z-index:100;';
    for (const l of layers) {
      const el = typeof l === 'string' ? Object.assign(document.createElement('img'), {src: l, alt: ''}) : l;
      el.style.cssText = 'position:absolute;inset:0;width:100%%;height:100%%;image-rendering:pixelated;';
      box.appendChild(el);
    }
    const place = () => {
      const s = square(block);
      Object.assign(box.style, {width: s.side + 'px', height: s.side + 'px',
                                left: s.left + 'px', top: s.top + 'px'});
    };
    if (getComputedStyle(block).position === 'static') block.style.position = 'relative';
    block.appendChild(box); place();
    const watch = new ResizeObserver(place); watch.observe(block);
    held[id] = {box, watch, seen: 0, events, top: box.lastChild,
                timer: setTimeout(() => uncover(id), LIMIT)};
  };
  // an editor's input event: it has drawn a picture (the mask editor: its drawing, then its
  // mask layer); its cover goes once it has drawn all, a second after the first at the latest
  window.pixelnetShown = id => {
    const h = held[id];
    if (!h) return;
    clearTimeout(h.timer);
    const drop = () => requestAnimationFrame(() => requestAnimationFrame(() => {
      if (held[id] === h) uncover(id); }));
    if (++h.seen >= h.events) drop(); else h.timer = setTimeout(drop, 1000);
  };
  // until an editor has drawn its first picture, the first example is shown over it
  window.pixelnetPlaceholders = async (dataset, first) => {
    const p = await window.pixelnetPreset('Keep top half', dataset, null, first, false);
    for (const [id, urls, events] of [['canvas', [p.drawing], 1], ['mask', [p.drawing, p.layer], 2]])
      if (!(window.pixelnetDrawn || {})[id]) cover(id, urls, events);     // not drawn already
  };
  // A stroke on the canvas: the server sets the mask editor's drawing (demo.inputs.sync_drawn).
  // Until the mask editor shows it, the mask editor is covered by its own
  // picture with the cells the stroke changed redrawn: read from the canvas editor just
  // before and after the stroke (WebGL canvases keep their picture: demo/theme.py), masked
  // where the mask editor shows red over the old drawing.
  const seen = id => {          // what an editor shows in its square: a 2D canvas copy
    const block = document.getElementById(id), c = block && block.querySelector('canvas');
    if (!c || !c.width) return null;
    const h = held[id], s = square(block), b = block.getBoundingClientRect(), r = c.getBoundingClientRect();
    const copy = document.createElement('canvas'), side = Math.max(1, Math.round(s.side * devicePixelRatio));
    copy.width = copy.height = side;
    const g = copy.getContext('2d');
    if (h && h.top instanceof HTMLCanvasElement) g.drawImage(h.top, 0, 0, side, side);   // covered
    else {
      const kx = c.width / r.width, ky = c.height / r.height;
      g.drawImage(c, (b.left + block.clientLeft + s.left - r.left) * kx,
                  (b.top + block.clientTop + s.top - r.top) * ky, s.side * kx, s.side * ky,
                  0, 0, side, side);
    }
    return copy;
  };
  const cells = (copy, d) => {     // (H, W) cell means of a picture, RGB
    const side = copy.width, px = copy.getContext('2d').getImageData(0, 0, side, side).data;
    const out = new Float32Array(3 * d.H * d.W), n = new Float32Array(d.H * d.W);
    for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) {
      const k = Math.min(d.H - 1, Math.floor(y * d.H / side)) * d.W + Math.min(d.W - 1, Math.floor(x * d.W / side));
      for (let c = 0; c < 3; c++) out[3 * k + c] += px[4 * (y * side + x) + c];
      n[k]++;
    }
    for (let k = 0; k < n.length; k++) for (let c = 0; c < 3; c++) out[3 * k + c] /= Math.max(1, n[k]);
    return out;
  };
  let before = null;
  const onCanvas = e => e.target instanceof HTMLCanvasElement && e.target.closest('#canvas');
  document.addEventListener('pointerdown', e => {
    if (e.target.closest && e.target.closest('#mask')) uncover('mask');   // painting the mask
    before = onCanvas(e) ? seen('canvas') : null;
  }, true);
  document.addEventListener('pointerup', e => {
    const old = before, block = document.getElementById('mask');
    before = null;
    const named = document.querySelector('#dataset input'), d = named && P.datasets[named.value];
    if (!old || !d || !block) return;
    requestAnimationFrame(() => {             // once the stroke's last frame is drawn
      const now = seen('canvas'), shown = seen('mask');
      if (!now || !shown) return;
      const a = cells(old, d), b = cells(now, d), m = cells(shown, d), al = P.mask[3] / 255;
      const g = shown.getContext('2d'), side = shown.width;
      let changed = 0;
      for (let k = 0; k < d.H * d.W; k++) {
        let diff = 0, plain = 0, red = 0;
        for (let c = 0; c < 3; c++) {
          diff += Math.abs(b[3 * k + c] - a[3 * k + c]);
          plain += Math.abs(m[3 * k + c] - a[3 * k + c]);
          red += Math.abs(m[3 * k + c] - ((1 - al) * a[3 * k + c] + al * P.mask[c]));
        }
        if (diff < 24) continue;                       // the stroke did not change this cell
        changed++;
        const v = [0, 1, 2].map(c => {                 // quantized as demo.imaging.to_levels
          const q = Math.min(d.L - 1, Math.floor(b[3 * k + c] * d.L / 256));
          const u = Math.floor(q * 255 / (d.L - 1));
          return red < plain ? Math.round((1 - al) * u + al * P.mask[c]) : u;
        });
        const i = Math.floor(k / d.W), j = k %% d.W;
        g.fillStyle = `rgb(${v[0]}, ${v[1]}, ${v[2]})`;
        g.fillRect(Math.floor(j * side / d.W), Math.floor(i * side / d.H),
                   Math.ceil(side / d.W), Math.ceil(side / d.H));
      }
      if (changed) cover('mask', [shown], 2);
    });
  }, true);
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
    """The script of an editor's input event: its cover goes once it has drawn."""
    return (f"() => {{ const d = window.pixelnetDrawn = window.pixelnetDrawn || {{}}; "
            f"d[{editor!r}] = (d[{editor!r}] || 0) + 1; "
            f"if (window.pixelnetShown) window.pixelnetShown({editor!r}); }}")


def preset_js(name: str) -> str:
    """A preset button's script: ``(dataset, mask) -> [canvas, mask, frame, key]`` for the
    presets that replace the drawing, ``[mask, frame, key]`` for those that keep it (``key``:
    the drawing the page drew them from, which the mask editor may have shown stale)."""
    out = "[p.canvas, p.mask, p.frame, p.key]" if name in REPLACING else "[p.mask, p.frame, p.key]"
    return (f"async (dataset, mask) => {{ window.pixelnetPresetAt = performance.now(); "
            f"const p = await window.pixelnetPreset({name!r}, dataset, mask); return {out}; }}")


RUN_JS = "(...inputs) => { window.pixelnetRunAt = performance.now(); return inputs; }"
"""The page's Generate: notes when it was pressed (for :data:`PREVIEW_JS`)."""

PREVIEW_JS = """(preview) => preview && !(window.pixelnetRunAt > window.pixelnetPresetAt)
  ? preview : {__type__: 'update'}"""
"""A preview the server sent after a preset (``inputs.preset_sent``) goes to the sample panel
unless Generate was pressed since the preset: then the run's frames stay (``{__type__:
'update'}`` is ``gr.skip()``)."""
