"""Filter rules as plain data: what both executors read (DESIGN §8).

The Sieve writer (posta.mailproto.sieve.script) turns these into a script the
mail server runs; the matcher (posta.mailproto.filtering.match) runs them in
Posta. Both follow one reading of a rule, set down here:

- a rule matches when all (or any) of its conditions hold; a rule without
  conditions matches every message;
- address fields (From, To, Cc, To or Cc): "contains" / "does not contain" look
  at the whole header as decoded (RFC 2047: names and addresses); "is", "is not",
  "begins with", "ends with" and "matches" look at each address (local@domain);
- other headers (Subject, any header by name): the decoded, unfolded value of
  each occurrence; a negated test holds when no occurrence matches, also when
  the header is missing (RFC 5228 §5.7, `not header`);
- body text: the decoded text of the message's text parts (RFC 5173 `:text`);
  only "contains" / "does not contain";
- size: "greater than" / "less than" the number of octets (RFC 5228 §5.9);
- "matches": `*` is any run of characters, `?` exactly one; every other
  character, backslash included, is itself;
- comparison ignores case unless the rule says otherwise, else it is octet by
  octet (i;octet); ignoring case is i;ascii-casemap (RFC 4790 §9.2: only a-z
  fold, also in the message) for a value whose cased letters are all ASCII, and
  i;unicode-casemap (RFC 5051, approximated in Posta by simple Unicode case
  folding) for a value with other cased letters (`needs_unicode_casemap`);
- actions run in a fixed order within a rule: mark read, flag, copy, move
  (Trash and Spam are moves to those folders), forward, stop. A message filed
  into a folder carries the flags set up to that moment (RFC 5232 §3); the
  inbox copy, kept unless a move took it away, carries all of them at the end.

Values are data: nothing in them is ever read as syntax by either executor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Field = Literal["from", "to", "cc", "to_or_cc", "subject", "body", "header", "size", "attachment"]
Operator = Literal[
    "contains", "not_contains", "is", "is_not", "begins", "ends", "matches",
    "over", "under", "yes", "no",
]
ActionKind = Literal["seen", "flag", "copy", "move", "trash", "spam", "forward"]

ADDRESS_FIELDS: frozenset[str] = frozenset({"from", "to", "cc", "to_or_cc"})
TEXT_OPERATORS: tuple[str, ...] = (
    "contains", "not_contains", "is", "is_not", "begins", "ends", "matches",
)
BODY_OPERATORS: tuple[str, ...] = ("contains", "not_contains")
SIZE_OPERATORS: tuple[str, ...] = ("over", "under")
ATTACHMENT_OPERATORS: tuple[str, ...] = ("yes", "no")
NEGATED: frozenset[str] = frozenset({"not_contains", "is_not"})
# The order actions take within a rule (see the module docstring).
ACTION_ORDER: tuple[str, ...] = ("seen", "flag", "copy", "move", "trash", "spam", "forward")
FILING: frozenset[str] = frozenset({"copy", "move", "trash", "spam"})


def operators_for(field: str) -> tuple[str, ...]:
    if field == "body":
        return BODY_OPERATORS
    if field == "size":
        return SIZE_OPERATORS
    if field == "attachment":
        return ATTACHMENT_OPERATORS
    return TEXT_OPERATORS


def clean_value(value: str) -> str:
    """A value as both executors compare it: line breaks become spaces (headers
    are compared unfolded, RFC 5228 §5.7) and NULs are dropped."""
    return value.replace("\r\n", " ").replace("\r", " ").replace("\n", " ").replace("\0", "")


def needs_unicode_casemap(value: str) -> bool:
    """Whether ignoring the case of `value` needs i;unicode-casemap: i;ascii-casemap
    folds only a-z (RFC 4790 §9.2), so a value with other cased letters does."""
    return any(ord(c) > 127 and c.lower() != c.upper() for c in value)


def valid_header_name(name: str) -> bool:
    """RFC 5322 §3.6.8: printable US-ASCII except colon, at least one."""
    return bool(name) and all(33 <= ord(c) <= 126 and c != ":" for c in name)


@dataclass(frozen=True)
class Condition:
    field: Field
    op: Operator
    value: str = ""
    header: str = ""  # the header name, for field "header"
    size: int = 0  # octets, for field "size"


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    folder: str = ""  # mailbox name (UTF-8, the server's delimiter), for filing
    address: str = ""  # for forward


@dataclass(frozen=True)
class FilterRule:
    conditions: tuple[Condition, ...]
    actions: tuple[Action, ...]
    match_all: bool = True
    case_sensitive: bool = False
    stop: bool = False

    def ordered_actions(self) -> list[Action]:
        return sorted(self.actions, key=lambda a: ACTION_ORDER.index(a.kind))
