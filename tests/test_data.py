"""Datasets: the repository's data files, fixed splits, labels, binarization, and errors."""
import gzip
import struct

import numpy as np
import pytest
import torch

from pixelnet import data
from pixelnet.data import (DATASETS, binarize, class_names, describe_split, load_dataset,
                           load_eval_set, load_labels)


@pytest.fixture
def only_dir(tmp_path, monkeypatch):
    """Make ``tmp_path`` the only data folder (no repository data, no cache)."""
    monkeypatch.setattr(data, "data_dirs", lambda root=None: [tmp_path])
    monkeypatch.setattr(data, "_CACHE", {})
    return tmp_path


def check_splits(name, sizes):
    info = DATASETS[name]
    xs = {s: load_dataset(name, s, source="offline") for s in data.SPLITS}
    for s, x in xs.items():
        assert x.dtype == torch.long
        assert x.shape == (sizes[s], info.channels, info.height, info.width), s
        assert 0 <= int(x.min()) and int(x.max()) <= 255 and int(x.max()) > 1
        assert str(sizes[s]) in describe_split(name, s, source="offline")
    assert torch.equal(xs["test"], load_dataset(name, "test", source="offline"))  # fixed
    return xs


def test_mnist_offline_splits():
    xs = check_splits("mnist", dict(train=7500, val=500, test=1000))
    with np.load(data.REPO_DATA / "mnist9k.npz") as z:
        images = torch.from_numpy(z["images"]).long()[:, None]
    # test = every 9th digit; the three splits partition the file
    assert torch.equal(xs["test"], images[8::9])
    assert sorted(map(len, xs.values())) == [500, 1000, 7500]
    assert torch.equal(torch.cat(list(xs.values())).sum(0), images.sum(0))


def test_emoji_offline_splits():
    xs = check_splits("emoji", dict(train=3156, val=210, test=420))
    # RGB on white: channels differ somewhere, corners are white
    assert (xs["test"][:, 0] != xs["test"][:, 1]).any()
    assert (xs["test"][:, :, 0, 0] == 255).float().mean() > 0.9


def test_fashion_offline_splits():
    """The repository's shards: Fashion-MNIST's own 60,000 / 10,000 split, in file order."""
    xs = check_splits("fashion", dict(train=56250, val=3750, test=10000))
    assert "Fashion-MNIST npz shards" in describe_split("fashion", "test")
    with np.load(data.REPO_DATA / "fashion_test_0.npz") as z:
        assert torch.equal(xs["test"][:, 0], torch.from_numpy(z["images"]).long())


def test_repository_data_files_are_small():
    """Every data file can be committed to a Space (< 10 MB each)."""
    files = list(data.REPO_DATA.glob("*.npz"))
    assert len(files) == 9
    assert all(f.stat().st_size < 10_000_000 for f in files)


def test_fashion_shards_missing_one(only_dir):
    for k in range(2):
        np.savez(only_dir / f"fashion_train_{k}.npz", images=np.zeros((3, 28, 28), np.uint8),
                 labels=np.zeros(3, np.uint8), shard=k, shards=3)
    np.savez(only_dir / "fashion_test_0.npz", images=np.zeros((2, 28, 28), np.uint8),
             labels=np.zeros(2, np.uint8), shard=0, shards=1)
    with pytest.raises(ValueError, match="shard 0 of 3.*missing"):
        load_dataset("fashion", "test")


def write_idx(path, images):
    with gzip.open(path, "wb") as f:
        f.write(b"\x00\x00\x08" + bytes([images.ndim]) + struct.pack(f">{images.ndim}I", *images.shape)
                + images.tobytes())


def test_fashion_idx_reader(only_dir):
    """Any folder with the IDX files works (e.g. torchvision's raw files)."""
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (32, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 32, dtype=np.uint8)
    write_idx(only_dir / "train-images-idx3-ubyte.gz", train)
    write_idx(only_dir / "train-labels-idx1-ubyte.gz", labels)
    write_idx(only_dir / "t10k-images-idx3-ubyte.gz", test)
    assert torch.equal(load_dataset("fashion", "test", source="offline")[:, 0],
                       torch.from_numpy(test).long())
    assert torch.equal(load_dataset("fashion", "val", source="offline")[:, 0],
                       torch.from_numpy(train[15::16]).long())
    assert len(load_dataset("fashion", "train", source="offline")) == 30
    assert torch.equal(load_labels("fashion", "val"), torch.from_numpy(labels[15::16]).long())
    with pytest.raises(ValueError, match="no labels"):           # no t10k labels file
        load_labels("fashion", "test")


def test_root_repo_and_env_var(tmp_path, monkeypatch):
    """Search order: root=, then <repo>/data, then $PIXELNET_DATA; never outside these."""
    monkeypatch.setattr(data, "_CACHE", {})
    images = np.arange(18 * 28 * 28, dtype=np.int64).reshape(18, 28, 28) % 256
    np.savez(tmp_path / "mnist9k.npz", images=images.astype(np.uint8), labels=np.arange(18) % 10)
    assert len(load_dataset("mnist", "test", root=tmp_path)) == 2
    assert load_labels("mnist", "test", root=tmp_path).tolist() == [8, 7]
    monkeypatch.setenv("PIXELNET_DATA", str(tmp_path))
    assert len(load_dataset("mnist", "train")) == 7500    # the repository's file comes first
    assert data.data_dirs() == [data.REPO_DATA, tmp_path]
    monkeypatch.setattr(data, "REPO_DATA", tmp_path / "absent")
    assert len(load_dataset("mnist", "train")) == 15     # 16 minus every 16th for val
    assert not any("shared" in str(d) for d in data.data_dirs("x"))


def test_binarize_statistics():
    g = torch.Generator().manual_seed(0)
    x = torch.tensor([0, 51, 128, 255]).repeat_interleave(50_000).view(4, 1, 250, 200)
    b = binarize(x, g)
    assert b.dtype == torch.long and set(b.unique().tolist()) == {0, 1}
    p = b.float().mean((1, 2, 3))
    assert p[0] == 0 and p[3] == 1
    assert abs(p[1] - 0.2) < 0.01 and abs(p[2] - 128 / 255) < 0.01
    assert torch.equal(b, binarize(x, torch.Generator().manual_seed(0)))
    assert not torch.equal(b, binarize(x, torch.Generator().manual_seed(1)))


def test_eval_set_binarized_once():
    a = load_eval_set("mnist", "test")
    assert a.shape == (1000, 1, 28, 28) and set(a.unique().tolist()) == {0, 1}
    assert torch.equal(a, load_eval_set("mnist", "test"))
    raw = load_dataset("mnist", "test").float() / 255
    assert abs(a.float().mean() - raw.mean()) < 0.005
    assert torch.equal(load_eval_set("emoji", "val"), load_dataset("emoji", "val"))


def test_errors(only_dir):
    with pytest.raises(ValueError, match="mnist, fashion, emoji, cifar10"):
        load_dataset("svhn", "test")
    with pytest.raises(ValueError, match="train, val, test"):
        load_dataset("emoji", "validation")
    with pytest.raises(ValueError, match="auto, torchvision, offline"):
        load_dataset("emoji", "test", source="web")
    with pytest.raises(ValueError, match="emoji32.npz.*PIXELNET_DATA"):
        load_dataset("emoji", "test")
    with pytest.raises(ValueError, match="fashion_.*shards.*IDX"):
        load_dataset("fashion", "test", source="offline")
    with pytest.raises(ValueError, match="unknown dataset"):
        class_names("svhn")
    np.savez(only_dir / "emoji32.npz", images=np.zeros((9, 32, 32, 3), np.uint8),
             codepoints=np.array(["1f600"] * 9))
    assert len(load_dataset("emoji", "test")) == 1               # images without labels
    with pytest.raises(ValueError, match="no labels.*emoji32_labels.npz"):
        load_labels("emoji", "test")
    np.savez(only_dir / "emoji32_labels.npz", labels=np.zeros(9, np.uint8),
             class_names=np.array(class_names("emoji")), codepoints=np.array(["1f601"] * 9))
    data._CACHE.clear()                                          # re-read the folder
    with pytest.raises(ValueError, match="does not label the images"):
        load_labels("emoji", "test")


@pytest.mark.parametrize("name, k", [("mnist", 10), ("fashion", 10), ("emoji", 10)])
def test_labels_align_with_images(name, k):
    names = class_names(name)
    assert len(names) == k == len(set(names))
    for split in data.SPLITS:
        x, y = load_dataset(name, split), load_labels(name, split)
        assert y.dtype == torch.long and y.shape == (len(x),)
        assert int(y.min()) == 0 and int(y.max()) == k - 1       # every class in every split
        assert torch.equal(y, load_labels(name, split, source="offline"))


def test_label_names_and_counts():
    assert class_names("mnist") == [str(d) for d in range(10)]
    assert class_names("fashion")[0] == "T-shirt/top" and class_names("fashion")[9] == "Ankle boot"
    assert class_names("emoji")[0] == "Smileys" and "Flags" in class_names("emoji")
    assert torch.bincount(load_labels("fashion", "test")).tolist() == [1000] * 10
    counts = sum(torch.bincount(load_labels("emoji", s), minlength=10) for s in data.SPLITS)
    assert counts.tolist() == [110, 59, 2266, 159, 131, 218, 85, 264, 224, 270]
    with np.load(data.REPO_DATA / "mnist9k.npz") as z:
        assert torch.equal(load_labels("mnist", "test"), torch.from_numpy(z["labels"][8::9]).long())


def test_labels_mean_what_they_say():
    """Alignment by content: a misaligned label would not show these differences."""
    x, y = load_dataset("mnist", "test").float(), load_labels("mnist", "test")
    assert x[y == 1].mean() < 0.7 * x[y == 0].mean()             # a "1" has the least ink
    x, y = load_dataset("fashion", "test").float(), load_labels("fashion", "test")
    trouser, sneaker = class_names("fashion").index("Trouser"), class_names("fashion").index("Sneaker")
    legs = x[y == trouser][..., 20:, :]                      # the gap between the legs is dark
    assert legs[..., 13:15].mean() < 0.6 * legs[..., 9:11].mean()
    assert x[y == sneaker][..., :8, :].mean() < 5 < x[y != sneaker][..., :8, :].mean()  # low shoe
    x, y = load_dataset("emoji", "test"), load_labels("emoji", "test")
    centre = x[:, :, 16, 16]
    yellow = (centre[:, 0] > 200) & (centre[:, 1] > 150) & (centre[:, 2] < 120)
    smileys = y == class_names("emoji").index("Smileys")
    assert yellow[smileys].float().mean() > 0.75 > 4 * yellow[~smileys].float().mean()


def test_twemoji_are_the_training_emoji_drawn_by_twitter():
    """``load_twemoji``: the training split's emoji in the same order and classes, in another
    rendering: close to Noto's (yellow smileys, white corners) but not the same pictures."""
    x, y = load_dataset("emoji", "train"), load_labels("emoji", "train")
    tx, ty = data.load_twemoji("train")
    assert tx.shape == x.shape and tx.dtype == torch.long and torch.equal(ty, y)
    assert (tx != x).any(-1).any(-1).any(-1).float().mean() > 0.95     # other pictures
    centre = tx[:, :, 16, 16]
    yellow = (centre[:, 0] > 200) & (centre[:, 1] > 150) & (centre[:, 2] < 120)
    assert yellow[y == class_names("emoji").index("Smileys")].float().mean() > 0.75
    assert (tx[:, :, 0, 0] == 255).float().mean() > 0.8                   # on white
    assert len(data.load_twemoji("test")[0]) == len(load_dataset("emoji", "test"))


def test_twemoji_missing_or_misaligned(only_dir):
    np.savez(only_dir / "emoji32.npz", images=np.zeros((9, 32, 32, 3), np.uint8),
             codepoints=np.array(["1f600"] * 9))
    np.savez(only_dir / "emoji32_labels.npz", labels=np.zeros(9, np.uint8),
             class_names=np.array(class_names("emoji")), codepoints=np.array(["1f600"] * 9))
    with pytest.raises(ValueError, match="emoji32_twitter.npz not found.*tools/emoji_twitter"):
        data.load_twemoji()
    np.savez(only_dir / "emoji32_twitter.npz", images=np.zeros((9, 32, 32, 3), np.uint8),
             codepoints=np.array(["1f601"] * 9))
    with pytest.raises(ValueError, match="other code points"):
        data.load_twemoji()


@pytest.mark.parametrize("levels", [2, 8, 256])
def test_quantize_into_equal_bins_and_back(levels):
    """quantize: 256 values into ``levels`` equal bins, monotone; dequantize keeps black and
    white and is undone by quantize."""
    v = torch.arange(256)
    q = data.quantize(v, levels)
    assert torch.equal(torch.bincount(q, minlength=levels), torch.full((levels,), 256 // levels))
    assert bool((q[1:] >= q[:-1]).all())
    back = data.dequantize(torch.arange(levels), levels)
    assert back.dtype == torch.uint8 and back[0] == 0 and back[-1] == 255
    assert torch.equal(data.quantize(back, levels), torch.arange(levels))
    with pytest.raises(ValueError, match="levels must be in"):
        data.quantize(v, 1)
