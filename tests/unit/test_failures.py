"""The failure table judges every MailError class and every SMTP reply."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import posta
from posta.mailproto import errors
from posta.mailproto.failures import (
    ERROR_TABLE,
    SEND_RETRY_FOR,
    SERVER_RETRY_FOR,
    Verdict,
    rule_for_class,
    rule_for_reply,
    verdict_for_error,
)


def _all_error_classes() -> list[type[errors.MailError]]:
    """Every MailError subclass of every Posta module, found by reflection."""
    for module in pkgutil.walk_packages(posta.__path__, "posta."):
        if ".migrations" in module.name or module.name.endswith(("wsgi", "asgi")):
            continue
        importlib.import_module(module.name)
    found: list[type[errors.MailError]] = []
    todo = list(errors.MailError.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(set(found), key=lambda c: f"{c.__module__}.{c.__qualname__}")


CLASSES = _all_error_classes()

EXPECTED = {
    "host_not_found": Verdict.RETRY,
    "connection_refused": Verdict.RETRY,
    "timeout": Verdict.RETRY,
    "network_error": Verdict.RETRY,
    "throttled": Verdict.RETRY,
    "uidvalidity_changed": Verdict.RETRY,
    "tls_failed": Verdict.ACCOUNT,
    "certificate_invalid": Verdict.ACCOUNT,
    "starttls_missing": Verdict.ACCOUNT,
    "auth_failed": Verdict.ACCOUNT,
    "tls_required": Verdict.ACCOUNT,
    "capability_missing": Verdict.ACCOUNT,
    "smtputf8_missing": Verdict.ACCOUNT,
    "settings_refused": Verdict.ACCOUNT,
    "host_not_allowed": Verdict.ACCOUNT,
    "secret_unreadable": Verdict.ACCOUNT,
    "target_folder_missing": Verdict.ACCOUNT,  # a POP3 source's folder is gone
    "oauth2_signin_required": Verdict.ACCOUNT,  # a refused grant: sign in again
    "oauth2_refused": Verdict.ACCOUNT,  # the provider settings are wrong
    "protocol_error": Verdict.PERMANENT,
}


def test_reflection_finds_the_classes_defined_outside_mailproto() -> None:
    codes = {cls.code for cls in CLASSES}
    assert {"secret_unreadable", "host_not_allowed", "uidvalidity_changed"} <= codes
    assert errors.MailError not in ERROR_TABLE


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_every_error_class_has_a_verdict(cls: type[errors.MailError]) -> None:
    rule = rule_for_class(cls)
    assert rule is not None, f"{cls.__qualname__} has no row in the failure table"
    assert cls.code in EXPECTED, f"{cls.__qualname__}: say here which verdict it must get"
    assert rule.verdict is EXPECTED[cls.code]
    # Retries stop at a deadline; account errors wait for the user, with none.
    assert (rule.retry_for is not None) == (rule.verdict is Verdict.RETRY)


def test_a_new_class_without_a_row_is_noticed_and_retried() -> None:
    class Unjudged(errors.MailError):
        code = "unjudged"

    assert rule_for_class(Unjudged) is None
    # In production an error the table misses is never judged permanent.
    assert verdict_for_error(Unjudged("x")) is Verdict.RETRY


def test_the_most_specific_row_wins() -> None:
    class Subclassed(errors.ProtocolError):
        code = "subclassed"

    assert rule_for_class(errors.CertificateError) is ERROR_TABLE[errors.CertificateError]
    assert verdict_for_error(Subclassed("x")) is Verdict.PERMANENT


@pytest.mark.parametrize(
    ("code", "verdict"),
    [
        *((code, Verdict.RETRY) for code in range(400, 500)),
        (552, Verdict.RETRY),  # RFC 5321 §4.5.3.1.10: treat as 452
        (530, Verdict.ACCOUNT),
        (534, Verdict.ACCOUNT),
        (535, Verdict.ACCOUNT),
        (538, Verdict.ACCOUNT),
        *((code, Verdict.PERMANENT) for code in range(500, 600)
          if code not in {530, 534, 535, 538, 552}),
    ],
)
def test_smtp_replies(code: int, verdict: Verdict) -> None:
    rule = rule_for_reply(code)
    assert rule.verdict is verdict
    if verdict is Verdict.RETRY:
        assert rule.retry_for == SEND_RETRY_FOR


@pytest.mark.parametrize(
    "cls", [cls for cls, rule in ERROR_TABLE.items() if rule.verdict is Verdict.RETRY]
)
def test_server_work_is_retried_for_a_day(cls: type[errors.MailError]) -> None:
    rule = rule_for_class(cls)
    assert rule is not None and rule.retry_for == SERVER_RETRY_FOR
