"""Browser tests: the app served on a real port, driven by Playwright in Debian's chromium.

- `live_server`: the test app (CSRF on, BASE_URL = its own address) served by werkzeug in a thread,
  against the test database; `.url`, `.app`.
- `browser` (one chromium per run) and `page` (a fresh context per test, base_url = live_server.url).
- `visit(page, path)`: navigate, then fail on Content-Security-Policy violations and on serious or
  critical accessibility problems found by axe-core (`assert_accessible`). Use it for every page a test sees.
- A failing browser test leaves a screenshot in test-artifacts/.
"""

from __future__ import annotations

import functools
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from .smtp import free_port

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # What a test browser has no use for, each a thread or timer that takes CPU from the tests.
    "--disable-hang-monitor",
    "--disable-breakpad",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-renderer-backgrounding",
    "--disable-background-timer-throttling",
    "--mute-audio",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,BackForwardCache,"
    "CertificateTransparencyComponentUpdater,AutofillServerCommunication,InterestFeedContentSuggestions",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
BLOCKING_IMPACTS = {"serious", "critical"}


@dataclass
class LiveServer:
    url: str
    app: Flask
    server: BaseWSGIServer


@pytest.fixture
def live_server_address(app_config) -> str:
    """Chooses the port and configures the app before `app` is built (conftest's `app` asks for this first)."""
    url = f"http://127.0.0.1:{free_port()}"
    app_config.update(WTF_CSRF_ENABLED=True, BASE_URL=url)
    return url


@pytest.fixture
def live_server(live_server_address, app):
    port = int(live_server_address.rsplit(":", 1)[1])
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(url=live_server_address, app=app, server=server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _chromium_path() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="session")
def browser():
    from .conftest import IN_CI

    executable = _chromium_path()
    if executable is None:
        message = "chromium is not installed (make browser installs Debian's package)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
    except Exception as error:
        playwright.stop()
        if IN_CI:
            pytest.fail(f"chromium would not start: {error}", pytrace=False)
        pytest.skip(f"chromium would not start: {error}")
    try:
        yield chromium
    finally:
        chromium.close()
        playwright.stop()


@dataclass
class PageProblems:
    csp: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(request, browser):
    base_url = request.getfixturevalue("live_server").url if "live_server" in request.fixturenames else None
    context = browser.new_context(base_url=base_url, locale="en-GB", timezone_id="Europe/London")
    context.set_default_timeout(10_000)
    page = context.new_page()
    problems = PageProblems()
    page.kxn_problems = problems  # read by visit()

    def on_console(message) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            problems.csp.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.errors.append(str(error)))
    try:
        yield page
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-150:]
            try:
                page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
            except Exception:  # a crashed page has nothing to show
                pass
        context.close()
    _fail_on(problems)


def _fail_on(problems: PageProblems) -> None:
    lines = [f"Content-Security-Policy violation: {text}" for text in problems.csp]
    lines += [f"JavaScript error: {text}" for text in problems.errors]
    if lines:
        problems.csp.clear()  # reported once, not again at teardown
        problems.errors.clear()
        pytest.fail("\n".join(lines), pytrace=False)


# axe-core runs every rule it has by default; the page hands back only what fails the audit, since passing a whole
# results object (every rule, with its help text) from the page to Python cost as much as the audit itself.
_AXE_RUN = """impacts => axe.run(document, {resultTypes: ["violations"]}).then(results => results.violations
    .filter(violation => impacts.includes(violation.impact))
    .map(violation => ({
        id: violation.id, impact: violation.impact, help: violation.help,
        targets: violation.nodes.map(node => node.target.join(" ")),
    })))"""


@functools.cache
def _axe_script() -> str:
    from axe_playwright_python.base import AXE_SCRIPT

    return AXE_SCRIPT


def assert_accessible(page) -> None:
    """Fail listing every serious or critical axe-core violation on the current page."""
    page.evaluate(_axe_script())
    blocking = page.evaluate(_AXE_RUN, sorted(BLOCKING_IMPACTS))
    if blocking:
        lines = [f"Accessibility problems on {page.url}:"]
        for violation in blocking:
            lines.append(
                f"- {violation['id']} ({violation['impact']}): {violation['help']} -> {'; '.join(violation['targets'])}"
            )
        pytest.fail("\n".join(lines), pytrace=False)


def audit(page) -> None:
    """Checks for the page now shown: no CSP violations, no script errors, no serious axe findings."""
    problems: PageProblems | None = getattr(page, "kxn_problems", None)
    if problems is not None:
        _fail_on(problems)
    assert_accessible(page)


def visit(page, url: str, *, status: int | None = 200):
    """Open url (a path is relative to the live server), check the status and audit the page."""
    response = page.goto(url)
    if status is not None:
        assert response is not None and response.status == status, (
            f"{url}: expected {status}, got {response.status if response else 'no response'}"
        )
    audit(page)
    return response


def sign_in_browser(context, live_server, member) -> None:
    """Give a browser context (or a page's) the session cookie a real sign-in sets, for a fresh server-side session."""
    from kxn_meetings.extensions import db
    from kxn_meetings.services import auth as auth_service

    context = getattr(context, "context", context)
    db.session.rollback()  # a read snapshot older than the live server's last write could not write on SQLite
    session = auth_service.start_session(member)
    db.session.commit()
    app = live_server.app
    value = app.session_interface.get_signing_serializer(app).dumps({"_user_id": session.id, "_fresh": True})
    context.add_cookies([{"name": app.config["SESSION_COOKIE_NAME"], "value": value, "url": live_server.url}])


PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}


class Checker:
    """Visits pages and checks each one as a person with this screen would see it."""

    def __init__(self, page, width: int) -> None:
        self.page = page
        self.width = width
        self.console: list[str] = []
        self.problems: list[str] = []
        page.on("console", self._on_console)

    def _on_console(self, message) -> None:
        if message.type == "error":
            self.console.append(f"{message.text} ({message.location.get('url', '')})")

    def visit_all(self, *paths: str) -> None:
        for path in paths:
            self.visit(path)

    def visit(self, path: str, status: int = 200) -> None:
        response = self.page.goto(path)
        assert response is not None and response.status == status, f"{path}: {response and response.status}"
        self.check(path, status)

    def check(self, name: str, status: int = 200) -> None:
        """The page now shown: no sideways scroll, no table or block scrolling sideways, big enough buttons,
        no accessibility problem, nothing logged as an error."""
        self.page.wait_for_load_state("load")
        try:
            audit(self.page)
        except pytest.fail.Exception as failure:
            self.problems.append(f"{name}: {failure}")
        found = self.page.evaluate(
            """() => {
              const root = document.documentElement;
              const wide = [];
              for (const el of document.querySelectorAll('body *')) {
                const style = getComputedStyle(el);
                if (el.closest('pre, .diff, iframe') || style.display === 'none') continue;
                if (['auto', 'scroll'].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1) {
                  wide.push(`${el.tagName.toLowerCase()}.${el.className} scrolls sideways`);
                }
              }
              const pressed = 'main .button, main button.button, main .toolbar > a, main form > a';
              const small = [...document.querySelectorAll(pressed)]
                .filter(b => b.offsetParent !== null)
                .map(b => [b.textContent.trim().slice(0, 40), b.getBoundingClientRect()])
                .filter(([, r]) => r.height < 44 || r.width < 44)
                .map(([text, r]) => `button "${text}" is ${Math.round(r.width)}x${Math.round(r.height)} px`);
              // The menus (the site's, a page's contents, the pager), every field, select and disclosure, and each
              // tick box or option with its label: the label is pressed as much as the box, so the larger counts.
              const controls = '.site-header a, .site-header button, main nav a, main input:not([type=hidden]), ' +
                'main select, main summary';
              for (const control of document.querySelectorAll(controls)) {
                if (control.offsetParent === null) continue;
                let box = control.getBoundingClientRect();
                for (const label of control.labels || []) {
                  const around = label.getBoundingClientRect();
                  if (around.width * around.height > box.width * box.height) box = around;
                }
                if (box.height < 44 || box.width < 44) {
                  const name = control.labels?.[0]?.textContent.trim() || control.textContent.trim() || control.name;
                  small.push(`${control.tagName.toLowerCase()} "${name.slice(0, 40)}" is ` +
                    `${Math.round(box.width)}x${Math.round(box.height)} px`);
                }
              }
              // A table shown as cards (class "stacked", on a phone) gives each cell and its caption the card's
              // width: a column width meant for the desktop table would squeeze them to a letter a line.
              const squeezed = [];
              for (const table of document.querySelectorAll('table.stacked')) {
                if (table.offsetParent === null || getComputedStyle(table).display !== 'block') continue;
                const width = table.getBoundingClientRect().width;
                for (const cell of table.querySelectorAll('caption, td')) {
                  const box = cell.getBoundingClientRect(), style = getComputedStyle(cell);
                  // A caption for screen readers only is taken out of the flow.
                  if (style.display === 'none' || style.position === 'absolute' || !cell.textContent.trim()) continue;
                  if (box.width < 0.8 * width) {
                    squeezed.push(`${cell.tagName.toLowerCase()} "${cell.textContent.trim().slice(0, 30)}" of ` +
                      `table#${table.id} is ${Math.round(box.width)} of its ${Math.round(width)} px`);
                  }
                }
              }
              // A chart's labels are inside its drawing, not cut off at its left edge.
              for (const label of document.querySelectorAll('svg.chart text')) {
                const box = label.getBBox();
                if (box.x < -0.5) wide.push(`chart label "${label.textContent.slice(0, 30)}" is cut off at the left`);
              }
              return {scroll: root.scrollWidth, client: root.clientWidth, inner: innerWidth, wide, small, squeezed};
            }"""
        )
        if found["scroll"] > found["inner"] or found["scroll"] > found["client"]:
            found["wide"].insert(0, f"page is {found['scroll']} px wide in a {found['inner']} px window")
        if self.width <= PHONE["width"]:
            found["wide"] += found["small"] + found["squeezed"]
        # The error pages' own status is the browser's one logged "failed to load" line.
        errors = [e for e in self.console if not (status >= 400 and f"status of {status}" in e)]
        self.console.clear()
        self.problems += [f"{name}: {line}" for line in found["wide"] + errors]

    def assert_clean(self) -> None:
        assert not self.problems, "\n".join(self.problems)
