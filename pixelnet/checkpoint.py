"""Checkpoints: a dict of plain data and tensors that rebuilds its model by itself.

    {"format": "pixelnet", "version": 1, "arch": str, "config": dict, "model": state_dict,
     ...metadata (dataset, epochs, step, train_seconds, test_nll, ...)}

Written atomically (temp file in the same folder, then ``os.replace``) so a crash mid-write
never leaves a corrupt file, and read with ``torch.load(weights_only=True)`` so loading
cannot run code.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
import torch.nn as nn

FORMAT = "pixelnet"
RESERVED = ("format", "version", "arch", "config", "model")


def atomic_save(obj: dict, path: str | os.PathLike) -> None:
    """``torch.save`` to a temp file beside ``path``, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(model: nn.Module, path: str | os.PathLike, **metadata) -> None:
    """Save ``model`` (its config and state dict) and plain ``metadata`` to ``path``."""
    bad = [k for k in metadata if k in RESERVED]
    if bad:
        raise ValueError(f"metadata keys {bad} are reserved in a checkpoint")
    config = dict(model.config)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_save({"format": FORMAT, "version": 1, "arch": config["arch"], "config": config,
                 "model": state, **metadata}, path)


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The raw checkpoint dict, validated; ``ValueError`` if missing, corrupt or not ours."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means "not a checkpoint"
        raise ValueError(f"{str(path)!r} is not a readable PixelNet checkpoint (corrupt or "
                         f"another format): {type(e).__name__}: {str(e)[:200]}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or not all(
            k in ckpt for k in ("arch", "config", "model")):
        raise ValueError(f"{str(path)!r} is a torch file but not a PixelNet checkpoint "
                         "(it lacks the 'format', 'arch', 'config' and 'model' entries)")
    return ckpt


def load_checkpoint(path: str | os.PathLike) -> nn.Module:
    """Rebuild the model saved at ``path`` (CPU, eval mode).

    The checkpoint's other entries are attached as ``model.metadata`` (a dict).
    """
    from . import build_model
    ckpt = read_checkpoint(path)
    model = build_model(**ckpt["config"])
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise ValueError(f"{str(path)!r}: weights do not match its config: {str(e)[:300]}") from None
    model.metadata = {k: v for k, v in ckpt.items() if k not in RESERVED}
    return model.eval()
