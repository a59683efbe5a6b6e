"""Export the app as a clean Hugging Face Space folder, ready to push.

    python tools/export_space.py OUT_DIR
    cd OUT_DIR && git init && git lfs install && git add . && git commit -m "PixelNet" \
        && git push https://huggingface.co/spaces/<user>/<space> HEAD:main

The repository's history holds binaries as plain blobs (and did hold training states), which a
Space refuses; the export starts a fresh history. It holds what the app needs, nothing else:
``demo/`` (the app, ``app_file`` of the front matter), ``pixelnet/`` (imported from the folder:
a Space does not ``pip install`` it), the checkpoints (``*.pt`` and ``manifest.json``),
``README.md`` (with the Space's front matter) and ``docs/`` (its screenshot),
``requirements.txt`` (the app's requirements only) and ``.gitattributes`` (every binary in LFS).
No tests, training scripts, data or training runs; no file that git ignores (caches).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# what a Space gets: folders (every tracked file in them) and single files
SPACE_DIRS = ("demo", "pixelnet", "docs")
SPACE_FILES = ("README.md", "requirements.txt", ".gitattributes")
SPACE_GLOBS = ("checkpoints/*.pt", "checkpoints/manifest.json")
GITIGNORE = "__pycache__/\n*.pyc\n"


def tracked_files(repo: Path = REPO, untracked: bool = False) -> list[str]:
    """Paths (relative, POSIX) of the files git tracks in ``repo`` that exist on disk (with
    ``untracked``, also the new files that git does not ignore: what ``git add .`` adds)."""
    extra = ["--others", "--exclude-standard", "--cached"] if untracked else []
    try:
        out = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", *extra],
                             capture_output=True, check=True).stdout.decode()
    except (OSError, subprocess.CalledProcessError) as e:
        raise ValueError(f"{repo} is not a git checkout (git ls-files failed: {e}); the "
                         "export copies tracked files only") from None
    return [p for p in out.split("\0") if p and (repo / p).is_file()]


def space_files(repo: Path = REPO) -> list[str]:
    """The files of the checkout (tracked, or new and not ignored) that belong in the Space."""
    keep = []
    for p in tracked_files(repo, untracked=True):
        path = Path(p)
        if (path.parts[0] in SPACE_DIRS and len(path.parts) > 1) or p in SPACE_FILES or any(
                path.match(g) for g in SPACE_GLOBS):
            keep.append(p)
    missing = [f for f in ("demo/app.py", *SPACE_FILES) if f not in keep]
    if missing:
        raise ValueError(f"{repo} lacks {', '.join(missing)}: not a PixelNet checkout?")
    return sorted(keep)


def export(out: str | Path, repo: Path = REPO) -> list[str]:
    """Copy the Space's files from ``repo`` into ``out`` (new or empty); returns them."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not empty: choose a new folder")
    files = space_files(repo)
    for p in files:
        (out / p).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / p, out / p)
    (out / ".gitignore").write_text(GITIGNORE)
    return files


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="the Space folder to create (new or empty)")
    a = p.parse_args(argv)
    files = export(a.out)
    size = sum((Path(a.out) / f).stat().st_size for f in files)
    print(f"{a.out}: {len(files)} files, {size / 1e6:.1f} MB. Push it with:\n"
          f"  cd {a.out} && git init && git lfs install && git add . && "
          "git commit -m PixelNet && git push <your Space's git URL> HEAD:main")


if __name__ == "__main__":
    try:
        main()
    except ValueError as e:
        sys.exit(f"error: {e}")
