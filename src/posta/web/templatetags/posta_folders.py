"""The folder list's rows, written in Python: a user with hundreds of folders
gets them on every page and every poll, and the template language would resolve
each variable of each row again (as posta.web.mail.rows does for the messages).

`{% folder_options sidebar.accounts %}` gives the "Move to…" menus' options;
`{% folder_rows tree.folders scope_key %}` gives the `<li>` of each folder of one
account: a link (a drop target, with its unread count) for a selectable folder,
a muted name for the others.
"""

from __future__ import annotations

from django import template
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from posta.mail.queries import AccountTree, FolderNode
from posta.web.templatetags.posta_csp import depth

register = template.Library()


@register.simple_tag
def folder_rows(nodes: list[FolderNode], scope_key: str) -> SafeString:
    if not nodes:
        return format_html('<li class="muted">{}</li>', _("No folders yet."))
    prefix = reverse("mail_folder", args=[0])[:-2]  # ".../f/": once, not once a row
    return format_html_join("\n", "{}", ((_row(node, scope_key, prefix),) for node in nodes))


def _row(node: FolderNode, scope_key: str, prefix: str) -> SafeString:
    folder = node.folder
    if not folder.selectable:
        return format_html(
            '<li data-depth="{}"><span class="folder muted">{}</span></li>',
            depth(node.depth), node.label,
        )  # fmt: skip
    current = scope_key == node.key
    unread = (
        format_html('<span class="unread-count">{}</span>', node.unread) if node.unread else ""
    )
    return format_html(
        '<li data-depth="{}"><a href="{}{}/" class="folder drop-target{}"{} data-folder="{}" '
        'title="{}"><span class="name">{}</span>{}</a></li>',
        depth(node.depth), prefix, folder.pk, " current" if current else "",
        mark_safe(' aria-current="page"') if current else "", folder.pk,
        folder.display_name, node.label, unread,
    )  # fmt: skip


@register.simple_tag
def folder_options(trees: list[AccountTree]) -> SafeString:
    """The selectable folders of every account, as `<option>`s grouped by account
    (the "Move to…" menus)."""
    return format_html_join(
        "\n", '<optgroup label="{}">{}</optgroup>',
        (
            (
                tree.account.description or tree.account.email,
                format_html_join(
                    "", '<option value="{}">{}</option>',
                    ((n.folder.pk, n.label) for n in tree.folders if n.folder.selectable),
                ),
            )
            for tree in trees
        ),
    )  # fmt: skip
