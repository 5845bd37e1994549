"""The image proxy's one outgoing request: a remote image a user chose to see.

Why a web request may fetch this (DESIGN §2 keeps network work out of requests):
the alternative is letting the reader's browser load the image straight from the
sender's server, which tells the sender that, when and where (IP address, browser)
the mail was read, and sends whatever cookies that server set. Fetching it here
instead hides all of that; the fetch is small, bounded in time and size, and
happens only after the user clicked "show images". It is plain HTTP(S) through the
standard library, no mail protocol: the layer rules forbid IMAP/SMTP/POP3 in web
code, not this.

The request is made like an untrusted one, because the URL comes from a stranger:
- the port must be one of the proxy's ports (80 and 443 unless the administrator
  sets POSTA_IMAGE_PROXY_PORTS), so an image URL cannot knock on other services;
- the host is resolved once by `posta.core.netguard.resolve_allowed`, which refuses
  loopback, private, link-local and metadata addresses, and the connection goes to
  that address (pinned: a second DNS answer cannot move it); every redirect is
  checked again, port and address;
- the proxy's allow list is its own (POSTA_IMAGE_PROXY_ALLOWED_HOSTS, empty by
  default), never the mail-host allowances: an administrator who lets users reach
  an on-premise mail server (or 127.0.0.1 in development) has not agreed to let
  every sender's <img> reach the web services on that machine;
- no cookies, no Referer, no credentials in URLs, a fixed User-Agent;
- a deadline, a size cap, and only raster image types are passed on (SVG is a
  document that can carry script; it is refused).
"""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

from posta.core.netguard import GuardError, resolve_allowed

MAX_BYTES = 5 * 1024 * 1024
TIMEOUT = 8.0
MAX_REDIRECTS = 3
# What a path or query keeps as it is when sent (RFC 3986 reserved and unreserved
# characters, and "%" so that an encoded address is not encoded twice).
URL_SAFE = "/?#[]@!$&'()*+,;=:-._~%"
IMAGE_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/avif",
        "image/bmp",
        "image/x-icon",
        "image/vnd.microsoft.icon",
    }
)
USER_AGENT = "Posta image proxy"


class ImageFetchError(Exception):
    """The image could not be fetched or is not one we pass on; `code` says why."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class RemoteImage:
    content_type: str
    data: bytes


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        # The certificate is checked against the host name, not the pinned address.
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ProxyRule:
    """Where the proxy may connect: public addresses on `ports`, and the internal
    ones that `allowed_hosts` covers (netguard syntax: names, "*.suffix",
    addresses, CIDR networks), on `ports` too."""

    allowed_hosts: tuple[str, ...] = ()
    ports: frozenset[int] = frozenset({80, 443})


def fetch_image(url: str, *, rule: ProxyRule) -> RemoteImage:
    """GET `url` (following at most MAX_REDIRECTS redirects) and return the image.

    Raises ImageFetchError for anything else: a port outside `rule.ports`, a refused
    or unknown host, a network failure, a non-200 answer, a type outside
    IMAGE_TYPES, more than MAX_BYTES. Every redirect target is checked like `url`.
    """
    for _hop in range(MAX_REDIRECTS + 1):
        response, connection = _open(url, rule)
        try:
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location") or ""
                if not location:
                    raise ImageFetchError("bad_redirect")
                url = urljoin(url, location)
                continue
            if response.status != 200:
                raise ImageFetchError("http_status")
            ctype = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
            if ctype not in IMAGE_TYPES:
                raise ImageFetchError("not_an_image")
            data = response.read(MAX_BYTES + 1)
            if len(data) > MAX_BYTES:
                raise ImageFetchError("too_large")
            return RemoteImage(ctype, data)
        except (OSError, http.client.HTTPException) as exc:
            raise ImageFetchError("network") from exc
        finally:
            connection.close()
    raise ImageFetchError("too_many_redirects")


def _open(
    url: str, rule: ProxyRule
) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImageFetchError("bad_url")
    if parts.username or parts.password:
        raise ImageFetchError("bad_url")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ImageFetchError("bad_url") from exc
    if port not in rule.ports:
        raise ImageFetchError("port_not_allowed")
    try:
        address = resolve_allowed(parts.hostname, port, allowed=list(rule.allowed_hosts))
    except GuardError as exc:
        raise ImageFetchError(exc.code) from exc
    cls = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    connection = cls(parts.hostname, port, address, TIMEOUT)
    path = _encoded(parts.path) or "/"
    if parts.query:
        path += "?" + _encoded(parts.query)
    try:
        connection.request(
            "GET",
            path,
            headers={"User-Agent": USER_AGENT, "Accept": "image/*", "Accept-Encoding": "identity"},
        )
        response = connection.getresponse()
    except (OSError, http.client.HTTPException) as exc:
        connection.close()
        raise ImageFetchError("network") from exc
    return response, connection


def _encoded(part: str) -> str:
    """A path or query as a browser sends it: spaces, controls and non-ASCII
    percent-encoded (UTF-8), what is already encoded left alone. Mail often names an
    image with a space in it, which http.client would refuse."""
    return quote(part, safe=URL_SAFE)
