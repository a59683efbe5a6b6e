"""A second rendering of the emoji images: Twitter's Twemoji (``data/emoji32_twitter.npz``).

    cd /tmp && npm pack emoji-datasource-twitter && tar xzf emoji-datasource-twitter-*.tgz
    python tools/emoji_twitter.py /tmp/package/img/twitter/64 [--images data/emoji32.npz]

For every code point sequence of ``emoji32.npz`` (the Noto images), its Twemoji picture from
npm package ``emoji-datasource-twitter`` (Twemoji: Twitter, CC-BY 4.0): 64x64 RGBA laid on
white and averaged down to 32x32 (each pixel the mean of a 2x2 block), as the Noto images are
drawn on white. Output: ``images`` (N, 32, 32, 3) uint8 aligned with ``emoji32.npz``'s
``codepoints`` (stored too, to check the alignment). Training may add them to the training
split (``training/train.py --twitter``); the validation and test splits stay Noto's.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def render(path: Path, size: int = 32) -> np.ndarray:
    """A Twemoji PNG as ``(size, size, 3)`` uint8 on white, box-averaged down."""
    rgba = Image.open(path).convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, rgba).convert("RGB").resize(
        (size, size), Image.BOX))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", help="emoji-datasource-twitter's img/twitter/64 folder")
    p.add_argument("--images", default="data/emoji32.npz", help="the Noto images to match")
    p.add_argument("--out", default="data/emoji32_twitter.npz")
    args = p.parse_args(argv)
    with np.load(args.images) as z:
        codepoints = z["codepoints"]
    folder = Path(args.folder)
    missing = [c for c in codepoints if not (folder / f"{c}.png").is_file()]
    if missing:
        print(f"{len(missing)} code points have no Twemoji in {folder}, e.g. {missing[:5]}: "
              "use the emoji-datasource-twitter release of emoji32.npz's emoji-datasource",
              file=sys.stderr)
        return 1
    images = np.stack([render(folder / f"{c}.png") for c in codepoints])
    np.savez_compressed(args.out, images=images, codepoints=codepoints)
    print(f"{args.out}: {len(images)} images {images.shape[1:]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
