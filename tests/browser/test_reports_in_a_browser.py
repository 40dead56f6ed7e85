"""A real browser renders every page of a run: Debian's headless Chromium, driven by Playwright.

Every page must load with no external request, show its verdict banner in the colour of its
status, colour every status cell by its status, and draw every chart; a failed verdict shows in the
failure colour, a warning in amber, and a detected drift never in the success colour.

Skipped, with the reason, where Chromium or Playwright is missing; ``.ci/run`` installs both and
sets KFP_RAI_BROWSER_REQUIRED=1, so in CI a missing browser fails instead.
"""

import os
import shutil
from pathlib import Path

import pytest

from kfp_rai.core.report import STATUS_COLOURS
from kfp_rai.core.verdict import GateStatus

pytestmark = [pytest.mark.slow, pytest.mark.browser]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run"]


def _rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


COLOUR = {status.value: _rgb(colour) for status, colour in STATUS_COLOURS.items()}
FAILURE, WARNING, SUCCESS = COLOUR["failed"], COLOUR["warning"], COLOUR["passed"]

# What a reader sees first: where the first collapsed part (<details>) begins. Then every part
# opened, as a reader would on a click, and everything measured: colours, charts, and the size of
# every piece of text as drawn (SVG text scaled by its chart's transform).
_INSPECT = """() => {
  const first = document.querySelector('details');
  const firstDetails = first ? first.getBoundingClientRect().top + window.scrollY : null;
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  const tiny = [];
  for (const e of document.querySelectorAll('body *')) {
    if (![...e.childNodes].some(c => c.nodeType === 3 && c.textContent.trim())) continue;
    if (!e.getBoundingClientRect().width) continue;
    let size = parseFloat(getComputedStyle(e).fontSize);
    if (e instanceof SVGElement) { const m = e.getScreenCTM(); size *= Math.hypot(m.a, m.b); }
    if (size < 9.95) tiny.push(e.textContent.trim().slice(0, 40) + ' @ ' + size.toFixed(1) + 'px');
  }
  const bg = e => getComputedStyle(e).backgroundColor;
  const area = e => { const r = e.getBoundingClientRect(); return r.width * r.height; };
  const banner = document.querySelector('.verdict');
  // Every chart as drawn: each text's box (its bounding box through its transform, so a rotated
  // label is a rotated rectangle), tested against every other text of the chart and the chart's
  // viewport; the legend's box against the plotting area's; the title and axis labels by the ids
  // kfp_rai.core.charts gives them.
  const quad = t => {
    const b = t.getBBox(), m = t.getScreenCTM();
    return [[b.x, b.y], [b.x + b.width, b.y], [b.x + b.width, b.y + b.height], [b.x, b.y + b.height]]
      .map(([x, y]) => [m.a * x + m.c * y + m.e, m.b * x + m.d * y + m.f]);
  };
  const apart = (p, q) => {  // separating axis theorem on two convex quadrilaterals, 0.5 px of slack
    for (const poly of [p, q]) for (let i = 0; i < 4; i++) {
      const [x1, y1] = poly[i], [x2, y2] = poly[(i + 1) % 4];
      const len = Math.hypot(x2 - x1, y2 - y1) || 1, nx = (y1 - y2) / len, ny = (x2 - x1) / len;
      const proj = r => r.map(([x, y]) => x * nx + y * ny);
      const a = proj(p), b = proj(q);
      if (Math.max(...a) <= Math.min(...b) + 0.5 || Math.max(...b) <= Math.min(...a) + 0.5) return true;
    }
    return false;
  };
  const rect = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const meets = (a, b) => a[0] < b[2] - 0.5 && b[0] < a[2] - 0.5 && a[1] < b[3] - 0.5 && b[1] < a[3] - 0.5;
  const labelled = (svg, id) => {
    const g = svg.querySelector(`g[id="${id}"]`);
    return g ? g.textContent.trim() : '';
  };
  const charts = [...document.querySelectorAll('svg')].map(svg => {
    const name = (svg.getAttribute('aria-label') || '').slice(0, 60);
    const texts = [...svg.querySelectorAll('text')].filter(t => t.textContent.trim() && t.getBBox().width > 0);
    const quads = texts.map(quad), label = i => texts[i].textContent.trim();
    const overlaps = [];
    for (let i = 0; i < quads.length; i++) for (let j = i + 1; j < quads.length; j++)
      if (!apart(quads[i], quads[j])) overlaps.push(`${label(i)} / ${label(j)}`);
    const view = rect(svg);
    const clipped = texts.filter((t, i) => quads[i].some(([x, y]) =>
      x < view[0] - 0.5 || x > view[2] + 0.5 || y < view[1] - 0.5 || y > view[3] + 0.5)).map(t => t.textContent.trim());
    const plots = [...svg.querySelectorAll('g[id^="axes_"]')]
      .map(a => a.querySelector(':scope > g[id^="patch_"]')).filter(Boolean);  // an axes' background: its plot area
    const covering = [...svg.querySelectorAll('g[id^="legend_"]')]
      .filter(l => plots.some(p => meets(rect(l), rect(p)))).map(l => l.textContent.trim().slice(0, 40));
    return {name, overlaps, clipped, covering, texts: texts.length,
            title: labelled(svg, 'chart-title'), xlabel: labelled(svg, 'x-label'), ylabel: labelled(svg, 'y-label')};
  });
  return {
    title: document.title,
    verdict: banner ? {status: banner.dataset.status, colour: bg(banner), text: banner.innerText} : null,
    cells: [...document.querySelectorAll('td.status')].map(c => ({status: c.dataset.status, colour: bg(c)})),
    svgs: [...document.querySelectorAll('svg')].map(area),
    charts,
    links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
    headings: [...document.querySelectorAll('h2')].map(h => h.innerText.trim()),
    text: document.body.innerText,
    firstDetails,
    tiny,
  };
}"""


def _no_browser(reason: str) -> None:
    if os.environ.get("KFP_RAI_BROWSER_REQUIRED") == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        _no_browser(f"no Chromium at {CHROMIUM}: install Debian's chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _no_browser("Playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        # Playwright starts Chromium with a fresh, temporary --user-data-dir of its own.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


def _render(browser, page_path: Path) -> dict:
    page = browser.new_page()
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_path.as_uri(), wait_until="load")
    seen = page.evaluate(_INSPECT)
    page.close()
    seen.update(requests=requests, errors=errors)
    return seen


def _pages(run_dir: Path) -> list[Path]:
    return sorted(run_dir.rglob("*.html"))


def _check_page(page_path: Path, seen: dict) -> None:
    where = page_path.name
    assert seen["title"] and not seen["errors"], where
    assert seen["requests"] == [page_path.as_uri()], f"{where} loaded something external: {seen['requests']}"
    assert seen["verdict"] is not None, f"{where} has no verdict banner"
    assert seen["verdict"]["colour"] == COLOUR[seen["verdict"]["status"]], where
    for cell in seen["cells"]:
        assert cell["colour"] == COLOUR[cell["status"]], where
    assert all(area > 0 for area in seen["svgs"]), f"{where}: a chart did not render"
    assert not seen["tiny"], f"{where}: text under 10 px: {seen['tiny'][:5]}"
    _check_charts(where, seen["charts"])
    for link in seen["links"]:
        assert (page_path.parent / link).exists(), f"{where} links to missing {link}"


def _check_charts(where: str, charts: list[dict]) -> None:
    """What a reader sees in each chart: no label over another, none cut off at the chart's edge, no
    legend over the plotted data, and a title and both axes named."""
    for chart in charts:
        name = f"{where}, chart {chart['name']!r}"
        assert chart["texts"], f"{name}: no text at all"
        assert not chart["overlaps"], f"{name}: labels overlap: {chart['overlaps'][:5]}"
        assert not chart["clipped"], f"{name}: labels cut off at the edge: {chart['clipped'][:5]}"
        assert not chart["covering"], f"{name}: a legend lies over the plotted data: {chart['covering']}"
        for part in ("title", "xlabel", "ylabel"):
            assert chart[part], f"{name}: no {part}"


def test_every_page_of_a_blocked_run_renders_and_shows_failures_in_the_failure_colour(blocked_run, browser):
    pages = _pages(blocked_run.out)
    assert {p.relative_to(blocked_run.out).as_posix() for p in pages} >= {
        "index.html",
        "discovery/representativeness.html",
        "discovery/datasheet.html",
        "validation/explanation.html",
        "validation/validation.html",
        "production/model_card.html",
    }
    seen = {p.relative_to(blocked_run.out).as_posix(): _render(browser, p) for p in pages}
    for path, page in seen.items():
        _check_page(blocked_run.out / path, page)
    for failed in (
        "discovery/representativeness.html",
        "discovery/datasheet.html",
        "validation/validation.html",
        "production/model_card.html",
    ):
        assert seen[failed]["verdict"]["colour"] == FAILURE, failed
    assert seen["production/model_card.html"]["verdict"]["text"].startswith("BLOCKED")
    assert seen["index.html"]["verdict"]["colour"] == FAILURE and "BLOCKED" in seen["index.html"]["verdict"]["text"]
    assert len(seen["discovery/representativeness.html"]["svgs"]) == 3  # sex, race, sex × race
    # selection rate, TPR and FPR per gated attribute (sex, race, sex × race), and a ROC chart per attribute
    assert len(seen["validation/validation.html"]["svgs"]) == 12
    # A reviewer's read: the datasheet has Gebru et al.'s sections and its charts, the card Mitchell et al.'s.
    sheet = seen["discovery/datasheet.html"]
    for title in ("Motivation", "Composition", "Collection process", "Preprocessing", "Distribution", "Maintenance"):
        assert title in sheet["headings"], title
    assert len(sheet["svgs"]) >= 7  # shares vs reference x3, base rates x3, proxies
    assert "relationship: a proxy of sex" in sheet["text"] and "CC BY 4.0" in sheet["text"]
    card = seen["production/model_card.html"]
    for title in (
        "Model details",
        "Intended use",
        "Factors",
        "Metrics",
        "Training data",
        "Evaluation data",
        "Quantitative analyses",
        "Ethical considerations",
        "Caveats and recommendations",
        "Policy exceptions",
        "Lineage",
    ):
        assert title in card["headings"], title
    assert "too small to judge" in card["text"] and "marital-status (of sex)" in card["text"]
    # Summary first: the verdict, one line per gate and the next steps before any collapsed part, and
    # that part at most half the 15,570 px the whole card took when every check was listed in line.
    assert card["headings"][:2] == ["Gates", "Next steps"] and "Do not deploy" in card["text"]
    assert card["firstDetails"] is not None and card["firstDetails"] <= 15570 / 2, card["firstDetails"]
    assert not any(path.startswith("refresh/") for path in seen)  # a blocked model is never refreshed


def test_warnings_and_a_detected_drift_are_never_shown_as_success(drift_run, browser):
    seen = {p.relative_to(drift_run.out).as_posix(): _render(browser, p) for p in _pages(drift_run.out)}
    for path, page in seen.items():
        _check_page(drift_run.out / path, page)
    refresh = seen["refresh/refresh.html"]  # what the candidate sees now: drift in age, the decision to retrain
    assert refresh["verdict"]["status"] == GateStatus.WARNING.value and refresh["verdict"]["colour"] == WARNING
    assert refresh["verdict"]["text"].startswith("RETRAIN")
    assert any(cell["colour"] == WARNING for cell in refresh["cells"])  # the drifted column's finding
    assert "Prediction drift" in refresh["headings"] and "The model on the new labelled rows" in refresh["headings"]
    comparison = seen["refresh/comparison.html"]  # the challenger against the candidate, same rows
    assert comparison["svgs"]
    assert comparison["verdict"]["status"] == drift_run.record["stages"]["refresh"]["comparison"]["status"]
    for warned in (
        "discovery/representativeness.html",
        "discovery/datasheet.html",
        "validation/validation.html",
        "production/model_card.html",
    ):
        assert seen[warned]["verdict"]["colour"] == WARNING, warned
    assert seen["production/model_card.html"]["verdict"]["text"].startswith("ELIGIBLE WITH WARNINGS")
    assert seen["index.html"]["verdict"]["colour"] == WARNING
    assert "refresh/retrain/production/model_card.html" in seen
