from django.db import migrations


class Migration(migrations.Migration):
    """The rules app's first migration; each part (filters, out-of-office, POP3)
    adds its tables in migrations of its own after this one."""

    initial = True
    dependencies: list[tuple[str, str]] = []
    operations: list[migrations.operations.base.Operation] = []
