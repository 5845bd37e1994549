"""Forms of the settings pages. Validation of shape only; rules live in services."""

from __future__ import annotations

import functools
from typing import Any

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.utils.translation import gettext_lazy as _
from django_prose_editor.fields import ProseEditorFormField

from posta.accounts import signatures as signature_fields
from posta.accounts.models import Account, CompanySettings, Folder, MailServer
from posta.accounts.presets import CUSTOM, PRESETS
from posta.accounts.signatures import unknown_fields
from posta.users.models import User
from posta.web import params

RICH_TEXT_EXTENSIONS: dict[str, Any] = {
    "Bold": True,
    "Italic": True,
    "Underline": True,
    "Strike": True,
    "Link": {"enableTarget": True},
    "BulletList": True,
    "ListItem": True,
    "OrderedList": True,
    "HorizontalRule": True,
    "HardBreak": True,
    "Heading": {"levels": [2, 3]},
    "TextAlign": True,
    "TextStyle": True,
    "History": True,
}


class LocalDateTimeField(forms.DateTimeField):
    """A date and time typed in a datetime-local input: the form's formats only,
    a bounded length and a year that converts between time zones safely."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("input_formats", list(params.DATETIME_FORMATS))
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and len(value) > params.MAX_DATETIME_LENGTH:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        result = super().to_python(value)
        if result is not None and not params.MIN_YEAR <= result.year <= params.MAX_YEAR:
            raise forms.ValidationError(_("The year is out of range."), code="invalid")
        return result


# A signature is typed as lines (name, role, phone): Enter makes a line break rather
# than a paragraph, whose margins a receiving client would show as double spacing
# (static posta/signature_lines.js, registered in settings.DJANGO_PROSE_EDITOR_EXTENSIONS).
# Its "Insert field" menu (static posta/merge_fields.js) lists the company signature's
# merge fields by their names for people; the labels are lazy, so they are rendered in
# the language of the page.
SIGNATURE_EXTENSIONS: dict[str, Any] = {
    **RICH_TEXT_EXTENSIONS,
    "SignatureLines": True,
    "MergeFields": {
        "fields": [[code, label] for code, (label, _value) in signature_fields.FIELDS.items()],
        "title": _("Insert field"),
    },
}


def rich_text_field(
    label: str | Any, *, extensions: dict[str, Any] | None = None, **kwargs: Any
) -> ProseEditorFormField:
    """A rich-text field whose HTML is sanitized (nh3) to what the editor can make."""
    return ProseEditorFormField(
        label=label,
        required=False,
        config={"extensions": extensions or RICH_TEXT_EXTENSIONS},
        sanitize=True,
        **kwargs,
    )


def account_type_choices() -> list[tuple[str, str]]:
    choices = [(code, str(p.label)) for code, p in PRESETS.items()]
    choices += [(f"server:{s.pk}", s.name) for s in MailServer.objects.all()]
    choices.append((CUSTOM, str(_("Custom"))))
    return choices


class AccountForm(forms.ModelForm[Account]):
    account_type = forms.ChoiceField(label=_("Account type"))
    password = forms.CharField(
        label=_("Password"), required=False, widget=forms.PasswordInput(render_value=False)
    )
    smtp_password = forms.CharField(
        label=_("SMTP password"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Leave empty to use the IMAP password."),
    )
    signature_html = rich_text_field(_("Custom signature"), extensions=SIGNATURE_EXTENSIONS)
    save_anyway = forms.BooleanField(label=_("Save even though the test failed"), required=False)

    class Meta:
        model = Account
        fields = [
            "username",
            "auth_method",
            "email",
            "description",
            "is_main",
            "is_shared_sender",
            "imap_host",
            "imap_port",
            "imap_security",
            "imap_domain",
            "smtp_custom",
            "smtp_host",
            "smtp_port",
            "smtp_security",
            "smtp_username",
            "smtp_auth",
            "signature_kind",
            "signature_html",
        ]
        labels = {"smtp_custom": _("Custom SMTP server")}

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        type_field = self.fields["account_type"]
        assert isinstance(type_field, forms.ChoiceField)  # noqa: S101  declared above
        type_field.choices = account_type_choices()
        account = self.instance
        if account.pk:
            self.fields["account_type"].initial = (
                f"server:{account.server_id}" if account.preset == "server" else account.preset
            )
            self.fields["password"].help_text = _("Leave empty to keep the stored password.")
        else:
            self.fields["account_type"].initial = CUSTOM
        for name in ("email", "description"):
            self.fields[name].required = False
            self.fields[name].help_text = _("When left empty, the user name is used.")
        self.fields["imap_host"].required = False
        self.fields["username"].required = False
        self.fields["username"].help_text = _(
            "With OAuth2, left empty: the provider names the user at sign-in."
        )
        if not user.is_administrator:
            self.fields["is_shared_sender"].disabled = True
            self.fields["is_shared_sender"].help_text = _(
                "Only an administrator can share a sender."
            )

    def keep_typed_passwords(self) -> None:
        """Render the submitted passwords back into their inputs (this response only).

        PasswordInput drops its value by default so a password never reaches a page;
        after a failed connection test the same form is shown again to the same user,
        who would otherwise retype it for every try.
        """
        for name in ("password", "smtp_password"):
            widget = self.fields[name].widget
            assert isinstance(widget, forms.PasswordInput)  # noqa: S101  declared above
            widget.render_value = True

    def clean_account_type(self) -> str:
        value: str = self.cleaned_data["account_type"]
        if value.startswith("server:"):
            try:
                server = MailServer.objects.get(pk=int(value.split(":", 1)[1]))
            except (ValueError, MailServer.DoesNotExist) as exc:
                raise forms.ValidationError(_("Choose an account type from the list.")) from exc
            self.instance.server = server
            self.instance.preset = "server"
        else:
            self.instance.preset = value
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        oauth = data.get("auth_method") == Account.AuthMethod.OAUTH2
        preset = PRESETS.get(self.instance.preset)
        if oauth and preset is not None and not preset.oauth2:
            self.add_error(
                "auth_method", _("This account type offers no OAuth2 sign-in: choose Password.")
            )
        if data.get("account_type") == CUSTOM and not data.get("imap_host"):
            self.add_error("imap_host", _("Enter the IMAP server."))
        # With OAuth2 the provider names the user and no password is typed.
        if not oauth and not data.get("username") and "username" not in self.errors:
            self.add_error("username", _("Enter the user name."))
        if not oauth and not data.get("password") and (
            not self.instance.pk or self.instance.auth_method == Account.AuthMethod.OAUTH2
        ):
            self.add_error("password", _("Enter the password."))
        return data


class FolderRolesForm(forms.Form):
    def __init__(self, *args: Any, account: Account, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        folders = list(Folder.objects.filter(account=account, selectable=True))
        choices = [("", _("(none)"))] + [(str(f.pk), f.display_name) for f in folders]
        current = {f.role: str(f.pk) for f in folders if f.role}
        for role, label in Folder.Role.choices:
            self.fields[role] = forms.ChoiceField(
                label=label, choices=choices, required=False, initial=current.get(role, "")
            )

    def mapping(self) -> dict[str, int | None]:
        return {role: int(value) if value else None for role, value in self.cleaned_data.items()}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        chosen = [v for v in data.values() if v]
        if len(chosen) != len(set(chosen)):
            raise forms.ValidationError(_("A folder can have only one role."))
        return data


class LayoutForm(forms.ModelForm[User]):
    class Meta:
        model = User
        fields = ["show_preview", "thread_view", "merge_folders", "undo_send_seconds"]

    def clean_undo_send_seconds(self) -> int:
        value: int = self.cleaned_data["undo_send_seconds"]
        if value > 120:
            raise forms.ValidationError(_("Choose at most 120 seconds."))
        return value


def time_zone_choices() -> list[tuple[str, str | Any]]:
    return [("", _("The company's time zone")), *((z, z.replace("_", " ")) for z in _zones())]


@functools.cache
def _zones() -> tuple[str, ...]:
    # available_timezones() reads every file of the time zone database (some 25 ms);
    # the installed zones do not change while the process runs.
    import zoneinfo

    return tuple(sorted(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC"))


# The fields the company signature merges, shown to the user and to administrators.
PROFILE_FIELDS = [
    "first_name",
    "last_name",
    "email",
    "role",
    "title",
    "department",
    "phone_work",
    "phone_mobile",
]


class ProfileForm(forms.ModelForm[User]):
    time_zone = forms.ChoiceField(label=_("Time zone"), required=False, choices=time_zone_choices)

    class Meta:
        model = User
        fields = [*PROFILE_FIELDS, "language", "time_zone"]


# Posta's administrators, in Posta's words: `is_staff` is the model field, but Django's
# own text for it speaks of the Django admin site, which Posta users never see.
ADMINISTRATOR_LABELS = {"is_staff": _("Administrator")}
ADMINISTRATOR_HELP = {"is_staff": _("Can manage users, mail servers and company settings.")}


class AdminUserCreateForm(UserCreationForm[User]):
    class Meta:
        model = User
        # Every field the company signature merges, so a new user's signature is
        # complete without a second visit to the edit form.
        fields = ("username", *PROFILE_FIELDS, "is_staff")
        labels = ADMINISTRATOR_LABELS
        help_texts = ADMINISTRATOR_HELP


class AdminUserEditForm(forms.ModelForm[User]):
    class Meta:
        model = User
        fields = [*PROFILE_FIELDS, "is_staff", "is_active"]
        labels = ADMINISTRATOR_LABELS
        help_texts = ADMINISTRATOR_HELP


class SetupForm(UserCreationForm[User]):
    company_name = forms.CharField(label=_("Company name"), required=False, max_length=200)

    class Meta:
        model = User
        fields = ("username", "first_name", "last_name", "email")


class MailServerForm(forms.ModelForm[MailServer]):
    class Meta:
        model = MailServer
        fields = [
            "name",
            "imap_host",
            "imap_port",
            "imap_security",
            "smtp_host",
            "smtp_port",
            "smtp_security",
            "smtp_auth",
        ]


class CompanySettingsForm(forms.ModelForm[CompanySettings]):
    company_signature = rich_text_field(_("Company signature"), extensions=SIGNATURE_EXTENSIONS)

    class Meta:
        model = CompanySettings
        fields = ["company_name", "company_signature", "allowed_mail_hosts", "max_attachment_mb"]
        # The model's help text, plus what these hosts do not open (no migration for
        # a form-only text): the image proxy has its own rule (posta.mail.remote_images).
        help_texts = {
            "allowed_mail_hosts": _(
                "One host name, address or network (CIDR) a line. Users may connect to "
                "these although they are private or local addresses: your on-premise mail "
                "servers. For mail connections only: remote images in messages are never "
                "fetched from these hosts."
            ),
        }

    def clean_company_signature(self) -> str:
        value: str = self.cleaned_data["company_signature"] or ""
        unknown = unknown_fields(value)
        if unknown:
            raise forms.ValidationError(
                _("Unknown merge fields: %(fields)s"),
                params={"fields": ", ".join(f"$Users||{name}$" for name in unknown)},
            )
        return value

    def clean_allowed_mail_hosts(self) -> str:
        import ipaddress

        value: str = self.cleaned_data["allowed_mail_hosts"]
        for line in value.splitlines():
            entry = line.strip()
            if "/" in entry:
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError as exc:
                    raise forms.ValidationError(
                        _("%(entry)s is not a valid network."), params={"entry": entry}
                    ) from exc
        return value
