"""Checkpoints: a dict of plain data and tensors that rebuilds its model by itself.

    {"format": "pixelnet", "version": 1, "arch": str, "config": dict, "model": state_dict,
     ...metadata (dataset, epochs, step, train_seconds, test_nll, ...)}

Written atomically (temp file in the same folder, then ``os.replace``) with mode 0644, so a
crash mid-write never leaves a corrupt file and a server running as another user can read it;
read with ``torch.load(weights_only=True)`` so loading cannot run code.

A file is checked before any model is built from it: every problem (unreadable, not ours, a
config field of the wrong type or beyond :data:`CONFIG_BOUNDS`, more than :data:`MAX_PARAMS`
parameters, weights that do not fit the config or are not finite) is a ``ValueError`` that
names the file.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import torch
import torch.nn as nn

FORMAT = "pixelnet"
RESERVED = ("format", "version", "arch", "config", "model")
FILE_MODE = 0o644

# Sane bounds of a checkpoint's config, checked before a model is built (so that a file saying
# h=1024 cannot make a server allocate a 200M-parameter model). Every committed checkpoint is
# far inside them (largest: h 64, layers 15, 32x32x3, 256 levels, 1.02M parameters); they
# leave room for models several times larger, trained on a GPU, at the datasets' sizes up to
# 128x128. Larger research models (the paper's 12-layer h=128 ImageNet nets fit; much wider
# ones may not) are built with ``build_model`` directly, not loaded from an untrusted file.
CONFIG_BOUNDS: dict[str, tuple[int, int]] = {
    "channels": (1, 4), "levels": (2, 256), "height": (1, 128), "width": (1, 128),
    "layers": (0, 64), "h": (1, 512), "out_h": (1, 1024), "classes": (0, 1000),
    "scale": (2, 8), "small_layers": (0, 64), "small_h": (1, 512), "up_channels": (1, 512),
}
OTHER_INT_BOUNDS = (0, 4096)        # an integer field not listed above
MAX_PARAMS = 32_000_000             # 128 MB of float32 weights; 31x the largest checkpoint


def atomic_save(obj: dict, path: str | os.PathLike) -> None:
    """``torch.save`` to a temp file beside ``path``, fsync, then rename over ``path``
    (mode 0644: ``mkstemp`` alone would leave it readable by its owner only)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
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


def check_config(config: object, where: str = "config") -> dict:
    """``config`` as ``build_model`` keyword arguments, after checking every field's type
    against the architecture's config dataclass and :data:`CONFIG_BOUNDS`; ``ValueError``
    naming ``where`` and the field otherwise. Builds nothing."""
    from . import MODELS
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise ValueError(f"{where}: the config is not a dict of named fields "
                         f"(got {type(config).__name__})")
    arch = config.get("arch")
    if not isinstance(arch, str) or arch not in MODELS:
        raise ValueError(f"{where}: unknown architecture {arch!r}; expected one of "
                         f"{', '.join(MODELS)}")
    fields = {f.name: f for f in dataclasses.fields(MODELS[arch].Config)}
    unknown = sorted(set(config) - set(fields) - {"arch"})
    if unknown:
        raise ValueError(f"{where}: config fields {unknown} are not {arch} hyperparameters")
    for name, value in config.items():
        if name == "arch":
            continue
        kind = fields[name].type if isinstance(fields[name].type, str) else fields[name].type.__name__
        if kind == "bool":
            ok = isinstance(value, bool)
        elif kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind == "float":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        else:
            ok = isinstance(value, str)
        if not ok:
            raise ValueError(f"{where}: config field {name!r} must be {kind}, got "
                             f"{type(value).__name__} {value!r:.60}")
        if kind == "int":
            lo, hi = CONFIG_BOUNDS.get(name, OTHER_INT_BOUNDS)
            if not lo <= value <= hi:
                raise ValueError(f"{where}: config field {name!r} = {value} is outside the "
                                 f"sane range [{lo}, {hi}] (pixelnet.checkpoint.CONFIG_BOUNDS)")
    return dict(config)


def _count_params(config: dict, where: str) -> int:
    """Parameters of the model ``config`` describes, built on the meta device (no memory)."""
    from . import build_model
    try:
        with torch.device("meta"):
            model = build_model(**config)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{where}: invalid config: {e}") from None
    return sum(p.numel() for p in model.parameters())


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The raw checkpoint dict, validated (its structure, config and weights' types; nothing
    is built); ``ValueError`` naming the file if it is missing, corrupt, not ours or
    malformed."""
    path = Path(path)
    where = repr(str(path))
    if not path.is_file():
        raise ValueError(f"checkpoint {where} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means "not a checkpoint"
        raise ValueError(f"{where} is not a readable PixelNet checkpoint (corrupt or "
                         f"another format): {type(e).__name__}: {str(e)[:200]}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or not all(
            k in ckpt for k in ("arch", "config", "model")):
        raise ValueError(f"{where} is a torch file but not a PixelNet checkpoint "
                         "(it lacks the 'format', 'arch', 'config' and 'model' entries)")
    config = check_config(ckpt["config"], where)
    if ckpt["arch"] != config["arch"]:
        raise ValueError(f"{where}: 'arch' says {ckpt['arch']!r} but its config says "
                         f"{config['arch']!r}")
    state = ckpt["model"]
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ValueError(f"{where}: 'model' is not a state dict (names -> tensors)")
    return ckpt


def load_checkpoint(path: str | os.PathLike) -> nn.Module:
    """Rebuild the model saved at ``path`` (CPU, eval mode).

    The checkpoint's other entries are attached as ``model.metadata`` (a dict).
    """
    from . import build_model
    ckpt = read_checkpoint(path)
    where = repr(str(path))
    config = dict(ckpt["config"])
    params = _count_params(config, where)
    if params > MAX_PARAMS:
        raise ValueError(f"{where}: its config describes a model of {params:,} parameters, more "
                         f"than the {MAX_PARAMS:,} a checkpoint may have "
                         "(pixelnet.checkpoint.MAX_PARAMS)")
    model = build_model(**config)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise ValueError(f"{where}: weights do not match its config: {str(e)[:300]}") from None
    bad = [k for k, v in ckpt["model"].items() if v.is_floating_point() and not v.isfinite().all()]
    if bad:
        raise ValueError(f"{where}: weights {bad[:3]} hold NaN or infinite values")
    model.metadata = {k: v for k, v in ckpt.items() if k not in RESERVED}
    return model.eval()
