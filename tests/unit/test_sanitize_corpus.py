"""The hostile corpus (tests/corpus/hostile_html) through posta.mail.sanitize: nothing
that runs, loads or navigates survives, as a browser would parse the result, also
after a second parse; sanitizing the result again changes nothing."""

from __future__ import annotations

from collections import defaultdict

import html5lib
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posta.mail.sanitize import SafeHtml, document, sanitize_html
from tests import hostile_corpus
from tests.hostile_corpus import IMAGES, PROXY, findings

VECTORS = list(hostile_corpus.load())
BY_SOURCE: dict[str, list[tuple[str, str]]] = defaultdict(list)
for ident, payload in VECTORS:
    BY_SOURCE[ident.rsplit("-", 1)[0]].append((ident, payload))


def proxy(url: str) -> str:
    return PROXY + url


def canonical(body: str) -> str:
    """The tree a browser builds, attributes in order (the order is nh3's choice)."""
    fragment = html5lib.parseFragment(body, treebuilder="etree")
    return str(html5lib.serialize(fragment, tree="etree", alphabetical_attributes=True))


def sanitized(payload: str, *, allow: bool) -> SafeHtml:
    return sanitize_html(payload, images=IMAGES, proxy=proxy if allow else None)


def test_the_corpus_is_there() -> None:
    assert set(BY_SOURCE) >= {
        "bleach",
        "dompurify",
        "html5lib_tree_construction",
        "owasp",
        "remote_css",
    }
    assert len(VECTORS) > 2000


@pytest.mark.parametrize("allow", [False, True], ids=["blocked", "allowed"])
@pytest.mark.parametrize("source", sorted(BY_SOURCE))
def test_nothing_runs_loads_or_navigates(source: str, allow: bool) -> None:
    found = {}
    for ident, payload in BY_SOURCE[source]:
        problems = findings(document(sanitized(payload, allow=allow)))
        if problems:
            found[ident] = problems[:3]
    assert not found, list(found.items())[:10]


@pytest.mark.parametrize("source", sorted(BY_SOURCE))
def test_a_second_parse_finds_nothing_either(source: str) -> None:
    """mXSS: what a browser makes of the output, serialized and sanitized again (an
    innerHTML round trip), is still clean."""
    found = {}
    for ident, payload in BY_SOURCE[source]:
        body = sanitized(payload, allow=False).body
        fragment = html5lib.parseFragment(body, treebuilder="etree")
        again = html5lib.serialize(fragment, tree="etree", quote_attr_values="always")
        problems = findings(document(SafeHtml(body=again, css="", blocked=0)))
        problems += findings(document(sanitized(again, allow=False)))
        if problems:
            found[ident] = problems[:3]
    assert not found, list(found.items())[:10]


@pytest.mark.parametrize("allow", [False, True], ids=["blocked", "allowed"])
@pytest.mark.parametrize("source", sorted(BY_SOURCE))
def test_sanitizing_the_output_again_changes_nothing(source: str, allow: bool) -> None:
    changed = {}
    for ident, payload in BY_SOURCE[source]:
        first = sanitized(payload, allow=allow)
        # A second pass sees no remote URL: the proxy's own are left as they are.
        body = sanitize_html(first.body, images=IMAGES, proxy=(lambda url: url) if allow else None)
        css = sanitize_html(f"<style>{first.css}</style>", images=IMAGES, proxy=lambda url: url)
        if (canonical(body.body), css.css, body.blocked) != (canonical(first.body), first.css, 0):
            changed[ident] = (first.body[:200], body.body[:200], first.css[:200], css.css[:200])
    assert not changed, list(changed.items())[:5]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from([payload for _, payload in VECTORS]), min_size=2, max_size=6),
    st.booleans(),
)
def test_vectors_in_any_company_stay_harmless(parts: list[str], allow: bool) -> None:
    """One vector's unclosed tag or string swallowing the next must not open a way."""
    assert findings(document(sanitized("".join(parts), allow=allow))) == []
