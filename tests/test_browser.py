"""The app in a real browser: Playwright for Python driving a chromium: ``$PIXELNET_CHROMIUM``,
Debian's (``apt-get install chromium``; ``.ci/run`` installs it) or Playwright's own
(``playwright install chromium``). Where there is none the test is skipped and says how to get
one; with ``$CI`` set (``.ci/run``) it must run: it fails instead.

It draws the top of a 7 on the canvas, keeps the top half, clicks Generate, waits for the last
frame, checks that the stroke was kept and the rest generated, inspects a pixel, and saves
a screenshot (``$PIXELNET_SCREENSHOT``, else ``app.png`` in pytest's temporary folder).
"""
import io
import os
import shutil
import socket
import time

import numpy as np
import pytest
from PIL import Image

from demo import app, registry
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
    return np.asarray(Image.open(io.BytesIO(pg.request.get(src).body())).convert("RGB"))


def new_frame(pg, before: str, timeout: float = 30) -> np.ndarray:
    """Wait until the sample panel shows another image than ``before`` (its src)."""
    deadline = time.time() + timeout
    while pg.locator("#frame img").get_attribute("src") == before and time.time() < deadline:
        time.sleep(0.1)
    return frame_image(pg)


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
        preview = new_frame(pg, before)
        if white_cells(preview)[:14].sum() >= 5:
            break
    drawn = white_cells(preview)
    assert drawn[:14].sum() >= 5, "the stroke did not reach the canvas"
    assert (preview[-5:] == im.PENDING).all(-1).all(), "bottom half should wait to be generated"

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


def test_first_screen_at_1280x800_before_and_during_a_run(projector, tmp_path):
    pg = projector

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
