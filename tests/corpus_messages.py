"""The real-world corpus of tests/corpus (sources and licences in its README),
with what the reader must make of each message (expected.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"
# The folders of mail (tests/corpus holds other corpora beside them).
MAIL_FOLDERS = ("cpython", "mail-parser", "posta", "talon")


@dataclass(frozen=True)
class CorpusMessage:
    name: str  # "folder/file" under tests/corpus
    raw: bytes
    subject: str
    sender: str  # the first From address
    text: str  # the body text starts with this (white space folded)
    parts: tuple[tuple[str, str, str], ...]  # (part number, type, file name), in order


def corpus() -> list[CorpusMessage]:
    expected = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
    return [
        CorpusMessage(
            name=name,
            raw=(CORPUS / name).read_bytes(),
            subject=entry["subject"],
            sender=entry["from"],
            text=entry["text"],
            parts=tuple(tuple(part) for part in entry["parts"]),
        )
        for name, entry in sorted(expected.items())
    ]


MESSAGES = corpus()
