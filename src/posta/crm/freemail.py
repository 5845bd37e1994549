"""Domains that say nothing of a sender's organization: free mail, ISPs and
certified mail (PEC). An address at one of them is never matched to an
organization by its domain, nor does it give a new organization its domain; the
administrator adds more in the CRM settings (CrmSettings.extra_free_domains)."""

from __future__ import annotations

FREE_MAIL_DOMAINS: frozenset[str] = frozenset(
    {
        # International free mail
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.it",
        "live.com", "live.it", "msn.com", "yahoo.com", "yahoo.it", "ymail.com",
        "icloud.com", "me.com", "mac.com", "aol.com", "gmx.com", "gmx.net", "gmx.de",
        "web.de", "mail.com", "proton.me", "protonmail.com", "zoho.com", "yandex.com",
        "yandex.ru", "mail.ru", "fastmail.com", "tutanota.com", "hey.com",
        # Italian free mail and ISPs
        "libero.it", "virgilio.it", "alice.it", "tin.it", "tim.it", "email.it",
        "inwind.it", "iol.it", "tiscali.it", "fastwebnet.it", "vodafone.it", "katamail.com",
        "aruba.it", "outlook.it", "blu.it", "teletu.it", "infinito.it",
        # Certified mail (PEC) providers
        "pec.it", "legalmail.it", "arubapec.it", "pec.aruba.it", "postacert.it",
        "pecimprese.it", "registerpec.it", "sicurezzapostale.it", "postecert.it",
        "gigapec.it", "cert.legalmail.it", "pec.libero.it", "mypec.eu", "casellapec.com",
    }
)  # fmt: skip


def is_free_domain(domain: str, extra: str = "") -> bool:
    """Whether `domain` (or a domain it is under, e.g. `mail.pec.it`) is free mail."""
    domain = domain.strip().lower().rstrip(".")
    extras = {line.strip().lower().lstrip("@") for line in extra.splitlines() if line.strip()}
    parts = domain.split(".")
    for i in range(len(parts) - 1):
        candidate = ".".join(parts[i:])
        if candidate in FREE_MAIL_DOMAINS or candidate in extras:
            return True
    return False
