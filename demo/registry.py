"""Which models the app serves: datasets, architectures and a cached ``get_model``.

``get_model(dataset, arch)`` returns the trained model ``checkpoints/{dataset}_{arch}.pt``
when that file exists, else an untrained model of the dataset's shape (fixed random
weights) flagged by :func:`is_untrained`. A checkpoint that exists but cannot be loaded
(corrupt, malformed, out of bounds) is an error naming the file, never an untrained model.
The cache is keyed by the checkpoint's modification time, so a checkpoint that lands (or is
replaced) while the app runs is picked up by the next call, without a restart.

Architectures and their display names come from ``pixelnet.MODELS``. The single-scale
ones (``pixelnet.PixelModel``) are offered for every dataset, trained or not; a composite
one (Multi-Scale) only where its checkpoint exists.
"""
from __future__ import annotations

import sys
import threading
from pathlib import Path

import torch

import pixelnet
from pixelnet.data import DATASETS as DATASET_INFO  # (channels, levels, size)
from pixelnet.data import class_names as dataset_class_names
from pixelnet.sampling import CLASS_STRENGTH

REPO = Path(__file__).resolve().parents[1]

CHECKPOINTS = REPO / "checkpoints"

DATASETS: dict[str, str] = {"MNIST digits": "mnist", "Fashion-MNIST": "fashion",
                            "Emoji": "emoji"}
"""Display name -> dataset key (``checkpoints/{key}_{arch}.pt``)."""
DISPLAY: dict[str, str] = {v: k for k, v in DATASETS.items()}

SUGGESTED: dict[str, tuple[str, float]] = {"emoji": ("multiscale", 0.8)}
"""Dataset key -> the architecture the app switches to when the dataset is chosen, and the
temperature that model is suggested at (every other model: 1, as trained). The emoji
Multi-Scale model draws the most recognisable emoji; at temperature 1 a single rare value (a
stray pixel of another colour) derails what follows, while at 0.8 its faces stay round and
its completions keep their shape (README, "The trained models"). The single-scale emoji
models, and Fashion's, lose recognisable samples at 0.8, so they stay at 1."""

SUGGESTED_BY_CLASS: dict[tuple[str, str, str], tuple[float, float]] = {
    ("emoji", "multiscale", "Smileys"): (1.0, 0.1),
    ("emoji", "multiscale", "Symbols"): (1.0, 0.1)}
"""(dataset key, architecture key, class) -> the (temperature, min-p) the app suggests when
that class is chosen. Cutting the tail (``pixelnet.sample``'s ``min_p``) at 0.1 gives the
emoji Multi-Scale model clean round faces with eyes and a mouth at seeds 0-7 and clean
keycaps; in the sparse classes a white background outweighs every colour ten to one, so the
same cut leaves their images blank, and Flags plain (README, "The trained models")."""

SUGGESTED_STRENGTH: dict[str, float] = {"fashion": 3.0}
"""Dataset key -> the class strength (classifier-free guidance) the app suggests for its
models (every other dataset: ``pixelnet.sampling.CLASS_STRENGTH``). Each Fashion model's class
samples are classified as the class asked for more often at 3 than at 2 (README, "The trained
models"); MNIST's are above 90% at 2 already, and the emoji Multi-Scale model's Smileys break
at 3."""

ARCH_NAMES: dict[str, str] = {a: pixelnet.MODELS[a].title for a in pixelnet.ARCHITECTURES}
"""Architecture key -> display name."""

_cache: dict[tuple[str, str], tuple[float | None, torch.nn.Module | ValueError]] = {}
_lock = threading.Lock()


def dataset_key(dataset: str) -> str:
    """A dataset key (``"mnist"``) from a key or a display name (``"MNIST digits"``)."""
    if dataset in DATASETS.values():
        return dataset
    if dataset in DATASETS:
        return DATASETS[dataset]
    raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")


def arch_key(arch: str) -> str:
    """An architecture key (``"row_lstm"``) from a key or a display name (``"Row LSTM"``)."""
    if arch in ARCH_NAMES:
        return arch
    for key, name in ARCH_NAMES.items():
        if arch == name:
            return key
    raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCH_NAMES.values())}")


def single_scale(arch: str) -> bool:
    """True for the architectures built on the shared single-scale stack (an untrained one
    is a fair stand-in; a composite model is offered only where it was trained)."""
    return issubclass(pixelnet.MODELS[arch_key(arch)], pixelnet.PixelModel)


def architectures(dataset: str) -> list[str]:
    """Architecture keys offered for ``dataset``: every single-scale one, and the others
    where ``checkpoints/{dataset}_{arch}.pt`` exists."""
    ds = dataset_key(dataset)
    return [a for a in pixelnet.ARCHITECTURES
            if single_scale(a) or (CHECKPOINTS / f"{ds}_{a}.pt").is_file()]


def suggested_architecture(dataset: str) -> str | None:
    """The architecture key to show first for ``dataset`` (a key or a display name), if the
    app suggests one and its checkpoint exists; else None (keep the current one)."""
    ds = dataset_key(dataset)
    arch = SUGGESTED.get(ds, (None, 1.0))[0]
    return arch if arch is not None and arch in architectures(ds) else None


def suggested_temperature(dataset: str, architecture: str) -> float:
    """The temperature the app suggests for the model ``(dataset, architecture)`` (keys or
    display names): below 1 only where it was measured to make samples more recognisable."""
    arch, t = SUGGESTED.get(dataset_key(dataset), (None, 1.0))
    return t if arch == arch_key(architecture) else 1.0


def suggested_sampling(dataset: str, architecture: str, label: str | None = None
                       ) -> tuple[float, float, float]:
    """The ``(temperature, min_p, guidance)`` the app suggests for the model ``(dataset,
    architecture)`` (keys or display names) drawing class ``label`` (a class name, or None
    / "Any" for no class): :data:`SUGGESTED_BY_CLASS`, else the model's suggested
    temperature and no cut; the dataset's class strength (:data:`SUGGESTED_STRENGTH`)."""
    ds, arch = dataset_key(dataset), arch_key(architecture)
    t, min_p = SUGGESTED_BY_CLASS.get((ds, arch, label), (suggested_temperature(ds, arch), 0.0))
    return t, min_p, SUGGESTED_STRENGTH.get(ds, CLASS_STRENGTH)


def checkpoint_path(dataset: str, arch: str) -> Path:
    """Where the trained model for ``(dataset, arch)`` lives."""
    return CHECKPOINTS / f"{dataset_key(dataset)}_{arch_key(arch)}.pt"


def _untrained(ds: str, arch: str) -> torch.nn.Module:
    """The architecture's default (paper) sizes at the dataset's shape, fixed random weights."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = pixelnet.build_model(arch, **DATASET_INFO[ds].model_shape())
    model.metadata = {"dataset": ds, "untrained": True}
    return model.eval()


def get_model(dataset: str, arch: str) -> torch.nn.Module:
    """The model for ``dataset`` and ``arch`` (keys or display names), cached.

    Trained (``checkpoints/{dataset}_{arch}.pt``) if present, else untrained (see
    :func:`is_untrained`). Raises ``ValueError`` for an unknown dataset or architecture, one
    not offered for the dataset, or a checkpoint that cannot be loaded (the message names
    the file relative to the repository, never a server path).
    """
    ds, arch = dataset_key(dataset), arch_key(arch)
    if arch not in architectures(ds):
        raise ValueError(f"{ARCH_NAMES[arch]} is not offered for {DISPLAY[ds]}; choose one of "
                         f"{', '.join(ARCH_NAMES[a] for a in architectures(ds))}")
    path = checkpoint_path(ds, arch)
    mtime = path.stat().st_mtime if path.is_file() else None
    with _lock:
        hit = _cache.get((ds, arch))
        if hit is None or hit[0] != mtime:
            hit = (mtime, _load(path, ds, arch) if mtime is not None else _untrained(ds, arch))
            _cache[(ds, arch)] = hit
    if isinstance(hit[1], ValueError):
        raise hit[1]
    return hit[1]


def _load(path: Path, ds: str, arch: str) -> torch.nn.Module | ValueError:
    """The checkpoint's model, or the error to show for it (kept, so that a broken file is
    read once, not on every request)."""
    name = f"checkpoints/{path.name}"       # as the user knows it, never a server path
    try:
        model = pixelnet.load_checkpoint(path)
    except Exception as e:  # noqa: BLE001 - any failure to load is the same error to the user
        reason = (str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}")
        reason = reason.replace(str(path), name).replace(str(path.parent), "checkpoints")
        reason = reason.replace(str(REPO), "").replace(f"'{name}'", name)
        reason = reason if len(reason) <= 200 else reason[:200] + "…"
        if name not in reason:
            reason = f"{name} cannot be loaded: {reason}"
        print(f"warning: {reason}", file=sys.stderr)
        return ValueError(f"{reason}. Replace or delete the file: the app does not serve a "
                          "model in its place.")
    shape = DATASET_INFO[ds].model_shape()
    got = {k: model.cfg.__dict__.get(k) for k in shape}
    # fewer levels than the data is a model's choice (8-bit colour seen as 8 levels a
    # channel: the app quantizes its input, pixelnet.data.quantize); more is not the dataset
    levels_ok = isinstance(got["levels"], int) and (
        got["levels"] == shape["levels"] or (shape["levels"] == 256 and 2 <= got["levels"] < 256))
    if model.arch != arch or not levels_ok or {**got, "levels": shape["levels"]} != shape:
        return ValueError(f"{name} holds a {model.arch} model for {got}, not a {arch} model "
                          f"for {ds} {shape} (or fewer levels). Replace or delete the file.")
    return model


def class_names(model: torch.nn.Module) -> list[str]:
    """The names of a class-conditional model's K classes (its checkpoint's ``class_names``;
    without them the dataset's own, or "class k"), ``[]`` for an unconditional model."""
    K = getattr(model.cfg, "classes", 0)
    if not K:
        return []
    meta = getattr(model, "metadata", {})
    names = meta.get("class_names")
    if isinstance(names, (list, tuple)) and len(names) == K and all(isinstance(n, str) for n in names):
        return list(names)
    try:
        names = dataset_class_names(str(meta.get("dataset")))
    except ValueError:
        names = []
    return names if len(names) == K else [f"class {k}" for k in range(K)]


def is_untrained(model: torch.nn.Module) -> bool:
    """True for the random-weight stand-ins served while no checkpoint exists."""
    return bool(getattr(model, "metadata", {}).get("untrained"))


def title(model: torch.nn.Module) -> str:
    """The model's display name (a composite model with its base: "Multi-Scale (PixelCNN
    base)")."""
    name = ARCH_NAMES.get(model.arch, model.arch)
    base = getattr(model.cfg, "base", None)
    if base in ARCH_NAMES:                  # the base differs between datasets
        name += f" ({ARCH_NAMES[base]} base)"
    return name


def describe(model: torch.nn.Module) -> str:
    """One line for the UI: the architecture and whether/how it was trained."""
    return f"{title(model)}: {training(model)}"


def training(model: torch.nn.Module) -> str:
    """Whether/how the model was trained: "trained on mnist, 30 epochs, test NLL ..." or
    the UNTRAINED warning."""
    meta = getattr(model, "metadata", {})
    if is_untrained(model):
        return (f"⚠️ UNTRAINED (random weights; no checkpoints/{meta.get('dataset')}_"
                f"{model.arch}.pt yet) — samples will look like noise")
    parts = [f"trained on {meta.get('dataset', '?')}"]
    epochs = meta.get("epochs_total", meta.get("epochs"))   # in all, over continued runs
    if isinstance(epochs, (int, float)):
        parts.append(f"{epochs:g} epoch{'' if epochs == 1 else 's'}")
    for key, split in (("test_nll", "test"), ("val_nll", "validation")):
        if isinstance(meta.get(key), (int, float)):
            nll = f"{split} NLL {meta[key]:.2f} nats"
            if model.cfg.levels > 2:        # 8-bit data: the paper reports bits/dim
                dims = model.cfg.channels * model.cfg.height * model.cfg.width
                nll += f" ({pixelnet.bits_per_dim(meta[key], dims):.3f} bits/dim{of_levels(model)})"
            parts.append(nll)
            break
    return ", ".join(parts)


def coarse(model: torch.nn.Module, dataset: str | None = None) -> bool:
    """True for a model with fewer levels than its dataset's images (``dataset``, else the
    one its metadata names): it sees the 8-bit images quantized (``pixelnet.data.quantize``)."""
    ds = dataset_key(dataset) if dataset else getattr(model, "metadata", {}).get("dataset")
    return ds in DATASET_INFO and model.cfg.levels < DATASET_INFO[ds].levels


def of_levels(model: torch.nn.Module, dataset: str | None = None) -> str:
    """" of N levels" after the bits/dim of a :func:`coarse` model (its NLL is over N levels
    a channel: not comparable with a 256-level model's), else ""."""
    return f" of {model.cfg.levels} levels" if coarse(model, dataset) else ""
