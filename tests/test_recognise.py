"""training/recognise.py: the classifier's checkpoint round trip, that it learns, that
recognisability returns well-formed fractions, and clear errors for a mismatched classifier."""
import json
import os
import stat

import pytest
import torch

import pixelnet
from training import recognise
from training.recognise import (build_classifier, check_compatible, confident_fraction,
                                load_classifier, recognisability, save_classifier)

from conftest import tiny_model


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: a second torch thread only fights other jobs for the 2 cores (measured:
    the toy training 7 s on one thread, 39 s on two, at load 9)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def toy_digits(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A separable toy set at MNIST's shape: class k is a bright 8-bit bar in row band k
    (10 bands of 2 rows), with noise pixels elsewhere; ``(n, 1, 28, 28)`` 8-bit, ``(n,)``."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    x = (torch.rand(n, 1, 28, 28, generator=g) < 0.05).long() * 255
    for i, k in enumerate(y.tolist()):
        x[i, 0, 4 + 2 * k: 6 + 2 * k, 4:24] = 255
    return x, y


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    clf = build_classifier("emoji", h=4)
    path = tmp_path / "emoji_classifier.pt"
    old = os.umask(0o077)
    try:
        save_classifier(clf, path, dataset="emoji", test_accuracy=0.5)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    back = load_classifier(path)
    assert back.cfg == clf.cfg and not back.training
    assert back.metadata == {"dataset": "emoji", "test_accuracy": 0.5}
    x = torch.randint(0, 256, (3, 3, 32, 32))
    assert torch.equal(back(x), clf.eval()(x))
    raw = torch.load(path, weights_only=True)         # plain data and tensors only
    assert raw["format"] == recognise.FORMAT and isinstance(raw["config"], dict)


def test_load_refuses_other_files(tmp_path):
    gen = tmp_path / "mnist_pixelcnn.pt"
    pixelnet.save_checkpoint(tiny_model("pixelcnn"), gen, dataset="mnist")
    with pytest.raises(ValueError, match="generative PixelNet checkpoint"):
        load_classifier(gen)
    with pytest.raises(ValueError, match="does not exist.*recognise.py train"):
        load_classifier(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a readable classifier checkpoint"):
        load_classifier(tmp_path / "junk.pt")


def test_learns_a_separable_toy_set():
    """A few epochs on the toy bars beat chance (10%) by far on fresh toy images (binarized,
    as MNIST samples are), and make the classifier confident where an untrained one is not."""
    x, y = toy_digits(320)
    xt, yt = toy_digits(200, seed=1)
    xt = pixelnet.data.binarize(xt, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    untrained = build_classifier("mnist", h=8)
    clf = recognise.train_classifier("mnist", epochs=8, batch_size=32, h=8, lr=5e-3, images=x,
                                     labels=y, log=lambda *_: None)
    assert clf.metadata["epochs"] == 8 and not clf.training
    assert recognise.accuracy(clf, xt, yt) > 0.8
    assert confident_fraction(clf, xt) > confident_fraction(untrained, xt) + 0.5


def small_mnist_classifier():
    """A classifier of MNIST's classes for 8x8 binary images (tiny models sample fast)."""
    torch.manual_seed(0)
    return recognise.Classifier(recognise.ClassifierConfig("mnist", 1, 2, 8, 8, 10, h=4))


def test_recognisability_of_a_tiny_conditional_model():
    model = tiny_model("pixelcnn", height=8, width=8, classes=10)
    clf = small_mnist_classifier()
    r = recognisability(model, clf, per_class=2, free=3, seed=0, real=0)
    fractions = [r["free_confident"], r["conditional_accuracy"],
                 *r["per_class_accuracy"].values(), *r["free_classes"].values()]
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert list(r["per_class_accuracy"]) == pixelnet.data.class_names("mnist")
    assert abs(sum(r["free_classes"].values()) - 1.0) < 1e-6
    assert (r["free_samples"], r["per_class"], r["real_confident"]) == (3, 2, None)
    # the classes' figures are the classifier's accuracy on exactly these samples
    k3 = recognise.draw(model, 2, 3, seed=0)
    assert r["per_class_accuracy"]["3"] == recognise.accuracy(clf, k3, torch.full((2,), 3))
    # ... and, guided, on the samples drawn at the app's class strength
    assert r["guidance"] == pixelnet.sampling.CLASS_STRENGTH
    g3 = recognise.draw(model, 2, 3, seed=0, guidance=r["guidance"])
    assert r["guided_per_class_accuracy"]["3"] == recognise.accuracy(clf, g3, torch.full((2,), 3))
    assert 0 <= r["guided_accuracy"] <= 1
    unguided = recognisability(model, clf, per_class=2, free=0, seed=0, real=0, guided=None)
    assert unguided["guided_accuracy"] is None and unguided["conditional_accuracy"] == r["conditional_accuracy"]
    # the free-sample figures depend only on the seed
    again = recognisability(model, clf, per_class=0, free=3, seed=0, real=0)
    assert again["free_classes"] == r["free_classes"] and again["conditional_accuracy"] is None
    assert "classified as asked" in recognise.summary(r) and "class strength 2" in recognise.summary(r)
    assert "classified as asked" not in recognise.summary(again)


def test_real_reference_on_test_images():
    """An unconditional model gets no conditional figures; the reference is measured on the
    first ``real`` test images as the models see them."""
    model = tiny_model("row_lstm", height=28, width=28)
    clf = build_classifier("mnist", h=4)
    r = recognisability(model, clf, per_class=5, free=1, real=20)
    assert r["conditional_accuracy"] is None and r["real_images"] == 20
    real = recognise.reference_images("mnist", 20)
    assert real.max() == 1 and r["real_confident"] == confident_fraction(clf, real)


def test_draw_batches_at_most_64(monkeypatch):
    calls = []
    real_sample = pixelnet.sample
    monkeypatch.setattr(pixelnet, "sample", lambda m, n, **kw: calls.append(n) or
                        real_sample(m, n, **kw))
    model = tiny_model("pixelcnn", height=4, width=4)
    x = recognise.draw(model, 130, None, seed=0)
    assert x.shape == (130, 1, 4, 4) and calls == [64, 64, 2]


def test_mismatched_classifier_is_a_clear_error():
    clf = build_classifier("mnist", h=4)
    emoji = tiny_model("pixelcnn", channels=3, levels=256, height=32, width=32)
    with pytest.raises(ValueError, match="3x32x32 images of 256 levels.*classifier of the model"):
        check_compatible(emoji, clf)
    model = tiny_model("pixelcnn", height=28, width=28)
    model.metadata = {"dataset": "fashion"}
    with pytest.raises(ValueError, match="trained on 'fashion'.*fashion_classifier.pt"):
        recognisability(model, clf, free=1, real=0)
    with pytest.raises(ValueError, match=r"shape \(B, 1, 28, 28\)"):
        confident_fraction(clf, torch.zeros(2, 3, 32, 32, dtype=torch.long))
    with pytest.raises(ValueError, match=r"levels in \[0, 2\)"):
        confident_fraction(clf, torch.full((2, 1, 28, 28), 255))
    with pytest.raises(ValueError, match="nothing to measure"):
        recognisability(tiny_model("pixelcnn", height=28, width=28), clf, free=0, real=0)


def test_score_command_prints_the_figures(tmp_path, capsys):
    torch.manual_seed(0)
    gen = tmp_path / "mnist_pixelcnn.pt"
    pixelnet.save_checkpoint(tiny_model("pixelcnn", height=28, width=28), gen, dataset="mnist")
    clf = tmp_path / "mnist_classifier.pt"
    save_classifier(build_classifier("mnist", h=4), clf, dataset="mnist", test_accuracy=0.25)
    recognise.main(["--threads", "0", "score", str(gen), str(clf), "--classifier", str(clf),
                    "--free", "2", "--real", "10", "--per-class", "1", "--json",
                    str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "of 2 free samples" in out       # the classifier file skipped
    assert "real test images: confident on" in out and "of 10" in out
    assert "classified as asked" not in out                         # an unconditional model
    r = json.loads((tmp_path / "r.json").read_text())[str(gen)]
    assert r["free_samples"] == 2 and r["real_images"] == 10 and f"{r['free_confident']:.1%}" in out


def test_score_command_measures_guided_samples_at_the_strength_asked(tmp_path, capsys):
    """score --guidance g: the guided figures of a class-conditional model are drawn at g (the
    class strength), 1 measures the model as trained only, and a bad strength is refused."""
    torch.manual_seed(0)
    gen = tmp_path / "mnist_pixelcnn.pt"
    model = tiny_model("pixelcnn", height=28, width=28, classes=10)
    pixelnet.save_checkpoint(model, gen, dataset="mnist", class_names=[str(k) for k in range(10)])
    clf = tmp_path / "mnist_classifier.pt"
    save_classifier(build_classifier("mnist", h=4), clf, dataset="mnist", test_accuracy=0.25)
    args = ["--threads", "0", "score", str(gen), "--classifier", str(clf), "--free", "0",
            "--real", "0", "--per-class", "1", "--json", str(tmp_path / "r.json")]
    recognise.main(args + ["--guidance", "3"])
    assert "at class strength 3 (classifier-free guidance)" in capsys.readouterr().out
    r = json.loads((tmp_path / "r.json").read_text())[str(gen)]
    assert r["guidance"] == 3 and set(r["guided_per_class_accuracy"]) == set(r["per_class_accuracy"])
    recognise.main(args + ["--guidance", "1"])
    assert "class strength" not in capsys.readouterr().out
    assert json.loads((tmp_path / "r.json").read_text())[str(gen)]["guided_accuracy"] is None
    with pytest.raises(ValueError, match="guidance"):
        recognise.main(args + ["--guidance", "-1"])


@pytest.mark.parametrize("dataset", ["mnist", "fashion", "emoji"])
def test_committed_classifiers(dataset):
    """Each committed classifier is small, fits its dataset, and its recorded test accuracy
    is what it scores (on the first 300 test images, within sampling error)."""
    path = recognise.classifier_path(dataset)
    assert path.stat().st_size < 1_000_000
    clf = load_classifier(path)
    info = pixelnet.data.DATASETS[dataset]
    assert (clf.cfg.channels, clf.cfg.levels, clf.cfg.height, clf.cfg.width) == (
        info.channels, info.levels, info.height, info.width)
    x = recognise.reference_images(dataset, 300)
    y = pixelnet.data.load_labels(dataset, "test")[:300]
    acc = recognise.accuracy(clf, x, y)
    assert acc > 0.7 and abs(acc - clf.metadata["test_accuracy"]) < 0.08


def test_a_coarse_colour_model_is_judged_in_8_bit():
    """An 8-level emoji model's samples reach the 256-level classifier as 8-bit values (bin l
    shown as 255 l / 7), and so do the real reference images, quantized to its 8 levels."""
    model = tiny_model("pixelcnn", channels=3, levels=8, height=32, width=32)
    clf = build_classifier("emoji", h=4)
    check_compatible(model, clf)
    x = recognise.draw(model, 2, None, seed=0)
    shown = set(pixelnet.data.dequantize(torch.arange(8), 8).tolist())
    assert x.dtype == torch.long and set(x.unique().tolist()) <= shown
    r = recognisability(model, clf, per_class=0, free=2, real=4)
    real = recognise.reference_images("emoji", 4)
    coarse = pixelnet.data.dequantize(pixelnet.data.quantize(real, 8), 8).long()
    assert r["real_confident"] == confident_fraction(clf, coarse)
