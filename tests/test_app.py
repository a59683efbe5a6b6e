"""The Gradio app: its functions called directly (tiny models), then a launched app driven
through ``gradio_client``."""
import math
import socket
import time
from functools import lru_cache
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

import pixelnet
from conftest import MS_TINY, TINY
from demo import app, batcher, inputs, registry, runs
from demo import compare_tab as cmp
from demo import generate_tab as gen
from demo import imaging as im

DATASETS = list(registry.DATASETS)
REAL_GET_MODEL = registry.get_model     # the fixtures put tiny models in its place


@lru_cache(maxsize=None)
def tiny(dataset: str, arch: str) -> torch.nn.Module:
    """A small untrained model of the dataset's shape (fast to sample)."""
    ds, arch = registry.dataset_key(dataset), registry.arch_key(arch)
    torch.manual_seed(0)
    hp = {**TINY, **(MS_TINY if arch == "multiscale" else {})}
    model = pixelnet.build_model(arch, **registry.DATASET_INFO[ds].model_shape(), **hp).eval()
    model.metadata = {"dataset": ds, "untrained": True}
    return model


@pytest.fixture
def tiny_models(monkeypatch):
    monkeypatch.setattr(registry, "get_model", tiny)


def run_all(gen):
    """Every yield of a streaming handler."""
    return list(gen)


def is_frame(a, H, W) -> bool:
    return isinstance(a, np.ndarray) and a.shape == (H * im.SCALE, W * im.SCALE, 3) and a.dtype == np.uint8


# ----------------------------------------------------------------------------- registry

def test_registry_names_and_architectures():
    assert registry.dataset_key("MNIST digits") == registry.dataset_key("mnist") == "mnist"
    assert registry.arch_key("Row LSTM") == "row_lstm"
    assert "multiscale" in registry.architectures("mnist")
    assert "multiscale" in registry.architectures("emoji")
    assert "multiscale" not in registry.architectures("fashion")
    with pytest.raises(ValueError, match="unknown dataset"):
        registry.dataset_key("cats")
    with pytest.raises(ValueError, match="not offered"):
        registry.get_model("fashion", "multiscale")


def test_registry_untrained_then_checkpoint_lands(tmp_path, monkeypatch):
    """No checkpoint: an untrained model of the dataset's shape, flagged and cached. A
    checkpoint that appears later is picked up without a restart."""
    monkeypatch.setattr(registry, "CHECKPOINTS", tmp_path)
    monkeypatch.setattr(registry, "_cache", {})
    m = registry.get_model("Fashion-MNIST", "pixelcnn")
    assert registry.is_untrained(m) and "UNTRAINED" in registry.describe(m)
    assert (m.cfg.channels, m.cfg.levels, m.cfg.height) == (1, 256, 28)
    assert registry.get_model("fashion", "PixelCNN") is m                 # cached
    trained = tiny("fashion", "pixelcnn")
    pixelnet.save_checkpoint(trained, tmp_path / "fashion_pixelcnn.pt", dataset="fashion",
                             epochs=3, test_nll=123.4)
    m2 = registry.get_model("fashion", "pixelcnn")
    assert not registry.is_untrained(m2) and m2.cfg.layers == TINY["layers"]
    assert "trained on fashion" in registry.describe(m2) and "123.40" in registry.describe(m2)
    assert "3 epochs" in registry.describe(m2)
    m2.metadata["epochs_total"] = 40.5             # a run that continued a published model
    assert "40.5 epochs" in registry.describe(m2) and "3 epochs" not in registry.describe(m2)
    assert f"({123.4 / (28 * 28 * math.log(2)):.3f} bits/dim)" in registry.describe(m2)
    ms = tiny("emoji", "multiscale")
    assert registry.describe(ms).startswith(f"Multi-Scale ({registry.ARCH_NAMES[ms.cfg.base]} base)")


# ----------------------------------------------------------------------------- images in

@pytest.mark.parametrize("mode", ["RGBA", "RGB", "L", "LA", "P", "1", "I;16", "F"])
@pytest.mark.parametrize("dataset", DATASETS)
def test_any_image_mode_and_size_converts(mode, dataset):
    _, C, L, H, W = inputs.shape(dataset)
    rgb = np.random.default_rng(0).integers(0, 256, (57, 91, 3), dtype=np.uint8)
    img = Image.fromarray(rgb)
    img = img.convert("L").convert(mode) if mode in ("I;16", "F") else img.convert(mode)
    x = inputs.image_levels(img, dataset)
    assert x.shape == (C, H, W) and x.dtype == np.int64
    assert x.min() >= 0 and x.max() < L


def test_conversion_details():
    # transparency becomes the dataset's background: black (digits), white (emoji)
    clear = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    assert inputs.image_levels(clear, "mnist").max() == 0
    assert inputs.image_levels(clear, "emoji").min() == 255
    # binarized MNIST: threshold at half
    half = Image.fromarray(np.array([[0, 127], [128, 255]], np.uint8)).resize((28, 28), Image.NEAREST)
    x = inputs.image_levels(half, "mnist")[0]
    assert x[0, 0] == 0 and x[0, 27] == 0 and x[27, 0] == 1 and x[27, 27] == 1
    # an upload of dark ink on light paper is inverted to light on black
    paper = np.full((100, 100), 255, np.uint8)
    paper[30:70, 45:55] = 0
    x = inputs.image_levels(Image.fromarray(paper), "fashion", invert_light=True)[0]
    assert x[0, 0] == 0 and x[14, 14] == 255
    # aspect kept: a wide image is padded, not stretched
    wide = Image.new("L", (280, 70), 255)
    x = inputs.image_levels(wide, "fashion")[0]
    assert x[0].max() == 0 and x[14].min() == 255


def test_upload(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (300, 200, 3), dtype=np.uint8)).save(path)
    canvas, mask = inputs.upload(str(path), "Emoji")
    assert inputs.canvas_levels(canvas, "Emoji").shape == (3, 32, 32)
    assert inputs.canvas_mask(mask, "Emoji")[:16].sum() == 0        # top half kept


@pytest.mark.parametrize("content", [b"hello, not an image", b"", b"\x89PNG\r\n\x1a\n broken"])
def test_upload_of_a_non_image_is_a_clear_error(tmp_path, content):
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(gr.Error, match="is not an image"):
        inputs.upload(str(path), "MNIST digits")
    with pytest.raises(gr.Error, match="no file"):
        inputs.upload(None, "MNIST digits")


# ----------------------------------------------------------------------------- canvases

@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("preset", list(inputs.PRESETS))
def test_presets_set_image_and_mask(dataset, preset):
    _, C, L, H, W = inputs.shape(dataset)
    drawing = inputs.first_example(dataset)[0]
    canvas, mask = inputs.apply_preset(preset, dataset, drawing, seed=1)
    x, m = inputs.canvas_levels(canvas, dataset), inputs.canvas_mask(mask, dataset)
    assert x.shape == (C, H, W) and m.shape == (H, W) and m.dtype == bool
    if preset == "Blank":
        assert m.all()
    elif preset == "Seed pixel":
        assert not m[0, 0] and m.sum() == H * W - 1
        assert (x == inputs.canvas_levels(drawing, dataset)).all()
    else:
        assert not m[: H // 2].any() and m[H // 2:].all()
    if preset == "Keep top half":
        assert (x == inputs.canvas_levels(drawing, dataset)).all()
    # the mask canvas shows the same image under its red layer
    assert (inputs.canvas_levels({"background": mask["background"]}, dataset) == x).all()


def test_editor_round_trip_and_drawing():
    """A stroke painted on the canvas layer reaches the model input; painted mask strokes
    become the mask (snapped to model pixels)."""
    x = np.zeros((1, 28, 28), np.int64)
    canvas = im.editor_value(x, 2)
    stroke = np.zeros((280, 280, 4), np.uint8)
    stroke[100:120, 50:230] = (255, 255, 255, 255)                   # rows 10-11, cols 5-22
    drawn = {**canvas, "layers": [Image.fromarray(stroke)]}
    got = inputs.canvas_levels(drawn, "mnist")[0]
    assert got[10:12, 5:23].all() and got.sum() == 2 * 18
    mask = inputs.canvas_mask(drawn, "mnist")
    assert mask[10:12, 5:23].all() and mask.sum() == 2 * 18
    assert inputs.canvas_mask({"background": canvas["background"], "layers": []}, "mnist").all()
    synced = inputs.sync_mask(drawn, im.mask_editor_value(x, 2, mask), "mnist")
    assert (inputs.canvas_mask(synced, "mnist") == mask).all()


def test_the_mask_follows_strokes_not_pictures_the_app_sent():
    """A preset's canvas loading in the browser fires the same event as a stroke: the mask
    it came with is kept (it may not have loaded yet), a stroke redraws it over the drawing."""
    canvas, mask, sent, _ = inputs.preset_sent("Keep top half", "mnist",
                                               inputs.first_example("mnist")[0], None, "older")
    assert sent == inputs.drawing_key(inputs.canvas_levels(canvas, "mnist"))
    assert inputs.sync_drawn(canvas, mask, "mnist", sent) == (gr.skip(), gr.skip())
    stroke = np.zeros((280, 280, 4), np.uint8)
    stroke[250:270, 20:60] = (255, 255, 255, 255)                    # rows 25-26, cols 2-5
    drawn = {**canvas, "layers": [Image.fromarray(stroke)]}
    synced, now = inputs.sync_drawn(drawn, mask, "mnist", sent)
    shown = inputs.canvas_levels({"background": synced["background"]}, "mnist")
    assert shown[0, 25:27, 2:6].all() and now == inputs.drawing_key(shown) != sent
    assert (inputs.canvas_mask(synced, "mnist") == inputs.canvas_mask(mask, "mnist")).all()


def test_a_preset_sends_nothing_where_the_page_drew_it_from_the_drawing():
    """The page draws a preset that keeps the drawing from the mask editor's drawing; the
    server's answer could arrive late and undo a later preset or hide a run's sample, so it
    comes only when the mask editor showed an older drawing than the canvas."""
    canvas = inputs.first_example("mnist")[0]
    shown = inputs.drawing_key(inputs.canvas_levels(canvas, "mnist"))
    assert inputs.preset_sent("Keep top half", "mnist", canvas, None, shown) == \
        (gr.skip(), gr.skip(), gr.skip(), None)
    drawing, mask, key, frame = inputs.preset_sent("Seed pixel", "mnist", canvas, None, "older")
    assert key == shown and inputs.canvas_mask(mask, "mnist").sum() == 28 * 28 - 1
    assert np.array_equal(frame, inputs.preview(drawing, mask, "mnist"))
    pending = im.pending_cells(frame)
    assert not pending[0, 0] and pending.sum() == 28 * 28 - 1        # all but the seed pixel


# ----------------------------------------------------------------------------- generate

@pytest.mark.parametrize("dataset,arch", [("MNIST digits", "Multi-Scale"),
                                          ("Fashion-MNIST", "Row LSTM"),
                                          ("Emoji", "Diagonal BiLSTM")])
def test_generate_streams_frames_and_keeps_known_pixels(tiny_models, dataset, arch):
    _, C, L, H, W = inputs.shape(dataset)
    canvas, mask = inputs.first_example(dataset)                        # top half kept
    known = inputs.canvas_levels(canvas, dataset)
    outs = run_all(gen.generate(canvas, mask, dataset, arch, 1.0, 7, "Max"))
    assert len(outs) >= 3
    for frame, chart, progress, result, entropy, run in outs[1:-1]:
        assert isinstance(frame, gr.skip().__class__) or is_frame(frame, H, W)
        assert progress.startswith("Pixel ") and "pixels/s" in progress
        assert isinstance(run, runs.Run)
    frames = [o[0] for o in outs if is_frame(o[0], H, W)]
    assert any((f == im.PENDING).all(-1).any() for f in frames[:-1])  # pending shown mid-run
    charts = [o[1] for o in outs[1:-1] if isinstance(o[1], Image.Image)]
    assert charts and charts[0].size == (im.CHART_W, im.CHART_H)     # shown 1:1 (test_imaging)
    frame, _, progress, result, entropy, run = outs[-1]
    assert progress.startswith("Done") and "NLL of this sample" in result
    assert entropy.shape == (H * im.SCALE, W * im.SCALE, 3)
    assert (run.image[:, : H // 2] == known[:, : H // 2]).all()      # kept
    assert run.generated[:, H // 2:].all() and run.done[:, H // 2:].all()
    assert run.finished and run.have.all()
    # the NLL shown is pixelnet.nll of the final image
    with torch.no_grad():
        expected = float(pixelnet.nll(tiny(dataset, arch), torch.from_numpy(run.image)[None])[0])
    assert abs(run.nll - expected) < 1e-3 * abs(expected)
    # the final frame is the sample, upscaled
    last = [f for f in frames][-1]
    assert (last[:: im.SCALE, :: im.SCALE] == im.to_rgb(run.image, L)).all()


def test_generate_is_reproducible_and_respects_temperature_zero(tiny_models):
    canvas, mask = inputs.apply_preset("Blank", "Fashion-MNIST")
    a = run_all(gen.generate(canvas, mask, "Fashion-MNIST", "PixelCNN", 1.0, 3, "Max"))[-1][-1]
    b = run_all(gen.generate(canvas, mask, "Fashion-MNIST", "PixelCNN", 1.0, 3, "Max"))[-1][-1]
    assert (a.image == b.image).all()
    c = run_all(gen.generate(canvas, mask, "Fashion-MNIST", "PixelCNN", 0, 3, "Max"))[-1][-1]
    assert set(np.unique(c.probs[c.generated])) <= {0.0, 1.0}


def test_animation_speed_paces_and_caps_frames(tiny_models):
    canvas, mask = inputs.apply_preset("Seed pixel", "MNIST digits", inputs.first_example("mnist")[0])
    t = time.perf_counter()
    outs = run_all(gen.generate(canvas, mask, "mnist", "pixelcnn", 1, 0, "Max"))
    fast = time.perf_counter() - t
    n_frames = sum(1 for o in outs if not isinstance(o[2], type(gr.skip())))
    assert n_frames <= 2 + fast * runs.MAX_FPS + 2                   # throttled to MAX_FPS
    mask = im.mask_editor_value(np.zeros((1, 28, 28), np.int64), 2,
                                np.pad(np.ones((1, 10), bool), ((0, 27), (0, 18))))
    t = time.perf_counter()
    run_all(gen.generate(canvas, mask, "mnist", "pixelcnn", 1, 0, "Slow"))   # 10 px at 20/s
    assert time.perf_counter() - t >= 10 / inputs.SPEEDS["Slow"] - 0.05


@pytest.mark.filterwarnings("ignore:Nothing to generate")
def test_nothing_to_generate_still_scores_the_image(tiny_models):
    canvas, _ = inputs.first_example("mnist")
    outs = run_all(gen.generate(canvas, {"background": None, "layers": [Image.new("RGBA", (280, 280))]},
                                "mnist", "PixelCNN", 1, 0, "Max"))
    assert "0 of 784 pixels generated" in outs[-1][3]


@pytest.mark.parametrize("kwargs,message", [
    (dict(dataset="CIFAR-100"), "unknown dataset"),
    (dict(architecture="Transformer"), "unknown architecture"),
    (dict(dataset="Fashion-MNIST", architecture="Multi-Scale"), "not offered for Fashion-MNIST"),
    (dict(temperature=-1), "between 0 and 2"),
    (dict(temperature=2.5), "between 0 and 2"),                     # the slider's range
    (dict(temperature=float("nan")), "between 0 and 2"),
    (dict(temperature=float("inf")), "between 0 and 2"),
    (dict(temperature="hot"), "must be a number from 0 to 2"),
    (dict(seed="lucky"), "whole number"),
    (dict(seed=2 ** 63), "from 0 to 2\\*\\*63 - 1"),
    (dict(seed=2 ** 64), "from 0 to 2\\*\\*63 - 1"),
    (dict(seed=-1), "from 0 to 2\\*\\*63 - 1"),
    (dict(seed=1.5), "whole number"),
    (dict(seed=float("nan")), "whole number"),
    (dict(seed=float("inf")), "whole number"),
    (dict(speed="Warp"), "unknown speed"),
    (dict(speed=["Max"]), "unknown speed"),
    (dict(canvas={"background": "/nonexistent/file.png", "layers": [], "composite": None}),
     "could not be read"),
])
def test_bad_input_is_a_clear_error(tiny_models, kwargs, message):
    args = {"canvas": None, "mask": None, **inputs.DEFAULTS, **kwargs}
    with pytest.raises(gr.Error, match=message):
        run_all(gen.generate(**args))


def test_largest_seed_runs(tiny_models):
    outs = run_all(gen.generate(None, None, "mnist", "PixelCNN", 1.0, 2 ** 63 - 1, "Max"))
    assert outs[-1][2].startswith("Done")
    assert inputs.parse_seed("12") == 12 and inputs.parse_seed(3.0) == 3 and inputs.parse_seed(None) == 0


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory) -> str:
    """A 12000x12000 PNG of a few KB: 144 M pixels (576 MB as RGBA) if decoded."""
    path = tmp_path_factory.mktemp("huge") / "huge.png"
    Image.new("1", (12000, 12000)).save(path)
    return str(path)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def test_huge_and_broken_images_are_refused_before_decoding(huge_png, tmp_path, monkeypatch):
    before = rss_mb()
    for value, message in [
        ({"background": huge_png, "layers": [], "composite": None}, "at most 16.8 megapixels"),
        ({"background": None, "layers": [huge_png], "composite": None}, "at most 16.8 megapixels"),
        ({"background": str(tmp_path / "gone.png"), "layers": [], "composite": None},
         "could not be read"),
    ]:
        with pytest.raises(gr.Error, match=message) as e:
            inputs.canvas_levels(value, "mnist")
        assert str(tmp_path) not in str(e.value) and "/tmp" not in str(e.value)
        if value["layers"]:                                         # the mask reads its layers
            with pytest.raises(gr.Error, match=message):
                inputs.canvas_mask(value, "mnist")
    with pytest.raises(gr.Error, match="at most 16.8 megapixels"):
        inputs.upload(huge_png, "mnist")
    assert rss_mb() - before < 100                                  # nothing was decoded
    # too many bytes: refused from the file's size
    monkeypatch.setattr(im, "MAX_INPUT_BYTES", 1000)
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(big)
    with pytest.raises(gr.Error, match="at most 0 MB"):
        inputs.upload(str(big), "mnist")
    # an image within the limits but larger than the work size is shrunk before compositing
    monkeypatch.setattr(im, "MAX_INPUT_BYTES", 20 * 2 ** 20)
    wide = Image.new("RGBA", (3000, 1500), (255, 255, 255, 255))
    assert max(im.editor_image({"background": wide, "layers": [wide]}).size) <= im.WORK_SIDE


@pytest.fixture
def broken_checkpoints(tmp_path, monkeypatch):
    """checkpoints/ with a corrupt file, a malformed one, and one of another shape."""
    monkeypatch.setattr(registry, "CHECKPOINTS", tmp_path)
    monkeypatch.setattr(registry, "_cache", {})
    (tmp_path / "mnist_pixelcnn.pt").write_bytes(b"\x80\x04 this is not a checkpoint")
    torch.save({"format": "pixelnet", "arch": "row_lstm", "config": {"arch": "row_lstm", "h": "x"},
                "model": {}}, tmp_path / "mnist_row_lstm.pt")
    pixelnet.save_checkpoint(tiny("emoji", "pixelcnn"), tmp_path / "fashion_pixelcnn.pt")
    return tmp_path


@pytest.mark.parametrize("dataset,arch", [("mnist", "pixelcnn"), ("mnist", "row_lstm"),
                                          ("fashion", "pixelcnn")])
def test_a_broken_checkpoint_is_an_error_naming_the_file(broken_checkpoints, dataset, arch):
    name = f"checkpoints/{dataset}_{arch}.pt"
    with pytest.raises(ValueError, match=name) as e:
        registry.get_model(dataset, arch)
    assert str(broken_checkpoints) not in str(e.value)
    status = gen.model_status(dataset, arch)
    assert status.startswith("⚠️") and name in status and "UNTRAINED" not in status
    with pytest.raises(gr.Error, match=name) as e:
        run_all(gen.generate(None, None, dataset, arch, 1.0, 0, "Max"))
    assert str(broken_checkpoints) not in str(e.value)
    with pytest.raises(gr.Error, match=f"checkpoints/{dataset}_"):     # the first broken one
        run_all(cmp.compare(None, None, dataset, 1.0, 0, "Max"))
    (broken_checkpoints / f"{dataset}_{arch}.pt").unlink()         # gone: untrained, flagged
    assert registry.is_untrained(registry.get_model(dataset, arch))


def test_inspect(tiny_models):
    canvas, mask = inputs.first_example("Emoji")
    run = run_all(gen.generate(canvas, mask, "Emoji", "PixelCNN", 1, 0, "Max"))[-1][-1]
    chart, text = gen.inspect_pixel(run, 20, 5)
    assert isinstance(chart, Image.Image) and chart.size == (im.CHART_W, im.CHART_H)
    assert "generated" in text
    chart, text = gen.inspect_pixel(run, 3, 3)
    assert chart is not None and "kept from your canvas" in text
    with pytest.raises(gr.Error, match="outside"):
        gen.inspect_pixel(run, 40, 0)
    with pytest.raises(gr.Error, match="generate an image first"):
        gen.inspect_pixel(None, 0, 0)
    # during a run: pixels not reached yet say so
    early = runs.Run.start("emoji", "pixelcnn", np.zeros((3, 32, 32), np.int64),
                          np.ones((32, 32), bool), 1.0, 256)
    assert "not been generated yet" in gen.inspect_pixel(early, 5, 5)[1]


def mid_run(canvas, mask, dataset="Emoji", pixels=3, samples=1):
    """A Slow generation stopped in the middle of its stream: ``(stream, run or runs)`` once
    ``pixels`` pixels of (the first) run are shown; the stream's next step goes on."""
    stream = gen.generate(canvas, mask, dataset, "PixelCNN", 1.0, 0, "Slow", "Any", samples)
    while True:
        state = next(stream)[-1]
        first = state[0] if isinstance(state, list) else state
        if first.done.sum() >= pixels * first.image.shape[0]:
            return stream, state


def test_inspect_during_a_run_and_after_stop(tiny_models):
    """During a run: every pixel drawn so far has its chart, a kept pixel has the
    distribution it will have once the run ends, a pending one says it is to come. After
    Stop: the same, and the pending one says the run was stopped before it."""
    canvas, mask = inputs.first_example("Emoji")                     # rows 16.. generated
    whole = run_all(gen.generate(canvas, mask, "Emoji", "PixelCNN", 1.0, 0, "Max"))[-1][-1]
    stream, run = mid_run(canvas, mask)
    assert not run.finished and run.done[:, 16, 0].all() and not run.done[:, 31, 31].any()
    chart, text = gen.inspect_pixel(run, 16, 0)
    assert isinstance(chart, Image.Image) and "**Pixel (16, 0)** (row 16, column 0), generated" in text
    np.testing.assert_allclose(run.probs[:, 16, 0], whole.probs[:, 16, 0], atol=1e-5)
    chart, text = gen.inspect_pixel(run, 3, 3)                       # kept: all before it known
    assert isinstance(chart, Image.Image) and "kept from your canvas" in text
    assert "not generated" not in text and run.have[:, 3, 3].all()
    np.testing.assert_allclose(run.probs[:, 3, 3], whole.probs[:, 3, 3], atol=1e-5)
    chart, text = gen.inspect_pixel(run, 31, 31)
    assert chart is None and "has not been generated yet" in text
    stream.close()                                                   # Stop
    assert run.stopped and not run.finished
    assert "was not generated: the run was stopped before it" in gen.inspect_pixel(run, 31, 31)[1]
    chart, text = gen.inspect_pixel(run, 2, 7)                       # kept, asked after Stop
    assert isinstance(chart, Image.Image) and "kept from your canvas" in text
    np.testing.assert_allclose(run.probs[:, 2, 7], whole.probs[:, 2, 7], atol=1e-5)
    assert "generated" in gen.inspect_pixel(run, 16, 0)[1]


def test_inspect_a_kept_pixel_after_pending_ones(tiny_models):
    """A kept pixel after pixels still to generate has no distribution yet: it depends on
    them. Once they are drawn it has one (a finished run)."""
    x = inputs.blank("mnist")
    x[0, 20:, :] = 1
    m = np.zeros((28, 28), bool)
    m[:4] = True                                                     # generate rows 0..3
    canvas, mask = inputs.canvases(x, m, "mnist")
    stream, run = mid_run(canvas, mask, "mnist", pixels=2)
    chart, text = gen.inspect_pixel(run, 22, 5)
    assert chart is None and "kept from your canvas: value gray 1" in text
    assert "depends on earlier pixels that are not generated yet (it is shown once" in text
    stream.close()
    assert "the run was stopped before them" in gen.inspect_pixel(run, 22, 5)[1]
    done = run_all(gen.generate(canvas, mask, "mnist", "PixelCNN", 1.0, 0, "Max"))[-1][-1]
    assert isinstance(gen.inspect_pixel(done, 22, 5)[0], Image.Image)


def test_inspect_from_the_keyboard(tiny_models):
    """Row and column (and the sample of a grid) as numbers; a click sets them too."""
    canvas, mask = inputs.first_example("MNIST digits")
    stream, runs4 = mid_run(canvas, mask, "mnist", pixels=2, samples=4)
    chart, text = gen.inspect_at(runs4, 4, 14, 0)                    # during the run
    assert isinstance(chart, Image.Image) and text.startswith("Sample 4: **Pixel (14, 0)**")
    assert "(row 14, column 0), generated" in text
    chart, text = gen.inspect_at(runs4, "2", "27", 27.0)             # as the browser sends them
    assert chart is None and text.startswith("Sample 2: **Pixel (27, 27)**")
    stream.close()
    side = 2 * 28 * im.SCALE + im.GRID_GAP                           # bottom-left cell, (14, 0)
    y = (28 * im.SCALE + im.GRID_GAP + 14 * im.SCALE + 2) / side
    chart, text, k, i, j = gen.inspect_point(runs4, f"{2 / side:.5f} {y:.5f} 1700000000")
    assert (k, i, j) == (3, 14, 0) and text.startswith("Sample 3: **Pixel (14, 0)**")
    single = run_all(gen.generate(canvas, mask, "mnist", "PixelCNN", 1.0, 0, "Max"))[-1][-1]
    chart, text = gen.inspect_at(single, 1, 20, 3)
    assert text.startswith("**Pixel (20, 3)**") and isinstance(chart, Image.Image)
    for bad, match in (((single, 1, 28, 3), "row must be from 0 to 27"),
                       ((single, 1, 3, -1), "column must be from 0 to 27"),
                       ((single, 1, "x", 3), "row must be a whole number"),
                       ((single, 1, 2.5, 3), "row must be a whole number"),
                       ((single, 1, None, 3), "row must be a whole number"),
                       ((runs4, 5, 3, 3), "sample must be from 1 to 4"),
                       ((single, 2, 3, 3), "sample must be from 1 to 1"),
                       ((None, 1, 3, 3), "generate an image first")):
        with pytest.raises(gr.Error, match=match):
            gen.inspect_at(*bad)


def test_compare_runs_every_architecture(tiny_models):
    canvas, mask = inputs.first_example("MNIST digits")
    outs = run_all(cmp.compare(canvas, mask, "MNIST digits", 1.0, 0, "Max"))
    frame, table = outs[-1]
    archs = registry.architectures("mnist")
    assert frame.shape[1] > len(archs) * 28 * im.SCALE
    for a in archs:
        assert f"| {registry.ARCH_NAMES[a]} |" in table


# ----------------------------------------------------------------------------- classes

MNIST_NAMES = [str(d) for d in range(10)]


def conditional(dataset: str, arch: str) -> torch.nn.Module:
    """A tiny class-conditional model of the dataset's shape, its class vectors non-zero
    (they start at zero: every class would draw the same image)."""
    ds = registry.dataset_key(dataset)
    torch.manual_seed(1)
    model = pixelnet.build_model(arch, **registry.DATASET_INFO[ds].model_shape(), **TINY,
                                 classes=10).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Embedding):
                m.weight.normal_(0, 3)
    return model


@pytest.fixture
def class_checkpoints(tmp_path, monkeypatch):
    """checkpoints/ in a tmp folder: a class-conditional MNIST PixelCNN, the other
    single-scale MNIST architectures unconditional (all tiny)."""
    monkeypatch.setattr(registry, "CHECKPOINTS", tmp_path)
    monkeypatch.setattr(registry, "_cache", {})
    pixelnet.save_checkpoint(conditional("mnist", "pixelcnn"), tmp_path / "mnist_pixelcnn.pt",
                             dataset="mnist", class_names=MNIST_NAMES)
    for a in registry.architectures("mnist"):
        if a != "pixelcnn":
            pixelnet.save_checkpoint(tiny("mnist", a), tmp_path / f"mnist_{a}.pt", dataset="mnist")
    return tmp_path


def test_label_reaches_the_sampler(class_checkpoints):
    canvas, mask = inputs.apply_preset("Blank", "mnist")
    model = registry.get_model("mnist", "pixelcnn")

    def sample(label, guidance=inputs.DEFAULTS["guidance"]):
        return run_all(gen.generate(canvas, mask, "mnist", "PixelCNN", 1.0, 4, "Max",
                                    label, 1, guidance))[-1][-1]

    def alone(y, guidance=1.0):
        job = batcher.Job(model, inputs.blank("mnist"), np.ones((28, 28), bool), 1.0, 4, y,
                          guidance)
        batcher.submit(job)
        return job.result(timeout=60)["image"]

    three, seven, any_ = sample("3"), sample("7"), sample("Any")
    assert (three.image != seven.image).any()             # same seed, another class
    assert (three.image == alone(3, 2.0)).all() and (seven.image == alone(7, 2.0)).all()
    assert (any_.image == alone(None)).all()              # "Any" is y=None
    assert (sample(None).image == any_.image).all()
    assert (sample("3", 1.0).image == alone(3)).all()     # strength 1: the model as trained
    assert (sample("3", 0.0).image == any_.image).all()   # strength 0: the class ignored
    assert (sample("Any", 4.0).image == any_.image).all() # no class: nothing to guide
    done = run_all(gen.generate(canvas, mask, "mnist", "PixelCNN", 1.0, 4, "Max", "3"))[-1]
    assert "given class 3" in done[3] and "class strength 2" in done[3]


def test_min_p_reaches_the_sampler_and_its_charts(class_checkpoints):
    """The tail cut: the image is pixelnet.sample's with that min_p (via the batcher), and
    every chart's distribution (generated and kept sub-pixels) is cut the same way (at a
    low temperature, where the tiny model's two values differ enough to cut one)."""
    canvas, mask = inputs.apply_preset("Keep top half", "mnist")
    model = registry.get_model("mnist", "pixelcnn")
    known, gen_ = inputs.start_inputs(canvas, mask, "mnist", "PixelCNN", 1.0, 4, "Max")[5:]
    run = run_all(gen.generate(canvas, mask, "mnist", "PixelCNN", 0.2, 4, "Max", "3", 1, 2.0,
                               0.4))[-1][-1]
    want = pixelnet.sample(model, 1, torch.from_numpy(known)[None], torch.from_numpy(gen_),
                           temperature=0.2, seed=4, y=3, guidance=2.0, min_p=0.4)[0].numpy()
    assert (run.image == want).all()
    p = run.probs.reshape(-1, run.probs.shape[-1])                          # (C*H*W, L)
    assert np.allclose(p.sum(1), 1, atol=1e-5)
    assert ((p == 0) | (p >= 0.4 * p.max(1, keepdims=True) - 1e-6)).all()
    plain = run_all(gen.generate(canvas, mask, "mnist", "PixelCNN", 0.2, 4, "Max", "3", 1,
                                 2.0))[-1][-1]
    assert (plain.probs > 0).sum() > (run.probs > 0).sum()                 # the tail is back
    for bad in (-0.1, 0.9, float("nan"), "some"):
        with pytest.raises(gr.Error, match="min-p"):
            run_all(gen.generate(canvas, mask, "mnist", "PixelCNN", 1.0, 4, "Max", "3", 1,
                                 2.0, bad))
    with pytest.raises(gr.Error, match="min-p"):
        run_all(cmp.compare(canvas, mask, "mnist", 1.0, 4, "Max", "3", 2.0, 0.9))


def test_bad_label_is_the_apps_message(class_checkpoints):
    with pytest.raises(gr.Error, match="unknown label 'cat'.*Any, 0, 1"):
        run_all(gen.generate(None, None, "mnist", "PixelCNN", 1.0, 0, "Max", "cat"))
    with pytest.raises(gr.Error, match="not class-conditional"):
        run_all(gen.generate(None, None, "mnist", "Row LSTM", 1.0, 0, "Max", "3"))
    with pytest.raises(gr.Error, match="unknown label 'cat'"):
        run_all(cmp.compare(None, None, "mnist", 1.0, 0, "Max", "cat"))
    for bad in (-1, 5.5, float("nan"), "strong", True):
        with pytest.raises(gr.Error, match="class strength must be"):
            run_all(gen.generate(None, None, "mnist", "PixelCNN", 1.0, 0, "Max", "3", 1, bad))
        with pytest.raises(gr.Error, match="class strength must be"):
            run_all(cmp.compare(None, None, "mnist", 1.0, 0, "Max", "3", bad))


def test_class_control_follows_the_model(class_checkpoints):
    ctl = inputs.label_control("MNIST digits", "PixelCNN", "7")
    assert ctl["choices"][0] == "Any" and [c for c in ctl["choices"][1:]] == MNIST_NAMES
    assert ctl["value"] == "7" and ctl["interactive"]
    ctl = inputs.label_control("MNIST digits", "Row LSTM", "7")
    assert ctl["choices"] == ["Any"] and ctl["value"] == "Any" and not ctl["interactive"]
    assert "not class-conditional" in ctl["info"]
    assert inputs.label_control("mnist", None, "2")["choices"] == ["Any", *MNIST_NAMES]


def test_compare_with_a_label(class_checkpoints):
    outs = run_all(cmp.compare(None, None, "mnist", 1.0, 0, "Max", "5"))
    table = outs[-1][1]
    assert "| PixelCNN | 5 |" in table and "| Row LSTM | Any (no classes) |" in table


def test_compare_panels_one_image_per_architecture(tiny_models):
    """The UI's Compare: an image per architecture (its name is the component's label, not
    text in the pixels), those not offered for the dataset hidden; the table last."""
    canvas, mask = inputs.first_example("Fashion-MNIST")
    outs = run_all(cmp.compare_panels(canvas, mask, "Fashion-MNIST", 1.0, 0, "Max"))
    *panels, table = outs[-1]
    assert len(panels) == len(pixelnet.ARCHITECTURES)
    offered = registry.architectures("fashion")
    assert "multiscale" not in offered
    for a, p in zip(pixelnet.ARCHITECTURES, panels):
        assert p["visible"] == (a in offered)
        if a in offered:
            assert is_frame(p["value"], 28, 28)                  # the bare frame, no caption
            assert f"| {registry.ARCH_NAMES[a]} |" in table
    assert outs[0][-1].startswith("Pixel ")


def test_several_samples_of_one_input_as_a_grid(tiny_models):
    """samples=4: four completions of the same input (seeds seed..seed+3) in one batch, shown
    as a 2x2 grid; each is the run that seed would give alone; each cell can be inspected."""
    canvas, mask = inputs.first_example("MNIST digits")
    outs = run_all(gen.generate(canvas, mask, "mnist", "PixelCNN", 1.0, 5, "Max", "Any", 4))
    frame, chart, progress, result, entropy, runs = outs[-1]
    side = 2 * 28 * im.SCALE + im.GRID_GAP
    assert frame.shape == (side, side, 3) and entropy.shape == (side, side, 3)
    assert isinstance(runs, list) and len(runs) == 4 and progress.startswith("Done")
    assert "NLL of the 4 samples (seeds 5 to 8)" in result
    for k, run in enumerate(runs):
        alone = run_all(gen.generate(canvas, mask, "mnist", "PixelCNN", 1.0, 5 + k, "Max"))[-1][-1]
        assert (run.image == alone.image).all()
        r, c = divmod(k, 2)
        cell = frame[r * (side - 28 * im.SCALE): r * (side - 28 * im.SCALE) + 28 * im.SCALE,
                     c * (side - 28 * im.SCALE): c * (side - 28 * im.SCALE) + 28 * im.SCALE]
        assert (cell[:: im.SCALE, :: im.SCALE] == im.to_rgb(run.image, 2)).all()
    assert len({r.image.tobytes() for r in runs}) > 1            # different seeds, different images
    off = 28 * im.SCALE + im.GRID_GAP                                 # bottom-right cell, pixel (20, 3)
    click = f"{(off + 3 * im.SCALE + 2) / side} {(off + 20 * im.SCALE + 2) / side}"
    chart, text, *where = gen.inspect_point(runs, click)              # fractions of the image
    assert text.startswith("Sample 4: **Pixel (20, 3)**") and chart is not None
    assert where == [4, 20, 3]
    with pytest.raises(gr.Error, match="inside one of the samples"):
        gen.inspect_point(runs, f"{(28 * im.SCALE + 3) / side} {5 / side}")
    for bad in ("1.2 0.5", "x y", "", "0.5"):
        with pytest.raises(gr.Error, match="not on the sample"):
            gen.inspect_point(runs, bad)
    single = run_all(gen.generate(canvas, mask, "mnist", "PixelCNN", 1.0, 5, "Max"))[-1][-1]
    assert gen.inspect_point(single, f"{3.5 / 28} {27.9 / 28} 1")[1].startswith("**Pixel (27, 3)**")
    for bad in (2, "three", 16, True):
        with pytest.raises(gr.Error, match="samples must be one of 1, 4, 9"):
            run_all(gen.generate(None, None, "mnist", "PixelCNN", 1.0, 0, "Max", "Any", bad))


def test_stop_ends_the_pages_own_runs_with_an_ordinary_last_update(tiny_models):
    """Stop ends the runs its page started before it, at their next frame: the stream's last
    update is the frame as it stands and "Stopped" (no NLL); another page's run, and a run
    started after Stop, go on to the end."""
    canvas, mask = inputs.first_example("mnist")
    page, other = SimpleNamespace(session_hash="page"), SimpleNamespace(session_hash="other")
    args = (canvas, mask, "mnist", "PixelCNN", 1.0, 0, "Slow", "Any", 1)
    mine, theirs = gen.generate(*args, request=page), gen.generate(*args, request=other)
    next(mine), next(theirs)
    runs.press_stop("generate")(page)
    runs.press_stop("compare")(other)                    # another tab's Stop: not this run
    last = run_all(mine)[-1]
    frame, _, progress, result, entropy, run = last
    assert progress.startswith("⏹ Stopped at pixel ") and result == "" and entropy is None
    assert run.stopped and not run.finished and is_frame(frame, 28, 28)
    assert not run.done[:, -1, -1].any()                # Slow: far from the last pixel
    later = gen.generate(*args[:6], "Max", "Any", 1, request=page)
    assert run_all(later)[-1][2].startswith("Done")
    next(theirs)
    theirs.close()
    table = run_all(cmp.compare(canvas, mask, "mnist", 1.0, 0, "Max", "Any", request=page))[-1][1]
    assert "NLL" in table                                # started after the Stop
    stream = cmp.compare(canvas, mask, "mnist", 1.0, 0, "Slow", "Any", request=page)
    next(stream)
    runs.press_stop("compare")(page)
    assert run_all(stream)[-1][1].startswith("⏹ Stopped at pixel ")


# ----------------------------------------------------------------------------- levels

@pytest.fixture
def coarse_emoji(tmp_path, monkeypatch):
    """checkpoints/ in a tmp folder: a tiny emoji PixelCNN of 8 levels a channel (fewer than
    the data's 256), the other single-scale emoji architectures tiny at 256 levels."""
    monkeypatch.setattr(registry, "CHECKPOINTS", tmp_path)
    monkeypatch.setattr(registry, "_cache", {})
    torch.manual_seed(0)
    shape = {**registry.DATASET_INFO["emoji"].model_shape(), "levels": 8}
    pixelnet.save_checkpoint(pixelnet.build_model("pixelcnn", **shape, **TINY).eval(),
                             tmp_path / "emoji_pixelcnn.pt", dataset="emoji", test_nll=2000.0)
    for a in registry.architectures("emoji"):
        if a != "pixelcnn":
            pixelnet.save_checkpoint(tiny("emoji", a), tmp_path / f"emoji_{a}.pt", dataset="emoji")
    return tmp_path


def test_registry_takes_a_model_of_fewer_levels_than_the_data(coarse_emoji):
    m = registry.get_model("Emoji", "PixelCNN")
    assert m.cfg.levels == 8 and registry.coarse(m, "emoji") and registry.coarse(m)
    assert "bits/dim of 8 levels" in registry.describe(m)
    other = registry.get_model("emoji", "row_lstm")
    assert not registry.coarse(other, "emoji") and "levels" not in registry.describe(other)
    # more levels than the data (binarized MNIST has 2) is another dataset's model
    more = pixelnet.build_model("pixelcnn", **{**registry.DATASET_INFO["mnist"].model_shape(),
                                               "levels": 4}, **TINY)
    pixelnet.save_checkpoint(more, coarse_emoji / "mnist_pixelcnn.pt", dataset="mnist")
    with pytest.raises(ValueError, match="checkpoints/mnist_pixelcnn.pt holds"):
        registry.get_model("mnist", "pixelcnn")


def centres(frame: np.ndarray) -> np.ndarray:
    """The colour at the centre of each model pixel of a frame, ``(3, H, W)``."""
    s = im.SCALE
    return frame[s // 2::s, s // 2::s].transpose(2, 0, 1).astype(int)


def test_generate_with_a_model_of_fewer_levels(coarse_emoji):
    """The canvas holds 8-bit colour; an 8-level model completes it quantized, its softmax
    has 8 bars, its frames show levels as 8-bit values, its bits/dim say 8 levels."""
    canvas, mask = inputs.first_example("Emoji")                     # top half kept
    x = inputs.canvas_levels(canvas, "emoji")
    assert x.max() > 8                                               # 8-bit on the canvas
    outs = run_all(gen.generate(canvas, mask, "Emoji", "PixelCNN", 1.0, 3, "Max"))
    frame, _, progress, result, _, run = outs[-1]
    assert progress.startswith("Done") and run.levels == 8 and run.image.max() < 8
    assert run.probs.shape == (3, 32, 32, 8)
    np.testing.assert_allclose(run.probs.sum(-1), 1, atol=1e-4)
    want = pixelnet.data.quantize(torch.from_numpy(x), 8).numpy()
    assert (run.image[:, :16] == want[:, :16]).all()                 # the kept half, quantized
    eight_bit = pixelnet.data.dequantize(torch.from_numpy(run.image), 8).numpy()
    assert (centres(frame) == eight_bit).all()                       # shown via dequantize
    assert "bits/dim of 8 levels" in result
    chart, text = gen.inspect_pixel(run, 20, 5)
    assert isinstance(chart, Image.Image) and "generated" in text


def test_compare_mixes_models_of_different_levels(coarse_emoji):
    canvas, mask = inputs.first_example("Emoji")
    x = inputs.canvas_levels(canvas, "emoji")
    outs = run_all(cmp.compare_panels(canvas, mask, "Emoji", 1.0, 0, "Max"))
    *panels, table = outs[-1]
    shown = {a: centres(p["value"]) for a, p in zip(pixelnet.ARCHITECTURES, panels)
             if p.get("visible")}
    assert set(shown) == set(registry.architectures("emoji"))
    coarse_top = pixelnet.data.dequantize(pixelnet.data.quantize(torch.from_numpy(x), 8), 8)
    for a, img in shown.items():                                     # the kept top half
        want = coarse_top.numpy() if a == "pixelcnn" else x
        assert (img[:, :16] == want[:, :16]).all(), a
    assert (shown["pixelcnn"][:, :16] != x[:, :16]).any()            # quantized: visibly so
    line = next(r for r in table.splitlines() if r.startswith(f"| {registry.ARCH_NAMES['pixelcnn']} |"))
    assert "of 8 levels" in line and "not comparable" in table


# ----------------------------------------------------------------------------- served

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served():
    """The app on a free local port, with tiny models."""
    mp = pytest.MonkeyPatch()
    mp.setattr(registry, "get_model", tiny)
    demo = app.serve(port=free_port(), host="127.0.0.1", block=False)
    yield demo.local_url
    demo.close()
    mp.undo()


def test_client_generate_with_no_arguments_streams_to_a_full_image(served):
    from gradio_client import Client
    client = Client(served, verbose=False)
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/generate", "/compare", "/upload"} <= set(api)
    assert all(p["parameter_has_default"] for p in api["/generate"]["parameters"])
    job = client.submit(api_name="/generate")
    updates = list(job)
    assert len(updates) >= 3
    frame, chart, progress, result, entropy = job.outputs()[-1]
    assert progress.startswith("Done") and "NLL" in result
    img = np.asarray(Image.open(frame).convert("RGB"))
    assert img.shape == (280, 280, 3)
    assert not (img == im.PENDING).all(-1).any()                   # every pixel generated
    assert np.asarray(Image.open(entropy)).shape[:2] == (280, 280)


def test_client_stop_cancels_only_that_session(served):
    from gradio_client import Client
    slow = Client(served, verbose=False).submit(speed="Slow", api_name="/generate")
    other = Client(served, verbose=False).submit(seed=5, api_name="/generate")
    deadline = time.time() + 30
    while slow.status().code.name not in ("ITERATING", "PROCESSING") and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1)
    slow.cancel()
    assert other.result(timeout=60)[2].startswith("Done")            # untouched
    assert slow.status().code.name == "CANCELLED"
    assert not slow.outputs() or not slow.outputs()[-1][2].startswith("Done")


def test_client_bad_input_is_an_error_not_a_crash(served):
    from gradio_client import Client
    client = Client(served, verbose=False)
    with pytest.raises(Exception, match="between 0 and 2"):                # the app's check
        client.predict(temperature=9, api_name="/generate")
    with pytest.raises(Exception, match="not offered for Fashion-MNIST"):  # the app's
        client.predict(dataset="Fashion-MNIST", architecture="Multi-Scale", api_name="/generate")
    assert client.submit(api_name="/generate").result(timeout=60)[2].startswith("Done")


def test_client_own_image_and_mask(served, tmp_path):
    """The README's example: a drawing and a mask (opaque = generate) as plain files."""
    from gradio_client import Client, handle_file
    digit, mask = tmp_path / "digit.png", tmp_path / "mask.png"
    Image.new("L", (56, 56), 0).save(digit)
    m = np.zeros((56, 56, 4), np.uint8)
    m[40:] = 255                                                     # rows 20-27
    Image.fromarray(m).save(mask)
    client = Client(served, verbose=False)
    out = client.predict({"background": handle_file(str(digit)), "layers": [], "composite": None},
                         {"background": None, "layers": [handle_file(str(mask))], "composite": None},
                         "MNIST digits", "Row LSTM", 1.0, 0, "Max", api_name="/generate")
    assert "224 of 784 pixels generated" in out[3]
    img = np.asarray(Image.open(out[0]).convert("RGB"))
    assert (img[: 20 * im.SCALE] == 0).all()                         # kept black
    canvas, _ = client.predict(handle_file(str(digit)), "Emoji", api_name="/upload")
    assert Image.open(canvas["background"]).size == (320, 320)


def raw_call(url: str, endpoint: str, data: list) -> tuple[str, object]:
    """POST ``data`` (json.dumps: NaN allowed) to Gradio's HTTP API; the last event and its
    data."""
    import json

    import httpx
    r = httpx.post(f"{url}gradio_api/call/{endpoint}", content=json.dumps({"data": data}),
                   headers={"content-type": "application/json"}, timeout=30)
    r.raise_for_status()
    event = payload = None
    with httpx.stream("GET", f"{url}gradio_api/call/{endpoint}/{r.json()['event_id']}",
                      timeout=60) as s:
        for line in s.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                payload = json.loads(line[5:])
    return event, payload


def test_client_bad_images_and_controls_get_the_apps_messages(served, huge_png, tmp_path):
    """Every bad canvas, mask, upload and control through the API: the app's own message
    (no server path, no raw Gradio error), nothing decoded, and the server keeps serving."""
    from gradio_client import Client, handle_file
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"not an image at all")
    huge, text = handle_file(huge_png), handle_file(str(notes))
    client = Client(served, verbose=False)
    before = rss_mb()
    cases = [
        (dict(canvas={"background": huge, "layers": [], "composite": None}), "canvas image has"),
        (dict(mask={"background": None, "layers": [huge], "composite": None}), "mask image has"),
        (dict(canvas={"background": text, "layers": [], "composite": None}), "not an image"),
        (dict(mask={"background": None, "layers": [text], "composite": None}), "not an image"),
        (dict(seed=2 ** 64), "from 0 to 2\\*\\*63 - 1"),
        (dict(seed=-3), "from 0 to 2\\*\\*63 - 1"),
        (dict(seed=2.5), "whole number"),
        (dict(temperature=9), "between 0 and 2"),
        (dict(speed="Warp"), "unknown speed"),
        (dict(dataset="CIFAR-100"), "unknown dataset"),
        (dict(architecture="Transformer"), "unknown architecture"),
    ]
    for kwargs, message in cases:
        with pytest.raises(Exception, match=message) as e:
            client.predict(**kwargs, api_name="/generate")
        assert "/tmp" not in str(e.value) and "Traceback" not in str(e.value), kwargs
    for file, message in [(huge, "at most 16.8 megapixels"), (text, "not an image")]:
        with pytest.raises(Exception, match=message):
            client.predict(file, "MNIST digits", api_name="/upload")
    # NaN and infinity: not JSON, but Python's json (and the server's) read them
    args = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    defaults = {p["parameter_name"]: p["parameter_default"] for p in args["/generate"]["parameters"]}
    for name, value, message in [("temperature", float("nan"), "between 0 and 2"),
                                 ("temperature", float("-inf"), "between 0 and 2"),
                                 ("seed", float("nan"), "whole number"),
                                 ("guidance", float("nan"), "class strength"),
                                 ("seed", float("inf"), "whole number")]:
        event, data = raw_call(served, "generate", list({**defaults, name: value}.values()))
        assert event == "error" and message in str(data), (name, value, event, data)
    assert rss_mb() - before < 150                                  # no 576 MB decode
    assert client.submit(api_name="/generate").result(timeout=60)[2].startswith("Done")


def test_client_broken_checkpoint_is_named_and_the_server_keeps_serving(
        served, broken_checkpoints, monkeypatch):
    from gradio_client import Client

    def models(ds, arch):                   # the broken file for MNIST PixelCNN only
        if (registry.dataset_key(ds), registry.arch_key(arch)) == ("mnist", "pixelcnn"):
            return REAL_GET_MODEL(ds, arch)
        return tiny(ds, arch)

    monkeypatch.setattr(registry, "get_model", models)
    client = Client(served, verbose=False)
    for endpoint in ("/generate", "/compare"):
        with pytest.raises(Exception, match="checkpoints/mnist_pixelcnn.pt") as e:
            client.predict(api_name=endpoint)
        assert str(broken_checkpoints) not in str(e.value) and "UNTRAINED" not in str(e.value)
    out = client.predict(architecture="Row LSTM", speed="Max", api_name="/generate")
    assert out[2].startswith("Done")


def test_served_app_limits_uploads_and_cleans_its_cache(served):
    import httpx
    config = httpx.get(f"{served}config", timeout=30).json()
    assert config["max_file_size"] == im.MAX_INPUT_BYTES
    assert app.build_app().delete_cache == app.CACHE_CLEANUP


def decoded(value: dict) -> np.ndarray:
    """The pixels of an inline image value (components.inline)."""
    import base64
    import io
    assert value["url"].startswith("data:image/png;base64,") and value["meta"] is None
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(value["url"].split(",", 1)[1]))))


def test_the_page_gets_its_images_inside_the_updates(tiny_models):
    """The page's Generate and Compare send each image inside its update (a PNG data URL of
    the same pixels, also inside gr.update); their events skip Gradio's postprocessing (which
    would write files), and /generate, for API clients, still sends files."""
    from demo.components import inlined
    canvas, mask = inputs.first_example("mnist")
    args = (canvas, mask, "mnist", "PixelCNN", 1.0, 0, "Max")
    plain, page = run_all(gen.generate(*args)), run_all(inlined(gen.generate)(*args))
    for k in (0, -1):                                       # the first frame, and the last
        assert (decoded(page[k][0]) == plain[k][0]).all()
    assert (decoded(page[-1][1]) == np.asarray(plain[-1][1])).all()      # the chart
    assert (decoded(page[-1][4]) == plain[-1][4]).all()                  # the entropy map
    assert page[-1][2] == plain[-1][2] and "NLL of this sample" in page[-1][3]
    chart, text = inlined(gen.inspect_at)(plain[-1][-1], 1, 20, 5)       # Inspect's chart
    assert (decoded(chart) == np.asarray(gen.inspect_at(plain[-1][-1], 1, 20, 5)[0])).all()
    assert text.startswith("**Pixel (20, 5)**")
    panels = run_all(inlined(cmp.compare_panels)(canvas, mask, "Fashion-MNIST", 1.0, 0, "Max"))
    shown = [p for p in panels[-1][:-1] if p.get("visible")]
    assert shown and all(decoded(p["value"]).shape == (280, 280, 3) for p in shown)

    demo = app.build_app()
    events = {(d.api_name, getattr(d.fn, "__name__", None)): d for d in demo.fns.values()}
    assert events[("generate", "generate")].postprocess
    ui = [d for (name, fn), d in events.items() if name != "generate" and
          fn in ("generate", "compare_panels", "inspect_point", "inspect_at")]
    assert {d.fn.__name__ for d in ui} == {"generate", "compare_panels", "inspect_point",
                                           "inspect_at"}
    assert all(not d.postprocess for d in ui)
