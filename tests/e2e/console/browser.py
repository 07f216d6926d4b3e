"""Browser checks for the console: a full-page screenshot kept as a test artifact, an automated
accessibility check (axe-core, WCAG 2.0 and 2.1, levels A and AA) and no error in the
browser's console (a script or style the Content-Security-Policy blocked shows up there).

Chromium is Debian's (`/usr/bin/chromium`, `make browser` installs it); Playwright drives it
and never downloads a browser of its own. axe-core comes inside the PyPI package
axe-playwright-python and is injected from disk: nothing is fetched while testing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files
from pathlib import Path
from typing import Any, Final, ParamSpec, TypeVar
from weakref import WeakKeyDictionary

from playwright.sync_api import ConsoleMessage, Error, Page

from devstack.kafka import PROJECT_ROOT

CHROMIUM: Final = Path(os.environ.get("SC_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS: Final = PROJECT_ROOT / "test-artifacts" / "screenshots"
WCAG_TAGS: Final = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
AXE_SCRIPT: Final = (files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")

P = ParamSpec("P")
T = TypeVar("T")

_errors: WeakKeyDictionary[Page, list[tuple[str, str]]] = WeakKeyDictionary()
"""Per watched page: (what the browser said, at which URL)."""


def watch(page: Page) -> Page:
    """Record the page's console errors and uncaught exceptions, for `check_page`."""
    seen = _errors.setdefault(page, [])

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            seen.append((f"console: {message.text}", message.location.get("url", "")))

    def on_page_error(error: Error) -> None:
        seen.append((f"uncaught: {error.message}", page.url))

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    return page


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations of WCAG 2.0/2.1 A and AA on the page as it is now."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        # evaluated through the DevTools protocol: the page's CSP does not apply to it
        page.evaluate(AXE_SCRIPT)
    results: dict[str, Any] = page.evaluate(
        "options => axe.run(document, options)",
        {"runOnly": {"type": "tag", "values": list(WCAG_TAGS)}, "resultTypes": ["violations"]},
    )
    violations: list[dict[str, Any]] = results["violations"]
    return violations


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation['impact']}): {violation['help']} <{violation['helpUrl']}>"
        )
        for node in violation["nodes"]:
            lines.append(f"    at {', '.join(map(str, node['target']))}: {node.get('failureSummary', '')}")
            lines.append(f"       {node['html'][:200]}")
    return "\n".join(lines)


def check_page(page: Page, name: str) -> Path:
    """Save a full-page screenshot as test-artifacts/screenshots/<name>.png, then fail if axe
    finds WCAG 2.0/2.1 A or AA violations (each listed) or the browser reported an error since
    the page was watched. Returns the screenshot's path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    screenshot = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=screenshot, full_page=True)
    violations = axe_violations(page)
    assert not violations, (
        f"{name} ({page.url}): {len(violations)} accessibility violations of WCAG 2.1 A/AA"
        f" (screenshot {screenshot}):\n{describe(violations)}"
    )
    # an error page's own status (403, 404) is what the test asked for; anything else it loads is not
    errors = [
        f"{text} ({url})"
        for text, url in _errors.get(page, [])
        if not (text.startswith("console: Failed to load resource") and url == page.url)
    ]
    assert not errors, f"{name} ({page.url}): the browser reported errors:\n" + "\n".join(errors)
    return screenshot


def outside_browser(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`function(*args, **kwargs)` in a thread of its own: for what calls `asyncio.run` while
    the browser is open, which Playwright's sync API prevents in its own thread (e.g.
    `outside_browser(stack.deliveries, "veilig-thuis-amsterdam")`)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args, **kwargs).result()


def sign_in(page: Page, organisation: str = "safety-chain", person: str = "Fatima de Groot") -> None:
    """Development sign-in as `organisation`'s privacy officer (default: the platform's, who
    reads the whole log), in a Dutch page; ends on the console's start page."""
    page.goto("/console/sign-in")
    page.get_by_label("Organisatie").select_option(organisation)
    page.get_by_label("Uw naam").fill(person)
    page.get_by_role("button", name="Aanmelden als privacy officer").click()
    page.wait_for_url("**/console/")
