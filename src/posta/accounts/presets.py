"""Account types offered in the Account tab, with the servers each one fills in.

The values are the reference module's. A preset's servers are shown read-only;
"custom" makes them editable; an administrator's MailServer rows appear beside these.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

NONE = "none"
STARTTLS = "starttls"
SSL = "ssl"
SECURITY_CHOICES = [(NONE, _("None")), (STARTTLS, "STARTTLS"), (SSL, "SSL/TLS")]


@dataclass(frozen=True)
class Preset:
    code: str
    label: str | Promise
    imap_host: str
    imap_port: int
    imap_security: str
    smtp_host: str
    smtp_port: int
    smtp_security: str
    oauth2: bool = False
    # Gmail and Office365 file a copy of sent mail themselves (DESIGN: no Sent append).
    stores_sent_copy: bool = False
    pec: bool = False
    notices: tuple[str | Promise, ...] = ()


CUSTOM = "custom"

PRESETS: dict[str, Preset] = {
    p.code: p
    for p in [
        Preset(
            "gmail",
            "Gmail",
            "imap.gmail.com",
            993,
            SSL,
            "smtp.gmail.com",
            465,
            SSL,
            oauth2=True,
            stores_sent_copy=True,
            notices=(
                _(
                    "Since 30 May 2022 Google accepts only an app password here: turn on "
                    "two-step verification, then create an app password for Posta."
                ),
                _(
                    "OAuth2 for Google needs Google Workspace configuration by the "
                    "administrator, and does not work for free Gmail accounts without an "
                    "app registration."
                ),
            ),
        ),
        Preset(
            "office365",
            "Microsoft Office365",
            "outlook.office365.com",
            993,
            SSL,
            "smtp.office365.com",
            587,
            STARTTLS,
            oauth2=True,
            stores_sent_copy=True,
            notices=(_("Office365 IMAP listens on port 993, not 443."),),
        ),
        Preset("yahoo", "Yahoo!", "imap.mail.yahoo.com", 993, SSL, "smtp.mail.yahoo.com", 465, SSL),
        Preset("aruba", "Aruba", "imaps.aruba.it", 993, SSL, "smtps.aruba.it", 587, STARTTLS),
        Preset(
            "pec_aruba",
            "PEC Aruba",
            "imaps.pec.aruba.it",
            993,
            SSL,
            "smtps.pec.aruba.it",
            587,
            STARTTLS,
            pec=True,
        ),
        Preset(
            "pec_legalmail",
            "PEC Legalmail",
            "mbox.cert.legalmail.it",
            993,
            SSL,
            "sendm.cert.legalmail.it",
            465,
            SSL,
            pec=True,
        ),
    ]
}
