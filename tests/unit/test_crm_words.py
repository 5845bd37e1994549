"""Pure parts of the CRM: free-mail domains, signature phones, names from addresses."""

from __future__ import annotations

from posta.crm.freemail import is_free_domain
from posta.mail.links import _split_name, signature_phones


def test_free_mail_isp_and_certified_mail_domains_are_never_organizations() -> None:
    for domain in ("gmail.com", "Outlook.com", "libero.it", "aruba.it", "pec.it",
                   "legalmail.it", "cert.legalmail.it", "mail.pec.it"):
        assert is_free_domain(domain), domain
    assert not is_free_domain("ferrari-impianti.it")
    assert not is_free_domain("notgmail.com")
    extra = "@miaisp.example\npostacertificata.example\n"
    assert is_free_domain("miaisp.example", extra)
    assert is_free_domain("x.postacertificata.example", extra)


def test_phones_in_the_signature_are_read_in_e164_and_quotes_are_not() -> None:
    text = (
        "Grazie.\n> Tel. 06 9999 9999 (quoted, not ours)\n--\nGiulia Bianchi\n"
        "Tel. 02 1234 5678 | cell. 347 123 4567\nFax +41 44 668 18 00\n"
    )
    assert signature_phones(text, "IT") == ["+390212345678", "+393471234567", "+41446681800"]
    assert signature_phones("no numbers here", "IT") == []


def test_names_come_from_the_display_name_or_the_address() -> None:
    assert _split_name("Giulia Bianchi", "g@x.test") == ("Giulia", "Bianchi")
    assert _split_name('"Rossi, Mario"', "m@x.test") == ("Mario", "Rossi")
    assert _split_name("", "anna.verdi@x.test") == ("Anna", "Verdi")
