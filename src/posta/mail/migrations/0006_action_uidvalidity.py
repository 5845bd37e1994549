from typing import Any

from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def bind_open_actions(apps: Any, schema_editor: Any) -> None:
    """Open actions written before this field existed name a UID of their source
    folder's UIDVALIDITY as stored now: the best knowledge there is."""
    action = apps.get_model("mail", "RemoteAction")
    folder = apps.get_model("accounts", "Folder")
    stored = folder.objects.filter(pk=OuterRef("source_folder_id")).values("uidvalidity")[:1]
    action.objects.filter(
        source_folder__isnull=False, source_uidvalidity__isnull=True
    ).update(source_uidvalidity=Subquery(stored))


class Migration(migrations.Migration):

    dependencies = [
        ("mail", "0005_pending_bodies_by_date"),
    ]

    operations = [
        migrations.AddField(
            model_name="remoteaction",
            name="source_uidvalidity",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(bind_open_actions, migrations.RunPython.noop),
    ]
