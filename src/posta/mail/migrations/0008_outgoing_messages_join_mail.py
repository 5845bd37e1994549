"""The outbox tables become models of the mail app (posta.mail.outbox_models).

State only: the tables keep the names the delivery app gave them, so no table,
column, index, constraint or row changes. The delivery app's state drops the
models in delivery.0004_outgoing_messages_leave_delivery, which runs after this.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0003_user_roles'),
        ('delivery', '0003_outgoing_unique_user_draft_key'),
        ('mail', '0007_action_chain_lease'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='OutgoingMessage',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('new', 'New message'), ('reply', 'Reply'), ('reply_all', 'Reply to all'), ('forward', 'Forward'), ('forward_attached', 'Forward as attachment')], default='new', max_length=20)),
                        ('state', models.CharField(choices=[('draft', 'Draft'), ('queued', 'Waiting to be sent'), ('scheduled', 'Scheduled'), ('paused', 'Paused'), ('sending', 'Sending'), ('sent', 'Sent'), ('failed', 'Not sent'), ('needs_review', 'Needs your review'), ('cancelled', 'Cancelled')], default='draft', max_length=20)),
                        ('message_id', models.CharField(blank=True, max_length=250)),
                        ('subject', models.CharField(blank=True, max_length=998)),
                        ('to', models.JSONField(default=list)),
                        ('cc', models.JSONField(default=list)),
                        ('bcc', models.JSONField(default=list)),
                        ('body_html', models.TextField(blank=True)),
                        ('body_text', models.TextField(blank=True)),
                        ('plain_text', models.BooleanField(default=False)),
                        ('signature_html', models.TextField(blank=True)),
                        ('quote_html', models.TextField(blank=True)),
                        ('quote_text', models.TextField(blank=True)),
                        ('in_reply_to', models.CharField(blank=True, max_length=998)),
                        ('references', models.JSONField(default=list)),
                        ('send_at', models.DateTimeField(blank=True, null=True)),
                        ('scheduled_for', models.DateTimeField(blank=True, null=True)),
                        ('queued_at', models.DateTimeField(blank=True, null=True)),
                        ('claim_token', models.CharField(blank=True, max_length=64)),
                        ('claimed_at', models.DateTimeField(blank=True, null=True)),
                        ('data_started_at', models.DateTimeField(blank=True, null=True)),
                        ('attempts', models.PositiveSmallIntegerField(default=0)),
                        ('give_up_at', models.DateTimeField(blank=True, null=True)),
                        ('raw_blob_key', models.CharField(blank=True, max_length=100)),
                        ('error_code', models.CharField(blank=True, max_length=50)),
                        ('error_detail', models.CharField(blank=True, max_length=500)),
                        ('failed_recipients', models.JSONField(default=list)),
                        ('sent_at', models.DateTimeField(blank=True, null=True)),
                        ('sent_copy', models.CharField(choices=[('none', 'Nothing to do'), ('pending', 'Waiting'), ('done', 'Done'), ('failed', 'Failed')], default='none', max_length=10)),
                        ('mark_original', models.CharField(choices=[('none', 'Nothing to do'), ('pending', 'Waiting'), ('done', 'Done'), ('failed', 'Failed')], default='none', max_length=10)),
                        ('draft_cleanup', models.CharField(choices=[('none', 'Nothing to do'), ('pending', 'Waiting'), ('done', 'Done'), ('failed', 'Failed')], default='none', max_length=10)),
                        ('follow_up_attempts', models.PositiveSmallIntegerField(default=0)),
                        ('follow_up_at', models.DateTimeField(blank=True, null=True)),
                        ('draft_uid', models.BigIntegerField(blank=True, null=True)),
                        ('draft_revision', models.PositiveIntegerField(default=0)),
                        ('draft_saved_revision', models.PositiveIntegerField(default=0)),
                        ('draft_key', models.CharField(blank=True, max_length=64)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('account', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='outgoing', to='accounts.account')),
                        ('draft_folder', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='accounts.folder')),
                        ('original', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='mail.message')),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='outgoing_messages', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'delivery_outgoingmessage',
                        'indexes': [
                            models.Index(condition=models.Q(('state__in', ['queued', 'scheduled'])), fields=['send_at'], name='outgoing_due'),
                            models.Index(fields=['user', 'state'], name='outgoing_user_state'),
                        ],
                        'constraints': [
                            models.UniqueConstraint(condition=models.Q(('message_id', ''), _negated=True), fields=('message_id',), name='outgoing_unique_message_id'),
                            models.UniqueConstraint(condition=models.Q(('draft_key', ''), _negated=True), fields=('user', 'draft_key'), name='outgoing_unique_user_draft_key'),
                        ],
                    },
                ),
                migrations.CreateModel(
                    name='OutgoingAttachment',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('filename', models.CharField(max_length=255)),
                        ('content_type', models.CharField(default='application/octet-stream', max_length=255)),
                        ('size', models.PositiveBigIntegerField(default=0)),
                        ('blob_key', models.CharField(max_length=100)),
                        ('content_id', models.CharField(blank=True, max_length=250)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('outgoing', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='attachments', to='mail.outgoingmessage')),
                    ],
                    options={
                        'db_table': 'delivery_outgoingattachment',
                        'ordering': ['id'],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
