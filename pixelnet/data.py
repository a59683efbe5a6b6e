"""Datasets as LongTensors ``(N, C, H, W)`` of 8-bit levels, with fixed train/val/test splits,
and their class labels.

Sources (``source="auto"`` tries them in this order; see ``shared/SPEC.md``):

1. the offline files, which travel with the repository in ``data/`` (see ``data/README.md``):
   ``mnist9k.npz`` (9,000 MNIST digits and labels), ``emoji32.npz`` (3,786 Noto emoji) with
   ``emoji32_labels.npz``, and Fashion-MNIST's 70,000 images as ``fashion_{train,test}_{k}.npz``
   shards (or the original IDX files, in any data folder);
2. ``torchvision``'s files already on disk (MNIST, FashionMNIST, CIFAR10 under a data folder);
3. a ``torchvision`` download (fails within seconds where there is no network).

``source="torchvision"`` skips the offline files: the full 60,000-digit MNIST, for a user with a
network. Data folders searched: the ``root`` argument, ``<repo>/data``, ``$PIXELNET_DATA``.
Downloads go to the first of ``root``, ``$PIXELNET_DATA``, ``~/.cache/pixelnet``.

Splits. Sources with their own test set (torchvision, Fashion-MNIST) keep it; the validation
set is every 16th image of their training set. ``mnist9k.npz`` and ``emoji32.npz`` have no test
set: their test set is every 9th image (index % 9 == 8: 1,000 of the 9,000 digits, 420 emoji),
and validation is every 16th image of the rest (500 digits, 210 emoji). The emoji file is
sorted by code point, so interleaved splits spread every kind of emoji. :func:`load_labels`
gives the labels of the same images in the same order.

Binarized MNIST (paper, Sec. 5): a pixel is on with probability intensity / 255. Training
images are re-binarized every epoch (:func:`binarize`); evaluation images are binarized once
with the fixed seed :data:`EVAL_SEED` (:func:`load_eval_set`), shared by training, evaluation
and the demo.
"""
from __future__ import annotations

import gzip
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

SPLITS = ("train", "val", "test")
SOURCES = ("auto", "torchvision", "offline")
TEST_EVERY = 9          # mnist9k / emoji32: test = every 9th image
VAL_EVERY = 16          # val = every 16th image of what is left for training
EVAL_SEED = 1234        # the one fixed binarization of MNIST val/test images
DOWNLOAD_TIMEOUT_S = 10
REPO_DATA = Path(__file__).resolve().parents[1] / "data"
TORCHVISION = {"mnist": "MNIST", "fashion": "FashionMNIST", "cifar10": "CIFAR10"}
OFFLINE_HINTS = {
    "mnist": "mnist9k.npz (images, labels) in a data folder",
    "emoji": "emoji32.npz (images, codepoints) in a data folder, emoji32_labels.npz beside it "
             "for labels",
    "fashion": "fashion_{train,test}_{k}.npz shards, or the Fashion-MNIST IDX files, in a data "
               "folder",
}
# Class k of each dataset; emoji: Unicode emoji categories (tools/emoji_labels.py)
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                "Sneaker", "Bag", "Ankle boot"),
    "emoji": ("Smileys", "Hearts & Emotion", "People", "Animals & Nature", "Food & Drink",
              "Travel & Places", "Activities", "Objects", "Symbols", "Flags"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                "ship", "truck"),
}
# The classes whose mirror image (left to right) is no longer one of them: digits; emoji
# flags and symbols (letters, keycaps, arrows, signs)
NOT_MIRRORABLE: dict[str, tuple[str, ...]] = {
    "mnist": CLASS_NAMES["mnist"], "fashion": (), "emoji": ("Symbols", "Flags"), "cifar10": (),
}


@dataclass(frozen=True)
class DatasetInfo:
    """Shape of a dataset's images as the models see them. ``levels`` is the model's number
    of levels (2 for binarized MNIST); :func:`load_dataset` always returns 8-bit values."""
    channels: int
    levels: int
    height: int
    width: int
    binarized: bool = False     # stochastic binarization of 8-bit grayscale (mnist)

    @property
    def dims(self) -> int:
        """Sub-pixels per image, ``C * H * W`` (for bits per dimension)."""
        return self.channels * self.height * self.width

    def model_shape(self) -> dict:
        """The ``build_model`` keyword arguments for this dataset."""
        return dict(channels=self.channels, levels=self.levels, height=self.height,
                    width=self.width)


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(1, 2, 28, 28, binarized=True),
    "fashion": DatasetInfo(1, 256, 28, 28),
    "emoji": DatasetInfo(3, 256, 32, 32),
    "cifar10": DatasetInfo(3, 256, 32, 32),
}


@dataclass(frozen=True)
class Part:
    """Images ``(N, C, H, W)`` uint8 and their labels ``(N,)`` long (None: no labels)."""
    images: torch.Tensor
    labels: torch.Tensor | None


def data_dirs(root: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for offline files, in order: ``root``, ``<repo>/data``,
    ``$PIXELNET_DATA``."""
    dirs = [root, REPO_DATA, os.environ.get("PIXELNET_DATA")]
    return [Path(d) for d in dirs if d]


def _download_dir(root) -> Path:
    return Path(root or os.environ.get("PIXELNET_DATA") or Path.home() / ".cache" / "pixelnet")


def _nchw(a) -> torch.Tensor:
    """uint8 array (N, H, W) or (N, H, W, C) -> uint8 tensor (N, C, H, W) (a copy)."""
    t = torch.tensor(np.asarray(a), dtype=torch.uint8)
    return t[:, None] if t.dim() == 3 else t.permute(0, 3, 1, 2).contiguous()


def _labels(a) -> torch.Tensor:
    return torch.tensor(np.asarray(a), dtype=torch.long)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file of unsigned bytes (optionally gzip'd), e.g. ``train-images-idx3-ubyte.gz``
    (N, H, W) or ``train-labels-idx1-ubyte.gz`` (N,)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if raw[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _torchvision(name: str, root, download: bool) -> dict[str, Part] | None:
    """{"train", "test"} from torchvision, or None if not on disk / not downloadable."""
    if name not in TORCHVISION:
        return None
    try:
        import torchvision.datasets
    except ImportError:         # the app's requirements have no torchvision
        return None
    cls = getattr(torchvision.datasets, TORCHVISION[name])
    roots = [_download_dir(root)] if download else [_download_dir(root), *data_dirs(root)]
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)     # no network: fail fast, never hang
    try:
        for r in roots:
            try:
                sets = {s: cls(str(r), train=s == "train", download=download)
                        for s in ("train", "test")}
            except (RuntimeError, OSError):
                continue
            return {s: Part(_nchw(d.data), _labels(d.targets)) for s, d in sets.items()}
    finally:
        socket.setdefaulttimeout(old)
    return None


def _fashion_shards(folder: Path, split: str) -> Part | None:
    """The ``fashion_{split}_{k}.npz`` shards of ``folder`` joined in order, or None."""
    shards = {p: p.stem.rsplit("_", 1)[1] for p in folder.glob(f"fashion_{split}_*.npz")}
    paths = sorted((p for p, k in shards.items() if k.isdigit()), key=lambda p: int(shards[p]))
    if not paths:
        return None
    parts = []
    for k, path in enumerate(paths):
        with np.load(path) as z:
            if (int(z["shard"]), int(z["shards"])) != (k, len(paths)):
                raise ValueError(f"{path} is shard {int(z['shard'])} of {int(z['shards'])}, but "
                                 f"{folder} has {len(paths)} fashion_{split}_*.npz files: "
                                 "one is missing or extra (tools/fashion_shards.py writes them)")
            parts.append((z["images"], z["labels"]))
    return Part(_nchw(np.concatenate([p[0] for p in parts])),
                _labels(np.concatenate([p[1] for p in parts])))


def _fashion_idx(folder: Path, split: str) -> Part | None:
    """Fashion-MNIST's original IDX files in ``folder`` (labels optional), or None."""
    prefix = "train" if split == "train" else "t10k"
    for gz in ("", ".gz"):
        images = folder / f"{prefix}-images-idx3-ubyte{gz}"
        labels = folder / f"{prefix}-labels-idx1-ubyte{gz}"
        if images.is_file():
            return Part(_nchw(read_idx(images)),
                        _labels(read_idx(labels)) if labels.is_file() else None)
    return None


def _emoji(folder: Path) -> Part | None:
    """``emoji32.npz`` and, when beside it, the labels of ``emoji32_labels.npz``."""
    if not (folder / "emoji32.npz").is_file():
        return None
    with np.load(folder / "emoji32.npz") as z:
        images, codepoints = z["images"], z["codepoints"] if "codepoints" in z else None
    labels = None
    if (folder / "emoji32_labels.npz").is_file():
        path = folder / "emoji32_labels.npz"
        with np.load(path) as z:
            if codepoints is not None and not np.array_equal(z["codepoints"], codepoints):
                raise ValueError(f"{path} does not label the images of {folder / 'emoji32.npz'} "
                                 "(other code points): re-run tools/emoji_labels.py")
            if tuple(z["class_names"].tolist()) != CLASS_NAMES["emoji"]:
                raise ValueError(f"{path}: class names {z['class_names'].tolist()} differ "
                                 f"from pixelnet.data.CLASS_NAMES['emoji']")
            labels = _labels(z["labels"])
    return Part(_nchw(images), labels)


def _offline(name: str, root) -> tuple[dict[str, Part], str] | None:
    """({"train", "test"} or {"all"}, description) from the offline files, or None."""
    for d in data_dirs(root):
        if name == "mnist" and (d / "mnist9k.npz").is_file():
            with np.load(d / "mnist9k.npz") as z:
                labels = _labels(z["labels"]) if "labels" in z else None
                return {"all": Part(_nchw(z["images"]), labels)}, "mnist9k.npz"
        if name == "emoji" and (part := _emoji(d)) is not None:
            return {"all": part}, "emoji32.npz"
        if name == "fashion":
            for reader, kind in ((_fashion_shards, "npz shards"), (_fashion_idx, "IDX files")):
                parts = {s: reader(d, s) for s in ("train", "test")}
                if all(parts.values()):
                    return parts, f"Fashion-MNIST {kind}"
    return None


_CACHE: dict[tuple, tuple[dict[str, Part], str]] = {}


def _load_source(name: str, root, source: str) -> tuple[dict[str, Part], str]:
    """The arrays of ``name`` and a description of where they came from (cached)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if source not in SOURCES:
        raise ValueError(f"unknown data source {source!r}; choose one of {', '.join(SOURCES)}")
    key = (name, tuple(map(str, data_dirs(root))), source)
    if key in _CACHE:
        return _CACHE[key]
    found = None
    if source in ("auto", "offline"):
        off = _offline(name, root)
        found = (off[0], f"offline {off[1]}") if off else None
    for download in (False, True):
        if found is None and source in ("auto", "torchvision"):
            tv = _torchvision(name, root, download=download)
            found = (tv, f"torchvision {name}") if tv else None
    if found is None:
        options = [OFFLINE_HINTS[name]] if name in OFFLINE_HINTS else []
        options += [f"torchvision {TORCHVISION[name]} (`pip install torchvision`; downloads "
                    f"need network; saved to {_download_dir(root)})"] if name in TORCHVISION else []
        raise ValueError(
            f"dataset {name!r} not found (source={source!r}). Options: {'; '.join(options)}. "
            f"Data folders searched: {', '.join(map(str, data_dirs(root)))} "
            "(set one with root= / --data-root or $PIXELNET_DATA)")
    _CACHE[key] = found
    return found


def _every(n: int, k: int) -> torch.Tensor:
    """Boolean mask of indices ``i % k == k - 1``."""
    return torch.arange(n) % k == k - 1


def _split_rule(parts: dict[str, Part], split: str) -> tuple[Part, torch.Tensor, str]:
    """The part ``split`` is drawn from, the indices into it, and the rule that picked them."""
    if "all" in parts:                  # no test set of its own: hold one out
        part = parts["all"]
        idx = torch.arange(len(part.images))
        test = _every(len(idx), TEST_EVERY)
        if split == "test":
            return part, idx[test], (f"every {TEST_EVERY}th image "
                                     f"(index % {TEST_EVERY} == {TEST_EVERY - 1})")
        idx, rest = idx[~test], "the images outside the test split"
    elif split == "test":
        part = parts["test"]
        return part, torch.arange(len(part.images)), "the test set"
    else:
        part, rest = parts["train"], "the training set"
        idx = torch.arange(len(part.images))
    val = _every(len(idx), VAL_EVERY)
    if split == "val":
        return part, idx[val], f"every {VAL_EVERY}th of {rest}"
    return part, idx[~val], f"{rest} minus val"


def _split(name: str, split: str, root, source: str) -> tuple[Part, torch.Tensor, str]:
    """The part, the indices of ``split`` in it, and a description of where they come from."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    parts, origin = _load_source(name, root, source)
    part, idx, rule = _split_rule(parts, split)
    return part, idx, f"{name} {split} split: {len(idx)} images, {rule} of {origin}"


def load_dataset(name: str, split: str, root: str | os.PathLike | None = None,
                 source: str = "auto") -> torch.Tensor:
    """Images of ``split`` ("train", "val" or "test") as a LongTensor ``(N, C, H, W)`` of
    8-bit values 0..255 (for ``mnist`` the grayscale before binarization)."""
    part, idx, _ = _split(name, split, root, source)
    return part.images[idx].long()


def load_labels(name: str, split: str, root: str | os.PathLike | None = None,
                source: str = "auto") -> torch.LongTensor:
    """Class labels ``(N,)`` in ``[0, len(class_names(name)))`` of the images that
    :func:`load_dataset` returns for the same arguments, in the same order."""
    part, idx, description = _split(name, split, root, source)
    if part.labels is None:
        raise ValueError(f"{description.split(' of ')[-1]} has no labels for {name!r}: "
                         f"{OFFLINE_HINTS.get(name, 'use torchvision')}")
    return part.labels[idx]


def load_twemoji(split: str = "train", root: str | os.PathLike | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The emoji of ``split`` in a second rendering, Twitter's Twemoji
    (``emoji32_twitter.npz`` beside ``emoji32.npz``, ``tools/emoji_twitter.py``): images
    ``(N, 3, 32, 32)`` long 0..255 and their labels, in :func:`load_dataset`'s order. More
    training data for the emoji models (``training/train.py --twemoji``); the validation and
    test splits stay Noto's, whose code points the training split never holds."""
    _, idx, _ = _split("emoji", split, root, "offline")
    labels = load_labels("emoji", split, root, "offline")
    # beside the emoji32.npz that _split read: the first data folder holding one
    d = next(d for d in data_dirs(root) if (d / "emoji32.npz").is_file())
    path = d / "emoji32_twitter.npz"
    if not path.is_file():
        raise ValueError(f"emoji32_twitter.npz not found beside {d / 'emoji32.npz'}: make it "
                         "with tools/emoji_twitter.py")
    with np.load(d / "emoji32.npz") as z, np.load(path) as t:
        if not np.array_equal(t["codepoints"], z["codepoints"]):
            raise ValueError(f"{path} does not hold the emoji of {d / 'emoji32.npz'} "
                             "(other code points): re-run tools/emoji_twitter.py")
        images = _nchw(t["images"])
    return images[idx].long(), labels


def mirrorable(name: str) -> torch.BoolTensor:
    """``(K,)``: whether class k of dataset ``name`` stays of its kind mirrored left to right
    (:data:`NOT_MIRRORABLE`), for training on mirrored images."""
    names = class_names(name)
    return torch.tensor([k not in NOT_MIRRORABLE[name] for k in names])


def class_names(name: str) -> list[str]:
    """The names of ``name``'s classes: label k is ``class_names(name)[k]``."""
    if name not in CLASS_NAMES:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(CLASS_NAMES)}")
    return list(CLASS_NAMES[name])


def describe_split(name: str, split: str, root: str | os.PathLike | None = None,
                   source: str = "auto") -> str:
    """Where a split comes from, e.g. ``"mnist test split: 1000 images, every 9th image
    (index % 9 == 8) of offline mnist9k.npz"``."""
    return _split(name, split, root, source)[2]


def data_source(name: str, root: str | os.PathLike | None = None, source: str = "auto") -> str:
    """``"torchvision"`` or ``"offline"``: the source ``auto`` resolves to (pass it back as
    ``source`` to load the same splits later, e.g. when evaluating a checkpoint)."""
    return _load_source(name, root, source)[1].split()[0]


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Stochastic binarization: each pixel is 1 with probability ``x / 255``."""
    u = torch.rand(x.shape, generator=generator, device=x.device)
    return (u * 255 < x).long()


def quantize(x: torch.Tensor, levels: int) -> torch.Tensor:
    """8-bit values ``[0, 256)`` -> ``levels`` equal bins ``[0, levels)`` (long). A model with
    fewer levels than its data (our choice for colour on small compute, not the paper's:
    e.g. 8 levels, 3 bits per channel) sees its images through this."""
    if not 2 <= levels <= 256:
        raise ValueError(f"levels must be in [2, 256], got {levels}")
    return x.long() * levels // 256


def dequantize(v: torch.Tensor, levels: int) -> torch.Tensor:
    """Levels ``[0, levels)`` -> 8-bit values (uint8), bin ``l`` shown as ``255 l / (levels - 1)``
    so that black and white stay black and white; inverse of :func:`quantize` on its output."""
    return torch.round(v.double() * (255.0 / (levels - 1))).to(torch.uint8)


def load_eval_set(name: str, split: str, root: str | os.PathLike | None = None,
                  source: str = "auto", levels: int | None = None) -> torch.Tensor:
    """Images as the models see them, for evaluation: ``load_dataset``, binarized once
    with the fixed seed :data:`EVAL_SEED` for ``mnist``, or quantized to ``levels`` (a model
    with fewer levels than the 8-bit data; ``None``: the dataset's own)."""
    x = load_dataset(name, split, root, source)
    if DATASETS[name].binarized:
        x = binarize(x, torch.Generator().manual_seed(EVAL_SEED))
    elif levels is not None and levels != DATASETS[name].levels:
        x = quantize(x, levels)
    return x
