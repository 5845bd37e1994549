"""POP3 sources: the rules of the POP3 tab, database only (the web uses them).

A source is saved only after a real test (connect, log in, STAT), run by the
probe posta.rules.pop3_connect registers here from RulesConfig.ready(), with the
address guard, TLS verification and per-failure words of the account form; "save
anyway" keeps the error on the source. "Fetch now" writes the wish on the row and
wakes the worker after commit (`fetch_requested`); the periodic sweep finds the
row if the wake-up is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from django.db import transaction
from django.db.models import QuerySet
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from posta.accounts.errors import connection_error_message
from posta.accounts.models import Account, Folder
from posta.core.crypto import seal
from posta.core.errors import PostaError, not_found
from posta.rules.pop3_models import Pop3Source
from posta.users.models import User

#: A source should be fetched now; kwargs: `source_id` (int). Sent after commit.
fetch_requested = Signal()


class Pop3ProbeLike(Protocol):
    @property
    def code(self) -> str: ...
    @property
    def detail(self) -> str: ...
    @property
    def has_uidl(self) -> bool: ...


_probe: list[Callable[..., Pop3ProbeLike]] = []


def register_pop3_probe(probe: Callable[..., Pop3ProbeLike]) -> None:
    """Make `probe(source, *, password)` the test of check_save_source."""
    _probe[:] = [probe]


@dataclass
class SourceOutcome:
    source: Pop3Source
    saved: bool
    error: str = ""


def sources_of(user: User) -> QuerySet[Pop3Source]:
    return Pop3Source.objects.filter(user=user).select_related("account").order_by(
        "created_at", "id"
    )


def access_source(user: User, source_id: int) -> Pop3Source:
    """The user's own source; PostaError 404 for any other."""
    source = Pop3Source.objects.filter(pk=source_id, user=user).select_related("account").first()
    if source is None:
        raise not_found(gettext_lazy("This POP3 source does not exist, or it is not yours."))
    return source


def target_folders(user: User) -> QuerySet[Folder]:
    """Folders mail can be imported into: the selectable ones of the user's accounts."""
    return (
        Folder.objects.filter(account__user=user, selectable=True)
        .select_related("account")
        .order_by("account__created_at", "account_id", "display_name")
    )


def default_target(user: User) -> Folder | None:
    """The main account's inbox (else the first account's inbox)."""
    inboxes = target_folders(user).filter(role=Folder.Role.INBOX)
    return inboxes.filter(account__is_main=True).first() or inboxes.first()


def check_save_source(
    user: User,
    source: Pop3Source,
    *,
    folder: Folder,
    password: str | None,
    current_password: str = "",
    save_anyway: bool = False,
) -> SourceOutcome:
    """Test the source, then save it unless the test failed (or `save_anyway`).

    `password` None keeps the stored one (the form leaves it empty on edit).
    """
    if folder.account.user_id != user.pk:
        raise PostaError("unknown_folder", gettext_lazy("That folder is not yours."))
    if not _probe:
        raise RuntimeError("no POP3 probe registered (is posta.rules installed?)")
    source.user = user
    source.host = source.host.strip()
    source.username = source.username.strip()
    source.account = folder.account
    source.folder_name = folder.name
    result = _probe[0](source, password=password if password is not None else current_password)
    error = ""
    if result.code:
        error = connection_error_message(
            result.code, protocol="pop3", host=source.host, detail=result.detail
        )
        if not save_anyway:
            return SourceOutcome(source=source, saved=False, error=error)
    if password is not None:
        source.password_secret = seal(password)
    source.has_uidl = result.has_uidl if not result.code else source.has_uidl
    source.last_error_code = result.code
    source.last_error_detail = f"pop3:{result.detail}"[:500] if result.code else ""
    source.last_error_at = timezone.now() if result.code else None
    source.next_fetch_at = timezone.now()
    with transaction.atomic():
        source.save()
        if not result.code and source.active:
            _notify_fetch(source.pk)
    return SourceOutcome(source=source, saved=True, error=error)


def do_delete_source(source: Pop3Source) -> None:
    """Forget the source and its records; nothing on either server changes."""
    source.delete()


def do_request_fetch(source: Pop3Source) -> None:
    """"Fetch now": the worker takes the source as soon as it is free."""
    if not source.active:
        raise PostaError("source_inactive", gettext_lazy("This source is not active."))
    with transaction.atomic():
        Pop3Source.objects.filter(pk=source.pk).update(fetch_requested_at=timezone.now())
        _notify_fetch(source.pk)


def _notify_fetch(source_id: int) -> None:
    def send() -> None:
        fetch_requested.send_robust(sender=Pop3Source, source_id=source_id)

    transaction.on_commit(send)


def source_error_message(source: Pop3Source) -> str:
    """The source's last error in the reader's language, or ""."""
    code = source.last_error_code
    if not code:
        return ""
    protocol, _sep, detail = source.last_error_detail.partition(":")
    if code == "target_folder_missing":
        return _(
            "The folder %(folder)s is not in %(account)s any more: the import waits "
            "until it is back or another folder is chosen."
        ) % {"folder": source.folder_name, "account": source.account.description}
    if protocol == "imap":
        words = connection_error_message(
            code, protocol="imap", host=source.account.imap_host, detail=detail
        )
        return _("The target account cannot be reached: %(error)s") % {"error": words}
    return connection_error_message(code, protocol="pop3", host=source.host, detail=detail)


def source_rows(user: User) -> list[dict[str, Any]]:
    """What the POP3 tab shows of each source."""
    sources = list(sources_of(user))
    names = {
        (f.account_id, f.name): f.display_name
        for f in Folder.objects.filter(account__user=user).only("account_id", "name",
                                                                 "display_name")
    }
    return [
        {
            "source": source,
            "error": source_error_message(source),
            "folder": names.get((source.account_id, source.folder_name), source.folder_name),
        }
        for source in sources
    ]


def accounts_with_folders(user: User) -> bool:
    return Account.objects.filter(user=user, folders__selectable=True).exists()
