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


def class_posterior(model: Model, x: torch.Tensor, prior: torch.Tensor | None = None
                    ) -> torch.Tensor:
    """Which class does a class-conditional model think each image is? Bayes' rule over its
    class-conditional likelihoods: ``p(k | x) = p(x | k) p(k) / sum_k' p(x | k') p(k')``.

    ``x`` ``(B, C, H, W)``; ``prior`` ``(K,)`` class probabilities (default uniform).
    Returns ``(B, K)`` posterior probabilities. Costs ``K`` forward passes.
    """
    K = model.cfg.classes
    if K == 0:
        raise ValueError(f"this {model.arch} model is not class-conditional (classes=0): "
                         "it has no class likelihoods to compare")
    log_prior = torch.full((K,), -math.log(K)) if prior is None else torch.log(prior.double())
    if log_prior.shape != (K,):
        raise ValueError(f"prior must have shape ({K},), got {tuple(log_prior.shape)}")
    B = x.shape[0]
    xs = x.repeat(K, 1, 1, 1)                                       # (K*B, C, H, W), class-major
    ys = torch.arange(K).repeat_interleave(B)
    log_lik = -nll(model, xs, ys).double().view(K, B).T             # (B, K) log p(x | k)
    return torch.softmax(log_lik + log_prior.to(log_lik.device), 1)


def bits_per_dim(nats: torch.Tensor | float, dims: int) -> torch.Tensor | float:
    """Convert nats per image to bits per dimension (``dims = C * H * W``)."""
    return nats / (dims * math.log(2))


__all__ = ["ARCHITECTURES", "MODELS", "NO_CLASS", "Model", "class_posterior", "build_model", "nll", "nll_map", "bits_per_dim",
           "sample", "sample_stream", "SampleEvent", "save_checkpoint", "load_checkpoint", "read_checkpoint", "param_count",
           "MaskedConv2d", "PixelModel", "PixelCNN", "RowLSTM", "DiagonalBiLSTM", "MultiScale"]
