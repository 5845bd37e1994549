"""CRM records (contacts, organizations, leads) and their links to mail (DESIGN §9).

A record is named across the app by its kind and id (`RecordRef`, "contact:12").
Its email addresses live in `RecordEmail` (one row per address, lower-cased and
indexed, so an incoming message's From/To/Cc meet their records in one query), an
organization's email domains in `OrganizationDomain`.

A `Link` joins a message *identity* to a record: the opaque string posta.mail
computes for a message (a hash of its Message-ID and a few header fields), the same
for every copy of that mail in any folder, any account and any user's mailbox. So a
link covers the Sent copy, a re-download after a UIDVALIDITY reset and a
colleague's copy; crm never imports mail and never learns more of the message than
that string (and the conversation key the mail side hands it for "link the whole
conversation").
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Kind(models.TextChoices):
    CONTACT = "contact", _("Contact")
    ORGANIZATION = "organization", _("Organization")
    LEAD = "lead", _("Lead")


class CrmSettings(models.Model):
    """The administrator's CRM settings: one row (pk 1)."""

    class Visibility(models.TextChoices):
        ALL = "all", _("Every user sees every record")
        OWN = "own", _("Users see the records they own")

    visibility = models.CharField(
        max_length=10, choices=Visibility.choices, default=Visibility.ALL
    )
    # More free-mail, ISP and certified-mail domains, one a line, added to
    # posta.crm.freemail's list: never suggested as an organization's domain.
    extra_free_domains = models.TextField(blank=True)
    # ISO 3166 region for numbers written without a country code (phonenumbers).
    phone_region = models.CharField(max_length=2, default="IT")

    def __str__(self) -> str:
        return str(self.get_visibility_display())


class CrmUserPrefs(models.Model):
    """A user's CRM preferences."""

    class AutoLink(models.TextChoices):
        OFF = "off", _("Off")
        EXISTING = "existing", _("To records that already exist")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="crm_prefs"
    )
    auto_link = models.CharField(
        max_length=10, choices=AutoLink.choices, default=AutoLink.EXISTING
    )

    def __str__(self) -> str:
        return self.auto_link


class Record(models.Model):
    """What contacts, organizations and leads share."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    phones = models.JSONField(default=list)  # E.164 where it could be read, else as typed
    notes = models.TextField(blank=True)
    # Lower-cased display name, for the list's order and its keyset pages.
    sort_name = models.CharField(max_length=300, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    KIND: ClassVar[str] = ""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.sort_name = self.display_name.strip().lower()[:300]
        super().save(*args, **kwargs)

    @property
    def display_name(self) -> str:
        raise NotImplementedError

    @property
    def ref(self) -> str:
        return f"{self.KIND}:{self.pk}"

    @property
    def kind_label(self) -> str:
        return str(Kind(self.KIND).label)


class Organization(Record):
    KIND: ClassVar[str] = Kind.ORGANIZATION

    name = models.CharField(_("name"), max_length=200)
    website = models.CharField(_("website"), max_length=300, blank=True)
    address = models.TextField(_("address"), blank=True)

    def __str__(self) -> str:
        return self.name

    @property
    def display_name(self) -> str:
        return self.name


class Contact(Record):
    KIND: ClassVar[str] = Kind.CONTACT

    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    title = models.CharField(_("title"), max_length=100, blank=True)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts"
    )

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Lead(Record):
    KIND: ClassVar[str] = Kind.LEAD

    class Status(models.TextChoices):
        NEW = "new", _("New")
        CONTACTED = "contacted", _("Contacted")
        QUALIFIED = "qualified", _("Qualified")
        LOST = "lost", _("Lost")
        CONVERTED = "converted", _("Converted")

    name = models.CharField(_("name"), max_length=200)
    company = models.CharField(_("company"), max_length=200, blank=True)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.NEW
    )
    source = models.CharField(_("source"), max_length=100, blank=True)

    def __str__(self) -> str:
        return self.name

    @property
    def display_name(self) -> str:
        return self.name


class RecordEmail(models.Model):
    """One email address of a record, lower-cased."""

    kind = models.CharField(max_length=20, choices=Kind.choices)
    record_id = models.BigIntegerField()
    email = models.CharField(max_length=320)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["kind", "record_id", "email"], name="crm_email_record_unique"
            ),
        ]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["email"], name="crm_email_address"),
            models.Index(fields=["kind", "record_id"], name="crm_email_record"),
        ]

    def __str__(self) -> str:
        return self.email


class OrganizationDomain(models.Model):
    """An email domain of an organization (lower-case, without "@")."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="domains"
    )
    domain = models.CharField(max_length=253, db_index=True)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["organization", "domain"], name="crm_domain_unique"),
        ]

    def __str__(self) -> str:
        return self.domain


class Link(models.Model):
    """A message identity joined to a record (see the module docstring)."""

    class How(models.TextChoices):
        MANUAL = "manual", _("Linked by hand")
        AUTO = "auto", _("Linked automatically")
        COMPOSE = "compose", _("Linked when written")
        IMPORTED = "imported", _("Imported")

    kind = models.CharField(max_length=20, choices=Kind.choices)
    record_id = models.BigIntegerField()
    identity = models.CharField(max_length=64)
    how = models.CharField(max_length=10, choices=How.choices, default=How.MANUAL)
    linked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The unique key starts with the identity, so it also serves "the links of
        # this message" (the reader, the keeper): one B-tree fewer per link written.
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["identity", "kind", "record_id"], name="crm_link_unique"
            ),
        ]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["kind", "record_id", "-created_at"], name="crm_link_record"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.record_id} ~ {self.identity[:12]}"


MODELS: dict[str, type[Record]] = {
    Kind.CONTACT: Contact,
    Kind.ORGANIZATION: Organization,
    Kind.LEAD: Lead,
}


class RecordImport(models.Model):
    """A CSV (or vCard) import of records: the file, the column mapping the user
    chose, and where the run is. Rows are imported in chunks (posta.crm.importing),
    so a big file shows its progress and a stopped run resumes where it was."""

    class State(models.TextChoices):
        MAPPING = "mapping", _("Choosing columns")
        RUNNING = "running", _("Importing")
        DONE = "done", _("Done")

    class Duplicates(models.TextChoices):
        SKIP = "skip", _("Skip them")
        MERGE = "merge", _("Add what is new to the existing record")

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    filename = models.CharField(max_length=255)
    content = models.TextField()  # the file, decoded
    delimiter = models.CharField(max_length=1, default=",")
    mapping = models.JSONField(default=dict)  # field name -> column index
    duplicates = models.CharField(
        max_length=10, choices=Duplicates.choices, default=Duplicates.SKIP
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.MAPPING)
    total = models.PositiveIntegerField(default=0)  # data rows
    position = models.PositiveIntegerField(default=0)  # data rows done
    created = models.PositiveIntegerField(default=0)
    merged = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list)  # [[row number, words], ...]
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.filename

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, self.position * 100 // self.total)


class RecordGrant(models.Model):
    """Read access to one record for a user who could not otherwise see it (under
    "users see the records they own"), given by the record's owner when sharing
    mail linked to it. Read only: a grant never lets anyone edit, delete or merge.

    `reason` names what the grant was given for, as an opaque string the caller
    chooses ("share:12"): crm never learns what a share is; the caller removes
    the grants it made by that string when it is revoked."""

    kind = models.CharField(max_length=20, choices=Kind.choices)
    record_id = models.BigIntegerField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    reason = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["user", "kind", "record_id", "reason"], name="crm_grant_unique"
            ),
        ]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["reason", "user"], name="crm_grant_reason"),
            models.Index(fields=["kind", "record_id"], name="crm_grant_record"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.record_id} -> {self.user_id}"
