"""Write Fashion-MNIST's IDX files as the repository's compressed shards in ``data/``.

    python tools/fashion_shards.py /usr/share/datasets/fashion-mnist [--out data]

Input: the four original IDX files (``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``,
e.g. Debian's ``dataset-fashion-mnist`` or torchvision's ``raw/`` folder). Output:
``fashion_train_{k}.npz`` (4 shards of 15,000 images, in the original order) and
``fashion_test_0.npz`` (10,000): ``images`` (N, 28, 28) uint8, ``labels`` (N,) uint8, and the
shard's ``shard`` index and ``shards`` count. Every file stays under 10 MB (a Space's limit for
a plain file; about 6.6 MB each).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from pixelnet.data import read_idx

SHARD_IMAGES = 15_000


def find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise ValueError(f"{folder} has no {stem}[.gz]")


def write_shards(src: Path, out: Path) -> list[Path]:
    """Write the shards of both splits from the IDX files in ``src``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(find(src, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(find(src, f"{prefix}-labels-idx1-ubyte"))
        if len(images) != len(labels):
            raise ValueError(f"{src}: {len(images)} {split} images but {len(labels)} labels")
        starts = range(0, len(images), SHARD_IMAGES)
        for k, s in enumerate(starts):
            path = out / f"fashion_{split}_{k}.npz"
            np.savez_compressed(path, images=images[s:s + SHARD_IMAGES],
                                labels=labels[s:s + SHARD_IMAGES], shard=k, shards=len(starts))
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="folder with the IDX files")
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "data"))
    a = p.parse_args(argv)
    for path in write_shards(Path(a.src), Path(a.out)):
        print(f"{path}: {path.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    try:
        main()
    except ValueError as e:
        sys.exit(f"error: {e}")
