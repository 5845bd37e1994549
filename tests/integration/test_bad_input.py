"""Bad input never makes a view fail: every URL Django's resolver knows, with
malformed and oversize path, query and form values, as an anonymous visitor, a
user with a synced account and an administrator.

The table is the resolver itself (`ROUTES`), so a new view cannot escape it. The
query and form parameters tried on a view are a known list plus every name the
view is seen reading (QueryDict reads are recorded while it runs), each alone
with every bad value, on top of a few values that lead a view past its first
checks (`BASE`). A bad value answers 400 (or 413) with a message; an unknown id
or a path that does not parse, 404; a wrong method, 405; never 500.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from django.http import QueryDict
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern

from posta.accounts.models import Account, Folder, MailServer
from posta.crm import importing
from posta.crm import services as crm
from posta.crm.models import Contact
from posta.mail import outbox, undo
from posta.mail.models import Location, Message, OutgoingMessage
from posta.rules import filters, scan
from posta.rules.pop3_models import Pop3Source
from posta.shares import comments
from posta.shares import services as shares
from posta.sync.account_pass import sync_account_once
from posta.users.models import User
from tests.integration.pop3_setup import make_source
from tests.integration.test_mail_screen import rich_message, setup_account
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.pop3 import Pop3Server
from tests.wakeups import recorded_wakeups

pytestmark = pytest.mark.django_db(transaction=True)

BAD_VALUES: dict[str, str] = {
    "word": "abc",
    "negative": "-1",
    "30 digits": "9" * 30,
    "just past 64 bits": str(2**63),
    "superscript digit": "²",
    "10 KB date": "2026-03-02T10:00" + "0" * 10_000,
    "1 MB": "x" * 1_000_000,
    "100,000 ids": ",".join(str(i) for i in range(1, 100_001)),
}
# Values too large to send in every parameter at once (the body would pass
# Django's form-data cap, which is tested on its own); they go one parameter at a time.
BIG = {"10 KB date", "1 MB", "100,000 ids"}
BAD_PATH_VALUES = ["abc", "9" * 30, str(2**63), "²", "x" * 10_000]
# 100,000 fields of one name, past DATA_UPLOAD_MAX_NUMBER_FIELDS (encoded once).
MANY_FIELDS = urlencode({"ids": [str(i) for i in range(100_000)]}, doseq=True)

# Parameters the views read; names seen read while the table runs are added.
KNOWN_NAMES = [
    "account", "all", "attach", "q", "view", "cursor", "part", "m", "t", "folder",
    "scope", "marker", "nested", "images", "preview", "poll", "u", "s", "ids",
    "threads", "action", "target", "next", "send_at", "quick", "to", "cc", "bcc",
    "subject", "body", "body_text", "plain_text", "company_signature", "username",
    "password", "language", "account_type", "imap_port", "max_attachment_mb",
    "record", "conversation", "confirm", "email", "kind", "after", "direction", "duplicate",
    "first_name", "last_name", "emails", "phones", "name", "domains", "visibility",
    "phone_region", "auto_link", "file", "files", "back", "map_first_name", "map_emails",
    "people", "everyone", "follow", "comment", "recipient", "parent", "kind", "share",
    "email_notice", "share_with",
]  # fmt: skip

ALLOWED = {200, 204, 302, 400, 403, 404, 405, 413}


@dataclass
class Route:
    name: str
    route: str  # the whole route, converters included: "mail/m/<id:message_id>/"
    converters: dict[str, str] = field(default_factory=dict)  # parameter: converter


_PARAMETER = re.compile(r"<(?:(\w+):)?(\w+)>")


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[Route]:
    for entry in patterns:
        pattern = entry.pattern
        assert isinstance(pattern, RoutePattern), f"not a path(): {pattern!r}"
        route = prefix + str(pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, route)
        else:
            assert isinstance(entry, URLPattern)
            converters = {name: conv or "str" for conv, name in _PARAMETER.findall(route)}
            yield Route(entry.name or route, route, converters)


ROUTES = list(_walk(get_resolver().url_patterns))


@dataclass
class World:
    """What the URLs point at: one user's synced account, mail and draft."""

    admin: User
    user: User
    account: Account
    inbox: Folder
    message: Message
    draft: OutgoingMessage
    attachment_id: int
    server: MailServer
    record: Contact
    duplicate: Contact
    record_import: int
    pop3_source: Pop3Source
    pop3_form: dict[str, str]
    share_id: int = 0
    comment_id: int = 0
    recipient_id: int = 0
    rule_id: int = 0
    job_id: int = 0

    def valid(self, parameter: str) -> str:
        values: dict[str, Any] = {
            "account_id": self.account.pk,
            "folder_id": self.inbox.pk,
            "message_id": self.message.pk,
            "thread_id": self.message.thread_id,
            "outgoing_id": self.draft.pk,
            "attachment_id": self.attachment_id,
            "user_id": self.user.pk,
            "server_id": self.server.pk,
            "source_id": self.pop3_source.pk,
            "role": "inbox",
            "name": "flagged",
            "part_id": "2",
            "action": "reschedule",
            "rule_id": self.rule_id,
            "job_id": self.job_id,
            "record_kind": "contact",
            "record_id": self.record.pk,
            "import_id": self.record_import,
            "share_id": self.share_id,
            "comment_id": self.comment_id,
            "kind": "custom",
        }
        assert parameter in values, f"no valid value for the path parameter {parameter}"
        return str(values[parameter])

    def undo_ticket(self) -> str:
        """A ticket of the toast's Undo, for the message's inbox copy."""
        copy = Location.objects.filter(message=self.message).first()
        return undo.ticket_for(self.user, [(copy.pk, self.inbox.pk)]) if copy else ""

    def base(self, route: str) -> dict[str, str]:
        """Values that take a view past its first checks, so the bad one is reached."""
        account = str(self.account.pk)
        # The first POST of an editor page that stored nothing yet (a reply).
        start = {"origin": "reply", "source": str(self.message.pk), "draft_key": "a" * 32}
        return {
            "mail_act": {"action": "move", "ids": str(self.message.pk), "undo": "1"},
            "mail_undo": {"ticket": self.undo_ticket()},
            "compose_edit": {"account": account, "action": "schedule"},
            "compose_autosave": {"account": account},
            "compose_start": {**start, "account": account, "action": "schedule"},
            "compose_start_autosave": {**start, "account": account},
            "compose_start_attach": start,
            "filter_new": {"name": "A filter", "cond_field": "from", "cond_op": "contains",
                           "cond_value": "x", "act_kind": "seen", "enabled": "1"},
            "filter_edit": {"name": "A filter", "cond_field": "from", "cond_op": "contains",
                            "cond_value": "x", "act_kind": "seen", "enabled": "1"},
            "filter_scan": {"folder": str(self.inbox.pk)},
            "filter_order": {"ids": ""},
            "crm_panel_link": {"record": self.record.ref},
            "crm_panel_unlink": {"record": self.record.ref},
            "crm_panel_create": {"kind": "contact", "email": self.message.from_email},
            "crm_merge": {"duplicate": self.duplicate.ref},
            "crm_new": {"first_name": "Ada", "emails": "ada@example.test"},
            "crm_import_job": {"map_first_name": "0", "map_emails": "1"},
            "crm_edit": {"first_name": "Ada", "emails": "ada@example.test"},
            "share_new": {"people": self.admin.username, "access": "read"},
            "share_manage": {"action": "access", "recipient": str(self.recipient_id),
                             "access": "reply"},
            "share_comment": {"body": "A comment"},
            "share_comment_edit": {"body": "An edit"},
            "share_reply": {"kind": "reply"},
            "pop3_new": self.pop3_form,
            "pop3_edit": self.pop3_form,
        }.get(route, {})


@pytest.fixture(autouse=True)
def quiet_queue() -> Iterator[None]:
    """The tests drive no worker: the outbox's wake-ups are recorded, not queued."""
    with recorded_wakeups():
        yield


@pytest.fixture
def world(dovecot: DovecotServer, mail_user: MailUser, settings: Any,
          monkeypatch: pytest.MonkeyPatch, pop3_factory: Callable[..., Pop3Server]) -> World:
    monkeypatch.setattr("posta.sync.tasks.enqueue_account_actions", lambda ids: None)
    # Password checks (login, password change) at test speed.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    admin = User.objects.create_superuser("root", "root@example.test", "pw-unused-123")
    account = setup_account(dovecot, mail_user, settings)
    dovecot.deliver(mail_user, rich_message("figures", "<p>The figures</p>"))
    sync_account_once(account.pk)
    message = Message.objects.get(user=account.user, subject="figures")
    assert message.body_state == Message.BodyState.STORED
    draft = outbox.do_new_draft(account.user, account=account)
    attachment = outbox.check_add_attachment(
        account.user, draft, filename="a.txt", content_type="text/plain", data=b"a"
    )
    inbox = Folder.objects.get(account=account, role=Folder.Role.INBOX)
    rule = filters.check_save_rule(account.user, None, filters.RuleData(
        name="Acme", conditions=[{"field": "from", "op": "contains", "value": "@acme.it"}],
        actions=[{"kind": "move", "folder": str(inbox.pk)}],
    ))
    job = scan.do_start_scan(account.user, inbox.pk)
    shared = shares.do_share(account.user, message, people=[admin], access="reply")
    comment = comments.check_comment(shares.access_share(account.user, shared.pk), "Hello")
    # A POP3 server that takes any password: a save's test logs in at once, where
    # Dovecot would slow down every login from the address after a refused one.
    pop3 = pop3_factory(password=None)
    return World(
        share_id=shared.pk,
        comment_id=comment.comment.pk,
        recipient_id=shared.recipients.get().pk,
        rule_id=rule.pk,
        job_id=job.pk,
        admin=admin,
        user=account.user,
        account=account,
        inbox=Folder.objects.get(account=account, role=Folder.Role.INBOX),
        message=message,
        draft=draft,
        attachment_id=attachment.pk,
        server=MailServer.objects.create(name="Office", imap_host="mail.example.test"),
        record=_contact(account.user, "Ada", message.from_email),
        duplicate=_contact(account.user, "Ada", "ada.two@example.test"),
        record_import=importing.check_start_import(
            account.user, "contact", "people.csv", b"Name,Email\nBea,bea@example.test\n"
        ).pk,
        pop3_source=make_source(account, host=pop3.host, port=pop3.port,
                                username=pop3.username, password="secret"),
        pop3_form={
            "host": pop3.host, "port": str(pop3.port), "security": "none",
            "username": pop3.username, "password": "secret",
            "target": str(Folder.objects.get(account=account, role="inbox").pk),
            "interval_minutes": "5", "active": "on",
        },
    )


def _contact(owner: User, name: str, email: str) -> Contact:
    record = crm.do_save_record(Contact(owner=owner, first_name=name), emails=[email])
    assert isinstance(record, Contact)
    return record


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The names views read from request.GET and request.POST."""
    seen: set[str] = set()

    def recording(original: Callable[..., Any]) -> Callable[..., Any]:
        def read(self: QueryDict, key: str, *args: Any, **kwargs: Any) -> Any:
            seen.add(key)
            return original(self, key, *args, **kwargs)

        return read

    # Only get and getlist, what views and form widgets read with: a QueryDict
    # uses `in` and [] on itself while it is built and iterated.
    for method in ("get", "getlist"):
        monkeypatch.setattr(QueryDict, method, recording(getattr(QueryDict, method)))
    return seen


def _path(route: Route, fill: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        return fill[match.group(2)]

    return "/" + _PARAMETER.sub(one, route.route)


def _send(client: Client, method: str, path: str, data: dict[str, Any]) -> Any:
    if method == "get":
        return client.get(path, data)
    return client.post(path, data)


def _send_many(client: Client, method: str, path: str) -> Any:
    if method == "get":
        return client.get(f"{path}?{MANY_FIELDS}")
    return client.post(path, MANY_FIELDS, content_type="application/x-www-form-urlencoded")


def _check(response: Any, what: str) -> None:
    status = response.status_code
    assert status in ALLOWED, f"{what}: {status}"
    if status in (400, 413):
        text = response.content.decode()
        if response.get("Content-Type", "").startswith("application/json"):
            answer = json.loads(text)
            assert answer.get("message") or answer.get("errors"), f"{what}: {text[:200]}"
        else:
            assert 'role="alert"' in text, f"{what}: no message in {text[:300]}"


def _clients(world: World) -> dict[str, Client]:
    clients = {"anonymous": Client()}
    for who, user in (("user", world.user), ("administrator", world.admin)):
        client = Client()
        client.force_login(user)
        clients[who] = client
    return clients


@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
def test_no_bad_value_makes_a_view_fail(route: Route, world: World, reads: set[str]) -> None:
    for converter in route.converters.values():
        assert converter in ("id", "str"), f"{route.name}: no bad values for <{converter}:>"
    valid = {name: world.valid(name) for name in route.converters}
    for who, client in _clients(world).items():
        # Path parameters: each bad in turn, the others valid. An <id:> that does
        # not parse is refused by the resolver before any view, whoever asks.
        for name, converter in route.converters.items():
            if converter == "id" and who != "user":
                continue
            for bad in BAD_PATH_VALUES:
                path = _path(route, {**valid, name: bad})
                for method in ("get", "post"):
                    _check(_send(client, method, path, {}), f"{who} {method} {name}={bad[:20]}")
        path = _path(route, valid)
        base = world.base(route.name)
        # htmx requests take other branches (partials), so both kinds are sent;
        # an anonymous visitor is sent to sign in before any view runs.
        kinds = [False] if who == "anonymous" else [False, True]
        for method, htmx in itertools.product(("get", "post"), kinds):
            if htmx:
                client.defaults["HTTP_HX_REQUEST"] = "true"
            else:
                client.defaults.pop("HTTP_HX_REQUEST", None)
            what = f"{who} {method}{' htmx' if htmx else ''}"
            reads.clear()
            _check(_send(client, method, path, base), f"{what} {path}")
            names = set(KNOWN_NAMES) | reads
            for label, bad in BAD_VALUES.items():
                if label not in BIG:
                    data = {**base, **dict.fromkeys(sorted(names), bad)}
                    _check(_send(client, method, path, data), f"{what} all={label}")
            _check(_send_many(client, method, path), f"{what} 100,000 fields")
            if who == "anonymous":
                continue
            # Each name read on the way, alone with each bad value.
            for name in sorted(reads | set(base)):
                for label, bad in BAD_VALUES.items():
                    data = {**base, name: bad}
                    _check(_send(client, method, path, data), f"{what} {name}={label}")


def test_the_table_covers_every_view() -> None:
    names = {route.name for route in ROUTES}
    # Spot checks that the walk reaches included URL confs and path parameters.
    assert {"mail_act", "compose_new", "compose_act", "admin_user_edit", "login"} <= names
    act = next(r for r in ROUTES if r.name == "compose_act")
    assert act.converters == {"outgoing_id": "id", "action": "str"}
