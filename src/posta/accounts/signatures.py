"""The company signature: the administrator's template with `$Users||field$` merge fields.

The field names are the CRM's (`roleid`, `email1`, `phone_work`), so templates written
for the reference module work unchanged. Values are HTML-escaped; a field with no
value renders empty; an unknown field is reported while editing and renders empty.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.utils.html import escape
from django.utils.translation import gettext_lazy as _

from posta.users.models import User

MERGE_FIELD = re.compile(r"\$Users\|\|([A-Za-z0-9_]+)\$")


def _company_name(user: User) -> str:
    from posta.accounts.models import CompanySettings

    return CompanySettings.load().company_name


FIELDS: dict[str, tuple[object, Callable[[User], str]]] = {
    "first_name": (_("First name"), lambda u: u.first_name),
    "last_name": (_("Last name"), lambda u: u.last_name),
    "user_name": (_("User name"), lambda u: u.username),
    "email1": (_("Email"), lambda u: u.email),
    "roleid": (_("Role"), lambda u: u.role),
    "title": (_("Title"), lambda u: u.title),
    "department": (_("Department"), lambda u: u.department),
    "phone_work": (_("Office phone"), lambda u: u.phone_work),
    "phone_mobile": (_("Mobile phone"), lambda u: u.phone_mobile),
    "company_name": (_("Company name"), _company_name),
}


def unknown_fields(template: str) -> list[str]:
    """Merge fields the template names that do not exist, in order, once each."""
    seen: list[str] = []
    for name in MERGE_FIELD.findall(template):
        if name not in FIELDS and name not in seen:
            seen.append(name)
    return seen


def render_company_signature(template: str, user: User) -> str:
    """The template with every merge field replaced by the user's escaped value."""

    def value(match: re.Match[str]) -> str:
        field = FIELDS.get(match.group(1))
        return escape(field[1](user) or "") if field else ""

    return MERGE_FIELD.sub(value, template)
