"""Sampling engine tests: fast == naive at every step, determinism, completion, temperature,
event order. Tiny configs, every architecture, 1-channel binary and RGB 256 levels."""
import pytest
import torch

import pixelnet
from pixelnet.sampling import completion_inputs, sample_stream
from conftest import tiny_model


def small(arch, data):
    return tiny_model(arch, height=6, width=6, **data)


def test_fast_matches_naive_at_every_step(arch, data):
    check_fast_matches_naive(small(arch, data), data)


@pytest.mark.parametrize("base", ["pixelcnn", "row_lstm"])
def test_fast_matches_naive_multiscale_bases(base, data):
    """The other bases of the Multi-Scale model (the default one is in the test above)."""
    check_fast_matches_naive(tiny_model("multiscale", base=base, height=6, width=6, **data), data)


def check_fast_matches_naive(m, data):
    naive = list(sample_stream(m, 2, seed=3, method="naive"))
    fast = list(sample_stream(m, 2, seed=3, method="fast"))
    assert len(naive) == len(fast) == 6 * 6 * data["channels"]
    for a, b in zip(naive, fast):
        assert (a.i, a.j, a.c) == (b.i, b.j, b.c)
        torch.testing.assert_close(a.probs, b.probs, rtol=1e-4, atol=1e-5)
        assert torch.equal(a.value, b.value)
    assert torch.equal(naive[-1].image, fast[-1].image)
    # the same seed gives the same images; sample() agrees with the stream
    assert torch.equal(pixelnet.sample(m, 2, seed=3), fast[-1].image)


def test_probs_are_the_models_conditionals(arch):
    """Each event's distribution is softmax(logits) of the full model at that sub-pixel of
    the final image (the model is causal, so later pixels do not change it)."""
    m = small(arch, dict(channels=3, levels=256))
    events = list(sample_stream(m, 1, seed=0))
    with torch.no_grad():
        p = torch.softmax(m(events[-1].image), 1)
    for e in events[::7]:
        torch.testing.assert_close(e.probs[0], p[0, :, e.c, e.i, e.j], rtol=1e-4, atol=1e-5)


def test_known_pixels_are_never_changed(arch, data):
    m = small(arch, data)
    g = torch.Generator().manual_seed(0)
    known = torch.randint(0, data["levels"], (3, data["channels"], 6, 6), generator=g)
    mask = torch.rand(3, data["channels"], 6, 6, generator=g) < 0.5
    for method in ("fast", "naive"):
        out = pixelnet.sample(m, 3, known=known, mask=mask, seed=1, method=method)
        assert torch.equal(out[~mask], known[~mask])
        assert out.min() >= 0 and out.max() < data["levels"]
    torch.testing.assert_close(
        pixelnet.sample(m, 3, known=known, mask=mask, seed=1, method="fast"),
        pixelnet.sample(m, 3, known=known, mask=mask, seed=1, method="naive"))


def test_stream_order_one_event_per_generated_subpixel(arch):
    m = small(arch, dict(channels=3, levels=256))
    known, mask = completion_inputs("top_half", 3, 6, 6, image=torch.zeros(1, 3, 6, 6, dtype=torch.long))
    events = list(sample_stream(m, 1, known=known, mask=mask, seed=0))
    order = [(i, j) for (i, j) in m.generation_order() if mask[i, j]]
    assert [(e.i, e.j, e.c) for e in events] == [(i, j, c) for (i, j) in order for c in range(3)]
    assert all(e.total == len(events) and e.step == k for k, e in enumerate(events))
    if arch != "multiscale":                  # plain raster order
        assert order == sorted(order)


def test_temperature_near_zero_gives_argmax(arch, data):
    m = small(arch, data)
    img = pixelnet.sample(m, 2, temperature=1e-6, seed=0)
    with torch.no_grad():
        assert torch.equal(m(img).argmax(1), img)
    assert torch.equal(pixelnet.sample(m, 2, temperature=0, seed=5), img)
    assert pixelnet.nll(m, img).requires_grad          # samples are ordinary tensors


def test_seed_uses_private_generator():
    m = small("row_lstm", dict(channels=1, levels=2))
    torch.manual_seed(0)
    a = pixelnet.sample(m, 4, seed=1)
    state = torch.get_rng_state()
    b = pixelnet.sample(m, 4, seed=1)
    assert torch.equal(torch.get_rng_state(), state)      # global RNG untouched
    assert torch.equal(a, b)
    assert not torch.equal(a, pixelnet.sample(m, 4, seed=2))


def test_presets():
    img = torch.randint(0, 256, (1, 3, 6, 8))
    known, mask = completion_inputs("single_pixel", 3, 6, 8, image=img, pixel=(2, 3))
    assert mask.sum() == 47 and not mask[2, 3] and torch.equal(known, img)
    known, mask = completion_inputs("top_half", 3, 6, 8, image=img)
    assert not mask[:3].any() and mask[3:].all()
    region = torch.zeros(6, 8, dtype=torch.bool)
    region[1:3, 2:5] = True
    assert torch.equal(completion_inputs("region", 3, 6, 8, image=img, region=region)[1], region)
    m = tiny_model("diagonal_bilstm", channels=3, levels=256, height=6, width=8)
    known, mask = completion_inputs("single_pixel", 3, 6, 8, image=img, pixel=(0, 0))
    out = pixelnet.sample(m, 2, known=known, mask=mask, seed=0)
    assert torch.equal(out[:, :, 0, 0], img[:, :, 0, 0].expand(2, 3))


def test_bad_arguments():
    m = small("pixelcnn", dict(channels=1, levels=2))
    with pytest.raises(ValueError, match="method"):
        pixelnet.sample(m, 1, method="quick")
    with pytest.raises(ValueError, match="temperature"):
        pixelnet.sample(m, 1, temperature=-1)
    with pytest.raises(ValueError, match="mask"):
        pixelnet.sample(m, 1, known=torch.zeros(1, 1, 6, 6, dtype=torch.long),
                        mask=torch.ones(5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask"):
        pixelnet.sample(m, 1, known=torch.zeros(1, 1, 6, 6, dtype=torch.long))
    with pytest.raises(ValueError, match="n must"):
        pixelnet.sample(m, 0)
    with pytest.raises(ValueError, match="n must"):
        pixelnet.sample(m, pixelnet.sampling.MAX_SAMPLES + 1)
    for t in (float("nan"), float("inf"), [1.0, -0.5]):
        with pytest.raises(ValueError, match="temperature"):
            pixelnet.sample(m, 2, temperature=t)
    for seed in (-1, 2 ** 64, 1.5):
        with pytest.raises(ValueError, match="seed"):
            pixelnet.sample(m, 1, seed=seed)
    with pytest.raises(ValueError, match="noise"):
        pixelnet.sample(m, 2, noise=torch.rand(1, 1, 6, 6))
    with pytest.raises(ValueError, match="not class-conditional"):
        pixelnet.sample(m, 1, y=0)
    with pytest.raises(ValueError, match="preset"):
        completion_inputs("bottom", 1, 6, 8)


def test_fused_cell_equals_lstm_update():
    """The fast engines' one-call cell (torch.lstm_cell, gates reordered) is the paper's LSTM
    step after a matrix product, for a batch and for a per-sample bias."""
    from pixelnet.layers import lstm_update
    from pixelnet.engine import Cell, cell_order
    g = torch.Generator().manual_seed(0)
    n, h, d = 3, 5, 7
    x, w, c = torch.randn(n, d, generator=g), torch.randn(d, 4 * h, generator=g), torch.randn(n, h, generator=g)
    for b in (torch.randn(4 * h, generator=g), torch.randn(n, 4 * h, generator=g)):
        want = lstm_update(torch.addmm(b, x, w), c)
        got = Cell(w, n)(x, cell_order(b), c)
        for a, e in zip(got, want):
            torch.testing.assert_close(a, e)


def test_fast_matches_naive_float64(arch):
    """The fast engines allocate in the model's dtype: a float64 model samples in float64,
    and fast == naive there too (probabilities to 1e-10)."""
    m = small(arch, dict(channels=3, levels=256)).double()
    naive = list(sample_stream(m, 2, seed=4, method="naive"))
    fast = list(sample_stream(m, 2, seed=4, method="fast"))
    for a, b in zip(naive, fast):
        torch.testing.assert_close(a.probs.double(), b.probs.double(), rtol=0, atol=1e-6)
        assert torch.equal(a.value, b.value)
    assert torch.equal(naive[-1].image, fast[-1].image)


def test_fast_matches_naive_with_labels(arch, data):
    """Class-conditional models: the engines fold the class vectors in exactly; a batch may
    mix classes and "no class" (-1)."""
    m = tiny_model(arch, height=6, width=6, classes=3, **data)
    with torch.no_grad():                   # class vectors start at zero: make them matter
        for p in m.parameters():
            if p.dim() == 2 and p.shape[0] == 4:
                p.normal_(0, 0.2)
    y = torch.tensor([2, -1])
    naive = list(sample_stream(m, 2, seed=3, method="naive", y=y))
    fast = list(sample_stream(m, 2, seed=3, method="fast", y=y))
    for a, b in zip(naive, fast):
        torch.testing.assert_close(a.probs, b.probs, rtol=1e-4, atol=1e-5)
        assert torch.equal(a.value, b.value)
    assert torch.equal(naive[-1].image, fast[-1].image)
    # the label changes the distribution; y=None is the "no class" entry
    x = pixelnet.sample(m, 2, seed=3, y=y)
    assert not torch.allclose(m(x, y=0), m(x, y=1))
    assert torch.equal(m(x), m(x, y=torch.tensor([-1, -1])))


def test_batched_runs_equal_runs_alone(arch):
    """Runs with their own inputs, seeds, temperatures and labels, concatenated into one
    batch, give exactly the images each gives alone."""
    from pixelnet.sampling import draw_noise
    m = tiny_model(arch, channels=3, levels=256, height=6, width=6, classes=2)
    g = torch.Generator().manual_seed(0)
    runs = []
    for k, (n, temp, y) in enumerate([(1, 1.0, None), (2, 0.0, 1), (3, 0.7, 0)]):
        known = torch.randint(0, 256, (1, 3, 6, 6), generator=g)
        mask = torch.rand(6, 6, generator=g) < 0.6
        runs.append((n, known, mask, temp, y, 100 + k))
    alone = [pixelnet.sample(m, n, known, mask, temp, seed, y=y)
             for n, known, mask, temp, y, seed in runs]
    known = torch.cat([kn.expand(n, -1, -1, -1) for n, kn, *_ in runs])
    mask = torch.cat([mk[None, None].expand(n, 3, 6, 6) for n, _, mk, *_ in runs])
    temps = torch.cat([torch.full((n,), t) for n, _, _, t, *_ in runs])
    ys = torch.cat([torch.full((n,), -1 if y is None else y) for n, _, _, _, y, _ in runs])
    noise = torch.cat([draw_noise(m, n, seed) for n, *_, seed in runs])
    batch = pixelnet.sample(m, len(known), known, mask, temps, y=ys, noise=noise)
    assert torch.equal(batch, torch.cat(alone))
    # and the first image of a seed is the same whatever n is
    assert torch.equal(pixelnet.sample(m, 3, seed=7)[:1], pixelnet.sample(m, 1, seed=7))


def labelled(arch, data, classes=3):
    """A tiny class-conditional model whose class vectors matter (they start at zero)."""
    m = tiny_model(arch, height=6, width=6, classes=classes, **data)
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() == 2 and p.shape[0] == classes + 1:
                p.normal_(0, 0.5)
    return m


def test_guidance_equals_its_formula_and_fast_matches_naive(arch, data):
    """Classifier-free guidance: each step's distribution is softmax(log p(v) + s (log p(v|y)
    - log p(v))) of the model's own conditionals on the image so far, identical with either
    engine; an image without a class is sampled as if unguided, in the same batch."""
    m = labelled(arch, data)
    y, s = torch.tensor([2, 0, -1]), torch.tensor([3.0, 0.5, 3.0])
    naive = list(sample_stream(m, 3, seed=5, method="naive", y=y, guidance=s))
    fast = list(sample_stream(m, 3, seed=5, method="fast", y=y, guidance=s))
    for a, b in zip(naive, fast):
        torch.testing.assert_close(a.probs, b.probs, rtol=1e-4, atol=1e-5)
        assert torch.equal(a.value, b.value)
    x = fast[-1].image
    with torch.no_grad():
        cond = torch.log_softmax(m(x, y=y).double(), 1)               # (3, L, C, H, W)
        free = torch.log_softmax(m(x).double(), 1)
    want = torch.softmax(free + s.double().view(3, 1, 1, 1, 1) * (cond - free), 1)
    for ev in fast:
        torch.testing.assert_close(ev.probs.double(), want[:, :, ev.c, ev.i, ev.j],
                                   rtol=1e-4, atol=1e-5)
    assert torch.equal(x[2:], pixelnet.sample(m, 3, seed=5, y=y)[2:])   # no class: unguided


def test_guidance_one_is_the_model_and_zero_ignores_the_class(arch):
    """Scale 1 (the default) samples the conditional model itself; scale 0 samples the
    unconditional one, whatever the class; the same seed gives the same images."""
    m = labelled(arch, dict(channels=3, levels=256))
    y = torch.tensor([1, 2])
    assert torch.equal(pixelnet.sample(m, 2, seed=9, y=y, guidance=1.0),
                       pixelnet.sample(m, 2, seed=9, y=y))
    assert torch.equal(pixelnet.sample(m, 2, seed=9, y=y, guidance=0.0),
                       pixelnet.sample(m, 2, seed=9))
    assert not torch.equal(pixelnet.sample(m, 2, seed=9, y=y, guidance=4.0),
                           pixelnet.sample(m, 2, seed=9, y=y))


def test_bad_guidance_is_refused():
    m = labelled("pixelcnn", dict(channels=1, levels=2))
    for g in (-1, float("nan"), pixelnet.sampling.MAX_GUIDANCE + 1, [1.0], "strong"):
        with pytest.raises(ValueError, match="guidance"):
            pixelnet.sample(m, 2, y=1, guidance=g)


def test_drawn_from_gives_each_steps_distribution(arch):
    """``drawn_from`` (the app's scoring and Inspect) gives, in one pass over a finished
    image, the distribution every sub-pixel was drawn from, guided or not."""
    m = labelled(arch, dict(channels=3, levels=256))
    y, s = torch.tensor([1, -1, 0]), torch.tensor([2.5, 2.5, 1.0])
    events = list(sample_stream(m, 3, seed=2, y=y, guidance=s))
    with torch.no_grad():
        p = torch.softmax(pixelnet.sampling.drawn_from(m, events[-1].image, y, s).double(), 1)
        assert torch.equal(pixelnet.sampling.drawn_from(m, events[-1].image, y), m(events[-1].image, y))
        model_logits, drawn = pixelnet.sampling.conditionals(m, events[-1].image, y, s)
        torch.testing.assert_close(model_logits, m(events[-1].image, y))   # the NLL's, one pass
        torch.testing.assert_close(torch.softmax(drawn.double(), 1), p)
    for ev in events:
        torch.testing.assert_close(ev.probs.double(), p[:, :, ev.c, ev.i, ev.j], rtol=1e-4, atol=1e-5)


def test_min_p_cuts_the_tail_and_fast_matches_naive(arch):
    """Min-p: each step draws from the tempered distribution without the values less likely
    than min_p times the most likely one, renormalized; identical with either engine; per
    image, so an image at 0 is sampled as without it, in the same batch."""
    m = labelled(arch, dict(channels=3, levels=256))
    cut, y = torch.tensor([0.3, 0.0]), torch.tensor([1, 2])
    naive = list(sample_stream(m, 2, seed=6, method="naive", y=y, guidance=2, min_p=cut))
    fast = list(sample_stream(m, 2, seed=6, method="fast", y=y, guidance=2, min_p=cut))
    for a, b in zip(naive, fast):
        torch.testing.assert_close(a.probs, b.probs, rtol=1e-4, atol=1e-5)
        assert torch.equal(a.value, b.value)
    x = fast[-1].image
    with torch.no_grad():
        full = pixelnet.sampling.drawn_from(m, x, y, 2.0).double().softmax(1)   # (2, L, C, H, W)
    for ev in fast[::5]:
        p, want = ev.probs[0].double(), full[0, :, ev.c, ev.i, ev.j]
        kept = want >= 0.3 * want.max()
        assert (p[~kept] == 0).all() and p[ev.value[0]] > 0              # the tail never drawn
        torch.testing.assert_close(p[kept], want[kept] / want[kept].sum(), rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(ev.probs[1].double(), full[1, :, ev.c, ev.i, ev.j],
                                   rtol=1e-4, atol=1e-5)                  # min_p 0: untouched
    assert torch.equal(x[1:], pixelnet.sample(m, 2, seed=6, y=y, guidance=2)[1:])


def test_min_p_zero_is_the_default_and_one_the_most_likely_value(arch):
    m = small(arch, dict(channels=3, levels=256))
    assert torch.equal(pixelnet.sample(m, 2, seed=3, min_p=0.0), pixelnet.sample(m, 2, seed=3))
    assert torch.equal(pixelnet.sample(m, 2, seed=3, min_p=1.0),
                       pixelnet.sample(m, 2, seed=3, temperature=0))


def test_bad_min_p_is_refused():
    m = small("pixelcnn", dict(channels=1, levels=2))
    for bad in (-0.1, 1.5, float("nan"), [0.1, 0.2, 0.3], "some"):
        with pytest.raises(ValueError, match="min_p"):
            pixelnet.sample(m, 2, min_p=bad)
