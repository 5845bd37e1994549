from __future__ import annotations

import pytest

from posta.accounts.models import CompanySettings
from posta.accounts.signatures import render_company_signature, unknown_fields
from posta.users.models import User

pytestmark = pytest.mark.django_db


def test_merge_fields_render_for_the_user_and_escape_values() -> None:
    user = User.objects.create_user(
        "mrossi",
        "mario@example.test",
        "pw-12345678",
        first_name="Mario",
        last_name="Rossi <b>",
        role="Vendite",
        phone_work="+39 02 123",
    )
    CompanySettings.objects.update_or_create(pk=1, defaults={"company_name": "ACME Srl"})
    template = (
        "<p>$Users||first_name$ $Users||last_name$ · $Users||roleid$</p>"
        "<p>$Users||email1$ $Users||phone_work$ $Users||title$ $Users||company_name$</p>"
    )
    html = render_company_signature(template, user)
    assert html == (
        "<p>Mario Rossi &lt;b&gt; · Vendite</p><p>mario@example.test +39 02 123  ACME Srl</p>"
    )


def test_unknown_fields_are_reported_once_and_render_empty() -> None:
    user = User.objects.create_user("x", "x@example.test", "pw-12345678")
    template = "$Users||nope$ $Users||first_name$ $Users||nope$ $Users||fax$"
    assert unknown_fields(template) == ["nope", "fax"]
    assert render_company_signature(template, user).strip() == ""
