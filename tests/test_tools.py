"""tools/gpu_collect.py: which trained checkpoint replaces a published one."""
from pathlib import Path

import pytest
import torch

import pixelnet
from tools import gpu_collect


def test_better_rules():
    better = gpu_collect.better
    assert better({"val_nll": 80.0}, None, 0.01)[0]
    assert better({"val_nll": 80.0}, {"val_nll": 81.0}, 0.01)[0]
    assert not better({"val_nll": 82.0}, {"val_nll": 81.0}, 0.01)[0]
    assert not better({}, {"val_nll": 81.0}, 0.01)[0]
    # a class-conditional model may replace an unconditional one it matches within tolerance
    cond = {"val_nll": 81.5, "class_names": ["a", "b"]}
    assert better(cond, {"val_nll": 81.0}, 0.01)[0]
    assert not better(cond, {"val_nll": 81.0}, 0.001)[0]
    assert not better(cond, {"val_nll": 81.0, "class_names": ["a", "b"]}, 0.01)[0]
    # a model of other levels (8-level colour) never replaces a 256-level one, nor the reverse
    coarse, fine = {"val_nll": 0.47, "config": {"levels": 8}}, {"val_nll": 2.76, "config": {"levels": 256}}
    assert not better(coarse, fine, 0.01)[0] and "not comparable" in better(coarse, fine, 0.01)[1]
    assert not better(fine, coarse, 0.01)[0]


def test_collect_copies_only_better_checkpoints(tmp_path, monkeypatch):
    torch.manual_seed(0)
    m = pixelnet.build_model("pixelcnn", layers=1, h=4, out_h=8)
    home, new = tmp_path / "checkpoints", tmp_path / "new"
    home.mkdir(), new.mkdir()
    pixelnet.save_checkpoint(m, home / "mnist_pixelcnn.pt", dataset="mnist", val_nll=90.0)
    pixelnet.save_checkpoint(m, home / "mnist_row_lstm.pt", dataset="mnist", val_nll=80.0)
    pixelnet.save_checkpoint(m, new / "mnist_pixelcnn.pt", dataset="mnist", val_nll=85.0)
    pixelnet.save_checkpoint(m, new / "mnist_row_lstm.pt", dataset="mnist", val_nll=85.0)
    (new / "mnist_pixelcnn_log.csv").write_text(
        "step,epoch,seconds,split,nats,bits_per_dim\n4,0.5,1.0,val,85.0,0.156\n")
    monkeypatch.setattr(gpu_collect, "REPO", tmp_path)
    gpu_collect.main([str(new)])
    assert pixelnet.read_checkpoint(home / "mnist_pixelcnn.pt")["val_nll"] == 85.0
    assert pixelnet.read_checkpoint(home / "mnist_row_lstm.pt")["val_nll"] == 80.0
    assert (home / "mnist_pixelcnn_log.csv").exists()
    # its curve drawn from the log it came with (a GPU run brings back no curves)
    assert (home / "mnist_pixelcnn_curve.png").read_bytes()[:4] == b"\x89PNG"
    # a name published only among the experiments is compared with (and copied over) that one
    (home / "experiments").mkdir()
    pixelnet.save_checkpoint(m, home / "experiments" / "mnist_pixelcnn_x.pt", dataset="mnist",
                             val_nll=90.0)
    pixelnet.save_checkpoint(m, new / "mnist_pixelcnn_x.pt", dataset="mnist", val_nll=84.0)
    gpu_collect.main([str(new)])
    assert pixelnet.read_checkpoint(home / "experiments" / "mnist_pixelcnn_x.pt")["val_nll"] == 84.0
    assert not (home / "mnist_pixelcnn_x.pt").exists()


@pytest.mark.parametrize("whole_new, replaced", [(91.0, False), (88.0, True)])
def test_collect_measures_again_when_validated_on_other_images(tmp_path, monkeypatch,
                                                               whole_new, replaced):
    """The run's own figure (first 1000 images) looks better than the published one; both
    are measured again on the whole split, which decides, and a checkpoint that replaces the
    published one carries the whole split's figure."""
    m = pixelnet.build_model("pixelcnn", layers=1, h=4, out_h=8)
    home, new = tmp_path / "checkpoints", tmp_path / "new"
    home.mkdir(), new.mkdir()
    pixelnet.save_checkpoint(m, home / "mnist_pixelcnn.pt", dataset="mnist", val_nll=90.0,
                             val_split="val", step=3)
    pixelnet.save_checkpoint(m, new / "mnist_pixelcnn.pt", dataset="mnist", val_nll=85.0,
                             val_split="val (first 1000)", step=7)
    measured = []

    def fake_evaluate(path, split):
        measured.append((Path(path).parent.name, split))
        nats = whole_new if Path(path).parent == new else 89.0
        return {"nats": nats, "bits_per_dim": nats / 784, "split_description": "val (whole)",
                "nats_given_class": None}
    monkeypatch.setattr(gpu_collect, "REPO", tmp_path)
    monkeypatch.setattr(gpu_collect, "evaluate", fake_evaluate)
    gpu_collect.main([str(new)])
    assert sorted(measured) == [("checkpoints", "val"), ("new", "val")]
    meta = pixelnet.read_checkpoint(home / "mnist_pixelcnn.pt")
    if replaced:
        assert (meta["step"], meta["val_nll"], meta["val_split"]) == (7, 88.0, "val (whole)")
        assert meta["val_bits_per_dim"] == 88.0 / 784
    else:
        assert (meta["step"], meta["val_nll"], meta["val_split"]) == (3, 90.0, "val")


def test_emoji_labels_split_the_faces_from_hearts_and_emotion(tmp_path):
    """tools/emoji_labels.py: a Smileys & Emotion face is "Smileys"; a heart, a costume face or
    an emotion symbol is "Hearts & Emotion"; skin-tone variants share their emoji's class."""
    import json
    import numpy as np
    from tools import emoji_labels
    entries = [
        {"unified": "1F600", "category": "Smileys & Emotion", "subcategory": "face-smiling"},
        {"unified": "2764-FE0F", "category": "Smileys & Emotion", "subcategory": "heart"},
        {"unified": "1F47B", "category": "Smileys & Emotion", "subcategory": "face-costume"},
        {"unified": "1F44B", "category": "People & Body", "subcategory": "hand-fingers-open",
         "skin_variations": {"1F3FB": {"unified": "1F44B-1F3FB"}}},
        {"unified": "1F1E9-1F1EA", "category": "Flags", "subcategory": "country-flag"}]
    path = tmp_path / "emoji.json"
    path.write_text(json.dumps(entries))
    codes = np.array(["1f600", "2764-fe0f", "1f47b", "1f44b-1f3fb", "1f1e9-1f1ea"])
    labels, names = emoji_labels.emoji_labels(path, codes)
    assert [names[k] for k in labels] == ["Smileys", "Hearts & Emotion", "Hearts & Emotion",
                                          "People", "Flags"]
    import pixelnet.data
    assert names == pixelnet.data.class_names("emoji")
