"""The outbox tables move from the delivery app to the mail app without a row
changing: a database migrated by the earlier code migrates forward with its
drafts, queued messages and attachments intact (mail.0008 / delivery.0004 are
state-only)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from posta.mail.models import OutgoingAttachment, OutgoingMessage

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [
    ("delivery", "0003_outgoing_unique_user_draft_key"),
    ("mail", "0007_action_chain_lease"),
]


def _migrate(targets: list[tuple[str, str]] | None = None) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    return MigrationExecutor(connection)


def _before() -> list[tuple[str, str]]:
    """Every other app as it is now; mail and delivery as before the move."""
    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes()
    return [leaf for leaf in leaves if leaf[0] not in ("mail", "delivery")] + BEFORE


def test_rows_written_before_the_move_are_all_there_after_it() -> None:
    before = _before()
    executor = _migrate(before)
    old = executor.loader.project_state(before).apps
    user = old.get_model("users", "User").objects.create(username="anna")
    account = old.get_model("accounts", "Account").objects.create(
        user=user, username="anna@example.test", email="anna@example.test",
        imap_host="imap.example.test", smtp_host="smtp.example.test",
    )
    old_message = old.get_model("delivery", "OutgoingMessage")
    queued = old_message.objects.create(
        user=user, account=account, state="queued", subject="Offerta",
        message_id="q1.posta@example.test", to=[["Bruno", "bruno@example.test"]],
        send_at=timezone.now(), draft_key="k" * 32, references=["root@example.test"],
    )
    draft = old_message.objects.create(
        user=user, account=account, subject="Bozza", draft_key="d" * 32, draft_revision=3,
    )
    old.get_model("delivery", "OutgoingAttachment").objects.create(
        outgoing=queued, filename="offerta.pdf", content_type="application/pdf", size=5,
        blob_key="blob-1",
    )

    _migrate()

    assert connection.introspection.table_names().count("delivery_outgoingmessage") == 1
    rows = {row.pk: row for row in OutgoingMessage.objects.all()}
    assert set(rows) == {queued.pk, draft.pk}
    moved = rows[queued.pk]
    assert (moved.state, moved.subject, moved.message_id) == (
        "queued", "Offerta", "q1.posta@example.test"
    )
    assert moved.to == [["Bruno", "bruno@example.test"]]
    assert moved.references == ["root@example.test"]
    assert moved.account_id == account.pk and moved.user_id == user.pk
    assert rows[draft.pk].draft_revision == 3
    assert [(a.filename, a.blob_key) for a in moved.attachments.all()] == [
        ("offerta.pdf", "blob-1")
    ]
    # New rows continue the same ids and obey the same constraints.
    later = OutgoingMessage.objects.create(user_id=user.pk, account_id=account.pk)
    assert later.pk > max(rows)
    assert OutgoingAttachment.objects.filter(outgoing=moved).count() == 1
