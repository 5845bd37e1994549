from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "posta.sync"
    label = "sync"

    def ready(self) -> None:
        # posta.mail announces work through signals and never imports this app
        # (import-linter contract "mail never imports sync"); listen here.
        from posta.mail import signals
        from posta.sync import tasks

        signals.actions_created.connect(tasks.on_actions_created, dispatch_uid="posta-sync-actions")
        signals.body_fetch_requested.connect(
            tasks.on_body_fetch_requested, dispatch_uid="posta-sync-bodies"
        )
