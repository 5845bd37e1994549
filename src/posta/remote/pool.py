"""One IMAP session per account for a job that works on several accounts (a draft
whose From changed has copies in two accounts' Drafts folders)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from posta.accounts.models import Account
from posta.mailproto import errors, failures
from posta.mailproto.failures import Verdict
from posta.mailproto.imap.session import Session
from posta.remote.account_errors import record_account_error
from posta.remote.connect import close, open_imap


class Connections:
    """One logged-in IMAP session per account, opened when first needed; a session
    lent by the caller (`lend`) is used but left open."""

    def __init__(self) -> None:
        self._open: dict[int, Session] = {}
        self._lent: set[int] = set()

    def get(self, account: Account) -> Session:
        if account.pk not in self._open:
            try:
                self._open[account.pk] = open_imap(account)
            except errors.MailError as exc:
                # The failure table (posta.mailproto.failures): the account's settings
                # are the account's to show; the sweep skips its drafts until they
                # work again. Anything else the sweep simply tries again: the local
                # draft is the truth, nothing is lost meanwhile.
                if failures.verdict_for_error(exc) is Verdict.ACCOUNT:
                    record_account_error(account.pk, exc)
                raise
        return self._open[account.pk]

    def lend(self, account: Account, session: Session) -> None:
        self._open.setdefault(account.pk, session)
        self._lent.add(account.pk)

    def close(self) -> None:
        for account_id, session in self._open.items():
            if account_id not in self._lent:
                close(session)
        self._open.clear()


@contextmanager
def connections() -> Iterator[Connections]:
    """A pool whose sessions are logged out when the block ends."""
    pool = Connections()
    try:
        yield pool
    finally:
        pool.close()
