"""Derive the emoji class labels (``data/emoji32_labels.npz``) from ``emoji-datasource``.

    cd /tmp && npm pack emoji-datasource && tar xzf emoji-datasource-*.tgz
    python tools/emoji_labels.py /tmp/package/emoji.json [--images data/emoji32.npz]

Every image of ``emoji32.npz`` is named by its ``codepoints`` (e.g. ``"1f600"``,
``"0023-fe0f-20e3"``); its class is the Unicode emoji category that ``emoji.json`` (npm package
``emoji-datasource``, MIT) gives that sequence, skin-tone variants included. Categories get short
names; the 5 "Component" emoji (skin-tone swatches and hair styles) join "People", since they
are parts of people and a 5-image class could not be learned. "Smileys & Emotion" is split by
its subcategory: the faces (``face-*``: the round yellow smileys, 110 images) are "Smileys";
hearts, emotion symbols (speech balloons, "zzz", "100"), cat and monkey faces and costume
faces (ghost, alien, robot, poo) are "Hearts & Emotion". Output: ``labels`` (N,) uint8
aligned with ``images``, ``class_names`` (K,) str, and ``codepoints`` (to check the alignment).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

# emoji.json category -> class name, in Unicode's category order
CLASSES = {"Smileys & Emotion": "Smileys", "Hearts & Emotion": "Hearts & Emotion",
           "People & Body": "People", "Component": "People",
           "Animals & Nature": "Animals & Nature", "Food & Drink": "Food & Drink",
           "Travel & Places": "Travel & Places", "Activities": "Activities",
           "Objects": "Objects", "Symbols": "Symbols", "Flags": "Flags"}


def category(entry: dict) -> str:
    """An emoji.json entry's category, with the non-face part of "Smileys & Emotion" (its
    subcategories not starting with ``face-``, and ``face-costume``) as "Hearts & Emotion"."""
    sub = entry.get("subcategory", "")
    if entry["category"] == "Smileys & Emotion" and (not sub.startswith("face-")
                                                     or sub == "face-costume"):
        return "Hearts & Emotion"
    return entry["category"]


def categories(emoji_json: Path) -> dict[str, str]:
    """Lower-case code point sequence -> category, for every sequence emoji.json names."""
    table = {}
    for e in json.loads(emoji_json.read_text()):
        variants = [e, *(e.get("skin_variations") or {}).values()]
        for v in variants:
            for key in ("unified", "non_qualified"):
                if v.get(key):
                    table[v[key].lower()] = category(e)
    return table


def emoji_labels(emoji_json: Path, codepoints: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(labels (N,) uint8, class names) for the images named by ``codepoints``."""
    table = categories(emoji_json)
    missing = [c for c in codepoints if c not in table]
    if missing:
        raise ValueError(f"{len(missing)} code points not in {emoji_json}, e.g. {missing[:5]}")
    unknown = {table[c] for c in codepoints} - set(CLASSES)
    if unknown:
        raise ValueError(f"categories without a class name: {sorted(unknown)}")
    names = list(dict.fromkeys(CLASSES.values()))
    labels = np.array([names.index(CLASSES[table[c]]) for c in codepoints], np.uint8)
    return labels, names


def main(argv: list[str] | None = None) -> None:
    repo = Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("emoji_json", help="emoji.json of the npm package emoji-datasource")
    p.add_argument("--images", default=str(repo / "data" / "emoji32.npz"))
    p.add_argument("--out", default=str(repo / "data" / "emoji32_labels.npz"))
    a = p.parse_args(argv)
    with np.load(a.images) as z:
        codepoints = z["codepoints"]
    labels, names = emoji_labels(Path(a.emoji_json), codepoints)
    np.savez_compressed(a.out, labels=labels, class_names=np.array(names),
                        codepoints=codepoints)
    counts = np.bincount(labels, minlength=len(names))
    print(f"{a.out}: {len(labels)} labels; " + ", ".join(f"{n} {c}" for n, c in zip(names, counts)))


if __name__ == "__main__":
    try:
        main()
    except ValueError as e:
        sys.exit(f"error: {e}")
