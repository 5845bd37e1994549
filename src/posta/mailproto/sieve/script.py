"""Filter rules in, Sieve script text out (RFC 5228), with no Django.

One script holds the filters and then other sections (out-of-office's
`vacation`, an `include` of the user's own script): `render_script(rules,
extensions=..., trailer=...)`. `require` lists the union of what the rules and
the sections need, and only extensions the server announces: a script that
would need one it lacks is refused with `SieveUnsupported` (check first with
`missing_extensions`), so the caller can leave the filters to Posta's executor.

Every user value is a Sieve quoted string, escaped here and nowhere else
(`quote`): only `\\` and `"` are special inside one (RFC 5228 §2.4.2), and the
script never requires "variables" or "encoded-character", so `${...}` is plain
text (RFC 5229 §3, RFC 5228 §2.4.2.4). Line breaks in values become spaces
(posta.mailproto.filtering.spec.clean_value), as Posta's matcher reads them, and
user text never goes into a comment. In `:matches` patterns the wildcards the
user did not mean are escaped (`\\*`, `\\?`, `\\\\`, RFC 5228 §2.7.1).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from posta.mailproto.filtering.spec import (
    ADDRESS_FIELDS,
    NEGATED,
    Action,
    Condition,
    FilterRule,
    clean_value,
    needs_unicode_casemap,
    valid_header_name,
)

UNICODE_CASEMAP = "comparator-i;unicode-casemap"
# Extensions a script of ours may ask for (the list, plus mime for the
# attachment test, RFC 5703, and include for the user's own script, RFC 6609).
KNOWN = frozenset({
    "fileinto", "imap4flags", "copy", "body", "relational", "mailbox", "date",
    "vacation", "mime", "include", UNICODE_CASEMAP,
})


class SieveUnsupported(ValueError):
    """The server lacks extensions the rules need (`missing`)."""

    def __init__(self, missing: set[str]) -> None:
        super().__init__("the server lacks Sieve extensions: " + ", ".join(sorted(missing)))
        self.missing = missing


@dataclass(frozen=True)
class SieveSection:
    """Rendered Sieve commands to run after the filters, and what they need."""

    text: str
    extensions: frozenset[str] = field(default_factory=frozenset)
    # Left out for mail a rule sent to Trash or Spam (an out-of-office reply):
    # such rules set JUNKED and the section runs only while it is unset.
    unless_junked: bool = False


# The variable (RFC 5229) a rule filing to Trash or Spam sets when a section
# after the filters must know it.
JUNKED = "posta_junked"
_JUNK_KINDS = frozenset({"trash", "spam"})


def _junks(rule: FilterRule) -> bool:
    return any(action.kind in _JUNK_KINDS for action in rule.actions)


def _guarded(rules: Sequence[FilterRule], trailer: Sequence[SieveSection]) -> bool:
    return any(s.unless_junked for s in trailer) and any(_junks(r) for r in rules)


def quote(value: str) -> str:
    """`value` as a Sieve quoted string that means exactly `value`."""
    return '"' + clean_value(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _string_list(values: Sequence[str]) -> str:
    if len(values) == 1:
        return quote(values[0])
    return "[" + ", ".join(quote(v) for v in values) + "]"


def _literal_pattern(value: str) -> str:
    """`value` as a :matches pattern that matches only itself."""
    return value.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")


def _user_pattern(value: str) -> str:
    """The user's "matches" value: `*` and `?` are wildcards, a backslash is itself."""
    return value.replace("\\", "\\\\")


def _headers_of(cond: Condition) -> list[str]:
    if cond.field == "to_or_cc":
        return ["to", "cc"]
    if cond.field == "header":
        if not valid_header_name(cond.header):
            raise ValueError(f"not a header name: {cond.header!r}")
        return [cond.header]
    return [cond.field]


def _comparator(rule: FilterRule, value: str, extensions: frozenset[str]) -> str:
    if rule.case_sensitive:
        return ':comparator "i;octet" '
    if needs_unicode_casemap(value) and UNICODE_CASEMAP in extensions:
        return ':comparator "i;unicode-casemap" '
    return ""  # i;ascii-casemap, the default (RFC 5228 §2.7.3)


def _text_test(cond: Condition, rule: FilterRule, extensions: frozenset[str]) -> str:
    value = clean_value(cond.value)
    op = cond.op.removeprefix("not_") if cond.op != "is_not" else "is"
    if op == "contains":
        match, pattern = ":contains", value
    elif op == "is":
        match, pattern = ":is", value
    elif op == "begins":
        match, pattern = ":matches", _literal_pattern(value) + "*"
    elif op == "ends":
        match, pattern = ":matches", "*" + _literal_pattern(value)
    else:
        match, pattern = ":matches", _user_pattern(value)
    comparator = _comparator(rule, value, extensions)
    names = _string_list(_headers_of(cond))
    if cond.field == "body":
        test = f"body :text {comparator}{match} {quote(pattern)}"
    elif cond.field in ADDRESS_FIELDS and op != "contains":
        test = f"address :all {comparator}{match} {names} {quote(pattern)}"
    else:
        test = f"header {comparator}{match} {names} {quote(pattern)}"
    return f"not {test}" if cond.op in NEGATED else test


_ATTACHMENT = (
    "anyof("
    'header :mime :anychild :matches "Content-Disposition" "attachment*", '
    'header :mime :anychild :param "filename" :matches "Content-Disposition" "?*", '
    'header :mime :anychild :param "name" :matches "Content-Type" "?*")'
)


def render_test(cond: Condition, rule: FilterRule, extensions: frozenset[str]) -> str:
    if cond.field == "size":
        return f"size {':over' if cond.op == 'over' else ':under'} {max(int(cond.size), 0)}"
    if cond.field == "attachment":
        return _ATTACHMENT if cond.op == "yes" else f"not {_ATTACHMENT}"
    return _text_test(cond, rule, extensions)


def _render_action(action: Action, filed: set[str]) -> str:
    if action.kind in {"move", "trash", "spam"} and action.folder in filed:
        # A second fileinto into a folder already filed is dropped whole by
        # Pigeonhole (RFC 5228 §2.10.3 lets it store once), so it would not cancel
        # the implicit keep a move must cancel (§2.10.2): `discard` does.
        return f"fileinto {quote(action.folder)}; discard;"
    if action.kind in {"copy", "move", "trash", "spam"}:
        filed.add(action.folder)
    if action.kind == "seen":
        return 'addflag "\\\\Seen";'
    if action.kind == "flag":
        return 'addflag "\\\\Flagged";'
    if action.kind == "copy":
        return f"fileinto :copy {quote(action.folder)};"
    if action.kind in {"move", "trash", "spam"}:
        return f"fileinto {quote(action.folder)};"
    if action.kind == "forward":
        return f"redirect :copy {quote(action.address)};"
    raise ValueError(f"unknown action {action.kind!r}")


def render_rule(
    rule: FilterRule, *, extensions: frozenset[str] = KNOWN, mark_junk: bool = False,
    filed: set[str] | None = None,
) -> str:
    """One `if` block for `rule`; with `mark_junk`, filing to Trash or Spam also
    sets JUNKED. `filed` holds the folders earlier rules may file into (the
    writer adds this rule's)."""
    filed = set() if filed is None else filed
    tests = [render_test(c, rule, extensions) for c in rule.conditions]
    if not tests:
        head = "true"
    elif len(tests) == 1:
        head = tests[0]
    else:
        joined = ",\n    ".join(tests)
        head = f"{'allof' if rule.match_all else 'anyof'}(\n    {joined})"
    body = [_render_action(a, filed) for a in rule.ordered_actions()]
    if mark_junk and _junks(rule):
        body.insert(0, f'set "{JUNKED}" "1";')
    if rule.stop:
        body.append("stop;")
    inner = "\n".join(f"    {line}" for line in body) or "    # no action"
    return f"if {head} {{\n{inner}\n}}"


def rule_extensions(rule: FilterRule) -> set[str]:
    """The extensions `rule` needs on a server that has them all."""
    needed: set[str] = set()
    for action in rule.actions:
        if action.kind in {"seen", "flag"}:
            needed.add("imap4flags")
        if action.kind in {"copy", "move", "trash", "spam"}:
            needed.add("fileinto")
        if action.kind in {"copy", "forward"}:
            needed.add("copy")
    for cond in rule.conditions:
        if cond.field == "body":
            needed.add("body")
        if cond.field == "attachment":
            needed.add("mime")
        if (
            not rule.case_sensitive
            and cond.field not in {"size", "attachment"}
            and needs_unicode_casemap(cond.value)
        ):
            needed.add(UNICODE_CASEMAP)
    return needed


def missing_extensions(
    rules: Iterable[FilterRule],
    *,
    extensions: Iterable[str],
    trailer: Sequence[SieveSection] = (),
) -> set[str]:
    """What the server (announcing `extensions`) lacks for these rules and sections."""
    offered = set(extensions)
    needed: set[str] = set()
    for rule in rules:
        needed |= rule_extensions(rule)
    for section in trailer:
        needed |= set(section.extensions)
    if _guarded(list(rules), trailer):
        needed.add("variables")
    return needed - offered


def render_script(
    rules: Sequence[FilterRule],
    *,
    extensions: set[str] | frozenset[str],
    trailer: Sequence[SieveSection] = (),
) -> str:
    """The whole script: `require` (only what is used, only what the server
    announces), the rules in order, then the `trailer` sections in order.
    SieveUnsupported when the server lacks something they need."""
    offered = frozenset(extensions)
    missing = missing_extensions(rules, extensions=offered, trailer=trailer)
    if missing:
        raise SieveUnsupported(missing)
    needed: set[str] = set()
    for rule in rules:
        needed |= rule_extensions(rule)
    for section in trailer:
        needed |= set(section.extensions)
    guarded = _guarded(rules, trailer)
    if guarded:
        needed.add("variables")
    parts = ["# Generated by Posta: changes made here are replaced on the next save."]
    if needed:
        parts.append(f"require {_string_list(sorted(needed))};")
    filed: set[str] = set()
    parts.extend(
        render_rule(rule, extensions=offered, mark_junk=guarded, filed=filed) for rule in rules
    )
    for section in trailer:
        text = section.text.rstrip("\n")
        if not text.strip():
            continue
        if guarded and section.unless_junked:
            inner = "\n".join("    " + line if line else line for line in text.splitlines())
            text = f'if not string :is "${{{JUNKED}}}" "1" {{\n{inner}\n}}'
        parts.append(text)
    return "\n\n".join(parts) + "\n"
