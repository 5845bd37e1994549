"""Filters on the server: ManageSieve detection and the upload of Posta's script.

Run by the rules worker only (posta.rules.tasks), never in a request. For one
account, `do_sync_server`:

1. connects to ManageSieve (RFC 5804) on the IMAP host, port 4190, with the
   IMAP login, through the same address guard (posta.remote.connect) and TLS
   rule (STARTTLS whenever IMAP is encrypted). Nothing listening, or a refusal:
   the server offers no filters, and Posta runs them;
2. renders the account's rules (broken ones left out) followed by the sections
   other parts register (`register_section`: out-of-office's `vacation`), with
   `require` limited to the extensions the server announces. A rule needing an
   extension the server lacks leaves the account's filters to Posta, with the
   reason shown;
3. never destroys a script the user made elsewhere: when another script is
   active, Posta's script includes it (`include :personal`, RFC 6609) where the
   server has "include", else the other script stays active and Posta runs the
   filters itself, and the Filters tab says which;
4. CHECKSCRIPT, then PUTSCRIPT "posta", then SETACTIVE "posta"; a refusal is
   recorded with the server's words, Posta's script steps aside and the filters
   stay with Posta;
5. tells posta.rules.autoreply_handover who answers: the server from just
   before a script holding `vacation` goes up, Posta again once a script
   without it is active or Posta's script stepped aside (while ManageSieve is
   only unreachable for now, the server keeps the replies: none, never two).

Switched off by the user: Posta's script is deactivated when it is the active
one (the user's other script, if it was included, is made active again).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.utils import timezone

from posta.accounts.models import Account
from posta.mailproto import errors
from posta.mailproto.sieve import managesieve
from posta.mailproto.sieve.script import (
    SieveSection,
    missing_extensions,
    quote,
    render_script,
)
from posta.remote.connect import endpoint, unsealed
from posta.rules import autoreply_handover, filters
from posta.rules.filter_models import FilterServer

log = logging.getLogger(__name__)

SCRIPT_NAME = "posta"
State = FilterServer.State

SectionFn = Callable[[Account, frozenset[str]], SieveSection | None]
_sections: dict[str, tuple[int, SectionFn]] = {}


def register_section(name: str, order: int, fn: SectionFn) -> None:
    """Add a section after the filters: `fn(account, extensions)` returns the
    rendered commands (or None for nothing). Sections run in `order`."""
    _sections[name] = (order, fn)


def _trailer(account: Account, extensions: frozenset[str]) -> list[SieveSection]:
    out = []
    for _order, fn in sorted(_sections.values(), key=lambda item: item[0]):
        section = fn(account, extensions)
        if section is not None:
            out.append(section)
    return out


def sieve_settings(account: Account) -> managesieve.SieveSettings:
    server = FilterServer.objects.filter(account=account).first()
    port = server.port if server is not None else managesieve.DEFAULT_PORT
    return managesieve.SieveSettings(
        security="none" if account.imap_security == "none" else "tls",
        username=account.username,
        password=unsealed(account.password_secret),
        **endpoint(account.imap_host, port).fields(),
    )


@dataclass
class Result:
    state: str
    reason_code: str = ""
    reason_detail: str = ""
    extensions: list[str] | None = None
    other_script: str | None = None
    offered: bool | None = None


def _record(account: Account, result: Result, *, revision: int | None) -> None:
    now = timezone.now()
    fields: dict[str, object] = {
        "state": result.state,
        "reason_code": result.reason_code,
        "reason_detail": result.reason_detail[:1000],
        "checked_at": now,
    }
    if result.offered is not None:
        fields["offered"] = result.offered
    if result.extensions is not None:
        fields["extensions"] = result.extensions
    if result.other_script is not None:
        fields["other_script"] = result.other_script[:200]
    if revision is not None:
        fields["uploaded_revision"] = revision
        fields["uploaded_at"] = now
    FilterServer.objects.filter(account=account).update(**fields)


def do_sync_server(account_id: int) -> FilterServer | None:
    """Detect ManageSieve and bring Posta's script up to date (module docstring)."""
    account = Account.objects.filter(pk=account_id).select_related("user").first()
    if account is None:
        return None
    server, _created = FilterServer.objects.get_or_create(account=account)
    revision = server.wanted_revision
    if account.auth_method != Account.AuthMethod.PASSWORD:
        autoreply_handover.do_server_stops(account.pk)
        _record(account, Result(State.NONE, "oauth", offered=False), revision=None)
        return FilterServer.objects.get(account=account)
    try:
        connection = managesieve.connect(sieve_settings(account))
    except (errors.ConnectTimeout, errors.TemporaryNetworkError) as exc:
        # The server may still run the script it has: its replies stay its own
        # (none rather than two) until ManageSieve answers again.
        log.info("ManageSieve of account %s unreachable for now: %s", account.pk, exc)
        _record(account, Result(State.NONE, exc.code, offered=False), revision=None)
        return FilterServer.objects.get(account=account)
    except (errors.ConnectionRefused, errors.HostNotFound, errors.ProtocolError,
            errors.StartTlsNotOffered) as exc:
        log.info("no ManageSieve for account %s: %s", account.pk, exc)
        autoreply_handover.do_server_stops(account.pk)
        _record(account, Result(State.NONE, exc.code, offered=False), revision=None)
        return FilterServer.objects.get(account=account)
    except errors.MailError as exc:
        log.info("ManageSieve of account %s refused: %s", account.pk, exc.code)
        autoreply_handover.do_server_stops(account.pk)
        _record(account, Result(State.NONE, exc.code, offered=False), revision=None)
        return FilterServer.objects.get(account=account)
    with connection:
        result = _bring_up_to_date(connection, account, server)
    _record(account, result, revision=revision if result.state == State.SERVER else None)
    return FilterServer.objects.get(account=account)


def _bring_up_to_date(
    connection: managesieve.SieveConnection, account: Account, server: FilterServer
) -> Result:
    extensions = frozenset(connection.extensions())
    active, names = connection.scripts()
    other = active if active and active != SCRIPT_NAME else None
    if other is None and active == SCRIPT_NAME and server.other_script in names:
        other = server.other_script  # included by our script since we activated it
    base = Result(State.POSTA, extensions=sorted(extensions), offered=True,
                  other_script=other or "")
    if not server.use_server:
        _step_aside(connection, account, active, other)
        base.reason_code = "switched_off"
        return base
    rules = [r.spec for r in filters.resolved_for_account(account) if r.spec is not None]
    trailer = _trailer(account, extensions)
    if other is not None:
        if "include" not in extensions:
            base.reason_code = "other_script"
            base.reason_detail = other
            autoreply_handover.do_server_stops(account.pk)
            return base  # the user's script stays active; Posta runs the filters
        trailer.append(SieveSection(
            f"include :personal {quote(other)};", frozenset({"include"})
        ))
    missing = missing_extensions(rules, extensions=extensions, trailer=trailer)
    if missing:
        _step_aside(connection, account, active, other)
        base.reason_code = "missing_extensions"
        base.reason_detail = ", ".join(sorted(missing))
        return base
    script = render_script(rules, extensions=extensions, trailer=trailer)
    answers = any("vacation" in section.extensions for section in trailer)
    refused = connection.check(script)
    if refused is None and answers:
        autoreply_handover.do_server_starts(account.pk)  # before the server can answer
    refused = refused or connection.put(SCRIPT_NAME, script)
    if refused is None and active != SCRIPT_NAME:
        refused = connection.activate(SCRIPT_NAME)
    if refused is not None:
        # Both filters and replies go to Posta: the server's copy must not run beside.
        _step_aside(connection, account, active, other)
        base.state = State.ERROR
        base.reason_code = "refused"
        base.reason_detail = refused
        return base
    if not answers:
        autoreply_handover.do_server_stops(account.pk)  # a script without it is active
    return Result(State.SERVER, extensions=sorted(extensions), offered=True,
                  other_script=other or "")


def _step_aside(
    connection: managesieve.SieveConnection, account: Account, active: str | None,
    other: str | None,
) -> None:
    """Posta's script stops running; the user's own script, which it included,
    becomes active again. Replies are Posta's once that is done (while Posta's
    script may still run, they stay the server's)."""
    if active == SCRIPT_NAME:
        refused = connection.activate(other or "")
        if refused is not None:
            log.warning("could not deactivate Posta's Sieve script: %s", refused)
            return
    autoreply_handover.do_server_stops(account.pk)


def accounts_behind() -> list[int]:
    """Accounts whose server should run the filters but has an older script (or
    was never checked)."""
    from django.db.models import F, Q

    return list(
        FilterServer.objects.filter(
            Q(state__in=[State.UNKNOWN, State.SERVER, State.ERROR])
            & ~Q(uploaded_revision=F("wanted_revision"))
            | Q(state=State.UNKNOWN)
        ).values_list("account_id", flat=True)[:500]
    )
