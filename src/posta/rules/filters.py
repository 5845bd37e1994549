"""The user's filters: reading, checking, saving and ordering them (issue 12).

Database only (the web's Filters tab calls these; STYLE §1). A saved change bumps
each affected account's `FilterServer.wanted_revision` and sends
`posta.rules.signals.filters_changed` after commit, on which the rules worker
writes the new Sieve script to servers that run the filters.

A rule row becomes the plain rule both executors read
(posta.mailproto.filtering.spec.FilterRule) per account with `resolve`: folders
are looked up by their IMAP name in that account, Trash and Spam by role. A rule
that names a folder the account does not have is *broken* there, with the
reason in words; it is shown so in the tab and on the folder list, and neither
executor runs it until it is fixed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import F, Max, Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from posta.accounts.models import Account, Folder
from posta.core.errors import PostaError, not_found
from posta.mail import blobs
from posta.mail import signals as mail_signals
from posta.mail.models import Location, Message
from posta.mailproto.filtering import spec
from posta.mailproto.filtering.match import MailView
from posta.rules import signals
from posta.rules.filter_models import FilterRule, FilterServer
from posta.users.models import User

MAX_RULES = 500
MAX_CONDITIONS = 20
MAX_VALUE = 500

FIELD_LABELS = {
    "from": gettext_lazy("From"),
    "to": gettext_lazy("To"),
    "cc": gettext_lazy("Cc"),
    "to_or_cc": gettext_lazy("To or Cc"),
    "subject": gettext_lazy("Subject"),
    "body": gettext_lazy("Body text"),
    "header": gettext_lazy("Header"),
    "size": gettext_lazy("Size"),
    "attachment": gettext_lazy("Has attachments"),
}
OPERATOR_LABELS = {
    "contains": gettext_lazy("contains"),
    "not_contains": gettext_lazy("does not contain"),
    "is": gettext_lazy("is"),
    "is_not": gettext_lazy("is not"),
    "begins": gettext_lazy("begins with"),
    "ends": gettext_lazy("ends with"),
    "matches": gettext_lazy("matches"),
    "over": gettext_lazy("greater than (KB)"),
    "under": gettext_lazy("less than (KB)"),
    "yes": gettext_lazy("yes"),
    "no": gettext_lazy("no"),
}
ACTION_LABELS = {
    "move": gettext_lazy("Move to folder"),
    "copy": gettext_lazy("Copy to folder"),
    "seen": gettext_lazy("Mark as read"),
    "flag": gettext_lazy("Flag"),
    "trash": gettext_lazy("Delete (to Trash)"),
    "spam": gettext_lazy("Mark as spam"),
    "forward": gettext_lazy("Forward a copy to"),
}
ACTIONS_WITH_FOLDER = ("move", "copy")


@dataclass
class RuleData:
    """What the rule form submits, shaped by the view (not validated yet)."""

    name: str = ""
    account_id: int | None = None
    enabled: bool = True
    match_all: bool = True
    case_sensitive: bool = False
    stop: bool = False
    conditions: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Resolved:
    """One rule as it stands for one account."""

    rule: FilterRule
    account: Account
    spec: spec.FilterRule | None  # None when broken
    problems: list[str]

    @property
    def broken(self) -> bool:
        return self.spec is None


# --- reading ----------------------------------------------------------------------


def rules_of(user: User) -> list[FilterRule]:
    return list(FilterRule.objects.filter(user=user).select_related("account"))


def access_rule(user: User, rule_id: int) -> FilterRule:
    rule = FilterRule.objects.filter(pk=rule_id, user=user).first()
    if rule is None:
        raise not_found(gettext_lazy("This filter does not exist, or it is not yours."))
    return rule


def rules_for_account(account: Account) -> list[FilterRule]:
    """The enabled rules that apply to `account`, in order."""
    return list(
        FilterRule.objects.filter(
            Q(account=account) | Q(account__isnull=True), user_id=account.user_id, enabled=True
        )
    )


def _folders(account: Account) -> tuple[dict[str, Folder], dict[str, Folder]]:
    by_name: dict[str, Folder] = {}
    by_role: dict[str, Folder] = {}
    for f in Folder.objects.filter(account=account, selectable=True):
        by_name[f.name] = f
        if f.role:
            by_role.setdefault(f.role, f)
    return by_name, by_role


def resolve(rule: FilterRule, account: Account,
            folders: tuple[dict[str, Folder], dict[str, Folder]] | None = None) -> Resolved:
    """`rule` as the executors read it for `account`, or why it is broken there."""
    by_name, by_role = folders or _folders(account)
    problems: list[str] = []
    actions: list[spec.Action] = []
    for item in rule.actions:
        kind = item.get("kind", "")
        if kind in ACTIONS_WITH_FOLDER:
            target = by_name.get(item.get("folder", ""))
            if target is None:
                problems.append(
                    _("The folder “%(folder)s” no longer exists in %(account)s.")
                    % {"folder": item.get("label") or item.get("folder", ""),
                       "account": account.email or account.description}
                )
                continue
            actions.append(spec.Action(kind, folder=target.display_name))
        elif kind in ("trash", "spam"):
            target = by_role.get(kind)
            if target is None:
                missing = (
                    _("%(account)s has no Trash folder.") if kind == "trash"
                    else _("%(account)s has no Spam folder.")
                )
                problems.append(missing % {"account": account.email or account.description})
                continue
            actions.append(spec.Action(kind, folder=target.display_name))
        elif kind in ("seen", "flag"):
            actions.append(spec.Action(kind))
        elif kind == "forward":
            actions.append(spec.Action("forward", address=item.get("address", "")))
    conditions = tuple(
        spec.Condition(
            field=c["field"], op=c["op"], value=c.get("value", ""),
            header=c.get("header", ""), size=int(c.get("size", 0)),
        )
        for c in rule.conditions
    )
    if problems:
        return Resolved(rule, account, None, problems)
    return Resolved(
        rule,
        account,
        spec.FilterRule(
            conditions=conditions,
            actions=tuple(actions),
            match_all=rule.match_all,
            case_sensitive=rule.case_sensitive,
            stop=rule.stop,
        ),
        [],
    )


def resolved_for_account(account: Account) -> list[Resolved]:
    folders = _folders(account)
    return [resolve(r, account, folders) for r in rules_for_account(account)]


def broken_by_account(user: User) -> dict[int, list[Resolved]]:
    """{account id: its broken rules} (the folder list's warning)."""
    found: dict[int, list[Resolved]] = {}
    rules = [r for r in rules_of(user) if r.enabled]
    if not rules:
        return found
    for account in Account.objects.filter(user=user):
        folders = _folders(account)
        for rule in rules:
            if rule.account_id in (None, account.pk):
                resolved = resolve(rule, account, folders)
                if resolved.broken:
                    found.setdefault(account.pk, []).append(resolved)
    return found


def summary(rule: FilterRule) -> str:
    """One line: "From contains @acme.it → move to Clienti/Acme"."""
    join = _(" and ") if rule.match_all else _(" or ")
    parts = []
    for c in rule.conditions:
        label = str(FIELD_LABELS.get(c["field"], c["field"]))
        if c["field"] == "header":
            label = c.get("header", "")
        if c["field"] == "size":
            parts.append(f"{label} {OPERATOR_LABELS[c['op']]} {int(c.get('size', 0)) // 1024}")
        elif c["field"] == "attachment":
            parts.append(label if c["op"] == "yes" else _("no attachments"))
        else:
            parts.append(f"{label} {OPERATOR_LABELS[c['op']]} “{c.get('value', '')}”")
    when = join.join(parts) if parts else _("Every message")
    doing = []
    for a in rule.actions:
        kind = a.get("kind")
        if kind in ACTIONS_WITH_FOLDER:
            verb = _("move to %(folder)s") if kind == "move" else _("copy to %(folder)s")
            doing.append(verb % {"folder": a.get("label") or a.get("folder", "")})
        elif kind == "forward":
            doing.append(_("forward to %(address)s") % {"address": a.get("address", "")})
        elif kind in ACTION_LABELS:
            doing.append(str(ACTION_LABELS[kind]).lower())
    if rule.stop:
        doing.append(_("stop"))
    return f"{when} → {', '.join(doing)}"


# --- checking and saving ------------------------------------------------------------


def _bad(message: str, field_name: str | None = None) -> PostaError:
    return PostaError("filter_invalid", message, status=400, field=field_name)


def _check_condition(raw: dict[str, Any]) -> dict[str, Any]:
    field_name = str(raw.get("field", ""))
    op = str(raw.get("op", ""))
    if field_name not in FIELD_LABELS:
        raise _bad(_("Choose what the condition looks at."))
    if op not in spec.operators_for(field_name):
        raise _bad(_("“%(op)s” cannot be used with %(field)s.")
                   % {"op": OPERATOR_LABELS.get(op, op), "field": FIELD_LABELS[field_name]})
    out: dict[str, Any] = {"field": field_name, "op": op}
    if field_name == "size":
        try:
            kb = int(str(raw.get("value", "")).strip())
        except ValueError:
            raise _bad(_("The size must be a whole number of kilobytes.")) from None
        if not 0 <= kb <= 10_000_000:
            raise _bad(_("The size must be a whole number of kilobytes."))
        out["size"] = kb * 1024
        return out
    if field_name == "attachment":
        return out
    value = spec.clean_value(str(raw.get("value", ""))).strip()
    if not value:
        raise _bad(_("A condition needs a value to look for."))
    if len(value) > MAX_VALUE:
        raise _bad(_("A value may be at most %(n)d characters long.") % {"n": MAX_VALUE})
    out["value"] = value
    if field_name == "header":
        header = str(raw.get("header", "")).strip()
        if not spec.valid_header_name(header) or len(header) > 100:
            raise _bad(_("“%(name)s” is not a header name (letters, digits and dashes, "
                         "such as List-Id).") % {"name": header[:100]})
        out["header"] = header
    return out


def _check_action(user: User, account: Account | None, raw: dict[str, Any]) -> dict[str, Any]:
    kind = str(raw.get("kind", ""))
    if kind not in ACTION_LABELS:
        raise _bad(_("Choose what the filter does."))
    out: dict[str, Any] = {"kind": kind}
    if kind in ACTIONS_WITH_FOLDER:
        try:
            folder_id = int(raw.get("folder", ""))
        except (TypeError, ValueError):
            raise _bad(_("Choose the folder.")) from None
        folders = Folder.objects.filter(pk=folder_id, account__user=user)
        if account is not None:
            folders = folders.filter(account=account)
        target = folders.first()
        if target is None:
            raise _bad(_("Choose the folder."))
        out["folder"] = target.name
        out["label"] = target.display_name
    elif kind == "forward":
        address = str(raw.get("address", "")).strip()
        try:
            validate_email(address)
        except ValidationError:
            raise _bad(_("“%(address)s” is not an email address.")
                       % {"address": address[:100]}) from None
        out["address"] = address
    return out


def check_save_rule(user: User, rule: FilterRule | None, data: RuleData) -> FilterRule:
    """Validate `data` and save it as a new rule (last) or into `rule`."""
    name = data.name.strip()
    if not name:
        raise _bad(_("Give the filter a name."), "name")
    if len(name) > 200:
        raise _bad(_("The name may be at most 200 characters long."), "name")
    account = None
    if data.account_id is not None:
        account = Account.objects.filter(pk=data.account_id, user=user).first()
        if account is None:
            raise not_found(gettext_lazy("This account does not exist, or it is not yours."))
    if len(data.conditions) > MAX_CONDITIONS:
        raise _bad(_("A filter may have at most %(n)d conditions.") % {"n": MAX_CONDITIONS})
    conditions = [_check_condition(c) for c in data.conditions]
    actions = [_check_action(user, account, a) for a in data.actions]
    if not actions and not data.stop:
        raise _bad(_("A filter needs at least one action."))
    if len({(a["kind"], a.get("folder"), a.get("address")) for a in actions}) != len(actions):
        raise _bad(_("The same action is listed twice."))
    with transaction.atomic():
        if rule is None:
            if FilterRule.objects.filter(user=user).count() >= MAX_RULES:
                raise _bad(_("You have reached the limit of %(n)d filters.") % {"n": MAX_RULES})
            top = FilterRule.objects.filter(user=user).aggregate(m=Max("position"))["m"]
            rule = FilterRule(user=user, position=(top or 0) + 1)
        else:
            old_account = rule.account_id
            _changed(user, [old_account])
        rule.name = name
        rule.account = account
        rule.enabled = data.enabled
        rule.match_all = data.match_all
        rule.case_sensitive = data.case_sensitive
        rule.stop = data.stop
        rule.conditions = conditions
        rule.actions = actions
        rule.save()
        _changed(user, [rule.account_id])
    return rule


def do_delete_rule(user: User, rule: FilterRule) -> None:
    with transaction.atomic():
        account_id = rule.account_id
        FilterRule.objects.filter(pk=rule.pk, user=user).delete()
        _changed(user, [account_id])


def do_set_enabled(user: User, rule: FilterRule, enabled: bool) -> None:
    with transaction.atomic():
        FilterRule.objects.filter(pk=rule.pk, user=user).update(enabled=enabled)
        _changed(user, [rule.account_id])


def do_reorder(user: User, rule_ids: Sequence[int]) -> None:
    """Put the user's rules in the order of `rule_ids` (others' ids are ignored;
    rules not named keep their relative order after the named ones)."""
    with transaction.atomic():
        mine = list(FilterRule.objects.select_for_update().filter(user=user))
        by_id = {r.pk: r for r in mine}
        order = [by_id[i] for i in dict.fromkeys(rule_ids) if i in by_id]
        order += [r for r in mine if r not in order]
        for position, rule in enumerate(order, start=1):
            rule.position = position
        FilterRule.objects.bulk_update(order, ["position"])
        _changed(user, [r.account_id for r in order])


def do_move_rule(user: User, rule: FilterRule, delta: int) -> None:
    """Move a rule up (-1) or down (+1) by one place."""
    ids = list(FilterRule.objects.filter(user=user).values_list("pk", flat=True))
    at = ids.index(rule.pk)
    to = max(0, min(len(ids) - 1, at + delta))
    ids.insert(to, ids.pop(at))
    do_reorder(user, ids)


def do_set_use_server(user: User, account: Account, use_server: bool) -> None:
    with transaction.atomic():
        FilterServer.objects.get_or_create(account=account)
        FilterServer.objects.filter(account=account).update(use_server=use_server)
        _changed(user, [account.pk])


def server_states(user: User) -> dict[int, FilterServer]:
    return {s.account_id: s for s in FilterServer.objects.filter(account__user=user)}


def _changed(user: User, account_ids: Iterable[int | None]) -> None:
    notify_rules_changed(user.pk, account_ids)


def notify_rules_changed(user_id: int, account_ids: Iterable[int | None]) -> None:
    """The rules of these accounts of the user (None: every account) changed
    (filters, or out-of-office, whose reply is a section of the same script): ask
    for a new upload where the server runs them."""
    ids = set(account_ids)
    accounts = Account.objects.filter(user_id=user_id)
    if None not in ids:
        accounts = accounts.filter(pk__in=ids)
    touched = sorted(accounts.values_list("pk", flat=True))
    for account_id in touched:
        FilterServer.objects.get_or_create(account_id=account_id)
    FilterServer.objects.filter(account_id__in=touched).update(
        wanted_revision=F("wanted_revision") + 1
    )
    if touched:
        mail_signals.notify_after_commit(
            signals.filters_changed, sender=FilterRule, account_ids=touched
        )


def prefill_from_message(user: User, message_id: int) -> RuleData:
    """"Create a filter from this message": From contains the sender, or, for
    mailing-list mail, List-Id contains the list's id (RFC 2919)."""
    message = Message.objects.filter(pk=message_id, user=user).first()
    if message is None:
        raise not_found(gettext_lazy("This message does not exist, or it is not yours."))
    account_id = (
        Location.objects.filter(message=message).order_by("id")
        .values_list("folder__account_id", flat=True).first()
    )
    list_id = ""
    if message.blob_key:
        values = MailView(blobs.get(message.blob_key), size=message.size).header_values(
            ["list-id"]
        )
        if values:
            value = values[0].strip()
            inside = value[value.rfind("<") + 1 : value.rfind(">")] if "<" in value else value
            list_id = inside.strip()[:MAX_VALUE]
    if list_id:
        return RuleData(
            name=_("Mailing list %(list)s") % {"list": list_id}, account_id=account_id,
            conditions=[{"field": "header", "header": "List-Id", "op": "contains",
                         "value": list_id}],
            actions=[{"kind": "move"}],
        )
    sender = message.from_email[:MAX_VALUE]
    return RuleData(
        name=_("Mail from %(sender)s") % {"sender": message.from_name or sender},
        account_id=account_id,
        conditions=[{"field": "from", "op": "contains", "value": sender}],
        actions=[{"kind": "move"}],
    )
