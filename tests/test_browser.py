"""The app in a real browser: Playwright for Python driving a chromium: ``$PIXELNET_CHROMIUM``,
Debian's (``apt-get install chromium``; ``.ci/run`` installs it) or Playwright's own
(``playwright install chromium``). Where there is none the test is skipped and says how to get
one; with ``$CI`` set (``.ci/run``) it must run: it fails instead.

It draws the top of a 7 on the canvas, keeps the top half, clicks Generate, waits for the last
frame, checks that the stroke was kept and the rest generated, inspects a pixel, and saves
a screenshot (``$PIXELNET_SCREENSHOT``, else ``app.png`` in pytest's temporary folder).
"""
import base64
import io
import os
import shutil
import socket
import threading
import time

import numpy as np
import pytest
from PIL import Image

from demo import app, inputs, registry
from demo import imaging as im

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


pytestmark = pytest.mark.browser
NO_BROWSER = ("no chromium found: `apt-get install chromium` (Debian, Ubuntu) or "
              "`playwright install chromium`, or set $PIXELNET_CHROMIUM to a chromium binary")


def in_ci() -> bool:
    """``$CI`` is set (``.ci/run``, most CI services): the browser test must run."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def find_chromium() -> str | None:
    """A chromium executable: ``$PIXELNET_CHROMIUM``, one on ``$PATH``, or Playwright's own."""
    path = os.environ.get("PIXELNET_CHROMIUM") or shutil.which("chromium") or \
        shutil.which("chromium-browser")
    if path:
        return path
    try:
        from playwright.sync_api import sync_playwright
        with sync_playwright() as p:
            bundled = p.chromium.executable_path
    except Exception:  # noqa: BLE001 - no playwright, or no browser build of its own
        return None
    return bundled if bundled and os.path.isfile(bundled) else None


def require(path: str | None) -> str:
    """``path``, or a skip (a failure under CI) that says how to install a chromium."""
    if path is None:
        (pytest.fail if in_ci() else pytest.skip)(NO_BROWSER)
    return path


@pytest.fixture(scope="module")
def chromium() -> str:
    return require(find_chromium())


@pytest.mark.parametrize("ci, outcome", [("", pytest.skip.Exception), ("true", pytest.fail.Exception)])
def test_no_chromium_skips_with_advice_but_fails_in_ci(monkeypatch, ci, outcome):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="apt-get install chromium.*playwright install chromium"):
        require(None)
    assert require("/usr/bin/chromium") == "/usr/bin/chromium"


@pytest.fixture(scope="module")
def url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = app.serve(port=port, host="127.0.0.1", block=False)
    yield demo.local_url
    demo.close()


@pytest.fixture(scope="module")
def page(chromium, url):            # chromium first: no app started for a skipped test
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1800})   # all in view
        pg.goto(url)
        pg.wait_for_selector("#canvas canvas", timeout=60_000)
        yield pg
        browser.close()


def frame_image(pg) -> np.ndarray:
    """The sample panel's current image, as the browser fetched it."""
    src = pg.locator("#frame img").get_attribute("src")
    if src.startswith("data:"):                     # a preview drawn in the page (a preset)
        body = base64.b64decode(src.split(",", 1)[1])
    else:
        body = pg.request.get(src).body()
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))


def new_frame(pg, before: str, timeout: float = 30) -> np.ndarray:
    """Wait until the sample panel shows another image than ``before`` (its src)."""
    deadline = time.time() + timeout
    while pg.locator("#frame img").get_attribute("src") == before and time.time() < deadline:
        time.sleep(0.1)
    return frame_image(pg)


def frame_until(pg, ok, timeout: float = 30) -> np.ndarray:
    """Wait until the sample panel's image satisfies ``ok`` (the page's own preview of a
    preset may come first, the server's exact one after it); the last image seen."""
    deadline = time.time() + timeout
    while True:
        frame = frame_image(pg)
        if ok(frame) or time.time() > deadline:
            return frame
        time.sleep(0.1)


def stroke(pg, selector: str, points: list[tuple[float, float]], steps: int = 12) -> None:
    """Drag the mouse through ``points`` on an editor's canvas (fractions of its centred
    square)."""
    box = pg.locator(f"{selector} canvas").first.bounding_box()
    side = min(box["width"], box["height"])
    left, top = box["x"] + (box["width"] - side) / 2, box["y"] + (box["height"] - side) / 2
    pg.mouse.move(left + side / 2, top + side / 2, steps=5)          # hover first
    pg.mouse.move(left + points[0][0] * side, top + points[0][1] * side, steps=5)
    pg.mouse.down()
    for x, y in points[1:]:
        pg.mouse.move(left + x * side, top + y * side, steps=steps)
    pg.mouse.up()


def white_cells(frame: np.ndarray) -> np.ndarray:
    """(H, W) model pixels that are white in an upscaled grayscale frame."""
    return (frame[im.SCALE // 2:: im.SCALE, im.SCALE // 2:: im.SCALE] > 200).all(-1)


def test_draw_generate_inspect(page, tmp_path):
    pg = page
    trained = [a for a in registry.architectures("mnist")
               if not registry.is_untrained(registry.get_model("mnist", a))]
    if trained:                                                       # a nicer screenshot
        pg.locator("#arch input").click()
        pg.get_by_role("option", name=registry.ARCH_NAMES[trained[0]], exact=True).click()
    pg.click("#preset-0")                                             # Blank: black canvas
    for attempt in range(3):                                          # the editor may need a moment
        time.sleep(1.5)
        stroke(pg, "#canvas", [(0.3, 0.27), (0.68, 0.27), (0.55, 0.5)])   # the top of a 7
        time.sleep(1.5)
        before = pg.locator("#frame img").get_attribute("src")
        pg.click("#preset-2")                                         # Keep top half
        new_frame(pg, before)
        preview = frame_until(pg, lambda f: white_cells(f)[:14].sum() >= 5, timeout=15)
        if white_cells(preview)[:14].sum() >= 5:
            break
    drawn = white_cells(preview)
    assert drawn[:14].sum() >= 5, "the stroke did not reach the canvas"
    assert im.pending_cells(preview)[14:].all(), "bottom half should wait to be generated"

    before = pg.locator("#frame img").get_attribute("src")
    t = time.time()
    pg.click("#generate")
    pg.wait_for_function("document.querySelector('#progress').innerText.startsWith('Done')",
                         timeout=120_000)
    seconds = time.time() - t
    final = new_frame(pg, before)
    assert not np.array_equal(final, preview), "the output did not change"
    assert (white_cells(final)[:14] == drawn[:14]).all(), "the drawn top half was not kept"
    assert not (final == im.PENDING).all(-1).any(), "some pixels were not generated"
    assert "NLL of this sample" in pg.locator("#result").inner_text()

    box = pg.locator("#frame img").bounding_box()                    # inspect a generated pixel
    pg.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.8)
    pg.wait_for_function("document.body.innerText.includes('Pixel (2')", timeout=30_000)

    pg.wait_for_function("['#chart', '#entropy', '#inspect'].every(s => "
                         "[...document.querySelectorAll(s + ' img')].some(i => i.complete && "
                         "i.naturalWidth > 0))", timeout=30_000)
    path = os.environ.get("PIXELNET_SCREENSHOT") or str(tmp_path / "app.png")
    pg.screenshot(path=path, full_page=True)
    print(f"\nbrowser: 28x28 half-image generation took {seconds:.1f} s; screenshot {path}")
    assert os.path.getsize(path) > 10_000


def test_a_late_preset_answer_never_hides_a_sample(page, monkeypatch):
    """A preset clicked before the server has seen the last stroke is drawn by the page from
    the mask editor's older drawing; the server then sends the exact preview. If Generate was
    pressed meanwhile, that late preview must not replace the run's sample."""
    pg, answer = page, threading.Event()
    slow = inputs.apply_preset

    def held_preset(*args):                 # the server's preset answer waits for the test
        answer.wait(60)
        return slow(*args)

    monkeypatch.setattr(inputs, "apply_preset", held_preset)
    js_click(pg, "#preset-0")                                           # Blank
    time.sleep(3)
    held = []
    pg.route("**/gradio_api/**", lambda route: held.append(route))   # the stroke unseen
    try:
        stroke(pg, "#canvas", [(0.3, 0.27), (0.68, 0.27)])
        before = pg.locator("#frame img").get_attribute("src")
        js_click(pg, "#preset-2")                                       # Keep top half
        new_frame(pg, before)
        time.sleep(0.5)             # the preset's call to the server (its inputs) is made
    finally:
        for route in held:
            route.continue_()
        pg.unroute("**/gradio_api/**")
    try:
        before = pg.locator("#frame img").get_attribute("src")
        js_click(pg, "#generate")
        pg.wait_for_function("document.querySelector('#progress').innerText.startsWith('Done')",
                             timeout=120_000)
        final = new_frame(pg, before)
        assert not im.pending_cells(final).any(), "the run left pixels ungenerated"
    finally:
        answer.set()                                    # the preset's answer arrives now
    time.sleep(3)
    assert not im.pending_cells(frame_image(pg)).any(), \
        "the preset's late preview replaced the run's sample"


def test_a_preset_drawn_before_the_strokes_answer_comes_right(page, monkeypatch):
    """A preset that keeps the drawing is drawn by the page from the mask editor's drawing,
    which may still be the one from before a stroke; the server's answer to the stroke may
    come while the page draws. The server must then still correct the preset (it must judge
    by the drawing the page drew from, not by the last one sent), the stroke in the preview."""
    pg, answer = page, threading.Event()
    js_click(pg, "#preset-0")                                           # Blank
    time.sleep(3)
    slow = inputs.sync_mask

    def held_sync(*args):                   # the server's answer to the stroke waits
        answer.wait(60)
        return slow(*args)

    monkeypatch.setattr(inputs, "sync_mask", held_sync)
    pg.evaluate("""() => { const draw = window.pixelnetPreset;     // the page's preset waits
      window.pixelnetPreset = async (...a) => { const p = await draw(...a);
        while (!window.pixelnetGo) await new Promise(ok => setTimeout(ok, 50));
        return p; }; }""")
    key = "document.querySelector('#drawing-key textarea').value"
    blank = pg.evaluate(key)
    stroke(pg, "#canvas", [(0.3, 0.27), (0.68, 0.27), (0.55, 0.5)])
    time.sleep(0.5)
    js_click(pg, "#preset-2")                                           # Keep top half
    time.sleep(0.5)                         # the page has read the mask editor's drawing
    answer.set()
    pg.wait_for_function(f"{key} !== {blank!r}", timeout=30_000)        # the stroke's answer
    pg.evaluate("() => { window.pixelnetGo = true; }")
    preview = frame_until(pg, lambda f: white_cells(f)[:14].sum() >= 5, timeout=15)
    assert white_cells(preview)[:14].sum() >= 5, "the preview lost the stroke"
    assert im.pending_cells(preview)[14:].all()


FIRST_SCREEN = ("#canvas", "#frame", "#chart", "#generate")
"""What a projector's first screen (1280x800, no scrolling) must hold, before and during a run."""


def boxes(pg, selectors) -> dict[str, dict]:
    return {s: pg.locator(s).first.bounding_box() for s in selectors}


def js_click(pg, selector: str) -> None:
    """Click without Playwright's scrolling the element into view (a user's click does not
    scroll either): the page must not move by itself."""
    pg.evaluate("s => document.querySelector(s).click()", selector)


@pytest.fixture
def projector(page, url):
    """A 1280x800 page of its own (the projector of a classroom)."""
    pg = page.context.browser.new_page(viewport={"width": 1280, "height": 800})
    pg.goto(url)
    pg.wait_for_selector("#canvas canvas", timeout=60_000)
    yield pg
    pg.close()


LABEL_CLEAR_JS = """sel => {
  // An editor's label chip: above its picture (a square of the editor's shorter side less
  // 60 px, centred), and clear of its toolbar's buttons
  const b = document.querySelector(sel), l = b.querySelector('[data-testid=block-label]').getBoundingClientRect();
  const side = Math.min(b.clientWidth, b.clientHeight) - 60;
  const top = b.getBoundingClientRect().top + b.clientTop + (b.clientHeight - side) / 2;
  const hit = r => r.width > 0 && r.left < l.right && l.left < r.right && r.top < l.bottom && l.top < r.bottom;
  return {picture: l.bottom <= top, toolbar: ![...b.querySelectorAll('button')].some(x => hit(x.getBoundingClientRect()))};
}"""


FRAME_COVERED_JS = """sel => {
  // an image's label chip and buttons that lie over its picture
  const i = document.querySelector(sel + ' img').getBoundingClientRect();
  return [...document.querySelectorAll(`${sel} [data-testid=block-label], ${sel} .icon-button`)]
    .filter(e => { const r = e.getBoundingClientRect();
      return r.width > 0 && r.left < i.right && i.left < r.right && r.top < i.bottom && i.top < r.bottom; })
    .map(e => e.getAttribute('aria-label') || e.innerText.trim());
}"""


def test_first_screen_at_1280x800_before_and_during_a_run(projector, tmp_path):
    pg = projector
    for sel in ("#canvas", "#mask"):
        clear = pg.evaluate(LABEL_CLEAR_JS, sel)
        assert clear == {"picture": True, "toolbar": True}, f"{sel}'s label covers {clear}"
    covering = pg.evaluate(FRAME_COVERED_JS, "#frame")
    assert covering == [], f"the sample's pixels are under its {covering}"

    def check(when: str) -> dict:
        got = boxes(pg, FIRST_SCREEN)
        for sel, b in got.items():
            assert b is not None, f"{sel} is not shown {when}"
            assert b["x"] >= 0 and b["y"] >= 0 and b["x"] + b["width"] <= 1280 and \
                b["y"] + b["height"] <= 800, f"{sel} {b} is not within 1280x800 {when}"
        assert pg.evaluate("window.scrollY") == 0, f"the page scrolled {when}"
        return got

    before = check("before a run")
    js_click(pg, "input[value='Slow']")
    js_click(pg, "#generate")
    pg.wait_for_function("document.querySelector('#progress').innerText.startsWith('Pixel')",
                         timeout=60_000)
    time.sleep(1)
    pg.wait_for_function("[...document.querySelectorAll('#chart img')].some(i => i.complete && "
                         "i.naturalWidth > 0)", timeout=30_000)
    during = check("during a run")
    assert during == before, "the first screen moved when the run started"
    path = os.environ.get("PIXELNET_SCREENSHOT_1280") or str(tmp_path / "first_screen.png")
    pg.screenshot(path=path)
    print(f"\nfirst screen mid-run: {path}")
    js_click(pg, "#stop")


def choose(pg, dropdown: str, option: str) -> None:
    """Pick ``option`` in the Gradio dropdown ``dropdown`` as a person does: open, click."""
    pg.locator(f"{dropdown} input").click()
    pg.locator("ul[role=listbox] li", has_text=option).first.click()


def test_emoji_starts_with_its_best_model_at_its_suggested_temperature(projector):
    pg = projector
    value = "document.querySelector('#temperature input[type=number]').value"
    note = "document.querySelector('#temperature-note').innerText"
    arch = "document.querySelector('#arch input').value"
    assert float(pg.evaluate(value)) == 1.0
    choose(pg, "#dataset", "Emoji")
    want = registry.suggested_temperature("emoji", "multiscale")
    pg.wait_for_function(f"{arch} === 'Multi-Scale'", timeout=30_000)
    pg.wait_for_function(f"parseFloat({value}) === {want}", timeout=30_000)
    pg.wait_for_function(f"{note}.includes('suggested for the Emoji Multi-Scale model')",
                         timeout=30_000)
    choose(pg, "#arch", "Row LSTM")                 # another model: as trained
    pg.wait_for_function(f"parseFloat({value}) === 1", timeout=30_000)
    pg.wait_for_function(f"!{note}.includes('suggested')", timeout=30_000)


def test_emoji_smileys_are_suggested_with_a_tail_cut(projector):
    pg = projector
    temp = "parseFloat(document.querySelector('#temperature input[type=number]').value)"
    cut = "parseFloat(document.querySelector('#min-p input[type=number]').value)"
    assert pg.evaluate(cut) == 0
    choose(pg, "#dataset", "Emoji")
    pg.wait_for_function("document.querySelector('#arch input').value === 'Multi-Scale'",
                         timeout=30_000)
    pg.wait_for_function("!document.querySelector('#label input').disabled", timeout=30_000)
    choose(pg, "#label", "Smileys")
    want = registry.suggested_sampling("emoji", "multiscale", "Smileys")
    pg.wait_for_function(f"{temp} === {want[0]} && {cut} === {want[1]}", timeout=30_000)
    choose(pg, "#label", "Flags")                      # a cut would make flags plain: none
    t = registry.suggested_temperature("emoji", "multiscale")
    pg.wait_for_function(f"{temp} === {t} && {cut} === 0", timeout=30_000)


def test_fashion_is_suggested_at_its_class_strength(projector):
    pg = projector
    strength = "parseFloat(document.querySelector('#guidance input[type=number]').value)"
    default = registry.suggested_sampling("mnist", "pixelcnn")[2]
    assert pg.evaluate(strength) == default
    choose(pg, "#dataset", "Fashion-MNIST")
    want = registry.suggested_sampling("fashion", "pixelcnn")[2]
    assert want != default
    pg.wait_for_function(f"{strength} === {want}", timeout=30_000)
    choose(pg, "#dataset", "MNIST digits")
    pg.wait_for_function(f"{strength} === {default}", timeout=30_000)


def test_compare_placeholder_and_its_own_stop(projector):
    pg = projector
    js_click(pg, "input[value='Slow']")                 # the Generate tab's speed
    pg.get_by_role("tab", name="Compare").click()
    panel = "#compare-pixelcnn"
    assert "Press Compare all architectures" in pg.locator("#compare-table").inner_text()
    assert pg.locator("#compare-stop").is_visible()
    js_click(pg, "#compare")
    pg.wait_for_function("document.querySelector('#compare-table').innerText.startsWith('Pixel')",
                         timeout=60_000)
    pg.wait_for_function(f"document.querySelector('{panel} img') !== null", timeout=30_000)
    time.sleep(1)
    js_click(pg, "#compare-stop")
    pg.wait_for_function("document.querySelector('#compare-table').innerText.includes('Stopped')",
                         timeout=30_000)
    src = pg.locator(f"{panel} img").get_attribute("src")
    time.sleep(3)                                        # a Slow run would have moved on
    assert pg.locator(f"{panel} img").get_attribute("src") == src, "Compare went on after Stop"
    assert "NLL" not in pg.locator("#compare-table").inner_text()
    assert pg.locator(panel).inner_text().strip().startswith("PixelCNN")   # a real label
    covering = pg.evaluate(FRAME_COVERED_JS, panel)
    assert covering == [], f"the panel's pixels are under its {covering}"


CONTRAST_JS = """() => {
  // WCAG 2 contrast of every visible text against its effective background (the backgrounds
  // of its ancestors composited; the text's colour and opacity over that).
  const parse = s => { const p = s.match(/rgba?\\(([^)]+)\\)/)[1].split(/[ ,\\/]+/).filter(Boolean)
                                 .map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const over = (top, bot) => [0, 1, 2].map(i => top[i] * top[3] + bot[i] * (1 - top[3])).concat([1]);
  const lum = c => { const f = v => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
                     return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    let text = [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join('').trim();
    if (el.tagName === 'INPUT' && ['text', 'number', ''].includes(el.type)) text = el.value;
    const r = el.getBoundingClientRect(), cs = getComputedStyle(el);
    if (!text || !r.width || !r.height ||
        !el.checkVisibility({opacityProperty: true, visibilityProperty: true})) continue;
    const layers = []; let opacity = 1;
    for (let e = el; e; e = e.parentElement) {
      const s = getComputedStyle(e); opacity *= parseFloat(s.opacity);
      const c = parse(s.backgroundColor);
      if (c[3] > 0 && !(layers.length && layers[layers.length - 1][3] >= 1)) layers.push(c);
    }
    let bg = [255, 255, 255, 1];
    for (const c of layers.reverse()) bg = over(c, bg);
    const c = parse(cs.color), fg = over([c[0], c[1], c[2], c[3] * opacity], bg);
    const [a, b] = [lum(fg), lum(bg)];
    out.push({text: text.slice(0, 40), ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)});
  }
  return out;
}"""

UNLABELLED_JS = """() => [...document.querySelectorAll('img, canvas')]
  .filter(e => e.checkVisibility() && e.getBoundingClientRect().width > 16)
  .filter(e => !(e.getAttribute(e.tagName === 'IMG' ? 'alt' : 'aria-label') || '').trim())
  .map(e => e.tagName + ' in #' + ((e.closest('[id]') || {}).id || '?'))"""


def test_keyboard_labels_and_contrast(projector):
    """Generate within 10 Tab stops of page load; every image has alt text and every canvas a
    label; every text at least 4.5:1 against its background, on each tab."""
    pg = projector
    for stop in range(1, 11):
        pg.keyboard.press("Tab")
        if pg.evaluate("document.activeElement.closest('#generate') !== null"):
            break
    else:
        raise AssertionError("Generate is not within the first 10 Tab stops")
    for tab in ("Generate", "Compare", "Explain"):
        pg.get_by_role("tab", name=tab).click()
        time.sleep(1)
        assert pg.evaluate(UNLABELLED_JS) == [], f"images or canvases without a label on {tab}"
        low = [f"{t['text']!r} {t['ratio']:.2f}" for t in pg.evaluate(CONTRAST_JS)
               if t["ratio"] < 4.5]
        assert low == [], f"text below 4.5:1 on {tab}: {low}"


def test_four_samples_animate_as_a_grid(projector):
    pg = projector
    js_click(pg, "input[value='Slow']")
    js_click(pg, "#samples input[value='4']")
    before = pg.locator("#frame img").get_attribute("src")
    js_click(pg, "#generate")
    pg.wait_for_function("document.querySelector('#progress').innerText.startsWith('Pixel')",
                         timeout=60_000)
    first = new_frame(pg, before)
    time.sleep(1.5)
    second = new_frame(pg, pg.locator("#frame img").get_attribute("src"))
    js_click(pg, "#stop")
    side = 28 * im.SCALE                                   # an MNIST cell, in screen pixels
    assert first.shape[:2] == (2 * side + im.GRID_GAP,) * 2, "not a 2x2 grid"
    cells = [(r * (side + im.GRID_GAP), c * (side + im.GRID_GAP)) for r in (0, 1) for c in (0, 1)]
    for y, x in cells:
        a = im.pending_cells(first[y:y + side, x:x + side]).sum()
        b = im.pending_cells(second[y:y + side, x:x + side]).sum()
        assert 0 < b < a, f"the cell at {(y, x)} did not move on ({a} -> {b} pending pixels)"


def test_phone_first_screen(page, url):
    """At 390x844 the sample and Generate are on the first screen, nothing is wider than the
    phone, and the chart is shown at (nearly) its drawn size: its text stays >= 11 px."""
    pg = page.context.browser.new_page(viewport={"width": 390, "height": 844},
                                       is_mobile=True, has_touch=True)
    try:
        pg.goto(url)
        pg.wait_for_selector("#canvas canvas", timeout=60_000)
        for sel in ("#generate", "#frame"):
            b = pg.locator(sel).first.bounding_box()
            assert b["y"] >= 0 and b["y"] + b["height"] <= 844 and b["x"] >= 0 and \
                b["x"] + b["width"] <= 390, f"{sel} {b} is not on a phone's first screen"
        assert pg.evaluate("document.documentElement.scrollWidth") <= 390
        scale = pg.evaluate("(() => { const i = document.querySelector('#chart img'); "
                            "return i.getBoundingClientRect().width / i.naturalWidth; })()")
        assert scale >= 0.9, f"the chart is shrunk to {scale:.2f} of its drawn size on a phone"
    finally:
        pg.close()


EDITOR_INK_JS = """async sel => {
  // What an editor's canvas shows (WebGL: read right after the frame is drawn): counts of
  // dark and of red screen pixels, on a 32x32 copy.
  await new Promise(r => requestAnimationFrame(r));
  const c = document.querySelector(sel + ' canvas'), small = document.createElement('canvas');
  small.width = small.height = 32;
  const cx = small.getContext('2d'); cx.drawImage(c, 0, 0, 32, 32);
  const d = cx.getImageData(0, 0, 32, 32).data; let dark = 0, red = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] < 60 && d[i + 1] < 60 && d[i + 2] < 60) dark++;
    if (d[i] > 100 && d[i + 1] < 0.6 * d[i]) red++;
  }
  return {dark, red};
}"""


# WebGL clears an idle canvas's drawing buffer after showing it, so reading it back gives
# black unless the read catches a frame; keep the buffer so a read sees what is shown.
PRESERVE_JS = """(() => {
  const get = HTMLCanvasElement.prototype.getContext;
  HTMLCanvasElement.prototype.getContext = function (kind, opts) {
    if (kind === 'webgl' || kind === 'webgl2') opts = {...(opts || {}), preserveDrawingBuffer: true};
    return get.call(this, kind, opts);
  };
})()"""


EDITOR_CELLS_JS = """async sel => {
  // The picture an editor shows, one letter a model pixel (d dark, r red, w white, o other),
  // rows joined by '/': its box is that of the dark and red screen pixels (white margins
  // around it); each cell read at its centre.
  await new Promise(r => requestAnimationFrame(r));
  const c = document.querySelector(sel + ' canvas'), n = 28, copy = document.createElement('canvas');
  copy.width = c.width; copy.height = c.height;
  const cx = copy.getContext('2d'); cx.drawImage(c, 0, 0);
  const d = cx.getImageData(0, 0, c.width, c.height).data;
  const kind = (x, y) => { const i = 4 * (y * c.width + x);
    return d[i] > 100 && d[i + 1] < 0.6 * d[i] ? 'r' : d[i] < 60 && d[i + 1] < 60 && d[i + 2] < 60 ? 'd' :
           d[i] > 200 && d[i + 1] > 200 && d[i + 2] > 200 ? 'w' : 'o'; };
  let x0 = c.width, y0 = c.height, x1 = -1, y1 = -1;
  for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++)
    if ('dr'.includes(kind(x, y))) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  if (x1 < 0) return '';
  const rows = [];
  for (let i = 0; i < n; i++) { let row = '';
    for (let j = 0; j < n; j++) row += kind(Math.floor(x0 + (j + 0.5) * (x1 - x0 + 1) / n),
                                            Math.floor(y0 + (i + 0.5) * (y1 - y0 + 1) / n));
    rows.push(row); }
  return rows.join('/');
}"""


def test_editors_show_presets_and_keep_their_content(page, url):
    """A preset shows in both editors (drawn in the page) and in the sample's preview (no
    spinner); after a bad upload they keep it and the app's message says what is wrong (no
    "Error" badge in their place)."""
    pg = page.context.browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        pg.add_init_script(PRESERVE_JS)
        pg.goto(url)
        pg.wait_for_selector("#canvas canvas", timeout=60_000)
        presets_show_in_the_editors(pg)
        a_stroke_shows_under_the_mask_at_once(pg)
        editors_keep_their_content(pg)
    finally:
        pg.close()


def presets_show_in_the_editors(pg) -> None:
    """Blank, Random example, Blank, Keep top half: the pictures both editors show, cell by
    cell (each differs from the one before), and the preview."""

    def cells(sel: str, ok, timeout: float = 15) -> list[str]:
        deadline = time.time() + timeout
        while True:
            grid = pg.evaluate(EDITOR_CELLS_JS, sel).split("/")
            if (len(grid) == 28 and ok(grid)) or time.time() > deadline:
                return grid
            time.sleep(0.1)

    def top_kept(grid):            # the bottom half red, none of the top
        return all(set(r) == {"r"} for r in grid[14:]) and not any("r" in r for r in grid[:14])

    def blank_shown():
        js_click(pg, "#preset-0")                                  # Blank: black, all red
        blank = cells("#canvas", lambda g: all(set(r) == {"d"} for r in g))
        assert all(set(r) == {"d"} for r in blank), f"the canvas is not blank: {blank}"
        red = cells("#mask", lambda g: all(set(r) == {"r"} for r in g))
        assert all(set(r) == {"r"} for r in red), f"the mask is not all red: {red}"
        deadline = time.time() + 15
        while not im.pending_cells(frame_image(pg)).all() and time.time() < deadline:
            time.sleep(0.1)
        assert im.pending_cells(frame_image(pg)).all(), "the preview does not show Blank"
        key = pg.locator("#drawing-key textarea, #drawing-key input").first.input_value()
        assert key == inputs.drawing_key(inputs.blank("mnist")), \
            "the page and the server name the drawing differently"

    blank_shown()
    js_click(pg, "#preset-3")                                  # Random example
    drawing = cells("#canvas", lambda g: 20 < sum(r.count("w") for r in g) < 400 and
                    not any("r" in r for r in g))
    assert 20 < sum(r.count("w") for r in drawing) < 400, f"the canvas shows no example: {drawing}"
    mask = cells("#mask", top_kept)
    assert top_kept(mask), f"the mask editor does not keep the top half: {mask}"
    assert mask[:14] == drawing[:14], "the mask editor does not show the drawing under its mask"

    blank_shown()
    js_click(pg, "#preset-2")                                  # Keep top half (of the blank)
    assert top_kept(cells("#mask", top_kept)), "the mask editor does not show Keep top half"


COVER_CELLS_JS = """sel => {
  // What the page lays over an editor until the editor has drawn it (demo/editors.py), one
  // letter a model pixel as EDITOR_CELLS_JS, and p for pink (white under the red mask)
  const box = document.querySelector(sel + ' .pixelnet-cover');
  if (!box) return '';
  const n = 28, s = 10 * n, c = document.createElement('canvas'); c.width = c.height = s;
  const g = c.getContext('2d');
  for (const el of box.children) g.drawImage(el, 0, 0, s, s);
  const d = g.getImageData(0, 0, s, s).data, rows = [];
  for (let i = 0; i < n; i++) { let row = '';
    for (let j = 0; j < n; j++) { const k = 4 * ((10 * i + 5) * s + 10 * j + 5), r = d[k], gr = d[k + 1], b = d[k + 2];
      row += r > 200 && gr > 100 && gr < 180 ? 'p' : r > 100 && gr < 0.6 * r ? 'r' :
             Math.max(r, gr, b) < 60 ? 'd' : Math.min(r, gr, b) > 200 ? 'w' : 'o'; }
    rows.push(row); }
  return rows.join('/');
}"""


def a_stroke_shows_under_the_mask_at_once(pg) -> None:
    """With every request to the server held back, Blank and then a white stroke across the
    canvas: the mask editor shows the stroke under its red mask (drawn by the page), and only
    the rows the stroke crossed; once the server answers, the mask editor shows it itself."""
    def settled_blank() -> bool:            # the mask editor itself all red, no cover
        grid = pg.evaluate(EDITOR_CELLS_JS, "#mask").split("/")
        return len(grid) == 28 and all(set(r) == {"r"} for r in grid) and \
            not pg.evaluate(COVER_CELLS_JS, "#mask")

    time.sleep(3)                           # the server's answer to the last preset
    js_click(pg, "#preset-0")                                  # Blank: black, all red
    deadline = time.time() + 20
    while not settled_blank() and time.time() < deadline:
        time.sleep(0.2)
    assert settled_blank(), "the mask editor does not show Blank"
    held, released = [], []

    def hold(route):                                            # no answer until released
        route.continue_() if released else held.append(route)

    pg.route("**/gradio_api/**", hold)
    try:
        stroke(pg, "#canvas", [(0.2, 0.6), (0.8, 0.6)])            # row 16 or so, columns 6-21
        deadline, grid = time.time() + 15, []
        while time.time() < deadline:
            grid = pg.evaluate(COVER_CELLS_JS, "#mask").split("/")
            if len(grid) == 28 and any(r.count("p") >= 10 for r in grid):
                break
            time.sleep(0.05)
        assert len(grid) == 28, "the mask editor is not covered after a stroke on the canvas"
        crossed = [i for i, r in enumerate(grid) if "p" in r]
        assert crossed and 14 <= min(crossed) and max(crossed) <= 19 and \
            max(r.count("p") for r in grid) >= 10, f"the stroke is not shown under the mask: {grid}"
        assert all(set(r) <= {"r", "p"} for r in grid), f"the cover shows more than the mask: {grid}"
    finally:
        released.append(True)
        for route in held:
            route.continue_()
        pg.unroute("**/gradio_api/**")
    deadline = time.time() + 20
    while pg.evaluate(COVER_CELLS_JS, "#mask") and time.time() < deadline:
        time.sleep(0.1)
    assert not pg.evaluate(COVER_CELLS_JS, "#mask"), "the cover stays after the server answered"


def editors_keep_their_content(pg) -> None:
    """The checks, on a page whose WebGL canvases keep their drawing buffer."""

    def shown(sel: str, kind: str, timeout: float = 15) -> dict:
        deadline = time.time() + timeout
        while True:
            ink = pg.evaluate(EDITOR_INK_JS, sel)
            if ink[kind] > 100 or time.time() > deadline:
                return ink
            time.sleep(0.1)

    js_click(pg, "#preset-0")                                  # Blank: black, all red
    assert shown("#canvas", "dark")["dark"] > 100, "the canvas does not show the blank image"
    assert shown("#mask", "red")["red"] > 100, "the mask does not show the red mask"
    busy = ", ".join(f"{e} [data-testid=status-tracker]:not(.hide)" for e in ("#canvas", "#mask"))
    pg.set_input_files("input[type=file]:has(+ #upload)", files=[
        {"name": "bad.png", "mimeType": "image/png", "buffer": b"not an image at all"}])
    pg.wait_for_selector(".toast-body", timeout=30_000)
    assert "not an image" in pg.locator(".toast-body").first.inner_text()
    time.sleep(1)
    assert pg.locator(busy).count() == 0, "an editor shows a status badge after a bad upload"
    assert shown("#canvas", "dark", 2)["dark"] > 100, "the canvas lost its image"
    assert shown("#mask", "red", 2)["red"] > 100, "the mask lost its content"


def test_inspect_during_a_run_by_click_and_keyboard(projector):
    """During a Slow run (the first example's bottom half: 392 pixels, about 20 s) Inspect
    shows a pixel already drawn (a click) beside the sample, on the first screen of a 1280x800
    projector (its answer right of the sample or level with it), and says that one still
    to come will be (row and column typed, Enter); after Stop, a pixel never drawn says the
    run was stopped before it."""
    pg = projector
    progress = "document.querySelector('#progress').innerText"
    text = "document.querySelector('#inspect-text').innerText"
    js_click(pg, "input[value='Slow']")                               # 20 pixels/s
    js_click(pg, "#generate")
    pg.wait_for_function(f"{progress}.startsWith('Pixel') && "
                         f"parseInt({progress}.split(' ')[1]) >= 32", timeout=60_000)  # row 14
    box = pg.locator("#frame img").bounding_box()                    # a click, mid-run
    pg.mouse.click(box["x"] + box["width"] * 5.5 / 28, box["y"] + box["height"] * 14.5 / 28)
    pg.wait_for_function(f"{text}.includes('Pixel (14, 5)')", timeout=30_000)
    assert "generated" in pg.locator("#inspect-text").inner_text()
    assert pg.locator("#inspect-row input").input_value() == "14"    # the click named the pixel
    pg.wait_for_function("[...document.querySelectorAll('#inspect img')].some(i => i.complete && "
                         "i.naturalWidth > 0)", timeout=30_000)
    frame, answer, chart = boxes(pg, ["#frame", "#inspect-text", "#inspect"]).values()
    for what, b in (("answer", answer), ("chart", chart)):     # seen without scrolling
        assert b["x"] >= 0 and b["y"] >= 0 and b["x"] + b["width"] <= 1280 and \
            b["y"] + b["height"] <= 800, f"Inspect's {what} {b} is not within 1280x800"
    assert pg.evaluate("window.scrollY") == 0, "the page scrolled"
    beside = answer["x"] >= frame["x"] + frame["width"] or \
        (answer["y"] < frame["y"] + frame["height"] and frame["y"] < answer["y"] + answer["height"])
    assert beside, f"Inspect's answer {answer} is not beside the sample {frame}"

    during = pg.locator("#progress").inner_text()
    pg.locator("#inspect-row input").fill("27")                      # the keyboard path
    pg.locator("#inspect-col input").fill("26")
    pg.locator("#inspect-col input").press("Enter")
    pg.wait_for_function(f"{text}.includes('Pixel (27, 26)')", timeout=30_000)
    assert "has not been generated yet" in pg.locator("#inspect-text").inner_text(), \
        f"Inspect did not answer during the run (asked at {during!r})"

    js_click(pg, "#stop")
    pg.wait_for_function(f"{progress}.includes('Stopped') || {progress}.startsWith('Done')",
                         timeout=30_000)
    if "Stopped" in pg.locator("#progress").inner_text():
        pg.locator("#inspect-row input").fill("27")
        pg.locator("#inspect-go").click()
        # the answer during the run named the same pixel: wait for the new one
        pg.wait_for_function(f"{text}.includes('Pixel (27, 26)') && "
                             f"{text}.includes('the run was stopped before it')", timeout=30_000)
