"""Debian's Chromium driven by Playwright's sync API, headless, on loopback only.

Playwright's own browser download does not work on these machines, so the system
``/usr/bin/chromium`` is launched through ``executable_path``. Playwright gives every
launch a new, empty temporary profile (``--user-data-dir``) and every context its own
cookies and storage.
"""

from __future__ import annotations

import os
import shutil

from playwright.sync_api import Browser, BrowserContext, Playwright

CHROMIUM = os.environ.get("POSTA_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

# No network beyond what a test opens: no QUIC, no background fetches, no updates,
# no sync; no GPU in a headless container; no sandbox because tests run as root.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch_browser(playwright: Playwright) -> Browser:
    """Launch the system Chromium headless with the flags above."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )


def new_context(browser: Browser, *, locale: str = "en-US", **options: object) -> BrowserContext:
    """A fresh context (own cookies and storage) whose pages ask for ``locale``.

    ``locale`` sets both ``navigator.language`` and the Accept-Language header, which
    is what Django's LocaleMiddleware reads.
    """
    context = browser.new_context(locale=locale, **options)  # type: ignore[arg-type]
    # A test that hangs should fail, not wait for pytest's global timeout.
    context.set_default_timeout(15_000)
    return context
