"""The message list's rows, rendered in Python.

This is the hottest markup of the application (50 rows on every list page, every
live refresh); Django's template engine spent more time on it than the database
did on the page (bench/ui_bench.py). The markup is the same a template would
produce; every value goes through `format_html`, which escapes it, and every word
through gettext.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.templatetags.static import static
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from posta.mail.queries import Row


@dataclass(frozen=True)
class RowLinks:
    open_base: str  # the list's URL followed by "?" or "&"
    message_prefix: str  # "/mail/m/"
    thread_prefix: str  # "/mail/t/"
    draft_prefix: str  # "/compose/draft/": a draft opens in the editor, not the reader


@dataclass(frozen=True)
class _Words:
    """The row's words, translated once per list rather than once per row."""

    select: str
    in_thread: str
    to: str
    unknown: str
    flagged: str
    answered: str
    attachments: str
    unread: str
    no_subject: str
    saving: str
    refused: str
    attach_icon: str
    imported: str

    @classmethod
    def now(cls) -> _Words:
        return cls(
            select=_("Select"),
            in_thread=_("Messages in this conversation"),
            to=_("To:"),
            unknown=_("(unknown sender)"),
            flagged=_("Flagged"),
            answered=_("Answered"),
            attachments=_("Has attachments"),
            unread=_("Unread"),
            no_subject=_("(no subject)"),
            saving=_("Saving to the server…"),
            refused=_("The server refused a change"),
            attach_icon=static("posta/icons/attachment.svg"),
            imported=_("Imported"),
        )


HUES = 24


def hue_class(hue: int) -> int:
    """The account badge's colour as one of HUES steps (mail.css `[data-hue]`): the
    page's CSP allows no style attribute to carry the hue itself."""
    return round(hue * HUES / 360) % HUES


def render_rows(
    rows: list[Row], *, links: RowLinks, threads: bool, unified: bool, show_preview: bool
) -> SafeString:
    words = _Words.now()
    return format_html_join(
        "\n",
        "{}",
        ((_row(row, words, links, threads, unified, show_preview),) for row in rows),
    )


def _row(
    row: Row, words: _Words, links: RowLinks, threads: bool, unified: bool, show_preview: bool
) -> SafeString:
    m, loc = row.message, row.location
    conversation = threads and bool(m.thread_id) and row.thread_count > 1
    classes = "msg" + (" unread" if not loc.seen else "") + (" flagged" if loc.flagged else "")
    if row.action_state:
        classes += f" state-{row.action_state}"
    if conversation:
        target = f"{links.open_base}t={m.thread_id}"
        opener = format_html(
            '<a class="open" href="{0}" hx-get="{1}{2}/" hx-target="#reader" '
            'hx-push-url="{0}"><span class="from">{3}</span>'
            '<span class="count" title="{4}">{5}</span>',
            target, links.thread_prefix, m.thread_id, ", ".join(row.participants),
            words.in_thread, row.thread_count,
        )  # fmt: skip
    else:
        target = f"{links.open_base}m={m.pk}"
        if row.is_outgoing:
            sender = format_html('<span class="from">{} {}</span>', words.to, row.recipients)
        else:
            sender = format_html(
                '<span class="from" title="{}">{}</span>',
                m.from_email, m.from_name or m.from_email or words.unknown,
            )  # fmt: skip
        if loc.role == "drafts":
            opener = format_html(
                '<a class="open draft" href="{}{}/">{}', links.draft_prefix, m.pk, sender
            )
        elif row.account is None:  # kept in Imported: no folder to name
            opener = format_html(
                '<a class="open" href="{0}" hx-get="{1}{2}/" hx-target="#reader" '
                'hx-push-url="{0}">{3}',
                target, links.message_prefix, m.pk, sender,
            )  # fmt: skip
        else:
            opener = format_html(
                '<a class="open" href="{0}" hx-get="{1}{2}/?folder={3}" hx-target="#reader" '
                'hx-push-url="{0}">{4}',
                target, links.message_prefix, m.pk, loc.folder_id, sender,
            )  # fmt: skip
    marks = mark_safe("".join(_marks(row, words)))  # noqa: S308 - built by format_html only
    account = _account_badge(row, words) if unified or row.account is None else ""
    snippet = format_html('<span class="snippet">{}</span>', m.snippet) if show_preview else ""
    state = ""
    if row.action_state == "pending":
        state = format_html('<span class="action-state pending">{}</span>', words.saving)
    elif row.action_state == "failed":
        state = format_html('<span class="action-state failed">{}</span>', words.refused)
    thread_attr = format_html(' data-thread="{}"', m.thread_id) if conversation else ""
    return format_html(
        '<li class="{}" data-id="{}"{} data-folder="{}" draggable="true">'
        '<input type="checkbox" class="pick" aria-label="{}" tabindex="-1">'
        '{}<span class="marks">{}</span>{}<time>{}</time>'
        '<span class="subject">{}</span>{}{}</a></li>',
        classes, m.pk, thread_attr, loc.folder_id or "", words.select,
        opener, marks, account, row.when, m.subject or words.no_subject, snippet, state,
    )  # fmt: skip


def _account_badge(row: Row, words: _Words) -> SafeString:
    if row.account is None:
        return format_html('<span class="acct imported">{}</span>', words.imported)
    return format_html(
        '<span class="acct" data-hue="{}" title="{}">{}</span>',
        hue_class(row.account_hue), row.account.email,
        row.account.description or row.account.email,
    )  # fmt: skip


def _marks(row: Row, words: _Words) -> list[SafeString]:
    out: list[SafeString] = []
    if row.location.flagged:
        out.append(format_html('<span class="mark-flag" title="{}">★</span>', words.flagged))
    if row.location.answered:
        out.append(format_html('<span class="mark-answered" title="{}">↩</span>', words.answered))
    if row.message.has_attachments:
        out.append(
            format_html(
                '<img class="mark-attach" src="{}" alt="{}" title="{}" width="14" height="14">',
                words.attach_icon, words.attachments, words.attachments,
            )  # fmt: skip
        )
    if not row.location.seen:
        out.append(format_html('<span class="sr">{}</span>', words.unread))
    return out
