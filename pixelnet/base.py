"""The model interface, the registry of architectures, and the skeleton the single-scale
architectures share (paper Table 1): a 7x7 mask A input layer, a stack of ``layers`` blocks
on a ``2h``-feature residual stream, optional learnable skip connections, and two mask B
output layers giving a ``levels``-way softmax per channel.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import MaskedConv2d, OutputHead, channel_groups, scale_input

MODELS: dict[str, type[Model]] = {}
"""The registry: architecture key -> model class, filled by :func:`register`. Every other
list of architectures (``pixelnet.ARCHITECTURES``, the app's, the benchmark's) derives
from it."""

NO_CLASS = -1
"""A label meaning "no class" (unconditional) for one image of a class-conditional model."""


def register(cls: type[Model]) -> type[Model]:
    """Class decorator: add an architecture to :data:`MODELS` under ``cls.arch``."""
    MODELS[cls.arch] = cls
    return cls


@dataclass
class BaseConfig:
    """Fields every architecture has. Defaults: binarized MNIST (28x28x1, 2 levels)."""
    channels: int = 1
    levels: int = 2
    height: int = 28
    width: int = 28
    layers: int = 7          # LSTM layers / residual blocks
    h: int = 16              # hidden size; the residual stream has 2h features
    out_h: int = 32          # features of the first output layer (paper: 32 for MNIST)
    skip: bool = True        # learnable 1x1 skip connections from every layer to the output
    classes: int = 0         # class-conditional with this many classes (0: unconditional)
    # training only: drop this fraction of every block's update to the residual stream (ours,
    # not the paper's; a small dataset such as emoji is learnt by heart without it)
    dropout: float = 0.0

    def validate(self) -> None:
        if self.channels < 1:
            raise ValueError(f"channels must be >= 1, got {self.channels}")
        if self.levels < 2:
            raise ValueError(f"levels must be >= 2, got {self.levels}")
        if self.height < 1 or self.width < 1:
            raise ValueError(f"height and width must be >= 1, got {self.height}x{self.width}")
        if self.layers < 0 or self.h < 1 or self.out_h < 1:
            raise ValueError("layers must be >= 0 and h, out_h >= 1")
        if 2 * self.h < self.channels:
            raise ValueError(f"2h = {2 * self.h} features cannot hold {self.channels} colour "
                             "groups: use a larger h")
        if self.classes < 0:
            raise ValueError(f"classes must be >= 0 (0: unconditional), got {self.classes}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1) (0: none), got {self.dropout}")


class Model(nn.Module, ABC):
    """What every architecture offers: its config, input and label checking, logits, the
    generation order and its fast sampling engine. Subclasses set ``arch`` (registry key),
    ``title`` (display name), ``Config`` (a dataclass) and ``Engine`` (the fast sampler)."""

    arch: str
    title: str
    unseen: str = ""         # which earlier pixels never reach a prediction, in words
    Config: type[BaseConfig]
    Engine: type
    cfg: BaseConfig

    @property
    def config(self) -> dict:
        """Plain dict such that ``build_model(**model.config)`` rebuilds this model."""
        return {"arch": self.arch, **asdict(self.cfg)}

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        """Validate an image batch against the config; returns it as a LongTensor."""
        c = self.cfg
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"expected a torch.Tensor of integer levels, got {type(x).__name__}")
        if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
            raise ValueError(f"expected integer levels in [0, {c.levels}) (a LongTensor), got "
                             f"dtype {x.dtype}; convert images with x.long() after quantizing")
        want = (c.channels, c.height, c.width)
        if x.dim() != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(f"expected shape (B, {c.channels}, {c.height}, {c.width}) for this "
                             f"{self.arch} model, got {tuple(x.shape)}")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= c.levels):
            raise ValueError(f"pixel values must lie in [0, {c.levels}), got range "
                             f"[{int(x.min())}, {int(x.max())}]")
        return x.long()

    def labels(self, y: torch.Tensor | int | None, batch: int) -> torch.Tensor | None:
        """Class indices ``(batch,)`` for the label embeddings, or None for an unconditional
        model. ``y``: None (no class for any image), an int, or a LongTensor ``(batch,)``;
        :data:`NO_CLASS` (-1) marks an image without a class. "No class" is the embeddings'
        last row, index ``classes``."""
        K = self.cfg.classes
        if K == 0:
            if y is not None:
                raise ValueError(f"this {self.arch} model is not class-conditional "
                                 "(built with classes=0): pass y=None")
            return None
        if y is None:
            return torch.full((batch,), K, dtype=torch.long, device=self.device)
        if isinstance(y, bool) or not isinstance(y, (int, torch.Tensor)):
            raise ValueError(f"y must be None, an int or a LongTensor of class indices, "
                             f"got {type(y).__name__}")
        if isinstance(y, int):
            y = torch.full((batch,), y, dtype=torch.long)
        if y.is_floating_point() or y.dtype == torch.bool or y.shape != (batch,):
            raise ValueError(f"y must be a LongTensor of shape ({batch},), got dtype {y.dtype} "
                             f"and shape {tuple(y.shape)}")
        if y.numel() and (int(y.min()) < NO_CLASS or int(y.max()) >= K):
            raise ValueError(f"class indices must lie in [0, {K}) (or {NO_CLASS} for no class), "
                             f"got range [{int(y.min())}, {int(y.max())}]")
        y = y.long().to(self.device)
        return torch.where(y == NO_CLASS, K, y)

    def forward(self, x: torch.Tensor, y: torch.Tensor | int | None = None) -> torch.Tensor:
        """Logits ``(B, levels, C, H, W)`` for an image batch ``(B, C, H, W)`` of levels, given
        class labels ``y`` (see :meth:`labels`) for a class-conditional model."""
        x = self.check_input(x)
        xf = scale_input(x, self.cfg.levels).to(self.dtype)
        return self.forward_float(xf, y=self.labels(y, x.shape[0]))

    @abstractmethod
    def forward_float(self, xf: torch.Tensor, cond: torch.Tensor | None = None,
                      y: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, levels, C, H, W)`` from the scaled float image ``(B, C, H, W)``, a
        conditioning map and class indices (from :meth:`labels`)."""

    @abstractmethod
    def prediction_inputs(self, xf: torch.Tensor, i: int, j: int, c: int) -> torch.Tensor:
        """``(B, F)``: the features that the prediction of sub-pixel ``(c, i, j)`` is a
        pointwise function of (for receptive fields; see ``explain.receptive_field``)."""

    @abstractmethod
    def masked_stack(self) -> PixelModel:
        """The full-resolution stack whose masks define what the model sees."""

    def generation_order(self) -> list[tuple[int, int]]:
        """Pixel positions in the order they are generated (raster order here)."""
        return [(i, j) for i in range(self.cfg.height) for j in range(self.cfg.width)]

    def engine(self, x: torch.Tensor, y: torch.Tensor | None = None):
        """This architecture's fast sampling engine over the live image ``x`` ``(n, C, H, W)``,
        with class indices ``y`` from :meth:`labels`."""
        return self.Engine(self, x, y=y)


class PixelModel(Model):
    """A single-scale architecture: the shared stack around ``layers`` blocks.

    Subclasses build ``self.layers`` through ``make_layer`` (blocks taking ``(z, cond, y)``
    and returning the updated ``(B, 2h, H, W)`` residual stream). ``cond_channels > 0``
    gives every block a conditioning map input (the Multi-Scale model's conditional stack).
    """

    first_kernel = 7

    def __init__(self, cfg: BaseConfig, cond_channels: int = 0):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.cond_channels = cond_channels
        C, h = cfg.channels, cfg.h
        self.input = MaskedConv2d(C, 2 * h, self.first_kernel, "A", C)
        self.layers = nn.ModuleList([self.make_layer(cond_channels) for _ in range(cfg.layers)])
        self.skips = nn.ModuleList(
            [MaskedConv2d(2 * h, 2 * h, 1, "B", C) for _ in range(cfg.layers)]
        ) if cfg.skip else None
        self.head = OutputHead(2 * h, cfg.out_h, C, cfg.levels)

    @abstractmethod
    def make_layer(self, cond_channels: int) -> nn.Module:
        """One block of this architecture."""

    def features(self, xf: torch.Tensor, cond: torch.Tensor | None = None,
                 y: torch.Tensor | None = None) -> torch.Tensor:
        """What the output layers read, ``(B, 2h, H, W)``, from the scaled float image
        ``(B, C, H, W)`` (the last residual stream, or the sum of the skip connections)."""
        z = self.input(xf)                                   # (B, 2h, H, W)
        s = 0
        for k, layer in enumerate(self.layers):
            if self.training and self.cfg.dropout:   # drop the block's update, not the stream
                z = z + F.dropout(layer(z, cond, y) - z, self.cfg.dropout)
            else:
                z = layer(z, cond, y)
            if self.skips is not None:
                s = s + self.skips[k](z)
        return s if self.skips is not None else z

    def forward_float(self, xf, cond=None, y=None):
        return self.head(self.features(xf, cond, y))

    def prediction_inputs(self, xf, i, j, c):
        # the output layers are pointwise and channel c's (mask B) read groups <= c
        f = self.features(xf, y=self.labels(None, xf.shape[0]))[:, :, i, j]   # (B, 2h)
        return f[:, channel_groups(f.shape[1], self.cfg.channels) <= c]

    def masked_stack(self):
        return self
