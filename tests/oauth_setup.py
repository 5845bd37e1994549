"""Shared set-up of the OAuth2 tests: a mail system whose IMAP (Dovecot's oauth2
passdb) and SMTP (the test server's XOAUTH2) check tokens at the local
authorization server, the custom provider configured as an administrator would,
and OAuth2 accounts signed in through the same services production uses."""

from __future__ import annotations

import html
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from posta.accounts.models import Account, CompanySettings, OAuthProvider
from posta.accounts.oauth import TokenGrant, do_save_provider, do_store_tokens, load_provider
from posta.users.models import User
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.oauth import OAuthServer
from tests.servers.smtp import SmtpServer

CLIENT_ID = "posta"
CLIENT_SECRET = "posta-client-secret"
MAIL_CLIENT = ("mailserver", "mailserver-secret")


@dataclass
class OAuthMail:
    """The three servers of an OAuth2 mail system."""

    oauth: OAuthServer
    dovecot: DovecotServer
    smtp: SmtpServer

    def add_user(self) -> MailUser:
        """A mailbox whose owner can also sign in at the authorization server."""
        user = self.dovecot.add_user()
        self.oauth.add_user(user.name, user.password)
        return user


def introspection_url(oauth: OAuthServer) -> str:
    client_id, secret = MAIL_CLIENT
    return f"http://{client_id}:{secret}@{oauth.host}:{oauth.port}/introspect"


def start_oauth_mail(
    oauth: OAuthServer,
    dovecot_factory: Callable[..., DovecotServer],
    smtp: SmtpServer,
    *,
    redirect_uris: list[str] | None = None,
) -> OAuthMail:
    oauth.add_client(CLIENT_ID, CLIENT_SECRET, redirect_uris or [])
    oauth.add_client(*MAIL_CLIENT)
    dovecot = dovecot_factory(oauth2_introspection_url=introspection_url(oauth))
    smtp.accept_oauth2(f"{oauth.url}/introspect", *MAIL_CLIENT)
    smtp.relay_to_lmtp(dovecot)
    company = CompanySettings.load()
    company.allowed_mail_hosts = "127.0.0.1"
    company.save()
    return OAuthMail(oauth=oauth, dovecot=dovecot, smtp=smtp)


def configure_custom_provider(oauth: OAuthServer, *, name: str = "Example SSO") -> OAuthProvider:
    provider = load_provider(OAuthProvider.Kind.CUSTOM)
    provider.name = name
    provider.client_id = CLIENT_ID
    provider.authorization_endpoint = f"{oauth.url}/authorize"
    provider.token_endpoint = f"{oauth.url}/token"
    provider.revocation_endpoint = f"{oauth.url}/revoke"
    provider.userinfo_endpoint = f"{oauth.url}/userinfo"
    provider.scopes = "openid email offline_access"
    do_save_provider(provider, client_secret=CLIENT_SECRET)
    return provider


def signed_in_account(
    mail: OAuthMail, mail_user: MailUser, *, expires_in: int = 3600
) -> Account:
    """An OAuth2 account of a new CRM user for `mail_user`, holding tokens the
    authorization server issued (as after a sign-in)."""
    configure_custom_provider(mail.oauth)
    user = User.objects.create_user(username=mail_user.name, password="pw-unused-123")
    for name in ("Sent", "Drafts"):
        mail.dovecot.create_folder(mail_user, name)
    account = Account.objects.create(
        user=user,
        preset="custom",
        auth_method=Account.AuthMethod.OAUTH2,
        username=mail_user.name,
        email=mail_user.address,
        description=mail_user.name,
        is_main=True,
        imap_host=mail.dovecot.host,
        imap_port=mail.dovecot.imap_port,
        imap_security="none",
        smtp_host=mail.smtp.host,
        smtp_port=mail.smtp.port,
        smtp_security="none",
        smtp_auth=True,
    )
    issued = mail.oauth.issue(CLIENT_ID, mail_user.name, expires_in=expires_in)
    do_store_tokens(
        account,
        OAuthProvider.Kind.CUSTOM,
        TokenGrant(
            access_token=issued.access_token,
            refresh_token=issued.refresh_token,
            expires_in=expires_in,
            scope="",
        ),
    )
    return account


def consent_over_http(authorize_url: str, name: str, password: str) -> str:
    """What a browser does on the provider's consent page, without one: open the
    page, sign in, allow; returns the redirect back to Posta (code and state)."""
    page = urllib.request.urlopen(authorize_url, timeout=10).read().decode()  # noqa: S310
    form = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page))
    form = {key: html.unescape(value) for key, value in form.items()}
    form.update(username=name, password=password, decision="allow")
    origin = authorize_url.split("/authorize", 1)[0]

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(f"{origin}/authorize", urllib.parse.urlencode(form).encode(), timeout=10)
    except urllib.error.HTTPError as answer:
        if answer.code == 302:
            return str(answer.headers["Location"])
        raise
    raise AssertionError("the provider did not redirect back")
