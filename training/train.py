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
  any crash or ``kill -9``; at most the work since the last save is lost.

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
from pixelnet.data import (DATASETS, SOURCES, binarize, data_source, describe_split,
                           load_dataset, load_eval_set)
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
    clip: float = field(default=1.0, metadata={"help": "gradient-norm clipping (0: none)"})
    ema: float = field(default=0.999, metadata={
        "help": "Polyak averaging: validate and publish an exponential moving average of the "
                "weights with this decay (0: the raw weights)"})
    seed: int = field(default=0, metadata={"help": "seed of the init, data order, binarization"})
    max_train_images: int = field(default=0, metadata={
        "help": "train on the first N training images only (0: all)"})
    data_source: str = field(default="auto", metadata={"help": "/".join(SOURCES)})
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
        if self.batch_size < 1 or self.lr <= 0 or self.max_train_images < 0 or self.clip < 0:
            raise ValueError("need --batch-size >= 1, --lr > 0, --clip >= 0, "
                             "--max-train-images >= 0")
        if not 0 <= self.ema < 1:
            raise ValueError(f"--ema must be in [0, 1) (0: off), got {self.ema}")


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

def display(nats: float, dataset: str) -> str:
    """NLL in the unit the paper reports: nats/image for binarized MNIST, else bits/dim."""
    info = DATASETS[dataset]
    if info.binarized:
        return f"{nats:.2f} nats"
    return f"{pixelnet.bits_per_dim(nats, info.dims):.4f} bpd"


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
    for split, style in (("train", "-"), ("val", "o-")):
        rows = [r for r in log if r["split"] == split]
        ax.plot([r["epoch"] for r in rows], [r[key] for r in rows], style, label=split, ms=3)
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


def _request_stop(signum, frame) -> None:
    global _stop_requested
    _stop_requested = True


def make_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(model.parameters(), lr=cfg.lr)
    return torch.optim.Adam(model.parameters(), lr=cfg.lr)


def train(cfg: TrainConfig, run: argparse.Namespace) -> dict:
    """Train (or resume) per ``cfg``; ``run`` holds the run control (epochs, max_steps,
    time_budget, out, run_dir, resume, save_every, val_every, log_every, max_val_images,
    device, data_root). Returns a summary dict."""
    rank, world, device = setup_distributed(run.device)
    t_start = time.monotonic()
    out = Path(run.out or REPO / "checkpoints" / f"{cfg.dataset}_{cfg.arch}.pt")
    state_path = Path(run.run_dir or REPO / "runs" / out.stem) / "last.pt"
    state = None
    if run.resume and state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        saved = TrainConfig(**state["train_config"])
        if (saved.arch, saved.dataset) != (cfg.arch, cfg.dataset):
            raise ValueError(f"{state_path} is a {saved.dataset}/{saved.arch} run, not "
                             f"{cfg.dataset}/{cfg.arch}; pass a different --out or --run-dir")
        ignored = [k for k, v in asdict(cfg).items()
                   if v != getattr(saved, k) and k != "data_source"]
        if ignored and rank == 0:
            print(f"resuming with the run's stored settings; ignoring --{', --'.join(ignored)}")
        cfg = saved
    cfg.validate()
    if cfg.batch_size % world:
        raise ValueError(f"--batch-size {cfg.batch_size} must be divisible by the number of "
                         f"processes ({world})")
    info = DATASETS[cfg.dataset]
    # resolve "auto" once, so that a resumed run reads the same files
    cfg = dataclasses.replace(cfg, data_source=data_source(cfg.dataset, run.data_root,
                                                           cfg.data_source))
    splits = {s: describe_split(cfg.dataset, s, run.data_root, cfg.data_source)
              for s in ("train", "val")}
    x_train = load_dataset(cfg.dataset, "train", run.data_root, cfg.data_source)
    x_val = load_eval_set(cfg.dataset, "val", run.data_root, cfg.data_source)
    for s, x, limit in (("train", x_train, cfg.max_train_images), ("val", x_val, run.max_val_images)):
        if limit and limit < len(x):
            splits[s] += f" (first {limit})"
    x_train = x_train[:cfg.max_train_images or None].byte()     # 8x less memory; long per batch
    x_val = x_val[:run.max_val_images or None]

    torch.manual_seed(cfg.seed)
    model = pixelnet.build_model(cfg.arch, **info.model_shape(), **cfg.hparams).to(device)
    opt = make_optimizer(cfg, model)
    step, seconds_before, best_val, log, hw = 0, 0.0, float("inf"), [], []
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, seconds_before, best_val = state["step"], state["train_seconds"], state["best_val"]
        log, hw = state["log"], state["hardware"]
    # the averaged weights: what is validated and published (a state without one, from
    # before averaging existed, starts the average at its current weights)
    ema = copy.deepcopy(model).requires_grad_(False) if cfg.ema else None
    if ema is not None and state is not None and "ema" in state:
        ema.load_state_dict(state["ema"])
    eval_model = ema if ema is not None else model
    hw = list(dict.fromkeys([*hw, hardware(device, world)]))
    net = DistributedDataParallel(model) if world > 1 else model
    if run.compile:         # shares model's parameters: saving and EMA keep using `model`
        net = torch.compile(net)

    local_batch = cfg.batch_size // world
    sampler = DistributedSampler(range(len(x_train)), world, rank, shuffle=True,
                                 seed=cfg.seed, drop_last=True)
    steps_per_epoch = len(sampler) // local_batch
    if steps_per_epoch == 0:
        raise ValueError(f"{len(x_train)} training images give no full batch of "
                         f"{cfg.batch_size}; use more images or a smaller --batch-size")
    total = run.epochs * steps_per_epoch
    if run.max_steps:
        total = min(total, run.max_steps)
    main_proc = rank == 0
    if main_proc:
        print(f"{cfg.arch} on {cfg.dataset}: {pixelnet.param_count(model):,} parameters, "
              f"{len(x_train)} training images ({steps_per_epoch} steps/epoch), "
              f"{len(x_val)} val images, {world} process(es) on {device}"
              + (f"; resumed at step {step}" if state else ""), flush=True)

    def epoch_data(epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This epoch's images (MNIST re-binarized) and this process's batches of indices."""
        sampler.set_epoch(epoch)
        idx = torch.tensor(list(sampler))[:steps_per_epoch * local_batch]
        x = x_train
        if info.binarized:
            x = binarize(x, torch.Generator().manual_seed(cfg.seed * 100_003 + epoch))
        return x, idx.view(steps_per_epoch, local_batch)

    def validate() -> float:
        """Mean val NLL (nats/image) over all processes, each taking every world-th image."""
        nats = dataset_nll(eval_model, x_val[rank::world], device=device)
        total_nats, count = all_sum(nats.sum().item(), len(nats), device=device)
        return total_nats / count

    def train_seconds() -> float:
        """Wall time of the training loops of this run, resumes included."""
        return seconds_before + time.monotonic() - t_loop

    def save_state() -> None:
        atomic_save(dict(model=model.state_dict(), optimizer=opt.state_dict(), step=step,
                         ema=ema.state_dict() if ema is not None else None,
                         train_seconds=train_seconds(), best_val=best_val, log=log, hardware=hw,
                         train_config=asdict(cfg)), state_path)
        write_log(log, out.with_name(out.stem + "_log.csv"),
                  out.with_name(out.stem + "_curve.png"), cfg.dataset)

    data, batches, bar = None, None, None
    t_loop = last_save = time.monotonic()
    running, running_n = 0.0, 0
    net.train()
    while step < total:
        epoch, k = divmod(step, steps_per_epoch)
        if k == 0 or batches is None:
            data, batches = epoch_data(epoch)
            if bar is not None:
                bar.close()
            bar = tqdm(total=steps_per_epoch, initial=k, desc=f"epoch {epoch + 1}",
                       disable=not main_proc, dynamic_ncols=True,
                       mininterval=0.5 if sys.stderr.isatty() else 30)
        for g in opt.param_groups:      # smooth exponential decay, a function of the step
            g["lr"] = cfg.lr * cfg.lr_decay ** (step / steps_per_epoch)
        x = data[batches[k]].to(device).long()
        loss = pixelnet.nll(net, x).mean() / info.dims        # nats per sub-pixel
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        if ema is not None:             # decay warmed up over the first steps (as tf's EMA)
            decay = min(cfg.ema, (1 + step) / (10 + step))
            with torch.no_grad():
                for pe, p in zip(ema.parameters(), model.parameters()):
                    pe.lerp_(p, 1 - decay)
        step += 1
        running += loss.item() * info.dims
        running_n += 1
        bar.update()
        bar.set_postfix(loss=display(running / running_n, cfg.dataset), refresh=False)

        end_of_epoch = step % steps_per_epoch == 0
        if step % run.log_every == 0 or end_of_epoch or step == total:
            nats = all_sum(running / running_n, device=device)[0] / world
            log.append(dict(step=step, epoch=round(step / steps_per_epoch, 4),
                            seconds=round(train_seconds(), 1), split="train", nats=nats,
                            bits_per_dim=pixelnet.bits_per_dim(nats, info.dims)))
            running, running_n = 0.0, 0
        out_of_time = run.time_budget and time.monotonic() - t_start > run.time_budget
        stop = all_sum(float(_stop_requested or out_of_time), device=device)[0] > 0
        if end_of_epoch or step % run.val_every == 0 or step == total or stop:
            val = validate()
            log.append(dict(step=step, epoch=round(step / steps_per_epoch, 4),
                            seconds=round(train_seconds(), 1), split="val", nats=val,
                            bits_per_dim=pixelnet.bits_per_dim(val, info.dims)))
            improved = val < best_val
            best_val = min(best_val, val)
            if main_proc:
                if improved:
                    pixelnet.save_checkpoint(
                        eval_model, out, dataset=cfg.dataset, data_source=cfg.data_source,
                        train_images=len(x_train), train_split=splits["train"],
                        val_split=splits["val"],
                        epochs=round(step / steps_per_epoch, 3), step=step,
                        train_seconds=round(train_seconds(), 1), hardware="; ".join(hw),
                        val_nll=val, val_bits_per_dim=pixelnet.bits_per_dim(val, info.dims),
                        train_config=asdict(cfg))
                note = f"saved {out}" if improved else f"best {display(best_val, cfg.dataset)}"
                bar.write(f"step {step} (epoch {step / steps_per_epoch:.2f}): val "
                          f"{display(val, cfg.dataset)}; {note}")
                save_state()
                last_save = time.monotonic()
        elif main_proc and time.monotonic() - last_save >= run.save_every:
            save_state()
            last_save = time.monotonic()
        if stop:
            if main_proc:
                bar.write("time budget reached" if not _stop_requested else "stop requested")
            break
    if bar is not None:
        bar.close()
    if dist.is_initialized():
        # DDP's reducer holds the process group: release it first, or a rank can abort at
        # exit with "terminate called without an active exception" (seen once in CI)
        net = loss = None
        gc.collect()
        dist.barrier()          # rank 0 may still be saving: tear gloo down together
        dist.destroy_process_group()
    return dict(step=step, best_val=best_val, out=str(out), state=str(state_path),
                train_seconds=train_seconds(), model=model, ema=ema)


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
        if f.name != "hparams":
            p.add_argument("--" + f.name.replace("_", "-"), type=types[f.type], default=f.default,
                           help=f.metadata["help"])
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
