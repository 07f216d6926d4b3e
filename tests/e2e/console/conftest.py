"""A real Chromium for the console's browser tests: one per test module, started after the
module's running system (`stack`), and a fresh browser context (no cookies) per test.

Why per module, not per session: between its calls Playwright's sync API marks this thread's
asyncio loop as running, so while a browser is open `asyncio.run` fails in this thread (the
Stack provisions topics and reads Kafka with it, as do the other e2e modules). The stack
therefore starts before the browser, the browser closes at the end of its module, and a test
that needs `asyncio.run` while the browser is open calls it through `browser.outside_browser` (another
thread). Launching Debian's Chromium takes well under a second.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.console.browser import CHROMIUM, watch
from tests.e2e.stack import Stack


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Browser]:
    """Headless Chromium from Debian's package (never a browser Playwright downloads)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the console's browser tests need Debian's chromium and"
            " fonts-dejavu-core (`make browser`, or apt-get install chromium fonts-dejavu-core)"
        )
    with sync_playwright() as playwright:
        # root (CI, this machine) cannot use Chromium's sandbox
        arguments = ["--no-sandbox"] if os.geteuid() == 0 else []
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=arguments)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def console_page(stack: Stack, browser: Browser) -> Iterator[Page]:
    """A new browser page on the audit service (relative URLs such as "/console/" work), in a
    context of its own: no session, Dutch preferred, a desktop-sized window; errors it reports
    fail `check_page`."""
    context = browser.new_context(
        base_url=stack.url("audit"), locale="nl-NL", viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(15_000)
    try:
        yield watch(context.new_page())
    finally:
        context.close()
