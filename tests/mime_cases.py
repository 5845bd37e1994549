"""Test messages for the MIME edge cases of issue 18, written for these tests (or
taken from the RFCs' own examples), with what a reader must make of each.

Shared by tests/unit/test_mime_cases.py (the pure reader) and
tests/integration/test_mime_cases.py (through Dovecot, the sync, the list and the
reader's URLs).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    name: str
    raw: bytes
    snippet: str  # the list's preview starts with this
    has_attachments: bool
    subject: str = ""
    body: tuple[str, ...] = ()  # texts the reader shows in the body
    not_body: tuple[str, ...] = ()  # texts that must not be shown as body
    filenames: tuple[str, ...] = ()  # listed attachments, in order
    from_: tuple[str, str] = ("Anna", "anna@example.test")
    year: int = 2026
    extra: dict[str, str] = field(default_factory=dict)


def _head(subject: str, content_type: str, *, extra: str = "") -> bytes:
    return (
        "From: Anna <anna@example.test>\r\n"
        "To: bob@example.test\r\n"
        f"Subject: {subject}\r\n"
        "Date: Mon, 02 Mar 2026 10:00:00 +0100\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@example.test>\r\n"
        "MIME-Version: 1.0\r\n"
        f"{extra}"
        f"Content-Type: {content_type}\r\n"
        "\r\n"
    ).encode()


_PDF = base64.b64encode(b"%PDF-1.4 case").decode()

BOUNDARY_EQUALS = Case(
    name="boundary_equals",
    raw=_head("unquoted boundary", "multipart/mixed; boundary=----=_NextPart_000_0012_01DA")
    + (
        "This is a multi-part message in MIME format.\r\n"
        "------=_NextPart_000_0012_01DA\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        "Quarterly numbers attached.\r\n"
        "------=_NextPart_000_0012_01DA\r\n"
        "Content-Type: application/pdf; name=report.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "Content-Disposition: attachment; filename=report.pdf\r\n\r\n"
        f"{_PDF}\r\n"
        "------=_NextPart_000_0012_01DA--\r\n"
    ).encode(),
    snippet="Quarterly numbers attached.",
    has_attachments=True,
    subject="unquoted boundary",
    body=("Quarterly numbers attached.",),
    not_body=("NextPart",),
    filenames=("report.pdf",),
)

NO_BOUNDARY = Case(
    name="no_boundary",
    raw=_head("no boundary", "multipart/mixed")
    + (b"--xyz\r\nContent-Type: text/plain\r\n\r\nThe text is there.\r\n--xyz--\r\n"),
    snippet="The text is there.",
    has_attachments=False,
    subject="no boundary",
    body=("The text is there.",),
    not_body=("--xyz", "Content-Type"),
)

MISMATCHED_BOUNDARY = Case(
    name="mismatched_boundary",
    raw=_head("mismatched", 'multipart/alternative; boundary="declared"')
    + (
        b"--used\r\nContent-Type: text/plain\r\n\r\nThe same words.\r\n"
        b"--used\r\nContent-Type: text/html\r\n\r\n<p>The same words.</p>\r\n--used--\r\n"
    ),
    snippet="The same words.",
    has_attachments=False,
    subject="mismatched",
    body=("The same words.",),
    not_body=("--used", "Content-Type"),
)

UNUSED_BOUNDARY = Case(
    name="unused_boundary",
    raw=_head("unused boundary", 'multipart/mixed; boundary="never"')
    + b"Only a plain line of text.\r\n",
    snippet="Only a plain line of text.",
    has_attachments=False,
    subject="unused boundary",
    body=("Only a plain line of text.",),
)

REUSED_BOUNDARY = Case(
    name="reused_boundary",
    raw=_head("reused boundary", 'multipart/mixed; boundary="same"')
    + (
        b'--same\r\nContent-Type: multipart/alternative; boundary="same"\r\n\r\n'
        b"--same\r\nContent-Type: text/plain\r\n\r\nNested text survives.\r\n"
        b"--same\r\nContent-Type: text/html\r\n\r\n<p>Nested text survives.</p>\r\n"
        b"--same--\r\n"
    ),
    snippet="Nested text survives.",
    has_attachments=False,
    subject="reused boundary",
    body=("Nested text survives.",),
    not_body=("--same", "Content-Type"),
)

DIGEST = Case(
    name="digest",
    raw=_head("weekly digest", 'multipart/digest; boundary="d"')
    + (
        b"--d\r\n\r\n"
        b"From: Carla <carla@example.test>\r\nSubject: first item\r\n\r\n"
        b"First digest message.\r\n"
        b"--d\r\n\r\n"
        b"From: Dario <dario@example.test>\r\nSubject: second item\r\n\r\n"
        b"Second digest message.\r\n"
        b"--d--\r\n"
    ),
    snippet="First digest message.",
    has_attachments=True,
    subject="weekly digest",
    body=("First digest message.", "Second digest message."),
    filenames=("first item.eml", "second item.eml"),
)

TOP_MESSAGE = Case(
    name="top_message",
    raw=_head("wrapped", "message/rfc822")
    + (
        b"From: Carla <carla@example.test>\r\nSubject: inner\r\n"
        b"Content-Type: text/plain\r\n\r\nThe wrapped message speaks.\r\n"
    ),
    snippet="The wrapped message speaks.",
    has_attachments=False,
    subject="wrapped",
    body=("The wrapped message speaks.",),
)

DELIVERY_STATUS = Case(
    name="delivery_status",
    raw=_head(
        "Undelivered Mail Returned to Sender",
        'multipart/report; report-type=delivery-status; boundary="r"',
    )
    + (
        b"--r\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.example.test\r\n\r\n"
        b"Final-Recipient: rfc822; gone@example.test\r\nAction: failed\r\n"
        b"Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 mailbox unknown\r\n\r\n"
        b"--r\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        b"Subject: the lost message\r\nTo: gone@example.test\r\n\r\n"
        b"--r--\r\n"
    ),
    snippet="Reporting-MTA: dns; mx.example.test",
    has_attachments=False,
    subject="Undelivered Mail Returned to Sender",
    body=("550 mailbox unknown", "Subject: the lost message"),
)

LATIN1_UTF8 = Case(
    name="latin1_utf8",
    raw=_head(
        "mislabelled",
        "text/plain; charset=iso-8859-1",
        extra="Content-Transfer-Encoding: 8bit\r\n",
    )
    + "Perché è così difficile?\r\n".encode(),
    snippet="Perché è così difficile?",
    has_attachments=False,
    subject="mislabelled",
    body=("Perché è così difficile?",),
)

OBSOLETE_HEADERS = Case(
    name="obsolete_headers",
    raw=(
        b"From : Anna <anna@example.test>\r\n"
        b"To: bob@example.test\r\n"
        b"Subject: obsolete syntax\r\n"
        b"Date: Mon, 02 Mar 2026 10:00:00 +0100\r\n"
        b"Message-ID: <obsolete@example.test>\r\n"
        b"X-Note: one\r\n"
        b"second line of a note\r\n"
        b"\r\n"
        b"The real body.\r\n"
    ),
    snippet="The real body.",
    has_attachments=False,
    subject="obsolete syntax",
    body=("The real body.",),
    not_body=("second line of a note", "X-Note"),
)

ISO_2022_JP = Case(
    name="iso_2022_jp",
    raw=(
        b"From: Anna <anna@example.test>\r\n"
        b"To: bob@example.test\r\n"
        b"Subject: "
        + b"=?ISO-2022-JP?B?"
        + base64.b64encode("会議の件".encode("iso-2022-jp"))
        + b"?=\r\n"
        b"Date: Mon, 02 Mar 2026 10:00:00 +0100\r\n"
        b"Message-ID: <jp@example.test>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=ISO-2022-JP\r\n"
        b"Content-Transfer-Encoding: 7bit\r\n\r\n"
        + "明日の会議は十時からです。\r\n".encode("iso-2022-jp")
    ),
    snippet="明日の会議は十時からです。",
    has_attachments=False,
    subject="会議の件",
    body=("明日の会議は十時からです。",),
    not_body=("$B",),
)

UNQUOTED_NAMES = Case(
    name="unquoted_names",
    raw=_head("unquoted names", 'multipart/mixed; boundary="n"')
    + (
        "--n\r\nContent-Type: text/plain\r\n\r\nTwo files.\r\n"
        "--n\r\nContent-Type: application/pdf; name==?utf-8?B?w6ljb2xlLnBkZg==?=\r\n"
        "Content-Disposition: attachment; filename==?utf-8?B?w6ljb2xlLnBkZg==?=\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{_PDF}\r\n"
        "--n\r\nContent-Type: application/pdf\r\n"
        "Content-Disposition: attachment; filename=my report 2024.pdf\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{_PDF}\r\n"
        "--n--\r\n"
    ).encode(),
    snippet="Two files.",
    has_attachments=True,
    subject="unquoted names",
    body=("Two files.",),
    filenames=("école.pdf", "my report 2024.pdf"),
)


def _sender(subject: str, sender: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: bob@example.test\r\nSubject: {subject}\r\n"
        "Date: Mon, 02 Mar 2026 10:00:00 +0100\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@example.test>\r\n\r\nHello there.\r\n"
    ).encode()


TWO_SENDERS = Case(
    name="two_senders",
    raw=_sender("two senders", "carla@example.test dario@example.test"),
    snippet="Hello there.",
    has_attachments=False,
    subject="two senders",
    from_=("", "carla@example.test"),
)

COMMENTED_SENDER = Case(
    # RFC 5322 §A.5's own example of comments inside an address.
    name="commented_sender",
    raw=_sender("commented sender", "Pete <pete(his account)@silly.test(his host)>"),
    snippet="Hello there.",
    has_attachments=False,
    subject="commented sender",
    from_=("Pete", "pete@silly.test"),
)

BARE_NAME_SENDER = Case(
    name="bare_name_sender",
    raw=_sender("bare name", "Anna Rossi anna@example.test"),
    snippet="Hello there.",
    has_attachments=False,
    subject="bare name",
    from_=("Anna Rossi", "anna@example.test"),
)

OLD_DATE = Case(
    # RFC 5322 §A.1.1's date.
    name="old_date",
    raw=(
        b"From: Anna <anna@example.test>\r\nTo: bob@example.test\r\nSubject: old date\r\n"
        b"Date: Fri, 21 Nov 1969 09:55:06 -0600\r\nMessage-ID: <1234@local.machine.example>\r\n"
        b"\r\nThis is a message just to say hello.\r\n"
    ),
    snippet="This is a message just to say hello.",
    has_attachments=False,
    subject="old date",
    year=1969,
)

FOLDED_SUBJECT = Case(
    # RFC 5322 §4.5: a folded line that does not start with white space (obs-FWS
    # written without its space) is still the Subject's.
    name="folded_subject",
    raw=(
        b"From: Anna <anna@example.test>\r\n"
        b"To: bob@example.test\r\n"
        b"Subject: folded without\r\n"
        b"white space\r\n"
        b"Date: Mon, 02 Mar 2026 10:00:00 +0100\r\n"
        b"Message-ID: <folded@example.test>\r\n"
        b"\r\n"
        b"The subject is whole.\r\n"
    ),
    snippet="The subject is whole.",
    has_attachments=False,
    subject="folded without white space",
    body=("The subject is whole.",),
    not_body=("white space",),
)

CASES = (
    BOUNDARY_EQUALS,
    NO_BOUNDARY,
    MISMATCHED_BOUNDARY,
    UNUSED_BOUNDARY,
    REUSED_BOUNDARY,
    DIGEST,
    TOP_MESSAGE,
    DELIVERY_STATUS,
    LATIN1_UTF8,
    OBSOLETE_HEADERS,
    ISO_2022_JP,
    UNQUOTED_NAMES,
    TWO_SENDERS,
    COMMENTED_SENDER,
    BARE_NAME_SENDER,
    OLD_DATE,
    FOLDED_SUBJECT,
)
