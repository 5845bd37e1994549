"""Hostile HTML from public sanitizer suites (tests/corpus/hostile_html, README there)
and a judge of what the sanitizer made of it.

The judge reads the frame's whole document the way a browser does (html5lib is an
HTML5 parser: what it builds from the sanitized text is what Chromium builds), so
markup that changes meaning when parsed again (mutation XSS, namespace confusion)
is judged on the tree it becomes, not on the text the sanitizer wrote.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from xml.etree.ElementTree import Element

import html5lib

CORPUS = Path(__file__).parent / "corpus" / "hostile_html"
HTML_NS = "{http://www.w3.org/1999/xhtml}"
PROXY = "https://posta.example/mail/img/1/2/?u="
IMAGE_DATA = "data:image/png;base64,AAAA"
IMAGES = {"logo@x": IMAGE_DATA}

# What the frame may contain at all; anything else is a finding.
ALLOWED_ELEMENTS = {
    "html", "head", "body", "meta", "base", "style",  # the document's own frame
    "a", "abbr", "acronym", "article", "aside", "b", "bdi", "bdo", "big", "blockquote",
    "br", "caption", "center", "cite", "code", "col", "colgroup", "data", "dd", "del",
    "details", "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "font", "footer",
    "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "i", "img", "ins",
    "kbd", "li", "mark", "nav", "ol", "p", "pre", "q", "rp", "rt", "rtc", "ruby", "s",
    "samp", "small", "span", "strike", "strong", "sub", "summary", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "time", "tr", "tt", "u", "ul", "var", "wbr",
}  # fmt: skip
URL_ATTRIBUTES = {
    "href", "src", "action", "formaction", "background", "poster", "srcset", "lowsrc",
    "dynsrc", "data", "codebase", "cite", "longdesc", "usemap", "ping", "manifest",
    "icon", "profile", "xlink:href", "xml:base",
}  # fmt: skip
LINK_SCHEMES = ("http://", "https://", "mailto:")
# After the allowed url("…") are taken out, none of these may remain in CSS: each
# either loads something (url, image-set, @import, src(), image()) or runs
# something in some engine (expression, behavior, -moz-binding), or could spell one
# of those (a backslash escape, a comment between letters).
CSS_DANGER = re.compile(
    r"url\s*\(|image-set|@import|\\|expression|behavior|-moz-binding|javascript|vbscript"
    r"|\bsrc\s*\(|\bimage\s*\(|//|[a-z]\s*/\*",
    re.I,
)
ALLOWED_CSS_URL = re.compile(
    r"url\(\"(?:" + re.escape(IMAGE_DATA) + "|" + re.escape(PROXY) + r"(?i:https?://)[^\"]*)\"\)"
)


def load() -> Iterator[tuple[str, str]]:
    """(id, payload) for every vector in the corpus."""
    for path in sorted(CORPUS.glob("*.json")):
        entries = json.loads(path.read_text(encoding="utf-8"))
        for index, entry in enumerate(entries):
            payload = entry["payload"] if isinstance(entry, dict) else entry
            yield f"{path.stem}-{index}", payload


def parse_document(document: str) -> Element:
    parser = html5lib.HTMLParser(tree=html5lib.getTreeBuilder("etree"), namespaceHTMLElements=True)
    root: Element = parser.parse(document)
    return root


def css_findings(css: str, *, where: str) -> list[str]:
    rest = ALLOWED_CSS_URL.sub("none", css)
    return [f"{where}: css {m.group(0)!r} in {css[:200]!r}" for m in CSS_DANGER.finditer(rest)]


def _url_allowed(element: str, attribute: str, value: str) -> bool:
    # WHATWG URL: tab and newline are dropped anywhere, C0 controls and spaces at the ends.
    url = re.sub(r"[\t\n\r]", "", value).strip("".join(chr(c) for c in range(0x21)))
    if element == "a" and attribute == "href":
        return url.lower().startswith(LINK_SCHEMES)
    if attribute in ("src", "background"):
        return url == IMAGE_DATA or (url.startswith(PROXY) and "\n" not in url)
    return False


def findings(document: str) -> list[str]:
    """Everything in the frame's document that could run, load or navigate."""
    found: list[str] = []
    root = parse_document(document)
    styles = 0
    for node in root.iter():
        tag = node.tag
        if not isinstance(tag, str):
            continue  # comments
        if not tag.startswith(HTML_NS):
            found.append(f"foreign element {tag}")
            continue
        name = tag[len(HTML_NS) :]
        if name not in ALLOWED_ELEMENTS:
            found.append(f"element <{name}>")
        if name == "style":
            styles += 1
            found += css_findings(node.text or "", where="<style>")
        for attribute, value in node.attrib.items():
            lowered = attribute.lower()
            if lowered.startswith("on"):
                found.append(f"<{name} {attribute}>")
            elif lowered == "style":
                found += css_findings(value, where=f"<{name} style>")
            elif lowered in URL_ATTRIBUTES and not _url_allowed(name, lowered, value):
                found.append(f"<{name} {attribute}={value[:120]!r}>")
            elif lowered in ("target", "formtarget") and value != "_blank":
                found.append(f"<{name} {attribute}={value!r}>")
            elif lowered == "http-equiv" and (value.lower(), node.get("content")) != (
                "x-dns-prefetch-control",
                "off",
            ):
                found.append(f"<{name} http-equiv={value!r}>")
        if name == "a" and "href" in node.attrib:
            if node.get("rel") != "noopener noreferrer" or node.get("target") != "_blank":
                found.append(f"<a> without target=_blank rel=noopener noreferrer: {node.attrib}")
    if styles > 2:  # the document's base style and the mail's own, nothing more
        found.append(f"{styles} <style> elements")
    return found
