"""The wizard's network search (posta.remote.discovery): the address guard stands
before every autoconfig request, SRV records are read as RFC 6186 says, and a
hostile autoconfig document is refused, not expanded."""

from __future__ import annotations

import pytest

from posta.remote import discovery
from tests.browser.test_wizard_browser import CONFIG, AutoconfigServer, LoopbackNetwork, closed_port

DOMAIN = "example.test"
ADDRESS = f"anna@{DOMAIN}"


@pytest.fixture
def served() -> AutoconfigServer:
    body = CONFIG.format(domain=DOMAIN, imap=1143, smtp=1587).encode()
    server = AutoconfigServer(body)
    yield server  # type: ignore[misc]
    server.stop()


def test_the_guard_refuses_loopback_unless_the_administrator_allows_it(
    served: AutoconfigServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(discovery, "NETWORK", LoopbackNetwork(DOMAIN, served.port, closed_port()))
    assert discovery.find_servers(ADDRESS, allowed=[]) == []
    assert served.paths == []  # never connected: refused before the request

    found = discovery.find_servers(ADDRESS, allowed=["127.0.0.1"])
    assert [(f.source, f.imap_host, f.imap_port, f.smtp_port, f.imap_security)
            for f in found] == [("autoconfig", "127.0.0.1", 1143, 1587, "none")]  # fmt: skip
    assert served.paths == [f"autoconfig.{DOMAIN}/mail/config-v1.1.xml?emailaddress={ADDRESS}"]


class SrvNetwork(LoopbackNetwork):
    def __init__(self, records: dict[str, list[discovery.Srv]]) -> None:
        super().__init__(DOMAIN, closed_port(), closed_port())
        self.records = records

    def srv(self, name: str) -> list[discovery.Srv]:
        if name not in self.records:
            raise OSError("NXDOMAIN")
        return self.records[name]


def test_srv_records_prefer_implicit_tls_and_priority_and_honour_the_dot() -> None:
    net = SrvNetwork({
        f"_imaps._tcp.{DOMAIN}": [discovery.Srv(20, 0, 993, "backup.example.test"),
                                  discovery.Srv(10, 5, 993, "mail.example.test")],
        f"_imap._tcp.{DOMAIN}": [discovery.Srv(0, 0, 143, "other.example.test")],
        f"_submissions._tcp.{DOMAIN}": [discovery.Srv(0, 0, 0, ".")],
        f"_submission._tcp.{DOMAIN}": [discovery.Srv(0, 0, 587, "smtp.example.test")],
    })  # fmt: skip
    found = discovery.from_srv(DOMAIN, network=net)
    assert found is not None
    assert (found.imap_host, found.imap_port, found.imap_security) == (
        "mail.example.test", 993, "ssl")
    assert (found.smtp_host, found.smtp_port, found.smtp_security) == (
        "smtp.example.test", 587, "starttls")
    assert discovery.from_srv("nothing.test", network=net) is None


def test_a_document_with_a_dtd_or_of_another_kind_gives_nothing() -> None:
    good = CONFIG.format(domain=DOMAIN, imap=993, smtp=465).encode()
    assert discovery.parse_autoconfig(good, ADDRESS) is not None
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><clientConfig/>'
    assert discovery.parse_autoconfig(bomb, ADDRESS) is None
    assert discovery.parse_autoconfig(b"<html>not it</html>", ADDRESS) is None
    assert discovery.parse_autoconfig(b"\x00garbage", ADDRESS) is None
