"""The address guard: users may not point Posta at internal machines.

A mail account's host is typed by a user, and Posta then opens a TCP connection to
it from inside the company network, sending a password and reporting what the
server answered. Without a guard that is a server-side request forgery tool: probe
the intranet, reach cloud metadata services (169.254.169.254), talk to a database on
localhost. So every host is resolved here, once, and refused when any of its
addresses is not a public unicast address; the caller then connects to the address
returned (pinned), never resolving the name again, so a DNS answer that changes
between check and connect (rebinding) cannot slip through.

An IPv6 address that carries an IPv4 address (mapped, translated, compatible,
NAT64, 6to4, Teredo) is judged by every IPv4 address it carries, against the same
table as plain IPv4; `embedded_ipv4` is the one place that knows those forms.

Each caller passes its own allow list: administrators list their on-premise mail
servers (names, addresses, CIDR networks) in the company settings, and those pass
for mail connections only; the remote-image proxy has a separate one
(posta.mail.remote_images). Standard library only: protocol code and workers import
this without Django.
"""

from __future__ import annotations

import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class GuardError(Exception):
    """A host the guard would not hand out an address for. `code` is stable."""

    code = "guard_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class HostNotAllowed(GuardError):
    """The host is, or resolves to, an internal address and is not in the allow list."""

    code = "host_not_allowed"


class HostNotFound(GuardError):
    """The host name does not resolve."""

    code = "host_not_found"


# Addresses of cloud instance metadata services: named in the refusal, because
# reaching them is the usual goal of an SSRF.
_METADATA = {
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
    ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
}

# Ranges refused outright, whatever `is_global` says on this Python (its tables
# changed between patch releases). IANA special-purpose registries, RFC 6890.
_REFUSED_V4: list[tuple[ipaddress.IPv4Network, str]] = [
    (ipaddress.IPv4Network("0.0.0.0/8"), "unspecified"),  # "this network", RFC 791
    (ipaddress.IPv4Network("10.0.0.0/8"), "private"),  # RFC 1918
    (ipaddress.IPv4Network("100.64.0.0/10"), "shared (CGNAT)"),  # RFC 6598
    (ipaddress.IPv4Network("127.0.0.0/8"), "loopback"),  # RFC 1122
    (ipaddress.IPv4Network("169.254.0.0/16"), "link-local"),  # RFC 3927
    (ipaddress.IPv4Network("172.16.0.0/12"), "private"),  # RFC 1918
    (ipaddress.IPv4Network("192.0.0.0/24"), "reserved"),  # RFC 6890
    (ipaddress.IPv4Network("192.0.2.0/24"), "reserved"),  # documentation, RFC 5737
    (ipaddress.IPv4Network("192.88.99.0/24"), "reserved"),  # 6to4 relay, RFC 7526
    (ipaddress.IPv4Network("192.168.0.0/16"), "private"),  # RFC 1918
    (ipaddress.IPv4Network("198.18.0.0/15"), "reserved"),  # benchmarking, RFC 2544
    (ipaddress.IPv4Network("198.51.100.0/24"), "reserved"),  # documentation
    (ipaddress.IPv4Network("203.0.113.0/24"), "reserved"),  # documentation
    (ipaddress.IPv4Network("224.0.0.0/4"), "multicast"),  # RFC 5771
    (ipaddress.IPv4Network("240.0.0.0/4"), "reserved"),  # incl. broadcast, RFC 1112
]
_REFUSED_V6: list[tuple[ipaddress.IPv6Network, str]] = [
    (ipaddress.IPv6Network("::/128"), "unspecified"),
    (ipaddress.IPv6Network("::1/128"), "loopback"),
    (ipaddress.IPv6Network("100::/64"), "reserved"),  # discard-only, RFC 6666
    (ipaddress.IPv6Network("2001:db8::/32"), "reserved"),  # documentation, RFC 3849
    (ipaddress.IPv6Network("2001:10::/28"), "reserved"),  # ORCHID, RFC 4843
    (ipaddress.IPv6Network("2001:20::/28"), "reserved"),  # ORCHIDv2, RFC 7343
    (ipaddress.IPv6Network("fc00::/7"), "private (ULA)"),  # RFC 4193
    (ipaddress.IPv6Network("fe80::/10"), "link-local"),  # RFC 4291
    (ipaddress.IPv6Network("fec0::/10"), "site-local"),  # deprecated, RFC 3879
    (ipaddress.IPv6Network("ff00::/8"), "multicast"),  # RFC 4291
]

# IPv6 ranges whose addresses carry an IPv4 address the packets end up at (through
# the host's own IPv4 stack, a translator or a tunnel).
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated, RFC 4291 §2.5.5.1
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # SIIT, RFC 2765 §2.1
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # well-known prefix, RFC 6052 §2.1
# Local-use NAT64 (RFC 8215 §4) is routed only inside the network that runs the
# translator, so it is refused whatever IPv4 address it carries. The operator picks
# the prefix length, so `embedded_ipv4` reads every RFC 6052 §2.2 layout that fits
# inside the /48 (the /96 one first, the usual choice).
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_NAT64_LOCAL_LAYOUTS = (96, 64, 56, 48)


def refusal_reason(address: IPAddress) -> str | None:
    """Why `address` must not be connected to, or None for a public unicast address.

    IPv6 forms that carry an IPv4 address (see `embedded_ipv4`) are judged by every
    IPv4 address they carry, against the same table as plain IPv4, because the
    packets end up there.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address in _METADATA:
            return "cloud metadata service"
        return _v6_refusal(address)
    return _v4_refusal(address)


def _v4_refusal(address: ipaddress.IPv4Address) -> str | None:
    if address in _METADATA:
        return "cloud metadata service"
    for network, reason in _REFUSED_V4:
        if address in network:
            return reason
    if not address.is_global:
        return "not a public address"
    return None


def _v6_refusal(address: ipaddress.IPv6Address) -> str | None:
    for network, reason in _REFUSED_V6:
        if address in network:
            return reason
    if address in _NAT64_LOCAL:
        return "local-use NAT64 prefix, routed only inside its own network"
    embedded = embedded_ipv4(address)
    for form, inner in embedded:
        inner_reason = _v4_refusal(inner)
        if inner_reason:
            return f"{form} of {inner}, {inner_reason}"
    if embedded:
        # A transition address leading to a public IPv4 address is that address.
        return None
    if not address.is_global:
        return "not a public address"
    return None


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """Every IPv4 address `address` carries, each with the name of its form.

    The one place that knows the forms: IPv4-mapped, IPv4-translated (RFC 2765),
    IPv4-compatible, NAT64 (well-known and local-use prefixes), 6to4 and Teredo
    (server and client). The standard library unwraps only mapped, 6to4 and Teredo.
    An empty list means the address carries none.
    """
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    found: list[tuple[str, ipaddress.IPv4Address]] = []
    if address.ipv4_mapped is not None:  # ::ffff:0:0/96, RFC 4291 §2.5.5.2
        found.append(("IPv4-mapped form", address.ipv4_mapped))
    if address in _IPV4_TRANSLATED:
        found.append(("IPv4-translated form", low32))
    if address in _IPV4_COMPATIBLE:
        found.append(("IPv4-compatible form", low32))
    if address in _NAT64:
        found.append(("NAT64 form", low32))
    if address in _NAT64_LOCAL:
        found.extend(
            (f"local-use NAT64 form (/{length})", _rfc6052_ipv4(address, length))
            for length in _NAT64_LOCAL_LAYOUTS
        )
    if address.sixtofour is not None:  # 2002::/16, RFC 3056 §2
        found.append(("6to4 form", address.sixtofour))
    if address.teredo is not None:  # 2001::/32, RFC 4380 §4: server, obfuscated client
        server, client = address.teredo
        found.extend([("Teredo server", server), ("Teredo client", client)])
    return found


def _rfc6052_ipv4(address: ipaddress.IPv6Address, prefix_length: int) -> ipaddress.IPv4Address:
    """The IPv4 address under a NAT64 prefix of `prefix_length` bits (RFC 6052 §2.2):
    it follows the prefix, skipping bits 64-71 (the "u" octet, always zero)."""
    packed = address.packed
    if prefix_length == 96:
        return ipaddress.IPv4Address(packed[12:16])
    without_u = packed[:8] + packed[9:]
    start = prefix_length // 8
    return ipaddress.IPv4Address(without_u[start : start + 4])


def parse_numeric_host(host: str) -> IPAddress | None:
    """The address a numeric host stands for, or None for a name.

    Accepts what the C resolver accepts without DNS, so that "127.1", "0x7f.0.0.1",
    "0177.0.0.1" and "2130706433" are seen as the loopback address they are
    (inet_aton(3) semantics), and "[::1]" / "fe80::1%eth0" as IPv6.
    """
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text)  # with a scope id such as %eth0
        except ValueError:
            return None
    # inet_aton accepts trailing garbage after a space on glibc; a host with spaces is
    # no host name either, so hand the whole string to inet_aton only when it has
    # none, and let anything else fail as a name.
    if not text or any(c.isspace() for c in text):
        return None
    try:
        packed = socket.inet_aton(text)
    except OSError:
        return None
    return ipaddress.IPv4Address(packed)


def _normalise_name(host: str) -> str:
    return host.strip().rstrip(".").lower()


class _AllowList:
    def __init__(self, entries: list[str]) -> None:
        self.names: set[str] = set()
        self.suffixes: list[str] = []
        self.networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            numeric = parse_numeric_host(entry)
            if numeric is not None:
                self.networks.append(ipaddress.ip_network(numeric))
            elif entry.startswith(("*.", ".")):
                # "*.corp.example" and ".corp.example" allow every name below it.
                self.suffixes.append("." + _normalise_name(entry.lstrip("*.")))
            else:
                self.names.add(_normalise_name(entry))

    def allows_name(self, host: str) -> bool:
        name = _normalise_name(host)
        return name in self.names or any(name.endswith(s) for s in self.suffixes)

    def allows_address(self, address: IPAddress) -> bool:
        plain = ipaddress.ip_address(str(address).split("%", 1)[0])
        candidates: list[IPAddress] = [plain]
        if isinstance(plain, ipaddress.IPv6Address) and plain.ipv4_mapped is not None:
            candidates.append(plain.ipv4_mapped)
        return any(
            c.version == n.version and c in n for c in candidates for n in self.networks
        )


def resolve_allowed(host: str, port: int, *, allowed: list[str]) -> str:
    """Resolve `host` and return the address to connect to (the resolver's first).

    Raises HostNotFound when the name does not resolve, HostNotAllowed when any of
    its addresses is internal (see `refusal_reason`) and neither the name nor that
    address is covered by `allowed` (host names, "*.suffix" patterns, addresses,
    CIDR networks). Every address must pass, not just the first: a name answering
    with one public and one private address would otherwise let the connection land
    on the private one. Numeric hosts are never sent to DNS.
    """
    return resolve_allowed_all(host, port, allowed=allowed)[0]


def resolve_allowed_all(host: str, port: int, *, allowed: list[str]) -> list[str]:
    """Like `resolve_allowed`, but every address in the resolver's order (RFC 6724),
    for callers that try the next address when one does not answer."""
    allow = _AllowList(allowed)
    numeric = parse_numeric_host(host)
    if numeric is not None:
        addresses: list[IPAddress] = [numeric]
    else:
        addresses = _resolve(host, port)
    name_allowed = numeric is None and allow.allows_name(host)
    for address in addresses:
        if name_allowed or allow.allows_address(address):
            continue
        reason = refusal_reason(address)
        if reason:
            verb = "is" if numeric is not None else "resolves to"
            raise HostNotAllowed(f"{host} {verb} {address}: {reason}")
    return [str(address) for address in addresses]


def _resolve(host: str, port: int) -> list[IPAddress]:
    name = host.strip()
    if not name:
        raise HostNotFound("empty host name")
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise HostNotFound(f"{name}: {getattr(exc, 'strerror', None) or exc}") from exc
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise HostNotFound(f"{name}: no address")
    return addresses
