"""The outbox models now belong to the mail app (mail.0008_outgoing_messages_join_mail,
which already took over the same tables): the delivery app forgets them. State only:
the tables and their rows stay as they are.
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('delivery', '0003_outgoing_unique_user_draft_key'),
        ('mail', '0008_outgoing_messages_join_mail'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name='OutgoingAttachment'),
                migrations.DeleteModel(name='OutgoingMessage'),
            ],
            database_operations=[],
        ),
    ]
