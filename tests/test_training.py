"""Training pipeline: outputs, resume after kill -9, DDP agreement, evaluate and publish.
Tiny models on a few dozen MNIST digits; one CPU thread per process."""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import pixelnet
from pixelnet.data import load_eval_set
from training import evaluate, publish, train

REPO = Path(__file__).resolve().parents[1]
TRAIN = str(REPO / "training" / "train.py")
# 64 digits at batch 4: 16 steps per epoch
TINY = ["--arch", "pixelcnn", "--dataset", "mnist", "--layers", "1", "--h", "4", "--out-h", "8",
        "--max-train-images", "64", "--max-val-images", "32", "--batch-size", "4",
        "--lr", "0.01", "--threads", "1"]


def paths(tmp_path, name):
    return ["--out", str(tmp_path / name / "m.pt"), "--run-dir", str(tmp_path / name / "run")]


def state(tmp_path, name):
    return torch.load(tmp_path / name / "run" / "last.pt", weights_only=True)


def assert_same_weights(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=0, atol=atol), k


def test_train_writes_checkpoint_log_and_curve(tmp_path):
    r = train.main(TINY + paths(tmp_path, "a") + ["--epochs", "2", "--log-every", "4"])
    assert r["step"] == 32
    model = pixelnet.load_checkpoint(tmp_path / "a" / "m.pt")
    meta = model.metadata
    assert meta["dataset"] == "mnist" and meta["data_source"] == "offline"
    assert meta["train_images"] == 64 and meta["step"] in (16, 32)
    assert meta["epochs"] == meta["step"] / 16 and meta["val_nll"] == r["best_val"]
    assert "CPU" in meta["hardware"] and meta["train_seconds"] > 0
    assert model.config["layers"] == 1 and model.config["h"] == 4
    rows = list(csv.DictReader(open(tmp_path / "a" / "m_log.csv")))
    val = [r for r in rows if r["split"] == "val"]
    trn = [float(r["nats"]) for r in rows if r["split"] == "train"]
    assert [int(r["step"]) for r in val] == [16, 32]
    assert len(trn) == 8 and trn[-1] < trn[0] - 50          # it learns
    assert (tmp_path / "a" / "m_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert state(tmp_path, "a")["step"] == 32
    # resuming a finished run does nothing; resuming it as another model is an error
    assert train.main(TINY + paths(tmp_path, "a") + ["--epochs", "2", "--resume"])["step"] == 32
    other = [a if a != "pixelcnn" else "row_lstm" for a in TINY]
    with pytest.raises(ValueError, match="pixelcnn run"):
        train.main(other + paths(tmp_path, "a") + ["--resume"])


def test_time_budget_stops_cleanly(tmp_path):
    r = train.main(TINY + paths(tmp_path, "b") + ["--time-budget", "1e-6"])
    assert r["step"] == 1
    assert pixelnet.load_checkpoint(tmp_path / "b" / "m.pt").metadata["step"] == 1
    assert state(tmp_path, "b")["step"] == 1


@pytest.mark.slow
def test_resume_after_kill_matches_straight_run(tmp_path):
    """kill -9 mid-run, resume: the same weights as a run never interrupted."""
    n = 24                                              # crosses an epoch boundary (16)
    straight = train.main(TINY + paths(tmp_path, "straight") + ["--max-steps", str(n)])
    assert straight["step"] == n
    proc = subprocess.Popen([sys.executable, TRAIN, *TINY, *paths(tmp_path, "killed"),
                             "--save-every", "0", "--resume"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "killed" / "run" / "last.pt"
    deadline = time.time() + 60
    try:
        while time.time() < deadline and proc.poll() is None:
            if last.is_file() and torch.load(last, weights_only=True)["step"] >= 3:
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    saved = state(tmp_path, "killed")["step"]         # the file is whole, never corrupt
    assert 3 <= saved < n, f"killed at step {saved}: not mid-run"
    resumed = train.main(TINY + paths(tmp_path, "killed") + ["--max-steps", str(n), "--resume"])
    assert resumed["step"] == n
    assert_same_weights(state(tmp_path, "straight")["model"], state(tmp_path, "killed")["model"])
    assert_same_weights(state(tmp_path, "straight")["ema"], state(tmp_path, "killed")["ema"])
    log = state(tmp_path, "killed")["log"]
    assert [r["step"] for r in log if r["split"] == "val"] == [16, 24]


@pytest.mark.slow
def test_ddp_two_processes_match_single_process(tmp_path):
    """torchrun, 2 CPU processes (gloo), 2 images each = the 1-process run at batch 4."""
    args = TINY + ["--max-steps", "6", "--val-every", "3"]
    train.main(args + paths(tmp_path, "single"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                        "--standalone", TRAIN, *args, *paths(tmp_path, "ddp")],
                       env=env, timeout=120, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    one, two = state(tmp_path, "single"), state(tmp_path, "ddp")
    assert two["step"] == 6 and "2 x CPU" in two["hardware"][0]
    assert_same_weights(one["model"], two["model"], atol=1e-6)
    val1 = [r["nats"] for r in one["log"] if r["split"] == "val"]
    val2 = [r["nats"] for r in two["log"] if r["split"] == "val"]
    assert len(val1) == 2 and val1 == pytest.approx(val2, rel=1e-5)


@pytest.mark.parametrize("ema", ["0.9", "0"])
def test_checkpoint_holds_the_averaged_weights(tmp_path, ema):
    """--ema: validation and the checkpoint use the moving average, not the last iterate."""
    r = train.main(TINY + paths(tmp_path, "e") + ["--epochs", "1", "--ema", ema])
    st = state(tmp_path, "e")
    published = pixelnet.load_checkpoint(tmp_path / "e" / "m.pt").state_dict()
    assert_same_weights(published, st["ema"] if ema != "0" else st["model"])
    if ema != "0":
        assert not torch.equal(st["ema"]["head.conv2.weight"], st["model"]["head.conv2.weight"])
        assert r["best_val"] == pytest.approx(evaluate.dataset_nll(
            r["ema"], load_eval_set("mnist", "val")[:32]).mean().item(), rel=1e-5)
    else:
        assert st["ema"] is None and r["ema"] is None


@pytest.fixture
def tiny_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = pixelnet.build_model("pixelcnn", layers=1, h=4, out_h=8)
    path = tmp_path / "ckpt" / "mnist_pixelcnn.pt"
    pixelnet.save_checkpoint(model, path, dataset="mnist", data_source="offline",
                             train_images=0, epochs=0, step=0, train_seconds=0.0,
                             hardware="none")
    return model, path


def test_evaluate(tiny_checkpoint, capsys):
    model, path = tiny_checkpoint
    r = evaluate.main([str(path), "--limit", "40", "--batch-size", "16"])
    want = pixelnet.nll(model, load_eval_set("mnist", "test")[:40]).mean().item()
    assert r["nats"] == pytest.approx(want, rel=1e-5) and r["images"] == 40
    assert r["bits_per_dim"] == pytest.approx(want / (784 * 0.6931471805599453))
    out = capsys.readouterr().out
    assert "test NLL" in out and "nats/image" in out and "bits/dim" in out
    assert "every 9th image" in out and "mnist9k.npz" in out
    with pytest.raises(ValueError, match="--limit"):
        evaluate.evaluate(path, limit=0)
    # the command line, as a user runs it
    cli = subprocess.run([sys.executable, str(REPO / "training" / "evaluate.py"), str(path),
                          "--split", "val", "--limit", "8"], capture_output=True, text=True)
    assert cli.returncode == 0 and "val NLL" in cli.stdout


def test_publish(tiny_checkpoint):
    model, path = tiny_checkpoint
    entries = publish.main(["--dir", str(path.parent), "--samples", "4", "--limit", "20"])
    (e,) = entries
    want = evaluate.evaluate(path, limit=20)["nats"]
    assert e["file"] == path.name and e["arch"] == "pixelcnn" and e["dataset"] == "mnist"
    assert e["params"] == pixelnet.param_count(model) and e["test_nll"] == pytest.approx(want)
    assert pixelnet.load_checkpoint(path).metadata["test_nll"] == pytest.approx(want)
    manifest = (path.parent / "manifest.json").read_text()
    assert '"test_bits_per_dim"' in manifest and path.name in manifest
    assert "| `mnist_pixelcnn.pt` | mnist | pixelcnn |" in (path.parent / "README.md").read_text()
    assert (path.parent / "mnist_pixelcnn_samples.png").read_bytes()[:4] == b"\x89PNG"


def test_publish_says_how_long_a_continued_model_trained_in_all():
    assert publish._epochs({"epochs": 3.5}) == "3.5"
    assert publish._epochs({"epochs": 3.5, "epochs_total": 40.0}) == "40.0 in all (3.5 in the last run)"


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown --arch"):
        train.main(["--arch", "transformer"])
    with pytest.raises(ValueError, match="small_h"):
        train.main(TINY + paths(tmp_path, "c") + ["--small-h", "3"])
    with pytest.raises(ValueError, match="no full batch"):
        train.main(TINY + paths(tmp_path, "c") + ["--batch-size", "128"])


MANIFEST = REPO / "checkpoints" / "manifest.json"


def manifest_entries() -> dict[str, dict]:
    return {e["file"]: e for e in json.loads(MANIFEST.read_text())["checkpoints"]}


def test_manifest_lists_every_committed_checkpoint():
    assert set(manifest_entries()) == {p.name for p in (REPO / "checkpoints").glob("*.pt")}


@pytest.mark.slow
@pytest.mark.parametrize("file", ["mnist_pixelcnn.pt", "mnist_row_lstm.pt"])
def test_evaluate_reproduces_the_manifest(file):
    """The committed numbers are what evaluate.py measures (the cheap MNIST ones, whole
    test split)."""
    entries = manifest_entries()
    r = evaluate.evaluate(REPO / "checkpoints" / file)
    assert r["nats"] == pytest.approx(entries[file]["test_nll"], abs=1e-3)
    assert r["split_description"] == entries[file]["test_split"] and r["images"] == 1000


def test_resume_from_a_corrupt_state_says_which_file(tmp_path):
    """A truncated last.pt: one clear line naming the file, no traceback, exit status 1."""
    last = tmp_path / "r" / "run" / "last.pt"
    last.parent.mkdir(parents=True)
    train.main(TINY + paths(tmp_path, "r") + ["--max-steps", "2"])
    last.write_bytes(last.read_bytes()[:1000])
    p = subprocess.run([sys.executable, TRAIN, *TINY, *paths(tmp_path, "r"), "--resume"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    assert p.stderr.strip().count("\n") == 0 and "Traceback" not in p.stderr, p.stderr
    assert p.stderr.startswith("error: ") and str(last) in p.stderr
    assert "not a readable resume state" in p.stderr and "--init-from" in p.stderr
    torch.save({"step": 3}, last)                              # readable, but not a state
    with pytest.raises(ValueError, match="lacks model, optimizer"):
        train.main(TINY + paths(tmp_path, "r") + ["--resume"])


def test_init_from_a_published_checkpoint(tmp_path):
    """--init-from: weights and average from the checkpoint, its hyperparameters, a fresh
    optimizer and step count; a mismatched model is refused."""
    train.main(TINY + paths(tmp_path, "src") + ["--max-steps", "8"])
    src = tmp_path / "src" / "m.pt"
    source = pixelnet.load_checkpoint(src)
    no_hparams = TINY[:4] + TINY[10:]                          # without --layers, --h, --out-h
    args = no_hparams + paths(tmp_path, "cont") + ["--init-from", str(src), "--max-steps", "4"]
    trainer = train.Trainer(*train.parse_args(args))
    shape = ("arch", "channels", "levels", "height", "width")
    assert trainer.cfg.hparams == {k: v for k, v in source.config.items() if k not in shape}
    assert trainer.cfg.hparams["h"] == 4
    assert_same_weights(trainer.model.state_dict(), source.state_dict())
    assert_same_weights(trainer.ema.state_dict(), source.state_dict())
    assert trainer.opt.state_dict()["state"] == {} and trainer.progress.step == 0
    assert trainer.fit()["step"] == 4
    trainer.close()
    meta = pixelnet.load_checkpoint(tmp_path / "cont" / "m.pt").metadata
    assert meta["init_from"] == str(src)
    # how long the model trained in all: the source's epochs and this run's
    assert meta["epochs_total"] == pytest.approx(source.metadata["epochs"] + meta["epochs"])
    train.main(args + ["--resume", "--max-steps", "8"])       # a resumed run keeps counting
    meta = pixelnet.load_checkpoint(tmp_path / "cont" / "m.pt").metadata
    assert meta["epochs_total"] == pytest.approx(source.metadata["epochs"] + meta["epochs"])
    assert meta["step"] == 8
    with pytest.raises(ValueError, match="pixelcnn model, not mnist/row_lstm"):
        train.main(["--arch", "row_lstm"] + args[2:])
    with pytest.raises(ValueError, match="drop --h"):
        train.main(args + ["--h", "8"])
    # dropout changes no weight: a continued model may take it up
    train.main(args[:-2] + ["--max-steps", "1", "--dropout", "0.3"])
    assert pixelnet.load_checkpoint(tmp_path / "cont" / "m.pt").cfg.dropout == 0.3


def test_a_multiscale_model_starts_from_a_single_scale_one(tmp_path):
    """--arch multiscale --init-from a model of its base: both stacks are that model (the
    small one has its weights; the conditional one, whose maps of the subsample start at zero,
    gives the source's logits at the other pixels); it then trains."""
    tiny = ["--arch", "row_lstm"] + TINY[2:]
    train.main(tiny + paths(tmp_path, "src") + ["--max-steps", "2"])
    src = pixelnet.load_checkpoint(tmp_path / "src" / "m.pt").eval()
    args = ["--arch", "multiscale"] + TINY[2:4] + TINY[10:] + paths(tmp_path, "ms") + [
        "--init-from", str(tmp_path / "src" / "m.pt"), "--up-channels", "3", "--max-steps", "2"]
    trainer = train.Trainer(*train.parse_args(args))
    m = trainer.model.eval()
    assert (m.cfg.base, m.cfg.layers, m.cfg.small_layers, m.cfg.h, m.cfg.small_h,
            m.cfg.up_channels) == ("row_lstm", 1, 1, 4, 4, 3)
    assert_same_weights(m.small.state_dict(), src.state_dict())
    x = load_eval_set("mnist", "test")[:2]
    with torch.no_grad():
        out, full = m(x), src(x)
    rest = torch.ones(28, 28, dtype=torch.bool)
    rest[::2, ::2] = False
    torch.testing.assert_close(out[..., rest], full[..., rest])
    assert trainer.fit()["step"] == 2
    trainer.close()
    with pytest.raises(ValueError, match="drop --h"):
        train.main(args + ["--h", "8"])


def test_small_only_trains_the_small_stack_alone(tmp_path, monkeypatch):
    """--small-only: the small stack trains on the subsamples of the batches; the conditional
    stack and upsampler keep the --init-from weights; the checkpoint is the whole model.
    Without a Multi-Scale source it is refused."""
    tiny = ["--arch", "row_lstm"] + TINY[2:]
    train.main(tiny + paths(tmp_path, "src") + ["--max-steps", "2"])
    ms = ["--arch", "multiscale"] + TINY[2:4] + TINY[10:]
    train.main(ms + paths(tmp_path, "ms") + ["--init-from", str(tmp_path / "src" / "m.pt"),
                                              "--up-channels", "3", "--max-steps", "2"])
    src = pixelnet.load_checkpoint(tmp_path / "ms" / "m.pt")
    seen = []
    step = train.train_step
    monkeypatch.setattr(train, "train_step", lambda net, m, e, o, xb, *a: (seen.append((net, xb)),
                                                                          step(net, m, e, o, xb, *a))[1])
    out = train.main(ms + paths(tmp_path, "small") + [
        "--init-from", str(tmp_path / "ms" / "m.pt"), "--small-only", "--max-steps", "3",
        "--val-every", "3"])
    model = out["model"]
    assert all(net is model.small for net, _ in seen)
    assert [tuple(xb.shape) for _, xb in seen] == [(4, 1, 14, 14)] * 3
    new = pixelnet.load_checkpoint(tmp_path / "small" / "m.pt")
    for name, w in src.state_dict().items():
        same = torch.equal(new.state_dict()[name], w)
        assert same != (name.startswith("small.") and not name.endswith("mask")), name
    log = list(csv.DictReader(open(tmp_path / "small" / "m_log.csv")))
    assert {r["split"] for r in log} == {"train_subsample", "val"}
    # --fresh-small: the small stack from the seed (as a model built from scratch), the rest
    # from the checkpoint
    cfg, run = train.parse_args(ms + paths(tmp_path, "fresh") + [
        "--init-from", str(tmp_path / "ms" / "m.pt"), "--small-only", "--fresh-small"])
    trainer = train.Trainer(cfg, run)
    torch.manual_seed(cfg.seed)
    scratch = pixelnet.build_model(**trainer.model.config).state_dict()
    for name, w in trainer.model.state_dict().items():
        want = scratch[name] if name.startswith("small.") else src.state_dict()[name]
        assert torch.equal(w, want), name
    trainer.close()
    with pytest.raises(ValueError, match="add --small-only"):
        train.main(ms + paths(tmp_path, "x") + ["--fresh-small"])
    with pytest.raises(ValueError, match="needs --arch multiscale and --init-from"):
        train.main(ms + paths(tmp_path, "x") + ["--small-only"])
    with pytest.raises(ValueError, match="is a row_lstm model"):
        train.main(ms + paths(tmp_path, "x") + ["--small-only", "--init-from",
                                                 str(tmp_path / "src" / "m.pt")])


def test_ddp_agrees_on_stopping_every_few_steps_only(monkeypatch):
    """The stop flag costs an all_reduce every STOP_SYNC_EVERY steps, not every step."""
    calls = []
    monkeypatch.setattr(train, "all_sum", lambda *v, device: calls.append(v) or list(v))
    expired = time.monotonic() - 10
    assert train.should_stop(7, expired, 1.0, world=1, device="cpu") and not calls
    every = train.STOP_SYNC_EVERY
    stops = [train.should_stop(s, expired, 1.0, world=2, device="cpu") for s in range(1, 2 * every + 1)]
    assert [s for s, stop in zip(range(1, 2 * every + 1), stops) if stop] == [every, 2 * every]
    assert len(calls) == 2
    assert not train.should_stop(every, time.monotonic(), 1e6, world=2, device="cpu")


def test_dataset_nll_restores_train_mode_after_a_failure():
    model = pixelnet.build_model("pixelcnn", layers=1, h=4, out_h=8).train()
    bad = torch.full((2, 1, 28, 28), 7)                         # levels are 0 and 1
    with pytest.raises(ValueError):
        evaluate.dataset_nll(model, bad)
    assert model.training
    evaluate.dataset_nll(model, torch.zeros(2, 1, 28, 28, dtype=torch.long))
    assert model.training


def test_class_conditional_training_evaluation_and_publishing(tmp_path):
    """--init-from an unconditional model plus --classes: it starts as that model (class
    vectors at zero), trains on labels with some dropped, records class_names, logs the NLL
    given the class; evaluate and publish measure both NLLs and draw one row per class."""
    train.main(TINY + paths(tmp_path, "src") + ["--max-steps", "4"])
    src = tmp_path / "src" / "m.pt"
    args = TINY[:4] + TINY[10:] + paths(tmp_path, "cond") + [
        "--init-from", str(src), "--classes", "10", "--max-steps", "6", "--val-every", "6",
        "--warmup", "3"]
    trainer = train.Trainer(*train.parse_args(args))
    x = load_eval_set("mnist", "val")[:8]
    with torch.no_grad():
        torch.testing.assert_close(pixelnet.nll(trainer.model, x),
                                   pixelnet.nll(pixelnet.load_checkpoint(src), x))
    assert len(trainer.data.train_y) == len(trainer.data.train) == 64
    trainer.fit()
    trainer.close()
    out = tmp_path / "cond" / "m.pt"
    model = pixelnet.load_checkpoint(out)
    assert model.cfg.classes == 10 and model.metadata["class_names"][7] == "7"
    assert model.metadata["val_nll_given_class"] < float("inf")
    splits = [r["split"] for r in csv.DictReader(open(tmp_path / "cond" / "m_log.csv"))]
    assert "val_given_class" in splits
    # dropped labels: a fixed share, reproducible per step
    y = torch.arange(10).repeat(100)
    d = train.drop_labels(y, 0.2, 0, 5)
    assert torch.equal(d, train.drop_labels(y, 0.2, 0, 5))
    assert 0.1 < (d == pixelnet.NO_CLASS).float().mean() < 0.3
    with pytest.raises(ValueError, match="mnist has 10 classes"):
        train.main(TINY + paths(tmp_path, "bad") + ["--classes", "3"])
    # evaluate: both NLLs; publish: both in the manifest, a row of samples per class
    r = evaluate.evaluate(out, limit=16)
    labels = pixelnet.data.load_labels("mnist", "test")[:16]
    with torch.no_grad():
        want = pixelnet.nll(model, load_eval_set("mnist", "test")[:16], labels).mean().item()
    assert r["nats_given_class"] == pytest.approx(want, rel=1e-5)
    folder = tmp_path / "pub"
    folder.mkdir()
    (folder / "mnist_pixelcnn.pt").write_bytes(out.read_bytes())
    (e,) = publish.main(["--dir", str(folder), "--samples", "40", "--limit", "16"])
    assert e["test_nll_given_class"] == pytest.approx(want, rel=1e-5)
    assert e["class_names"] == [str(k) for k in range(10)]
    rec = e["recognisable"]
    assert 0 <= rec["conditional_accuracy"] <= 1 and 0 <= rec["free_confident"] <= 1
    from PIL import Image
    grid = Image.open(folder / "mnist_pixelcnn_samples.png")
    assert grid.size[1] > grid.size[0]                       # 10 rows of 4
    assert 0 <= rec["guided_accuracy"] <= 1 and e["samples_guided"] == "mnist_pixelcnn_samples_guided.png"
    assert Image.open(folder / e["samples_guided"]).size == grid.size
    assert "guided (x2)" in (folder / "README.md").read_text()
    # --only measures one file; the others' entries come from what they store
    (folder / "mnist_row_lstm.pt").write_bytes((tmp_path / "src" / "m.pt").read_bytes())
    stamp = (folder / "mnist_pixelcnn_samples.png").stat().st_mtime_ns
    a, b = publish.main(["--dir", str(folder), "--samples", "4", "--limit", "16",
                         "--only", "mnist_row_lstm.pt"])
    assert a["file"] == "mnist_pixelcnn.pt" and a["test_nll_given_class"] == e["test_nll_given_class"]
    assert (folder / "mnist_pixelcnn_samples.png").stat().st_mtime_ns == stamp
    assert b["test_nll"] is not None and (folder / "mnist_row_lstm_samples.png").exists()


def test_fewer_levels_quantize_the_data_and_regroup_a_warm_start(tmp_path):
    """--levels 8 on an 8-bit dataset: the images are quantized into 8 equal bins, and
    --init-from a 256-level model starts with each new bin's logit the mean of its 32 source
    logits (the last layer is linear); evaluate measures on quantized test images."""
    tiny = ["--arch", "pixelcnn", "--dataset", "fashion", "--layers", "1", "--h", "4",
            "--out-h", "8", "--max-train-images", "32", "--max-val-images", "8",
            "--batch-size", "4", "--threads", "1"]
    train.main(tiny + paths(tmp_path, "src") + ["--max-steps", "2"])
    src = pixelnet.load_checkpoint(tmp_path / "src" / "m.pt")
    args = tiny[:4] + tiny[10:] + paths(tmp_path, "q") + [
        "--init-from", str(tmp_path / "src" / "m.pt"), "--levels", "8", "--max-steps", "2"]
    trainer = train.Trainer(*train.parse_args(args))
    assert trainer.model.cfg.levels == 8
    assert int(trainer.data.train.max()) < 8 and int(trainer.data.val.max()) < 8
    # an all-black image is the same input to both (level 0 -> -1), so the logits compare
    x0 = torch.zeros(1, 1, 28, 28, dtype=torch.long)
    with torch.no_grad():
        torch.testing.assert_close(trainer.model(x0),                 # (1, 8, C, H, W)
                                   src(x0).view(1, 8, 32, 1, 28, 28).mean(2))
    trainer.fit()
    trainer.close()
    out = tmp_path / "q" / "m.pt"
    r = evaluate.evaluate(out, limit=4)
    q = pixelnet.data.quantize(load_eval_set("fashion", "test")[:4], 8)
    with torch.no_grad():
        assert r["nats"] == pytest.approx(pixelnet.nll(pixelnet.load_checkpoint(out), q)
                                          .mean().item(), rel=1e-5)
    assert "quantized to 8 levels" in r["split_description"]
    with pytest.raises(ValueError, match="binarized"):
        train.main(TINY + paths(tmp_path, "bad") + ["--levels", "4"])
    with pytest.raises(ValueError, match="allows 2 to 256"):
        train.main(tiny + paths(tmp_path, "bad") + ["--levels", "300"])


def test_balance_draws_every_class_equally_often():
    """--balance: an epoch's images are drawn with every class equally likely (the same
    draw for a resumed run), instead of each image once; it needs a class-conditional model."""
    y = torch.cat([torch.zeros(90, dtype=torch.long), torch.ones(10, dtype=torch.long)])
    data = train.Data(torch.zeros(100, 1, 2, 2, dtype=torch.uint8), torch.zeros(1, 1, 2, 2),
                      {}, train_y=y)
    cfg = train.TrainConfig(dataset="fashion", balance=True, hparams={"classes": 10})
    sampler = train.DistributedSampler(range(100), 1, 0, shuffle=True, seed=0, drop_last=True)
    shares = []
    for epoch in range(20):
        _, idx = train.epoch_batches(sampler, data, cfg, epoch, 25, 4)
        shares.append(y[idx.flatten()].float().mean().item())
    assert 0.4 < sum(shares) / len(shares) < 0.6                   # class 1 is 10% of images
    _, again = train.epoch_batches(sampler, data, cfg, 3, 25, 4)
    assert torch.equal(again, train.epoch_batches(sampler, data, cfg, 3, 25, 4)[1])
    plain = train.TrainConfig(dataset="fashion", hparams={"classes": 10})
    _, once = train.epoch_batches(sampler, data, plain, 0, 25, 4)
    assert sorted(once.flatten().tolist()) == list(range(100))
    with pytest.raises(ValueError, match="needs --classes"):
        train.main(TINY + ["--balance"])


def test_balance_power_draws_classes_by_a_power_of_their_size():
    """--balance-power P draws class k in proportion to count_k^(1-P): at 0.5 a 10% class is
    drawn sqrt(10) / (sqrt(90) + sqrt(10)) = 25% of the time; a bad power or one without
    --balance is refused."""
    y = torch.cat([torch.zeros(90, dtype=torch.long), torch.ones(10, dtype=torch.long)])
    data = train.Data(torch.zeros(100, 1, 2, 2, dtype=torch.uint8), torch.zeros(1, 1, 2, 2),
                      {}, train_y=y)
    sampler = train.DistributedSampler(range(100), 1, 0, shuffle=True, seed=0, drop_last=True)
    shares = {}
    for power in (1.0, 0.5):
        cfg = train.TrainConfig(dataset="fashion", balance=True, balance_power=power,
                                hparams={"classes": 10})
        drawn = torch.cat([train.epoch_batches(sampler, data, cfg, e, 25, 4)[1].flatten()
                           for e in range(40)])
        shares[power] = y[drawn].float().mean().item()
    assert 0.45 < shares[1.0] < 0.55
    assert 0.21 < shares[0.5] < 0.29
    with pytest.raises(ValueError, match="must be in"):
        train.main(TINY + ["--classes", "10", "--balance", "--balance-power", "0"])
    with pytest.raises(ValueError, match="add --balance"):
        train.main(TINY + ["--classes", "10", "--balance-power", "0.5"])


def test_completion_figure_keeps_the_top_halves(tmp_path):
    """training/completions.py: rows of test images, their top halves (bottom hidden), and a
    completion per seed that keeps each image's top half; a coarse model is shown in 8-bit."""
    from PIL import Image
    from training import completions
    torch.manual_seed(0)
    model = pixelnet.build_model("pixelcnn", channels=3, levels=8, height=32, width=32,
                                 layers=1, h=4, out_h=8)
    path = tmp_path / "emoji_pixelcnn.pt"
    pixelnet.save_checkpoint(model, path, dataset="emoji", data_source="offline")
    model = pixelnet.load_checkpoint(path)
    img = completions.figure(model, n=3, seeds=(0,), scale=1)         # (3 rows * 3, 3, 32, 32)
    assert img.shape == (9, 3, 32, 32)
    originals, tops, done = img[:3], img[3:6], img[6:]
    assert torch.equal(done[:, :, :16], originals[:, :, :16])
    assert bool((tops[:, :, 16:] == completions.HIDDEN).all())
    assert set((originals * 255).round().unique().tolist()) <= set(
        pixelnet.data.dequantize(torch.arange(8), 8).tolist())
    out = completions.main([str(path), "--out", str(tmp_path / "c.png"), "--n", "2",
                            "--seeds", "0", "1"])
    assert Image.open(out).size[1] > Image.open(out).size[0]          # 4 rows of 2
    with pytest.raises(ValueError, match="n must be in"):
        completions.pick(0, 10)
    with pytest.raises(ValueError, match="needs a class-conditional"):
        completions.figure(model, n=2, seeds=(0,), given_class=True)
    with pytest.raises(ValueError, match="this is a pixelcnn model"):
        completions.figure(model, n=2, seeds=(0,), known_subsample=True)


def test_completions_given_the_subsample_draw_only_the_conditional_stack(tmp_path):
    """--known-subsample: a Multi-Scale model's completions keep each test image's subsample
    in the bottom half too (what its small stack would draw), and the second row shows it."""
    from training import completions
    torch.manual_seed(0)
    model = pixelnet.build_model("multiscale", channels=3, levels=8, height=32, width=32,
                                 layers=1, h=4, out_h=8, small_layers=1, small_h=4,
                                 up_channels=3)
    path = tmp_path / "emoji_multiscale.pt"
    pixelnet.save_checkpoint(model, path, dataset="emoji", data_source="offline")
    model = pixelnet.load_checkpoint(path)
    img = completions.figure(model, n=2, seeds=(0,), scale=1, known_subsample=True)
    originals, given, done = img[:2], img[2:4], img[4:]
    grid = torch.zeros(32, 32, dtype=torch.bool)
    grid[::2, ::2] = True
    kept = grid.clone()
    kept[:16] = True
    assert torch.equal(done[..., kept], originals[..., kept])
    assert not torch.equal(done[..., ~kept], originals[..., ~kept])
    assert torch.equal(given[..., kept], originals[..., kept])
    assert bool((given[..., ~kept] == completions.HIDDEN).all())
    plain = completions.figure(model, n=2, seeds=(0,), scale=1)
    bottom_grid = grid.clone()
    bottom_grid[:16] = False
    assert not torch.equal(plain[4:][..., bottom_grid], originals[..., bottom_grid])


def test_completions_given_the_class_are_told_each_images_class(tmp_path, monkeypatch):
    """--given-class: each test image is completed given its own test label (the same
    images as a run told those classes one by one), and the top halves stay kept."""
    from training import completions
    torch.manual_seed(0)
    model = pixelnet.build_model("pixelcnn", channels=3, levels=8, height=32, width=32,
                                 layers=1, h=4, out_h=8, classes=10)
    with torch.no_grad():                   # class vectors start at zero: make them matter
        model.layers[0].label.weight.normal_(0, 3)
    path = tmp_path / "emoji_pixelcnn.pt"
    pixelnet.save_checkpoint(model, path, dataset="emoji", data_source="offline")
    model = pixelnet.load_checkpoint(path)
    calls = []
    real = pixelnet.sample
    monkeypatch.setattr(pixelnet, "sample", lambda *a, **k: calls.append(k) or real(*a, **k))
    img = completions.figure(model, n=3, seeds=(0,), scale=1, given_class=True, guidance=2.0)
    labels = pixelnet.data.load_labels("emoji", "test")
    chosen = completions.pick(3, len(labels))
    assert calls[0]["y"].tolist() == labels[chosen].tolist() and calls[0]["guidance"] == 2.0
    assert torch.equal(img[6:, :, :16], img[:3, :, :16])
    free = completions.figure(model, n=3, seeds=(0,), scale=1)
    assert calls[1]["y"] is None
    assert not torch.equal(free[6:], img[6:])          # the classes changed the completions


def test_completions_with_a_tail_cut(tmp_path):
    """--min-p reaches the sampler: the completions are pixelnet.sample's with that cut, they
    keep the top halves, and a bad cut is refused with the sampler's message."""
    from training import completions
    torch.manual_seed(0)
    model = pixelnet.build_model("pixelcnn", channels=3, levels=8, height=32, width=32,
                                 layers=1, h=4, out_h=8)
    x = pixelnet.data.load_eval_set("emoji", "test", levels=8)[:2]
    cut = completions.complete(model, x, [0], min_p=0.9)[0]
    _, mask = pixelnet.sampling.completion_inputs("top_half", 3, 32, 32, x[0])
    assert torch.equal(cut, pixelnet.sample(model, 2, known=x, mask=mask, seed=0, min_p=0.9))
    assert not torch.equal(cut, completions.complete(model, x, [0])[0])
    assert torch.equal(cut[:, :, :16], x[:, :, :16])
    path = tmp_path / "emoji_pixelcnn.pt"
    pixelnet.save_checkpoint(model, path, dataset="emoji", data_source="offline")
    assert completions.main([str(path), "--out", str(tmp_path / "c.png"), "--n", "2",
                             "--seeds", "0", "--min-p", "0.9"]).is_file()
    with pytest.raises(ValueError, match="min_p"):
        completions.main([str(path), "--out", str(tmp_path / "d.png"), "--n", "2",
                          "--seeds", "0", "--min-p", "2"])


def test_publish_measures_again_what_an_older_classifier_judged(tiny_checkpoint, monkeypatch):
    """--skip-eval keeps stored recognisability figures only if the current classifier made
    them (same classes and test accuracy); figures of an older one are measured again."""
    model, path = tiny_checkpoint
    calls = []

    def fake(m, clf):
        calls.append(clf)
        return dict(classifier_test_accuracy=clf.metadata.get("test_accuracy"),
                    free_classes={n: 0.1 for n in clf.class_names}, free_confident=0.5,
                    real_confident=0.9)
    monkeypatch.setattr(publish, "recognisability", fake)
    args = ["--dir", str(path.parent), "--samples", "0", "--limit", "8", "--skip-eval"]
    publish.main(args)
    assert len(calls) == 1
    publish.main(args)                                   # stored by the current classifier
    assert len(calls) == 1
    meta = pixelnet.read_checkpoint(path)
    stale = dict(meta.pop("recognisable"), classifier_test_accuracy=0.123)
    pixelnet.save_checkpoint(pixelnet.load_checkpoint(path), path,
                             **{k: v for k, v in meta.items()
                                if k not in ("format", "version", "arch", "config", "model")},
                             recognisable=stale)
    publish.main(args)
    assert len(calls) == 2


def test_twemoji_doubles_the_emoji_training_images():
    """--twemoji: the training split's emoji twice (Noto, then Twitter's drawings), with their
    labels; validation stays Noto's; other datasets refuse it."""
    cfg, run = train.parse_args(["--dataset", "emoji", "--arch", "pixelcnn", "--classes", "10",
                                 "--twemoji", "--max-val-images", "8"])
    data = train.load_data(cfg, run)
    noto = pixelnet.data.load_dataset("emoji", "train")
    labels = pixelnet.data.load_labels("emoji", "train")
    assert torch.equal(data.train[:len(noto)].long(), noto)
    assert len(data.train) == 2 * len(noto)
    assert not torch.equal(data.train[len(noto):], data.train[:len(noto)])
    assert torch.equal(data.train_y, torch.cat([labels, labels]))
    assert len(data.val) == 8 and "Twemoji" in data.splits["train"]
    with pytest.raises(ValueError, match="--twemoji.*needs --dataset emoji"):
        train.main(TINY + ["--twemoji"])


def test_flip_mirrors_at_random_only_the_classes_that_stay_of_their_kind(monkeypatch, tmp_path):
    """--flip: a fresh half of each batch mirrored left to right, never digits, emoji flags or
    symbols; the same images again on a resume (a draw per step)."""
    ok = pixelnet.data.mirrorable("emoji")
    names = pixelnet.data.class_names("emoji")
    assert [n for n, m in zip(names, ok.tolist()) if not m] == ["Symbols", "Flags"]
    assert pixelnet.data.mirrorable("fashion").all() and not pixelnet.data.mirrorable("mnist").any()

    x = torch.randint(0, 256, (64, 3, 4, 4))
    allowed = torch.arange(64) % 4 != 0
    y = train.mirror(x, allowed, seed=0, step=5)
    flipped = (y != x).flatten(1).any(1)
    assert torch.equal(y[flipped], x[flipped].flip(-1)) and not flipped[~allowed].any()
    assert 10 < int(flipped.sum()) < 38                              # about half of 48
    assert torch.equal(train.mirror(x, allowed, 0, 5), y)
    assert not torch.equal(train.mirror(x, allowed, 0, 6), y)

    cfg, run = train.parse_args(["--dataset", "emoji", "--arch", "pixelcnn", "--flip",
                                 "--max-val-images", "8"])
    data = train.load_data(cfg, run)
    labels = pixelnet.data.load_labels("emoji", "train")
    assert data.train_y is None and torch.equal(data.mirrorable, ok[labels])

    seen = []                                                       # what the model trains on
    step = train.train_step
    monkeypatch.setattr(train, "train_step", lambda net, m, e, o, xb, *a: (seen.append(xb),
                                                                          step(net, m, e, o, xb, *a))[1])
    fashion = [a if a != "mnist" else "fashion" for a in TINY]
    train.main(fashion + ["--flip", "--max-steps", "8", "--out", str(tmp_path / "f.pt"),
                          "--run-dir", str(tmp_path / "run")])
    real = pixelnet.data.load_dataset("fashion", "train")[:64]
    as_is = {bytes(i.byte().numpy()) for i in real}
    mirrored = {bytes(i.flip(-1).byte().numpy()) for i in real}
    got = [bytes(i.byte().cpu().numpy()) for b in seen for i in b]
    assert len(got) == 32 and all(g in as_is or g in mirrored for g in got)
    assert 4 < sum(g not in as_is for g in got) < 28
    with pytest.raises(ValueError, match="--flip: no class of mnist"):
        train.main(TINY + ["--flip"])


def test_shift_moves_each_image_by_at_most_n_pixels_repeating_its_border(monkeypatch, tmp_path):
    """--shift N: each training image moved by its own (dy, dx) in [-N, N]², its border
    repeated into the uncovered edge (as a padded, cropped image); the same moves again on a
    resume (a draw per step); the run's checkpoint says so."""
    x = torch.randint(0, 256, (64, 3, 6, 6))
    y = train.shift(x, 1, seed=0, step=5)
    padded = torch.nn.functional.pad(x.float(), (1, 1, 1, 1), mode="replicate")
    moves = []
    for b in range(64):
        found = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                 if torch.equal(y[b].float(), padded[b, :, 1 - dy:7 - dy, 1 - dx:7 - dx])]
        assert found, f"image {b} is not x moved by at most one pixel"
        moves.append(found[0])
    assert len(set(moves)) >= 5 and moves.count((0, 0)) < 32         # 9 moves, about equally
    assert torch.equal(train.shift(x, 1, 0, 5), y) and not torch.equal(train.shift(x, 1, 0, 6), y)

    seen = []
    step = train.train_step
    monkeypatch.setattr(train, "train_step", lambda net, m, e, o, xb, *a: (seen.append(xb),
                                                                          step(net, m, e, o, xb, *a))[1])
    fashion = [a if a != "mnist" else "fashion" for a in TINY]
    out = tmp_path / "f.pt"
    train.main(fashion + ["--shift", "2", "--max-steps", "8", "--out", str(out),
                          "--run-dir", str(tmp_path / "run")])
    as_is = {bytes(i.byte().numpy()) for i in pixelnet.data.load_dataset("fashion", "train")[:64]}
    got = [bytes(i.byte().cpu().numpy()) for b in seen for i in b]
    assert len(got) == 32 and 16 < sum(g not in as_is for g in got)  # 24 of 25 moves move
    meta = pixelnet.read_checkpoint(out)
    assert meta["train_config"]["shift"] == 2 and "by up to 2 pixels" in meta["train_split"]
    with pytest.raises(ValueError, match="--shift 14: mnist images may move 0 to 13"):
        train.main(TINY + ["--shift", "14"])
