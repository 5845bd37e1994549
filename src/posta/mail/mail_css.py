"""Mail CSS made harmless: the one cleaner of style attributes and `<style>` blocks.

CSS in mail may lay the message out; it may not load anything nor run anything.
A browser fetches from CSS through `url()` (backgrounds, fonts, cursors, masks,
list images, `@import url()`), through bare strings (`@import "…"`, `image-set("…")`,
`-webkit-image-set("…")`, and the `src()` and `image()` functions of CSS Images 4),
and in old engines runs `expression()`, `behavior:` and `-moz-binding`. The cleaner:

1. drops the HTML comment marks `<!--` and `-->` newsletters wrap their CSS in
   (they would be junk before the first rule once `<` is gone), every backslash
   (a CSS escape can spell `url` or `@import`: `u\\72 l(`), every `<` (nothing may
   close the `<style>` the CSS is served in) and every comment (`u/**/rl(`,
   `expr/**/ession(`): these first, so that what follows sees the words a browser
   would see;
2. drops every `@import`;
3. disables the script hooks and the string-taking image functions by renaming
   them (`invalid(`): the browser then drops the declaration;
4. sets to `none` the properties whose `url()` a reader never shows: those naming
   an SVG element (`filter`, `clip-path`, `marker`, `fill`, `stroke`: mail keeps no
   SVG and the image proxy passes no SVG document) and those a browser fetches in
   CORS mode (`mask`, `mask-image`, `mask-border`, `-webkit-mask-box-image`,
   `shape-outside`: CSS Masking §7, CSS Shapes §7.1), which the sandboxed frame's
   opaque origin fails against the proxy; they would only hold back "Show images"
   for nothing and then fail in the console;
5. hands every other `url()` to `rewrite`, which returns the URL to use (a `data:` image
   of the message's own, the image proxy) or None; a `url(` left open at the end of
   the text counts (CSS Syntax §4.3.6: end of input closes it), and so does an
   unclosed string inside it;
6. splits every remaining `//` (into `/ /`), so that no string outside `url()` can be a network
   address for any CSS function, present or future.

Each step only removes or renames text, and the last step runs over the result of
the others: joining two pieces (by removing what was between them) can only make a
word that a later step sees.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["clean_css"]

_COMMENT = re.compile(r"/\*.*?(?:\*/|\Z)", re.S)
_IMPORT = re.compile(r"@import[^;]*;?", re.I)
_SCRIPT_HOOK = re.compile(r"expression\s*\(|behavior\s*:|-moz-binding|javascript:|vbscript:", re.I)
_HOOK_WORDS = ("expression", "behavior", "binding", "script:")
_STRING_IMAGE = re.compile(r"(?:-webkit-)?image-set\s*\(|\bsrc\s*\(|\bimage\s*\(", re.I)
_NEVER_SHOWN = re.compile(
    r"(?<![\w-])((?:-webkit-)?(?:filter|clip-path|marker(?:-start|-mid|-end)?|fill|stroke"
    r"|mask(?:-image|-border(?:-source)?|-box-image(?:-source)?)?|shape-outside))\s*:([^;{}]*)",
    re.I,
)
_URL_OR_SLASHES = re.compile(
    r"""url\s*\(\s*(?:"([^"]*)"?|'([^']*)'?|([^)]*?))\s*(?:\)|\Z)|/(?=/)""", re.I | re.S
)


def _never_shown(match: re.Match[str]) -> str:
    prop, value = match.groups()
    return f"{prop}:none" if "url" in value.lower() else match.group(0)


def clean_css(text: str, *, rewrite: Callable[[str], str | None]) -> tuple[str, int]:
    """`text` with nothing left that loads or runs, and the number of `@import`s
    dropped. `rewrite` decides each `url()`: the URL to put there, or None for
    `none`."""
    text = text.replace("<!--", "").replace("-->", "").replace("\\", "").replace("<", "")
    if "/*" in text:
        text = _COMMENT.sub("", text)
    imports = 0
    if "@import" in text.lower():
        imports = len(_IMPORT.findall(text))
        text = _IMPORT.sub("", text)
    # Each later pass runs only where its word occurs: most styles hold none, and the
    # passes only rename or remove, so they make no word a later gate would miss.
    lowered = text.lower()
    if any(word in lowered for word in _HOOK_WORDS):
        text = _SCRIPT_HOOK.sub("invalid", text)
    if "image" in lowered or "src" in lowered:
        text = _STRING_IMAGE.sub("invalid(", text)
    if "url" in lowered:
        text = _NEVER_SHOWN.sub(_never_shown, text)
    elif "//" not in text:
        return text, imports

    def repl(match: re.Match[str]) -> str:
        if match.group(0) == "/":
            return "/ "
        url = next((g for g in match.groups() if g is not None), "")
        target = rewrite(url)
        # Our targets never hold a quote; should one, it could end the string.
        return f'url("{target}")' if target and '"' not in target else "none"

    return _URL_OR_SLASHES.sub(repl, text), imports
