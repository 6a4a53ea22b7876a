"""A real browser (Debian's chromium, headless) on the real service, and its screenshots."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stepaudio.api import create_app
from stepaudio.config import Settings
from stepaudio.engines.embedded import EmbeddedEngine
from stepaudio.testing.scripted import ScriptedEngine
from stepaudio.testing.server import serve_in_thread

KEY = "ui-key-alice"
OTHER_KEY = "ui-key-bob"
CHROMIUM = Path(os.environ.get("STEPAUDIO_CHROMIUM", "/usr/bin/chromium"))
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def shots_dir() -> Path:
    """Where screenshots go: $STEPAUDIO_UI_SCREENSHOTS, else test-output/ui (gitignored)."""
    folder = Path(os.environ.get("STEPAUDIO_UI_SCREENSHOTS") or REPO / "test-output" / "ui")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nUI screenshots: {folder}")
    return folder


@pytest.fixture(scope="package")
def browser():
    # Package scope: Playwright's sync API keeps an event loop running in this thread
    # while it is open, and tests elsewhere call asyncio.run.
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (make system-deps)")
    with sync_api.sync_playwright() as p:
        # Never a downloaded browser: the system's chromium, headless.
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield b
        b.close()


@dataclass
class Watch:
    """What a page said that it should not have: console errors, page errors, requests
    leaving the machine."""

    base: str
    errors: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)

    def allow(self, *texts: str) -> None:
        """Forgive console errors containing one of ``texts``: the refusals a test asks
        for itself (Chromium logs every 4xx answer as "Failed to load resource: ...")."""
        self.allowed.extend(texts)

    def console(self, msg) -> None:
        if msg.type != "error" or any(text in msg.text for text in self.allowed):
            return
        self.errors.append(f"console: {msg.text} @ {msg.location}")

    def page_error(self, exc) -> None:
        self.errors.append(f"pageerror: {exc}")

    def request(self, req) -> None:
        # data: and blob: URLs are the page's own (recordings it plays, downloads).
        url = req.url
        if not url.startswith((self.base, "data:", "blob:")):
            self.outside.append(url)

    def check(self) -> None:
        assert self.outside == [], f"the page reached outside the machine: {self.outside}"
        assert self.errors == [], "\n".join(self.errors)


def open_page(
    browser,
    server: str,
    locale: str = "en-US",
    *,
    width: int = 1400,
    height: int = 1000,
    bypass_csp: bool = False,
):
    """A fresh browser context on the service, with a watch on what the page does.
    ``bypass_csp`` only for contexts that inject a test's own script (axe-core): the
    page's policy allows no inline script."""
    context = browser.new_context(
        locale=locale, viewport={"width": width, "height": height}, bypass_csp=bypass_csp
    )
    page = context.new_page()
    watch = Watch(server)
    page.on("console", watch.console)
    page.on("pageerror", watch.page_error)
    page.on("request", watch.request)
    # Nothing outside the machine may be needed: block it, so a dependence shows up
    # as a recorded request (and most likely a broken page), not as a slow timeout.
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith((server, "data:", "blob:"))
            else route.abort()
        ),
    )
    return context, page, watch


@dataclass(frozen=True)
class Keyed:
    """A second service, with API keys, and its own data folder."""

    url: str
    data_dir: Path


@pytest.fixture(scope="session")
def keyed(tmp_path_factory: pytest.TempPathFactory, embedded: EmbeddedEngine) -> Iterator[Keyed]:
    """The real service with ``api_keys`` set (the same engine: models load once)."""
    data = tmp_path_factory.mktemp("stepaudio-keyed")
    settings = Settings(data_dir=data, api_keys=[KEY, OTHER_KEY], _env_file=None)
    with serve_in_thread(create_app(settings, engine=embedded)) as url:
        yield Keyed(url, data)


@pytest.fixture(scope="session")
def scripted_keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyed]:
    """The real service with ``api_keys`` set, on a scripted engine (no model): for the
    tests whose subject is the keys, the login and the sessions, not the model's words."""
    data = tmp_path_factory.mktemp("stepaudio-keyed-scripted")
    settings = Settings(data_dir=data, api_keys=[KEY, OTHER_KEY], _env_file=None)
    with serve_in_thread(create_app(settings, engine=ScriptedEngine())) as url:
        yield Keyed(url, data)
