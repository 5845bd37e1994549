"""Preview snippets: the first readable words of a message for the message list."""

from __future__ import annotations

import re

__all__ = ["make_snippet"]

# Attribution lines that introduce a quote, in the languages our users receive:
# "On Mon, 1 Jan 2024, Anna <a@b> wrote:", "Il giorno lun 1 gen 2024 alle 10:00
# Anna <a@b> ha scritto:", "Am ... schrieb ...:", "Le ... a écrit :",
# "El ... escribió:". Gmail wraps long ones, so they may span two lines (joined
# before matching).
_ATTRIBUTION = re.compile(
    r"^(?:on\b.*\bwrote|il giorno\b.*\bha scritto|il\b.*\bha scritto|"
    r"am\b.*\bschrieb|le\b.*\ba écrit|el\b.*\bescribió|op\b.*\bschreef)\s*:\s*$",
    re.IGNORECASE,
)
# Outlook's forwarded/replied block starts the quoted part.
_OUTLOOK_QUOTE = re.compile(
    r"^(?:-{2,}\s*(?:original message|messaggio originale|ursprüngliche nachricht)"
    r"\s*-{2,}|_{10,})\s*$",
    re.IGNORECASE,
)
_SPACES = re.compile(r"\s+")


def make_snippet(text: str, *, limit: int = 200) -> str:
    """Up to `limit` characters of the readable text of a plain-text body.

    Left out: quoted lines (starting with ">"), attribution lines that introduce a
    quote ("On ... wrote:", "Il giorno ... ha scritto:"), everything from a
    signature separator ("-- " alone on a line, RFC 3676 §4.3) or an Outlook
    "Original Message" divider on, and runs of white space (collapsed to one space).
    Cut at a word boundary when possible, with an ellipsis; never longer than `limit`.
    """
    kept: list[str] = []
    size = 0
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for index, line in enumerate(lines):
        stripped = line.strip()
        if line.rstrip("\n") in ("-- ", "--") or _OUTLOOK_QUOTE.match(stripped):
            break
        if not stripped or stripped.startswith(">"):
            continue
        if stripped.endswith(":") and _ATTRIBUTION.match(stripped):
            continue
        if index + 1 < len(lines):
            joined = f"{stripped} {lines[index + 1].strip()}"
            if joined.endswith(":") and _ATTRIBUTION.match(joined):
                # The first half of a wrapped attribution: skip both halves.
                lines[index + 1] = ""
                continue
        kept.append(stripped)
        size += len(stripped) + 1
        if size > limit * 2:
            break
    snippet = _SPACES.sub(" ", " ".join(kept)).strip()
    if len(snippet) <= limit:
        return snippet
    cut = snippet[: limit - 1]  # room for the ellipsis
    space = cut.rfind(" ")
    if space > limit * 2 // 3:
        cut = cut[:space]
    return cut.rstrip() + "…"
