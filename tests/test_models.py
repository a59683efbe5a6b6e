"""Core model tests: shapes, causality by perturbation, receptive fields, masks, NLL,
checkpoints, errors, and that training lowers the loss. Tiny configs throughout."""
import math

import pytest
import torch
import torch.nn.functional as F

import pixelnet
from pixelnet.explain import receptive_field
from pixelnet.layers import make_mask, skew, unskew
from conftest import tiny_model


def rand_images(model, n, seed=0):
    c = model.cfg
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, c.levels, (n, c.channels, c.height, c.width), generator=g)


def subpixel_rank(model):
    """rank[c, i, j]: index of sub-pixel (c, i, j) in the model's generation order."""
    c = model.cfg
    rank = torch.empty(c.channels, c.height, c.width, dtype=torch.long)
    for k, (i, j) in enumerate(model.generation_order()):
        for ch in range(c.channels):
            rank[ch, i, j] = k * c.channels + ch
    return rank


def test_shapes_and_config_roundtrip(arch, data):
    m = tiny_model(arch, **data)
    x = rand_images(m, 2)
    y = m(x)
    assert y.shape == (2, data["levels"], data["channels"], 6, 6)
    assert y.dtype == torch.float32
    rebuilt = pixelnet.build_model(**m.config)
    assert rebuilt.config == m.config
    assert sum(p.numel() for p in rebuilt.parameters()) == pixelnet.param_count(m)


def test_causality_by_perturbation(arch, data):
    check_causal(tiny_model(arch, **data))


@pytest.mark.parametrize("base", ["pixelcnn", "row_lstm"])
def test_causality_multiscale_bases(base, data):
    """The other bases of the Multi-Scale model (the default one is in the test above)."""
    check_causal(tiny_model("multiscale", base=base, **data))


def test_causality_with_labels(arch, data):
    """Class-conditional models are causal too, with a class and with "no class". (Only the
    no-leak half: random class vectors can switch off every ReLU of a tiny net's colour
    group, which the unlabelled test above already covers.)"""
    m = tiny_model(arch, classes=3, **data)
    with torch.no_grad():                   # class vectors start at zero: make them matter
        for name, p in m.named_parameters():
            if name.endswith("label.weight"):
                p.normal_(0, 0.5)
    check_causal(m, y=2, reaches_later=False)
    check_causal(m, y=None, reaches_later=False)


def test_dropout_only_while_training_and_causal(arch, data, monkeypatch):
    """Dropout of the blocks' updates: none in eval mode (the logits of dropout 0 with the same
    weights), some in training mode; and a training-mode model stays causal (each image given
    the same dropout mask, so that only the perturbed sub-pixel differs)."""
    m = tiny_model(arch, dropout=0.5, **data)
    plain = pixelnet.build_model(**{**m.config, "dropout": 0.0})
    plain.load_state_dict(m.state_dict())
    x = rand_images(m, 2)
    with torch.no_grad():
        assert torch.equal(m.eval()(x), plain.eval()(x))
        torch.manual_seed(1)
        assert not torch.allclose(m.train()(x), plain(x))

    def same_mask(t, p):        # one mask for every image and call: (C, H, W) of t's shape
        keep = torch.rand(t.shape[1:], generator=torch.Generator().manual_seed(0)) >= p
        return t * keep.to(t.dtype) / (1 - p)
    monkeypatch.setattr(F, "dropout", same_mask)
    check_causal(m.train(), reaches_later=False)
    with pytest.raises(ValueError, match="dropout must be in"):
        tiny_model(arch, dropout=1.0, **data)


def check_causal(m, y=None, reaches_later=True):
    """Change each sub-pixel in turn: no logit at an earlier (position, channel) moves,
    and some later one does."""
    m = m.double()
    C, H, W = m.cfg.channels, m.cfg.height, m.cfg.width
    rank = subpixel_rank(m)
    cs, iss, js = (t.flatten() for t in torch.meshgrid(
        torch.arange(C), torch.arange(H), torch.arange(W), indexing="ij"))
    idx = torch.arange(C * H * W)
    past = torch.zeros(C * H * W, C, H, W, dtype=torch.float64)
    for seed in range(3):      # a few base images: a tiny net's ReLUs may all be off in one
        x = rand_images(m, 1, seed)
        # one perturbed copy of x per sub-pixel, all in one batch
        xs = x.repeat(C * H * W, 1, 1, 1)
        xs[idx, cs, iss, js] = (xs[idx, cs, iss, js] + m.cfg.levels // 2) % m.cfg.levels
        with torch.no_grad():
            diff = (m(xs, y=y) - m(x, y=y)).abs().amax(1)          # (N, C, H, W)
        past = torch.maximum(past, diff)
    for n in range(C * H * W):
        earlier = rank <= rank[cs[n], iss[n], js[n]]
        assert past[n][earlier].max() < 1e-10, f"sub-pixel {n} leaks into the past"
        if reaches_later and (~earlier).any():
            assert past[n][~earlier].max() > 1e-8, f"sub-pixel {n} influences nothing later"


@pytest.mark.parametrize("arch", ["pixelcnn", "row_lstm", "diagonal_bilstm"])
def test_receptive_field_matches_causal_context(arch):
    """Gradient receptive fields never reach a future sub-pixel (RGB, centre pixel)."""
    m = tiny_model(arch, channels=3, levels=256, height=7, width=7)
    rank = subpixel_rank(m)
    for c in range(3):
        rf = receptive_field(m, 3, 3, c)
        assert (rf[rank >= rank[c, 3, 3]] == 0).all()


@pytest.mark.parametrize("layers", [1, 3])
def test_diagonal_bilstm_sees_whole_context(layers):
    """Every earlier pixel reaches the prediction, already with one layer, with exactly one
    exception that the paper's design implies at any depth: the last pixel of the previous
    row, (i-1, W-1). Only features *after* a pixel contain it (mask A); the right-to-left
    stream of row i-1 therefore never carries it, and in row i the left-to-right stream only
    flows rightwards from where the 7x7 first layer reaches it (columns >= W-4)."""
    m = tiny_model("diagonal_bilstm", height=8, width=10, layers=layers)
    for (i, j) in [(5, 0), (5, 4), (5, 6), (7, 9), (0, 7)]:
        rf = receptive_field(m, i, j)[0]
        earlier = torch.zeros(8, 10, dtype=torch.bool)
        earlier[:i] = True
        earlier[i, :j] = True
        missed = earlier & (rf == 0)
        expect = torch.zeros_like(missed)
        if i > 0 and j < 10 - 4:
            expect[i - 1, 9] = True
        assert torch.equal(missed, expect), f"Diagonal BiLSTM context of ({i}, {j})"
        assert (rf[~earlier] == 0).all()


def test_row_lstm_context_is_a_triangle():
    """Row LSTM misses pixels far to the left in the current row and far to the sides in
    the rows just above; its field widens with the distance upward."""
    m = tiny_model("row_lstm", height=8, width=16, layers=1)
    rf = receptive_field(m, 6, 15)[0] > 0
    assert not rf[6, :8].any()           # far left in the current row: unseen
    assert rf[6, 11:15].all()            # 7x7 mask A (3 left) + 1x3 input-to-state (1 more)
    assert not rf[5, 0]                  # far left one row up: unseen
    seen_per_row = rf[:6].sum(1)
    assert (seen_per_row[:-1] >= seen_per_row[1:]).all()   # wider further up: a triangle
    # pixels strictly before (6, 15) that it does not see
    assert (~rf[:6]).sum() + (~rf[6, :15]).sum() > 0


def test_pixelcnn_blind_spot():
    """PixelCNN never sees pixels above and to the right beyond its cone, however deep;
    the Diagonal BiLSTM sees them with the same depth."""
    cnn = tiny_model("pixelcnn", height=8, width=16, layers=6)
    rf = receptive_field(cnn, 5, 3)[0] > 0
    assert rf[4, :7].all()                # the 7x7 first layer reaches 3 right one row up
    assert not rf[4, 7:].any()            # beyond: the blind spot, in spite of 6 layers
    assert not rf[3, 8:].any()
    diag = tiny_model("diagonal_bilstm", height=8, width=16, layers=1)
    assert (receptive_field(diag, 5, 3)[0][4, 7:15] > 0).all()   # (4, 15): see the test above


def test_masks_over_colour_groups():
    """Mask A/B at the kernel centre for R, G, B groups; nothing after the centre."""
    a = make_mask(6, 3, 3, 3, "A", channels=3)      # image (3 channels) -> 6 features
    b = make_mask(6, 6, 3, 3, "B", channels=3)
    out_group = torch.arange(6) // 2
    for o in range(6):
        g = out_group[o]
        assert a[o, :, 1, 1].tolist() == [1.0 if k < g else 0.0 for k in range(3)]
        assert b[o, :, 1, 1].tolist() == [1.0 if k // 2 <= g else 0.0 for k in range(6)]
    for m in (a, b):
        assert (m[:, :, 0] == 1).all() and (m[:, :, 1, 0] == 1).all()
        assert (m[:, :, 1, 2] == 0).all() and (m[:, :, 2] == 0).all()
    one = make_mask(4, 1, 3, 3, "A", channels=1)
    assert (one[:, :, 1, 1] == 0).all() and (make_mask(4, 4, 3, 3, "B", 1)[:, :, 1, 1] == 1).all()


def test_mask_is_applied_functionally():
    conv = pixelnet.MaskedConv2d(1, 2, 3, "A", channels=1)
    w = conv.weight.detach().clone()
    conv(torch.randn(1, 1, 5, 5))
    assert torch.equal(conv.weight.detach(), w)           # weight untouched
    assert "mask" not in conv.state_dict()                 # mask is derived, not saved


def test_skew_unskew_roundtrip():
    x = torch.arange(2 * 3 * 4 * 5.).view(2, 3, 4, 5)
    s = skew(x)
    assert s.shape == (2, 3, 4, 8)
    assert torch.equal(s[:, :, 2, 2:7], x[:, :, 2])         # row r shifted right by r
    assert (s[:, :, 2, :2] == 0).all()
    assert torch.equal(unskew(s, 5), x)


def test_nll_equals_cross_entropy_by_hand(arch, data):
    m = tiny_model(arch, **data)
    x = rand_images(m, 3)
    with torch.no_grad():
        logits = m(x)
        logp = logits - logits.logsumexp(1, keepdim=True)
        by_hand = -logp.gather(1, x.unsqueeze(1)).squeeze(1).sum((1, 2, 3))
        got = pixelnet.nll(m, x)
    assert got.shape == (3,)
    torch.testing.assert_close(got, by_hand, rtol=1e-5, atol=1e-4)
    assert torch.allclose(pixelnet.nll_map(m, x).sum((1, 2, 3)), got, atol=1e-4)
    bpd = pixelnet.bits_per_dim(got, m.cfg.channels * 36)
    torch.testing.assert_close(bpd, got / (m.cfg.channels * 36 * math.log(2)))


def test_checkpoint_roundtrip(arch, data, tmp_path):
    m = tiny_model(arch, **data)
    path = tmp_path / "sub" / "m.pt"
    pixelnet.save_checkpoint(m, path, dataset="test", epochs=3)
    loaded = pixelnet.load_checkpoint(path)
    assert not loaded.training
    assert loaded.config == m.config and loaded.metadata["epochs"] == 3
    x = rand_images(m, 2)
    with torch.no_grad():
        assert torch.equal(loaded(x), m.eval()(x))
    assert list(path.parent.iterdir()) == [path]            # no temp file left behind


def test_checkpoint_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        pixelnet.load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "corrupt.pt"
    m = tiny_model("pixelcnn")
    pixelnet.save_checkpoint(m, bad)
    bad.write_bytes(bad.read_bytes()[:200])                  # truncated
    with pytest.raises(ValueError, match="not a readable PixelNet checkpoint"):
        pixelnet.load_checkpoint(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(ValueError, match="not a PixelNet checkpoint"):
        pixelnet.load_checkpoint(other)
    with pytest.raises(ValueError, match="reserved"):
        pixelnet.save_checkpoint(m, tmp_path / "x.pt", arch="oops")


def test_input_errors():
    with pytest.raises(ValueError, match="unknown architecture"):
        pixelnet.build_model("pixelgan")
    with pytest.raises(ValueError, match="unknown hyperparameters"):
        pixelnet.build_model("row_lstm", hidden=3)
    with pytest.raises(ValueError, match="divide"):
        pixelnet.build_model("multiscale", height=7, width=7)
    m = tiny_model("row_lstm")
    with pytest.raises(ValueError, match="shape"):
        m(torch.zeros(1, 1, 5, 6, dtype=torch.long))
    with pytest.raises(ValueError, match="dtype"):
        m(torch.zeros(1, 1, 6, 6))
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        m(torch.full((1, 1, 6, 6), 2))
    x = torch.zeros(2, 1, 6, 6, dtype=torch.long)
    with pytest.raises(ValueError, match="not class-conditional"):
        m(x, y=torch.tensor([0, 1]))
    labelled = tiny_model("row_lstm", classes=3)
    with pytest.raises(ValueError, match=r"class indices must lie in \[0, 3\)"):
        labelled(x, y=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="shape"):
        labelled(x, y=torch.tensor([0]))
    with pytest.raises(ValueError, match="LongTensor"):
        labelled(x, y=torch.tensor([0.5, 1.0]))


def test_one_registry():
    """Every architecture is registered once, with its display name, config and engine;
    the package's list derives from the registry."""
    assert pixelnet.ARCHITECTURES == tuple(pixelnet.MODELS)
    for arch, cls in pixelnet.MODELS.items():
        assert cls.arch == arch and cls.title and cls.Engine is not None
        m = tiny_model(arch)
        assert isinstance(m, pixelnet.Model) and m.masked_stack() is not None


def test_training_steps_lower_the_loss(arch, data):
    m = tiny_model(arch, **data)
    x = rand_images(m, 4)
    opt = torch.optim.RMSprop(m.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = F.cross_entropy(m(x), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]


def test_class_posterior_is_bayes_rule():
    """p(k | x) from the class-conditional likelihoods, by hand; refused without classes."""
    m = tiny_model("pixelcnn", classes=3)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("label.weight"):
                p.normal_(0, 0.5)
    x = rand_images(m, 2)
    with torch.no_grad():
        post = pixelnet.class_posterior(m, x)
        lik = torch.stack([-pixelnet.nll(m, x, y=k).double() for k in range(3)], 1)
        prior = torch.tensor([0.2, 0.3, 0.5])
        biased = pixelnet.class_posterior(m, x, prior=prior)
    torch.testing.assert_close(post, torch.softmax(lik, 1))
    torch.testing.assert_close(biased, torch.softmax(lik + prior.double().log(), 1))
    assert torch.allclose(post.sum(1), torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="not class-conditional"):
        pixelnet.class_posterior(tiny_model("pixelcnn"), x)
