"""The demo page of `slotfill serve` in a real browser (headless chromium via selenium):
type an utterance, submit, and find its slots highlighted. Skips without chromium,
chromedriver or selenium; CI installs them (.ci/run)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import CONFIGS, ROOT

pytest.importorskip("fastapi")
webdriver = pytest.importorskip("selenium.webdriver")
httpx = pytest.importorskip("httpx")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs chromium and chromedriver (apt-get install "
                                       "chromium chromium-driver)")


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory) -> Path:
    """A small joint model trained on the bundled corpus for two epochs: enough to tag
    `Taipei` after `arrive` as the destination (the tiny corpus' 3-epoch model is not)."""
    from slotfill.config import load_config
    from slotfill.training.run import train

    cfg = load_config(CONFIGS / "bilstm.yaml", [
        f"data.path={ROOT / 'data'}", "train.epochs=2", "train.patience=0", "train.lr=0.01",
        "model.hidden_size=32", "model.embedding_dim=32", "model.intent=true",
        "train.threads=1", "train.device=cpu"])
    run_dir = tmp_path_factory.mktemp("demo-run")
    train(cfg, run_dir)
    return run_dir


@pytest.fixture(scope="module")
def server(demo_model, tmp_path_factory):
    from test_serve import running_server

    with running_server(demo_model, tmp_path_factory.mktemp("serve") / "stderr.txt") as (url, _):
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1366,768",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {  # a laptop's screen
        "width": 1366, "height": 768, "deviceScaleFactor": 1, "mobile": False})
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def tag_in_page(browser, url: str, text: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url + "/")
    box = browser.find_element(By.ID, "text")
    box.clear()
    box.send_keys(text, Keys.ENTER)
    wait = WebDriverWait(browser, 20)
    wait.until(ec.visibility_of_element_located((By.ID, "result")))
    wait.until(lambda d: d.find_element(By.ID, "json").get_attribute("textContent")
               .find(text) >= 0)
    return By


def test_typed_utterance_shows_its_slots_highlighted(server, browser):
    by = tag_in_page(browser, server, "arrive Taipei on Nov 2nd")
    marks = browser.find_elements(by.CSS_SELECTOR, "#tagged mark.slot")
    found = {m.find_element(by.CLASS_NAME, "value").text: m.get_attribute("data-slot")
             for m in marks}
    assert found.get("Taipei") == "toloc.city_name", found
    taipei = next(m for m in marks if m.get_attribute("data-slot") == "toloc.city_name")
    assert "toloc.city_name" in taipei.find_element(by.CLASS_NAME, "label").text
    assert taipei.value_of_css_property("background-color") not in ("", "rgba(0, 0, 0, 0)")
    # the whole utterance is there, in order, with the slots inline
    assert browser.find_element(by.ID, "tagged").text.replace("\n", " ").startswith("arrive")
    intent = browser.find_element(by.ID, "intent")
    assert intent.is_displayed() and intent.text.startswith("atis_")
    rows = browser.find_elements(by.CSS_SELECTOR, "#slots tbody tr")
    assert len(rows) == len(marks)
    # the same slot type keeps its colour from one request to the next
    colour = taipei.value_of_css_property("background-color")
    tag_in_page(browser, server, "fly from Boston and arrive Taipei")
    again = browser.find_element(by.CSS_SELECTOR, '#tagged mark.slot[data-slot='
                                                  '"toloc.city_name"]')
    assert again.value_of_css_property("background-color") == colour
    if os.environ.get("SLOTFILL_DEMO_SCREENSHOT"):  # docs/demo.png, the README's picture
        tag_in_page(browser, server, "i want to leave Paris on the 2nd of november and "
                                     "arrive in Taipei at 5 pm")
        browser.save_screenshot(os.environ["SLOTFILL_DEMO_SCREENSHOT"])


def test_api_errors_show_in_the_page(server, browser):
    from selenium.webdriver.support.ui import WebDriverWait

    by = tag_in_page(browser, server, "to Boston")
    browser.execute_script("tag('x '.repeat(600))")  # over the 512-token limit
    error = WebDriverWait(browser, 20).until(
        lambda d: d.find_element(by.ID, "error") if d.find_element(by.ID, "error")
        .is_displayed() else False)
    assert "tokens" in error.text and "limit is 512" in error.text
