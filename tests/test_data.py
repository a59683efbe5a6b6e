"""Datasets: the offline sources, fixed splits, binarization, and errors."""
import gzip
import struct

import numpy as np
import pytest
import torch

from pixelnet import data
from pixelnet.data import DATASETS, binarize, describe_split, load_dataset, load_eval_set


@pytest.fixture
def only_dir(tmp_path, monkeypatch):
    """Make ``tmp_path`` the only data folder (and no Debian files, no cache)."""
    monkeypatch.setattr(data, "data_dirs", lambda root=None: [tmp_path])
    monkeypatch.setattr(data, "DEBIAN_FASHION", tmp_path / "absent")
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
    with np.load(data.data_dirs()[-1] / "mnist9k.npz") as z:
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


@pytest.mark.skipif(not (data.DEBIAN_FASHION / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="apt-get install dataset-fashion-mnist (done by .ci/run)")
def test_fashion_debian_splits():
    check_splits("fashion", dict(train=56250, val=3750, test=10000))


def write_idx(path, images):
    with gzip.open(path, "wb") as f:
        f.write(b"\x00\x00\x08\x03" + struct.pack(">III", *images.shape) + images.tobytes())


def test_fashion_idx_reader(only_dir):
    """Any folder with the IDX files works (e.g. torchvision's raw files)."""
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (32, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    write_idx(only_dir / "train-images-idx3-ubyte.gz", train)
    write_idx(only_dir / "t10k-images-idx3-ubyte.gz", test)
    assert torch.equal(load_dataset("fashion", "test", source="offline")[:, 0],
                       torch.from_numpy(test).long())
    assert torch.equal(load_dataset("fashion", "val", source="offline")[:, 0],
                       torch.from_numpy(train[15::16]).long())
    assert len(load_dataset("fashion", "train", source="offline")) == 30


def test_root_and_env_var(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_CACHE", {})
    images = np.arange(18 * 28 * 28, dtype=np.int64).reshape(18, 28, 28) % 256
    np.savez(tmp_path / "mnist9k.npz", images=images.astype(np.uint8), labels=np.zeros(18))
    assert len(load_dataset("mnist", "test", root=tmp_path)) == 2
    monkeypatch.setenv("PIXELNET_DATA", str(tmp_path))
    assert len(load_dataset("mnist", "train")) == 15     # 16 minus every 16th for val


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
    with pytest.raises(ValueError, match="dataset-fashion-mnist"):
        load_dataset("fashion", "test", source="offline")
