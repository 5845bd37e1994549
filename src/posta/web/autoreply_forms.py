"""The Out-of-office tab's form: shape only; the services keep the rules."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from posta.accounts.models import Account
from posta.rules.autoreply_models import AutoReplySettings
from posta.users.models import User
from posta.web import params
from posta.web.forms import LocalDateTimeField, rich_text_field

MAX_ALIASES = 50


class AccountChoices(forms.ModelMultipleChoiceField):  # type: ignore[type-arg]
    """The user's accounts by id; a value that is no record number is refused
    as an invalid choice before it reaches the database."""

    def _check_values(self, value: Any) -> Any:
        for item in value:
            text = str(item).strip()
            if not (text.isascii() and text.isdigit() and len(text) <= 18
                    and int(text) <= params.MAX_ID):
                raise forms.ValidationError(
                    self.error_messages["invalid_choice"], code="invalid_choice",
                    params={"value": text[:50]},
                )
        return super()._check_values(value)  # type: ignore[misc]  # not in django-stubs


class AutoReplyForm(forms.Form):
    enabled = forms.BooleanField(label=_("Send automatic replies"), required=False)
    starts_at = LocalDateTimeField(
        label=_("From"), required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    ends_at = LocalDateTimeField(
        label=_("Until"), required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text=_("Leave empty to reply until you turn it off."),
    )
    all_day = forms.BooleanField(
        label=_("All day (from the start of the first day to the end of the last)"),
        required=False,
    )
    accounts = AccountChoices(
        label=_("Accounts"), queryset=Account.objects.none(), required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None chosen: all your accounts."),
    )
    subject = forms.CharField(
        label=_("Subject"), max_length=200, required=False,
        help_text=_('Empty: "Auto: " followed by the subject of the message answered.'),
    )
    body_html = rich_text_field(_("Message"))
    known_only = forms.BooleanField(
        label=_("Reply only to people I have written to"), required=False,
        help_text=_("And to the CRM's contacts, organizations and leads you can see. "
                    "Posta sends these replies itself: the mail server cannot tell who they are."),
    )
    days = forms.IntegerField(
        label=_("Days between two replies to the same sender"), min_value=1, max_value=365,
        initial=7,
    )
    aliases = forms.CharField(
        label=_("Other addresses of mine"), required=False, max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One address a line: mail to these counts as addressed to you."),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["accounts"].queryset = Account.objects.filter(user=user)  # type: ignore[attr-defined]

    @classmethod
    def initial_of(cls, found: AutoReplySettings) -> dict[str, Any]:
        zone = timezone.get_current_timezone()

        def local(value: datetime | None) -> str:
            return value.astimezone(zone).strftime("%Y-%m-%dT%H:%M") if value else ""
        return {
            "enabled": found.enabled, "starts_at": local(found.starts_at),
            "ends_at": local(found.ends_at), "all_day": found.all_day,
            "accounts": list(found.accounts.all()) if found.pk else [],
            "subject": found.subject, "body_html": found.body_html,
            "known_only": found.known_only, "days": found.days, "aliases": found.aliases,
        }

    def clean_aliases(self) -> str:
        lines = [line.strip() for line in self.cleaned_data["aliases"].splitlines() if line.strip()]
        if len(lines) > MAX_ALIASES:
            raise forms.ValidationError(
                _("At most %(count)s addresses."), params={"count": MAX_ALIASES}
            )
        for line in lines:
            try:
                validate_email(line)
            except forms.ValidationError as exc:
                raise forms.ValidationError(
                    _("%(value)s is not an email address."), params={"value": line}
                ) from exc
        return "\n".join(lines)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("starts_at"), data.get("ends_at")
        if data.get("all_day"):
            zone = timezone.get_current_timezone()
            if start is not None:
                start = datetime.combine(start.astimezone(zone).date(), time.min, tzinfo=zone)
            if end is not None:
                next_day = end.astimezone(zone).date() + timedelta(days=1)
                end = datetime.combine(next_day, time.min, tzinfo=zone)
            data["starts_at"], data["ends_at"] = start, end
        if start is not None and end is not None and end <= start:
            self.add_error("ends_at", _("The end must come after the start."))
        if data.get("enabled") and not (data.get("body_html") or "").strip():
            self.add_error("body_html", _("Write the message people will receive."))
        return data
