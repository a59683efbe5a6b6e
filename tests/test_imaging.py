"""What the app shows of sampling (demo/imaging.py and the lines beside the controls): the
softmax chart is legible where it is shown, a pending pixel never looks like a data value (in
the Generate frame and the exported GIF), and the lines say what temperature 0, Multi-Scale and
the entropy map do."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

import pixelnet
from conftest import MS_TINY, TINY
from demo import explain_tab as et
from demo import generate_tab as gen
from demo import imaging as im
from demo import inputs
from demo import registry

# The chart's box in the page (CSS px, measured with Playwright): 1280x800 and a 390x844 phone.
SHOWN = {"1280x800": (394, 190), "390x844": (326, 190)}
MIN_CSS_PX = 11


def peaked(levels: int, at: int, rng: np.random.Generator) -> np.ndarray:
    """A distribution over ``levels`` whose most likely value is ``at``."""
    p = rng.random(levels) * 0.5
    p[at] = p.sum() + 1.0
    return p / p.sum()


def record_text(monkeypatch) -> list[tuple[float, float, str, int]]:
    """Every text the chart draws: ``(x, y, text, size)``."""
    seen = []
    draw = im.stamp

    def spy(img, xy, text, fill, size):
        seen.append((xy[0], xy[1], text, size))
        draw(img, xy, text, fill, size)
    monkeypatch.setattr(im, "stamp", spy)
    return seen


def marked_columns(img: Image.Image) -> np.ndarray:
    """x of the pixels drawn in the sampled value's red."""
    a = np.asarray(img)
    return np.nonzero((a == im.MARK).all(-1).any(0))[0]


@pytest.mark.parametrize("channels, levels", [(1, 2), (1, 8), (1, 256), (3, 8), (3, 256)])
def test_chart_text_is_legible_where_shown_and_inside_the_image(monkeypatch, channels, levels):
    rng = np.random.default_rng(levels)
    seen = record_text(monkeypatch)
    values = [int(v) for v in rng.integers(0, levels, channels)]
    img = im.bar_chart([peaked(levels, v, rng) for v in values], values, levels, channels - 1,
                       "pixel (14, 3): softmax over many levels, sampled value in red")
    assert img.size == (im.CHART_W, im.CHART_H)
    for screen, (w, h) in SHOWN.items():      # object-fit: contain, never above the image's size
        scale = min(w / img.width, h / img.height)
        assert min(size for *_, size in seen) * scale >= MIN_CSS_PX, screen
    for x, y, text, size in seen:             # nothing clipped, the long title included
        assert x >= 0 and x + im.font(size).getlength(text) <= img.width, text
        assert y >= 0 and y + size <= img.height, text
    texts = " ".join(t for *_, t, _ in seen)
    for v in values:                          # the sampled value in words
        assert str(v) in texts
    assert "sampled" in texts


def test_chart_ticks_name_the_quarters_of_256_levels(monkeypatch):
    rng = np.random.default_rng(0)
    seen = record_text(monkeypatch)
    im.bar_chart([peaked(256, 187, rng)] * 3, [187, 20, 33], 256)
    texts = [t for *_, t, _ in seen]
    for tick in ("0", "64", "128", "192", "255"):
        assert tick in texts
    assert im.chart_ticks(2) == [0, 1] and im.chart_ticks(8) == list(range(8))


@pytest.mark.parametrize("channels, levels", [(1, 2), (1, 256), (3, 8), (3, 256)])
def test_the_sampled_bar_is_marked_where_its_value_is(channels, levels):
    rng = np.random.default_rng(1)
    lo, hi = (0, levels - 1)
    charts = {}
    for v in (lo, hi):            # the peak elsewhere: the red is the sampled value, not the mode
        p = peaked(levels, levels - 1 - v, rng)
        charts[v] = im.bar_chart([p] * channels, [v] * channels, levels)
    left, right = marked_columns(charts[lo]), marked_columns(charts[hi])
    assert len(left) and len(right)
    assert left.max() < im.CHART_W / 2 <= right.min()
    # one bar is red, the others are not: far fewer red columns than the plot's width
    assert len(left) < im.CHART_W / (2 if levels == 2 else 8)
    empty = im.bar_chart([None] * channels, [None] * channels, levels)
    assert not len(marked_columns(empty))


def test_256_levels_are_binned_into_bars_wider_than_a_pixel():
    rng = np.random.default_rng(2)
    img = np.asarray(im.bar_chart([peaked(256, 100, rng)], [30], 256))
    row = img[im.CHART_H - 40]                     # a row through the bars, above the axis
    bar = ~(row == 255).all(-1)
    starts = np.nonzero(bar[1:] & ~bar[:-1])[0]
    widths = np.diff(np.r_[starts, len(bar) - 1])
    assert len(starts) <= im.CHART_BINS and np.median(widths) >= 5


def test_a_long_title_is_cut_at_a_word():
    t = im.fit_text("pixel (14, 3): softmax over 256 levels, sampled value in red", 150, 12)
    assert t.endswith(" ...") and im.font(12).getlength(t) <= 150
    assert im.fit_text("short", 150, 12) == "short"


@pytest.mark.parametrize("channels, levels", [(1, 2), (1, 256), (3, 8), (3, 256)])
@pytest.mark.parametrize("scale", [im.SCALE, 7, 4])
def test_pending_cells_differ_from_every_data_value(channels, levels, scale):
    rng = np.random.default_rng(levels + scale)
    H, W = 16, 16
    x = rng.integers(0, levels, (channels, H, W))
    x[:, 0, :levels] = np.arange(levels)[: W]       # the extremes, black and white, included
    x[:, 1, 0] = levels - 1
    pending = rng.random((H, W)) < 0.5
    pending[0] = pending[1, 0] = False
    frame = im.render_frame(x, levels, pending, (3, 4), scale)
    cells = frame.reshape(H, scale, W, scale, 3)
    n_colours = np.array([[len(np.unique(cells[i, :, j].reshape(-1, 3), axis=0)) for j in range(W)]
                          for i in range(H)])
    outlined = np.zeros((H, W), bool)
    outlined[3, 4] = True
    assert (n_colours[~pending & ~outlined] == 1).all()          # a data value: one colour
    assert (n_colours[pending & ~outlined] >= 2).all()           # pending: a hatch
    found = im.pending_cells(frame, scale)
    assert (found[~outlined] == pending[~outlined]).all()
    for colour in (im.PENDING, im.PENDING_STRIPE):               # not a gray, not a level
        assert len(set(colour.tolist())) == 3


def test_pending_hatch_survives_a_gif():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (3, 12, 12))
    pending = np.zeros((12, 12), bool)
    pending[6:] = True
    frames = [Image.fromarray(im.render_frame(x, 256, pending, None, 7)) for _ in range(2)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    back = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    assert (im.pending_cells(back, 7, tol=12) == pending).all()


def test_render_frame_without_pending_is_the_image():
    x = np.arange(12).reshape(1, 3, 4) % 2
    frame = im.render_frame(x, 2, np.zeros((3, 4), bool), None, 5)
    assert (frame == im.upscale(im.to_rgb(x, 2), 5)).all()
    assert not im.pending_cells(frame, 5).any()


@pytest.mark.parametrize("channels, levels", [(1, 2), (3, 256)])
def test_the_exported_gif_hatches_the_pixels_still_to_draw(channels, levels, tmp_path):
    torch.manual_seed(0)
    m = pixelnet.build_model("pixelcnn", channels=channels, height=6, width=6, levels=levels,
                             **TINY).eval()
    gif = Image.open(et.generation_gif(m, 4, seed=1, path=tmp_path / "g.gif"))
    s, total = im.pixel_scale(6, 6, 196), 6 * 6 * channels
    for k, step in enumerate(pixelnet.explain.snapshot_steps(total, 4)):
        gif.seek(k)
        a = np.asarray(gif.convert("RGB"))[: 6 * s, : 6 * s]
        want = (np.arange(36) > step // channels).reshape(6, 6)    # raster order, sub-pixels
        if channels == 3 and step % 3 != 2:                         # a pixel half drawn
            want.flat[step // 3] = True
        # the drawn pixel's outline covers the edges of its neighbours
        i, j = divmod(step // channels, 6)
        away = np.ones((6, 6), bool)
        away[max(0, i - 1): i + 2, max(0, j - 1): j + 2] = False
        found = im.pending_cells(a, s, tol=12)
        assert (found[away] == want[away]).all(), k
    assert want.sum() == 0                                          # the last frame: all drawn


def test_the_lines_beside_the_controls_say_what_happens(monkeypatch):
    zero = gen.temperature_note(0)
    assert "the most likely value every time" in zero and "black" in zero
    assert "all black" not in gen.temperature_note(1) and "0 = the most likely" in gen.temperature_note(1)
    assert gen.temperature_note("hot") == ""
    shape = registry.DATASET_INFO["mnist"].model_shape()
    models = {"multiscale": pixelnet.build_model("multiscale", **shape, **TINY, **MS_TINY),
              "pixelcnn": pixelnet.build_model("pixelcnn", **shape, **TINY)}
    monkeypatch.setattr(registry, "get_model", lambda d, a: models[registry.arch_key(a)])
    line = gen.architecture_note("MNIST digits", "Multi-Scale")
    assert "coarse 14x14 grid" in line and "every 2nd pixel of every 2nd row" in line
    assert "conditioned on" in line
    assert gen.architecture_note("MNIST digits", "PixelCNN") == ""
    assert gen.note_update("")["visible"] is False and gen.note_update(line)["visible"] is True
    assert "unsure" in gen.ENTROPY_NOTE and "black = sure" in gen.ENTROPY_NOTE


def test_only_the_emoji_multiscale_model_suggests_a_temperature_and_its_note_says_why():
    assert registry.suggested_architecture("Emoji") == "multiscale"
    assert registry.suggested_architecture("fashion") is None
    t = registry.suggested_temperature("Emoji", "Multi-Scale")
    assert t == registry.suggested_temperature("emoji", "multiscale") < 1
    for ds, arch in [("Emoji", "Row LSTM"), ("MNIST digits", "Multi-Scale"), ("fashion", "pixelcnn")]:
        assert registry.suggested_temperature(ds, arch) == 1, (ds, arch)
    with pytest.raises(ValueError, match="unknown dataset"):
        registry.suggested_temperature("cifar", "pixelcnn")
    note = gen.temperature_note(t, "Emoji", "Multi-Scale")
    assert "suggested for the Emoji Multi-Scale model" in note
    assert "suggested" not in gen.temperature_note(t, "Emoji", "PixelCNN")   # not its own
    assert "suggested" not in gen.temperature_note(1, "Emoji", "Multi-Scale")  # as trained
    assert gen.temperature_note(t, "nonsense", "Multi-Scale") == gen.temperature_note(t)


def test_the_emoji_multiscale_faces_are_suggested_with_a_tail_cut():
    t = registry.suggested_temperature("emoji", "multiscale")
    g = pixelnet.sampling.CLASS_STRENGTH
    assert registry.suggested_sampling("Emoji", "Multi-Scale", "Smileys") == (1.0, 0.1, g)
    assert registry.suggested_sampling("emoji", "multiscale", "Symbols") == (1.0, 0.1, g)
    for label in ("Flags", "Animals & Nature", "Any", None):     # blank or plain with a cut
        assert registry.suggested_sampling("Emoji", "Multi-Scale", label) == (t, 0.0, g), label
    assert registry.suggested_sampling("Emoji", "Row LSTM", "Smileys") == (1.0, 0.0, g)
    assert registry.suggested_sampling("MNIST digits", "PixelCNN", "3") == (1.0, 0.0, g)


@pytest.mark.parametrize("arch", ["pixelcnn", "row_lstm", "diagonal_bilstm"])
def test_fashion_is_suggested_at_a_stronger_class(arch):
    """Every Fashion model draws its classes at the dataset's suggested strength, whatever the
    class; other datasets keep the default one."""
    strength = registry.SUGGESTED_STRENGTH["fashion"]
    assert strength > pixelnet.sampling.CLASS_STRENGTH
    for label in ("Trouser", "Any", None):
        assert registry.suggested_sampling("Fashion-MNIST", arch, label) == (1.0, 0.0, strength)
    assert registry.suggested_sampling("mnist", arch, "7")[2] == pixelnet.sampling.CLASS_STRENGTH


def test_choosing_emoji_shows_its_multiscale_model(monkeypatch):
    monkeypatch.setattr(gen, "model_status", lambda d, a: "")
    monkeypatch.setattr(gen, "empty_chart", lambda d, a: None)
    *_, arch, _, _ = gen.change_dataset("Emoji", "Row LSTM")
    assert arch["value"] == "Multi-Scale"
    *_, arch, _, _ = gen.change_dataset("Fashion-MNIST", "Row LSTM")     # no suggestion: kept
    assert arch["value"] == "Row LSTM"


def test_the_last_chart_is_the_most_uncertain_generated_pixel(monkeypatch):
    shape = registry.DATASET_INFO["mnist"].model_shape()
    torch.manual_seed(0)
    model = pixelnet.build_model("pixelcnn", **shape, **TINY).eval()
    model.metadata = {"dataset": "mnist", "untrained": True}
    monkeypatch.setattr(registry, "get_model", lambda d, a: model)
    canvas, mask = inputs.first_example("MNIST digits")             # the bottom half generated
    *_, (frame, chart, progress, result, entropy, run) = gen.generate(
        canvas, mask, "MNIST digits", "PixelCNN", 1.0, 3, "Max")
    assert progress.startswith("Done") and isinstance(chart, Image.Image)
    ent = np.where(run.generated.any(0), run.entropy, -1.0)
    i, j = np.unravel_index(ent.argmax(), ent.shape)
    assert i >= 14                                                   # a generated pixel
    seen = record_text(monkeypatch)
    want = im.bar_chart([run.probs[0, i, j]], [int(run.image[0, i, j])], run.levels, None,
                        f"most uncertain pixel ({i}, {j}), {ent[i, j]:.2f} bits")
    assert f"({i}, {j})," in " ".join(t for *_, t, _ in seen)
    assert np.array_equal(np.asarray(chart), np.asarray(want))
