"""Who may reach what of a shared conversation: every URL of /shares/ for a
colleague the share is not for, and every /mail/ and /compose/ URL of the
owner's mail (shared or not) for the colleague it is shared with. The tables are
the resolver's own, so a new route cannot escape them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from posta.mail import outbox
from posta.mail.models import Location, OutgoingMessage, RemoteAction
from posta.shares.models import Access, Comment, Share
from posta.users.models import User
from tests.integration.shares_world import Colleagues, two_colleagues
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp import SmtpServer
from tests.wakeups import recorded_wakeups

pytestmark = pytest.mark.django_db(transaction=True)

_PARAMETER = re.compile(r"<(?:(\w+):)?(\w+)>")
# Parameters that name something of the owner's.
OWNED = {"message_id", "thread_id", "folder_id", "outgoing_id", "account_id", "attachment_id"}


@pytest.fixture(autouse=True)
def quiet_queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr("posta.sync.tasks.enqueue_account_actions", lambda ids: None)
    with recorded_wakeups(sends=[]):
        yield


def routes(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from routes(entry.url_patterns, route)
        else:
            assert isinstance(entry, URLPattern)
            yield entry.name or route, route


ROUTES = list(routes(get_resolver().url_patterns))


def fill(route: str, values: dict[str, Any]) -> str:
    return "/" + _PARAMETER.sub(lambda m: str(values[m.group(2)]), route)


def as_user(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def hidden(client: Client, url: str, data: dict[str, str] | None = None) -> None:
    """Neither GET nor POST reaches it: 404 (or 405 for the method a view refuses)."""
    answers = [client.get(url), client.post(url, data or {}),
               client.get(url, HTTP_HX_REQUEST="true")]
    statuses = {a.status_code for a in answers}
    assert statuses <= {404, 405} and 404 in statuses, (url, statuses)


@pytest.fixture
def world(dovecot: DovecotServer, smtp_server: SmtpServer, settings: Any) -> Colleagues:
    return two_colleagues(dovecot, smtp_server, settings)


def _share(world: Colleagues) -> Share:
    a = as_user(world.a)
    answer = a.post(reverse("share_new", args=[world.answer.pk]),
                    {"people": world.b.username, "access": Access.REPLY, "comment": "Guarda"})
    assert answer.status_code == 302
    return Share.objects.get(owner=world.a)


def test_share_urls_are_404_for_a_colleague_it_is_not_shared_with(world: Colleagues) -> None:
    made = _share(world)
    comment = Comment.objects.get(share=made)
    carlo = User.objects.create_user("carlo", password="pw-unused-123")
    c = as_user(carlo)
    values = {"share_id": made.pk, "comment_id": comment.pk, "message_id": world.answer.pk,
              "part_id": "1"}
    share_routes = [(n, r) for n, r in ROUTES if n.startswith("share_") and n != "share_settings"]
    assert len(share_routes) >= 10
    for _name, route in share_routes:
        hidden(c, fill(route, values), {"body": "x", "kind": "reply", "action": "stop"})
    assert Share.objects.filter(pk=made.pk).exists()
    assert Comment.objects.filter(share=made).count() == 1


def test_the_colleague_reads_the_shared_messages_only(world: Colleagues) -> None:
    made = _share(world)
    b = as_user(world.b)
    draft_row = outbox.do_new_draft(world.a, account=world.a_account)
    attachment = outbox.check_add_attachment(
        world.a, draft_row, filename="a.txt", content_type="text/plain", data=b"a"
    )
    # Through the share: the shared messages, never another message of the folder.
    for shared in (world.first, world.answer):
        assert b.get(reverse("share_body", args=[made.pk, shared.pk])).status_code == 200
    for other in (world.private, world.draft):
        hidden(b, reverse("share_body", args=[made.pk, other.pk]))
        hidden(b, reverse("share_part", args=[made.pk, other.pk, "2"]))
        hidden(b, reverse("share_reply", args=[made.pk, other.pk]), {"kind": "reply"})
    hidden(b, reverse("share_new", args=[world.answer.pk]))
    hidden(b, reverse("share_people", args=[made.pk]))
    hidden(b, reverse("share_manage", args=[made.pk]), {"action": "stop"})
    # Every /mail/ and /compose/ URL of the owner's mail, shared or not.
    for message in (world.first, world.answer, world.private, world.draft):
        values = {
            "message_id": message.pk, "thread_id": message.thread_id,
            "folder_id": world.inbox().pk, "outgoing_id": draft_row.pk,
            "account_id": world.a_account.pk, "attachment_id": attachment.pk,
            "part_id": "2", "user_id": world.a.pk, "action": "cancel",
        }
        for name, route in ROUTES:
            wanted = {m.group(2) for m in _PARAMETER.finditer(route)}
            if wanted & OWNED and not name.startswith("share_"):
                hidden(b, fill(route, values), {"action": "delete", "ids": str(message.pk)})
    # Acting on the owner's ids changes nothing of theirs.
    b.post(reverse("mail_act"), {"action": "delete", "ids": f"{world.first.pk},{world.draft.pk}"})
    assert not RemoteAction.objects.filter(user=world.a).exists()
    assert Location.objects.filter(message=world.first).exists()
    assert OutgoingMessage.objects.filter(pk=draft_row.pk).exists()
    # The search and lists show none of the owner's mail.
    mine = as_user(world.a).get(reverse("mail_search"), {"q": "impianto"}).content.decode()
    assert f'data-id="{world.first.pk}"' in mine
    found = b.get(reverse("mail_search"), {"q": "impianto"}).content.decode()
    assert "Ci mandate" not in found and f"data-id=\"{world.first.pk}\"" not in found


def test_after_revoking_every_share_url_is_404_and_the_folder_is_empty(
    world: Colleagues,
) -> None:
    made = _share(world)
    b = as_user(world.b)
    assert "Preventivo impianto" in b.get(reverse("mail_special", args=["shared"])).content.decode()
    recipient = made.recipients.get(user=world.b)
    as_user(world.a).post(reverse("share_manage", args=[made.pk]),
                          {"action": "revoke", "recipient": str(recipient.pk)})
    assert "Preventivo impianto" not in b.get(
        reverse("mail_special", args=["shared"])
    ).content.decode()
    comment = Comment.objects.get(share=made)
    values = {"share_id": made.pk, "comment_id": comment.pk, "message_id": world.answer.pk,
              "part_id": "1"}
    for name, route in ROUTES:
        if name.startswith("share_") and name != "share_settings":
            hidden(b, fill(route, values), {"body": "x", "kind": "reply"})
