"""Where the quoted part of a plain-text reply starts, so a conversation can fold
it ("Show quoted text"), as Gmail does: the new words stay in view, the history
the reader has just read above is one click away.

Only a trailing quote is folded: from the attribution line ("On … wrote:", "Il …
ha scritto:") or the first `>` line (RFC 3676 §4.5) after which every non-empty
line is quoted, or from an Outlook-style "-----Original Message-----" separator to
the end. A quote in the middle, answered below, is part of the new words.
"""

from __future__ import annotations

import re

_ATTRIBUTION = re.compile(
    r"(wrote|scritto|schrieb|a écrit|escribió|escreveu|geschreven)\s*:\s*$", re.IGNORECASE
)
_SEPARATOR = re.compile(
    r"^\s*-{2,}\s*(original message|messaggio originale|ursprüngliche nachricht|"
    r"message d'origine|mensaje original)\s*-{2,}\s*$",
    re.IGNORECASE,
)


def _quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def split_quoted(text: str) -> tuple[str, str]:
    """(new words, trailing quote) of a plain-text body; the quote is "" when
    there is none to fold, and never everything (a body all quote stays shown)."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if _SEPARATOR.match(line)), None)
    if start is None:
        tail = len(lines)
        while tail > 0 and (not lines[tail - 1].strip() or _quoted(lines[tail - 1])):
            tail -= 1
        if tail == len(lines) or not any(_quoted(line) for line in lines[tail:]):
            return text, ""
        start = tail
        before = start - 1
        while before >= 0 and not lines[before].strip():
            before -= 1
        if before >= 0 and _ATTRIBUTION.search(lines[before]):
            start = before
    fresh = "".join(lines[:start]).rstrip()
    if not fresh:
        return text, ""
    return fresh + "\n", "".join(lines[start:])
