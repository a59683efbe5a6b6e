"""The Generate tab: draw or mask pixels, pick an architecture, watch the model fill them in
pixel by pixel with the softmax behind every pixel; then inspect any pixel.

The handlers are plain functions (tested directly in ``tests/test_app.py``);
:func:`build_generate_tab` lays the tab out and wires its events next to its components.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import partial
from typing import Iterator

import gradio as gr

import pixelnet
from demo import batcher
from demo import imaging as im
from demo import registry
from demo.components import image_input, inlined, raw
from demo.editors import PREVIEW_JS, REPLACING, RUN_JS, placeholders_js, preset_js, shown_js
from demo.inputs import (ANY, DEFAULTS, MAX_GUIDANCE, MAX_MIN_P, MAX_TEMPERATURE, PRESETS,
                         SAMPLES, SPEEDS, canvas_levels, drawing_key, fail, first_example,
                         label_control, load_model, model_levels, parse_guidance, parse_index,
                         parse_label, parse_min_p, parse_samples, parse_temperature, preset_sent,
                         preview, shape, start_inputs, sync_drawn, upload)
from demo.registry import (ARCH_NAMES, DATASET_INFO, DATASETS, architectures, dataset_key, describe,
                           of_levels)
from demo.runs import STOPS, VIEWERS, Run, follow, press_stop, stopped_line
from pixelnet.sampling import MAX_SEED


EDITOR_H, FRAME_H, CHART_H = 300, 300, 190
"""Pixel heights of the editors, the sample and its softmax chart: at 1280x800 the canvas,
the sample, the chart and Generate fit the first screen, before and during a run; fixed, so
that nothing moves when a run starts or the chart changes."""


GUIDANCE_LABEL = ("Class strength, with a class (1: the model as trained; above 1: "
                  "classifier-free guidance, more typical of the class, less varied, a little "
                  "slower)")
MIN_P_LABEL = ("Tail cut, min-p (0: draw from the whole softmax; 0.1: never a value 10 times "
               "less likely than the most likely one: cleaner faces, but a white background "
               "can win every pixel of a sparse emoji)")


# ----------------------------------------------------------------------------- handlers

def generate(canvas: dict | None = None, mask: dict | None = None,
             dataset: str = DEFAULTS["dataset"], architecture: str = DEFAULTS["architecture"],
             temperature: float = DEFAULTS["temperature"], seed: float = DEFAULTS["seed"],
             speed: str = DEFAULTS["speed"], label: str = DEFAULTS["label"],
             samples: int = DEFAULTS["samples"], guidance: float = DEFAULTS["guidance"],
             min_p: float = DEFAULTS["min_p"],
             request: gr.Request | None = None) -> Iterator[tuple]:
    """Stream a generation: yields ``(frame, softmax chart, progress, result, entropy map,
    run)`` as the raster scan moves; the last one holds the sample, its NLL and the map, or,
    after the page's Stop (``request``: its session), the frame as it stands.
    ``label``: "Any" or one of a class-conditional model's class names. ``samples`` (1, 4
    or 9): completions of the same input, seeds ``seed, seed + 1, ...``, sampled as one
    batch and shown as a grid (the frame, the entropy map); ``run`` is then the list of
    runs, and the chart and progress follow the first. ``guidance``: how strongly a class is
    followed (``pixelnet.sample``'s; 1 = the model as trained); ``min_p``: values less likely
    than this times the most likely one are never drawn (``pixelnet.sample``'s; 0 = none)."""
    ds, arch, temperature, seed, rate, known, gen = start_inputs(
        canvas, mask, dataset, architecture, temperature, seed, speed)
    count, guidance = parse_samples(samples), parse_guidance(guidance)
    min_p = parse_min_p(min_p)
    model = load_model(ds, arch)
    y = parse_label(label, model)
    C, L = known.shape[0], model.cfg.levels
    known = model_levels(known, ds, L)          # the canvas as this model sees it
    runs = [Run.start(ds, arch, known, gen, temperature, L, y, guidance, min_p)
            for _ in range(count)]
    run, state = runs[0], (runs[0] if count == 1 else runs)
    status = describe(model)
    if not gen.any():
        gr.Warning("Nothing to generate: paint the mask canvas where pixels should be "
                   "generated (or pick a preset).")
    jobs = [batcher.Job(model, known, gen, temperature, (seed + k) % MAX_SEED, y, guidance,
                        min_p) for k in range(count)]
    job = jobs[0]
    batcher.submit(jobs)
    t0 = time.perf_counter()
    asked = STOPS.asker(request and request.session_hash, "generate")

    def frame(pos):
        return im.grid([r.frame(pos) for r in runs])

    try:
        with VIEWERS.watching():
            yield frame(None), None, f"Starting… {status}", "", None, state
            n = job.total // C
            for frame_no in follow(jobs, runs, rate, asked):
                i, j, c = run.last
                k = int(run.done.sum()) // C
                channel = f" {im.CHANNEL_NAMES[C][c]}" if C > 1 else ""
                progress = (f"Pixel {k} of {n} at ({i}, {j}){channel} · "
                            f"{k / max(time.perf_counter() - t0, 1e-6):.0f} pixels/s · {status}")
                t = time.thread_time()
                chart = gr.skip()
                if frame_no % VIEWERS.chart_every() == 1 or VIEWERS.chart_every() == 1:
                    chart = run.chart(i, j, c, f"pixel ({i}, {j}): softmax over {L} levels")
                image = frame((i, j))
                VIEWERS.spent(time.thread_time() - t, count)
                yield image, chart, progress, gr.skip(), gr.skip(), state
    finally:
        for jb, r in zip(jobs, runs):
            jb.cancel()               # Stop or a closed page: the rest of the batch goes on
            r.stopped = not r.finished          # Inspect says so
    if not run.finished:                        # Stop: the frame as it stands
        k = int(run.done.sum()) // C
        yield frame(None), gr.skip(), stopped_line(k, n, status), "", None, state
        return
    nats, ent = run.nll, run.entropy
    seconds = time.perf_counter() - t0
    many = "" if count == 1 else (
        f"**NLL of the {count} samples (seeds {seed} to {seed + count - 1}):** "
        f"{', '.join(f'{r.nll:.2f}' for r in runs)} nats. The first: ")
    result = (f"{many}**NLL of this sample: {nats:.2f} nats** "
              f"({pixelnet.bits_per_dim(nats, known.size):.3f} bits/dim{of_levels(model, ds)}) "
              f"under {ARCH_NAMES[arch]}"
              f"{'' if y is None else f' given class {label}'}"
              f"{'' if y is None or guidance == 1 else f' (drawn at class strength {guidance:g})'}; "
              f"{int(gen.sum())} of {gen.size} pixels generated in {seconds:.1f} s. "
              f"Uncertainty map (where the model was unsure): entropy per pixel, 0 bits "
              f"(black: sure) to {max(float(r.entropy.max()) for r in runs):.2f} bits (yellow). "
              "Click any pixel to inspect it.")
    # the chart left on screen: the generated pixel the model was least sure of (the last
    # one is mostly background, one value at p = 1); the entropy map shows where it is
    ent = run.entropy * run.generated.any(0)                      # (H, W) bits, kept ones 0
    pos = divmod(int(ent.argmax()), ent.shape[1]) if ent.max() > 0 else \
        (run.last[:2] if run.last else None)
    chart = run.chart(*pos, title=f"most uncertain pixel ({pos[0]}, {pos[1]}), "
                                  f"{float(ent[pos]):.2f} bits") if pos else None
    ents = [im.heatmap(r.entropy, vmax=max(float(q.entropy.max()) for q in runs)) for r in runs]
    yield frame(None), chart, f"Done. {status}", result, im.grid(ents), state


INSPECT_JS = """() => {
  // A click on the sample, as fractions of the image's box, for Inspect: Gradio's own select
  // event needs the image loaded, which during a run (a new frame every few tens of ms) it
  // rarely is, and it misplaces clicks on an image shown larger than its pixels.
  document.addEventListener('click', e => {
    const img = e.target.closest('#frame') && e.target.closest('#frame').querySelector('img');
    const box = document.querySelector('#inspect-xy textarea, #inspect-xy input');
    if (!img || !box) return;
    const r = img.getBoundingClientRect();
    const fx = (e.clientX - r.left) / r.width, fy = (e.clientY - r.top) / r.height;
    if (fx < 0 || fx >= 1 || fy < 0 || fy >= 1) return;
    box.value = `${fx.toFixed(5)} ${fy.toFixed(5)} ${Date.now()}`;     // always a change
    box.dispatchEvent(new Event('input', {bubbles: true}));
  }, true);
}"""
INSPECT_HELP = ("**Inspect** a pixel, during a run or after: click it in the sample, or give its "
                "row and column (0, 0 top left) and press Enter. On a grid, Sample picks the "
                "cell (1 top left, row by row).")


def inspect_pixel(run: Run | None, i: int, j: int) -> tuple[object, str]:
    """The distribution(s) the model had at pixel ``(i, j)`` of the session's run: during
    the run (every pixel drawn so far, and kept ones whose earlier pixels are all known),
    after Stop, or once it has finished."""
    if run is None:
        raise fail("generate an image first, then click one of its pixels (or give its row "
                   "and column and press Inspect)")
    C, H, W = run.image.shape
    if not (0 <= i < H and 0 <= j < W):
        raise fail(f"pixel ({i}, {j}) is outside the {H}x{W} image: rows and columns go from "
                   f"0 to {H - 1} and {W - 1}")
    gen, done = run.generated[:, i, j], run.done[:, i, j]
    if not run.finished and (~gen & ~run.have[:, i, j]).any():
        try:
            run.complete_kept(registry.get_model(run.dataset, run.arch), i, j)
        except ValueError:
            pass                        # the checkpoint went bad since: say what is known
    have = run.have[:, i, j]
    where = f"**Pixel ({i}, {j})** (row {i}, column {j})"
    if gen.any() and not done.any():
        return None, (f"{where} was not generated: the run was stopped before it." if run.stopped
                      else f"{where} has not been generated yet; it will be, in raster order.")
    kind = ("kept from your canvas" if not gen.any() else "generated" if done.all() else
            "being generated")
    names = im.CHANNEL_NAMES.get(C)
    shown = [c for c in range(C) if not gen[c] or done[c]]
    value = ", ".join(f"{names[c]} {int(run.image[c, i, j])}" for c in shown)
    of = f" of {run.levels} levels" if run.levels != DATASET_INFO[run.dataset].levels else ""
    if not have.any():                  # a kept pixel after a pixel still to come
        later = ("the run was stopped before them" if run.stopped else
                 "it is shown once they are")
        return None, (f"{where}, {kind}: value {value}{of}. The model's distribution there "
                      f"depends on earlier pixels that are not generated yet ({later}).")
    rest = ""
    if not have.all():
        rest = (" (the run was stopped before the rest)" if run.stopped else
                " (the rest once it is sampled)")
    chart = run.chart(i, j, title=f"pixel ({i}, {j}): {kind}")
    return chart, (f"{where}, {kind}: value {value}{of}. The bars are the model's softmax "
                   f"there given every earlier pixel, at temperature {run.temperature:g}{rest}.")


def inspect_at(run: Run | list[Run] | None, sample=1, row=None, column=None
               ) -> tuple[object, str]:
    """Inspect from the keyboard: pixel (``row``, ``column``) of sample ``sample`` (1 to the
    number of samples; 1 for a single one)."""
    runs = run if isinstance(run, list) else [run]
    k = parse_index(sample, "sample", 1, len(runs)) - 1
    if runs[k] is None:
        return inspect_pixel(None, 0, 0)
    _, H, W = runs[k].image.shape
    i, j = parse_index(row, "row", 0, H - 1), parse_index(column, "column", 0, W - 1)
    chart, text = inspect_pixel(runs[k], i, j)
    return chart, text if len(runs) == 1 else f"Sample {k + 1}: {text}"


def inspect_point(run: Run | list[Run] | None, point: str) -> tuple:
    """Inspect the pixel under a click on the sample (on a grid of samples, in the cell
    clicked): ``point`` is ``"fx fy ..."``, the click's place as fractions of the image's
    width and height (:data:`INSPECT_JS`). Returns ``(chart, text, sample, row, column)``,
    the last three for the keyboard inputs, which then name the pixel shown."""
    try:
        fx, fy = (float(v) for v in str(point).split()[:2])
        if not (0 <= fx < 1 and 0 <= fy < 1):
            raise ValueError
    except ValueError:
        raise fail(f"a click at {point!r} is not on the sample") from None
    if run is None:
        return (*inspect_pixel(None, 0, 0), gr.skip(), gr.skip(), gr.skip())
    runs = run if isinstance(run, list) else [run]
    _, H, W = runs[0].image.shape
    h, w = H * im.SCALE, W * im.SCALE                           # one sample, on screen
    n, gap = math.isqrt(len(runs) - 1) + 1, im.GRID_GAP if len(runs) > 1 else 0
    hit = im.grid_cell(fx * (n * (w + gap) - gap), fy * (n * (h + gap) - gap), len(runs), h, w)
    if hit is None:
        raise fail("click inside one of the samples")
    k, x, y = hit
    i, j = int(y) // im.SCALE, int(x) // im.SCALE
    return (*inspect_at(run, k + 1, i, j), k + 1, i, j)


def model_status(dataset: str, architecture: str) -> str:
    """The status line of the chosen model (trained or not)."""
    try:
        return describe(registry.get_model(dataset, architecture))
    except ValueError as e:
        return f"⚠️ {e}"


def temperature_note(temperature, dataset: str | None = None,
                     architecture: str | None = None) -> str:
    """The line under the temperature slider: what this temperature does (and, where it is
    the suggested temperature of the model ``(dataset, architecture)``, why)."""
    try:
        t = parse_temperature(temperature)
    except ValueError:
        return ""
    try:
        suggested = t != 1 and t == registry.suggested_temperature(dataset, architecture)
    except (TypeError, ValueError):       # no model named, or not one of the app's
        suggested = False
    if suggested:
        ds, arch = registry.dataset_key(dataset), registry.arch_key(architecture)
        return (f"Temperature {t:g}, suggested for the {registry.DISPLAY[ds]} {ARCH_NAMES[arch]} "
                "model: a slightly sharpened softmax, so that a rare value (a stray pixel of "
                "another colour) seldom derails the rest. 1 = the model as trained.")
    if t == 0:
        return ("**Temperature 0: the most likely value every time.** On MNIST the most likely "
                "value of the first pixels is black, so greedy sampling keeps choosing black: "
                "from a blank canvas the digit comes out all black.")
    how = "sharpened: safer" if t < 1 else "as trained" if t == 1 else "flattened: wilder"
    return (f"Temperature {t:g}: each value is drawn from the softmax ({how}). "
            "0 = the most likely value every time.")


def architecture_note(dataset: str, architecture: str) -> str:
    """A line for Multi-Scale models (their generation order), else empty."""
    try:
        cfg = registry.get_model(dataset, architecture).cfg
    except ValueError:
        return ""
    s = getattr(cfg, "scale", None)
    if s is None:
        return ""
    nth = {2: "2nd", 3: "3rd"}.get(s, f"{s}th")
    return (f"**Multi-Scale order:** a small model first draws a coarse "
            f"{cfg.height // s}x{cfg.width // s} grid (every {nth} pixel of every {nth} row), "
            "then a second model fills in the rest, conditioned on that grid.")


def note_update(text: str) -> dict:
    """A note line's update: shown with ``text``, hidden when it is empty."""
    return gr.update(value=text, visible=bool(text))


ENTROPY_NOTE = ("**Where the model was unsure.** Each pixel of the uncertainty map is the entropy "
                "of the softmax it was drawn from: black = sure (one value had nearly all the "
                "probability), yellow = the most uncertain pixel of the run.")


def change_dataset(dataset: str, architecture: str):
    """New dataset: its first example with the bottom half to complete, its architectures
    (showing the one the app suggests for it, if any, else keeping the current one)."""
    archs = [ARCH_NAMES[a] for a in architectures(dataset)]
    best = registry.suggested_architecture(dataset)
    arch = ARCH_NAMES[best] if best else architecture if architecture in archs else archs[0]
    c, m = first_example(dataset)
    return c, m, gr.update(choices=archs, value=arch), model_status(dataset, arch), \
        empty_chart(dataset, arch)


def empty_chart(dataset: str, architecture: str):
    """The softmax chart before a run: the chosen model's levels (a coarse model has fewer
    than its dataset), nothing sampled yet."""
    _, C, L, _, _ = shape(dataset)
    try:
        L = registry.get_model(dataset, architecture).cfg.levels
    except ValueError:
        pass                            # a broken checkpoint: the status line says so
    return im.bar_chart([None] * C, [None] * C, L)



# ----------------------------------------------------------------------------- the tab

@dataclass
class GenerateTab:
    """The Generate tab's components that the other tabs read (Compare runs the same canvas,
    mask and controls) and its dataset event (they follow a dataset change)."""
    canvas: gr.ImageEditor
    mask_canvas: gr.ImageEditor
    dataset: gr.Dropdown
    temperature: gr.Slider
    seed: gr.Number
    speed: gr.Radio
    guidance: gr.Slider
    min_p: gr.Slider
    dataset_changed: gr.events.Dependency


def build_generate_tab(demo: gr.Blocks) -> GenerateTab:
    """Lay out the Generate tab in the current Gradio context and wire its events (``demo``:
    the app, for its load events)."""
    ds0 = DEFAULTS["dataset"]
    canvas0, mask0 = first_example(ds0)
    size = (DATASET_INFO[dataset_key(ds0)].width * im.SCALE,) * 2
    gray_brush = gr.Brush(colors=["#ffffff", "#808080", "#000000"], default_size=12,
                          color_mode="defaults")
    run_state = gr.State(None)
    # Five columns, in the page's order (Tab order, a phone's single column): the sample,
    # Inspect, the two editors, the controls. demo/theme.py shows them on a wide screen as
    # canvas | mask | sample over controls | Inspect | sample: Inspect's answer sits under
    # the mask editor, beside the sample and its chart.
    with gr.Row(equal_height=False, elem_id="generate-row"):
        with gr.Column(scale=1, min_width=320, elem_id="sample-col"):
            with gr.Row():
                go = gr.Button("Generate", variant="primary", elem_id="generate")
                stop = gr.Button("Stop", variant="stop", elem_id="stop")
            frame = gr.Image(preview(canvas0, mask0, ds0),
                             label="Sample", type="numpy",
                             format="png", interactive=False, elem_id="frame",
                             elem_classes="pixelated", height=FRAME_H,
                             alt_text="the sample: kept pixels, generated ones, and the ones "
                                      "still to generate in slate blue")
            chart = gr.Image(empty_chart(ds0, DEFAULTS["architecture"]), type="pil",
                             format="png", show_label=False, interactive=False,
                             elem_id="chart", label="softmax of the current pixel",
                             height=CHART_H, buttons=[],
                             alt_text="bar chart: the model's softmax for the current "
                                      "pixel, the sampled value in red")
            progress = gr.Markdown("", elem_id="progress", label="progress")
        with gr.Column(scale=1, min_width=300, elem_id="inspect-panel"):
            # by a click on the sample, or from the keyboard: the answer first
            inspect_text = gr.Markdown(INSPECT_HELP, elem_id="inspect-text")
            inspect_xy = gr.Textbox("", visible="hidden", elem_id="inspect-xy",
                                    label="the point clicked on the sample")
            inspect_chart = gr.Image(None, type="pil", format="png", interactive=False,
                                     show_label=False, elem_id="inspect", height=CHART_H,
                                     buttons=[], label="softmax of the inspected pixel",
                                     alt_text="bar chart: the model's softmax at the inspected "
                                              "pixel, its value in red")
            with gr.Row(equal_height=False, elem_id="inspect-controls"):
                inspect_sample = raw(gr.Number(1, precision=0, label="Sample", visible=False,
                                               elem_id="inspect-sample", min_width=70))
                inspect_row = raw(gr.Number(None, precision=0, label="Row",
                                            elem_id="inspect-row", min_width=70))
                inspect_col = raw(gr.Number(None, precision=0, label="Column",
                                            elem_id="inspect-col", min_width=70))
                inspect_go = gr.Button("Inspect", size="sm", elem_id="inspect-go", min_width=80,
                                       scale=0)
        with gr.Column(scale=1, min_width=300, elem_id="canvas-col"):
            canvas = image_input(
                canvas0, label="Canvas",
                type="pil", image_mode="RGBA", sources=[], format="png",
                brush=gray_brush, eraser=gr.Eraser(default_size=12),
                canvas_size=size, layers=False, transforms=[],
                elem_id="canvas", elem_classes="pixelated", height=EDITOR_H)
        with gr.Column(scale=1, min_width=300, elem_id="mask-col"):
            mask_canvas = image_input(
                mask0, label="Mask (red = generate)",
                type="pil", image_mode="RGBA", sources=[], format="png",
                brush=gr.Brush(colors=[("#ff2828", 0.8)], default_size=14,
                               color_mode="fixed"),
                eraser=gr.Eraser(default_size=14), canvas_size=size, layers=False,
                transforms=[], elem_id="mask", elem_classes="pixelated",
                height=EDITOR_H)
        with gr.Column(scale=1, min_width=300, elem_id="controls-col"):
            with gr.Row():
                preset_btns = {p: gr.Button(p, size="sm", elem_id=f"preset-{k}")
                               for k, p in enumerate(PRESETS)}
            upload_btn = gr.UploadButton("Upload an image (any size)", file_count="single",
                                         size="sm", elem_id="upload")
            with gr.Row():
                dataset = raw(gr.Dropdown(list(DATASETS), value=ds0, label="Dataset",
                                          elem_id="dataset"))
                architecture = raw(gr.Dropdown(
                    [ARCH_NAMES[a] for a in architectures(ds0)],
                    value=DEFAULTS["architecture"], label="Architecture", elem_id="arch"))
            arch0_note = architecture_note(ds0, DEFAULTS["architecture"])
            arch_note = gr.Markdown(arch0_note, visible=bool(arch0_note), elem_id="arch-note")
            with gr.Row():
                temperature = raw(gr.Slider(0, MAX_TEMPERATURE, DEFAULTS["temperature"],
                                            step=0.05,
                                            label="Temperature (0 = most likely value)",
                                            elem_id="temperature"))
                seed = raw(gr.Number(DEFAULTS["seed"], precision=0, label="Seed"))
                label = raw(gr.Dropdown([ANY], value=ANY, label="Class",
                                        elem_id="label", interactive=False))
            temp_note = gr.Markdown(temperature_note(DEFAULTS["temperature"]),
                                    elem_id="temperature-note")
            guidance = raw(gr.Slider(0, MAX_GUIDANCE, DEFAULTS["guidance"], step=0.5,
                                     label=GUIDANCE_LABEL, elem_id="guidance"))
            min_p = raw(gr.Slider(0, MAX_MIN_P, DEFAULTS["min_p"], step=0.01, label=MIN_P_LABEL,
                                  elem_id="min-p"))
            speed = raw(gr.Radio(list(SPEEDS), value=DEFAULTS["speed"],
                                 label="Animation speed (Slow 20, Medium 80, Fast 300 "
                                       "pixels/s; Max: as fast as it samples)"))
            samples = raw(gr.Radio(list(SAMPLES), value=1, elem_id="samples",
                                   label="Samples (completions of the same input, "
                                         "as a grid)"))
            status = gr.Markdown(model_status(ds0, DEFAULTS["architecture"]))
    with gr.Row(equal_height=False):
        entropy = gr.Image(None, type="numpy", format="png", interactive=False,
                           label="Uncertainty (entropy)", elem_classes="pixelated",
                           alt_text="entropy map: how uncertain the model was at each pixel",
                           elem_id="entropy", height=300, scale=1)
        gr.Markdown(ENTROPY_NOTE, elem_id="entropy-note")
    result = gr.Markdown("", elem_id="result", label="result")

    controls = [dataset, architecture, temperature, seed, speed, label, samples, guidance, min_p]
    outputs = [frame, chart, progress, result, entropy, run_state]
    # The page's run sends its images inside its updates (components.inlined): each frame
    # shows with its progress line. /generate, for API clients, sends image files.
    go.click(inlined(generate), [canvas, mask_canvas, *controls], outputs, postprocess=False,
             js=RUN_JS, api_name="generate_page", api_visibility="private",
             concurrency_id="sampler")
    gr.Button(visible=False).click(generate, [canvas, mask_canvas, *controls], outputs,
                                   api_name="generate", concurrency_id="sampler")
    # Stop ends the page's run at its next frame (runs.Stops); a closed page cancels it
    stop.click(press_stop("generate"), None, None, queue=False, api_visibility="private",
               show_progress="hidden")
    # The editors' own events skip the queue and show no spinner: they must follow a preset
    # or a stroke at once, and a failure is the app's message, never an "Error" badge in
    # place of an editor's picture (which then keeps its content).
    at_once = dict(api_visibility="private", queue=False, show_progress="hidden")
    previewed = dict(fn=preview, inputs=[canvas, mask_canvas, dataset], outputs=frame, **at_once)
    # the key of the drawing last sent to the editors (see sync_drawn); set by the page too
    sent = gr.Textbox(drawing_key(canvas_levels(canvas0, ds0)), visible="hidden",
                      elem_id="drawing-key", label="drawing sent")
    # Presets are drawn in the page (demo/editors.py): the editors and the preview change at
    # once. Those that keep the drawing read it from the mask editor and name it (`sent`);
    # where that is not the canvas's drawing (a stroke the mask editor had not shown yet),
    # the server sets the exact pictures, and the preview unless a run has started since.
    sent_frame = gr.Image(None, type="numpy", format="png", visible="hidden",
                          interactive=False, label="preview sent")
    demo.load(None, js=placeholders_js(ds0))
    canvas.input(None, js=shown_js("canvas"), **at_once)
    mask_canvas.input(None, js=shown_js("mask"), **at_once)
    for name, btn in preset_btns.items():
        if name in REPLACING:
            # the dataset only: reading an editor's value first makes it export its layers
            btn.click(None, [dataset], [canvas, mask_canvas, frame, sent],
                      js=preset_js(name), **at_once)
        else:
            btn.click(None, [dataset, mask_canvas], [mask_canvas, frame, sent], js=preset_js(name),
                      **at_once).then(partial(preset_sent, name), [dataset, canvas, seed, sent],
                                      [canvas, mask_canvas, sent, sent_frame], **at_once
                                      ).success(None, sent_frame, frame,
                                                js=PREVIEW_JS, **at_once)
    upload_btn.upload(upload, [upload_btn, dataset], [canvas, mask_canvas],
                      api_name="upload", show_progress="hidden").success(**previewed)
    canvas.input(sync_drawn, [canvas, mask_canvas, dataset, sent], [mask_canvas, sent],
                 trigger_mode="always_last", **at_once)
    ds_evt = dataset.input(change_dataset, [dataset, architecture],
                           [canvas, mask_canvas, architecture, status, chart],
                           api_visibility="private")
    ds_evt.success(**previewed)
    arch_noted = dict(fn=lambda d, a: note_update(architecture_note(d, a)),
                      inputs=[dataset, architecture], outputs=arch_note, **at_once)
    ds_evt.success(**arch_noted)
    architecture.input(**arch_noted)
    temperature.change(temperature_note, [temperature, dataset, architecture], temp_note,
                       **at_once)
    # a newly chosen model or class starts at its suggested temperature, tail cut and class
    # strength (1, 0 and 2 but for emoji Multi-Scale and Fashion: registry.SUGGESTED,
    # SUGGESTED_BY_CLASS, SUGGESTED_STRENGTH)
    suggested = dict(fn=registry.suggested_sampling, inputs=[dataset, architecture, label],
                     outputs=[temperature, min_p, guidance], **at_once)
    ds_evt.success(**suggested)
    architecture.input(**suggested)
    label.input(**suggested)
    labelled = dict(fn=label_control, inputs=[dataset, architecture, label], outputs=label,
                    api_visibility="private")
    ds_evt.success(**labelled)
    architecture.input(model_status, [dataset, architecture], status, api_visibility="private")
    architecture.input(empty_chart, [dataset, architecture], chart, api_visibility="private")
    architecture.input(**labelled)
    # Inspect reads the run while it goes on (the session's state is the Run the stream
    # fills): off the queue, so that it never waits behind the runs
    # (its chart inside the update, as the run's frames: components.inlined)
    inspected = [inspect_chart, inspect_text]
    inspect_xy.change(inlined(inspect_point), [run_state, inspect_xy],
                      [*inspected, inspect_sample, inspect_row, inspect_col], postprocess=False,
                      **at_once)
    demo.load(None, js=INSPECT_JS)
    keyboard = dict(fn=inlined(inspect_at),
                    inputs=[run_state, inspect_sample, inspect_row, inspect_col],
                    outputs=inspected, postprocess=False, **at_once)
    inspect_go.click(**keyboard)
    for box in (inspect_sample, inspect_row, inspect_col):
        box.submit(**keyboard)
    samples.change(lambda n: gr.update(visible=str(n) != "1", value=1), samples,
                   inspect_sample, **at_once)
    demo.load(model_status, [dataset, architecture], status, api_visibility="private")
    demo.load(**labelled)
    return GenerateTab(canvas, mask_canvas, dataset, temperature, seed, speed, guidance, min_p,
                       ds_evt)

