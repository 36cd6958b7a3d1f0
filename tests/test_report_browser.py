"""The report in a real browser (headless chromium through selenium): the charts and the
wrong utterances render, tables sort, filters filter, the page fits a laptop screen.
Skips where selenium, chromium or chromedriver is missing; .ci/run installs them."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

webdriver = pytest.importorskip("selenium.webdriver")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs chromium and chromedriver")


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="slotfill-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--hide-scrollbars",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser, trained_intent_run):
    browser.set_window_size(1366, 768)
    browser.get((trained_intent_run / "report.html").as_uri())
    return browser


def js(driver, script: str, *args):
    return driver.execute_script(script, *args)


def click(driver, element) -> None:
    """A real click, with the element in the middle of the screen (not under the sticky
    navigation bar, where selenium's own scrolling would leave it)."""
    js(driver, "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", element)
    element.click()


def test_charts_and_wrong_utterances_render_without_script_errors(page):
    sizes = js(page, """return Array.from(document.querySelectorAll('figure.chart svg'))
        .map(svg => [svg.getBoundingClientRect().width, svg.getBoundingClientRect().height,
                     svg.querySelectorAll('line, polyline, rect, circle, text').length]);""")
    assert len(sizes) >= 4  # curves, slot confusion, intent confusion, calibration
    assert all(w > 200 and h > 150 and drawn > 10 for w, h, drawn in sizes)
    # the layout guesses text widths: every label must still lie inside its chart
    outside = js(page, """return Array.from(document.querySelectorAll('figure.chart svg'))
        .flatMap(svg => {
          const box = svg.getBoundingClientRect();
          return Array.from(svg.querySelectorAll('text')).filter(t => {
            const r = t.getBoundingClientRect();
            return r.left < box.left - 1 || r.right > box.right + 1 ||
                   r.top < box.top - 1 || r.bottom > box.bottom + 1;
          }).map(t => t.textContent);
        });""")
    assert not outside, outside
    items = js(page, "return document.querySelectorAll('#utterance-list article.utt').length")
    assert items > 0
    assert js(page, "return document.getElementById('filter-count').textContent") == \
        f"{items} of {items} shown"
    chips = js(page, """return Array.from(document.querySelectorAll('.utt .chip'))
        .filter(c => c.getBoundingClientRect().height > 0).length""")
    assert chips > 0
    errors = [e for e in page.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


def test_tables_sort_by_the_clicked_column(page):
    def column(table: str, index: int) -> list[str]:
        return js(page, f"""return Array.from(document.querySelectorAll(
            '#{table} tbody tr')).map(r => r.cells[{index}].dataset.v);""")

    header = page.find_element("css selector", "#table-per-slot th[data-col='4']")  # support
    click(page, header)
    values = [int(v) for v in column("table-per-slot", 4)]
    assert values == sorted(values, reverse=True) and header.get_attribute("aria-sort") == \
        "descending"
    click(page, header)
    assert [int(v) for v in column("table-per-slot", 4)] == sorted(values)
    click(page, page.find_element("css selector", "#table-per-slot th[data-col='0']"))
    names = column("table-per-slot", 0)
    assert names == sorted(names, key=str.lower, reverse=True)


def test_filters_show_only_the_matching_utterances(page):
    from selenium.webdriver.support.ui import Select

    total = js(page, "return document.querySelectorAll('article.utt').length")
    kind = Select(page.find_element("id", "filter-kind"))
    wanted = kind.options[1].get_attribute("value")  # the first error kind listed
    kind.select_by_value(wanted)
    shown = js(page, "return Array.from(document.querySelectorAll('article.utt'))"
                     ".filter(a => !a.hidden).map(a => a.dataset.kinds)")
    assert 0 < len(shown) <= total and all(wanted in k.split("|") for k in shown)
    expected = kind.options[1].text.rsplit("(", 1)[1].rstrip(")")
    assert len(shown) == int(expected)
    slot = Select(page.find_element("id", "filter-slot"))
    slot.select_by_index(1)
    chosen = slot.first_selected_option.get_attribute("value")
    visible = js(page, "return Array.from(document.querySelectorAll('article.utt'))"
                       ".filter(a => !a.hidden).map(a => [a.dataset.slots, a.dataset.kinds])")
    assert all(chosen in s.split() and wanted in k.split("|") for s, k in visible)
    assert page.find_element("id", "filter-count").text == f"{len(visible)} of {total} shown"
    kind.select_by_value("")
    slot.select_by_value("")
    words = page.find_element("id", "filter-text")
    words.send_keys("zzz-no-such-word")
    assert page.find_element("id", "filter-count").text == f"0 of {total} shown"


@pytest.mark.parametrize("width, height", [(1366, 768), (1920, 1080)])
def test_the_page_fits_the_screen(browser, trained_intent_run, tmp_path, width, height):
    browser.set_window_size(width, height)
    browser.get((trained_intent_run / "report.html").as_uri())
    assert js(browser, "return document.documentElement.scrollWidth") <= js(
        browser, "return window.innerWidth")
    # nothing in a section pokes out of it (tables scroll inside their own box)
    overflow = js(browser, """return Array.from(document.querySelectorAll('section'))
        .filter(s => s.scrollWidth > s.clientWidth + 1).map(s => s.id)""")
    assert not overflow
    shot = Path(tmp_path / f"report-{width}.png")
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def test_on_a_phone_the_title_breaks_only_after_a_hyphen(page):
    """A run's name, wider than a 420 px screen, wraps at one of its hyphens, never inside
    a word (runs/<config>-<timestamp>/ names are one long word to a browser)."""
    name = "bilstm-crf-20261207-091500"
    page.set_window_size(420, 900)
    breaks = js(page, """const h1 = document.querySelector('header.top h1');
        h1.textContent = arguments[0];
        const text = h1.firstChild, range = document.createRange(), found = [];
        let top = null;
        for (let i = 0; i < text.length; i++) {  // where a character starts a new line
            range.setStart(text, i); range.setEnd(text, i + 1);
            const y = range.getBoundingClientRect().top;
            if (top !== null && y > top + 2) found.push(i);
            top = y;
        }
        return found;""", name)
    assert breaks and all(name[i - 1] == "-" for i in breaks), [name[:i] for i in breaks]
