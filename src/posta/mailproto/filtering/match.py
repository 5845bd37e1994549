"""Posta's own reading of filter rules: a message in, what to do with it out.

Pure and shared by the arrival pipeline (new mail), "apply to existing mail" and
any check from the command line. It reads a rule exactly as the Sieve writer
writes it (posta.mailproto.filtering.spec says how), and `plan` follows Sieve's
execution model (RFC 5228 §2.10.2 implicit keep, RFC 5232 flags, RFC 3894
:copy), so a rule set gives the same result here as on a server running it.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import Message as EmailMessage
from functools import cached_property

from posta.mailproto.filtering.spec import (
    ADDRESS_FIELDS,
    NEGATED,
    Condition,
    FilterRule,
    clean_value,
    needs_unicode_casemap,
)
from posta.mailproto.mime.headers import (
    decode_bytes,
    decode_with_charset,
    decode_words,
    parse_addresses,
)
from posta.mailproto.mime.parse import html_to_text
from posta.mailproto.mime.tree import body_of, build_tree, split_raw

FLAG_NAMES = {"seen": "\\Seen", "flag": "\\Flagged"}
_HEADER_LINE = re.compile(rb"^([!-9;-~]+)[ \t]*:(.*)$")


def fold(text: str) -> str:
    """Case folding for i;unicode-casemap (RFC 5051), in its simple form: each
    character folded alone (a fold into several characters, such as "ß" into
    "ss", is not applied, as in the simple Unicode mappings RFC 5051 uses)."""
    if text.isascii():
        return text.lower()
    out = []
    for ch in text:
        folded = ch.casefold()
        out.append(folded if len(folded) == 1 else ch)
    return "".join(out)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_fold(text: str) -> str:
    """Case folding for i;ascii-casemap (RFC 4790 §9.2): A-Z only."""
    return text.translate(_ASCII_LOWER)


def _is_address(text: str) -> bool:
    local, at, domain = text.rpartition("@")
    return bool(at and local and domain)


def _header_fields(header: bytes) -> list[tuple[str, str]]:
    """(lower-case name, raw unfolded value) of every field of a header block."""
    fields: list[tuple[str, bytes]] = []
    for line in header.replace(b"\r\n", b"\n").split(b"\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + line)  # RFC 5322 §2.2.3: unfold
            continue
        found = _HEADER_LINE.match(line)
        if found:
            fields.append((found.group(1).decode("ascii").lower(), found.group(2)))
    return [(name, decode_bytes(value).strip()) for name, value in fields]


@dataclass
class MailView:
    """What rules look at in one message."""

    raw: bytes
    size: int

    @cached_property
    def _split(self) -> tuple[bytes, bytes]:
        return split_raw(self.raw)

    @cached_property
    def fields(self) -> list[tuple[str, str]]:
        return _header_fields(self._split[0])

    def header_values(self, names: Sequence[str]) -> list[str]:
        """Each occurrence of the fields `names`, RFC 2047-decoded and unfolded
        (RFC 5228 §5.7)."""
        wanted = {n.lower() for n in names}
        return [decode_words(value) for name, value in self.fields if name in wanted]

    def addresses(self, names: Sequence[str]) -> list[str]:
        """The addresses (local@domain) in the fields `names` (RFC 5228 §5.1, :all).

        A field holding no valid address at all (an empty group such as
        "undisclosed-recipients:;", a bare name, an undecoded encoded word) counts
        as its whole raw value, as Pigeonhole reads it: RFC 5228 §2.7.4 leaves
        such a field to the implementation, and both executors must agree."""
        wanted = {n.lower() for n in names}
        found: list[str] = []
        for name, value in self.fields:
            if name in wanted:
                valid = [a.email for a in parse_addresses(value) if _is_address(a.email)]
                found.extend(valid or [value])
        return found

    @cached_property
    def _tree(self) -> EmailMessage | None:
        try:
            return build_tree(self.raw)
        except Exception:  # noqa: BLE001 - hostile input may break any parser
            return None

    @cached_property
    def body_texts(self) -> list[str]:
        """The decoded text of each text part (RFC 5173 `:text`)."""
        tree = self._tree
        if tree is None:
            return [decode_bytes(self._split[1])]
        texts: list[str] = []
        for part in tree.walk():
            if part.is_multipart() or part.get_content_maintype() != "text":
                continue
            if _is_attachment(part):
                continue
            charset = part.get_content_charset()
            text = _decoded_text(part, charset)
            if part.get_content_subtype() == "html":
                text = html_to_text(text)
            texts.append(text)
        return texts

    @cached_property
    def has_attachment(self) -> bool:
        tree = self._tree
        if tree is None:
            return False
        return any(_is_attachment(part) for part in tree.walk() if not part.is_multipart())


def _decoded_text(part: EmailMessage, charset: str | None) -> str:
    data = body_of(part)
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if encoding == "base64":
        try:
            data = base64.b64decode(b"".join(data.split()) + b"==", validate=False)
        except (binascii.Error, ValueError):
            pass
    elif encoding == "quoted-printable":
        data = quopri.decodestring(data)
    return decode_with_charset(data, charset)


def _is_attachment(part: EmailMessage) -> bool:
    """The attachment test of the Sieve writer (posta.mailproto.sieve.script): a
    disposition "attachment", a filename, or a Content-Type name."""
    disposition = str(part.get("Content-Disposition", "")).strip().lower()
    if disposition.startswith("attachment"):
        return True
    return bool(part.get_param("filename", header="content-disposition")) or bool(
        part.get_param("name")
    )


def _glob(pattern: str) -> re.Pattern[str]:
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def _compare(op: str, value: str, candidate: str) -> bool:
    if op == "contains":
        return value in candidate
    if op == "is":
        return candidate == value
    if op == "begins":
        return candidate.startswith(value)
    if op == "ends":
        return candidate.endswith(value)
    return _glob(value).fullmatch(candidate) is not None  # matches


def _text_holds(cond: Condition, rule: FilterRule, view: MailView) -> bool:
    op = {"not_contains": "contains", "is_not": "is"}.get(cond.op, cond.op)
    value = clean_value(cond.value)
    if cond.field == "body":
        candidates = view.body_texts
    else:
        names = (
            ["to", "cc"] if cond.field == "to_or_cc"
            else [cond.header] if cond.field == "header"
            else [cond.field]
        )
        if cond.field in ADDRESS_FIELDS and op != "contains":
            candidates = view.addresses(names)
        else:
            candidates = view.header_values(names)
    if not rule.case_sensitive:
        # The comparator the Sieve writer picks (spec: i;ascii-casemap unless the
        # value needs i;unicode-casemap): "k" must not match a Kelvin sign "K".
        folding = fold if needs_unicode_casemap(value) else ascii_fold
        value = folding(value)
        candidates = [folding(c) for c in candidates]
    found = any(_compare(op, value, c) for c in candidates)
    return not found if cond.op in NEGATED else found


def holds(cond: Condition, rule: FilterRule, view: MailView) -> bool:
    if cond.field == "size":
        return view.size > cond.size if cond.op == "over" else view.size < cond.size
    if cond.field == "attachment":
        return view.has_attachment if cond.op == "yes" else not view.has_attachment
    return _text_holds(cond, rule, view)


def matches(rule: FilterRule, view: MailView) -> bool:
    if not rule.conditions:
        return True
    results = (holds(c, rule, view) for c in rule.conditions)
    return all(results) if rule.match_all else any(results)


@dataclass(frozen=True)
class Filing:
    """A copy of the message filed into `folder` with `flags` (the flags set when
    the filing ran, RFC 5232 §3); `kind` is the action that filed it."""

    folder: str
    flags: frozenset[str]
    kind: str


@dataclass
class Plan:
    """What the rules decided for one message."""

    keep: bool = True  # the inbox copy stays (implicit keep, RFC 5228 §2.10.2)
    keep_flags: set[str] = field(default_factory=set)
    filings: list[Filing] = field(default_factory=list)
    forwards: list[str] = field(default_factory=list)
    stopped: bool = False
    matched: list[int] = field(default_factory=list)  # indexes of the rules that matched

    @property
    def acts(self) -> bool:
        return bool(self.filings or self.forwards or self.keep_flags or not self.keep)


def _file(result: Plan, filed: dict[str, int], folder: str, kind: str,
          flags: frozenset[str]) -> None:
    """One copy per folder (RFC 5228 §2.10.3): a second filing into a folder is
    not repeated, but the copy there takes the flags of the later filing (as
    Pigeonhole merges the two), and a move makes the filing a move."""
    if folder not in filed:
        filed[folder] = len(result.filings)
        result.filings.append(Filing(folder, flags, kind))
        return
    number = filed[folder]
    earlier = result.filings[number]
    merged = earlier.kind if kind == "copy" or earlier.kind != "copy" else kind
    result.filings[number] = Filing(folder, flags, merged)


def plan(rules: Sequence[FilterRule], view: MailView) -> Plan:
    """Run `rules` in order over the message, as a Sieve interpreter would."""
    result = Plan()
    flags: set[str] = set()
    filed: dict[str, int] = {}  # folder: index of its filing
    for number, rule in enumerate(rules):
        if not matches(rule, view):
            continue
        result.matched.append(number)
        for action in rule.ordered_actions():
            if action.kind in FLAG_NAMES:
                flags.add(FLAG_NAMES[action.kind])
            elif action.kind == "forward":
                if action.address not in result.forwards:
                    result.forwards.append(action.address)
            else:
                if action.kind != "copy":
                    result.keep = False
                _file(result, filed, action.folder, action.kind, frozenset(flags))
        if rule.stop:
            result.stopped = True
            break
    result.keep_flags = flags
    return result
