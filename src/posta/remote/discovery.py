"""The network search of the account wizard (posta.accounts.discovery): what a
domain publishes about its mail servers.

- Mozilla's autoconfig (the ISPDB format, `clientConfig` version 1.1), asked of
  `https://autoconfig.<domain>/mail/config-v1.1.xml?emailaddress=<address>`, then
  `https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml`, then the first
  over plain HTTP as Thunderbird does (the answer is only a suggestion: the
  settings are then tried with the password over TLS);
- RFC 6186 SRV records: `_imaps._tcp` (implicit TLS) before `_imap._tcp`
  (STARTTLS), and `_submissions._tcp` (RFC 8314) before `_submission._tcp`; a
  target of "." means "no such service here" (RFC 6186 §3.4);
- the MX records, whose host names tell a domain hosted by a provider Posta has a
  preset for.

Every host is resolved through the address guard (posta.core.netguard) with the
company's allow list before a connection, and the connection goes to the address
it allowed. `Network` is the one edge with DNS and sockets; tests hand in their
own (`NETWORK`), so no test asks real DNS. Nothing here raises for what the
network does: a source that does not answer gives no candidates.
"""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import quote

from posta.accounts.discovery import ServerSettings, preset_for_mx
from posta.accounts.presets import CUSTOM, NONE, PRESETS, SSL, STARTTLS
from posta.core import netguard

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5.0
MAX_BODY = 128 * 1024


@dataclass(frozen=True)
class Srv:
    priority: int
    weight: int
    port: int
    target: str


class Network:
    """DNS and HTTP as the wizard needs them; a test replaces it (module docstring)."""

    ports = {"https": 443, "http": 80}

    def addresses(self, host: str, port: int) -> list[str]:
        """The host's addresses, as the resolver gives them (the guard judges them)."""
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(i[4][0]) for i in infos))

    def mx(self, domain: str) -> list[str]:
        import dns.resolver

        answer = dns.resolver.resolve(domain, "MX", lifetime=TIMEOUT_SECONDS)
        records = sorted(answer, key=lambda r: r.preference)
        return [str(r.exchange).rstrip(".") for r in records]

    def srv(self, name: str) -> list[Srv]:
        import dns.resolver

        answer = dns.resolver.resolve(name, "SRV", lifetime=TIMEOUT_SECONDS)
        return [
            Srv(r.priority, r.weight, r.port, str(r.target).rstrip("."))
            for r in answer
        ]


NETWORK = Network()


def _guarded(network: Network, host: str, port: int, allowed: list[str]) -> str:
    """The first address of `host` the guard allows; GuardError otherwise."""
    numeric = netguard.parse_numeric_host(host)
    found = [str(numeric)] if numeric is not None else network.addresses(host, port)
    if not found:
        raise netguard.HostNotFound(f"{host}: no address")
    for address in found:  # every address must pass (netguard.resolve_allowed)
        netguard.resolve_allowed(address, port, allowed=allowed)
    return found[0]


def _get(network: Network, scheme: str, host: str, path: str, allowed: list[str]) -> bytes:
    port = network.ports[scheme]
    address = _guarded(network, host, port, allowed)
    sock = socket.create_connection((address, port), timeout=TIMEOUT_SECONDS)
    try:
        if scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT_SECONDS)
        conn.sock = sock
        conn.request("GET", path, headers={"Host": host, "Accept": "application/xml"})
        response = conn.getresponse()
        if response.status != 200:
            return b""
        return response.read(MAX_BODY + 1)
    finally:
        sock.close()


_SECURITY = {"SSL": SSL, "STARTTLS": STARTTLS, "plain": NONE}


def _server(config: ET.Element, kind: str, address: str) -> tuple[str, int, str, str] | None:
    for server in config.iter(f"{'incoming' if kind == 'imap' else 'outgoing'}Server"):
        if server.get("type") != kind:
            continue
        host = (server.findtext("hostname") or "").strip()
        port = (server.findtext("port") or "").strip()
        security = _SECURITY.get((server.findtext("socketType") or "").strip())
        if not host or not port.isdigit() or security is None:
            continue
        user = (server.findtext("username") or "").strip()
        local = address.partition("@")[0]
        user = user.replace("%EMAILADDRESS%", address).replace("%EMAILLOCALPART%", local)
        return host, int(port), security, user
    return None


def parse_autoconfig(body: bytes, address: str) -> ServerSettings | None:
    """The first IMAP and SMTP servers of an ISPDB `clientConfig` document; None
    for anything else (no DTDs or entities: they are refused, not expanded)."""
    if not body or len(body) > MAX_BODY or b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        return None
    try:
        root = ET.fromstring(body)  # noqa: S314 - capped, DTD-free (checked above)
    except ET.ParseError:
        return None
    provider = root.find("emailProvider")
    if root.tag != "clientConfig" or provider is None:
        return None
    imap = _server(provider, "imap", address)
    smtp = _server(provider, "smtp", address)
    if imap is None or smtp is None:
        return None
    return ServerSettings(
        "autoconfig", CUSTOM, imap[0], imap[1], imap[2], smtp[0], smtp[1], smtp[2],
        username=imap[3] if imap[3] != address else "",
    )  # fmt: skip


def from_autoconfig(
    address: str, domain: str, *, allowed: list[str], network: Network
) -> ServerSettings | None:
    query = quote(address, safe="@")
    for scheme, host, path in (
        ("https", f"autoconfig.{domain}", f"/mail/config-v1.1.xml?emailaddress={query}"),
        ("https", domain, "/.well-known/autoconfig/mail/config-v1.1.xml"),
        ("http", f"autoconfig.{domain}", f"/mail/config-v1.1.xml?emailaddress={query}"),
    ):
        try:
            found = parse_autoconfig(_get(network, scheme, host, path, allowed), address)
        except (OSError, http.client.HTTPException, netguard.GuardError) as exc:
            log.info("autoconfig %s://%s: %s", scheme, host, exc)
            continue
        if found is not None:
            return found
    return None


def _best_srv(network: Network, names: list[tuple[str, str]]) -> tuple[str, int, str] | None:
    for name, security in names:
        try:
            records = network.srv(name)
        except Exception as exc:  # noqa: BLE001 - any DNS failure means "none here"
            log.info("SRV %s: %s", name, exc)
            continue
        records = sorted(records, key=lambda r: (r.priority, -r.weight))
        if records and records[0].target not in ("", "."):
            return records[0].target, records[0].port, security
    return None


def from_srv(domain: str, *, network: Network) -> ServerSettings | None:
    imap = _best_srv(network, [(f"_imaps._tcp.{domain}", SSL), (f"_imap._tcp.{domain}", STARTTLS)])
    smtp = _best_srv(network, [(f"_submissions._tcp.{domain}", SSL),
                               (f"_submission._tcp.{domain}", STARTTLS)])  # fmt: skip
    if imap is None or smtp is None:
        return None
    return ServerSettings("srv", CUSTOM, imap[0], imap[1], imap[2], smtp[0], smtp[1], smtp[2])


def from_mx(domain: str, *, network: Network) -> ServerSettings | None:
    try:
        hosts = network.mx(domain)
    except Exception as exc:  # noqa: BLE001 - any DNS failure means "none here"
        log.info("MX %s: %s", domain, exc)
        return None
    for host in hosts:
        code = preset_for_mx(host)
        if code is not None:
            p = PRESETS[code]
            return ServerSettings("mx", code, p.imap_host, p.imap_port, p.imap_security,
                                  p.smtp_host, p.smtp_port, p.smtp_security)  # fmt: skip
    return None


def find_servers(address: str, *, allowed: list[str]) -> list[ServerSettings]:
    """What the network says about `address`'s servers, best first (registered as
    posta.accounts.discovery's finder)."""
    network = NETWORK
    domain = address.rpartition("@")[2].strip().lower().rstrip(".")
    found = [
        from_autoconfig(address, domain, allowed=allowed, network=network),
        from_srv(domain, network=network),
        from_mx(domain, network=network),
    ]
    return [f for f in found if f is not None]
