"""The account wizard's search for servers, as Thunderbird does it: from a name, an
address and a password to working IMAP and SMTP settings.

Where the settings can come from, in the order they are tried:

1. the administrator's servers whose IMAP host is in the address's domain;
2. the presets whose providers own the domain (gmail.com, outlook.com, ...);
3. what the network says (posta.remote.discovery, registered here by
   RemoteConfig.ready(), since this app may open no connection): Mozilla's ISPDB
   format at `autoconfig.<domain>` and `<domain>/.well-known/autoconfig`, RFC 6186
   SRV records, and the presets of the provider the domain's MX points at;
4. the usual names, `imap.<domain>` and `smtp.<domain>`.

The first few distinct candidates are tried with the account form's own connection
test, and the first that logs in to both servers wins. What was found, working or
not, opens in the full form ("Edit settings"), so nothing is a dead end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.utils.translation import gettext_lazy as _

from posta.accounts.errors import connection_error_message
from posta.accounts.models import Account, CompanySettings, MailServer
from posta.accounts.presets import CUSTOM, PRESETS, SSL, STARTTLS
from posta.accounts.services import run_connection_probe
from posta.core.errors import PostaError
from posta.users.models import User

MAX_TRIED = 3  # each try may wait for a server's timeout

# Providers that own their customers' domains.
PRESET_DOMAINS = {
    "gmail.com": "gmail", "googlemail.com": "gmail",
    "outlook.com": "office365", "hotmail.com": "office365", "live.com": "office365",
    "hotmail.it": "office365", "outlook.it": "office365", "live.it": "office365",
    "msn.com": "office365",
    "yahoo.com": "yahoo", "yahoo.it": "yahoo", "ymail.com": "yahoo",
    "aruba.it": "aruba",
    "pec.it": "pec_aruba",
    "legalmail.it": "pec_legalmail",
}  # fmt: skip
# The provider behind a domain's MX host (a company domain hosted by Google, ...).
PRESET_MX_SUFFIXES = {
    ".google.com": "gmail", ".googlemail.com": "gmail",
    ".outlook.com": "office365",
    ".yahoodns.net": "yahoo",
    ".aruba.it": "aruba",
}  # fmt: skip


@dataclass(frozen=True)
class ServerSettings:
    """One candidate: the servers, and which account type of the form they are."""

    source: str  # "server", "preset", "autoconfig", "srv", "mx", "guess"
    account_type: str  # a preset code, "server:<id>" or "custom"
    imap_host: str
    imap_port: int
    imap_security: str
    smtp_host: str
    smtp_port: int
    smtp_security: str
    username: str = ""  # empty: the address

    @property
    def key(self) -> tuple[str, int, str, int]:
        return (self.imap_host.lower(), self.imap_port, self.smtp_host.lower(), self.smtp_port)


@dataclass
class Tried:
    settings: ServerSettings
    errors: dict[str, str] = field(default_factory=dict)  # "imap"/"smtp" -> sentence

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class Found:
    """The wizard's answer: what was tried, in order; `best` is what opens."""

    tried: list[Tried]

    @property
    def working(self) -> Tried | None:
        return next((t for t in self.tried if t.ok), None)

    @property
    def best(self) -> Tried | None:
        return self.working or (self.tried[0] if self.tried else None)


# The network part: `finder(address, *, allowed) -> list[ServerSettings]`.
_server_finder: list[Callable[..., list[ServerSettings]]] = []


def register_server_finder(finder: Callable[..., list[ServerSettings]]) -> None:
    """Make `finder` the network search of `check_find_servers`."""
    _server_finder[:] = [finder]


def _domain_of(address: str) -> str:
    local, _at, domain = address.strip().rpartition("@")
    domain = domain.strip().lower().rstrip(".")
    if not local or not domain or "." not in domain or any(c in domain for c in "/\\ :?#@"):
        raise PostaError(
            "bad_address", _("Enter an email address such as name@example.com."), field="email"
        )
    return domain


def _from_preset(code: str, source: str) -> ServerSettings:
    p = PRESETS[code]
    return ServerSettings(source, code, p.imap_host, p.imap_port, p.imap_security,
                          p.smtp_host, p.smtp_port, p.smtp_security)  # fmt: skip


def preset_for_mx(mx_host: str) -> str | None:
    """The preset of the provider an MX host belongs to, if Posta knows it."""
    host = "." + mx_host.lower().rstrip(".")
    return next((code for suffix, code in PRESET_MX_SUFFIXES.items() if host.endswith(suffix)),
                None)  # fmt: skip


def _local_candidates(domain: str) -> list[ServerSettings]:
    found = [
        ServerSettings("server", f"server:{s.pk}", s.imap_host, s.imap_port, s.imap_security,
                       s.smtp_host, s.smtp_port, s.smtp_security)  # fmt: skip
        for s in MailServer.objects.all()
        if s.imap_host.lower() == domain or s.imap_host.lower().endswith("." + domain)
    ]
    if domain in PRESET_DOMAINS:
        found.append(_from_preset(PRESET_DOMAINS[domain], "preset"))
    return found


def _guess(domain: str) -> ServerSettings:
    return ServerSettings("guess", CUSTOM, f"imap.{domain}", 993, SSL, f"smtp.{domain}", 587,
                          STARTTLS)  # fmt: skip


def candidates(address: str) -> list[ServerSettings]:
    """Every candidate for `address`, best first, each servers' pair once."""
    domain = _domain_of(address)
    found = _local_candidates(domain)
    if not found and _server_finder:
        allowed = CompanySettings.load().allowed_hosts_list()
        found = list(_server_finder[0](address, allowed=allowed))
    found.append(_guess(domain))
    unique: dict[tuple[str, int, str, int], ServerSettings] = {}
    for c in found:
        unique.setdefault(c.key, c)
    return list(unique.values())


def _try(user: User, settings: ServerSettings, address: str, password: str) -> Tried:
    account = Account(
        user=user, username=settings.username or address, email=address,
        preset=settings.account_type if settings.account_type in PRESETS else CUSTOM,
        imap_host=settings.imap_host, imap_port=settings.imap_port,
        imap_security=settings.imap_security, smtp_custom=True,
        smtp_host=settings.smtp_host, smtp_port=settings.smtp_port,
        smtp_security=settings.smtp_security, smtp_auth=True,
    )  # fmt: skip
    result = run_connection_probe(account, password, password)
    errors = {}
    for key, failure, host in (("imap", result.imap, settings.imap_host),
                               ("smtp", result.smtp, settings.smtp_host)):  # fmt: skip
        if failure is not None:
            errors[key] = connection_error_message(
                failure.code, protocol=failure.protocol, host=host, detail=failure.detail
            )
    return Tried(settings, errors)


def check_find_servers(user: User, *, address: str, password: str) -> Found:
    """Find and try the servers of `address` (PostaError for an address that is not
    one). Stops at the first candidate that works; tries at most MAX_TRIED."""
    if not password:
        raise PostaError("no_password", _("Enter the password."), field="password")
    tried: list[Tried] = []
    for settings in candidates(address)[:MAX_TRIED]:
        attempt = _try(user, settings, address.strip(), password)
        tried.append(attempt)
        if attempt.ok:
            break
    return Found(tried)

