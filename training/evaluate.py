"""Test NLL of a checkpoint, in nats per image and bits per dimension.

    python training/evaluate.py checkpoints/mnist_diagonal_bilstm.pt [--split test] [--limit N]

The images are the checkpoint's dataset, from the source it was trained on, as the models see
them (``pixelnet.data.load_eval_set``: MNIST binarized once with a fixed seed). A
class-conditional checkpoint is measured twice: unconditionally (``y=None``, the "no class"
entry) and given each image's true class.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
from tqdm import tqdm

import pixelnet
from pixelnet.data import DATASETS, SPLITS, describe_split, load_eval_set, load_labels


@torch.no_grad()
def dataset_nll(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 64,
                device: torch.device | str = "cpu", progress: bool = False,
                y: torch.Tensor | None = None) -> torch.Tensor:
    """NLL in nats of every image of ``x`` (``(N,)``, on the CPU), in batches; given its
    labels ``y`` ``(N,)`` for a class-conditional model (None: unconditional)."""
    was_training = model.training
    model.eval()
    try:                                # a failed batch must not leave a training model in eval
        out = [pixelnet.nll(model, x[i:i + batch_size].to(device),
                            None if y is None else y[i:i + batch_size]).cpu()
               for i in tqdm(range(0, len(x), batch_size), desc="eval", unit="batch",
                             disable=not progress, leave=False)]
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)


def evaluate(path: str | Path, split: str = "test", limit: int | None = None,
             batch_size: int = 64, root: str | None = None, progress: bool = False) -> dict:
    """Evaluate the checkpoint at ``path`` on ``split`` of its dataset; returns a dict with
    ``nats``, ``bits_per_dim``, ``stderr_nats``, ``images`` and ``split`` (a description),
    and for a class-conditional model ``nats_given_class`` and ``bits_per_dim_given_class``
    (else None)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be >= 1, got {limit}")
    model = pixelnet.load_checkpoint(path)
    name = model.metadata.get("dataset")
    if name not in DATASETS:
        raise ValueError(f"{path}: metadata names no known dataset (got {name!r}); "
                         f"expected one of {', '.join(DATASETS)}")
    source = model.metadata.get("data_source", "auto")
    levels = model.cfg.levels       # fewer than the dataset's: quantized images, its own unit
    x = load_eval_set(name, split, root, source, levels)[:limit]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    nats = dataset_nll(model.to(device), x, batch_size, device, progress)
    mean = nats.mean().item()
    given = None
    if model.cfg.classes:
        y = load_labels(name, split, root, source)[:limit]
        given = dataset_nll(model, x, batch_size, device, progress, y=y).mean().item()
    dims = DATASETS[name].dims
    return dict(nats=mean, bits_per_dim=pixelnet.bits_per_dim(mean, dims),
                nats_given_class=given,
                bits_per_dim_given_class=None if given is None else pixelnet.bits_per_dim(given, dims),
                stderr_nats=(nats.std().item() / math.sqrt(len(nats))) if len(nats) > 1 else 0.0,
                images=len(nats), split=split,
                split_description=describe_split(name, split, root, source)
                + (f" (first {len(x)})" if limit else "")
                + (f", quantized to {levels} levels" if levels < DATASETS[name].levels else ""))


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--split", default="test", choices=SPLITS)
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N images")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--data-root", default=None, help="folder with the dataset files")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    r = evaluate(a.checkpoint, a.split, a.limit, a.batch_size, a.data_root, progress=True)
    print(f"{a.checkpoint}: {r['split']} NLL {r['nats']:.3f} ± {r['stderr_nats']:.3f} nats/image, "
          f"{r['bits_per_dim']:.4f} bits/dim\n  on {r['split_description']}")
    if r["nats_given_class"] is not None:
        print(f"  given each image's class: {r['nats_given_class']:.3f} nats/image, "
              f"{r['bits_per_dim_given_class']:.4f} bits/dim")
    return r


if __name__ == "__main__":
    try:
        main()
    except ValueError as e:
        sys.exit(f"error: {e}")
