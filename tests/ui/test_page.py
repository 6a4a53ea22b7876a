"""The page in a real browser (Debian's chromium, headless) on a real service with keys.

What a visitor does, checked on what the page shows, at desktop (1400 px) and phone
(390 px) widths, in English and in Chinese:

- Process: the page speaks the browser's language from its first paint; each mode shows
  its fields only; a transcript (or a timed translation) is shown once, timed to the
  tenth, and its times seek the player; speakers can be named, and the names go into
  the downloads (named after the uploaded file). The phone width never scrolls
  sideways.
- axe-core finds no serious or critical violation on any view (process with a result,
  live, history, status).
- History lists a task made through the API, opens it and deletes it; Status names the
  engine.
- The page's own calls: its session without the page's header is refused
  (``cross_site_request``); another key's task is never shown.
- Live (the real models): the fake microphone's JFK becomes captions, and the session is
  saved as a task whose transcript is JFK's.

Every test watches the page: no console error, no page error, no request leaving the
machine. Screenshots go to ``shots_dir``, named view-width-language. Apart from Live,
the service runs on a scripted engine (no model) with 4-s windows, so that jfk.flac is
several timed segments and a timestamp seeks somewhere other than 0.
"""

from __future__ import annotations

import re
import time
import uuid
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import pytest

from stepaudio.testing.longaudio import load_pcm
from stepaudio.testing.scripted import ScriptedEngine
from stepaudio.testing.server import serve_scripted
from tests.helpers import clip
from tests.ui.conftest import CHROMIUM, KEY, OTHER_KEY, REPO, Keyed, open_page

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.heavy

AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
SIZES = {"desktop": (1400, 1000), "phone": (390, 844)}
LOCALES = {"en": "en-US", "zh": "zh-CN"}
WORDS = {
    "en": {
        "html": "en",
        "run": "Start",
        "summary": "Summary",
        "translation": "Translation",
        "transcript": "Transcript",
        "speaker_a": "Speaker A",
        "name_a": "Name of Speaker A",
        "engine": "Engine",
    },
    "zh": {
        "html": "zh-CN",
        "run": "开始",
        "summary": "摘要",
        "translation": "译文",
        "transcript": "转写",
        "speaker_a": "说话人 A",
        "name_a": "说话人 A 的名字",
        "engine": "引擎",
    },
}
VIEWS = ("process", "live", "history", "status")
TIMESTAMP = re.compile(r"^\[\d+:\d{2}\.\d → \d+:\d{2}\.\d\] ")


# -- helpers ------------------------------------------------------------------------


def clock(seconds: float) -> str:
    """What the page writes for a time: 5.3 -> "0:05.3" (to the tenth)."""
    tenths = round(seconds * 10)
    return f"{tenths // 600}:{tenths % 600 // 10:02d}.{tenths % 10}"


def make_task(url: str, key: str, name: str, recording: str = "en/jfk.flac") -> dict:
    """A task made through the API with ``key``, once it has completed."""
    with httpx.Client(base_url=url, timeout=60, headers={"X-API-Key": key}) as c:
        files = {"audio": (name, clip(recording).read_bytes(), "audio/flac")}
        r = c.post("/api/task", data={"mode": "asr"}, files=files)
        assert r.status_code == 202, r.text
        return finished(c, r.json()["task_id"], timeout=60)


def finished(client: httpx.Client, task_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = client.get(f"/api/task/{task_id}").json()
        if task["status"] in ("completed", "failed", "cancelled"):
            assert task["status"] == "completed", task
            return task
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} did not finish in {timeout} s")


def login(page, url: str, key: str = KEY, then: str = "/ui/") -> None:
    """Through the login form, as a visitor does; ``then`` loaded when it returns."""
    page.goto(f"{url}/login?next={quote(then)}")
    page.fill("#key", key)
    page.press("#key", "Enter")
    page.wait_for_url(re.compile(r"/ui/"), wait_until="load")


@contextmanager
def visit(browser, url: str, lang: str = "en", size: str = "desktop", **options) -> Iterator:
    """A fresh context logged in as KEY, on /ui/; ``(page, watch)``. The watch is checked
    when the test's own assertions have passed."""
    width, height = SIZES[size]
    context, page, watch = open_page(
        browser, url, LOCALES[lang], width=width, height=height, **options
    )
    try:
        login(page, url)
        yield page, watch
    finally:
        context.close()
    watch.check()


def status_loaded(page) -> None:
    """The page has read /api/status (the engine's features gate some fields)."""
    page.wait_for_function("() => document.querySelectorAll('#status dt').length > 0")


def run(page, mode: str, *, diarize: bool = False) -> None:
    """Choose ``mode`` (and speakers) and press Start; return once the answer is in."""
    page.check(f"input[name=mode][value={mode}]")
    if mode in ("s2t", "asr", "translate"):
        page.set_checked("#diarize", diarize)
    page.click("#run")
    # The click disables Start at once; it comes back when the stream has ended.
    page.wait_for_function("() => !document.getElementById('run').disabled", timeout=60_000)
    assert page.locator("#error").is_hidden(), page.inner_text("#error")
    expect(page.locator("#result")).to_be_visible()


def transcript_lines(page) -> list[str]:
    return page.locator("#transcript li").all_inner_texts()


def no_sideways_scroll(page) -> None:
    overflow = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
             .filter((el) => el.getBoundingClientRect().right > innerWidth + 1 && el.offsetParent)
             .map((el) => el.id || el.tagName + '.' + el.className)"""
    )
    width = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1], f"wider than the screen: {width}, {overflow[:10]}"


def shoot(page, shots_dir: Path, view: str, size: str, lang: str) -> None:
    page.screenshot(path=shots_dir / f"{view}-{SIZES[size][0]}-{lang}.png", full_page=True)


def axe_violations(page) -> list[str]:
    """axe-core's serious and critical findings, as "rule: targets"."""
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found = page.evaluate("async () => (await axe.run()).violations")
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


def fake_microphone(path: Path) -> Path:
    """JFK as 16-bit PCM WAV, with 1.5 s of silence after it (Chromium loops the file)."""
    pcm = load_pcm(clip("en/jfk.flac"))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(np.concatenate([pcm, np.zeros(24_000, np.int16)]).tobytes())
    return path


@contextmanager
def microphone_browser(browser, wav: Path) -> Iterator:
    """A second chromium whose microphone plays ``wav`` (Playwright's sync API cannot be
    started twice in a thread: launched from the running one's browser type)."""
    live = browser.browser_type.launch(
        executable_path=str(CHROMIUM),
        headless=True,
        args=[
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}",
        ],
    )
    try:
        yield live
    finally:
        live.close()


# -- fixtures -----------------------------------------------------------------------


def answer_quoting(job):
    """The text model: an answer quotes the transcript's second line at a wrong time (the
    service must put the real one); anything else, the prompt's first line."""
    from stepaudio.engines.base import ModelOutput
    from stepaudio.testing.scripted import echo_prompt

    timed = re.findall(r"^\[\d+:\d\d\] (.+)$", job.prompt, re.M)
    if "Question:" not in job.prompt or len(timed) < 2:
        return echo_prompt(job)
    return ModelOutput(f'He speaks. [9:59] "{timed[1]}"')


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyed]:
    """The service with KEY and OTHER_KEY on a scripted engine with 4-s windows."""
    data = tmp_path_factory.mktemp("stepaudio-page")
    # Pieces: each window's text is first shown as heard, then replaced by the window's.
    engine = ScriptedEngine(window_s=4.0, on_text=answer_quoting, pieces=True)
    with serve_scripted(data, engine, api_keys=[KEY, OTHER_KEY]) as (url, _):
        yield Keyed(url, data)


@pytest.fixture(scope="module")
def jfk_segments(site: Keyed) -> list[dict]:
    """What the API answers for jfk.flac in asr: the segments the page must show."""
    with httpx.Client(base_url=site.url, timeout=60, headers={"X-API-Key": KEY}) as c:
        files = {"audio": ("jfk.flac", clip("en/jfk.flac").read_bytes(), "audio/flac")}
        r = c.post("/api/process", data={"mode": "asr"}, files=files)
        assert r.status_code == 200, r.text
    segments = r.json()["segments"]
    assert len(segments) >= 3, "4-s windows should cut jfk.flac into several segments"
    return segments


@pytest.fixture(scope="module")
def a_task(site: Keyed) -> dict:
    """A finished task of KEY's, so that History has a row."""
    return make_task(site.url, KEY, "jfk.flac")


# -- Process ------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_process(browser, site: Keyed, jfk_segments, shots_dir: Path, size: str, lang: str):
    words = WORDS[lang]
    with visit(browser, site.url, lang, size) as (page, _):
        # The first paint is in the browser's language: nothing waited for but the load.
        assert page.evaluate("document.documentElement.lang") == words["html"]
        assert page.inner_text("#run") == words["run"]
        assert not page.evaluate("document.documentElement.classList.contains('loading')")
        status_loaded(page)

        # Each mode shows its own fields; the number of speakers only with speakers;
        # no reasoning control on an engine that does not reason.
        for mode in ("s2t", "asr", "translate", "understand", "summarize"):
            page.check(f"input[name=mode][value={mode}]")
            assert page.is_visible("#question") == (mode == "understand"), mode
            assert page.is_visible("#target-lang") == (mode == "translate"), mode
            assert page.is_visible("#spoken"), mode
            assert page.is_hidden("#num-speakers"), mode
            assert page.is_hidden("#thinking-field"), mode
            if mode in ("s2t", "asr", "translate"):
                page.check("#diarize")
                assert page.is_visible("#num-speakers"), mode
                page.uncheck("#diarize")
                assert page.is_hidden("#num-speakers"), mode
            else:
                assert page.is_hidden("#diarize"), mode

        page.set_input_files("#file", clip("en/jfk.flac"))
        expect(page.locator("#file-name")).to_have_text("jfk.flac")

        # asr: the transcript once, one line per segment, timed to the tenth; no answer.
        run(page, "asr")
        lines = transcript_lines(page)
        assert len(lines) == len(jfk_segments), lines
        for line, segment in zip(lines, jfk_segments, strict=True):
            stamp = f"[{clock(segment['start'])} → {clock(segment['end'])}] "
            assert TIMESTAMP.match(line) and line.startswith(stamp), (line, stamp)
            assert line.endswith(segment["text"].strip()), line
        assert page.is_hidden("#answer-box")
        assert page.inner_text("#transcript-title") == words["transcript"]
        assert page.inner_text("#result").count(jfk_segments[0]["text"]) == 1
        # A time seeks the player to its segment's start.
        third = jfk_segments[2]["start"]
        page.locator("#transcript li button.ts").nth(2).click()
        position = page.evaluate("document.getElementById('player').currentTime")
        assert third <= position < third + 1.5, (position, third)
        page.evaluate("document.getElementById('player').pause()")
        no_sideways_scroll(page)
        shoot(page, shots_dir, "process-asr", size, lang)

        # translate: the segments are the translation, timed, shown once and titled as
        # what they are; what was said (the result's transcript) beside them.
        run(page, "translate")
        assert page.is_hidden("#answer-box")
        expect(page.locator("#source-box")).to_be_visible()
        assert page.inner_text("#source").startswith("said ")
        expect(page.locator("#transcript-box")).to_be_visible()
        assert page.inner_text("#transcript-title") == words["translation"]
        assert len(transcript_lines(page)) == len(jfk_segments)
        assert page.inner_text("#result").count(jfk_segments[0]["text"]) == 1
        no_sideways_scroll(page)
        shoot(page, shots_dir, "process-translate", size, lang)

        # s2t with speakers: a summary, one name field per voice; a name replaces the
        # letter in the transcript and in the downloads.
        run(page, "s2t", diarize=True)
        assert page.inner_text("#answer-title") == words["summary"]
        expect(page.locator("#speakers-box")).to_be_visible()
        names = page.locator("#speaker-names input[type=text]")
        assert names.count() >= 1
        expect(page.get_by_label(words["name_a"])).to_be_visible()
        lines = transcript_lines(page)
        assert len(lines) == len(jfk_segments)
        assert all(f"{words['speaker_a']}: " in line for line in lines), lines
        page.get_by_label(words["name_a"]).fill("Alice")
        page.get_by_label(words["name_a"]).press("Tab")
        lines = transcript_lines(page)
        assert all("Alice: " in line and words["speaker_a"] not in line for line in lines), lines
        with page.expect_download() as download:
            page.locator("#downloads button", has_text=re.compile(r"^srt$")).click()
        assert download.value.suggested_filename == "jfk.srt"
        srt = Path(download.value.path()).read_text(encoding="utf-8")
        assert "-->" in srt and "Alice" in srt, srt
        no_sideways_scroll(page)
        shoot(page, shots_dir, "process-s2t", size, lang)


# -- axe ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size, lang, scheme",
    [
        ("desktop", "en", "light"),
        ("desktop", "zh", "light"),
        ("phone", "en", "light"),
        ("phone", "zh", "light"),
        ("desktop", "en", "dark"),  # the page's own dark colours (prefers-color-scheme)
    ],
)
def test_no_serious_accessibility_violation(
    browser, site: Keyed, a_task: dict, shots_dir: Path, size: str, lang: str, scheme: str
):
    # bypass_csp: axe-core is injected as an inline script, which the page's policy
    # (script-src 'self') rightly refuses. Only these contexts bypass it.
    with visit(browser, site.url, lang, size, bypass_csp=True) as (page, _):
        page.emulate_media(color_scheme=scheme)
        page.set_input_files("#file", clip("en/jfk.flac"))
        run(page, "s2t", diarize=True)  # answer, speakers, transcript and downloads
        found = {}
        for view in VIEWS:
            page.click(f"#tab-{view}")
            expect(page.locator(f"#view-{view}")).to_be_visible()
            if view == "history":
                expect(page.locator("#history tbody tr").first).to_be_visible()
            if view == "status":
                status_loaded(page)
            no_sideways_scroll(page)
            found[view] = axe_violations(page)
            if scheme == "dark":
                shoot(page, shots_dir, f"{view}-dark", size, lang)
            elif view != "process":
                shoot(page, shots_dir, view, size, lang)
    report = [f"{view}: {finding}" for view, findings in found.items() for finding in findings]
    assert not report, "\n".join(report)


# -- History and Status -------------------------------------------------------------


def test_history_lists_opens_and_deletes_a_task(browser, site: Keyed, jfk_segments):
    name = f"history-{uuid.uuid4().hex[:8]}.flac"
    task_id = make_task(site.url, KEY, name)["task_id"]
    with visit(browser, site.url) as (page, _):
        page.click("#tab-history")
        row = page.locator("#history tbody tr", has_text=name)
        expect(row).to_have_count(1)
        expect(row).to_contain_text("Transcript")
        expect(row).to_contain_text("done")

        row.get_by_role("button", name=f"Open {name}").click()
        expect(page.locator("#view-process")).to_be_visible()
        expect(page.locator("#transcript li")).to_have_count(len(jfk_segments))
        assert jfk_segments[0]["text"] in transcript_lines(page)[0]
        assert f"task={task_id}" in page.url

        page.click("#tab-history")
        asked = []

        def accept(dialog) -> None:
            asked.append(dialog.message)
            dialog.accept()

        page.once("dialog", accept)
        row.get_by_role("button", name=f"Delete {name}").click()
        expect(row).to_have_count(0)
        assert asked == ["Delete this task?"]
    with httpx.Client(base_url=site.url, timeout=30, headers={"X-API-Key": KEY}) as c:
        listed = [t["task_id"] for t in c.get("/api/tasks").json()["tasks"]]
        assert task_id not in listed
        assert c.get(f"/api/task/{task_id}").status_code == 404


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_status_names_the_engine(browser, site: Keyed, lang: str):
    with visit(browser, site.url, lang) as (page, _):
        page.click("#tab-status")
        expect(page.locator("#view-status")).to_be_visible()
        status_loaded(page)
        shown = dict(
            zip(
                page.locator("#status dt").all_inner_texts(),
                page.locator("#status dd").all_inner_texts(),
                strict=True,
            )
        )
        assert shown[WORDS[lang]["engine"]] == "scripted", shown


# -- the page's calls ---------------------------------------------------------------

POST = """async (withHeader) => {
  const body = new FormData();
  body.append("mode", "asr");
  const headers = withHeader ? { "X-StepAudio-Page": "1" } : {};
  const r = await fetch("/api/process", { method: "POST", body, headers });
  let code = "";
  try { code = (await r.json()).error?.code || ""; } catch {}
  return { status: r.status, code };
}"""


def test_the_session_is_refused_without_the_page_header(browser, site: Keyed):
    with visit(browser, site.url) as (page, watch):
        watch.allow("status of 403", "status of 400")  # the answers asked for below
        bare = page.evaluate(POST, False)
        assert bare == {"status": 403, "code": "cross_site_request"}
        # With the header the call is the page's own: past the guard, refused only for
        # the recording it lacks.
        marked = page.evaluate(POST, True)
        assert 200 <= marked["status"] < 300 or marked["status"] == 400, marked
        assert marked["code"] != "cross_site_request"


def test_another_keys_task_is_never_shown(browser, site: Keyed):
    theirs = make_task(site.url, OTHER_KEY, "bob-private.wav", "zh/thchs30_A11_0.wav")
    secret = theirs["result"]["segments"][0]["text"]
    with visit(browser, site.url) as (page, watch):
        watch.allow("status of 404")  # the page asks for the task; the API says no
        page.goto(f"{site.url}/ui/?task={theirs['task_id']}")
        expect(page.locator("#error")).to_be_visible()
        assert page.inner_text("#error").strip()
        assert page.is_hidden("#result")
        assert page.locator("#transcript li").count() == 0
        assert secret not in page.content() and "bob-private" not in page.content()


# -- Live (the real models) ---------------------------------------------------------


def test_live_captions_and_saved_session(browser, keyed: Keyed, shots_dir: Path, tmp_path):
    with microphone_browser(browser, fake_microphone(tmp_path / "jfk-mic.wav")) as live_browser:
        context, page, watch = open_page(live_browser, keyed.url)
        context.grant_permissions(["microphone"], origin=keyed.url)
        login(page, keyed.url)
        page.click("#tab-live")
        expect(page.locator("#view-live")).to_be_visible()
        # Every class a caption line has had, however briefly.
        page.evaluate(
            """() => {
              window.seenCaptions = new Set();
              const box = document.getElementById("captions");
              new MutationObserver(() => {
                for (const p of box.querySelectorAll("p")) window.seenCaptions.add(p.className);
              }).observe(box, { subtree: true, childList: true, characterData: true,
                                attributes: true });
            }"""
        )
        page.click("#live-start")
        expect(page.locator("#live-stop")).to_be_enabled()
        captions = page.locator("#captions p")
        expect(captions.first).to_be_visible(timeout=90_000)
        # While it plays: captions, and JFK's words in a finished one.
        page.wait_for_function(
            """() => [...document.querySelectorAll('#captions p.final')]
                 .some((p) => /country/i.test(p.textContent))""",
            timeout=90_000,
        )
        seen = set(page.evaluate("[...window.seenCaptions]"))
        assert seen & {"partial", "final"}, seen
        shoot(page, shots_dir, "live-playing", "desktop", "en")

        page.click("#live-stop")
        link = page.locator("#live-task")
        expect(link).to_be_visible(timeout=120_000)
        assert page.locator("#captions p.partial").count() == 0, "a caption never finished"
        task_id = re.search(r"task=([^&#]+)", link.get_attribute("href")).group(1)
        with httpx.Client(base_url=keyed.url, timeout=60, headers={"X-API-Key": KEY}) as c:
            task = finished(c, task_id, timeout=300)
        text = (task["result"].get("transcript") or "").lower()
        assert "country" in text and "americ" in text, text

        # The saved session's link opens it on the Process view.
        link.click()
        expect(page.locator("#view-process")).to_be_visible()
        expect(page.locator("#transcript li").first).to_be_visible(timeout=30_000)
        context.close()
        watch.check()


def test_a_speaker_of_a_task_is_remembered_named_and_deleted(browser, site: Keyed, tmp_path):
    """ "This is Alice" on a finished task's speaker; the next recording names her when
    "Name the people whose voices I saved" is ticked; History deletes the voice."""
    from stepaudio.testing.encode import write_audio

    left = load_pcm(clip("en/stereo_diarization_left.wav"))
    right = load_pcm(clip("en/stereo_diarization_right.wav"))
    pair = write_audio(
        np.concatenate([left, np.zeros(16000, np.int16), right]), tmp_path / "two.wav"
    )
    with httpx.Client(base_url=site.url, timeout=60, headers={"X-API-Key": KEY}) as c:
        files = {"audio": ("two.wav", pair.read_bytes(), "audio/wav")}
        r = c.post("/api/task", data={"mode": "asr", "diarize": "true"}, files=files)
        task = finished(c, r.json()["task_id"], timeout=120)
        for voice in c.get("/api/voices").json()["voices"]:  # a clean library
            c.delete(f"/api/voices/{voice['voice_id']}")
    with visit(browser, site.url) as (page, watch):
        page.goto(f"{site.url}/ui/?task={task['task_id']}#process")
        expect(page.locator("#speakers-box")).to_be_visible()
        first = page.locator("#speaker-names p").first
        first.get_by_role("button", name="Remember this voice").click()
        expect(first).to_contain_text("Type a name first.")
        first.locator("input").fill("Alice")
        first.get_by_role("button", name="Remember this voice").click()
        expect(first).to_contain_text("Saved as Alice.")

        page.click("#tab-process")
        page.set_input_files("#file", str(pair))
        page.check("#known-voices")
        run(page, "asr")
        expect(page.locator("#transcript")).to_contain_text("Alice")

        page.click("#tab-history")
        item = page.locator("#voices li", has_text="Alice")
        expect(item).to_have_count(1)
        page.once("dialog", lambda dialog: dialog.accept())
        item.get_by_role("button", name="Delete the voice of Alice").click()
        expect(item).to_have_count(0)
        expect(page.locator("#voices-empty")).to_be_visible()
    with httpx.Client(base_url=site.url, timeout=60, headers={"X-API-Key": KEY}) as c:
        assert c.get("/api/voices").json() == {"voices": []}


def test_an_answer_quotes_at_real_times_that_play_the_recording(browser, site: Keyed, jfk_segments):
    with visit(browser, site.url) as (page, _):
        page.set_input_files("#file", str(clip("en/jfk.flac")))
        run(page, "understand")
        second = jfk_segments[1]
        shown = f"[0:{int(second['start']):02d}]"
        button = page.locator("#answer button", has_text=shown)
        expect(button).to_have_count(1)
        assert "[9:59]" not in page.inner_text("#answer")
        button.click()
        position = page.evaluate("document.getElementById('player').currentTime")
        assert second["start"] - 0.1 <= position < second["start"] + 1.5
        page.evaluate("document.getElementById('player').pause()")


def test_live_translation_beside_the_captions(browser, site: Keyed, tmp_path):
    """ "Translate as well": the same microphone to /v1/realtime/translations, its text
    beside the captions (the scripted engine's: the subject is the page's wiring)."""
    with microphone_browser(browser, fake_microphone(tmp_path / "jfk-mic.wav")) as live_browser:
        context, page, watch = open_page(live_browser, site.url)
        context.grant_permissions(["microphone"], origin=site.url)
        login(page, site.url)
        page.click("#tab-live")
        page.check("#live-translate")
        page.select_option("#live-target", "de")
        expect(page.locator("#live-translation-box")).to_be_visible()
        page.click("#live-start")
        expect(page.locator("#live-translation")).to_contain_text("heard", timeout=90_000)
        expect(page.locator("#captions p.final").first).to_contain_text("heard")
        page.click("#live-stop")
        expect(page.locator("#live-task")).to_be_visible(timeout=120_000)
        context.close()
        watch.check()
