from django.db import migrations


class Migration(migrations.Migration):
    """Joins the arrival pipeline's tables and out-of-office's, added side by side."""

    dependencies = [
        ("rules", "0002_arrivals"),
        ("rules", "0002_autoreply"),
    ]
    operations: list[migrations.operations.base.Operation] = []
