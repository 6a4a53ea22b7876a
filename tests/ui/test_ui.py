"""The web page in a real browser: upload, pick a mode, watch the answer, follow a task.

Each state is saved as a screenshot (see the ``shots_dir`` fixture for where).
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Formatter
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from stepaudio.api.sessions import SESSION_COOKIE
from stepaudio.ui.i18n import LANGUAGES, TEXTS, pick_language, t
from tests.helpers import clip
from tests.ui.conftest import KEY, OTHER_KEY, open_page

expect = pytest.importorskip("playwright.sync_api").expect
SLOW = 240_000  # ms: processing on two shared CPU cores, plus the first model load


def upload(page, path: Path) -> None:
    page.locator("#sa-audio input[type=file]").set_input_files(str(path))


def run_and_wait(page) -> None:
    page.locator("#sa-run").click()
    expect(page.locator(".sa-progress[data-state=completed]")).to_be_visible(timeout=SLOW)


def test_root_leads_to_the_page(server: str):
    r = httpx.get(server + "/?task=abc", follow_redirects=False)
    assert r.status_code in (302, 307)
    assert r.headers["location"] == "/ui/?task=abc"


@pytest.mark.heavy
def test_asr_shows_info_then_the_transcript(ui, server: str, shots_dir: Path):
    page, _ = ui
    page.goto(server + "/")
    expect(page.locator("#sa-run")).to_be_visible()
    page.screenshot(path=shots_dir / "01-empty.png", full_page=True)

    upload(page, clip("en/jfk.flac"))
    # The recording's facts before any processing: 11 s, flac, one window.
    expect(page.locator("#sa-info")).to_contain_text("00:00:11", timeout=30_000)
    expect(page.locator("#sa-info")).to_contain_text("flac")
    expect(page.locator("#sa-info")).to_contain_text("1")
    page.get_by_label("Transcript (verbatim)").check()
    page.screenshot(path=shots_dir / "02-uploaded-asr.png", full_page=True)

    run_and_wait(page)
    transcript = page.locator("#sa-transcript textarea")
    expect(transcript).to_have_value(re.compile(r"ask not what your country", re.I))
    expect(transcript).to_have_value(re.compile(r"^\[00:00:00 → "))
    expect(page.locator("#sa-answer textarea")).to_have_value(re.compile("ask not", re.I))
    # Four downloads: txt, srt, vtt, json.
    expect(
        page.locator("#sa-files").get_by_text(re.compile(r"\.(txt|srt|vtt|json)$"))
    ).to_have_count(4)
    page.screenshot(path=shots_dir / "03-asr-result.png", full_page=True)


@pytest.mark.heavy
def test_understand_asks_for_a_question_and_answers(ui, server: str, shots_dir: Path):
    page, _ = ui
    page.goto(server + "/ui/")
    expect(page.locator("#sa-question")).to_be_hidden()
    page.get_by_label("Ask a question").check()
    question = page.locator("#sa-question textarea")
    expect(question).to_be_visible()
    expect(page.locator("#sa-target")).to_be_hidden()
    upload(page, clip("en/jfk.flac"))
    expect(page.locator("#sa-info")).to_contain_text("00:00:11", timeout=30_000)
    question.fill("What does the speaker ask people to do for their country?")
    run_and_wait(page)
    answer = page.locator("#sa-answer textarea")
    expect(answer).not_to_have_value("")
    assert len(answer.input_value().strip()) > 10
    # The reasoning is there, folded away; the transcript it worked from is shown too.
    expect(page.locator("#sa-think")).to_be_hidden()
    expect(page.locator("#sa-transcript textarea")).to_have_value(re.compile("ask not", re.I))
    page.screenshot(path=shots_dir / "04-understand-result.png", full_page=True)


@pytest.mark.heavy
def test_long_file_runs_as_a_task_that_survives_reload(
    ui, server: str, shots_dir: Path, long_file: Path
):
    page, watch = ui
    page.goto(server + "/ui/")
    page.get_by_label("Transcript (verbatim)").check()
    page.get_by_text("Advanced settings").click()
    segment = page.locator("#sa-segment input")
    segment.fill("10")
    segment.press("Enter")
    upload(page, long_file)
    expect(page.locator("#sa-info")).to_contain_text(
        re.compile(r"About [2-9] window"), timeout=30_000
    )
    page.locator("#sa-as-task input").check()
    page.screenshot(path=shots_dir / "05-long-uploaded.png", full_page=True)

    page.locator("#sa-run").click()
    # The address now names the task, and the bar shows windows being done.
    page.wait_for_url(re.compile(r"[?&]task="), timeout=30_000)
    task = parse_qs(urlparse(page.url).query)["task"][0]
    expect(page.locator("#sa-task textarea")).to_have_value(task)
    bar = page.locator(".sa-progress[data-total]:not([data-total='0'])")
    expect(bar).to_be_visible(timeout=60_000)
    page.screenshot(path=shots_dir / "06-long-progress.png", full_page=True)

    # A reload (or the same address shared) picks the task up again.
    watch.reload(page)
    expect(page.locator("#sa-task textarea")).to_have_value(task, timeout=30_000)
    # The form comes back as the task was asked for.
    expect(page.get_by_label("Transcript (verbatim)")).to_be_checked()
    expect(page.locator(".sa-progress[data-state=completed]")).to_be_visible(timeout=SLOW)
    transcript = page.locator("#sa-transcript textarea").input_value()
    assert "ask not what your country" in transcript.lower()
    stamps = re.findall(r"^\[(\d\d):(\d\d):(\d\d) → ", transcript, re.M)
    assert len(stamps) >= 3
    # Later windows carry their place in the whole recording, not in the window.
    assert max(int(h) * 3600 + int(m) * 60 + int(s) for h, m, s in stamps) >= 20
    page.screenshot(path=shots_dir / "07-long-result-after-reload.png", full_page=True)


@pytest.mark.heavy
def test_unknown_task_in_the_address_says_so(ui, server: str):
    page, _ = ui
    page.goto(server + "/ui/?task=00000000-0000-0000-0000-000000000000")
    expect(page.locator(".sa-progress[data-state=error]")).to_contain_text(
        "not found", timeout=30_000
    )


@pytest.mark.heavy
def test_chinese_interface_and_status_panel(browser, server: str, shots_dir: Path):
    context, page, watch = open_page(browser, server, locale="zh-CN")
    try:
        page.goto(server + "/ui/")
        expect(page.locator("#sa-run")).to_have_text("运行", timeout=30_000)
        expect(page.get_by_label("逐字转写")).to_be_visible()
        page.screenshot(path=shots_dir / "08-chinese.png", full_page=True)
        page.get_by_role("tab", name="服务状态").click()
        status = page.locator("#sa-status")
        expect(status).to_contain_text("embedded")
        expect(status).to_contain_text("内置 CPU 引擎")
        page.screenshot(path=shots_dir / "09-status-zh.png", full_page=True)
        # The switch changes every label at once, back to English.
        page.get_by_label("English").check()
        expect(page.locator("#sa-run")).to_have_text("Run")
        expect(status).to_contain_text("Queue")
        page.screenshot(path=shots_dir / "10-status-en.png", full_page=True)
    finally:
        context.close()
    assert watch.outside == [], watch.outside
    assert watch.errors == [], "\n".join(watch.errors)


def test_every_text_renders_in_both_languages():
    """What ``t()`` gives the page: for every text, each language's own words (not the
    English fallback) with the same values filled in (a Chinese text with other
    placeholders would raise or drop a number)."""
    for key, english in TEXTS["en"].items():
        names = {name for _, name, _, _ in Formatter().parse(english) if name}
        values = {name: 7 for name in names}  # a number: some texts format it as :.1f
        shown = {lang: t(lang, key, **values) for lang in LANGUAGES}
        for text in shown.values():
            assert text.count("7") >= len(names), (key, text)
        assert shown["zh"] != shown["en"], f"{key!r} falls back to English in Chinese"


def test_language_comes_from_the_address_then_the_browser():
    assert pick_language("zh-CN,zh;q=0.9,en;q=0.8") == "zh"
    assert pick_language("de-DE,en;q=0.5") == "en"
    assert pick_language(None) == "en"
    assert pick_language("zh-CN", asked="en") == "en"


@pytest.mark.heavy
def test_login_then_asr_and_a_task_that_is_the_keys_own(browser, keyed, shots_dir: Path):
    """With keys: the page asks for one, then works; its tasks belong to that key."""
    context, page, watch = open_page(browser, keyed.url)
    try:
        page.goto(keyed.url + "/ui/")
        page.wait_for_url(re.compile(r"/login\?next="))
        expect(page.get_by_label("API key")).to_be_visible()
        page.screenshot(path=shots_dir / "11-login.png", full_page=True)
        page.get_by_label("API key").fill(KEY)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(r"/ui/$"))
        expect(page.locator("#sa-run")).to_be_visible(timeout=30_000)
        expect(page.locator("#sa-logout")).to_be_visible()

        upload(page, clip("en/jfk.flac"))
        expect(page.locator("#sa-info")).to_contain_text("00:00:11", timeout=30_000)
        page.get_by_label("Transcript (verbatim)").check()
        run_and_wait(page)
        transcript = page.locator("#sa-transcript textarea")
        expect(transcript).to_have_value(re.compile(r"ask not what your country", re.I))
        # A result file comes back through Gradio's file route, with the login cookie.
        link = page.locator("#sa-files a[href*='.txt']").first
        got = page.request.get(link.get_attribute("href"))
        assert got.status == 200 and "ask not" in got.text().lower()
        page.screenshot(path=shots_dir / "12-logged-in-asr.png", full_page=True)

        # The same recording as a task: the HTTP API shows it to this key only.
        page.get_by_text("Advanced settings").click()
        page.locator("#sa-as-task input").check()
        page.locator("#sa-run").click()
        page.wait_for_url(re.compile(r"[?&]task="), timeout=30_000)
        task = parse_qs(urlparse(page.url).query)["task"][0]
        expect(page.locator(".sa-progress[data-state=completed]")).to_be_visible(timeout=SLOW)
        mine = httpx.get(f"{keyed.url}/api/task/{task}", headers={"X-API-Key": KEY})
        assert mine.status_code == 200 and mine.json()["status"] == "completed"
        assert "ask not" in mine.json()["result"]["transcript"].lower()
        theirs = httpx.get(f"{keyed.url}/api/task/{task}", headers={"X-API-Key": OTHER_KEY})
        assert theirs.status_code == 404

        # The link shows a button (a GET logs nobody out); its POST ends the session.
        page.locator("#sa-logout").click()
        page.wait_for_url(re.compile(r"/logout$"))
        page.locator("#logout-submit").click()
        page.wait_for_url(re.compile(r"/login$"))
        page.goto(keyed.url + "/ui/")
        page.wait_for_url(re.compile(r"/login\?next="))
    finally:
        context.close()
    assert watch.outside == [], watch.outside
    assert watch.errors == [], "\n".join(watch.errors)


@pytest.mark.heavy
def test_another_keys_task_in_the_address_is_not_shown(browser, keyed):
    """A task id from another key, opened on the page, is "not found" (not its result)."""
    with open(clip("en/jfk.flac"), "rb") as f:
        r = httpx.post(
            f"{keyed.url}/api/task",
            headers={"X-API-Key": OTHER_KEY},
            data={"mode": "asr"},
            files={"audio": ("jfk.flac", f)},
            timeout=60,
        )
    assert r.status_code == 202, r.text
    task = r.json()["task_id"]
    context, page, watch = open_page(browser, keyed.url)
    try:
        login = httpx.post(f"{keyed.url}/login", data={"key": KEY}, follow_redirects=False)
        session = login.cookies[SESSION_COOKIE]
        context.add_cookies([{"name": SESSION_COOKIE, "value": session, "url": keyed.url}])
        page.goto(f"{keyed.url}/ui/?task={task}")
        expect(page.locator(".sa-progress[data-state=error]")).to_contain_text(
            "not found", timeout=30_000
        )
        expect(page.locator("#sa-transcript textarea")).to_have_value("")
    finally:
        context.close()
    assert watch.errors == [], "\n".join(watch.errors)
