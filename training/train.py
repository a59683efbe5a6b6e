"""Train a PixelNet model on one dataset.

    python training/train.py --arch diagonal_bilstm --dataset mnist [--epochs N] [...]
    torchrun --nproc_per_node 8 training/train.py ...      # DistributedDataParallel

Outputs (only rank 0 writes):
- ``--out`` (default ``checkpoints/{dataset}_{arch}.pt``): the model with the best validation
  NLL so far, via ``pixelnet.save_checkpoint`` with metadata (dataset, epochs, step,
  train_seconds, hardware, val_nll, ...);
- ``{out stem}_log.csv`` and ``{out stem}_curve.png`` beside it: the learning curve;
- ``runs/{out stem}/last.pt``: the resumable state (model, optimizer, step, log, best val),
  written atomically every ``--save-every`` seconds and at every validation. ``--resume``
  continues from it (or starts afresh when there is none), so one command can be re-run after
  any crash or ``kill -9``; at most the work since the last save is lost. ``runs/`` is local
  (never committed): to go on training a published model elsewhere, ``--init-from
  checkpoints/{name}.pt`` starts from its weights (and the average's) with a fresh optimizer.

Determinism: the weights depend only on the config, the seed and the step count. All
randomness after initialization comes from generators seeded by (seed, epoch): the data order
(``DistributedSampler``) and MNIST's per-epoch binarization. So the resume state needs no RNG
state, a resumed run repeats a straight one exactly (on the same hardware), and a run on k
processes follows the single-process run with the same global batch.
"""
from __future__ import annotations

import argparse
import copy
import csv
import dataclasses
import gc
import os
import platform
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

import pixelnet
from pixelnet.checkpoint import atomic_save
from pixelnet.data import (DATASETS, SOURCES, binarize, class_names, data_source,
                           describe_split, load_dataset, load_eval_set, load_labels,
                           load_twemoji, mirrorable, quantize)
from training.evaluate import dataset_nll

REPO = Path(__file__).resolve().parents[1]

SHAPE_FIELDS = ("channels", "levels", "height", "width")     # set by the dataset


@dataclass
class TrainConfig:
    """Everything that determines the trained weights. Stored in the resume state:
    ``--resume`` continues with the stored config, not the command line's.

    Optimizer: the paper uses RMSProp with batch 16 and gives no learning rate. We default
    to Adam (RMSProp plus momentum and bias correction, the choice of the PixelCNN
    successors, e.g. PixelCNN++) at lr 1e-3, which trains every architecture here without
    tuning; ``--optimizer rmsprop`` gives the paper's. The loss is the NLL per sub-pixel (so
    gradient sizes do not depend on the image size), its gradient norm is clipped at 1 (the
    LSTMs occasionally produce large gradients), and the learning rate decays smoothly by
    ``lr_decay`` per epoch. Validation and the published checkpoint use an exponential moving
    average of the weights (Polyak averaging, as in PixelCNN++): at batch 16 the raw Adam
    iterate is noisy (MNIST PixelCNN: val 86.80 -> 86.38 nats in the first two epochs with
    it). The model's own config dataclass (e.g. ``DiagonalBiLSTMConfig``) holds the paper's
    layer sizes; ``hparams`` overrides them.
    """
    arch: str = field(default="diagonal_bilstm", metadata={
        "help": "architecture: " + ", ".join(pixelnet.ARCHITECTURES)})
    dataset: str = field(default="mnist", metadata={"help": "dataset: " + ", ".join(DATASETS)})
    batch_size: int = field(default=16, metadata={
        "help": "global batch, split evenly over the DDP processes (paper: 16)"})
    optimizer: str = field(default="adam", metadata={"help": "adam or rmsprop"})
    lr: float = field(default=1e-3, metadata={"help": "learning rate"})
    lr_decay: float = field(default=0.95, metadata={"help": "learning-rate factor per epoch"})
    warmup: int = field(default=0, metadata={
        "help": "raise the learning rate linearly over the first N steps (a fresh Adam's "
                "first steps jolt a trained model: use it with --init-from)"})
    clip: float = field(default=1.0, metadata={"help": "gradient-norm clipping (0: none)"})
    ema: float = field(default=0.999, metadata={
        "help": "Polyak averaging: validate and publish an exponential moving average of the "
                "weights with this decay (0: the raw weights)"})
    seed: int = field(default=0, metadata={"help": "seed of the init, data order, binarization"})
    max_train_images: int = field(default=0, metadata={
        "help": "train on the first N training images only (0: all)"})
    data_source: str = field(default="auto", metadata={"help": "/".join(SOURCES)})
    label_drop: float = field(default=0.2, metadata={
        "help": "class-conditional models (--classes K): the fraction of training labels "
                "replaced by 'no class', so that one checkpoint serves conditional and "
                "unconditional sampling"})
    init_from: str = field(default="", metadata={
        "help": "start from this published checkpoint's weights (and its hyperparameters; "
                "the optimizer starts afresh), e.g. checkpoints/mnist_pixelcnn.pt; with --arch "
                "multiscale, a model of its base architecture starts both its stacks"})
    balance: bool = field(default=False, metadata={
        "help": "class-conditional models: draw each epoch's images with every class equally "
                "likely (with replacement) instead of each image once, so that small classes "
                "(e.g. emoji Smileys, 3%%) are seen as often as large ones (see --balance-power)"})
    balance_power: float = field(default=1.0, metadata={
        "help": "with --balance: draw each image with probability proportional to its "
                "class's count to the power -P, so class k is drawn in proportion to "
                "count_k^(1-P): 1 draws every class equally often, 0.5 in proportion to the "
                "square root of its size (a large class seen more than at 1, less than unbalanced)"})
    levels: int = field(default=0, metadata={
        "help": "levels per channel the model draws (0: the dataset's). Fewer than an 8-bit "
                "dataset's 256 quantize its images into equal bins: our choice for colour "
                "on small compute, not the paper's (e.g. --levels 8: 3 bits per channel)"})
    twemoji: bool = field(default=False, metadata={
        "help": "emoji: train on the training split's emoji twice, in Noto's and in Twitter's "
                "rendering (data/emoji32_twitter.npz, tools/emoji_twitter.py); validation and "
                "test stay Noto's"})
    flip: bool = field(default=False, metadata={
        "help": "mirror each training image left to right with probability 1/2, a fresh draw "
                "every step; not the classes that would no longer be of their kind (digits, "
                "emoji flags and symbols: pixelnet.data.NOT_MIRRORABLE)"})
    shift: int = field(default=0, metadata={
        "help": "move each training image by a random whole number of pixels, up to this many "
                "each way (a fresh draw every step), repeating its border into the uncovered "
                "edge: more images of the same kinds for a small dataset such as emoji"})
    small_only: bool = field(default=False, metadata={
        "help": "Multi-Scale with --init-from a Multi-Scale checkpoint: train only its small "
                "stack, on the training images' subsamples (a quarter of the pixels at scale "
                "2); the conditional stack and upsampler keep their weights and are not run "
                "(the stacks share no weights, so this is the model's loss less a constant). "
                "Validation and the checkpoint are the whole model's; the logged training "
                "loss is the subsample's"})
    fresh_small: bool = field(default=False, metadata={
        "help": "with --small-only: start the small stack from the seed's random weights "
                "instead of the checkpoint's (the conditional stack is still the checkpoint's), "
                "e.g. to train it with --dropout from the start"})
    hparams: dict = field(default_factory=dict)   # model hyperparameters set on the CLI

    def validate(self) -> None:
        if self.arch not in pixelnet.ARCHITECTURES:
            raise ValueError(f"unknown --arch {self.arch!r}; choose one of "
                             f"{', '.join(pixelnet.ARCHITECTURES)}")
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown --dataset {self.dataset!r}; choose one of "
                             f"{', '.join(DATASETS)}")
        if self.optimizer not in ("adam", "rmsprop"):
            raise ValueError(f"--optimizer must be adam or rmsprop, got {self.optimizer!r}")
        if (self.batch_size < 1 or self.lr <= 0 or self.max_train_images < 0 or self.clip < 0
                or self.warmup < 0):
            raise ValueError("need --batch-size >= 1, --lr > 0, --clip >= 0, "
                             "--max-train-images >= 0, --warmup >= 0")
        if not 0 <= self.ema < 1:
            raise ValueError(f"--ema must be in [0, 1) (0: off), got {self.ema}")
        if self.balance and not self.classes and not self.init_from:   # (it may give classes)
            raise ValueError("--balance draws classes equally often: it needs --classes")
        if not 0 < self.balance_power <= 1:
            raise ValueError(f"--balance-power must be in (0, 1] (1: every class equally "
                             f"often), got {self.balance_power}")
        if self.balance_power != 1 and not self.balance:
            raise ValueError("--balance-power sets how --balance draws the classes: add --balance")
        if self.twemoji and self.dataset != "emoji":
            raise ValueError(f"--twemoji adds emoji images: it needs --dataset emoji, "
                             f"not {self.dataset}")
        if self.flip and not mirrorable(self.dataset).any():
            raise ValueError(f"--flip: no class of {self.dataset} stays of its kind mirrored "
                             f"(pixelnet.data.NOT_MIRRORABLE); leave --flip out")
        if self.small_only and (self.arch != "multiscale" or not self.init_from):
            raise ValueError("--small-only trains a Multi-Scale model's small stack alone: it "
                             "needs --arch multiscale and --init-from a Multi-Scale checkpoint "
                             "(whose conditional stack it keeps)")
        if self.fresh_small and not self.small_only:
            raise ValueError("--fresh-small restarts the small stack that --small-only trains: "
                             "add --small-only")
        if not 0 <= self.label_drop <= 1:
            raise ValueError(f"--label-drop must be in [0, 1], got {self.label_drop}")
        info = DATASETS[self.dataset]
        size = min(info.height, info.width)
        if not 0 <= self.shift < size // 2:
            raise ValueError(f"--shift {self.shift}: {self.dataset} images may move 0 to "
                             f"{size // 2 - 1} pixels each way")
        if self.levels and (info.binarized or not 2 <= self.levels <= info.levels):
            raise ValueError(f"--levels {self.levels}: {self.dataset} allows 2 to {info.levels}"
                             if not info.binarized else
                             f"--levels: {self.dataset} is binarized; leave --levels at 0")
        classes = self.hparams.get("classes", 0)
        if classes and classes != len(class_names(self.dataset)):
            raise ValueError(f"--classes {classes}: {self.dataset} has "
                             f"{len(class_names(self.dataset))} classes "
                             f"({', '.join(class_names(self.dataset))})")

    def model_shape(self) -> dict:
        """The ``build_model`` shape keywords: the dataset's, with ``levels`` if set."""
        shape = DATASETS[self.dataset].model_shape()
        return {**shape, "levels": self.levels or shape["levels"]}

    @property
    def classes(self) -> int:
        """Number of classes of a class-conditional model (0: unconditional)."""
        return self.hparams.get("classes", 0)


# ---------------------------------------------------------------------------------------------
# distributed helpers (a world of 1 when not launched by torchrun)

def setup_distributed(device: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device). Under torchrun: one process per GPU (NCCL), or gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if world == 1:
        return 0, 1, dev
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(dev)
    dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return dist.get_rank(), world, dev


def all_sum(*values: float, device: torch.device) -> list[float]:
    """Sum numbers over the processes (identity without DDP)."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if dist.is_initialized():
        dist.all_reduce(t)
    return t.tolist()


def hardware(device: torch.device, world: int) -> str:
    """A short description of what the run uses, e.g. ``"2 x NVIDIA H100"``."""
    if device.type == "cuda":
        return f"{world} x {torch.cuda.get_device_name(device)}"
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{world} x CPU process, {torch.get_num_threads()} threads ({cpu})"


# ---------------------------------------------------------------------------------------------
# logging

def display(nats: float, dataset: str, dims: int | None = None) -> str:
    """NLL in the unit the paper reports: nats/image for binarized MNIST, else bits/dim (of
    images of ``dims`` sub-pixels; default: the dataset's)."""
    info = DATASETS[dataset]
    if info.binarized:
        return f"{nats:.2f} nats"
    return f"{pixelnet.bits_per_dim(nats, dims or info.dims):.4f} bpd"


def write_log(log: list[dict], csv_path: Path, png_path: Path, dataset: str) -> None:
    """The log as CSV (step, epoch, seconds, split, nats, bits_per_dim) and a learning-curve
    PNG, each written to a temp file and renamed into place."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = csv_path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, ["step", "epoch", "seconds", "split", "nats", "bits_per_dim"])
        w.writeheader()
        w.writerows(log)
    os.replace(tmp, csv_path)
    binarized = DATASETS[dataset].binarized
    key, unit = ("nats", "nats / image") if binarized else ("bits_per_dim", "bits / dim")
    fig, ax = plt.subplots(figsize=(6, 4))
    for split, style in (("train", "-"), ("train_subsample", "-"), ("val", "o-"),
                         ("val_given_class", "s--")):
        rows = [r for r in log if r["split"] == split]
        if rows:
            ax.plot([r["epoch"] for r in rows], [r[key] for r in rows], style, label=split,
                    ms=3)
    ax.set(xlabel="epoch", ylabel=f"NLL ({unit})", yscale="log",
           title=png_path.stem.removesuffix("_curve"))
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    tmp = png_path.with_suffix(".png.tmp")
    fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    os.replace(tmp, png_path)


# ---------------------------------------------------------------------------------------------
# training

_stop_requested = False
STOP_SYNC_EVERY = 20            # DDP: steps between the processes' agreement on stopping
STATE_KEYS = ("model", "optimizer", "step", "train_seconds", "best_val", "log", "hardware",
              "train_config")


def _request_stop(signum, frame) -> None:
    global _stop_requested
    _stop_requested = True


@dataclass
class Data:
    """The images a run trains and validates on, and where they come from."""
    train: torch.Tensor         # (N, C, H, W) uint8 (8x less memory; long per batch)
    val: torch.Tensor           # (M, C, H, W) long, as the models see them (MNIST binarized)
    splits: dict[str, str]      # "train"/"val" -> describe_split(...)
    train_y: torch.Tensor | None = None    # (N,) class labels, for a class-conditional model
    val_y: torch.Tensor | None = None      # (M,)
    mirrorable: torch.Tensor | None = None  # (N,) bool: may be mirrored (--flip)


@dataclass
class Progress:
    """The run's counters and log: with the weights, what a resume state restores."""
    step: int = 0
    seconds_before: float = 0.0     # training seconds of earlier invocations of this run
    best_val: float = float("inf")
    log: list[dict] = field(default_factory=list)
    hardware: list[str] = field(default_factory=list)


def trained_part(cfg: TrainConfig, model: torch.nn.Module) -> torch.nn.Module:
    """The module whose weights the run trains: the small stack (``--small-only``) or all."""
    return model.small if cfg.small_only else model


def make_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(model.parameters(), lr=cfg.lr)
    return torch.optim.Adam(model.parameters(), lr=cfg.lr)


def read_resume_state(path: Path) -> dict:
    """The resume state at ``path``; ``ValueError`` naming the file if it cannot be used."""
    advice = (f"delete {path} to start afresh, or start from a published model with "
              "--init-from checkpoints/<file>.pt")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated, corrupt or not a torch file
        raise ValueError(f"{path} is not a readable resume state ({type(e).__name__}: "
                         f"{str(e)[:120]}); {advice}") from None
    missing = [k for k in STATE_KEYS if k not in state] if isinstance(state, dict) else STATE_KEYS
    if missing:
        raise ValueError(f"{path} is not a resume state of train.py (it lacks "
                         f"{', '.join(missing)}); {advice}")
    try:
        TrainConfig(**state["train_config"])
    except TypeError as e:
        raise ValueError(f"{path}: its train_config is malformed ({e}); {advice}") from None
    return state


def resumed_config(cfg: TrainConfig, state: dict, path: Path, verbose: bool) -> TrainConfig:
    """The run's stored config, which a resumed run continues with (not the command line's)."""
    saved = TrainConfig(**state["train_config"])
    if (saved.arch, saved.dataset) != (cfg.arch, cfg.dataset):
        raise ValueError(f"{path} is a {saved.dataset}/{saved.arch} run, not "
                         f"{cfg.dataset}/{cfg.arch}; pass a different --out or --run-dir")
    ignored = [k for k, v in asdict(cfg).items() if v != getattr(saved, k) and k != "data_source"]
    if ignored and verbose:
        print(f"resuming with the run's stored settings; ignoring --{', --'.join(ignored)}")
    return saved


def multiscale_of(config: dict, hparams: dict) -> dict:
    """The config of a Multi-Scale model whose two stacks are the single-scale model
    ``config`` (its architecture is their base, its layers and width theirs); ``scale`` and
    ``up_channels`` from ``hparams`` where given (else the Multi-Scale defaults)."""
    stack = {k: v for k, v in config.items() if k != "arch"}
    own = {k: hparams[k] for k in ("scale", "up_channels") if k in hparams}
    return dict(stack, arch="multiscale", base=config["arch"], small_layers=config["layers"],
                small_h=config["h"], **own)


def init_config(cfg: TrainConfig, source: torch.nn.Module) -> TrainConfig:
    """``cfg`` with the hyperparameters of the ``--init-from`` checkpoint ``source`` (a
    Multi-Scale model from a single-scale one: :func:`multiscale_of`)."""
    path, meta, config = cfg.init_from, source.metadata, source.config
    if cfg.arch == "multiscale" and config["arch"] in pixelnet.multiscale.bases():
        if cfg.small_only:
            raise ValueError(f"--small-only keeps the conditional stack of a Multi-Scale "
                             f"model, but --init-from {path} is a {config['arch']} model")
        config = multiscale_of(config, cfg.hparams)
    if (config["arch"], meta.get("dataset")) != (cfg.arch, cfg.dataset):
        raise ValueError(f"--init-from {path} is a {meta.get('dataset')}/{config['arch']} "
                         f"model, not {cfg.dataset}/{cfg.arch}")
    shape = DATASETS[cfg.dataset].model_shape()
    if any(config[k] != v for k, v in shape.items() if k != "levels"):
        raise ValueError(f"--init-from {path}: its images are not {cfg.dataset}'s {shape}")
    if not cfg.levels and config["levels"] != shape["levels"]:
        cfg = dataclasses.replace(cfg, levels=config["levels"])    # keep the source's levels
    hparams = {k: v for k, v in config.items() if k != "arch" and k not in SHAPE_FIELDS}
    # adding classes is allowed (their vectors start at zero), and dropout is no weight
    free = [k for k in cfg.hparams if k == "dropout" or (k == "classes" and not hparams.get(k))]
    clash = [k for k, v in cfg.hparams.items() if hparams.get(k) != v and k not in free]
    hparams.update({k: cfg.hparams[k] for k in free})
    if clash:
        raise ValueError(f"--init-from {path} fixes the model's hyperparameters: drop "
                         + ", ".join(f"--{k.replace('_', '-')} (it has {hparams.get(k)!r})"
                                     for k in clash))
    return dataclasses.replace(cfg, hparams=hparams)


def load_data(cfg: TrainConfig, run: argparse.Namespace) -> Data:
    """The training images (the first ``max_train_images``) and the validation images."""
    splits = {s: describe_split(cfg.dataset, s, run.data_root, cfg.data_source)
              for s in ("train", "val")}
    x_train = load_dataset(cfg.dataset, "train", run.data_root, cfg.data_source)
    if cfg.twemoji:                     # the same emoji again, drawn by Twitter
        x_twemoji, y_twemoji = load_twemoji("train", run.data_root)
        x_train = torch.cat([x_train, x_twemoji])
        splits["train"] += f", and the same {len(x_twemoji)} emoji as Twemoji"
    x_val = load_eval_set(cfg.dataset, "val", run.data_root, cfg.data_source,
                          cfg.levels or None)
    for s, x, limit in (("train", x_train, cfg.max_train_images), ("val", x_val, run.max_val_images)):
        if limit and limit < len(x):
            splits[s] += f" (first {limit})"
    if cfg.levels and cfg.levels != DATASETS[cfg.dataset].levels:
        x_train = quantize(x_train, cfg.levels)
        for s in splits:
            splits[s] += f", quantized to {cfg.levels} levels"
    data = Data(x_train[:cfg.max_train_images or None].byte(),
                x_val[:run.max_val_images or None], splits)
    if cfg.shift:
        data.splits["train"] += f", shifted at random by up to {cfg.shift} pixels each way"
    if cfg.classes or cfg.flip:
        y_train = load_labels(cfg.dataset, "train", run.data_root, cfg.data_source)
        if cfg.twemoji:
            y_train = torch.cat([y_train, y_twemoji])
        y_train = y_train[:cfg.max_train_images or None]
        if cfg.flip:
            data.mirrorable = mirrorable(cfg.dataset)[y_train]
            n = int(data.mirrorable.sum())
            data.splits["train"] += f", mirrored at random ({n} of {len(y_train)} images)"
    if cfg.classes:
        data.train_y = y_train
        data.val_y = load_labels(cfg.dataset, "val", run.data_root,
                                 cfg.data_source)[:run.max_val_images or None]
    return data


def mirror(x: torch.Tensor, allowed: torch.Tensor, seed: int, step: int) -> torch.Tensor:
    """The batch ``x`` ``(B, C, H, W)`` with each image that ``allowed`` ``(B,)`` mirrored
    left to right with probability 1/2 (a fixed draw per step, so a resumed run mirrors the
    same images)."""
    g = torch.Generator().manual_seed(seed * 2_000_029 + step)
    flip = (torch.rand(len(x), generator=g) < 0.5) & allowed
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def shift(x: torch.Tensor, n: int, seed: int, step: int) -> torch.Tensor:
    """The batch ``x`` ``(B, C, H, W)`` with each image moved by its own random ``(dy, dx)``,
    each in ``[-n, n]`` (a fixed draw per step, so a resumed run moves the same images), the
    uncovered rows and columns repeating the image's border (emoji: their white background)."""
    g = torch.Generator().manual_seed(seed * 3_000_017 + step)
    d = torch.randint(-n, n + 1, (len(x), 2), generator=g)                   # (B, 2)
    B, C, H, W = x.shape
    rows = (torch.arange(H)[None] - d[:, :1]).clamp(0, H - 1)                # (B, H)
    cols = (torch.arange(W)[None] - d[:, 1:]).clamp(0, W - 1)                # (B, W)
    return x[torch.arange(B)[:, None, None, None], torch.arange(C)[None, :, None, None],
             rows[:, None, :, None], cols[:, None, None, :]]


def drop_labels(y: torch.Tensor, p: float, seed: int, step: int) -> torch.Tensor:
    """``y`` with a fraction ``p`` replaced by ``pixelnet.NO_CLASS`` (a fixed draw per step,
    so a resumed run drops the same labels)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    return torch.where(torch.rand(len(y), generator=g) < p, pixelnet.NO_CLASS, y)


def build(cfg: TrainConfig, device: torch.device, state: dict | None,
          source: torch.nn.Module | None) -> tuple[torch.nn.Module, torch.nn.Module | None,
                                                   torch.optim.Optimizer]:
    """(model, EMA copy or None, optimizer): initialized from the seed, then from the resume
    ``state`` (everything) or the ``--init-from`` model ``source`` (weights; optimizer fresh)."""
    torch.manual_seed(cfg.seed)
    model = pixelnet.build_model(cfg.arch, **cfg.model_shape(), **cfg.hparams).to(device)
    seeded = copy.deepcopy(model.small.state_dict()) if cfg.fresh_small else None
    if source is not None:
        # a single-scale source is both stacks of a Multi-Scale model (its convolutions do not
        # depend on the image's size); the conditional stack's maps of the upsampled subsample
        # start at zero, so that it starts as the source
        grown = model.arch == "multiscale" and source.arch != "multiscale"
        for part in (model.small, model.cond) if grown else (model,):
            # an unconditional source lacks only the new class vectors (which start at zero)
            missing, unexpected = part.load_state_dict(
                regroup_levels(source.state_dict(), part.state_dict(), model.cfg.channels),
                strict=False)
            fresh = (("label.weight", "cond.weight", "cond.bias") if grown and part is model.cond
                     else ("label.weight",))
            if unexpected or any(not k.endswith(fresh) for k in missing):
                raise ValueError(f"--init-from {cfg.init_from}: its weights do not fit this "
                                 f"model (missing {missing[:3]}, unexpected {unexpected[:3]})")
        if grown:
            with torch.no_grad():
                for layer in model.cond.layers:
                    layer.cond.weight.zero_()
                    layer.cond.bias.zero_()
        if seeded is not None:
            model.small.load_state_dict(seeded)
    opt = make_optimizer(cfg, trained_part(cfg, model))
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
    # the averaged weights: what is validated and published (a state without one, from
    # before averaging existed, starts the average at its current weights)
    ema = copy.deepcopy(model).requires_grad_(False) if cfg.ema else None
    if ema is not None and state is not None and state.get("ema") is not None:
        ema.load_state_dict(state["ema"])
    return model, ema, opt


def regroup_levels(source: dict, target: dict, channels: int) -> dict:
    """``source``'s weights for a model with fewer levels (``target``'s shapes): the last
    layer's ``(C * L, ...)`` logit rows become ``(C * L', ...)`` by averaging the weights of
    the ``L / L'`` source levels in each new bin (a start near the source's binned softmax,
    not exact: a mean of logits is not their log-sum-exp); its mask is the new shape's. Every
    other weight passes unchanged (a misfit is named by ``load_state_dict``)."""
    out = dict(source)
    for k, w in source.items():
        t = target.get(k)
        if t is None or t.shape == w.shape or w.shape[1:] != t.shape[1:] or w.shape[0] % t.shape[0]:
            continue
        if k.endswith("mask"):
            out[k] = t
            continue
        # rows are ordered c * L + l: split L into (L', L / L') and average the inner bins
        out[k] = (w.reshape(channels, t.shape[0] // channels, w.shape[0] // t.shape[0],
                            *w.shape[1:]).mean(2).reshape(t.shape).to(t.dtype))
    return out


def epoch_batches(sampler: DistributedSampler, data: Data, cfg: TrainConfig, epoch: int,
                  steps: int, local_batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """This epoch's images (MNIST re-binarized) and this process's ``(steps, local_batch)``
    indices into them."""
    sampler.set_epoch(epoch)
    idx = torch.tensor(list(sampler))[:steps * local_batch]
    if cfg.balance and data.train_y is not None:
        # the same draw in every process (seeded by the epoch), which then takes its share
        counts = torch.bincount(data.train_y).float()
        g = torch.Generator().manual_seed(cfg.seed * 7_919 + epoch)
        weight = counts[data.train_y] ** -cfg.balance_power
        draw = torch.multinomial(weight, len(sampler) * sampler.num_replicas,
                                 replacement=True, generator=g)
        idx = draw[sampler.rank::sampler.num_replicas][:steps * local_batch]
    x = data.train
    if DATASETS[cfg.dataset].binarized:
        x = binarize(x, torch.Generator().manual_seed(cfg.seed * 100_003 + epoch))
    return x, idx.view(steps, local_batch)


def train_step(net: torch.nn.Module, model: torch.nn.Module, ema: torch.nn.Module | None,
               opt: torch.optim.Optimizer, x: torch.Tensor, cfg: TrainConfig, step: int,
               steps_per_epoch: int, y: torch.Tensor | None = None) -> float:
    """One optimizer step on the batch ``x`` (labels ``y`` for a class-conditional model);
    returns its loss in nats per image."""
    dims = x[0].numel()                 # sub-pixels per image (of the subsample: --small-only)
    warm = min(1.0, (step + 1) / cfg.warmup) if cfg.warmup else 1.0
    for g in opt.param_groups:          # smooth exponential decay, a function of the step
        g["lr"] = warm * cfg.lr * cfg.lr_decay ** (step / steps_per_epoch)
    loss = pixelnet.nll(net, x, y).mean() / dims       # nats per sub-pixel
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
    opt.step()
    if ema is not None:                 # decay warmed up over the first steps (as tf's EMA)
        decay = min(cfg.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), model.parameters()):
                pe.lerp_(p, 1 - decay)
    return loss.item() * dims


def validate(eval_model: torch.nn.Module, x_val: torch.Tensor, rank: int, world: int,
             device: torch.device, y_val: torch.Tensor | None = None) -> float:
    """Mean val NLL (nats/image) over all processes, each taking every world-th image;
    given the labels ``y_val`` (class-conditional), else unconditional."""
    nats = dataset_nll(eval_model, x_val[rank::world], device=device,
                       y=None if y_val is None else y_val[rank::world])
    total_nats, count = all_sum(nats.sum().item(), len(nats), device=device)
    return total_nats / count


def should_stop(step: int, started: float, time_budget: float, world: int,
                device: torch.device) -> bool:
    """Whether a signal or the time budget ends the run after ``step``. Under DDP the
    processes agree (one all_reduce) every :data:`STOP_SYNC_EVERY` steps only, the same steps
    on every process, so a stop comes up to that many steps late."""
    local = _stop_requested or bool(time_budget and time.monotonic() - started > time_budget)
    if world == 1:
        return local
    return step % STOP_SYNC_EVERY == 0 and all_sum(float(local), device=device)[0] > 0


def release_distributed() -> None:
    """Tear the process group down, all processes together (rank 0 may still be saving).
    The caller drops its DDP wrapper first: DDP's reducer holds the group, and a rank can
    abort at exit with "terminate called without an active exception" (seen once in CI)."""
    if dist.is_initialized():
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


def prepare(cfg: TrainConfig, run: argparse.Namespace, rank: int, world: int):
    """(config, checkpoint path, resume-state path, resume state or None, ``--init-from``
    model or None): the config resolved from the resume state or the ``--init-from``
    checkpoint, and its data source fixed (``auto`` resolved once, so that a resumed run reads
    the same files)."""
    out = Path(run.out or REPO / "checkpoints" / f"{cfg.dataset}_{cfg.arch}.pt")
    state_path = Path(run.run_dir or REPO / "runs" / out.stem) / "last.pt"
    state = source = None
    if run.resume and state_path.is_file():
        state = read_resume_state(state_path)
        cfg = resumed_config(cfg, state, state_path, verbose=rank == 0)
    elif cfg.init_from:
        source = pixelnet.load_checkpoint(cfg.init_from)
        cfg = init_config(cfg, source)
    cfg.validate()
    if cfg.batch_size % world:
        raise ValueError(f"--batch-size {cfg.batch_size} must be divisible by the number of "
                         f"processes ({world})")
    cfg = dataclasses.replace(cfg, data_source=data_source(cfg.dataset, run.data_root,
                                                           cfg.data_source))
    return cfg, out, state_path, state, source


class Trainer:
    """One run: its model, optimizer, data and progress; the training loop and what it does
    between steps (log, validate, publish, save the resume state) as methods."""

    def __init__(self, cfg: TrainConfig, run: argparse.Namespace):
        self.rank, self.world, self.device = setup_distributed(run.device)
        self.started = time.monotonic()
        self.run, self.main = run, self.rank == 0
        self.cfg, self.out, self.state_path, state, source = prepare(cfg, run, self.rank, self.world)
        self.data = load_data(self.cfg, run)
        self.model, self.ema, self.opt = build(self.cfg, self.device, state, source)
        self.eval_model = self.ema if self.ema is not None else self.model
        self.progress = Progress()
        if state is not None:
            self.progress = Progress(state["step"], state["train_seconds"], state["best_val"],
                                     state["log"], state["hardware"])
        elif source is not None and Path(self.cfg.init_from).resolve() == self.out.resolve():
            # continuing a published model in place: replace it only by a better one
            key = "val_nll_given_class" if self.cfg.classes else "val_nll"
            self.progress.best_val = source.metadata.get(key) or float("inf")
        # epochs of the model this run continues (--init-from), so that its checkpoint can
        # say how long the model has trained in all, not only in this run
        before = {} if source is None else source.metadata
        self.epochs_before = (state.get("epochs_before", 0.0) if state is not None else
                              before.get("epochs_total", before.get("epochs", 0.0)))
        self.progress.hardware = list(dict.fromkeys(
            [*self.progress.hardware, hardware(self.device, self.world)]))
        trained = trained_part(self.cfg, self.model)
        self.net = DistributedDataParallel(trained) if self.world > 1 else trained
        if run.compile:     # shares model's parameters: saving and EMA keep using `model`
            self.net = torch.compile(self.net)
        self.local_batch = self.cfg.batch_size // self.world
        self.sampler = DistributedSampler(range(len(self.data.train)), self.world, self.rank,
                                          shuffle=True, seed=self.cfg.seed, drop_last=True)
        self.steps_per_epoch = len(self.sampler) // self.local_batch
        if self.steps_per_epoch == 0:
            raise ValueError(f"{len(self.data.train)} training images give no full batch of "
                             f"{self.cfg.batch_size}; use more images or a smaller --batch-size")
        self.total = min(run.epochs * self.steps_per_epoch, run.max_steps or float("inf"))
        self.loop_started = time.monotonic()
        if self.main:
            print(f"{self.cfg.arch} on {self.cfg.dataset}: "
                  f"{pixelnet.param_count(self.model):,} parameters, {len(self.data.train)} "
                  f"training images ({self.steps_per_epoch} steps/epoch), {len(self.data.val)} "
                  f"val images, {self.world} process(es) on {self.device}"
                  + (f"; resumed at step {self.progress.step}" if state else "")
                  + (f"; weights from {self.cfg.init_from}" if source is not None else ""),
                  flush=True)

    def seconds(self) -> float:
        """Wall time of the training loops of this run, resumes included."""
        return self.progress.seconds_before + time.monotonic() - self.loop_started

    def log(self, split: str, nats: float, dims: int | None = None) -> None:
        p = self.progress
        p.log.append(dict(step=p.step, epoch=round(p.step / self.steps_per_epoch, 4),
                          seconds=round(self.seconds(), 1), split=split, nats=nats,
                          bits_per_dim=pixelnet.bits_per_dim(
                              nats, dims or DATASETS[self.cfg.dataset].dims)))

    def save_state(self) -> None:
        """The resume state (atomically), and the log's CSV and curve beside the checkpoint."""
        p, out = self.progress, self.out
        atomic_save(dict(model=self.model.state_dict(), optimizer=self.opt.state_dict(),
                         step=p.step, ema=self.ema.state_dict() if self.ema is not None else None,
                         train_seconds=self.seconds(), best_val=p.best_val, log=p.log,
                         hardware=p.hardware, train_config=asdict(self.cfg),
                         epochs_before=self.epochs_before), self.state_path)
        write_log(p.log, out.with_name(out.stem + "_log.csv"),
                  out.with_name(out.stem + "_curve.png"), self.cfg.dataset)
        self.last_save = time.monotonic()

    def publish(self, val: float, given: float | None = None) -> None:
        """Save the validated model as the run's checkpoint, with its metadata."""
        cfg, p = self.cfg, self.progress
        epochs = round(p.step / self.steps_per_epoch, 3)
        extra = dict(init_from=cfg.init_from) if cfg.init_from else {}
        if self.epochs_before:
            extra.update(epochs_total=round(self.epochs_before + epochs, 3))
        if cfg.classes:
            extra.update(class_names=class_names(cfg.dataset), label_drop=cfg.label_drop,
                         val_nll_given_class=given)
        pixelnet.save_checkpoint(
            self.eval_model, self.out, dataset=cfg.dataset, data_source=cfg.data_source,
            train_images=len(self.data.train), train_split=self.data.splits["train"],
            val_split=self.data.splits["val"], epochs=epochs,
            step=p.step, train_seconds=round(self.seconds(), 1), hardware="; ".join(p.hardware),
            val_nll=val, val_bits_per_dim=pixelnet.bits_per_dim(val, DATASETS[cfg.dataset].dims),
            train_config=asdict(cfg), **extra)

    def validate_and_save(self, bar: tqdm) -> None:
        """Validate (all processes), publish an improvement and save the resume state."""
        # the NLL selects the checkpoint: for a class-conditional model the NLL given the
        # true classes (its purpose; the unconditional one is logged and published beside it)
        val = validate(self.eval_model, self.data.val, self.rank, self.world, self.device)
        self.log("val", val)
        given = None
        if self.data.val_y is not None:
            given = validate(self.eval_model, self.data.val, self.rank, self.world, self.device,
                             self.data.val_y)
            self.log("val_given_class", given)
        score = val if given is None else given
        improved = score < self.progress.best_val
        self.progress.best_val = min(self.progress.best_val, score)
        if self.main:
            if improved:
                self.publish(val, given)
            note = (f"saved {self.out}" if improved
                    else f"best {display(self.progress.best_val, self.cfg.dataset)}")
            bar.write(f"step {self.progress.step} (epoch "
                      f"{self.progress.step / self.steps_per_epoch:.2f}): val "
                      f"{display(val, self.cfg.dataset)}; {note}")
            self.save_state()

    def fit(self) -> dict:
        """The training loop, to ``total`` steps or a stop; returns a summary dict."""
        cfg, run, p = self.cfg, self.run, self.progress
        batches, bar = None, None
        self.loop_started = self.last_save = time.monotonic()
        running, running_n = 0.0, 0
        self.net.train()
        while p.step < self.total:
            epoch, k = divmod(p.step, self.steps_per_epoch)
            if k == 0 or batches is None:
                images, batches = epoch_batches(self.sampler, self.data, cfg, epoch,
                                                self.steps_per_epoch, self.local_batch)
                if bar is not None:
                    bar.close()
                bar = tqdm(total=self.steps_per_epoch, initial=k, desc=f"epoch {epoch + 1}",
                           disable=not self.main, dynamic_ncols=True,
                           mininterval=0.5 if sys.stderr.isatty() else 30)
            y = None
            if self.data.train_y is not None:
                y = drop_labels(self.data.train_y[batches[k]], cfg.label_drop, cfg.seed,
                                p.step).to(self.device)
            x = images[batches[k]]
            if self.data.mirrorable is not None:
                x = mirror(x, self.data.mirrorable[batches[k]], cfg.seed, p.step)
            if cfg.shift:
                x = shift(x, cfg.shift, cfg.seed, p.step)
            if cfg.small_only:
                x = self.model.subsample(x)
            dims = x[0].numel()         # sub-pixels per image (of the subsample: --small-only)
            running += train_step(self.net, self.model, self.ema, self.opt,
                                  x.to(self.device).long(), cfg, p.step,
                                  self.steps_per_epoch, y)
            running_n += 1
            p.step += 1
            bar.update()
            bar.set_postfix(loss=display(running / running_n, cfg.dataset, dims), refresh=False)

            end_of_epoch = p.step % self.steps_per_epoch == 0
            if p.step % run.log_every == 0 or end_of_epoch or p.step == self.total:
                self.log("train_subsample" if cfg.small_only else "train",
                         all_sum(running / running_n, device=self.device)[0] / self.world, dims)
                running, running_n = 0.0, 0
            stop = should_stop(p.step, self.started, run.time_budget, self.world, self.device)
            if end_of_epoch or p.step % run.val_every == 0 or p.step == self.total or stop:
                self.validate_and_save(bar)
            elif self.main and time.monotonic() - self.last_save >= run.save_every:
                self.save_state()
            if stop:
                if self.main:
                    bar.write("time budget reached" if not _stop_requested else "stop requested")
                break
        if bar is not None:
            bar.close()
        return dict(step=p.step, best_val=p.best_val, out=str(self.out),
                    state=str(self.state_path), train_seconds=self.seconds(), model=self.model,
                    ema=self.ema)

    def close(self) -> None:
        """Drop the DDP wrapper, then leave the process group (if any)."""
        self.net = None
        release_distributed()


def train(cfg: TrainConfig, run: argparse.Namespace) -> dict:
    """Train (or resume) per ``cfg``; ``run`` holds the run control (epochs, max_steps,
    time_budget, out, run_dir, resume, save_every, val_every, log_every, max_val_images,
    device, data_root). Returns a summary dict."""
    trainer = Trainer(cfg, run)
    summary = trainer.fit()
    trainer.close()         # not on an exception: the other processes may be mid-collective
    return summary


# ---------------------------------------------------------------------------------------------
# command line

def _model_fields() -> dict[str, dataclasses.Field]:
    """Hyperparameter fields of every architecture's config (the shape comes from the data)."""
    fields = {}
    for cls in pixelnet.MODELS.values():
        for f in dataclasses.fields(cls.Config):
            if f.name not in SHAPE_FIELDS:
                fields.setdefault(f.name, f)
    return fields


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, argparse.Namespace]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    types = {"int": int, "float": float, "str": str, "bool": bool}
    for f in dataclasses.fields(TrainConfig):
        if f.name == "hparams":
            continue
        kind = dict(action=argparse.BooleanOptionalAction) if f.type == "bool" else \
            dict(type=types[f.type])
        p.add_argument("--" + f.name.replace("_", "-"), default=f.default,
                       help=f.metadata["help"], **kind)
    g = p.add_argument_group("model hyperparameters (default: the architecture's config "
                             "dataclass, i.e. the paper's MNIST sizes)")
    for name, f in _model_fields().items():
        kind = types[f.type]
        g.add_argument("--" + name.replace("_", "-"), dest="hp_" + name, default=None,
                       metavar=None if kind is bool else name.upper(),
                       type=None if kind is bool else kind,
                       action=argparse.BooleanOptionalAction if kind is bool else None)
    r = p.add_argument_group("run control")
    r.add_argument("--epochs", type=int, default=30, help="stop after this many epochs in all")
    r.add_argument("--max-steps", type=int, default=0, help="stop after this many steps in all (0: no limit)")
    r.add_argument("--time-budget", type=float, default=0,
                   help="seconds for this invocation; then validate, save and exit (0: none)")
    r.add_argument("--out", default=None, help="best checkpoint [checkpoints/{dataset}_{arch}.pt]")
    r.add_argument("--run-dir", default=None, help="folder of the resume state [runs/{out stem}]")
    r.add_argument("--resume", action="store_true",
                   help="continue from the run folder's last.pt if there is one")
    r.add_argument("--save-every", type=float, default=60, help="seconds between state saves")
    r.add_argument("--val-every", type=int, default=1000,
                   help="validate every N steps (and at the end of every epoch)")
    r.add_argument("--log-every", type=int, default=50, help="log the train loss every N steps")
    r.add_argument("--max-val-images", type=int, default=0, help="validate on N images (0: all)")
    r.add_argument("--data-root", default=None, help="folder with the dataset files")
    r.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    r.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    r.add_argument("--compile", action="store_true",
                   help="torch.compile the training forward pass (about 1.2x faster steps on "
                        "CPU for PixelCNN, after a compile of about a minute)")
    a = p.parse_args(argv)
    hparams = {k[3:]: v for k, v in vars(a).items() if k.startswith("hp_") and v is not None}
    cfg = TrainConfig(**{f.name: getattr(a, f.name) for f in dataclasses.fields(TrainConfig)
                         if f.name != "hparams"}, hparams=hparams)
    cfg.validate()
    for name in ("epochs", "log_every", "val_every"):
        if getattr(a, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
    return cfg, a


def main(argv: list[str] | None = None) -> dict:
    """Run the command line; SIGTERM / Ctrl-C stop the run cleanly (validate, save)."""
    global _stop_requested
    cfg, run = parse_args(argv)
    if run.threads:
        torch.set_num_threads(run.threads)
    _stop_requested = False
    old = {s: signal.signal(s, _request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return train(cfg, run)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


if __name__ == "__main__":
    try:
        main()
    except ValueError as e:
        sys.exit(f"error: {e}")
