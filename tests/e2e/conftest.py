"""Browser tests: Playwright for Python drives Debian's headless Chromium against live_server.

No browser is ever downloaded: Chromium comes from the system package (`apt-get install
chromium`, at /usr/bin/chromium). Without it, or without the playwright package, every
browser test is skipped with the reason; where REQUIRE_BROWSER_TESTS is set (CI) they fail
instead. Screenshots of each step go to test-output/e2e/<test name>/ (git-ignored).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from django.core.servers.basehttp import WSGIServer
from django.test.testcases import LiveServerThread

from approvals.choices import Designation
from demo.management.commands.load_demo import Command as LoadDemo
from tests.factories import ProfessionalQualificationFactory, UserFactory

# Playwright's sync API runs an event loop in the test's thread; the test code's own
# database calls (setting up users, checking results) are still plain synchronous ones.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "e2e"
# A reserve calculation runs in the request that queues it (immediate task backend).
TIMEOUT_MS = 90_000
VIEWPORT = {"width": 1400, "height": 1000}
PASSWORD = "password"  # what tests.factories.UserFactory sets

NO_CHROMIUM = f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install chromium)"
NO_PLAYWRIGHT = "playwright is not installed: pip install -e '.[dev]'"


def _unavailable(reason: str):
    """Skip the browser tests, or fail them where they must run (CI sets the variable)."""
    if os.environ.get("REQUIRE_BROWSER_TESTS"):
        pytest.fail(f"{reason} (REQUIRE_BROWSER_TESTS is set)")
    pytest.skip(reason)


class SerialWSGIServer(WSGIServer):
    """A live server that answers one request at a time.

    With SQLite, pytest-django hands the live server the test's own in-memory
    connection; Django's threaded server would then use that one connection from
    several request threads at once (the browser fetches the page, its scripts and
    jsi18n in parallel), which SQLite refuses ("bad parameter or other API misuse").
    Served one by one, the requests share it safely; Django closes each connection
    after its response when the server is not threaded, so the browser never waits
    on an idle keep-alive.
    """

    def __init__(self, *args, connections_override=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.connections_override = connections_override


@pytest.fixture(scope="session", autouse=True)
def _serial_live_server():
    """Serve the browser tests' requests one at a time (see SerialWSGIServer)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LiveServerThread, "server_class", SerialWSGIServer)
        yield


@pytest.fixture(scope="session")
def browser():
    """Return headless Chromium (Debian's), launched once for the session."""
    if not CHROMIUM.exists():
        _unavailable(NO_CHROMIUM)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable(NO_PLAYWRIGHT)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Screenshots:
    """Numbered full-page screenshots of one test's steps."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.taken: list[Path] = []

    def take(self, page, name: str) -> Path:
        """Save the page as NN-<name>.png and return its path."""
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        # From the top: the admin's sticky sidebar would be drawn where the page was scrolled.
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path


@pytest.fixture
def screenshots(request) -> Screenshots:
    """Return the screenshot taker of this test (its folder emptied first)."""
    folder = SCREENSHOTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return Screenshots(folder)


@pytest.fixture
def sign_in(browser, live_server):
    """Return a function that opens a browser session signed in as `user`."""
    contexts = []

    def sign_in(user):
        context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto("/admin/login/?next=/admin/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_selector("#workspace-dashboard")
        return page

    yield sign_in
    for context in contexts:
        context.close()


@pytest.fixture
def actuaries(transactional_db):
    """Return the demo's Actuaries group (model permissions for staff actuaries)."""
    return LoadDemo().actuaries_group()


@pytest.fixture
def alice(actuaries):
    """The lead actuary: staff in the Actuaries group, FIA."""
    alice = UserFactory(
        username="alice", first_name="Alice", last_name="Fairweather", is_staff=True
    )
    alice.groups.add(actuaries)
    ProfessionalQualificationFactory(user=alice, designation=Designation.FIA)
    return alice


@pytest.fixture
def bob(actuaries):
    """The reviewer: staff in the Actuaries group, FCAS (qualified to sign off)."""
    bob = UserFactory(username="bob", first_name="Bob", last_name="Castellano", is_staff=True)
    bob.groups.add(actuaries)
    ProfessionalQualificationFactory(
        user=bob, designation=Designation.FCAS, issuing_body="Casualty Actuarial Society"
    )
    return bob


def choose(page, field_id: str, text: str) -> None:
    """Pick `text` in the admin's autocomplete (select2) field `field_id`."""
    # The select2 box follows the hidden <select>; its text span is empty (no height).
    page.click(f"#{field_id} + .select2 .select2-selection")
    page.fill(".select2-container--open .select2-search__field", text)
    page.locator(".select2-results__option", has_text=text).first.click()
