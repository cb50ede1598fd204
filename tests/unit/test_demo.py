"""The web demo on a tiny random model: its pieces, its API through gradio_client, and a real headless Chromium.

The browser tests (marker ``browser``) need the Debian packages ``chromium`` and ``chromium-driver``
(``.ci/run`` installs them); they skip only when /usr/bin/chromium or /usr/bin/chromedriver is absent.
The screenshot goes to ``$TRUTHTRACE_ARTIFACTS/truthtrace-demo.png`` (default /tmp/truthtrace-artifacts).
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tiny_runs import tiny_trained_run

from truthtrace.cli import build_parser
from truthtrace.cli.demo import engine_config
from truthtrace.data import Question
from truthtrace.demo import DemoSession, build_app, example_questions, launch
from truthtrace.demo.app import local_no_proxy
from truthtrace.demo.view import MAX_QUESTION_CHARS, check_question, meter, score_rows
from truthtrace.inference import Engine, EngineConfig

WORDS = ["France", "Mars", "Hamlet", "gold", "spider", "planet", "capital", "red", "legs", "symbol"]
QUESTIONS = [Question(id=f"q{i:02d}", question=f"What is the {WORDS[i % 10]} of {WORDS[(i * 3) % 10]} {i}?",
                      answers=("x",), category="test") for i in range(24)]
DETECTORS = ("probe", "perplexity", "max_entropy")
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
CHROME_ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", "--window-size=1280,1700")
SCREENSHOT = Path(os.environ.get("TRUTHTRACE_ARTIFACTS", "/tmp/truthtrace-artifacts")) / "truthtrace-demo.png"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, tiny_model, tiny_tokenizer):
    """extract (generate capture) -> labels -> preprocess -> train on a tiny random model."""
    return tiny_trained_run(tmp_path_factory.mktemp("demo"), tiny_model, tiny_tokenizer, QUESTIONS, DETECTORS,
                            batch_size=8)


@pytest.fixture(scope="module")
def engine(pipeline, tiny_model, tiny_tokenizer):
    eng = Engine(EngineConfig(detectors=[pipeline / "det"], dtype="float32", cache=pipeline / "cache.sqlite"),
                 tiny_model, tiny_tokenizer)
    yield eng
    eng.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(engine):
    """The demo served on a free localhost port in a thread; its URL."""
    app = build_app(engine, example_questions(4))
    _, url, _ = launch(app, host="127.0.0.1", port=free_port(), block=False, quiet=True)
    yield url
    app.close()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server, verbose=False)


# ---------------------------------------------------------------- pieces


def test_questions_are_checked():
    assert "empty" in check_question("") and "empty" in check_question("  \n ")
    assert "must be text" in check_question(42) and "must be text" in check_question(["a"])
    assert "over the limit" in check_question("x" * (MAX_QUESTION_CHARS + 1))
    assert "plain text" in check_question("what\x00 is this?")
    assert check_question("What is the capital of France?\n") is None


def test_meter_and_table_values():
    value, label = meter(0.25, "probe", True)
    assert value == {"made up": 0.25, "not made up": 0.75} and "probe" in label and "so far" not in label
    assert "so far" in meter(0.25, "probe", False)[1] and meter(None, None, True)[0] == "no calibrated detector"
    rows = score_rows({"probe": {"family": "probe", "probability": 0.5, "score": 0.1, "calibrated": True},
                       "perplexity": {"family": "logit", "probability": None, "score": 3.0}}, "probe")
    assert rows[0][-1] == "yes" and rows[1][2] == "—" and rows[1][-1] == ""


def test_session_streams_tokens_then_every_score_and_the_graph(engine, tmp_path):
    updates = list(DemoSession(engine, tmp_path).respond(QUESTIONS[3].question))
    assert updates[0]["error"] is None and updates[0]["answer"] == []
    streamed = [u["answer"] for u in updates if "answer" in u and "scores" not in u]
    assert [len(a) for a in streamed] == list(range(1, len(streamed) + 1))  # one more token per update
    final = next(u for u in updates if u.get("scores"))
    assert {row[0] for row in final["scores"]} == set(DETECTORS)
    assert final["meter"][1].endswith(engine.primary) and set(final["meter"][0]) == {"made up", "not made up"}
    assert Path(updates[-1]["graph"]).read_bytes()[:4] == b"\x89PNG"


def test_a_refused_question_is_a_message_not_a_traceback(engine, tmp_path):
    [update] = DemoSession(engine, tmp_path).respond("")
    assert "empty" in update["error"] and update["answer"] == [] and update["meter"][0] is None
    updates = list(DemoSession(engine, tmp_path).respond("word " * 400))  # over the tiny model's context
    assert "over the limit" in updates[-1]["error"]


def test_cli_options_become_the_engine_config(tmp_path):
    args = build_parser().parse_args(["demo", "--detector", "d1", "--detector", "d2", "--no-cache", "--port", "9"])
    assert args.func.__name__ == "cmd_demo" and args.host == "127.0.0.1" and args.port == 9
    cfg = engine_config(args)
    assert cfg.detectors == ("d1", "d2") and cfg.cache is None and cfg.dtype == "auto"
    assert engine_config(build_parser().parse_args(["demo", "--detector", "d", "--cache", "c.db"])).cache == "c.db"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--detector", "d", "--share"])


def test_importing_the_cli_loads_no_gradio():
    code = "import sys, truthtrace.cli; print([m for m in ('gradio', 'fastapi', 'pandas') if m in sys.modules])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr


def test_localhost_is_exempt_from_proxies(monkeypatch):
    monkeypatch.setenv("no_proxy", "corp.example")
    monkeypatch.delenv("NO_PROXY", raising=False)
    local_no_proxy("0.0.0.0")
    assert os.environ["no_proxy"].split(",") == ["corp.example", "localhost", "127.0.0.1", "::1", "0.0.0.0"]
    assert "127.0.0.1" in os.environ["NO_PROXY"]


# ---------------------------------------------------------------- the API (gradio_client)


def test_api_answers_with_tokens_meter_and_scores(client, engine):
    error, answer, label, scores, status, graph, cache = client.predict(QUESTIONS[5].question, api_name="/answer")
    assert error == "" and answer and all("token" in t for t in answer)
    assert {c["label"] for c in label["confidences"]} == {"made up", "not made up"}
    assert {row[0] for row in scores["data"]} == set(DETECTORS)
    assert "tiny-llama" in status and Path(graph).is_file()
    assert cache["rows"] >= 1


def test_api_shows_the_error_of_an_empty_question(client):
    error, answer, *_ = client.predict("", api_name="/answer")
    assert "tt-error" in error and "the question is empty" in error and answer == []


def test_api_cache_stats(client, engine):
    client.predict(QUESTIONS[6].question, api_name="/answer")
    client.predict(QUESTIONS[6].question, api_name="/answer")  # the second is a hit
    stats = client.predict(api_name="/cache_stats")
    assert stats["hits"] >= 1 and stats["rows"] >= 1 and stats["file"].endswith("cache.sqlite")


# ---------------------------------------------------------------- a real browser


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(f"needs {CHROMIUM} and {CHROMEDRIVER}: apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in CHROME_ARGS + (f"--user-data-dir={tempfile.mkdtemp(prefix='truthtrace-chromium-')}",):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    yield driver
    driver.quit()


def wait_for(driver, condition, timeout: float = 30.0):
    """Poll ``condition(driver)`` until it is truthy; its value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def text_of(driver, css: str) -> str:
    """The shown text of the elements ``css`` selects, joined ("" for none)."""
    from selenium.webdriver.common.by import By

    return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, css) if e.is_displayed())


def ask(driver, question: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = wait_for(driver, lambda d: d.find_element(By.CSS_SELECTOR, "#tt-question textarea"))
    box.send_keys(Keys.CONTROL, "a")  # select and delete, as a user would: clear() fires no input event
    box.send_keys(Keys.DELETE)
    box.send_keys(question)
    driver.find_element(By.CSS_SELECTOR, "#tt-ask").click()


@pytest.mark.browser
def test_browser_streams_an_answer_with_its_meter_and_shows_errors(browser, server):
    from selenium.webdriver.common.by import By

    browser.get(server)
    ask(browser, QUESTIONS[8].question)
    wait_for(browser, lambda d: text_of(d, "#tt-answer .token .text").strip())
    wait_for(browser, lambda d: "made up" in text_of(d, "#tt-meter [data-testid=label-output-value]"))
    assert browser.find_elements(By.CSS_SELECTOR, "#tt-meter meter[aria-label='made up']")
    coloured = [e.get_attribute("style") for e in browser.find_elements(By.CSS_SELECTOR, "#tt-answer .token")]
    assert any("background-color" in c for c in coloured), coloured  # coloured by risk
    wait_for(browser, lambda d: all(name in text_of(d, "#tt-scores") for name in DETECTORS))
    wait_for(browser, lambda d: d.execute_script(
        "const i = document.querySelector('#tt-graph img'); return i && i.complete && i.naturalWidth > 0;"))
    assert not text_of(browser, "#tt-error")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))
    print(f"\nscreenshot of the demo: {SCREENSHOT}")
    ask(browser, "")
    wait_for(browser, lambda d: "the question is empty" in text_of(d, "#tt-error"))
    assert not text_of(browser, "#tt-answer .token .text").strip()
    browser.save_screenshot(str(SCREENSHOT.with_name("truthtrace-demo-error.png")))
    assert "Traceback" not in browser.page_source


@pytest.mark.browser
def test_browser_page_fetches_nothing_from_outside(browser, server):
    browser.get(server)
    wait_for(browser, lambda d: text_of(d, "#tt-ask"))
    time.sleep(1.0)  # late fetches (fonts, analytics) would come now
    urls = set()
    for entry in browser.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.add(msg["params"]["request"]["url"])
    web = {u for u in urls if u.startswith(("http:", "https:", "ws:", "wss:"))}  # not chrome://, data:, blob:
    outside = sorted(u for u in web if urlsplit(u).hostname not in ("127.0.0.1", "localhost"))
    assert any(u.startswith(server) for u in web) and outside == [], outside
