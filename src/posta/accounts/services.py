"""Account rules: presets, the main account, shared senders, the save-time test, roles.

Views call these; they hold every rule of the Account, Folders and Layout tabs.
`check_` functions validate then act, `do_` functions take valid input and act
atomically, `access_` functions fetch with the permission check (DESIGN, STYLE 1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from posta.accounts.errors import connection_error_message
from posta.accounts.models import Account, Folder, MailServer, OAuthToken
from posta.accounts.oauth import (
    TokenGrant,
    do_store_tokens,
    provider_kind_for,
)
from posta.accounts.presets import CUSTOM, PRESETS, Preset
from posta.core.crypto import seal
from posta.core.errors import PostaError, not_found
from posta.users.models import User

ROLE_ORDER = ("inbox", "drafts", "sent", "spam", "trash", "archive")


class FolderListing(Protocol):
    """What the connection test reports of one folder (posta.mailproto FolderInfo)."""

    @property
    def name(self) -> str: ...
    @property
    def display_name(self) -> str: ...
    @property
    def delimiter(self) -> str: ...
    @property
    def flags(self) -> tuple[str, ...]: ...
    @property
    def special_use(self) -> str: ...
    @property
    def selectable(self) -> bool: ...


class ProbeFailureLike(Protocol):
    # Read-only members, so that the probe's own dataclasses satisfy them.
    @property
    def protocol(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def detail(self) -> str: ...


class ProbeResultLike(Protocol):
    @property
    def imap(self) -> ProbeFailureLike | None: ...
    @property
    def smtp(self) -> ProbeFailureLike | None: ...
    @property
    def folders(self) -> Sequence[FolderListing]: ...
    @property
    def roles(self) -> dict[str, str]: ...


@dataclass
class SaveOutcome:
    """The result of saving an account: saved or not, and what the test found."""

    account: Account
    saved: bool
    errors: list[str] = field(default_factory=list)
    # The same messages keyed by what they concern ("imap", "smtp"), so a form can
    # show each one beside its own settings.
    errors_by_protocol: dict[str, str] = field(default_factory=dict)


def access_account(user: User, account_id: int) -> Account:
    """The user's own account; PostaError 404 for any other (shared senders included)."""
    account = Account.objects.filter(pk=account_id, user=user).first()
    if account is None:
        raise not_found(_("This account does not exist, or it is not yours."))
    return account


def accounts_of(user: User) -> QuerySet[Account]:
    return Account.objects.filter(user=user).order_by("created_at", "id")


def sender_accounts(user: User) -> list[Account]:
    """Accounts the user may send from: their own, then every shared sender."""
    own = list(accounts_of(user))
    shared = Account.objects.filter(is_shared_sender=True).exclude(user=user)
    return own + list(shared.order_by("description"))


def apply_account_type(account: Account) -> None:
    """Fill the servers from the chosen preset or administrator's server.

    With a preset the server fields are not the user's to change; with Custom they
    are kept as typed. SMTP follows the preset unless the user chose custom SMTP.
    """
    server: MailServer | Preset
    if account.preset == "server" and account.server is not None:
        server = account.server
    elif account.preset in PRESETS:
        server = PRESETS[account.preset]
    else:
        account.preset = CUSTOM
        account.server = None
        account.smtp_custom = True
        return
    if account.preset != "server":
        account.server = None
    account.imap_host = server.imap_host
    account.imap_port = server.imap_port
    account.imap_security = server.imap_security
    if not account.smtp_custom:
        account.smtp_host = server.smtp_host
        account.smtp_port = server.smtp_port
        account.smtp_security = server.smtp_security
        account.smtp_auth = getattr(server, "smtp_auth", True)


def _fill_defaults(account: Account) -> None:
    # The reference fills Email and Description from the user name when left empty.
    account.username = account.username.strip()
    account.email = (account.email or "").strip() or account.username
    account.description = (account.description or "").strip() or account.username
    if not account.smtp_host:
        account.smtp_host = account.imap_host


# The connection test is network code, which this app may not import: posta.remote
# hands it over in its AppConfig.ready() (posta.remote.probe.probe_account).
_connection_probe: list[Callable[..., ProbeResultLike]] = []


def register_connection_probe(probe: Callable[..., ProbeResultLike]) -> None:
    """Make `probe(account, *, password, smtp_password)` the test of check_save_account."""
    _connection_probe[:] = [probe]


def _run_probe(
    account: Account, password: str | None, smtp_password: str | None
) -> ProbeResultLike:
    if not _connection_probe:
        raise RuntimeError("no connection probe registered (is posta.remote installed?)")
    probe = _connection_probe[0]
    return probe(account, password=password, smtp_password=smtp_password or password)


def run_connection_probe(account: Account, password: str, smtp_password: str) -> ProbeResultLike:
    """The account form's connection test, for other services of this app (the
    wizard's tries): `account` need not be saved."""
    return _run_probe(account, password, smtp_password)


def _probe_messages(account: Account, result: ProbeResultLike) -> dict[str, str]:
    messages = {}
    for key, failure, host in (
        ("imap", result.imap, account.imap_host),
        ("smtp", result.smtp, account.smtp_host),
    ):
        if failure is not None:
            messages[key] = connection_error_message(
                failure.code, protocol=failure.protocol, host=host, detail=failure.detail
            )
    return messages


def check_save_account(
    user: User,
    account: Account,
    *,
    password: str | None,
    smtp_password: str | None,
    make_main: bool,
    shared_sender: bool,
    save_anyway: bool = False,
    current_password: str = "",
    current_smtp_password: str = "",
    oauth_grant: TokenGrant | None = None,
) -> SaveOutcome:
    """Test the account against its servers, then save it unless the test failed.

    `password`/`smtp_password` of None keep the stored ones (the form leaves them
    empty on edit). A failed test saves only with `save_anyway`; the account then
    shows the error until a sync succeeds.

    An OAuth2 account logs in with `oauth_grant`, the tokens of a sign-in just
    finished (stored with the account), or else with its stored tokens; its user
    name is the one the provider named, when it named one.
    """
    if shared_sender and not user.is_administrator:
        raise PostaError(
            "forbidden_shared_sender",
            _("Only an administrator can share an account as a sender."),
            status=403,
            field="is_shared_sender",
        )
    oauth = account.auth_method == Account.AuthMethod.OAUTH2
    if oauth:
        if oauth_grant is None and not OAuthToken.objects.filter(account_id=account.pk).exists():
            raise PostaError(
                "oauth2_signin_needed", _("Sign in with the provider first."), field="auth_method"
            )
        if oauth_grant is not None and oauth_grant.username:
            account.username = oauth_grant.username
        password = smtp_password = None
    apply_account_type(account)
    _fill_defaults(account)
    imap_password: str | None
    if oauth:
        imap_password = oauth_grant.access_token if oauth_grant is not None else None
        smtp_pw: str | None = imap_password
    else:
        imap_password = password if password is not None else current_password
        smtp_pw = smtp_password if smtp_password is not None else current_smtp_password
    result = _run_probe(account, imap_password, smtp_pw)
    by_protocol = _probe_messages(account, result)
    errors = list(by_protocol.values())
    if errors and not save_anyway:
        return SaveOutcome(
            account=account, saved=False, errors=errors, errors_by_protocol=by_protocol
        )
    if password is not None:
        account.password_secret = seal(password)
    if smtp_password is not None:
        account.smtp_password_secret = seal(smtp_password)
    account.is_shared_sender = shared_sender
    _record_probe_state(account, result)
    with transaction.atomic():
        is_first = not Account.objects.filter(user=user).exclude(pk=account.pk).exists()
        wants_main = make_main or is_first
        if wants_main:
            Account.objects.filter(user=user, is_main=True).exclude(pk=account.pk).update(
                is_main=False
            )
        account.user = user
        account.is_main = wants_main or (account.pk is not None and account.is_main)
        account.save()
        if oauth_grant is not None:
            do_store_tokens(account, provider_kind_for(account), oauth_grant)
        if result.imap is None:
            do_apply_folder_list(account, result.folders, result.roles)
    return SaveOutcome(account=account, saved=True, errors=errors, errors_by_protocol=by_protocol)


def _record_probe_state(account: Account, result: ProbeResultLike) -> None:
    failure = result.imap or result.smtp
    if failure is None:
        account.last_error_code = ""
        account.last_error_detail = ""
        account.last_error_at = None
        # A working login ends a pause or an error: the sync service takes it again.
        if account.sync_state in (Account.SyncState.ERROR, Account.SyncState.PAUSED):
            account.sync_state = Account.SyncState.NEW
        return
    account.sync_state = Account.SyncState.ERROR
    account.last_error_code = failure.code
    account.last_error_detail = f"{failure.protocol}:{failure.detail}"[:500]
    account.last_error_at = timezone.now()


def account_error_message(account: Account) -> str:
    """The account's last connection error in the reader's language, or ""."""
    if not account.last_error_code:
        return ""
    protocol, _sep, detail = account.last_error_detail.partition(":")
    host = account.smtp_host if protocol == "smtp" else account.imap_host
    return connection_error_message(
        account.last_error_code, protocol=protocol or "imap", host=host, detail=detail
    )


@transaction.atomic
def do_delete_account(account: Account) -> None:
    """Delete an account; if it was the main one, the oldest remaining becomes main."""
    user_id = account.user_id
    was_main = account.is_main
    account.delete()
    if was_main:
        oldest = Account.objects.filter(user_id=user_id).order_by("created_at", "id").first()
        if oldest is not None:
            oldest.is_main = True
            oldest.save(update_fields=["is_main"])


@transaction.atomic
def do_make_main(account: Account) -> None:
    Account.objects.filter(user_id=account.user_id, is_main=True).exclude(pk=account.pk).update(
        is_main=False
    )
    account.is_main = True
    account.save(update_fields=["is_main"])


@transaction.atomic
def do_apply_folder_list(
    account: Account, folders: Iterable[FolderListing], roles: dict[str, str]
) -> None:
    """Make the account's Folder rows match the server's list.

    New folders are added, vanished ones removed, attributes refreshed. Detected roles
    fill only roles the user has not set by hand (RFC 6154 SPECIAL-USE first, then
    names, as detected by the caller).
    """
    listed = {f.name: f for f in folders}
    existing = {f.name: f for f in Folder.objects.filter(account=account)}
    Folder.objects.filter(account=account).exclude(name__in=list(listed)).delete()
    for name, info in listed.items():
        folder = existing.get(name) or Folder(account=account, name=name)
        folder.display_name = info.display_name
        folder.delimiter = info.delimiter or ""
        folder.flags = " ".join(info.flags)
        folder.special_use = info.special_use
        folder.selectable = info.selectable
        folder.save()
        existing[name] = folder
    wanted = {role: name for role, name in roles.items() if name in existing}
    wanted.update(account.user_roles)
    for folder in existing.values():
        role = next((r for r, n in wanted.items() if n == folder.name), "")
        if folder.role != role:
            folder.role = role
            folder.role_set_by_user = role in account.user_roles
            folder.save(update_fields=["role", "role_set_by_user"])


@transaction.atomic
def do_set_folder_roles(account: Account, mapping: dict[str, int | None]) -> None:
    """Set the folder of each role by hand; None leaves the role unmapped."""
    folders = {f.pk: f for f in Folder.objects.filter(account=account)}
    chosen = [fid for fid in mapping.values() if fid is not None]
    if any(fid not in folders for fid in chosen):
        raise PostaError("unknown_folder", _("That folder is not in this account."))
    if len(chosen) != len(set(chosen)):
        raise PostaError("folder_twice", _("A folder can have only one role."))
    for role, folder_id in mapping.items():
        account.user_roles[role] = folders[folder_id].name if folder_id is not None else ""
    account.save(update_fields=["user_roles"])
    for folder in folders.values():
        chosen_role = next((r for r, fid in mapping.items() if fid == folder.pk), None)
        if chosen_role is None and folder.role in mapping:
            chosen_role = ""
        if chosen_role is not None and (
            folder.role != chosen_role or not folder.role_set_by_user
        ):
            folder.role = chosen_role
            folder.role_set_by_user = True
            folder.save(update_fields=["role", "role_set_by_user"])


def missing_roles(account: Account) -> list[str]:
    """Required roles (Inbox, Drafts, Sent, Trash) that no folder has yet."""
    mapped = set(
        Folder.objects.filter(account=account).exclude(role="").values_list("role", flat=True)
    )
    return [role for role in Folder.REQUIRED_ROLES if role not in mapped]
