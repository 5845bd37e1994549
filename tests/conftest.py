"""Test-wide set-up: a private data directory, and real servers as fixtures.

Environment first: ``POSTA_DATA_DIR`` points at a temporary directory of this run (each
pytest-xdist worker gets a subdirectory), so no test writes into ./var, and
``POSTA_ALLOWED_MAIL_HOSTS`` is empty (a test that needs loopback mail hosts allows them
itself). pytest-django has already loaded the settings by the time this file runs, so
the settings derived from those variables are re-pointed too (``_redirect_loaded_settings``).

Fixtures (see tests/servers/ for the full API of each object):
- ``dovecot``: a private Dovecot per session and worker; isolate with ``add_user()``.
- ``mail_user``: a new user on ``dovecot``.
- ``dovecot_factory(tls=False, extra_config="", oauth2_introspection_url="")``: more
  instances, stopped at teardown (the URL adds OAuth2 logins checked there).
- ``oauth_server``: a local OAuth2 authorization server per test (tests/servers/oauth.py).
- ``smtp_server``: a fresh aiosmtpd server per test.
- ``smtp_factory(tls="none"|"starttls"|"implicit", tls_files=None)``: more of them.
- ``pop3_factory(messages=[...], uidl=True, password="secret")``: small POP3 servers
  of tests/servers/pop3.py (no UIDL, a drop mid-RETR), stopped at teardown.
- ``browser`` (session), ``page`` (en-US), ``page_it`` (it-IT), ``new_page(locale=...)``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

_REPO_ROOT = Path(__file__).resolve().parent.parent
_SESSION_DIR = os.environ.get("POSTA_TEST_SESSION_DIR", "")
if _SESSION_DIR and os.environ.get("PYTEST_XDIST_WORKER"):
    # An xdist worker: the controller's directory (inherited through the environment)
    # holds one subdirectory per worker, and the controller removes it all at exit.
    _DATA_DIR = Path(_SESSION_DIR) / os.environ["PYTEST_XDIST_WORKER"]
    _DATA_DIR.mkdir(parents=True, exist_ok=True)
else:
    _DATA_DIR = Path(tempfile.mkdtemp(prefix="posta-test-data-"))
    os.environ["POSTA_TEST_SESSION_DIR"] = str(_DATA_DIR)
    atexit.register(shutil.rmtree, _DATA_DIR, True)
os.environ["POSTA_DATA_DIR"] = str(_DATA_DIR)
os.environ["POSTA_ALLOWED_MAIL_HOSTS"] = ""
# So that ``from tests.servers.dovecot import ...`` works from any test module.
if str(_REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(_REPO_ROOT))

import pytest  # noqa: E402 - the environment above must be set first
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright  # noqa: E402

from tests.servers.browser import launch_browser, new_context  # noqa: E402
from tests.servers.dovecot import DovecotServer, MailUser, start_dovecot  # noqa: E402
from tests.servers.oauth import OAuthServer, start_oauth_server  # noqa: E402
from tests.servers.pop3 import Pop3Server, start_pop3  # noqa: E402
from tests.servers.smtp import SmtpServer, TlsMode, start_smtp  # noqa: E402
from tests.servers.tls import TlsFiles  # noqa: E402


def _redirect_loaded_settings() -> None:
    """Point settings already computed from the old environment at the test data dir.

    pytest-django loads settings before any conftest runs, so the values derived from
    POSTA_DATA_DIR and POSTA_ALLOWED_MAIL_HOSTS were computed from the caller's
    environment (./var by default). Nothing has opened the database or queue yet;
    re-point every path and the host allowlist before a test can use them.
    """
    if "posta.settings" not in sys.modules:
        return  # settings will read the environment set above
    from django.conf import settings
    from django.test.utils import override_settings

    old_dir = Path(settings.DATA_DIR)

    def moved(value: Any) -> Any:
        try:
            return str(_DATA_DIR / Path(value).relative_to(old_dir))
        except (TypeError, ValueError):
            return value

    storages = {name: dict(conf) for name, conf in settings.STORAGES.items()}
    for conf in storages.values():
        if "OPTIONS" in conf:
            conf["OPTIONS"] = {
                key: moved(value) if key == "location" else value
                for key, value in conf["OPTIONS"].items()
            }
    huey = dict(settings.HUEY) if isinstance(settings.HUEY, dict) else settings.HUEY
    if isinstance(huey, dict) and "filename" in huey:
        huey["filename"] = moved(huey["filename"])
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        # In place: connections read DATABASES on first use, which has not happened.
        database["NAME"] = moved(database["NAME"])
        # The test database is a file in this process's own new directory: worker
        # processes started by tests open it too, and no -wal/-shm file of an earlier
        # run (a killed process leaves them) can be replayed into it.
        test = database.setdefault("TEST", {})
        if test.get("NAME"):
            test["NAME"] = moved(test["NAME"])
    # WhiteNoise warns about a STATIC_ROOT that does not exist.
    Path(moved(settings.STATIC_ROOT)).mkdir(parents=True, exist_ok=True)
    override_settings(
        DATA_DIR=_DATA_DIR,
        STATIC_ROOT=moved(settings.STATIC_ROOT),
        STORAGES=storages,
        HUEY=huey,
        POSTA_ALLOWED_MAIL_HOSTS=[],
    ).enable()
    # djhuey built its queue object from the old settings when the app loaded.
    djhuey = sys.modules.get("huey.contrib.djhuey")
    queue = getattr(djhuey, "HUEY", None)
    filename = getattr(queue, "storage_kwargs", {}).get("filename")
    if queue is not None and filename and moved(filename) != filename:
        queue.storage_kwargs["filename"] = moved(filename)
        queue.storage = queue.create_storage()


_redirect_loaded_settings()


# ---------------------------------------------------------------------- Dovecot


@pytest.fixture(autouse=True)
def _default_language_and_zone() -> Iterator[None]:
    """Each test starts in the default language and time zone. Django's
    LocaleMiddleware activates the request's language for the thread and never
    resets it (each request of a server activates its own); a test client's
    Italian request would otherwise leave Italian to the next test's worker code."""
    from django.utils import timezone, translation

    translation.deactivate()
    timezone.deactivate()
    yield
    translation.deactivate()
    timezone.deactivate()


@pytest.fixture(scope="session")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DovecotServer]:
    """One private Dovecot for the whole session (per xdist worker)."""
    server = start_dovecot(tmp_path_factory.mktemp("dovecot"))
    yield server
    server.stop()


@pytest.fixture
def mail_user(dovecot: DovecotServer) -> MailUser:
    """A new, empty mailbox on the session's Dovecot (password "secret")."""
    return dovecot.add_user()


@pytest.fixture
def dovecot_factory(tmp_path: Path) -> Iterator[Callable[..., DovecotServer]]:
    """Start extra Dovecot instances: ``dovecot_factory(tls=True, extra_config="...")``."""
    started: list[DovecotServer] = []

    def factory(
        *, tls: bool = False, extra_config: str = "", oauth2_introspection_url: str = "",
        oauth2_mechanisms: str = "xoauth2 oauthbearer",
    ) -> DovecotServer:
        server = start_dovecot(tmp_path / f"dovecot-{len(started)}", tls=tls,
                               extra_config=extra_config,
                               oauth2_introspection_url=oauth2_introspection_url,
                               oauth2_mechanisms=oauth2_mechanisms)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


# ----------------------------------------------------------------------- OAuth2


@pytest.fixture
def oauth_server() -> Iterator[OAuthServer]:
    """A fresh local authorization server for this test (tests/servers/oauth.py)."""
    server = start_oauth_server()
    yield server
    server.stop()


# ---------------------------------------------------------------------- network


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts TCP connections and never says a word (no
    greeting): what a hung server looks like to a client."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


# ------------------------------------------------------------------------- SMTP


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A fresh SMTP server for this test: plaintext, no AUTH required, records all."""
    server = start_smtp()
    yield server
    server.stop()


@pytest.fixture
def smtp_factory(tmp_path: Path) -> Iterator[Callable[..., SmtpServer]]:
    """Start extra SMTP servers: ``smtp_factory(tls="starttls", tls_files=dovecot.tls_files)``."""
    started: list[SmtpServer] = []

    def factory(*, tls: TlsMode = "none", tls_files: TlsFiles | None = None) -> SmtpServer:
        cert_dir = tmp_path / f"smtp-{len(started)}"
        server = start_smtp(tls=tls, tls_files=tls_files, cert_dir=cert_dir)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


# ------------------------------------------------------------------------- POP3


@pytest.fixture
def pop3_factory() -> Iterator[Callable[..., Pop3Server]]:
    """Start small POP3 servers: ``pop3_factory(messages=[...], uidl=False)``."""
    started: list[Pop3Server] = []

    def factory(**options: Any) -> Pop3Server:
        server = start_pop3(**options)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


# ---------------------------------------------------------------------- browser


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless system Chromium for the session (a Playwright ``Browser``)."""
    # Playwright's sync API keeps an event loop running in this thread; Django would
    # then refuse ORM calls from tests and live_server as if they came from async code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        launched = launch_browser(playwright)
        yield launched
        launched.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    """Open pages in fresh contexts: ``new_page(locale="it-IT")``; closed at teardown."""
    contexts: list[BrowserContext] = []

    def factory(*, locale: str = "en-US", **options: Any) -> Page:
        context = new_context(browser, locale=locale, **options)
        contexts.append(context)
        return context.new_page()

    yield factory
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Callable[..., Page]) -> Page:
    """A page in a new browser context with locale en-US."""
    return new_page(locale="en-US")


@pytest.fixture
def page_it(new_page: Callable[..., Page]) -> Page:
    """A page in a new browser context with locale it-IT."""
    return new_page(locale="it-IT")
