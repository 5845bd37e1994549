"""The address guard, with numeric hosts (no DNS) and "localhost" (the hosts file)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import pytest

from posta.core.netguard import (
    HostNotAllowed,
    HostNotFound,
    embedded_ipv4,
    refusal_reason,
    resolve_allowed,
    resolve_allowed_all,
)

REFUSED = [
    "127.0.0.1",
    "127.1",  # inet_aton: 127.0.0.1
    "0x7f.0.0.1",
    "0177.0.0.1",
    "2130706433",  # 127.0.0.1 as one 32-bit number
    "0x7f000001",
    "0.0.0.0",  # noqa: S104 - a host to refuse, not an address to bind
    "0",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "100.64.0.1",  # CGNAT, RFC 6598
    "100.127.255.254",
    "169.254.169.254",  # cloud metadata
    "169.254.1.1",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.10",
    "198.18.0.1",
    "::1",
    "[::1]",
    "::",
    "fe80::1",
    "fe80::1%lo",
    "fc00::1",
    "fd12:3456::1",
    "fd00:ec2::254",  # AWS metadata over IPv6
    "ff02::1",
    "fec0::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:7f00:1",
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "::127.0.0.1",  # IPv4-compatible
    "::a00:1",
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a00:1::",  # 6to4 of 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::1",  # local-use NAT64 prefix
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
    "2001:0:7f00:1::1",  # Teredo, server 127.0.0.1
    "2001:db8::1",
]


@pytest.mark.parametrize("host", REFUSED)
def test_internal_addresses_are_refused(host: str) -> None:
    with pytest.raises(HostNotAllowed) as info:
        resolve_allowed(host, 993, allowed=[])
    assert info.value.code == "host_not_allowed"
    assert host in info.value.detail


PUBLIC = [
    ("8.8.8.8", "8.8.8.8"),
    ("1.1.1.1", "1.1.1.1"),
    ("100.128.0.1", "100.128.0.1"),  # just past CGNAT
    ("172.32.0.1", "172.32.0.1"),  # just past 172.16/12
    ("134744072", "8.8.8.8"),  # inet_aton: one 32-bit number
    ("2606:4700:4700::1111", "2606:4700:4700::1111"),
    ("[2606:4700:4700::1111]", "2606:4700:4700::1111"),
    ("::ffff:8.8.8.8", "::ffff:808:808"),
    ("2002:808:808::1", "2002:808:808::1"),  # 6to4 of a public address
    ("64:ff9b::808:808", "64:ff9b::808:808"),
]


@pytest.mark.parametrize(("host", "address"), PUBLIC)
def test_public_addresses_pass_without_dns(host: str, address: str) -> None:
    assert resolve_allowed(host, 993, allowed=[]) == address


def test_localhost_is_refused() -> None:
    with pytest.raises(HostNotAllowed, match="loopback"):
        resolve_allowed("localhost", 993, allowed=[])


def test_allowed_name() -> None:
    assert resolve_allowed("LocalHost", 993, allowed=["localhost."]) in {"127.0.0.1", "::1"}


def test_allowed_address_and_numeric_forms_of_it() -> None:
    assert resolve_allowed("127.0.0.1", 993, allowed=["127.0.0.1"]) == "127.0.0.1"
    assert resolve_allowed("127.1", 993, allowed=["127.0.0.1"]) == "127.0.0.1"
    assert resolve_allowed("::ffff:127.0.0.1", 993, allowed=["127.0.0.1"]) == "::ffff:7f00:1"


def test_allowed_network() -> None:
    allowed = ["192.168.10.0/24", "fd00::/8"]
    assert resolve_allowed("192.168.10.7", 993, allowed=allowed) == "192.168.10.7"
    assert resolve_allowed("fd00::25", 993, allowed=allowed) == "fd00::25"
    with pytest.raises(HostNotAllowed):
        resolve_allowed("192.168.11.7", 993, allowed=allowed)
    with pytest.raises(HostNotAllowed):
        resolve_allowed("fc00::25", 993, allowed=allowed)


def test_allowing_a_name_does_not_allow_an_address() -> None:
    with pytest.raises(HostNotAllowed):
        resolve_allowed("127.0.0.1", 993, allowed=["localhost", "mail.example"])


def test_suffix_patterns() -> None:
    assert resolve_allowed("localhost", 25, allowed=["*.localhost", "localhost"])
    with pytest.raises(HostNotAllowed):
        resolve_allowed("localhost", 25, allowed=["*.localhost"])


def test_metadata_is_named() -> None:
    with pytest.raises(HostNotAllowed, match="metadata"):
        resolve_allowed("169.254.169.254", 80, allowed=[])


def test_empty_host() -> None:
    with pytest.raises(HostNotFound):
        resolve_allowed("  ", 993, allowed=[])


def test_all_addresses_of_localhost_are_checked_and_returned() -> None:
    addresses = resolve_allowed_all("localhost", 993, allowed=["localhost"])
    assert "127.0.0.1" in addresses
    assert len(addresses) == len(set(addresses))
    # Allowing only the IPv4 loopback network refuses a name that also has ::1.
    if "::1" in addresses:
        with pytest.raises(HostNotAllowed, match="::1"):
            resolve_allowed_all("localhost", 993, allowed=["127.0.0.0/8"])


# ------------------------------------------------- IPv4 carried inside IPv6 forms
# Each form is built here from its RFC, independently of the guard's own reading, and
# crossed with one address of every IPv4 range the guard refuses.

DENIED_V4 = [
    ("0.1.2.3", "unspecified"),  # "this network", RFC 791
    ("10.1.2.3", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "shared (CGNAT)"),
    ("127.0.0.1", "loopback"),
    ("169.254.1.1", "link-local"),
    ("169.254.169.254", "cloud metadata service"),
    ("100.100.100.200", "cloud metadata service"),
    ("192.0.0.8", "reserved"),
    ("192.0.2.10", "reserved"),  # documentation, RFC 5737
    ("198.51.100.7", "reserved"),
    ("203.0.113.9", "reserved"),
    ("192.88.99.1", "reserved"),  # 6to4 relay anycast
    ("198.18.0.1", "reserved"),  # benchmarking
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
]


def _v6(value: int) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(value)


def _rfc6052(prefix: str, length: int, v4: ipaddress.IPv4Address) -> ipaddress.IPv6Address:
    """RFC 6052 §2.2: the IPv4 octets follow the prefix; octet 8 (bits 64-71, "u") is
    skipped and zero."""
    head = ipaddress.IPv6Address(prefix).packed[: length // 8]
    if length == 96:
        return ipaddress.IPv6Address(head + v4.packed)
    stream = (head + v4.packed).ljust(15, b"\0")
    return ipaddress.IPv6Address(stream[:8] + b"\0" + stream[8:])


def _teredo(*, server: str, client: str) -> ipaddress.IPv6Address:
    # RFC 4380 §4: 2001:0000:<server>:<flags>:<port ^ ffff>:<client ^ ffffffff>.
    flags_and_port = (0x1234 << 16) | (0xFFFF ^ 3544)
    client_bits = int(ipaddress.IPv4Address(client)) ^ 0xFFFFFFFF
    server_bits = int(ipaddress.IPv4Address(server))
    return _v6((0x20010000 << 96) | (server_bits << 64) | (flags_and_port << 32) | client_bits)


FORMS: dict[str, Callable[[ipaddress.IPv4Address], ipaddress.IPv6Address]] = {
    "IPv4-mapped form": lambda v4: _v6((0xFFFF << 32) | int(v4)),  # RFC 4291 §2.5.5.2
    "IPv4-translated form": lambda v4: _v6((0xFFFF << 48) | int(v4)),  # RFC 2765 §2.1
    "IPv4-compatible form": lambda v4: _v6(int(v4)),  # RFC 4291 §2.5.5.1
    "NAT64 form": lambda v4: _rfc6052("64:ff9b::", 96, v4),  # RFC 6052 §2.1
    "6to4 form": lambda v4: _v6((0x2002 << 112) | (int(v4) << 80) | 1),  # RFC 3056 §2
    "Teredo server": lambda v4: _teredo(server=str(v4), client="8.8.4.4"),
    "Teredo client": lambda v4: _teredo(server="8.8.4.4", client=str(v4)),
}
LOCAL_NAT64_LAYOUTS = (96, 64, 56, 48)  # RFC 8215 prefix 64:ff9b:1::/48


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize(("v4", "reason"), DENIED_V4)
def test_every_ipv4_form_of_a_denied_address_is_refused(form: str, v4: str, reason: str) -> None:
    inner = ipaddress.IPv4Address(v4)
    address = FORMS[form](inner)
    assert (form, inner) in embedded_ipv4(address)
    with pytest.raises(HostNotAllowed) as info:
        resolve_allowed(str(address), 443, allowed=[])
    detail = info.value.detail
    if form == "IPv4-compatible form" and int(inner) <= 1:
        return  # ::0.0.0.1 is ::1, refused as IPv6 loopback before any unwrapping
    assert f"{form} of {inner}, {reason}" in detail
    assert refusal_reason(address) == f"{form} of {inner}, {reason}"


@pytest.mark.parametrize("form", sorted(FORMS))
def test_every_ipv4_form_of_a_public_address_passes(form: str) -> None:
    inner = ipaddress.IPv4Address("8.8.8.8")
    address = FORMS[form](inner)
    assert (form, inner) in embedded_ipv4(address)
    assert resolve_allowed(str(address), 443, allowed=[]) == str(address)


@pytest.mark.parametrize("length", LOCAL_NAT64_LAYOUTS)
@pytest.mark.parametrize("v4", [v4 for v4, _reason in DENIED_V4] + ["8.8.8.8"])
def test_local_use_nat64_is_read_in_every_layout_and_refused(length: int, v4: str) -> None:
    inner = ipaddress.IPv4Address(v4)
    address = _rfc6052("64:ff9b:1::", length, inner)
    assert address in ipaddress.IPv6Network("64:ff9b:1::/48")
    assert (f"local-use NAT64 form (/{length})", inner) in embedded_ipv4(address)
    with pytest.raises(HostNotAllowed, match="local-use NAT64"):
        resolve_allowed(str(address), 443, allowed=[])


def test_translated_form_from_the_report() -> None:
    # RFC 2765 "::ffff:0:a.b.c.d", written the way an attacker would.
    for host in ("::ffff:0:127.0.0.1", "::ffff:0:169.254.169.254", "[::ffff:0:10.0.0.1]"):
        with pytest.raises(HostNotAllowed, match="IPv4-translated"):
            resolve_allowed(host, 80, allowed=[])


def test_a_plain_ipv6_address_carries_no_ipv4() -> None:
    assert embedded_ipv4(ipaddress.IPv6Address("2606:4700:4700::1111")) == []
