"""A figure of bottom-half completions: the paper's occlusion experiment on test images.

Rows: the test images, their kept top halves (the hidden bottom in grey), then one row of
completions per seed. Images are drawn at 8-bit (a coarse model's levels shown with
``dequantize``), upscaled with nearest neighbours. With ``--given-class`` a class-conditional
model is told each test image's class (at class strength ``--guidance``), as the app's class
control does; ``--min-p`` cuts the tail of every softmax, as the app's "Tail cut" does.
With ``--known-subsample`` a Multi-Scale model is also given each test image's subsample (the
grid its small stack draws), so that only its conditional stack draws: which of the two
stacks breaks a completion.

    python training/completions.py checkpoints/emoji_pixelcnn.pt --out docs/emoji_completions.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import save_image

import pixelnet
from pixelnet.data import DATASETS, dequantize, load_eval_set, load_labels
from pixelnet.sampling import completion_inputs

HIDDEN = 0.5        # grey of the hidden half in the second row


def pick(n: int, total: int) -> list[int]:
    """``n`` test-image indices spread evenly over ``total`` (a fixed, varied choice)."""
    if not 1 <= n <= total:
        raise ValueError(f"n must be in [1, {total}] (test images), got {n}")
    return [k * total // n for k in range(n)]


def hidden(model: pixelnet.Model, known_subsample: bool = False) -> torch.Tensor:
    """What a completion draws, BoolTensor ``(H, W)``: the bottom half, less the subsample of
    a Multi-Scale model with ``known_subsample``."""
    c = model.cfg
    if known_subsample and model.arch != "multiscale":
        raise ValueError(f"--known-subsample gives a Multi-Scale model its small stack's grid; "
                         f"this is a {model.arch} model")
    _, mask = completion_inputs("top_half", c.channels, c.height, c.width,
                                torch.zeros(c.channels, c.height, c.width, dtype=torch.long))
    if known_subsample:
        mask[:: c.scale, :: c.scale] = False
    return mask


def complete(model: pixelnet.Model, images: torch.Tensor, seeds: list[int],
             temperature: float = 1.0, y: torch.Tensor | None = None,
             guidance: float = 1.0, min_p: float = 0.0,
             known_subsample: bool = False) -> list[torch.Tensor]:
    """One batch of bottom-half completions ``(N, C, H, W)`` of ``images`` per seed; ``y``
    ``(N,)``: each image's class (None: no class); ``min_p``: the tail cut of
    ``pixelnet.sample``; ``known_subsample``: see :func:`hidden`."""
    mask = hidden(model, known_subsample)
    return [pixelnet.sample(model, len(images), known=images, mask=mask, seed=s,
                            temperature=temperature, y=y, guidance=guidance, min_p=min_p)
            for s in seeds]


def figure(model: pixelnet.Model, n: int = 8, seeds: tuple[int, ...] = (0, 1),
           temperature: float = 1.0, scale: int = 3, given_class: bool = False,
           guidance: float = 1.0, min_p: float = 0.0,
           known_subsample: bool = False) -> torch.Tensor:
    """The figure as a float image batch ``(rows * n, 3, H * scale, W * scale)`` in [0, 1];
    ``given_class``: complete each image given its class (a class-conditional model only);
    ``temperature``, ``guidance`` and ``min_p`` as in ``pixelnet.sample``;
    ``known_subsample``: see :func:`hidden` (the second row shows the grid given)."""
    mask = hidden(model, known_subsample)
    dataset = model.metadata.get("dataset")
    if dataset not in DATASETS:
        raise ValueError(f"the checkpoint names no known dataset (got {dataset!r})")
    if given_class and not model.cfg.classes:
        raise ValueError("--given-class needs a class-conditional checkpoint (this one has no "
                         "classes)")
    L = model.cfg.levels
    test = load_eval_set(dataset, "test", levels=L)
    chosen = pick(n, len(test))
    x = test[chosen]
    y = load_labels(dataset, "test")[chosen] if given_class else None
    rows = [x, *complete(model, x, list(seeds), temperature, y, guidance, min_p,
                         known_subsample)]
    shown = [dequantize(r, L).float() / 255 for r in rows]
    shown.insert(1, torch.where(mask, HIDDEN, shown[0]))      # what the model is given
    img = torch.cat(shown)
    if img.shape[1] == 1:
        img = img.expand(-1, 3, -1, -1)
    return F.interpolate(img, scale_factor=scale, mode="nearest")


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--n", type=int, default=8, help="test images (columns)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="one row per seed")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--given-class", action="store_true",
                   help="tell a class-conditional model each test image's class")
    p.add_argument("--guidance", type=float, default=1.0,
                   help="class strength with --given-class (1: the model as trained)")
    p.add_argument("--min-p", type=float, default=0.0,
                   help="never draw a value less likely than this times the most likely one")
    p.add_argument("--known-subsample", action="store_true",
                   help="Multi-Scale: give the model each image's subsample too, so that only "
                        "its conditional stack draws")
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    model = pixelnet.load_checkpoint(a.checkpoint)
    img = figure(model, a.n, tuple(a.seeds), a.temperature, given_class=a.given_class,
                 guidance=a.guidance, min_p=a.min_p, known_subsample=a.known_subsample)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(img, out, nrow=a.n, padding=2, pad_value=1.0)
    given = f", given their classes (strength {a.guidance:g})" if a.given_class else ""
    given += f", min-p {a.min_p:g}" if a.min_p else ""
    given += ", given their subsamples" if a.known_subsample else ""
    print(f"wrote {out}: {a.n} test images, their top halves, completions at seeds "
          f"{a.seeds}{given}")
    return out


if __name__ == "__main__":
    try:
        main()
    except ValueError as e:
        sys.exit(f"error: {e}")
