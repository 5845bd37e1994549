"""Signals of the rules app, so that its database-only services (used by the web
pages) wake its workers without importing them (posta.rules.tasks connects the
receivers in RulesConfig.ready())."""

from django.dispatch import Signal

#: The filters of these accounts changed; kwargs: `account_ids` (sorted list of
#: int). Sent after commit (posta.mail.signals.notify_after_commit).
filters_changed = Signal()

#: "Apply to existing mail" was asked for; kwargs: `job_id` (int). After commit.
scan_requested = Signal()
