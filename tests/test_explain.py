"""The Explain views' data: receptive fields against the causality facts, mask grids against
the mask A/B rules, the skew frames, NLL maps and the generation GIF. Tiny models throughout."""
import functools

import numpy as np
import pytest
import torch
from PIL import Image

import pixelnet
from pixelnet import explain as ex
from pixelnet.layers import make_mask
from conftest import tiny_model
from demo import explain_figures as fig
from demo import explain_tab as et
from demo import imaging
from demo.registry import architectures


def earlier_pixels(H, W, i, j):
    e = torch.zeros(H, W, dtype=torch.bool)
    e[:i] = True
    e[i, :j] = True
    return e


# ----------------------------------------------------------------------------- receptive field

@pytest.mark.parametrize("arch", ["pixelcnn", "row_lstm", "diagonal_bilstm", "multiscale"])
@pytest.mark.parametrize("channels,levels", [(1, 2), (3, 256)])
def test_context_report_never_sees_the_future(arch, channels, levels):
    m = tiny_model(arch, channels=channels, levels=levels)
    rank = ex.generation_rank(m)
    for (i, j) in [(0, 0), (2, 3), (5, 5)]:
        for c in range(channels):
            rep = ex.context_report(m, i, j, c)
            assert torch.equal(rep.future, rank >= rank[c, i, j])
            assert rep.leaks == 0 and (rep.rf[rep.future] == 0).all()
            assert rep.n_earlier == int(rank[c, i, j])
            assert rep.n_seen + int(rep.missed.sum()) == rep.n_earlier
    # colour order inside a pixel: G at (2, 3) may see R there, R may not see G
    if channels == 3 and arch != "multiscale":
        assert ex.context_report(m, 2, 3, 1).rf[0, 2, 3] > 0
        assert ex.context_report(m, 2, 3, 0).rf[1, 2, 3] == 0


def test_pixelcnn_blind_spot_in_the_report():
    m = tiny_model("pixelcnn", height=8, width=16, layers=6)
    rep = ex.context_report(m, 5, 3)
    missed = set(rep.missed_pixels())
    assert {(4, j) for j in range(7, 16)} <= missed          # beyond the 7x7 cone, row above
    assert {(3, j) for j in range(8, 16)} <= missed
    assert not any(p[0] == 4 and p[1] < 7 for p in missed)   # the cone itself is seen
    assert "blind spot" in fig.context_summary(rep, 16)


def test_row_lstm_triangle_in_the_report():
    m = tiny_model("row_lstm", height=8, width=16, layers=1)
    rep = ex.context_report(m, 6, 15)
    seen = (rep.rf[0] > 0) & earlier_pixels(8, 16, 6, 15)
    assert not seen[6, :8].any() and seen[6, 11:15].all()
    per_row = seen[:6].sum(1)
    assert (per_row[:-1] >= per_row[1:]).all() and per_row[0] > per_row[5]   # widens upwards
    assert rep.missed.any()
    assert "triangle" in fig.context_summary(rep, 16)


@pytest.mark.parametrize("layers", [1, 2])
def test_diagonal_bilstm_full_context_but_one(layers):
    H, W = 8, 10
    m = tiny_model("diagonal_bilstm", height=H, width=W, layers=layers)
    for (i, j) in [(0, 5), (4, 0), (4, 5), (4, 6), (7, 9)]:
        rep = ex.context_report(m, i, j)
        expect = [(i - 1, W - 1)] if i > 0 and j < W - 4 else []
        assert rep.missed_pixels() == expect, (i, j)
        summary = fig.context_summary(rep, W)
        assert ("last pixel of the previous row" in summary) == bool(expect)
        if not expect:
            assert "whole context" in summary


def test_log_scale():
    rf = torch.tensor([[0.0, 1e-9, 1e-4], [1e-2, 1.0, 2.0]])
    t = ex.log_scale(rf, decades=6)
    assert t[0, 0] == 0 and t[0, 1] == 0          # zero, and more than 6 decades down
    assert t[1, 2] == 1 and 0 < t[0, 2] < t[1, 0] < t[1, 1] < 1
    assert torch.equal(ex.log_scale(torch.zeros(3)), torch.zeros(3, dtype=torch.float64))


def test_receptive_field_rendering_marks_future_unseen_and_target():
    m = tiny_model("pixelcnn", height=8, width=16, layers=2)
    rep = ex.context_report(m, 5, 3)
    im = np.asarray(fig.render_receptive_fields([rep]))
    L = fig.rf_layout(8, 16, 1, 1)
    s = L["s"]

    def cell(i, j, dx=0.5, dy=0.5):
        x, y = L["x0"][0] + int((j + dx) * s), L["top"] + int((i + dy) * s)
        assert fig.rf_pixel_at(L, x, y) == (0, i, j)
        return tuple(im[y, x])

    assert cell(7, 10) in (fig.FUTURE, fig.FUTURE_HATCH)       # a future pixel
    assert cell(4, 12) == fig.UNSEEN                          # in the blind spot
    assert cell(4, 2) not in (fig.FUTURE, fig.FUTURE_HATCH, fig.UNSEEN)
    assert cell(5, 3, dx=0.0) == fig.TARGET                   # the outline's left edge
    assert fig.rf_pixel_at(L, 1, L["top"] + 8 * s + 5) is None


# ----------------------------------------------------------------------------- masks

@pytest.mark.parametrize("kind", ["A", "B"])
@pytest.mark.parametrize("kernel", [7, 3, (1, 3)])
def test_mask_grid_follows_the_rules(kind, kernel):
    g = ex.mask_grid(kind, kernel, channels=3)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    ci, cj = kh // 2, kw // 2
    assert g.shape == (3, 3, kh, kw)
    for a in range(3):
        for b in range(3):
            k = g[a, b]
            assert (k[:ci] == 1).all() and (k[ci, :cj] == 1).all()     # the past: visible
            assert (k[ci, cj + 1:] == 0).all() and (k[ci + 1:] == 0).all()   # the future
            assert k[ci, cj] == (b < a if kind == "A" else b <= a)
    assert fig.centre_summary(ex.mask_grid("A", 7)) == "R sees nothing · G sees R · B sees R, G"
    assert fig.centre_summary(ex.mask_grid("B", 3)) == "R sees R · G sees R, G · B sees R, G, B"


def test_group_mask_reads_the_real_models():
    pc = tiny_model("pixelcnn", channels=3, levels=256)
    assert torch.equal(ex.group_mask(pc.input, 3), ex.mask_grid("A", 7))
    assert torch.equal(ex.group_mask(pc.layers[0].conv2, 3), ex.mask_grid("B", 3))
    row = tiny_model("row_lstm", channels=3, levels=256)      # gates stacked in 4 blocks
    assert torch.equal(ex.group_mask(row.layers[0].i2s, 3), ex.mask_grid("B", (1, 3)))
    diag = tiny_model("diagonal_bilstm", channels=3, levels=256)   # 8 blocks: 2 directions
    assert torch.equal(ex.group_mask(diag.layers[0].i2s, 3), ex.mask_grid("B", 1))
    entries = ex.model_masks(pc)
    assert entries[0][:2] == ("A", (7, 7)) and entries[0][3] == ["input"]
    assert {(t, k) for t, k, _, _ in entries} == {("A", (7, 7)), ("B", (1, 1)), ("B", (3, 3))}
    assert any("layers.conv2" in where for _, _, _, where in entries)
    one = ex.model_masks(tiny_model("row_lstm"))
    assert [(t, k) for t, k, _, _ in one] == [("A", (7, 7)), ("B", (1, 3)), ("B", (1, 1))]
    assert one[0][2][0, 0, 3, 3] == 0 and one[1][2][0, 0, 0, 1] == 1   # grey: A hides centre
    bad = pixelnet.MaskedConv2d(6, 6, 3, "B", channels=3)
    bad.mask[0, 0, 0, 0] = 0                               # one feature breaks the group rule
    with pytest.raises(ValueError, match="different masks"):
        ex.group_mask(bad, 3)


def test_mask_rendering_shows_visible_cells_in_group_colours():
    grid = ex.mask_grid("A", 3)
    im = fig.render_mask("t", grid)
    a = np.asarray(im)
    for colour in fig.GROUP_RGB:          # every input group's colour is drawn somewhere
        assert (a.reshape(-1, 3) == colour).all(1).any()
    grey = np.asarray(fig.render_mask("t", ex.mask_grid("B", 3, channels=1)))
    assert (grey.reshape(-1, 3) == fig.GREY_INK).all(1).any()


# ----------------------------------------------------------------------------- skew

@pytest.mark.parametrize("H,W", [(5, 5), (3, 6), (4, 2)])
def test_skew_frames(H, W):
    frames = ex.skew_frames(H, W)
    by = {f.stage: f for f in frames}
    img = torch.arange(1, H * W + 1).view(H, W)
    assert torch.equal(by["image"].grid, img)
    assert by["skew"].grid.shape == (H, W + H - 1)
    for r in range(H):                                   # row r shifted right by r
        assert torch.equal(by["skew"].grid[r, r: r + W], img[r])
    assert torch.equal(by["unskew"].grid, img)           # round trip, both streams
    assert torch.equal(by["unskew_r"].grid, img)
    assert torch.equal(by["flip"].grid, img.flip(-1))
    assert (by["shift"].grid[0] == 0).all() and torch.equal(by["shift"].grid[1:], img[:-1])
    for direction in ("l2r", "r2l"):
        cols = [f for f in frames if f.stage == f"{direction}_column"]
        assert len(cols) == W + H - 1
        computed = []
        for t, f in enumerate(cols):
            nums = f.grid[f.active]
            assert (nums > 0).all() and f.active[:, t].sum() == len(nums)
            for v in nums.tolist():
                i, j = divmod(v - 1, W)
                jj = j if direction == "l2r" else W - 1 - j
                assert i + jj == t                        # column t = anti-diagonal t
                want = {(i, jj - 1)} if jj > 0 else set()  # left neighbour (in travel order)
                if i > 0:
                    want.add((i - 1, jj))                  # the pixel above
                got = {divmod(int(u) - 1, W) for u in f.grid[f.inputs]}
                got = {(a, b if direction == "l2r" else W - 1 - b) for a, b in got}
                assert want <= got
            assert (f.inputs.nonzero()[:, 1] == t - 1).all()
            assert not (f.done & f.active).any()
            computed += nums.tolist()
        assert sorted(computed) == list(range(1, H * W + 1))   # every pixel exactly once


def test_skew_frames_render_at_one_size():
    images = et.ExplainViews.skew_images(4)
    assert len(images) == len(ex.skew_frames(4))
    assert len({im.size for im in images}) == 1          # an animation that does not jump


# ----------------------------------------------------------------------------- likelihood

def test_nll_heatmap_sums_to_the_nll(arch, data):
    m = tiny_model(arch, **data)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, m.cfg.levels, (3, m.cfg.channels, 6, 6), generator=g)
    out = ex.nll_heatmap(m, x)
    want = pixelnet.nll(m, x).detach().double()
    torch.testing.assert_close(out.nats, want, rtol=1e-5, atol=1e-3)   # float32 sums
    torch.testing.assert_close(out.per_pixel.sum((1, 2)), out.nats)
    torch.testing.assert_close(out.per_subpixel.sum(1), out.per_pixel)
    torch.testing.assert_close(out.bits_per_dim, pixelnet.bits_per_dim(out.nats, x[0].numel()))
    assert (out.per_pixel >= 0).all()
    one = ex.nll_heatmap(m, x[1])                         # a single (C, H, W) image
    torch.testing.assert_close(one.nats, out.nats[1:2])


SIZES = {"mnist": (1, 2), "fashion": (1, 256), "emoji": (3, 256)}


@functools.lru_cache(maxsize=None)
def tiny_factory(dataset, arch):
    C, L = SIZES[dataset]
    return tiny_model(arch, channels=C, levels=L, height=8, width=8).eval()


@pytest.mark.parametrize("dataset", ["mnist", "emoji"])
def test_likelihood_preset_scores_every_architecture(dataset):
    views = et.ExplainViews(tiny_factory)
    img, table = views.preset(dataset)
    archs = architectures(dataset)
    assert "multiscale" in archs
    C, L = SIZES[dataset]
    presets = et.preset_images(dataset, C, L, 8, 8)
    names = [p[0] for p in presets]
    assert names[1] == "uniform noise" and names[3] == "blank"
    assert names[2].startswith("out of distribution")
    assert len(table) == len(presets) * len(archs)
    for k, (name, x) in enumerate(presets):
        assert x.shape == (C, 8, 8) and 0 <= x.min() and x.max() < L
        for row, a in zip(table[k * len(archs): (k + 1) * len(archs)], archs):
            assert row[0] == name and row[1] == et.LABELS[a]      # no "(untrained)" flag here
            with torch.no_grad():
                want = float(pixelnet.nll(tiny_factory(dataset, a), x[None]))
            assert row[2] == pytest.approx(want, abs=0.01)
    assert len({tuple(x.flatten().tolist()) for _, x in presets}) == 4   # four different images
    assert img.width > 0 and img.height > 0


def test_score_a_drawn_picture():
    views = et.ExplainViews(tiny_factory)
    paper = Image.new("L", (64, 64), 255)               # dark ink on light paper
    paper.paste(0, (20, 20, 44, 44))
    x = views.levels_of("mnist", paper)
    assert x.shape == (1, 8, 8) and x[0, 4, 4] == 1 and x[0, 0, 0] == 0   # inverted
    img, table = views.score("mnist", [("your image", x)])
    assert [r[0] for r in table] == ["your image"] * len(architectures("mnist"))
    assert table[0][3] == pytest.approx(table[0][2] / (64 * np.log(2)), abs=1e-3)


def test_likelihood_classifies_with_class_conditional_models():
    """Bayes' rule over the class likelihoods: a distribution over the checkpoint's class
    names for a conditional model; a note for unconditional ones."""
    names = [f"kind {k}" for k in range(4)]

    def factory(dataset, arch):
        m = tiny_factory(dataset, arch)
        if arch != "pixelcnn":
            return m
        torch.manual_seed(2)
        c = tiny_model(arch, channels=1, levels=2, height=8, width=8, classes=4).eval()
        with torch.no_grad():
            for mod in c.modules():
                if isinstance(mod, torch.nn.Embedding):
                    mod.weight.normal_(0, 2)
        c.metadata = {"class_names": names}
        return c

    views = et.ExplainViews(factory)
    x = torch.randint(0, 2, (2, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    post = views.posteriors("mnist", x)
    assert set(post) == set(architectures("mnist"))
    got_names, probs = post["pixelcnn"]
    assert got_names == names and probs.shape == (2, 4)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-6)
    assert probs.std() > 1e-3                        # the class vectors make a difference
    assert all(post[a] is None for a in post if a != "pixelcnn")
    text = views.classify("mnist", [("a", x[0]), ("b", x[1])])
    best = names[int(probs[0].argmax())]
    assert "Bayes' rule" in text and f"| a | {et.LABELS['pixelcnn']} | **{best}** " in text
    assert "no classes in this checkpoint" in text
    plain = et.ExplainViews(tiny_factory).classify("mnist", [("a", x[0])])
    assert "No MNIST digits model here is class-conditional" in plain
    assert f"| {et.LABELS['pixelcnn']} |" not in plain


def test_untrained_models_are_flagged():
    def factory(dataset, arch):
        m = tiny_factory(dataset, arch)
        m.metadata = {"untrained": True}
        return m
    _, table = et.ExplainViews(factory).preset("fashion")
    assert all("(untrained)" in row[1] for row in table)
    for arch in architectures("fashion"):
        del tiny_factory("fashion", arch).metadata


@functools.lru_cache(maxsize=None)
def coarse_factory(dataset, arch):
    """tiny_factory, but the emoji PixelCNN predicts 8 levels a channel (the data has 256)."""
    if (dataset, arch) == ("emoji", "pixelcnn"):
        return tiny_model(arch, channels=3, levels=8, height=8, width=8).eval()
    return tiny_factory(dataset, arch)


def test_likelihood_with_a_model_of_fewer_levels():
    """Each model scores the 8-bit image at its own levels; the 8-level one is marked, and
    the note says its bits/dim are not comparable."""
    views = et.ExplainViews(coarse_factory)
    _, table = views.preset("emoji")
    presets = et.preset_images("emoji", 3, 256, 8, 8)
    archs = architectures("emoji")
    for k, (name, x) in enumerate(presets):
        for row, a in zip(table[k * len(archs): (k + 1) * len(archs)], archs):
            m = coarse_factory("emoji", a)
            seen = pixelnet.data.quantize(x, 8) if a == "pixelcnn" else x
            with torch.no_grad():
                assert row[2] == pytest.approx(float(pixelnet.nll(m, seen[None])), abs=0.01)
            assert ("8 levels" in row[1]) == (a == "pixelcnn")
    note = views.levels_note("emoji")
    assert "8 levels" in note and "not comparable" in note
    assert views.levels_note("mnist") == "" and et.ExplainViews(tiny_factory).levels_note("emoji") == ""
    post = views.posteriors("emoji", presets[0][1][None])               # no class models: None
    assert all(p is None for p in post.values())


def test_gif_of_a_model_of_fewer_levels():
    views = et.ExplainViews(coarse_factory)
    known = et.preset_images("emoji", 3, 256, 8, 8)[0][1]               # 8-bit
    gif = Image.open(views.gif("emoji", "pixelcnn", 500, 0, 1.0, known=known))
    assert gif.n_frames == 3 * 32                                       # the bottom half
    gif.seek(gif.n_frames - 1)
    a = np.asarray(gif.convert("RGB")).astype(int)
    s = imaging.pixel_scale(8, 8, 196)
    top = a[s // 2: 4 * s: s, s // 2: 8 * s: s].transpose(2, 0, 1)
    want = pixelnet.data.dequantize(pixelnet.data.quantize(known, 8), 8)[:, :4].numpy()
    assert np.abs(top - want).max() <= 8                                # GIF palette rounding


# ----------------------------------------------------------------------------- GIF

@pytest.mark.parametrize("channels,levels,n_frames", [(1, 2, 36), (1, 2, 5), (3, 256, 108),
                                                      (3, 256, 1)])
def test_generation_gif_has_one_frame_per_step_asked(channels, levels, n_frames, tmp_path):
    m = tiny_model("pixelcnn", channels=channels, levels=levels)
    path = et.generation_gif(m, n_frames, seed=3, path=tmp_path / "g.gif")
    gif = Image.open(path)
    assert gif.format == "GIF" and gif.n_frames == n_frames      # even an all-black binary run
    durations = []
    for k in range(gif.n_frames):
        gif.seek(k)
        durations.append(gif.info["duration"])
    assert durations[-1] > durations[0] or n_frames == 1         # the finished image is held
    # the last frame is the finished sample (same seed): compare the top-left pixels' colours
    final = pixelnet.sample(m, 1, seed=3)[0]
    s = imaging.pixel_scale(6, 6, 196)
    gif.seek(n_frames - 1)
    a = np.asarray(gif.convert("RGB"))
    want = imaging.to_rgb(final.numpy(), levels)
    got = a[s // 2: 6 * s: s, s // 2: 6 * s: s]
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 8   # GIF palette rounding


def test_generation_snapshots_and_completion():
    m = tiny_model("row_lstm")
    known = torch.ones(1, 1, 6, 6, dtype=torch.long)
    mask = torch.zeros(6, 6, dtype=torch.bool)
    mask[3:] = True
    snaps = ex.generation_snapshots(m, 4, seed=0, known=known, mask=mask)
    assert [s.step for s in snaps] == [4, 8, 13, 17] and snaps[-1].total == 18
    assert (snaps[-1].image[0, 0, :3] == 1).all()                 # the known half is kept
    assert not snaps[-1].image.is_inference()                     # usable with autograd
    pixelnet.nll(m, snaps[-1].image)
    assert ex.snapshot_steps(10, 3) == [3, 6, 9] and ex.snapshot_steps(5, 5) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="n_frames"):
        ex.generation_snapshots(m, 19, known=known, mask=mask)
    with pytest.raises(ValueError, match="nothing to generate"):
        ex.generation_snapshots(m, 1, known=known, mask=torch.zeros(6, 6, dtype=torch.bool))
    views = et.ExplainViews(tiny_factory)
    assert Image.open(views.gif("mnist", "pixelcnn", 500, 0, 1.0)).n_frames == 64   # capped
    half = torch.ones(1, 8, 8, dtype=torch.long)
    gif = Image.open(views.gif("mnist", "row_lstm", 500, 0, 1.0, known=half))
    assert gif.n_frames == 32                                    # only the bottom half
    a = np.asarray(gif.convert("RGB"))
    assert (a[: a.shape[0] // 3] > 200).all()                    # the known top stays white


# ----------------------------------------------------------------------------- the tab

def test_tab_builds_in_a_blocks():
    gr = pytest.importorskip("gradio")
    with gr.Blocks() as demo:
        with gr.Tab("Explain"):
            views = et.build_explain_tab(tiny_factory)
    assert isinstance(views, et.ExplainViews)
    img, text = views.receptive_field("emoji", 3, 4, "G")
    assert "channel G of pixel **(3, 4)**" in text and img.width > 0
    assert views.click("mnist", *[v + 1 for v in (fig.rf_layout(8, 8, 1, 3)["x0"][2],
                                                       fig.rf_layout(8, 8, 1, 3)["top"])]) == (0, 0)
    assert demo.fns                                              # the views' events are wired


def test_receptive_fields_are_cached_per_model_object_not_per_id():
    """A model replaced by another (a new checkpoint; the new one may reuse the old one's
    id) gets its own receptive fields, never the cached ones of the model it replaced."""
    current = {}

    def factory(dataset, arch):
        return current[arch]

    views = et.ExplainViews(factory)
    for a in et.RF_ARCHS:
        current[a] = tiny_model(a, height=8, width=8, layers=1)
    first = views.reports("mnist", 5, 5, 0)
    assert views.reports("mnist", 5, 5, 0)[0] is first[0]                 # cached
    for a in et.RF_ARCHS:
        current[a] = tiny_model(a, height=8, width=8, layers=3)         # "reloaded"
    second = views.reports("mnist", 5, 5, 0)
    assert all(s is not f for s, f in zip(second, first))
    pixelcnn = et.RF_ARCHS.index("pixelcnn")
    assert second[pixelcnn].n_seen > first[pixelcnn].n_seen           # deeper: sees more
    assert set(et.RF_ARCHS) == {a for a in pixelnet.ARCHITECTURES
                                if issubclass(pixelnet.MODELS[a], pixelnet.PixelModel)}
