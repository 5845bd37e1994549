"""Modified UTF-7 mailbox names (RFC 3501 §5.1.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posta.mailproto.imap import utf7

# Pairs from RFC 3501 §5.1.3 and names real servers use.
KNOWN = [
    ("INBOX", "INBOX"),
    ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ("Posta inviata", "Posta inviata"),
    ("Entwürfe", "Entw&APw-rfe"),
    ("Envoyés", "Envoy&AOk-s"),
    ("Éléments envoyés", "&AMk-l&AOk-ments envoy&AOk-s"),
    ("Tom & Jerry", "Tom &- Jerry"),
    ("&", "&-"),
    ("😀", "&2D3eAA-"),
]


@pytest.mark.parametrize(("decoded", "encoded"), KNOWN)
def test_known_names(decoded: str, encoded: str) -> None:
    assert utf7.encode(decoded) == encoded
    assert utf7.decode(encoded) == decoded
    assert utf7.decode(encoded.encode("ascii")) == decoded


def test_malformed_shift_is_kept_literally() -> None:
    assert utf7.decode("broken &AOk") == "broken &AOk"


# Text without lone surrogates: what a user can type as a folder name.
names = st.text(st.characters(blacklist_categories=("Cs",)))


@given(names)
def test_round_trip(name: str) -> None:
    encoded = utf7.encode(name)
    assert encoded.isascii()
    assert all(0x20 <= ord(c) <= 0x7E for c in encoded)
    assert utf7.decode(encoded) == name


@given(names)
def test_agrees_with_imapclient(name: str) -> None:
    # An independent implementation: the two must produce the same wire bytes.
    from imapclient.imap_utf7 import encode as reference

    assert utf7.encode(name).encode("ascii") == reference(name)
