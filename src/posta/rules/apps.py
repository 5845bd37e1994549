from django.apps import AppConfig


class RulesConfig(AppConfig):
    name = "posta.rules"
    label = "rules"
    verbose_name = "Rules"

    def ready(self) -> None:
        # New mail reaches the arrival pipeline through posta.mail's signal
        # (posta.rules.arrivals); its steps are registered here, in order.
        from django.db.models.signals import post_save

        from posta.accounts.models import Account
        from posta.mail import signals
        from posta.rules import arrivals, filter_step, tasks
        from posta.rules import signals as rules_signals

        signals.messages_stored.connect(
            tasks.on_messages_stored, dispatch_uid="posta-rules-arrivals"
        )
        arrivals.register_step(filter_step.NAME, filter_step.ORDER, filter_step.filter_arrivals)
        post_save.connect(
            tasks.on_account_saved, sender=Account, dispatch_uid="posta-rules-account-saved"
        )
        rules_signals.scan_requested.connect(
            tasks.on_scan_requested, dispatch_uid="posta-rules-scan"
        )
        rules_signals.filters_changed.connect(
            tasks.on_filters_changed, dispatch_uid="posta-rules-filters-changed"
        )
        from posta.rules import (
            autoreply_step,
            autoreply_tasks,  # noqa: F401 - registers the Huey tasks
        )

        arrivals.register_step(
            autoreply_step.STEP_NAME, autoreply_step.STEP_ORDER, autoreply_step.run_step
        )
        from posta.rules import autoreply_sieve, sieve_upload

        sieve_upload.register_section(
            autoreply_sieve.SECTION_NAME, autoreply_sieve.SECTION_ORDER,
            autoreply_sieve.vacation_section,
        )

        # The POP3 tab's services open no connection: the source test and the
        # worker's wake-up are handed to them here.
        from posta.rules import pop3_services
        from posta.rules.pop3_connect import probe_source
        from posta.rules.pop3_tasks import on_fetch_requested

        pop3_services.register_pop3_probe(probe_source)
        pop3_services.fetch_requested.connect(on_fetch_requested, dispatch_uid="pop3_fetch")
