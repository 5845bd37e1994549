"""ManageSieve connect against servers that misbehave on loopback: one that
listens and never says a word gets the connection's timeout, as IMAP does; a
closed port is refused."""

from __future__ import annotations

import socket
import threading

import pytest

from posta.mailproto import errors
from posta.mailproto.sieve import managesieve


def _settings(port: int, *, timeout: float = 0.5) -> managesieve.SieveSettings:
    return managesieve.SieveSettings(
        host="sieve.example.test", port=port, address="127.0.0.1", security="none",
        username="ada", password="secret-pw-9", timeout=timeout,
    )


def test_a_server_that_never_answers_times_out(silent_port: int) -> None:
    outcome: list[BaseException] = []

    def attempt() -> None:
        try:
            managesieve.connect(_settings(silent_port))
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=60)  # far above the 0.5 s asked: only a hang gets here
    assert not worker.is_alive(), "connect did not give up"
    (exc,) = outcome
    assert isinstance(exc, errors.ConnectTimeout), repr(exc)
    assert "sieve.example.test" in str(exc) and "secret-pw-9" not in str(exc)


def test_a_closed_port_is_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(errors.ConnectionRefused):
        managesieve.connect(_settings(port))
