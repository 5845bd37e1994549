"""The authorization request Posta sends to each provider (RFC 6749 §4.1.1 with
PKCE, RFC 7636 §4.3), and the user name read from an ID token."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from posta.accounts.models import OAuthProvider
from posta.accounts.oauth import load_provider, signin_origins
from posta.remote import oauth

pytestmark = pytest.mark.django_db

VERIFIER = "v" * 64


def _query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_google_asks_for_mail_offline_with_an_s256_challenge() -> None:
    google = load_provider(OAuthProvider.Kind.GOOGLE)
    google.client_id = "posta.apps.googleusercontent.com"
    url = oauth.authorization_url(
        google, redirect_uri="https://posta.example/cb", state="s1", code_verifier=VERIFIER
    )
    assert url.startswith("https://accounts.google.com/o/oauth2/v2/auth?")
    query = _query(url)
    assert "https://mail.google.com/" in query["scope"].split()
    assert query["code_challenge"] == _s256(VERIFIER)
    assert query["code_challenge_method"] == "S256"
    assert VERIFIER not in url  # only the challenge travels
    assert (query["access_type"], query["prompt"]) == ("offline", "consent")
    assert (query["state"], query["response_type"]) == ("s1", "code")


def test_microsoft_fills_in_the_tenant_and_asks_for_imap_and_smtp() -> None:
    microsoft = load_provider(OAuthProvider.Kind.MICROSOFT)
    microsoft.client_id = "11111111-2222"
    microsoft.tenant = "contoso.onmicrosoft.com"
    url = oauth.authorization_url(
        microsoft, redirect_uri="https://posta.example/cb", state="s", code_verifier=VERIFIER
    )
    assert url.startswith(
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize?"
    )
    scopes = _query(url)["scope"].split()
    assert {
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "https://outlook.office.com/SMTP.Send",
        "offline_access",
    } <= set(scopes)


def test_the_user_name_comes_from_the_id_token() -> None:
    def part(data: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    token = ".".join([part({"alg": "RS256"}), part({"preferred_username": "a@contoso.com"}), "sig"])
    assert oauth._id_token_username(token) == "a@contoso.com"
    assert oauth._id_token_username("not a token") == ""


def test_only_configured_providers_open_the_form_action() -> None:
    assert signin_origins() == []
    custom = load_provider(OAuthProvider.Kind.CUSTOM)
    custom.client_id = "posta"
    custom.authorization_endpoint = "https://sso.example.test:8443/realms/x/auth"
    custom.token_endpoint = "https://sso.example.test:8443/realms/x/token"
    custom.save()
    assert signin_origins() == ["https://sso.example.test:8443"]


def test_a_save_goes_through_the_provider_unless_signed_in_with_the_right_one() -> None:
    from posta.accounts.models import Account, OAuthToken
    from posta.accounts.oauth import signin_needed
    from posta.users.models import User

    user = User.objects.create_user("s", "s@example.test", "pw-12345678")
    stored = Account.objects.create(
        user=user, username="s", email="s@example.test", description="s",
        imap_host="imap.example.test", preset="custom", auth_method="oauth2",
    )
    edited = Account.objects.get(pk=stored.pk)
    assert signin_needed(edited, stored)  # not signed in yet
    assert signin_needed(Account(auth_method="oauth2"), None)  # a new account
    OAuthToken.objects.create(account=stored, provider="custom")
    assert not signin_needed(edited, stored)
    edited.preset = "gmail"  # now Google's: the custom provider's token will not do
    assert signin_needed(edited, stored)
    edited.auth_method = "password"
    assert not signin_needed(edited, stored)
