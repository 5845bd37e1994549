"""The address guard, with numeric hosts (no DNS) and "localhost" (the hosts file)."""

from __future__ import annotations

import pytest

from posta.core.netguard import (
    HostNotAllowed,
    HostNotFound,
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
