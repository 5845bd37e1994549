"""The mail screen over mail synced from the test Dovecot: lists, the reader and its
sandboxed body, attachments, actions reaching the server, access by URL, languages."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from posta.accounts.models import Account, CompanySettings, Folder
from posta.mail import undo
from posta.mail.models import Location, Message, RemoteAction
from posta.sync import actions
from posta.sync.account_pass import sync_account_once
from posta.users.models import User
from tests.integration.test_sync_checker import make_account, message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
    b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff"
    b"\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture(autouse=True)
def no_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run the action executor themselves; nothing consumes the queue here."""
    monkeypatch.setattr("posta.sync.tasks.enqueue_account_actions", lambda ids: None)


class CountingServer:
    """A local HTTP server that counts every request and answers with a PNG."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.agents: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits.append(self.path)
                owner.agents.append(self.headers.get("User-Agent", ""))
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(PNG)))
                self.end_headers()
                self.wfile.write(PNG)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def counting_server() -> Iterator[CountingServer]:
    server = CountingServer()
    yield server
    server.stop()


def setup_account(dovecot: DovecotServer, mail_user: MailUser, settings: Any) -> Account:
    """A synced account with INBOX, Work, Sent, Trash, Junk and Archive."""
    account = make_account(dovecot, mail_user, settings)
    # An installed Posta: an administrator exists (else every page leads to setup).
    if not User.objects.filter(is_superuser=True).exists():
        User.objects.create_superuser("root", "root@example.test", "pw-unused-123")
    company = CompanySettings.load()
    company.allowed_mail_hosts = "127.0.0.1"
    company.save()
    for name in ("Work", "Sent", "Trash", "Junk", "Archive"):
        dovecot.create_folder(mail_user, name)
    return account


def rich_message(subject: str, html: str, *, sender: str = "Carla <carla@example.test>") -> bytes:
    """HTML with a plain alternative, an inline cid: image and a PDF attachment."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "Bob <bob@example.test>"
    msg["Subject"] = subject
    msg["Date"] = "Tue, 03 Mar 2026 09:00:00 +0100"
    msg["Message-ID"] = f"<{subject.replace(' ', '.')}@example.test>"
    msg.set_content("plain version\n")
    msg.add_alternative(html, subtype="html")
    msg.get_payload()[1].add_related(PNG, "image", "png", cid="<logo@example.test>")
    msg.add_attachment(b"%PDF-1.4 test", maintype="application", subtype="pdf",
                       filename="preventivo 2026.pdf")
    return msg.as_bytes()


def login(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def test_unified_inbox_lists_synced_mail_with_snippets_and_badges(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, client: Client
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    dovecot.deliver(mail_user, message("first hello", body="The quarterly figures\n"))
    dovecot.deliver(mail_user, message("in work", body="Work body\n"), folder="Work")
    sync_account_once(account.pk)
    login(client, account.user)

    page = client.get(reverse("mail_role", args=["inbox"]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "first hello" in html
    assert "The quarterly figures" in html  # the snippet
    assert 'class="acct"' not in html  # one account: no badge (test_mail_screen_words)
    assert "in work" not in html  # another folder

    work = Folder.objects.get(account=account, name="Work")
    page = client.get(reverse("mail_folder", args=[work.pk]))
    assert "in work" in page.content.decode()
    # Home leads to the mail screen once an account exists.
    assert client.get("/").url == reverse("mail_index")


def test_reader_frame_is_sanitized_sandboxed_and_blocks_remote_content(
    dovecot: DovecotServer,
    mail_user: MailUser,
    settings: Any,
    client: Client,
    counting_server: CountingServer,
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    remote = counting_server.url("/track.png")
    html = (
        f'<p onclick="alert(1)">Hi <img src="{remote}"> <img src="cid:logo@example.test">'
        '<script>alert(2)</script><a href="jav&#x61;script:alert(3)">x</a></p>'
    )
    dovecot.deliver(mail_user, rich_message("rich one", html))
    sync_account_once(account.pk)
    msg = Message.objects.get(user=account.user, subject="rich one")
    assert msg.body_state == "stored"
    login(client, account.user)

    reader = client.get(reverse("mail_message", args=[msg.pk]), HTTP_HX_REQUEST="true")
    text = reader.content.decode()
    assert 'sandbox="allow-same-origin allow-popups allow-popups-to-escape-sandbox"' in text
    assert "allow-scripts" not in text
    assert "Show images" in text
    assert "preventivo 2026.pdf" in text

    body = client.get(reverse("mail_body", args=[msg.pk]))
    csp = body["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'none'" in csp
    # Same origin for the page's script to measure the body, never with script.
    assert "sandbox allow-same-origin" in csp and "allow-scripts" not in csp
    doc = body.content.decode()
    assert "<script" not in doc and "onclick" not in doc and "javascript:" not in doc
    assert remote not in doc
    assert "data:image/png;base64," in doc  # the cid: image, from the message itself
    assert counting_server.hits == []

    shown = client.get(reverse("mail_body", args=[msg.pk]) + "?images=1").content.decode()
    proxied = re.search(r'src="(http://testserver/mail/img/[^"]+)"', shown)
    assert proxied is not None
    assert counting_server.hits == []  # rendering fetches nothing
    # The proxy's own allowance for the loopback image server (tests/integration/
    # test_image_proxy.py: the mail-host one does not count).
    settings.POSTA_IMAGE_PROXY_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.POSTA_IMAGE_PROXY_PORTS = [counting_server.port]
    image = client.get(proxied.group(1).replace("&amp;", "&"))
    assert image.status_code == 200 and image.content == PNG
    assert counting_server.hits == ["/track.png"]
    # A URL the server did not sign is not fetched.
    forged = proxied.group(1).replace("&amp;", "&").replace("track.png", "other.png")
    assert client.get(forged).status_code == 404
    assert counting_server.hits == ["/track.png"]

    part = client.get(reverse("mail_part", args=[msg.pk, "2"]))
    assert part["Content-Disposition"].startswith("attachment;")
    assert part["X-Content-Type-Options"] == "nosniff"
    assert part.content == b"%PDF-1.4 test"
    eml = client.get(reverse("mail_eml", args=[msg.pk]))
    assert eml["Content-Disposition"].startswith("attachment;")
    assert b"Subject: rich one" in eml.content
    printed = client.get(reverse("mail_print", args=[msg.pk]))
    assert printed.status_code == 200 and "<script>alert" not in printed.content.decode()
    assert '<meta http-equiv="x-dns-prefetch-control" content="off">' in printed.content.decode()


def test_another_user_gets_404_for_every_url(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, client: Client
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    dovecot.deliver(mail_user, rich_message("private", '<p>secret <img src="http://x.test/a.png"></p>'))
    sync_account_once(account.pk)
    owner = account.user
    msg = Message.objects.get(user=owner, subject="private")
    folder = Folder.objects.get(account=account, name="INBOX")
    login(client, owner)
    shown = client.get(reverse("mail_body", args=[msg.pk]) + "?images=1").content.decode()
    image_url = re.search(r'src="http://testserver(/mail/img/[^"]+)"', shown)
    assert image_url is not None

    other = User.objects.create_user(username="intruder", password="pw-unused-123")
    client.force_login(other)
    urls = [
        reverse("mail_folder", args=[folder.pk]),
        reverse("mail_message", args=[msg.pk]),
        reverse("mail_body", args=[msg.pk]),
        reverse("mail_part", args=[msg.pk, "2"]),
        reverse("mail_zip", args=[msg.pk]),
        reverse("mail_eml", args=[msg.pk]),
        reverse("mail_print", args=[msg.pk]),
        image_url.group(1).replace("&amp;", "&"),
        reverse("crm_panel", args=[msg.pk]),
        reverse("account_delete", args=[account.pk]),
    ]
    if msg.thread_id:
        urls.append(reverse("mail_thread", args=[msg.thread_id]))
    for url in urls:
        assert client.get(url).status_code == 404, url
    partials = [reverse("mail_message", args=[msg.pk])]
    partials.append(reverse("mail_thread", args=[msg.thread_id]))
    for url in partials:
        assert client.get(url, HTTP_HX_REQUEST="true").status_code == 404, url
    assert client.post(reverse("mail_sync_now", args=[account.pk])).status_code == 404
    for name in ("crm_panel_link", "crm_panel_unlink", "crm_panel_create", "account_delete"):
        target = msg.pk if name.startswith("crm") else account.pk
        assert client.post(reverse(name, args=[target])).status_code == 404, name
    assert client.post(reverse("account_signin_again", args=[account.pk])).status_code == 404
    assert client.post(reverse("mail_empty", args=[folder.pk])).status_code == 404
    # The owner's Undo ticket is not found for another user.
    loc = Location.objects.get(message=msg)
    ticket = undo.ticket_for(owner, [(loc.pk, folder.pk)])
    assert client.post(reverse("mail_undo"), {"ticket": ticket}).status_code == 404
    # Acting on another user's ids changes nothing.
    client.post(reverse("mail_act"), {"action": "delete", "ids": str(msg.pk)})
    client.post(reverse("mail_act"), {"action": "move", "ids": str(msg.pk), "target": folder.pk})
    assert not RemoteAction.objects.exists()
    assert Location.objects.get(message=msg).folder == folder


def test_actions_from_the_screen_reach_the_server(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, client: Client
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    for subject in ("to flag", "to move", "to delete", "to spam"):
        dovecot.deliver(mail_user, message(subject))
    sync_account_once(account.pk)
    login(client, account.user)
    ids = {m.subject: m.pk for m in Message.objects.filter(user=account.user)}
    work = Folder.objects.get(account=account, name="Work")

    act = reverse("mail_act")
    hx = {"HTTP_HX_REQUEST": "true"}
    assert client.post(act, {"action": "flag", "ids": ids["to flag"]}, **hx).status_code == 204
    client.post(act, {"action": "move", "ids": ids["to move"], "target": work.pk}, **hx)
    client.post(act, {"action": "delete", "ids": ids["to delete"]}, **hx)
    client.post(act, {"action": "spam", "ids": ids["to spam"]}, **hx)

    # The page shows the change at once, with the action pending.
    flagged = client.get(reverse("mail_special", args=["flagged"])).content.decode()
    assert "to flag" in flagged and "Saving to the server" in flagged

    actions.run_account_actions(account.pk)
    assert set(RemoteAction.objects.values_list("state", flat=True)) == {"done"}
    inbox = dovecot.imap(mail_user)
    try:
        inbox.select("INBOX")
        _typ, data = inbox.uid("SEARCH", "FLAGGED")
        assert len(data[0].split()) == 1
    finally:
        inbox.logout()
    assert len(dovecot.uids(mail_user, "Work")) == 1
    assert len(dovecot.uids(mail_user, "Trash")) == 1
    assert len(dovecot.uids(mail_user, "Junk")) == 1


def test_sync_now_and_both_languages_render(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, client: Client
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    dovecot.deliver(mail_user, message("ciao"))
    sync_account_once(account.pk)
    user = account.user
    login(client, user)
    client.post(reverse("mail_sync_now", args=[account.pk]))
    account.refresh_from_db()
    assert account.sync_requested_at is not None

    for language, marker in (("en", 'lang="en"'), ("it", 'lang="it"')):
        user.language = language
        user.save()
        for name in ("inbox",):
            page = client.get(reverse("mail_role", args=[name]))
            assert page.status_code == 200 and marker in page.content.decode()
        for special in ("flagged", "scheduled", "shared", "imported"):
            page = client.get(reverse("mail_special", args=[special]))
            assert page.status_code == 200 and marker in page.content.decode()
        poll = client.get(reverse("mail_poll") + "?scope=role:inbox&marker=x")
        assert poll.status_code == 200 and "mail-changed" in poll["HX-Trigger"]


def test_keyset_pages_list_every_message_once_newest_first_and_search_finds(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, client: Client
) -> None:
    from posta.mail import queries

    account = setup_account(dovecot, mail_user, settings)
    for i in range(23):
        subject = f"topic {i % 5}" if i % 2 else f"single {i}"
        dovecot.deliver(
            mail_user,
            message(
                f"Re: {subject}" if i >= 5 and i % 2 else subject,
                msgid=f"<m{i}@example.test>",
                date=f"Mon, 02 Mar 2026 10:{i:02d}:00 +0100",
                **({"References": f"<m{i % 5 * 2 + 1}@example.test>"} if i >= 5 and i % 2 else {}),
            ),
        )
    sync_account_once(account.pk)
    user = account.user
    scope = queries.Scope("role", role="inbox")

    seen: list[int] = []
    cursor = ""
    while True:
        page = queries.message_page(user, scope, cursor=cursor, limit=7)
        seen += [row.message.pk for row in page.rows]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    dates = list(Message.objects.filter(pk__in=seen).order_by("-date").values_list("pk", flat=True))
    assert seen == dates and len(seen) == 23

    threads: list[int] = []
    cursor = ""
    while True:
        page = queries.thread_page(user, scope, cursor=cursor, limit=4)
        threads += [row.message.thread_id or -row.message.pk for row in page.rows]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    expected = Message.objects.filter(user=user).values("thread_id").distinct().count()
    assert len(threads) == len(set(threads)) == expected

    login(client, user)
    found = client.get(reverse("mail_search") + "?q=single+2").content.decode()
    assert "single 20" in found and "single 22" in found
    assert "single 4" not in found and "topic" not in found


def test_a_message_opened_before_its_body_arrived_asks_for_it_and_shows_loading(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, client: Client
) -> None:
    from posta.mail import signals
    from posta.mailproto.imap.client import close_quietly
    from posta.remote.connect import open_account
    from posta.sync.account_pass import sync_account

    account = setup_account(dovecot, mail_user, settings)
    dovecot.deliver(mail_user, message("late body", body="Arrives later\n"))
    imap = open_account(account)
    try:
        sync_account(imap, account, bodies=False)  # headers only, as early in a first sync
    finally:
        close_quietly(imap)
    msg = Message.objects.get(user=account.user, subject="late body")
    assert msg.body_state == "pending"
    asked: list[list[int]] = []

    def receiver(sender: object, account_id: int, message_ids: list[int], **kw: Any) -> None:
        asked.append(message_ids)

    signals.body_fetch_requested.connect(receiver, dispatch_uid="test-mail-screen")
    try:
        login(client, account.user)
        url = reverse("mail_message", args=[msg.pk])
        pane = client.get(url, HTTP_HX_REQUEST="true").content.decode()
        assert "Loading the message from the server" in pane and "every 2s" in pane
        assert asked == [[msg.pk]]
        client.get(url + "?poll=1", HTTP_HX_REQUEST="true")
        assert asked == [[msg.pk]]  # polling does not ask again
    finally:
        signals.body_fetch_requested.disconnect(dispatch_uid="test-mail-screen")

    sync_account_once(account.pk)
    pane = client.get(url + "?poll=1", HTTP_HX_REQUEST="true").content.decode()
    assert "Loading the message" not in pane and 'class="body-frame"' in pane
    assert "Arrives later" in client.get(reverse("mail_body", args=[msg.pk])).content.decode()


def test_a_forwarded_message_opens_as_a_message(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, client: Client
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    inner = EmailMessage()
    inner["From"] = "Dario <dario@example.test>"
    inner["Subject"] = "The original"
    inner.set_content("<b>original</b> words\n")
    outer = EmailMessage()
    outer["From"] = "Carla <carla@example.test>"
    outer["To"] = "Bob <bob@example.test>"
    outer["Subject"] = "Fwd: The original"
    outer["Message-ID"] = "<fwd@example.test>"
    outer.set_content("see below\n")
    outer.add_attachment(inner)
    dovecot.deliver(mail_user, outer.as_bytes())
    sync_account_once(account.pk)
    msg = Message.objects.get(user=account.user, subject="Fwd: The original")
    login(client, account.user)

    pane = client.get(reverse("mail_message", args=[msg.pk]), HTTP_HX_REQUEST="true")
    assert "Open as a message" in pane.content.decode()
    nested = client.get(
        reverse("mail_message", args=[msg.pk]) + "?nested=2", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "The original" in nested and "dario@example.test" in nested
    body = client.get(reverse("mail_body", args=[msg.pk]) + "?nested=2").content.decode()
    assert "&lt;b&gt;original&lt;/b&gt; words" in body  # plain text, escaped
    download = client.get(reverse("mail_part", args=[msg.pk, "2"]))
    assert download["Content-Disposition"].startswith("attachment;")
    assert b"Subject: The original" in download.content
    # A part that is no message cannot be opened as one.
    assert client.get(reverse("mail_body", args=[msg.pk]) + "?nested=1").status_code == 404


def _links(html: str) -> dict[str, str]:
    """The reader's links by their text."""
    found = re.findall(r'<a class="button[^"]*" href="([^"]+)"[^>]*>([^<]+)</a>', html)
    return {text: href.replace("&amp;", "&") for href, text in found}


def test_reader_links_lead_to_the_editor(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, client: Client
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    dovecot.create_folder(mail_user, "Drafts")
    dovecot.deliver(mail_user, message("quote request"))
    dovecot.deliver(mail_user, message("unfinished", body="half written\n"), folder="Drafts")
    dovecot.deliver(mail_user, message("went out"), folder="Sent")
    sync_account_once(account.pk)
    login(client, account.user)
    msg = Message.objects.get(user=account.user, subject="quote request")

    html = client.get(reverse("mail_message", args=[msg.pk]), HTTP_HX_REQUEST="true")
    links = _links(html.content.decode())
    assert links["Reply all"] == reverse("compose_reply", args=[msg.pk]) + "?all=1"
    assert links["Forward"] == reverse("compose_forward", args=[msg.pk])
    assert links["Forward as attachment"] == reverse("compose_forward", args=[msg.pk]) + "?attach=1"
    assert "Edit draft" not in links and "Send again" not in links
    editor = client.get(links["Reply"])
    assert editor.status_code == 200  # the editor itself: no draft is stored by opening it
    assert 'value="Re: quote request"' in editor.content.decode()

    draft = Message.objects.get(user=account.user, subject="unfinished")
    drafts = Folder.objects.get(account=account, name="Drafts")
    page = client.get(reverse("mail_folder", args=[drafts.pk])).content.decode()
    # A draft in the list opens the editor, not the reader.
    assert f'href="{reverse("compose_draft", args=[draft.pk])}"' in page
    html = client.get(
        reverse("mail_message", args=[draft.pk]) + f"?folder={drafts.pk}", HTTP_HX_REQUEST="true"
    )
    assert _links(html.content.decode())["Edit draft"] == reverse("compose_draft", args=[draft.pk])

    sent = Message.objects.get(user=account.user, subject="went out")
    html = client.get(reverse("mail_message", args=[sent.pk]), HTTP_HX_REQUEST="true")
    assert _links(html.content.decode())["Send again"] == reverse("compose_again", args=[sent.pk])


def test_screen_actions_act_on_the_copy_on_screen_and_empty_spam_for_good(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, client: Client
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    both = message("in inbox and work", msgid="<both.screen@example.test>")
    dovecot.deliver(mail_user, both)
    dovecot.deliver(mail_user, both, folder="Work")
    dovecot.deliver(mail_user, message("junk one"), folder="Junk")
    sync_account_once(account.pk)
    login(client, account.user)
    msg = Message.objects.get(user=account.user, subject="in inbox and work")
    work = Folder.objects.get(account=account, name="Work")
    junk = Folder.objects.get(account=account, name="Junk")
    act = reverse("mail_act")
    hx = {"HTTP_HX_REQUEST": "true"}

    # Archived from the unified inbox: the Work copy stays.
    client.post(act, {"action": "archive", "ids": msg.pk, "scope": "role:inbox"}, **hx)
    actions.run_account_actions(account.pk)
    assert len(dovecot.uids(mail_user, "Archive")) == 1
    assert len(dovecot.uids(mail_user, "Work")) == 1
    assert dovecot.uids(mail_user, "INBOX") == []
    # Deleted from the reader opened in Work: the Archive copy stays.
    client.post(act, {"action": "delete", "ids": msg.pk, "folder": work.pk}, **hx)
    actions.run_account_actions(account.pk)
    assert dovecot.uids(mail_user, "Work") == []
    assert len(dovecot.uids(mail_user, "Trash")) == 1
    assert len(dovecot.uids(mail_user, "Archive")) == 1

    assert client.post(reverse("mail_empty", args=[junk.pk]), **hx).status_code == 204
    actions.run_account_actions(account.pk)
    assert set(RemoteAction.objects.values_list("state", flat=True)) == {"done"}
    assert dovecot.uids(mail_user, "Junk") == []
    assert len(dovecot.uids(mail_user, "Trash")) == 1  # Spam is not moved to Trash
    assert not Location.objects.filter(folder=junk).exists()


def test_always_show_images_from_a_sender_survives_a_new_session(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, counting_server: CountingServer
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    remote = counting_server.url("/pixel.png")
    dovecot.deliver(mail_user, rich_message("newsletter", f'<p>Hi <img src="{remote}"></p>'))
    sync_account_once(account.pk)
    msg = Message.objects.get(user=account.user, subject="newsletter")
    first = login(Client(), account.user)
    reader = first.get(reverse("mail_message", args=[msg.pk]), HTTP_HX_REQUEST="true")
    assert "Always show from carla@example.test" in reader.content.decode()
    assert "/mail/img/" not in first.get(reverse("mail_body", args=[msg.pk])).content.decode()

    allowed = first.post(reverse("mail_allow_images", args=[msg.pk]), HTTP_HX_REQUEST="true")
    assert "Always show from" not in allowed.content.decode()

    later = login(Client(), account.user)  # another browser: a new session
    assert later.session.session_key != first.session.session_key
    reader = later.get(reverse("mail_message", args=[msg.pk]), HTTP_HX_REQUEST="true")
    assert "Show images" not in reader.content.decode()
    assert "/mail/img/" in later.get(reverse("mail_body", args=[msg.pk])).content.decode()


def test_conversation_shows_the_written_subject_a_count_and_plain_text_inline(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, client: Client
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    dovecot.deliver(
        mail_user,
        message(
            "Preventivo Marzo",
            msgid="<root.conv@example.test>",
            body="Prices at https://shop.example.test/list <b>now</b>\n",
            date="Mon, 02 Mar 2026 10:00:00 +0100",
        ),
    )
    reply = rich_message("Re: Preventivo Marzo", "<p>html <b>reply</b></p>")
    reply = reply.replace(
        b"Message-ID:", b"In-Reply-To: <root.conv@example.test>\nMessage-ID:", 1
    )
    dovecot.deliver(mail_user, reply)
    sync_account_once(account.pk)
    root = Message.objects.get(user=account.user, subject="Preventivo Marzo")
    assert root.thread_id is not None
    assert Message.objects.filter(thread_id=root.thread_id).count() == 2
    login(client, account.user)

    html = client.get(
        reverse("mail_thread", args=[root.thread_id]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert '<h2 class="subject">Preventivo Marzo</h2>' in html
    assert '<p class="thread-count">2 messages</p>' in html
    # The plain text message inline, escaped and linkified; the HTML one framed.
    assert "&lt;b&gt;now&lt;/b&gt;" in html
    assert '<a href="https://shop.example.test/list" target="_blank"' in html
    assert html.count('class="body-frame"') == 1
    assert f'id="frame-{root.pk}"' not in html
