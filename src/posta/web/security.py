"""Response headers that keep Posta's own pages to themselves, and the client's
address as a proxy in front of Posta reports it.

Content-Security-Policy (CSP Level 3) on every page Posta renders:

    default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self';
    object-src 'none'; frame-src 'self'; base-uri 'none'; form-action 'self';
    frame-ancestors 'none'

The editor's pages asked for by the mail screen's compose panel (`?frame=1`,
posta.web.compose_frame) say `frame-ancestors 'self'` instead, and only they.

No inline script and no inline style: handlers live in static files, htmx is told
not to inject its indicator <style>. A view that serves something else (the body
frame, attachment previews, the print page, the image proxy) sets its own,
stricter policy and this middleware leaves it alone.

Pages that show the rich-text editor get two allowances, granted only where the
editor is rendered (``{% editor_media %}``): a nonce for the editor's
``<script type="importmap">`` (import maps cannot be external files), the hash of
an empty <style> (see EMPTY_STYLE), and ``style-src-attr 'unsafe-inline'`` because
the text the user writes carries its own alignment and colours as style
attributes. No other <style> element and no other script is allowed by that.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

GetResponse = Callable[[HttpRequest], HttpResponse]

CSP_HEADER = "Content-Security-Policy"
# The hash of the empty string: admits an empty <style> element and nothing else.
# The editor (tiptap) injects its rules as <style> unless one is already there;
# posta.js puts an empty one there, and posta.css carries the rules.
EMPTY_STYLE = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


def csp_nonce(request: HttpRequest) -> str:
    """This request's nonce, made on first use; the policy names it only then."""
    nonce: str | None = getattr(request, "posta_csp_nonce", None)
    if nonce is None:
        nonce = secrets.token_urlsafe(18)
        request.posta_csp_nonce = nonce  # type: ignore[attr-defined]
    return nonce


def allow_editor(request: HttpRequest) -> str:
    """Grant the rich-text editor's allowances on this page; returns the nonce."""
    request.posta_csp_editor = True  # type: ignore[attr-defined]
    return csp_nonce(request)


def allow_same_origin_frame(request: HttpRequest) -> None:
    """Let Posta's own pages show this page in a frame (the mail screen's compose
    panel); every other page keeps `frame-ancestors 'none'`."""
    request.posta_csp_frame_self = True  # type: ignore[attr-defined]


def allow_form_action(request: HttpRequest, origins: list[str]) -> None:
    """Let this page's forms lead to `origins` too: a form whose answer redirects
    to a sign-in provider (CSP 3 form-action covers the redirects after a submit)."""
    allowed: list[str] = getattr(request, "posta_csp_form_action", [])
    request.posta_csp_form_action = allowed + [  # type: ignore[attr-defined]
        o for o in origins if o not in allowed and _SOURCE.fullmatch(o)
    ]


# An origin as a CSP source expression: scheme, host, optional port; nothing that
# could end the directive or add another.
_SOURCE = re.compile(r"https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?")


def page_policy(request: HttpRequest) -> str:
    """The policy of one of Posta's own pages, with this request's allowances."""
    nonce: str | None = getattr(request, "posta_csp_nonce", None)
    script = "script-src 'self'" + (f" 'nonce-{nonce}'" if nonce else "")
    style = "style-src 'self'"
    if getattr(request, "posta_csp_editor", False):
        style += f"; style-src-elem 'self' '{EMPTY_STYLE}'; style-src-attr 'unsafe-inline'"
    return "; ".join(
        [
            "default-src 'self'",
            script,
            style,
            "img-src 'self'",
            "font-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            # The reader's body frame: same origin, sandboxed, with a policy of its own.
            "frame-src 'self'",
            "child-src 'self'",
            "worker-src 'none'",
            "base-uri 'none'",
            " ".join(["form-action 'self'", *getattr(request, "posta_csp_form_action", [])]),
            "frame-ancestors 'self'"
            if getattr(request, "posta_csp_frame_self", False)
            else "frame-ancestors 'none'",
        ]
    )


class ContentSecurityPolicyMiddleware:
    """Puts the page policy on every response that has none of its own."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if CSP_HEADER not in response:
            response[CSP_HEADER] = page_policy(request)
        return response


class SecureCookiesMiddleware:
    """Over HTTPS every cookie Posta sets is Secure (RFC 6265 §4.1.2.5), so the
    session and CSRF cookies never travel in clear once a site is on HTTPS, while
    plain HTTP on a developer's machine still works. ``POSTA_SECURE_COOKIES``
    makes them Secure always (Django's SESSION/CSRF_COOKIE_SECURE).

    Sits above the session and CSRF middleware so that it sees their cookies."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.is_secure():
            for morsel in response.cookies.values():
                morsel["secure"] = True
        return response


def _trusted(address: str, networks: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in networks)


def client_address(request: HttpRequest) -> str:
    """The address the request came from.

    X-Forwarded-For is believed only when the connection itself comes from a proxy
    listed in ``POSTA_TRUSTED_PROXIES``: anyone can send that header. Each proxy
    appends the address it saw, so the client is the rightmost entry that is not
    one of our own proxies; everything left of it was written by the client.
    """
    remote = str(request.META.get("REMOTE_ADDR", "") or "")
    proxies: list[str] = settings.POSTA_TRUSTED_PROXIES
    if not proxies or not _trusted(remote, proxies):
        return remote
    forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR", "") or "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote
    return hops[0] if hops else remote
