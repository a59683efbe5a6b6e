"""Evaluate the trained checkpoints and describe them for the repository.

    python training/publish.py [--dir checkpoints] [--samples 64] [--skip-eval]

For every ``{dataset}_{arch}.pt`` in ``--dir``: measures the test NLL (``training/evaluate.py``;
for a class-conditional model also given the true classes) and how recognisable its samples
are (``training/recognise.py``: a classifier's confidence on free samples and, for a
class-conditional model, its accuracy on samples of each class), stores them in the
checkpoint's metadata, draws a sample grid ``{stem}_samples.png`` (``pixelnet.sample``; one
row per class for a class-conditional model), then writes ``manifest.json`` (one entry per
file) and ``README.md`` (a table) in the same folder.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import save_image

import pixelnet
from pixelnet.data import DATASETS
from pixelnet.sampling import CLASS_STRENGTH
from training.evaluate import evaluate
from training.recognise import classifier_path, load_classifier, recognisability

REPO = Path(__file__).resolve().parents[1]

TEST_KEYS = ("test_nll", "test_bits_per_dim", "test_split")
GIVEN_KEYS = ("test_nll_given_class", "test_bits_per_dim_given_class")   # class-conditional
# the project's targets (issue 4) and the paper's numbers (PAPER.md), for the README table
TARGETS = {("mnist", "diagonal_bilstm"): "≤ 84 (paper: 79.20 on 60k digits)",
           ("mnist", "row_lstm"): "≤ 85",
           ("mnist", "pixelcnn"): "≤ 86 (paper: ~81.3)",
           **{("fashion", a): "best arch ≤ 3.0" for a in pixelnet.ARCHITECTURES}}


def sample_grid(model: torch.nn.Module, path: Path, n: int = 64, seed: int = 0,
                guidance: float = 1.0) -> float:
    """Draw ``n`` samples (fixed seed) into a PNG grid, upscaled 2x; returns the seconds taken.
    A class-conditional model draws one row per class (``n // classes`` samples of each, at
    least 4) instead, at ``guidance``."""
    t = time.perf_counter()
    K = model.cfg.classes
    if K:
        per = max(4, n // K)
        x = pixelnet.sample(model, per * K, seed=seed, y=torch.arange(K).repeat_interleave(per),
                            guidance=guidance)
        nrow = per
    else:
        x, nrow = pixelnet.sample(model, n, seed=seed), round(n ** 0.5)
    seconds = time.perf_counter() - t
    img = F.interpolate(x.float() / (model.cfg.levels - 1), scale_factor=2, mode="nearest")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(img, path, nrow=nrow, padding=2, pad_value=0.5)
    return seconds


def describe(path: Path, skip_eval: bool = False, samples: int = 64, seed: int = 0,
             limit: int | None = None, measure: bool = True) -> dict:
    """The manifest entry of one checkpoint, after measuring (and storing) its test NLL and
    recognisability and drawing its sample grid; with ``measure=False`` only from what the
    checkpoint stores (and its existing grid)."""
    model = pixelnet.load_checkpoint(path)
    meta = model.metadata
    keys = TEST_KEYS + (GIVEN_KEYS if model.cfg.classes else ())
    test = {}
    if not (skip_eval and all(k in meta for k in keys)):
        r = evaluate(path, "test", limit=limit)
        test = dict(test_nll=r["nats"], test_bits_per_dim=r["bits_per_dim"],
                    test_split=r["split_description"])
        if model.cfg.classes:
            test.update(test_nll_given_class=r["nats_given_class"],
                        test_bits_per_dim_given_class=r["bits_per_dim_given_class"])
    clf = classifier_path(meta["dataset"])
    clf = load_classifier(clf) if clf.exists() else None
    stored = meta.get("recognisable") or {}
    # figures of an older classifier (other classes or accuracy) are measured again
    current = clf is not None and stored.get("classifier_test_accuracy") == \
        clf.metadata.get("test_accuracy") and list(stored.get("free_classes") or []) == \
        list(clf.class_names) and (not model.cfg.classes or "guided_accuracy" in stored)
    if measure and clf is not None and not (skip_eval and current):
        test["recognisable"] = recognisability(model, clf)
    if any(meta.get(k) != v for k, v in test.items()):
        meta.update(test)
        pixelnet.save_checkpoint(model, path, **meta)
    entry = dict(
        file=path.name, dataset=meta.get("dataset"), arch=model.config["arch"],
        params=pixelnet.param_count(model), size_bytes=path.stat().st_size,
        config=model.config, train_images=meta.get("train_images"),
        train_split=meta.get("train_split"), epochs=meta.get("epochs"),
        epochs_total=meta.get("epochs_total"), steps=meta.get("step"),
        train_seconds=meta.get("train_seconds"), hardware=meta.get("hardware"),
        val_nll=meta.get("val_nll"), class_names=meta.get("class_names"),
        **{k: meta.get(k) for k in TEST_KEYS + GIVEN_KEYS + ("recognisable",)})
    png = path.with_name(path.stem + "_samples.png")
    guided = path.with_name(path.stem + "_samples_guided.png")
    if samples and measure:
        entry["sample_seconds"] = round(sample_grid(model, png, samples, seed), 1)
        if model.cfg.classes:
            sample_grid(model, guided, samples, seed, CLASS_STRENGTH)
    if png.exists():
        entry["samples"] = png.name
    if guided.exists() and model.cfg.classes:
        entry["samples_guided"] = guided.name
    return entry


def _recognisable(r: dict | None) -> str:
    """The recognisability figures of one entry, short."""
    if not r:
        return ""
    text = f"free {r['free_confident']:.0%} (real {r['real_confident']:.0%})"
    if r.get("conditional_accuracy") is not None:
        text += f"; by class {r['conditional_accuracy']:.0%}"
    if r.get("guided_accuracy") is not None:
        text += f", guided (x{r['guidance']:g}) {r['guided_accuracy']:.0%}"
    return text


def _coarse(e: dict) -> str:
    """The mark of a model with fewer levels than its 8-bit dataset (" (*8 levels*)"), or ""."""
    levels = e["config"]["levels"]
    return f" (*{levels} levels*)" if levels < DATASETS[e["dataset"]].levels else ""


def _hours(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds / 3600:.1f} h"


def readme(entries: list[dict]) -> str:
    """A Markdown table of the manifest entries."""
    lines = ["# Trained checkpoints", "",
             "Written by `python training/publish.py`; reproduce a number with "
             "`python training/evaluate.py checkpoints/<file>`. Binarized MNIST NLL is in nats "
             "per image, the 8-bit datasets' in bits per dimension (both are in "
             "`manifest.json`). Runs trained since `train.py` keeps a moving average of the "
             "weights (`--ema`; `train_config` in each checkpoint's metadata) publish the "
             "average.", "",
             "Class-conditional models (`classes` in the config) are measured without a class "
             "(the unconditional NLL) and given each test image's class. *Recognisable*: a "
             "small classifier trained on real images (`training/recognise.py`) is confident "
             "(max p >= 0.9) on this share of 64 free samples (and of real test images), and "
             "for class-conditional models classifies this share of samples of each class as "
             "the class asked for: sampled as trained, and *guided* (classifier-free guidance "
             "at the app's default class strength, `pixelnet.sample(..., guidance=)`). Sample "
             "grids of class-conditional models: one row per class, as trained, then guided.",
             "",
             "A model with fewer levels than its 8-bit data (`levels` in the config, e.g. 8 "
             "per channel: our choice for colour on small compute, not the paper's) is "
             "measured on the test images quantized to its levels, so its bits/dim (marked "
             "*N levels*) are not comparable with a 256-level model's.", "",
             "| checkpoint | dataset | arch | params | test NLL | given class | target "
             "| recognisable | test split | train images | epochs | training time | hardware "
             "| samples |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in entries:
        if e["test_nll"] is None:
            nll = "?"
        elif DATASETS[e["dataset"]].binarized:
            nll = f"{e['test_nll']:.2f} nats"
        else:
            nll = f"{e['test_bits_per_dim']:.3f} bits/dim" + _coarse(e)
        grid = " ".join(f"![]({e[k]})" for k in ("samples", "samples_guided") if e.get(k))
        given = "" if e.get("test_nll_given_class") is None else (
            f"{e['test_nll_given_class']:.2f} nats" if DATASETS[e["dataset"]].binarized
            else f"{e['test_bits_per_dim_given_class']:.3f} bits/dim" + _coarse(e))
        lines.append(f"| `{e['file']}` | {e['dataset']} | {e['arch']} | {e['params']:,} | {nll} "
                     f"| {given} | {TARGETS.get((e['dataset'], e['arch']), '')} "
                     f"| {_recognisable(e.get('recognisable'))} "
                     f"| {e['test_split']} | {e['train_images']} | {_epochs(e)} "
                     f"| {_hours(e['train_seconds'])} | {e['hardware']} | {grid} |")
    return "\n".join(lines) + "\n"


def _epochs(e: dict) -> str:
    """The epochs column: those of the last run, and in all when it continued a model."""
    if e.get("epochs_total") is None:
        return f"{e['epochs']}"
    return f"{e['epochs_total']} in all ({e['epochs']} in the last run)"


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", default=str(REPO / "checkpoints"), help="folder of the checkpoints")
    p.add_argument("--samples", type=int, default=64, help="images per sample grid (0: none)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--skip-eval", action="store_true",
                   help="reuse the test NLL stored in a checkpoint when it has one")
    p.add_argument("--limit", type=int, default=None, help="evaluate on the first N test images")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--only", nargs="+", default=None, metavar="FILE",
                   help="measure these checkpoints only; the others' entries come from what "
                        "they store (with --skip-eval semantics) and keep their grids")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    folder = Path(a.dir)
    files = sorted(folder.glob("*.pt"))
    if not files:
        raise ValueError(f"no checkpoints (*.pt) in {folder}")
    entries = []
    only = None if a.only is None else {Path(f).name for f in a.only}
    if only is not None and not only <= {f.name for f in files}:
        raise ValueError(f"--only: not in {folder}: {sorted(only - {f.name for f in files})}")
    for f in files:
        measure = only is None or f.name in only
        entries.append(describe(f, a.skip_eval or not measure, a.samples, a.seed, a.limit,
                                measure))
        e = entries[-1]
        print(f"{f.name}: test {e['test_nll']:.3f} nats ({e['test_bits_per_dim']:.4f} bits/dim) "
              f"on {e['test_split']}", flush=True)
    (folder / "manifest.json").write_text(json.dumps({"checkpoints": entries}, indent=2) + "\n")
    (folder / "README.md").write_text(readme(entries))
    return entries


if __name__ == "__main__":
    try:
        main()
    except ValueError as e:
        sys.exit(f"error: {e}")
