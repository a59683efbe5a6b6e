"""Speed and memory of every architecture: forward passes, a training step (Adam, batch 16),
and the naive and fast samplers.

    python training/benchmark.py                 # MNIST table, then the 32x32 RGB table
    python training/benchmark.py --quick         # fewer repeats
    python training/benchmark.py --json out.json
    python training/benchmark.py --gpu           # on a CUDA machine: fast == naive there, and speed

Models are the committed checkpoints (`checkpoints/{dataset}_{arch}.pt`) where they exist,
else untrained models at the paper's sizes (speed does not depend on the weights). Each
architecture runs in its own subprocess so that its peak memory (max RSS) is its own.
Naive sampling costs one full forward pass per sub-pixel, so it is timed over a prefix of the
generation order and extrapolated to the whole image (marked "~"); `--full-naive` times it
whole. Not a test: numbers depend on the machine.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import pixelnet
from pixelnet.data import DATASETS
from pixelnet.sampling import sample_stream

ROOT = Path(__file__).resolve().parents[1]

# the image shapes (pixelnet.data); CIFAR-10 is not shipped
SETS = {name: info.model_shape() for name, info in DATASETS.items() if name != "cifar10"}


def get_model(dataset: str, arch: str) -> tuple[pixelnet.Model, str]:
    """The committed checkpoint if there is one, else the paper-size untrained model."""
    path = ROOT / "checkpoints" / f"{dataset}_{arch}.pt"
    if path.exists():
        return pixelnet.load_checkpoint(path), path.name
    return pixelnet.build_model(arch, **SETS[dataset]).eval(), "untrained, paper size"


def timeit(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs, after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def sampling_time(model, n: int, method: str, steps: int | None, seed: int = 0) -> float:
    """Seconds per image to sample ``n`` images; with ``steps``, extrapolated from a prefix."""
    total = model.cfg.channels * model.cfg.height * model.cfg.width
    t = time.perf_counter()
    k = 0
    for k, _ in enumerate(sample_stream(model, n, seed=seed, method=method), 1):
        if steps is not None and k >= steps:
            break
    return (time.perf_counter() - t) / k * total / n


def measure(dataset: str, arch: str, quick: bool, full_naive: bool) -> dict:
    """All numbers for one architecture (run in a fresh process)."""
    torch.manual_seed(0)
    model, source = get_model(dataset, arch)
    cfg = model.cfg
    shape = (cfg.channels, cfg.height, cfg.width)
    reps = 3 if quick else 7
    row = dict(dataset=dataset, arch=arch, source=source, params=pixelnet.param_count(model))
    with torch.inference_mode():
        for b in (1, 64):
            x = torch.randint(0, cfg.levels, (b, *shape))
            row[f"forward_b{b}"] = timeit(lambda: model(x), reps if b == 1 else max(2, reps // 3))
    x = torch.randint(0, cfg.levels, (16, *shape))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def train_step():
        loss = pixelnet.nll(model, x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.train()
    row["train_step_b16"] = timeit(train_step, max(2, reps // 2))
    model.eval()
    naive_steps = None if full_naive else (8 if quick else 24)
    for b in (1, 16):
        runs = 1 if quick or b > 1 else 3
        row[f"fast_b{b}"] = statistics.median(sampling_time(model, b, "fast", None, s) for s in range(runs))
        row[f"naive_b{b}"] = sampling_time(model, b, "naive", naive_steps)
    row["naive_extrapolated"] = naive_steps is not None
    row["naive_over_fast"] = row["naive_b1"] / row["fast_b1"]
    row["fast_over_forward"] = row["fast_b1"] / row["forward_b1"]
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return row


def gpu_check(dataset: str, archs: list[str]) -> list[str]:
    """On CUDA: each model's fast and naive samplers agree there (same images for the same
    seed, on a 12-step prefix for naive), and fast sampling speed on the GPU against the CPU."""
    lines = [f"| {dataset} arch | fast == naive on cuda | fast s/img b1 cuda | b16 cuda | b1 cpu |",
             "|---|---|---|---|---|"]
    for arch in archs:
        model, _ = get_model(dataset, arch)
        gpu = model.to("cuda")
        steps = 12
        naive = [ev.value for _, ev in zip(range(steps), sample_stream(gpu, 2, seed=0, method="naive"))]
        fast = [ev.value for _, ev in zip(range(steps), sample_stream(gpu, 2, seed=0, method="fast"))]
        same = all(torch.equal(a, b) for a, b in zip(naive, fast))
        t = [sampling_time(gpu, b, "fast", None) for b in (1, 16)]
        cpu = sampling_time(model.to("cpu"), 1, "fast", None)
        lines.append(f"| {arch} | {'yes' if same else 'NO'} | {t[0]:.3f} | {t[1]:.3f} | {cpu:.3f} |")
        print(lines[-1], flush=True)
    return lines


def table(rows: list[dict]) -> str:
    """A markdown table of the measured rows."""
    head = ("| arch | params | model | forward b1 | forward b64 | train step b16 | naive s/img b1 "
            "| naive s/img b16 | fast s/img b1 | fast s/img b16 | naive/fast | fast/forward | peak RSS |")
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        tilde = "~" if r["naive_extrapolated"] else ""
        lines.append(
            f"| {r['arch']} | {r['params']:,} | {r['source']} | {r['forward_b1'] * 1e3:.1f} ms "
            f"| {r['forward_b64'] * 1e3:.0f} ms | {r['train_step_b16']:.2f} s | {tilde}{r['naive_b1']:.2f} | {tilde}{r['naive_b16']:.2f} "
            f"| {r['fast_b1']:.3f} | {r['fast_b16']:.3f} | {r['naive_over_fast']:.0f}x "
            f"| {r['fast_over_forward']:.1f} | {r['peak_rss_mb']:.0f} MB |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["mnist", "emoji"], choices=list(SETS),
                   help="Fashion-MNIST has MNIST's shape at 256 levels (default: the README's "
                        "two tables)")
    p.add_argument("--archs", nargs="+", default=None, help="subset of architectures")
    p.add_argument("--quick", action="store_true", help="fewer repeats and naive steps")
    p.add_argument("--full-naive", action="store_true", help="time naive sampling of whole images")
    p.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    p.add_argument("--gpu", action="store_true", help="check and time sampling on CUDA")
    p.add_argument("--one", nargs=2, metavar=("DATASET", "ARCH"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one:                                   # child process: one architecture, JSON out
        print(json.dumps(measure(*a.one, a.quick, a.full_naive)))
        return
    rows = []
    for ds in a.datasets:
        archs = [x for x in pixelnet.ARCHITECTURES if a.archs is None or x in a.archs]
        if a.gpu:
            if not torch.cuda.is_available():
                raise SystemExit("--gpu: no CUDA device here")
            print("\n".join(gpu_check(ds, archs)))
            continue
        print(f"\n{ds}: {SETS[ds]}  (torch threads: {torch.get_num_threads()})", flush=True)
        ds_rows = []
        for arch in archs:
            cmd = [sys.executable, __file__, "--one", ds, arch] + ["--quick"] * a.quick \
                + ["--full-naive"] * a.full_naive
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode:
                print(f"{arch}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
                continue
            ds_rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"  {arch} done", flush=True)
        print(table(ds_rows), flush=True)
        rows += ds_rows
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
