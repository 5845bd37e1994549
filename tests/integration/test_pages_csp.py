"""Every URL of the application answers with a Content-Security-Policy: Posta's own
pages with the strict page policy, what comes out of a message with a sandbox."""

from __future__ import annotations

import re
from email.message import EmailMessage
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from posta.accounts.models import Account, Folder, MailServer
from posta.crm import importing
from posta.crm import services as crm
from posta.crm.models import Contact
from posta.mail import outbox
from posta.mail.models import Message
from posta.rules import filters, scan
from posta.shares import comments
from posta.shares import services as shares
from posta.sync.account_pass import sync_account_once
from posta.users.models import User
from tests.integration.pop3_setup import make_source
from tests.integration.test_mail_screen import PNG, rich_message, setup_account
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)

PAGE_DIRECTIVES = [
    "default-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "frame-src 'self'",
]


def directives(policy: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            found[words[0]] = words[1:]
    return found


def assert_page_policy(policy: str, url: str) -> None:
    for directive in PAGE_DIRECTIVES:
        assert directive in policy, (url, policy)
    parsed = directives(policy)
    script = parsed.get("script-src", [])
    assert "'self'" in script, (url, policy)
    assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "data:"} & set(script), (url, policy)
    assert "'unsafe-inline'" not in parsed.get("style-src", []), (url, policy)


def walk(patterns: list[Any], prefix: str = "") -> list[tuple[str, URLPattern]]:
    """(route, pattern) for every URL pattern, includes followed."""
    found: list[tuple[str, URLPattern]] = []
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found += walk(entry.url_patterns, route)
        else:
            found.append((route, entry))
    return found


def image_message() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Carla <carla@example.test>"
    msg["To"] = "Bob <bob@example.test>"
    msg["Subject"] = "a picture"
    msg["Message-ID"] = "<a.picture@example.test>"
    msg.set_content("see the picture\n")
    msg.add_attachment(PNG, maintype="image", subtype="png", filename="pic.png")
    return msg.as_bytes()


@pytest.fixture
def world(dovecot: DovecotServer, mail_user: MailUser, settings: Any) -> dict[str, Any]:
    """An administrator with a synced account, mail with attachments, a draft with an
    attachment, a mail server: something behind every URL parameter."""
    account = setup_account(dovecot, mail_user, settings)
    user = account.user
    user.is_staff = True
    user.save()
    dovecot.deliver(mail_user, rich_message("rich one", "<p>Hello <b>there</b></p>"))
    dovecot.deliver(mail_user, image_message())
    sync_account_once(account.pk)
    rich = Message.objects.get(user=user, subject="rich one")
    picture = Message.objects.get(user=user, subject="a picture")
    draft = outbox.do_new_draft(user, account=account)
    attachment = outbox.check_add_attachment(
        user, draft, filename="notes.txt", content_type="text/plain", data=b"notes"
    )
    server = MailServer.objects.create(
        name="Office", imap_host="mail.example.test", smtp_host="mail.example.test"
    )
    inbox = Folder.objects.get(account=account, role="inbox")
    rule = filters.check_save_rule(user, None, filters.RuleData(
        name="Acme", conditions=[{"field": "from", "op": "contains", "value": "@acme.it"}],
        actions=[{"kind": "move", "folder": str(inbox.pk)}],
    ))
    job = scan.do_start_scan(user, inbox.pk)
    pop_user = dovecot.add_user()
    pop3_source = make_source(account, host=dovecot.host, port=dovecot.pop3_port,
                              username=pop_user.name, password=pop_user.password)
    assert rich.thread_id is not None
    record = crm.do_save_record(
        Contact(owner=user, first_name="Ada"), emails=[rich.from_email]
    )
    colleague = User.objects.create_user("colleague", password="pw-unused-123")
    shared = shares.do_share(user, rich, people=[colleague], access="reply")
    comment = comments.check_comment(shares.access_share(user, shared.pk), "See https://x.test")
    return {
        "account": account,
        "rich": rich,
        "picture": picture,
        "values": {
            "message_id": rich.pk,
            "part_id": "2",
            "folder_id": inbox.pk,
            "role": "inbox",
            "name": "flagged",
            "thread_id": rich.thread_id,
            "user_id": user.pk,
            "account_id": account.pk,
            "server_id": server.pk,
            "source_id": pop3_source.pk,
            "outgoing_id": draft.pk,
            "attachment_id": attachment.pk,
            "action": "cancel",
            "rule_id": rule.pk,
            "job_id": job.pk,
            "record_kind": "contact",
            "record_id": record.pk,
            "import_id": importing.check_start_import(
                user, "contact", "people.csv", b"Name,Email\nBea,bea@example.test\n"
            ).pk,
            "share_id": shared.pk,
            "comment_id": comment.comment.pk,
            "kind": "custom",
        },
        "share": shared,
        "colleague": colleague,
    }


def fill(route: str, values: dict[str, Any]) -> str:
    def value(match: re.Match[str]) -> str:
        return str(values[match.group(2)])

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", value, route)


# Views that serve something other than a page of Posta's (mail content, downloads,
# the image proxy) and set a stricter policy of their own.
OWN_POLICY = {
    "mail_body", "mail_part", "mail_zip", "mail_eml", "mail_print", "mail_image", "mail_image_root",
    "share_body", "share_part",
}


def test_every_url_answers_with_a_content_security_policy(
    world: dict[str, Any], client: Client
) -> None:
    account: Account = world["account"]
    client.force_login(account.user)
    routes = walk(get_resolver().url_patterns)
    assert len(routes) > 40
    seen_pages = 0
    for route, pattern in routes:
        if pattern.name in {"logout", "set_language"}:
            continue  # POST-only actions of their own, checked below
        url = fill(route, world["values"])
        for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
            response = client.get(url, **headers)
            policy = response.get("Content-Security-Policy", "")
            assert policy, (url, response.status_code)
            if pattern.name in OWN_POLICY and response.status_code == 200:
                assert "default-src 'none'" in policy, (url, policy)
                assert "'self'" not in directives(policy).get("script-src", []), (url, policy)
                # A document may be same-origin (for the page to measure it) or run
                # script, never both: together they would let it lift its sandbox.
                sandbox = directives(policy).get("sandbox", [])
                both = {"allow-same-origin", "allow-scripts"} <= set(sandbox)
                assert not both, (url, policy)
            else:
                assert_page_policy(policy, url)
                seen_pages += response.status_code == 200
    assert seen_pages > 20
    # Redirects, errors and the logout page carry it too.
    assert_page_policy(client.get("/no/such/page/")["Content-Security-Policy"], "404")
    assert_page_policy(client.post(reverse("logout"))["Content-Security-Policy"], "logout")


def test_pages_have_no_inline_script_or_style_attribute(
    world: dict[str, Any], client: Client
) -> None:
    account: Account = world["account"]
    client.force_login(account.user)
    rich: Message = world["rich"]
    urls = [
        reverse("mail_index"),
        reverse("mail_folder", args=[world["values"]["folder_id"]]),
        reverse("mail_role", args=["inbox"]),
        reverse("mail_message", args=[rich.pk]),
        reverse("mail_thread", args=[rich.thread_id]),
        reverse("accounts"),
        reverse("account_edit", args=[account.pk]),
        reverse("account_folders", args=[account.pk]),
        reverse("compose_edit", args=[world["values"]["outgoing_id"]]),
        reverse("admin_company"),
        reverse("admin_users"),
        reverse("admin_signin"),
        reverse("admin_signin_edit", args=["microsoft"]),
        reverse("account_new"),
        reverse("profile"),
        reverse("crm_list", args=["contact"]),
        reverse("crm_new", args=["organization"]),
        reverse("crm_record", args=["contact", world["values"]["record_id"]]),
        reverse("crm_link_existing", args=["contact", world["values"]["record_id"]]),
        reverse("crm_panel", args=[rich.pk]),
        reverse("crm_admin"),
        reverse("crm_prefs"),
        reverse("mail_special", args=["imported"]),
        reverse("crm_import", args=["contact"]),
        reverse("crm_import_job", args=[world["values"]["import_id"]]),
        reverse("share_new", args=[world["picture"].pk]),
        reverse("share_people", args=[world["share"].pk]),
        reverse("share_settings"),
        reverse("mail_special", args=["shared"]) + f"?share={world['share'].pk}",
        reverse("autoreply"),
        reverse("pop3_sources"),
        reverse("pop3_new"),
        reverse("pop3_edit", args=[world["values"]["source_id"]]),
    ]
    inline_handler = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
    for url in urls:
        html = client.get(url).content.decode()
        assert not inline_handler.search(html), url
        assert " style=" not in html, url
        assert "hx-on" not in html, url
        for script in re.findall(r"<script\b[^>]*>", html):
            # External files, the JSON data blocks, and the editor's nonce'd import map.
            assert "src=" in script or 'type="application/json"' in script or (
                'type="importmap"' in script and "nonce=" in script
            ), (url, script)
    client.force_login(world["colleague"])
    html = client.get(reverse("mail_special", args=["shared"]) + f"?share={world['share'].pk}")
    page = html.content.decode()
    assert "Hello" in page or "rich one" in page
    assert not inline_handler.search(page) and " style=" not in page
    client.logout()
    login = client.get(reverse("login")).content.decode()
    assert not inline_handler.search(login)
    assert "data-autosubmit" in login


def test_editor_pages_name_the_import_map_nonce_and_only_they_allow_style_attributes(
    world: dict[str, Any], client: Client
) -> None:
    account: Account = world["account"]
    client.force_login(account.user)
    editor = client.get(reverse("compose_edit", args=[world["values"]["outgoing_id"]]))
    nonce = re.search(r'<script type="importmap" nonce="([^"]+)"', editor.content.decode())
    assert nonce is not None
    policy = directives(editor["Content-Security-Policy"])
    assert f"'nonce-{nonce.group(1)}'" in policy["script-src"]
    assert policy["style-src-attr"] == ["'unsafe-inline'"]
    # An empty <style> (the editor's placeholder) and no other inline <style>.
    empty = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
    assert policy["style-src-elem"] == ["'self'", empty]
    assert "'unsafe-inline'" not in policy["style-src"]
    again = client.get(reverse("compose_edit", args=[world["values"]["outgoing_id"]]))
    assert f"'nonce-{nonce.group(1)}'" not in again["Content-Security-Policy"]
    mail = directives(client.get(reverse("mail_index"))["Content-Security-Policy"])
    assert mail["script-src"] == ["'self'"]
    assert "style-src-attr" not in mail


def test_previews_opened_directly_are_sandboxed_or_closed(
    world: dict[str, Any], client: Client
) -> None:
    client.force_login(world["account"].user)
    picture: Message = world["picture"]
    image = client.get(reverse("mail_part", args=[picture.pk, "2"]) + "?preview=1")
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert image["Content-Disposition"].startswith("inline;")
    policy = directives(image["Content-Security-Policy"])
    assert "sandbox" in policy and policy["default-src"] == ["'none'"]
    pdf = client.get(reverse("mail_part", args=[world["rich"].pk, "2"]) + "?preview=1")
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf["Content-Disposition"].startswith("inline;")
    policy = directives(pdf["Content-Security-Policy"])
    assert policy["default-src"] == ["'none'"] and "script-src" not in policy
    # Without ?preview=1 both are downloads.
    download = client.get(reverse("mail_part", args=[picture.pk, "2"]))
    assert download["Content-Disposition"].startswith("attachment;")


def test_the_setup_page_of_a_new_install_has_the_policy(client: Client) -> None:
    assert not User.objects.filter(is_superuser=True).exists()
    from posta.web.middleware import SetupMiddleware

    SetupMiddleware.set_ready(False)
    response = client.get(reverse("setup"))
    assert response.status_code == 200
    assert_page_policy(response["Content-Security-Policy"], "setup")
