"""From a POP3 source to its connection, and the test run when a source is saved.

The host goes through the address guard with the company's allow list and the
connection goes to the address it allowed (posta.remote.connect.endpoint, as for
IMAP and SMTP), the certificate still checked for the host name. The test
reports, never raises, with the same failure codes as the account test
(posta.remote.probe), so the page shows the same words; it is registered with
posta.rules.pop3_services by RulesConfig.ready(), since the services (used by the
web) open no connection.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from posta.core.crypto import unseal
from posta.core.errors import PostaError
from posta.mailproto.errors import MailError
from posta.mailproto.pop3.client import Pop3Session, Pop3Settings, check_login, connect
from posta.remote.connect import endpoint, unsealed
from posta.rules.pop3_models import Pop3Source

logger = logging.getLogger(__name__)


def pop3_settings(source: Pop3Source, *, password: str) -> Pop3Settings:
    """The source's login, to the endpoint the guard allowed (posta.remote.connect,
    as for IMAP and SMTP)."""
    return Pop3Settings(
        security=source.security,
        username=source.username,
        password=password,
        **endpoint(source.host, source.port).fields(),
    )


def open_source(source: Pop3Source) -> Pop3Session:
    """A logged-in POP3 session of `source`. Raises MailError subclasses only."""
    return connect(pop3_settings(source, password=unsealed(source.password_secret)))


@dataclass
class Pop3ProbeResult:
    """What the test found: `code` ("" when it worked) and an English `detail`."""

    code: str = ""
    detail: str = ""
    message_count: int = 0
    has_uidl: bool = True

    @property
    def ok(self) -> bool:
        return not self.code


def probe_source(source: Pop3Source, *, password: str | None = None) -> Pop3ProbeResult:
    """Connect, log in, STAT and ask for UIDL, then QUIT; report the outcome.

    `password` overrides the stored one (the form's unsaved input).
    """
    try:
        secret = password if password is not None else unseal(source.password_secret)
        count, has_uidl = check_login(pop3_settings(source, password=secret))
    except PostaError as exc:
        return Pop3ProbeResult(code=exc.code)
    except MailError as exc:
        return Pop3ProbeResult(code=exc.code, detail=exc.detail)
    except Exception:
        logger.exception("POP3 source %s: test failed unexpectedly", source.pk)
        return Pop3ProbeResult(code="unexpected_error")
    logger.info("POP3 source %s tested: %d messages, uidl=%s", source.pk, count, has_uidl)
    return Pop3ProbeResult(message_count=count, has_uidl=has_uidl)
