"""Are the samples recognisable? A small CNN classifier per dataset, trained on the real
training images with their labels, judges a generative model's samples:

- a class-conditional model (``classes > 0``): the classifier's accuracy on samples of each
  class (did the model draw the class it was asked for?);
- any model: the fraction of free (unconditional) samples on which the classifier is
  confident (max softmax >= 0.9), against the same fraction on real held-out images.

    python training/recognise.py train --dataset mnist     # checkpoints/classifiers/
    python training/recognise.py score checkpoints/mnist_pixelcnn.pt [more checkpoints ...]

The classifier sees images as the generative models draw them: levels in ``[0, levels)``,
so binarized digits for MNIST (trained on images re-binarized every epoch; the real
reference is the fixed binarization of ``pixelnet.data.load_eval_set``).

API for evaluation and publishing: :func:`load_classifier`, :func:`recognisability`,
:func:`confident_fraction`, :func:`classifier_path`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

import pixelnet
from pixelnet.checkpoint import atomic_save
from pixelnet.data import (DATASETS, binarize, class_names, data_source, dequantize,
                           describe_split, load_dataset, load_eval_set, load_labels, quantize)
from pixelnet.sampling import CLASS_STRENGTH

FORMAT = "pixelnet-classifier"
CONFIDENT = 0.9             # max softmax at or above which the classifier counts as confident
SAMPLE_BATCH = 64           # the most images one sampling call generates here
# Not in checkpoints/ itself: every *.pt there is a generative model (the manifest,
# publish.py and the app's registry read them all as such).
CLASSIFIERS = Path(__file__).resolve().parents[1] / "checkpoints" / "classifiers"
# Epochs per dataset: 3-4.5 minutes each on one CPU thread beside other jobs (7,500 digits,
# 56,250 clothes, 3,156 emoji in the training splits).
EPOCHS = {"mnist": 20, "fashion": 4, "emoji": 40}


@dataclass
class ClassifierConfig:
    """A classifier's shape: the dataset's images (levels in ``[0, levels)``) and classes, and
    ``h``, the features of its first conv (then ``2h``)."""
    dataset: str
    channels: int
    levels: int
    height: int
    width: int
    classes: int
    h: int = 32
    dropout: float = 0.3

    def validate(self, where: str = "classifier config") -> None:
        for name in ("channels", "levels", "height", "width", "classes", "h"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4096:
                raise ValueError(f"{where}: {name} must be an integer in [1, 4096], got {value!r}")
        if self.levels < 2 or self.classes < 2 or self.height < 8 or self.width < 8:
            raise ValueError(f"{where}: needs levels >= 2, classes >= 2 and images of at least "
                             f"8x8 (three 2x2 poolings); got levels {self.levels}, classes "
                             f"{self.classes}, {self.height}x{self.width}")
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"{where}: dropout must be in [0, 1), got {self.dropout!r}")


class Classifier(nn.Module):
    """Three 3x3 conv + ReLU + 2x2 max-pool stages (``h``, ``2h``, ``2h`` features), then a
    linear layer on the flattened ``(2h, H/8, W/8)`` map, so that where a stroke lies still
    counts (a 6 is not a 9)."""

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        h = cfg.h
        self.convs = nn.ModuleList([nn.Conv2d(cfg.channels, h, 3, padding=1),
                                    nn.Conv2d(h, 2 * h, 3, padding=1),
                                    nn.Conv2d(2 * h, 2 * h, 3, padding=1)])
        self.head = nn.Linear(2 * h * (cfg.height // 8) * (cfg.width // 8), cfg.classes)
        self.metadata: dict = {}

    @property
    def class_names(self) -> list[str]:
        return class_names(self.cfg.dataset)

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        """Validate an image batch ``(B, C, H, W)`` of levels against the config."""
        c = self.cfg
        want = (c.channels, c.height, c.width)
        if not isinstance(x, torch.Tensor) or x.is_floating_point() or x.dtype == torch.bool:
            raise ValueError(f"the {c.dataset} classifier takes a LongTensor of levels in "
                             f"[0, {c.levels}), got {getattr(x, 'dtype', type(x).__name__)}")
        if x.dim() != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(f"the {c.dataset} classifier takes images of shape (B, {c.channels}, "
                             f"{c.height}, {c.width}), got {tuple(x.shape)}: use the classifier "
                             "of the images' dataset")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= c.levels):
            raise ValueError(f"the {c.dataset} classifier takes levels in [0, {c.levels}), got "
                             f"range [{int(x.min())}, {int(x.max())}]: use the classifier of the "
                             "images' dataset")
        return x.long()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, classes)`` for images ``(B, C, H, W)`` of levels."""
        z = x.float() / (self.cfg.levels - 1)                  # (B, C, H, W) in [0, 1]
        for conv in self.convs:
            z = F.max_pool2d(F.relu(conv(z)), 2)               # H, W halve at every stage
        z = F.dropout(z.flatten(1), self.cfg.dropout, self.training)
        return self.head(z)


def build_classifier(dataset: str, h: int = 32, dropout: float = 0.3) -> Classifier:
    """An untrained classifier for ``dataset``'s images as the models see them."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    info = DATASETS[dataset]
    return Classifier(ClassifierConfig(dataset, info.channels, info.levels, info.height,
                                       info.width, len(class_names(dataset)), h, dropout))


# ----------------------------------------------------------------------------- checkpoints

def save_classifier(classifier: Classifier, path: str | Path, **metadata) -> None:
    """Save the config, weights and plain ``metadata`` atomically (mode 0644)."""
    bad = [k for k in metadata if k in ("format", "version", "config", "model")]
    if bad:
        raise ValueError(f"metadata keys {bad} are reserved in a classifier checkpoint")
    state = {k: v.detach().cpu() for k, v in classifier.state_dict().items()}
    atomic_save({"format": FORMAT, "version": 1, "config": asdict(classifier.cfg),
                 "model": state, **metadata}, path)


def load_classifier(path: str | Path) -> Classifier:
    """Rebuild the classifier saved at ``path`` (CPU, eval mode); its other entries are
    ``classifier.metadata``. ``ValueError`` naming the file if it is missing, corrupt or not
    a classifier checkpoint."""
    where = repr(str(path))
    if not Path(path).is_file():
        raise ValueError(f"classifier checkpoint {where} does not exist: train one with "
                         "`python training/recognise.py train --dataset NAME`")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means "not a checkpoint"
        raise ValueError(f"{where} is not a readable classifier checkpoint: "
                         f"{type(e).__name__}: {str(e)[:200]}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        kind = "a generative PixelNet checkpoint" if isinstance(ckpt, dict) and ckpt.get(
            "format") == "pixelnet" else "not a classifier checkpoint"
        raise ValueError(f"{where} is {kind} (format {FORMAT!r} expected): pass a "
                         "checkpoints/classifiers/{dataset}_classifier.pt file")
    config, state = ckpt.get("config"), ckpt.get("model")
    fields = {f.name for f in dataclasses.fields(ClassifierConfig)}
    if not isinstance(config, dict) or set(config) - fields or not isinstance(state, dict):
        raise ValueError(f"{where}: malformed classifier checkpoint (config fields "
                         f"{sorted(config) if isinstance(config, dict) else config!r})")
    if config.get("dataset") not in DATASETS:
        raise ValueError(f"{where}: unknown dataset {config.get('dataset')!r}")
    try:
        classifier = Classifier(ClassifierConfig(**config))
        classifier.load_state_dict(state)
    except (TypeError, RuntimeError) as e:
        raise ValueError(f"{where}: weights do not match its config: {str(e)[:300]}") from None
    classifier.metadata = {k: v for k, v in ckpt.items()
                           if k not in ("format", "version", "config", "model")}
    return classifier.eval()


def classifier_path(dataset: str, folder: str | Path = CLASSIFIERS) -> Path:
    """Where the classifier of ``dataset`` lives: ``{folder}/{dataset}_classifier.pt``
    (default folder ``checkpoints/classifiers/``)."""
    return Path(folder) / f"{dataset}_classifier.pt"


def is_classifier_file(path: str | Path) -> bool:
    """True for ``*_classifier.pt`` names (to skip them among generative checkpoints)."""
    return Path(path).name.endswith("_classifier.pt")


# ----------------------------------------------------------------------------- judging images

@torch.no_grad()
def predict_proba(classifier: Classifier, images: torch.Tensor, batch_size: int = 256
                  ) -> torch.Tensor:
    """Class probabilities ``(N, classes)`` of images ``(N, C, H, W)`` of levels."""
    images = classifier.check_input(images)
    was_training = classifier.training
    classifier.eval()
    try:
        out = [torch.softmax(classifier(images[i:i + batch_size]), 1)
               for i in range(0, len(images), batch_size)]
    finally:
        classifier.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, classifier.cfg.classes)


def confident_fraction(classifier: Classifier, images: torch.Tensor,
                       threshold: float = CONFIDENT) -> float:
    """The fraction of ``images`` on which the classifier's max softmax is >= ``threshold``."""
    if len(images) == 0:
        raise ValueError("confident_fraction needs at least one image")
    return (predict_proba(classifier, images).max(1).values >= threshold).float().mean().item()


def accuracy(classifier: Classifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    """The fraction of ``images`` classified as their ``labels``."""
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need as many labels as images (and at least one): got "
                         f"{len(images)} images, {len(labels)} labels")
    return (predict_proba(classifier, images).argmax(1) == labels).float().mean().item()


def check_compatible(model: pixelnet.Model, classifier: Classifier) -> None:
    """``ValueError`` unless the classifier judges images like ``model``'s samples (same
    shape and levels; same dataset and classes where the model says which)."""
    m, c = model.cfg, classifier.cfg
    dataset = getattr(model, "metadata", {}).get("dataset")
    if dataset is not None and dataset != c.dataset:
        raise ValueError(f"the model was trained on {dataset!r} but the classifier on "
                         f"{c.dataset!r}: load checkpoints/classifiers/{dataset}_classifier.pt")
    if (m.channels, m.height, m.width) != (c.channels, c.height, c.width) or m.levels > c.levels \
            or (m.levels < c.levels and c.levels != 256):
        raise ValueError(f"the model draws {m.channels}x{m.height}x{m.width} images of {m.levels} "
                         f"levels but the {c.dataset} classifier takes {c.channels}x{c.height}x"
                         f"{c.width} of {c.levels} levels: use the classifier of the model's "
                         "dataset")
    if m.classes and m.classes != c.classes:
        raise ValueError(f"the model has {m.classes} classes but the {c.dataset} classifier "
                         f"{c.classes}: use the classifier of the model's dataset")


def draw(model: pixelnet.Model, n: int, y: int | None, seed: int,
         batch_size: int = SAMPLE_BATCH, guidance: float = 1.0) -> torch.Tensor:
    """``n`` samples ``(n, C, H, W)`` of class ``y`` (None: free) at ``guidance`` (see
    ``pixelnet.sample``), in batches of at most ``batch_size``; batch ``b`` uses seed
    ``seed + b``. A model with fewer levels than its
    8-bit data gives its samples as 8-bit values (``dequantize``), as a person sees them."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1 (samples to draw), got {n!r}")
    x = torch.cat([pixelnet.sample(model, min(batch_size, n - i), y=y, seed=seed + b,
                                   guidance=guidance)
                   for b, i in enumerate(range(0, n, batch_size))])
    return coarse_as_8bit(x, model.cfg.levels)


def coarse_as_8bit(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Images of ``levels < 256`` levels (a coarse colour model) as 8-bit values (long); other
    images (256 levels, binarized MNIST) unchanged."""
    return dequantize(x, levels).long() if 2 < levels < 256 else x


def reference_images(dataset: str, limit: int = 1000, source: str = "auto") -> torch.Tensor:
    """The first ``limit`` real test images as the models see them (``load_eval_set``)."""
    return load_eval_set(dataset, "test", source=source)[:limit]


def recognisability(model: pixelnet.Model, classifier: Classifier, per_class: int = 32,
                    free: int = 64, seed: int = 0, real: int = 1000,
                    threshold: float = CONFIDENT, guided: float | None = CLASS_STRENGTH) -> dict:
    """How recognisable ``model``'s samples are to ``classifier`` (see the module docstring).

    Returns a dict of plain numbers (fractions in [0, 1]):

    - ``free_confident``: fraction of ``free`` unconditional samples with max softmax >=
      ``threshold``; ``free_classes``: the fraction of free samples per predicted class;
      ``real_confident``: the confident fraction on the first ``real`` test images, the
      reference (None when ``real`` is 0);
    - for a class-conditional model, ``conditional_accuracy`` over ``per_class`` samples of
      each class and ``per_class_accuracy`` {class name: accuracy}; None for others;
      ``guided_accuracy`` and ``guided_per_class_accuracy`` the same for samples drawn with
      classifier-free guidance ``guided`` (``pixelnet.sample``'s; None: not measured);
    - ``classifier_test_accuracy`` (from the classifier's metadata), the counts and ``seed``.

    Samples are drawn in batches of at most 64; every class uses the seeds of the free
    samples (``seed``, ``seed + 1``, ... per batch), so only the label differs.
    """
    check_compatible(model, classifier)
    for name, value in (("per_class", per_class), ("free", free), ("real", real)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be a probability in (0, 1], got {threshold!r}")
    if free == 0 and (model.cfg.classes == 0 or per_class == 0):
        raise ValueError("nothing to measure: give free > 0 (or per_class > 0 for a "
                         "class-conditional model)")
    names = classifier.class_names
    out = dict(dataset=classifier.cfg.dataset, threshold=threshold, seed=seed, free_samples=free,
               classifier_test_accuracy=classifier.metadata.get("test_accuracy"),
               free_confident=None, free_classes=None, real_confident=None, real_images=0,
               conditional_accuracy=None, per_class_accuracy=None, per_class=0, guidance=None,
               guided_accuracy=None, guided_per_class_accuracy=None)
    if free:
        probs = predict_proba(classifier, draw(model, free, None, seed))
        out["free_confident"] = (probs.max(1).values >= threshold).float().mean().item()
        counts = torch.bincount(probs.argmax(1), minlength=len(names)) / free
        out["free_classes"] = dict(zip(names, counts.tolist()))
    if real:
        source = getattr(model, "metadata", {}).get("data_source", "auto")
        x = reference_images(classifier.cfg.dataset, real, source)
        if 2 < model.cfg.levels < classifier.cfg.levels:     # real images at the model's levels
            x = coarse_as_8bit(quantize(x, model.cfg.levels), model.cfg.levels)
        out["real_confident"] = confident_fraction(classifier, x, threshold)
        out["real_images"] = len(x)
    if model.cfg.classes and per_class:
        def by_class(guidance: float) -> dict[str, float]:
            return {name: accuracy(classifier, draw(model, per_class, k, seed, guidance=guidance),
                                   torch.full((per_class,), k))
                    for k, name in enumerate(names)}
        per = by_class(1.0)
        out.update(per_class=per_class, per_class_accuracy=per,
                   conditional_accuracy=sum(per.values()) / len(per))
        if guided is not None and guided != 1:
            per = by_class(guided)
            out.update(guidance=guided, guided_per_class_accuracy=per,
                       guided_accuracy=sum(per.values()) / len(per))
    return out


# ----------------------------------------------------------------------------- training

def _shift(x: torch.Tensor, generator: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Each image translated by up to ``max_shift`` pixels, borders replicated (emoji have a
    flat white background, so a shift adds no edge)."""
    B, _, H, W = x.shape
    p = max_shift
    padded = F.pad(x.float(), (p, p, p, p), mode="replicate")
    di, dj = torch.randint(0, 2 * p + 1, (2, B), generator=generator)
    rows = (di[:, None] + torch.arange(H))[:, None, :, None]          # (B, 1, H, 1)
    cols = (dj[:, None] + torch.arange(W))[:, None, None, :]          # (B, 1, 1, W)
    b = torch.arange(B)[:, None, None, None]
    c = torch.arange(x.shape[1])[None, :, None, None]
    return padded[b, c, rows, cols].long()


def train_classifier(dataset: str, epochs: int | None = None, batch_size: int = 64,
                     lr: float = 2e-3, seed: int = 0, h: int = 32,
                     images: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                     augment: bool | None = None, time_budget: float | None = None,
                     log=print) -> Classifier:
    """Train a classifier on ``dataset``'s training split (or on ``images``/``labels``, 8-bit
    values for a binarized dataset): Adam with a cosine learning rate, cross-entropy weighted
    by inverse class frequency (emoji: 60% of the images are "People"). MNIST images are
    re-binarized every epoch; ``augment`` (default: emoji) shifts images by up to 2 pixels.
    Stops early after ``time_budget`` seconds."""
    if images is None:
        images, labels = load_dataset(dataset, "train"), load_labels(dataset, "train")
    if labels is None or len(labels) != len(images):
        raise ValueError("give as many labels as images")
    epochs = EPOCHS.get(dataset, 10) if epochs is None else epochs
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    augment = dataset == "emoji" if augment is None else augment
    torch.manual_seed(seed)
    clf = build_classifier(dataset, h=h)
    K = clf.cfg.classes
    counts = torch.bincount(labels, minlength=K).float()
    weight = counts.sum() / (K * counts.clamp(min=1))                   # (K,) mean 1 if balanced
    opt = torch.optim.Adam(clf.parameters(), lr=lr)
    steps = epochs * math.ceil(len(images) / batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))      # cosine to 0
    g = torch.Generator().manual_seed(seed)
    t0 = time.time()
    clf.train()
    for epoch in range(epochs):
        x = binarize(images, g) if DATASETS[dataset].binarized else images
        order = torch.randperm(len(images), generator=g)
        total = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            xb = _shift(x[idx], g) if augment else x[idx]
            loss = F.cross_entropy(clf(xb), labels[idx], weight=weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        log(f"epoch {epoch + 1}/{epochs}: train loss {total / len(order):.4f} "
            f"({time.time() - t0:.0f} s)")
        if time_budget is not None and time.time() - t0 > time_budget:
            log(f"time budget of {time_budget:.0f} s reached")
            break
    clf.metadata = dict(epochs=epoch + 1, train_seconds=round(time.time() - t0, 1),
                        train_images=len(images), seed=seed, lr=lr, batch_size=batch_size,
                        augment=augment)
    return clf.eval()


def evaluate_classifier(clf: Classifier, split: str = "test") -> dict:
    """Accuracy (overall, balanced and per class) and confident fraction on ``split`` as the
    models see it."""
    name = clf.cfg.dataset
    x, y = load_eval_set(name, split), load_labels(name, split)
    pred = predict_proba(clf, x).argmax(1)
    per_class = {n: (pred[y == k] == k).float().mean().item()
                 for k, n in enumerate(clf.class_names) if (y == k).any()}
    return {f"{split}_accuracy": (pred == y).float().mean().item(),
            f"{split}_balanced_accuracy": sum(per_class.values()) / len(per_class),
            f"{split}_per_class_accuracy": per_class,
            f"{split}_confident": confident_fraction(clf, x),
            f"{split}_split": describe_split(name, split)}


# ----------------------------------------------------------------------------- command line

def _train(a: argparse.Namespace) -> None:
    clf = train_classifier(a.dataset, a.epochs, seed=a.seed, time_budget=a.time_budget)
    stats = {**evaluate_classifier(clf, "val"), **evaluate_classifier(clf, "test")}
    out = Path(a.out) if a.out else classifier_path(a.dataset)
    params = sum(p.numel() for p in clf.parameters())
    save_classifier(clf, out, dataset=a.dataset, class_names=clf.class_names,
                    data_source=data_source(a.dataset), params=params, threads=a.threads,
                    **clf.metadata, **stats)
    print(f"{out}: {params:,} parameters, {clf.metadata['epochs']} epochs in "
          f"{clf.metadata['train_seconds']:.0f} s; test accuracy {stats['test_accuracy']:.4f} "
          f"(balanced {stats['test_balanced_accuracy']:.4f}), confident (max softmax >= "
          f"{CONFIDENT}) on {stats['test_confident']:.1%} of {stats['test_split']}")


def summary(r: dict) -> str:
    """One line of :func:`recognisability`'s figures, for people."""
    parts = []
    if r["free_confident"] is not None:
        top = sorted(r["free_classes"].items(), key=lambda kv: -kv[1])[:3]
        parts.append(f"confident on {r['free_confident']:.1%} of {r['free_samples']} free "
                     f"samples (classified as {', '.join(f'{k} {v:.0%}' for k, v in top)})")
    if r["real_confident"] is not None:
        parts.append(f"real test images: confident on {r['real_confident']:.1%} of "
                     f"{r['real_images']}")
    if r["conditional_accuracy"] is not None:
        per = ", ".join(f"{k} {v:.0%}" for k, v in r["per_class_accuracy"].items())
        ref = r["classifier_test_accuracy"]
        parts.append(f"conditional samples classified as asked: {r['conditional_accuracy']:.1%} "
                     f"({r['per_class']} per class: {per})"
                     + (f" against the classifier's {ref:.1%} on real test images"
                        if ref is not None else ""))
    if r.get("guided_accuracy") is not None:
        per = ", ".join(f"{k} {v:.0%}" for k, v in r["guided_per_class_accuracy"].items())
        parts.append(f"at class strength {r['guidance']:g} (classifier-free guidance): "
                     f"{r['guided_accuracy']:.1%} ({per})")
    return "; ".join(parts)


def _score(a: argparse.Namespace) -> None:
    paths = [p for p in a.checkpoints if not is_classifier_file(p)]
    if not paths:
        raise ValueError("no generative checkpoint given (the *_classifier.pt files are skipped)")
    results = {}
    for path in paths:
        model = pixelnet.load_checkpoint(path)
        dataset = model.metadata.get("dataset")
        if dataset not in DATASETS:
            raise ValueError(f"{path}: metadata names no known dataset (got {dataset!r})")
        clf = load_classifier(a.classifier or classifier_path(dataset))
        t0 = time.time()
        r = recognisability(model, clf, per_class=a.per_class, free=a.free, seed=a.seed,
                            real=a.real, guided=a.guidance)
        print(f"{path}: {summary(r)} [{time.time() - t0:.0f} s]", flush=True)
        results[str(path)] = r
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2) + "\n")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1; 0: torch's default)")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train checkpoints/classifiers/{dataset}_classifier.pt")
    t.add_argument("--dataset", required=True, choices=sorted(set(DATASETS) - {"cifar10"}))
    t.add_argument("--epochs", type=int, default=None, help=f"default: {EPOCHS}")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--time-budget", type=float, default=None, help="stop after N seconds")
    t.add_argument("--out", default=None,
                   help="default: checkpoints/classifiers/{dataset}_classifier.pt")
    s = sub.add_parser("score", help="recognisability of generative checkpoints' samples")
    s.add_argument("checkpoints", nargs="+")
    s.add_argument("--classifier", default=None,
                   help="default: checkpoints/classifiers/{dataset}_classifier.pt")
    s.add_argument("--per-class", type=int, default=32, help="conditional samples per class")
    s.add_argument("--free", type=int, default=64, help="free (unconditional) samples")
    s.add_argument("--real", type=int, default=1000, help="real test images for the reference")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--guidance", type=float, default=CLASS_STRENGTH,
                   help="the class strength of the guided samples (classifier-free guidance; "
                        "1: measure only the model as trained)")
    s.add_argument("--json", default=None, help="also write every figure to this JSON file")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)     # other jobs share the CPU
    _train(a) if a.command == "train" else _score(a)


if __name__ == "__main__":
    try:
        main()
    except ValueError as e:
        sys.exit(f"error: {e}")
