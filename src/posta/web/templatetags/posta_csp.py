"""Template tags for pages under the Content-Security-Policy (posta.web.security)."""

from __future__ import annotations

from typing import Any

from django import forms, template
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from js_asset import Media as AssetMedia

from posta.web.security import allow_editor

register = template.Library()


@register.simple_tag(takes_context=True)
def editor_media(context: dict[str, Any], media: forms.Media) -> SafeString:
    """A form's media on a page that shows the rich-text editor: grants the page the
    editor's allowances and puts this request's nonce on its import map."""
    nonce = allow_editor(context["request"])
    if isinstance(media, AssetMedia):
        rendered = str(media.render(attrs={"nonce": nonce}))
    else:
        rendered = str(media.render())
    # The editor's words: Django's JavaScript catalog first (the editor reads
    # window.gettext when it loads), then the translation of its tooltips.
    words = format_html(
        '<script src="{}" nonce="{}"></script><script src="{}" nonce="{}"></script>',
        reverse("javascript_catalog"), nonce, static("posta/editor_words.js"), nonce,
    )
    return mark_safe(str(words) + rendered)  # noqa: S308 - escaped by format_html and Media


MAX_DEPTH = 12


@register.filter
def depth(value: int) -> int:
    """A folder's depth for `data-depth` (posta.css has rules up to MAX_DEPTH)."""
    return max(0, min(int(value), MAX_DEPTH))
