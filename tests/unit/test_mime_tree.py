"""The tree's fast reading of header blocks gives what `email`'s header parser
gives, on every block it takes, and leaves the others to that parser."""

from __future__ import annotations

import random
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

import pytest

from posta.mailproto.mime import tree
from tests.mime_cases import CASES, Case

_PARSER = BytesHeaderParser(policy=compat32)
_PIECES = [
    b"A", b"b", b":", b" ", b"\t", b"\r\n", b"\n", b"\r", b"\xe9", b"From ", b"=?x?=",
    b";", b"\x0c", b"-", b"name=x", b'"',
]  # fmt: skip


def state(part: Message) -> dict[str, Any]:
    seen = {k: v for k, v in vars(part).items() if not k.startswith("_posta")}
    seen["defects"] = [type(d) for d in part.defects]
    return seen


def blocks() -> list[bytes]:
    rng = random.Random(18)
    found = [
        b"Subject: x\r\n folded\r\n\tagain\r\nTo: a@b\r\n\r\n",
        b"A:  \t x \r\n\tcont \r\n\r\n",
        b"X: \xe9t\xe9\n\n",
        b"A: b\r\nFrom x\r\n\r\n",
        b" lead: x\r\n\r\n",
        b"A:\r\n b\r\n",
    ]
    for raw in (case.raw for case in CASES):
        found.append(tree.split_raw(raw)[0])
    for _ in range(20000):
        block = b"".join(rng.choice(_PIECES) for _ in range(rng.randrange(1, 25)))
        found.append(b"Subject: x\r\n" + block if rng.random() < 0.5 else block)
    return found


def test_regular_blocks_are_read_as_email_reads_them() -> None:
    fast = 0
    for block in blocks():
        part = tree._regular_headers(block)
        if part is None:
            continue
        fast += 1
        assert state(part) == state(_PARSER.parsebytes(block)), block
    assert fast > 100  # the fast reading is taken


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_remembered_parameters_are_emails(case: Case) -> None:
    def parts(message: Message) -> list[Message]:
        return list(message.walk())

    built = parts(tree.build_tree(case.raw))
    for part in built:
        plain = Message(policy=compat32)
        plain._headers = list(part._headers)  # type: ignore[attr-defined]
        for header in ("content-type", "content-disposition"):
            for name in ("boundary", "charset", "name", "filename", "missing"):
                assert part.get_param(name, header=header) == plain.get_param(name, header=header)
        assert part.get_filename() == plain.get_filename()
        assert part.get_content_charset() == plain.get_content_charset()
        assert part.get_boundary() == plain.get_boundary()


def test_a_changed_header_is_read_again() -> None:
    part = tree.build_tree(b'Content-Type: text/plain; charset="utf-8"\r\n\r\nx')
    assert part.get_content_charset() == "utf-8"
    part.replace_header("Content-Type", "text/plain; charset=latin-1")
    assert part.get_content_charset() == "latin-1"
    part.set_param("charset", "koi8-r")
    assert part.get_content_charset() == "koi8-r"
