"""The question the share forms ask when the conversation is linked to CRM
records some of the chosen colleagues may not see: "Also let them read these
records" or "Share the mail alone" (posta.shares.records)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from posta.shares import records as share_records
from posta.shares import services
from posta.shares.records import HiddenRecord
from posta.users.models import User
from posta.web import params

# The share form's fields carried through the question, as they were posted.
CARRIED = ("action", "people", "access", "everyone", "follow", "comment")


def decision(request: HttpRequest) -> str:
    """"grant", "alone", or "" when the owner has not answered yet."""
    return params.choice(request.POST, "records", choices=share_records.CHOICES, default="")


def hidden_for(
    owner: User, identities: list[str], people: list[User], *, everyone: bool
) -> list[HiddenRecord]:
    """The linked records some of the colleagues (every colleague, with
    "everyone") may not read."""
    targets = list(services.colleagues(owner)) if everyone else people
    return share_records.hidden_records(owner, identities, targets)


def ask(request: HttpRequest, hidden: list[HiddenRecord], *, subject: str, back: str
        ) -> HttpResponse:
    """The question page: the records, who may not see them, and two answers that
    post the share form again."""
    carried = [(name, value) for name in CARRIED for value in request.POST.getlist(name)]
    return render(
        request, "web/shares/records_question.html",
        {"hidden": hidden, "carried": carried, "subject": subject, "back": back},
    )
