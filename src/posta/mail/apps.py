from django.apps import AppConfig


class MailConfig(AppConfig):
    name = "posta.mail"
    label = "mail"

    def ready(self) -> None:
        from posta.crm import signals as crm_signals
        from posta.mail import links, signals, tasks

        links.register()
        signals.messages_stored.connect(
            tasks.on_messages_stored, dispatch_uid="posta.mail.autolink"
        )
        crm_signals.record_emails_added.connect(
            tasks.on_record_emails_added, dispatch_uid="posta.mail.record_backfill"
        )
