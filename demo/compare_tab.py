"""The Compare tab: the Generate tab's canvas, mask and seed through every architecture at
once, side by side, with each one's NLL and sampling time.

``/compare`` (the API) streams one side-by-side image and the table; the tab itself shows one
image per architecture, named by its component's label.
"""
from __future__ import annotations

import time
from typing import Iterator

import gradio as gr
import numpy as np
import torch

import pixelnet
from demo import batcher
from demo import imaging as im
from demo.components import inlined, raw
from demo.generate_tab import FRAME_H, GenerateTab
from demo.inputs import (ANY, DEFAULTS, fail, label_choices, label_control, load_model,
                         model_levels, parse_guidance, parse_label, parse_min_p, shape,
                         start_inputs)
from demo.registry import (ARCH_NAMES, architectures, class_names, coarse, of_levels, title,
                           training)
from demo.runs import STOPS, VIEWERS, Run, follow, press_stop, stopped_line


COMPARE_PLACEHOLDER = ("*Nothing compared yet.* Press **Compare all architectures**: each "
                       "panel below fills the Generate tab's mask from the same canvas and seed, "
                       "pixel by pixel, and a table of each model's NLL and sampling time "
                       "appears here.")


def compare(canvas: dict | None = None, mask: dict | None = None,
            dataset: str = DEFAULTS["dataset"], temperature: float = DEFAULTS["temperature"],
            seed: float = DEFAULTS["seed"], speed: str = DEFAULTS["speed"],
            label: str = DEFAULTS["label"], guidance: float = DEFAULTS["guidance"],
            min_p: float = DEFAULTS["min_p"],
            request: gr.Request | None = None) -> Iterator[tuple]:
    """The same canvas, mask and seed through every architecture, side by side (the API's
    ``/compare``): yields ``(frame, table)``, the frames in one image with their names above;
    the table ends with each model's NLL and sampling time (that of the batch its run was
    sampled in, with other users' runs of the same model)."""
    for archs, frames, table in compare_stream(canvas, mask, dataset, temperature, seed, speed,
                                               label, guidance, min_p, request):
        yield im.side_by_side(frames, [ARCH_NAMES[a] for a in archs]), table


def compare_panels(canvas: dict | None = None, mask: dict | None = None,
                   dataset: str = DEFAULTS["dataset"], temperature: float = DEFAULTS["temperature"],
                   seed: float = DEFAULTS["seed"], speed: str = DEFAULTS["speed"],
                   label: str = DEFAULTS["label"], guidance: float = DEFAULTS["guidance"],
                   min_p: float = DEFAULTS["min_p"],
                   request: gr.Request | None = None) -> Iterator[tuple]:
    """Compare in the UI: one image per architecture of ``pixelnet.ARCHITECTURES`` (its name
    is the component's label; those not offered for the dataset hidden), then the table."""
    for archs, frames, table in compare_stream(canvas, mask, dataset, temperature, seed, speed,
                                               label, guidance, min_p, request):
        shown = dict(zip(archs, frames))
        yield (*(gr.update(value=shown[a], visible=True) if a in shown else
                 gr.update(visible=False) for a in pixelnet.ARCHITECTURES), table)


def compare_stream(canvas, mask, dataset, temperature, seed, speed, label, guidance=1.0,
                   min_p=0.0, request: gr.Request | None = None
                   ) -> Iterator[tuple[list[str], list[np.ndarray], str]]:
    """Run every architecture of ``dataset`` on the same input: yields ``(architecture keys,
    their frames, progress or the final table)``. The page's Stop (``request``: its session)
    or a closed page cancels every run (the batcher's per-run cancel; the other users' runs
    go on); after Stop the last frames stand, with "Stopped" in place of the table."""
    ds = shape(dataset)[0]
    archs = architectures(ds)
    ds, _, temperature, seed, rate, known, gen = start_inputs(
        canvas, mask, ds, archs[0], temperature, seed, speed)
    guidance, min_p = parse_guidance(guidance), parse_min_p(min_p)
    models = {a: load_model(ds, a) for a in archs}
    ys = compare_labels(label, [models[a] for a in archs])
    C = known.shape[0]
    # each model sees the canvas at its own levels (a coarse colour model: quantized)
    seen = {a: model_levels(known, ds, models[a].cfg.levels) for a in archs}
    runs = [Run.start(ds, a, seen[a], gen, temperature, models[a].cfg.levels, y, guidance, min_p)
            for a, y in zip(archs, ys)]
    jobs = [batcher.Job(models[a], seen[a], gen, temperature, seed, y, guidance, min_p)
            for a, y in zip(archs, ys)]
    batcher.submit(jobs)
    asked = STOPS.asker(request and request.session_hash, "compare")
    try:
        with VIEWERS.watching():
            for _ in follow(jobs, runs, rate, asked):
                k = max(int(r.done.sum()) for r in runs) // C
                t = time.thread_time()
                frames = [r.frame(r.last[:2] if r.last else None) for r in runs]
                VIEWERS.spent(time.thread_time() - t, 1)
                yield archs, frames, f"Pixel {k} of {jobs[0].total // C}…"
    finally:
        for job in jobs:
            if not job.scored():
                job.cancel()          # Stop or a closed page
    if not all(r.finished for r in runs):
        k = max(int(r.done.sum()) for r in runs) // C
        yield archs, [r.frame(None) for r in runs], stopped_line(k, jobs[0].total // C)
        return
    rows = ["| Architecture | class | NLL (nats) | bits/dim | sampling time (batch) | model |",
            "|---|---|---|---|---|---|"]
    for a, run, job, y in zip(archs, runs, jobs, ys):
        res = job.result()
        cls = label if y is not None else (ANY if class_names(models[a]) or label == ANY
                                           else f"{ANY} (no classes)")
        rows.append(f"| {ARCH_NAMES[a]} | {cls} | {run.nll:.2f} | "
                    f"{pixelnet.bits_per_dim(run.nll, known.size):.3f}{of_levels(models[a], ds)} | "
                    f"{res['seconds']:.2f} s "
                    f"({res['batch_size']} run{'s' if res['batch_size'] > 1 else ''}) | "
                    f"{title(models[a])}: {training(models[a])} |")
    if any(coarse(m, ds) for m in models.values()):
        rows.append("\nBits/dim of N levels: that model predicts N levels a channel (the "
                    "image quantized), so its NLL is not comparable with a 256-level model's.")
    yield archs, [r.frame(None) for r in runs], "\n".join(rows)


def compare_labels(label, models: list[torch.nn.Module]) -> list[int | None]:
    """Each model's class index for ``label`` in Compare: the class for the
    class-conditional models, None (no class) for the others; the app's message when no
    model knows the label."""
    if label is None or label == "" or label == ANY:
        return [None] * len(models)
    if not any(isinstance(label, str) and label in class_names(m) for m in models):
        choices = label_choices(models)[0]
        raise fail(f"unknown label {label!r}; choose one of {', '.join(choices)}"
                   + ("" if len(choices) > 1 else " (no model here is class-conditional)"))
    return [parse_label(label, m) if class_names(m) else None for m in models]



def build_compare_tab(demo: gr.Blocks, g: GenerateTab) -> None:
    """Lay out the Compare tab in the current Gradio context and wire its events; it runs
    the Generate tab ``g``'s canvas, mask and controls (``demo``: the app, for its load
    event)."""
    ds0 = DEFAULTS["dataset"]
    gr.Markdown("The canvas, mask and seed of the Generate tab through **every "
                "architecture** at once, with each one's NLL and sampling time.")
    with gr.Row():
        compare_label = raw(gr.Dropdown([ANY], value=ANY, label="Class",
                                        elem_id="compare-label", interactive=False))
        compare_btn = gr.Button("Compare all architectures", variant="primary",
                                elem_id="compare")
        compare_stop = gr.Button("Stop", variant="stop", elem_id="compare-stop")
    compare_table = gr.Markdown(COMPARE_PLACEHOLDER, label="table",
                                elem_id="compare-table")
    with gr.Row(equal_height=True):
        offered = architectures(ds0)
        compare_imgs = [gr.Image(None, type="numpy", format="png", interactive=False,
                                 label=ARCH_NAMES[a], elem_id=f"compare-{a}",
                                 elem_classes=["pixelated", "compare-panel"], height=FRAME_H,
                                 buttons=[],
                                 visible=a in offered, min_width=200,
                                 alt_text=f"{ARCH_NAMES[a]}'s completion")
                        for a in pixelnet.ARCHITECTURES]
    compare_img = gr.Image(None, type="numpy", format="png", visible=False,
                           label="side by side")      # the API's /compare output

    compare_inputs = [g.canvas, g.mask_canvas, g.dataset, g.temperature, g.seed, g.speed,
                      compare_label, g.guidance, g.min_p]
    # its images inside its updates, each panel with its progress line (components.inlined)
    compare_btn.click(inlined(compare_panels), compare_inputs, [*compare_imgs, compare_table],
                      postprocess=False, api_visibility="private", concurrency_id="sampler")
    # /compare for API clients, its outputs as before: (side by side, table)
    gr.Button(visible=False).click(compare, compare_inputs, [compare_img, compare_table],
                                   api_name="compare", concurrency_id="sampler")
    # Stop ends the page's runs at their next frame (runs.Stops); a closed page cancels them
    compare_stop.click(press_stop("compare"), None, None, queue=False, api_visibility="private",
                       show_progress="hidden")
    compare_labelled = dict(fn=lambda d, lb: label_control(d, None, lb),
                            inputs=[g.dataset, compare_label], outputs=compare_label,
                            api_visibility="private")
    g.dataset_changed.success(**compare_labelled)
    g.dataset_changed.success(lambda d: [gr.update(visible=a in architectures(d))
                                         for a in pixelnet.ARCHITECTURES], g.dataset,
                              compare_imgs, api_visibility="private")
    demo.load(**compare_labelled)
