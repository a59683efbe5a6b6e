"""Bring trained checkpoints home: copy each ``{dataset}_{arch}.pt`` of a folder (with its
``_log.csv`` and ``_curve.png``) over the published one in ``checkpoints/`` (or, for a name
found only there, ``checkpoints/experiments/``) when it is better.

    python tools/gpu_collect.py /tmp/gpu [--dry-run]
    python training/publish.py          # then: test NLL, manifest, README table, grids

Better means a lower validation NLL (the unconditional one: a class-conditional model is
validated without labels), or a class-conditional model replacing an unconditional one whose
validation NLL it matches within ``--tolerance`` (it serves both uses). Two checkpoints
validated on different images (a GPU run validates on the first 1000 to save time) are both
measured again on the whole validation split first.
"""
from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

import pixelnet
from training.evaluate import evaluate
from training.train import write_log

REPO = Path(__file__).resolve().parents[1]


def better(new: dict, old: dict | None, tolerance: float) -> tuple[bool, str]:
    """Whether checkpoint metadata ``new`` should replace ``old``, and why."""
    if old is None:
        return True, "nothing published yet"
    levels = [m.get("config", {}).get("levels") for m in (new, old)]
    if levels[0] != levels[1]:
        return False, f"{levels[0]} levels against {levels[1]}: the NLLs are not comparable"
    nv, ov = new.get("val_nll"), old.get("val_nll")
    if nv is None:
        return False, "it has no validation NLL"
    if ov is None or nv < ov:
        return True, f"val {nv:.4f} < {ov}"
    if new.get("class_names") and not old.get("class_names") and nv <= ov * (1 + tolerance):
        return True, f"class-conditional, val {nv:.4f} within {tolerance:.1%} of {ov:.4f}"
    return False, f"val {nv:.4f} is not better than {ov:.4f}"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path)
    p.add_argument("--tolerance", type=float, default=0.01)
    p.add_argument("--dry-run", action="store_true")
    a = p.parse_args(argv)
    found = sorted(a.folder.glob("*.pt"))
    if not found:
        raise SystemExit(f"no .pt files in {a.folder}")
    for path in found:
        target = REPO / "checkpoints" / path.name
        if not target.exists() and (REPO / "checkpoints" / "experiments" / path.name).exists():
            target = REPO / "checkpoints" / "experiments" / path.name
        try:
            new = pixelnet.read_checkpoint(path)
            old = pixelnet.read_checkpoint(target) if target.exists() else None
        except ValueError as e:
            print(f"{path.name}: skipped ({e})")
            continue
        whole = None        # the new checkpoint's NLL on the whole split, when measured here
        if old is not None and new.get("val_split") != old.get("val_split"):
            # NLLs of different images do not compare: both again on the whole split
            print(f"{path.name}: validated on other images than the published one; "
                  "measuring both on the whole validation split", flush=True)
            whole = evaluate(path, "val")
            new["val_nll"] = whole["nats"]
            old["val_nll"] = evaluate(target, "val")["nats"]
        keep, why = better(new, old, a.tolerance)
        print(f"{path.name}: {'replace' if keep else 'keep the published one'} ({why})")
        if keep and not a.dry_run:
            shutil.copyfile(path, target)
            target.chmod(0o644)
            if whole is not None:
                store_validation(target, whole)
            for extra in ("_log.csv", "_curve.png"):
                src = path.with_name(path.stem + extra)
                if src.exists():
                    shutil.copyfile(src, target.with_name(src.name))
            log = target.with_name(target.stem + "_log.csv")
            if log.exists() and not path.with_name(path.stem + "_curve.png").exists():
                redraw_curve(log, new["dataset"])


def store_validation(path: Path, r: dict) -> None:
    """Store in the checkpoint at ``path`` its validation NLL on the whole split (``r``, from
    ``evaluate``), in place of the one its run measured on fewer images."""
    model = pixelnet.load_checkpoint(path)
    meta = dict(model.metadata, val_nll=r["nats"], val_bits_per_dim=r["bits_per_dim"],
                val_split=r["split_description"])
    if r["nats_given_class"] is not None:
        meta["val_nll_given_class"] = r["nats_given_class"]
    pixelnet.save_checkpoint(model, path, **meta)


def redraw_curve(log: Path, dataset: str) -> None:
    """Draw the learning curve beside a log CSV that came without one (a GPU run brings
    back its logs only), so that the published curve is that of the published log."""
    with open(log, newline="") as f:
        rows = [{k: v if k == "split" else float(v) for k, v in r.items()}
                for r in csv.DictReader(f)]
    write_log(rows, log, log.with_name(log.name.replace("_log.csv", "_curve.png")), dataset)


if __name__ == "__main__":
    main()
