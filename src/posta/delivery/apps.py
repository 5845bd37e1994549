from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "posta.delivery"
    label = "delivery"

    def ready(self) -> None:
        # posta.mail announces work through signals and never imports this app
        # (the web layer may not reach posta.delivery even indirectly); listen here.
        from posta.delivery import tasks
        from posta.mail import signals

        signals.outgoing_queued.connect(
            tasks.on_outgoing_queued, dispatch_uid="posta-delivery-send"
        )
        signals.draft_changed.connect(tasks.on_draft_changed, dispatch_uid="posta-delivery-draft")
