"""Forms of the CRM pages: records, the administrator's settings, a user's preferences."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from django import forms
from django.utils.translation import gettext_lazy as _

from posta.core.errors import PostaError
from posta.crm.models import Contact, CrmSettings, CrmUserPrefs, Lead, Organization, Record
from posta.crm.services import clean_emails, records_of
from posta.users.models import User

_SPLIT = re.compile(r"[\n,;]+")


def split_lines(text: str) -> list[str]:
    return [part.strip() for part in _SPLIT.split(text or "") if part.strip()]


class _RecordForm(forms.ModelForm):  # type: ignore[type-arg]  # one form per record model
    emails = forms.CharField(
        label=_("Email addresses"), required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("One a line, or separated by commas."), max_length=5000,
    )  # fmt: skip
    phones = forms.CharField(
        label=_("Phone numbers"), required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("One a line; saved in international form where possible."), max_length=2000,
    )  # fmt: skip

    def __init__(self, *args: Any, emails: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["emails"] = "\n".join(emails or [])
            self.initial["phones"] = "\n".join(self.instance.phones or [])

    def clean_emails(self) -> list[str]:
        try:
            return clean_emails(split_lines(self.cleaned_data.get("emails", "")))
        except PostaError as error:
            raise forms.ValidationError(str(error)) from error

    def clean_phones(self) -> list[str]:
        return [p[:40] for p in split_lines(self.cleaned_data.get("phones", ""))][:20]


class ContactForm(_RecordForm):
    organization = forms.ModelChoiceField(
        queryset=Organization.objects.none(), required=False, label=_("Organization")
    )

    class Meta:
        model = Contact
        fields: ClassVar[list[str]] = ["first_name", "last_name", "title", "organization", "notes"]

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["organization"]
        assert isinstance(field, forms.ModelChoiceField)  # noqa: S101 - declared above
        field.queryset = records_of(user, "organization").order_by("sort_name")[:500]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not (data.get("first_name") or data.get("last_name")):
            raise forms.ValidationError(_("Give a first or a last name."))
        return data


class OrganizationForm(_RecordForm):
    domains = forms.CharField(
        label=_("Email domains"), required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Mail from these domains is suggested for this organization."),
        max_length=2000,
    )  # fmt: skip

    class Meta:
        model = Organization
        fields: ClassVar[list[str]] = ["name", "website", "address", "notes"]

    def __init__(self, *args: Any, domains: list[str] | None = None, **kwargs: Any) -> None:
        kwargs.pop("user", None)
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["domains"] = "\n".join(domains or [])

    def clean_domains(self) -> list[str]:
        out = []
        for domain in split_lines(self.cleaned_data.get("domains", "")):
            domain = domain.lower().lstrip("@")
            if "." not in domain or " " in domain or len(domain) > 253:
                raise forms.ValidationError(
                    _("“%(domain)s” is not a domain.") % {"domain": domain}
                )
            out.append(domain)
        return out


class LeadForm(_RecordForm):
    class Meta:
        model = Lead
        fields: ClassVar[list[str]] = ["name", "company", "status", "source", "notes"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("user", None)
        super().__init__(*args, **kwargs)


FORMS: dict[str, type[_RecordForm]] = {
    "contact": ContactForm,
    "organization": OrganizationForm,
    "lead": LeadForm,
}


def form_for(
    kind: str, user: User, record: Record | None, data: Any, *,
    emails: list[str], domains: list[str],
) -> _RecordForm:  # fmt: skip
    kwargs: dict[str, Any] = {"data": data, "instance": record, "emails": emails, "user": user}
    if kind == "organization":
        kwargs["domains"] = domains
    return FORMS[kind](**kwargs)


class CrmSettingsForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = CrmSettings
        fields: ClassVar[list[str]] = ["visibility", "extra_free_domains", "phone_region"]
        labels: ClassVar[dict[str, Any]] = {
            "visibility": _("Who sees which records"),
            "extra_free_domains": _("More free-mail and certified-mail domains"),
            "phone_region": _("Default country of phone numbers"),
        }
        help_texts: ClassVar[dict[str, Any]] = {
            "extra_free_domains": _(
                "One a line. Addresses there are never matched to an organization."
            ),
            "phone_region": _("Two letters, e.g. IT."),
        }

    def clean_phone_region(self) -> str:
        region = str(self.cleaned_data.get("phone_region", "")).strip().upper()
        if not re.fullmatch(r"[A-Z]{2}", region):
            raise forms.ValidationError(_("Two letters, e.g. IT."))
        return region


class CrmPrefsForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = CrmUserPrefs
        fields: ClassVar[list[str]] = ["auto_link"]
        labels: ClassVar[dict[str, Any]] = {"auto_link": _("Link new mail automatically")}
