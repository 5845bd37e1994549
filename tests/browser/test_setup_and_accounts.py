"""From a new install to a working account, in Chromium (issue: Posta runs)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from posta.accounts.models import Account, Folder
from posta.users.models import User
from posta.web.middleware import SetupMiddleware
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp import SmtpServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN_PASSWORD = "Amministra-2026!"
USER_PASSWORD = "Utente-Sicuro-77"


def log_in(page: Page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")


def test_setup_admin_user_account_folders_and_layout(
    page: Page, live_server: object, dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    base = str(live_server)
    SetupMiddleware.set_ready(False)  # a new install: no administrator yet
    mail_user = dovecot.add_user()
    for name in ("Sent", "Drafts", "Trash", "Junk", "Archivio"):
        dovecot.create_folder(mail_user, name)
    smtp_server.require_auth(mail_user.name, mail_user.password)

    # The first visit leads to the setup page, which creates the administrator.
    page.goto(base + "/")
    expect(page).to_have_url(re.compile(r"/setup/$"))
    page.fill("#id_username", "admin")
    page.fill("#id_password1", ADMIN_PASSWORD)
    page.fill("#id_password2", ADMIN_PASSWORD)
    page.fill("#id_company_name", "ACME Srl")
    page.click("button[type=submit]")
    expect(page.get_by_role("heading", name="New account")).to_be_visible()
    assert User.objects.get(username="admin").is_superuser

    # The administrator allows the on-premise server and creates a user.
    page.goto(base + "/manage/company/")
    page.fill("#id_allowed_mail_hosts", "127.0.0.1")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Company settings saved.")).to_be_visible()
    page.goto(base + "/manage/users/new/")
    page.fill("#id_username", "mario")
    page.fill("#id_first_name", "Mario")
    page.fill("#id_password1", USER_PASSWORD)
    page.fill("#id_password2", USER_PASSWORD)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("link", name="mario")).to_be_visible()
    page.get_by_role("button", name="Log out").click()

    # The user adds a Custom account against the test Dovecot and SMTP server.
    log_in(page, base, "mario", USER_PASSWORD)
    page.goto(base + "/settings/accounts/new/")
    page.select_option("#id_account_type", "gmail")
    expect(page.locator("#id_imap_host")).to_have_value("imap.gmail.com")
    expect(page.locator("#id_imap_host")).to_have_attribute("readonly", "")
    page.select_option("#id_account_type", "custom")
    expect(page.locator("#id_imap_host")).not_to_have_attribute("readonly", "")
    page.fill("#id_username", mail_user.name)
    page.fill("#id_password", mail_user.password)
    page.fill("#id_imap_host", "127.0.0.1")
    page.fill("#id_imap_port", str(dovecot.imap_port))
    page.select_option("#id_imap_security", "none")
    page.fill("#id_smtp_host", "127.0.0.1")
    page.fill("#id_smtp_port", str(smtp_server.port))
    page.select_option("#id_smtp_security", "none")
    page.get_by_role("button", name="Save and test").click()

    # Saved and connected: the Folders tab lists the server's folders with roles.
    expect(page.get_by_text("Account saved and connected.")).to_be_visible()
    folder_list = page.locator("#folder-list")
    expect(folder_list.locator("li[data-name='Sent']")).to_contain_text("Sent")
    expect(folder_list.locator("li[data-name='Junk'] .badge")).to_have_text("Spam")
    expect(page.locator("#id_trash")).to_have_value(
        str(Folder.objects.get(account__username=mail_user.name, name="Trash").pk)
    )
    account = Account.objects.get(username=mail_user.name)
    assert account.is_main and account.email == mail_user.name

    # The user maps Archive by hand.
    archive = Folder.objects.get(account=account, name="Archivio")
    page.select_option("#id_archive", str(archive.pk))
    page.locator("#roles-form").get_by_role("button", name="Save").click()
    expect(page.get_by_text("Folder roles saved.")).to_be_visible()
    expect(folder_list.locator("li[data-name='Archivio'] .badge")).to_have_text("Archive")
    archive.refresh_from_db()
    assert archive.role == "archive" and archive.role_set_by_user

    # Layout switches are on by default and stored when changed.
    page.get_by_role("link", name="Layout").click()
    expect(page.locator("#id_thread_view")).to_be_checked()
    page.uncheck("#id_thread_view")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Layout saved.")).to_be_visible()
    mario = User.objects.get(username="mario")
    assert (mario.show_preview, mario.thread_view, mario.merge_folders) == (True, False, True)


def test_wrong_password_is_explained_and_nothing_is_saved(
    page: Page,
    live_server: object,
    dovecot: DovecotServer,
    smtp_server: SmtpServer,
    django_user_model: type[User],
) -> None:
    base = str(live_server)
    django_user_model.objects.create_superuser("root", "root@example.test", ADMIN_PASSWORD)
    from posta.accounts.models import CompanySettings

    CompanySettings.objects.update_or_create(pk=1, defaults={"allowed_mail_hosts": "127.0.0.1"})
    mail_user = dovecot.add_user()
    log_in(page, base, "root", ADMIN_PASSWORD)
    page.goto(base + "/settings/accounts/new/")
    page.fill("#id_username", mail_user.name)
    page.fill("#id_password", "not-the-password")
    page.fill("#id_imap_host", "127.0.0.1")
    page.fill("#id_imap_port", str(dovecot.imap_port))
    page.select_option("#id_imap_security", "none")
    page.fill("#id_smtp_host", "127.0.0.1")
    page.fill("#id_smtp_port", str(smtp_server.port))
    page.select_option("#id_smtp_security", "none")
    page.uncheck("#id_smtp_auth")
    page.get_by_role("button", name="Save and test").click()
    expect(page.locator("#imap-test-error")).to_contain_text("refused the user name or password")
    assert not Account.objects.exists()
    # The password typed comes back only into this form's own input, for the retry.
    expect(page.locator("#id_password")).to_have_value("not-the-password")
    page.goto(base + "/settings/accounts/")
    assert "not-the-password" not in page.content()
