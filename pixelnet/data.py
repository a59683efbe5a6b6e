"""Datasets as LongTensors ``(N, C, H, W)`` of 8-bit levels, with fixed train/val/test splits.

Sources (``source="auto"`` tries them in this order; see ``shared/SPEC.md``):

1. ``torchvision``'s files already on disk (MNIST, FashionMNIST, CIFAR10 under a data folder);
2. the offline files: ``mnist9k.npz`` and ``emoji32.npz`` in the shared data folder, and
   Debian's ``dataset-fashion-mnist`` IDX files in ``/usr/share/datasets/fashion-mnist``;
3. a ``torchvision`` download (fails within seconds where there is no network).

Data folders searched: the ``root`` argument, ``$PIXELNET_DATA``, ``<repo>/../shared/data``.
Downloads go to the first of ``root``, ``$PIXELNET_DATA``, ``~/.cache/pixelnet``.

Splits. Sources with their own test set (torchvision, Debian's Fashion-MNIST) keep it; the
validation set is every 16th image of their training set. The offline ``.npz`` files have no
test set: their test set is every 9th image (index % 9 == 8: 1,000 of the 9,000 digits,
420 emoji), and validation is every 16th image of the rest (500 digits, 210 emoji). The
emoji file is sorted by code point, so interleaved splits spread every kind of emoji.

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
TEST_EVERY = 9          # offline files: test = every 9th image
VAL_EVERY = 16          # val = every 16th image of what is left for training
EVAL_SEED = 1234        # the one fixed binarization of MNIST val/test images
DOWNLOAD_TIMEOUT_S = 10
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
TORCHVISION = {"mnist": "MNIST", "fashion": "FashionMNIST", "cifar10": "CIFAR10"}
OFFLINE_HINTS = {
    "mnist": "mnist9k.npz (images, labels) in a data folder",
    "emoji": "emoji32.npz (images) in a data folder",
    "fashion": f"`apt-get install dataset-fashion-mnist` (IDX files in {DEBIAN_FASHION}) "
               "or the IDX files in a data folder",
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


def data_dirs(root: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for data files, in order."""
    repo = Path(__file__).resolve().parents[1]
    dirs = [root, os.environ.get("PIXELNET_DATA"), repo.parent / "shared" / "data"]
    return [Path(d) for d in dirs if d]


def _download_dir(root) -> Path:
    return Path(root or os.environ.get("PIXELNET_DATA") or Path.home() / ".cache" / "pixelnet")


def _nchw(a) -> torch.Tensor:
    """uint8 array (N, H, W) or (N, H, W, C) -> uint8 tensor (N, C, H, W) (a copy)."""
    t = torch.tensor(np.asarray(a), dtype=torch.uint8)
    return t[:, None] if t.dim() == 3 else t.permute(0, 3, 1, 2).contiguous()


def _read_idx(path: Path) -> np.ndarray:
    """An IDX image file (optionally gzip'd), e.g. ``train-images-idx3-ubyte.gz``."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if raw[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _torchvision(name: str, root, download: bool) -> dict[str, torch.Tensor] | None:
    """{"train", "test"} from torchvision, or None if not on disk / not downloadable."""
    if name not in TORCHVISION:
        return None
    import torchvision.datasets
    cls = getattr(torchvision.datasets, TORCHVISION[name])
    roots = [_download_dir(root)] if download else [_download_dir(root), *data_dirs(root)]
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)     # no network: fail fast, never hang
    try:
        for r in roots:
            try:
                return {s: _nchw(cls(str(r), train=s == "train", download=download).data)
                        for s in ("train", "test")}
            except (RuntimeError, OSError):
                continue
    finally:
        socket.setdefaulttimeout(old)
    return None


def _offline(name: str, root) -> tuple[dict[str, torch.Tensor], str] | None:
    """({"train", "test"} or {"all"}, description) from the offline files, or None."""
    if name == "fashion":
        for d in (*data_dirs(root), DEBIAN_FASHION):
            for gz in ("", ".gz"):
                files = {s: d / f"{p}-images-idx3-ubyte{gz}" for s, p in
                         (("train", "train"), ("test", "t10k"))}
                if all(f.is_file() for f in files.values()):
                    return ({s: _nchw(_read_idx(f)) for s, f in files.items()},
                            "Fashion-MNIST IDX files")
        return None
    file = {"mnist": "mnist9k.npz", "emoji": "emoji32.npz"}.get(name)
    for d in data_dirs(root) if file else ():
        if (d / file).is_file():
            with np.load(d / file) as z:
                return {"all": _nchw(z["images"])}, file
    return None


_CACHE: dict[tuple, tuple[dict[str, torch.Tensor], str]] = {}


def _load_source(name: str, root, source: str) -> tuple[dict[str, torch.Tensor], str]:
    """The uint8 arrays of ``name`` and a description of where they came from (cached)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if source not in SOURCES:
        raise ValueError(f"unknown data source {source!r}; choose one of {', '.join(SOURCES)}")
    key = (name, tuple(map(str, data_dirs(root))), source)
    if key in _CACHE:
        return _CACHE[key]
    found = None
    if source in ("auto", "torchvision"):
        tv = _torchvision(name, root, download=False)
        found = (tv, f"torchvision {name}") if tv else None
    if found is None and source in ("auto", "offline"):
        off = _offline(name, root)
        found = (off[0], f"offline {off[1]}") if off else None
    if found is None and source in ("auto", "torchvision"):
        tv = _torchvision(name, root, download=True)
        found = (tv, f"torchvision {name}") if tv else None
    if found is None:
        options = [f"torchvision {TORCHVISION[name]} (downloads need network; saved to "
                   f"{_download_dir(root)})"] if name in TORCHVISION else []
        options += [OFFLINE_HINTS[name]] if name in OFFLINE_HINTS else []
        raise ValueError(
            f"dataset {name!r} not found (source={source!r}). Options: {'; '.join(options)}. "
            f"Data folders searched: {', '.join(map(str, data_dirs(root)))} "
            "(set one with root= / --data-root or $PIXELNET_DATA)")
    _CACHE[key] = found
    return found


def _every(n: int, k: int) -> torch.Tensor:
    """Boolean mask of indices ``i % k == k - 1``."""
    return torch.arange(n) % k == k - 1


def _split(name: str, split: str, root, source: str) -> tuple[torch.Tensor, str]:
    """The uint8 images of ``split`` and where they come from."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    arrays, origin = _load_source(name, root, source)
    x, rule = _split_rule(arrays, split)
    return x, f"{name} {split} split: {len(x)} images, {rule} of {origin}"


def _split_rule(arrays: dict[str, torch.Tensor], split: str) -> tuple[torch.Tensor, str]:
    """The images of ``split`` and the rule that picked them."""
    if "all" in arrays:                  # no test set of its own: hold one out
        x = arrays["all"]
        test = _every(len(x), TEST_EVERY)
        if split == "test":
            return x[test], f"every {TEST_EVERY}th image (index % {TEST_EVERY} == {TEST_EVERY - 1})"
        x, rest = x[~test], "the images outside the test split"
    elif split == "test":
        return arrays["test"], "the test set"
    else:
        x, rest = arrays["train"], "the training set"
    val = _every(len(x), VAL_EVERY)
    if split == "val":
        return x[val], f"every {VAL_EVERY}th of {rest}"
    return x[~val], f"{rest} minus val"


def load_dataset(name: str, split: str, root: str | os.PathLike | None = None,
                 source: str = "auto") -> torch.Tensor:
    """Images of ``split`` ("train", "val" or "test") as a LongTensor ``(N, C, H, W)`` of
    8-bit values 0..255 (for ``mnist`` the grayscale before binarization)."""
    return _split(name, split, root, source)[0].long()


def describe_split(name: str, split: str, root: str | os.PathLike | None = None,
                   source: str = "auto") -> str:
    """Where a split comes from, e.g. ``"mnist test split: 1000 images, every 9th image
    (index % 9 == 8) of offline mnist9k.npz"``."""
    return _split(name, split, root, source)[1]


def data_source(name: str, root: str | os.PathLike | None = None, source: str = "auto") -> str:
    """``"torchvision"`` or ``"offline"``: the source ``auto`` resolves to (pass it back as
    ``source`` to load the same splits later, e.g. when evaluating a checkpoint)."""
    return _load_source(name, root, source)[1].split()[0]


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Stochastic binarization: each pixel is 1 with probability ``x / 255``."""
    u = torch.rand(x.shape, generator=generator, device=x.device)
    return (u * 255 < x).long()


def load_eval_set(name: str, split: str, root: str | os.PathLike | None = None,
                  source: str = "auto") -> torch.Tensor:
    """Images as the models see them, for evaluation: ``load_dataset``, binarized once
    with the fixed seed :data:`EVAL_SEED` for ``mnist``."""
    x = load_dataset(name, split, root, source)
    if DATASETS[name].binarized:
        x = binarize(x, torch.Generator().manual_seed(EVAL_SEED))
    return x
