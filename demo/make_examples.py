"""Write the example images the app ships (``demo/examples/{dataset}_{k}.png``), picked
evenly from each dataset's test split. Run once: ``python demo/make_examples.py``."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from pixelnet.data import load_dataset  # noqa: E402

OUT = Path(__file__).resolve().parent / "examples"
PER_DATASET = 10


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name in ("mnist", "fashion", "emoji"):
        x = load_dataset(name, "test").numpy().astype(np.uint8)    # (N, C, H, W)
        varied = np.nonzero(x.reshape(len(x), -1).std(1) > 40)[0]   # skip near-blank ones
        for k, idx in enumerate(varied[np.linspace(0, len(varied) - 1, PER_DATASET).astype(int)]):
            a = x[idx].transpose(1, 2, 0)
            Image.fromarray(a[..., 0] if a.shape[2] == 1 else a).save(
                OUT / f"{name}_{k}.png", optimize=True)
    print(f"wrote {3 * PER_DATASET} images to {OUT}")


if __name__ == "__main__":
    main()
