"""The app's batched sampler (demo/batcher.py): runs of one model stepped together give each
run exactly its image alone; one run's Stop leaves the others going."""
import threading
import time

import numpy as np
import pytest
import torch

import pixelnet
from conftest import tiny_model
from demo import batcher, inputs, registry, runs
from demo import generate_tab as gen
from demo import imaging as im


def alone(m, job: batcher.Job) -> np.ndarray:
    """The job's image sampled by itself with pixelnet.sample."""
    return pixelnet.sample(m, 1, torch.from_numpy(job.known)[None], torch.from_numpy(job.gen)[None],
                           job.temperature, job.seed)[0].numpy()


def varied_jobs(m, n: int) -> list[batcher.Job]:
    """``n`` runs with their own canvas, mask, temperature and seed."""
    C, H, W = m.cfg.channels, m.cfg.height, m.cfg.width
    rng = np.random.default_rng(0)
    jobs = []
    for k in range(n):
        known = rng.integers(0, m.cfg.levels, (C, H, W))
        mask = [np.ones((H, W), bool), np.arange(H)[:, None] >= H // 2 + np.zeros(W, int),
                rng.random((H, W)) < 0.5][k % 3]
        jobs.append(batcher.Job(m, known, mask, [1.0, 0.6, 0.0, 1.8][k % 4], 1000 * k + 7))
    return jobs


@pytest.mark.parametrize("channels,levels", [(1, 2), (3, 256)])
def test_batched_runs_give_the_images_of_runs_alone(arch, channels, levels):
    m = tiny_model(arch, channels=channels, levels=levels).eval()
    jobs = varied_jobs(m, 16)
    batcher.submit(jobs)
    results = [j.result(timeout=120) for j in jobs]
    assert batcher.sampler(m).batches == [16]                       # one batch of all 16
    for j, r in zip(jobs, results):
        assert (r["image"] == alone(m, j)).all()
        assert (r["image"][~j.gen] == j.known[~j.gen]).all()        # kept pixels kept
        assert r["batch_size"] == 16
        x = torch.from_numpy(r["image"])[None]
        with torch.no_grad():
            assert r["nll"] == pytest.approx(float(pixelnet.nll(m, x)[0]), rel=1e-4)
        assert r["entropy"].shape == (m.cfg.height, m.cfg.width) and (r["entropy"] >= 0).all()
        p = r["probs"]                                              # every sub-pixel's softmax
        assert p.shape == (channels, m.cfg.height, m.cfg.width, levels)
        assert np.allclose(p.sum(-1), 1, atol=1e-4)
        if j.temperature == 0:
            assert set(np.unique(p)) <= {0.0, 1.0}


def test_runs_arriving_during_a_batch_join_the_next_one():
    m = pixelnet.build_model("pixelcnn").eval()                   # 28x28: a batch takes a while
    first = batcher.Job(m, np.zeros((1, 28, 28), np.int64), np.ones((28, 28), bool), 1.0, 1)
    batcher.submit(first)
    first.wait(0, timeout=60)                                       # it is being sampled
    assert first.started() and not first.scored()
    late = varied_jobs(m, 3)
    batcher.submit(late)
    for j in [first, *late]:
        j.result(timeout=120)
    assert batcher.sampler(m).batches == [1, 3]
    assert late[0].batch is late[2].batch is not first.batch
    for j in late:
        assert (j.result()["image"] == alone(m, j)).all()


def test_one_runs_stop_leaves_the_others_in_its_batch_going():
    m = pixelnet.build_model("pixelcnn").eval()
    jobs = varied_jobs(m, 4)
    batcher.submit(jobs)
    sampler = batcher.sampler(m)        # held: it may end (idle) while the test samples alone
    jobs[1].wait(0, timeout=60)                                     # sampling has started
    jobs[1].cancel()
    assert not jobs[1].scored()
    for j in (jobs[0], jobs[2], jobs[3]):
        assert (j.result(timeout=120)["image"] == alone(m, j)).all()
    assert jobs[0].batch is jobs[1].batch and sampler.batches == [4]
    with pytest.raises(RuntimeError, match="stopped"):
        jobs[1].result()


def test_a_batch_whose_runs_all_stop_ends_early():
    m = pixelnet.build_model("pixelcnn").eval()
    jobs = varied_jobs(m, 2)
    batcher.submit(jobs)
    jobs[0].wait(0, timeout=60)
    for j in jobs:
        j.cancel()
    seen, deadline = -1, time.time() + 30
    while jobs[0].available() != seen and time.time() < deadline:     # until it stops moving
        seen = jobs[0].available()
        time.sleep(0.3)
    assert jobs[0].available() < jobs[0].total and not jobs[0].scored()
    assert all(j.available() < j.total for j in jobs)


def test_an_invalid_seed_is_refused_before_the_run():
    m = tiny_model("pixelcnn")
    for seed in (-1, 2 ** 63):
        with pytest.raises(ValueError, match="seed"):
            batcher.Job(m, np.zeros((1, 6, 6), np.int64), np.ones((6, 6), bool), 1.0, seed)


def test_app_streams_in_one_batch_and_a_closed_stream_leaves_the_other_going(monkeypatch):
    """Two users' /generate on the same model: closing one stream (Stop, a closed page)
    cancels only its run; the other finishes with the image it gets alone."""
    m = pixelnet.build_model("pixelcnn").eval()
    m.metadata = {"dataset": "mnist", "untrained": True}
    monkeypatch.setattr(registry, "get_model", lambda ds, arch: m)
    canvas, mask = inputs.apply_preset("Blank", "mnist")
    a = gen.generate(canvas, mask, "mnist", "pixelcnn", 1.0, 11, "Max")
    b = gen.generate(canvas, mask, "mnist", "pixelcnn", 1.0, 12, "Max")
    next(a), next(b)                                                # both submitted
    sampler = batcher.sampler(m)        # held: it may end (idle) while the test samples alone
    next(a)                                                         # a's first frame: sampling
    a.close()
    outs = list(b)
    assert outs[-1][2].startswith("Done")
    run = outs[-1][-1]
    job = batcher.Job(m, np.zeros((1, 28, 28), np.int64), np.ones((28, 28), bool), 1.0, 12)
    assert (run.image == alone(m, job)).all()
    assert sampler.batches[0] == 2                                # they were batched together


def test_frame_rate_is_shared_among_viewers_by_the_cost_of_a_frame():
    v = runs.Viewers(cost=0.002)
    assert v.fps() == min(runs.MAX_FPS, runs.FRAME_CPU / (0.002 + runs.UPDATE_S))
    with v.watching(), v.watching(), v.watching():
        assert v.fps() == pytest.approx(min(runs.MAX_FPS, runs.FRAME_CPU / (3 * (0.002 + runs.UPDATE_S))))
        for _ in range(40):                                         # frames measured dearer
            v.spent(0.05, 1)
        assert v.cost > 0.03 and v.fps() < runs.FRAME_CPU / (3 * 0.03)
    ctx = [v.watching() for _ in range(200)]
    for c in ctx:
        c.__enter__()
    assert v.fps() == runs.MIN_FPS and v.chart_every() > 1
    for c in ctx:
        c.__exit__(None, None, None)
    assert v.n == 0


def test_frames_are_paced_by_the_animation_speed(monkeypatch):
    """Sampled ahead, revealed at the speed: 10 pixels at 20 pixels/s take half a second."""
    m = tiny_model("pixelcnn", height=28, width=28).eval()
    m.metadata = {"dataset": "mnist", "untrained": True}
    monkeypatch.setattr(registry, "get_model", lambda ds, arch: m)
    x = np.zeros((1, 28, 28), np.int64)
    mask = im.mask_editor_value(x, 2, np.pad(np.ones((1, 10), bool), ((0, 27), (0, 18))))
    canvas = im.editor_value(x, 2)
    t = time.perf_counter()
    outs = list(gen.generate(canvas, mask, "mnist", "pixelcnn", 1, 0, "Slow"))
    assert time.perf_counter() - t >= 10 / inputs.SPEEDS["Slow"] - 0.05
    progress = [o[2] for o in outs[1:-1]]
    assert len(progress) >= 3                                       # frames along the way
    counts = [int(p.split()[1]) for p in progress]
    assert counts == sorted(counts) and counts[-1] <= 10


def test_a_failing_batch_is_an_error_for_each_of_its_runs(monkeypatch):
    real = pixelnet.sample_stream

    def broken(*args, **kwargs):
        for k, ev in enumerate(real(*args, **kwargs)):
            if k == 5:
                raise RuntimeError("out of memory")
            yield ev

    monkeypatch.setattr(batcher.pixelnet, "sample_stream", broken)
    m = tiny_model("pixelcnn", height=28, width=28).eval()
    m.metadata = {"dataset": "mnist", "untrained": True}
    jobs = varied_jobs(m, 2)
    batcher.submit(jobs)
    for j in jobs:
        with pytest.raises(RuntimeError, match="out of memory"):
            j.result(timeout=60)
    monkeypatch.setattr(registry, "get_model", lambda ds, arch: m)
    with pytest.raises(gen.gr.Error, match="sampling failed"):
        list(gen.generate(None, None, "mnist", "pixelcnn", 1.0, 0, "Max"))


def test_a_class_run_is_scored_given_its_class():
    """The NLL a run reports is that of its image given its own class (none: unconditional),
    also in a batch that mixes classes."""
    torch.manual_seed(0)
    m = tiny_model("pixelcnn", classes=3).eval()
    with torch.no_grad():                                   # class vectors that matter
        for k, v in m.state_dict().items():
            if k.endswith("label.weight"):
                v.copy_(torch.randn_like(v))
    jobs = [batcher.Job(m, np.zeros((1, m.cfg.height, m.cfg.width), np.int64), np.ones(
        (m.cfg.height, m.cfg.width), bool), 1.0, 5 + k, y) for k, y in enumerate([0, 2, None])]
    batcher.submit(jobs)
    for j in jobs:
        r = j.result(timeout=120)
        x = torch.from_numpy(r["image"])[None]
        y = None if j.y is None else torch.tensor([j.y])
        with torch.no_grad():
            assert r["nll"] == pytest.approx(float(pixelnet.nll(m, x, y)[0]), rel=1e-4)
    with torch.no_grad():                                   # the class changes the score
        x = torch.from_numpy(jobs[0].result()["image"])[None]
        assert float(pixelnet.nll(m, x, torch.tensor([0]))[0]) != pytest.approx(
            float(pixelnet.nll(m, x)[0]), rel=1e-4)
