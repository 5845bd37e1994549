"""The outbox's sentences: why a message did not leave, or why it waits, in the
reader's language."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from posta.accounts.errors import connection_error_message
from posta.accounts.models import Account
from posta.mail.models import OutgoingMessage
from posta.mail.outbox_models import DRAFT_REFUSED, account_blocked
from posta.users.models import User

# Error codes meaning the From account's settings must change (the ACCOUNT verdicts
# of posta.mailproto.failures).
ACCOUNT_ERRORS = frozenset(
    {
        "auth_failed", "tls_required", "certificate_invalid", "tls_failed",
        "starttls_missing", "capability_missing", "host_not_allowed",
        "smtputf8_missing", "secret_unreadable", "oauth2_signin_required", "oauth2_refused",
    }
)


def outgoing_error_message(outgoing: OutgoingMessage) -> str:
    """The row's error in the reader's language, or ""."""
    code = outgoing.error_code
    if not code:
        return ""
    account = outgoing.account
    own = {
        "recipients_refused": _("The server refused every recipient."),
        "some_recipients_refused": _("Sent, but the server refused some recipients."),
        "outcome_unknown": _(
            "The connection broke while the message was being handed over: it may or may "
            "not have left. Check with the recipients, then mark it as sent or send it again."
        ),
        "sender_not_allowed": _("You may no longer send from this address."),
        "smtputf8_missing": _(
            "An address contains international characters that the server %(server)s "
            "cannot send to."
        ) % {"server": account.smtp_host},
        "internal_error": _("Something went wrong while sending; Posta will try again."),
        "internal_error_gave_up": _(
            "Something went wrong every time Posta tried to send this message, so it "
            "stopped trying. Edit the message and send it again."
        ),
        "message_unbuildable": _(
            "This message cannot be sent as it is written (%(detail)s). Edit it and "
            "send it again."
        ) % {"detail": outgoing.error_detail},
    }
    if code in own:
        return str(own[code])
    if code.startswith("smtp_"):
        return str(
            _("The server %(server)s refused the message: %(detail)s")
            % {"server": account.smtp_host, "detail": outgoing.error_detail}
        )
    text = connection_error_message(
        code, protocol="smtp", host=account.smtp_host, detail=outgoing.error_detail
    )
    if code in ACCOUNT_ERRORS:
        text = f"{text} {_('The message waits until the account settings are fixed.')}"
    return text


def draft_error_message(outgoing: OutgoingMessage) -> str:
    """Why the draft has no up-to-date copy on the server, in words, or ""."""
    if outgoing.state != OutgoingMessage.State.DRAFT or outgoing.error_code != DRAFT_REFUSED:
        return ""
    return str(
        _(
            "The server refused to keep this draft in its Drafts folder (%(detail)s). "
            "It is saved in Posta; the server is asked again when you change it."
        )
        % {"detail": outgoing.error_detail}
    )


def leads_to_settings(outgoing: OutgoingMessage) -> bool:
    return outgoing.error_code in ACCOUNT_ERRORS


def waiting_reason(outgoing: OutgoingMessage) -> str:
    """Why a waiting message does not leave, in words, or "" (issue 5: "When the
    account is paused or broken at the scheduled time, the message waits and the
    user is told")."""
    if outgoing.state not in (OutgoingMessage.State.QUEUED, OutgoingMessage.State.SCHEDULED):
        return ""
    account = outgoing.account
    if not account_blocked(account):
        return ""
    name = account.email or account.description
    if account.sync_state == Account.SyncState.PAUSED:
        text = _(
            "Waiting: the account %(account)s is paused. The message leaves once the "
            "account works again."
        )
    else:
        text = _(
            "Waiting: the account %(account)s has a problem. The message leaves once the "
            "account works again."
        )
    detail = ""
    if account.last_error_code:
        detail = connection_error_message(
            account.last_error_code, protocol="imap", host=account.imap_host,
            detail=account.last_error_detail,
        )
    return f"{text % {'account': name}} {detail}".strip()


def may_open_settings(user: User, outgoing: OutgoingMessage) -> bool:
    """Whether the account settings the message waits for are the user's own (a
    shared sender is the administrator's)."""
    return outgoing.account.user_id == user.pk
