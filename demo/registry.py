"""Which models the app serves: datasets, architectures and a cached ``get_model``.

``get_model(dataset, arch)`` returns the trained model ``checkpoints/{dataset}_{arch}.pt``
when that file exists, else an untrained model of the dataset's shape (fixed random
weights) flagged by :func:`is_untrained`. The cache is keyed by the checkpoint's
modification time, so a checkpoint that lands (or is replaced) while the app runs is picked
up by the next call, without a restart.
"""
from __future__ import annotations

import sys
import threading
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import pixelnet  # noqa: E402
from pixelnet.data import DATASETS as DATASET_INFO  # noqa: E402  (channels, levels, size)

CHECKPOINTS = REPO / "checkpoints"

DATASETS: dict[str, str] = {"MNIST digits": "mnist", "Fashion-MNIST": "fashion",
                            "Emoji": "emoji"}
"""Display name -> dataset key (``checkpoints/{key}_{arch}.pt``)."""

ARCH_NAMES: dict[str, str] = {"pixelcnn": "PixelCNN", "row_lstm": "Row LSTM",
                              "diagonal_bilstm": "Diagonal BiLSTM", "multiscale": "Multi-Scale"}
"""Architecture key -> display name."""

MULTISCALE_DATASETS = ("mnist", "emoji")

_cache: dict[tuple[str, str], tuple[float | None, torch.nn.Module]] = {}
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


def architectures(dataset: str) -> list[str]:
    """Architecture keys offered for ``dataset`` (Multi-Scale only for ``MULTISCALE_DATASETS``)."""
    ds = dataset_key(dataset)
    return [a for a in pixelnet.ARCHITECTURES if a in ARCH_NAMES
            and (a != "multiscale" or ds in MULTISCALE_DATASETS)]


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

    Trained (``checkpoints/{dataset}_{arch}.pt``) if present and readable, else untrained
    (see :func:`is_untrained`). Raises ``ValueError`` for an unknown dataset or architecture
    or Multi-Scale outside ``MULTISCALE_DATASETS``.
    """
    ds, arch = dataset_key(dataset), arch_key(arch)
    if arch not in architectures(ds):
        raise ValueError(f"{ARCH_NAMES[arch]} is not offered for {ds}; choose one of "
                         f"{', '.join(ARCH_NAMES[a] for a in architectures(ds))}")
    path = checkpoint_path(ds, arch)
    mtime = path.stat().st_mtime if path.is_file() else None
    with _lock:
        hit = _cache.get((ds, arch))
        if hit is not None and hit[0] == mtime:
            return hit[1]
        model = None
        if mtime is not None:
            try:
                model = pixelnet.load_checkpoint(path)
            except ValueError as e:          # corrupt or mismatched: serve untrained, say why
                print(f"warning: {e}; using an untrained model", file=sys.stderr)
        if model is None:
            model = _untrained(ds, arch)
        _cache[(ds, arch)] = (mtime, model)
        return model


def is_untrained(model: torch.nn.Module) -> bool:
    """True for the random-weight stand-ins served while no checkpoint exists."""
    return bool(getattr(model, "metadata", {}).get("untrained"))


def describe(model: torch.nn.Module) -> str:
    """One line for the UI: the architecture and whether/how it was trained."""
    meta = getattr(model, "metadata", {})
    name = ARCH_NAMES.get(model.arch, model.arch)
    if model.arch == "multiscale":          # the base differs between datasets
        name += f" ({ARCH_NAMES.get(model.cfg.base, model.cfg.base)} base)"
    if is_untrained(model):
        return (f"{name}: ⚠️ UNTRAINED (random weights; no checkpoints/{meta.get('dataset')}_"
                f"{model.arch}.pt yet) — samples will look like noise")
    parts = [f"{name}: trained on {meta.get('dataset', '?')}"]
    if isinstance(meta.get("epochs"), (int, float)):
        parts.append(f"{meta['epochs']:g} epoch{'' if meta['epochs'] == 1 else 's'}")
    for key, split in (("test_nll", "test"), ("val_nll", "validation")):
        if isinstance(meta.get(key), (int, float)):
            nll = f"{split} NLL {meta[key]:.2f} nats"
            if model.cfg.levels > 2:        # 8-bit data: the paper reports bits/dim
                dims = model.cfg.channels * model.cfg.height * model.cfg.width
                nll += f" ({pixelnet.bits_per_dim(meta[key], dims):.3f} bits/dim)"
            parts.append(nll)
            break
    return ", ".join(parts)
