"""fastfetch against the real Dovecot, checked against IMAPClient's own parser."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from imapclient import IMAPClient

from posta.mailproto.imap import fastfetch
from posta.mailproto.mime.headers import parse_envelope
from tests.servers.dovecot import DovecotServer, MailUser

MESSAGES = [
    b"From: =?utf-8?q?Jos=C3=A9?= <jose@example.es>\r\nTo: a@b.it\r\n"
    b"Subject: =?UTF-8?B?Q2Fmw6g=?=\r\nDate: Mon, 1 Jan 2024 10:00:00 +0100\r\n"
    b"Message-ID: <one@example.it>\r\nX-Other: not fetched\r\n\r\nbody one\r\n",
    b"From: Anna <anna@example.it>\r\nSubject: with \"quotes\" and \\ backslash\r\n"
    b"In-Reply-To: <one@example.it>\r\nReferences: <one@example.it>\r\n\r\nbody two\r\n",
    b"Subject: caf\xc3\xa9 8-bit\r\n\r\nno message id\r\n",
    b"Content-Type: multipart/mixed; boundary=b\r\nSubject: att\r\n\r\n--b\r\n"
    b"Content-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/pdf\r\n"
    b"Content-Disposition: attachment; filename=a.pdf\r\n\r\nPDF\r\n--b--\r\n",
]


@pytest.fixture
def client(dovecot: DovecotServer, mail_user: MailUser) -> Iterator[IMAPClient]:
    dovecot.deliver(mail_user, MESSAGES[0])
    dovecot.deliver(mail_user, MESSAGES[1], folder="INBOX", flags="\\Seen $Forwarded")
    dovecot.deliver(mail_user, MESSAGES[2], folder="INBOX", flags="\\Flagged")
    dovecot.deliver(mail_user, MESSAGES[3])
    imap = IMAPClient(dovecot.host, dovecot.imap_port, ssl=False, timeout=30)
    imap.normalise_times = False
    imap.login(mail_user.name, mail_user.password)
    imap.select_folder("INBOX")
    yield imap
    imap.logout()


def test_headers_match_imapclient(client: IMAPClient) -> None:
    uids = client.search("ALL")
    section = f"BODY.PEEK[HEADER.FIELDS ({' '.join(fastfetch.SYNC_HEADER_FIELDS)})]"
    expected = client.fetch(
        uids, ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "MODSEQ", section]
    )
    records = fastfetch.fetch_headers(client, "1:*", modseq=True, bodystructure=True)
    assert [r.uid for r in records] == sorted(uids)
    key = section.replace(".PEEK", "").encode()
    for record in records:
        theirs = expected[record.uid]
        assert record.flags == tuple(f.decode() for f in theirs[b"FLAGS"])
        assert record.internaldate == theirs[b"INTERNALDATE"]
        assert record.size == theirs[b"RFC822.SIZE"]
        assert record.modseq == theirs[b"MODSEQ"][0]
        assert record.header == theirs[key]
    first = parse_envelope(records[0].header)
    assert (first.subject, first.message_id) == ("Cafè", "<one@example.it>")
    assert b"X-Other" not in records[0].header
    assert records[3].bodystructure is not None
    assert records[3].bodystructure.has_attachments
    assert records[0].bodystructure is not None
    assert not records[0].bodystructure.has_attachments


def test_flags_uids_bodies_and_changes(
    client: IMAPClient, dovecot: DovecotServer, mail_user: MailUser
) -> None:
    uids = fastfetch.fetch_uids(client)
    assert uids == sorted(client.search("ALL"))
    flags = {uid: fl for uid, fl, _ in fastfetch.fetch_flags(client, "1:*")}
    assert "\\Seen" in flags[uids[1]] and "$Forwarded" in flags[uids[1]]
    highest = max(m for _, _, m in fastfetch.fetch_flags(client, "1:*", changed_since=0) if m)
    assert fastfetch.fetch_flags(client, "1:*", changed_since=highest) == []

    # Another session changes a flag: CHANGEDSINCE reports exactly that message.
    dovecot.set_flags(mail_user, "INBOX", uids[0], "\\Answered")
    changed = fastfetch.fetch_flags(client, "1:*", changed_since=highest)
    assert [uid for uid, _, _ in changed] == [uids[0]]
    assert "\\Answered" in changed[0][1]

    bodies = dict(fastfetch.fetch_bodies(client, [*uids, 9999], max_batch_bytes=200))
    assert set(bodies) == set(uids)
    assert bodies[uids[0]].replace(b"\r\n", b"\n").endswith(b"body one\n")
    # BODY.PEEK leaves \Seen alone (RFC 3501 §6.4.5).
    assert "\\Seen" not in dict((u, f) for u, f, _ in fastfetch.fetch_flags(client, "1:*"))[uids[0]]

    # The connection is still usable by IMAPClient afterwards.
    assert client.noop()[0]
