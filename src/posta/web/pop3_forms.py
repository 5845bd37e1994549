"""The form of the POP3 tab: shape only; the test and the save live in
posta.rules.pop3_services."""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.utils.translation import gettext_lazy as _

from posta.accounts.models import Folder
from posta.rules.pop3_models import Pop3Source
from posta.rules.pop3_services import default_target, target_folders
from posta.users.models import User
from posta.web.templatetags.posta_words import folder_label


class TargetFolderField(forms.ModelChoiceField):  # type: ignore[type-arg]  # Folder rows
    def label_from_instance(self, obj: Any) -> str:
        assert isinstance(obj, Folder)  # noqa: S101  the queryset holds Folders only
        return f"{obj.account.description} › {folder_label(obj.name, obj.display_name)}"


class Pop3SourceForm(forms.ModelForm):  # type: ignore[type-arg]  # django-stubs generic
    password = forms.CharField(
        label=_("Password"), required=False, widget=forms.PasswordInput(render_value=False),
        max_length=500,
    )
    target = TargetFolderField(queryset=Folder.objects.none(), label=_("Import into"))
    save_anyway = forms.BooleanField(label=_("Save even though the test failed"), required=False)

    class Meta:
        model = Pop3Source
        fields: ClassVar[list[str]] = [
            "host", "port", "security", "username", "keep_on_server", "delete_after_days",
            "interval_minutes", "active",
        ]

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        folders = target_folders(user)
        target = self.fields["target"]
        assert isinstance(target, TargetFolderField)  # noqa: S101  declared above
        target.queryset = folders
        source = self.instance
        if source.pk:
            current = folders.filter(account=source.account, name=source.folder_name).first()
            self.fields["password"].help_text = _("Leave empty to keep the stored password.")
        else:
            current = default_target(user)
        if current is not None:
            self.initial.setdefault("target", current.pk)
        self.fields["port"].widget.attrs.update(min=1, max=65535)
        self.fields["interval_minutes"].widget.attrs.update(min=1, max=1440)
        self.fields["delete_after_days"].widget.attrs.update(min=1, max=3650)
        self.fields["delete_after_days"].help_text = _(
            "Only with a copy left on the server: empty keeps it there for ever."
        )
        self.order_fields(
            ["host", "port", "security", "username", "password", "target", "keep_on_server",
             "delete_after_days", "interval_minutes", "active"]
        )

    def clean_port(self) -> int:
        port = self.cleaned_data["port"]
        if not 1 <= port <= 65535:
            raise forms.ValidationError(_("A port is a number from 1 to 65535."))
        return int(port)

    def clean_interval_minutes(self) -> int:
        minutes = self.cleaned_data["interval_minutes"]
        if not 1 <= minutes <= 1440:
            raise forms.ValidationError(_("Choose from 1 to 1,440 minutes."))
        return int(minutes)

    def clean_delete_after_days(self) -> int | None:
        days = self.cleaned_data["delete_after_days"]
        if days is not None and not 1 <= days <= 3650:
            raise forms.ValidationError(_("Choose from 1 to 3,650 days."))
        return int(days) if days is not None else None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.instance.pk and not data.get("password"):
            self.add_error("password", _("Enter the password of the POP3 mailbox."))
        return data

    def keep_typed_password(self) -> None:
        """Render the password just typed back into its input, this response only,
        so that a retry after a failed test needs no retyping."""
        widget = self.fields["password"].widget
        assert isinstance(widget, forms.PasswordInput)  # noqa: S101  declared above
        widget.render_value = True
