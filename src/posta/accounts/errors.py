"""Connection failures in the user's words.

Network code reports a failure as a code plus details (posta.mailproto.errors,
posta.core.netguard); this table turns a code into a sentence in the reader's
language at the moment it is shown, so a stored error reads right in Italian and
in English alike.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

PROTOCOL_NAMES = {"imap": "IMAP", "smtp": "SMTP", "pop3": "POP3"}


def connection_error_message(code: str, *, protocol: str, host: str, detail: str = "") -> str:
    """The sentence a user reads for a failed connection to `host` over `protocol`."""
    server = f"{PROTOCOL_NAMES.get(protocol, protocol.upper())} {host}"
    messages = {
        "host_not_found": _("The server %(server)s was not found: check the host name."),
        "connection_refused": _(
            "The server %(server)s refused the connection: check the host name and port."
        ),
        "timeout": _("The server %(server)s did not answer in time."),
        "tls_failed": _(
            "The secure connection to %(server)s failed: check the security setting "
            "(SSL/TLS, STARTTLS or none) and the port."
        ),
        "certificate_invalid": _(
            "The certificate of %(server)s is not valid, so the connection was not trusted."
        ),
        "starttls_missing": _(
            "The server %(server)s does not offer STARTTLS: choose SSL/TLS or another port."
        ),
        "tls_required": _(
            "The server %(server)s accepts a password only over an encrypted connection: "
            "choose STARTTLS or SSL/TLS."
        ),
        "unexpected_error": _(
            "Posta met an unexpected problem talking to %(server)s; it has been logged."
        ),
        "auth_failed": _("The server %(server)s refused the user name or password."),
        "host_not_allowed": _(
            "The address of %(server)s is a private or local network address, which is "
            "not allowed. An administrator can allow it in the company settings."
        ),
        "capability_missing": _("The server %(server)s lacks a feature Posta needs."),
        "protocol_error": _("The server %(server)s gave an answer Posta could not understand."),
        "network_error": _("The connection to %(server)s was interrupted."),
        "throttled": _("The server %(server)s asked Posta to slow down; it will try again later."),
        "secret_unreadable": _("The stored password can no longer be read; enter it again."),
        "oauth2_signin_required": _(
            "The sign-in of this account has expired or was withdrawn (a revoked permission "
            "or a changed password): sign in again."
        ),
        "oauth2_refused": _(
            "The sign-in provider refused Posta's request: an administrator should check "
            "the client ID, the client secret and the redirect URI."
        ),
    }
    template = messages.get(code, _("The connection to %(server)s failed."))
    text = template % {"server": server}
    if detail and code in {"certificate_invalid", "capability_missing", "protocol_error"}:
        text = f"{text} ({detail})"
    return text
