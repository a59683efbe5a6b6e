"""Ready for a Hugging Face Space: the README's front matter, file sizes, LFS rules for every
binary, the app's imports against requirements.txt, and the exported Space folder starting."""
import ast
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from importlib import metadata
from pathlib import Path

import pytest

from tools import export_space

REPO = Path(__file__).resolve().parents[1]
MAX_FILE_BYTES = 10 * 1024 * 1024           # a Space refuses plain files above 10 MB
HF_COLORS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
LFS_POINTER = b"version https://git-lfs.github.com/spec/"


def front_matter(readme: Path) -> dict[str, str]:
    """The ``key: value`` lines between the README's leading ``---`` lines."""
    text = readme.read_text()
    m = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert m, f"{readme} has no front matter"
    pairs = (line.split(":", 1) for line in m.group(1).splitlines() if line.strip())
    return {k.strip(): v.strip() for k, v in pairs}


def requirement_names(path: Path = REPO / "requirements.txt") -> dict[str, str]:
    """Normalized distribution name -> version pin ("" if none) of a requirements file."""
    names = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, pin = re.match(r"([A-Za-z0-9_.\-]+)\s*(==\s*(\S+))?", line).groups()
            names[re.sub(r"[-_.]+", "-", name).lower()] = pin or ""
    return names


def is_binary(path: Path) -> bool:
    """git's rule: a NUL byte in the first 8000 bytes."""
    with open(path, "rb") as f:
        return b"\0" in f.read(8000)


def test_front_matter():
    fm = front_matter(REPO / "README.md")
    assert fm["sdk"] == "gradio" and fm["title"]
    assert fm["sdk_version"] == requirement_names()["gradio"]      # the Space runs that gradio
    assert (REPO / fm["app_file"]).is_file() and fm["app_file"] == "demo/app.py"
    assert fm["colorFrom"] in HF_COLORS and fm["colorTo"] in HF_COLORS
    assert fm["pinned"] in ("true", "false") and len(fm["short_description"]) <= 60


def test_tracked_files_fit_a_space():
    """No file over 10 MB; every binary in an LFS rule; none is an LFS pointer (the project's
    machines commit real blobs, so a clone without git-lfs works)."""
    files = export_space.tracked_files()
    sizes = {f: (REPO / f).stat().st_size for f in files}
    assert not {f: s for f, s in sizes.items() if s > MAX_FILE_BYTES}
    binaries = [f for f in files if is_binary(REPO / f)]
    assert len(binaries) > 30 and "checkpoints/mnist_pixelcnn.pt" in binaries
    attrs = subprocess.run(["git", "-C", str(REPO), "check-attr", "filter", "--", *binaries],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(attrs) == len(binaries)
    assert not [a for a in attrs if not a.endswith(": filter: lfs")]
    assert not [f for f in binaries if (REPO / f).read_bytes()[:len(LFS_POINTER)] == LFS_POINTER]
    assert not [f for f in files if f.startswith("runs/")]


def module_file(name: str, importer: Path | None, level: int) -> Path | None:
    """The repository file of module ``name`` (relative to ``importer`` for ``level`` > 0),
    or None when it is not the project's own."""
    if level:
        base = importer.parent
        for _ in range(level - 1):
            base = base.parent
        parts = list(base.relative_to(REPO).parts) + (name.split(".") if name else [])
    else:
        parts = name.split(".")
    if parts[0] not in ("demo", "pixelnet"):
        return None
    path = REPO.joinpath(*parts)
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def guarded(node: ast.AST, parents: dict) -> bool:
    """Inside ``try: ... except ImportError`` (an optional import)."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in node.handlers):
            return True
    return False


def app_imports(entry: Path = REPO / "demo" / "app.py") -> dict[str, set[str]]:
    """Top-level outside modules imported by the app and the project modules it reaches
    (optional imports excluded) -> the files importing them."""
    outside, seen, todo = {}, set(), [entry]
    while todo:
        path = todo.pop()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        tree = ast.parse(path.read_text())
        parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found = [(a.name, 0) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                found = [(node.module or "", node.level)]
                found += [(f"{node.module}.{a.name}" if node.module else a.name, node.level)
                          for a in node.names]
            else:
                continue
            for name, level in found:
                own = module_file(name, path, level)
                if own is not None:
                    todo.append(own)
                elif not level and not guarded(node, parents):
                    outside.setdefault(name.split(".")[0], set()).add(path.name)
    return outside


def test_app_imports_only_what_requirements_txt_installs():
    """Every outside module the app imports is the standard library's or a package that
    requirements.txt names (so a Space, which installs only that file, can run it)."""
    listed = set(requirement_names())
    dists = metadata.packages_distributions()
    imports = app_imports()
    assert {"torch", "gradio", "numpy", "PIL"} <= set(imports)
    unlisted = {}
    for module, files in imports.items():
        if module in sys.stdlib_module_names or module == "__future__":
            continue
        names = {re.sub(r"[-_.]+", "-", d).lower() for d in dists.get(module, [module])}
        if not names & listed:
            unlisted[module] = sorted(files)
    assert not unlisted, f"imported by the app but not in requirements.txt: {unlisted}"
    assert not {"torchvision", "pytest", "playwright", "tqdm"} & listed   # dev only


def test_requirement_files():
    app = requirement_names()
    dev = (REPO / "requirements-dev.txt").read_text().splitlines()
    assert app["torch"] == "2.14.1" and app["gradio"] == "6.31.0"
    assert "-r requirements.txt" in dev and "-e ." in dev
    assert any(line.startswith("torchvision==0.29.1") for line in dev)


def test_export_holds_the_app_only(tmp_path):
    files = export_space.export(tmp_path / "space")
    top = {f.split("/")[0] for f in files}
    assert top == {"demo", "pixelnet", "checkpoints", "docs", "README.md", "requirements.txt",
                   ".gitattributes"}
    assert "demo/app.py" in files and "checkpoints/mnist_pixelcnn.pt" in files
    assert not [f for f in files if f.startswith("checkpoints/") and not
                (f.endswith(".pt") or f.endswith("manifest.json"))]
    assert (tmp_path / "space" / ".gitignore").read_text().startswith("__pycache__/")
    assert sum((tmp_path / "space" / f).stat().st_size for f in files) < 30e6
    with pytest.raises(ValueError, match="not empty"):
        export_space.export(tmp_path / "space")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group it leads, SIGKILL after 30 s."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:          # already gone
            break
        try:
            proc.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    proc.wait()


@pytest.mark.slow
def test_exported_space_starts(tmp_path):
    """``python demo/app.py`` from the export alone (its own pixelnet): HTTP 200 on /."""
    space = tmp_path / "space"
    subprocess.run([sys.executable, str(REPO / "tools" / "export_space.py"), str(space)],
                   check=True, capture_output=True)
    where = subprocess.run([sys.executable, "-c", "import pixelnet; print(pixelnet.__file__)"],
                           cwd=space, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(space)), where
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_ANALYTICS_ENABLED": "False"}
    log = open(tmp_path / "app.log", "w")
    proc = subprocess.Popen([sys.executable, "demo/app.py"], cwd=space, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    status, deadline = None, time.time() + 180
    try:
        while time.time() < deadline and proc.poll() is None and status != 200:
            try:
                status = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).status
            except OSError:
                time.sleep(1)
    finally:
        stop(proc)
        log.close()
    assert status == 200, (tmp_path / "app.log").read_text()[-3000:]
