"""Address rules of the compose form: what an address field may hold, in the
reader's language (the syntax itself is posta.mailproto.mime.compose's, RFC 5322
§3.4 with RFC 6531 internationalized addresses)."""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from posta.core.errors import PostaError
from posta.mail import headers_check
from posta.mailproto.mime import compose, fields

# What the user reads for each reason an address is refused
# (posta.mailproto.mime.compose.InvalidAddress.reason).
_ADDRESS_REASONS: dict[str, Promise] = {
    "newline": _("line breaks are not allowed"),
    "empty": _("an address needs a name, an @ and a domain"),
    "no_at": _("an address needs a name, an @ and a domain"),
    "local_empty": _("an address needs a name, an @ and a domain"),
    "local_too_long": _("the part before the @ is too long"),
    "local_invalid": _("the part before the @ has characters not allowed"),
    "domain_empty": _("the domain after the @ is not valid"),
    "domain_too_long": _("the domain after the @ is not valid"),
    "domain_invalid": _("the domain after the @ is not valid"),
}


def check_address(address: str) -> str:
    """The address, domain in ASCII form (IDN, RFC 5890); PostaError saying why not."""
    try:
        return compose.check_addr_spec(address)
    except compose.InvalidAddress as error:
        reason = _ADDRESS_REASONS.get(error.reason, _("the address is not valid"))
        raise PostaError(
            "invalid_address",
            format_lazy(_("{address}: {reason}"), address=address.strip(), reason=reason),
        ) from error


split_addresses = compose.split_address_list


def _name_and_address(item: str) -> tuple[str, str]:
    if item.endswith(">") and "<" in item:
        name, _lt, address = item[:-1].rpartition("<")
        name = name.strip()
        if len(name) >= 2 and name[0] == name[-1] == '"':
            name = name[1:-1]
        return name, address
    return "", item


def check_address_list(text: str) -> list[list[str]]:
    """[[name, address], ...] of an address field; PostaError on the first bad one."""
    if fields.has_forbidden(text):
        raise PostaError("header_newline", _("Line breaks are not allowed in address fields."))
    return [
        [name, check_address(address)]
        for name, address in (_name_and_address(item) for item in split_addresses(text))
    ]


def lenient_address_list(text: str) -> list[list[str]]:
    """What a draft keeps of an address field: every item, checked or not."""
    cleaned = headers_check.fold_line_breaks(text)
    return [list(_name_and_address(item)) for item in split_addresses(cleaned)]


def format_addresses(pairs: list[list[str]]) -> str:
    out = []
    for name, address in pairs:
        if name:
            quoted = f'"{name}"' if any(c in name for c in ',;<>@"') else name
            out.append(f"{quoted} <{address}>")
        else:
            out.append(address)
    return ", ".join(out)
