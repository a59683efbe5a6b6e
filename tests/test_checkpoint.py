"""Checkpoint files: round trip, mode 0644, and a clear ValueError naming the file for every
corrupt or malformed one, checked before any model is built."""
import os
import stat

import pytest
import torch

import pixelnet
from pixelnet import checkpoint
from pixelnet.checkpoint import CONFIG_BOUNDS, MAX_PARAMS, load_checkpoint, read_checkpoint

from conftest import tiny_model


@pytest.fixture
def saved(tmp_path):
    """A tiny checkpoint on disk and its raw dict."""
    path = tmp_path / "m.pt"
    pixelnet.save_checkpoint(tiny_model("pixelcnn"), path, dataset="mnist")
    return path, torch.load(path, weights_only=True)


def rewrite(path, ckpt, **changes):
    """Save ``ckpt`` with ``changes`` (None deletes an entry; config_x edits the config)."""
    ckpt = {**ckpt, "config": dict(ckpt["config"]), "model": dict(ckpt["model"])}
    for k, v in changes.items():
        target, key = (ckpt["config"], k[7:]) if k.startswith("config_") else (ckpt, k)
        if v is None:
            del target[key]
        else:
            target[key] = v
    torch.save(ckpt, path)
    return path


def test_round_trip_and_metadata(saved):
    path, _ = saved
    model = load_checkpoint(path)
    assert model.metadata == {"dataset": "mnist"} and not model.training
    expected = tiny_model("pixelcnn").state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())


def test_written_readable_by_others(tmp_path):
    """mkstemp creates files 0600; a checkpoint must be readable by a server's user."""
    old = os.umask(0o077)
    try:
        pixelnet.save_checkpoint(tiny_model("row_lstm"), tmp_path / "a.pt")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.pt").stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]          # no temp file left


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04" + b"\0" * 64])
def test_corrupt_file(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"'.*bad\.pt' is not a readable PixelNet checkpoint"):
        load_checkpoint(path)


def test_truncated_file(saved):
    path, _ = saved
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(ValueError, match="m.pt' is not a readable"):
        load_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="absent.pt' does not exist"):
        load_checkpoint(tmp_path / "absent.pt")


MALFORMED = [
    (dict(format=None), "not a PixelNet checkpoint"),
    (dict(model=None), "not a PixelNet checkpoint"),
    (dict(config=[1, 2]), "config is not a dict"),
    (dict(config={1: 2, "arch": "pixelcnn"}), "config is not a dict"),
    (dict(config_arch="transformer"), "unknown architecture 'transformer'"),
    (dict(config_arch=None), "unknown architecture None"),
    (dict(arch="row_lstm"), "'arch' says 'row_lstm' but its config says 'pixelcnn'"),
    (dict(config_h="16"), "field 'h' must be int, got str"),
    (dict(config_h=16.0), "field 'h' must be int, got float"),
    (dict(config_h=True), "field 'h' must be int, got bool"),
    (dict(config_dropout="0.5"), "field 'dropout' must be float, got str"),
    (dict(config_h=[3]), "field 'h' must be int, got list"),
    (dict(config_skip=1), "field 'skip' must be bool, got int"),
    (dict(config_attention=0.5), r"fields \['attention'\] are not pixelcnn hyperparameters"),
    (dict(config_h=1024), r"'h' = 1024 is outside the sane range \[1, 512\]"),
    (dict(config_layers=10**9), r"'layers' = 1000000000 is outside the sane range \[0, 64\]"),
    (dict(config_height=100_000), r"'height' = 100000 is outside"),
    (dict(config_levels=1), r"'levels' = 1 is outside the sane range \[2, 256\]"),
    (dict(config_channels=-1), r"'channels' = -1 is outside"),
    (dict(model=[1, 2]), "'model' is not a state dict"),
    (dict(model={"input.weight": [1.0]}), "'model' is not a state dict"),
]


@pytest.mark.parametrize("changes, message", MALFORMED)
def test_malformed_checkpoint_names_file_and_field(saved, monkeypatch, changes, message):
    """Every malformed file is a ValueError naming it (never TypeError/KeyError), found before
    a model is built."""
    path, ckpt = saved
    rewrite(path, ckpt, **changes)
    built = []
    monkeypatch.setattr(pixelnet, "build_model", lambda *a, **k: built.append(k))
    with pytest.raises(ValueError, match=message) as e:
        load_checkpoint(path)
    assert str(path) in str(e.value)
    assert not built


def test_config_the_model_refuses(saved):
    """Types and bounds fine, but the architecture's own check fails: still the file's name."""
    path, ckpt = saved
    rewrite(path, ckpt, config_h=1, config_channels=3)          # 2h = 2 < 3 colour groups
    with pytest.raises(ValueError, match="m.pt': invalid config: .*2h = 2"):
        load_checkpoint(path)
    rewrite(path, ckpt, config_dropout=1.5)
    with pytest.raises(ValueError, match=r"m.pt': invalid config: dropout must be in \[0, 1\)"):
        load_checkpoint(path)


def test_too_many_parameters_refused_before_allocation(saved):
    """Inside every field's bound, but 600M parameters all told: counted on the meta device,
    never allocated."""
    path, ckpt = saved
    rewrite(path, ckpt, config_arch="diagonal_bilstm", arch="diagonal_bilstm", config_h=512,
            config_layers=64, config_skip=True)
    with pytest.raises(ValueError, match=f"m.pt': .* parameters, more than the {MAX_PARAMS:,}"):
        load_checkpoint(path)


def test_committed_checkpoints_are_well_inside_the_bounds():
    for path in (checkpoint.Path(__file__).parents[1] / "checkpoints").glob("*.pt"):
        config = read_checkpoint(path)["config"]
        for name, (lo, hi) in CONFIG_BOUNDS.items():
            if name in config:
                assert lo <= config[name] <= hi // 2 or name in ("channels", "levels"), (path, name)
        assert checkpoint._count_params(config, str(path)) * 10 < MAX_PARAMS


@pytest.mark.parametrize("changes, message", [
    (dict(), "weights do not match"),                          # a missing entry
    (dict(extra=True), "weights do not match"),                # an unexpected entry
    (dict(shape=True), "weights do not match"),                # a wrong shape
    (dict(nan=True), "hold NaN or infinite values"),
])
def test_wrong_weights(saved, changes, message):
    path, ckpt = saved
    state = dict(ckpt["model"])
    name = next(iter(state))
    if changes.get("extra"):
        state["bogus.weight"] = torch.zeros(1)
    elif changes.get("shape"):
        state[name] = torch.zeros(3, 3)
    elif changes.get("nan"):
        state[name] = torch.full_like(state[name], float("nan"))
    else:
        del state[name]
    rewrite(path, ckpt, model=state)
    with pytest.raises(ValueError, match=message) as e:
        load_checkpoint(path)
    assert str(path) in str(e.value)
