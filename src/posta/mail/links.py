"""Mail's side of the CRM links: the reader's panel (linked records and
suggestions), linking a message or its conversation, records made from a message,
a record's mail timeline, and the keeper that holds linked mail in Imported.

crm stores identities as opaque strings (DESIGN §9); this module is where a
message becomes its identity (`Message.identity`, the same for every copy of the
mail in any folder, account or mailbox).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import phonenumbers
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from posta.core.errors import PostaError
from posta.crm import links as crm_links
from posta.crm import services as crm
from posta.crm.freemail import is_free_domain
from posta.crm.models import Contact, Kind, Lead, Link, Organization, Record
from posta.mail import blobs, keepers
from posta.mail.models import Location, Message, OutgoingMessage
from posta.mail.sanitize import read_message
from posta.users.models import User

# --- the keeper -------------------------------------------------------------------


def _linked_keeper(user_id: int, message_ids: Sequence[int]) -> Collection[int]:
    """A message linked to a record its owner may see is kept (the Imported folder)."""
    rows = list(
        Message.objects.filter(user_id=user_id, pk__in=list(message_ids)).values_list(
            "pk", "identity"
        )
    )
    if not rows:
        return set()
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return set()
    linked = crm_links.identities_linked_for(user, [identity for _pk, identity in rows])
    return {pk for pk, identity in rows if identity in linked}


def register() -> None:
    """Called from MailConfig.ready()."""
    keepers.register_keeper("crm.links", _linked_keeper)


# --- the reader's panel -----------------------------------------------------------


@dataclass
class Suggestion:
    record: Record
    reason: str  # the address or domain that matched


@dataclass
class Candidate:
    """Someone in the message who is no record yet: a "create" proposal."""

    name: str
    email: str
    domain: str  # "" for free-mail domains or a domain an organization has already
    known: bool = False  # the address is a record's already: no contact or lead proposed


@dataclass
class Panel:
    message: Message
    linked: list[crm_links.VisibleLink]
    suggestions: list[Suggestion] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def linked_refs(self) -> set[str]:
        return {v.record.ref for v in self.linked}


def _people(message: Message) -> list[tuple[str, str]]:
    people = [(message.from_name, message.from_email)]
    for pair in [*message.to, *message.cc]:
        if isinstance(pair, list | tuple) and len(pair) == 2:
            people.append((str(pair[0]), str(pair[1])))
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, email in people:
        email = email.strip().lower()
        if email and "@" in email and email not in seen:
            seen.add(email)
            out.append((name.strip(), email))
    return out


def _own_addresses(user: User) -> set[str]:
    return {e.lower() for e in user.mail_accounts.values_list("email", flat=True) if e}


def panel_for(user: User, message: Message) -> Panel:
    """The linked records of `message` the user may see, and suggestions: its
    From/To/Cc matched to records' addresses, organizations by the senders' email
    domains (never free-mail, ISP or certified-mail domains)."""
    panel = Panel(message, crm_links.links_for_identity(user, message.identity))
    linked = panel.linked_refs
    own = _own_addresses(user)
    people = [(n, e) for n, e in _people(message) if e not in own]
    matched: set[str] = set()
    for record, email in crm.records_with_emails(user, [e for _n, e in people]):
        matched.add(email)
        if record.ref not in linked:
            panel.suggestions.append(Suggestion(record, email))
    extra = crm.crm_settings().extra_free_domains
    domains = {
        e.rpartition("@")[2] for _n, e in people if not is_free_domain(e.rpartition("@")[2], extra)
    }
    known_domains: set[str] = set()
    for org in crm.organizations_with_domains(user, domains):
        known_domains.update(crm.domains_of(org))
        if org.ref not in linked and all(s.record.ref != org.ref for s in panel.suggestions):
            panel.suggestions.append(Suggestion(org, next(iter(crm.domains_of(org)), "")))
    for name, email in people:
        domain = email.rpartition("@")[2]
        if domain not in domains or domain in known_domains:
            domain = ""
        if email not in matched or domain:
            panel.candidates.append(Candidate(name, email, domain, known=email in matched))
    return panel


# --- linking ----------------------------------------------------------------------


def _conversation_identities(user: User, message: Message) -> list[str]:
    if message.thread_id is None:
        return [message.identity]
    return list(
        Message.objects.filter(user=user, thread_id=message.thread_id).values_list(
            "identity", flat=True
        )[:2000]
    )


def do_link_message(
    user: User, message: Message, record: Record, *, conversation: bool = False
) -> int:
    """Link the message (or its whole conversation) to a record the user sees."""
    identities = (
        _conversation_identities(user, message) if conversation else [message.identity]
    )
    return crm_links.do_link(record, identities, by=user)


def unlink_lets_go(user: User, message: Message, record: Record) -> bool:
    """Whether unlinking would let the message go: it is in no mailbox and nothing
    else keeps it (the page asks first)."""
    if Location.objects.filter(message=message).exists():
        return False
    others = [v for v in crm_links.links_for_identity(user, message.identity)
              if v.record.ref != record.ref]
    if others:
        return False
    needed = keepers.needed(user.pk, [message.pk])
    if message.pk not in needed:
        return True
    # Kept only by this link?
    with transaction.atomic():
        sid = transaction.savepoint()
        crm_links.do_unlink(record, [message.identity])
        still = message.pk in keepers.needed(user.pk, [message.pk])
        transaction.savepoint_rollback(sid)
    return not still


def do_unlink_message(user: User, message: Message, record: Record) -> bool:
    """Unlink; a message in no mailbox that nothing else keeps goes with its last
    link. Returns whether it went."""
    crm_links.do_unlink(record, [message.identity])
    return keepers.do_let_go(user.pk, [message.pk]) > 0


def do_delete_record(user: User, record: Record) -> None:
    """Delete a record; the user's messages it alone kept in Imported go with it."""
    identities = crm.do_delete_record(record)
    ids = list(
        Message.objects.filter(user=user, identity__in=identities, locations__isnull=True)
        .values_list("pk", flat=True)
    )
    keepers.do_let_go(user.pk, ids)


# --- a record made from a message -------------------------------------------------

_PHONE_HINT = re.compile(r"\+?\d[\d ()./-]{6,}\d")


def signature_phones(text: str, region: str, *, limit: int = 3) -> list[str]:
    """Phone numbers in the last lines of a message's text (its signature), E.164."""
    tail = "\n".join(_without_quotes(text).splitlines()[-25:])
    out: list[str] = []
    for match in phonenumbers.PhoneNumberMatcher(tail, region or "IT"):
        number = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        if number not in out:
            out.append(number)
        if len(out) == limit:
            break
    return out


def _without_quotes(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if line.startswith(">"):
            continue
        lines.append(line)
    return "\n".join(lines)


def _body_text(message: Message) -> str:
    if not message.blob_key:
        return ""
    try:
        return read_message(blobs.get(message.blob_key)).text
    except FileNotFoundError:
        return ""


def _split_name(name: str, email: str) -> tuple[str, str]:
    name = name.strip().strip('"')
    if not name:
        local = email.partition("@")[0]
        name = " ".join(part.capitalize() for part in re.split(r"[._-]+", local) if part)
    if "," in name:  # "Rossi, Mario"
        last, _sep, first = name.partition(",")
        return first.strip(), last.strip()
    first, _sep, last = name.partition(" ")
    return first, last


def _organization_name(domain: str) -> str:
    label = domain.split(".")[-2] if domain.count(".") >= 1 else domain
    return label.replace("-", " ").title()


@transaction.atomic
def do_create_from_message(user: User, message: Message, *, kind: str, email: str) -> Record:
    """A new record from someone in the message: name from the display name, the
    address, phone numbers found in the signature (E.164, the CRM's default
    region), organization from the domain (found or created; never for free-mail
    domains). The new record is linked to the message at once."""
    email = email.strip().lower()
    names = dict((e, n) for n, e in _people(message))
    if email not in names:
        raise PostaError("not_in_message", _("This address is not in the message."))
    name = names[email]
    domain = email.rpartition("@")[2]
    settings_row = crm.crm_settings()
    free = is_free_domain(domain, settings_row.extra_free_domains)
    is_sender = email == message.from_email.strip().lower()
    phones = (
        signature_phones(_body_text(message), settings_row.phone_region) if is_sender else []
    )
    record: Record
    if kind == Kind.ORGANIZATION:
        if free:
            raise PostaError(
                "free_domain",
                _("%(domain)s is a free mail provider, not an organization.") % {"domain": domain},
            )
        found = crm.organizations_with_domains(user, [domain])
        if found:
            record = found[0]
        else:
            record = crm.do_save_record(
                Organization(owner=user, name=_organization_name(domain)),
                phones=phones, domains=[domain],
            )  # fmt: skip
    elif kind == Kind.CONTACT:
        first, last = _split_name(name, email)
        org = None
        if not free:
            orgs = crm.organizations_with_domains(user, [domain])
            org = orgs[0] if orgs else None
        record = crm.do_save_record(
            Contact(owner=user, first_name=first[:100], last_name=last[:100], organization=org),
            emails=[email], phones=phones,
        )  # fmt: skip
    elif kind == Kind.LEAD:
        first, last = _split_name(name, email)
        record = crm.do_save_record(
            Lead(
                owner=user, name=f"{first} {last}".strip()[:200],
                company="" if free else _organization_name(domain), source=str(_("Email")),
            ),
            emails=[email], phones=phones,
        )  # fmt: skip
    else:
        raise PostaError("bad_kind", _("Choose a contact, an organization or a lead."))
    crm_links.do_link(record, [message.identity], by=user)
    return record


# --- a record's timeline ----------------------------------------------------------


@dataclass
class TimelineEntry:
    message: Message
    account_label: str
    outgoing: bool
    count: int  # messages of the conversation linked to the record


def record_timeline(
    user: User, record: Record, *, direction: str = "", limit: int = 100
) -> list[TimelineEntry]:
    """The record's linked mail in the user's store as conversations, newest
    first: each conversation at its newest linked message, with the account it is
    in. `direction`: "in" (received), "out" (sent by the user), or all."""
    identities = crm_links.identities_of(record)
    own = _own_addresses(user)
    messages = list(
        Message.objects.filter(user=user, identity__in=identities).order_by("-date", "-id")[:2000]
    )
    if direction == "in":
        messages = [m for m in messages if m.from_email.lower() not in own]
    elif direction == "out":
        messages = [m for m in messages if m.from_email.lower() in own]
    accounts: dict[int, str] = {}
    for message_id, description, email in Location.objects.filter(
        message__in=messages[: limit * 5]
    ).values_list("message_id", "folder__account__description", "folder__account__email"):
        accounts.setdefault(message_id, description or email)
    entries: dict[int, TimelineEntry] = {}
    for m in messages:
        key = m.thread_id or -m.pk
        if key in entries:
            entries[key].count += 1
            continue
        if len(entries) == limit:
            continue
        entries[key] = TimelineEntry(
            m, accounts.get(m.pk, str(_("Imported"))), m.from_email.lower() in own, 1
        )
    return list(entries.values())


# --- compose: "Link to" -----------------------------------------------------------

MAX_COMPOSE_LINKS = 20


def split_refs(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[\s,;]+", text or "") if part.strip()]


def check_set_outgoing_links(user: User, outgoing: OutgoingMessage, text: str) -> None:
    """Keep on the message being written the records it is to be linked to (each
    one the user may see: PostaError 404 otherwise)."""
    refs: list[str] = []
    for ref in split_refs(text)[:MAX_COMPOSE_LINKS]:
        record = crm.access_ref(user, ref)
        if record.ref not in refs:
            refs.append(record.ref)
    if refs != list(outgoing.crm_links or []):
        outgoing.crm_links = refs
        OutgoingMessage.objects.filter(pk=outgoing.pk).update(crm_links=refs)


def starting_links(user: User, *, source: Message | None, link: str = "") -> list[str]:
    """The records a new message starts linked to: those of the message answered
    or forwarded (that the user sees), and the record it was written from."""
    refs: list[str] = []
    if source is not None:
        refs += [v.record.ref for v in crm_links.links_for_identity(user, source.identity)]
    if link:
        record = crm.access_ref(user, link)
        if record.ref not in refs:
            refs.append(record.ref)
    return refs


def records_named(user: User, refs: Sequence[str]) -> list[Record]:
    """The records behind `refs` the user may see (compose shows their names)."""
    out: list[Record] = []
    for ref in refs:
        try:
            out.append(crm.access_ref(user, ref))
        except PostaError:
            continue
    return out


def do_link_sent(user_id: int, message_ids: Sequence[int]) -> int:
    """Mail sent from Posta joins the records chosen in compose (run when the sent
    message is stored, before its Sent copy exists)."""
    rows = list(
        Message.objects.filter(user_id=user_id, pk__in=list(message_ids)).values_list(
            "message_id", "identity"
        )
    )
    identities = {header: identity for header, identity in rows if header}
    if not identities:
        return 0
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return 0
    total = 0
    for header, refs in OutgoingMessage.objects.filter(
        user_id=user_id, message_id__in=list(identities)
    ).values_list("message_id", "crm_links"):
        for record in records_named(user, list(refs or [])):
            total += crm_links.do_link(
                record, [identities[header]], by=user, how=Link.How.COMPOSE
            )
    return total
