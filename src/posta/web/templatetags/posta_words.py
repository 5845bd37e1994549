"""Words users know in place of protocol words: file types instead of MIME types
(RFC 2046), folder roles instead of SPECIAL-USE attributes (RFC 6154), the localized
"Inbox" instead of the protocol name INBOX (RFC 3501 §5.1)."""

from __future__ import annotations

import mimetypes

from django import template
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from posta.accounts.presets import NONE, SECURITY_CHOICES

register = template.Library()

# Exact types first; then the major type (RFC 2046 §4: text, image, audio, video...).
FILE_KINDS: dict[str, Promise] = {
    "application/pdf": _("PDF document"),
    "image/png": _("PNG image"),
    "image/jpeg": _("JPEG image"),
    "image/gif": _("GIF image"),
    "image/webp": _("WebP image"),
    "image/svg+xml": _("SVG image"),
    "text/plain": _("Text document"),
    "text/html": _("Web page"),
    "text/csv": _("CSV table"),
    "text/calendar": _("Calendar invitation"),
    "message/rfc822": _("Email message"),
    "application/zip": _("ZIP archive"),
    "application/x-zip-compressed": _("ZIP archive"),
    "application/msword": _("Word document"),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": _(
        "Word document"
    ),
    "application/vnd.ms-excel": _("Excel spreadsheet"),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": _(
        "Excel spreadsheet"
    ),
    "application/vnd.ms-powerpoint": _("PowerPoint presentation"),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": _(
        "PowerPoint presentation"
    ),
    "application/vnd.oasis.opendocument.text": _("OpenDocument text"),
    "application/vnd.oasis.opendocument.spreadsheet": _("OpenDocument spreadsheet"),
    "application/pkcs7-signature": _("Digital signature"),
    "application/pkcs7-mime": _("Signed or encrypted content"),
    "application/x-pkcs7-signature": _("Digital signature"),
    "application/pgp-signature": _("Digital signature"),
    "application/pgp-encrypted": _("Encryption details"),
    "application/pgp-keys": _("Encryption key"),
    # Outlook's rich-text wrapper (TNEF); other clients cannot open it either.
    "application/ms-tnef": _("Outlook package (winmail.dat)"),
    "application/vnd.ms-tnef": _("Outlook package (winmail.dat)"),
}
MAJOR_KINDS: dict[str, Promise] = {
    "image": _("Image"),
    "audio": _("Audio"),
    "video": _("Video"),
    "text": _("Text document"),
    "message": _("Email message"),
}

# RFC 6154 §2 attributes, in the words of the roles they stand for.
SPECIAL_USE_WORDS: dict[str, Promise] = {
    "\\all": _("All mail"),
    "\\archive": _("Archive"),
    "\\drafts": _("Drafts"),
    "\\flagged": _("Flagged"),
    "\\important": _("Important"),
    "\\junk": _("Spam"),
    "\\sent": _("Sent"),
    "\\trash": _("Trash"),
}


# Types that say only "bytes": the file name says more (mailers label many PDFs and
# Office files so, and Outlook's winmail.dat too).
_UNTYPED = frozenset(
    (
        "",
        "application/octet-stream",
        "application/x-octet-stream",
        "application/binary",
        "application/unknown",
        "application/force-download",
        "binary/octet-stream",
    )
)


@register.filter
def file_kind(content_type: str, filename: str = "") -> str:
    """"PDF document" for application/pdf; "File" for what has no better name. A
    part sent as mere bytes is named from its file name's extension."""
    value = (content_type or "").split(";", 1)[0].strip().lower()
    if value in _UNTYPED and filename:
        name = filename.strip().lower()
        value = "application/ms-tnef" if name == "winmail.dat" else _guessed_type(name, value)
    kind = FILE_KINDS.get(value) or MAJOR_KINDS.get(value.split("/", 1)[0])
    return str(kind) if kind is not None else str(_("File"))


def _guessed_type(filename: str, fallback: str) -> str:
    guessed, _encoding = mimetypes.guess_type(filename, strict=False)
    return guessed or fallback


@register.filter
def special_use_words(attribute: str) -> str:
    """A SPECIAL-USE attribute (`\\Archive`) as the role's name; never the raw token."""
    words = [
        str(SPECIAL_USE_WORDS[token.lower()])
        for token in (attribute or "").split()
        if token.lower() in SPECIAL_USE_WORDS
    ]
    return ", ".join(words)


@register.filter
def folder_label(name: str, display_name: str = "") -> str:
    """A folder's name for people: the localized "Inbox" for INBOX."""
    if name.upper() == "INBOX":
        return str(_("Inbox"))
    return display_name or name


@register.filter
def security_words(value: str) -> str:
    """A connection's security as people read it: "SSL/TLS", "STARTTLS", or
    "not encrypted" (never the stored token, such as NONE)."""
    if value == NONE:
        return str(_("not encrypted"))
    return str(dict(SECURITY_CHOICES).get(value, value))
