"""PixelNet: Row LSTM, Diagonal BiLSTM, PixelCNN and Multi-Scale PixelRNN
(van den Oord et al., "Pixel Recurrent Neural Networks", ICML 2016).

Images are LongTensors ``(B, C, H, W)`` of levels in ``[0, levels)``; models return logits
``(B, levels, C, H, W)``. See ``shared/SPEC.md`` for the contract.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .base import MODELS, NO_CLASS, Model, PixelModel
from .checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from .layers import MaskedConv2d, param_count
# importing an architecture's module registers it in MODELS, in this order
from .pixelcnn import PixelCNN
from .row_lstm import RowLSTM
from .diagonal_bilstm import DiagonalBiLSTM
from .multiscale import MultiScale
from .sampling import SampleEvent, sample, sample_stream

ARCHITECTURES: tuple[str, ...] = tuple(MODELS)
"""Every architecture's key, from the one registry :data:`MODELS` (key -> model class, whose
``title`` is its display name)."""


def build_model(arch: str, channels: int = 1, levels: int = 2, height: int = 28,
                width: int = 28, **hparams) -> Model:
    """Build an architecture of ``ARCHITECTURES``; unspecified hyperparameters take the
    defaults of its config dataclass (the paper's MNIST sizes)."""
    if arch not in MODELS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    model_cls = MODELS[arch]
    fields = set(model_cls.Config.__dataclass_fields__)
    unknown = sorted(set(hparams) - fields)
    if unknown:
        raise ValueError(f"unknown hyperparameters for {arch}: {unknown}; "
                         f"valid: {sorted(fields - {'channels', 'levels', 'height', 'width'})}")
    cfg = model_cls.Config(channels=channels, levels=levels, height=height, width=width, **hparams)
    return model_cls(cfg)


def nll(model: Model, x: torch.Tensor, y: torch.Tensor | int | None = None) -> torch.Tensor:
    """Negative log-likelihood in nats per image, ``(B,)``, given class labels ``y`` for a
    class-conditional model (None: unconditional).

    Bits per dimension: ``nll / (C * H * W * ln 2)`` (see :func:`bits_per_dim`).
    """
    return nll_map(model, x, y).flatten(1).sum(1)


def nll_map(model: Model, x: torch.Tensor, y: torch.Tensor | int | None = None) -> torch.Tensor:
    """Per-sub-pixel NLL in nats, ``(B, C, H, W)``; sums to :func:`nll`."""
    logits = model(x, y=y)
    return F.cross_entropy(logits, x.long().to(logits.device), reduction="none")


def bits_per_dim(nats: torch.Tensor | float, dims: int) -> torch.Tensor | float:
    """Convert nats per image to bits per dimension (``dims = C * H * W``)."""
    return nats / (dims * math.log(2))


__all__ = ["ARCHITECTURES", "MODELS", "NO_CLASS", "Model", "build_model", "nll", "nll_map", "bits_per_dim",
           "sample", "sample_stream", "SampleEvent", "save_checkpoint", "load_checkpoint", "read_checkpoint", "param_count",
           "MaskedConv2d", "PixelModel", "PixelCNN", "RowLSTM", "DiagonalBiLSTM", "MultiScale"]
